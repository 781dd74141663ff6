using System.Buffers;
using System.Diagnostics;
using EdgeShield.Protocols;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Transport;

/// <summary>
/// One RS-485 bus of Modbus RTU devices, shared by every gateway client and the poller. Sessions
/// hand it MBAP-framed requests; it converts each to RTU (unit id = address), queues it fairly per
/// client source, puts one transaction on the wire at a time with t3.5 of silence around it, and
/// hands the reply back as an MBAP ADU with the transaction id it was sent with. It answers by
/// itself: 06 when the queue is full, 0A when the port is gone, 0B on timeouts, on an open circuit
/// breaker and for requests that waited too long to be worth sending.
/// </summary>
public sealed partial class SerialBus : IUpstream
{
    private static readonly TimeSpan MinReopenDelay = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan MaxReopenDelay = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan MaxBreakerOpen = TimeSpan.FromSeconds(30);
    // User space sees pty and UART bytes in chunks, with up to about a millisecond of scheduling
    // jitter between them: a gap is only held against a frame once it exceeds t1.5 by that much.
    private const double JitterAllowanceMicros = 1000;

    private readonly object _queueGate = new();
    private readonly Dictionary<string, Queue<BusRequest>> _bySource = new(StringComparer.Ordinal);
    private readonly Queue<string> _ring = new();
    private readonly Stack<BusRequest> _pool = new();
    private readonly SemaphoreSlim _queued = new(0, int.MaxValue);
    private readonly CancellationTokenSource _disposed = new();
    private readonly Breaker[] _breakers = new Breaker[256];
    private readonly RtuTiming _timing;
    private readonly long _interFrameTicks;
    private readonly long _breakGapTicks;
    private readonly byte[] _rx = new byte[2048];
    private readonly byte[] _reply = new byte[ModbusLimits.MaxTcpAduLength];
    private Task _worker = Task.CompletedTask;
    private SerialLine? _line;
    private int _queuedCount;
    private int _generation;
    private long _lineFreeAt;
    // The last attempt ended without a valid reply: bytes before the next write are a late reply.
    private bool _guarding;
    private volatile bool _available;

    public SerialBus(SerialBusOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
        _timing = new RtuTiming(options.Baud, options.BitsPerCharacter);
        _interFrameTicks = MicrosToTicks(_timing.InterFrameMicros);
        _breakGapTicks = MicrosToTicks(_timing.InterCharacterMicros + JitterAllowanceMicros);
    }

    public SerialBusOptions Options { get; }
    public RtuTiming Timing => _timing;
    public string Description => $"serial://{Options.Name}";
    public SerialBusCounters Counters { get; } = new();

    /// <summary>True while the device is open.</summary>
    public bool IsAvailable => _available;

    public TimeSpan ResponseWindow =>
        (Options.ResponseTimeout + TimeSpan.FromMicroseconds(_timing.FrameMicros(2 * RtuFramer.MaxAduLength) + (2 * _timing.InterFrameMicros)))
        * (1 + Options.ReadRetries) + (Options.EffectiveLateReplyGuard * Options.ReadRetries) + TimeSpan.FromMilliseconds(200);

    /// <summary>Starts the bus: opens the device (retrying in the background until it can) and serves the queue.</summary>
    public static SerialBus Start(SerialBusOptions options)
    {
        var bus = new SerialBus(options);
        bus.TryOpen();
        bus._worker = Task.Run(bus.WorkerLoopAsync);
        return bus;
    }

    /// <summary>A session for <paramref name="source"/>; a serial bus carries Modbus only (MBAP at this interface).</summary>
    public IUpstreamSession OpenSession(IUpstreamReceiver receiver, IStreamFramer responseFramer, string source)
    {
        if (responseFramer != MbapStreamFramer.Instance)
        {
            throw new ArgumentException($"a serial bus carries Modbus only, not {responseFramer?.Name}", nameof(responseFramer));
        }
        return OpenSession(receiver, source);
    }

