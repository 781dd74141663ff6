using System.Text.Json;

namespace EdgeShield.Gateway;

/// <summary>
/// The fields of one audit journal line that the chain and its checkpoints are made of (docs/AUDIT.md). Everything
/// else on the line is the audit event itself, covered by the line's hash but not read here.
/// </summary>
public sealed class AuditJournalLine
{
    public long Seq { get; private set; } = -1;
    public string? Prev { get; private set; }
    public string? Time { get; private set; }
    public string? Event { get; private set; }
    public string? Reason { get; private set; }
    /// <summary>Checkpoint: the hash of the line before it (equal to <see cref="Prev"/>).</summary>
    public string? Head { get; private set; }
    public string? KeyId { get; private set; }
    public string? Sig { get; private set; }
    /// <summary>Segment-removed: the file removed, its last seq and the hash of its last line.</summary>
    public string? Segment { get; private set; }
    public long LastSeq { get; private set; } = -1;
    public string? LastHash { get; private set; }

    public bool IsCheckpoint => Event == "checkpoint";
    public bool IsSegmentRemoved => Event == "segment-removed";

    /// <summary>
    /// Reads one line (without its LF). Null when it is not one JSON object; a line that is one but lacks
    /// <c>seq</c> or <c>prev</c> is returned with <see cref="Seq"/> -1 or <see cref="Prev"/> null.
    /// </summary>
    public static AuditJournalLine? TryParse(ReadOnlySpan<byte> line)
    {
        var parsed = new AuditJournalLine();
        try
        {
            var reader = new Utf8JsonReader(line, new JsonReaderOptions { MaxDepth = 16 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string name = reader.GetString()!;
                reader.Read();
                switch (name)
                {
                    case "seq" when reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var seq) && seq >= 1:
                        parsed.Seq = seq;
                        break;
                    case "last_seq" when reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var lastSeq):
                        parsed.LastSeq = lastSeq;
                        break;
                    case "prev": parsed.Prev = Text(ref reader); break;
                    case "time": parsed.Time = Text(ref reader); break;
                    case "event": parsed.Event = Text(ref reader); break;
                    case "reason": parsed.Reason = Text(ref reader); break;
                    case "head": parsed.Head = Text(ref reader); break;
                    case "key_id": parsed.KeyId = Text(ref reader); break;
                    case "sig": parsed.Sig = Text(ref reader); break;
                    case "segment": parsed.Segment = Text(ref reader); break;
                    case "last_hash": parsed.LastHash = Text(ref reader); break;
                    default: reader.Skip(); break;
                }
            }
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                return null;
            }
            return parsed;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? Text(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            return reader.GetString();
        }
        reader.Skip();
        return null;
    }

    /// <summary>
    /// The bytes a checkpoint's signature covers (docs/AUDIT.md): ASCII, one field a line, LF after each:
    /// <c>edgeshield audit checkpoint v1</c>, <c>seq S</c>, <c>head H</c>, <c>time T</c>, <c>key_id K</c>.
    /// </summary>
    public static byte[] CheckpointSignedBytes(long seq, string head, string time, string keyId) =>
        System.Text.Encoding.ASCII.GetBytes(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"edgeshield audit checkpoint v1\nseq {seq}\nhead {head}\ntime {time}\nkey_id {keyId}\n"));
}
