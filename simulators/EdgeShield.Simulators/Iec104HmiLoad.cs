using System.Diagnostics;
using System.Net;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Simulators;

/// <summary>What an <see cref="Iec104HmiLoad"/> run does; weights are relative.</summary>
public sealed class Iec104HmiOptions
{
    public int Connections { get; init; } = 1;
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>The station's common address.</summary>
    public ushort CommonAddress { get; init; } = 1;
    /// <summary>Weight of select+execute pairs (C_SC_NA_1, C_DC_NA_1 alternately) at <see cref="CommandIoa"/>..+<see cref="CommandRange"/>-1.</summary>
    public int CommandWeight { get; init; } = 70;
    /// <summary>Weight of C_SE_NC_1 set-points (direct execute, values 0..<see cref="SetpointMax"/>) at <see cref="SetpointIoa"/>..+<see cref="SetpointRange"/>-1.</summary>
    public int SetpointWeight { get; init; } = 30;
    public uint CommandIoa { get; init; } = Iec104Points.CommandBase;
    public int CommandRange { get; init; } = 100;
    public uint SetpointIoa { get; init; } = Iec104Points.SetpointBase;
    public int SetpointRange { get; init; } = 10;
    public float SetpointMax { get; init; } = 100f;
    /// <summary>An actcon later than this counts as a timeout; the connection is then reopened.</summary>
    public int TimeoutMs { get; init; } = 2000;
}

