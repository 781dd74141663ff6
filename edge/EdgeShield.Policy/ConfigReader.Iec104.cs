using System.Globalization;
using EdgeShield.Policy.Yaml;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Policy;

/// <summary>The IEC 60870-5-104 vocabulary of a policy (DESIGN.md "IEC 60870-5-104"): the keys of an IEC 104 rule and the listener's APCI limits.</summary>
internal sealed partial class ConfigReader
{
    /// <summary>The keys of a rule in a <c>protocol: iec104</c> policy.</summary>
    private static readonly string[] Iec104RuleYamlKeys = ["name", "from", "type", "ca", "ioa", "value", "select-before-operate", "select-timeout", "rate", "maintenance"];
    /// <summary>The words of <c>type:</c> that name a group; <c>monitor</c> and <c>other</c> are not among them.</summary>
    private static readonly string[] Iec104TypeGroups = ["control", "system", "clock", "parameter", "file"];
    /// <summary>The listener <c>limits:</c> keys of an IEC 104 listener only.</summary>
    private static readonly string[] Iec104LimitWords = ["k", "w", "t1", "t2", "t3"];

    /// <summary>The listener <c>limits:</c> keys of every listener but an IEC 104 one: <c>LimitKeys</c> without <see cref="Iec104LimitWords"/>.</summary>
    private static readonly string[] NonIec104LimitWords = ["connections-per-source", "max-connections", "pending-per-connection", "idle-timeout", "frame-timeout", "response-timeout", "connect-timeout"];

    /// <summary>Largest common address a rule names by number outside <c>global</c>.</summary>
    private const int Iec104MaxStationAddress = Iec104Command.GlobalAddress - 1;

    /// <summary>The standard's bound for every APCI timer (IEC 60870-5-104, 9.6: 1 s to 255 s).</summary>
    private static readonly TimeSpan Iec104MaxTimer = TimeSpan.FromSeconds(255);

    /// <summary>An IEC 104 policy's error for a Modbus or S7 rule key, with the IEC 104 key that does the same job.</summary>
    private static string Iec104ForeignRuleKeyMessage(string key, string policy)
    {
        var modbus = Array.IndexOf(RuleKeys, key) >= 0;
        var s7 = Array.IndexOf(S7RuleYamlKeys, key) >= 0;
        if (!modbus && !s7)
        {
            return UnknownKeyMessage(key, "IEC 104 rule", Iec104RuleYamlKeys);
        }
        var owner = modbus && s7 ? "a Modbus and S7comm" : modbus ? "a Modbus" : "an S7comm";
        var instead = key switch
        {
            "unit" or "connection" => " (an IEC 104 rule names stations by 'ca', their common addresses)",
            "function" => " (an IEC 104 rule names what it allows by 'type')",
            "address" or "area" or "db" => " (an IEC 104 rule bounds information objects by 'ioa')",
            _ => "",
        };
        return $"'{key}' is {owner} rule key, but policy '{policy}' is protocol: iec104{instead}; valid keys of an IEC 104 rule: {string.Join(", ", Iec104RuleYamlKeys)}";
    }

