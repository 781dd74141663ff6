using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using EdgeShield.Simulators;
using MQTTnet.Server;

namespace EdgeShield.Integration.Tests;

/// <summary>`edgeshield run` with telemetry, as a separate process: broker outage plus a kill -9 of the gateway.</summary>
public class TelemetryProcessTests
{
    private sealed class Broker : IAsyncDisposable
    {
        private readonly MqttServer _server;
        public ConcurrentQueue<(string Topic, byte[] Payload)> Received { get; }

        private Broker(MqttServer server, ConcurrentQueue<(string, byte[])> received)
        {
            _server = server;
            Received = received;
        }

        public static async Task<Broker> StartAsync(int port, ConcurrentQueue<(string, byte[])> received)
        {
            var server = new MqttServerFactory().CreateMqttServer(new MqttServerOptionsBuilder().WithDefaultEndpoint()
                .WithDefaultEndpointBoundIPAddress(IPAddress.Loopback).WithDefaultEndpointPort(port).Build());
            server.InterceptingPublishAsync += e =>
            {
                if (!string.IsNullOrEmpty(e.ClientId))
                {
                    received.Enqueue((e.ApplicationMessage.Topic, e.ApplicationMessage.Payload.ToArray()));
                }
                return Task.CompletedTask;
            };
            await server.StartAsync();
            return new Broker(server, received);
        }

        public async ValueTask DisposeAsync()
        {
            await _server.StopAsync();
            _server.Dispose();
        }
    }

    private static List<(long Seq, string Payload)> Telemetry(ConcurrentQueue<(string Topic, byte[] Payload)> received) =>
        received.Where(m => m.Topic.StartsWith("it/gw/plc1/", StringComparison.Ordinal))
            .Select(m => (JsonDocument.Parse(m.Payload).RootElement.GetProperty("seq").GetInt64(), m.Topic + " " + System.Text.Encoding.UTF8.GetString(m.Payload)))
            .ToList();

