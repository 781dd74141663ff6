using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Policy;
using EdgeShield.Simulators;
using EdgeShield.Telemetry;
using EdgeShield.Transport;

/// <summary>
/// A real broker outage: poll --tags holding registers every --every-ms into Mosquitto, stop the broker
/// for --outage seconds while polling goes on into the disk buffer, start it again, and time the drain
/// (messages acknowledged from the reconnect until the backlog is gone, live polling continuing). An
/// independent consumer — mosquitto_sub with a persistent session on the same broker — receives every
/// telemetry message; at the end every seq from 0 to the last one polled must have arrived exactly once,
/// in order. The broker is stopped with SIGTERM (as `systemctl stop` does) and keeps its sessions in its
/// persistence file. Mosquitto 2.0.11 was seen to acknowledge messages and then, after the restart, not
/// deliver those that were still queued for a subscriber that lagged at the stop; such seqs (between the
/// consumer's position and the broker's acknowledgements at the stop) are reported apart, as the broker's.
/// Everything EdgeShield is responsible for — what the broker had not acknowledged — must arrive.
/// </summary>
internal static class Outage
{
    public static async Task<int> RunAsync(int outageSeconds, int tagCount, int everyMs, int warmSeconds)
    {
        int port;
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            port = ((IPEndPoint)probe.LocalEndPoint!).Port;
        }
        string dir = Path.Combine(Path.GetTempPath(), "es-telemetry-outage-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        string conf = Path.Combine(dir, "mosquitto.conf");
        File.WriteAllText(conf, $"""
            listener {port} 127.0.0.1
            allow_anonymous true
            max_queued_messages 0
            max_queued_bytes 0
            max_inflight_messages 0
            persistence true
            persistence_location {dir}/
            autosave_interval 3600
            """);
        var broker = StartBroker(conf);
        var consumer = new Consumer(port, Path.Combine(dir, "consumer.txt"));
        try
        {
            await consumer.WaitSubscribedAsync(port);
            await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
            var tags = Enumerable.Range(0, tagCount).Select(i => new TagConfig { Name = "t" + i, Table = TagTable.Holding, Address = (ushort)i, Type = TagType.UInt16 }).ToArray();
            var config = new TelemetryConfig
            {
                Mqtt = new MqttConfig { Broker = new Uri($"mqtt://127.0.0.1:{port}"), ClientId = "bench", TopicPrefix = "bench" },
                Buffer = new BufferConfig { Path = Path.Combine(dir, "buffer"), MaxMb = 1024 },
                Poll = [new PollConfig { Device = "plc1", Upstream = new UpstreamAddress("tcp", "127.0.0.1", plc.Port), Every = TimeSpan.FromMilliseconds(everyMs), Tags = tags }],
            };
            var upstream = new TcpUpstream("127.0.0.1", plc.Port, TimeSpan.FromSeconds(3));
            long lastSeq, ackedAtStop, consumerAtStop;
            await using (var service = new TelemetryService(config, "bench", "lab", _ => upstream, _ => { }, TimeSpan.FromSeconds(1)))
            {
                service.Start();
                var run = Stopwatch.StartNew();
                await Task.Delay(TimeSpan.FromSeconds(warmSeconds));
                Console.WriteLine(Invariant($"live: {tagCount} tags every {everyMs} ms, {service.ValuesPolled / run.Elapsed.TotalSeconds:F0} values/s polled, {service.Published} acknowledged"));

                // Outage.
                Signal(broker, "TERM");
                await broker.WaitForExitAsync();
                var outage = Stopwatch.StartNew();
                long valuesAtStop = service.ValuesPolled;
                // Everything the broker acknowledged (PUBACK) before it exited is in this count (status and event
                // messages included, so it bounds the last acknowledged seq from above); where the consumer was then.
                ackedAtStop = service.Published;
                await Task.Delay(500);
                consumerAtStop = consumer.LastSeq();
                Console.WriteLine(Invariant($"stop: broker exited at about seq {valuesAtStop}; {ackedAtStop} messages acknowledged by then; the consumer had received up to seq {consumerAtStop}"));
                await Task.Delay(TimeSpan.FromSeconds(outageSeconds));
                long valuesInOutage = service.ValuesPolled - valuesAtStop;
                Console.WriteLine(Invariant($"outage: broker stopped {outage.Elapsed.TotalSeconds:F1} s; {valuesInOutage} values polled meanwhile ({valuesInOutage / outage.Elapsed.TotalSeconds:F0}/s), backlog {service.PendingBytes / 1e6:F1} MB on disk, connected={service.BrokerConnected}"));

                // Back: time from the reconnect until the publisher has caught up with live polling.
                broker = StartBroker(conf);
                var sinceRestart = Stopwatch.StartNew();
                while (!service.BrokerConnected)
                {
                    await Task.Delay(5);
                }
                var drain = Stopwatch.StartNew();
                long published0 = service.Published;
                long backlogMessages = service.ValuesPolled - published0;
                long backlogBytes = service.PendingBytes;
                Console.WriteLine(Invariant($"reconnect: {sinceRestart.Elapsed.TotalSeconds:F1} s after the restart; backlog ≈ {backlogMessages} messages, {backlogBytes / 1e6:F1} MB"));
                // Caught up: less than one poll cycle's bytes waiting.
                long cycleBytes = tagCount * 120L;
                while (service.PendingBytes > cycleBytes && drain.Elapsed < TimeSpan.FromMinutes(10))
                {
                    await Task.Delay(10);
                }
                double seconds = drain.Elapsed.TotalSeconds;
                long drained = service.Published - published0;
                Console.WriteLine(Invariant($"drain: {drained} messages acknowledged in {seconds:F2} s from the reconnect until the backlog was empty (live polling continued): {drained / seconds:F0} messages/s; the backlog alone at {backlogMessages / seconds:F0} messages/s"));

                await service.StopPollingAsync();
                lastSeq = service.ValuesPolled - 1;
                var settle = Stopwatch.StartNew();
                while (service.PendingBytes > 0 && settle.Elapsed < TimeSpan.FromMinutes(2))
                {
                    await Task.Delay(20);
                }
            }

            // The independent consumer's verdict.
            await consumer.WaitQuietAsync(TimeSpan.FromMinutes(3));
            var verdict = consumer.Check(lastSeq, brokerFrom: consumerAtStop + 1, brokerTo: ackedAtStop - 1);
            Console.WriteLine(Invariant($"consumer (mosquitto_sub, persistent session, QoS 1): {consumer.Received} messages, seq 0..{lastSeq}: missing {verdict.Missing}, duplicates {verdict.Duplicates}, out of order {verdict.OutOfOrder}, beyond {verdict.Beyond}"));
            if (verdict.BrokerLost > 0)
            {
                // Acknowledged (PUBACK) by Mosquitto before it stopped, queued for the subscriber and not
                // delivered after its restart: the broker's store, not EdgeShield's (whose duty ends at PUBACK).
                Console.WriteLine(Invariant($"broker-side: {verdict.BrokerLost} of the missing seqs lie between the consumer's position at the stop ({consumerAtStop}) and what Mosquitto had acknowledged ({ackedAtStop}): Mosquitto acknowledged them and did not deliver them to its persistent subscriber after the restart"));
            }
            bool ok = verdict.Missing == verdict.BrokerLost && verdict.Duplicates == 0 && verdict.OutOfOrder == 0 && verdict.Beyond == 0;
            Console.WriteLine(ok
                ? (verdict.BrokerLost == 0 ? "outage: ok — every seq arrived exactly once, in order" : "outage: ok for EdgeShield — every seq it was responsible for (not acknowledged by the broker at the stop) arrived exactly once, in order")
                : "outage: FAILED");
            return ok ? 0 : 1;
        }
        finally
        {
            consumer.Dispose();
            if (!broker.HasExited)
            {
                broker.Kill();
                broker.WaitForExit();
            }
            Directory.Delete(dir, recursive: true);
        }
    }

