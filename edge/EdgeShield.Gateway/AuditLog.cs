using System.Buffers;
using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Gateway;

/// <summary>
/// Writes audit events as JSON lines (journald-friendly: one line, one event) to a stream,
/// off the frame path: <see cref="Write"/> only counts and enqueues a struct.
/// </summary>
/// <remarks>
/// Floods are summarised: at most <c>eventsPerSecond</c> events of each kind are written per
/// second; the rest are counted and written as one <c>suppressed</c> event per kind per second,
/// so an attacker cannot fill the disk or spend the CPU on JSON. Events that do not even fit the
/// bounded queue are counted the same way. Nothing is silently lost: every event is either a line
/// or part of a count.
/// </remarks>
public sealed class AuditLog : IAuditSink, IAsyncDisposable
{
    private const int KindCount = (int)AuditEventKind.Service + 1;

    private readonly Stream _output;
    private readonly int _eventsPerSecond;
    private readonly Channel<AuditEvent> _queue;
    private readonly Task _writer;
    private readonly object _gate = new();
    private readonly int[] _writtenThisWindow = new int[KindCount];
    private readonly long[] _suppressedThisWindow = new long[KindCount];
    private readonly string?[] _suppressedListener = new string?[KindCount];
    private long _windowStart = Stopwatch.GetTimestamp();
    private long _written;
    private long _suppressed;

    public AuditLog(Stream output, int eventsPerSecond = 50, int queueCapacity = 4096)
    {
        _output = output;
        _eventsPerSecond = eventsPerSecond;
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
    public bool JournalPriorities { get; init; }

    public void Write(in AuditEvent auditEvent)
    {
        int kind = (int)auditEvent.Kind;
        lock (_gate)
        {
            RollWindowLocked(Stopwatch.GetTimestamp());
            if (auditEvent.Kind != AuditEventKind.Service && _writtenThisWindow[kind] >= _eventsPerSecond)
            {
                _suppressedThisWindow[kind] += auditEvent.Count;
                _suppressedListener[kind] ??= auditEvent.Listener;
                return;
            }
            if (!_queue.Writer.TryWrite(auditEvent))
            {
                _suppressedThisWindow[kind] += auditEvent.Count;
                _suppressedListener[kind] ??= auditEvent.Listener;
                return;
            }
            _writtenThisWindow[kind]++;
        }
    }

    /// <summary>Closes the window if a second has passed, queueing one summary per suppressed kind.</summary>
    private void RollWindowLocked(long now)
    {
        if (now - _windowStart < Stopwatch.Frequency)
        {
            return;
        }
        _windowStart = now;
        for (int kind = 0; kind < KindCount; kind++)
        {
            _writtenThisWindow[kind] = 0;
            long count = _suppressedThisWindow[kind];
            if (count == 0)
            {
                continue;
            }
            var summary = new AuditEvent
            {
                Time = DateTime.UtcNow,
                Kind = AuditEventKind.Suppressed,
                SuppressedKind = (AuditEventKind)kind,
                Listener = _suppressedListener[kind] ?? "",
                Count = count,
                Unit = -1,
                FunctionCode = -1,
                Reason = "audit rate exceeded; events counted",
            };
            // The queue has room for summaries unless the writer is stalled; keep the count for the next window then.
            if (_queue.Writer.TryWrite(summary))
            {
                Interlocked.Add(ref _suppressed, count);
                _suppressedThisWindow[kind] = 0;
                _suppressedListener[kind] = null;
            }
        }
    }

    private async Task WriteLoopAsync()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(4096);
        using var json = new Utf8JsonWriter(buffer);
        var reader = _queue.Reader;
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
                    continue;
                }
            }
            while (reader.TryRead(out var e))
            {
                json.Reset();
                if (JournalPriorities)
                {
                    buffer.Write(JournalPriority(e));
                }
                WriteJson(json, e);
                json.Flush();
                buffer.Write("\n"u8);
                if (e.Kind != AuditEventKind.Suppressed)
                {
                    Interlocked.Increment(ref _written);
                }
            }
            await _output.WriteAsync(buffer.WrittenMemory);
            await _output.FlushAsync();
            buffer.ResetWrittenCount();
        }
    }

    /// <summary>The JSON form of one event (DESIGN.md "Audit"): time, event, listener, source, unit, function, address span, rule, verdict, reason.</summary>
    public static void WriteJson(Utf8JsonWriter json, in AuditEvent e)
    {
        json.WriteStartObject();
        json.WriteString("time"u8, e.Time.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
        json.WriteString("event"u8, AuditEvents.Name(e.Kind));
        json.WriteString("listener"u8, e.Listener);
        if (e.Source.Value != 0)
        {
            json.WriteString("source"u8, e.Source.ToString());
            json.WriteNumber("source_port"u8, e.SourcePort);
        }
        if (e.Unit >= 0)
        {
            json.WriteNumber("unit"u8, e.Unit);
        }
        if (e.FunctionCode >= 0)
        {
            json.WriteNumber("function"u8, e.FunctionCode);
            var name = ModbusFunctions.Name(ModbusFunctions.Classify((byte)e.FunctionCode, e.MeiType));
            if (name is not null)
            {
                json.WriteString("function_name"u8, name);
            }
        }
        WriteSpan(json, "read"u8, e.ReadSpan);
        WriteSpan(json, "write"u8, e.WriteSpan);
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
    /// </summary>
    public static ReadOnlySpan<byte> JournalPriority(in AuditEvent e) =>
        (e.Kind == AuditEventKind.Suppressed ? e.SuppressedKind : e.Kind) switch
        {
            AuditEventKind.Malformed or AuditEventKind.ResponseMismatch or AuditEventKind.UnmatchedResponse
                or AuditEventKind.ResponseTimeout or AuditEventKind.UpstreamUnreachable or AuditEventKind.UpstreamLost => "<3>"u8,
            AuditEventKind.Denied or AuditEventKind.WouldDeny or AuditEventKind.OutOfSpec or AuditEventKind.PendingLimit
                or AuditEventKind.ConnectionLimit or AuditEventKind.FrameTimeout => "<4>"u8,
            AuditEventKind.Service => "<5>"u8,
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
