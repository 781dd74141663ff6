using System.Globalization;
using EdgeShield.Policy.Replay;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Policy.Learn;

/// <summary>
/// Drafts a <c>protocol: s7comm</c> allow-list from S7 streams (<c>edgeshield learn --pcap</c> over captures on
/// port 102): per source and connection type, the function words seen, the PI services of plc-control and
/// plc-stop, and for read-var and write-var the areas, data blocks and byte spans touched (spans merged where
/// they overlap or touch). Replaying the same captures through the draft allows every connect and request
/// that a policy can allow (tested); what none can (out-of-spec and malformed PDUs) is listed in comments.
/// </summary>
/// <remarks>
/// A job is allowed only when one rule allows all its items, so the areas, blocks and spans of one rule are the
/// union over every item that function touched from that source: a rule may allow combinations never seen
/// (DB 2 at an offset seen only in M). The comments list the spans per area and block so a reviewer can split
/// the rule. Jobs with items that are not S7ANY leave the rule without <c>area</c>/<c>db</c>/<c>address</c>
/// (such items pass only a rule that bounds none of them). Written values are not bounded: <c>value:</c> needs
/// a <c>type:</c> the capture cannot tell.
/// </remarks>
public sealed class S7PolicyLearner : IS7CaptureObserver
{
    private const int MaxUnlearnable = 100;
    private readonly SortedDictionary<(UInt128 Server, ushort Port), long> _servers = [];
    private readonly SortedDictionary<(UInt128 Source, string Connection), Peer> _peers = [];
    private readonly List<string> _unlearnable = [];
    private long _unlisted;

    /// <summary>COTP connects and S7 requests seen.</summary>
    public long Requests { get; private set; }

    /// <summary>Malformed packets or PDUs (each ends its direction, as the gateway closes).</summary>
    public long Malformed { get; private set; }

    /// <summary>What the first/last-seen comments number: "frame" (a capture) or "request" (<c>learn --listen</c>).</summary>
    public string SequenceLabel { get; init; } = "frame";

    /// <inheritdoc/>
    public bool OnConnect(in CaptureContext context, in CotpTpdu request)
    {
        ObserveConnect(context, request.Connection);
        return true;
    }

    /// <summary>A COTP connect asking for <paramref name="connection"/> (from a capture or the live gateway).</summary>
    public void ObserveConnect(in CaptureContext context, S7Connection connection)
    {
        Requests++;
        CountServer(context);
        var peer = PeerOf(context.Client, connection);
        peer.Connects.Record(context);
    }

    /// <inheritdoc/>
    public bool OnRequest(in CaptureContext context, S7Connection connection, bool plus, in S7Request request)
    {
        bool answer = request.Rosctr is S7Rosctr.Ack or S7Rosctr.AckData && request.Protocol == S7Protocol.S7comm && !plus;
        if (answer)
        {
            return true; // the client's answer to a job the server sent: relayed unjudged
        }
        if (request.Status == S7RequestStatus.Malformed)
        {
            Malformed++;
            Unlearnable(context, $"malformed S7 PDU from {PolicyLearner.FormatAddress(context.Client)} ({request.Error})");
            return false;
        }
        Requests++;
        CountServer(context);
        var function = plus ? S7Function.S7commPlus : request.Function;
        if (request.Status == S7RequestStatus.OutOfSpec)
        {
            Unlearnable(context, $"{S7Functions.PolicyWord(function)} from {PolicyLearner.FormatAddress(context.Client)}: out of spec ({request.Error}); the gateway refuses it whatever the policy");
            return true;
        }
        var peer = PeerOf(context.Client, connection);
        if (!peer.Functions.TryGetValue(function, out var seen))
        {
            peer.Functions[function] = seen = new Seen();
        }
        seen.Record(context);
        if (function is S7Function.PlcControl or S7Function.PlcStop && !plus)
        {
            peer.PiServices.Add(System.Text.Encoding.ASCII.GetString(request.PiService));
        }
        if (function is S7Function.ReadVar or S7Function.WriteVar)
        {
            var objects = function == S7Function.ReadVar ? peer.Reads : peer.Writes;
            foreach (var item in request.Items)
            {
                if (item.Syntax != S7SyntaxId.S7Any)
                {
                    objects.NotS7Any = true;
                    continue;
                }
                objects.Add(item.AreaCode, item.DbNumber, item.Start, item.Start + Math.Max(1, item.Length) - 1);
            }
        }
        return true;
    }

