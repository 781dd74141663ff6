using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace EdgeShield.Policy.Yaml;

internal enum YamlNodeKind : byte
{
    Scalar = 0,
    Sequence,
    Mapping,
}

/// <summary>
/// A YAML node with the position where it starts. Built from YamlDotNet's event parser rather than
/// its RepresentationModel so that duplicate keys become diagnostics instead of exceptions and no
/// reflection is involved anywhere.
/// </summary>
internal sealed class YamlNode
{
    public YamlNodeKind Kind { get; init; }
    public int Line { get; init; }
    public int Column { get; init; }
    /// <summary>The text of a scalar; empty for collections.</summary>
    public string Value { get; init; } = "";
    /// <summary>True for a plain (unquoted) scalar: only those can be null, booleans or numbers.</summary>
    public bool IsPlain { get; init; }
    public List<YamlNode> Items { get; } = [];
    public List<KeyValuePair<YamlNode, YamlNode>> Entries { get; } = [];
    /// <summary>What walking this node costs with every alias below it expanded: nodes plus scalar characters. Zero while the node is still being read.</summary>
    public long Weight { get; set; }

    /// <summary>An empty plain scalar, or <c>~</c> / <c>null</c>.</summary>
    public bool IsNull => Kind == YamlNodeKind.Scalar && IsPlain && Value is "" or "~" or "null" or "Null" or "NULL";

    /// <summary>
    /// Appends a canonical form of this node: kinds, scalar texts and quoting, in order; positions,
    /// comments and layout left out. Two nodes with the same form mean the same configuration.
    /// </summary>
    public void AppendCanonical(System.Text.StringBuilder text)
    {
        switch (Kind)
        {
            case YamlNodeKind.Scalar:
                text.Append(IsPlain ? 'p' : 'q').Append(Value.Length).Append(':').Append(Value);
                break;
            case YamlNodeKind.Sequence:
                text.Append('[');
                foreach (var item in Items)
                {
                    item.AppendCanonical(text);
                }
                text.Append(']');
                break;
            default:
                text.Append('{');
                foreach (var (key, value) in Entries)
                {
                    key.AppendCanonical(text);
                    value.AppendCanonical(text);
                }
                text.Append('}');
                break;
        }
    }

    public string Describe() => Kind switch
    {
        YamlNodeKind.Sequence => "a list",
        YamlNodeKind.Mapping => "a mapping",
        _ => IsNull ? "nothing" : $"'{Value}'",
    };
}

/// <summary>Turns YAML text into <see cref="YamlNode"/>s, reporting syntax errors with their position.</summary>
internal static class YamlTreeReader
{
    /// <summary>Deepest nesting of collections accepted: a config needs about 8; the bound keeps a crafted file from exhausting the stack of anything that walks the tree.</summary>
    public const int MaxDepth = 64;

    /// <summary>
    /// Most nodes plus scalar characters the document may amount to with its aliases expanded (8 Mi).
    /// Aliases are kept as shared nodes, but whatever walks the tree (section hashes, every list) walks
    /// the expansion: 479 bytes of nested aliases ("billion laughs") expand to gigabytes.
    /// </summary>
    public const long MaxExpandedWeight = 8L * 1024 * 1024;

    /// <summary>A file that breaks a bound of this reader: reported as it is, not as a syntax error.</summary>
    private sealed class LimitException(Mark start, Mark end, string message) : YamlException(start, end, message);

    /// <summary>Returns the root node of the single document, or null when the text is empty or has a syntax error.</summary>
    public static YamlNode? Read(string text, DiagnosticBag diagnostics)
    {
        var parser = new Parser(new StringReader(text));
        var anchors = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        long total = 0;
        try
        {
            parser.Consume<StreamStart>();
            if (parser.Accept<StreamEnd>(out _))
            {
                return null;
            }
            parser.Consume<DocumentStart>();
            var root = ReadNode(parser, anchors, 0, ref total);
            parser.Consume<DocumentEnd>();
            if (parser.Accept<DocumentStart>(out var second))
            {
                diagnostics.Error(Line(second.Start), Column(second.Start), "a configuration is one YAML document; remove the second '---' document");
                return null;
            }
            return root;
        }
        catch (LimitException e)
        {
            diagnostics.Error(Line(e.Start), Column(e.Start), StripMark(e.Message));
            return null;
        }
        catch (YamlException e)
        {
            diagnostics.Error(Line(e.Start), Column(e.Start), "YAML syntax: " + StripMark(e.Message));
            return null;
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // YamlDotNet 18.1 throws these instead of a YamlException on some malformed text: an
            // InvalidOperationException from its scanner for a broken flow collection (": {" then a
            // line "0"), an ArgumentException for a verbatim tag that is not a URI ("a: !<:> x").
            // Both found by the config fuzz target (tests/fuzz). They are still the file's syntax
            // errors: reported after the last event that was read, never thrown out of the loader.
            var at = parser.Current?.End ?? Mark.Empty;
            string what = e is ArgumentException ? "a tag that is not a valid URI" : "an unclosed '{' or '['";
            diagnostics.Error(Line(at), Column(at), $"YAML syntax: cannot read the text that follows here ({what}?)");
            return null;
        }
    }

