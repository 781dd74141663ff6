namespace EdgeShield.Policy;

public sealed partial class EdgeShieldConfig
{
    /// <summary>The <c>serial:</c> buses, in file order.</summary>
    public IReadOnlyList<SerialBusConfig> SerialBuses { get; init; } = [];
}

/// <summary>Parity of a serial line.</summary>
public enum LineParity : byte
{
    /// <summary>The Modbus over Serial Line default.</summary>
    Even = 0,
    None,
    Odd,
}

/// <summary>One <c>serial:</c> entry: an RS-485 bus of Modbus RTU devices.</summary>
public sealed record SerialBusConfig
{
    public required string Name { get; init; }
    public required string Device { get; init; }
    public int Baud { get; init; } = 19200;
    public LineParity Parity { get; init; }
    public int StopBits { get; init; } = 1;
    /// <summary><c>response-timeout-ms</c>: from the end of the request on the wire to the end of the reply.</summary>
    public int ResponseTimeoutMs { get; init; } = 300;
    /// <summary><c>turnaround-ms</c>: silence after a broadcast so every device has executed it (spec: 100–200 ms).</summary>
    public int TurnaroundMs { get; init; } = 100;
    /// <summary><c>late-reply-guard-ms</c>: silence kept after an attempt with no valid reply, so a late reply cannot answer the next request; null = the response timeout.</summary>
    public int? LateReplyGuardMs { get; init; }
    /// <summary><c>read-retries</c>: extra attempts for reads without a valid reply; writes never retry.</summary>
    public int ReadRetries { get; init; }
    /// <summary><c>queue-depth</c>: requests waiting for the line over all clients; beyond it, exception 06.</summary>
    public int QueueDepth { get; init; } = 64;
    /// <summary><c>queue-timeout-ms</c>: a request that waited longer for the line is answered 0B and never sent.</summary>
    public int QueueTimeoutMs { get; init; } = 1000;
    /// <summary><c>breaker-failures</c>: consecutive failed transactions that open a unit's circuit breaker.</summary>
    public int BreakerFailures { get; init; } = 3;
    /// <summary><c>breaker-open-ms</c>: first open period of a unit's breaker; doubles per failed probe up to 30 s.</summary>
    public int BreakerOpenMs { get; init; } = 1000;
}

/// <summary>What <c>ReadSerial</c> found: the buses, and their names for <c>serial://NAME</c> checks.</summary>
internal sealed record SerialSection(HashSet<string> Names, List<SerialBusConfig> Buses);
