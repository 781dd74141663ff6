using System.Net;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text;
using EdgeShield.Simulators;
using MQTTnet;

namespace EdgeShield.Telemetry.Tests;

public class DiodeTests
{
    [Fact]
    public void TelemetryAssembly_ReferencesNoWriteSide_AndNeverSubscribes()
    {
        var assembly = typeof(TelemetryService).Assembly;
        var references = assembly.GetReferencedAssemblies().Select(a => a.Name).ToList();
        Assert.Contains("EdgeShield.Transport", references);
        Assert.DoesNotContain("EdgeShield.Gateway", references);
        Assert.DoesNotContain("EdgeShield.Host", references);
        Assert.DoesNotContain(references, r => r!.StartsWith("edgeshield", StringComparison.Ordinal));

        // No call to any subscribe API exists in the IL: the MQTT session cannot receive.
        using var stream = File.OpenRead(assembly.Location);
        using var pe = new PEReader(stream);
        var metadata = pe.GetMetadataReader();
        var members = metadata.MemberReferences.Select(h => metadata.GetString(metadata.GetMemberReference(h).Name)).ToList();
        Assert.Contains("PublishAsync", members);
        Assert.DoesNotContain(members, m => m.Contains("Subscribe", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(members, m => m.Contains("ApplicationMessageReceived", StringComparison.OrdinalIgnoreCase));
        // The only ways to a PLC it uses are the read-only clients (Modbus, S7, IEC 104), never a raw upstream session send.
        var typeRefs = metadata.TypeReferences.Select(h => metadata.GetString(metadata.GetTypeReference(h).Name)).ToList();
        Assert.Contains("ReadOnlyModbusClient", typeRefs);
        Assert.Contains("ReadOnlyS7Client", typeRefs);
        Assert.Contains("ReadOnlyIec104Client", typeRefs);
        Assert.DoesNotContain("IUpstreamSession", typeRefs);
    }

    [Fact]
    public async Task CommandTopics_PublishedToTheBroker_NoByteReachesThePlc()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
        await using var broker = await EmbeddedBroker.StartAsync();
        var yaml = $$"""
            gateway: { name: gw1, site: site1 }
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:{{broker.Port}}, client-id: t1, topic-prefix: es/t }
              format: sparkplug-b
              buffer: { path: {{TestConfig.TempDir()}}, max-mb: 4 }
              poll:
                - device: plc1
                  upstream: tcp://127.0.0.1:{{plc.Port}}
                  every: 1h
                  tags:
                    - { name: level, table: holding, address: 0 }
            """;
        await using var service = TestConfig.Service(TestConfig.Load(yaml));
        service.Start();
        await TestConfig.Until(() => broker.Received.Any(m => m.Topic.Contains("/DDATA/", StringComparison.Ordinal)));
        long framesAfterPoll = plc.FramesReceived;
        long connectionsAfterPoll = plc.ConnectionsAccepted;

        using var attacker = new MqttClientFactory().CreateMqttClient();
        await attacker.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", broker.Port).WithClientId("it-side").Build());
        string[] topics =
        [
            "spBv1.0/site1/NCMD/gw1", "spBv1.0/site1/DCMD/gw1/plc1", "spBv1.0/STATE/host", "es/t/plc1/level", "es/t/plc1/level/set",
            "es/t/plc1/level/write", "es/t/cmd", "es/t/command", "es/t/status", "es/t/events", "es/t/config", "es/t", "spBv1.0/site1/NCMD/gw1/plc1",
        ];
        foreach (var topic in topics)
        {
            foreach (var payload in new[] { "1"u8.ToArray(), "{\"v\":1500}"u8.ToArray(), "\x00\x00\x00\x00\x00\x06\x01\x06\x00\x64\x05\xDC"u8.ToArray() })
            {
                await attacker.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload)
                    .WithQualityOfServiceLevel(MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce).WithRetainFlag(topic != "#").Build());
            }
        }
        await Task.Delay(1000);
        Assert.Equal(framesAfterPoll, plc.FramesReceived);
        Assert.Equal(connectionsAfterPoll, plc.ConnectionsAccepted);
        foreach (byte fc in new byte[] { 5, 6, 15, 16, 22, 23 })
        {
            Assert.Equal(0, plc.RequestsReceived(fc));
        }
        Assert.Equal(0, plc.GetHoldingRegister(1, 0x64));
    }
}