    private AllowRule? ReadIec104Rule(YamlNode node, int number, string policy)
    {
        if (node.IsNull)
        {
            _diagnostics.Error(node, $"rule {number} is empty; a rule needs at least one of {string.Join(", ", Iec104RuleYamlKeys)}");
            return null;
        }
        var map = Map(node, "IEC 104 rule", Iec104RuleYamlKeys, key => ForeignRuleKeyMessage(key, policy, ListenerProtocol.Iec104));
        if (map is null)
        {
            return null;
        }
        var errorsBefore = ErrorCount;
        var name = OptionalText(map, "name") ?? $"rule {number}";
        var sources = map.TryGet("from", out var fromNode) ? ReadSources(fromNode, "from") : null;

        var types = Iec104RuleKeys.DefaultTypes;
        var typesKnown = true;
        if (map.TryGet("type", out var typeNode))
        {
            var read = ReadIec104Types(typeNode);
            typesKnown = read is not null;
            types = read ?? default;
        }

        IntervalSet<int>? commonAddresses = null;
        var global = false;
        if (map.TryGet("ca", out var caNode))
        {
            commonAddresses = ReadCommonAddresses(caNode, out global);
        }

        var ioas = map.TryGet("ioa", out var ioaNode)
            ? ReadNumberRanges(ioaNode, "ioa", 0, (int)Iec104Command.MaxIoa, "an information object address 0..16777215 or a range such as 2000-2099")
            : null;

        ValueBounds? values = null;
        if (map.TryGet("value", out var valueNode))
        {
            values = ReadSetPointRange(valueNode);
            if (typesKnown && !Iec104RuleKeys.HasSetPoint(types))
            {
                _diagnostics.Error(valueNode, "'value' bounds set-points (C_SE_NA_1, C_SE_NB_1, C_SE_NC_1 and their time-tagged C_SE_TA_1, C_SE_TB_1, C_SE_TC_1), but this rule's 'type' names none");
            }
        }

        var selectBeforeOperate = false;
        YamlNode? sboNode = null;
        if (map.TryGet("select-before-operate", out var sboValue))
        {
            sboNode = sboValue;
            selectBeforeOperate = Boolean(sboNode, "select-before-operate") == true;
            if (selectBeforeOperate && typesKnown && !Iec104RuleKeys.HasSelectable(types))
            {
                _diagnostics.Error(sboNode, "'select-before-operate' gates commands that carry S/E (single, double and regulating step commands and set-points: 45-50, 58-63), but this rule's 'type' names none");
            }
        }
        var selectTimeout = TimeSpan.FromSeconds(10);
        if (map.TryGet("select-timeout", out var timeoutNode))
        {
            if (Duration(timeoutNode, "select-timeout") is { } timeout)
            {
                selectTimeout = timeout;
            }
            if (!selectBeforeOperate && (sboNode is null || sboNode.Value is "false" or "False" or "FALSE"))
            {
                _diagnostics.Error(timeoutNode, sboNode is not null
                    ? "'select-timeout' is how long an execute may follow its select, and this rule has 'select-before-operate: false'; remove 'select-timeout' or set 'select-before-operate: true'"
                    : "'select-timeout' is how long an execute may follow its select, but this rule has no 'select-before-operate: true'; add it or remove 'select-timeout'");
            }
        }

        var rate = map.TryGet("rate", out var rateNode) ? ReadRate(rateNode) : null;
        var maintenanceRule = map.TryGet("maintenance", out var maintenanceNode) && Boolean(maintenanceNode, "maintenance") == true;
        if (ErrorCount != errorsBefore)
        {
            return null;
        }
        return new AllowRule
        {
            Name = name,
            Line = map.Node.Line,
            Column = map.Node.Column,
            Sources = sources,
            Rate = rate,
            Maintenance = maintenanceRule,
            Content = Canonical(node),
            Keys = new Iec104RuleKeys
            {
                CommonAddresses = commonAddresses,
                Global = global,
                Types = types,
                Ioas = ioas,
                Values = values,
                SelectBeforeOperate = selectBeforeOperate,
                SelectTimeout = selectTimeout,
            },
        };
    }

    /// <summary><c>type:</c>: type names (C_SC_NA_1), numbers and the groups control, system, clock, parameter, file. Null after an error.</summary>
    private Bits256? ReadIec104Types(YamlNode node)
    {
        var items = ScalarList(node, "type", "a type name such as C_SC_NA_1, a type number or a group (control, system, clock, parameter, file)");
        if (items is null)
        {
            return null;
        }
        var types = default(Bits256);
        var ok = true;
        foreach (var item in items)
        {
            ok &= AddIec104Type(item, ref types);
        }
        return ok ? types : null;
    }

