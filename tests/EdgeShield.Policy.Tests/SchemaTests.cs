using System.Reflection;
using System.Text.Json.Nodes;
using EdgeShield.Protocols.Tests;
using YamlDotNet.RepresentationModel;

namespace EdgeShield.Policy.Tests;

/// <summary>
/// docs/edgeshield.schema.json stays in step with the loader: every key array of ConfigReader is
/// the property set of exactly one schema object (and every schema object is one of them), the
/// value enumerations agree, and the example configurations use only schema keys and name the
/// schema for editors.
/// </summary>
public class SchemaTests
{
    private const string Rules = "/properties/policies/additionalProperties/properties/rules/items/anyOf/0";
    private const string S7Rules = "/properties/policies/additionalProperties/properties/rules/items/anyOf/1";
    private const string Iec104Rules = "/properties/policies/additionalProperties/properties/rules/items/anyOf/2";

    /// <summary>Which schema object each key array of the loader describes (JSON pointer; "" is the root).</summary>
    private static readonly Dictionary<string, string> KeyArrays = new(StringComparer.Ordinal)
    {
        ["RootKeys"] = "",
        ["GatewayKeys"] = "/properties/gateway",
        ["SerialKeys"] = "/properties/serial/items",
        ["ListenerKeys"] = "/properties/listeners/items",
        ["LimitKeys"] = "/properties/listeners/items/properties/limits",
        ["PolicyKeys"] = "/properties/policies/additionalProperties",
        ["RuleKeys"] = Rules,
        ["S7RuleYamlKeys"] = S7Rules,
        ["Iec104RuleYamlKeys"] = Iec104Rules,
        ["TelemetryKeys"] = "/properties/telemetry",
        ["MqttKeys"] = "/properties/telemetry/properties/mqtt",
        ["TlsKeys"] = "/properties/telemetry/properties/mqtt/properties/tls",
        ["BufferKeys"] = "/properties/telemetry/properties/buffer",
        ["PollKeys"] = "/properties/telemetry/properties/poll/items",
        ["TagKeys"] = "/properties/telemetry/properties/poll/items/properties/tags/items",
        ["AuditKeys"] = "/properties/audit",
        ["PcapKeys"] = "/properties/audit/properties/pcap",
        ["JournalKeys"] = "/properties/audit/properties/journal",
        ["HardwareKeys"] = "/properties/hardware",
        ["MaintenanceKeyKeys"] = "/properties/hardware/properties/maintenance-key",
        ["LedKeys"] = "/properties/hardware/properties/leds",
        ["NetworkKeys"] = "/properties/network",
    };

    /// <summary>Which schema enum each value array of the loader is.</summary>
    private static readonly Dictionary<string, string> ValueArrays = new(StringComparer.Ordinal)
    {
        ["Modes"] = "/properties/policies/additionalProperties/properties/mode",
        ["OnDenyActions"] = "/properties/policies/additionalProperties/properties/on-deny",
        ["Parities"] = "/properties/serial/items/properties/parity",
        ["Protocols"] = "/properties/listeners/items/properties/protocol",
        ["Formats"] = "/properties/telemetry/properties/format",
        ["Tables"] = "/properties/telemetry/properties/poll/items/properties/tags/items/properties/table",
        // One tag schema for every protocol: its type names are S7's, which are Modbus's and the S7 byte types.
        ["S7TagTypes"] = "/properties/telemetry/properties/poll/items/properties/tags/items/properties/type/oneOf/0",
        ["ActiveLevels"] = "/properties/hardware/properties/maintenance-key/properties/active",
        ["RuleValueTypes"] = $"{Rules}/properties/type",
        ["PolicyProtocols"] = "/properties/policies/additionalProperties/properties/protocol",
        ["WordOrders"] = $"{Rules}/properties/word-order",
        ["PollProtocols"] = "/properties/telemetry/properties/poll/items/properties/protocol",
        ["ConnectionTypes"] = "/properties/telemetry/properties/poll/items/properties/connection",
    };

    private static readonly Type Reader = typeof(ConfigLoader).Assembly.GetType("EdgeShield.Policy.ConfigReader", throwOnError: true)!;

