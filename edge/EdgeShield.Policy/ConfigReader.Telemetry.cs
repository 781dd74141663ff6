using System.Globalization;
using EdgeShield.Policy.Yaml;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Policy;

// Tags of telemetry.poll: the diode's read side. Only read functions can be expressed; a tag
// that names any other function is an error with its line and column.
internal sealed partial class ConfigReader
{
    private const int ModbusReadRegistersLimit = 125;
    private static readonly string[] WordOrders = ["abcd", "cdab", "badc", "dcba"];

    /// <summary><c>name</c> of a tag: a topic level, unique in its poll entry.</summary>
    private bool ReadTagName(KeyMap tag, Dictionary<string, int> tagNames, out string? name)
    {
        bool ok = true;
        name = RequiredText(tag, "name", "tag", "the tag's name in topics");
        if (name is not null)
        {
            tag.TryGet("name", out var tagNameNode);
            if (name.Length == 0 || name.AsSpan().IndexOfAny("/+#") >= 0)
            {
                _diagnostics.Error(tagNameNode, $"tag 'name' is a topic level: it must not be empty or contain '/', '+' or '#' ('{name}')");
                ok = false;
            }
            else if (tagNames.TryGetValue(name, out var line))
            {
                _diagnostics.Error(tagNameNode, $"duplicate tag '{name}' in this poll entry (first at line {line})");
                ok = false;
            }
            else
            {
                tagNames.Add(name, tag.Node.Line);
            }
        }
        return ok;
    }

