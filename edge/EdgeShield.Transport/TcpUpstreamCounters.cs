namespace EdgeShield.Transport;

/// <summary>What one Modbus TCP PLC has been sent, by every session on it (gateway clients and the poller).</summary>
public sealed class TcpUpstreamCounters
{
    private long _requestsSent;
    private long _connects;
    private long _connectFailures;
    private long _unreachable;

    /// <summary>Request ADUs written to the PLC's socket.</summary>
    public long RequestsSent => Interlocked.Read(ref _requestsSent);
    /// <summary>Connections opened to the PLC.</summary>
    public long Connects => Interlocked.Read(ref _connects);
    /// <summary>Connection attempts that failed (refused, timed out).</summary>
    public long ConnectFailures => Interlocked.Read(ref _connectFailures);
    /// <summary>Requests not sent because the PLC could not be reached (connect failed, or inside the backoff).</summary>
    public long Unreachable => Interlocked.Read(ref _unreachable);

    internal void CountRequestSent() => Interlocked.Increment(ref _requestsSent);
    internal void CountConnect() => Interlocked.Increment(ref _connects);
    internal void CountConnectFailure() => Interlocked.Increment(ref _connectFailures);
    internal void CountUnreachable() => Interlocked.Increment(ref _unreachable);
}
