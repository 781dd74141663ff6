using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Policy;
using EdgeShield.Transport;

namespace EdgeShield.Gateway;

/// <summary>
/// One client connection on a listener, whatever the protocol: the receive loop, the send lock, the
/// upstream session, the limits the sweeper enforces (frame, idle and send-stall timeouts) and the close.
/// It hosts the <see cref="IProtocolSession"/> of the listener's <c>protocol:</c>, which frames, judges,
/// matches and answers.
/// </summary>
/// <remarks>
/// Memory per connection is fixed: one receive buffer, the session's small reply buffers and its pending
/// table. A client that does not read its responses stalls its own send, then its own receive loop, and
/// TCP pushes back on it; nothing queues in the gateway.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The semaphore and token source hold no OS handle unless their wait handles are asked for, which they are not; other flows may still touch them briefly after close, so they are left to the GC.")]
internal sealed class ClientConnection
{
    // Holds ~15 maximum-size Modbus ADUs; a framer needs at most one frame to make progress.
    private const int ReceiveBufferSize = 4096;

    private readonly Socket _client;
    private readonly EpollSocketReader _clientReader;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _closed = new();
    private readonly byte[] _receiveBuffer;
    private readonly IProtocolSession _session;
    // When the send of a request to the PLC began, while it has not finished (0: none): a PLC that
    // stops reading stalls it, and the sweeper aborts that connection after response-timeout.
    private long _upstreamSendStarted;
    private readonly long _acceptedAt = Stopwatch.GetTimestamp();
    private long _lastActivity;
    // When the first byte of a frame not yet complete arrived (0: none pending): frame-timeout.
    private long _frameStarted;
    private int _closing;
    private int _sweeping;
    // 1 once a request of this connection was allowed (forwarded): a listener at max-connections never closes it for a newcomer.
    private int _hadAllowed;

    public ClientConnection(GatewayListener listener, Socket client, IPEndPoint remote, IUpstream upstream, Func<ClientConnection, IUpstream, IProtocolSession> session)
    {
        Listener = listener;
        _client = client;
        Source = SourceAddress.From(remote.Address);
        SourcePort = (ushort)remote.Port;
        Tap = ForensicsTap.For(listener, client);
        _session = session(this, upstream);
        Upstream = upstream.OpenSession(_session, _session.ResponseFramer, Source.ToString());
        _clientReader = new EpollSocketReader(client);
        _receiveBuffer = ArrayPool<byte>.Shared.Rent(ReceiveBufferSize);
        _lastActivity = Stopwatch.GetTimestamp();
    }

    public GatewayListener Listener { get; }

    public SourceAddress Source { get; }

    public ushort SourcePort { get; }

    /// <summary>The session's conversation with the PLC.</summary>
    public IUpstreamSession Upstream { get; }

    /// <summary>audit.pcap for this connection; null when off.</summary>
    public ForensicsTap? Tap { get; }

    /// <summary>Cancelled when the connection closes.</summary>
    public CancellationToken Closed => _closed.Token;

    /// <summary>When the receive loop's last read returned (<see cref="Stopwatch"/> ticks). Only the receive loop's flow reads it.</summary>
    public long ReadAt { get; private set; }

    /// <summary>
    /// Whether that read waited for the client's bytes (they arrived then: epoll announced them to a read
    /// already waiting) or found them already queued (they arrived while the loop was busy, e.g. connecting
    /// to the PLC: when is unknown).
    /// </summary>
    public bool ReadWaited { get; private set; }

    /// <summary>How far into the client's stream the frame being inspected starts: its TCP sequence number in audit.pcap.</summary>
    public long StreamOffset { get; private set; }

    /// <summary>When the connection was accepted (<see cref="Stopwatch"/> ticks).</summary>
    public long AcceptedAt => _acceptedAt;

