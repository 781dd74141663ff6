using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Protocols;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Transport;

/// <summary>
/// A PLC reached over Modbus TCP. Every gateway client gets its own TCP session to the PLC,
/// so the PLC sees one connection per client, as it would without the gateway, and a slow or
/// hostile client cannot stall another's requests. Failed connects back off (per PLC, shared by all
/// sessions) so that a dead PLC is not hammered by every client at once.
/// </summary>
public sealed class TcpUpstream : IUpstream
{
    private static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);

    private readonly object _backoffGate = new();
    private long _retryNotBefore;
    private TimeSpan _backoff = MinBackoff;

    public TcpUpstream(string host, int port, TimeSpan connectTimeout)
    {
        Host = host;
        Port = port;
        ConnectTimeout = connectTimeout;
    }

    public string Host { get; }
    public int Port { get; }
    public TimeSpan ConnectTimeout { get; }
    public string Description => $"tcp://{Host}:{Port}";

    /// <summary>Counts over every session on this PLC: the gateway's clients and the telemetry poller.</summary>
    public TcpUpstreamCounters Counters { get; } = new();

    public IUpstreamSession OpenSession(IUpstreamReceiver receiver, IStreamFramer responseFramer, string source)
    {
        ArgumentNullException.ThrowIfNull(receiver);
        ArgumentNullException.ThrowIfNull(responseFramer);
        return new TcpUpstreamSession(this, receiver, responseFramer);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>True while a recent connect failure says not to try yet.</summary>
    internal bool InBackoff()
    {
        lock (_backoffGate)
        {
            return Stopwatch.GetTimestamp() < _retryNotBefore;
        }
    }

    internal void ConnectFailed()
    {
        lock (_backoffGate)
        {
            _retryNotBefore = Stopwatch.GetTimestamp() + (long)(_backoff.TotalSeconds * Stopwatch.Frequency);
            _backoff = _backoff * 2 > MaxBackoff ? MaxBackoff : _backoff * 2;
        }
    }

    internal void ConnectSucceeded()
    {
        lock (_backoffGate)
        {
            _retryNotBefore = 0;
            _backoff = MinBackoff;
        }
    }

    /// <summary>A connected socket and its reader on <paramref name="loop"/>, or null (in backoff, or the connect failed).</summary>
    internal async ValueTask<(Socket Socket, EpollSocketReader Reader)?> ConnectAsync(EpollLoop loop, CancellationToken cancellationToken)
    {
        if (InBackoff())
        {
            return null;
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ConnectTimeout);
        Socket? socket = null;
        try
        {
            var address = IPAddress.TryParse(Host, out var literal) ? literal
                : (await Dns.GetHostAddressesAsync(Host, timeout.Token)).FirstOrDefault() ?? throw new SocketException((int)SocketError.HostNotFound);
            socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            var reader = await EpollSocketReader.ConnectAsync(socket, new IPEndPoint(address, Port), loop, timeout.Token);
            ConnectSucceeded();
            Counters.CountConnect();
            return (socket, reader);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            socket?.Dispose();
            // The caller gave up (its client closed) while the connect ran: that says nothing about the
            // PLC, so it neither counts as a failure nor starts a backoff that other clients would wait out.
            if (!cancellationToken.IsCancellationRequested)
            {
                ConnectFailed();
                Counters.CountConnectFailure();
            }
            return null;
        }
    }
}

/// <summary>One client's TCP connection to the PLC; reconnects on the next send after a loss.</summary>
internal sealed class TcpUpstreamSession : IUpstreamSession
{
    // A few maximum-size Modbus ADUs (260 bytes); a TPKT packet the PLC sends is bounded by the PDU size
    // the gateway negotiated, and the framer says where each ends.
    private const int ReceiveBufferSize = 4096;

    private readonly TcpUpstream _upstream;
    private readonly IUpstreamReceiver _receiver;
    private readonly IStreamFramer _framer;
    private readonly SemaphoreSlim _connectGate = new(1, 1);
    private readonly CancellationTokenSource _disposed = new();
    private Socket? _socket;
    private int _generation;

    public TcpUpstreamSession(TcpUpstream upstream, IUpstreamReceiver receiver, IStreamFramer framer)
    {
        _upstream = upstream;
        _receiver = receiver;
        _framer = framer;
    }

