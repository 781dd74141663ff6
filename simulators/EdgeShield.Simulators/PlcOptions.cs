namespace EdgeShield.Simulators;

/// <summary>What the PLC does with a request for a unit id it does not serve.</summary>
public enum UnitNotServedBehavior : byte
{
    /// <summary>Answer exception 0x0B (gateway target device failed to respond), as a Modbus TCP gateway does for an absent RTU slave.</summary>
    GatewayException = 0,
    /// <summary>Never answer, as a bus with no such device would.</summary>
    Ignore,
}

/// <summary>Start-up settings of a <see cref="PlcSimulator"/>; runtime knobs live in <see cref="PlcFaults"/>.</summary>
public sealed class PlcOptions
{
    /// <summary>Unit ids served; null (the default) serves all 256.</summary>
    public IReadOnlyCollection<byte>? Units { get; init; }

    /// <summary>How to treat a request for a unit id outside <see cref="Units"/>.</summary>
    public UnitNotServedBehavior UnitNotServed { get; init; }

    /// <summary>Initial value of <see cref="PlcFaults.ResponseDelayMs"/>.</summary>
    public int ResponseDelayMs { get; init; }

    /// <summary>Entries per table (1..65536); addresses at or above it are answered with exception 02.</summary>
    public int TableSize { get; init; } = 65536;

    /// <summary>The one FIFO pointer address that FC 24 accepts (the spec's example, 0x04DE, by default).</summary>
    public ushort FifoPointerAddress { get; init; } = 0x04DE;

    /// <summary>Files 1..FileCount exist for FC 20/21.</summary>
    public int FileCount { get; init; } = 4;

    /// <summary>Records 0..RecordsPerFile-1 exist in each file (the spec allows up to 10000).</summary>
    public int RecordsPerFile { get; init; } = 10000;

    /// <summary>First input register of the sine block (telemetry that moves).</summary>
    public ushort SineStart { get; init; }

    /// <summary>Input registers in the sine block; 0 (the default) keeps every input register at its deterministic value.</summary>
    public int SineCount { get; init; }

    /// <summary>Period of the sine in seconds.</summary>
    public double SinePeriodSeconds { get; init; } = 60;

    /// <summary>Bytes of the per-connection receive buffer (at least 1024).</summary>
    public int ReceiveBufferSize { get; init; } = 16 * 1024;
}

/// <summary>
/// Misbehaviour for gateway tests, settable while the PLC runs. Reads and writes are volatile,
/// so a test may flip a knob from its own thread and the next request sees it.
/// </summary>
public sealed class PlcFaults
{
    private volatile bool _wrongTransactionId;
    private volatile bool _wrongByteCount;
    private volatile bool _closeMidFrame;
    private volatile bool _silent;
    private volatile int _responseDelayMs;

    /// <summary>Answer with the request's transaction id plus one.</summary>
    public bool WrongTransactionId { get => _wrongTransactionId; set => _wrongTransactionId = value; }

    /// <summary>Add 2 to the byte-count byte (second PDU byte) of every normal response; the MBAP length still matches the bytes sent.</summary>
    public bool WrongByteCount { get => _wrongByteCount; set => _wrongByteCount = value; }

    /// <summary>Send the first half of the next response, then close the connection.</summary>
    public bool CloseMidFrame { get => _closeMidFrame; set => _closeMidFrame = value; }

    /// <summary>Count requests but never answer them.</summary>
    public bool Silent { get => _silent; set => _silent = value; }

    /// <summary>Wait this long before sending each batch of responses.</summary>
    public int ResponseDelayMs { get => _responseDelayMs; set => _responseDelayMs = value; }

    /// <summary>Clears every fault (the delay too).</summary>
    public void Reset()
    {
        WrongTransactionId = false;
        WrongByteCount = false;
        CloseMidFrame = false;
        Silent = false;
        ResponseDelayMs = 0;
    }
}