    /// <summary>
    /// No request of this connection has been allowed since it connected (it is silent, half-open, or
    /// every request was refused) and it is not already closing: what a listener at
    /// <c>max-connections</c> may close to admit a new client.
    /// </summary>
    public bool NeverAllowed => Volatile.Read(ref _hadAllowed) == 0 && !IsClosing;

    /// <summary>Closing or closed: no longer counted against <c>max-connections</c>.</summary>
    public bool IsClosing => Volatile.Read(ref _closing) != 0;

    /// <summary>A request of this connection was allowed: it is never closed for a newcomer.</summary>
    public void MarkAllowed() => Volatile.Write(ref _hadAllowed, 1);

    /// <summary>Closes this connection, which never had a request allowed, to make room for <paramref name="newcomer"/>, and audits it.</summary>
    public void Evict(SourceAddress newcomer)
    {
        Listener.Audit.Write(Event(AuditEventKind.ConnectionLimit, -1, -1, $"max-connections reached: closed, no request allowed since it connected, to admit {newcomer}") with { ConnectionClosed = true });
        _ = CloseAsync();
    }

    public async Task RunAsync()
    {
        int filled = 0;
        try
        {
            while (!_closed.IsCancellationRequested)
            {
                var receiving = _clientReader.ReceiveAsync(_receiveBuffer.AsMemory(filled));
                // A read that had to wait for epoll got bytes that arrived after it began; one that completed at
                // once found them queued while the loop was busy with earlier frames.
                bool waited = !receiving.IsCompleted;
                int read = await receiving;
                if (read == 0)
                {
                    return;
                }
                long readAt = Stopwatch.GetTimestamp();
                ReadAt = readAt;
                ReadWaited = waited;
                Volatile.Write(ref _lastActivity, readAt);
                filled += read;
                int offset = 0;
                while (offset < filled)
                {
                    var step = _session.Inspect(_receiveBuffer.AsSpan(offset, filled - offset));
                    switch (step.Action)
                    {
                        case ClientAction.NeedMoreData:
                            goto readMore;
                        case ClientAction.Close:
                            return;
                        case ClientAction.Reply:
                            await _session.ReplyAsync(step);
                            break;
                        case ClientAction.ReplyAndClose:
                            await _session.ReplyAsync(step);
                            return;
                        case ClientAction.Forward:
                            await _session.ForwardAsync(_receiveBuffer.AsMemory(offset, step.Consumed), step);
                            break;
                    }
                    offset += step.Consumed;
                    StreamOffset += step.Consumed;
                }
            readMore:
                if (offset > 0)
                {
                    _receiveBuffer.AsSpan(offset, filled - offset).CopyTo(_receiveBuffer);
                    filled -= offset;
                }
                // A remainder after a complete frame is a new frame, begun in this read.
                if (filled == 0)
                {
                    Volatile.Write(ref _frameStarted, 0);
                }
                else if (offset > 0 || Volatile.Read(ref _frameStarted) == 0)
                {
                    Volatile.Write(ref _frameStarted, readAt);
                }
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away or we closed it.
        }
        finally
        {
            await CloseAsync();
            ArrayPool<byte>.Shared.Return(_receiveBuffer);
        }
    }

    /// <summary>
    /// Sends <paramref name="frame"/> to the PLC, connecting first if needed; while the send is stalled (a PLC
    /// that stopped reading), the sweeper aborts that PLC connection after response-timeout.
    /// </summary>
    /// <returns>As <see cref="IUpstreamSession.SendAsync"/>: the connection generation, 0, or -1.</returns>
    public ValueTask<int> SendUpstreamAsync(ReadOnlyMemory<byte> frame)
    {
        var sending = Upstream.SendAsync(frame, _closed.Token);
        if (sending.IsCompleted)
        {
            // The common case: connected, and the kernel took the whole frame at once. Nothing can stall.
            return sending;
        }
        // Connecting, or the PLC's window is full: from now on the sweeper watches this send (a few
        // microseconds after it began, which no response-timeout can notice).
        Volatile.Write(ref _upstreamSendStarted, Stopwatch.GetTimestamp());
        return AwaitUpstreamSendAsync(sending);
    }

    private async ValueTask<int> AwaitUpstreamSendAsync(ValueTask<int> sending)
    {
        try
        {
            return await sending;
        }
        finally
        {
            Volatile.Write(ref _upstreamSendStarted, 0);
        }
    }

    /// <summary>
    /// Called by the listener's sweeper: closes idle connections and those that began a frame and did not
    /// finish it within frame-timeout, aborts a stalled PLC send, then lets the session answer its timed-out
    /// requests.
    /// </summary>
    public void Sweep(long now, long idleTicks, long frameTicks)
    {
        long frameStarted = Volatile.Read(ref _frameStarted);
        if (frameStarted != 0 && now - frameStarted > frameTicks)
        {
            Listener.Audit.Write(Event(AuditEventKind.FrameTimeout, -1, -1, "frame not complete within frame-timeout") with { ConnectionClosed = true });
            _ = CloseAsync();
            return;
        }
        long sendStarted = Volatile.Read(ref _upstreamSendStarted);
        if (sendStarted != 0 && ClientHungUp())
        {
            // The receive loop waits on the PLC (a connect, a stalled send) and cannot see the client
            // leave: close now, which cancels that wait; a connect given up this way is no PLC failure.
            _ = CloseAsync();
            return;
        }
        if (sendStarted != 0 && now - sendStarted > Listener.ResponseTimeoutTicks)
        {
            // The PLC stopped reading (its window is closed): its connection is dropped with what it
            // has not read, the stalled send returns and its client gets the protocol's failure answer;
            // the next request reconnects.
            Listener.Audit.Write(Event(AuditEventKind.UpstreamLost, -1, -1, "PLC did not take a request within response-timeout (not reading): connection dropped"));
            Volatile.Write(ref _upstreamSendStarted, 0);
            Upstream.Abort();
        }
        if (now - Volatile.Read(ref _lastActivity) > idleTicks)
        {
            Listener.Audit.Write(Event(AuditEventKind.IdleTimeout, -1, -1, "no traffic for idle-timeout") with { ConnectionClosed = true });
            _ = CloseAsync();
            return;
        }
        if (_session.HasPending && Interlocked.Exchange(ref _sweeping, 1) == 0)
        {
            _ = AnswerExpiredAsync(now);
        }
    }

    /// <summary>One sweep of the session's timed-out requests at a time; the sweeper thread never waits for it.</summary>
    private async Task AnswerExpiredAsync(long now)
    {
        try
        {
            await _session.AnswerExpiredAsync(now);
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }

    /// <summary>The client's end of stream (or an error) is waiting with nothing before it.</summary>
    private bool ClientHungUp()
    {
        try
        {
            return _client.Poll(0, SelectMode.SelectRead) && _client.Available == 0;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }

    /// <summary>Sends <paramref name="data"/> to the client under the send lock; a failure closes the connection.</summary>
    public ValueTask SendToClientAsync(ReadOnlyMemory<byte> data)
    {
        if (_closed.IsCancellationRequested)
        {
            return ValueTask.CompletedTask;
        }
        // The common case: nobody else is sending, and the kernel takes the whole answer at once.
        return _sendLock.Wait(0) ? SendHoldingLock(data) : SendToClientSlowAsync(data);
    }

    /// <summary>
    /// Holding the send lock: one <c>send(2)</c>; what the client's window did not take is awaited. The lock is
    /// released either way; a failure closes the connection.
    /// </summary>
    private ValueTask SendHoldingLock(ReadOnlyMemory<byte> data)
    {
        int sent;
        try
        {
            sent = NonBlockingSend.Send(_client, data.Span);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            _sendLock.Release();
            _ = CloseAsync();
            return ValueTask.CompletedTask;
        }
        if (sent == data.Length)
        {
            Sent();
            _sendLock.Release();
            return ValueTask.CompletedTask;
        }
        return SendRestAsync(data[sent..]);
    }

    /// <summary>Sends what the client's window did not take, holding the send lock the caller took; releases it.</summary>
    private async ValueTask SendRestAsync(ReadOnlyMemory<byte> rest)
    {
        try
        {
            await SendLockedAsync(rest);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            _ = CloseAsync();
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async ValueTask SendToClientSlowAsync(ReadOnlyMemory<byte> data)
    {
        try
        {
            await _sendLock.WaitAsync(_closed.Token);
            try
            {
                await SendLockedAsync(data);
            }
            finally
            {
                _sendLock.Release();
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            _ = CloseAsync();
        }
    }

    /// <summary>
    /// Sends what <paramref name="reply"/> writes into <paramref name="buffer"/>, writing it only while the send
    /// lock is held: flows that share one reply buffer (upstream loops, the sweeper) never overwrite each other.
    /// </summary>
    public ValueTask SendToClientAsync<TReply>(TReply reply, byte[] buffer)
        where TReply : struct, IClientReply
    {
        if (_closed.IsCancellationRequested)
        {
            return ValueTask.CompletedTask;
        }
        if (!_sendLock.Wait(0))
        {
            return SendToClientSlowAsync(reply, buffer);
        }
        int length;
        try
        {
            length = reply.Write(buffer);
        }
        catch
        {
            _sendLock.Release();
            throw;
        }
        return SendHoldingLock(buffer.AsMemory(0, length));
    }

    private async ValueTask SendToClientSlowAsync<TReply>(TReply reply, byte[] buffer)
        where TReply : struct, IClientReply
    {
        try
        {
            await _sendLock.WaitAsync(_closed.Token);
            try
            {
                int length = reply.Write(buffer);
                await SendLockedAsync(buffer.AsMemory(0, length));
            }
            finally
            {
                _sendLock.Release();
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            _ = CloseAsync();
        }
    }

    /// <summary>Sends while holding the send lock: whole at once in the common case; the runtime waits for the client's window otherwise.</summary>
    private async ValueTask SendLockedAsync(ReadOnlyMemory<byte> data)
    {
        data = data[NonBlockingSend.Send(_client, data.Span)..];
        while (!data.IsEmpty)
        {
            int sent = await _client.SendAsync(data, SocketFlags.None, _closed.Token);
            data = data[sent..];
        }
        Sent();
    }

    /// <summary>
    /// An answer went out: traffic, for idle-timeout. Stamped with the sweeper's last tick (at most 50 ms old)
    /// rather than a clock read per answer; the receive loop's reads are stamped exactly.
    /// </summary>
    private void Sent()
    {
        long tick = Listener.LastSweep;
        if (tick > Volatile.Read(ref _lastActivity))
        {
            Volatile.Write(ref _lastActivity, tick);
        }
    }

    public async Task CloseAsync()
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }
        _closed.Cancel();
        _clientReader.Dispose();
        Listener.ReleaseSource(this);
        try
        {
            _client.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        _client.Dispose();
        await Upstream.DisposeAsync();
        Listener.SessionClosed(this);
    }

    /// <summary>The fields every event of this connection carries.</summary>
    public AuditEvent Event(AuditEventKind kind, short unit, short functionCode, string reason) => new()
    {
        Time = DateTime.UtcNow,
        Kind = kind,
        Listener = Listener.Config.Name,
        Source = Source,
        SourcePort = SourcePort,
        Unit = unit,
        FunctionCode = functionCode,
        Reason = reason,
        Count = 1,
    };
}

/// <summary>An answer a session writes into a shared buffer only once it holds the send lock (a struct: no allocation).</summary>
internal interface IClientReply
{
    /// <summary>Writes the answer into <paramref name="destination"/>; returns its length.</summary>
    int Write(Span<byte> destination);
}
