using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using EdgeShield.Policy;
using EdgeShield.Transport;
using Microsoft.Win32.SafeHandles;

namespace EdgeShield.Telemetry;

/// <summary>
/// The data diode: pollers read tags through <see cref="ReadOnlyModbusClient"/>, <see cref="ReadOnlyS7Client"/> or
/// <see cref="ReadOnlyIec104Client"/> only, encode them
/// (JSON or Sparkplug B), write them ahead to the <see cref="MessageLog"/>, and one
/// <see cref="TelemetryPublisher"/> sends the log to the broker. Nothing flows the other way.
/// </summary>
public sealed class TelemetryService : IAsyncDisposable, ISessionStart
{
    private const int MaxQueuedEvents = 10_000;

    /// <summary>The poller's client source on a shared upstream: a serial bus gives it one fair-queue turn like any client address.</summary>
    public const string PollerSource = "telemetry";

    private readonly TelemetryConfig _config;
    private readonly Func<UpstreamAddress, IUpstream?> _upstreams;
    private readonly Action<TelemetryNotice> _notify;
    private readonly TimeSpan _responseTimeout;
    private readonly MessageLog _log;
    private readonly TelemetryPublisher _publisher;
    private readonly List<Device> _devices = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _stopPolling = new();
    private readonly List<Task> _tasks = [];
    private readonly List<Task> _pollers = [];
    private readonly ConcurrentQueue<byte[]> _events = new();
    private readonly byte[] _eventsTopic;
    private readonly SemaphoreSlim _appendGate = new(1, 1);
    private int _queuedEvents;
    private long _eventsDropped;
    private long _values;
    private long _reads;
    private long _iec104Ignored;
    private ulong _bdSeq;
    private bool _sparkplugStarted;

    public TelemetryService(TelemetryConfig config, string gatewayName, string site, Func<UpstreamAddress, IUpstream?> upstreams, Action<TelemetryNotice> notify, TimeSpan responseTimeout, TimeSpan? rebirthInterval = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _upstreams = upstreams;
        _notify = notify;
        _responseTimeout = responseTimeout;
        NodeName = gatewayName.Length > 0 ? gatewayName : "edgeshield";
        Group = site.Length > 0 ? site : "edgeshield";
        ClientId = config.Mqtt.ClientId.Length > 0 ? config.Mqtt.ClientId : NodeName;
        TopicPrefix = config.Mqtt.TopicPrefix.Length > 0 ? config.Mqtt.TopicPrefix : $"edgeshield/{Group}/{NodeName}";
        _eventsTopic = Encoding.UTF8.GetBytes(TopicPrefix + "/events");
        _log = new MessageLog(config.Buffer.Path, (long)config.Buffer.MaxMb * 1024 * 1024, n => Notice(new TelemetryNotice(n.Reason, n.Detail, n.Count)));
        _publisher = new TelemetryPublisher(config.Mqtt with { ClientId = ClientId }, _log, this, Notice) { RebirthInterval = rebirthInterval ?? TimeSpan.FromMinutes(10) };
        foreach (var poll in config.Poll)
        {
            _devices.Add(new Device(this, poll));
        }
    }

    public string TopicPrefix { get; }
    public string ClientId { get; }
    /// <summary>Sparkplug edge node id (<c>gateway.name</c>).</summary>
    public string NodeName { get; }
    /// <summary>Sparkplug group id (<c>gateway.site</c>).</summary>
    public string Group { get; }

    /// <summary>Tag values read and written to the log (good, stale and bad).</summary>
    public long ValuesPolled => Interlocked.Read(ref _values);
    /// <summary>Read requests sent to PLCs (IEC 104: station interrogations).</summary>
    public long ReadsSent => Interlocked.Read(ref _reads) + _devices.Sum(d => d.Interrogations);
    /// <summary>IEC 104 points received whose information object address no tag of the entry names (not published).</summary>
    public long Iec104PointsIgnored => Interlocked.Read(ref _iec104Ignored);

