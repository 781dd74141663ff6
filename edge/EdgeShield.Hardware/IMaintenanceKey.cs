namespace EdgeShield.Hardware;

/// <summary>
/// The physical maintenance key switch on the gateway. Debounced: <see cref="Turned"/> reports
/// settled positions, not contact bounce.
/// </summary>
public interface IMaintenanceKey : IDisposable
{
    /// <summary>The position read from the line now (true: the armed position).</summary>
    bool IsTurned { get; }

    /// <summary>Raised with true when the key is turned to the armed position, false when turned back.</summary>
    event EventHandler<bool>? Turned;
}

/// <summary>The three status LEDs on the front of the gateway.</summary>
public enum StatusLed
{
    /// <summary>On while the service runs; blinks with traffic.</summary>
    Run = 0,
    /// <summary>On while there were recent denials or faults.</summary>
    Alarm,
    /// <summary>On while maintenance is armed.</summary>
    Maintenance,
}

/// <summary>The front LEDs. Lighting an LED the gateway does not have does nothing.</summary>
public interface IStatusLeds : IDisposable
{
    void Light(StatusLed led, bool lit);

    /// <summary>What was last set (for tests and the demo's display).</summary>
    bool IsOn(StatusLed led);
}
