using System.Collections.Concurrent;
using System.Net;
using EdgeShield.Simulators;

namespace EdgeShield.Telemetry.Tests;

/// <summary>The faults at the level of the whole service (the log's own tests cover its mechanics).</summary>
public class FaultTests
{
    private static string Yaml(int plcPort, int brokerPort, string buffer, int tags, int maxMb = 8)
    {
        var lines = string.Join("\n", Enumerable.Range(0, tags).Select(i => $"            - {{ name: t{i}, table: holding, address: {i} }}"));
        return $$"""
            gateway: { name: gw1, site: site1 }
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:{{brokerPort}}, client-id: f1, topic-prefix: es/f }
              buffer: { path: {{buffer}}, max-mb: {{maxMb}} }
              poll:
                - device: plc1
                  upstream: tcp://127.0.0.1:{{plcPort}}
                  every: 50ms
                  tags:
            {{lines}}
            """;
    }

    private static List<(long Seq, string Payload)> Telemetry(IEnumerable<(string Topic, byte[] Payload, bool Retain)> received) =>
        [.. received.Where(m => m.Topic.StartsWith("es/f/plc1/", StringComparison.Ordinal))
            .Select(m => (TestConfig.Json(m.Payload).GetProperty("seq").GetInt64(), m.Topic + " " + System.Text.Encoding.UTF8.GetString(m.Payload)))];

    private static IEnumerable<string> EventReasons(IEnumerable<(string Topic, byte[] Payload, bool Retain)> received) =>
        received.Where(m => m.Topic == "es/f/events").Select(m => TestConfig.Json(m.Payload)).Where(e => e.TryGetProperty("reason", out _)).Select(e => e.GetProperty("reason").GetString()!);

    /// <summary>
    /// The broker goes away in the middle of a replay, with hundreds of publishes in flight, and comes
    /// back: every seq reaches it, in order; the only repeats are of messages it had not acknowledged,
    /// and they are byte for byte the same message (at least once, deduplicated by seq).
    /// </summary>
    [Fact]
    public async Task BrokerDiesMidPublish_NothingLost_RepeatsAreIdentical_AndInOrder()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
        int port = Ports.Free();
        var received = new List<(string, byte[], bool)>();
        await using var service = TestConfig.Service(TestConfig.Load(Yaml(plc.Port, port, TestConfig.TempDir(), tags: 100)));
        service.Start();
        // A backlog first, so that the broker dies while a window of publishes is in flight.
        await TestConfig.Until(() => service.ValuesPolled >= 6000);
        var first = await EmbeddedBroker.StartAsync(port);
        await TestConfig.Until(() => Telemetry(first.Received).Count >= 1000);
        await first.DisposeAsync();
        long publishedAtDeath = service.Published;
        received.AddRange(first.Received);
        Assert.True(service.PendingBytes > 0, "the broker must die with a backlog left");

        await Task.Delay(500);
        var second = await EmbeddedBroker.StartAsync(port);
        await using (second)
        {
            await TestConfig.Until(() => service.BrokerConnected && service.PendingBytes == 0 && service.Published > publishedAtDeath, 60);
            await service.StopPollingAsync();
            await TestConfig.Until(() => service.PendingBytes == 0, 30);
            long last = service.ValuesPolled - 1;
            await TestConfig.Until(() => Telemetry(second.Received).Any(m => m.Seq == last), 30);
            received.AddRange(second.Received);
        }

