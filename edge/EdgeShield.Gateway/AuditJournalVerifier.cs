using System.Security.Cryptography;

namespace EdgeShield.Gateway;

/// <summary>What <c>edgeshield audit verify</c> concluded (exit 0, 1, 2).</summary>
public enum AuditVerdict
{
    Intact = 0,
    Broken = 1,
    Unreadable = 2,
}

/// <summary>A place in the journal (or in the checkpoints file) and what is wrong or notable there.</summary>
/// <param name="Kind">edited, removed, reordered, inserted, replaced, bad-signature, other-key, cut-tail, rewritten, unaccounted-start, torn-line, unreadable.</param>
public sealed record AuditFinding(string File, int Line, string Kind, string Message)
{
    public override string ToString() => Line > 0 ? $"{File}:{Line}: {Kind}: {Message}" : $"{File}: {Kind}: {Message}";
}

/// <summary>The result of checking a journal: the verdict, the first problem, warnings and what was covered.</summary>
public sealed class AuditVerifyReport
{
    public AuditVerdict Verdict { get; internal set; }
    public AuditFinding? Problem { get; internal set; }
    public List<AuditFinding> Warnings { get; } = [];
    public List<string> Notes { get; } = [];
    public int Files { get; internal set; }
    public long Lines { get; internal set; }
    public long FirstSeq { get; internal set; }
    public long LastSeq { get; internal set; }
    public int Checkpoints { get; internal set; }
    public long LastCheckpointSeq { get; internal set; }
    /// <summary>Checkpoints whose signature was checked and is good (0 without a key).</summary>
    public int SignaturesChecked { get; internal set; }
    public HashSet<string> KeyIds { get; } = new(StringComparer.Ordinal);
    public int OffBoxCheckpoints { get; internal set; }
    public int OffBoxMatched { get; internal set; }
    public int SegmentsRemoved { get; internal set; }
}

/// <summary>
/// Checks audit journal segments (docs/AUDIT.md): seq and the hash chain across the files in order, every
/// checkpoint's head and signature, that the journal's first line is either the genesis or accounted for by a
/// recorded segment removal, and, given the checkpoints seen off the box, that each of them is in the journal.
/// Stops at the first problem and names its file and line.
/// </summary>
public static class AuditJournalVerifier
{
    private sealed class Entry
    {
        public required int FileIndex;
        public required int LineNumber;
        public required byte[] Hash;
        public required AuditJournalLine Line;
        public string HashHex => Convert.ToHexStringLower(Hash);
    }

    /// <summary>Files in the order to walk: a directory gives its segments by number; files named as segments are sorted by number.</summary>
    public static List<string>? Expand(IEnumerable<string> arguments, out string? unreadable)
    {
        unreadable = null;
        var files = new List<string>();
        foreach (var argument in arguments)
        {
            if (Directory.Exists(argument))
            {
                var segments = AuditJournal.Segments(argument);
                if (segments.Count == 0)
                {
                    unreadable = $"{argument}: no audit-NNNNNN.jsonl segments in this directory";
                    return null;
                }
                files.AddRange(segments);
            }
            else if (File.Exists(argument))
            {
                files.Add(argument);
            }
            else
            {
                unreadable = $"{argument}: no such file or directory";
                return null;
            }
        }
        if (files.TrueForAll(f => AuditJournal.SegmentNumber(Path.GetFileName(f)) >= 0))
        {
            files.Sort((a, b) => AuditJournal.SegmentNumber(Path.GetFileName(a)).CompareTo(AuditJournal.SegmentNumber(Path.GetFileName(b))));
        }
        return files;
    }

