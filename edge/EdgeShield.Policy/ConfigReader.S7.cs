using System.Globalization;
using EdgeShield.Policy.Yaml;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Policy;

/// <summary>The S7comm vocabulary of a policy (DESIGN.md "S7comm"): the keys of an S7 rule and their words.</summary>
internal sealed partial class ConfigReader
{
    /// <summary>The keys of a rule in a <c>protocol: s7comm</c> policy.</summary>
    private static readonly string[] S7RuleYamlKeys = ["name", "from", "connection", "function", "pi-service", "area", "db", "address", "type", "value", "rate", "maintenance"];
    /// <summary>Policy <c>protocol:</c>; both Modbus framings share one vocabulary.</summary>
    private static readonly string[] PolicyProtocols = ["modbus-tcp", "modbus-rtu-over-tcp", "s7comm", "iec104"];
    private static readonly string[] S7FunctionGroups = ["read", "write", "program", "control", "engineering"];
    private static readonly string[] S7ConnectionWords = ["pg", "op", "basic", "plus-hmi", "plus-es"];
    /// <summary>The PI services of S7-300/400 CPUs by name (Wireshark <c>pi_service_names</c>); NC services are <c>_N_…</c>.</summary>
    private static readonly string[] S7PiServices = ["_INSE", "_DELE", "P_PROGRAM", "_MODU", "_GARB"];
    private static readonly string[] S7AreaWords = ["i", "q", "m", "db", "di", "p", "c", "t", "l", "v"];

    /// <summary>Largest byte offset of an S7ANY address (24 bits: byte × 8 + bit).</summary>
    internal const int S7MaxByteOffset = 0xFFFFFF >> 3;

    /// <summary>Each policy's protocol family as declared (also for a policy with errors), for the listeners' check.</summary>
    private readonly Dictionary<string, (ListenerProtocol Protocol, string Word)> _policyProtocols = new(StringComparer.Ordinal);

    private static byte S7AreaCode(string word) => word switch
    {
        "i" => (byte)S7Area.Inputs,
        "q" => (byte)S7Area.Outputs,
        "m" => (byte)S7Area.Flags,
        "db" => (byte)S7Area.DataBlocks,
        "di" => (byte)S7Area.InstanceDataBlocks,
        "p" => (byte)S7Area.Peripheral,
        "c" => (byte)S7Area.Counters,
        "t" => (byte)S7Area.Timers,
        "l" => (byte)S7Area.Local,
        "v" => (byte)S7Area.PreviousLocal,
        _ => 0,
    };

    /// <summary>Modbus rule keys that no S7 rule has, and S7 rule keys that no Modbus rule has.</summary>
    private static bool IsModbusOnlyKey(string key) => Array.IndexOf(RuleKeys, key) >= 0 && Array.IndexOf(S7RuleYamlKeys, key) < 0;

    private static bool IsS7OnlyKey(string key) => Array.IndexOf(S7RuleYamlKeys, key) >= 0 && Array.IndexOf(RuleKeys, key) < 0;

    /// <summary><c>protocol:</c> of a policy: its family (<see cref="ListenerProtocol.ModbusTcp"/> for both Modbus framings) and the word; null when invalid.</summary>
    private (ListenerProtocol Protocol, string Word)? ReadPolicyProtocol(KeyMap map)
    {
        if (!map.TryGet("protocol", out var node))
        {
            return (ListenerProtocol.ModbusTcp, "modbus-tcp");
        }
        return OneOf(node, "protocol", PolicyProtocols) switch
        {
            "modbus-tcp" => (ListenerProtocol.ModbusTcp, "modbus-tcp"),
            "modbus-rtu-over-tcp" => (ListenerProtocol.ModbusTcp, "modbus-rtu-over-tcp"),
            "s7comm" => (ListenerProtocol.S7comm, "s7comm"),
            "iec104" => (ListenerProtocol.Iec104, "iec104"),
            _ => null,
        };
    }

    private static string ProtocolWord(ListenerProtocol protocol) => ListenerProtocols.Word(protocol);

    /// <summary>The policy vocabulary a listener speaking <paramref name="protocol"/> needs.</summary>
    private static ListenerProtocol Family(ListenerProtocol protocol) =>
        protocol == ListenerProtocol.ModbusRtuOverTcp ? ListenerProtocol.ModbusTcp : protocol;

    /// <summary>A listener may only use a policy of its own protocol family; the error points at its <c>policy</c> value.</summary>
    private void CheckListenerPolicyProtocol(string? listener, ListenerProtocol protocol, YamlNode policyNode)
    {
        if (!_policyProtocols.TryGetValue(policyNode.Value, out var policy) || policy.Protocol == Family(protocol))
        {
            return;
        }
        var word = ProtocolWord(protocol);
        var need = Family(protocol) == ListenerProtocol.ModbusTcp ? "modbus-tcp (or modbus-rtu-over-tcp)" : word;
        _diagnostics.Error(policyNode,
            $"listener{(listener is null ? "" : $" '{listener}'")} speaks {word}, but policy '{policyNode.Value}' is protocol: {policy.Word}; "
            + $"a listener may only use a policy of its own protocol (use a policy with 'protocol: {need}')");
    }