    public IUpstreamSession OpenSession(IUpstreamReceiver receiver, string source = "")
    {
        ArgumentNullException.ThrowIfNull(receiver);
        ArgumentNullException.ThrowIfNull(source);
        return new SerialBusSession(this, receiver, source);
    }

    private static long MicrosToTicks(double micros) => (long)(micros * Stopwatch.Frequency / 1_000_000);

    private static long ToTicks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    private bool TryOpen()
    {
        try
        {
            var line = SerialLine.Open(Options, _breakGapTicks);
            _line = line;
            Interlocked.Increment(ref _generation);
            _available = true;
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException)
        {
            _available = false;
            return false;
        }
    }

    private void LineLost()
    {
        if (_line is { } line)
        {
            line.Dispose();
            _line = null;
            Counters.CountLineLost();
        }
        _available = false;
    }

    // ---- queue ------------------------------------------------------------------------------

    /// <summary>Admits a request or says which exception answers it at once (0 = admitted).</summary>
    /// <param name="sent">Completes when the request is on the wire (see <see cref="IUpstreamSession.SendAsync"/>).
    /// Taken here, under the lock: once queued, the request object belongs to the worker, which recycles it.</param>
    internal byte TryEnqueue(SerialBusSession session, ReadOnlySpan<byte> mbapAdu, CancellationToken cancellationToken, out Task<int>? sent)
    {
        sent = null;
        byte unit = mbapAdu[6];
        byte fc = mbapAdu[7];
        if (!_available)
        {
            Counters.CountUnavailable();
            return ModbusExceptionCode.GatewayPathUnavailable;
        }
        if (mbapAdu.Length - ModbusLimits.MbapHeaderLength > ModbusLimits.MaxPduLength)
        {
            // A vendor code's PDU above 253 bytes (allowed over TCP) cannot fit a 256-byte RTU ADU.
            return ModbusExceptionCode.IllegalDataValue;
        }
        if (unit > RtuFramer.MaxDeviceAddress)
        {
            // 248..255 are reserved on a serial line: no device can be behind them.
            return ModbusExceptionCode.GatewayPathUnavailable;
        }
        bool broadcast = unit == RtuFramer.BroadcastAddress;
        if (broadcast && !IsWrite(fc))
        {
            // Only writes may be broadcast (Modbus over Serial Line 2.1): nothing could answer a read.
            return ModbusExceptionCode.GatewayPathUnavailable;
        }
        if (!broadcast && BreakerRejects(unit, Stopwatch.GetTimestamp(), admitProbe: false))
        {
            Counters.CountBreakerRejected();
            return ModbusExceptionCode.GatewayTargetFailedToRespond;
        }
        lock (_queueGate)
        {
            if (_queuedCount >= Options.QueueDepth)
            {
                Counters.CountQueueFull();
                return ModbusExceptionCode.ServerDeviceBusy;
            }
            var r = _pool.Count > 0 ? _pool.Pop() : new BusRequest();
            r.Session = session;
            r.TransactionId = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(mbapAdu);
            r.Unit = unit;
            r.FunctionCode = fc;
            r.Broadcast = broadcast;
            r.RtuLength = RtuFramer.FromMbap(mbapAdu, r.Rtu);
            r.Enqueued = Stopwatch.GetTimestamp();
            r.CancellationToken = cancellationToken;
            r.Sent = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_bySource.TryGetValue(session.Source, out var queue))
            {
                queue = new Queue<BusRequest>();
                _bySource.Add(session.Source, queue);
            }
            if (queue.Count == 0)
            {
                _ring.Enqueue(session.Source);
            }
            queue.Enqueue(r);
            _queuedCount++;
            sent = r.Sent.Task;
        }
        _queued.Release();
        return 0;
    }

    /// <summary>Round robin over client sources; each source's requests in order.</summary>
    private BusRequest? Dequeue()
    {
        lock (_queueGate)
        {
            while (_ring.Count > 0)
            {
                string source = _ring.Dequeue();
                var queue = _bySource[source];
                if (queue.Count == 0)
                {
                    continue;
                }
                var r = queue.Dequeue();
                _queuedCount--;
                if (queue.Count > 0)
                {
                    _ring.Enqueue(source);
                }
                else if (_bySource.Count > 1024)
                {
                    _bySource.Remove(source);
                }
                return r;
            }
            return null;
        }
    }

    private void Recycle(BusRequest request)
    {
        request.Session = null;
        request.Sent = null;
        lock (_queueGate)
        {
            _pool.Push(request);
        }
    }

    private static bool IsWrite(byte fc) => fc is 5 or 6 or 15 or 16 or 21 or 22 or 23;

    private static bool IsRead(byte fc) => fc is 1 or 2 or 3 or 4 or 20 or 24;

    // ---- circuit breaker ------------------------------------------------------------------

    private struct Breaker
    {
        public int Failures;
        public long OpenUntil;
        public long OpenTicks;
    }

    /// <summary>True while <paramref name="unit"/>'s breaker is open. When its time is up, one request (the probe) is let through.</summary>
    private bool BreakerRejects(byte unit, long now, bool admitProbe)
    {
        lock (_breakers)
        {
            ref var b = ref _breakers[unit];
            if (b.OpenUntil == 0 || now >= b.OpenUntil && !admitProbe)
            {
                return false;
            }
            if (now >= b.OpenUntil)
            {
                // Half open: this request probes; the others wait out another period.
                b.OpenUntil = now + b.OpenTicks;
                return false;
            }
            return true;
        }
    }

    private void BreakerResult(byte unit, bool success, long now)
    {
        lock (_breakers)
        {
            ref var b = ref _breakers[unit];
            if (success)
            {
                b = default;
                return;
            }
            b.Failures++;
            if (b.OpenUntil != 0)
            {
                long max = ToTicks(MaxBreakerOpen);
                b.OpenTicks = Math.Min(b.OpenTicks * 2, max);
                b.OpenUntil = now + b.OpenTicks;
                Counters.CountBreakerOpened();
            }
            else if (b.Failures >= Options.BreakerFailures)
            {
                b.OpenTicks = ToTicks(Options.BreakerOpen);
                b.OpenUntil = now + b.OpenTicks;
                Counters.CountBreakerOpened();
            }
        }
    }

    /// <summary>True while <paramref name="unit"/>'s breaker is open (for tests and status).</summary>
    public bool IsBreakerOpen(byte unit)
    {
        lock (_breakers)
        {
            return _breakers[unit].OpenUntil != 0;
        }
    }

    // ---- the wire ---------------------------------------------------------------------------

    private async Task WorkerLoopAsync()
    {
        var reopenDelay = MinReopenDelay;
        var token = _disposed.Token;
        try
        {
            while (!token.IsCancellationRequested)
            {
                if (_line is null || _line.Lost)
                {
                    LineLost();
                    await FailQueuedAsync(ModbusExceptionCode.GatewayPathUnavailable);
                    if (!TryOpen())
                    {
                        await Task.Delay(reopenDelay, token);
                        reopenDelay = reopenDelay * 2 > MaxReopenDelay ? MaxReopenDelay : reopenDelay * 2;
                        continue;
                    }
                    reopenDelay = MinReopenDelay;
                }
                if (!await _queued.WaitAsync(TimeSpan.FromMilliseconds(250), token))
                {
                    continue;
                }
                var request = Dequeue();
                if (request is null)
                {
                    continue;
                }
                try
                {
                    await ServeAsync(request, _line!);
                }
                finally
                {
                    Recycle(request);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async ValueTask FailQueuedAsync(byte exceptionCode)
    {
        while (Dequeue() is { } request)
        {
            _queued.Wait(0);
            try
            {
                Counters.CountUnavailable();
                await AnswerAsync(request, exceptionCode);
            }
            finally
            {
                Recycle(request);
            }
        }
    }

    private async ValueTask ServeAsync(BusRequest request, SerialLine line)
    {
        var session = request.Session!;
        long now = Stopwatch.GetTimestamp();
        if (request.CancellationToken.IsCancellationRequested || session.IsDisposed)
        {
            // The client has gone: its request never reaches the line.
            Counters.CountAbandoned();
            request.Sent!.TrySetResult(-1);
            return;
        }
        if (now - request.Enqueued > ToTicks(Options.QueueTimeout))
        {
            Counters.CountQueueTimeout();
            await AnswerAsync(request, ModbusExceptionCode.GatewayTargetFailedToRespond);
            return;
        }
        if (!request.Broadcast && BreakerRejects(request.Unit, now, admitProbe: true))
        {
            Counters.CountBreakerRejected();
            await AnswerAsync(request, ModbusExceptionCode.GatewayTargetFailedToRespond);
            return;
        }

        int attempts = 1 + (IsRead(request.FunctionCode) ? Options.ReadRetries : 0);
        for (int attempt = 0; attempt < attempts; attempt++)
        {
            if (attempt > 0)
            {
                if (request.CancellationToken.IsCancellationRequested || session.IsDisposed)
                {
                    return;
                }
                Counters.CountRetry();
            }
            long quietAt = await AcquireSilentLineAsync(line);
            try
            {
                line.Write(request.Rtu.AsSpan(0, request.RtuLength));
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or UnauthorizedAccessException)
            {
                LineLost();
                await AnswerAsync(request, ModbusExceptionCode.GatewayPathUnavailable);
                return;
            }
            long written = Stopwatch.GetTimestamp();
            _guarding = false;
            // The line sat idle beyond what the spec requires, by our doing (wake-ups, scheduling).
            Counters.CountIdleBeyondSilence(written - Math.Max(quietAt, request.Enqueued));
            long onWire = written + MicrosToTicks(_timing.FrameMicros(request.RtuLength));
            Counters.CountRequestSent(request.RtuLength);
            if (attempt == 0)
            {
                request.Sent!.TrySetResult(request.Broadcast ? 0 : _generation);
            }
            if (request.Broadcast)
            {
                Counters.CountBroadcast();
                Volatile.Write(ref _lineFreeAt, onWire + ToTicks(Options.TurnaroundDelay));
                return;
            }
            Volatile.Write(ref _lineFreeAt, onWire + _interFrameTicks);
            int replyLength = await ReceiveReplyAsync(request, line, onWire + ToTicks(Options.ResponseTimeout));
            if (replyLength > 0)
            {
                BreakerResult(request.Unit, success: true, Stopwatch.GetTimestamp());
                Counters.CountTransaction(Stopwatch.GetTimestamp() - written);
                await session.Receiver.OnResponseAsync(_reply.AsMemory(0, replyLength), _generation);
                return;
            }
            if (line.Lost)
            {
                LineLost();
                await AnswerAsync(request, ModbusExceptionCode.GatewayPathUnavailable);
                return;
            }
            // No valid reply in time. RTU has no transaction id: a late reply to this attempt would
            // answer the next request (a retry or another client's read of the same shape). The line
            // must fall silent for the late-reply guard first; what arrives in it is discarded.
            _guarding = true;
            long guardEnd = Stopwatch.GetTimestamp() + ToTicks(Options.EffectiveLateReplyGuard);
            if (guardEnd > Volatile.Read(ref _lineFreeAt))
            {
                Volatile.Write(ref _lineFreeAt, guardEnd);
            }
        }
        Counters.CountTimeout();
        BreakerResult(request.Unit, success: false, Stopwatch.GetTimestamp());
        await AnswerAsync(request, ModbusExceptionCode.GatewayTargetFailedToRespond);
    }

    /// <summary>
    /// Waits for a silent line and empties the receive buffer, so that the request about to be
    /// written follows t3.5 (or the broadcast turnaround, or the late-reply guard) of silence. Bytes
    /// found or arriving in the meantime (a device answering twice, a reply after its timeout) are
    /// discarded and restart the wait: the check that the line is silent is the last thing done
    /// before the write, not the first.
    /// </summary>
    /// <returns>When the line became free.</returns>
    private async ValueTask<long> AcquireSilentLineAsync(SerialLine line)
    {
        long quietAt = 0;
        for (int guard = 0; guard < 1_000; guard++)
        {
            quietAt = await WaitForSilenceAsync(line);
            int stray = line.Clear();
            if (stray > 0)
            {
                Counters.CountUnexpectedBytes(stray);
                if (_guarding)
                {
                    Counters.CountLateReply();
                    _guarding = false;
                }
            }
            // A byte that came after the wait ended (the clear took it, or it is on its way) means
            // the line was not silent when we looked: wait again from that byte.
            if (Stopwatch.GetTimestamp() - line.LastByteTimestamp >= _interFrameTicks)
            {
                return quietAt;
            }
        }
        return quietAt;
    }

    /// <summary>
    /// Waits until the line has been silent for t3.5 after the last byte either side put on it
    /// (and after a broadcast's turnaround delay). Sleeps while far off, then spins: timers here
    /// have about a millisecond of granularity and t3.5 at 115200 baud is 1.75 ms. The spin costs
    /// CPU only in the last 3 ms before a request that is already waiting.
    /// </summary>
    /// <returns>When the line became free.</returns>
    private async ValueTask<long> WaitForSilenceAsync(SerialLine line)
    {
        long quietAt = 0;
        for (int guard = 0; guard < 10_000; guard++)
        {
            quietAt = Math.Max(Volatile.Read(ref _lineFreeAt), line.LastByteTimestamp + _interFrameTicks);
            long remaining = quietAt - Stopwatch.GetTimestamp();
            if (remaining <= 0)
            {
                return quietAt;
            }
            // A timer wakes a millisecond or more late (more on a loaded machine): sleep only
            // while at least 4 ms remain, and spin the last 3.
            if (remaining > ToTicks(TimeSpan.FromMilliseconds(4)))
            {
                await Task.Delay(TimeSpan.FromTicks(TimeSpan.TicksPerSecond * (remaining - ToTicks(TimeSpan.FromMilliseconds(3))) / Stopwatch.Frequency));
                continue;
            }
            while (Stopwatch.GetTimestamp() < quietAt)
            {
                Thread.SpinWait(20);
            }
        }
        return quietAt;
    }

    /// <summary>
    /// Collects the reply until <paramref name="deadline"/>: the first frame, framed by the
    /// function's length rules, whose CRC checks and whose address is the request's. Bytes before
    /// it (noise, frames from other units, frames broken by a gap above t1.5) are dropped and counted.
    /// </summary>
    /// <returns>The length of the MBAP reply in <see cref="_reply"/>, or 0 when none came in time.</returns>
    private async ValueTask<int> ReceiveReplyAsync(BusRequest request, SerialLine line, long deadline)
    {
        for (int guard = 0; guard < 100_000; guard++)
        {
            int length = ScanReply(request, line);
            if (length > 0)
            {
                return length;
            }
            long now = Stopwatch.GetTimestamp();
            if (now >= deadline || line.Lost)
            {
                return 0;
            }
            long wait = deadline - now;
            // While a partial frame of unknown length is pending, look again once the line has been quiet for t3.5.
            long silenceAt = line.LastByteTimestamp + _interFrameTicks;
            if (silenceAt > now && silenceAt < deadline)
            {
                wait = silenceAt - now;
            }
            await line.WaitForBytesAsync(TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond, TimeSpan.TicksPerSecond * wait / Stopwatch.Frequency)));
        }
        return 0;
    }

    private int ScanReply(BusRequest request, SerialLine line)
    {
        int filled = line.Peek(_rx, out int breakAt);
        bool atSilence = Stopwatch.GetTimestamp() - line.LastByteTimestamp >= _interFrameTicks;
        int offset = 0;
        int length = 0;
        while (offset < filled)
        {
            var input = _rx.AsSpan(offset, filled - offset);
            var status = RtuFramer.TryReadFrame(input, RtuDirection.Response, atSilence, out var frame, out int consumed, out var error);
            if (status == OperationStatus.NeedMoreData)
            {
                break;
            }
            int relativeBreak = breakAt > offset ? breakAt - offset : -1;
            if (status == OperationStatus.Done && relativeBreak > 0 && relativeBreak < consumed)
            {
                // A gap above t1.5 inside the frame: the spec says it is not a frame.
                Counters.CountInterCharacterViolation();
                Counters.CountDroppedBytes(relativeBreak);
                offset += relativeBreak;
                continue;
            }
            if (status == OperationStatus.Done && frame.Address == request.Unit)
            {
                length = RtuFramer.ToMbap(frame, request.TransactionId, _reply);
                offset += consumed;
                break;
            }
            if (status == OperationStatus.Done)
            {
                Counters.CountWrongUnit();
                Counters.CountDroppedBytes(consumed);
                offset += consumed;
                continue;
            }
            if (error == FramingError.CrcMismatch && input[0] == request.Unit)
            {
                Counters.CountCrcError();
            }
            // Resynchronise one byte at a time: noise before a frame must not hide it.
            Counters.CountDroppedBytes(1);
            offset++;
        }
        if (offset > 0)
        {
            line.Consume(offset);
        }
        return length;
    }

    /// <summary>Answers <paramref name="request"/> with an exception response made here.</summary>
    private async ValueTask AnswerAsync(BusRequest request, byte exceptionCode)
    {
        request.Sent!.TrySetResult(Math.Max(1, _generation));
        int length = MbapFramer.WriteException(_reply, request.TransactionId, request.Unit, request.FunctionCode, exceptionCode);
        await request.Session!.Receiver.OnResponseAsync(_reply.AsMemory(0, length), Math.Max(1, _generation));
    }

    internal int CurrentGeneration => Math.Max(1, _generation);

    public async ValueTask DisposeAsync()
    {
        if (_disposed.IsCancellationRequested)
        {
            return;
        }
        _disposed.Cancel();
        try
        {
            await _worker;
        }
        catch (OperationCanceledException)
        {
        }
        _line?.Dispose();
        _line = null;
        _available = false;
        lock (_queueGate)
        {
            foreach (var queue in _bySource.Values)
            {
                while (queue.Count > 0)
                {
                    queue.Dequeue().Sent?.TrySetResult(-1);
                }
            }
            _queuedCount = 0;
        }
    }

    internal sealed class BusRequest
    {
        public SerialBusSession? Session;
        public readonly byte[] Rtu = new byte[RtuFramer.MaxAduLength];
        public int RtuLength;
        public ushort TransactionId;
        public byte Unit;
        public byte FunctionCode;
        public bool Broadcast;
        public long Enqueued;
        public CancellationToken CancellationToken;
        public TaskCompletionSource<int>? Sent;
    }
}

/// <summary>One client's (or the poller's) face of a serial bus.</summary>
internal sealed class SerialBusSession : IUpstreamSession
{
    private readonly SerialBus _bus;
    private readonly byte[] _reply = new byte[16];
    private volatile bool _disposed;

    public SerialBusSession(SerialBus bus, IUpstreamReceiver receiver, string source)
    {
        _bus = bus;
        Receiver = receiver;
        Source = source;
    }

    public IUpstreamReceiver Receiver { get; }
    public string Source { get; }
    public bool IsDisposed => _disposed;

    public async ValueTask<int> SendAsync(ReadOnlyMemory<byte> adu, CancellationToken cancellationToken)
    {
        if (_disposed || adu.Length < ModbusLimits.MbapHeaderLength + 1)
        {
            return -1;
        }
        byte refusal = _bus.TryEnqueue(this, adu.Span, cancellationToken, out var sent);
        if (refusal != 0)
        {
            var span = adu.Span;
            int length = MbapFramer.WriteException(_reply, System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(span), span[6], span[7], refusal);
            int generation = _bus.CurrentGeneration;
            await Receiver.OnResponseAsync(_reply.AsMemory(0, length), generation);
            return generation;
        }
        return await sent!.ConfigureAwait(false);
    }

    public ValueTask DisposeAsync()
    {
        _disposed = true;
        return ValueTask.CompletedTask;
    }
}
