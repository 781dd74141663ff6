using System.Globalization;
using System.Net;
using System.Text;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Policy.Learn;

/// <summary>
/// Drafts the smallest allow-list that allows every request seen (<c>edgeshield learn</c>): one
/// policy for every server seen (one listener each), whose rules are per source, unit and function, with the touched addresses
/// merged into ranges and the written register values bounded by what was written; rules that
/// differ only in function, then only in source, then only in unit are merged. Each rule carries a
/// comment with counts and first/last seen. What no rule can allow (out-of-spec, malformed, 43 with
/// a MEI type other than 13/14) is listed in comments instead.
/// </summary>
/// <remarks>
/// Fed from captures (<see cref="IModbusCaptureObserver"/>) or, by <c>learn --listen</c>, from a live
/// gateway's frame path (<see cref="Observe"/>): after the first request of a source, unit and
/// function, recording one allocates nothing (counts, first/last seen, address ranges merged in
/// place, value bounds). Not thread-safe: a live caller serialises calls. Writing the draft allocates freely.
/// </remarks>
public sealed class PolicyLearner : IModbusCaptureObserver
{
    /// <summary>Requests no rule can allow that are listed one by one per server; the rest are counted.</summary>
    public const int MaxListedUnlearnable = 100;

    // Hash maps, not sorted ones: a SortedDictionary lookup with a tuple key allocated 48 B per request.
    // The draft is written in sorted order all the same (deterministic output).
    private readonly Dictionary<(UInt128 Server, ushort Port), ServerTraffic> _servers = [];

    /// <summary>Requests seen, learnable or not.</summary>
    public long Requests { get; private set; }

    /// <summary>Malformed ADUs seen (never allowed).</summary>
    public long Malformed { get; private set; }

    /// <summary>What <see cref="CaptureContext.FrameNumber"/> counts, in the comments: <c>frame</c> (a capture's) or <c>request</c> (live).</summary>
    public string SequenceLabel { get; init; } = "frame";

    /// <inheritdoc/>
    public bool OnRequest(in CaptureContext context, in ModbusTcpFrame frame, in ModbusRequest request)
    {
        Observe(context, frame.UnitId, request);
        return true;
    }

    /// <summary>Records one request to <paramref name="unitId"/>, seen at <paramref name="context"/>; <see cref="CaptureContext.FrameNumber"/> orders the comments.</summary>
    public void Observe(in CaptureContext context, byte unitId, in ModbusRequest request)
    {
        Requests++;
        var server = Server(context);
        if (request.Status != RequestStatus.Valid)
        {
            if (!server.CountedUnlisted())
            {
                server.AddUnlearnable(this, context, $"out-of-spec {request.Violation} (FC{request.FunctionCode}) from {Format(context.Client)}: the gateway refuses it whatever the policy");
            }
            return;
        }
        string? function = FunctionKey(request.FunctionCode, request.MeiType, request.SubFunction);
        if (function is null)
        {
            if (!server.CountedUnlisted())
            {
                server.AddUnlearnable(this, context, $"FC43 MEI type {request.MeiType} from {Format(context.Client)}: only a rule without 'function:' allows it");
            }
            return;
        }
        var key = (context.Client, unitId, function);
        if (!server.Seen.TryGetValue(key, out var seen))
        {
            server.Seen[key] = seen = new Observation { FirstNs = context.TimestampNs, FirstFrame = context.FrameNumber };
        }
        seen.Count++;
        seen.LastNs = context.TimestampNs;
        seen.LastFrame = context.FrameNumber;
        if (!request.ReadSpan.IsEmpty)
        {
            seen.Addresses.Add(request.ReadSpan.Start, request.ReadSpan.Last);
        }
        if (!request.WriteSpan.IsEmpty)
        {
            seen.Addresses.Add(request.WriteSpan.Start, request.WriteSpan.Last);
        }
        if (request.ReadSpan.IsEmpty && request.WriteSpan.IsEmpty)
        {
            seen.TouchesNoTable = true;
        }
        if (request.FunctionCode is 6 or 16 or 23)
        {
            for (int i = 0; i < request.RegisterValueCount; i++)
            {
                int v = request.RegisterValue(i);
                seen.MinValue = Math.Min(seen.MinValue, v);
                seen.MaxValue = Math.Max(seen.MaxValue, v);
            }
        }
    }