    /// <summary>The error for a key a rule of this policy's protocol does not have: another protocol's key is named as such.</summary>
    private static string ForeignRuleKeyMessage(string key, string policy, ListenerProtocol family)
    {
        if (family == ListenerProtocol.Iec104)
        {
            return Iec104ForeignRuleKeyMessage(key, policy);
        }
        var s7 = family == ListenerProtocol.S7comm;
        if (s7 && IsModbusOnlyKey(key))
        {
            return $"'{key}' is a Modbus rule key, but policy '{policy}' is protocol: s7comm; valid keys of an S7 rule: {string.Join(", ", S7RuleYamlKeys)}";
        }
        if (!s7 && IsS7OnlyKey(key))
        {
            return $"'{key}' is an S7comm rule key, but policy '{policy}' is a Modbus policy (add 'protocol: s7comm' to the policy for S7 PLCs); valid keys of a Modbus rule: {string.Join(", ", RuleKeys)}";
        }
        if (Array.IndexOf(Iec104RuleYamlKeys, key) >= 0)
        {
            return s7
                ? $"'{key}' is an IEC 104 rule key, but policy '{policy}' is protocol: s7comm; valid keys of an S7 rule: {string.Join(", ", S7RuleYamlKeys)}"
                : $"'{key}' is an IEC 104 rule key, but policy '{policy}' is a Modbus policy (add 'protocol: iec104' to the policy for IEC 104 stations); valid keys of a Modbus rule: {string.Join(", ", RuleKeys)}";
        }
        return UnknownKeyMessage(key, s7 ? "S7 rule" : "rule", s7 ? S7RuleYamlKeys : RuleKeys);
    }

    private AllowRule? ReadS7Rule(YamlNode node, int number, string policy)
    {
        if (node.IsNull)
        {
            _diagnostics.Error(node, $"rule {number} is empty; a rule needs at least one of {string.Join(", ", S7RuleYamlKeys)}");
            return null;
        }
        var map = Map(node, "S7 rule", S7RuleYamlKeys, key => ForeignRuleKeyMessage(key, policy, ListenerProtocol.S7comm));
        if (map is null)
        {
            return null;
        }
        var errorsBefore = ErrorCount;
        var name = OptionalText(map, "name") ?? $"rule {number}";
        var sources = map.TryGet("from", out var fromNode) ? ReadSources(fromNode, "from") : null;
        var connections = map.TryGet("connection", out var connectionNode) ? ReadS7Connections(connectionNode) : null;

        var functions = S7FunctionSet.AnyClassic;
        var functionNamed = map.TryGet("function", out var functionNode);
        if (functionNamed && ScalarList(functionNode, "function", "an S7 function word or group") is { } functionItems)
        {
            functions = default;
            foreach (var item in functionItems)
            {
                AddS7Function(item, ref functions);
            }
        }

        byte[][]? piServices = null;
        if (map.TryGet("pi-service", out var piNode))
        {
            piServices = ReadPiServices(piNode);
            if (functionNamed && ErrorCount == errorsBefore && !functions.HasPiServices)
            {
                _diagnostics.Error(piNode, "'pi-service' narrows plc-control and plc-stop, but this rule's 'function' allows neither (add plc-control, plc-stop, or the group program or control)");
            }
        }

        Bits256? areas = null;
        var areaNamed = map.TryGet("area", out var areaNode);
        if (areaNamed)
        {
            areas = ReadS7Areas(areaNode);
        }

        IntervalSet<int>? blocks = null;
        if (map.TryGet("db", out var dbNode))
        {
            blocks = ReadNumberRanges(dbNode, "db", 1, ushort.MaxValue, "a data block number 1..65535 or a range such as 1-99");
            if (!areaNamed)
            {
                _diagnostics.Error(dbNode, "'db' bounds the block numbers of items in areas db and di, but this rule has no 'area:'; add 'area: db' (or di), else items in every other area would pass");
            }
            else if (areas is { } named && !named.Contains((byte)S7Area.DataBlocks) && !named.Contains((byte)S7Area.InstanceDataBlocks))
            {
                _diagnostics.Error(dbNode, "'db' bounds the block numbers of items in areas db and di, but this rule's 'area' names neither");
            }
        }

        var addressNamed = map.TryGet("address", out var addressNode);
        var addresses = addressNamed
            ? ReadNumberRanges(addressNode, "address", 0, S7MaxByteOffset, "a byte offset or a range such as 0-1023 (counters and timers: element numbers)")
            : null;

        var valueType = S7ValueType.Int16;
        var typeNamed = map.TryGet("type", out var typeNode);
        if (typeNamed)
        {
            switch (OneOf(typeNode, "type", RuleValueTypes))
            {
                case "int16": valueType = S7ValueType.Int16; break;
                case "uint16": valueType = S7ValueType.UInt16; break;
                case "int32": valueType = S7ValueType.Int32; break;
                case "uint32": valueType = S7ValueType.UInt32; break;
                case "float32": valueType = S7ValueType.Float32; break;
            }
        }
        ValueBounds? values = null;
        if (map.TryGet("value", out var valueNode))
        {
            if (!typeNamed)
            {
                _diagnostics.Error(valueNode, "'value' bounds written values as 'type' reads them (S7 stores big-endian): add 'type:' (int16, uint16, int32, uint32 or float32)");
            }
            else
            {
                values = ReadTypedRanges(valueNode, typeNode.Value);
            }
        }
        else if (typeNamed)
        {
            _diagnostics.Error(typeNode, "'type' says how 'value' reads the written bytes, but this rule has no 'value': add 'value:' bounds or remove 'type:'");
        }
        if (typeNamed)
        {
            CheckS7ValueGrid(typeNode, addressNamed ? addressNode : null, addresses, S7Item.ValueSize(valueType));
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
            Keys = new S7RuleKeys
            {
                Connections = connections,
                Functions = functions,
                PiServices = piServices,
                Areas = areas,
                Blocks = blocks,
                Addresses = addresses,
                ValueType = valueType,
                Values = values,
            },
        };
    }

