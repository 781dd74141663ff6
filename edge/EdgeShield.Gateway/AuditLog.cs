using System.Buffers;
using System.Diagnostics;
using System.Numerics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Threading.Channels;
using EdgeShield.Policy;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Gateway;

/// <summary>
/// Writes audit events as JSON lines (journald-friendly: one line, one event) to a stream,
/// off the frame path: <see cref="Write"/> only counts and enqueues a struct.
/// </summary>
/// <remarks>
/// Floods are summarised per source: in each one-second window a source writes at most
/// <c>eventsPerSecond</c> events of each kind, and all sources together at most four times that
/// per kind, except that a source's first event of a kind in a window is always written, so one
/// address's flood never hides another's refusal. The rest are counted and written as one
/// <c>suppressed</c> event per source and kind per window. The window's table of sources is
/// bounded (<c>sourcesPerWindow</c>); sources beyond it share one entry without a source and get
/// no first-event exemption. Lines per kind per second are thus at most 4 × eventsPerSecond +
/// sourcesPerWindow, plus the summaries, so an attacker cannot fill the disk or spend the CPU on
/// JSON. Events that do not even fit the bounded queue are counted the same way. Nothing is
/// silently lost: every event is either a line or part of a count.
/// </remarks>
public sealed class AuditLog : IAuditSink, IAsyncDisposable
{
    private const int KindCount = (int)AuditEventKind.ResponseCorrected + 1; // the last kind
    /// <summary>All sources together may write this many times a source's share of one kind per window.</summary>
    private const int KindShareOfSources = 4;

    /// <summary>
    /// Reasons and details are our own fixed phrases and names from the config, written into a JSON line
    /// (never into HTML): the default encoder's escaping of apostrophes and non-ASCII (<c>\u0027</c>) only
    /// made them harder to read and grep. JSON's own escapes (quotes, backslash, controls) still apply.
    /// </summary>
    public static readonly JsonWriterOptions JsonOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly Stream _output;
    private AuditJournal? _journal;
    private Stream? _journalCopies;
    private volatile bool _checkpointRequested;
    private readonly int _eventsPerSecond;
    private readonly Channel<AuditEvent> _queue;
    private readonly Task _writer;
    private readonly object _gate = new();
    private readonly int[] _writtenThisWindow = new int[KindCount];
    // The window's sources: entry i holds _sources[i]; its counts are at [i * KindCount + kind]. The last
    // entry (index _sourceCapacity) is shared by the sources that did not fit. _index is an open-addressing
    // table of entry + 1 by the source's hash, rebuilt with the window.
    private readonly int _sourceCapacity;
    private readonly SourceAddress[] _sources;
    private readonly string?[] _sourceListener;
    private readonly int[] _sourceWritten;
    private readonly long[] _sourceSuppressed;
    private readonly int[] _index;
    private int _sourceCount;
    private long _windowStart = Stopwatch.GetTimestamp();
    private long _written;
    private long _suppressed;