    /// <inheritdoc/>
    public void OnResponse(in CaptureContext context, in ModbusTcpFrame frame)
    {
    }

    /// <inheritdoc/>
    public void OnMalformed(in CaptureContext context, bool isRequest, FramingError reason, short unitId, short functionCode)
    {
        Malformed++;
        var server = Server(context);
        if (server.CountedUnlisted())
        {
            return;
        }
        server.AddUnlearnable(this, context, $"malformed {(isRequest ? "request" : "response")} ({reason}); the rest of that direction was not read");
    }

    /// <summary>Writes the draft configuration: a listener and a policy per server seen.</summary>
    public void WriteYaml(TextWriter output, IReadOnlyList<string> sources, ushort port) => WriteYaml(output, sources, port, null);

    /// <summary>
    /// Writes the draft configuration. With <paramref name="listeners"/> (<c>learn --listen</c>) those
    /// listeners are written, all with the learned policy, instead of one per server seen.
    /// </summary>
    public void WriteYaml(TextWriter output, IReadOnlyList<string> sources, ushort port, EdgeShieldConfig? listeners) => WriteYaml(output, sources, port, listeners, null);

    /// <summary>The policy <c>learn --listen</c> gives a config's <c>s7comm</c> listeners.</summary>
    public const string S7PolicyName = "learned-s7";

    /// <summary>
    /// As <see cref="WriteYaml(TextWriter, IReadOnlyList{string}, ushort, EdgeShieldConfig?)"/>; with
    /// <paramref name="s7"/> (<c>learn --listen</c> on a config with <c>s7comm</c> listeners) those listeners get the
    /// policy <see cref="S7PolicyName"/> that <paramref name="s7"/> learned, written after this one.
    /// </summary>
    public void WriteYaml(TextWriter output, IReadOnlyList<string> sources, ushort port, EdgeShieldConfig? listeners, S7PolicyLearner? s7) =>
        WriteYaml(output, sources, port, listeners, s7, null);

    /// <summary>The policy <c>learn --listen</c> gives a config's <c>iec104</c> listeners.</summary>
    public const string Iec104PolicyName = "learned-iec104";

