namespace EdgeShield.Transport;

/// <summary>Parity of a serial line.</summary>
public enum SerialParity : byte
{
    /// <summary>The spec's default for RTU.</summary>
    Even = 0,
    None,
    Odd,
}

/// <summary>One RS-485 bus: the line settings and how the bus shares itself among its clients.</summary>
public sealed record SerialBusOptions
{
    /// <summary>The name <c>serial://NAME</c> refers to.</summary>
    public required string Name { get; init; }
    /// <summary>The device, such as <c>/dev/ttyS1</c> or a pty.</summary>
    public required string Device { get; init; }
    public int Baud { get; init; } = 19200;
    public SerialParity Parity { get; init; }
    /// <summary>1 or 2.</summary>
    public int StopBits { get; init; } = 1;
    /// <summary>How long a device has to start and finish its reply, counted from the moment the request has left the wire.</summary>
    public TimeSpan ResponseTimeout { get; init; } = TimeSpan.FromMilliseconds(300);
    /// <summary>Silence after a broadcast before the next request, so that every device has executed it.</summary>
    public TimeSpan TurnaroundDelay { get; init; } = TimeSpan.FromMilliseconds(100);
    /// <summary>Extra attempts for a read that got no valid reply; writes are never retried.</summary>
    public int ReadRetries { get; init; }
    /// <summary>Requests waiting for the line, over all clients; one more is answered 06.</summary>
    public int QueueDepth { get; init; } = 64;
    /// <summary>A request that waited longer than this for the line is answered 0B and never sent.</summary>
    public TimeSpan QueueTimeout { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Consecutive failed transactions that open a unit's circuit breaker.</summary>
    public int BreakerFailures { get; init; } = 3;
    /// <summary>How long a unit's breaker first stays open; doubles on each failed probe, up to 30 s.</summary>
    public TimeSpan BreakerOpen { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// After an attempt that got no valid reply, how long the line must stay quiet before the next
    /// request; bytes arriving in it are a late reply and are discarded. RTU has no transaction id,
    /// so a late reply let through would answer the next request. Null: the response timeout, so a
    /// reply that starts up to twice the response timeout after its request is never taken for another.
    /// </summary>
    public TimeSpan? LateReplyGuard { get; init; }

    /// <summary><see cref="LateReplyGuard"/>, or the response timeout when it is not set.</summary>
    public TimeSpan EffectiveLateReplyGuard => LateReplyGuard ?? ResponseTimeout;

    /// <summary>Bits per character: start, 8 data, parity, stop.</summary>
    public int BitsPerCharacter => 1 + 8 + (Parity == SerialParity.None ? 0 : 1) + StopBits;
}