    /// <summary>
    /// Timers of the IEC 104 clients (t1, t2, t3, w, backoff; the standard's defaults when null). The interrogation period is
    /// always the entry's <see cref="PollConfig.InterrogationPeriod"/>. For tests.
    /// </summary>
    public Iec104ClientOptions? Iec104Options { get; init; }
    /// <summary>Messages the broker acknowledged.</summary>
    public long Published => _publisher.Published;
    /// <summary>Messages dropped because the disk buffer was full.</summary>
    public long Dropped => _log.Dropped;
    /// <summary>Events not queued for MQTT because 10 000 were already waiting.</summary>
    public long EventsDropped => Interlocked.Read(ref _eventsDropped);
    public bool BrokerConnected => _publisher.IsConnected;
    /// <summary>Bytes in the disk buffer not yet acknowledged by the broker.</summary>
    public long PendingBytes => _log.PendingBytes;

    public void Start()
    {
        _publisher.Start();
        foreach (var device in _devices)
        {
            _pollers.Add(Task.Run(() => device.RunAsync(_stopPolling.Token)));
        }
        _tasks.Add(Task.Run(() => PumpAsync(_stop.Token)));
    }

    /// <summary>
    /// Queues one event (a JSON object) for <c>&lt;topic-prefix&gt;/events</c>. Never blocks: at most
    /// 10 000 wait; beyond that they are counted in <see cref="EventsDropped"/>.
    /// </summary>
    public bool TryEnqueueEvent(ReadOnlySpan<byte> json)
    {
        if (Interlocked.Increment(ref _queuedEvents) > MaxQueuedEvents)
        {
            Interlocked.Decrement(ref _queuedEvents);
            Interlocked.Increment(ref _eventsDropped);
            return false;
        }
        _events.Enqueue(json.ToArray());
        return true;
    }