        var all = Telemetry(received);
        var firstSeen = new Dictionary<long, string>();
        var order = new List<long>();
        foreach (var (seq, payload) in all)
        {
            if (firstSeen.TryGetValue(seq, out var earlier))
            {
                Assert.Equal(earlier, payload);
                continue;
            }
            firstSeen.Add(seq, payload);
            order.Add(seq);
        }
        Assert.Equal(Enumerable.Range(0, (int)service.ValuesPolled).Select(i => (long)i), order);
        // Repeats only from the window that was in flight when the broker died (1024 publishes at most).
        Assert.InRange(all.Count - order.Count, 0, 1024);
    }

    /// <summary>Broker down, buffer of 1 MB: the oldest segments go, counted, announced on the events topic; what is left arrives in order.</summary>
    [Fact]
    public async Task DiskBufferFull_OldestDropped_CountedAndAnnounced_RestArrivesInOrder()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
        int port = Ports.Free();
        var notices = new ConcurrentQueue<TelemetryNotice>();
        await using var service = TestConfig.Service(TestConfig.Load(Yaml(plc.Port, port, TestConfig.TempDir(), tags: 100, maxMb: 1)), notices);
        service.Start();
        await TestConfig.Until(() => service.Dropped > 0 && notices.Any(n => n.Reason == "buffer-full"), 60);
        Assert.True(service.PendingBytes <= 1 << 20, $"pending {service.PendingBytes} over the 1 MB bound");
        await using var broker = await EmbeddedBroker.StartAsync(port);
        await TestConfig.Until(() => service.BrokerConnected && EventReasons(broker.Received).Contains("buffer-full"), 30);
        await service.StopPollingAsync();
        long last = service.ValuesPolled - 1;
        await TestConfig.Until(() => Telemetry(broker.Received).Any(m => m.Seq == last), 30);
        var seqs = Telemetry(broker.Received).Select(m => m.Seq).ToList();
        // The oldest were dropped: delivery starts later than 0, in order, never a repeat. While the
        // full buffer drains, polling may fill it again, so the oldest segment can go while it is being
        // replayed (a gap later on); every seq that never arrived is one the buffer counted as dropped.
        Assert.True(seqs[0] > 0);
        Assert.True(seqs.Zip(seqs.Skip(1)).All(p => p.Second > p.First), "delivered seqs must increase");
        Assert.Equal(last, seqs[^1]);
        long missing = last + 1 - seqs.Count;
        Assert.True(missing <= service.Dropped, $"{missing} seqs missing but only {service.Dropped} messages counted as dropped");
    }

    /// <summary>A segment damaged on disk while the gateway was stopped: moved aside, announced, and the service carries on.</summary>
    [Fact]
    public async Task BufferFileCorrupted_MovedAside_EventPublished_ServiceCarriesOn()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
        int port = Ports.Free();
        string buffer = TestConfig.TempDir();
        var config = TestConfig.Load(Yaml(plc.Port, port, buffer, tags: 10));
        await using (var service = TestConfig.Service(config))
        {
            service.Start();
            await TestConfig.Until(() => service.ValuesPolled >= 200);
        }
        var segment = Assert.Single(Directory.GetFiles(buffer, "*.seg"));
        using (var file = File.Open(segment, FileMode.Open, FileAccess.ReadWrite))
        {
            // A byte in the middle of the first records' payloads: the CRC no longer holds.
            file.Position = 40;
            int b = file.ReadByte();
            file.Position = 40;
            file.WriteByte((byte)(b ^ 0x5A));
        }

        var notices = new ConcurrentQueue<TelemetryNotice>();
        await using var broker = await EmbeddedBroker.StartAsync(port);
        await using (var service = TestConfig.Service(config, notices))
        {
            service.Start();
            await TestConfig.Until(() => EventReasons(broker.Received).Contains("buffer-corrupt") && Telemetry(broker.Received).Count >= 20);
        }
        Assert.Contains(notices, n => n.Reason == "buffer-corrupt");
        Assert.Single(Directory.GetFiles(buffer, "*.corrupt"));
        // Nothing from the damaged segment was published; polling went on (seq continues after the restart).
        var seqs = Telemetry(broker.Received).Select(m => m.Seq).ToList();
        Assert.True(seqs[0] >= 200, $"first published seq {seqs[0]}");
        Assert.Equal(Enumerable.Range((int)seqs[0], seqs.Count).Select(i => (long)i), seqs);
    }
}
