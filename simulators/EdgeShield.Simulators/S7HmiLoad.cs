using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Simulators;

/// <summary>What an <see cref="S7HmiLoad"/> run does; weights are relative.</summary>
public sealed class S7HmiOptions
{
    public int Connections { get; init; } = 1;
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(5);
    public int ReadWeight { get; init; } = 80;
    public int WriteWeight { get; init; } = 20;
    /// <summary>The DB read and written.</summary>
    public int Db { get; init; } = 1;
    /// <summary>Reads of <see cref="ReadBytes"/> bytes start anywhere in ReadStart..ReadStart+ReadRange-ReadBytes.</summary>
    public int ReadStart { get; init; }
    public int ReadRange { get; init; } = 200;
    public int ReadBytes { get; init; } = 20;
    /// <summary>Writes of <see cref="WriteBytes"/> bytes (big-endian words 0..1000) land in WriteStart..WriteStart+WriteRange-1.</summary>
    public int WriteStart { get; init; } = 100;
    public int WriteRange { get; init; } = 20;
    public int WriteBytes { get; init; } = 4;
    /// <summary>The called TSAP's connection type: 2 (OP, what HMIs open) by default; 1 PG, 3 basic.</summary>
    public byte ConnectionType { get; init; } = 2;
    public byte Rack { get; init; }
    public byte Slot { get; init; } = 2;
    /// <summary>The PDU size asked for in setup-communication.</summary>
    public int PduSize { get; init; } = 480;
    /// <summary>An answer later than this counts as a timeout; the connection is then reopened.</summary>
    public int TimeoutMs { get; init; } = 2000;
}

