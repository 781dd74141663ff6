using EdgeShield.Policy.Yaml;

namespace EdgeShield.Policy;

// Tags of telemetry.poll: the diode's read side. Only read functions can be expressed; a tag
// that names any other function is an error with its line and column.
internal sealed partial class ConfigReader
{
    private const int ModbusReadRegistersLimit = 125;
    private static readonly string[] WordOrders = ["abcd", "cdab", "badc", "dcba"];

    private TagConfig? ReadTag(YamlNode tagNode, Dictionary<string, int> tagNames)
    {
        if (Map(tagNode, "tag", TagKeys) is not { } tag)
        {
            return null;
        }
        bool ok = true;
        var name = RequiredText(tag, "name", "tag", "the tag's name in topics");
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
}