/// <summary>
/// A SCADA master's command load on an IEC 104 station: N connections, each STARTDT and then one command
/// outstanding at a time — select+execute pairs of single and double commands, and float set-points — each waiting
/// for its actcon (the actterm and spontaneous reports that follow are acknowledged and skipped). Every command
/// counts as a request; a positive actcon is ok, a negative one an exception by cause (7, 44-47), no actcon in time a
/// timeout, an actcon of another type/IOA or a sequence error a mismatch. The result is the Modbus hmi's.
/// </summary>
public static class Iec104HmiLoad
{
    public static async Task<HmiResult> RunAsync(IPEndPoint target, Iec104HmiOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Connections, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.CommandRange, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.SetpointRange, 1);
        if (options.CommandWeight < 0 || options.SetpointWeight < 0 || options.CommandWeight + options.SetpointWeight <= 0)
        {
            throw new ArgumentException("the mix has no weight", nameof(options));
        }
        var workers = new Worker[options.Connections];
        var tasks = new Task[workers.Length];
        long start = Stopwatch.GetTimestamp();
        long deadline = start + (long)(options.Duration.TotalSeconds * Stopwatch.Frequency);
        for (int i = 0; i < workers.Length; i++)
        {
            var worker = workers[i] = new Worker(target, options, (uint)(i + 1) * 2654435761u, i);
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

    private sealed class Worker(IPEndPoint target, Iec104HmiOptions options, uint seed, int index)
    {
        private uint _rng = seed | 1;

        public long Requests;
        public long ResponsesOk;
        public long Timeouts;
        public long Mismatched;
        public long Disconnects;
        public long ConnectFailures;
        public readonly long[] ExceptionsByCode = new long[256];
        public readonly LatencyHistogram Latency = new();

        private enum Outcome
        {
            Positive,
            Negative,
            Timeout,
            Mismatch,
            Closed,
        }

        public async Task RunAsync(long deadline, CancellationToken ct)
        {
            Iec104Client? client = null;
            int round = 0;
            try
            {
                while (!ct.IsCancellationRequested && Stopwatch.GetTimestamp() < deadline)
                {
                    if (client is null)
                    {
                        client = await Iec104Client.ConnectAsync(target, options.TimeoutMs, ct);
                        if (client is null || !await client.StartAsync(options.TimeoutMs, ct))
                        {
                            client?.Dispose();
                            client = null;
                            ConnectFailures++;
                            await Task.Delay(50, ct);
                            continue;
                        }
                    }
                    bool setpoint = Next() % (uint)(options.CommandWeight + options.SetpointWeight) >= (uint)options.CommandWeight;
                    bool ended;
                    if (setpoint)
                    {
                        uint ioa = options.SetpointIoa + Next() % (uint)options.SetpointRange;
                        float value = (float)Math.Round(Next() % 10_000 / 10_000.0 * options.SetpointMax, 2);
                        ended = !await CommandAsync(client, Iec104Build.Asdu((byte)Iec104TypeId.C_SE_NC_1, Iec104Build.Activation, options.CommonAddress, ioa, Iec104Build.SetpointFloat(value, select: false)), ct);
                    }
                    else
                    {
                        // Select, then (only after a positive actcon) execute the same command; each worker has its own IOAs when it can.
                        uint ioa = options.CommandIoa + (uint)((index + (int)(Next() % 16) * options.Connections) % options.CommandRange);
                        bool dc = (round++ & 1) == 1;
                        byte type = dc ? (byte)Iec104TypeId.C_DC_NA_1 : (byte)Iec104TypeId.C_SC_NA_1;
                        int state = (int)(Next() % 2);
                        byte Qualifier(bool select) => dc ? Iec104Build.Dco(state + 1, select) : Iec104Build.Sco(state == 1, select);
                        var select = Iec104Build.Asdu(type, Iec104Build.Activation, options.CommonAddress, ioa, [Qualifier(true)]);
                        var outcome = await ExchangeAsync(client, select, ct);
                        ended = outcome is Outcome.Timeout or Outcome.Mismatch or Outcome.Closed;
                        if (outcome == Outcome.Positive && !ct.IsCancellationRequested)
                        {
                            ended = !await CommandAsync(client, Iec104Build.Asdu(type, Iec104Build.Activation, options.CommonAddress, ioa, [Qualifier(false)]), ct);
                        }
                    }
                    if (ended)
                    {
                        client.Dispose();
                        client = null;
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // The caller stopped the run.
            }
            finally
            {
                client?.Dispose();
            }
        }

        /// <summary>Sends one command and waits for its actcon; false when the connection must be reopened.</summary>
        private async Task<bool> CommandAsync(Iec104Client client, byte[] asdu, CancellationToken ct) =>
            await ExchangeAsync(client, asdu, ct) is Outcome.Positive or Outcome.Negative;

        private async Task<Outcome> ExchangeAsync(Iec104Client client, byte[] asdu, CancellationToken ct)
        {
            byte type = asdu[0];
            uint ioa = (uint)(asdu[6] | asdu[7] << 8 | asdu[8] << 16);
            Requests++;
            long sentAt = Stopwatch.GetTimestamp();
            int errorsBefore = client.SequenceErrors;
            if (!await client.SendAsduAsync(asdu, ct))
            {
                Disconnects++;
                return Outcome.Closed;
            }
            // The confirmation: the first ASDU with cause 7 or a negative one (spontaneous reports and the previous actterm are skipped).
            var answer = await client.WaitAsync(static r => r.Format == Iec104Format.I && (r.Cause == 7 || r.Negative), options.TimeoutMs, ct);
            if (answer is not { } r)
            {
                if (client.Closed)
                {
                    Disconnects++;
                    return Outcome.Closed;
                }
                Timeouts++;
                return Outcome.Timeout;
            }
            if (r.Type != type || r.Ioa != ioa || r.CommonAddress != options.CommonAddress || client.SequenceErrors != errorsBefore)
            {
                Mismatched++;
                return Outcome.Mismatch;
            }
            Latency.Record((Stopwatch.GetTimestamp() - sentAt) * 1_000_000 / Stopwatch.Frequency);
            if (r.Negative)
            {
                ExceptionsByCode[r.Cause]++;
                return Outcome.Negative;
            }
            ResponsesOk++;
            return Outcome.Positive;
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
