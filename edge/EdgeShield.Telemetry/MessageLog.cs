using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace EdgeShield.Telemetry;

/// <summary>What the log tells its owner: records dropped because it was full, a corrupt segment moved aside, a torn tail cut.</summary>
public readonly record struct LogNotice(string Reason, string Detail, long Count);

/// <summary>One record read back from the log. Its spans are valid until the next read.</summary>
/// <remarks>A state record (<see cref="IsState"/>) is not a message: it carries the writer's own state (a device's next seq) and is never published.</remarks>
public readonly record struct LogRecord(string Topic, ReadOnlyMemory<byte> Payload, bool Retain, LogPosition End, bool IsState = false);

/// <summary>A place in the log: segment number and byte offset (after the record).</summary>
public readonly record struct LogPosition(long Segment, long Offset)
{
    /// <summary>True when this place is not after <paramref name="other"/> (segments count up, offsets within one).</summary>
    public bool IsAtOrBefore(LogPosition other) => Segment < other.Segment || (Segment == other.Segment && Offset <= other.Offset);
}

/// <summary>
/// The store-and-forward buffer: an append-only log of MQTT messages in segment files under one
/// directory, written ahead of publishing (every message goes to disk first, then to the broker),
/// bounded in size, replayed in order. The publisher acknowledges what the broker acknowledged;
/// the acknowledged position is kept in <c>cursor</c>.
/// <code>
/// record: | body length u32 BE | CRC-32 of body u32 BE | body |
/// body:   | flags u8 (1 = retain, 2 = state record) | topic length u16 BE | topic UTF-8 | payload |
/// </code>
/// Durability: each append is one write(2) of whole records, so a killed process (kill -9) loses
/// nothing that Append returned for — the kernel holds the bytes. <see cref="FlushToDisk"/> (called
/// by the pipeline every second) bounds what a power loss can take to the last second. A record
/// whose CRC or length does not hold is never published: a torn tail is cut, any other damage moves
/// the whole segment aside as <c>*.corrupt</c>, and both are announced.
/// </summary>
public sealed class MessageLog : IDisposable
{
    private const int HeaderLength = 8;
    private const int MaxRecordLength = 1 << 20;
    private const string SegmentSuffix = ".seg";

    private readonly string _directory;
    private readonly long _maxBytes;
    private readonly long _segmentBytes;
    private readonly object _gate = new();
    private readonly SortedDictionary<long, SegmentInfo> _segments = [];
    private readonly Action<LogNotice> _notify;
    private SafeFileHandle? _writeHandle;
    private long _writeSegment;
    private long _totalBytes;
    private LogPosition _acked;
    private LogPosition _read;
    private SafeFileHandle? _readHandle;
    private long _readHandleSegment = -1;
    // Read-ahead window: bytes [_aheadOffset, _aheadOffset + _aheadLength) of segment _aheadSegment.
    // Replay reads a segment front to back, so one pread fills the window with hundreds of records
    // instead of two preads per record. Written bytes of a segment never change (append only), so the
    // window stays valid until its segment is deleted, moved aside or cut (then it is dropped).
    private byte[] _readBuffer = new byte[ReadAheadBytes];
    private long _aheadSegment = -1;
    private long _aheadOffset;
    private int _aheadLength;
    private const int ReadAheadBytes = 256 * 1024;
    private readonly SafeFileHandle _cursorHandle;
    private long _dropped;
    private static readonly TimeSpan RefusalNoticeInterval = TimeSpan.FromSeconds(10);
    private long _refusalNoticeAt;
    private long _refusedSinceNotice;
    private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _topics =
        new Dictionary<string, string>(StringComparer.Ordinal).GetAlternateLookup<ReadOnlySpan<char>>();

    private sealed class SegmentInfo
    {
        public long Length;
        public long Records;
    }

