using EdgeShield.Policy;
using EdgeShield.Transport;

namespace EdgeShield.Gateway;

/// <summary>Every listener of a configuration, started together and stopped together.</summary>
public sealed class EdgeGateway : IAsyncDisposable
{
    private readonly List<ModbusListener> _listeners;

    private EdgeGateway(List<ModbusListener> listeners, GatewayCounters counters)
    {
        _listeners = listeners;
        Counters = counters;
    }

    public IReadOnlyList<ModbusListener> Listeners => _listeners;

    /// <summary>Counts over all listeners.</summary>
    public GatewayCounters Counters { get; }

    /// <summary>
    /// Binds every listener of <paramref name="config"/>. If one cannot start, those already started
    /// are stopped and the error is thrown: the gateway runs whole or not at all.
    /// </summary>
    public static async Task<EdgeGateway> StartAsync(EdgeShieldConfig config, IAuditSink audit)
    {
        ArgumentNullException.ThrowIfNull(config);
        var counters = new GatewayCounters();
        var started = new List<ModbusListener>();
        try
        {
            foreach (var listener in config.Listeners)
            {
                var upstream = CreateUpstream(listener);
                var policy = new PolicySlot(config.Policies[listener.PolicyName]);
                started.Add(ModbusListener.Start(listener, policy, upstream, audit, counters));
            }
        }
        catch
        {
            foreach (var listener in started)
            {
                await listener.DisposeAsync();
            }
            throw;
        }
        return new EdgeGateway(started, counters);
    }

    private static IUpstream CreateUpstream(ListenerConfig listener)
    {
        if (listener.Protocol != ListenerProtocol.ModbusTcp)
        {
            throw new NotSupportedException($"listener '{listener.Name}': protocol modbus-rtu-over-tcp is not available in this build (Modbus RTU support is a separate issue)");
        }
        return listener.Upstream.Scheme switch
        {
            "tcp" => new TcpUpstream(listener.Upstream.Host, listener.Upstream.Port, listener.Limits.ConnectTimeout),
            _ => throw new NotSupportedException($"listener '{listener.Name}': upstream {listener.Upstream} is not available in this build (serial buses are a separate issue)"),
        };
    }

    /// <summary>True while every listener accepts and sweeps (see <see cref="ModbusListener.IsAlive"/>).</summary>
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
    }
}
