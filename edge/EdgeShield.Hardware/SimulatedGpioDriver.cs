using System.Device.Gpio;

namespace EdgeShield.Hardware;

/// <summary>
/// An in-memory GPIO chip (System.Device.Gpio 4.2.0 ships none that has pins): backs
/// <c>profile: simulated</c>, the demo and the tests. Outputs keep what was written; inputs take
/// the level that <see cref="SetInputLevel"/> drives from outside, as a wire would, and raise the
/// edge callbacks that <c>GpioButton</c> listens to. Pull-ups and pull-downs set the idle level.
/// </summary>
public sealed class SimulatedGpioDriver : GpioDriver
{
    private const int Lines = 1024;
    private readonly object _gate = new();
    private readonly Dictionary<int, Line> _open = [];
    private readonly Dictionary<int, PinValue> _external = [];

    private sealed class Line
    {
        public PinMode Mode = PinMode.Input;
        public PinValue Value = PinValue.Low;
        public readonly List<(PinEventTypes Types, PinChangeEventHandler Handler)> Callbacks = [];
    }

    protected override int PinCount => Lines;

    /// <summary>Drives input line <paramref name="pin"/> from outside (a key, a wire). Raises edge callbacks on a change.</summary>
    public void SetInputLevel(int pin, PinValue level)
    {
        PinChangeEventHandler[] handlers = [];
        PinEventTypes edge = PinEventTypes.None;
        lock (_gate)
        {
            _external[pin] = level;
            if (_open.TryGetValue(pin, out var line) && line.Mode is PinMode.Input or PinMode.InputPullUp or PinMode.InputPullDown && line.Value != level)
            {
                line.Value = level;
                edge = level == PinValue.High ? PinEventTypes.Rising : PinEventTypes.Falling;
                handlers = [.. line.Callbacks.Where(c => (c.Types & edge) != 0).Select(c => c.Handler)];
            }
        }
        foreach (var handler in handlers)
        {
            handler(this, new PinValueChangedEventArgs(edge, pin));
        }
    }

    /// <summary>The level of an open line (what an LED shows, what an input reads).</summary>
    public PinValue Level(int pin)
    {
        lock (_gate)
        {
            return _open.TryGetValue(pin, out var line) ? line.Value : PinValue.Low;
        }
    }

    protected override void OpenPin(int pinNumber)
    {
        CheckPin(pinNumber);
        lock (_gate)
        {
            _open.TryAdd(pinNumber, new Line());
        }
    }

    protected override void ClosePin(int pinNumber)
    {
        lock (_gate)
        {
            _open.Remove(pinNumber);
        }
    }

    protected override void SetPinMode(int pinNumber, PinMode mode)
    {
        lock (_gate)
        {
            var line = Get(pinNumber);
            line.Mode = mode;
            if (mode != PinMode.Output)
            {
                line.Value = _external.TryGetValue(pinNumber, out var driven) ? driven
                    : mode == PinMode.InputPullUp ? PinValue.High : PinValue.Low;
            }
        }
    }

    protected override PinMode GetPinMode(int pinNumber)
    {
        lock (_gate)
        {
            return Get(pinNumber).Mode;
        }
    }

    protected override bool IsPinModeSupported(int pinNumber, PinMode mode) =>
        mode is PinMode.Input or PinMode.InputPullUp or PinMode.InputPullDown or PinMode.Output;

    protected override PinValue Read(int pinNumber)
    {
        lock (_gate)
        {
            return Get(pinNumber).Value;
        }
    }

    protected override void Write(int pinNumber, PinValue value)
    {
        lock (_gate)
        {
            var line = Get(pinNumber);
            if (line.Mode == PinMode.Output)
            {
                line.Value = value;
            }
        }
    }

    protected override WaitForEventResult WaitForEvent(int pinNumber, PinEventTypes eventTypes, CancellationToken cancellationToken)
    {
        var done = new ManualResetEventSlim();
        PinEventTypes seen = PinEventTypes.None;
        void Handler(object sender, PinValueChangedEventArgs e)
        {
            seen = e.ChangeType;
            done.Set();
        }
        AddCallbackForPinValueChangedEvent(pinNumber, eventTypes, Handler);
        try
        {
            done.Wait(cancellationToken);
            return new WaitForEventResult { EventTypes = seen, TimedOut = false };
        }
        catch (OperationCanceledException)
        {
            return new WaitForEventResult { EventTypes = PinEventTypes.None, TimedOut = true };
        }
        finally
        {
            RemoveCallbackForPinValueChangedEvent(pinNumber, Handler);
            done.Dispose();
        }
    }

    protected override void AddCallbackForPinValueChangedEvent(int pinNumber, PinEventTypes eventTypes, PinChangeEventHandler callback)
    {
        lock (_gate)
        {
            Get(pinNumber).Callbacks.Add((eventTypes, callback));
        }
    }

    protected override void RemoveCallbackForPinValueChangedEvent(int pinNumber, PinChangeEventHandler callback)
    {
        lock (_gate)
        {
            Get(pinNumber).Callbacks.RemoveAll(c => c.Handler == callback);
        }
    }

    private Line Get(int pinNumber) =>
        _open.TryGetValue(pinNumber, out var line) ? line : throw new InvalidOperationException($"GPIO line {pinNumber} is not open");

    private static void CheckPin(int pinNumber)
    {
        if (pinNumber is < 0 or >= Lines)
        {
            throw new ArgumentOutOfRangeException(nameof(pinNumber), pinNumber, $"the simulated chip has lines 0..{Lines - 1}");
        }
    }
}