    private static JsonNode Schema { get; } = JsonNode.Parse(File.ReadAllText(Path.Combine(RepoRoot, "docs", "edgeshield.schema.json")))!;

    private static string RepoRoot => Path.GetDirectoryName(Path.GetDirectoryName(TestData.Directory))!;

    private static string[] Array(string field) =>
        (string[])Reader.GetField(field, BindingFlags.NonPublic | BindingFlags.Static)!.GetValue(null)!;

    private static JsonNode At(string pointer)
    {
        var node = Schema;
        foreach (var part in pointer.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            node = (node is JsonArray array ? array[int.Parse(part, System.Globalization.CultureInfo.InvariantCulture)] : node[part]) ?? throw new KeyNotFoundException($"schema has no {pointer} (at {part})");
        }
        return node;
    }

    private static string[] Sorted(IEnumerable<string> items) => items.Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public void EveryKeyArrayOfTheLoader_IsMappedToTheSchema()
    {
        var arrays = Reader.GetFields(BindingFlags.NonPublic | BindingFlags.Static)
            .Where(f => f.FieldType == typeof(string[]) && f.Name.EndsWith("Keys", StringComparison.Ordinal))
            .Select(f => f.Name);

        Assert.Equal(Sorted(arrays), Sorted(KeyArrays.Keys));
    }

    [Fact]
    public void EachSchemaObject_HasExactlyTheKeysTheLoaderAccepts()
    {
        foreach (var (field, pointer) in KeyArrays)
        {
            var node = At(pointer);
            var properties = node["properties"]!.AsObject().Select(p => p.Key);
            Assert.True(Sorted(Array(field)).SequenceEqual(Sorted(properties)), $"{field} vs schema {pointer}: loader [{string.Join(", ", Sorted(Array(field)))}], schema [{string.Join(", ", Sorted(properties))}]");
            Assert.False(node["additionalProperties"]!.GetValue<bool>(), $"{pointer} must reject unknown keys, as the loader does");
        }
    }

    [Fact]
    public void EverySchemaObjectWithProperties_IsOneTheLoaderReads()
    {
        var found = new List<string>();
        void Walk(JsonNode? node, string pointer)
        {
            if (node is JsonObject o)
            {
                if (o["properties"] is JsonObject)
                {
                    found.Add(pointer);
                }
                foreach (var (key, child) in o)
                {
                    Walk(child, $"{pointer}/{key}");
                }
            }
            else if (node is JsonArray a)
            {
                for (int i = 0; i < a.Count; i++)
                {
                    Walk(a[i], $"{pointer}/{i}");
                }
            }
        }
        Walk(Schema, "");

        Assert.Equal(Sorted(KeyArrays.Values), Sorted(found));
    }

    [Fact]
    public void ValueEnumerations_AgreeWithTheLoader()
    {
        foreach (var (field, pointer) in ValueArrays)
        {
            var values = At(pointer)["enum"]!.AsArray().Select(v => v!.GetValue<string>());
            Assert.Equal(Sorted(Array(field)), Sorted(values));
        }
        var names = ((System.Collections.IEnumerable)Reader.GetField("FunctionNames", BindingFlags.NonPublic | BindingFlags.Static)!.GetValue(null)!)
            .Cast<object>().Select(t => (string)t.GetType().GetField("Item1")!.GetValue(t)!)
            .Concat(Array("FunctionGroups"))
            .Append("read-device-identification").Append("canopen-general-reference")
            .Concat(((System.Collections.IEnumerable)Reader.GetField("DiagnosticsNames", BindingFlags.NonPublic | BindingFlags.Static)!.GetValue(null)!)
                .Cast<object>().Select(t => (string)t.GetType().GetField("Item1")!.GetValue(t)!));
        var schemaNames = At($"{Rules}/properties/function/oneOf/0/oneOf/1/enum").AsArray().Select(v => v!.GetValue<string>());
        Assert.Equal(Sorted(names), Sorted(schemaNames));
    }