    /// <inheritdoc/>
    public void OnResponse(in CaptureContext context, in S7Header header)
    {
    }

    /// <inheritdoc/>
    public void OnMalformed(in CaptureContext context, bool isRequest, S7CaptureFault fault, S7FramingError framing, S7RequestError request)
    {
        Malformed++;
        if (isRequest)
        {
            Unlearnable(context, $"malformed TPKT/COTP from {PolicyLearner.FormatAddress(context.Client)} ({fault}{(framing != S7FramingError.None ? ": " + framing : "")})");
        }
    }

    private void CountServer(in CaptureContext context) =>
        _servers[(context.Server, context.ServerPort)] = _servers.GetValueOrDefault((context.Server, context.ServerPort)) + 1;

    private Peer PeerOf(UInt128 source, S7Connection connection)
    {
        var key = (source, connection.Kind == S7ConnectionKind.Unknown ? "" : ReplayReport.ConnectionWord(connection));
        if (!_peers.TryGetValue(key, out var peer))
        {
            _peers[key] = peer = new Peer();
        }
        return peer;
    }

    private void Unlearnable(in CaptureContext context, string what)
    {
        if (_unlearnable.Count < MaxUnlearnable)
        {
            _unlearnable.Add(string.Create(CultureInfo.InvariantCulture, $"{SequenceLabel} {context.FrameNumber}: {what}"));
        }
        else
        {
            _unlisted++;
        }
    }

