namespace EdgeShield.Simulators;

/// <summary>What an <see cref="S7PlcSimulator"/> serves.</summary>
public sealed class S7PlcOptions
{
    /// <summary>The first DB number; DBs <c>FirstDb .. FirstDb + DbCount - 1</c> exist.</summary>
    public int FirstDb { get; init; } = 1;

    /// <summary>How many DBs exist (DB1..DB10 by default).</summary>
    public int DbCount { get; init; } = 10;

    /// <summary>Bytes in each DB; initial value of byte i is i mod 256 (DB1) or 0 (the others).</summary>
    public int DbSize { get; init; } = 256;

    /// <summary>Bytes of the flag (M), input (I) and output (Q) areas each.</summary>
    public int AreaSize { get; init; } = 256;

    /// <summary>
    /// The largest PDU the CPU negotiates in setup-communication (S7-300: 240, S7-400: 480 or 960); the
    /// client's smaller value wins.
    /// </summary>
    public int MaxPduSize { get; init; } = 480;

    /// <summary>The largest AmQ (parallel jobs) the CPU negotiates.</summary>
    public int MaxAmq { get; init; } = 8;

    /// <summary>The largest TPDU size code the CPU confirms in its COTP CC (10 = 1024 bytes, what S7-300/400 CPUs confirm).</summary>
    public byte MaxTpduSizeCode { get; init; } = 10;

    /// <summary>
    /// When set, the CPU is protected: stop, PI services, upload and download are refused (D241, "need
    /// password") on a connection until the userdata security job sends this password (at most 8 characters).
    /// </summary>
    public string? Password { get; init; }

    /// <summary>Receive buffer per connection (a whole TPKT packet must fit).</summary>
    public int ReceiveBufferSize { get; init; } = 16 * 1024;
}

/// <summary>The operating state of the simulated CPU.</summary>
public enum S7CpuState : byte
{
    /// <summary>RUN (SZL 0x0424 mode 08).</summary>
    Run = 0,
    /// <summary>STOP (SZL 0x0424 mode 04), after plc-stop.</summary>
    Stop,
}
