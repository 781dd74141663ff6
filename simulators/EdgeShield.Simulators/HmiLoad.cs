using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Simulators;

/// <summary>What an <see cref="HmiLoad"/> run does; weights are relative, not percentages.</summary>
public sealed class HmiOptions
{
    public int Connections { get; init; } = 1;
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(5);
    public byte Unit { get; init; } = 1;
    /// <summary>Requests in flight per connection; 1 behaves like an HMI.</summary>
    public int Pipeline { get; init; } = 1;
    public int ReadCoilsWeight { get; init; } = 20;
    public int ReadHoldingWeight { get; init; } = 40;
    public int ReadInputWeight { get; init; } = 20;
    public int WriteSingleRegisterWeight { get; init; } = 10;
    public int WriteMultipleRegistersWeight { get; init; } = 10;
    /// <summary>Reads start anywhere in ReadStart..ReadStart+ReadRange-ReadQuantity.</summary>
    public ushort ReadStart { get; init; }
    public int ReadRange { get; init; } = 1000;
    public int ReadQuantity { get; init; } = 10;
    /// <summary>Writes land in WriteStart..WriteStart+WriteRange-1, values 0..1000.</summary>
    public ushort WriteStart { get; init; } = 100;
    public int WriteRange { get; init; } = 20;
    public int WriteQuantity { get; init; } = 4;
    /// <summary>A response later than this counts as a timeout; the connection is then reopened.</summary>
    public int TimeoutMs { get; init; } = 2000;
    /// <summary>When set, answers, errors and latency are also kept per interval of this length (by completion time) …</summary>
    public TimeSpan? Interval { get; init; }
    /// <summary>… and each interval is handed here shortly after it ends (the last one, possibly partial, at the end).</summary>
    public Action<HmiInterval>? OnInterval { get; init; }

    /// <summary>Options with reads split FC3:FC4:FC1 as 2:1:1 and writes FC6:FC16 as 1:1.</summary>
    public static HmiOptions WithMix(int readPercent, int writePercent, HmiOptions template)
    {
        ArgumentNullException.ThrowIfNull(template);
        return new HmiOptions
        {
            Connections = template.Connections,
            Duration = template.Duration,
            Unit = template.Unit,
            Pipeline = template.Pipeline,
            ReadHoldingWeight = readPercent / 2,
            ReadInputWeight = readPercent / 4,
            ReadCoilsWeight = readPercent - (readPercent / 2) - (readPercent / 4),
            WriteSingleRegisterWeight = writePercent / 2,
            WriteMultipleRegistersWeight = writePercent - (writePercent / 2),
            ReadStart = template.ReadStart,
            ReadRange = template.ReadRange,
            ReadQuantity = template.ReadQuantity,
            WriteStart = template.WriteStart,
            WriteRange = template.WriteRange,
            WriteQuantity = template.WriteQuantity,
            TimeoutMs = template.TimeoutMs,
            Interval = template.Interval,
            OnInterval = template.OnInterval,
        };
    }
}

/// <summary>One interval of an <see cref="HmiLoad"/> run with <see cref="HmiOptions.Interval"/> set.</summary>
public sealed record HmiInterval(int Index, double StartSeconds, double Seconds, long Answered, long Errors, long P50Us, long P99Us, long MaxUs)
{
    public double AnsweredPerSecond => Seconds > 0 ? Answered / Seconds : 0;
}

/// <summary>Per-interval answers, errors and latency, shared by all connections (a lock per interval; one record per response).</summary>
internal sealed class IntervalRecorder(long startTimestamp, long intervalTicks, int count)
{
    private readonly LatencyHistogram[] _latency = Enumerable.Range(0, count).Select(static _ => new LatencyHistogram()).ToArray();
    private readonly long[] _errors = new long[count];

    public int Count => count;

    public int IndexAt(long timestamp) => (int)Math.Clamp((timestamp - startTimestamp) / intervalTicks, 0, count - 1);