    private bool AddIec104Type(YamlNode item, ref Bits256 types)
    {
        var text = item.Value.Trim();
        var group = text switch
        {
            "control" => Iec104TypeGroup.Control,
            "system" => Iec104TypeGroup.System,
            "clock" => Iec104TypeGroup.Clock,
            "parameter" => Iec104TypeGroup.Parameter,
            "file" => Iec104TypeGroup.File,
            _ => Iec104TypeGroup.Unknown,
        };
        if (group != Iec104TypeGroup.Unknown)
        {
            types = types.Union(Iec104RuleKeys.GroupTypes(group));
            return true;
        }
        byte type;
        if (item.IsPlain && text.Length > 0 && char.IsAsciiDigit(text[0]))
        {
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number > 255)
            {
                _diagnostics.Error(item, $"'type' {text} is not a type identification: a type number is 1..255 (or write its name, such as C_SC_NA_1)");
                return false;
            }
            type = (byte)number;
            if (!Iec104Types.IsKnown(type))
            {
                _diagnostics.Error(item, number is 104 or 106
                    ? $"'type' {number} ({(number == 104 ? "C_TS_NA_1" : "C_CD_NA_1")}) is IEC 60870-5-101 only; IEC 104 does not use it{(number == 104 ? " (its test command is 107 C_TS_TA_1)" : "")}"
                    : $"'type' {number} is not a type identification of IEC 60870-5-104 (docs/IEC104.md \"Types\")");
                return false;
            }
        }
        else if (Iec104Types.TryParseName(text, out type))
        {
            // Found by name; the table's names are the standard's.
        }
        else
        {
            if (text is "monitor" or "other")
            {
                _diagnostics.Error(item, text == "monitor"
                    ? "'type' monitor: monitor types (1-40, 70) flow from the station to the client and are never requested; a rule names what a client may send"
                    : "'type' other: 41 and 81-95 are allowed only by name or number, never as a group (valid groups: control, system, clock, parameter, file)");
                return false;
            }
            if (text.Equals("C_TS_NA_1", StringComparison.OrdinalIgnoreCase) || text.Equals("C_CD_NA_1", StringComparison.OrdinalIgnoreCase))
            {
                _diagnostics.Error(item, $"'type' {text} is IEC 60870-5-101 only; IEC 104 does not use it (its test command is C_TS_TA_1, 107)");
                return false;
            }
            var words = new List<string>(Iec104TypeGroups);
            for (var t = 0; t < 256; t++)
            {
                if (Iec104Types.IsKnown((byte)t) && Iec104Types.Group((byte)t) != Iec104TypeGroup.Monitor)
                {
                    words.Add(Iec104Types.Name((byte)t));
                }
            }
            var suggestion = Suggestions.Closest(text, words);
            _diagnostics.Error(item, (suggestion is null ? $"unknown IEC 104 type '{text}'" : $"unknown IEC 104 type '{text}'; did you mean '{suggestion}'?")
                + " (valid: a type name such as C_SC_NA_1 or C_IC_NA_1, a type number, or a group control, system, clock, parameter, file)");
            return false;
        }
        if (Iec104Types.Group(type) == Iec104TypeGroup.Monitor)
        {
            _diagnostics.Error(item, $"'type' {text}: {Iec104Types.Name(type)} ({type}) is a monitor type; it flows from the station to the client and is never requested, so no rule allows it (a rule names what a client may send: control, system, clock, parameter, file, 41 or 81-95)");
            return false;
        }
        types.Add(type);
        return true;
    }

    /// <summary>
    /// <c>ca:</c>: common addresses 1..65534 and ranges of them, and <c>global</c> (or 65535) for the global address,
    /// which no range includes. Null after an error; <paramref name="global"/> says whether global was named.
    /// </summary>
    private IntervalSet<int>? ReadCommonAddresses(YamlNode node, out bool global)
    {
        global = false;
        var items = ScalarList(node, "ca", "a common address 1..65534, a range such as 1-10, or global (65535)");
        if (items is null)
        {
            return null;
        }
        var ranges = new List<(int, int)>(items.Count);
        var ok = true;
        foreach (var item in items)
        {
            var text = item.Value.Trim();
            if (text == "global" || (item.IsPlain && text == "65535"))
            {
                global = true;
                continue;
            }
            var dash = text.IndexOf('-', 1 < text.Length ? 1 : 0);
            if (item.IsPlain && dash > 0 && TryInt(text[..dash].Trim(), out var low) && TryInt(text[(dash + 1)..].Trim(), out var high)
                && low <= high && high >= Iec104Command.GlobalAddress && low <= Iec104Command.GlobalAddress)
            {
                _diagnostics.Error(item, $"'ca' range {text} reaches 65535, the global address, which a range never includes: end the range at {Iec104MaxStationAddress} and write 'global' to allow commands to every station");
                ok = false;
                continue;
            }
            if (NumberRange(item, "ca", 1, Iec104MaxStationAddress, " (or global for 65535)") is { } range)
            {
                ranges.Add(range);
            }
            else
            {
                ok = false;
            }
        }
        return ok ? IntervalSet<int>.Build(ranges) : null;
    }

    /// <summary><c>value:</c> of an IEC 104 rule: one range LOW..HIGH (or a single number) bounding every set-point as the station reads it.</summary>
    private ValueBounds? ReadSetPointRange(YamlNode node)
    {
        if (node.Kind != YamlNodeKind.Scalar || node.IsNull)
        {
            _diagnostics.Error(node, $"'value' of an IEC 104 rule is one range LOW..HIGH such as 0..150.0 or -0.5..0.5 (normalised set-points read as -1..1, scaled as int16, float as float), not {node.Describe()}");
            return null;
        }
        var text = node.Value.Trim();
        if (!TryParseRealRange(text, out var low, out var high))
        {
            _diagnostics.Error(node, $"'value' must be a finite number or a range LOW..HIGH such as 0..150.0 or -0.5..0.5 (normalised set-points read as -1..1, scaled as int16, float as float), not {node.Describe()}");
            return null;
        }
        if (low > high)
        {
            _diagnostics.Error(node, $"'value' range {text} runs backwards; write the lower bound first");
            return null;
        }
        return ValueBounds.Build([(low, high)]);
    }

    /// <summary>
    /// The APCI limits of an IEC 104 listener (<c>k</c>, <c>w</c>, <c>t1</c>, <c>t2</c>, <c>t3</c>; IEC 60870-5-104 5.5
    /// and 9.6): w ≤ k, t2 &lt; t1, timers up to 255 s. Another listener's <c>limits:</c> does not have these keys.
    /// </summary>
    private ListenerLimits ReadIec104Limits(KeyMap map, ListenerProtocol protocol, ListenerLimits limits)
    {
        if (protocol != ListenerProtocol.Iec104)
        {
            return limits;
        }
        var kNode = map.TryGet("k", out var k) ? k : null;
        var wNode = map.TryGet("w", out var w) ? w : null;
        if (kNode is not null && Integer(kNode, "k", 1, 32_767) is { } kValue)
        {
            limits = limits with { K = (int)kValue };
        }
        if (wNode is not null && Integer(wNode, "w", 1, 32_767) is { } wValue)
        {
            limits = limits with { W = (int)wValue };
        }
        if (limits.W > limits.K)
        {
            _diagnostics.Error(wNode ?? kNode!, wNode is not null
                ? $"'w' {limits.W} exceeds 'k' {limits.K}{(kNode is null ? " (the default)" : "")}: a receiver must acknowledge after at most k I-frames, or the sender stops (IEC 60870-5-104 recommends w = 2/3 k)"
                : $"'k' {limits.K} is below 'w' {limits.W} (the default): a receiver must acknowledge after at most k I-frames; give 'w' too (IEC 60870-5-104 recommends w = 2/3 k)");
        }
        var t1Node = map.TryGet("t1", out var t1) ? t1 : null;
        var t2Node = map.TryGet("t2", out var t2) ? t2 : null;
        var ok = true;
        foreach (var (word, timer) in (ReadOnlySpan<(string, YamlNode?)>)[("t1", t1Node), ("t2", t2Node), ("t3", map.TryGet("t3", out var t3) ? t3 : null)])
        {
            if (timer is null)
            {
                continue;
            }
            if (Duration(timer, word) is not { } value)
            {
                ok = false;
                continue;
            }
            if (value > Iec104MaxTimer)
            {
                _diagnostics.Error(timer, $"'{word}' {timer.Value} exceeds 255s, the longest IEC 104 timer (IEC 60870-5-104 9.6: 1s to 255s)");
                ok = false;
                continue;
            }
            limits = word switch
            {
                "t1" => limits with { T1 = value },
                "t2" => limits with { T2 = value },
                _ => limits with { T3 = value },
            };
        }
        if (ok && limits.T2 >= limits.T1)
        {
            _diagnostics.Error(t2Node ?? t1Node!, t2Node is not null
                ? $"'t2' {t2Node.Value} must be shorter than 't1' ({Seconds(limits.T1)}{(t1Node is null ? ", the default" : "")}): the receiver acknowledges within t2 so that the sender's t1 does not expire"
                : $"'t1' {t1Node!.Value} must be longer than 't2' ({Seconds(limits.T2)}, the default): the receiver acknowledges within t2 so that the sender's t1 does not expire; give a shorter 't2' too");
        }
        return limits;
    }

    /// <summary>The error for a key <c>limits:</c> does not have; an IEC 104 limit on another listener is named as such.</summary>
    private static string LimitKeyMessage(string key, ListenerProtocol protocol, string[] validKeys) =>
        Array.IndexOf(Iec104LimitWords, key) >= 0
            ? $"'{key}' is a limit of IEC 104 listeners (k, w, t1, t2, t3), and this listener speaks {ProtocolWord(protocol)}"
            : UnknownKeyMessage(key, "limits", validKeys);

    private static string Seconds(TimeSpan span) =>
        span.Milliseconds == 0 ? $"{(long)span.TotalSeconds}s" : $"{(long)span.TotalMilliseconds}ms";
}
