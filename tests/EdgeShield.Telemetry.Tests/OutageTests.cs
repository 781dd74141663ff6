using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using EdgeShield.Simulators;

namespace EdgeShield.Telemetry.Tests;

public class OutageTests
{
    private static string Yaml(int plcPort, int brokerPort, string buffer, string extraMqtt = "") => $$"""
        gateway: { name: gw1, site: site1 }
        telemetry:
          mqtt: { broker: mqtt://127.0.0.1:{{brokerPort}}, client-id: t1, topic-prefix: es/t{{extraMqtt}} }
          buffer: { path: {{buffer}}, max-mb: 8 }
          poll:
            - device: plc1
              upstream: tcp://127.0.0.1:{{plcPort}}
              every: 50ms
              tags:
                - { name: a, table: holding, address: 0 }
                - { name: b, table: holding, address: 1 }
                - { name: c, table: input, address: 0, type: int32 }
        """;

    private static long Seq(string json) => TestConfig.Json(System.Text.Encoding.UTF8.GetBytes(json)).GetProperty("seq").GetInt64();

    /// <summary>Stop Mosquitto while telemetry flows, keep polling, restart it: mosquitto_sub sees every seq exactly once, in order.</summary>
    [Fact]
    public async Task MosquittoOutage_EverySeqArrivesOnce_InOrder()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
        await using var broker = new Mosquitto();
        await broker.StartAsync();
        var lines = new ConcurrentQueue<(string Topic, string Payload)>();
        var sub = MosquittoSub.Start(broker.Port, "es/t/plc1/#", "consumer-" + broker.Port, lines);
        // The persistent session exists once the subscriber has received something: probe until it has.
        await TestConfig.Until(() =>
        {
            Process.Start("mosquitto_pub", ["-h", "127.0.0.1", "-p", broker.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-t", "es/t/plc1/probe", "-m", "{\"seq\":-1}", "-q", "1"])!.WaitForExit();
            return !lines.IsEmpty;
        });
        var notices = new ConcurrentQueue<TelemetryNotice>();
        long seqAtRestart;
        await using (var service = TestConfig.Service(TestConfig.Load(Yaml(plc.Port, broker.Port, TestConfig.TempDir())), notices))
        {
            service.Start();
            await TestConfig.Until(() => lines.Count > 30);
            await broker.StopAsync();
            await sub.DisposeAsync();
            long publishedAtStop = service.Published;
            await Task.Delay(1500);
            // Polling goes on into the buffer while the broker is down: waited for (bounded), as a loaded machine may
            // poll late; the 1.5 s above stays the window in which nothing may be published.
            await TestConfig.Until(() => service.PendingBytes > 30 * 50, state: () => $"pending {service.PendingBytes}: polling must go on into the buffer while the broker is down");
            Assert.True(service.Published <= publishedAtStop + 1);
            seqAtRestart = service.ValuesPolled;
            await broker.StartAsync();
            sub = MosquittoSub.Start(broker.Port, "es/t/plc1/#", "consumer-" + broker.Port, lines);
            await TestConfig.Until(() => service.BrokerConnected && service.PendingBytes == 0 && lines.Count(l => l.Topic != "es/t/plc1/probe") > seqAtRestart + 10, 30,
                () => $"connected {service.BrokerConnected} pending {service.PendingBytes} published {service.Published} lines {lines.Count} polled {service.ValuesPolled} notices {string.Join("; ", notices.Select(n => n.Reason + ": " + n.Detail))}");
        }
        await Task.Delay(300);
        await sub.DisposeAsync();
        var seqs = lines.Where(l => l.Topic != "es/t/plc1/probe").Select(l => Seq(l.Payload)).ToList();
        Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => (long)i), seqs);
        Assert.Contains(notices, n => n.Reason == "broker-unavailable");
    }

    [Fact]
    public async Task BrokerDownAtStartup_BuffersThenDeliversAllInOrder()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
        int port = Ports.Free();
        await using var service = TestConfig.Service(TestConfig.Load(Yaml(plc.Port, port, TestConfig.TempDir())));
        service.Start();
        await TestConfig.Until(() => service.ValuesPolled >= 30);
        Assert.False(service.BrokerConnected);
        await using var broker = await EmbeddedBroker.StartAsync(port);
        await TestConfig.Until(() => broker.Received.Count(m => m.Topic.StartsWith("es/t/plc1/", StringComparison.Ordinal)) >= 60, 30);
        var seqs = broker.Received.Where(m => m.Topic.StartsWith("es/t/plc1/", StringComparison.Ordinal)).Select(m => TestConfig.Json(m.Payload).GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => (long)i), seqs);
    }

    [Fact]
    public async Task BadCredentials_BrokerRefuses_EventRaised_NothingLost()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
        await using var broker = await EmbeddedBroker.StartAsync(requiredPassword: "right");
        string dir = TestConfig.TempDir();
        string passwordFile = Path.Combine(dir, "password");
        File.WriteAllText(passwordFile, "wrong\n");
        var notices = new ConcurrentQueue<TelemetryNotice>();
        var config = TestConfig.Load(Yaml(plc.Port, broker.Port, Path.Combine(dir, "buffer"), $", username: gw, password-file: {passwordFile}"));
        await using (var service = TestConfig.Service(config, notices))
        {
            service.Start();
            await TestConfig.Until(() => service.ValuesPolled >= 30 && !notices.IsEmpty);
            Assert.False(service.BrokerConnected);
            Assert.True(service.PendingBytes >= 30 * 50);
        }
        Assert.DoesNotContain(broker.Received, m => m.Topic.StartsWith("es/t/plc1/", StringComparison.Ordinal));
        var refused = Assert.Single(notices, n => n.Reason == "broker-unavailable");
        Assert.Contains("BadUserNameOrPassword", refused.Detail, StringComparison.Ordinal);

        // The right password: what was buffered while refused is delivered, from seq 0.
        File.WriteAllText(passwordFile, "right\n");
        await using (var service = TestConfig.Service(config, notices))
        {
            service.Start();
            await TestConfig.Until(() => broker.Received.Count(m => m.Topic.StartsWith("es/t/plc1/", StringComparison.Ordinal)) >= 40);
        }
        var seqs = broker.Received.Where(m => m.Topic.StartsWith("es/t/plc1/", StringComparison.Ordinal)).Select(m => TestConfig.Json(m.Payload).GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => (long)i), seqs);
    }
}