    private TagConfig? ReadTag(YamlNode tagNode, Dictionary<string, int> tagNames)
    {
        if (Map(tagNode, "tag", TagKeys) is not { } tag)
        {
            return null;
        }
        bool ok = ReadTagName(tag, tagNames, out var name);
        ok &= RefuseIec104Key(tag, "a Modbus tag is addressed by 'table' and 'address'");
        TagTable? table = null;
        if (!tag.TryGet("table", out var tableNode))
        {
            Missing(tag, "tag", "table", string.Join(", ", Tables));
        }
        else
        {
            table = OneOf(tableNode, "table", Tables) switch
            {
                "coil" => TagTable.Coil,
                "discrete-input" => TagTable.DiscreteInput,
                "holding" => TagTable.Holding,
                "input" => TagTable.Input,
                _ => null,
            };
        }
        if (tag.TryGet("function", out var functionNode) && table is { } t)
        {
            // Only the table's own read function may be named: the diode never writes.
            var expected = (int)t;
            string[] readNames = ["read-coils", "read-discrete-inputs", "read-holding-registers", "read-input-registers"];
            var text = functionNode.Value;
            bool matches = functionNode.Kind == YamlNodeKind.Scalar
                && (text == readNames[expected - 1] || text == expected.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (!matches)
            {
                _diagnostics.Error(functionNode, $"telemetry only reads: a {tableNode.Value} tag is read with '{readNames[expected - 1]}' ({expected}); '{text}' is not allowed here");
                ok = false;
            }
        }
        long? address = null;
        if (!tag.TryGet("address", out var addressNode))
        {
            Missing(tag, "tag", "address", "the 0-based wire address 0..65535");
        }
        else
        {
            address = Integer(addressNode, "address", 0, ushort.MaxValue);
        }
        bool bits = table is TagTable.Coil or TagTable.DiscreteInput;
        TagType type = bits ? TagType.Bool : TagType.UInt16;
        if (tag.TryGet("type", out var typeNode))
        {
            switch (OneOf(typeNode, "type", TagTypes))
            {
                case "bool": type = TagType.Bool; break;
                case "int16": type = TagType.Int16; break;
                case "uint16": type = TagType.UInt16; break;
                case "int32": type = TagType.Int32; break;
                case "uint32": type = TagType.UInt32; break;
                case "float32": type = TagType.Float32; break;
                case "int64": type = TagType.Int64; break;
                case "uint64": type = TagType.UInt64; break;
                case "float64": type = TagType.Float64; break;
                default: ok = false; break;
            }
            if (table is not null && bits != (type == TagType.Bool))
            {
                _diagnostics.Error(typeNode, bits
                    ? $"a {tableNode.Value} tag is a single bit: its type must be bool, not '{typeNode.Value}'"
                    : $"a {tableNode.Value} register tag needs a numeric type (int16, uint16, int32, uint32, float32, int64, uint64, float64), not 'bool'");
                ok = false;
            }
        }
        var wordOrder = WordOrder.Abcd;
        if (tag.TryGet("word-order", out var orderNode))
        {
            switch (OneOf(orderNode, "word-order", WordOrders))
            {
                case "abcd": wordOrder = WordOrder.Abcd; break;
                case "cdab": wordOrder = WordOrder.Cdab; break;
                case "badc": wordOrder = WordOrder.Badc; break;
                case "dcba": wordOrder = WordOrder.Dcba; break;
                default: ok = false; break;
            }
        }
        var scale = OptionalNumber(tag, "scale") ?? 1;
        var offset = OptionalNumber(tag, "offset") ?? 0;
        var unit = OptionalText(tag, "unit");
        if (!ok || name is null || table is null || address is null)
        {
            return null;
        }
        var config = new TagConfig
        {
            Name = name,
            Table = table.Value,
            Address = (ushort)address.Value,
            Type = type,
            WordOrder = wordOrder,
            Scale = scale,
            Offset = offset,
            Unit = unit,
        };
        if (address.Value + config.Width - 1 > ushort.MaxValue)
        {
            _diagnostics.Error(addressNode, $"a {typeNode?.Value ?? "uint16"} at address {address} would run past 65535");
            return null;
        }
        return config;
    }

    // ---- S7 poll entries (protocol: s7comm) ------------------------------------------------

    private const string S7AddressForms = "DB1.DBX0.0, DB1.DBB1, DB1.DBW2, DB1.DBD4, M10.0, MB10, MW10, MD12, I0.1, IB4, IW4, ID8, Q4.0, QB2, QW2, QD8";

    /// <summary>The tag types of an S7 tag: the Modbus ones that fit 32 bits, and the bytes an S7 byte address holds.</summary>
    private static readonly string[] S7TagTypes = [.. TagTypes, "uint8", "int8"];
    private static readonly string[] PollProtocols = ["modbus", "s7comm", "iec104"];
    private static readonly string[] ConnectionTypes = ["pg", "op", "basic"];

    /// <summary>
    /// The S7 connection of a poll entry: <c>rack</c> (default 0), <c>slot</c> (required unless
    /// <c>called-tsap</c> is given), <c>connection</c> (pg | op | basic, default basic), or <c>called-tsap</c>
    /// and <c>calling-tsap</c> as Siemens writes them (<c>03.02</c>). Modbus keys are refused with the reason.
    /// </summary>
    private S7PollConnection? ReadS7Connection(KeyMap poll, UpstreamAddress? upstream, YamlNode? upstreamNode)
    {
        bool ok = true;
        if (upstream is { Scheme: not "tcp" } && upstreamNode is not null)
        {
            _diagnostics.Error(upstreamNode, $"an s7comm poll entry reads a PLC over ISO-on-TCP: 'upstream' must be tcp://HOST:PORT (port 102 on a Siemens CPU), not '{upstreamNode.Value}'");
            ok = false;
        }
        foreach (var (key, why) in (ReadOnlySpan<(string, string)>)[
            ("unit", "a Modbus unit id; an S7 CPU is addressed by 'rack' and 'slot'"),
            ("max-gap", "Modbus read joining; S7 tags are read as items of multi-item jobs, never beyond what they name")])
        {
            if (poll.TryGet(key, out var node))
            {
                poll.TryGetKey(key, out var keyNode);
                _diagnostics.Error(keyNode ?? node, $"'{key}' is {why}");
                ok = false;
            }
        }
        byte type = S7PollConnection.DefaultConnectionType;
        if (poll.TryGet("connection", out var connectionNode))
        {
            switch (OneOf(connectionNode, "connection", ConnectionTypes))
            {
                case "pg": type = 0x01; break;
                case "op": type = 0x02; break;
                case "basic": type = 0x03; break;
                default: ok = false; break;
            }
        }
        ushort? called = null;
        if (poll.TryGet("called-tsap", out var calledNode))
        {
            called = Tsap(calledNode, "called-tsap");
            ok &= called is not null;
            foreach (var key in (ReadOnlySpan<string>)["rack", "slot", "connection"])
            {
                if (poll.TryGet(key, out var node))
                {
                    _diagnostics.Error(node, $"'{key}' and 'called-tsap' both say which connection to open: give rack and slot (and connection), or called-tsap alone");
                    ok = false;
                }
            }
        }
        var rack = OptionalInteger(poll, "rack", 0, 7);
        long? slot = null;
        if (called is null && calledNode is null)
        {
            if (!poll.TryGet("slot", out var slotNode))
            {
                Missing(poll, "s7comm poll entry", "slot", "the CPU's slot 0..31 as the hardware configuration shows it: 2 on an S7-300, 1 on an S7-1200/1500 (or called-tsap: 03.02)");
                ok = false;
            }
            else
            {
                slot = Integer(slotNode, "slot", 0, 31);
                ok &= slot is not null;
            }
            ok &= rack is not null || !poll.TryGet("rack", out _);
        }
        ushort calling = S7PollConnection.DefaultCallingTsap;
        if (poll.TryGet("calling-tsap", out var callingNode))
        {
            if (Tsap(callingNode, "calling-tsap") is { } value)
            {
                calling = value;
            }
            else
            {
                ok = false;
            }
        }
        if (!ok)
        {
            return null;
        }
        return new S7PollConnection(calling, called ?? S7PollConnection.Tsap(type, (int)(rack ?? 0), (int)slot!.Value));
    }

    /// <summary>A TSAP as Siemens tools show it: two hex bytes with a dot, <c>03.02</c>.</summary>
    private ushort? Tsap(YamlNode node, string key)
    {
        var text = node.Kind == YamlNodeKind.Scalar ? node.Value : "";
        if (text.Length == 5 && text[2] == '.'
            && byte.TryParse(text.AsSpan(0, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var high)
            && byte.TryParse(text.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var low))
        {
            return (ushort)((high << 8) | low);
        }
        _diagnostics.Error(node, $"'{key}' must be a TSAP as two hex bytes with a dot, e.g. 03.02 (connection type 03, rack 0 slot 2) or 01.00; found {node.Describe()}");
        return null;
    }

    /// <summary>
    /// An S7 tag: <c>name</c>, <c>address</c> in the Siemens absolute syntax (<see cref="S7AddressForms"/>),
    /// <c>type</c> fitting the address's size, <c>scale</c>, <c>offset</c>, <c>unit</c>.
    /// </summary>
    private TagConfig? ReadS7Tag(YamlNode tagNode, Dictionary<string, int> tagNames)
    {
        if (Map(tagNode, "tag", TagKeys) is not { } tag)
        {
            return null;
        }
        bool ok = ReadTagName(tag, tagNames, out var name);
        foreach (var (key, modbusOnly) in (ReadOnlySpan<(string, string)>)[
            ("table", "a Modbus key: an S7 tag's address names its area (" + S7AddressForms + ")"),
            ("word-order", "a Modbus key: S7 stores every value big-endian, as the CPU holds it, so there is no word order to choose"),
            ("function", "a Modbus key: an S7 tag is always read with read-var"),
            ("ioa", "an IEC 104 key: an S7 tag is addressed by 'address' (" + S7AddressForms + ")")])
        {
            if (tag.TryGet(key, out _))
            {
                tag.TryGetKey(key, out var keyNode);
                _diagnostics.Error(keyNode ?? tagNode, $"'{key}' is {modbusOnly}");
                ok = false;
            }
        }
        S7TagAddress? address = null;
        string? why = null;
        if (!tag.TryGet("address", out var addressNode))
        {
            Missing(tag, "tag", "address", "an S7 address such as " + S7AddressForms);
        }
        else if (addressNode.Kind == YamlNodeKind.Scalar && TryParseS7Address(addressNode.Value, out var parsed, out why))
        {
            address = parsed;
        }
        else
        {
            _diagnostics.Error(addressNode, $"'address' must be an S7 absolute address ({S7AddressForms}; a leading % as TIA Portal shows it is allowed); found {addressNode.Describe()}{(why is null ? "" : ": " + why)}");
        }
        TagType type = address is { } a ? a.Size switch { 0 => TagType.Bool, 1 => TagType.UInt8, 2 => TagType.UInt16, _ => TagType.UInt32 } : TagType.UInt16;
        if (tag.TryGet("type", out var typeNode))
        {
            TagType? given = OneOf(typeNode, "type", S7TagTypes) switch
            {
                "bool" => TagType.Bool,
                "uint8" => TagType.UInt8,
                "int8" => TagType.Int8,
                "int16" => TagType.Int16,
                "uint16" => TagType.UInt16,
                "int32" => TagType.Int32,
                "uint32" => TagType.UInt32,
                "float32" => TagType.Float32,
                "int64" or "uint64" or "float64" => null,
                _ => null,
            };
            if (given is null)
            {
                if (typeNode.Value is "int64" or "uint64" or "float64")
                {
                    _diagnostics.Error(typeNode, $"an S7 address names at most a double word (D, 32 bits): type '{typeNode.Value}' does not fit; use int32, uint32 or float32 on a D address");
                }
                ok = false;
            }
            else if (address is { } at)
            {
                string? fits = at.Size switch
                {
                    0 => given == TagType.Bool ? null : "a bit address (DBX, M10.0, I0.1) is a bool",
                    1 => given is TagType.UInt8 or TagType.Int8 ? null : "a byte address (DBB, MB, IB, QB) holds uint8 or int8",
                    2 => given is TagType.Int16 or TagType.UInt16 ? null : "a word address (DBW, MW, IW, QW) holds int16 or uint16",
                    _ => given is TagType.Int32 or TagType.UInt32 or TagType.Float32 ? null : "a double-word address (DBD, MD, ID, QD) holds int32, uint32 or float32",
                };
                if (fits is not null)
                {
                    _diagnostics.Error(typeNode, $"type '{typeNode.Value}' does not fit address '{addressNode!.Value}': {fits}");
                    ok = false;
                }
                else
                {
                    type = given.Value;
                }
            }
        }
        var scale = OptionalNumber(tag, "scale") ?? 1;
        var offset = OptionalNumber(tag, "offset") ?? 0;
        var unit = OptionalText(tag, "unit");
        if (!ok || name is null || address is null)
        {
            return null;
        }
        return new TagConfig { Name = name, S7 = address, Type = type, Scale = scale, Offset = offset, Unit = unit };
    }

    /// <summary>
    /// Parses the Siemens absolute address syntax (STEP 7 / TIA Portal, international mnemonics):
    /// <c>DB</c>n<c>.DBX</c>byte<c>.</c>bit, <c>DB</c>n<c>.DBB</c>byte, <c>DB</c>n<c>.DBW</c>byte, <c>DB</c>n<c>.DBD</c>byte;
    /// and for the areas M, I and Q: byte<c>.</c>bit, <c>B</c>byte, <c>W</c>byte, <c>D</c>byte (<c>M10.0</c>, <c>MB10</c>,
    /// <c>MW10</c>, <c>ID8</c>).
    /// Letters in either case, an optional leading <c>%</c>.
    /// </summary>
    internal static bool TryParseS7Address(string text, out S7TagAddress address, out string? why)
    {
        address = default;
        why = null;
        var s = text.AsSpan().Trim();
        if (s.StartsWith("%"))
        {
            s = s[1..];
        }
        ushort db = 0;
        S7Area area;
        if (s.Length > 2 && (s[0] is 'D' or 'd') && (s[1] is 'B' or 'b') && char.IsAsciiDigit(s[2]))
        {
            int dot = s.IndexOf('.');
            if (dot < 0 || !int.TryParse(s[2..dot], NumberStyles.None, CultureInfo.InvariantCulture, out int number) || number is < 1 or > 65535)
            {
                why = "the DB number is 1..65535 and followed by '.DBX', '.DBB', '.DBW' or '.DBD'";
                return false;
            }
            db = (ushort)number;
            s = s[(dot + 1)..];
            if (s.Length < 3 || !(s[0] is 'D' or 'd') || !(s[1] is 'B' or 'b'))
            {
                why = "inside a DB the address is DBX byte.bit, DBB byte, DBW byte or DBD byte";
                return false;
            }
            s = s[2..];
            area = S7Area.DataBlocks;
            if (s[0] is 'X' or 'x')
            {
                s = s[1..];
                return Bit(s, area, db, out address, out why);
            }
        }
        else
        {
            area = s.IsEmpty ? S7Area.Unknown : char.ToUpperInvariant(s[0]) switch
            {
                'M' => S7Area.Flags,
                'I' => S7Area.Inputs,
                'Q' => S7Area.Outputs,
                _ => S7Area.Unknown,
            };
            if (area == S7Area.Unknown)
            {
                why = "the area is DB, M, I or Q";
                return false;
            }
            s = s[1..];
            if (!s.IsEmpty && char.IsAsciiDigit(s[0]))
            {
                return Bit(s, area, 0, out address, out why);
            }
        }
        byte size = s.IsEmpty ? (byte)0 : char.ToUpperInvariant(s[0]) switch
        {
            'B' => (byte)1,
            'W' => (byte)2,
            'D' => (byte)4,
            _ => (byte)0,
        };
        if (size == 0)
        {
            why = "the size is X (bit, byte.bit), B (byte), W (word) or D (double word)";
            return false;
        }
        if (!Offset(s[1..], out int byteOffset, out why))
        {
            return false;
        }
        address = new S7TagAddress(area, db, byteOffset, 0, size);
        return true;
    }

    private static bool Bit(ReadOnlySpan<char> s, S7Area area, ushort db, out S7TagAddress address, out string? why)
    {
        address = default;
        int dot = s.IndexOf('.');
        if (dot < 0 || dot == s.Length - 1)
        {
            why = "a bit is byte.bit, e.g. 10.0";
            return false;
        }
        if (!Offset(s[..dot], out int byteOffset, out why))
        {
            return false;
        }
        var bit = s[(dot + 1)..];
        if (bit.Length != 1 || bit[0] is < '0' or > '7')
        {
            why = "the bit number is 0..7";
            return false;
        }
        address = new S7TagAddress(area, db, byteOffset, (byte)(bit[0] - '0'), 0);
        return true;
    }

    private static bool Offset(ReadOnlySpan<char> s, out int value, out string? why)
    {
        why = null;
        if (s.IsEmpty || !int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value) || value > 65535)
        {
            value = 0;
            why = "the byte offset is 0..65535";
            return false;
        }
        return true;
    }
}
