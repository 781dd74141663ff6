using EdgeShield.Policy.Yaml;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Policy;

// Poll entries with protocol: iec104 (docs/TELEMETRY.md "IEC 104 stations"): the poller is a controlling station that
// only starts data transfer and interrogates; tags name information object addresses of one common address.
internal sealed partial class ConfigReader
{
    /// <summary>The monitor types a telemetry tag can publish, untimed; their CP56Time2a forms (30-37) are accepted as the same kind.</summary>
    private static readonly byte[] Iec104TagTypes = [1, 3, 5, 7, 9, 11, 13, 15, 20, 21, 38, 39, 40];

    /// <summary>
    /// The station of an iec104 poll entry: <c>ca</c> (required, 1..65534; the global address is not a station), an
    /// upstream over TCP; the Modbus keys <c>unit</c> and <c>max-gap</c> are refused with the reason.
    /// </summary>
    private ushort? ReadIec104Station(KeyMap poll, UpstreamAddress? upstream, YamlNode? upstreamNode)
    {
        bool ok = true;
        if (upstream is { Scheme: not "tcp" } && upstreamNode is not null)
        {
            _diagnostics.Error(upstreamNode, $"an iec104 poll entry reads a station over TCP: 'upstream' must be tcp://HOST:PORT (port 2404 by the standard), not '{upstreamNode.Value}'");
            ok = false;
        }
        foreach (var (key, why) in (ReadOnlySpan<(string, string)>)[
            ("unit", "a Modbus unit id; an IEC 104 station is named by 'ca', its common address"),
            ("max-gap", "Modbus read joining; an IEC 104 station sends its points itself (interrogation and spontaneous)")])
        {
            if (poll.TryGetKey(key, out var keyNode))
            {
                _diagnostics.Error(keyNode!, $"'{key}' is {why}");
                ok = false;
            }
        }
        long? ca = null;
        if (!poll.TryGet("ca", out var caNode))
        {
            Missing(poll, "iec104 poll entry", "ca", "the station's common address 1..65534, as the station is configured");
            ok = false;
        }
        else if (caNode.Kind == YamlNodeKind.Scalar && caNode.Value is "global" or "65535")
        {
            _diagnostics.Error(caNode, "'ca' names one station: 1..65534; the global address 65535 is not a station, and the poller interrogates only the station it names");
            ok = false;
        }
        else
        {
            ca = Integer(caNode, "ca", 1, 65534);
            ok &= ca is not null;
        }
        return ok ? (ushort)ca!.Value : null;
    }