    [Fact]
    public void S7Vocabulary_AgreesWithTheLoader()
    {
        Assert.Equal(Sorted(Array("RuleValueTypes")), Sorted(At($"{S7Rules}/properties/type")["enum"]!.AsArray().Select(v => v!.GetValue<string>())));
        var words = Enum.GetValues<EdgeShield.Protocols.S7comm.S7Function>()
            .Where(f => f != EdgeShield.Protocols.S7comm.S7Function.Unknown)
            .Select(EdgeShield.Protocols.S7comm.S7Functions.PolicyWord)
            .Concat(Array("S7FunctionGroups"));
        Assert.Equal(Sorted(words), Sorted(At($"{S7Rules}/properties/function/oneOf/0")["enum"]!.AsArray().Select(v => v!.GetValue<string>())));
        Assert.Equal(Sorted(Array("S7ConnectionWords")), Sorted(At($"{S7Rules}/properties/connection/oneOf/0/oneOf/0")["enum"]!.AsArray().Select(v => v!.GetValue<string>())));
        Assert.Equal(Sorted(Array("S7AreaWords")), Sorted(At($"{S7Rules}/properties/area/oneOf/0/oneOf/0")["enum"]!.AsArray().Select(v => v!.GetValue<string>())));
        string pattern = At($"{S7Rules}/properties/pi-service/oneOf/0")["pattern"]!.GetValue<string>();
        foreach (string service in Array("S7PiServices").Append("_N_F_DELE"))
        {
            Assert.Matches(pattern, service);
        }
    }

    public static TheoryData<string> Examples()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(Path.Combine(RepoRoot, "firmware-config", "examples"), "*.yaml").Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(file));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public void Example_NamesTheSchemaAndUsesOnlyItsKeys(string name)
    {
        string path = Path.Combine(RepoRoot, "firmware-config", "examples", name);
        string text = File.ReadAllText(path);
        var comment = text.Split('\n').FirstOrDefault(l => l.StartsWith("# yaml-language-server: $schema=", StringComparison.Ordinal));
        Assert.NotNull(comment);
        string schemaPath = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, comment["# yaml-language-server: $schema=".Length..].Trim()));
        Assert.Equal(Path.Combine(RepoRoot, "docs", "edgeshield.schema.json"), schemaPath);

        var yaml = new YamlStream();
        yaml.Load(new StringReader(text));
        var unknown = new List<string>();
        CheckKeys(yaml.Documents[0].RootNode, Schema, "", unknown);
        Assert.Empty(unknown);
    }

    /// <summary>Walks a YAML node with its schema: every mapping key must be a property of its object.</summary>
    private static void CheckKeys(YamlNode node, JsonNode schema, string where, List<string> unknown)
    {
        if (schema["anyOf"] is JsonArray alternatives && node is YamlMappingNode keyed)
        {
            // a rule: the alternative (Modbus or S7) that has every key of the mapping, else the first
            schema = alternatives.FirstOrDefault(c => keyed.Children.Keys.All(k => c!["properties"]?[((YamlScalarNode)k).Value!] is not null)) ?? alternatives[0]!;
        }
        if (schema["oneOf"] is JsonArray choices)
        {
            schema = choices.FirstOrDefault(c => (node is YamlSequenceNode) == (c!["type"]?.GetValue<string>() == "array")) ?? choices[0]!;
        }
        switch (node)
        {
            case YamlMappingNode map when schema["properties"] is JsonObject properties:
                foreach (var (key, value) in map.Children)
                {
                    string k = ((YamlScalarNode)key).Value!;
                    if (properties[k] is { } child)
                    {
                        CheckKeys(value, child, $"{where}/{k}", unknown);
                    }
                    else
                    {
                        unknown.Add($"{where}/{k}");
                    }
                }
                break;
            case YamlMappingNode map when schema["additionalProperties"] is JsonObject each:
                foreach (var (key, value) in map.Children)
                {
                    CheckKeys(value, each, $"{where}/{((YamlScalarNode)key).Value}", unknown);
                }
                break;
            case YamlSequenceNode seq when schema["items"] is { } items:
                foreach (var item in seq.Children)
                {
                    CheckKeys(item, items, where + "[]", unknown);
                }
                break;
        }
    }
}
