using System.Globalization;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Policy.Learn;

/// <summary>
/// Drafts a <c>protocol: iec104</c> allow-list from the commands clients sent (each an <see cref="Iec104Command"/>
/// as the gateway session builds it, from a capture or <c>learn --listen</c>): per source, the types seen, their
/// common addresses (global written <c>global</c>), their IOA spans (merged where they overlap or touch), for
/// set-points the least and greatest value, and <c>select-before-operate: true</c> where every execute of a
/// selectable type followed a select of the same command. Enforced, the draft allows every command it was drafted
/// from that a policy can allow (tested, with the selects confirmed as the station would); what none can
/// (monitor or unknown types, invalid qualifiers) is listed in comments.
/// </summary>
/// <remarks>
/// Rules per source: <c>commands</c> (control types but set-points), <c>set-points</c> (with <c>value:</c>),
/// and <c>system</c> (system, clock, parameter, file and 41, 81-95). The types, common addresses and IOA spans of
/// one rule are the union over its commands, so a rule may allow combinations never seen (a type at an IOA seen
/// only with another type); the comments list the spans per type so a reviewer can split it. The learner does
/// not see the station's confirmations: select-before-operate is drafted from the order of the client's commands.
/// Not thread-safe: one learner per stream.
/// </remarks>
public sealed class Iec104PolicyLearner
{
    private const int MaxUnlearnable = 100;
    /// <summary>The default <c>select-timeout</c> (10 s): an execute later than that after its select does not count as following it.</summary>
    private static readonly long SelectTimeoutTicks = 10 * System.Diagnostics.Stopwatch.Frequency;
    private readonly SortedDictionary<UInt128, Peer> _peers = [];
    private readonly List<string> _unlearnable = [];
    private long _unlisted;

    /// <summary>
    /// When true (<c>learn --pcap</c>, which sees the station's answers), an execute counts as following its select only
    /// when the station confirmed that select positively (<see cref="ObserveSelectConfirmation"/>), as select-before-operate
    /// will demand once enforced; otherwise the order of the client's commands is enough.
    /// </summary>
    public bool RequireConfirmation { get; init; }

    /// <summary>The station confirmed (or, <paramref name="positive"/> false, refused) the select <paramref name="commandKey"/> of <paramref name="source"/>.</summary>
    public void ObserveSelectConfirmation(SourceAddress source, ulong commandKey, bool positive)
    {
        if (!_peers.TryGetValue(source.Value, out var peer) || !peer.Selected.ContainsKey(commandKey))
        {
            return;
        }
        if (positive)
        {
            peer.Confirmed.Add(commandKey);
        }
        else
        {
            peer.Selected.Remove(commandKey);
            peer.Confirmed.Remove(commandKey);
        }
    }

    /// <summary>Commands observed.</summary>
    public long Requests { get; private set; }

    /// <summary>Observes one command <paramref name="source"/> sent; <see cref="Iec104Command.Now"/> orders selects and executes.</summary>
    public void Observe(SourceAddress source, in Iec104Command command)
    {
        Requests++;
        var type = command.Type;
        var group = Iec104Types.Group(type);
        if (group is Iec104TypeGroup.Unknown or Iec104TypeGroup.Monitor)
        {
            Unlearnable($"{Iec104Types.Name(type)} from {source}: {(group == Iec104TypeGroup.Monitor ? "a monitor type, never a request" : "not a type of IEC 104")}");
            return;
        }
        if (!command.QualifierValid)
        {
            Unlearnable($"{Iec104Types.Name(type)} from {source} to CA {command.CommonAddress} IOA {command.LowestIoa}: its qualifier is not valid; refused whatever the policy");
            return;
        }
        if (command.LowestIoa > command.HighestIoa || command.HighestIoa > Iec104Command.MaxIoa)
        {
            Unlearnable($"{Iec104Types.Name(type)} from {source}: IOA span {command.LowestIoa}-{command.HighestIoa} is not one");
            return;
        }
        if (!_peers.TryGetValue(source.Value, out var peer))
        {
            _peers[source.Value] = peer = new Peer();
        }
        var kind = Iec104Command.IsSetPoint(type) ? peer.SetPoints : group == Iec104TypeGroup.Control ? peer.Commands : peer.System;
        kind.Add(command);
        if (!Iec104Command.CarriesSelect(type))
        {
            return;
        }
        if (command.IsSelect)
        {
            peer.Selected[command.CommandKey] = command.Now;
            peer.Confirmed.Remove(command.CommandKey);
            kind.Selects++;
        }
        else if (peer.Selected.Remove(command.CommandKey, out var selectedAt) && (peer.Confirmed.Remove(command.CommandKey) || !RequireConfirmation)
            && command.Now - selectedAt >= 0 && command.Now - selectedAt <= SelectTimeoutTicks)
        {
            kind.ExecutesAfterSelect++;
        }
        else
        {
            kind.ExecutesWithoutSelect++;
        }
    }

