using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Simulators;

/// <summary>How the cases drive their connections.</summary>
public static partial class AttackSuite
{
    private static async Task<AttackCaseResult> OneShotAsync(IPEndPoint target, string name, byte[] bytes, AttackOptions options, CancellationToken ct, bool shutdownAfterSend = false)
    {
        using var probe = await Probe.ConnectAsync(target, options.ConnectTimeoutMs, ct, options.Source(0));
        if (probe is null)
        {
            return new AttackCaseResult(name, ProbeOutcome.ConnectFailed, 0) { ConnectFailed = 1 };
        }
        await probe.SendAsync(bytes, ct);
        if (shutdownAfterSend)
        {
            probe.ShutdownSend();
        }
        var (outcome, code) = await probe.ReadAnswerAsync(options.AnswerTimeoutMs, ct);
        return Tally(new AttackCaseResult(name, outcome, code), outcome);
    }

    private static AttackCaseResult Tally(AttackCaseResult result, ProbeOutcome outcome) => outcome switch
    {
        ProbeOutcome.Normal => result with { Normal = result.Normal + 1 },
        ProbeOutcome.Exception => result with { Exceptions = result.Exceptions + 1 },
        ProbeOutcome.ConnectionClosed or ProbeOutcome.Garbage => result with { Closed = result.Closed + 1 },
        ProbeOutcome.NoAnswer => result with { NoAnswer = result.NoAnswer + 1 },
        _ => result with { ConnectFailed = result.ConnectFailed + 1 },
    };

    /// <summary>Sends each frame and reads its answer, reconnecting when the target hangs up or stays silent.</summary>
    private static async Task<AttackCaseResult> SequenceAsync(IPEndPoint target, string name, List<byte[]> frames, AttackOptions options, CancellationToken ct)
    {
        var counts = new Counts();
        Probe? probe = null;
        bool truncated = false;
        try
        {
            foreach (var frame in frames)
            {
                if (ct.IsCancellationRequested || counts.ConnectFailed > 3)
                {
                    truncated = true;
                    break;
                }
                if (probe is null)
                {
                    probe = await Probe.ConnectAsync(target, options.ConnectTimeoutMs, ct, options.Source(counts.Connections));
                    counts.Connections++;
                    if (probe is null)
                    {
                        counts.Add(ProbeOutcome.ConnectFailed, 0);
                        continue;
                    }
                }
                await probe.SendAsync(frame, ct);
                counts.Sent++;
                var (outcome, code) = await probe.ReadAnswerAsync(options.AnswerTimeoutMs, ct);
                counts.Add(outcome, code);
                if (outcome is not (ProbeOutcome.Normal or ProbeOutcome.Exception))
                {
                    probe.Dispose();
                    probe = null;
                }
            }
        }
        catch (OperationCanceledException)
        {
            truncated = true;
        }
        finally
        {
            probe?.Dispose();
        }
        return counts.Result(name, truncated);
    }

    /// <summary>Sixteen connections, each sending 256 bytes of deterministic noise.</summary>
    private static async Task<AttackCaseResult> GarbageAsync(IPEndPoint target, string name, AttackOptions options, CancellationToken ct)
    {
        var counts = new Counts();
        uint rng = 0x9E3779B9;
        try
        {
            for (int i = 0; i < 16; i++)
            {
                var noise = new byte[256];
                for (int b = 0; b < noise.Length; b++)
                {
                    rng ^= rng << 13;
                    rng ^= rng >> 17;
                    rng ^= rng << 5;
                    noise[b] = (byte)rng;
                }
                using var probe = await Probe.ConnectAsync(target, options.ConnectTimeoutMs, ct, options.Source(i));
                counts.Connections++;
                if (probe is null)
                {
                    counts.Add(ProbeOutcome.ConnectFailed, 0);
                    continue;
                }
                await probe.SendAsync(noise, ct);
                counts.Sent++;
                var (outcome, code) = await probe.ReadAnswerAsync(options.AnswerTimeoutMs, ct);
                counts.Add(outcome, code);
            }
        }
        catch (OperationCanceledException)
        {
            return counts.Result(name, true);
        }
        return counts.Result(name, false);
    }

