using System.Diagnostics;
using EdgeShield.Policy;

namespace EdgeShield.Hardware;

/// <summary>
/// Drives the front LEDs from the service's counters: run is on, and blinks while traffic flows;
/// alarm is on while there were denials or faults in the last <see cref="AlarmHold"/>;
/// maintenance is on while armed.
/// </summary>
public sealed class StatusLedController : IDisposable
{
    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);
    public static readonly TimeSpan AlarmHold = TimeSpan.FromSeconds(10);

    private readonly IStatusLeds _leds;
    private readonly Func<long> _traffic;
    private readonly Func<long> _faults;
    private readonly MaintenanceState _maintenance;
    private readonly Timer _timer;
    private readonly object _gate = new();
    private long _lastTraffic;
    private long _lastFaults;
    private long _lastFaultAt = long.MinValue;
    private bool _blink;

    /// <param name="traffic">A count that grows with forwarded frames.</param>
    /// <param name="faults">A count that grows with denials, malformed frames and PLC faults.</param>
    public StatusLedController(IStatusLeds leds, Func<long> traffic, Func<long> faults, MaintenanceState maintenance)
    {
        ArgumentNullException.ThrowIfNull(leds);
        ArgumentNullException.ThrowIfNull(traffic);
        ArgumentNullException.ThrowIfNull(faults);
        ArgumentNullException.ThrowIfNull(maintenance);
        _leds = leds;
        _traffic = traffic;
        _faults = faults;
        _maintenance = maintenance;
        _lastTraffic = traffic();
        _lastFaults = faults();
        leds.Light(StatusLed.Run, true);
        _timer = new Timer(_ => Update(), null, Tick, Tick);
    }

    /// <summary>One step of the LED logic (the timer calls it every <see cref="Tick"/>).</summary>
    public void Update()
    {
        lock (_gate)
        {
            long now = Stopwatch.GetTimestamp();
            long traffic = _traffic(), faults = _faults();
            bool flowing = traffic != _lastTraffic;
            _lastTraffic = traffic;
            _blink = flowing && !_blink;
            _leds.Light(StatusLed.Run, !_blink);
            if (faults != _lastFaults)
            {
                _lastFaults = faults;
                _lastFaultAt = now;
            }
            _leds.Light(StatusLed.Alarm, _lastFaultAt != long.MinValue && now - _lastFaultAt < (long)(AlarmHold.TotalSeconds * Stopwatch.Frequency));
            _leds.Light(StatusLed.Maintenance, _maintenance.IsArmed);
        }
    }

    public void Dispose() => _timer.Dispose();
}