    /// <summary>Writes the draft configuration: one S7 listener per server seen, all with the learned policy.</summary>
    public void WriteYaml(TextWriter output, IReadOnlyList<string> sources, ushort port)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(sources);
        var inv = CultureInfo.InvariantCulture;
        output.WriteLine("# Draft S7comm allow-list written by `edgeshield learn` from:");
        foreach (var source in sources)
        {
            output.WriteLine($"#   {source}");
        }
        output.WriteLine(string.Create(inv, $"# {Requests} requests (COTP connects and S7 PDUs), {Malformed} malformed, {_servers.Count} server(s) on port {port}."));
        output.WriteLine("# It allows exactly the connection types and functions seen, and for read-var/write-var the areas,");
        output.WriteLine("# blocks and byte spans touched (one rule per function holds the union over its items: split it");
        output.WriteLine("# per area using the spans listed). Review every rule, then switch mode to enforce.");
        output.WriteLine("# Check: edgeshield check --config FILE; replay: edgeshield replay --config FILE --pcap CAPTURE");
        if (_servers.Count == 0)
        {
            output.WriteLine("# No S7comm request was seen: nothing to allow.");
            return;
        }
        output.WriteLine();
        output.WriteLine("listeners:                     # one per server seen; all share the learned policy");
        int n = 0;
        foreach (var ((server, serverPort), _) in _servers)
        {
            n++;
            var address = PolicyLearner.ToIp(server);
            string upstream = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
            output.WriteLine(string.Create(inv, $"  - name: learned-s7-{n}"));
            output.WriteLine(string.Create(inv, $"    bind: 0.0.0.0:{(n == 1 ? serverPort : 15000 + n)}   # where clients connect; adjust"));
            output.WriteLine("    protocol: s7comm");
            output.WriteLine(string.Create(inv, $"    upstream: tcp://{upstream}:{serverPort}"));
            output.WriteLine("    policy: learned");
        }
        output.WriteLine();
        output.WriteLine("policies:");
        WritePolicy(output, "learned");
    }

    /// <summary>Writes the learned policy alone, named <paramref name="name"/>, as an entry of <c>policies:</c>.</summary>
    public void WritePolicy(TextWriter output, string name)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(name);
        var inv = CultureInfo.InvariantCulture;
        output.WriteLine($"  {name}:");
        output.WriteLine("    protocol: s7comm");
        output.WriteLine("    mode: monitor              # logs what it would deny; enforce once reviewed");
        output.WriteLine("    on-deny: exception");
        var rules = new List<Action>();
        foreach (var ((source, connection), peer) in _peers)
        {
            WriteRules(output, PolicyLearner.FormatAddress(source), connection, peer, rules);
        }
        if (rules.Count == 0)
        {
            output.WriteLine("    rules: []                  # nothing learnable: every request was refused whatever the policy");
        }
        else
        {
            output.WriteLine("    rules:");
            foreach (var write in rules)
            {
                write();
            }
        }
        foreach (var line in _unlearnable)
        {
            output.WriteLine($"    # not allowed: {line}");
        }
        if (_unlisted > 0)
        {
            output.WriteLine(string.Create(inv, $"    # not allowed: {_unlisted} more such requests, not listed"));
        }
    }

    private void WriteRules(TextWriter output, string source, string connection, Peer peer, List<Action> rules)
    {
        string who = connection.Length == 0 ? source : $"{source} {connection}";
        string Head(string what) => $"      - name: {who} {what}";
        void Common()
        {
            output.WriteLine($"        from: {source}");
            if (connection.Length > 0)
            {
                output.WriteLine($"        connection: {connection}");
            }
        }
        if (peer.Connects.Count > 0)
        {
            rules.Add(() => output.WriteLine($"      # {who}: {peer.Connects.Describe("COTP connects", SequenceLabel)}"));
        }
        foreach (var (function, objects) in new[] { (S7Function.ReadVar, peer.Reads), (S7Function.WriteVar, peer.Writes) })
        {
            if (!peer.Functions.TryGetValue(function, out var seen))
            {
                continue;
            }
            string word = S7Functions.PolicyWord(function);
            rules.Add(() =>
            {
                output.WriteLine(Head(word.Replace("-var", "s", StringComparison.Ordinal)));
                Common();
                output.WriteLine($"        function: {word}          # {seen.Describe("requests", SequenceLabel)}");
                objects.Write(output);
            });
        }
        var pi = peer.Functions.Keys.Where(f => f is S7Function.PlcControl or S7Function.PlcStop).ToList();
        if (pi.Count > 0)
        {
            rules.Add(() =>
            {
                output.WriteLine(Head("plc control"));
                Common();
                output.WriteLine($"        function: [{string.Join(", ", pi.Select(S7Functions.PolicyWord))}]");
                foreach (var f in pi)
                {
                    output.WriteLine($"        # {S7Functions.PolicyWord(f)}: {peer.Functions[f].Describe("requests", SequenceLabel)}");
                }
                if (peer.PiServices.All(IsNamedPiService))
                {
                    output.WriteLine($"        pi-service: [{string.Join(", ", peer.PiServices)}]");
                }
                else
                {
                    output.WriteLine($"        # PI services seen: {string.Join(", ", peer.PiServices)} (one is not a pi-service word: every PI service is allowed)");
                }
            });
        }
        var others = peer.Functions.Keys.Where(f => f is not (S7Function.ReadVar or S7Function.WriteVar or S7Function.PlcControl or S7Function.PlcStop)).ToList();
        if (others.Count > 0 || peer.Functions.Count == 0)
        {
            rules.Add(() =>
            {
                output.WriteLine(Head("functions"));
                Common();
                if (others.Count == 0)
                {
                    // Only connects were seen: a rule must name the source and connection type for the connect to pass.
                    output.WriteLine("        function: setup-communication   # no job was seen after the connects");
                    return;
                }
                output.WriteLine($"        function: [{string.Join(", ", others.Select(S7Functions.PolicyWord))}]");
                foreach (var f in others)
                {
                    output.WriteLine($"        # {S7Functions.PolicyWord(f)}: {peer.Functions[f].Describe("requests", SequenceLabel)}");
                }
            });
        }
    }

    private static bool IsNamedPiService(string name) =>
        name is "_INSE" or "_DELE" or "P_PROGRAM" or "_MODU" or "_GARB" || (name.StartsWith("_N_", StringComparison.Ordinal) && name.Length > 3);

    /// <summary>The area word of DESIGN.md for an area code (S7-200 areas by number).</summary>
    internal static string AreaWord(byte code) => code switch
    {
        0x81 => "i",
        0x82 => "q",
        0x83 => "m",
        0x84 => "db",
        0x85 => "di",
        0x80 => "p",
        0x1C => "c",
        0x1D => "t",
        0x86 => "l",
        0x87 => "v",
        _ => code.ToString(CultureInfo.InvariantCulture),
    };

    private sealed class Seen
    {
        public long Count;
        public long FirstNs = long.MaxValue;
        public long LastNs = long.MinValue;
        public int FirstFrame;
        public int LastFrame;

        public void Record(in CaptureContext context)
        {
            if (Count == 0)
            {
                FirstNs = context.TimestampNs;
                FirstFrame = context.FrameNumber;
            }
            Count++;
            LastNs = context.TimestampNs;
            LastFrame = context.FrameNumber;
        }

        public string Describe(string what, string label) => string.Create(CultureInfo.InvariantCulture,
            $"{Count} {what}, first {PolicyLearner.Time(FirstNs)} ({label} {FirstFrame}), last {PolicyLearner.Time(LastNs)} ({label} {LastFrame})");
    }

    /// <summary>The areas, blocks and merged spans one function touched.</summary>
    private sealed class Objects
    {
        // (area, block) → spans; block 0 outside db/di.
        private readonly SortedDictionary<(byte Area, int Block), List<(int First, int Last)>> _spans = [];
        public bool NotS7Any;

        public void Add(byte area, int block, int first, int last)
        {
            if (area is not (0x84 or 0x85))
            {
                block = 0;
            }
            if (!_spans.TryGetValue((area, block), out var list))
            {
                _spans[(area, block)] = list = [];
            }
            Merge(list, first, last);
        }

        private static void Merge(List<(int First, int Last)> list, int first, int last)
        {
            list.Add((first, last));
            list.Sort();
            int w = 0;
            for (int r = 1; r < list.Count; r++)
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

        public void Write(TextWriter output)
        {
            if (NotS7Any)
            {
                output.WriteLine("        # items that are not S7ANY (DB-read, NCK, symbolic…) were seen: no area, db or address bound");
            }
            if (_spans.Count == 0 || NotS7Any)
            {
                return;
            }
            var areas = _spans.Keys.Select(k => k.Area).Distinct().ToList();
            output.WriteLine($"        area: [{string.Join(", ", areas.Select(AreaWord))}]");
            var blocks = _spans.Keys.Where(k => k.Area is 0x84 or 0x85).Select(k => k.Block).Distinct().Order().ToList();
            if (blocks.Count > 0 && blocks[0] > 0)
            {
                output.WriteLine($"        db: [{string.Join(", ", Ranges(blocks.Select(b => (b, b))))}]");
            }
            var all = new List<(int First, int Last)>();
            foreach (var spans in _spans.Values)
            {
                foreach (var span in spans)
                {
                    Merge(all, span.First, span.Last);
                }
            }
            output.WriteLine($"        address: [{string.Join(", ", Ranges(all))}]");
            foreach (var ((area, block), spans) in _spans)
            {
                string where = area is 0x84 or 0x85 ? $"{AreaWord(area)} {block}" : AreaWord(area);
                output.WriteLine($"        #   {where}: {string.Join(", ", Ranges(spans))}");
            }
        }

        private static IEnumerable<string> Ranges(IEnumerable<(int First, int Last)> spans)
        {
            var merged = new List<(int First, int Last)>();
            foreach (var (first, last) in spans)
            {
                Merge(merged, first, last);
            }
            return merged.Select(s => s.First == s.Last
                ? s.First.ToString(CultureInfo.InvariantCulture)
                : string.Create(CultureInfo.InvariantCulture, $"{s.First}-{s.Last}"));
        }
    }

    private sealed class Peer
    {
        public readonly Seen Connects = new();
        public readonly SortedDictionary<S7Function, Seen> Functions = [];
        public readonly SortedSet<string> PiServices = new(StringComparer.Ordinal);
        public readonly Objects Reads = new();
        public readonly Objects Writes = new();
    }
}
