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
        };
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
        for (int i = 0; i < workers.Length; i++)
        {
            workers[i] = new Worker(target, options, (uint)(i + 1) * 2654435761u);
            var worker = workers[i];
            tasks[i] = Task.Run(() => worker.RunAsync(deadline, ct), CancellationToken.None);
        }
        await Task.WhenAll(tasks);
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
        };
    }

    private sealed class Worker(IPEndPoint target, HmiOptions options, uint seed)
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
                        timeout.Dispose();
                        timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                        alive = false;
                    }
                    catch (SocketException)
                    {
                        Disconnects++;
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
                    _inFlight = 0;
                    alive = false;
                    break;
                }
                long micros = (Stopwatch.GetTimestamp() - _sentAt[_head]) * 1_000_000 / Stopwatch.Frequency;
                Latency.Record(micros);
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