    public ValueTask<int> SendAsync(ReadOnlyMemory<byte> adu, CancellationToken cancellationToken)
    {
        var socket = Volatile.Read(ref _socket);
        int generation = Volatile.Read(ref _generation);
        if (socket is null)
        {
            return ConnectAndSendAsync(adu, cancellationToken);
        }
        int sent;
        try
        {
            // Whole at once in the common case, without an async step; the runtime waits for the PLC's window otherwise.
            sent = NonBlockingSend.Send(socket, adu.Span);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The receive loop sees the same failure and reports the loss.
            return new ValueTask<int>(-1);
        }
        if (sent == adu.Length)
        {
            _upstream.Counters.CountRequestSent();
            return new ValueTask<int>(generation);
        }
        return SendRestAsync(socket, generation, adu[sent..], cancellationToken);
    }

    private async ValueTask<int> ConnectAndSendAsync(ReadOnlyMemory<byte> adu, CancellationToken cancellationToken)
    {
        var (socket, generation) = await ConnectAsync(cancellationToken);
        if (socket is null)
        {
            if (!cancellationToken.IsCancellationRequested)
            {
                _upstream.Counters.CountUnreachable();
            }
            return -1;
        }
        return await SendRestAsync(socket, generation, adu, cancellationToken);
    }

    private async ValueTask<int> SendRestAsync(Socket socket, int generation, ReadOnlyMemory<byte> adu, CancellationToken cancellationToken)
    {
        try
        {
            adu = adu[NonBlockingSend.Send(socket, adu.Span)..];
            while (!adu.IsEmpty)
            {
                int sent = await socket.SendAsync(adu, SocketFlags.None, cancellationToken);
                adu = adu[sent..];
            }
            _upstream.Counters.CountRequestSent();
            return generation;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The receive loop sees the same failure and reports the loss.
            return -1;
        }
    }

    private async ValueTask<(Socket?, int)> ConnectAsync(CancellationToken cancellationToken)
    {
        // The client's request that needs this connection is running on the client's epoll loop:
        // the PLC socket is read on the same one.
        var loop = EpollLoop.Current ?? EpollLoop.Next();
        await _connectGate.WaitAsync(cancellationToken);
        try
        {
            if (_socket is { } existing)
            {
                return (existing, _generation);
            }
            if (_disposed.IsCancellationRequested)
            {
                return (null, -1);
            }
            if (await _upstream.ConnectAsync(loop, cancellationToken) is not var (socket, reader))
            {
                return (null, -1);
            }
            int generation = ++_generation;
            Volatile.Write(ref _socket, socket);
            _ = Task.Run(() => ReceiveLoopAsync(socket, reader, generation), CancellationToken.None);
            return (socket, generation);
        }
        finally
        {
            _connectGate.Release();
        }
    }

    private async Task ReceiveLoopAsync(Socket socket, EpollSocketReader reader, int generation)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ReceiveBufferSize);
        using var stop = _disposed.Token.UnsafeRegister(static r => ((EpollSocketReader)r!).Dispose(), reader);
        int filled = 0;
        var loss = UpstreamLoss.Closed;
        var fault = FrameFault.None;
        try
        {
            while (true)
            {
                int read = await reader.ReceiveAsync(buffer.AsMemory(filled));
                if (read == 0)
                {
                    break;
                }
                filled += read;
                int offset = 0;
                while (true)
                {
                    var status = _framer.TryDelimit(buffer.AsSpan(offset, filled - offset), out int consumed, out fault);
                    if (status == OperationStatus.NeedMoreData)
                    {
                        break;
                    }
                    if (status == OperationStatus.InvalidData)
                    {
                        loss = UpstreamLoss.InvalidFraming;
                        return;
                    }
                    await _receiver.OnResponseAsync(buffer.AsMemory(offset, consumed), generation);
                    offset += consumed;
                }
                if (offset > 0)
                {
                    await _receiver.OnReadCompleteAsync(generation);
                    buffer.AsSpan(offset, filled - offset).CopyTo(buffer);
                    filled -= offset;
                }
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            loss = UpstreamLoss.Error;
        }
        finally
        {
            // Forget the socket before reporting, so the next send opens a new connection.
            Interlocked.CompareExchange(ref _socket, null, socket);
            reader.Dispose();
            socket.Dispose();
            ArrayPool<byte>.Shared.Return(buffer);
            if (!_disposed.IsCancellationRequested)
            {
                await _receiver.OnUpstreamLost(generation, loss, fault);
            }
        }
    }

    public void Abort()
    {
        if (Volatile.Read(ref _socket) is not { } socket)
        {
            return;
        }
        try
        {
            // Linger 0: close with a reset, so the kernel drops the queued request instead of delivering it.
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        socket.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        _disposed.Cancel();
        Interlocked.Exchange(ref _socket, null)?.Dispose();
        return ValueTask.CompletedTask;
    }
}
