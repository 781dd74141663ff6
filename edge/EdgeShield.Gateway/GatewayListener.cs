using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Policy;
using EdgeShield.Transport;

namespace EdgeShield.Gateway;

/// <summary>
/// One <c>listeners:</c> entry, whatever its protocol: accepts clients, enforces <c>connections-per-source</c>
/// and <c>max-connections</c>, runs a <see cref="ClientConnection"/> per client hosting the session of the
/// listener's <c>protocol:</c> (<see cref="ProtocolSessions"/>), and sweeps connections for response, idle
/// and frame timeouts.
/// </summary>
public sealed class GatewayListener : IAsyncDisposable
{
    private static readonly TimeSpan SweepInterval = TimeSpan.FromMilliseconds(50);

    private readonly Socket _socket;
    private readonly IUpstream _upstream;
    private readonly Func<ClientConnection, IUpstream, IProtocolSession> _newSession;
    private readonly Dictionary<SourceAddress, int> _connectionsBySource = [];
    private readonly HashSet<ClientConnection> _sessions = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _acceptLoop;
    private readonly Task _sweepLoop;
    private long _lastSweep = Stopwatch.GetTimestamp();

    private GatewayListener(ListenerConfig config, PolicySlot policy, IUpstream upstream, IAuditSink audit, GatewayCounters counters, Socket socket, ForensicsCapture? capture, IRequestObserver? observer)
    {
        Capture = capture;
        Observer = observer;
        Config = config;
        Policy = policy;
        _upstream = upstream;
        Audit = audit;
        Counters = counters;
        _socket = socket;
        _newSession = ProtocolSessions.For(config.Protocol);
        // A serial bus answers its own timeouts (after its retries); the listener's must not cut in first.
        var responseTimeout = upstream.ResponseWindow > config.Limits.ResponseTimeout ? upstream.ResponseWindow : config.Limits.ResponseTimeout;
        ResponseTimeoutTicks = (long)(responseTimeout.TotalSeconds * Stopwatch.Frequency);
        _acceptLoop = Task.Run(AcceptLoopAsync);
        // A thread of its own that sleeps between sweeps: on the thread pool, each tick woke a worker that then
        // spun (sched_yield) for more work, 1.7 % of the gateway's CPU at 64 busy connections (perf, bench/RESULTS.md §2).
        _sweepLoop = Task.Factory.StartNew(SweepLoop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    public ListenerConfig Config { get; }
    public PolicySlot Policy { get; }
    public IAuditSink Audit { get; }
    public GatewayCounters Counters { get; }
    /// <summary>Where refused and malformed frames are captured (<c>audit.pcap</c>); null when they are not.</summary>
    public ForensicsCapture? Capture { get; }
    /// <summary>Sees every parsed request (<c>learn --listen</c>); null in normal runs, so the frame path pays one null check.</summary>
    public IRequestObserver? Observer { get; }
    /// <summary>Where it listens; with port 0 in the config, the port the system chose.</summary>
    public IPEndPoint LocalEndPoint => (IPEndPoint)_socket.LocalEndPoint!;
    internal long ResponseTimeoutTicks { get; }

    /// <summary>When the sweeper last finished a tick (<see cref="Stopwatch"/> ticks, at most ~50 ms old while it runs): a clock for coarse stamps.</summary>
    internal long LastSweep => Volatile.Read(ref _lastSweep);

    /// <summary>
    /// True while the accept loop runs and the sweeper (response and idle timeouts) has ticked within
    /// <paramref name="maxSweepAge"/>: the liveness that systemd's watchdog pings stand for.
    /// </summary>
    public bool IsAlive(TimeSpan maxSweepAge) =>
        !_acceptLoop.IsCompleted && !_sweepLoop.IsCompleted
        && Stopwatch.GetElapsedTime(Volatile.Read(ref _lastSweep)) < maxSweepAge;

    /// <summary>Open client connections.</summary>
    public int SessionCount
    {
        get
        {
            lock (_sessions)
            {
                return _sessions.Count;
            }
        }
    }

    /// <summary>Binds and starts accepting. Throws <see cref="SocketException"/> when the address cannot be bound.</summary>
    public static GatewayListener Start(ListenerConfig config, PolicySlot policy, IUpstream upstream, IAuditSink audit, GatewayCounters counters, ForensicsCapture? capture = null, IRequestObserver? observer = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var socket = new Socket(config.Bind.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            if (config.Bind.AddressFamily == AddressFamily.InterNetworkV6)
            {
                socket.DualMode = config.Bind.Address.Equals(IPAddress.IPv6Any);
            }
            socket.Bind(config.Bind);
            socket.Listen(512);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new GatewayListener(config, policy, upstream, audit, counters, socket, capture, observer);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _socket.AcceptAsync(_stopping.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                // Too many open files, aborted handshakes: keep accepting.
                await Task.Delay(10);
                continue;
            }
            Accept(client);
        }
    }

    private void Accept(Socket client)
    {
        var remote = (IPEndPoint)client.RemoteEndPoint!;
        var source = SourceAddress.From(remote.Address);
        // Only this loop adds connections, so a count read here can only fall before it is raised below.
        int open;
        lock (_connectionsBySource)
        {
            _connectionsBySource.TryGetValue(source, out open);
        }
        if (open >= Config.Limits.ConnectionsPerSource)
        {
            Refuse(client, remote, source, "connections-per-source exceeded");
            return;
        }
        if (!MakeRoom(source))
        {
            Refuse(client, remote, source, "max-connections reached and every connection has had a request allowed");
            return;
        }
        lock (_connectionsBySource)
        {
            _connectionsBySource.TryGetValue(source, out open);
            _connectionsBySource[source] = open + 1;
        }
        Counters.CountConnection();
        client.NoDelay = true;
        var session = new ClientConnection(this, client, remote, _upstream, _newSession);
        lock (_sessions)
        {
            _sessions.Add(session);
        }
        _ = Task.Run(session.RunAsync);
    }

    /// <summary>
    /// True when the listener has room for one more connection, after closing, if it was full, the
    /// oldest connection that has never had a request allowed since it connected (a half-open
    /// connection holds a descriptor and does nothing; one whose every request is refused does nothing
    /// for the plant either, and must not lock out a client the policy allows). A connection that has
    /// had a request allowed is never closed for a newcomer.
    /// </summary>
    private bool MakeRoom(SourceAddress newcomer)
    {
        ClientConnection? oldestSilent = null;
        lock (_sessions)
        {
            if (_sessions.Count < Config.Limits.MaxConnections)
            {
                return true;
            }
            int open = 0;
            foreach (var session in _sessions)
            {
                if (session.IsClosing)
                {
                    continue; // on its way out: its descriptor is being released
                }
                open++;
                if (session.NeverAllowed && (oldestSilent is null || session.AcceptedAt < oldestSilent.AcceptedAt))
                {
                    oldestSilent = session;
                }
            }
            if (open < Config.Limits.MaxConnections)
            {
                return true;
            }
        }
        if (oldestSilent is null)
        {
            return false;
        }
        Counters.CountConnectionEvicted();
        oldestSilent.Evict(newcomer);
        return true;
    }

    private void Refuse(Socket client, IPEndPoint remote, SourceAddress source, string reason)
    {
        Counters.CountConnectionRejected();
        Audit.Write(new AuditEvent
        {
            Time = DateTime.UtcNow,
            Kind = AuditEventKind.ConnectionLimit,
            Listener = Config.Name,
            Source = source,
            SourcePort = (ushort)remote.Port,
            Unit = -1,
            FunctionCode = -1,
            Reason = reason,
            Count = 1,
        });
        client.Dispose();
    }

    /// <summary>
    /// A connection is closing: its source's <c>connections-per-source</c> slot is free from now on, before the client
    /// sees the close, so a client that reconnects at once is never refused for the connection it just lost.
    /// Called once per connection (<see cref="ClientConnection.CloseAsync"/>), before <see cref="SessionClosed"/>.
    /// </summary>
    internal void ReleaseSource(ClientConnection session)
    {
        lock (_connectionsBySource)
        {
            if (_connectionsBySource.TryGetValue(session.Source, out int open))
            {
                if (open <= 1)
                {
                    _connectionsBySource.Remove(session.Source);
                }
                else
                {
                    _connectionsBySource[session.Source] = open - 1;
                }
            }
        }
    }

    /// <summary>A connection is closed, its PLC connection too: it no longer counts towards <c>max-connections</c>.</summary>
    internal void SessionClosed(ClientConnection session)
    {
        lock (_sessions)
        {
            _sessions.Remove(session);
        }
    }

    private void SweepLoop()
    {
        var snapshot = new List<ClientConnection>();
        long idleTicks = (long)(Config.Limits.IdleTimeout.TotalSeconds * Stopwatch.Frequency);
        long frameTicks = (long)(Config.Limits.FrameTimeout.TotalSeconds * Stopwatch.Frequency);
        Thread.CurrentThread.Name = "edgeshield-sweep";
        var stopping = _stopping.Token.WaitHandle;
        while (!stopping.WaitOne(SweepInterval))
        {
            snapshot.Clear();
            lock (_sessions)
            {
                snapshot.AddRange(_sessions);
            }
            long now = Stopwatch.GetTimestamp();
            foreach (var session in snapshot)
            {
                session.Sweep(now, idleTicks, frameTicks);
            }
            Volatile.Write(ref _lastSweep, Stopwatch.GetTimestamp());
        }
    }

    /// <summary>Stops accepting, closes every client connection and its upstream session.</summary>
    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        _socket.Dispose();
        await _acceptLoop;
        await _sweepLoop;
        ClientConnection[] open;
        lock (_sessions)
        {
            open = [.. _sessions];
        }
        foreach (var session in open)
        {
            await session.CloseAsync();
        }
        await _upstream.DisposeAsync();
        _stopping.Dispose();
    }
}