    /// <summary>
    /// As <see cref="WriteYaml(TextWriter, IReadOnlyList{string}, ushort, EdgeShieldConfig?, S7PolicyLearner?)"/>; with
    /// <paramref name="iec104"/> (<c>learn --listen</c> on a config with <c>iec104</c> listeners) those listeners get the
    /// policy <see cref="Iec104PolicyName"/> that <paramref name="iec104"/> learned, written last.
    /// </summary>
    public void WriteYaml(TextWriter output, IReadOnlyList<string> sources, ushort port, EdgeShieldConfig? listeners, S7PolicyLearner? s7, Iec104PolicyLearner? iec104)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(sources);
        output.WriteLine("# Draft allow-list written by `edgeshield learn` from:");
        foreach (var source in sources)
        {
            output.WriteLine($"#   {source}");
        }
        output.WriteLine(listeners is null
            ? string.Create(CultureInfo.InvariantCulture, $"# {Requests} requests, {Malformed} malformed ADUs, {_servers.Count} server(s) on port {port}.")
            : string.Create(CultureInfo.InvariantCulture, $"# {Requests} requests, {Malformed} malformed frames, on {listeners.Listeners.Count} listener(s)."));
        if (s7 is not null)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# s7comm listeners: {s7.Requests} requests (COTP connects and S7 PDUs), learned into the policy {S7PolicyName}."));
        }
        if (iec104 is not null)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# iec104 listeners: {iec104.Requests} ASDUs of clients, learned into the policy {Iec104PolicyName}."));
        }
        output.WriteLine("# It allows exactly what was seen (addresses merged into ranges, written values bounded by what");
        output.WriteLine("# was written). Review every rule, widen or narrow it, then switch mode to enforce.");
        output.WriteLine("# Check: edgeshield check --config FILE; replay: edgeshield replay --config FILE --pcap CAPTURE");
        if (_servers.Count == 0 && listeners is null)
        {
            output.WriteLine("# No Modbus request was seen: nothing to allow.");
            return;
        }
        output.WriteLine();
        if (listeners is not null)
        {
            WriteListeners(output, listeners);
        }
        else
        {
            WriteListeners(output);
        }
        output.WriteLine();
        output.WriteLine("policies:");
        if (listeners is null || listeners.Listeners.Any(l => l.Protocol is ListenerProtocol.ModbusTcp or ListenerProtocol.ModbusRtuOverTcp)
            || (s7 is null && iec104 is null))
        {
            WriteRules(output);
        }
        if (s7 is not null)
        {
            output.WriteLine();
            s7.WritePolicy(output, S7PolicyName);
        }
        if (iec104 is not null)
        {
            output.WriteLine();
            iec104.WritePolicy(output, Iec104PolicyName);
        }
    }

    /// <summary>One listener per server seen, bound where clients would connect (to adjust).</summary>
    private void WriteListeners(TextWriter output)
    {
        output.WriteLine("listeners:                     # one per server seen; all share the learned policy");
        int n = 0;
        foreach (var ((server, serverPort), _) in _servers.OrderBy(p => p.Key))
        {
            n++;
            var address = ToIp(server);
            string upstream = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  - name: learned-{n}"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    bind: 0.0.0.0:{(n == 1 ? serverPort : 15000 + n)}   # where clients connect; adjust"));
            output.WriteLine($"    upstream: tcp://{upstream}:{serverPort.ToString(CultureInfo.InvariantCulture)}");
            output.WriteLine("    policy: learned");
        }
    }

    /// <summary>Writes the rules of the learned policy.</summary>
    private void WriteRules(TextWriter output)
    {
        output.WriteLine("  learned:");
        output.WriteLine("    mode: monitor              # logs what it would deny; enforce once reviewed");
        output.WriteLine("    on-deny: exception");
        var all = new ServerTraffic();
        foreach (var (_, traffic) in _servers.OrderBy(p => p.Key))
        {
            foreach (var (key, seen) in traffic.Seen.OrderBy(p => p.Key))
            {
                if (!all.Seen.TryGetValue(key, out var combined))
                {
                    all.Seen[key] = combined = new Observation { FirstNs = long.MaxValue, LastNs = long.MinValue, FirstFrame = int.MaxValue };
                }
                combined.Join(seen);
            }
            all.Unlearnable.AddRange(traffic.Unlearnable);
            all.Unlisted += traffic.Unlisted;
        }
        var rules = Merge(all);
        if (rules.Count == 0)
        {
            output.WriteLine("    rules: []                  # nothing learnable: every request was refused whatever the policy");
        }
        else
        {
            output.WriteLine("    rules:");
            foreach (var rule in rules)
            {
                rule.Write(output, SequenceLabel);
            }
        }
        foreach (var line in all.Unlearnable)
        {
            output.WriteLine($"    # not allowed: {line}");
        }
        if (all.Unlisted > 0)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    # not allowed: {all.Unlisted} more such requests, not listed"));
        }
    }

    /// <summary>The listeners (and the serial buses they name) of the configuration the gateway ran, each with the learned policy.</summary>
    private static void WriteListeners(TextWriter output, EdgeShieldConfig config)
    {
        var inv = CultureInfo.InvariantCulture;
        if (config.SerialBuses.Count > 0)
        {
            output.WriteLine($"serial:                        # as in {config.Path} (optional keys left at their defaults)");
            foreach (var bus in config.SerialBuses)
            {
                output.WriteLine($"  - name: {bus.Name}");
                output.WriteLine($"    device: {bus.Device}");
                output.WriteLine(string.Create(inv, $"    baud: {bus.Baud}"));
                output.WriteLine($"    parity: {bus.Parity.ToString().ToLowerInvariant()}");
                output.WriteLine(string.Create(inv, $"    stop-bits: {bus.StopBits}"));
                output.WriteLine(string.Create(inv, $"    response-timeout-ms: {bus.ResponseTimeoutMs}"));
            }
            output.WriteLine();
        }
        output.WriteLine(config.Listeners.Any(l => l.Protocol is ListenerProtocol.S7comm or ListenerProtocol.Iec104)
            ? $"listeners:                     # those of {config.Path}; Modbus ones share the policy learned, s7comm ones {S7PolicyName}, iec104 ones {Iec104PolicyName}"
            : $"listeners:                     # those of {config.Path}; all share the learned policy");
        foreach (var listener in config.Listeners)
        {
            output.WriteLine($"  - name: \"{listener.Name}\"");
            output.WriteLine($"    bind: \"{listener.Bind}\"");
            output.WriteLine($"    protocol: {listener.Protocol switch { ListenerProtocol.ModbusRtuOverTcp => "modbus-rtu-over-tcp", ListenerProtocol.S7comm => "s7comm", ListenerProtocol.Iec104 => "iec104", _ => "modbus-tcp" }}");
            output.WriteLine($"    upstream: {listener.Upstream}");
            output.WriteLine(listener.Protocol switch { ListenerProtocol.S7comm => $"    policy: {S7PolicyName}", ListenerProtocol.Iec104 => $"    policy: {Iec104PolicyName}", _ => "    policy: learned" });
        }
    }

    private ServerTraffic Server(in CaptureContext context)
    {
        var key = (context.Server, context.ServerPort);
        if (!_servers.TryGetValue(key, out var traffic))
        {
            _servers[key] = traffic = new ServerTraffic();
        }
        return traffic;
    }

    /// <summary>The name or number a rule's <c>function:</c> takes for this request; null when none can name it.</summary>
    private static string? FunctionKey(byte functionCode, byte meiType, ushort subFunction)
    {
        if (functionCode == 8)
        {
            // By sub-function: a bare 8 (or 'diagnostics') leaves out 8/1 and 8/4; above 255 only a bare 8 names it.
            return subFunction <= byte.MaxValue ? DiagnosticsKeys[subFunction] : FunctionNumbers[8];
        }
        if (functionCode == ModbusFunctions.EncapsulatedInterface)
        {
            return meiType switch
            {
                ModbusFunctions.MeiDeviceIdentification => "read-device-identification",
                ModbusFunctions.MeiCanOpen => "canopen-general-reference",
                _ => null,
            };
        }
        return ModbusFunctions.Name(ModbusFunctions.Classify(functionCode, 0)) ?? FunctionNumbers[functionCode];
    }

    // Codes without a name are keyed by their number: made once, so a live learner allocates no text per request.
    private static readonly string[] FunctionNumbers = Enumerable.Range(0, 256).Select(n => n.ToString(CultureInfo.InvariantCulture)).ToArray();
    private static readonly string[] DiagnosticsKeys = Enumerable.Range(0, 256).Select(n => "8/" + n.ToString(CultureInfo.InvariantCulture)).ToArray();

    private static List<LearnedRule> Merge(ServerTraffic traffic)
    {
        // 1. per source and unit: functions with the same addresses and values share a rule.
        var bySourceUnit = new SortedDictionary<string, LearnedRule>(StringComparer.Ordinal);
        foreach (var ((source, unit, function), seen) in traffic.Seen.OrderBy(p => p.Key))
        {
            string shape = seen.Shape;
            string key = $"{source:X32}|{unit:D3}|{shape}";
            if (!bySourceUnit.TryGetValue(key, out var rule))
            {
                bySourceUnit[key] = rule = new LearnedRule(seen);
            }
            rule.Sources.Add(source);
            rule.Units.Add(unit);
            rule.Functions.Add(function);
            rule.Absorb(seen, function);
        }
        // 2. same units, functions and shape: sources share a rule; 3. then units do.
        var merged = MergeBy(bySourceUnit.Values, r => $"{string.Join(",", r.Units)}|{string.Join(",", r.Functions)}|{r.Shape}");
        merged = MergeBy(merged, r => $"{string.Join(",", r.Sources.Select(s => s.ToString("X32", CultureInfo.InvariantCulture)))}|{string.Join(",", r.Functions)}|{r.Shape}");
        merged.Sort((a, b) => a.FirstFrame.CompareTo(b.FirstFrame));
        return merged;
    }

    private static List<LearnedRule> MergeBy(IEnumerable<LearnedRule> rules, Func<LearnedRule, string> key)
    {
        var groups = new SortedDictionary<string, LearnedRule>(StringComparer.Ordinal);
        foreach (var rule in rules)
        {
            string k = key(rule);
            if (groups.TryGetValue(k, out var into))
            {
                into.Join(rule);
            }
            else
            {
                groups[k] = rule;
            }
        }
        return [.. groups.Values];
    }

    internal static IPAddress ToIp(UInt128 value)
    {
        var bytes = new byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(bytes, value);
        var address = new IPAddress(bytes);
        return address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
    }

    internal static string Format(UInt128 value) => ToIp(value).ToString();

    /// <summary>A 128-bit capture address (IPv4 as IPv4-mapped IPv6) as text.</summary>
    public static string FormatAddress(UInt128 value) => Format(value);

    internal static string Time(long ns) =>
        DateTimeOffset.FromUnixTimeMilliseconds(ns / 1_000_000).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private sealed class ServerTraffic
    {
        public Dictionary<(UInt128 Source, byte Unit, string Function), Observation> Seen { get; } = [];
        public List<string> Unlearnable { get; } = [];
        public long Unlisted { get; set; }

        /// <summary>
        /// Beyond <see cref="MaxListedUnlearnable"/> listed requests that no rule can allow, counts one
        /// more and returns true (a flood must not grow memory, nor cost text per request).
        /// </summary>
        public bool CountedUnlisted()
        {
            if (Unlearnable.Count < MaxListedUnlearnable)
            {
                return false;
            }
            Unlisted++;
            return true;
        }

        /// <summary>Lists a request no rule can allow.</summary>
        public void AddUnlearnable(PolicyLearner learner, in CaptureContext context, string what) =>
            Unlearnable.Add(string.Create(CultureInfo.InvariantCulture, $"{learner.SequenceLabel} {context.FrameNumber}: {what}"));
    }

    private sealed class Observation
    {
        public long Count;
        public long FirstNs;
        public long LastNs;
        public int FirstFrame;
        public int LastFrame;
        public int MinValue = int.MaxValue;
        public int MaxValue = int.MinValue;
        public bool TouchesNoTable;
        public RangeList Addresses { get; } = new();

        public void Join(Observation other)
        {
            Count += other.Count;
            FirstNs = Math.Min(FirstNs, other.FirstNs);
            LastNs = Math.Max(LastNs, other.LastNs);
            FirstFrame = Math.Min(FirstFrame, other.FirstFrame);
            LastFrame = Math.Max(LastFrame, other.LastFrame);
            MinValue = Math.Min(MinValue, other.MinValue);
            MaxValue = Math.Max(MaxValue, other.MaxValue);
            TouchesNoTable |= other.TouchesNoTable;
            Addresses.AddAll(other.Addresses);
        }

        /// <summary>What a rule must say besides source, unit and function: addresses and values.</summary>
        public string Shape
        {
            get
            {
                string addresses = TouchesNoTable ? "any" : Addresses.ToYaml();
                string values = MinValue <= MaxValue ? string.Create(CultureInfo.InvariantCulture, $"{MinValue}-{MaxValue}") : "";
                return $"{addresses}|{values}";
            }
        }
    }

    /// <summary>Address ranges touched, merged when they overlap or touch.</summary>
    private sealed class RangeList
    {
        private readonly List<(int Low, int High)> _ranges = [];

        public void Add(int low, int high)
        {
            _ranges.Add((low, high));
            if (_ranges.Count > 64)
            {
                Compact();
            }
        }

        public void AddAll(RangeList other)
        {
            foreach (var (low, high) in other._ranges)
            {
                Add(low, high);
            }
        }

        public string ToYaml()
        {
            Compact();
            return string.Join(", ", _ranges.Select(r => r.Low == r.High
                ? r.Low.ToString(CultureInfo.InvariantCulture)
                : string.Create(CultureInfo.InvariantCulture, $"{r.Low}-{r.High}")));
        }

        /// <summary>Sorts and merges in place: no allocation once the list has grown (a live learner calls this on the frame path).</summary>
        private void Compact()
        {
            _ranges.Sort();
            int kept = 0;
            for (int i = 0; i < _ranges.Count; i++)
            {
                var r = _ranges[i];
                if (kept > 0 && r.Low <= _ranges[kept - 1].High + 1)
                {
                    _ranges[kept - 1] = (_ranges[kept - 1].Low, Math.Max(_ranges[kept - 1].High, r.High));
                }
                else
                {
                    _ranges[kept++] = r;
                }
            }
            _ranges.RemoveRange(kept, _ranges.Count - kept);
        }
    }

    private sealed class LearnedRule(Observation shapeOf)
    {
        public SortedSet<UInt128> Sources { get; } = [];
        public SortedSet<byte> Units { get; } = [];
        public SortedSet<string> Functions { get; } = new(StringComparer.Ordinal);
        public string Shape { get; } = shapeOf.Shape;
        public SortedDictionary<string, long> CountByFunction { get; } = new(StringComparer.Ordinal);
        public long Count { get; private set; }
        public long FirstNs { get; private set; } = long.MaxValue;
        public long LastNs { get; private set; } = long.MinValue;
        public int FirstFrame { get; private set; } = int.MaxValue;
        public int LastFrame { get; private set; }

        public void Absorb(Observation seen, string function)
        {
            CountByFunction[function] = CountByFunction.GetValueOrDefault(function) + seen.Count;
            Count += seen.Count;
            FirstNs = Math.Min(FirstNs, seen.FirstNs);
            LastNs = Math.Max(LastNs, seen.LastNs);
            FirstFrame = Math.Min(FirstFrame, seen.FirstFrame);
            LastFrame = Math.Max(LastFrame, seen.LastFrame);
        }

        public void Join(LearnedRule other)
        {
            Sources.UnionWith(other.Sources);
            Units.UnionWith(other.Units);
            Functions.UnionWith(other.Functions);
            foreach (var (function, count) in other.CountByFunction)
            {
                CountByFunction[function] = CountByFunction.GetValueOrDefault(function) + count;
            }
            Count += other.Count;
            FirstNs = Math.Min(FirstNs, other.FirstNs);
            LastNs = Math.Max(LastNs, other.LastNs);
            FirstFrame = Math.Min(FirstFrame, other.FirstFrame);
            LastFrame = Math.Max(LastFrame, other.LastFrame);
        }

        public void Write(TextWriter output, string label)
        {
            var inv = CultureInfo.InvariantCulture;
            var parts = Shape.Split('|');
            string counts = string.Join(", ", CountByFunction.Select(p => $"{p.Key} {p.Value.ToString(inv)}"));
            output.WriteLine(string.Create(inv, $"      # {Count} requests ({counts}); first seen {Time(FirstNs)} ({label} {FirstFrame}), last {Time(LastNs)} ({label} {LastFrame})"));
            string sources = string.Join(", ", Sources.Select(s => $"\"{Format(s)}\""));
            string name = Sources.Count == 1 ? Format(Sources.Min) : $"{Sources.Count} sources";
            output.WriteLine(string.Create(inv, $"      - name: \"{name} unit {string.Join(",", Units)} {string.Join(" ", Functions)}\""));
            output.WriteLine($"        from: [{sources}]");
            output.WriteLine($"        unit: [{string.Join(", ", Units)}]");
            output.WriteLine($"        function: [{string.Join(", ", Functions)}]");
            if (parts[0] != "any")
            {
                output.WriteLine($"        address: [{parts[0]}]");
            }
            if (parts[1].Length > 0)
            {
                output.WriteLine($"        value: {parts[1]}");
            }
        }
    }
}