    [Fact]
    public async Task BrokerOutageThenKill9_RestartDeliversEverySeq_NoGap_DuplicatesIdentical()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1], SineStart = 0, SineCount = 2, SinePeriodSeconds = 3 }, CancellationToken.None);
        int brokerPort = Processes.FreePort();
        string dir = Path.Combine(Path.GetTempPath(), $"edgeshield-it-telemetry-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        string config = Path.Combine(dir, "edgeshield.yaml");
        await File.WriteAllTextAsync(config, $$"""
            gateway: { name: it-gw, site: lab }
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:{{brokerPort}}, client-id: it-gw, topic-prefix: it/gw }
              buffer: { path: {{dir}}/buffer, max-mb: 8 }
              poll:
                - device: plc1
                  upstream: tcp://127.0.0.1:{{plc.Port}}
                  every: 50ms
                  tags:
                    - { name: wave0, table: holding, address: 0, type: int16 }
                    - { name: wave1, table: holding, address: 1, type: int16 }
            """);
        var received = new ConcurrentQueue<(string, byte[])>();
        var broker = await Broker.StartAsync(brokerPort, received);
        var gateway = new Processes.Running(Processes.EdgeShield("run", "--config", config));
        try
        {
            await Until(() => Telemetry(received).Count >= 20, gateway);
            // Outage: the broker goes away; the gateway keeps polling into its disk buffer.
            await broker.DisposeAsync();
            await Task.Delay(1500);
            // kill -9 while messages wait in the buffer.
            gateway.Process.Kill();
            await gateway.Process.WaitForExitAsync();
            await gateway.DisposeAsync();
            long beforeRestart = Telemetry(received).Count;

            broker = await Broker.StartAsync(brokerPort, received);
            gateway = new Processes.Running(Processes.EdgeShield("run", "--config", config));
            // 1.5 s of buffered polls (about 60 messages) plus new ones after the restart.
            await Until(() => Telemetry(received).Count >= beforeRestart + 80, gateway);
        }
        finally
        {
            await gateway.DisposeAsync();
            await broker.DisposeAsync();
        }
        var messages = Telemetry(received);
        var seqs = messages.Select(m => m.Seq).Distinct().Order().ToList();
        Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => (long)i), seqs);
        // At least once: a message whose PUBACK came just before the kill may come again, but only as itself.
        foreach (var group in messages.GroupBy(m => m.Seq))
        {
            Assert.Single(group.Select(m => m.Payload).Distinct());
        }
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task Run_DeniedRequest_AuditEventOnTheEventsTopic_AndRetainedStatus()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
        int brokerPort = Processes.FreePort();
        string dir = Path.Combine(Path.GetTempPath(), $"edgeshield-it-events-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        string config = Path.Combine(dir, "edgeshield.yaml");
        await File.WriteAllTextAsync(config, GatewayProcess.Config(plc.Port, GatewayProcess.Policy) + $$"""

            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:{{brokerPort}}, topic-prefix: it/gw }
              buffer: { path: {{dir}}/buffer }
            """);
        var received = new ConcurrentQueue<(string, byte[])>();
        await using var broker = await Broker.StartAsync(brokerPort, received);
        await using (var gateway = new Processes.Running(Processes.EdgeShield("run", "--config", config)))
        {
            Assert.True(await gateway.WaitForStderrAsync("listener hmi-plc1 on "), gateway.Stderr);
            var port = int.Parse(System.Text.RegularExpressions.Regex.Match(gateway.Stderr, @"listener hmi-plc1 on 127\.0\.0\.1:(\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            using var client = await RawClient.ConnectAsync(port);
            // FC 6 to address 500: outside the setpoints rule, refused with 02.
            var response = await client.RoundTripAsync([0, 1, 0, 0, 0, 6, 1, 6, 0x01, 0xF4, 0, 1]);
            Assert.Equal(0x86, response[7]);
            await Until(() => received.Any(m => m.Item1 == "it/gw/events" && System.Text.Encoding.UTF8.GetString(m.Item2).Contains("\"event\":\"denied\"", StringComparison.Ordinal)), gateway);
        }
        Assert.Contains(received, m => m.Item1 == "it/gw/status" && System.Text.Encoding.UTF8.GetString(m.Item2) == "online");
        Assert.Equal(0, plc.RequestsReceived(6));
        Directory.Delete(dir, recursive: true);
    }

    /// <summary>
    /// `edgeshield run` with one serial bus used by a modbus-tcp listener and a telemetry poll entry: the
    /// poller reads through the listener's bus (before the shared upstreams it was reported, not polled),
    /// its values are published, and a client's reads through the listener are answered meanwhile.
    /// </summary>
    [Fact]
    public async Task Run_SerialPollEntry_OnTheListenersBus_ValuesPublished_ClientServedMeanwhile()
    {
        using var pty = new EdgeShield.Transport.Tests.PtyPair();
        using var rtu = RtuPlcSimulator.Start(new RtuPlcOptions { Device = pty.Device, Baud = 38400, Unit = 3 });
        rtu.SetHoldingRegister(3, 5, 4321);
        rtu.SetHoldingRegister(3, 1, 32);
        int brokerPort = Processes.FreePort();
        string config = Path.Combine(pty.Directory, "edgeshield.yaml");
        await File.WriteAllTextAsync(config, "gateway: { name: it-gw, site: lab }\n" + SerialGatewayConfig.Yaml(pty.Master) + $$"""
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:{{brokerPort}}, topic-prefix: it/gw }
              buffer: { path: {{pty.Directory}}/buffer }
              poll:
                - device: rtu1
                  upstream: serial://rs485-1
                  unit: 3
                  every: 100ms
                  tags:
                    - { name: level, table: holding, address: 5 }
            """);
        var received = new ConcurrentQueue<(string, byte[])>();
        await using var broker = await Broker.StartAsync(brokerPort, received);
        await using var gateway = new Processes.Running(Processes.EdgeShield("run", "--config", config));
        Assert.True(await gateway.WaitForStderrAsync("listener hmi-rtu on "), gateway.Stderr);
        string port = System.Text.RegularExpressions.Regex.Match(gateway.Stderr, @"listener hmi-rtu on 127\.0\.0\.1:(\d+)").Groups[1].Value;
        List<string> Levels() => [.. received.Where(m => m.Item1 == "it/gw/rtu1/level").Select(m => System.Text.Encoding.UTF8.GetString(m.Item2))];
        int reads = 0;
        while (Levels().Count < 10)
        {
            var read = await Processes.RunAsync(Processes.Tool("/usr/bin/mbpoll", "-m", "tcp", "-p", port, "-a", "3", "-r", "2", "-c", "1", "-t", "4", "-1", "-o", "5", "127.0.0.1"));
            Assert.True(read.ExitCode == 0, read.Stdout + read.Stderr + gateway.Stderr);
            Assert.Contains("[2]: \t32", read.Stdout, StringComparison.Ordinal);
            Assert.True(++reads < 200, "no telemetry from the serial poll entry:\n" + gateway.Stderr + gateway.Stdout);
        }
        Assert.All(Levels(), l => Assert.Contains("\"v\":4321,\"q\":\"good\"", l, StringComparison.Ordinal));
        Assert.DoesNotContain("poll-upstream-unavailable", gateway.Stdout, StringComparison.Ordinal);
        Assert.True(rtu.RequestsReceived(3) >= reads + 10, $"the RTU PLC saw {rtu.RequestsReceived(3)} reads for {reads} client reads and {Levels().Count} polls");
    }

    private static async Task Until(Func<bool> condition, Processes.Running gateway)
    {
        bool reached = false;
        for (int i = 0; i < 600 && !(reached = condition()); i++)
        {
            await Task.Delay(50);
        }
        Assert.True(reached || condition(), "not reached in time; gateway stderr:\n" + gateway.Stderr);
    }
}
