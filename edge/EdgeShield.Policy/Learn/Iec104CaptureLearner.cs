using System.Diagnostics;
using EdgeShield.Protocols;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Policy.Learn;

/// <summary>
/// <c>learn --pcap</c> for IEC 104: feeds every ASDU a client sent in a capture (<see cref="Iec104CaptureScanner"/>) to an
/// <see cref="Iec104PolicyLearner"/> as the gateway session builds its <see cref="Iec104Command"/>, and the station's
/// confirmations of selects, matched to the connection's outstanding commands exactly as replay and the live session
/// match them (<see cref="Iec104Commands"/>, the default <c>response-timeout</c> and <c>t1</c>): so a draft with
/// <c>select-before-operate: true</c> replays its own capture without a denial. Malformed APDUs end their direction
/// and are listed by the learner as not allowed.
/// </summary>
public sealed class Iec104CaptureLearner : IIec104CaptureObserver
{
    private readonly Dictionary<(UInt128 Client, ushort Port, UInt128 Server), Iec104Commands> _connections = [];
    private readonly SortedSet<(UInt128 Server, ushort Port)> _servers = [];
    private readonly long _responseTimeout;
    private readonly long _terminationWait;
    private readonly byte[] _expired = new byte[Iec104Commands.MaxAsdu];
    private readonly ListenerLimits _limits = new();

    public Iec104CaptureLearner()
    {
        _responseTimeout = (long)(_limits.ResponseTimeout.TotalSeconds * Stopwatch.Frequency);
        _terminationWait = (long)(_limits.T1.TotalSeconds * Stopwatch.Frequency);
    }

    /// <summary>The learner fed (it requires the station's confirmation of a select).</summary>
    public Iec104PolicyLearner Learner { get; } = new() { RequireConfirmation = true };

    /// <summary>Client ASDUs observed.</summary>
    public long Requests => Learner.Requests;

    /// <summary>Malformed APDUs seen (either direction).</summary>
    public long Malformed { get; private set; }

    /// <summary>The stations seen (address, port), in order.</summary>
    public IReadOnlyCollection<(UInt128 Server, ushort Port)> Servers => _servers;

    /// <inheritdoc/>
    public bool OnRequest(in CaptureContext context, in Iec104Apdu apdu, in Iec104Asdu asdu)
    {
        if (apdu.Format != Iec104Format.I)
        {
            return true;
        }
        _servers.Add((context.Server, context.ServerPort));
        long now = Ticks(context.TimestampNs);
        var command = Iec104Command.From(asdu, null, now);
        var source = new SourceAddress(context.Client);
        Learner.Observe(source, command);
        var commands = CommandsOf(context);
        while (commands.TryTakeExpired(now, out _, _expired))
        {
        }
        if (Iec104Commands.Tracks(asdu))
        {
            commands.TryAdd(asdu, asdu.IsCommand && asdu.IsSelect, now + _responseTimeout);
        }
        return true;
    }

    /// <inheritdoc/>
    public void OnResponse(in CaptureContext context, in Iec104Apdu apdu, in Iec104Asdu asdu)
    {
        if (apdu.Format != Iec104Format.I || asdu.Status != Iec104AsduStatus.WellFormed || !Iec104Causes.IsAnswer(asdu.Cause, asdu.Negative))
        {
            return;
        }
        long now = Ticks(context.TimestampNs);
        var commands = CommandsOf(context);
        while (commands.TryTakeExpired(now, out _, _expired))
        {
        }
        if (commands.TryMatch(asdu.Type, asdu.Cause, asdu.Negative, asdu.CommonAddress, asdu.FirstIoa, now, _terminationWait, out var command)
            && command.IsSelect && asdu.Cause == Iec104Causes.ActivationConfirmation)
        {
            Learner.ObserveSelectConfirmation(new SourceAddress(context.Client), command.CommandKey, positive: !asdu.Negative);
        }
    }

    /// <inheritdoc/>
    public void OnMalformed(in CaptureContext context, bool isRequest, FrameFault fault) => Malformed++;

    /// <summary>Writes the draft: one iec104 listener forwarding to the first station seen (the others named in a comment).</summary>
    public void WriteYaml(TextWriter output, IReadOnlyList<string> origins)
    {
        ArgumentNullException.ThrowIfNull(output);
        string upstream = "tcp://10.0.0.1:2404   # no station seen; adjust";
        if (_servers.Count > 0)
        {
            var (server, port) = _servers.Min;
            upstream = $"tcp://{PolicyLearner.FormatAddress(server)}:{port.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
            if (_servers.Count > 1)
            {
                upstream += "   # stations seen: " + string.Join(", ", _servers.Select(s => $"{PolicyLearner.FormatAddress(s.Server)}:{s.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)}"));
            }
        }
        Learner.WriteYaml(output, origins, upstream);
    }

    private Iec104Commands CommandsOf(in CaptureContext context)
    {
        var key = (context.Client, context.ClientPort, context.Server);
        if (!_connections.TryGetValue(key, out var commands))
        {
            _connections[key] = commands = new Iec104Commands(_limits.PendingPerConnection);
        }
        return commands;
    }

    private static long Ticks(long nanoseconds) => Stopwatch.Frequency == 1_000_000_000
        ? nanoseconds
        : (long)((Int128)nanoseconds * Stopwatch.Frequency / 1_000_000_000);
}
