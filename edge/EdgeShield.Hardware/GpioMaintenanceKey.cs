using System.Device.Gpio;
using Iot.Device.Button;

namespace EdgeShield.Hardware;

/// <summary>
/// The key switch on a GPIO input, debounced by Iot.Device.Bindings' <see cref="GpioButton"/>.
/// The line is opened as a plain input: industrial digital inputs have their own bias network,
/// and a driver that cannot switch pull resistors still works.
/// </summary>
/// <remarks>
/// GpioButton 4.2.0 debounces presses by lockout (a press within the debounce time of the previous
/// one is ignored) and releases not at all, so a bounce burst gives arm-disarm-arm, or ends on a
/// dropped press with the key turned (tests: KeyBounce_ArmsOnce). So its events, like every raw
/// edge, only restart a settle timer: a position is reported once the line has been quiet for the
/// debounce time plus a margin, as the level read then.
/// </remarks>
public sealed class GpioMaintenanceKey : IMaintenanceKey
{
    /// <summary>Contact bounce of a key switch settles well inside this.</summary>
    public static readonly TimeSpan DefaultDebounce = TimeSpan.FromMilliseconds(30);

    private readonly GpioController _controller;
    private readonly GpioButton _button;
    private readonly Timer _settle;
    private readonly TimeSpan _settleDelay;
    private readonly int _line;
    private readonly bool _activeLow;
    private readonly object _gate = new();
    private bool _reported;

    public GpioMaintenanceKey(GpioController controller, int line, bool activeLow, TimeSpan debounce)
    {
        ArgumentNullException.ThrowIfNull(controller);
        _controller = controller;
        _line = line;
        _activeLow = activeLow;
        _settleDelay = debounce + TimeSpan.FromMilliseconds(20);
        _settle = new Timer(_ => Settle());
        // GpioButton's "pull-up" means: pressed pulls the line low. hasExternalResistor: open as Input.
        _button = new GpioButton(line, isPullUp: activeLow, hasExternalResistor: true, gpio: controller, shouldDispose: false, debounceTime: debounce);
        _reported = IsTurned;
        _button.ButtonDown += OnDown;
        _button.ButtonUp += OnUp;
        controller.RegisterCallbackForPinValueChangedEvent(line, PinEventTypes.Rising | PinEventTypes.Falling, OnEdge);
    }

    public bool IsTurned => _controller.Read(_line) == (_activeLow ? PinValue.Low : PinValue.High);

    public event EventHandler<bool>? Turned;

    private void OnDown(object? sender, EventArgs e) => RestartSettle();

    private void OnUp(object? sender, EventArgs e) => RestartSettle();

    private void OnEdge(object sender, PinValueChangedEventArgs e) => RestartSettle();

    private void RestartSettle() => _settle.Change(_settleDelay, Timeout.InfiniteTimeSpan);

    private void Settle() => Report(IsTurned);

    private void Report(bool turned)
    {
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
        _button.ButtonDown -= OnDown;
        _button.ButtonUp -= OnUp;
        _button.Dispose();
        _settle.Dispose();
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
