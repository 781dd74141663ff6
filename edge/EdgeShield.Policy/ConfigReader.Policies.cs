using System.Globalization;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Policy.Yaml;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Policy;

internal sealed partial class ConfigReader
{
    private static readonly string[] PolicyKeys = ["protocol", "mode", "on-deny", "rules"];
    private static readonly string[] RuleKeys = ["name", "from", "unit", "function", "address", "type", "word-order", "value", "rate", "maintenance"];
    /// <summary>Rule <c>type:</c>: the telemetry tags' register types up to 32 bits.</summary>
    private static readonly string[] RuleValueTypes = ["int16", "uint16", "int32", "uint32", "float32"];
    private static readonly string[] Modes = ["enforce", "monitor"];
    private static readonly string[] OnDenyActions = ["exception", "drop", "close"];
    private static readonly string[] FunctionGroups = ["read", "write", "diagnostics", "program"];

    /// <summary>Function names of DESIGN.md. <c>diagnostics</c> is not here: that word names the group (which includes 8).</summary>
    private static readonly (string Name, byte Code)[] FunctionNames =
    [
        ("read-coils", 1), ("read-discrete-inputs", 2), ("read-holding-registers", 3), ("read-input-registers", 4),
        ("write-single-coil", 5), ("write-single-register", 6), ("read-exception-status", 7),
        ("get-comm-event-counter", 11), ("get-comm-event-log", 12), ("write-multiple-coils", 15),
        ("write-multiple-registers", 16), ("report-server-id", 17), ("read-file-record", 20), ("write-file-record", 21),
        ("mask-write-register", 22), ("read-write-multiple-registers", 23), ("read-fifo-queue", 24),
    ];

    /// <summary>
    /// FC 8 sub-functions by the names of MODBUS over serial line v1.02, 6.8.1, in kebab case. 01 and 04
    /// are not in a bare <c>8</c> or the <c>diagnostics</c> group: they restart a device's port or take it
    /// off the bus, so they pass only when named (<c>8/1</c>, <c>restart-communications</c>).
    /// </summary>
    internal static readonly (string Name, byte SubFunction)[] DiagnosticsNames =
    [
        ("return-query-data", 0), ("restart-communications", 1), ("return-diagnostic-register", 2),
        ("change-ascii-input-delimiter", 3), ("force-listen-only-mode", 4),
        ("clear-counters-and-diagnostic-register", 10), ("return-bus-message-count", 11),
        ("return-bus-communication-error-count", 12), ("return-bus-exception-error-count", 13),
        ("return-server-message-count", 14), ("return-server-no-response-count", 15),
        ("return-server-nak-count", 16), ("return-server-busy-count", 17),
        ("return-bus-character-overrun-count", 18), ("clear-overrun-counter-and-flag", 20),
    ];

    private const string ReadDeviceIdentification = "read-device-identification";
    private const string CanOpenGeneralReference = "canopen-general-reference";

    private (Dictionary<string, CompiledPolicy> Compiled, Dictionary<string, YamlNode> Declared) ReadPolicies(KeyMap root)
    {
        var compiled = new Dictionary<string, CompiledPolicy>(StringComparer.Ordinal);
        var declared = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        if (!root.TryGet("policies", out var node) || node.IsNull)
        {
            return (compiled, declared);
        }
        if (node.Kind != YamlNodeKind.Mapping)
        {
            _diagnostics.Error(node, $"'policies' must be a mapping from policy name to policy, not {node.Describe()}");
            return (compiled, declared);
        }
        foreach (var (keyNode, value) in node.Entries)
        {
            if (keyNode.Kind != YamlNodeKind.Scalar || keyNode.IsNull)
            {
                _diagnostics.Error(keyNode, $"a policy name must be text, not {keyNode.Describe()}");
                continue;
            }
            var name = keyNode.Value;
            if (declared.TryGetValue(name, out var first))
            {
                _diagnostics.Error(keyNode, $"duplicate policy '{name}' (first at line {first.Line})");
                continue;
            }
            declared.Add(name, keyNode);
            var policy = ReadPolicy(name, value);
            if (policy is not null)
            {
                compiled.Add(name, policy);
            }
        }
        return (compiled, declared);
    }

