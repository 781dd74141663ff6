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
    /// <summary>Returns the root node of the single document, or null when the text is empty or has a syntax error.</summary>
    public static YamlNode? Read(string text, DiagnosticBag diagnostics)
    {
        var parser = new Parser(new StringReader(text));
        var anchors = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        try
        {
            parser.Consume<StreamStart>();
            if (parser.Accept<StreamEnd>(out _))
            {
                return null;
            }
            parser.Consume<DocumentStart>();
            var root = ReadNode(parser, anchors, diagnostics);
            parser.Consume<DocumentEnd>();
            if (parser.Accept<DocumentStart>(out var second))
            {
                diagnostics.Error(Line(second.Start), Column(second.Start), "a configuration is one YAML document; remove the second '---' document");
                return null;
            }
            return root;
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

    private static YamlNode ReadNode(IParser parser, Dictionary<string, YamlNode> anchors, DiagnosticBag diagnostics)
    {
        if (parser.TryConsume<AnchorAlias>(out var alias))
        {
            if (anchors.TryGetValue(alias.Value.Value, out var target))
            {
                return target;
            }
            throw new YamlException(alias.Start, alias.End, $"alias '*{alias.Value.Value}' refers to no anchor defined before it");
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
            };
            Remember(scalar, node, anchors);
            return node;
        }
        if (parser.TryConsume<SequenceStart>(out var sequenceStart))
        {
            var node = new YamlNode { Kind = YamlNodeKind.Sequence, Line = Line(sequenceStart.Start), Column = Column(sequenceStart.Start) };
            Remember(sequenceStart, node, anchors);
            while (!parser.TryConsume<SequenceEnd>(out _))
            {
                node.Items.Add(ReadNode(parser, anchors, diagnostics));
            }
            return node;
        }
        var mappingStart = parser.Consume<MappingStart>();
        var mapping = new YamlNode { Kind = YamlNodeKind.Mapping, Line = Line(mappingStart.Start), Column = Column(mappingStart.Start) };
        Remember(mappingStart, mapping, anchors);
        while (!parser.TryConsume<MappingEnd>(out _))
        {
            var key = ReadNode(parser, anchors, diagnostics);
            var value = ReadNode(parser, anchors, diagnostics);
            mapping.Entries.Add(new KeyValuePair<YamlNode, YamlNode>(key, value));
        }
        return mapping;
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
