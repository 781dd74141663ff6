using EdgeShield.Gateway;
using EdgeShield.Policy;
using EdgeShield.Policy.Learn;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Iec104;
using EdgeShield.Protocols.Modbus;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Host;

/// <summary>
/// <c>learn --listen</c>: the gateway's request observer, feeding every parsed request into the same
/// <see cref="PolicyLearner"/> that <c>learn --pcap</c> uses. Connections call it concurrently, so
/// calls are serialised by one lock; after a source, unit and function's first request a call
/// allocates nothing (the learner's own structures). Only this command installs an observer: a
/// normal run's frame path pays one null check.
/// </summary>
internal sealed class LiveLearner : IRequestObserver
{
    private readonly Lock _lock = new();
    private readonly Dictionary<GatewayListener, (UInt128 Address, ushort Port)> _listeners = [];
    private int _sequence;

    public PolicyLearner Learner { get; } = new() { SequenceLabel = "request" };

    /// <summary>What the <c>s7comm</c> listeners saw: COTP connects and S7 requests (not allocation-free, unlike the Modbus path).</summary>
    public S7PolicyLearner S7Learner { get; } = new() { SequenceLabel = "request" };

    /// <summary>What the <c>iec104</c> listeners saw: every client ASDU (select-before-operate drafted from the order of selects and executes).</summary>
    public Iec104PolicyLearner Iec104Learner { get; } = new();

    /// <summary>Registers the listeners before traffic flows; the draft groups what it saw by the listener's own address.</summary>
    public void Attach(IReadOnlyList<GatewayListener> listeners)
    {
        lock (_lock)
        {
            foreach (var listener in listeners)
            {
                var local = listener.LocalEndPoint;
                _listeners[listener] = (SourceAddress.From(local.Address).Value, (ushort)local.Port);
            }
        }
    }

    public void OnRequest(GatewayListener listener, SourceAddress source, ushort sourcePort, byte unit, in ModbusRequest request)
    {
        long now = UnixNanoseconds();
        lock (_lock)
        {
            Learner.Observe(Context(listener, source, sourcePort, now), unit, request);
        }
    }

    public void OnMalformed(GatewayListener listener, SourceAddress source, ushort sourcePort, FramingError reason, short unit, short functionCode)
    {
        long now = UnixNanoseconds();
        lock (_lock)
        {
            Learner.OnMalformed(Context(listener, source, sourcePort, now), isRequest: true, reason, unit, functionCode);
        }
    }

    public void OnS7Connect(GatewayListener listener, SourceAddress source, ushort sourcePort, S7Connection connection)
    {
        long now = UnixNanoseconds();
        lock (_lock)
        {
            S7Learner.ObserveConnect(Context(listener, source, sourcePort, now), connection);
        }
    }

    public void OnS7Request(GatewayListener listener, SourceAddress source, ushort sourcePort, S7Connection connection, bool plus, in S7Request request)
    {
        long now = UnixNanoseconds();
        lock (_lock)
        {
            S7Learner.OnRequest(Context(listener, source, sourcePort, now), connection, plus, request);
        }
    }

    public void OnIec104Request(GatewayListener listener, SourceAddress source, ushort sourcePort, in Iec104Asdu asdu, long timestamp)
    {
        var command = Iec104Command.From(asdu, null, timestamp);
        lock (_lock)
        {
            Iec104Learner.Observe(source, command);
        }
    }

    /// <summary>Writes the draft under the lock, so a late request cannot change it mid-write.</summary>
    public void WriteYaml(TextWriter output, string description, EdgeShieldConfig config)
    {
        lock (_lock)
        {
            bool s7 = config.Listeners.Any(l => l.Protocol == ListenerProtocol.S7comm);
            bool iec104 = config.Listeners.Any(l => l.Protocol == ListenerProtocol.Iec104);
            Learner.WriteYaml(output, [description], 0, config, s7 ? S7Learner : null, iec104 ? Iec104Learner : null);
        }
    }

    private CaptureContext Context(GatewayListener listener, SourceAddress source, ushort sourcePort, long now)
    {
        _listeners.TryGetValue(listener, out var local);
        return new CaptureContext(++_sequence, now, source.Value, sourcePort, local.Address, local.Port);
    }

    private static long UnixNanoseconds() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
}