    public void Answered(long timestamp, long micros)
    {
        var h = _latency[IndexAt(timestamp)];
        lock (h)
        {
            h.Record(micros);
        }
    }

    public void Errors(long timestamp, long n) => Interlocked.Add(ref _errors[IndexAt(timestamp)], n);

    public HmiInterval Snapshot(int index, double seconds)
    {
        var h = _latency[index];
        lock (h)
        {
            return new HmiInterval(index, index * (double)intervalTicks / Stopwatch.Frequency, seconds, h.Count, Interlocked.Read(ref _errors[index]), h.Percentile(50), h.Percentile(99), h.MaxMicroseconds);
        }
    }
}

/// <summary>The outcome of an <see cref="HmiLoad"/> run.</summary>
public sealed class HmiResult
{
    private readonly long[] _exceptions;

    internal HmiResult(long[] exceptions, LatencyHistogram latency) => (_exceptions, Latency) = (exceptions, latency);

    public long Requests { get; init; }
    public long ResponsesOk { get; init; }
    public long Timeouts { get; init; }
    /// <summary>Responses with a wrong transaction id, function, length or echo, and unframeable responses.</summary>
    public long Mismatched { get; init; }
    /// <summary>Connections the target closed or reset, with requests outstanding or not.</summary>
    public long Disconnects { get; init; }
    public long ConnectFailures { get; init; }
    public TimeSpan Elapsed { get; init; }
    public LatencyHistogram Latency { get; }
    /// <summary>Per-interval figures when <see cref="HmiOptions.Interval"/> was set; empty otherwise.</summary>
    public IReadOnlyList<HmiInterval> Intervals { get; init; } = [];

    public long Exceptions(byte code) => _exceptions[code];

    public long TotalExceptions
    {
        get
        {
            long sum = 0;
            foreach (long count in _exceptions)
            {
                sum += count;
            }
            return sum;
        }
    }

    public long Errors => Timeouts + Mismatched + Disconnects + ConnectFailures;

    /// <summary>Answered requests (normal and exception) per second.</summary>
    public double RequestsPerSecond => Elapsed.TotalSeconds > 0 ? (ResponsesOk + TotalExceptions) / Elapsed.TotalSeconds : 0;

    public long P50Us => Latency.Percentile(50);
    public long P99Us => Latency.Percentile(99);
    public long P999Us => Latency.Percentile(99.9);
    public long MaxUs => Latency.MaxMicroseconds;
}

