using System.Buffers;
using System.Buffers.Text;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using EdgeShield.Policy;

namespace EdgeShield.Gateway;

/// <summary>
/// The audit journal on disk (docs/AUDIT.md): every line the audit writer writes, appended to segment files
/// <c>DIR/audit-NNNNNN.jsonl</c>, each line <c>{"seq":N,"prev":"HEX",…the event…}</c> where <c>prev</c> is the
/// SHA-256 of the previous line's bytes (without its LF). Every <c>checkpoint-every</c> lines or
/// <c>checkpoint-seconds</c>, a <c>checkpoint</c> line signs the head of the chain; segments rotate at
/// <c>max-mb / 8</c> and removing the oldest is itself a line (<c>segment-removed</c>).
/// </summary>
/// <remarks>
/// Not thread-safe: only the audit writer's loop calls it, never the frame path. Lines reach the file with one
/// write(2) per batch of the writer (a process crash loses nothing written), and the file is fsynced at every
/// checkpoint and rotation (a power cut loses at most the lines after the last checkpoint, and may tear the
/// last line; <see cref="Open"/> cuts a torn fragment off and records that in the chain).
/// </remarks>
public sealed class AuditJournal : IDisposable
{
    public const string SegmentPrefix = "audit-";
    public const string SegmentSuffix = ".jsonl";
    /// <summary>The <c>prev</c> of the first line of a brand-new journal.</summary>
    public static readonly string GenesisHash = new('0', 64);

    private readonly string _directory;
    private readonly long _segmentBytes;
    private readonly int _maxSegments;
    private readonly int _checkpointEvery;
    private readonly long _checkpointTicks;
    private readonly AuditKey _key;
    private readonly List<int> _segments = [];
    private readonly ArrayBufferWriter<byte> _pending = new(64 * 1024);
    private readonly ArrayBufferWriter<byte> _scratch = new(1024);
    private readonly byte[] _headHex = new byte[64];
    private readonly List<(byte[] Line, byte[] Priority)> _ownLines = [];
    private readonly List<(string Reason, string Detail)> _pendingNotes = [];
    private FileStream? _file;
    private int _segmentNumber;
    private long _segmentSize;
    private long _seq;
    private int _sinceCheckpoint;
    private long _firstUncoveredAt;

    private AuditJournal(string directory, AuditJournalConfig config, AuditKey key)
    {
        _directory = directory;
        _segmentBytes = Math.Max(config.SegmentBytes, 4096);
        _maxSegments = AuditJournalConfig.Segments;
        _checkpointEvery = config.CheckpointEvery;
        _checkpointTicks = config.CheckpointSeconds * Stopwatch.Frequency;
        _key = key;
        System.Text.Encoding.ASCII.GetBytes(GenesisHash, _headHex);
    }

    public string Directory => _directory;
    public AuditKey Key => _key;
    /// <summary>The seq of the last line written (0 before the first).</summary>
    public long Seq => _seq;
    /// <summary>The hash of the last line, hex.</summary>
    public string Head => System.Text.Encoding.ASCII.GetString(_headHex);
    public string CurrentSegment => SegmentPath(_segmentNumber);
    public int CheckpointsWritten { get; private set; }

    /// <summary>
    /// Opens the journal in <paramref name="directory"/>: a new one (first line's prev is 64 zeros), or the
    /// existing one continued from the last line of its last segment, after checking that segment's chain
    /// (a torn last line is cut off; a broken chain is recorded and continued from its last line).
    /// </summary>
    public static AuditJournal Open(string directory, AuditJournalConfig config, AuditKey key)
    {
        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(directory);
        }
        else
        {
            System.IO.Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var journal = new AuditJournal(directory, config, key);
        journal.Recover();
        return journal;
    }

    public static string SegmentName(int number) => string.Create(CultureInfo.InvariantCulture, $"{SegmentPrefix}{number:D6}{SegmentSuffix}");