    /// <summary>
    /// Per round, eight FC 3 reads of 1..8 registers pipelined with one transaction id (alternately
    /// 0x4242 and 0xFFFF); each answer must carry that id and the byte count of the read it answers, in order.
    /// </summary>
    private static async Task<AttackCaseResult> TidCollisionAsync(IPEndPoint target, string name, AttackOptions options, CancellationToken ct)
    {
        const int PerRound = 8;
        var counts = new Counts();
        Probe? probe = null;
        bool truncated = false;
        try
        {
            for (int round = 0; round < options.TidCollisionRounds; round++)
            {
                if (counts.ConnectFailed > 3)
                {
                    truncated = true;
                    break;
                }
                if (probe is null)
                {
                    probe = await Probe.ConnectAsync(target, options.ConnectTimeoutMs, ct, options.Source(counts.Connections));
                    counts.Connections++;
                    if (probe is null)
                    {
                        counts.Add(ProbeOutcome.ConnectFailed, 0);
                        continue;
                    }
                }
                ushort tid = (round & 1) == 0 ? (ushort)0x4242 : (ushort)0xFFFF;
                var burst = new byte[PerRound * 12];
                for (int i = 0; i < PerRound; i++)
                {
                    AduWithTid(tid, options.Unit, 3, 0, (byte)(i * 10), 0, (byte)(i + 1)).CopyTo(burst, i * 12);
                }
                await probe.SendAsync(burst, ct);
                counts.Sent += PerRound;
                for (int i = 0; i < PerRound; i++)
                {
                    var (outcome, code) = await probe.ReadAnswerAsync(options.AnswerTimeoutMs, ct);
                    counts.Add(outcome, code);
                    if (outcome == ProbeOutcome.Normal && (probe.LastTransactionId != tid || probe.LastSecondByte != (i + 1) * 2))
                    {
                        counts.Mismatched++;
                    }
                    if (outcome is not (ProbeOutcome.Normal or ProbeOutcome.Exception))
                    {
                        probe.Dispose();
                        probe = null;
                        break;
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            truncated = true;
        }
        finally
        {
            probe?.Dispose();
        }
        return counts.Result(name, truncated);
    }

    /// <summary>An allowed read, then at once a response-shaped frame carrying the same transaction id.</summary>
    private static async Task<AttackCaseResult> InjectAfterRequestAsync(IPEndPoint target, string name, AttackOptions options, CancellationToken ct)
    {
        var counts = new Counts { Connections = 1 };
        using var probe = await Probe.ConnectAsync(target, options.ConnectTimeoutMs, ct, options.Source(0));
        if (probe is null)
        {
            counts.Add(ProbeOutcome.ConnectFailed, 0);
            return counts.Result(name, false);
        }
        byte[] both = [.. AduWithTid(7, options.Unit, 3, 0, 0, 0, 1), .. AduWithTid(7, options.Unit, 3, 2, 0x00, 0x2A)];
        await probe.SendAsync(both, ct);
        counts.Sent = 2;
        try
        {
            for (int i = 0; i < 2; i++)
            {
                var (outcome, code) = await probe.ReadAnswerAsync(options.AnswerTimeoutMs, ct);
                counts.Add(outcome, code);
                if (outcome is not (ProbeOutcome.Normal or ProbeOutcome.Exception))
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
            return counts.Result(name, true);
        }
        return counts.Result(name, false);
    }

    /// <summary>
    /// <see cref="AttackOptions.SlowlorisConnections"/> connections each drip FC 3 reads one byte per
    /// <see cref="AttackOptions.SlowlorisByteIntervalMs"/> for <see cref="AttackOptions.SlowlorisDuration"/>,
    /// then close with the last read unfinished. Answers are counted as they come.
    /// </summary>
    private static async Task<AttackCaseResult> SlowlorisAsync(IPEndPoint target, string name, AttackOptions options, CancellationToken ct)
    {
        int total = Math.Max(1, options.SlowlorisConnections);
        var counts = new Counts { Connections = total };
        var drips = new Task<(int Sent, int Answers, int Exceptions, bool Closed, bool ConnectFailed)>[total];
        long end = Stopwatch.GetTimestamp() + (long)(options.SlowlorisDuration.TotalSeconds * Stopwatch.Frequency);
        for (int i = 0; i < total; i++)
        {
            drips[i] = DripAsync(target, i, end, options, ct);
        }
        bool truncated = false;
        foreach (var (sent, answers, exceptions, closed, failed) in await Task.WhenAll(drips))
        {
            counts.Sent += sent;
            counts.AddMany(ProbeOutcome.Normal, answers);
            counts.AddMany(ProbeOutcome.Exception, exceptions);
            counts.AddMany(ProbeOutcome.NoAnswer, Math.Max(0, sent - answers - exceptions));
            if (closed)
            {
                counts.Add(ProbeOutcome.ConnectionClosed, 0);
            }
            if (failed)
            {
                counts.Add(ProbeOutcome.ConnectFailed, 0);
            }
        }
        truncated |= ct.IsCancellationRequested;
        return counts.Result(name, truncated);

        static async Task<(int, int, int, bool, bool)> DripAsync(IPEndPoint target, int index, long end, AttackOptions options, CancellationToken ct)
        {
            Probe? probe;
            try
            {
                probe = await Probe.ConnectAsync(target, options.ConnectTimeoutMs, ct, options.Source(index));
            }
            catch (OperationCanceledException)
            {
                return (0, 0, 0, false, true);
            }
            if (probe is null)
            {
                return (0, 0, 0, false, true);
            }
            using (probe)
            {
                using var stopReading = CancellationTokenSource.CreateLinkedTokenSource(ct);
                int answers = 0, exceptions = 0;
                var reader = Task.Run(async () =>
                {
                    try
                    {
                        while (true)
                        {
                            var (outcome, _) = await probe.ReadAnswerAsync(Timeout.Infinite, stopReading.Token);
                            if (outcome == ProbeOutcome.Normal)
                            {
                                answers++;
                            }
                            else if (outcome == ProbeOutcome.Exception)
                            {
                                exceptions++;
                            }
                            else
                            {
                                return;
                            }
                        }
                    }
                    catch (OperationCanceledException)
                    {
                    }
                }, CancellationToken.None);
                var frame = AduWithTid((ushort)(index + 1), options.Unit, 3, 0, (byte)index, 0, 1);
                int sent = 0;
                try
                {
                    for (int b = 0; Stopwatch.GetTimestamp() < end && !probe.Closed; b++)
                    {
                        if (!await probe.SendAsync(frame.AsMemory(b % frame.Length, 1), ct))
                        {
                            break;
                        }
                        if (b % frame.Length == frame.Length - 1)
                        {
                            sent++;
                        }
                        await Task.Delay(options.SlowlorisByteIntervalMs, ct);
                    }
                    // Give the last whole read its answer before hanging up mid-frame.
                    await Task.Delay(options.AnswerTimeoutMs, ct);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                }
                bool closed = probe.Closed;
                await stopReading.CancelAsync();
                await reader;
                return (sent, answers, exceptions, closed, false);
            }
        }
    }

    /// <summary>Writes <see cref="AttackOptions.BurstFrames"/> maximal FC 16 requests in one go, then reads what comes back.</summary>
    private static async Task<AttackCaseResult> BurstAsync(IPEndPoint target, string name, AttackOptions options, CancellationToken ct)
    {
        var counts = new Counts { Connections = 1 };
        bool truncated = false;
        using var probe = await Probe.ConnectAsync(target, options.ConnectTimeoutMs, ct, options.Source(0));
        if (probe is null)
        {
            counts.Add(ProbeOutcome.ConnectFailed, 0);
            return counts.Result(name, false);
        }
        int frames = Math.Max(1, options.BurstFrames);
        int pduLength = 6 + (ModbusLimits.MaxWriteRegisters * 2);
        int aduLength = ModbusLimits.MbapHeaderLength + pduLength;
        var burst = new byte[frames * aduLength];
        for (int i = 0; i < frames; i++)
        {
            var adu = burst.AsSpan(i * aduLength, aduLength);
            MbapFramer.WriteHeader(adu, (ushort)(i + 1), options.Unit, pduLength);
            adu[7] = 16;
            BinaryPrimitives.WriteUInt16BigEndian(adu[8..], 0);
            BinaryPrimitives.WriteUInt16BigEndian(adu[10..], ModbusLimits.MaxWriteRegisters);
            adu[12] = ModbusLimits.MaxWriteRegisters * 2;
        }
        counts.Sent = frames;
        try
        {
            var send = probe.SendAsync(burst, ct);
            for (int i = 0; i < frames; i++)
            {
                var (outcome, code) = await probe.ReadAnswerAsync(options.AnswerTimeoutMs, ct);
                counts.Add(outcome, code);
                if (outcome is not (ProbeOutcome.Normal or ProbeOutcome.Exception))
                {
                    break;
                }
            }
            probe.Dispose();
            await send;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            truncated = e is OperationCanceledException;
        }
        return counts.Result(name, truncated);
    }

    /// <summary>Opens <see cref="AttackOptions.FloodConnections"/> connections at once, sends one FC 3 on each, then closes them all.</summary>
    private static async Task<AttackCaseResult> FloodAsync(IPEndPoint target, string name, AttackOptions options, CancellationToken ct)
    {
        int total = Math.Max(1, options.FloodConnections);
        var probes = new Probe?[total];
        var counts = new Counts { Sent = total, Connections = total };
        bool truncated = false;
        try
        {
            await OpenAsync(target, probes, options, ct);
            byte[] read = Adu(options.Unit, 3, 0, 0, 0, 1);
            var answers = new Task<(ProbeOutcome, byte)>[total];
            for (int i = 0; i < total; i++)
            {
                answers[i] = probes[i] is { } p ? AskAsync(p, read, options.AnswerTimeoutMs, ct) : Task.FromResult((ProbeOutcome.ConnectFailed, (byte)0));
            }
            foreach (var (outcome, code) in await Task.WhenAll(answers))
            {
                counts.Add(outcome, code);
            }
        }
        catch (OperationCanceledException)
        {
            truncated = true;
        }
        finally
        {
            foreach (var probe in probes)
            {
                probe?.Dispose();
            }
        }
        return counts.Result(name, truncated);

        static async Task<(ProbeOutcome, byte)> AskAsync(Probe probe, byte[] request, int timeoutMs, CancellationToken ct)
        {
            await probe.SendAsync(request, ct);
            return await probe.ReadAnswerAsync(timeoutMs, ct);
        }
    }

    /// <summary>
    /// Opens <see cref="AttackOptions.HalfOpenConnections"/> connections that send nothing (every tenth
    /// sends 4 bytes of an MBAP header), holds them <see cref="AttackOptions.HalfOpenHoldMs"/>, then counts
    /// how many the target closed (Closed) and how many it still held (NoAnswer) before closing them all.
    /// </summary>
    private static async Task<AttackCaseResult> HalfOpenAsync(IPEndPoint target, string name, AttackOptions options, CancellationToken ct)
    {
        int total = Math.Max(1, options.HalfOpenConnections);
        var probes = new Probe?[total];
        var counts = new Counts { Connections = total };
        bool truncated = false;
        try
        {
            await OpenAsync(target, probes, options, ct);
            byte[] partial = [0x00, 0x09, 0x00, 0x00];
            for (int i = 9; i < total; i += 10)
            {
                if (probes[i] is { } p && await p.SendAsync(partial, ct))
                {
                    counts.Sent++;
                }
            }
            await Task.Delay(options.HalfOpenHoldMs, ct);
        }
        catch (OperationCanceledException)
        {
            truncated = true;
        }
        finally
        {
            foreach (var probe in probes)
            {
                counts.Add(probe is null ? ProbeOutcome.ConnectFailed : probe.PeerClosed() ? ProbeOutcome.ConnectionClosed : ProbeOutcome.NoAnswer, 0);
                probe?.Dispose();
            }
        }
        return counts.Result(name, truncated);
    }

    /// <summary>Connects every slot of <paramref name="probes"/>, 256 at a time (null where a connect failed).</summary>
    private static async Task OpenAsync(IPEndPoint target, Probe?[] probes, AttackOptions options, CancellationToken ct)
    {
        const int Batch = 256;
        for (int first = 0; first < probes.Length; first += Batch)
        {
            var connects = new Task<Probe?>[Math.Min(Batch, probes.Length - first)];
            for (int i = 0; i < connects.Length; i++)
            {
                connects[i] = Probe.ConnectAsync(target, options.ConnectTimeoutMs, ct, options.Source(first + i));
            }
            try
            {
                var opened = await Task.WhenAll(connects);
                opened.CopyTo(probes, first);
            }
            catch (OperationCanceledException)
            {
                for (int i = 0; i < connects.Length; i++)
                {
                    if (connects[i].IsCompletedSuccessfully)
                    {
                        probes[first + i] = connects[i].Result;
                    }
                }
                throw;
            }
        }
    }

    private sealed class Counts
    {
        public int Sent;
        public int Connections;
        public int Mismatched;
        private readonly int[] _byOutcome = new int[6];
        private readonly int[] _byCode = new int[256];

        public int ConnectFailed => _byOutcome[(int)ProbeOutcome.ConnectFailed];

        public void Add(ProbeOutcome outcome, byte code)
        {
            _byOutcome[(int)outcome]++;
            if (outcome == ProbeOutcome.Exception)
            {
                _byCode[code]++;
            }
        }

        public void AddMany(ProbeOutcome outcome, int count) => _byOutcome[(int)outcome] += count;

        public AttackCaseResult Result(string name, bool truncated)
        {
            int best = 0;
            for (int i = 1; i < _byOutcome.Length; i++)
            {
                if (_byOutcome[i] > _byOutcome[best])
                {
                    best = i;
                }
            }
            int code = 0;
            for (int i = 1; i < 256; i++)
            {
                if (_byCode[i] > _byCode[code])
                {
                    code = i;
                }
            }
            var outcome = (ProbeOutcome)best;
            return new AttackCaseResult(name, outcome, outcome == ProbeOutcome.Exception ? (byte)code : (byte)0)
            {
                Sent = Sent,
                Connections = Connections,
                Normal = _byOutcome[(int)ProbeOutcome.Normal],
                Exceptions = _byOutcome[(int)ProbeOutcome.Exception],
                Closed = _byOutcome[(int)ProbeOutcome.ConnectionClosed] + _byOutcome[(int)ProbeOutcome.Garbage],
                NoAnswer = _byOutcome[(int)ProbeOutcome.NoAnswer],
                ConnectFailed = _byOutcome[(int)ProbeOutcome.ConnectFailed],
                Mismatched = Mismatched,
                Truncated = truncated,
            };
        }
    }
}
