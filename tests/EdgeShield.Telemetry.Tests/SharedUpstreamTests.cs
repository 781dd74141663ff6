using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Gateway;
using EdgeShield.Policy;
using EdgeShield.Simulators;
using EdgeShield.Transport.Tests;

namespace EdgeShield.Telemetry.Tests;

/// <summary>
/// The poller and the gateway on one <see cref="UpstreamRegistry"/>, composed as <c>edgeshield run</c>
/// composes them: the poller's reads go through the listeners' serial bus (its fair queue, its counters)
/// and the listeners' TCP upstream (its backoff, its counters), while clients are served.
/// </summary>
public class SharedUpstreamTests
{
    private sealed class NullAudit : IAuditSink
    {
        public void Write(in AuditEvent auditEvent)
        {
        }
    }

    private const string Policy = """
        policies:
          reads:
            mode: enforce
            rules:
              - name: reads
                function: [read]
                address: 0-999
        """;

    private static EdgeShieldConfig Load(string yaml)
    {
        var loaded = ConfigLoader.LoadText(yaml, "shared.yaml");
        Assert.False(loaded.HasErrors, string.Join("\n", loaded.Diagnostics));
        return loaded.Config!;
    }

    /// <summary>One FC 4 read of input register 0 through the gateway; true when answered normally.</summary>
    private static async Task<bool> ReadInputAsync(Socket socket, ushort tid)
    {
        byte[] request = [(byte)(tid >> 8), (byte)tid, 0, 0, 0, 6, 1, 4, 0, 0, 0, 1];
        await socket.SendAsync(request, SocketFlags.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var header = new byte[7];
        if (!await ReceiveExactlyAsync(socket, header, timeout.Token))
        {
            return false;
        }
        var reply = new byte[6 + ((header[4] << 8) | header[5])];
        header.CopyTo(reply, 0);
        if (reply.Length < 9 || !await ReceiveExactlyAsync(socket, reply.AsMemory(7), timeout.Token))
        {
            return false;
        }
        return reply[0] == (byte)(tid >> 8) && reply[1] == (byte)tid && reply[7] == 4 && reply[8] == 2;
    }

    private static async Task<bool> ReceiveExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken ct)
    {
        while (!buffer.IsEmpty)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct);
            if (n == 0)
            {
                return false;
            }
            buffer = buffer[n..];
        }
        return true;
    }

    private static List<System.Text.Json.JsonElement> Values(EmbeddedBroker broker, string topic) =>
        [.. broker.Received.Where(m => m.Topic == topic).Select(m => TestConfig.Json(m.Payload))];

    [Fact]
    public async Task SerialPollEntry_ReadsThroughTheListenersBus_FairQueuedWithAClient_CountedByTheBus()
    {
        using var pty = new PtyPair();
        using var plc = RtuPlcSimulator.Start(new RtuPlcOptions { Device = pty.Device, Baud = 115200, Unit = 1 });
        plc.SetHoldingRegister(1, 5, 4321);
        await using var broker = await EmbeddedBroker.StartAsync();
        string dir = TestConfig.TempDir();
        var config = Load($$"""
            gateway: { name: gw1, site: site1 }
            serial:
              - name: rs485-1
                device: {{pty.Master}}
                baud: 115200
                parity: even
                # Generous: on a loaded 2-core machine a starved simulator must not turn into a 0B.
                response-timeout-ms: 1000
            listeners:
              - name: hmi
                bind: 127.0.0.1:0
                protocol: modbus-tcp
                upstream: serial://rs485-1
                policy: reads
            {{Policy}}
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:{{broker.Port}}, topic-prefix: t/gw1 }
              buffer: { path: {{dir}}, max-mb: 4 }
              poll:
                - device: rtu1
                  upstream: serial://rs485-1
                  unit: 1
                  every: 50ms
                  tags:
                    - { name: level, table: holding, address: 5 }
            """);

        await using var upstreams = await UpstreamRegistry.StartAsync(config);
        var notices = new ConcurrentQueue<TelemetryNotice>();
        var telemetry = new TelemetryService(config.Telemetry!, config.GatewayName, config.Site, upstreams.Find, notices.Enqueue, TimeSpan.FromSeconds(1));
        long clientReads = 0;
        await using (telemetry)
        {
            await using var gateway = await EdgeGateway.StartAsync(config, new NullAudit(), upstreams);
            var bus = upstreams.SerialBuses["rs485-1"];
            Assert.Same(bus, gateway.SerialBuses["rs485-1"]);
            await TestConfig.Until(() => bus.IsAvailable);
            telemetry.Start();

            // A client reads through the gateway while the poller polls the same line.
            using var client = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await client.ConnectAsync(gateway.Listeners[0].LocalEndPoint);
            ushort tid = 0;
            while (Values(broker, "t/gw1/rtu1/level").Count < 20 || clientReads < 20)
            {
                Assert.True(await ReadInputAsync(client, ++tid), $"client read {tid} not answered");
                clientReads++;
                Assert.True(clientReads < 5000, "the poller published too little while the client was served: " + string.Join(", ", notices.Select(n => n.Reason)));
            }
            await telemetry.StopPollingAsync();
            var values = Values(broker, "t/gw1/rtu1/level");
            Assert.All(values, v => Assert.Equal("good", v.GetProperty("q").GetString()));
            Assert.All(values, v => Assert.Equal(4321, v.GetProperty("v").GetInt32()));
            Assert.DoesNotContain(notices, n => n.Reason == "poll-upstream-unavailable");

            // The bus carried both: every client read and every poller read is one of its transactions,
            // and the PLC saw the poller's FC 3 reads beside the client's FC 4 reads on the one line.
            long pollReads = telemetry.ReadsSent;
            Assert.True(pollReads >= 20, $"poller reads {pollReads}");
            Assert.Equal(clientReads, plc.RequestsReceived(4));
            Assert.InRange(plc.RequestsReceived(3), pollReads - 1, pollReads);
            Assert.InRange(bus.Counters.Transactions, clientReads + pollReads - 1, clientReads + pollReads);
            Assert.Equal(0, bus.Counters.Timeouts);
        }
    }

    [Fact]
    public async Task TcpPollEntry_UsesTheListenersUpstream_ItsCountersHoldThePollerReads()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
        plc.SetHoldingRegister(1, 5, 77);
        await using var broker = await EmbeddedBroker.StartAsync();
        string dir = TestConfig.TempDir();
        var config = Load($$"""
            gateway: { name: gw1, site: site1 }
            listeners:
              - name: hmi
                bind: 127.0.0.1:0
                protocol: modbus-tcp
                upstream: tcp://127.0.0.1:{{plc.Port}}
                policy: reads
            {{Policy}}
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:{{broker.Port}}, topic-prefix: t/gw1 }
              buffer: { path: {{dir}}, max-mb: 4 }
              poll:
                - device: plc1
                  upstream: tcp://127.0.0.1:{{plc.Port}}
                  every: 50ms
                  tags:
                    - { name: level, table: holding, address: 5 }
            """);

        await using var upstreams = await UpstreamRegistry.StartAsync(config);
        Assert.Single(upstreams.TcpUpstreams);
        var plcUpstream = upstreams.TcpUpstreams[config.Listeners[0].Upstream];
        var telemetry = new TelemetryService(config.Telemetry!, config.GatewayName, config.Site, upstreams.Find, _ => { }, TimeSpan.FromSeconds(1));
        long clientReads = 0;
        await using (telemetry)
        {
            await using var gateway = await EdgeGateway.StartAsync(config, new NullAudit(), upstreams);
            telemetry.Start();
            await TestConfig.Until(() => Values(broker, "t/gw1/plc1/level").Count >= 10);
            using var client = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await client.ConnectAsync(gateway.Listeners[0].LocalEndPoint);
            for (ushort tid = 1; tid <= 10; tid++)
            {
                Assert.True(await ReadInputAsync(client, tid));
                clientReads++;
            }
            await telemetry.StopPollingAsync();
            Assert.All(Values(broker, "t/gw1/plc1/level"), v => Assert.Equal(77, v.GetProperty("v").GetInt32()));

            // One upstream object for the PLC: its counters hold the client's requests and the poller's reads.
            long pollReads = telemetry.ReadsSent;
            Assert.True(pollReads >= 10);
            Assert.Equal(clientReads + pollReads, plcUpstream.Counters.RequestsSent);
            Assert.Equal(clientReads, plc.RequestsReceived(4));
            Assert.Equal(pollReads, plc.RequestsReceived(3));
            // Two sessions on it: the client's and the poller's.
            Assert.Equal(2, plcUpstream.Counters.Connects);
        }
    }

    [Fact]
    public async Task TcpPollEntry_SharesThePlcBackoffWithTheGateway()
    {
        // A PLC that is not there: the poller's failed connect starts the per-PLC backoff, so the
        // client's request right after it is refused (0B) without another connect attempt.
        int deadPort = Ports.Free();
        await using var broker = await EmbeddedBroker.StartAsync();
        string dir = TestConfig.TempDir();
        var config = Load($$"""
            gateway: { name: gw1, site: site1 }
            listeners:
              - name: hmi
                bind: 127.0.0.1:0
                protocol: modbus-tcp
                upstream: tcp://127.0.0.1:{{deadPort}}
                policy: reads
            {{Policy}}
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:{{broker.Port}}, topic-prefix: t/gw1 }
              buffer: { path: {{dir}}, max-mb: 4 }
              poll:
                - device: plc1
                  upstream: tcp://127.0.0.1:{{deadPort}}
                  every: 50ms
                  tags:
                    - { name: level, table: holding, address: 5 }
            """);
        await using var upstreams = await UpstreamRegistry.StartAsync(config);
        var plcUpstream = upstreams.TcpUpstreams[config.Listeners[0].Upstream];
        var telemetry = new TelemetryService(config.Telemetry!, config.GatewayName, config.Site, upstreams.Find, _ => { }, TimeSpan.FromSeconds(1));
        await using (telemetry)
        {
            await using var gateway = await EdgeGateway.StartAsync(config, new NullAudit(), upstreams);
            telemetry.Start();
            await TestConfig.Until(() => plcUpstream.Counters.ConnectFailures >= 3);
            await telemetry.StopPollingAsync();
            var values = Values(broker, "t/gw1/plc1/level");
            Assert.NotEmpty(values);
            Assert.All(values, v => Assert.Equal("unreachable", v.GetProperty("reason").GetString()));
            // The poller's reads mostly met the backoff its own failures set (100 ms doubling): fewer
            // connect attempts than unreachable reads, all counted on the one upstream the listener uses too.
            Assert.True(plcUpstream.Counters.Unreachable > plcUpstream.Counters.ConnectFailures,
                $"unreachable {plcUpstream.Counters.Unreachable}, connect failures {plcUpstream.Counters.ConnectFailures}");
            long failures = plcUpstream.Counters.ConnectFailures;
            using var client = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await client.ConnectAsync(gateway.Listeners[0].LocalEndPoint);
            Assert.False(await ReadInputAsync(client, 1));
            Assert.True(plcUpstream.Counters.Unreachable > 0);
            Assert.Equal(0, plcUpstream.Counters.RequestsSent);
            Assert.True(plcUpstream.Counters.ConnectFailures <= failures + 1);
        }
    }
}