    public static AuditVerifyReport Verify(IReadOnlyList<string> files, ECDsa? key = null, string? checkpointsFile = null)
    {
        var report = new AuditVerifyReport { Files = files.Count };
        string? keyId = key is null ? null : AuditKey.KeyIdOf(key.ExportSubjectPublicKeyInfo());
        var entries = new List<Entry>();
        var names = new List<string>();
        var fileStarts = new List<int>();
        for (int f = 0; f < files.Count; f++)
        {
            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(files[f]);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return Unreadable(report, files[f], e.Message);
            }
            names.Add(files[f]);
            fileStarts.Add(entries.Count);
            int start = 0, lineNumber = 0;
            while (start < bytes.Length)
            {
                int newline = bytes.AsSpan(start).IndexOf((byte)'\n');
                bool torn = newline < 0;
                int length = torn ? bytes.Length - start : newline;
                var line = bytes.AsSpan(start, length);
                lineNumber++;
                var parsed = AuditJournalLine.TryParse(line);
                if (torn && (parsed is null || parsed.Seq < 0 || parsed.Prev is null))
                {
                    if (f == files.Count - 1)
                    {
                        report.Warnings.Add(new AuditFinding(files[f], lineNumber, "torn-line",
                            $"the last line is incomplete ({length} bytes, no end of line): a write cut by a power cut or crash, not a change; the chain is intact up to the line before"));
                        break;
                    }
                    return Broken(report, files[f], lineNumber, "edited",
                        $"an incomplete line at the end of a segment that is not the last: the segment was truncated or edited");
                }
                if (parsed is null)
                {
                    return Broken(report, files[f], lineNumber, "edited", "not a JSON object: the line was edited or inserted");
                }
                if (parsed.Seq < 0 || parsed.Prev is null)
                {
                    return Broken(report, files[f], lineNumber, "inserted", "a line without seq or prev: not written by the journal (inserted or edited)");
                }
                if (torn)
                {
                    report.Warnings.Add(new AuditFinding(files[f], lineNumber, "no-newline", "the last line has no end of line (it is whole and checked)"));
                }
                entries.Add(new Entry { FileIndex = f, LineNumber = lineNumber, Hash = SHA256.HashData(line), Line = parsed });
                start += length + 1;
            }
        }
        if (entries.Count == 0)
        {
            return Unreadable(report, files.Count > 0 ? files[0] : "(no files)", "no journal lines");
        }
        report.Lines = entries.Count;
        report.FirstSeq = entries[0].Line.Seq;
        report.LastSeq = entries[^1].Line.Seq;