    private void Unlearnable(string what)
    {
        if (_unlearnable.Count < MaxUnlearnable)
        {
            _unlearnable.Add(what);
        }
        else
        {
            _unlisted++;
        }
    }

    /// <summary>Writes a draft configuration: one iec104 listener forwarding to <paramref name="upstream"/> (<c>tcp://HOST:PORT</c>) with the learned policy.</summary>
    public void WriteYaml(TextWriter output, IReadOnlyList<string> origins, string upstream)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(origins);
        ArgumentNullException.ThrowIfNull(upstream);
        output.WriteLine("# Draft IEC 104 allow-list written by `edgeshield learn` from:");
        foreach (var origin in origins)
        {
            output.WriteLine($"#   {origin}");
        }
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# {Requests} commands from {_peers.Count} source(s). It allows the types, common addresses and IOA spans seen,"));
        output.WriteLine("# set-points within the values seen, and select-before-operate where every execute followed its select.");
        output.WriteLine("# Review every rule, then switch mode to enforce. Check: edgeshield check --config FILE");
        output.WriteLine();
        output.WriteLine("listeners:");
        output.WriteLine("  - name: learned-iec104");
        output.WriteLine($"    bind: 0.0.0.0:{ListenerProtocols.DefaultPort(ListenerProtocol.Iec104)}   # where clients connect; adjust");
        output.WriteLine("    protocol: iec104");
        output.WriteLine($"    upstream: {upstream}");
        output.WriteLine("    policy: learned");
        output.WriteLine();
        output.WriteLine("policies:");
        WritePolicy(output, "learned");
    }

    /// <summary>Writes the learned policy alone, named <paramref name="name"/>, as an entry of <c>policies:</c>.</summary>
    public void WritePolicy(TextWriter output, string name)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(name);
        output.WriteLine($"  {name}:");
        output.WriteLine("    protocol: iec104");
        output.WriteLine("    mode: monitor              # logs what it would deny; enforce once reviewed");
        output.WriteLine("    on-deny: exception");
        var any = false;
        foreach (var (source, peer) in _peers)
        {
            var who = PolicyLearner.FormatAddress(source);
            foreach (var (what, kind) in (ReadOnlySpan<(string, Kind)>)[("commands", peer.Commands), ("set-points", peer.SetPoints), ("system", peer.System)])
            {
                if (kind.Count == 0)
                {
                    continue;
                }
                if (!any)
                {
                    output.WriteLine("    rules:");
                    any = true;
                }
                kind.Write(output, who, what);
            }
        }
        if (!any)
        {
            output.WriteLine("    rules: []                  # nothing learnable");
        }
        foreach (var line in _unlearnable)
        {
            output.WriteLine($"    # not allowed: {line}");
        }
        if (_unlisted > 0)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    # not allowed: {_unlisted} more such commands, not listed"));
        }
    }

    /// <summary>The commands of one rule: types, common addresses, IOA spans, values, selects.</summary>
    private sealed class Kind
    {
        private readonly SortedDictionary<byte, long> _types = [];
        private readonly SortedDictionary<byte, List<(long First, long Last)>> _spansByType = [];
        private readonly List<(long First, long Last)> _ioas = [];
        private readonly List<(long First, long Last)> _cas = [];
        private bool _global;
        private bool _valueUnknown;
        private double _low = double.PositiveInfinity;
        private double _high = double.NegativeInfinity;

        public long Count;
        public long Selects;
        public long ExecutesAfterSelect;
        public long ExecutesWithoutSelect;

        public void Add(in Iec104Command command)
        {
            Count++;
            _types[command.Type] = _types.GetValueOrDefault(command.Type) + 1;
            if (!_spansByType.TryGetValue(command.Type, out var spans))
            {
                _spansByType[command.Type] = spans = [];
            }
            Merge(spans, command.LowestIoa, command.HighestIoa);
            Merge(_ioas, command.LowestIoa, command.HighestIoa);
            if (command.CommonAddress == Iec104Command.GlobalAddress)
            {
                _global = true;
            }
            else
            {
                Merge(_cas, command.CommonAddress, command.CommonAddress);
            }
            if (Iec104Command.IsSetPoint(command.Type))
            {
                if (command.HasValue && double.IsFinite(command.ValueMin) && double.IsFinite(command.ValueMax) && command.ValueMin <= command.ValueMax)
                {
                    _low = Math.Min(_low, command.ValueMin);
                    _high = Math.Max(_high, command.ValueMax);
                }
                else
                {
                    _valueUnknown = true;
                }
            }
        }

        public void Write(TextWriter output, string who, string what)
        {
            var inv = CultureInfo.InvariantCulture;
            var types = string.Join(", ", _types.Keys.Select(Iec104Types.Name));
            var sbo = Selects > 0 && ExecutesWithoutSelect == 0;
            // CA 0 cannot be named (ca: is 1..65534): a rule without ca: covers it, but never global.
            var caZero = _cas.Count > 0 && _cas[0].First == 0;
            var cas = Ranges(_cas).ToList();
            if (_global && !caZero)
            {
                cas.Add("global");
            }
            WriteRule(caZero ? null : cas, $"{who} {what}");
            if (_global && caZero)
            {
                WriteRule(["global"], $"{who} {what} (global)");
            }

            void WriteRule(List<string>? commonAddresses, string name)
            {
                output.WriteLine($"      - name: {name}");
                output.WriteLine($"        from: {who}");
                output.WriteLine($"        type: [{types}]");
                foreach (var (type, count) in _types)
                {
                    output.WriteLine(string.Create(inv, $"        # {Iec104Types.Name(type)}: {count} commands, IOA {string.Join(", ", Ranges(_spansByType[type]))}"));
                }
                if (commonAddresses is null)
                {
                    output.WriteLine("        # common address 0 was seen, which 'ca:' cannot name: every common address but global is allowed");
                }
                else
                {
                    output.WriteLine($"        ca: [{string.Join(", ", commonAddresses)}]");
                }
                output.WriteLine($"        ioa: [{string.Join(", ", Ranges(_ioas))}]");
                if (_valueUnknown)
                {
                    output.WriteLine("        # a set-point without a readable value was seen: values are not bounded");
                }
                else if (_low <= _high)
                {
                    output.WriteLine(string.Create(inv, $"        value: {_low:R}..{_high:R}"));
                }
                if (sbo)
                {
                    output.WriteLine(string.Create(inv, $"        select-before-operate: true   # {Selects} selects, {ExecutesAfterSelect} executes, each after its select"));
                }
                else if (Selects > 0)
                {
                    output.WriteLine(string.Create(inv, $"        # {Selects} selects seen, but {ExecutesWithoutSelect} executes without one: select-before-operate left out"));
                }
            }
        }

        private static void Merge(List<(long First, long Last)> list, long first, long last)
        {
            list.Add((first, last));
            list.Sort();
            var w = 0;
            for (var r = 1; r < list.Count; r++)
            {
                if (list[r].First <= list[w].Last + 1)
                {
                    list[w] = (list[w].First, Math.Max(list[w].Last, list[r].Last));
                }
                else
                {
                    list[++w] = list[r];
                }
            }
            list.RemoveRange(w + 1, list.Count - w - 1);
        }

        private static IEnumerable<string> Ranges(List<(long First, long Last)> spans) =>
            spans.Select(s => s.First == s.Last
                    ? s.First.ToString(CultureInfo.InvariantCulture)
                    : string.Create(CultureInfo.InvariantCulture, $"{s.First}-{s.Last}"));
    }

    private sealed class Peer
    {
        public readonly Kind Commands = new();
        public readonly Kind SetPoints = new();
        public readonly Kind System = new();
        /// <summary>Selects not yet followed by their execute, by command key.</summary>
        public readonly Dictionary<ulong, long> Selected = [];
        /// <summary>Selects the station confirmed positively (with <see cref="RequireConfirmation"/>).</summary>
        public readonly HashSet<ulong> Confirmed = [];
    }
}