    public AuditLog(Stream output, int eventsPerSecond = 50, int queueCapacity = 4096, int sourcesPerWindow = 256, AuditJournal? journal = null, bool journalPriorities = false)
    {
        _output = output;
        _journal = journal;
        JournalPriorities = journalPriorities;
        _eventsPerSecond = eventsPerSecond;
        _sourceCapacity = sourcesPerWindow;
        _sources = new SourceAddress[sourcesPerWindow + 1];
        _sourceListener = new string?[sourcesPerWindow + 1];
        _sourceWritten = new int[(sourcesPerWindow + 1) * KindCount];
        _sourceSuppressed = new long[(sourcesPerWindow + 1) * KindCount];
        _index = new int[(int)BitOperations.RoundUpToPowerOf2((uint)sourcesPerWindow * 2)];
        _queue = Channel.CreateBounded<AuditEvent>(new BoundedChannelOptions(queueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _writer = Task.Run(WriteLoopAsync);
    }

    /// <summary>Events written as lines so far.</summary>
    public long Written => Interlocked.Read(ref _written);
    /// <summary>Events counted into <c>suppressed</c> summaries so far.</summary>
    public long Suppressed => Interlocked.Read(ref _suppressed);

    /// <summary>
    /// Begin each line with its sd-daemon(3) priority (<see cref="JournalPriority"/>), for a stdout that is
    /// the journal: journald strips the prefix and files the line at that priority.
    /// </summary>
    /// <remarks>
    /// A constructor argument, not an init property: the writer starts in the constructor and writes the journal's
    /// opening lines at once.
    /// </remarks>
    public bool JournalPriorities { get; }

    /// <summary>The on-disk audit journal every line also goes to (null: none, or it failed and was given up).</summary>
    public AuditJournal? Journal => _journal;

    /// <summary>
    /// Where the journal's own lines (checkpoints, segment removals) are copied besides the output: the events
    /// topic, so that a site keeps the signed checkpoints off the box. Lines are written whole, one per call.
    /// </summary>
    /// <remarks>
    /// The journal's opening lines (<c>audit-journal-created</c>, a torn tail cut off) are written by the writer as
    /// soon as it starts, usually before this is called (the events topic needs the telemetry, which needs this
    /// log): the writer keeps them and copies them when the copies arrive, so that they reach the topic too.
    /// </remarks>
    public void CopyJournalLinesTo(Stream? copies)
    {
        Volatile.Write(ref _journalCopies, copies);
        if (copies is not null && _journal is not null)
        {
            _queue.Writer.TryWrite(new AuditEvent { Kind = CopiesMarker, Unit = -1, FunctionCode = -1, Reason = "" });
        }
    }

    /// <summary>Asks the writer for a checkpoint now, when lines are not covered yet (before a stop, while the events topic still publishes).</summary>
    public void RequestCheckpoint()
    {
        if (_journal is null)
        {
            return;
        }
        _checkpointRequested = true;
        _queue.Writer.TryWrite(new AuditEvent { Kind = CheckpointMarker, Unit = -1, FunctionCode = -1, Reason = "" });
    }

    /// <summary>A queue item that is no event: it only wakes the writer for <see cref="RequestCheckpoint"/>.</summary>
    private const AuditEventKind CheckpointMarker = (AuditEventKind)byte.MaxValue;

    /// <summary>A queue item that is no event: copies were attached; the opening lines written before go to them now.</summary>
    private const AuditEventKind CopiesMarker = (AuditEventKind)(byte.MaxValue - 1);

    /// <summary>The journal's opening lines, kept by the writer until <see cref="CopyJournalLinesTo"/> gives copies (null: none kept).</summary>
    private List<byte[]>? _openingLines;

    public void Write(in AuditEvent auditEvent)
    {
        int kind = (int)auditEvent.Kind;
        lock (_gate)
        {
            RollWindowLocked(Stopwatch.GetTimestamp());
            int entry = EntryLocked(auditEvent.Source, auditEvent.Listener);
            int at = entry * KindCount + kind;
            int bySource = _sourceWritten[at];
            bool first = bySource == 0 && entry < _sourceCapacity;
            bool withinShare = bySource < _eventsPerSecond && _writtenThisWindow[kind] < _eventsPerSecond * KindShareOfSources;
            bool service = auditEvent.Kind == AuditEventKind.Service;
            if ((!service && !first && !withinShare) || !_queue.Writer.TryWrite(auditEvent))
            {
                _sourceSuppressed[at] += auditEvent.Count;
                return;
            }
            _sourceWritten[at] = bySource + 1;
            _writtenThisWindow[kind]++;
        }
    }

    /// <summary>The window's entry of <paramref name="source"/>: found, added, or the shared one when the table is full.</summary>
    private int EntryLocked(SourceAddress source, string? listener)
    {
        int mask = _index.Length - 1;
        int bucket = (int)((uint)source.Value.GetHashCode() & (uint)mask);
        while (true)
        {
            int entry = _index[bucket] - 1;
            if (entry < 0)
            {
                if (_sourceCount == _sourceCapacity)
                {
                    _sourceListener[_sourceCapacity] ??= listener;
                    return _sourceCapacity;
                }
                entry = _sourceCount++;
                _sources[entry] = source;
                _sourceListener[entry] = listener;
                _index[bucket] = entry + 1;
                return entry;
            }
            if (_sources[entry] == source)
            {
                _sourceListener[entry] ??= listener;
                return entry;
            }
            bucket = (bucket + 1) & mask;
        }
    }

    /// <summary>Closes the window if a second has passed, queueing one summary per suppressed source and kind.</summary>
    private void RollWindowLocked(long now)
    {
        if (now - _windowStart < Stopwatch.Frequency)
        {
            return;
        }
        _windowStart = now;
        Array.Clear(_writtenThisWindow);
        // An entry whose summary does not fit the queue (the writer is stalled) keeps its count for the next
        // window: it moves to the front, and the index is rebuilt for the entries kept.
        int kept = 0;
        for (int entry = 0; entry < _sourceCount; entry++)
        {
            if (SummariseLocked(entry))
            {
                MoveEntry(entry, kept++);
            }
        }
        if (!SummariseLocked(_sourceCapacity))
        {
            _sourceListener[_sourceCapacity] = null;
        }
        for (int entry = kept; entry < _sourceCount; entry++)
        {
            _sourceListener[entry] = null;
            _sources[entry] = default;
        }
        _sourceCount = kept;
        Array.Clear(_index);
        int mask = _index.Length - 1;
        for (int entry = 0; entry < kept; entry++)
        {
            int bucket = (int)((uint)_sources[entry].Value.GetHashCode() & (uint)mask);
            while (_index[bucket] != 0)
            {
                bucket = (bucket + 1) & mask;
            }
            _index[bucket] = entry + 1;
        }
    }

    /// <summary>Queues the summaries of one entry and starts its window afresh; true when one did not fit the queue.</summary>
    private bool SummariseLocked(int entry)
    {
        bool keep = false;
        bool shared = entry == _sourceCapacity;
        for (int kind = 0; kind < KindCount; kind++)
        {
            int at = entry * KindCount + kind;
            _sourceWritten[at] = 0;
            long count = _sourceSuppressed[at];
            if (count == 0)
            {
                continue;
            }
            var summary = new AuditEvent
            {
                Time = DateTime.UtcNow,
                Kind = AuditEventKind.Suppressed,
                SuppressedKind = (AuditEventKind)kind,
                Listener = _sourceListener[entry],
                Source = shared ? default : _sources[entry],
                Count = count,
                Unit = -1,
                FunctionCode = -1,
                Reason = shared ? "audit rate exceeded; events of sources beyond the audit's table counted" : "audit rate exceeded; events of this source counted",
            };
            if (_queue.Writer.TryWrite(summary))
            {
                Interlocked.Add(ref _suppressed, count);
                _sourceSuppressed[at] = 0;
            }
            else
            {
                keep = true;
            }
        }
        return keep;
    }

    private void MoveEntry(int from, int to)
    {
        if (from == to)
        {
            return;
        }
        _sources[to] = _sources[from];
        _sourceListener[to] = _sourceListener[from];
        Array.Copy(_sourceSuppressed, from * KindCount, _sourceSuppressed, to * KindCount, KindCount);
        Array.Clear(_sourceSuppressed, from * KindCount, KindCount);
    }

    private async Task WriteLoopAsync()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(4096);
        using var json = new Utf8JsonWriter(buffer, JsonOptions);
        var ownLines = new List<(byte[] Line, byte[] Priority)>();
        var reader = _queue.Reader;
        // What the journal said while opening (a new journal, a torn tail cut off); kept for copies that come later.
        if (_journal is { HasOwnLines: true } && Volatile.Read(ref _journalCopies) is null)
        {
            _openingLines = [];
        }
        AppendOwnLines(buffer, ownLines, keep: _openingLines);
        while (true)
        {
            // Wake at least once a second so that summaries of a flood that has stopped still get out.
            using (var tick = new CancellationTokenSource(TimeSpan.FromSeconds(1)))
            {
                try
                {
                    if (!await reader.WaitToReadAsync(tick.Token))
                    {
                        break;
                    }
                }
                catch (OperationCanceledException)
                {
                    lock (_gate)
                    {
                        RollWindowLocked(Stopwatch.GetTimestamp());
                    }
                    JournalStep(JournalStepKind.Tick, buffer, json);
                    await WriteOutAsync(buffer, ownLines);
                    continue;
                }
            }
            while (reader.TryRead(out var e))
            {
                if (e.Kind == CheckpointMarker)
                {
                    continue;
                }
                if (e.Kind == CopiesMarker)
                {
                    if (_openingLines is { } opening && Volatile.Read(ref _journalCopies) is { } to)
                    {
                        foreach (var line in opening)
                        {
                            to.Write(line);
                        }
                        _openingLines = null;
                    }
                    continue;
                }
                json.Reset();
                if (JournalPriorities)
                {
                    buffer.Write(JournalPriority(e));
                }
                int start = buffer.WrittenCount;
                WriteJson(json, e);
                json.Flush();
                if (_journal is { } journal)
                {
                    try
                    {
                        journal.Append(buffer.WrittenSpan[start..]);
                    }
                    catch (Exception failure) when (IsJournalFailure(failure))
                    {
                        buffer.Write("\n"u8);
                        GiveUpJournal(buffer, json, failure);
                        continue;
                    }
                }
                buffer.Write("\n"u8);
                if (e.Kind != AuditEventKind.Suppressed)
                {
                    Interlocked.Increment(ref _written);
                }
                AppendOwnLines(buffer, ownLines);
            }
            if (_checkpointRequested)
            {
                _checkpointRequested = false;
                JournalStep(JournalStepKind.Checkpoint, buffer, json);
            }
            // Also here, not only on the idle tick: a steady trickle of events must not keep the time-based checkpoint away.
            JournalStep(JournalStepKind.Tick, buffer, json);
            JournalStep(JournalStepKind.Flush, buffer, json);
            await WriteOutAsync(buffer, ownLines);
        }
        // A clean stop: the last lines get their checkpoint, on disk, on the output and (if still there) the events topic.
        JournalStep(JournalStepKind.Close, buffer, json);
        await WriteOutAsync(buffer, ownLines);
    }

    private enum JournalStepKind { Tick, Checkpoint, Flush, Close }

    private static bool IsJournalFailure(Exception e) => e is IOException or UnauthorizedAccessException or CryptographicException;

    /// <summary>One step of the journal in the writer; a disk or key failure gives the journal up, with a line that says so.</summary>
    private void JournalStep(JournalStepKind step, System.Buffers.ArrayBufferWriter<byte> buffer, Utf8JsonWriter json)
    {
        if (_journal is not { } journal)
        {
            return;
        }
        try
        {
            switch (step)
            {
                case JournalStepKind.Tick: journal.Tick(); break;
                case JournalStepKind.Checkpoint: journal.CheckpointIfPending(); break;
                case JournalStepKind.Flush: journal.Flush(); break;
                case JournalStepKind.Close: journal.Dispose(); break;
            }
        }
        catch (Exception failure) when (IsJournalFailure(failure))
        {
            GiveUpJournal(buffer, json, failure);
        }
    }

    /// <summary>
    /// The journal cannot be written (disk full, I/O error, key gone): the gateway keeps filtering and auditing on
    /// stdout and MQTT, without the journal, and says so once (priority 3). Its checkpoint chain ends here; verify
    /// shows an unsigned tail.
    /// </summary>
    private void GiveUpJournal(System.Buffers.ArrayBufferWriter<byte> buffer, Utf8JsonWriter json, Exception failure)
    {
        var journal = _journal!;
        _journal = null;
        try
        {
            journal.DisposeWithoutCheckpoint();
        }
        catch (Exception e) when (IsJournalFailure(e))
        {
        }
        var e2 = AuditEvent.Service("audit-journal-failed", $"audit journal {journal.Directory} given up after seq {journal.Seq}: {failure.Message}");
        json.Reset();
        if (JournalPriorities)
        {
            buffer.Write(JournalPriority(e2));
        }
        int start = buffer.WrittenCount;
        WriteJson(json, e2);
        json.Flush();
        Volatile.Read(ref _journalCopies)?.Write(buffer.WrittenSpan[start..]);
        buffer.Write("\n"u8);
    }

    private async Task WriteOutAsync(System.Buffers.ArrayBufferWriter<byte> buffer, List<(byte[] Line, byte[] Priority)> ownLines)
    {
        AppendOwnLines(buffer, ownLines);
        if (buffer.WrittenCount > 0)
        {
            await _output.WriteAsync(buffer.WrittenMemory);
            await _output.FlushAsync();
            buffer.ResetWrittenCount();
        }
    }

    /// <summary>The journal's own lines into the output (with their priority) and, whole, to the events topic.</summary>
    private void AppendOwnLines(System.Buffers.ArrayBufferWriter<byte> buffer, List<(byte[] Line, byte[] Priority)> ownLines, List<byte[]>? keep = null)
    {
        if (_journal is not { HasOwnLines: true } journal)
        {
            return;
        }
        journal.DrainOwnLines(ownLines);
        var copies = Volatile.Read(ref _journalCopies);
        foreach (var (line, priority) in ownLines)
        {
            if (JournalPriorities)
            {
                buffer.Write(priority);
            }
            buffer.Write(line);
            buffer.Write("\n"u8);
            copies?.Write(line);
            if (copies is null)
            {
                keep?.Add(line);
            }
        }
        ownLines.Clear();
    }

    /// <summary>The JSON form of one event (DESIGN.md "Audit"): time, event, listener, source, unit, function, address span, rule, verdict, reason.</summary>
    public static void WriteJson(Utf8JsonWriter json, in AuditEvent e)
    {
        json.WriteStartObject();
        json.WriteString("time"u8, e.Time.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
        json.WriteString("event"u8, AuditEvents.Name(e.Kind));
        if (!string.IsNullOrEmpty(e.Listener))
        {
            json.WriteString("listener"u8, e.Listener);
        }
        if (e.Source.Value != 0)
        {
            json.WriteString("source"u8, e.Source.ToString());
            if (e.Kind != AuditEventKind.Suppressed)
            {
                json.WriteNumber("source_port"u8, e.SourcePort);
            }
        }
        if (e.Unit >= 0)
        {
            json.WriteNumber("unit"u8, e.Unit);
        }
        if (e.Protocol is not null)
        {
            json.WriteString("protocol"u8, e.Protocol);
        }
        if (e.FunctionCode >= 0)
        {
            json.WriteNumber("function"u8, e.FunctionCode);
            var name = e.FunctionName ?? (e.Protocol is null ? ModbusFunctions.Name(ModbusFunctions.Classify((byte)e.FunctionCode, e.MeiType)) : null);
            if (name is not null)
            {
                json.WriteString("function_name"u8, name);
            }
        }
        if (e.SubFunction is { } subFunction)
        {
            json.WriteNumber("sub_function"u8, subFunction);
        }
        if (e.ClientTid is { } clientTid)
        {
            json.WriteNumber("client_tid"u8, clientTid);
        }
        if (e.GatewayTid is { } gatewayTid)
        {
            json.WriteNumber("gateway_tid"u8, gatewayTid);
        }
        WriteSpan(json, "read"u8, e.ReadSpan);
        WriteSpan(json, "write"u8, e.WriteSpan);
        if (!e.Iec104.IsEmpty)
        {
            json.WriteNumber("ca"u8, e.Iec104.CommonAddress);
            json.WriteNumber("ioa"u8, e.Iec104.Ioa);
            json.WriteNumber("cause"u8, e.Iec104.Cause);
            if (e.Iec104.RefusalCause != 0)
            {
                json.WriteNumber("refusal_cause"u8, e.Iec104.RefusalCause);
            }
        }
        if (!e.Item.IsEmpty)
        {
            json.WriteStartObject("item"u8);
            json.WriteNumber("index"u8, e.Item.Index);
            json.WriteNumber("area"u8, e.Item.Area);
            json.WriteNumber("db"u8, e.Item.Block);
            json.WriteNumber("start"u8, e.Item.Start);
            json.WriteNumber("length"u8, e.Item.Length);
            json.WriteEndObject();
        }
        if (e.Rule is not null)
        {
            json.WriteString("rule"u8, e.Rule);
        }
        string? verdict = e.Kind switch
        {
            AuditEventKind.Denied or AuditEventKind.OutOfSpec or AuditEventKind.Malformed or AuditEventKind.PendingLimit => "deny",
            AuditEventKind.WouldDeny => "allow (monitor)",
            _ => null,
        };
        if (verdict is not null)
        {
            json.WriteString("verdict"u8, verdict);
        }
        json.WriteString("reason"u8, e.Reason);
        if (e.ExceptionCode != 0)
        {
            json.WriteString("exception"u8, e.ExceptionCode.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
        }
        if (e.ConnectionClosed)
        {
            json.WriteString("connection"u8, "closed"u8);
        }
        if (e.Kind == AuditEventKind.Suppressed)
        {
            json.WriteString("suppressed_event"u8, AuditEvents.Name(e.SuppressedKind));
            json.WriteNumber("count"u8, e.Count);
        }
        if (e.Detail is not null)
        {
            json.WriteString("detail"u8, e.Detail);
        }
        json.WriteEndObject();
    }

    /// <summary>
    /// The journal priority of an event: <c>&lt;3&gt;</c> malformed frames and faults, <c>&lt;4&gt;</c> refusals,
    /// <c>&lt;5&gt;</c> service events, <c>&lt;6&gt;</c> the routine rest; a suppressed summary has its kind's.
    /// Service events that say something failed are not routine: <c>&lt;3&gt;</c> when the gateway could not do
    /// what it was told (a reload kept the old policy, the hardware or the capture file failed, telemetry was
    /// lost), <c>&lt;4&gt;</c> when it works on degraded (broker away, frames not captured, a torn buffer tail cut,
    /// a config loaded without a signature check).
    /// </summary>
    public static ReadOnlySpan<byte> JournalPriority(in AuditEvent e) =>
        (e.Kind == AuditEventKind.Suppressed ? e.SuppressedKind : e.Kind) switch
        {
            AuditEventKind.Service => e.Reason switch
            {
                "reload-failed" or "hardware-unavailable" or "pcap-failed" or "buffer-full" or "buffer-corrupt"
                    or "audit-journal-failed" or "audit-journal-broken" => "<3>"u8,
                "pcap-dropped" or "broker-unavailable" or "buffer-torn-tail" or "poll-upstream-unavailable" or "audit-journal-torn-tail"
                    or "unsigned-config" => "<4>"u8,
                _ => "<5>"u8,
            },
            AuditEventKind.Malformed or AuditEventKind.ResponseMismatch or AuditEventKind.UnmatchedResponse
                or AuditEventKind.ResponseTimeout or AuditEventKind.UpstreamUnreachable or AuditEventKind.UpstreamLost => "<3>"u8,
            AuditEventKind.Denied or AuditEventKind.WouldDeny or AuditEventKind.OutOfSpec or AuditEventKind.PendingLimit
                or AuditEventKind.ConnectionLimit or AuditEventKind.FrameTimeout => "<4>"u8,
            _ => "<6>"u8,
        };

    private static void WriteSpan(Utf8JsonWriter json, ReadOnlySpan<byte> name, AddressSpan span)
    {
        if (span.IsEmpty)
        {
            return;
        }
        json.WriteStartObject(name);
        json.WriteString("table"u8, AuditEvents.TableName(span.Table));
        json.WriteNumber("start"u8, span.Start);
        json.WriteNumber("count"u8, span.Count);
        json.WriteEndObject();
    }

    public async ValueTask DisposeAsync()
    {
        // Whatever the last window suppressed is queued now, so a stop loses no count.
        lock (_gate)
        {
            RollWindowLocked(long.MaxValue);
        }
        _queue.Writer.TryComplete();
        await _writer;
    }
}
