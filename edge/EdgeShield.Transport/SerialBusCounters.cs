namespace EdgeShield.Transport;

/// <summary>What a serial bus has seen; read by tests, status and the bench.</summary>
public sealed class SerialBusCounters
{
    private long _transactions;
    private long _transactionTicks;
    private long _requestsSent;
    private long _requestBytes;
    private long _timeouts;
    private long _retries;
    private long _crcErrors;
    private long _wrongUnit;
    private long _droppedBytes;
    private long _unexpectedBytes;
    private long _lateReplies;
    private long _interCharacterViolations;
    private long _queueFull;
    private long _queueTimeouts;
    private long _abandoned;
    private long _breakerOpened;
    private long _breakerRejected;
    private long _broadcasts;
    private long _unavailable;
    private long _lineLost;
    private long _idleBeyondSilenceTicks;

    /// <summary>Replies received and delivered.</summary>
    public long Transactions => Interlocked.Read(ref _transactions);
    /// <summary>Sum over delivered transactions of write-to-reply time, in Stopwatch ticks.</summary>
    public long TransactionTicks => Interlocked.Read(ref _transactionTicks);
    /// <summary>Frames put on the wire (retries included).</summary>
    public long RequestsSent => Interlocked.Read(ref _requestsSent);
    public long RequestBytes => Interlocked.Read(ref _requestBytes);
    /// <summary>Requests answered 0B because no valid reply came (after retries).</summary>
    public long Timeouts => Interlocked.Read(ref _timeouts);
    public long Retries => Interlocked.Read(ref _retries);
    /// <summary>Frames from the addressed unit whose CRC did not check.</summary>
    public long CrcErrors => Interlocked.Read(ref _crcErrors);
    /// <summary>Valid frames from a unit other than the one asked.</summary>
    public long WrongUnit => Interlocked.Read(ref _wrongUnit);
    /// <summary>Bytes dropped while looking for a reply (noise, bad frames).</summary>
    public long DroppedBytes => Interlocked.Read(ref _droppedBytes);
    /// <summary>Bytes that arrived with no transaction waiting for them (a device answering twice, late replies).</summary>
    public long UnexpectedBytes => Interlocked.Read(ref _unexpectedBytes);
    /// <summary>Times bytes arrived during the late-reply guard after a timeout (a device answering late); they were discarded.</summary>
    public long LateReplies => Interlocked.Read(ref _lateReplies);
    /// <summary>Frames broken by a gap above t1.5.</summary>
    public long InterCharacterViolations => Interlocked.Read(ref _interCharacterViolations);
    public long QueueFull => Interlocked.Read(ref _queueFull);
    public long QueueTimeouts => Interlocked.Read(ref _queueTimeouts);
    /// <summary>Requests dropped unsent because their client had gone.</summary>
    public long Abandoned => Interlocked.Read(ref _abandoned);
    public long BreakerOpened => Interlocked.Read(ref _breakerOpened);
    public long BreakerRejected => Interlocked.Read(ref _breakerRejected);
    public long Broadcasts => Interlocked.Read(ref _broadcasts);
    /// <summary>Requests answered 0A because the port was not open.</summary>
    public long Unavailable => Interlocked.Read(ref _unavailable);
    public long LineLost => Interlocked.Read(ref _lineLost);
    /// <summary>
    /// Sum over requests written of the time the line stayed idle after it was free (t3.5 kept) and a
    /// request was waiting, in Stopwatch ticks: the bus's own cost in line time.
    /// </summary>
    public long IdleBeyondSilenceTicks => Interlocked.Read(ref _idleBeyondSilenceTicks);

    internal void CountTransaction(long ticks)
    {
        Interlocked.Increment(ref _transactions);
        Interlocked.Add(ref _transactionTicks, ticks);
    }

    internal void CountRequestSent(int bytes)
    {
        Interlocked.Increment(ref _requestsSent);
        Interlocked.Add(ref _requestBytes, bytes);
    }

    internal void CountTimeout() => Interlocked.Increment(ref _timeouts);
    internal void CountRetry() => Interlocked.Increment(ref _retries);
    internal void CountCrcError() => Interlocked.Increment(ref _crcErrors);
    internal void CountWrongUnit() => Interlocked.Increment(ref _wrongUnit);
    internal void CountDroppedBytes(int count) => Interlocked.Add(ref _droppedBytes, count);
    internal void CountUnexpectedBytes(int count) => Interlocked.Add(ref _unexpectedBytes, count);
    internal void CountLateReply() => Interlocked.Increment(ref _lateReplies);
    internal void CountInterCharacterViolation() => Interlocked.Increment(ref _interCharacterViolations);
    internal void CountQueueFull() => Interlocked.Increment(ref _queueFull);
    internal void CountQueueTimeout() => Interlocked.Increment(ref _queueTimeouts);
    internal void CountAbandoned() => Interlocked.Increment(ref _abandoned);
    internal void CountBreakerOpened() => Interlocked.Increment(ref _breakerOpened);
    internal void CountBreakerRejected() => Interlocked.Increment(ref _breakerRejected);
    internal void CountBroadcast() => Interlocked.Increment(ref _broadcasts);
    internal void CountUnavailable() => Interlocked.Increment(ref _unavailable);
    internal void CountLineLost() => Interlocked.Increment(ref _lineLost);
    internal void CountIdleBeyondSilence(long ticks) => Interlocked.Add(ref _idleBeyondSilenceTicks, Math.Max(0, ticks));
}
