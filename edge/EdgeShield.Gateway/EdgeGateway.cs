using EdgeShield.Protocols;
using EdgeShield.Policy;
using EdgeShield.Transport;

namespace EdgeShield.Gateway;

/// <summary>Every listener of a configuration, started together and stopped together.</summary>
public sealed class EdgeGateway : IAsyncDisposable
{
    private readonly List<GatewayListener> _listeners;
    private readonly UpstreamRegistry? _ownedUpstreams;
    private readonly ForensicsCapture? _capture;

    private EdgeGateway(List<GatewayListener> listeners, UpstreamRegistry upstreams, UpstreamRegistry? ownedUpstreams, GatewayCounters counters, ForensicsCapture? capture)
    {
        _capture = capture;
        _listeners = listeners;
        Upstreams = upstreams;
        _ownedUpstreams = ownedUpstreams;
        Counters = counters;
    }

    public IReadOnlyList<GatewayListener> Listeners => _listeners;

    /// <summary>The PLCs and serial buses this gateway forwards to, with their counters (shared with the poller when the host passed them in).</summary>
    public UpstreamRegistry Upstreams { get; }

    /// <summary>The <c>serial:</c> buses by name, shared by every listener (and the poller) that names them.</summary>
    public IReadOnlyDictionary<string, SerialBus> SerialBuses => Upstreams.SerialBuses;

    /// <summary>Counts over all listeners.</summary>
    public GatewayCounters Counters { get; }