    /// <summary>
    /// <c>station-time</c> of an iec104 poll entry: <c>utc</c> (the default: null) or the UTC offset of the station's standard
    /// time, <c>+HH:MM</c> or <c>-HH:MM</c> up to 14 hours. False (and an error at the value) for anything else.
    /// </summary>
    private bool ReadIec104StationTime(KeyMap poll, out TimeSpan? offset)
    {
        offset = null;
        if (!poll.TryGet("station-time", out var node))
        {
            return true;
        }
        string text = node.Kind == YamlNodeKind.Scalar ? node.Value ?? "" : "";
        if (text.Equals("utc", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }
        if (text.Length == 6 && text[0] is '+' or '-' && text[3] == ':'
            && int.TryParse(text.AsSpan(1, 2), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int hours)
            && int.TryParse(text.AsSpan(4, 2), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int minutes)
            && minutes < 60 && hours * 60 + minutes <= 14 * 60)
        {
            offset = (text[0] == '-' ? -1 : 1) * new TimeSpan(hours, minutes, 0);
            return true;
        }
        _diagnostics.Error(node, $"'station-time' is utc (the default, as IEC 60870-5-104 recommends) or the UTC offset of the station's standard time, such as +01:00 (the station then sends local time, an hour more when it sets SU for summer time), not '{text}'");
        return false;
    }

    /// <summary><c>ioa</c> on a tag of another protocol: an error with the reason.</summary>
    private bool RefuseIec104Key(KeyMap tag, string why)
    {
        if (tag.TryGetKey("ioa", out var keyNode))
        {
            _diagnostics.Error(keyNode!, $"'ioa' is an IEC 104 key (add 'protocol: iec104' to the poll entry): {why}");
            return false;
        }
        return true;
    }

    /// <summary>
    /// An IEC 104 tag: <c>name</c>, <c>ioa</c> (0..16777215, unique in the entry), optionally <c>type</c> (a monitor type
    /// name or number: the kind of point expected there), <c>scale</c>, <c>offset</c> (numeric points), <c>unit</c>.
    /// </summary>
    private TagConfig? ReadIec104Tag(YamlNode tagNode, Dictionary<string, int> tagNames, Dictionary<uint, (string Name, int Line)> ioas)
    {
        if (Map(tagNode, "tag", TagKeys) is not { } tag)
        {
            return null;
        }
        bool ok = ReadTagName(tag, tagNames, out var name);
        foreach (var (key, why) in (ReadOnlySpan<(string, string)>)[
            ("table", "a Modbus key: an IEC 104 tag is addressed by 'ioa', its information object address"),
            ("address", "a Modbus or S7 key: an IEC 104 tag is addressed by 'ioa', its information object address"),
            ("word-order", "a Modbus key: IEC 104 fixes every value's encoding by its type"),
            ("function", "a Modbus key: the poller reads an IEC 104 station only by station interrogation and spontaneous data")])
        {
            if (tag.TryGetKey(key, out var keyNode))
            {
                _diagnostics.Error(keyNode ?? tagNode, $"'{key}' is {why}");
                ok = false;
            }
        }
        uint? ioa = null;
        if (!tag.TryGet("ioa", out var ioaNode))
        {
            Missing(tag, "tag", "ioa", "the point's information object address 0..16777215");
        }
        else if (Integer(ioaNode, "ioa", 0, Iec104Limits.MaxIoa) is { } value)
        {
            if (ioas.TryGetValue((uint)value, out var first))
            {
                _diagnostics.Error(ioaNode, $"ioa {value} is already tag '{first.Name}' (line {first.Line}): one tag per information object");
                ok = false;
            }
            else
            {
                ioa = (uint)value;
                ioas.Add((uint)value, (name ?? "", tag.Node.Line));
            }
        }
        byte expected = 0;
        if (tag.TryGet("type", out var typeNode))
        {
            if (Iec104TagType(typeNode) is { } type)
            {
                expected = type;
            }
            else
            {
                ok = false;
            }
        }
        var scale = OptionalNumber(tag, "scale");
        var offset = OptionalNumber(tag, "offset");
        if ((scale is not null || offset is not null) && expected is 1 or 3)
        {
            tag.TryGetKey(scale is not null ? "scale" : "offset", out var keyNode);
            _diagnostics.Error(keyNode ?? tagNode, $"'{(scale is not null ? "scale" : "offset")}' applies to numeric points; a {Iec104Types.Name(expected)} is published as {(expected == 1 ? "a boolean" : "its state 0..3")}");
            ok = false;
        }
        var unit = OptionalText(tag, "unit");
        if (!ok || name is null || ioa is null)
        {
            return null;
        }
        return new TagConfig
        {
            Name = name,
            Ioa = ioa,
            Iec104Type = expected,
            Type = Iec104TagValueType(expected),
            Scale = scale ?? 1,
            Offset = offset ?? 0,
            Unit = unit,
        };
    }

    /// <summary>A tag's <c>type</c>: a monitor type by name (<c>M_ME_NC_1</c>, either case) or number, as its untimed form.</summary>
    private byte? Iec104TagType(YamlNode node)
    {
        string text = node.Kind == YamlNodeKind.Scalar ? node.Value : "";
        byte type = 0;
        bool known = Iec104Types.TryParseName(text, out type)
            || (byte.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out type) && Iec104Types.IsKnown(type));
        byte untimed = type is >= 30 and <= 37 ? Untimed(type) : type;
        if (known && Array.IndexOf(Iec104TagTypes, untimed) >= 0)
        {
            return untimed;
        }
        string names = string.Join(", ", Iec104TagTypes.Select(Iec104Types.Name));
        _diagnostics.Error(node, known
            ? $"a telemetry tag publishes a monitor point the station sends; '{text}' ({Iec104Types.Name(type)}) is not one: use {names} (or their time-tagged forms M_SP_TB_1 … M_IT_TB_1)"
            : $"'type' of an IEC 104 tag is a monitor type name or number: {names} (or the time-tagged M_SP_TB_1 … M_IT_TB_1); found {node.Describe()}");
        return null;

        static byte Untimed(byte timed) => timed switch
        {
            30 => 1,
            31 => 3,
            32 => 5,
            33 => 7,
            34 => 9,
            35 => 11,
            36 => 13,
            _ => 15,
        };
    }

    /// <summary>
    /// The value type of an IEC 104 tag, for Sparkplug births: bool for single points, a 16-bit integer for double points
    /// (the state 0..3), step positions and scaled values, uint32 for bitstrings, int32 for counters, float32 for short floats,
    /// and float64 for normalised values and for a tag that names no type (every point kind fits a double).
    /// </summary>
    private static TagType Iec104TagValueType(byte type) => type switch
    {
        1 => TagType.Bool,
        3 => TagType.UInt16,
        5 or 11 => TagType.Int16,
        7 => TagType.UInt32,
        13 => TagType.Float32,
        15 => TagType.Int32,
        20 or 38 or 39 or 40 => TagType.UInt16,
        _ => TagType.Float64,
    };
}
