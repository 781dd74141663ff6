using EdgeShield.Protocols;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Transport;

/// <summary>
/// A way to reach one PLC (or one serial bus of PLCs). It hands out sessions; each session moves whole
/// frames of one protocol to the PLC and back (delimited by the response framer it was opened with),
/// and knows no policy.
/// </summary>
public interface IUpstream : IAsyncDisposable
{
    /// <summary>For events and logs, e.g. <c>tcp://10.10.0.11:502</c>.</summary>
    string Description { get; }

    /// <summary>
    /// Opens a session whose responses, delimited by <paramref name="responseFramer"/>, go to
    /// <paramref name="receiver"/>. It connects lazily, on the first send. <paramref name="source"/> is the
    /// client it serves (an IP address, or "poller"): a shared medium such as a serial bus shares itself
    /// fairly per source, not per connection.
    /// </summary>
    /// <exception cref="ArgumentException">The upstream cannot carry that protocol (a serial bus carries Modbus only).</exception>
    IUpstreamSession OpenSession(IUpstreamReceiver receiver, IStreamFramer responseFramer, string source);

    /// <summary>A Modbus session (MBAP-framed answers) for <paramref name="source"/>.</summary>
    IUpstreamSession OpenSession(IUpstreamReceiver receiver, string source = "") => OpenSession(receiver, MbapStreamFramer.Instance, source);

    /// <summary>
    /// The longest time after <see cref="IUpstreamSession.SendAsync"/> returns in which this upstream may
    /// still answer on its own (a serial bus answers its timeouts itself, after retries); a caller's own
    /// response timeout should not be shorter. Zero when the upstream does not answer on its own.
    /// </summary>
    TimeSpan ResponseWindow => TimeSpan.Zero;
}

/// <summary>One conversation with the PLC, owned by one client session of the gateway (or by the poller).</summary>
public interface IUpstreamSession : IAsyncDisposable
{
    /// <summary>
    /// Sends one request ADU, connecting first if needed. The ADU's bytes are not used after the
    /// returned task completes.
    /// </summary>
    /// <returns>The connection generation the request went out on (see <see cref="IUpstreamReceiver.OnUpstreamLost"/>),
    /// 0 when it was sent and no response will ever come (an RTU broadcast), or -1 if the PLC could not be reached.
    /// An upstream may also answer by itself (an exception response through <see cref="IUpstreamReceiver.OnResponseAsync"/>),
    /// even before this returns. Calls on one session must not overlap.</returns>
    ValueTask<int> SendAsync(ReadOnlyMemory<byte> adu, CancellationToken cancellationToken);

    /// <summary>
    /// Drops the current connection at once, discarding what it has not yet sent (a PLC that stopped
    /// reading must never receive, late, a request its client was answered 0B for). A send waiting on it
    /// returns -1; the next send reconnects. Upstreams whose sends cannot stall ignore it.
    /// </summary>
    void Abort()
    {
    }
}

/// <summary>Why an upstream connection ended.</summary>
public enum UpstreamLoss : byte
{
    /// <summary>The PLC closed the connection (restart, its own idle timeout).</summary>
    Closed = 0,
    /// <summary>A socket error (reset, unreachable).</summary>
    Error,
    /// <summary>The PLC sent bytes its protocol's framer could not delimit; the connection was closed by us.</summary>
    InvalidFraming,
}

/// <summary>What a session delivers back to its owner.</summary>
public interface IUpstreamReceiver
{
    /// <summary>
    /// A complete frame from the PLC, as the response framer delimited it (an MBAP ADU, a TPKT packet). <paramref name="adu"/> is valid only until the task completes;
    /// the session reads no further until then (back-pressure from a slow client reaches the PLC socket, not memory).
    /// </summary>
    ValueTask OnResponseAsync(Memory<byte> adu, int generation);

    /// <summary>
    /// Every complete frame of one read from the PLC has been delivered through <see cref="OnResponseAsync"/>
    /// (the start of a frame may still wait for the next read). A receiver that collects what those frames
    /// produce can send it now, in one write. The TCP upstream calls it after each read that delivered at least one
    /// frame, on the same flow, before it reads again; a serial bus (Modbus only) does not, so a receiver that holds
    /// frames back until this call must be opened on a TCP upstream.
    /// </summary>
    ValueTask OnReadCompleteAsync(int generation) => ValueTask.CompletedTask;

    /// <summary>
    /// The connection of <paramref name="generation"/> is gone; requests sent on it will get no answer.
    /// With <see cref="UpstreamLoss.InvalidFraming"/>, <paramref name="fault"/> is what the response framer reported.
    /// </summary>
    ValueTask OnUpstreamLost(int generation, UpstreamLoss loss, FrameFault fault);
}