    /// <summary>
    /// Values of <c>type:</c> lie end to end from the first byte of each <c>address:</c> range, so a typed
    /// rule needs <c>address:</c> and each range a whole number of values.
    /// </summary>
    private void CheckS7ValueGrid(YamlNode typeNode, YamlNode? addressNode, IntervalSet<int>? addresses, int size)
    {
        if (addressNode is null)
        {
            _diagnostics.Error(typeNode, $"'type: {typeNode.Value}' reads written values {size} bytes each from the first byte of each 'address' range: this rule needs 'address:'");
            return;
        }
        if (addresses is null)
        {
            return;
        }
        for (var i = 0; i < addresses.Count; i++)
        {
            var (low, high) = addresses[i];
            if ((high - low + 1) % size != 0)
            {
                _diagnostics.Error(addressNode, $"'address' range {low}-{high} holds {high - low + 1} bytes, not a whole number of {typeNode.Value} values ({size} bytes each, from its first byte)");
            }
        }
    }

    private S7ConnectionSet? ReadS7Connections(YamlNode node)
    {
        var items = ScalarList(node, "connection", "pg, op, basic, a connection type 1..255, plus-hmi or plus-es");
        if (items is null)
        {
            return null;
        }
        var set = default(S7ConnectionSet);
        var ok = true;
        foreach (var item in items)
        {
            var text = item.Value.Trim();
            switch (text)
            {
                case "pg": set.TypeCodes.Add(1); continue;
                case "op": set.TypeCodes.Add(2); continue;
                case "basic": set.TypeCodes.Add(3); continue;
                case "plus-hmi": set.PlusHmi = true; continue;
                case "plus-es": set.PlusEs = true; continue;
            }
            if (item.IsPlain && TryInt(text, out var code) && code is >= 1 and <= 255)
            {
                set.TypeCodes.Add((byte)code);
                continue;
            }
            var suggestion = Suggestions.Closest(text, S7ConnectionWords);
            _diagnostics.Error(item, $"'connection' must be pg, op, basic, a connection type 1..255 (the called TSAP's high byte), plus-hmi or plus-es, not {item.Describe()}"
                + (suggestion is null ? "" : $"; did you mean '{suggestion}'?"));
            ok = false;
        }
        return ok ? set : null;
    }