    /// <summary>The number of a segment file name (<c>audit-000012.jsonl</c> → 12), or -1.</summary>
    public static int SegmentNumber(string fileName)
    {
        if (fileName.Length != SegmentPrefix.Length + 6 + SegmentSuffix.Length
            || !fileName.StartsWith(SegmentPrefix, StringComparison.Ordinal) || !fileName.EndsWith(SegmentSuffix, StringComparison.Ordinal))
        {
            return -1;
        }
        return int.TryParse(fileName.AsSpan(SegmentPrefix.Length, 6), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : -1;
    }

    /// <summary>The segment files of <paramref name="directory"/>, oldest first.</summary>
    public static List<string> Segments(string directory)
    {
        var found = new List<(int, string)>();
        foreach (var path in System.IO.Directory.EnumerateFiles(directory, SegmentPrefix + "*" + SegmentSuffix))
        {
            int n = SegmentNumber(Path.GetFileName(path));
            if (n >= 0)
            {
                found.Add((n, path));
            }
        }
        found.Sort();
        return found.ConvertAll(f => f.Item2);
    }

    private string SegmentPath(int number) => Path.Combine(_directory, SegmentName(number));

    private void Recover()
    {
        foreach (var path in Segments(_directory))
        {
            _segments.Add(SegmentNumber(Path.GetFileName(path)));
        }
        if (_segments.Count == 0)
        {
            _segmentNumber = 1;
            _segments.Add(1);
            OpenSegment();
            OwnServiceLine("audit-journal-created", $"new audit journal in {_directory}: seq starts at 1, key id {_key.KeyId}");
            return;
        }
        _segmentNumber = _segments[^1];
        string? broken = null;
        bool found = false;
        for (int i = _segments.Count - 1; i >= 0 && !found; i--)
        {
            var path = SegmentPath(_segments[i]);
            var bytes = File.ReadAllBytes(path);
            int end = bytes.AsSpan().LastIndexOf((byte)'\n') + 1;
            if (end < bytes.Length && i == _segments.Count - 1)
            {
                // A line cut by a power cut (or a crash inside write(2)): never complete, so never chained; cut it
                // off so the chain goes on from the last whole line, and say so in the chain.
                var fragment = System.Text.Encoding.UTF8.GetString(bytes, end, Math.Min(bytes.Length - end, 512));
                using (var file = new FileStream(path, FileMode.Open, FileAccess.Write))
                {
                    file.SetLength(end);
                    file.Flush(flushToDisk: true);
                }
                _pendingNotes.Add(("audit-journal-torn-tail", $"{SegmentName(_segments[i])}: {bytes.Length - end} bytes of a line that was never completed (power cut or crash) removed at start; they began: {fragment}"));
            }
            long lastSeq = -1;
            string? lastPrev = null;
            int lineNumber = 0;
            int start = 0;
            while (start < end)
            {
                int newline = bytes.AsSpan(start, end - start).IndexOf((byte)'\n');
                var line = bytes.AsSpan(start, newline);
                lineNumber++;
                var parsed = AuditJournalLine.TryParse(line);
                if (parsed is null || parsed.Seq < 0 || parsed.Prev is null)
                {
                    broken ??= $"{SegmentName(_segments[i])}:{lineNumber}: not a journal line";
                }
                else
                {
                    if (lastSeq >= 0 && (parsed.Seq != lastSeq + 1 || parsed.Prev != lastPrev))
                    {
                        broken ??= $"{SegmentName(_segments[i])}:{lineNumber}: chain broken (seq {parsed.Seq} after {lastSeq})";
                    }
                    lastSeq = parsed.Seq;
                    Hex(SHA256.HashData(line), _headHex);
                    lastPrev = System.Text.Encoding.ASCII.GetString(_headHex);
                    _seq = lastSeq;
                    found = true;
                }
                start += newline + 1;
            }
            if (i == _segments.Count - 1)
            {
                _segmentSize = end;
            }
        }
        OpenSegment();
        if (broken is not null)
        {
            _pendingNotes.Add(("audit-journal-broken", $"{broken}: the journal was changed while the gateway was stopped; the chain continues after seq {_seq} (edgeshield audit verify names the place)"));
        }
        foreach (var (reason, detail) in _pendingNotes)
        {
            OwnServiceLine(reason, detail);
        }
        _pendingNotes.Clear();
    }

    private void OpenSegment()
    {
        var options = new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.Read, BufferSize = 0 };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;
        }
        _file = new FileStream(SegmentPath(_segmentNumber), options);
        _segmentSize = _file.Length;
    }

    /// <summary>Appends one event, <paramref name="eventJson"/> being its JSON object (<c>{"time":…}</c>, no LF).</summary>
    public void Append(ReadOnlySpan<byte> eventJson)
    {
        Debug.Assert(eventJson.Length > 1 && eventJson[0] == (byte)'{');
        AppendLine(eventJson[1..]);
        if (_sinceCheckpoint++ == 0)
        {
            _firstUncoveredAt = Stopwatch.GetTimestamp();
        }
        if (_sinceCheckpoint >= _checkpointEvery)
        {
            Checkpoint();
        }
    }

    /// <summary>Once a second or so: a checkpoint when lines have waited <c>checkpoint-seconds</c> for one.</summary>
    public void Tick()
    {
        if (_sinceCheckpoint > 0 && Stopwatch.GetTimestamp() - _firstUncoveredAt >= _checkpointTicks)
        {
            Checkpoint();
        }
    }

    /// <summary>A checkpoint now if any line is not covered yet (a clean stop, or a caller that wants one).</summary>
    public void CheckpointIfPending()
    {
        if (_sinceCheckpoint > 0)
        {
            Checkpoint();
        }
    }

    /// <summary>The journal's own lines (checkpoints, segment removals, recovery notes) since the last call, for the journal on stdout and the events topic.</summary>
    public void DrainOwnLines(List<(byte[] Line, byte[] Priority)> into)
    {
        into.AddRange(_ownLines);
        _ownLines.Clear();
    }

    public bool HasOwnLines => _ownLines.Count > 0;

    /// <summary>Writes what was appended to the segment file (one write(2)); no fsync.</summary>
    public void Flush()
    {
        if (_pending.WrittenCount > 0)
        {
            _file!.Write(_pending.WrittenSpan);
            _pending.ResetWrittenCount();
        }
    }

    /// <summary>
    /// <c>{"seq":S,"prev":"HEAD",</c> + <paramref name="body"/> (the event's JSON after its opening brace), hashed
    /// into the head. Rotates first when the line would not fit the segment.
    /// </summary>
    private int AppendLine(ReadOnlySpan<byte> body)
    {
        const int PrefixMax = 9 + 20 + 10 + 64 + 2; // {"seq": N ,"prev":" HEX ",
        if (_segmentSize > 0 && _segmentSize + PrefixMax + body.Length + 1 > _segmentBytes)
        {
            Rotate();
        }
        long seq = _seq + 1;
        var span = _pending.GetSpan(PrefixMax + body.Length + 1);
        int at = 0;
        "{\"seq\":"u8.CopyTo(span);
        at += 7;
        Utf8Formatter.TryFormat(seq, span[at..], out int digits);
        at += digits;
        ",\"prev\":\""u8.CopyTo(span[at..]);
        at += 9;
        _headHex.CopyTo(span[at..]);
        at += 64;
        "\","u8.CopyTo(span[at..]);
        at += 2;
        body.CopyTo(span[at..]);
        at += body.Length;
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(span[..at], hash);
        Hex(hash, _headHex);
        span[at++] = (byte)'\n';
        _pending.Advance(at);
        _segmentSize += at;
        _seq = seq;
        return at;
    }

    private void AppendOwnLine(ReadOnlySpan<byte> eventJson, ReadOnlySpan<byte> priority)
    {
        int length = AppendLine(eventJson[1..]);
        // A rotation inside AppendLine flushed what was pending: the line is the last 'length' bytes either way.
        var line = _pending.WrittenSpan[^length..^1].ToArray();
        _ownLines.Add((line, priority.ToArray()));
    }

    private void OwnServiceLine(string reason, string detail)
    {
        var e = AuditEvent.Service(reason, detail);
        _scratch.ResetWrittenCount();
        using (var json = new Utf8JsonWriter(_scratch, AuditLog.JsonOptions))
        {
            AuditLog.WriteJson(json, e);
        }
        AppendOwnLine(_scratch.WrittenSpan.ToArray(), AuditLog.JournalPriority(e));
    }

    private void Checkpoint()
    {
        string time = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        // Rotation first, if the checkpoint would not fit: its seq and head are those of the line it is written as.
        if (_segmentSize > 0 && _segmentSize + 512 > _segmentBytes)
        {
            Rotate();
        }
        string head = Head;
        long seq = _seq + 1;
        var signed = AuditJournalLine.CheckpointSignedBytes(seq, head, time, _key.KeyId);
        var sig = _key.Key.SignData(signed, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        _scratch.ResetWrittenCount();
        using (var json = new Utf8JsonWriter(_scratch, AuditLog.JsonOptions))
        {
            json.WriteStartObject();
            json.WriteString("time"u8, time);
            json.WriteString("event"u8, "checkpoint"u8);
            json.WriteString("head"u8, head);
            json.WriteString("key_id"u8, _key.KeyId);
            json.WriteBase64String("sig"u8, sig);
            json.WriteEndObject();
        }
        AppendOwnLine(_scratch.WrittenSpan.ToArray(), "<6>"u8);
        _sinceCheckpoint = 0;
        CheckpointsWritten++;
        Flush();
        _file!.Flush(flushToDisk: true);
    }

    private void Rotate()
    {
        Flush();
        _file!.Flush(flushToDisk: true);
        _file.Dispose();
        _segmentNumber++;
        _segments.Add(_segmentNumber);
        OpenSegment();
        while (_segments.Count > _maxSegments)
        {
            RemoveOldest();
        }
    }

    /// <summary>Deletes the oldest segment and records it: its name, last seq and last line's hash, so that verify can tell this from a deletion.</summary>
    private void RemoveOldest()
    {
        int number = _segments[0];
        _segments.RemoveAt(0);
        var path = SegmentPath(number);
        long lastSeq = -1;
        string? lastHash = null;
        string reason = "audit journal over max-mb: oldest segment removed";
        try
        {
            (lastSeq, lastHash) = LastLineOf(path);
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Gone already (deleted behind the gateway's back) or unreadable: recorded as such, and verify will not
            // take it for a rotation; the journal itself goes on.
            reason = $"audit journal over max-mb: oldest segment could not be read or removed ({e.Message})";
        }
        _scratch.ResetWrittenCount();
        using (var json = new Utf8JsonWriter(_scratch, AuditLog.JsonOptions))
        {
            json.WriteStartObject();
            json.WriteString("time"u8, DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
            json.WriteString("event"u8, "segment-removed"u8);
            json.WriteString("segment"u8, SegmentName(number));
            json.WriteNumber("last_seq"u8, lastSeq);
            if (lastHash is null)
            {
                json.WriteNull("last_hash"u8);
            }
            else
            {
                json.WriteString("last_hash"u8, lastHash);
            }
            json.WriteString("reason"u8, reason);
            json.WriteEndObject();
        }
        AppendOwnLine(_scratch.WrittenSpan.ToArray(), "<5>"u8);
    }

    /// <summary>The seq and hash of the last whole line of a segment (read from its tail), or (-1, null).</summary>
    public static (long Seq, string? Hash) LastLineOf(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        int tail = (int)Math.Min(file.Length, 256 * 1024);
        var bytes = new byte[tail];
        file.Seek(-tail, SeekOrigin.End);
        file.ReadExactly(bytes);
        int end = bytes.AsSpan().LastIndexOf((byte)'\n');
        if (end < 0)
        {
            return (-1, null);
        }
        int start = bytes.AsSpan(0, end).LastIndexOf((byte)'\n') + 1;
        var line = bytes.AsSpan(start, end - start);
        var parsed = AuditJournalLine.TryParse(line);
        return parsed is null || parsed.Seq < 0 ? (-1, null) : (parsed.Seq, Convert.ToHexStringLower(SHA256.HashData(line)));
    }

    private static void Hex(ReadOnlySpan<byte> hash, Span<byte> into)
    {
        ReadOnlySpan<byte> digits = "0123456789abcdef"u8;
        for (int i = 0; i < hash.Length; i++)
        {
            into[2 * i] = digits[hash[i] >> 4];
            into[2 * i + 1] = digits[hash[i] & 0xF];
        }
    }

    /// <summary>After a failure: close the file without trying to sign or write more.</summary>
    public void DisposeWithoutCheckpoint()
    {
        var file = _file;
        _file = null;
        file?.Dispose();
    }

    /// <summary>A last checkpoint when lines are not covered yet, then everything on disk.</summary>
    public void Dispose()
    {
        if (_file is null)
        {
            return;
        }
        try
        {
            CheckpointIfPending();
            Flush();
            _file.Flush(flushToDisk: true);
        }
        finally
        {
            _file.Dispose();
            _file = null;
        }
    }
}