    private static Process StartBroker(string conf)
    {
        var broker = Process.Start(new ProcessStartInfo("mosquitto", ["-c", conf]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        broker.ErrorDataReceived += static (_, _) => { };
        broker.OutputDataReceived += static (_, _) => { };
        broker.BeginErrorReadLine();
        broker.BeginOutputReadLine();
        return broker;
    }

    private static void Signal(Process process, string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, process.Id.ToString(CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// mosquitto_sub on bench/#, persistent session (-c), QoS 1, writing "topic payload" lines to a file
    /// (so this process spends nothing on it while it publishes); the file is checked at the end.
    /// </summary>
    private sealed class Consumer : IDisposable
    {
        private readonly Process _process;
        private readonly string _file;
        private readonly List<long> _seqs = [];

        public Consumer(int port, string file)
        {
            _file = file;
            _process = Process.Start(new ProcessStartInfo("sh",
                ["-c", $"exec stdbuf -oL mosquitto_sub -h 127.0.0.1 -p {port.ToString(CultureInfo.InvariantCulture)} -t 'bench/#' -q 1 -c -i es-bench-consumer -v > '{file}'"])
            {
                RedirectStandardError = true,
            })!;
            _process.ErrorDataReceived += static (_, _) => { };
            _process.BeginErrorReadLine();
        }

        public long Received => _seqs.Count;

        public async Task WaitSubscribedAsync(int port)
        {
            for (int i = 0; i < 100; i++)
            {
                using var pub = Process.Start("mosquitto_pub", ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-t", "bench/probe", "-m", "x"])!;
                await pub.WaitForExitAsync();
                await Task.Delay(100);
                if (File.Exists(_file) && new FileInfo(_file).Length > 0)
                {
                    return;
                }
            }
            throw new TimeoutException("mosquitto_sub did not receive the probe");
        }

        /// <summary>Waits until the file has stopped growing for 2 s (at most <paramref name="limit"/>).</summary>
        public async Task WaitQuietAsync(TimeSpan limit)
        {
            var total = Stopwatch.StartNew();
            long size = -1;
            var still = Stopwatch.StartNew();
            while (total.Elapsed < limit && still.Elapsed < TimeSpan.FromSeconds(2))
            {
                long now = new FileInfo(_file).Length;
                if (now != size)
                {
                    size = now;
                    still.Restart();
                }
                await Task.Delay(100);
            }
        }

        /// <summary>The last telemetry seq in the consumer's file so far (-1 when none).</summary>
        public long LastSeq()
        {
            long last = -1;
            foreach (string line in File.ReadLines(_file))
            {
                if (line.StartsWith("bench/plc1/", StringComparison.Ordinal) && line.EndsWith('}'))
                {
                    last = Seq(line);
                }
            }
            return last;
        }

        private static long Seq(string line)
        {
            int at = line.IndexOf("\"seq\":", StringComparison.Ordinal);
            long seq = 0;
            for (int i = at + 6; i < line.Length && char.IsAsciiDigit(line[i]); i++)
            {
                seq = (seq * 10) + (line[i] - '0');
            }
            return seq;
        }

        /// <summary>
        /// Missing seqs (and how many of them lie in [<paramref name="brokerFrom"/>, <paramref name="brokerTo"/>], the
        /// range the broker had acknowledged but not delivered when it stopped), repeats, seqs that arrived after a
        /// higher one (out of order), and seqs beyond the last one polled.
        /// </summary>
        public (long Missing, long BrokerLost, long Duplicates, long OutOfOrder, long Beyond) Check(long lastSeq, long brokerFrom, long brokerTo)
        {
            foreach (string line in File.ReadLines(_file))
            {
                if (line.StartsWith("bench/plc1/", StringComparison.Ordinal))
                {
                    _seqs.Add(Seq(line));
                }
            }
            var seen = new bool[lastSeq + 1];
            long duplicates = 0, outOfOrder = 0, beyond = 0, highest = -1;
            foreach (long seq in _seqs)
            {
                if (seq > lastSeq)
                {
                    beyond++;
                    continue;
                }
                if (seen[seq])
                {
                    duplicates++;
                    continue;
                }
                seen[seq] = true;
                if (seq < highest)
                {
                    outOfOrder++;
                }
                highest = Math.Max(highest, seq);
            }
            long missing = 0, brokerLost = 0;
            var ranges = new List<string>();
            for (long i = 0; i <= lastSeq; i++)
            {
                if (!seen[i])
                {
                    long from = i;
                    while (i < lastSeq && !seen[i + 1])
                    {
                        i++;
                    }
                    missing += i - from + 1;
                    for (long k = from; k <= i; k++)
                    {
                        brokerLost += k >= brokerFrom && k <= brokerTo ? 1 : 0;
                    }
                    ranges.Add(from == i ? Invariant($"{from}") : Invariant($"{from}-{i}"));
                }
            }
            if (ranges.Count > 0)
            {
                Console.WriteLine("missing seqs: " + string.Join(", ", ranges.Take(20)));
            }
            return (missing, brokerLost, duplicates, outOfOrder, beyond);
        }

        public void Dispose()
        {
            try
            {
                _process.Kill();
                _process.WaitForExit();
            }
            catch (InvalidOperationException)
            {
            }
            _process.Dispose();
        }
    }
}