    /// <summary>
    /// Binds every listener of <paramref name="config"/> on upstreams of its own (disposed with the gateway).
    /// <paramref name="observer"/> sees every parsed request of every listener (<c>learn --listen</c>).
    /// </summary>
    public static async Task<EdgeGateway> StartAsync(EdgeShieldConfig config, IAuditSink audit, IRequestObserver? observer = null)
    {
        var upstreams = await UpstreamRegistry.StartAsync(config);
        try
        {
            return await StartAsync(config, audit, upstreams, owned: true, observer);
        }
        catch
        {
            await upstreams.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Binds every listener of <paramref name="config"/> on <paramref name="upstreams"/>, which the caller
    /// shares with the telemetry poller and disposes after both. If one listener cannot start, those
    /// already started are stopped and the error is thrown: the gateway runs whole or not at all. So is an
    /// <c>audit.pcap</c> file that cannot be created (<see cref="IOException"/>, <see cref="UnauthorizedAccessException"/>).
    /// <paramref name="observer"/> sees every parsed request of every listener (<c>learn --listen</c>).
    /// </summary>
    public static Task<EdgeGateway> StartAsync(EdgeShieldConfig config, IAuditSink audit, UpstreamRegistry upstreams, IRequestObserver? observer = null) =>
        StartAsync(config, audit, upstreams, owned: false, observer);

    private static async Task<EdgeGateway> StartAsync(EdgeShieldConfig config, IAuditSink audit, UpstreamRegistry upstreams, bool owned, IRequestObserver? observer)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(upstreams);
        PreferInlineSocketCompletions();
        var counters = new GatewayCounters();
        var started = new List<GatewayListener>();
        // A refused S7 PDU is longer than a Modbus ADU: slots of a whole PDU only when a listener speaks S7comm.
        int frameBytes = config.Listeners.Any(l => l.Protocol == ListenerProtocol.S7comm) ? ForensicsCapture.MaxS7FrameBytes : ForensicsCapture.MaxFrameBytes;
        var capture = config.AuditPcap is { } pcap ? ForensicsCapture.Start(pcap, counters, audit, maxFrameBytes: frameBytes) : null;
        try
        {
            foreach (var listener in config.Listeners)
            {
                var upstream = upstreams.Find(listener.Upstream)
                    ?? throw new NotSupportedException($"listener '{listener.Name}': upstream {listener.Upstream} names no configured serial bus");
                var policy = new PolicySlot(config.Policies[listener.PolicyName]);
                started.Add(GatewayListener.Start(listener, policy, new SharedUpstream(upstream), audit, counters, capture, observer));
            }
        }
        catch
        {
            foreach (var listener in started)
            {
                await listener.DisposeAsync();
            }
            capture?.Dispose();
            throw;
        }
        return new EdgeGateway(started, upstreams, owned ? upstreams : null, counters, capture);
    }

    /// <summary>The runtime's switch for running socket continuations on its epoll threads.</summary>
    public const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>
    /// Asks the runtime to run socket continuations on its epoll threads rather than handing each
    /// one to the thread pool. Every step of a forwarded request (frame, judge, send) is short and
    /// never blocks, so the hop only costs: on 2 cores it took ~30 µs of CPU per proxied request down
    /// to ~20 µs and raised requests/s by 15-20 % (bench/RESULTS.md). The runtime reads the variable
    /// once, when the first socket is created, so this works only before any socket exists (as in
    /// <c>edgeshield run</c>); it is a no-op after that, and a value already in the environment
    /// (<c>0</c> to opt out) is left alone.
    /// </summary>
    public static void PreferInlineSocketCompletions()
    {
        if (Environment.GetEnvironmentVariable(InlineCompletionsVariable) is null)
        {
            Environment.SetEnvironmentVariable(InlineCompletionsVariable, "1");
        }
    }

    /// <summary>The transport's view of a <c>serial:</c> entry.</summary>
    public static SerialBusOptions ToOptions(SerialBusConfig bus)
    {
        ArgumentNullException.ThrowIfNull(bus);
        return new SerialBusOptions
        {
            Name = bus.Name,
            Device = bus.Device,
            Baud = bus.Baud,
            Parity = bus.Parity switch
            {
                LineParity.None => SerialParity.None,
                LineParity.Odd => SerialParity.Odd,
                _ => SerialParity.Even,
            },
            StopBits = bus.StopBits,
            ResponseTimeout = TimeSpan.FromMilliseconds(bus.ResponseTimeoutMs),
            TurnaroundDelay = TimeSpan.FromMilliseconds(bus.TurnaroundMs),
            LateReplyGuard = bus.LateReplyGuardMs is int guard ? TimeSpan.FromMilliseconds(guard) : null,
            ReadRetries = bus.ReadRetries,
            QueueDepth = bus.QueueDepth,
            QueueTimeout = TimeSpan.FromMilliseconds(bus.QueueTimeoutMs),
            BreakerFailures = bus.BreakerFailures,
            BreakerOpen = TimeSpan.FromMilliseconds(bus.BreakerOpenMs),
        };
    }

    /// <summary>An upstream shared by several listeners and the poller: a listener's dispose must not close it under the others; its registry does.</summary>
    private sealed class SharedUpstream(IUpstream bus) : IUpstream
    {
        public string Description => bus.Description;
        public TimeSpan ResponseWindow => bus.ResponseWindow;
        public IUpstreamSession OpenSession(IUpstreamReceiver receiver, IStreamFramer responseFramer, string source) => bus.OpenSession(receiver, responseFramer, source);
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>True while every listener accepts and sweeps (see <see cref="GatewayListener.IsAlive"/>).</summary>
    public bool IsAlive(TimeSpan maxSweepAge)
    {
        foreach (var listener in _listeners)
        {
            if (!listener.IsAlive(maxSweepAge))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Swaps in the policies of a newly loaded configuration without touching connections.</summary>
    public void UpdatePolicies(EdgeShieldConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        foreach (var listener in _listeners)
        {
            var match = config.Listeners.FirstOrDefault(l => l.Name == listener.Config.Name);
            if (match is not null && config.Policies.TryGetValue(match.PolicyName, out var policy))
            {
                // A rule that did not change keeps its buckets: a reload must not refill them.
                policy.KeepRateBucketsOf(listener.Policy.Current);
                listener.Policy.Current = policy;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var listener in _listeners)
        {
            await listener.DisposeAsync();
        }
        if (_ownedUpstreams is not null)
        {
            await _ownedUpstreams.DisposeAsync();
        }
        _capture?.Dispose();
    }
}
