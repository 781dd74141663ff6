using EdgeShield.Policy;
using EdgeShield.Transport;

namespace EdgeShield.Gateway;

/// <summary>
/// The ways to every PLC a configuration names, built once and shared by the gateway's listeners
/// and the telemetry poller: one <see cref="TcpUpstream"/> per PLC address (so the per-PLC connect
/// backoff and the counters cover every user of that PLC) and one <see cref="SerialBus"/> per
/// <c>serial:</c> entry (so the poller's reads are fair-queued on the line with client traffic).
/// It owns them: disposing it closes the buses, after the listeners and the poller have gone.
/// </summary>
public sealed class UpstreamRegistry : IAsyncDisposable
{
    /// <summary>Connect timeout for a PLC that only the poller names (a listener's <c>connect-timeout</c> applies otherwise).</summary>
    public static readonly TimeSpan PollerConnectTimeout = TimeSpan.FromSeconds(3);

    private readonly Dictionary<string, SerialBus> _buses;
    private readonly Dictionary<UpstreamAddress, TcpUpstream> _tcp;

    private UpstreamRegistry(Dictionary<string, SerialBus> buses, Dictionary<UpstreamAddress, TcpUpstream> tcp)
    {
        _buses = buses;
        _tcp = tcp;
    }

    /// <summary>The <c>serial:</c> buses by name.</summary>
    public IReadOnlyDictionary<string, SerialBus> SerialBuses => _buses;

    /// <summary>The Modbus TCP PLCs by address (<c>tcp://HOST:PORT</c>).</summary>
    public IReadOnlyDictionary<UpstreamAddress, TcpUpstream> TcpUpstreams => _tcp;

    /// <summary>
    /// Starts every serial bus of <paramref name="config"/> (a missing device is not an error: that bus
    /// answers 0A until it appears) and makes one TCP upstream per PLC address named by a listener or a
    /// poll entry. When listeners name the same PLC with different <c>connect-timeout</c>s, the shortest applies.
    /// </summary>
    public static async Task<UpstreamRegistry> StartAsync(EdgeShieldConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var buses = new Dictionary<string, SerialBus>(StringComparer.Ordinal);
        var connectTimeouts = new Dictionary<UpstreamAddress, TimeSpan>();
        foreach (var listener in config.Listeners)
        {
            if (listener.Upstream.Scheme == "tcp")
            {
                var timeout = listener.Limits.ConnectTimeout;
                connectTimeouts[listener.Upstream] = connectTimeouts.TryGetValue(listener.Upstream, out var other) && other < timeout ? other : timeout;
            }
        }
        foreach (var poll in config.Telemetry?.Poll ?? [])
        {
            if (poll.Upstream.Scheme == "tcp")
            {
                connectTimeouts.TryAdd(poll.Upstream, PollerConnectTimeout);
            }
        }
        var tcp = new Dictionary<UpstreamAddress, TcpUpstream>();
        foreach (var (address, timeout) in connectTimeouts)
        {
            tcp.Add(address, new TcpUpstream(address.Host, address.Port, timeout));
        }
        try
        {
            foreach (var bus in config.SerialBuses)
            {
                buses.Add(bus.Name, SerialBus.Start(EdgeGateway.ToOptions(bus)));
            }
        }
        catch
        {
            foreach (var bus in buses.Values)
            {
                await bus.DisposeAsync();
            }
            throw;
        }
        return new UpstreamRegistry(buses, tcp);
    }

    /// <summary>The upstream for <paramref name="address"/>, or null when the configuration named no such bus or PLC.</summary>
    public IUpstream? Find(UpstreamAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return address.Scheme switch
        {
            "tcp" when _tcp.TryGetValue(address, out var plc) => plc,
            "serial" when _buses.TryGetValue(address.Host, out var bus) => bus,
            _ => null,
        };
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var plc in _tcp.Values)
        {
            await plc.DisposeAsync();
        }
        foreach (var bus in _buses.Values)
        {
            await bus.DisposeAsync();
        }
    }
}
