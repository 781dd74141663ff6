namespace EdgeShield.Simulators;

/// <summary>What an <see cref="Iec104PlcSimulator"/> serves and its APCI parameters (docs/IEC104.md "APCI").</summary>
public sealed class Iec104PlcOptions
{
    /// <summary>The station's common address (1..65534); 0xFFFF (global) is accepted for interrogations and clock sync.</summary>
    public ushort CommonAddress { get; init; } = 1;

    /// <summary>Every this many milliseconds one monitored point changes and is sent with cause 3 (0 = never).</summary>
    public int SpontaneousMs { get; init; } = 1000;

    /// <summary>
    /// One redundancy group: a connection that sends STARTDT act closes the connection that was active (as
    /// lib60870's CS104_MODE_SINGLE_REDUNDANCY_GROUP). Otherwise every connection may be active at once.
    /// </summary>
    public bool SingleGroup { get; init; }

    /// <summary>Execute commands (C_SC, C_DC, C_RC) without a select before; by default select-before-operate is required.</summary>
    public bool DirectOperate { get; init; }

    /// <summary>How long a confirmed select stays armed.</summary>
    public TimeSpan SelectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>k: unacknowledged I-frames the station sends before it waits.</summary>
    public int K { get; init; } = 12;

    /// <summary>w: I-frames the station receives before it acknowledges with an S-frame.</summary>
    public int W { get; init; } = 8;

    /// <summary>t1: an I-frame or TESTFR act unacknowledged this long closes the connection.</summary>
    public TimeSpan T1 { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>t2: received I-frames are acknowledged at the latest after this long.</summary>
    public TimeSpan T2 { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>t3: after this long without a frame received, the station sends TESTFR act.</summary>
    public TimeSpan T3 { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Where the station says why it closed a connection (sequence error, malformed frame, t1); null = silent.</summary>
    public Action<string>? Log { get; init; }
}