    /// <summary>Reads one node at nesting <paramref name="depth"/>; <paramref name="total"/> is the document's expanded weight so far.</summary>
    private static YamlNode ReadNode(IParser parser, Dictionary<string, YamlNode> anchors, int depth, ref long total)
    {
        if (parser.TryConsume<AnchorAlias>(out var alias))
        {
            if (!anchors.TryGetValue(alias.Value.Value, out var target))
            {
                throw new YamlException(alias.Start, alias.End, $"alias '*{alias.Value.Value}' refers to no anchor defined before it");
            }
            if (target.Weight == 0)
            {
                throw new LimitException(alias.Start, alias.End, $"alias '*{alias.Value.Value}' is inside the node its anchor names: the configuration would contain itself");
            }
            Count(ref total, target.Weight, alias.Start, alias.End);
            return target;
        }
        if (parser.TryConsume<Scalar>(out var scalar))
        {
            var node = new YamlNode
            {
                Kind = YamlNodeKind.Scalar,
                Line = Line(scalar.Start),
                Column = Column(scalar.Start),
                Value = scalar.Value,
                IsPlain = scalar.Style == ScalarStyle.Plain,
                Weight = 1 + scalar.Value.Length,
            };
            Count(ref total, node.Weight, scalar.Start, scalar.End);
            Remember(scalar, node, anchors);
            return node;
        }
        var start = parser.Current;
        if (start is SequenceStart or MappingStart && depth >= MaxDepth)
        {
            throw new LimitException(start.Start, start.End, $"the configuration nests lists and mappings deeper than {MaxDepth} levels here; no EdgeShield key needs more than a few");
        }
        if (parser.TryConsume<SequenceStart>(out var sequenceStart))
        {
            var node = new YamlNode { Kind = YamlNodeKind.Sequence, Line = Line(sequenceStart.Start), Column = Column(sequenceStart.Start) };
            Remember(sequenceStart, node, anchors);
            long weight = 1;
            Count(ref total, 1, sequenceStart.Start, sequenceStart.End);
            while (!parser.TryConsume<SequenceEnd>(out _))
            {
                var item = ReadNode(parser, anchors, depth + 1, ref total);
                node.Items.Add(item);
                weight += item.Weight;
            }
            node.Weight = weight;
            return node;
        }
        var mappingStart = parser.Consume<MappingStart>();
        var mapping = new YamlNode { Kind = YamlNodeKind.Mapping, Line = Line(mappingStart.Start), Column = Column(mappingStart.Start) };
        Remember(mappingStart, mapping, anchors);
        long mappingWeight = 1;
        Count(ref total, 1, mappingStart.Start, mappingStart.End);
        while (!parser.TryConsume<MappingEnd>(out _))
        {
            var key = ReadNode(parser, anchors, depth + 1, ref total);
            var value = ReadNode(parser, anchors, depth + 1, ref total);
            mapping.Entries.Add(new KeyValuePair<YamlNode, YamlNode>(key, value));
            mappingWeight += key.Weight + value.Weight;
        }
        mapping.Weight = mappingWeight;
        return mapping;
    }

    private static void Count(ref long total, long weight, Mark start, Mark end)
    {
        total += weight;
        if (total > MaxExpandedWeight)
        {
            throw new LimitException(start, end, $"with its aliases expanded the configuration exceeds {MaxExpandedWeight / (1024 * 1024)} Mi nodes and characters (nested aliases, a 'billion laughs' file?); write the values out");
        }
    }

    private static void Remember(NodeEvent e, YamlNode node, Dictionary<string, YamlNode> anchors)
    {
        if (!e.Anchor.IsEmpty)
        {
            anchors[e.Anchor.Value] = node;
        }
    }

    private static int Line(Mark mark) => (int)Math.Clamp(mark.Line, 1, int.MaxValue);
    private static int Column(Mark mark) => (int)Math.Clamp(mark.Column, 1, int.MaxValue);

    /// <summary>YamlDotNet prefixes its messages with "(Line: …, Col: …, Idx: …) - (…): "; the diagnostic already carries the position.</summary>
    private static string StripMark(string message)
    {
        if (message.StartsWith("(Line:", StringComparison.Ordinal))
        {
            var at = message.IndexOf("): ", StringComparison.Ordinal);
            if (at >= 0)
            {
                return message[(at + 3)..];
            }
        }
        return message;
    }
}