    private CompiledPolicy? ReadPolicy(string name, YamlNode node)
    {
        var what = $"policy '{name}'";
        var map = Map(node, what, PolicyKeys);
        if (map is null)
        {
            return null;
        }
        var ok = true;
        var protocol = ReadPolicyProtocol(map);
        if (protocol is { } declaredProtocol)
        {
            _policyProtocols[name] = declaredProtocol;
        }
        else
        {
            ok = false;
        }
        var family = protocol?.Protocol ?? ListenerProtocol.ModbusTcp;
        PolicyMode mode = PolicyMode.Enforce;
        if (!map.TryGet("mode", out var modeNode))
        {
            Missing(map, what, "mode", "enforce or monitor; there is no default");
            ok = false;
        }
        else
        {
            switch (OneOf(modeNode, "mode", Modes))
            {
                case "enforce": mode = PolicyMode.Enforce; break;
                case "monitor": mode = PolicyMode.Monitor; break;
                default: ok = false; break;
            }
        }
        var onDeny = OnDeny.Exception;
        if (map.TryGet("on-deny", out var onDenyNode))
        {
            switch (OneOf(onDenyNode, "on-deny", OnDenyActions))
            {
                case "exception": onDeny = OnDeny.Exception; break;
                case "drop": onDeny = OnDeny.Drop; break;
                case "close": onDeny = OnDeny.Close; break;
                default: ok = false; break;
            }
        }

        var rules = new List<AllowRule>();
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var ruleNode in Sequence(map, "rules", "rule"))
        {
            var rule = family switch
            {
                ListenerProtocol.S7comm => ReadS7Rule(ruleNode, rules.Count + 1, name),
                ListenerProtocol.Iec104 => ReadIec104Rule(ruleNode, rules.Count + 1, name),
                _ => ReadRule(ruleNode, rules.Count + 1, name),
            };
            if (rule is null)
            {
                ok = false;
                continue;
            }
            if (names.TryGetValue(rule.Name, out var firstLine))
            {
                _diagnostics.Error(rule.Line, rule.Column, $"duplicate rule name '{rule.Name}' in {what} (first at line {firstLine}); audit events and replay counts name rules, so names must be unique");
                ok = false;
            }
            else
            {
                names.Add(rule.Name, rule.Line);
            }
            rules.Add(rule);
        }
        if (rules.Count > short.MaxValue)
        {
            _diagnostics.Error(map.Node, $"{what} has {rules.Count} rules; at most {short.MaxValue} are supported");
            ok = false;
        }
        if (!ok)
        {
            return null;
        }
        WarnShadowedRules(rules);
        return new CompiledPolicy(name, mode, onDeny, [.. rules], _maintenance) { Protocol = protocol!.Value.Protocol };
    }

    private AllowRule? ReadRule(YamlNode node, int number, string policy)
    {
        if (node.IsNull)
        {
            _diagnostics.Error(node, $"rule {number} is empty; a rule needs at least one of {string.Join(", ", RuleKeys)}");
            return null;
        }
        var map = Map(node, "rule", RuleKeys, key => ForeignRuleKeyMessage(key, policy, ListenerProtocol.ModbusTcp));
        if (map is null)
        {
            return null;
        }
        var errorsBefore = ErrorCount;
        var name = OptionalText(map, "name") ?? $"rule {number}";

        IntervalSet<UInt128>? sources = null;
        if (map.TryGet("from", out var fromNode))
        {
            sources = ReadSources(fromNode, "from");
        }

        var units = Bits256.All;
        YamlNode? unitNode = null;
        if (map.TryGet("unit", out unitNode) && ScalarList(unitNode, "unit", "a unit id 0..255 or a range such as 1-5") is { } unitItems)
        {
            units = default;
            foreach (var item in unitItems)
            {
                if (NumberRange(item, "unit", 0, 255) is var (lo, hi))
                {
                    for (var u = lo; u <= hi; u++)
                    {
                        units.Add((byte)u);
                    }
                }
            }
        }

        var functions = FunctionSet.Any;
        if (map.TryGet("function", out var functionNode)
            && ScalarList(functionNode, "function", "a function number 1..127, name or group") is { } functionItems)
        {
            functions = default;
            foreach (var item in functionItems)
            {
                AddFunction(item, ref functions);
            }
        }

        var addresses = map.TryGet("address", out var addressNode) ? ReadRanges(addressNode, "address", "an address 0..65535 or a range such as 0-999") : null;
        var (valueType, wordOrder) = ReadValueType(map, out var typeNode);
        IntervalSet<int>? values = null;
        ValueBounds? typedValues = null;
        if (map.TryGet("value", out var valueNode))
        {
            if (typeNode is null)
            {
                values = ReadRanges(valueNode, "value", "a register value 0..65535 or a range such as 0-1500", "; negative or decimal bounds need 'type:' (int16, int32, float32, …)");
            }
            else
            {
                typedValues = ReadTypedRanges(valueNode, typeNode.Value);
            }
        }
        else if (typeNode is not null)
        {
            _diagnostics.Error(typeNode, "'type' says how 'value' reads the written registers, but this rule has no 'value': add 'value:' bounds or remove 'type:'");
        }
        if (valueType is TagType.Int32 or TagType.UInt32 or TagType.Float32 && typeNode is not null)
        {
            CheckValueGrid(typeNode, addressNode, addresses);
        }
        var rate = map.TryGet("rate", out var rateNode) ? ReadRate(rateNode) : null;
        var maintenanceRule = map.TryGet("maintenance", out var maintenanceNode) && Boolean(maintenanceNode, "maintenance") == true;

        if (ErrorCount != errorsBefore)
        {
            return null;
        }
        var keys = new ModbusRuleKeys
        {
            Units = units,
            UnitNamed = unitNode is not null,
            Functions = functions,
            Addresses = addresses,
            Values = values,
            ValueType = valueType,
            WordOrder = wordOrder,
            TypedValues = typedValues,
        };
        var rule = new AllowRule
        {
            Name = name,
            Line = map.Node.Line,
            Column = map.Node.Column,
            Sources = sources,
            Rate = rate,
            Maintenance = maintenanceRule,
            Content = Canonical(node),
            Keys = keys,
        };
        if (keys.BoundsValues && keys.EffectiveFunctions.IsEmpty)
        {
            _diagnostics.Warning(valueNode, $"rule '{name}' can never match: 'value' never allows functions 21, 22, 43/13 or vendor codes (their written values cannot be checked), and it names no other function");
        }
        return rule;
    }

    private static string Canonical(YamlNode node)
    {
        var text = new System.Text.StringBuilder();
        node.AppendCanonical(text);
        return text.ToString();
    }

    private int ErrorCount => _diagnostics.ErrorCount;

    private IntervalSet<UInt128>? ReadSources(YamlNode node, string key)
    {
        var items = ScalarList(node, key, "an IPv4 or IPv6 address or CIDR such as 10.20.0.0/24");
        if (items is null)
        {
            return null;
        }
        var ranges = new List<(UInt128, UInt128)>(items.Count);
        foreach (var item in items)
        {
            if (TryParseCidr(item.Value, out var low, out var high, out var problem))
            {
                ranges.Add((low, high));
            }
            else
            {
                _diagnostics.Error(item, $"'{key}' {problem}");
            }
        }
        return ranges.Count == items.Count ? IntervalSet<UInt128>.Build(ranges) : null;
    }

    /// <summary>An address or CIDR as an interval of IPv6 values; IPv4 is mapped into ::ffff:0:0/96 as <see cref="SourceAddress"/> does.</summary>
    internal static bool TryParseCidr(string text, out UInt128 low, out UInt128 high, out string problem)
    {
        low = high = default;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var addressText = slash < 0 ? text : text[..slash];
        if (addressText.Contains('%', StringComparison.Ordinal) || !IPAddress.TryParse(addressText, out var address)
            || (address.AddressFamily == AddressFamily.InterNetwork && addressText.Count(static c => c == '.') != 3))
        {
            problem = $"must be an IPv4 or IPv6 address or CIDR such as 10.20.0.0/24 or fd00::/64, not '{text}'";
            return false;
        }
        var isV4 = address.AddressFamily == AddressFamily.InterNetwork;
        var maxPrefix = isV4 ? 32 : 128;
        var prefix = maxPrefix;
        if (slash >= 0 && (!TryInt(text[(slash + 1)..], out prefix) || prefix > maxPrefix))
        {
            problem = $"entry {text} has a prefix length outside 0..{maxPrefix}";
            return false;
        }
        var value = SourceAddress.From(address).Value;
        var bits = (isV4 ? 96 : 0) + prefix;
        var hostMask = bits == 128 ? UInt128.Zero : UInt128.MaxValue >> bits;
        if ((value & hostMask) != UInt128.Zero)
        {
            var network = new SourceAddress(value & ~hostMask);
            problem = $"entry {text} has host bits set; write the network as {network}/{prefix}";
            return false;
        }
        low = value;
        high = value | hostMask;
        problem = "";
        return true;
    }

    private IntervalSet<int>? ReadRanges(YamlNode node, string key, string example, string hint = "")
    {
        var items = ScalarList(node, key, example);
        if (items is null)
        {
            return null;
        }
        var ranges = new List<(int, int)>(items.Count);
        foreach (var item in items)
        {
            if (NumberRange(item, key, 0, ushort.MaxValue, hint) is { } range)
            {
                ranges.Add(range);
            }
        }
        return ranges.Count == items.Count ? IntervalSet<int>.Build(ranges) : null;
    }

    /// <summary><c>type:</c> and <c>word-order:</c> of a rule (the telemetry tags' words); word-order needs a type.</summary>
    private (TagType? Type, WordOrder Order) ReadValueType(KeyMap map, out YamlNode? typeNode)
    {
        TagType? type = null;
        if (map.TryGet("type", out typeNode))
        {
            type = OneOf(typeNode, "type", RuleValueTypes) switch
            {
                "int16" => TagType.Int16,
                "uint16" => TagType.UInt16,
                "int32" => TagType.Int32,
                "uint32" => TagType.UInt32,
                "float32" => TagType.Float32,
                _ => null,
            };
        }
        var order = WordOrder.Abcd;
        if (map.TryGet("word-order", out var orderNode))
        {
            if (typeNode is null)
            {
                _diagnostics.Error(orderNode, "'word-order' says how a typed value's bytes are written; it needs 'type:' (int16, uint16, int32, uint32, float32)");
            }
            switch (OneOf(orderNode, "word-order", WordOrders))
            {
                case "cdab": order = WordOrder.Cdab; break;
                case "badc": order = WordOrder.Badc; break;
                case "dcba": order = WordOrder.Dcba; break;
            }
        }
        return (type, order);
    }

    /// <summary>
    /// A 32-bit value takes two registers; values lie end to end from the first address of each
    /// merged <c>address:</c> range, so the rule needs <c>address:</c> and each range an even length.
    /// </summary>
    private void CheckValueGrid(YamlNode typeNode, YamlNode? addressNode, IntervalSet<int>? addresses)
    {
        if (addressNode is null)
        {
            _diagnostics.Error(typeNode, $"'type: {typeNode.Value}' takes two registers per value, which start at the first address of each 'address' range: this rule needs 'address:'");
            return;
        }
        if (addresses is null)
        {
            return;
        }
        for (var i = 0; i < addresses.Count; i++)
        {
            var (low, high) = addresses[i];
            if ((high - low + 1) % 2 != 0)
            {
                _diagnostics.Error(addressNode, $"'address' range {low}-{high} holds {high - low + 1} registers, not a whole number of {typeNode.Value} values (2 registers each, from its first address)");
            }
        }
    }

    /// <summary>
    /// <c>value:</c> of a typed rule: numbers as the type reads them, negative and decimal allowed.
    /// A range is <c>LOW..HIGH</c> (<c>-40..120</c>, <c>-20.5..80</c>); <c>LOW-HIGH</c> works too
    /// (<c>0-1500</c>, <c>-40-120</c>: the dash after a digit separates).
    /// </summary>
    private ValueBounds? ReadTypedRanges(YamlNode node, string type)
    {
        var example = $"a {type} value or a range such as -20.5..80 or 0-1500";
        var items = ScalarList(node, "value", example);
        if (items is null)
        {
            return null;
        }
        var ranges = new List<(double, double)>(items.Count);
        foreach (var item in items)
        {
            if (TryParseRealRange(item.Value.Trim(), out var low, out var high))
            {
                if (low <= high)
                {
                    ranges.Add((low, high));
                    continue;
                }
                _diagnostics.Error(item, $"'value' range {item.Value.Trim()} runs backwards; write the lower bound first");
                continue;
            }
            _diagnostics.Error(item, $"'value' with 'type: {type}' must be a finite number or a range LOW..HIGH such as -20.5..80 or 0-1500, not {item.Describe()}");
        }
        return ranges.Count == items.Count ? ValueBounds.Build(ranges) : null;
    }

    internal static bool TryParseRealRange(string text, out double low, out double high)
    {
        low = high = 0;
        var separator = text.IndexOf("..", StringComparison.Ordinal);
        var length = 2;
        if (separator < 0)
        {
            length = 1;
            for (var i = 1; i < text.Length; i++)
            {
                if (text[i] == '-' && (char.IsAsciiDigit(text[i - 1]) || text[i - 1] is '.' or ' '))
                {
                    separator = i;
                    break;
                }
            }
        }
        if (separator < 0)
        {
            return TryReal(text, out low) && TryReal(text, out high);
        }
        return TryReal(text[..separator], out low) && TryReal(text[(separator + length)..], out high);
    }

    private static bool TryReal(string text, out double value) =>
        double.TryParse(text, NumberStyles.AllowLeadingWhite | NumberStyles.AllowTrailingWhite | NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out value)
        && double.IsFinite(value);

    private RateLimiter? ReadRate(YamlNode node)
    {
        if (node.Kind == YamlNodeKind.Scalar)
        {
            var text = node.Value;
            var slash = text.IndexOf('/', StringComparison.Ordinal);
            if (slash > 0 && TryInt(text[..slash], out var count) && count is >= 1 and <= 1_000_000)
            {
                TimeSpan? period = text[(slash + 1)..] switch
                {
                    "s" => TimeSpan.FromSeconds(1),
                    "m" => TimeSpan.FromMinutes(1),
                    "h" => TimeSpan.FromHours(1),
                    _ => null,
                };
                if (period is { } p)
                {
                    return new RateLimiter(count, p);
                }
            }
        }
        _diagnostics.Error(node, $"'rate' must be requests per second, minute or hour such as 10/s, 600/m or 100/h (1 to 1000000 requests), not {node.Describe()}");
        return null;
    }

    private void AddFunction(YamlNode item, ref FunctionSet set)
    {
        var text = item.Value;
        if (item.IsPlain && text.StartsWith("8/", StringComparison.Ordinal))
        {
            if (int.TryParse(text.AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out var sub) && sub <= byte.MaxValue)
            {
                set.AddDiagnostics((byte)sub);
            }
            else
            {
                _diagnostics.Error(item, $"'function' {text}: a diagnostics sub-function is 8/0 to 8/255 (8/1 restart communications, 8/4 force listen-only mode) or its name");
            }
            return;
        }
        if (item.IsPlain && text.Length > 0 && char.IsAsciiDigit(text[0]))
        {
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var code) || code > 255)
            {
                _diagnostics.Error(item, $"'function' must be a function number from 1 to 127, a name or a group, not '{text}'");
            }
            else if (code == 0)
            {
                _diagnostics.Error(item, "'function' 0 is not a Modbus function; use 1..127, a name or a group");
            }
            else if (code >= 128)
            {
                _diagnostics.Error(item, $"'function' {code} lies in the exception-response range 128..255 and is never a valid request; use 1..127, a name or a group");
            }
            else if (code == ModbusFunctions.EncapsulatedInterface)
            {
                set.Mei14 = true;
            }
            else if (code == 8)
            {
                set.AddDiagnostics();
            }
            else
            {
                set.Codes.Add((byte)code);
            }
            return;
        }
        foreach (var (name, code) in FunctionNames)
        {
            if (text == name)
            {
                set.Codes.Add(code);
                return;
            }
        }
        foreach (var (name, sub) in DiagnosticsNames)
        {
            if (text == name)
            {
                set.AddDiagnostics(sub);
                return;
            }
        }
        switch (text)
        {
            case ReadDeviceIdentification:
                set.Mei14 = true;
                return;
            case CanOpenGeneralReference:
                set.Mei13 = true;
                return;
            case "read":
                foreach (var code in (ReadOnlySpan<byte>)[1, 2, 3, 4, 20, 24]) set.Codes.Add(code);
                set.Mei14 = true;
                return;
            case "write":
                foreach (var code in (ReadOnlySpan<byte>)[5, 6, 15, 16, 21, 22, 23]) set.Codes.Add(code);
                return;
            case "diagnostics":
                foreach (var code in (ReadOnlySpan<byte>)[7, 11, 12, 17]) set.Codes.Add(code);
                set.AddDiagnostics();
                return;
            case "program":
                for (var code = 1; code < 128; code++)
                {
                    if (ModbusFunctions.IsProgramCode((byte)code)) set.Codes.Add((byte)code);
                }
                return;
        }
        var all = new List<string>(FunctionNames.Length + 6);
        foreach (var (name, _) in FunctionNames) all.Add(name);
        all.Add(ReadDeviceIdentification);
        all.Add(CanOpenGeneralReference);
        foreach (var (name, _) in DiagnosticsNames) all.Add(name);
        all.AddRange(FunctionGroups);
        var suggestion = Suggestions.Closest(text, all);
        _diagnostics.Error(item, (suggestion is null ? $"unknown function '{text}'" : $"unknown function '{text}'; did you mean '{suggestion}'?")
            + $" (valid: a number 1..127, 8/N for a diagnostics sub-function, a group {string.Join(", ", FunctionGroups)}, or a name: {string.Join(", ", all.GetRange(0, all.Count - FunctionGroups.Length))})");
    }

    /// <summary>
    /// Warns about a rule that can never match because an earlier rule allows everything it allows:
    /// every source, unit, function (as the earlier rule can allow it), address and value, with no
    /// rate limit, and not depending on maintenance when the later one does not.
    /// </summary>
    private void WarnShadowedRules(List<AllowRule> rules)
    {
        for (var j = 1; j < rules.Count; j++)
        {
            var later = rules[j];
            for (var i = 0; i < j; i++)
            {
                var earlier = rules[i];
                if (Covers(earlier, later))
                {
                    _diagnostics.Warning(later.Line, later.Column,
                        $"rule '{later.Name}' can never match: rule '{earlier.Name}' (line {earlier.Line}) comes first and allows everything it allows");
                    break;
                }
            }
        }
    }

    private static bool Covers(AllowRule earlier, AllowRule later)
    {
        if (earlier.Rate is not null || (earlier.Maintenance && !later.Maintenance))
        {
            return false;
        }
        if (earlier.Sources is not null && (later.Sources is null || !earlier.Sources.IsSupersetOf(later.Sources)))
        {
            return false;
        }
        return earlier.Keys.Covers(later.Keys);
    }
}
