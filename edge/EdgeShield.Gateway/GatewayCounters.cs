namespace EdgeShield.Gateway;

/// <summary>Live counts of one listener (or of the whole gateway), updated with interlocked adds.</summary>
public sealed class GatewayCounters
{
    private long _allowed;
    private long _denied;
    private long _malformed;
    private long _responses;
    private long _timeouts;
    private long _responseMismatches;
    private long _connections;
    private long _connectionsRejected;
    private long _connectionsEvicted;
    private long _captured;
    private long _capturesDropped;

    /// <summary>Requests forwarded to the PLC (in monitor mode: all well-framed requests).</summary>
    public long Allowed => Interlocked.Read(ref _allowed);
    /// <summary>Requests refused (by policy, by the spec's limits, or by the pending limit).</summary>
    public long Denied => Interlocked.Read(ref _denied);
    /// <summary>Malformed frames: dropped, connection closed.</summary>
    public long Malformed => Interlocked.Read(ref _malformed);
    /// <summary>PLC responses delivered to clients.</summary>
    public long Responses => Interlocked.Read(ref _responses);
    /// <summary>Requests answered 0B (timeout or PLC unreachable).</summary>
    public long Timeouts => Interlocked.Read(ref _timeouts);
    /// <summary>PLC responses dropped because they answered nothing or did not fit their request.</summary>
    public long ResponseMismatches => Interlocked.Read(ref _responseMismatches);
    /// <summary>Client connections accepted.</summary>
    public long Connections => Interlocked.Read(ref _connections);
    /// <summary>Client connections refused by <c>connections-per-source</c> or <c>max-connections</c>.</summary>
    public long ConnectionsRejected => Interlocked.Read(ref _connectionsRejected);
    /// <summary>Silent client connections closed to make room for a new one when the listener was at <c>max-connections</c>.</summary>
    public long ConnectionsEvicted => Interlocked.Read(ref _connectionsEvicted);

    /// <summary>Refused and malformed frames written to the <c>audit.pcap</c> file.</summary>
    public long Captured => Interlocked.Read(ref _captured);
    /// <summary>Refused and malformed frames not written to the <c>audit.pcap</c> file: its queue was full or a write failed.</summary>
    public long CapturesDropped => Interlocked.Read(ref _capturesDropped);

    internal void CountAllowed() => Interlocked.Increment(ref _allowed);
    internal void CountDenied() => Interlocked.Increment(ref _denied);
    internal void CountMalformed() => Interlocked.Increment(ref _malformed);
    internal void CountResponse() => Interlocked.Increment(ref _responses);
    internal void CountTimeout() => Interlocked.Increment(ref _timeouts);
    internal void CountResponseMismatch() => Interlocked.Increment(ref _responseMismatches);
    internal void CountConnection() => Interlocked.Increment(ref _connections);
    internal void CountConnectionRejected() => Interlocked.Increment(ref _connectionsRejected);
    internal void CountConnectionEvicted() => Interlocked.Increment(ref _connectionsEvicted);
    internal void CountCaptured() => Interlocked.Increment(ref _captured);
    internal void CountCaptureDropped() => Interlocked.Increment(ref _capturesDropped);
}
