using System.Globalization;
using EdgeShield.Policy.Yaml;

namespace EdgeShield.Policy;

/// <summary>The keys found in one mapping, checked against the keys that are valid there.</summary>
internal sealed class KeyMap
{
    private readonly Dictionary<string, (YamlNode Key, YamlNode Value)> _entries = new(StringComparer.Ordinal);

    public KeyMap(YamlNode node) => Node = node;

    /// <summary>The mapping itself: where "missing key" errors point.</summary>
    public YamlNode Node { get; }

    public void Add(string key, YamlNode keyNode, YamlNode value) => _entries[key] = (keyNode, value);

    public bool TryGet(string key, out YamlNode value)
    {
        if (_entries.TryGetValue(key, out var entry))
        {
            value = entry.Value;
            return true;
        }
        value = null!;
        return false;
    }

    public bool Has(string key) => _entries.ContainsKey(key);

    /// <summary>The key's own node (where an error about the key, not its value, points).</summary>
    public bool TryGetKey(string key, out YamlNode? keyNode)
    {
        keyNode = _entries.TryGetValue(key, out var entry) ? entry.Key : null;
        return keyNode is not null;
    }
}

/// <summary>
/// Walks the YAML tree of one file and builds the configuration, reporting every problem to the
/// <see cref="DiagnosticBag"/> and carrying on, so that an integrator sees all of them at once.
/// </summary>
internal sealed partial class ConfigReader(DiagnosticBag diagnostics, MaintenanceState maintenance)
{
    /// <summary>The sections, and <c>version:</c> (a number, not a section: a reload never reports it as "not applied").</summary>
    private static readonly string[] RootKeys = [.. EdgeShieldConfig.SectionNames, "version"];
    private static readonly string[] GatewayKeys = ["name", "site"];

    private readonly DiagnosticBag _diagnostics = diagnostics;
    private readonly MaintenanceState _maintenance = maintenance;

    public EdgeShieldConfig Read(YamlNode? root, string path, string hash)
    {
        var config = new EdgeShieldConfig { Path = path, Hash = hash };
        if (root is null || root.IsNull)
        {
            return config;
        }
        var map = Map(root, "the configuration file", RootKeys);
        if (map is null)
        {
            return config;
        }

        string gatewayName = "", site = "";
        if (map.TryGet("gateway", out var gatewayNode) && Map(gatewayNode, "gateway", GatewayKeys) is { } gateway)
        {
            gatewayName = OptionalText(gateway, "name") ?? "";
            site = OptionalText(gateway, "site") ?? "";
        }

        var serial = ReadSerial(map);
        var serialNames = serial.Names;
        var (policies, declaredPolicies) = ReadPolicies(map);
        var listeners = ReadListeners(map, serialNames, declaredPolicies);
        var telemetry = ReadTelemetry(map, serialNames);
        var audit = ReadAudit(map);
        var hardware = ReadHardware(map);
        var network = ReadNetwork(map);
        // The release number a signed config carries (docs/SIGNING.md): a gateway run with --trust refuses
        // one lower than the last it accepted. Optional here; the signer and --trust require it.
        long? version = OptionalInteger(map, "version", 0, EdgeShieldConfig.MaxVersion);

        return new EdgeShieldConfig
        {
            Path = path,
            Hash = hash,
            GatewayName = gatewayName,
            Site = site,
            Listeners = listeners,
            Policies = policies,
            SerialBuses = serial.Buses,
            Hardware = hardware,
            Network = network,
            Telemetry = telemetry,
            AuditPcap = audit.Pcap,
            AuditJournal = audit.Journal,
            AuditKey = audit.Key,
            Version = version,
            SectionHashes = SectionHashes(map),
        };
    }

