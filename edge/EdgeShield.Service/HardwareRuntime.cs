using System.Device.Gpio;
using System.Device.Gpio.Drivers;
using EdgeShield.Gateway;
using EdgeShield.Hardware;
using EdgeShield.Policy;

namespace EdgeShield.Service;

/// <summary>
/// The gateway's front panel for one run: the GPIO chip of the configured profile, the maintenance
/// key wired to <see cref="MaintenanceState"/> with audit events, and the status LEDs.
/// </summary>
public sealed class HardwareRuntime : IDisposable
{
    private readonly GpioController? _controller;
    private readonly IMaintenanceKey? _key;
    private readonly IStatusLeds? _leds;
    private readonly MaintenanceSwitch? _switch;
    private readonly StatusLedController? _ledController;

    private HardwareRuntime(GpioController? controller, SimulatedGpioDriver? simulated, IMaintenanceKey? key, MaintenanceSwitch? maintenanceSwitch, IStatusLeds? leds, StatusLedController? ledController)
    {
        _controller = controller;
        Simulated = simulated;
        _key = key;
        _switch = maintenanceSwitch;
        _leds = leds;
        _ledController = ledController;
    }

    /// <summary>The in-memory chip with <c>profile: simulated</c> (the demo turns the key on it); otherwise null.</summary>
    public SimulatedGpioDriver? Simulated { get; }

    /// <summary>The LEDs, when the config has any.</summary>
    public IStatusLeds? Leds => _leds;

    /// <summary>
    /// Opens what <paramref name="config"/> names. A GPIO chip that cannot be opened leaves the
    /// gateway running with maintenance disarmed (the safe state) and says so in the audit log.
    /// </summary>
    public static HardwareRuntime Start(HardwareConfig? config, MaintenanceState maintenance, GatewayCounters counters, IAuditSink audit)
    {
        if (config is null || (config.MaintenanceKey is null && config.Leds is { Run: null, Alarm: null, Maintenance: null }))
        {
            return new HardwareRuntime(null, null, null, null, null, null);
        }
        SimulatedGpioDriver? simulated = null;
        GpioController controller;
        try
        {
            if (config.Profile == HardwareProfiles.Simulated)
            {
                simulated = new SimulatedGpioDriver();
                if (config.MaintenanceKey is { } simulatedKey)
                {
                    // A simulated key starts in the off position.
                    simulated.SetInputLevel(simulatedKey.Gpio, simulatedKey.ActiveLow ? PinValue.High : PinValue.Low);
                }
                controller = new GpioController(simulated);
            }
            else
            {
                // The kernel's GPIO character device through libgpiod (Debian 12: libgpiod2, the v1 API),
                // chip 0. Not `new GpioController()`: its driver auto-selection reaches the libgpiod v2
                // interop, which System.Device.Gpio 4.2.0 leaves with a trim warning (IL2091).
                controller = new GpioController(new LibGpiodDriver(gpioChip: 0));
            }
        }
        catch (Exception e) when (e is PlatformNotSupportedException or IOException or UnauthorizedAccessException or InvalidOperationException or DllNotFoundException)
        {
            audit.Write(AuditEvent.Service("hardware-unavailable", $"profile {config.Profile}: {e.Message}; maintenance stays disarmed"));
            return new HardwareRuntime(null, null, null, null, null, null);
        }

        IMaintenanceKey? key = null;
        MaintenanceSwitch? maintenanceSwitch = null;
        IStatusLeds? leds = null;
        StatusLedController? ledController = null;
        try
        {
            if (config.MaintenanceKey is { } keyConfig)
            {
                key = new GpioMaintenanceKey(controller, keyConfig.Gpio, keyConfig.ActiveLow, GpioMaintenanceKey.DefaultDebounce);
                maintenanceSwitch = new MaintenanceSwitch(key, maintenance, keyConfig.ArmDuration, change =>
                    audit.Write(AuditEvent.Service(change.Reason, change.Detail)));
            }
            leds = new GpioStatusLeds(controller, config.Leds.Run, config.Leds.Alarm, config.Leds.Maintenance);
            ledController = new StatusLedController(leds, () => counters.Allowed, () => counters.Denied + counters.Malformed + counters.Timeouts + counters.ResponseMismatches, maintenance);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException or PlatformNotSupportedException)
        {
            audit.Write(AuditEvent.Service("hardware-unavailable", $"profile {config.Profile}: {e.Message}; maintenance stays disarmed"));
            ledController?.Dispose();
            leds?.Dispose();
            maintenanceSwitch?.Dispose();
            key?.Dispose();
            maintenance.Disarm();
            controller.Dispose();
            return new HardwareRuntime(null, null, null, null, null, null);
        }
        return new HardwareRuntime(controller, simulated, key, maintenanceSwitch, leds, ledController);
    }

    public void Dispose()
    {
        _ledController?.Dispose();
        _switch?.Dispose();
        _key?.Dispose();
        _leds?.Dispose();
        _controller?.Dispose();
    }
}