    public MessageLog(string directory, long maxBytes, Action<LogNotice> notify)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 64 * 1024);
        _directory = directory;
        _maxBytes = maxBytes;
        _segmentBytes = Math.Max(16 * 1024, maxBytes / 8);
        _notify = notify;
        Directory.CreateDirectory(directory);
        _cursorHandle = File.OpenHandle(Path.Combine(directory, "cursor"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        Recover();
        if (RandomAccess.GetLength(_cursorHandle) < 16)
        {
            // Claim the cursor's space now, while there is some: later writes overwrite it in place, so a file
            // system that fills up with segments can still record what the broker acknowledged.
            Span<byte> cursor = stackalloc byte[16];
            BinaryPrimitives.WriteInt64BigEndian(cursor, _acked.Segment);
            BinaryPrimitives.WriteInt64BigEndian(cursor[8..], _acked.Offset);
            try
            {
                RandomAccess.Write(_cursorHandle, cursor, 0);
            }
            catch (IOException)
            {
                // Already full: Acknowledge tries again each time.
            }
        }
    }

    /// <summary>The last state record per key found when the log was opened (e.g. a device's next seq).</summary>
    public IReadOnlyDictionary<string, long> RecoveredState => _recovered;

    private readonly Dictionary<string, long> _recovered = new(StringComparer.Ordinal);

    /// <summary>Records dropped because the log was full (oldest first), or refused because its file system was, since start.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Bytes held (acknowledged records included until their segment is deleted).</summary>
    public long TotalBytes
    {
        get
        {
            lock (_gate)
            {
                return _totalBytes;
            }
        }
    }

    /// <summary>The end of what has been appended so far: a record that ends at or before it was written before this call.</summary>
    public LogPosition WriteEnd
    {
        get
        {
            lock (_gate)
            {
                return new LogPosition(_writeSegment, _segments.TryGetValue(_writeSegment, out var s) ? s.Length : 0);
            }
        }
    }

    /// <summary>True when nothing past the read position is waiting.</summary>
    public bool IsDrained
    {
        get
        {
            lock (_gate)
            {
                return _read.Segment == _writeSegment && _read.Offset >= (_segments.TryGetValue(_writeSegment, out var s) ? s.Length : 0);
            }
        }
    }

    /// <summary>Bytes of records not yet acknowledged by the broker (0: everything was delivered).</summary>
    public long PendingBytes
    {
        get
        {
            lock (_gate)
            {
                long n = 0;
                foreach (var (number, info) in _segments)
                {
                    if (number > _acked.Segment)
                    {
                        n += info.Length;
                    }
                    else if (number == _acked.Segment)
                    {
                        n += info.Length - _acked.Offset;
                    }
                }
                return n;
            }
        }
    }

    /// <summary>Encodes a record into <paramref name="destination"/>; returns its length. Used to batch a poll cycle into one write.</summary>
    public static int Encode(Span<byte> destination, ReadOnlySpan<byte> topicUtf8, ReadOnlySpan<byte> payload, bool retain, bool state = false)
    {
        int bodyLength = 1 + 2 + topicUtf8.Length + payload.Length;
        var body = destination.Slice(HeaderLength, bodyLength);
        body[0] = (byte)((retain ? 1 : 0) | (state ? 2 : 0));
        BinaryPrimitives.WriteUInt16BigEndian(body[1..], (ushort)topicUtf8.Length);
        topicUtf8.CopyTo(body[3..]);
        payload.CopyTo(body[(3 + topicUtf8.Length)..]);
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)bodyLength);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], Crc32.Compute(body));
        return HeaderLength + bodyLength;
    }

    /// <summary>Space one record needs.</summary>
    public static int EncodedLength(int topicLength, int payloadLength) => HeaderLength + 3 + topicLength + payloadLength;

    /// <summary>
    /// Appends already encoded records (<paramref name="records"/> holds <paramref name="count"/> of them) in one write.
    /// When the log would exceed its bound, the oldest segments go first, counted and announced.
    /// </summary>
    public void Append(ReadOnlySpan<byte> records, int count)
    {
        if (records.IsEmpty)
        {
            return;
        }
        LogNotice? notice = null;
        lock (_gate)
        {
            var current = _segments[_writeSegment];
            if (current.Length > 0 && current.Length + records.Length > _segmentBytes)
            {
                OpenWriteSegment(_writeSegment + 1);
                current = _segments[_writeSegment];
            }
            long droppedNow = 0;
            while (_totalBytes + records.Length > _maxBytes && _segments.Count > 1)
            {
                droppedNow += DropOldest();
            }
            if (TryWriteReclaiming(records, ref droppedNow, out var error))
            {
                current = _segments[_writeSegment];
                current.Length += records.Length;
                current.Records += count;
                _totalBytes += records.Length;
            }
            else
            {
                notice = Refused(count, error!);
            }
            if (droppedNow > 0)
            {
                Interlocked.Add(ref _dropped, droppedNow);
                notice ??= new LogNotice("buffer-full", string.Create(CultureInfo.InvariantCulture, $"store-and-forward buffer {_directory} reached {_maxBytes / (1024 * 1024)} MB; dropped the oldest {droppedNow} messages"), droppedNow);
            }
        }
        if (notice is { } n)
        {
            _notify(n);
        }
    }

    /// <summary>
    /// Writes at the end of the write segment. When the file system refuses (full disk below <c>max-mb</c>, quota,
    /// I/O error), it frees space the way the bound does — the oldest segment first, or the write segment itself
    /// when the broker has acknowledged all of it — and tries again; false when nothing can be freed.
    /// </summary>
    private bool TryWriteReclaiming(ReadOnlySpan<byte> records, ref long droppedNow, out IOException? error)
    {
        error = null;
        while (true)
        {
            var current = _segments[_writeSegment];
            try
            {
                RandomAccess.Write(_writeHandle!, records, current.Length);
                return true;
            }
            catch (IOException e)
            {
                error = e;
            }
            try
            {
                // A partial write must not stay behind the last whole record: a later, shorter record would
                // leave its tail there, and a restart would read it as damage.
                RandomAccess.SetLength(_writeHandle!, current.Length);
                if (_segments.Count > 1)
                {
                    droppedNow += DropOldest();
                    continue;
                }
                if (current.Length > 0 && _acked.Segment == _writeSegment && _acked.Offset >= current.Length)
                {
                    long old = _writeSegment;
                    OpenWriteSegment(old + 1);
                    DeleteSegment(old);
                    _acked = _read = new LogPosition(_writeSegment, 0);
                    continue;
                }
            }
            catch (IOException e)
            {
                error = e;
            }
            return false;
        }
    }

    /// <summary>Counts records the file system would not take; announces the first refusal and then at most one notice per 10 s.</summary>
    private LogNotice? Refused(int count, IOException error)
    {
        _refusedSinceNotice += count;
        Interlocked.Add(ref _dropped, count);
        // By time only: on a nearly full disk small writes (events) still fit between refused ones.
        if (_refusalNoticeAt != 0 && Stopwatch.GetElapsedTime(_refusalNoticeAt) < RefusalNoticeInterval)
        {
            return null;
        }
        _refusalNoticeAt = Stopwatch.GetTimestamp();
        long refused = _refusedSinceNotice;
        _refusedSinceNotice = 0;
        return new LogNotice("buffer-full", string.Create(CultureInfo.InvariantCulture, $"store-and-forward buffer {_directory}: the file system refused the write ({error.Message}) and nothing unacknowledged can be freed; refused {refused} new messages (their seqs will be missing), more are counted until it has space"), refused);
    }

    /// <summary>Forces the written records to the device (a power loss then loses nothing before this call).</summary>
    public void FlushToDisk()
    {
        lock (_gate)
        {
            if (_writeHandle is not null)
            {
                RandomAccess.FlushToDisk(_writeHandle);
            }
        }
    }

    /// <summary>Reads the next record after the read position, or false when there is none yet.</summary>
    public bool TryReadNext(out LogRecord record)
    {
        record = default;
        Span<byte> header = stackalloc byte[HeaderLength];
        while (true)
        {
            LogNotice? notice = null;
            lock (_gate)
            {
                if (!_segments.TryGetValue(_read.Segment, out var info))
                {
                    // The read segment was dropped (full) or moved aside: continue at the oldest left.
                    if (!MoveReadToNextSegment())
                    {
                        return false;
                    }
                    continue;
                }
                if (_read.Offset >= info.Length)
                {
                    if (_read.Segment >= _writeSegment || !MoveReadToNextSegment())
                    {
                        return false;
                    }
                    continue;
                }
                int bodyLength = -1;
                uint crc = 0;
                if (TryReadAhead(_read.Segment, _read.Offset, HeaderLength, info.Length, out int at))
                {
                    bodyLength = (int)BinaryPrimitives.ReadUInt32BigEndian(_readBuffer.AsSpan(at));
                    crc = BinaryPrimitives.ReadUInt32BigEndian(_readBuffer.AsSpan(at + 4));
                }
                if (bodyLength is >= 3 and <= MaxRecordLength && _read.Offset + HeaderLength + bodyLength <= info.Length
                    && TryReadAhead(_read.Segment, _read.Offset + HeaderLength, bodyLength, info.Length, out at))
                {
                    var body = _readBuffer.AsSpan(at, bodyLength);
                    if (Crc32.Compute(body) == crc)
                    {
                        int topicLength = BinaryPrimitives.ReadUInt16BigEndian(body[1..]);
                        if (3 + topicLength <= bodyLength)
                        {
                            _read = new LogPosition(_read.Segment, _read.Offset + HeaderLength + bodyLength);
                            record = new LogRecord(Topic(body.Slice(3, topicLength)), _readBuffer.AsMemory(at + 3 + topicLength, bodyLength - 3 - topicLength), (body[0] & 1) != 0, _read, (body[0] & 2) != 0);
                            return true;
                        }
                    }
                }
                notice = MoveAside(_read.Segment, "a record's length or CRC does not hold");
            }
            if (notice is { } n)
            {
                _notify(n);
            }
        }
    }

    /// <summary>The broker acknowledged everything up to <paramref name="position"/>: remember it and delete finished segments.</summary>
    public void Acknowledge(LogPosition position)
    {
        lock (_gate)
        {
            _acked = position;
            Span<byte> cursor = stackalloc byte[16];
            BinaryPrimitives.WriteInt64BigEndian(cursor, position.Segment);
            BinaryPrimitives.WriteInt64BigEndian(cursor[8..], position.Offset);
            try
            {
                RandomAccess.Write(_cursorHandle, cursor, 0);
            }
            catch (IOException)
            {
                // The file system refuses even 16 bytes (full). The position holds in memory; a restart before the
                // next successful write sends the records since the last one again (at least once, as documented).
            }
            while (_segments.Count > 1)
            {
                long oldest = FirstSegment();
                if (oldest >= position.Segment)
                {
                    break;
                }
                DeleteSegment(oldest);
            }
        }
    }

    /// <summary>Rewinds reading to the acknowledged position (after a failed publish: resend what was not acknowledged).</summary>
    public void RewindToAcknowledged()
    {
        lock (_gate)
        {
            _read = _acked;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _writeHandle?.Dispose();
            _readHandle?.Dispose();
            _cursorHandle.Dispose();
        }
    }

    // ---- internals (under _gate) ------------------------------------------------------------

    private void Recover()
    {
        var notices = new List<LogNotice>();
        foreach (var file in Directory.EnumerateFiles(_directory, "*" + SegmentSuffix))
        {
            if (long.TryParse(Path.GetFileNameWithoutExtension(file), NumberStyles.None, CultureInfo.InvariantCulture, out long number))
            {
                _segments[number] = new SegmentInfo();
            }
        }
        long newest = _segments.Count == 0 ? 1 : LastSegment();
        foreach (long number in new List<long>(_segments.Keys))
        {
            if (Scan(number, number == newest) is { } notice)
            {
                notices.Add(notice);
            }
        }
        Span<byte> cursor = stackalloc byte[16];
        if (RandomAccess.Read(_cursorHandle, cursor, 0) == 16)
        {
            _acked = new LogPosition(BinaryPrimitives.ReadInt64BigEndian(cursor), BinaryPrimitives.ReadInt64BigEndian(cursor[8..]));
        }
        if (_segments.Count > 0 && (_acked.Segment < FirstSegment() || !_segments.ContainsKey(_acked.Segment)))
        {
            _acked = new LogPosition(FirstSegment(), 0);
        }
        _read = _acked;
        if (_segments.Count > 0 && _segments.TryGetValue(_acked.Segment, out var info) && _acked.Offset > info.Length)
        {
            _read = _acked = new LogPosition(_acked.Segment, info.Length);
        }
        OpenWriteSegment(_segments.Count == 0 ? 1 : LastSegment());
        if (_acked.Segment == 0)
        {
            _read = _acked = new LogPosition(_writeSegment, 0);
        }
        foreach (var notice in notices)
        {
            _notify(notice);
        }
    }

    /// <summary>Walks a segment's records; cuts a torn tail of the newest segment, moves any other damage aside.</summary>
    private LogNotice? Scan(long number, bool newest)
    {
        string path = SegmentPath(number);
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        long length = RandomAccess.GetLength(handle);
        long offset = 0, records = 0;
        Span<byte> header = stackalloc byte[HeaderLength];
        var body = new byte[64 * 1024];
        while (offset < length)
        {
            bool ok = false;
            long next = offset;
            if (RandomAccess.Read(handle, header, offset) == HeaderLength)
            {
                int bodyLength = (int)BinaryPrimitives.ReadUInt32BigEndian(header);
                if (bodyLength is >= 3 and <= MaxRecordLength && offset + HeaderLength + bodyLength <= length)
                {
                    if (body.Length < bodyLength)
                    {
                        body = new byte[bodyLength];
                    }
                    var span = body.AsSpan(0, bodyLength);
                    ok = RandomAccess.Read(handle, span, offset + HeaderLength) == bodyLength && Crc32.Compute(span) == BinaryPrimitives.ReadUInt32BigEndian(header[4..]);
                    next = offset + HeaderLength + bodyLength;
                    if (ok && (span[0] & 2) != 0)
                    {
                        int topicLength = BinaryPrimitives.ReadUInt16BigEndian(span[1..]);
                        if (3 + topicLength + 8 == bodyLength)
                        {
                            // Segments are scanned oldest first: the last one wins.
                            _recovered[Encoding.UTF8.GetString(span.Slice(3, topicLength))] = BinaryPrimitives.ReadInt64BigEndian(span[(3 + topicLength)..]);
                        }
                    }
                }
                else if (newest && offset + HeaderLength + Math.Max(bodyLength, 0) > length && bodyLength is >= 3 and <= MaxRecordLength)
                {
                    // A record cut short by a crash mid-write: the rest never reached the kernel.
                    RandomAccess.SetLength(handle, offset);
                    _segments[number].Length = offset;
                    _segments[number].Records = records;
                    _totalBytes += offset;
                    return new LogNotice("buffer-torn-tail", string.Create(CultureInfo.InvariantCulture, $"{path}: cut an incomplete last record ({length - offset} bytes) left by a crash"), 1);
                }
            }
            else if (newest)
            {
                RandomAccess.SetLength(handle, offset);
                _segments[number].Length = offset;
                _segments[number].Records = records;
                _totalBytes += offset;
                return new LogNotice("buffer-torn-tail", string.Create(CultureInfo.InvariantCulture, $"{path}: cut an incomplete last record ({length - offset} bytes) left by a crash"), 1);
            }
            if (!ok)
            {
                handle.Dispose();
                return MoveAsideUnlocked(number, path, string.Create(CultureInfo.InvariantCulture, $"record at byte {offset} fails its length or CRC check"), records);
            }
            offset = next;
            records++;
        }
        _segments[number].Length = length;
        _segments[number].Records = records;
        _totalBytes += length;
        return null;
    }

    private LogNotice MoveAside(long number, string why)
    {
        DropReadAhead(number);
        if (_readHandleSegment == number)
        {
            _readHandle?.Dispose();
            _readHandle = null;
            _readHandleSegment = -1;
        }
        var info = _segments[number];
        _totalBytes -= info.Length;
        if (number == _writeSegment)
        {
            _writeHandle?.Dispose();
            _segments.Remove(number);
            var notice = MoveAsideUnlocked(number, SegmentPath(number), why, info.Records);
            OpenWriteSegment(number + 1);
            return notice;
        }
        return MoveAsideUnlocked(number, SegmentPath(number), why, info.Records);
    }

    private LogNotice MoveAsideUnlocked(long number, string path, string why, long recordsBefore)
    {
        _segments.Remove(number);
        string aside = path + "." + DateTime.UtcNow.ToString("yyyyMMddTHHmmssfff", CultureInfo.InvariantCulture) + ".corrupt";
        File.Move(path, aside);
        return new LogNotice("buffer-corrupt", $"{path}: {why}; moved aside to {aside} (it held about {recordsBefore} readable messages before the damage; not replayed)", 1);
    }

    private bool MoveReadToNextSegment()
    {
        foreach (long number in _segments.Keys)
        {
            if (number > _read.Segment)
            {
                _read = new LogPosition(number, 0);
                return true;
            }
        }
        return false;
    }

    private long DropOldest()
    {
        long oldest = FirstSegment();
        var info = _segments[oldest];
        // Records of this segment not yet acknowledged are lost: count them.
        long lost = oldest > _acked.Segment ? info.Records : oldest == _acked.Segment ? info.Records - CountRecords(oldest, _acked.Offset) : 0;
        DeleteSegment(oldest);
        if (_acked.Segment <= oldest)
        {
            _acked = new LogPosition(FirstSegment(), 0);
        }
        if (_read.Segment <= oldest)
        {
            _read = _acked;
        }
        return lost;
    }

    private long CountRecords(long number, long upTo)
    {
        var handle = ReadHandle(number);
        long offset = 0, n = 0;
        Span<byte> header = stackalloc byte[HeaderLength];
        while (offset < upTo && RandomAccess.Read(handle, header, offset) == HeaderLength)
        {
            offset += HeaderLength + BinaryPrimitives.ReadUInt32BigEndian(header);
            n++;
        }
        return n;
    }

    private void DeleteSegment(long number)
    {
        DropReadAhead(number);
        if (_readHandleSegment == number)
        {
            _readHandle?.Dispose();
            _readHandle = null;
            _readHandleSegment = -1;
        }
        _totalBytes -= _segments[number].Length;
        _segments.Remove(number);
        File.Delete(SegmentPath(number));
    }

    private void OpenWriteSegment(long number)
    {
        _writeHandle?.Dispose();
        _writeHandle = File.OpenHandle(SegmentPath(number), FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read);
        _writeSegment = number;
        if (!_segments.ContainsKey(number))
        {
            _segments[number] = new SegmentInfo();
        }
    }

    /// <summary>
    /// Makes bytes [<paramref name="offset"/>, +<paramref name="length"/>) of segment <paramref name="number"/>
    /// available at <c>_readBuffer[start..]</c>, refilling the window from <paramref name="offset"/> (up to
    /// <paramref name="limit"/>, the segment's written length) when they are not in it. False on a short read.
    /// </summary>
    private bool TryReadAhead(long number, long offset, int length, long limit, out int start)
    {
        if (_aheadSegment == number && offset >= _aheadOffset && offset + length <= _aheadOffset + _aheadLength)
        {
            start = (int)(offset - _aheadOffset);
            return true;
        }
        start = 0;
        if (_readBuffer.Length < length)
        {
            _readBuffer = new byte[Math.Max(length, _readBuffer.Length * 2)];
        }
        int want = (int)Math.Min(_readBuffer.Length, limit - offset);
        var handle = ReadHandle(number);
        int got = 0;
        while (got < want)
        {
            int n = RandomAccess.Read(handle, _readBuffer.AsSpan(got, want - got), offset + got);
            if (n == 0)
            {
                break;
            }
            got += n;
        }
        _aheadSegment = number;
        _aheadOffset = offset;
        _aheadLength = got;
        return got >= length;
    }

    private void DropReadAhead(long number)
    {
        if (_aheadSegment == number)
        {
            _aheadSegment = -1;
            _aheadLength = 0;
        }
    }

    private SafeFileHandle ReadHandle(long number)
    {
        if (_readHandleSegment != number)
        {
            _readHandle?.Dispose();
            _readHandle = File.OpenHandle(SegmentPath(number), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            _readHandleSegment = number;
        }
        return _readHandle!;
    }

    private string Topic(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > 512)
        {
            return Encoding.UTF8.GetString(utf8);
        }
        Span<char> chars = stackalloc char[utf8.Length];
        int n = Encoding.UTF8.GetChars(utf8, chars);
        var key = chars[..n];
        if (_topics.TryGetValue(key, out var topic))
        {
            return topic;
        }
        topic = key.ToString();
        if (_topics.Dictionary.Count < 100_000)
        {
            _topics.Dictionary[topic] = topic;
        }
        return topic;
    }

    private long FirstSegment()
    {
        foreach (long key in _segments.Keys)
        {
            return key;
        }
        return 0;
    }

    private long LastSegment()
    {
        long last = 0;
        foreach (long key in _segments.Keys)
        {
            last = key;
        }
        return last;
    }

    private string SegmentPath(long number) => Path.Combine(_directory, number.ToString("D12", CultureInfo.InvariantCulture) + SegmentSuffix);
}

/// <summary>CRC-32 (IEEE 802.3, reflected 0xEDB88320), table driven.</summary>
internal static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }
        return ~crc;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            }
            table[i] = c;
        }
        return table;
    }
}