    private void AddS7Function(YamlNode item, ref S7FunctionSet set)
    {
        var text = item.Value.Trim();
        var function = S7Functions.FromPolicyWord(text);
        if (function != S7Function.Unknown)
        {
            set.Add(function);
            return;
        }
        switch (text)
        {
            case "read":
                set.Add(S7Function.SetupCommunication);
                set.Add(S7Function.ReadVar);
                set.Add(S7Function.CyclicData);
                set.Add(S7Function.BlockFunctions);
                set.Add(S7Function.CpuFunctions);
                set.Add(S7Function.TimeRead);
                return;
            case "write":
                set.Add(S7Function.WriteVar);
                return;
            case "program":
                for (var f = S7Function.RequestDownload; f <= S7Function.EndUpload; f++)
                {
                    set.Add(f);
                }
                set.PlcControlOther = true;
                return;
            case "control":
                set.Add(S7Function.PlcStop);
                set.PlcControlProgram = true;
                return;
            case "engineering":
                set.Add(S7Function.ProgrammerCommands);
                set.Add(S7Function.Security);
                set.Add(S7Function.TimeSet);
                set.Add(S7Function.ModeTransition);
                return;
        }
        var words = new List<string>();
        for (var f = S7Function.CpuServices; f <= S7Function.S7commPlus; f++)
        {
            words.Add(S7Functions.PolicyWord(f));
        }
        var isModbus = (item.IsPlain && text.Length > 0 && char.IsAsciiDigit(text[0])) || IsModbusFunctionWord(text);
        var suggestion = isModbus ? null : Suggestions.Closest(text, [.. words, .. S7FunctionGroups]);
        _diagnostics.Error(item, (isModbus
                ? $"'{text}' is a Modbus function; an S7 rule names S7 functions by word"
                : suggestion is null ? $"unknown S7 function '{text}'" : $"unknown S7 function '{text}'; did you mean '{suggestion}'?")
            + $" (valid: a group {string.Join(", ", S7FunctionGroups)}, or a word: {string.Join(", ", words)})");
    }

    private static bool IsModbusFunctionWord(string text)
    {
        foreach (var (name, _) in FunctionNames)
        {
            if (name == text)
            {
                return true;
            }
        }
        foreach (var (name, _) in DiagnosticsNames)
        {
            if (name == text)
            {
                return true;
            }
        }
        return text is ReadDeviceIdentification or CanOpenGeneralReference or "diagnostics";
    }

    private byte[][]? ReadPiServices(YamlNode node)
    {
        var items = ScalarList(node, "pi-service", "a PI service name such as _INSE or P_PROGRAM");
        if (items is null)
        {
            return null;
        }
        var names = new List<byte[]>(items.Count);
        foreach (var item in items)
        {
            var text = item.Value.Trim();
            if (Array.IndexOf(S7PiServices, text) >= 0 || IsNcService(text))
            {
                names.Add(System.Text.Encoding.ASCII.GetBytes(text));
                continue;
            }
            var suggestion = Suggestions.Closest(text, S7PiServices);
            _diagnostics.Error(item, $"'pi-service' must be {string.Join(", ", S7PiServices)} or an NC service _N_… (upper case, as sent), not {item.Describe()}"
                + (suggestion is null ? "" : $"; did you mean '{suggestion}'?"));
        }
        return names.Count == items.Count ? [.. names] : null;
    }

    /// <summary>An NC (Sinumerik) PI service name: <c>_N_</c> and up to 29 upper-case letters, digits or underscores.</summary>
    private static bool IsNcService(string text)
    {
        if (text.Length is < 4 or > 32 || !text.StartsWith("_N_", StringComparison.Ordinal))
        {
            return false;
        }
        foreach (var c in text)
        {
            if (!(char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c) || c == '_'))
            {
                return false;
            }
        }
        return true;
    }

    private Bits256? ReadS7Areas(YamlNode node)
    {
        var items = ScalarList(node, "area", "an area i, q, m, db, di, p, c, t, l, v or an S7-200 area number");
        if (items is null)
        {
            return null;
        }
        var areas = default(Bits256);
        var ok = true;
        foreach (var item in items)
        {
            var text = item.Value.Trim();
            var code = S7AreaCode(text);
            if (code == 0 && item.IsPlain && TryAreaNumber(text, out var number) && S7Items.Area(number) != S7Area.Unknown)
            {
                code = number;
            }
            if (code != 0)
            {
                areas.Add(code);
                continue;
            }
            var suggestion = Suggestions.Closest(text, S7AreaWords);
            _diagnostics.Error(item, $"'area' must be one of {string.Join(", ", S7AreaWords)} or an S7-200 area by number (3, 5, 6, 7, 30, 31 or 0x03, 0x05, 0x06, 0x07, 0x1E, 0x1F), not {item.Describe()}"
                + (suggestion is null ? "" : $"; did you mean '{suggestion}'?"));
            ok = false;
        }
        return ok ? areas : null;
    }

    private static bool TryAreaNumber(string text, out byte number)
    {
        number = 0;
        return text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? byte.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out number)
            : byte.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out number);
    }

    private IntervalSet<int>? ReadNumberRanges(YamlNode node, string key, int min, int max, string example)
    {
        var items = ScalarList(node, key, example);
        if (items is null)
        {
            return null;
        }
        var ranges = new List<(int, int)>(items.Count);
        foreach (var item in items)
        {
            if (NumberRange(item, key, min, max) is { } range)
            {
                ranges.Add(range);
            }
        }
        return ranges.Count == items.Count ? IntervalSet<int>.Build(ranges) : null;
    }
}