/// <summary>
/// An S7 HMI's load: N ISO-on-TCP connections (COTP connect, setup-communication), each with one job
/// outstanding, a weighted mix of read-var (one item of a DB, 20 bytes by default) and write-var jobs, every
/// answer checked with <see cref="S7Pdu.CheckResponse"/>. Item return codes other than FF and negative
/// Ack_Data count as exceptions by code (item return codes 01..0A; header error classes 81..87, D2).
/// </summary>
public static class S7HmiLoad
{
    public static async Task<HmiResult> RunAsync(IPEndPoint target, S7HmiOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Connections, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ReadBytes, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.WriteBytes, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.PduSize, 240);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.PduSize, 960);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.ReadBytes, options.PduSize - 18);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.WriteBytes, options.PduSize - 28);
        if (options.ReadWeight + options.WriteWeight <= 0 || options.ReadWeight < 0 || options.WriteWeight < 0)
        {
            throw new ArgumentException("the mix has no weight", nameof(options));
        }
        var workers = new Worker[options.Connections];
        var tasks = new Task[workers.Length];
        long start = Stopwatch.GetTimestamp();
        long deadline = start + (long)(options.Duration.TotalSeconds * Stopwatch.Frequency);
        for (int i = 0; i < workers.Length; i++)
        {
            var worker = workers[i] = new Worker(target, options, (uint)(i + 1) * 2654435761u);
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

    private sealed class Worker(IPEndPoint target, S7HmiOptions options, uint seed)
    {
        private readonly byte[] _tx = new byte[4096];
        private readonly byte[] _pdu = new byte[1024];
        private readonly byte[] _rx = new byte[16 * 1024];
        private readonly CotpReassembler _reassembler = new(new byte[1024], 1024);
        private int _buffered;
        private int _pduSize;
        private int _tpduSize;
        private ushort _reference;
        private uint _rng = seed | 1;

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
                    }
                    var expected = BuildJob(out int length);
                    long sentAt = Stopwatch.GetTimestamp();
                    Requests++;
                    var outcome = await ExchangeAsync(socket, length, expected, ct);
                    if (outcome == Outcome.Answered)
                    {
                        long micros = (Stopwatch.GetTimestamp() - sentAt) * 1_000_000 / Stopwatch.Frequency;
                        Latency.Record(micros);
                        Judge(expected);
                        continue;
                    }
                    switch (outcome)
                    {
                        case Outcome.Timeout:
                            Timeouts++;
                            break;
                        case Outcome.Mismatch:
                            Mismatched++;
                            break;
                        default:
                            Disconnects++;
                            break;
                    }
                    socket.Dispose();
                    socket = null;
                }
            }
            catch (OperationCanceledException)
            {
                // The caller stopped the run.
            }
            finally
            {
                socket?.Dispose();
            }
        }

        private enum Outcome
        {
            Answered,
            Timeout,
            Mismatch,
            Closed,
        }

        /// <summary>TCP connect, COTP CR → CC, setup-communication; null when any step fails.</summary>
        private async Task<Socket?> ConnectAsync(CancellationToken ct)
        {
            var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(options.TimeoutMs);
            try
            {
                await socket.ConnectAsync(target, timeout.Token);
                _buffered = 0;
                _reassembler.Reset();
                _reassembler.MaxPduSize = 1024;
                _tpduSize = 1024;
                // CR: | 03 00 0016 | 11 E0 0000 0001 00 | C0 01 0A | C1 02 0100 | C2 02 TT RS |
                byte[] cr = [0x03, 0x00, 0x00, 0x16, 0x11, 0xE0, 0x00, 0x00, 0x00, 0x01, 0x00, 0xC0, 0x01, 0x0A, 0xC1, 0x02, 0x01, 0x00,
                    0xC2, 0x02, options.ConnectionType, (byte)((options.Rack * 32) + options.Slot)];
                await socket.SendAsync(cr, SocketFlags.None, timeout.Token);
                if (!await ReceiveConfirmAsync(socket, timeout.Token))
                {
                    socket.Dispose();
                    return null;
                }
                // Setup communication: AmQ 1/1 (one job outstanding), the PDU size asked for.
                var p = _pdu.AsSpan();
                WriteJobHeader(p, ++_reference, S7Limits.SetupParameterLength, 0);
                p[10] = S7Functions.SetupCommunication;
                p[11] = 0;
                BinaryPrimitives.WriteUInt16BigEndian(p[12..], 1);
                BinaryPrimitives.WriteUInt16BigEndian(p[14..], 1);
                BinaryPrimitives.WriteUInt16BigEndian(p[16..], (ushort)options.PduSize);
                var setup = S7Pdu.ParseRequest(p[..18]).Expectation(options.PduSize);
                _pduSize = options.PduSize;
                var outcome = await ExchangeAsync(socket, 18, setup, timeout.Token);
                if (outcome != Outcome.Answered || _pdu[S7Limits.AckHeaderLength - 2] != 0 || _pdu[S7Limits.AckHeaderLength - 1] != 0)
                {
                    socket.Dispose();
                    return null;
                }
                _pduSize = BinaryPrimitives.ReadUInt16BigEndian(_pdu.AsSpan(S7Limits.AckHeaderLength + 6));
                _reassembler.MaxPduSize = Math.Min(_pduSize, 1024);
                return socket;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                socket.Dispose();
                ct.ThrowIfCancellationRequested();
                return null;
            }
        }

        private async Task<bool> ReceiveConfirmAsync(Socket socket, CancellationToken ct)
        {
            while (true)
            {
                var status = TpktFramer.TryReadFrame(_rx.AsSpan(0, _buffered), out var tpdu, out int used, out _);
                if (status == OperationStatus.Done)
                {
                    bool confirmed = tpdu.Type == CotpTpduType.ConnectionConfirm;
                    if (confirmed && tpdu.TpduSize != 0)
                    {
                        _tpduSize = tpdu.TpduSize;
                    }
                    Consume(used);
                    return confirmed;
                }
                if (status == OperationStatus.InvalidData)
                {
                    return false;
                }
                int n = await socket.ReceiveAsync(_rx.AsMemory(_buffered), SocketFlags.None, ct);
                if (n == 0)
                {
                    return false;
                }
                _buffered += n;
            }
        }

        private void Consume(int used)
        {
            Buffer.BlockCopy(_rx, used, _rx, 0, _buffered - used);
            _buffered -= used;
        }

        /// <summary>Sends the job in <see cref="_pdu"/> and waits for its answer; the answer is left in <see cref="_pdu"/>.</summary>
        private async Task<Outcome> ExchangeAsync(Socket socket, int length, S7Expectation expected, CancellationToken ct)
        {
            int txLength = CotpWriter.WriteData(_tx, _pdu.AsSpan(0, length), _tpduSize);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(options.TimeoutMs);
            try
            {
                var data = _tx.AsMemory(0, txLength);
                while (!data.IsEmpty)
                {
                    int sent = await socket.SendAsync(data, SocketFlags.None, timeout.Token);
                    data = data[sent..];
                }
                while (true)
                {
                    var answer = TryTakeAnswer(expected);
                    if (answer is { } done)
                    {
                        return done;
                    }
                    int n = await socket.ReceiveAsync(_rx.AsMemory(_buffered), SocketFlags.None, timeout.Token);
                    if (n == 0)
                    {
                        return Outcome.Closed;
                    }
                    _buffered += n;
                }
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                return Outcome.Timeout;
            }
            catch (SocketException)
            {
                return Outcome.Closed;
            }
        }

        /// <summary>Frames what was received; an answer when a whole PDU arrived (or the stream broke), else null.</summary>
        private Outcome? TryTakeAnswer(in S7Expectation expected)
        {
            while (true)
            {
                var status = TpktFramer.TryReadFrame(_rx.AsSpan(0, _buffered), out var tpdu, out int used, out _);
                if (status == OperationStatus.NeedMoreData)
                {
                    return _buffered == _rx.Length ? Outcome.Mismatch : null;
                }
                if (status != OperationStatus.Done)
                {
                    return Outcome.Mismatch;
                }
                if (tpdu.Type != CotpTpduType.Data)
                {
                    Consume(used);
                    return Outcome.Closed; // DR or ER: the connection is over
                }
                var assembled = _reassembler.Append(tpdu, out var pdu, out _);
                if (assembled == OperationStatus.InvalidData)
                {
                    Consume(used);
                    return Outcome.Mismatch;
                }
                if (assembled == OperationStatus.Done)
                {
                    if (pdu.Length > _pdu.Length)
                    {
                        Consume(used);
                        return Outcome.Mismatch;
                    }
                    pdu.CopyTo(_pdu);
                    int length = pdu.Length;
                    Consume(used);
                    _answerLength = length;
                    var check = S7Pdu.CheckResponse(_pdu.AsSpan(0, length), expected, out _);
                    return check == S7ResponseStatus.Mismatch ? Outcome.Mismatch : Outcome.Answered;
                }
                Consume(used);
            }
        }

        private int _answerLength;

        /// <summary>Counts an answer that passed the check as ok or as exceptions by code.</summary>
        private void Judge(in S7Expectation expected)
        {
            var header = S7Pdu.ParseHeader(_pdu.AsSpan(0, _answerLength));
            if (header.ErrorClass != 0)
            {
                ExceptionsByCode[header.ErrorClass]++;
                return;
            }
            var data = header.Data;
            byte code = data.Length > 0 ? data[0] : (byte)0;
            if (code == S7Items.ReturnSuccess)
            {
                ResponsesOk++;
            }
            else
            {
                ExceptionsByCode[code]++;
            }
        }

        /// <summary>Writes a read-var or write-var job with one DB item into <see cref="_pdu"/>.</summary>
        private S7Expectation BuildJob(out int length)
        {
            var p = _pdu.AsSpan();
            bool write = Next() % (uint)(options.ReadWeight + options.WriteWeight) >= (uint)options.ReadWeight;
            int bytes = write ? Math.Min(options.WriteBytes, Math.Max(1, options.WriteRange)) : Math.Min(options.ReadBytes, Math.Max(1, options.ReadRange));
            int range = write ? options.WriteRange : options.ReadRange;
            int start = (write ? options.WriteStart : options.ReadStart) + (int)(Next() % (uint)Math.Max(1, range - bytes + 1));
            int dataLength = write ? S7Limits.DataItemHeaderLength + bytes : 0;
            WriteJobHeader(p, ++_reference, 14, dataLength);
            // | 04/05 | 01 | 12 0A 10 | 02 (byte) | count (2) | DB (2) | 84 | address (3) |
            p[10] = write ? S7Functions.WriteVar : S7Functions.ReadVar;
            p[11] = 1;
            p[12] = S7Items.VariableSpecification;
            p[13] = 0x0A;
            p[14] = S7Items.SyntaxIdS7Any;
            p[15] = 0x02;
            BinaryPrimitives.WriteUInt16BigEndian(p[16..], (ushort)bytes);
            BinaryPrimitives.WriteUInt16BigEndian(p[18..], (ushort)options.Db);
            p[20] = 0x84;
            int address = start * 8;
            p[21] = (byte)(address >> 16);
            p[22] = (byte)(address >> 8);
            p[23] = (byte)address;
            length = 24;
            if (write)
            {
                // | 00 | 04 (byte/word/dword, length in bits) | bits (2) | data |
                p[24] = 0;
                p[25] = 0x04;
                BinaryPrimitives.WriteUInt16BigEndian(p[26..], (ushort)(bytes * 8));
                for (int i = 0; i < bytes; i += 2)
                {
                    ushort value = (ushort)(Next() % 1001);
                    p[28 + i] = (byte)(value >> 8);
                    if (i + 1 < bytes)
                    {
                        p[29 + i] = (byte)value;
                    }
                }
                length += S7Limits.DataItemHeaderLength + bytes;
            }
            return S7Pdu.ParseRequest(p[..length]).Expectation(_pduSize);
        }

        private static void WriteJobHeader(Span<byte> p, ushort reference, int parameterLength, int dataLength)
        {
            p[0] = S7Limits.ProtocolId;
            p[1] = (byte)S7Rosctr.Job;
            p[2] = 0;
            p[3] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(p[4..], reference);
            BinaryPrimitives.WriteUInt16BigEndian(p[6..], (ushort)parameterLength);
            BinaryPrimitives.WriteUInt16BigEndian(p[8..], (ushort)dataLength);
        }

        private uint Next()
        {
            uint x = _rng;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            return _rng = x;
        }
    }
}