        var removals = new List<Entry>();
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            if (i > 0 && LinkProblem(entries, fileStarts, names, i) is { } problem)
            {
                report.Verdict = AuditVerdict.Broken;
                report.Problem = problem;
                return report;
            }
            if (e.Line.IsCheckpoint && CheckpointProblem(e.Line, key, keyId, report) is { } bad)
            {
                return Broken(report, names[e.FileIndex], e.LineNumber, bad.Kind, bad.Message);
            }
            if (e.Line.IsCheckpoint)
            {
                report.Checkpoints++;
                report.LastCheckpointSeq = e.Line.Seq;
            }
            if (e.Line.IsSegmentRemoved)
            {
                removals.Add(e);
                report.SegmentsRemoved++;
            }
        }

        // The start: the genesis, or the line after a segment whose removal the chain recorded.
        var first = entries[0];
        if (first.Line.Seq == 1)
        {
            if (first.Line.Prev != AuditJournal.GenesisHash)
            {
                return Broken(report, names[0], first.LineNumber, "edited", "the first line (seq 1) does not start the chain (prev is not 64 zeros)");
            }
        }
        else
        {
            var removal = removals.Find(r => r.Line.LastSeq == first.Line.Seq - 1 && r.Line.LastHash == first.Line.Prev);
            if (removal is null)
            {
                return Broken(report, names[0], first.LineNumber, "removed",
                    $"the journal begins at seq {first.Line.Seq}, and no segment-removed event in the chain accounts for seq {first.Line.Seq - 1} and before: older segments were deleted (or are not among the files given)");
            }
            report.Notes.Add($"seq 1..{first.Line.Seq - 1} were in segments removed by rotation ({removal.Line.Segment} recorded at {names[removal.FileIndex]}:{removal.LineNumber})");
        }

        if (checkpointsFile is not null && OffBoxProblem(entries, names, checkpointsFile, key, keyId, report) is { } offBox)
        {
            if (report.Verdict == AuditVerdict.Unreadable)
            {
                return report;
            }
            report.Verdict = AuditVerdict.Broken;
            report.Problem = offBox;
            return report;
        }
        report.Verdict = AuditVerdict.Intact;
        return report;
    }

    /// <summary>What is wrong between entry i-1 and entry i, looking around to say what happened.</summary>
    private static AuditFinding? LinkProblem(List<Entry> entries, List<int> fileStarts, List<string> names, int i)
    {
        var p = entries[i - 1];
        var e = entries[i];
        bool linked = e.Line.Prev == p.HashHex;
        long expected = p.Line.Seq + 1;
        string Where(Entry x) => $"{names[x.FileIndex]}:{x.LineNumber}";
        AuditFinding At(Entry x, string kind, string message) => new(names[x.FileIndex], x.LineNumber, kind, message);

        if (e.Line.Seq == expected && linked)
        {
            return null;
        }
        bool fileBoundary = fileStarts.Contains(i);
        AuditFinding Replaced() => At(e, "replaced", $"segment {Path.GetFileName(names[e.FileIndex])} does not continue {Path.GetFileName(names[p.FileIndex])}: its first line (seq {e.Line.Seq}) does not link to {Where(p)} (seq {p.Line.Seq}): the segment was replaced, or that last line edited");
        if (e.Line.Seq == expected)
        {
            // Seq is right, the hash is not: an insertion made to look right, an edit of the line before, of this
            // line's prev, or a whole segment put in another's place.
            if (i + 1 < entries.Count && entries[i + 1].Line.Prev == p.HashHex && entries[i + 1].Line.Seq == e.Line.Seq)
            {
                return At(e, "inserted", $"this line is not part of the chain: the next line ({Where(entries[i + 1])}) continues the line before it");
            }
            if (fileBoundary)
            {
                return Replaced();
            }
            if (i + 1 < entries.Count && entries[i + 1].Line.Seq == e.Line.Seq + 1 && entries[i + 1].Line.Prev != e.HashHex)
            {
                return At(e, "edited", "this line was changed (its prev does not match the line before, and the next line's prev does not match it)");
            }
            return At(p, "edited", $"this line was changed: its hash no longer matches the prev recorded by the next line ({Where(e)})");
        }
        if (linked)
        {
            return At(e, "edited", $"seq {e.Line.Seq} where {expected} belongs, yet the line links to the one before: its seq was changed");
        }
        if (e.Line.Seq > expected)
        {
            for (int j = i + 1; j < entries.Count; j++)
            {
                if (entries[j].Line.Seq > p.Line.Seq && entries[j].Line.Seq < e.Line.Seq)
                {
                    return At(e, "reordered", $"seq {e.Line.Seq} comes before seq {entries[j].Line.Seq} ({Where(entries[j])}): lines were moved");
                }
            }
            long missing = e.Line.Seq - expected;
            return At(e, "removed", missing == 1
                ? $"seq {expected} is missing before this line (seq {e.Line.Seq} follows seq {p.Line.Seq} at {Where(p)}): a line was deleted"
                : $"seq {expected}..{e.Line.Seq - 1} are missing before this line ({missing} lines, after {Where(p)}): lines were deleted");
        }
        // Seq goes back or repeats.
        if (fileBoundary)
        {
            return Replaced();
        }
        if (i >= 2 && e.Line.Prev == entries[i - 2].HashHex)
        {
            return At(p, "inserted", $"this line is not part of the chain: the next line ({Where(e)}) continues the line before it");
        }
        return At(e, "reordered", $"seq {e.Line.Seq} after seq {p.Line.Seq} ({Where(p)}): lines were moved or repeated");
    }

    private static (string Kind, string Message)? CheckpointProblem(AuditJournalLine line, ECDsa? key, string? keyId, AuditVerifyReport report)
    {
        if (line.Head is null || line.Time is null || line.KeyId is null || line.Sig is null)
        {
            return ("edited", "a checkpoint without head, time, key_id or sig");
        }
        if (line.Head != line.Prev)
        {
            return ("edited", "a checkpoint whose head is not the hash of the line before it");
        }
        report.KeyIds.Add(line.KeyId);
        if (key is null)
        {
            return null;
        }
        if (line.KeyId != keyId)
        {
            return ("other-key", $"a checkpoint signed by another key (key id {line.KeyId}; --key has {keyId})");
        }
        if (!SignatureValid(line, key))
        {
            return ("bad-signature", $"the checkpoint's signature does not verify with key id {keyId}: the checkpoint (or the line before it) was forged or changed");
        }
        report.SignaturesChecked++;
        return null;
    }

    private static bool SignatureValid(AuditJournalLine line, ECDsa key)
    {
        byte[] sig;
        try
        {
            sig = Convert.FromBase64String(line.Sig!);
        }
        catch (FormatException)
        {
            return false;
        }
        var signed = AuditJournalLine.CheckpointSignedBytes(line.Seq, line.Head!, line.Time!, line.KeyId!);
        return key.VerifyData(signed, sig, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
    }

    /// <summary>Every checkpoint seen off the box must be in the journal, unchanged (unless rotated away before the journal's first line).</summary>
    private static AuditFinding? OffBoxProblem(List<Entry> entries, List<string> names, string checkpointsFile, ECDsa? key, string? keyId, AuditVerifyReport report)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(checkpointsFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Unreadable(report, checkpointsFile, e.Message);
            return report.Problem;
        }
        var bySeq = new Dictionary<long, Entry>();
        foreach (var entry in entries)
        {
            bySeq[entry.Line.Seq] = entry;
        }
        var last = entries[^1];
        for (int n = 0; n < lines.Length; n++)
        {
            // A collector may prefix the topic or a time: the JSON object starts at the first brace.
            int brace = lines[n].IndexOf('{', StringComparison.Ordinal);
            if (brace < 0)
            {
                continue;
            }
            var seen = AuditJournalLine.TryParse(System.Text.Encoding.UTF8.GetBytes(lines[n][brace..]));
            if (seen is not { IsCheckpoint: true } || seen.Seq < 0)
            {
                continue;
            }
            report.OffBoxCheckpoints++;
            if (key is not null && (seen.KeyId != keyId || seen.Head is null || seen.Time is null || !SignatureValid(seen, key)))
            {
                report.Warnings.Add(new AuditFinding(checkpointsFile, n + 1, "bad-signature", "a checkpoint seen off the box that the key does not sign: ignored"));
                continue;
            }
            if (seen.Seq < entries[0].Line.Seq)
            {
                continue;
            }
            if (seen.Seq > last.Line.Seq)
            {
                return new AuditFinding(names[last.FileIndex], last.LineNumber, "cut-tail",
                    $"the journal ends at seq {last.Line.Seq}, but a checkpoint at seq {seen.Seq} (time {seen.Time}) was seen off the box ({checkpointsFile}:{n + 1}): the journal's tail was cut");
            }
            var mine = bySeq[seen.Seq];
            if (!mine.Line.IsCheckpoint || mine.Line.Head != seen.Head || mine.Line.Sig != seen.Sig || mine.Line.Time != seen.Time)
            {
                return new AuditFinding(names[mine.FileIndex], mine.LineNumber, "rewritten",
                    $"seq {seen.Seq} here differs from the checkpoint seen off the box ({checkpointsFile}:{n + 1}, head {seen.Head}): the journal up to it was rewritten");
            }
            report.OffBoxMatched++;
        }
        return null;
    }

    private static AuditVerifyReport Broken(AuditVerifyReport report, string file, int line, string kind, string message)
    {
        report.Verdict = AuditVerdict.Broken;
        report.Problem = new AuditFinding(file, line, kind, message);
        return report;
    }

    /// <summary>A report for an input that cannot be read at all (exit 2).</summary>
    public static AuditVerifyReport UnreadableReport(string file, string message) => Unreadable(new AuditVerifyReport(), file, message);

    private static AuditVerifyReport Unreadable(AuditVerifyReport report, string file, string message)
    {
        report.Verdict = AuditVerdict.Unreadable;
        report.Problem = new AuditFinding(file, 0, "unreadable", message);
        return report;
    }
}
