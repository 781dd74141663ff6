using System.Net;
using EdgeShield.Simulators;
using EdgeShield.Telemetry.Sparkplug;

namespace EdgeShield.Telemetry.Tests;

public class SparkplugTests
{
    [Fact]
    public async Task Births_Data_AndDeathCertificate_FollowSparkplugSeqAndBdSeq()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1], TableSize = 1000 }, CancellationToken.None);
        plc.SetHoldingRegister(1, 0, 250);
        plc.SetCoil(1, 3, true);
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
                  every: 100ms
                  tags:
                    - { name: level, table: holding, address: 0, scale: 0.1, unit: "%" }
                    - { name: pump, table: coil, address: 3 }
                    - { name: missing, table: input, address: 9000, type: int16 }
            """;
        var service = TestConfig.Service(TestConfig.Load(yaml));
        await using (service)
        {
            service.Start();
            await TestConfig.Until(() => broker.Received.Count(m => m.Topic == "spBv1.0/site1/DDATA/gw1/plc1") >= 3);
        }
        var messages = broker.Received.ToArray();
        var nbirth = Payload.Parser.ParseFrom(messages.First(m => m.Topic == "spBv1.0/site1/NBIRTH/gw1").Payload);
        Assert.Equal(0UL, nbirth.Seq);
        var bdSeq = nbirth.Metrics.Single(m => m.Name == "bdSeq").LongValue;
        Assert.Contains(nbirth.Metrics, m => m.Name == "Node Control/Rebirth" && !m.BooleanValue);
        var dbirth = Payload.Parser.ParseFrom(messages.First(m => m.Topic == "spBv1.0/site1/DBIRTH/gw1/plc1").Payload);
        Assert.Equal(1UL, dbirth.Seq);
        Assert.Equal(["level", "pump", "missing"], dbirth.Metrics.Select(m => m.Name));
        Assert.Equal("%", dbirth.Metrics[0].Properties.Values[0].StringValue);
        Assert.Equal(10U, dbirth.Metrics[0].Datatype);
        var data = messages.Where(m => m.Topic == "spBv1.0/site1/DDATA/gw1/plc1").Select(m => Payload.Parser.ParseFrom(m.Payload)).ToList();
        Assert.Equal(Enumerable.Range(2, data.Count).Select(i => (ulong)(i & 0xFF)), data.Select(d => d.Seq));
        Assert.Equal(25.0, data[0].Metrics[0].DoubleValue, 6);
        Assert.True(data[0].Metrics[1].BooleanValue);
        Assert.True(data[0].Metrics[2].IsNull);
        // The order the broker saw: births before data.
        var order = messages.Select(m => m.Topic).ToList();
        Assert.True(order.IndexOf("spBv1.0/site1/NBIRTH/gw1") < order.IndexOf("spBv1.0/site1/DBIRTH/gw1/plc1"));
        Assert.True(order.IndexOf("spBv1.0/site1/DBIRTH/gw1/plc1") < order.IndexOf("spBv1.0/site1/DDATA/gw1/plc1"));

        // The will registered for this session is the NDEATH with the same bdSeq.
        var death = SparkplugEncoder.EncodeNodeDeath(0, bdSeq);
        var parsed = Payload.Parser.ParseFrom(death);
        Assert.Equal(bdSeq, parsed.Metrics.Single(m => m.Name == "bdSeq").LongValue);
        Assert.False(parsed.HasSeq);
    }

    [Fact]
    public async Task Rebirth_IsPeriodic_SeqRestartsAtZero_SameBdSeq()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
        await using var broker = await EmbeddedBroker.StartAsync();
        var config = TestConfig.Load($$"""
            gateway: { name: gw1, site: site1 }
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:{{broker.Port}} }
              format: sparkplug-b
              buffer: { path: {{TestConfig.TempDir()}}, max-mb: 4 }
              poll:
                - { device: plc1, upstream: "tcp://127.0.0.1:{{plc.Port}}", every: 100ms, tags: [ { name: a, table: holding, address: 0 } ] }
            """);
        await using (var service = new TelemetryService(config, "gw1", "site1", a => new Transport.TcpUpstream(a.Host, a.Port, TimeSpan.FromSeconds(1)), _ => { }, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(400)))
        {
            service.Start();
            await TestConfig.Until(() => broker.Received.Count(m => m.Topic == "spBv1.0/site1/NBIRTH/gw1") >= 3);
        }
        Assert.Single(broker.Connections);
        var births = broker.Received.Where(m => m.Topic == "spBv1.0/site1/NBIRTH/gw1").Select(m => Payload.Parser.ParseFrom(m.Payload)).ToList();
        Assert.All(births, b => Assert.Equal(0UL, b.Seq));
        Assert.Single(births.Select(b => b.Metrics.Single(m => m.Name == "bdSeq").LongValue).Distinct());
        // After each rebirth, the data continues at seq 2 (NBIRTH 0, DBIRTH 1).
        var order = broker.Received.Where(m => m.Topic.StartsWith("spBv1.0/", StringComparison.Ordinal)).ToList();
        int secondBirth = order.FindIndex(1, m => m.Topic.EndsWith("/NBIRTH/gw1", StringComparison.Ordinal));
        var next = order.Skip(secondBirth).First(m => m.Topic.Contains("/DDATA/", StringComparison.Ordinal));
        Assert.Equal(2UL, Payload.Parser.ParseFrom(next.Payload).Seq);
    }

    /// <summary>
    /// Sparkplug has no quality; Ignition (Cirrus Link's MQTT Engine) reads the metric property "Quality", an Int32 Ignition 8
    /// quality code, and takes a metric without it as good. A stale tag must not look good to the SCADA.
    /// </summary>
    [Fact]
    public void StaleAndBadMetrics_CarryTheQualityProperty_GoodOnesNone_InDataAndBirth()
    {
        var encoder = new SparkplugEncoder(
        [
            new Policy.TagConfig { Name = "good", Table = Policy.TagTable.Holding, Address = 0, Type = Policy.TagType.UInt16 },
            new Policy.TagConfig { Name = "stale", Table = Policy.TagTable.Holding, Address = 1, Type = Policy.TagType.UInt16, Unit = "bar" },
            new Policy.TagConfig { Name = "bad", Table = Policy.TagTable.Holding, Address = 2, Type = Policy.TagType.UInt16 },
        ]);
        encoder.Set(0, 5, TagValue.FromInteger(7), TagQuality.Good);
        encoder.Set(1, 5, TagValue.FromInteger(8), TagQuality.Stale);
        encoder.Set(2, 5, default, TagQuality.Bad);
        static int? Quality(Payload.Types.Metric m)
        {
            if (m.Properties is null)
            {
                return null;
            }
            int at = m.Properties.Keys.IndexOf("Quality");
            if (at < 0)
            {
                return null;
            }
            Assert.Equal(3U, m.Properties.Values[at].Type); // Int32
            return unchecked((int)m.Properties.Values[at].IntValue);
        }
        foreach (var payload in new[] { Payload.Parser.ParseFrom(encoder.EncodeData(5).ToArray()), Payload.Parser.ParseFrom(encoder.EncodeBirth(5, 1)) })
        {
            var m = payload.Metrics;
            Assert.Null(Quality(m[0]));
            Assert.Equal(7U, m[0].IntValue);
            Assert.Equal(0x40000101, Quality(m[1])); // Uncertain_LastKnownValue
            Assert.Equal(8U, m[1].IntValue);
            Assert.Equal(unchecked((int)0x80000200), Quality(m[2])); // Bad
            Assert.True(m[2].IsNull);
        }
        // In the birth the unit stays beside it.
        var stale = Payload.Parser.ParseFrom(encoder.EncodeBirth(5, 1)).Metrics[1];
        Assert.Equal(["engUnit", "Quality"], stale.Properties.Keys);
        Assert.Equal("bar", stale.Properties.Values[0].StringValue);
    }

    [Fact]
    public void MarkHistorical_SetsIsHistoricalOnEveryMetric_AndChangesNothingElse()
    {
        var encoder = new SparkplugEncoder(
        [
            new Policy.TagConfig { Name = "level", Table = Policy.TagTable.Holding, Address = 0, Type = Policy.TagType.Float32 },
            new Policy.TagConfig { Name = "pump", Table = Policy.TagTable.Coil, Address = 0, Type = Policy.TagType.Bool },
            new Policy.TagConfig { Name = "missing", Table = Policy.TagTable.Holding, Address = 9, Type = Policy.TagType.UInt16 },
        ]);
        encoder.Set(0, 1_700_000_000_123, TagValue.FromReal(2.5), TagQuality.Stale);
        encoder.Set(1, 1_700_000_000_123, TagValue.FromBoolean(true), TagQuality.Good);
        var live = encoder.EncodeData(1_700_000_000_124).ToArray();
        var marked = new byte[SparkplugEncoder.HistoricalLength(live.Length)];
        int n = SparkplugEncoder.MarkHistorical(live, marked);
        var historical = Payload.Parser.ParseFrom(marked, 0, n);
        var original = Payload.Parser.ParseFrom(live);
        Assert.All(original.Metrics, m => Assert.False(m.IsHistorical));
        Assert.All(historical.Metrics, m => Assert.True(m.IsHistorical));
        // Apart from the flag, the same payload.
        foreach (var m in historical.Metrics)
        {
            m.ClearIsHistorical();
        }
        Assert.Equal(original, historical);
        // Not a payload of this encoder, or no room: -1 (the publisher then sends it as stored).
        Assert.Equal(-1, SparkplugEncoder.MarkHistorical([0x12, 0x7F, 0x01], new byte[64]));
        Assert.Equal(-1, SparkplugEncoder.MarkHistorical(live, new byte[live.Length]));
    }

    /// <summary>
    /// Store and forward in Sparkplug: DDATA buffered while the broker was away is history. A host (Ignition's MQTT Engine)
    /// stores a metric with is_historical without setting the tag back in time; the births of the new session carry the
    /// current values, and data polled after them is live.
    /// </summary>
    [Fact]
    public async Task DataBufferedBeforeTheSession_IsSentHistorical_DataAfterTheBirthsLive()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
        int port = Ports.Free();
        var config = TestConfig.Load($$"""
            gateway: { name: gw1, site: site1 }
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:{{port}}, client-id: t1 }
              format: sparkplug-b
              buffer: { path: {{TestConfig.TempDir()}}, max-mb: 4 }
              poll:
                - { device: plc1, upstream: "tcp://127.0.0.1:{{plc.Port}}", every: 50ms, tags: [ { name: a, table: holding, address: 0 }, { name: b, table: holding, address: 1 } ] }
            """);
        await using var service = TestConfig.Service(config);
        service.Start();
        await TestConfig.Until(() => service.ValuesPolled >= 20);
        Assert.False(service.BrokerConnected);
        await using var broker = await EmbeddedBroker.StartAsync(port);
        const string Data = "spBv1.0/site1/DDATA/gw1/plc1";
        await TestConfig.Until(() => broker.Received.Count(m => m.Topic == Data) >= 20 && broker.Received.Where(m => m.Topic == Data).Count(m => !Payload.Parser.ParseFrom(m.Payload).Metrics[0].IsHistorical) >= 5, 30);
        var order = broker.Received.ToArray();
        int birth = Array.FindIndex(order, m => m.Topic == "spBv1.0/site1/DBIRTH/gw1/plc1");
        Assert.True(birth >= 0 && birth < Array.FindIndex(order, m => m.Topic == Data), "the births come before any data");
        Assert.All(Payload.Parser.ParseFrom(order[birth].Payload).Metrics, m => Assert.False(m.IsHistorical));
        var flags = order.Where(m => m.Topic == Data).Select(m => Payload.Parser.ParseFrom(m.Payload).Metrics.Select(x => x.IsHistorical).Distinct().Single()).ToList();
        // At least the ten cycles polled before the broker came are history, then everything is live: never history after live.
        int firstLive = flags.IndexOf(false);
        Assert.True(firstLive >= 10, $"{firstLive} historical DDATA; at least 10 were buffered");
        Assert.All(flags.Skip(firstLive), f => Assert.False(f));
    }

    [Fact]
    public void AppendSeq_IsReadAsTheSeqField()
    {
        var encoder = new SparkplugEncoder([new Policy.TagConfig { Name = "a", Table = Policy.TagTable.Holding, Address = 0, Type = Policy.TagType.UInt16 }]);
        encoder.Set(0, 5, TagValue.FromInteger(7), TagQuality.Good);
        var payload = encoder.EncodeData(5).ToArray();
        var withSeq = new byte[payload.Length + 11];
        payload.CopyTo(withSeq, 0);
        int n = SparkplugEncoder.AppendSeq(withSeq.AsSpan(payload.Length), 200);
        var parsed = Payload.Parser.ParseFrom(withSeq, 0, payload.Length + n);
        Assert.Equal(200UL, parsed.Seq);
        Assert.Equal(7U, parsed.Metrics[0].IntValue);
    }
}