    private static Dictionary<string, string> SectionHashes(KeyMap map)
    {
        var hashes = new Dictionary<string, string>(StringComparer.Ordinal);
        var text = new System.Text.StringBuilder();
        foreach (string name in EdgeShieldConfig.SectionNames)
        {
            if (map.TryGet(name, out var section))
            {
                text.Clear();
                section.AppendCanonical(text);
                hashes[name] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text.ToString())));
            }
        }
        return hashes;
    }

    // ---- structure -------------------------------------------------------------------------

    /// <summary>
    /// Checks that <paramref name="node"/> is a mapping whose keys are all in <paramref name="validKeys"/>
    /// and unique. An empty value counts as an empty mapping. Null when it is not a mapping.
    /// <paramref name="unknownKeyMessage"/>, when given, words the error for a key that is not valid there.
    /// </summary>
    private KeyMap? Map(YamlNode node, string what, string[] validKeys, Func<string, string>? unknownKeyMessage = null)
    {
        var map = new KeyMap(node);
        if (node.IsNull)
        {
            return map;
        }
        if (node.Kind != YamlNodeKind.Mapping)
        {
            _diagnostics.Error(node, $"{what} must be a mapping with the keys {string.Join(", ", validKeys)}; found {node.Describe()}");
            return null;
        }
        var firstSeen = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        foreach (var (keyNode, value) in node.Entries)
        {
            if (keyNode.Kind != YamlNodeKind.Scalar)
            {
                _diagnostics.Error(keyNode, $"a key in {what} must be a plain name, not {keyNode.Describe()}");
                continue;
            }
            var key = keyNode.Value;
            if (Array.IndexOf(validKeys, key) < 0)
            {
                _diagnostics.Error(keyNode, unknownKeyMessage is null ? UnknownKeyMessage(key, what, validKeys) : unknownKeyMessage(key));
                continue;
            }
            if (firstSeen.TryGetValue(key, out var first))
            {
                _diagnostics.Error(keyNode, $"duplicate key '{key}' in {what} (first at line {first.Line})");
                continue;
            }
            firstSeen.Add(key, keyNode);
            map.Add(key, keyNode, value);
        }
        return map;
    }

    internal static string UnknownKeyMessage(string key, string what, string[] validKeys)
    {
        var suggestion = Suggestions.Closest(key, validKeys);
        return suggestion is null
            ? $"unknown key '{key}' in {what}; valid keys: {string.Join(", ", validKeys)}"
            : $"unknown key '{key}' in {what}; did you mean '{suggestion}'? (valid keys: {string.Join(", ", validKeys)})";
    }

    /// <summary>The items of a list; a single value counts as a list of one. Null (with an error) for a mapping or an empty list.</summary>
    private List<YamlNode>? ScalarList(YamlNode node, string key, string example)
    {
        if (node.Kind == YamlNodeKind.Scalar)
        {
            if (node.IsNull)
            {
                _diagnostics.Error(node, $"'{key}' is empty; give {example}, or leave the key out");
                return null;
            }
            return [node];
        }
        if (node.Kind == YamlNodeKind.Mapping)
        {
            _diagnostics.Error(node, $"'{key}' must be {example} or a list of them, not a mapping");
            return null;
        }
        if (node.Items.Count == 0)
        {
            _diagnostics.Error(node, $"'{key}' is an empty list and would match nothing; give {example}, or leave the key out to match any");
            return null;
        }
        var items = new List<YamlNode>(node.Items.Count);
        foreach (var item in node.Items)
        {
            if (item.Kind != YamlNodeKind.Scalar || item.IsNull)
            {
                _diagnostics.Error(item, $"each item of '{key}' must be {example}, not {item.Describe()}");
                continue;
            }
            items.Add(item);
        }
        return items;
    }

    /// <summary>The items of a list of mappings (serial buses, listeners, rules, tags).</summary>
    private List<YamlNode> Sequence(KeyMap parent, string key, string what)
    {
        if (!parent.TryGet(key, out var node) || node.IsNull)
        {
            return [];
        }
        if (node.Kind != YamlNodeKind.Sequence)
        {
            _diagnostics.Error(node, $"'{key}' must be a list of {what}s (each item starting with '- '), not {node.Describe()}");
            return [];
        }
        return node.Items;
    }

    private void Missing(KeyMap map, string what, string key, string hint) =>
        _diagnostics.Error(map.Node, $"{what} is missing required key '{key}' ({hint})");

    // ---- scalars ---------------------------------------------------------------------------

    private bool IsText(YamlNode node, string key)
    {
        if (node.Kind != YamlNodeKind.Scalar || node.IsNull)
        {
            _diagnostics.Error(node, $"'{key}' must be text, not {node.Describe()}");
            return false;
        }
        return true;
    }

    private string? OptionalText(KeyMap map, string key) =>
        map.TryGet(key, out var node) && IsText(node, key) ? node.Value : null;

    private string? RequiredText(KeyMap map, string key, string what, string hint)
    {
        if (!map.TryGet(key, out var node))
        {
            Missing(map, what, key, hint);
            return null;
        }
        return IsText(node, key) ? node.Value : null;
    }

    private long? Integer(YamlNode node, string key, long min, long max)
    {
        if (node.Kind == YamlNodeKind.Scalar && node.IsPlain
            && long.TryParse(node.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
            && value >= min && value <= max)
        {
            return value;
        }
        _diagnostics.Error(node, $"'{key}' must be a whole number from {min} to {max}, not {node.Describe()}");
        return null;
    }

    private long? OptionalInteger(KeyMap map, string key, long min, long max) =>
        map.TryGet(key, out var node) ? Integer(node, key, min, max) : null;

    private double? OptionalNumber(KeyMap map, string key)
    {
        if (!map.TryGet(key, out var node))
        {
            return null;
        }
        if (node.Kind == YamlNodeKind.Scalar && node.IsPlain
            && double.TryParse(node.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value))
        {
            return value;
        }
        _diagnostics.Error(node, $"'{key}' must be a number such as 0.1, not {node.Describe()}");
        return null;
    }

    private bool? Boolean(YamlNode node, string key)
    {
        if (node.Kind == YamlNodeKind.Scalar && node.IsPlain)
        {
            switch (node.Value)
            {
                case "true" or "True" or "TRUE": return true;
                case "false" or "False" or "FALSE": return false;
            }
        }
        _diagnostics.Error(node, $"'{key}' must be true or false, not {node.Describe()}");
        return null;
    }

    /// <summary>One of a fixed set of words; the error suggests the closest.</summary>
    private string? OneOf(YamlNode node, string key, string[] options)
    {
        if (node.Kind == YamlNodeKind.Scalar && Array.IndexOf(options, node.Value) >= 0)
        {
            return node.Value;
        }
        var suggestion = node.Kind == YamlNodeKind.Scalar ? Suggestions.Closest(node.Value, options) : null;
        _diagnostics.Error(node, suggestion is null
            ? $"'{key}' must be one of {string.Join(", ", options)}; found {node.Describe()}"
            : $"'{key}' must be one of {string.Join(", ", options)}; found {node.Describe()}; did you mean '{suggestion}'?");
        return null;
    }

    /// <summary><c>250ms</c>, <c>1s</c>, <c>5m</c>, <c>1h</c>: a positive whole number and a unit.</summary>
    private TimeSpan? Duration(YamlNode node, string key)
    {
        if (node.Kind == YamlNodeKind.Scalar && TryParseDuration(node.Value, out var duration))
        {
            return duration;
        }
        _diagnostics.Error(node, $"'{key}' must be a duration such as 250ms, 1s, 5m or 1h, not {node.Describe()}");
        return null;
    }

    internal static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = default;
        var digits = 0;
        while (digits < text.Length && char.IsAsciiDigit(text[digits]))
        {
            digits++;
        }
        if (digits == 0 || digits > 9)
        {
            return false;
        }
        var amount = long.Parse(text.AsSpan(0, digits), NumberStyles.None, CultureInfo.InvariantCulture);
        if (amount == 0)
        {
            return false;
        }
        switch (text.AsSpan(digits))
        {
            case "ms": duration = TimeSpan.FromMilliseconds(amount); return true;
            case "s": duration = TimeSpan.FromSeconds(amount); return true;
            case "m": duration = TimeSpan.FromMinutes(amount); return true;
            case "h": duration = TimeSpan.FromHours(amount); return true;
            default: return false;
        }
    }

    /// <summary><c>N</c> or <c>A-B</c> within <paramref name="min"/>..<paramref name="max"/>, as an inclusive range.</summary>
    private (int Low, int High)? NumberRange(YamlNode node, string key, int min, int max, string hint = "")
    {
        var text = node.Value.Trim();
        var dash = text.IndexOf('-', 1 < text.Length ? 1 : 0);
        if (dash < 0)
        {
            if (TryInt(text, out var single) && single >= min && single <= max)
            {
                return (single, single);
            }
        }
        else if (TryInt(text[..dash].Trim(), out var low) && TryInt(text[(dash + 1)..].Trim(), out var high)
            && low >= min && high <= max)
        {
            if (low <= high)
            {
                return (low, high);
            }
            _diagnostics.Error(node, $"'{key}' range {text} runs backwards; write it as {high}-{low}");
            return null;
        }
        _diagnostics.Error(node, $"'{key}' must be a number from {min} to {max} or a range such as {min}-{Math.Min(max, min + 9)}, not {node.Describe()}{hint}");
        return null;
    }

    private static bool TryInt(string text, out int value) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}

/// <summary>"Did you mean" by edit distance.</summary>
internal static class Suggestions
{
    /// <summary>The option closest to <paramref name="input"/>, if it is close enough to be a typo.</summary>
    public static string? Closest(string input, IEnumerable<string> options)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var option in options)
        {
            var d = Distance(input, option);
            if (d < bestDistance)
            {
                bestDistance = d;
                best = option;
            }
        }
        return best is not null && bestDistance <= Math.Max(2, best.Length / 3) && bestDistance < Math.Max(input.Length, 1) ? best : null;
    }

    /// <summary>Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours cost 1.</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = char.ToLowerInvariant(a[i - 1]) == char.ToLowerInvariant(b[j - 1]) ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }
        return d[a.Length, b.Length];
    }
}
