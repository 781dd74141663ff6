using System.Device.Gpio;

namespace EdgeShield.Hardware;

/// <summary>
/// The key switch on a GPIO input, debounced by settling: every edge restarts a timer, and the
/// position is reported once the line has been quiet for the debounce time, as the level read
/// then. The line is opened as a plain input: industrial digital inputs have their own bias network,
/// and a driver that cannot switch pull resistors still works.
/// </summary>
/// <remarks>
/// Iot.Device.Bindings' <c>GpioButton</c> was tried first and dropped, for two reasons measured
/// here: (1) 4.2.0 debounces presses by lockout and releases not at all, so a bounce burst gave
/// arm-disarm-arm or ended on a dropped press with the key turned (KeyBounce_ArmsOnce);
/// (2) its constructor's <c>gpio ?? new GpioController()</c> keeps System.Device.Gpio's driver
/// auto-selection in the AOT image, and with it SysFsDriver and the libgpiod v2 interop, which
/// give trim warning IL2091 (UnmanagedArray&lt;T&gt;.ReadToManagedArray) — the firmware ships with none.
/// </remarks>
public sealed class GpioMaintenanceKey : IMaintenanceKey
{
    /// <summary>Contact bounce of a key switch settles well inside this.</summary>
    public static readonly TimeSpan DefaultDebounce = TimeSpan.FromMilliseconds(30);

    private readonly GpioController _controller;
    private readonly Timer _settle;
    private readonly TimeSpan _debounce;
    private readonly int _line;
    private readonly bool _activeLow;
    private readonly object _gate = new();
    private bool _reported;

    public GpioMaintenanceKey(GpioController controller, int line, bool activeLow, TimeSpan debounce)
    {
        ArgumentNullException.ThrowIfNull(controller);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(debounce, TimeSpan.Zero);
        _controller = controller;
        _line = line;
        _activeLow = activeLow;
        _debounce = debounce;
        _settle = new Timer(_ => Settle());
        controller.OpenPin(line, PinMode.Input);
        _reported = IsTurned;
        controller.RegisterCallbackForPinValueChangedEvent(line, PinEventTypes.Rising | PinEventTypes.Falling, OnEdge);
    }

    public bool IsTurned => _controller.Read(_line) == (_activeLow ? PinValue.Low : PinValue.High);

    public event EventHandler<bool>? Turned;

    private void OnEdge(object sender, PinValueChangedEventArgs e) => _settle.Change(_debounce, Timeout.InfiniteTimeSpan);

    private void Settle()
    {
        bool turned = IsTurned;
        lock (_gate)
        {
            if (_reported == turned)
            {
                return;
            }
            _reported = turned;
        }
        Turned?.Invoke(this, turned);
    }

    public void Dispose()
    {
        _controller.UnregisterCallbackForPinValueChangedEvent(_line, OnEdge);
        _settle.Dispose();
        if (_controller.IsPinOpen(_line))
        {
            _controller.ClosePin(_line);
        }
    }
}

/// <summary>LEDs on GPIO outputs, lit when driven high.</summary>
public sealed class GpioStatusLeds : IStatusLeds
{
    private readonly GpioController _controller;
    private readonly int?[] _lines = new int?[3];
    private readonly bool[] _state = new bool[3];

    public GpioStatusLeds(GpioController controller, int? run, int? alarm, int? maintenance)
    {
        ArgumentNullException.ThrowIfNull(controller);
        _controller = controller;
        _lines[(int)StatusLed.Run] = run;
        _lines[(int)StatusLed.Alarm] = alarm;
        _lines[(int)StatusLed.Maintenance] = maintenance;
        foreach (var line in _lines)
        {
            if (line is { } l)
            {
                controller.OpenPin(l, PinMode.Output, PinValue.Low);
            }
        }
    }

    public void Light(StatusLed led, bool lit)
    {
        int index = (int)led;
        lock (_state)
        {
            if (_state[index] == lit)
            {
                return;
            }
            _state[index] = lit;
            if (_lines[index] is { } line)
            {
                _controller.Write(line, lit ? PinValue.High : PinValue.Low);
            }
        }
    }

    public bool IsOn(StatusLed led)
    {
        lock (_state)
        {
            return _state[(int)led];
        }
    }

    public void Dispose()
    {
        foreach (var line in _lines)
        {
            if (line is { } l && _controller.IsPinOpen(l))
            {
                _controller.Write(l, PinValue.Low);
                _controller.ClosePin(l);
            }
        }
    }
}