/// <summary>
/// An HMI-like load generator: N connections, each with one request (or <see cref="HmiOptions.Pipeline"/>)
/// outstanding, a weighted mix of FC 1/3/4 reads and FC 6/16 writes, every response checked with
/// <see cref="ModbusPdu.CheckResponse"/>. The steady-state loop allocates nothing.
/// </summary>
public static class HmiLoad
{
    public static async Task<HmiResult> RunAsync(IPEndPoint target, HmiOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Connections, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Pipeline, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.ReadQuantity, ModbusLimits.MaxReadRegisters);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ReadQuantity, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.WriteQuantity, ModbusLimits.MaxWriteRegisters);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.WriteQuantity, 1);
        if (options.ReadCoilsWeight + options.ReadHoldingWeight + options.ReadInputWeight
            + options.WriteSingleRegisterWeight + options.WriteMultipleRegistersWeight <= 0)
        {
            throw new ArgumentException("the mix has no weight", nameof(options));
        }

        var workers = new Worker[options.Connections];
        var tasks = new Task[workers.Length];
        long start = Stopwatch.GetTimestamp();
        long deadline = start + (long)(options.Duration.TotalSeconds * Stopwatch.Frequency);
        IntervalRecorder? recorder = null;
        if (options.Interval is { } interval)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(interval, TimeSpan.FromMilliseconds(100), nameof(options));
            long ticks = (long)(interval.TotalSeconds * Stopwatch.Frequency);
            recorder = new IntervalRecorder(start, ticks, (int)Math.Max(1, Math.Ceiling(options.Duration.TotalSeconds / interval.TotalSeconds)));
        }
        for (int i = 0; i < workers.Length; i++)
        {
            workers[i] = new Worker(target, options, (uint)(i + 1) * 2654435761u, recorder);
            var worker = workers[i];
            tasks[i] = Task.Run(() => worker.RunAsync(deadline, ct), CancellationToken.None);
        }
        var all = Task.WhenAll(tasks);
        var intervals = new List<HmiInterval>();
        if (recorder is not null)
        {
            // Report each interval a little after it ends, so the answers completing at its edge are in.
            double length = options.Interval!.Value.TotalSeconds;
            for (int i = 0; i < recorder.Count; i++)
            {
                long due = start + (long)((((i + 1) * length) + 0.2) * Stopwatch.Frequency);
                if (i == recorder.Count - 1)
                {
                    // The last interval also holds the answers that complete after the deadline.
                    await all;
                }
                while (!all.IsCompleted && Stopwatch.GetTimestamp() < due)
                {
                    await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(Math.Max(0.001, (due - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency)), CancellationToken.None));
                }
                double seconds = Math.Min(length, Math.Max(0, Stopwatch.GetElapsedTime(start).TotalSeconds - (i * length)));
                var snapshot = recorder.Snapshot(i, seconds);
                intervals.Add(snapshot);
                options.OnInterval?.Invoke(snapshot);
                if (all.IsCompleted && (i + 1) * length >= Stopwatch.GetElapsedTime(start).TotalSeconds)
                {
                    break; // stopped within this interval: the later ones saw nothing
                }
            }
        }
        await all;
        var elapsed = Stopwatch.GetElapsedTime(start);

        var exceptions = new long[256];
        var latency = new LatencyHistogram();
        long requests = 0, ok = 0, timeouts = 0, mismatched = 0, disconnects = 0, connectFailures = 0;
        foreach (var w in workers)
        {
            requests += w.Requests;
            ok += w.ResponsesOk;
            timeouts += w.Timeouts;
            mismatched += w.Mismatched;
            disconnects += w.Disconnects;
            connectFailures += w.ConnectFailures;
            for (int c = 0; c < 256; c++)
            {
                exceptions[c] += w.ExceptionsByCode[c];
            }
            latency.Add(w.Latency);
        }
        return new HmiResult(exceptions, latency)
        {
            Requests = requests,
            ResponsesOk = ok,
            Timeouts = timeouts,
            Mismatched = mismatched,
            Disconnects = disconnects,
            ConnectFailures = connectFailures,
            Elapsed = elapsed,
            Intervals = intervals,
        };
    }

    private sealed class Worker(IPEndPoint target, HmiOptions options, uint seed, IntervalRecorder? recorder)
    {
        private readonly byte[] _tx = new byte[ModbusLimits.MaxTcpAduLength * options.Pipeline];
        private readonly byte[] _rx = new byte[Math.Max(4096, ModbusLimits.MaxTcpAduLength * (options.Pipeline + 1))];
        private readonly ushort[] _tids = new ushort[options.Pipeline];
        private readonly long[] _sentAt = new long[options.Pipeline];
        private readonly ResponseExpectation[] _expected = new ResponseExpectation[options.Pipeline];
        private readonly int _totalWeight = options.ReadCoilsWeight + options.ReadHoldingWeight + options.ReadInputWeight
            + options.WriteSingleRegisterWeight + options.WriteMultipleRegistersWeight;
        private int _head;
        private int _inFlight;
        private uint _rng = seed | 1;
        private ushort _nextTid;

        public long Requests;
        public long ResponsesOk;
        public long Timeouts;
        public long Mismatched;
        public long Disconnects;
        public long ConnectFailures;
        public readonly long[] ExceptionsByCode = new long[256];
        public readonly LatencyHistogram Latency = new();

        public async Task RunAsync(long deadline, CancellationToken ct)
        {
            Socket? socket = null;
            var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            int buffered = 0;
            try
            {
                while (!ct.IsCancellationRequested && Stopwatch.GetTimestamp() < deadline)
                {
                    if (socket is null)
                    {
                        socket = await ConnectAsync(ct);
                        if (socket is null)
                        {
                            ConnectFailures++;
                            recorder?.Errors(Stopwatch.GetTimestamp(), 1);
                            await Task.Delay(50, ct);
                            continue;
                        }
                        buffered = 0;
                        _inFlight = 0;
                        _head = 0;
                    }

                    int txLength = 0;
                    while (_inFlight < _tids.Length)
                    {
                        txLength += BuildRequest(_tx.AsSpan(txLength));
                    }
                    bool alive = true;
                    try
                    {
                        if (txLength > 0)
                        {
                            await SendAllAsync(socket, _tx.AsMemory(0, txLength), ct);
                        }
                        timeout.CancelAfter(options.TimeoutMs);
                        int n = await socket.ReceiveAsync(_rx.AsMemory(buffered), SocketFlags.None, timeout.Token);
                        if (!timeout.TryReset())
                        {
                            timeout.Dispose();
                            timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                        }
                        if (n == 0)
                        {
                            Disconnects++;
                            recorder?.Errors(Stopwatch.GetTimestamp(), 1);
                            alive = false;
                        }
                        else
                        {
                            buffered += n;
                            alive = ConsumeResponses(ref buffered);
                        }
                    }
                    catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                    {
                        Timeouts += _inFlight;
                        recorder?.Errors(Stopwatch.GetTimestamp(), _inFlight);
                        timeout.Dispose();
                        timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                        alive = false;
                    }
                    catch (SocketException)
                    {
                        Disconnects++;
                        recorder?.Errors(Stopwatch.GetTimestamp(), 1);
                        alive = false;
                    }
                    if (!alive)
                    {
                        socket.Dispose();
                        socket = null;
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // The caller stopped the run.
            }
            finally
            {
                socket?.Dispose();
                timeout.Dispose();
            }
        }

        private async Task<Socket?> ConnectAsync(CancellationToken ct)
        {
            var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            connectTimeout.CancelAfter(options.TimeoutMs);
            try
            {
                await socket.ConnectAsync(target, connectTimeout.Token);
                return socket;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                socket.Dispose();
                ct.ThrowIfCancellationRequested();
                return null;
            }
        }

        private static async ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken ct)
        {
            while (!data.IsEmpty)
            {
                int sent = await socket.SendAsync(data, SocketFlags.None, ct);
                data = data[sent..];
            }
        }

        /// <summary>Checks every whole response in the receive buffer; false when the stream can no longer be trusted.</summary>
        private bool ConsumeResponses(ref int buffered)
        {
            int offset = 0;
            bool alive = true;
            while (_inFlight > 0)
            {
                var status = MbapFramer.TryReadFrame(_rx.AsSpan(offset, buffered - offset), out var frame, out int used, out _);
                if (status == OperationStatus.NeedMoreData)
                {
                    break;
                }
                if (status != OperationStatus.Done || frame.TransactionId != _tids[_head] || frame.UnitId != options.Unit)
                {
                    // Responses come back in order on one connection; a stranger means the stream is lost.
                    Mismatched += _inFlight;
                    recorder?.Errors(Stopwatch.GetTimestamp(), _inFlight);
                    _inFlight = 0;
                    alive = false;
                    break;
                }
                long now = Stopwatch.GetTimestamp();
                long micros = (now - _sentAt[_head]) * 1_000_000 / Stopwatch.Frequency;
                Latency.Record(micros);
                recorder?.Answered(now, micros);
                switch (ModbusPdu.CheckResponse(frame.Pdu, _expected[_head], out _))
                {
                    case ResponseStatus.Normal:
                        ResponsesOk++;
                        break;
                    case ResponseStatus.Exception:
                        ExceptionsByCode[frame.Pdu[1]]++;
                        break;
                    default:
                        Mismatched++;
                        recorder?.Errors(now, 1);
                        break;
                }
                offset += used;
                _head = (_head + 1) % _tids.Length;
                _inFlight--;
            }
            if (offset > 0)
            {
                Buffer.BlockCopy(_rx, offset, _rx, 0, buffered - offset);
                buffered -= offset;
            }
            return alive;
        }

        /// <summary>Writes one request ADU and records what its response must look like.</summary>
        private int BuildRequest(Span<byte> adu)
        {
            var pdu = adu[ModbusLimits.MbapHeaderLength..];
            int pick = (int)(Next() % (uint)_totalWeight);
            int pduLength;
            if ((pick -= options.ReadCoilsWeight) < 0)
            {
                pduLength = Read(pdu, 1);
            }
            else if ((pick -= options.ReadHoldingWeight) < 0)
            {
                pduLength = Read(pdu, 3);
            }
            else if ((pick -= options.ReadInputWeight) < 0)
            {
                pduLength = Read(pdu, 4);
            }
            else if ((pick -= options.WriteSingleRegisterWeight) < 0)
            {
                pdu[0] = 6;
                BinaryPrimitives.WriteUInt16BigEndian(pdu[1..], (ushort)(options.WriteStart + (int)(Next() % (uint)Math.Max(1, options.WriteRange))));
                BinaryPrimitives.WriteUInt16BigEndian(pdu[3..], (ushort)(Next() % 1001));
                pduLength = 5;
            }
            else
            {
                int quantity = Math.Min(options.WriteQuantity, Math.Max(1, options.WriteRange));
                pdu[0] = 16;
                BinaryPrimitives.WriteUInt16BigEndian(pdu[1..], (ushort)(options.WriteStart + (int)(Next() % (uint)Math.Max(1, options.WriteRange - quantity + 1))));
                BinaryPrimitives.WriteUInt16BigEndian(pdu[3..], (ushort)quantity);
                pdu[5] = (byte)(quantity * 2);
                for (int i = 0; i < quantity; i++)
                {
                    BinaryPrimitives.WriteUInt16BigEndian(pdu[(6 + (i * 2))..], (ushort)(Next() % 1001));
                }
                pduLength = 6 + (quantity * 2);
            }
            ushort tid = ++_nextTid;
            MbapFramer.WriteHeader(adu, tid, options.Unit, pduLength);
            int slot = (_head + _inFlight) % _tids.Length;
            _tids[slot] = tid;
            _expected[slot] = ModbusPdu.ParseRequest(pdu[..pduLength]).Expectation;
            _sentAt[slot] = Stopwatch.GetTimestamp();
            _inFlight++;
            Requests++;
            return ModbusLimits.MbapHeaderLength + pduLength;
        }

        private int Read(Span<byte> pdu, byte fc)
        {
            int quantity = fc == 1 ? Math.Min(options.ReadQuantity * 16, ModbusLimits.MaxReadBits) : options.ReadQuantity;
            quantity = Math.Min(quantity, Math.Max(1, options.ReadRange));
            pdu[0] = fc;
            BinaryPrimitives.WriteUInt16BigEndian(pdu[1..], (ushort)(options.ReadStart + (int)(Next() % (uint)Math.Max(1, options.ReadRange - quantity + 1))));
            BinaryPrimitives.WriteUInt16BigEndian(pdu[3..], (ushort)quantity);
            return 5;
        }

        private uint Next()
        {
            // xorshift32: deterministic per connection, allocation-free.
            uint x = _rng;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            return _rng = x;
        }
    }
}
