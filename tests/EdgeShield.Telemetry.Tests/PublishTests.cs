using System.Collections.Concurrent;
using System.Net;
using System.Text;
using EdgeShield.Simulators;

namespace EdgeShield.Telemetry.Tests;

public class PublishTests
{
    private static string Yaml(int plcPort, int brokerPort, string buffer, string every = "100ms", string extraTags = "") => $$"""
        gateway: { name: gw1, site: site1 }
        telemetry:
          mqtt: { broker: mqtt://127.0.0.1:{{brokerPort}}, client-id: t1, topic-prefix: es/t }
          buffer: { path: {{buffer}}, max-mb: 4 }
          poll:
            - device: plc1
              upstream: tcp://127.0.0.1:{{plcPort}}
              unit: 1
              every: {{every}}
              tags:
                - { name: level, table: holding, address: 0, type: uint16, scale: 0.1, unit: "%" }
                - { name: temp, table: holding, address: 1, type: float32, word-order: cdab }
                - { name: pump, table: coil, address: 5 }
        {{extraTags}}
        """;

    [Fact]
    public async Task Poll_PublishesJsonPerTag_WithContiguousSeq_AndRetainedStatus()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
        plc.SetHoldingRegister(1, 0, 123);
        // 21.5f = 0x41AC0000, sent low word first (cdab).
        plc.SetHoldingRegister(1, 1, 0x0000);
        plc.SetHoldingRegister(1, 2, 0x41AC);
        plc.SetCoil(1, 5, true);
        await using var broker = await EmbeddedBroker.StartAsync();
        var config = TestConfig.Load(Yaml(plc.Port, broker.Port, TestConfig.TempDir()));
        await using (var service = TestConfig.Service(config))
        {
            service.Start();
            await TestConfig.Until(() => broker.Received.Count(m => m.Topic == "es/t/plc1/pump") >= 3);
        }
        var messages = broker.Received.ToArray();
        var status = messages.First(m => m.Topic == "es/t/status");
        Assert.Equal("online", Encoding.UTF8.GetString(status.Payload));
        Assert.True(status.Retain);
        var level = TestConfig.Json(messages.First(m => m.Topic == "es/t/plc1/level").Payload);
        Assert.Equal(12.3, level.GetProperty("v").GetDouble(), 6);
        Assert.Equal("good", level.GetProperty("q").GetString());
        Assert.Equal("%", level.GetProperty("u").GetString());
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", level.GetProperty("ts").GetString());
        Assert.Equal(21.5, TestConfig.Json(messages.First(m => m.Topic == "es/t/plc1/temp").Payload).GetProperty("v").GetDouble(), 6);
        Assert.True(TestConfig.Json(messages.First(m => m.Topic == "es/t/plc1/pump").Payload).GetProperty("v").GetBoolean());
        var seqs = messages.Where(m => m.Topic.StartsWith("es/t/plc1/", StringComparison.Ordinal))
            .Select(m => TestConfig.Json(m.Payload).GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => (long)i), seqs);
        // The two holding tags are adjacent: one FC 3 read per cycle serves both.
        Assert.True(plc.RequestsReceived(3) <= plc.RequestsReceived(1) + 1);
    }

    [Fact]
    public async Task PlcException_UnreadableAddress_PublishesBadWithReason_OtherTagsStayGood()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1], TableSize = 1000 }, CancellationToken.None);
        await using var broker = await EmbeddedBroker.StartAsync();
        var yaml = Yaml(plc.Port, broker.Port, TestConfig.TempDir()).Replace(
            "- { name: pump, table: coil, address: 5 }",
            "- { name: pump, table: coil, address: 5 }\n        - { name: far, table: input, address: 5000 }", StringComparison.Ordinal);
        await using (var service = TestConfig.Service(TestConfig.Load(yaml)))
        {
            service.Start();
            await TestConfig.Until(() => broker.Received.Count(m => m.Topic == "es/t/plc1/far") >= 2);
        }
        var far = TestConfig.Json(broker.Received.First(m => m.Topic == "es/t/plc1/far").Payload);
        Assert.Equal("bad", far.GetProperty("q").GetString());
        Assert.Equal("exception-02", far.GetProperty("reason").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, far.GetProperty("v").ValueKind);
        Assert.Equal("good", TestConfig.Json(broker.Received.First(m => m.Topic == "es/t/plc1/pump").Payload).GetProperty("q").GetString());
    }

    [Fact]
    public async Task PlcUnreachable_ThenGone_PublishesBadThenStale()
    {
        await using var broker = await EmbeddedBroker.StartAsync();
        var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
        plc.SetHoldingRegister(1, 0, 7);
        int plcPort = plc.Port;
        var notices = new ConcurrentQueue<TelemetryNotice>();
        await using (var service = TestConfig.Service(TestConfig.Load(Yaml(plcPort, broker.Port, TestConfig.TempDir())), notices))
        {
            service.Start();
            await TestConfig.Until(() => broker.Received.Any(m => m.Topic == "es/t/plc1/level"));
            await plc.DisposeAsync();
            await TestConfig.Until(() => broker.Received.Any(m => m.Topic == "es/t/plc1/level" && TestConfig.Json(m.Payload).GetProperty("q").GetString() == "stale"));
        }
        var stale = broker.Received.Select(m => m).Last(m => m.Topic == "es/t/plc1/level");
        var json = TestConfig.Json(stale.Payload);
        Assert.Equal("stale", json.GetProperty("q").GetString());
        Assert.Equal(0.7, json.GetProperty("v").GetDouble(), 6);
        Assert.Contains(json.GetProperty("reason").GetString(), new[] { "unreachable", "timeout" });

        // A PLC that was never there: bad, unreachable, no value.
        await using var broker2 = await EmbeddedBroker.StartAsync();
        await using (var service = TestConfig.Service(TestConfig.Load(Yaml(Ports.Free(), broker2.Port, TestConfig.TempDir()))))
        {
            service.Start();
            await TestConfig.Until(() => broker2.Received.Any(m => m.Topic == "es/t/plc1/level"));
        }
        var bad = TestConfig.Json(broker2.Received.First(m => m.Topic == "es/t/plc1/level").Payload);
        Assert.Equal("bad", bad.GetProperty("q").GetString());
        Assert.Equal("unreachable", bad.GetProperty("reason").GetString());
    }
}