    private void Notice(TelemetryNotice notice)
    {
        _notify(notice);
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            Span<byte> ts = stackalloc byte[32];
            JsonTelemetryEncoder.WriteTimestamp(DateTime.UtcNow, ts, out int n);
            json.WriteString("ts"u8, ts[..n]);
            json.WriteString("kind"u8, "telemetry"u8);
            json.WriteString("reason"u8, notice.Reason);
            json.WriteString("detail"u8, notice.Detail);
            json.WriteNumber("count"u8, notice.Count);
            json.WriteEndObject();
        }
        TryEnqueueEvent(buffer.WrittenSpan);
    }

    private async Task PumpAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        long ticks = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                await FlushEventsAsync(ct);
                if (++ticks % 10 == 0)
                {
                    // Bounds what a power loss can take to about one second.
                    _log.FlushToDisk();
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private async Task FlushEventsAsync(CancellationToken ct)
    {
        if (_events.IsEmpty)
        {
            return;
        }
        var batch = new ArrayBufferWriter<byte>(4096);
        int count = 0;
        while (_events.TryDequeue(out var payload))
        {
            Interlocked.Decrement(ref _queuedEvents);
            int length = MessageLog.EncodedLength(_eventsTopic.Length, payload.Length);
            count += 1;
            batch.Advance(MessageLog.Encode(batch.GetSpan(length), _eventsTopic, payload, retain: false));
        }
        await AppendAsync(batch.WrittenSpan.ToArray(), count, ct);
    }

    private async Task AppendAsync(ReadOnlyMemory<byte> records, int count, CancellationToken ct)
    {
        await _appendGate.WaitAsync(ct);
        try
        {
            _log.Append(records.Span, count);
        }
        finally
        {
            _appendGate.Release();
        }
        _publisher.Wake();
    }

    (string Topic, byte[] Payload, bool Retain) ISessionStart.NextWill()
    {
        if (_config.Format == TelemetryFormat.SparkplugB)
        {
            // bdSeq: one per MQTT session (Sparkplug 3.0, 7.2.1); NBIRTH repeats it.
            if (_sparkplugStarted)
            {
                _bdSeq = (_bdSeq + 1) & 0xFF;
            }
            _sparkplugStarted = true;
            return ($"spBv1.0/{Group}/NDEATH/{NodeName}", SparkplugEncoder.EncodeNodeDeath(NowMs(), _bdSeq), false);
        }
        return (TopicPrefix + "/status", "offline"u8.ToArray(), true);
    }

    IReadOnlyList<(string Topic, byte[] Payload, bool Retain)> ISessionStart.Births(out ulong nextSeq)
    {
        var births = new List<(string, byte[], bool)> { (TopicPrefix + "/status", "online"u8.ToArray(), true) };
        nextSeq = 0;
        if (_config.Format == TelemetryFormat.SparkplugB)
        {
            ulong now = NowMs();
            births.Add(($"spBv1.0/{Group}/NBIRTH/{NodeName}", SparkplugEncoder.EncodeNodeBirth(now, _bdSeq), false));
            ulong seq = 1;
            foreach (var device in _devices)
            {
                births.Add(($"spBv1.0/{Group}/DBIRTH/{NodeName}/{device.Name}", device.Birth(now, seq), false));
                seq = (seq + 1) & 0xFF;
            }
            nextSeq = seq;
        }
        return births;
    }

    internal static ulong NowMs() => (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    /// <summary>Stops reading PLCs (what was polled is still published); the reads counted are then final.</summary>
    public async Task StopPollingAsync()
    {
        await _stopPolling.CancelAsync();
        try
        {
            await Task.WhenAll(_pollers);
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopPollingAsync();
        await _stop.CancelAsync();
        try
        {
            await Task.WhenAll(_tasks);
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
        await FlushEventsAsync(CancellationToken.None);
        await _publisher.StopAsync(TimeSpan.FromSeconds(2));
        await _publisher.DisposeAsync();
        foreach (var device in _devices)
        {
            await device.DisposeAsync();
        }
        _log.FlushToDisk();
        _log.Dispose();
        _stop.Dispose();
        _stopPolling.Dispose();
        _appendGate.Dispose();
    }

    /// <summary>One poll entry: its reads, its tags' last values, its seq.</summary>
    private sealed class Device : IAsyncDisposable, IIec104Sink
    {
        private static readonly string[] ExceptionReasons = BuildExceptionReasons();
        private readonly TelemetryService _service;
        private readonly PollConfig _poll;
        private readonly IReadOnlyList<ReadBlock> _blocks;
        private readonly byte[][] _topics;
        private readonly TagValue[] _last;
        private readonly bool[] _hasGood;
        private readonly JsonTelemetryEncoder _json = new();
        private readonly SparkplugEncoder? _sparkplug;
        private readonly byte[] _sparkplugTopic;
        private readonly ArrayBufferWriter<byte> _batch = new(16 * 1024);
        private readonly SafeFileHandle _seqHandle;
        private readonly object _birthGate = new();
        private ReadOnlyModbusClient? _client;
        private ReadOnlyS7Client? _s7Client;
        // protocol: s7comm — one item per tag, in tag order; the data and outcomes of a cycle.
        private readonly S7ReadItem[] _s7Items = [];
        private readonly S7ItemResult[] _s7Results = [];
        private readonly byte[] _s7Data = [];
        private readonly Dictionary<ushort, string> _s7Reasons = [];
        private S7ConnectFault _s7Fault;
        // protocol: iec104 — the tag of each information object address, which tags the station sent since the
        // connection started or the last (station or counter) interrogation that judges them ended, and which tags are
        // integrated totals (typed M_IT): with any, the client reads counters, and the counter interrogation judges those.
        private ReadOnlyIec104Client? _iecClient;
        private readonly Dictionary<uint, int> _iecTags = [];
        private readonly bool[] _iecSeen = [];
        private readonly bool[] _iecCounter = [];
        private readonly bool _iecReadsCounters;
        private readonly SemaphoreSlim _iecGate = new(1, 1);
        private readonly Dictionary<int, string> _iecTypeReasons = [];
        private int _count;
        private long _seq;
        private readonly byte[] _stateKey;

        public Device(TelemetryService service, PollConfig poll)
        {
            _service = service;
            _poll = poll;
            _blocks = TagPlan.Build(poll);
            _topics = new byte[poll.Tags.Count][];
            for (int i = 0; i < poll.Tags.Count; i++)
            {
                _topics[i] = Encoding.UTF8.GetBytes($"{service.TopicPrefix}/{poll.Device}/{poll.Tags[i].Name}");
            }
            _last = new TagValue[poll.Tags.Count];
            _hasGood = new bool[poll.Tags.Count];
            if (poll.Protocol == PollProtocol.S7comm)
            {
                _s7Items = new S7ReadItem[poll.Tags.Count];
                for (int i = 0; i < poll.Tags.Count; i++)
                {
                    var at = poll.Tags[i].S7!.Value;
                    _s7Items[i] = new S7ReadItem(at.Area, at.Db, at.ByteOffset, at.Bit, at.Size);
                }
                _s7Results = new S7ItemResult[poll.Tags.Count];
                _s7Data = new byte[ReadOnlyS7Client.DestinationLength(_s7Items)];
            }
            if (poll.Protocol == PollProtocol.Iec104)
            {
                for (int i = 0; i < poll.Tags.Count; i++)
                {
                    _iecTags.Add(poll.Tags[i].Ioa!.Value, i);
                }
                _iecSeen = new bool[poll.Tags.Count];
                _iecCounter = [.. poll.Tags.Select(t => t.Iec104Type == (byte)Protocols.Iec104.Iec104TypeId.M_IT_NA_1)];
                _iecReadsCounters = _iecCounter.Contains(true);
            }
            if (service._config.Format == TelemetryFormat.SparkplugB)
            {
                _sparkplug = new SparkplugEncoder(poll.Tags);
            }
            _sparkplugTopic = Encoding.UTF8.GetBytes($"spBv1.0/{service.Group}/DDATA/{service.NodeName}/{poll.Device}");
            // seq survives restarts: a consumer can prove continuity across a gateway restart too.
            _seqHandle = File.OpenHandle(Path.Combine(service._config.Buffer.Path, "seq." + poll.Device), FileMode.OpenOrCreate, FileAccess.ReadWrite);
            Span<byte> saved = stackalloc byte[8];
            if (RandomAccess.Read(_seqHandle, saved, 0) == 8)
            {
                _seq = BinaryPrimitives.ReadInt64BigEndian(saved);
            }
            // The seq file is written just after each append; the log's own state record is written in
            // the same write as the messages, so a kill between the two cannot make a seq be reused.
            _stateKey = Encoding.UTF8.GetBytes("seq/" + poll.Device);
            if (service._log.RecoveredState.TryGetValue("seq/" + poll.Device, out long logged) && logged > _seq)
            {
                _seq = logged;
            }
        }

        public string Name => _poll.Device;

        /// <summary>Station and counter interrogations sent: the reads of an IEC 104 entry.</summary>
        public long Interrogations => _iecClient is null ? 0 : _iecClient.Interrogations + _iecClient.CounterInterrogations;

        public byte[] Birth(ulong now, ulong seq)
        {
            lock (_birthGate)
            {
                return _sparkplug!.EncodeBirth(now, seq);
            }
        }

        public async Task RunAsync(CancellationToken ct)
        {
            var upstream = _service._upstreams(_poll.Upstream);
            if (upstream is null)
            {
                _service.Notice(new TelemetryNotice("poll-upstream-unavailable", $"device {_poll.Device}: no upstream {_poll.Upstream} is configured; its tags are not polled", 1));
                return;
            }
            if (_poll.Protocol == PollProtocol.Iec104)
            {
                // A station sends: the client runs the connection, this device publishes what it delivers (IIec104Sink).
                var options = (_service.Iec104Options ?? new Iec104ClientOptions()) with
                {
                    InterrogationPeriod = _poll.InterrogationPeriod,
                    CounterInterrogation = _iecReadsCounters,
                };
                _iecClient = new ReadOnlyIec104Client(upstream, PollerSource, _poll.CommonAddress, options, this);
                await _iecClient.RunAsync(ct);
                return;
            }
            if (_poll.Protocol == PollProtocol.S7comm)
            {
                _s7Client = new ReadOnlyS7Client(upstream, PollerSource, _poll.S7!.CallingTsap, _poll.S7.CalledTsap, _service._responseTimeout);
            }
            else
            {
                _client = new ReadOnlyModbusClient(upstream, PollerSource, _service._responseTimeout);
            }
            var data = new byte[256];
            using var timer = new PeriodicTimer(_poll.Every);
            try
            {
                do
                {
                    if (_s7Client is not null)
                    {
                        await PollS7OnceAsync(_s7Client, ct);
                    }
                    else
                    {
                        await PollOnceAsync(_client!, data, ct);
                    }
                }
                while (await timer.WaitForNextTickAsync(ct));
            }
            catch (OperationCanceledException)
            {
                // Stopping.
            }
        }

        private async Task PollOnceAsync(ReadOnlyModbusClient client, byte[] data, CancellationToken ct)
        {
            var now = DateTime.UtcNow;
            ulong nowMs = (ulong)new DateTimeOffset(now).ToUnixTimeMilliseconds();
            _batch.ResetWrittenCount();
            _count = 0;
            foreach (var block in _blocks)
            {
                // Counted before it goes out, so a read cancelled while awaiting its answer is still counted.
                Interlocked.Increment(ref _service._reads);
                var result = await client.ReadAsync(_poll.Unit, block.Function, block.Start, block.Quantity, data, ct);
                if (result.Status == ReadStatus.Unreachable)
                {
                    Interlocked.Decrement(ref _service._reads);
                }
                string? reason = result.Status switch
                {
                    ReadStatus.Ok => null,
                    ReadStatus.Exception => ExceptionReasons[result.ExceptionCode],
                    ReadStatus.Timeout => "timeout",
                    ReadStatus.BadResponse => "bad-response",
                    _ => "unreachable",
                };
                foreach (int i in block.TagIndexes)
                {
                    if (reason is null)
                    {
                        _last[i] = TagDecoder.Decode(_poll.Tags[i], data.AsSpan(0, result.Length), block.Start);
                    }
                    Record(i, reason, now, nowMs);
                }
            }
            await FinishCycleAsync(now, nowMs, ct);
        }

        /// <summary>
        /// One cycle of an S7 device: every tag is one item; the client groups them into read-var jobs within the
        /// negotiated PDU size. An item's return code other than FF makes that tag stale or bad (<c>return-code-0A</c>),
        /// a job's header error every tag of the job (<c>error-8104</c>); the others are published as they were read.
        /// </summary>
        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
        private async ValueTask PollS7OnceAsync(ReadOnlyS7Client client, CancellationToken ct)
        {
            var now = DateTime.UtcNow;
            ulong nowMs = (ulong)new DateTimeOffset(now).ToUnixTimeMilliseconds();
            _batch.ResetWrittenCount();
            _count = 0;
            var summary = await client.ReadAsync(_s7Items, _s7Data, _s7Results, ct);
            Interlocked.Add(ref _service._reads, summary.JobsSent);
            if (summary.Fault != S7ConnectFault.None && summary.Fault != _s7Fault)
            {
                _service.Notice(new TelemetryNotice("poll-s7-connect-refused", summary.Fault == S7ConnectFault.ConnectRefused
                    ? $"device {_poll.Device}: {_poll.Upstream} refused the COTP connect to TSAP {_poll.S7!.CalledTsap >> 8:X2}.{_poll.S7.CalledTsap & 0xFF:X2}: check rack, slot and connection type; retried with a backoff"
                    : $"device {_poll.Device}: {_poll.Upstream} refused setup-communication; retried with a backoff", 1));
            }
            // One event per refusal streak: the backoff's quiet cycles (no attempt) do not end it, a job sent does.
            if (summary.Fault != S7ConnectFault.None)
            {
                _s7Fault = summary.Fault;
            }
            else if (summary.JobsSent > 0)
            {
                _s7Fault = S7ConnectFault.None;
            }
            for (int i = 0; i < _s7Items.Length; i++)
            {
                var result = _s7Results[i];
                string? reason = result.Status switch
                {
                    ReadStatus.Ok => null,
                    ReadStatus.Exception => S7Reason(result.Code),
                    ReadStatus.Timeout => "timeout",
                    ReadStatus.BadResponse => "bad-response",
                    _ => "unreachable",
                };
                if (reason is null)
                {
                    _last[i] = TagDecoder.DecodeS7(_poll.Tags[i], _s7Data.AsSpan(result.Offset, result.Length));
                }
                Record(i, reason, now, nowMs);
            }
            await FinishCycleAsync(now, nowMs, ct);
        }

        /// <summary><c>return-code-0A</c> for an item's return code, <c>error-8104</c> for a job's header error class and code; one string per code, kept.</summary>
        private string S7Reason(ushort code)
        {
            if (!_s7Reasons.TryGetValue(code, out var reason))
            {
                reason = code < 0x100
                    ? string.Create(CultureInfo.InvariantCulture, $"return-code-{code:X2}")
                    : string.Create(CultureInfo.InvariantCulture, $"error-{code:X4}");
                _s7Reasons.Add(code, reason);
            }
            return reason;
        }

        /// <summary>Tag <paramref name="i"/>'s value this cycle (<see cref="_last"/> already holds a good one when <paramref name="reason"/> is null), encoded into the batch.</summary>
        private void Record(int i, string? reason, DateTime now, ulong nowMs)
        {
            var tag = _poll.Tags[i];
            TagQuality quality;
            if (reason is null)
            {
                _hasGood[i] = true;
                quality = TagQuality.Good;
            }
            else
            {
                quality = _hasGood[i] ? TagQuality.Stale : TagQuality.Bad;
            }
            var value = quality == TagQuality.Bad ? default : _last[i];
            if (_sparkplug is not null)
            {
                lock (_birthGate)
                {
                    _sparkplug.Set(i, nowMs, value, quality);
                }
            }
            else
            {
                var payload = _json.Encode(now, value, quality, reason, tag.Unit, _seq++);
                int length = MessageLog.EncodedLength(_topics[i].Length, payload.Length);
                _batch.Advance(MessageLog.Encode(_batch.GetSpan(length), _topics[i], payload, retain: false));
                _count++;
            }
        }

        /// <summary>The cycle's Sparkplug DDATA or JSON seq state record, then one append of the whole batch.</summary>
        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
        private async ValueTask FinishCycleAsync(DateTime now, ulong nowMs, CancellationToken ct, int values = -1)
        {
            if (_sparkplug is not null)
            {
                ReadOnlySpan<byte> payload;
                lock (_birthGate)
                {
                    payload = _sparkplug.EncodeData(nowMs);
                    int length = MessageLog.EncodedLength(_sparkplugTopic.Length, payload.Length);
                    _batch.Advance(MessageLog.Encode(_batch.GetSpan(length), _sparkplugTopic, payload, retain: false));
                }
                _count++;
            }
            if (_sparkplug is null)
            {
                Span<byte> next = stackalloc byte[8];
                BinaryPrimitives.WriteInt64BigEndian(next, _seq);
                int length = MessageLog.EncodedLength(_stateKey.Length, 8);
                _batch.Advance(MessageLog.Encode(_batch.GetSpan(length), _stateKey, next, retain: false, state: true));
                _count++;
            }
            Interlocked.Add(ref _service._values, values < 0 ? _poll.Tags.Count : values);
            await _service._appendGate.WaitAsync(ct);
            try
            {
                _service._log.Append(_batch.WrittenSpan, _count);
                Span<byte> saved = stackalloc byte[8];
                BinaryPrimitives.WriteInt64BigEndian(saved, _seq);
                try
                {
                    RandomAccess.Write(_seqHandle, saved, 0);
                }
                catch (IOException)
                {
                    // A full disk (the log announces it): the seq is also in the state record of the log.
                }
            }
            finally
            {
                _service._appendGate.Release();
            }
            _service._publisher.Wake();
        }

        // ---- protocol: iec104 ------------------------------------------------------------------------------------

        /// <summary>
        /// One ASDU of the station: every object whose IOA a tag names is published (its time tag as the sample time, its
        /// quality bits as the quality), all of them in one append; objects of other IOAs are counted and dropped.
        /// </summary>
        async ValueTask IIec104Sink.OnAsduAsync(ReadOnlyMemory<byte> asdu)
        {
            await _iecGate.WaitAsync();
            try
            {
                var now = DateTime.UtcNow;
                ulong nowMs = (ulong)new DateTimeOffset(now).ToUnixTimeMilliseconds();
                _batch.ResetWrittenCount();
                _count = 0;
                int published = EncodeAsdu(asdu.Span, now);
                if (published > 0)
                {
                    await FinishCycleAsync(now, nowMs, CancellationToken.None, published);
                }
            }
            finally
            {
                _iecGate.Release();
            }
        }

        private int EncodeAsdu(ReadOnlySpan<byte> bytes, DateTime now)
        {
            if (!Protocols.Iec104.Iec104Asdu.TryParse(bytes, out var asdu, out _))
            {
                return 0;
            }
            int published = 0;
            foreach (var point in asdu)
            {
                if (!_iecTags.TryGetValue(point.Ioa, out int i))
                {
                    Interlocked.Increment(ref _service._iec104Ignored);
                    continue;
                }
                var tag = _poll.Tags[i];
                _iecSeen[i] = true;
                published++;
                if (!Iec104PointDecoder.TryDecode(asdu.Type, point.Element, out var raw, out byte flags, out var time, _poll.StationTimeOffset))
                {
                    RecordIec104(i, default, fresh: false, TypeReason("unsupported-", asdu.Type), now);
                    continue;
                }
                if (tag.Iec104Type != 0 && Iec104PointDecoder.Untimed(asdu.Type) != tag.Iec104Type)
                {
                    RecordIec104(i, default, fresh: false, TypeReason("unexpected-", asdu.Type), time ?? now);
                    continue;
                }
                // IV: the value must not be used; the last good one stays (stale), or none (bad).
                bool invalid = (flags & Iec104PointDecoder.Invalid) != 0;
                RecordIec104(i, Iec104PointDecoder.Scale(tag, raw), fresh: !invalid, Iec104PointDecoder.Reason(flags), time ?? now);
            }
            return published;
        }

        /// <summary><c>unexpected-M_ME_NC_1</c> / <c>unsupported-M_EP_TD_1</c>: one string per type, kept.</summary>
        private string TypeReason(string prefix, byte type)
        {
            int key = type | (prefix[2] == 'e' ? 0x100 : 0);
            if (!_iecTypeReasons.TryGetValue(key, out var reason))
            {
                reason = prefix + Protocols.Iec104.Iec104Types.Name(type);
                _iecTypeReasons.Add(key, reason);
            }
            return reason;
        }

        /// <summary>
        /// Tag <paramref name="i"/>: with <paramref name="fresh"/> a value the station sent (good, or stale with the quality
        /// bits as the reason); without, the last value the station sent is repeated as stale (bad when there is none) with
        /// <paramref name="reason"/>.
        /// </summary>
        private void RecordIec104(int i, in TagValue value, bool fresh, string? reason, DateTime timestamp)
        {
            TagQuality quality;
            if (fresh)
            {
                _last[i] = value;
                _hasGood[i] = true;
                quality = reason is null ? TagQuality.Good : TagQuality.Stale;
            }
            else
            {
                quality = _hasGood[i] ? TagQuality.Stale : TagQuality.Bad;
            }
            var published = quality == TagQuality.Bad ? default : _last[i];
            if (_sparkplug is not null)
            {
                lock (_birthGate)
                {
                    _sparkplug.Set(i, (ulong)new DateTimeOffset(timestamp).ToUnixTimeMilliseconds(), published, quality);
                }
            }
            else
            {
                var payload = _json.Encode(timestamp, published, quality, reason, _poll.Tags[i].Unit, _seq++);
                int length = MessageLog.EncodedLength(_topics[i].Length, payload.Length);
                _batch.Advance(MessageLog.Encode(_batch.GetSpan(length), _topics[i], payload, retain: false));
                _count++;
            }
        }

        /// <summary>
        /// The link: when it goes down every tag is published once as stale (bad if never received) with reason
        /// <c>unreachable</c>, and a protocol error is an event. When an interrogation ends, a tag it judges that the station
        /// did not send since the connection started or the previous such interrogation ended is published with reason
        /// <c>not-interrogated</c>: the station interrogation judges every tag, or, when counters are read, every tag but the
        /// integrated totals, which the counter interrogation judges (<c>counter-interrogation-refused</c> when the station
        /// refused it).
        /// </summary>
        async ValueTask IIec104Sink.OnLinkAsync(Iec104LinkChange change)
        {
            if (change.State == Iec104LinkState.Down && change.ProtocolError)
            {
                _service.Notice(new TelemetryNotice("poll-iec104-closed", $"device {_poll.Device}: closed the connection to {_poll.Upstream}: {change.Reason}; reconnecting with a backoff", 1));
            }
            await _iecGate.WaitAsync();
            try
            {
                if (change.State == Iec104LinkState.Active)
                {
                    Array.Clear(_iecSeen);
                    return;
                }
                var now = DateTime.UtcNow;
                ulong nowMs = (ulong)new DateTimeOffset(now).ToUnixTimeMilliseconds();
                _batch.ResetWrittenCount();
                _count = 0;
                int published = 0;
                string reason = change.State switch
                {
                    Iec104LinkState.Down => "unreachable",
                    Iec104LinkState.CounterInterrogationRefused => "counter-interrogation-refused",
                    _ => "not-interrogated",
                };
                for (int i = 0; i < _iecSeen.Length; i++)
                {
                    bool judged = change.State switch
                    {
                        Iec104LinkState.Down => true,
                        Iec104LinkState.InterrogationDone => !(_iecReadsCounters && _iecCounter[i]),
                        _ => _iecCounter[i],
                    };
                    if (!judged)
                    {
                        continue;
                    }
                    if (change.State == Iec104LinkState.Down || !_iecSeen[i])
                    {
                        RecordIec104(i, default, fresh: false, reason, now);
                        published++;
                    }
                    _iecSeen[i] = false;
                }
                if (published > 0)
                {
                    await FinishCycleAsync(now, nowMs, CancellationToken.None, published);
                }
            }
            finally
            {
                _iecGate.Release();
            }
        }

        private static string[] BuildExceptionReasons()
        {
            var reasons = new string[256];
            for (int i = 0; i < 256; i++)
            {
                reasons[i] = string.Create(CultureInfo.InvariantCulture, $"exception-{i:X2}");
            }
            return reasons;
        }

        public async ValueTask DisposeAsync()
        {
            if (_client is not null)
            {
                await _client.DisposeAsync();
            }
            if (_s7Client is not null)
            {
                await _s7Client.DisposeAsync();
            }
            if (_iecClient is not null)
            {
                await _iecClient.DisposeAsync();
            }
            _iecGate.Dispose();
            _json.Dispose();
            _seqHandle.Dispose();
        }
    }
}
