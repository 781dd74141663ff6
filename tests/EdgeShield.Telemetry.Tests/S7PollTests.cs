using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using EdgeShield.Protocols.S7comm;
using EdgeShield.Telemetry.Sparkplug;

namespace EdgeShield.Telemetry.Tests;

/// <summary>
/// <c>protocol: s7comm</c> poll entries through the whole service (poller, log, publisher, broker) against
/// <see cref="S7TestPlc"/>, which records every byte the poller sends.
/// </summary>
public class S7PollTests
{
    private static string Yaml(int plcPort, int brokerPort, string tags, string format = "json", string every = "100ms") => $$"""
        gateway: { name: gw1, site: site1 }
        telemetry:
          mqtt: { broker: mqtt://127.0.0.1:{{brokerPort}}, client-id: t1, topic-prefix: es/t }
          format: {{format}}
          buffer: { path: {{TestConfig.TempDir()}}, max-mb: 4 }
          poll:
            - device: press1
              protocol: s7comm
              upstream: tcp://127.0.0.1:{{plcPort}}
              slot: 2
              every: {{every}}
              tags:
        {{tags}}
        """;

    private const string KnownTags = """
                - { name: count, address: DB1.DBW2, type: int16 }
                - { name: word, address: DB1.DBW4 }
                - { name: total, address: DB1.DBD6, type: int32 }
                - { name: temp, address: DB1.DBD10, type: float32, unit: degC }
                - { name: scaled, address: DB1.DBW2, type: int16, scale: 0.5, offset: 1 }
                - { name: flag, address: DB1.DBX0.1 }
                - { name: marker, address: MW10, type: int16 }
                - { name: m_bit, address: M12.7 }
                - { name: input, address: I0.3 }
                - { name: in_word, address: IW4, type: uint16 }
                - { name: output, address: Q4.0 }
                - { name: out_dword, address: QD8, type: uint32 }
                - { name: status, address: DB1.DBB14 }
                - { name: sint, address: MB14, type: int8 }
        """;

    /// <summary>Seeds DB1, M, I and Q; returns DB1's and M's bytes.</summary>
    private static (byte[] Db1, byte[] M) SeedKnownValues(S7TestPlc plc)
    {
        var db1 = new byte[32];
        db1[0] = 0b0000_0010;                                          // DBX0.1
        BinaryPrimitives.WriteInt16BigEndian(db1.AsSpan(2), -1234);     // DBW2
        BinaryPrimitives.WriteUInt16BigEndian(db1.AsSpan(4), 0xBEEF);   // DBW4
        BinaryPrimitives.WriteInt32BigEndian(db1.AsSpan(6), -70000);    // DBD6
        BinaryPrimitives.WriteSingleBigEndian(db1.AsSpan(10), 21.5f);   // DBD10
        db1[14] = 200;                                                  // DBB14
        plc.Set(S7Area.DataBlocks, 1, db1);
        var m = new byte[16];
        BinaryPrimitives.WriteInt16BigEndian(m.AsSpan(10), 321);
        m[12] = 0x80;
        m[14] = unchecked((byte)-5);                                    // MB14 as SINT
        plc.Set(S7Area.Flags, 0, m);
        var i = new byte[8];
        i[0] = 0b0000_1000;
        BinaryPrimitives.WriteUInt16BigEndian(i.AsSpan(4), 40000);
        plc.Set(S7Area.Inputs, 0, i);
        var q = new byte[16];
        q[4] = 1;
        BinaryPrimitives.WriteUInt32BigEndian(q.AsSpan(8), 3_000_000_000);
        plc.Set(S7Area.Outputs, 0, q);
        return (db1, m);
    }

    private static JsonElement Last(EmbeddedBroker broker, string tag) =>
        TestConfig.Json(broker.Received.Last(m => m.Topic == "es/t/press1/" + tag).Payload);

    /// <summary>The tag's newest good message: a loaded machine may stretch one answer past the 1 s timeout (that cycle is stale, not wrong).</summary>
    private static JsonElement LastGood(EmbeddedBroker broker, string tag) =>
        TestConfig.Json(broker.Received.Last(m => m.Topic == "es/t/press1/" + tag && TestConfig.Json(m.Payload).GetProperty("q").GetString() == "good").Payload);

    private static List<JsonElement> All(EmbeddedBroker broker, string tag) =>
        [.. broker.Received.Where(m => m.Topic == "es/t/press1/" + tag).Select(m => TestConfig.Json(m.Payload))];

    [Fact]
    public async Task S7Tags_PublishedAsJson_WithTheValuesThePlcHolds_AndContiguousSeq()
    {
        await using var plc = S7TestPlc.Start();
        SeedKnownValues(plc);
        await using var broker = await EmbeddedBroker.StartAsync();
        await using (var service = TestConfig.Service(TestConfig.Load(Yaml(plc.Port, broker.Port, KnownTags))))
        {
            service.Start();
            await TestConfig.Until(() => broker.Received.Count(m => m.Topic == "es/t/press1/out_dword") >= 3);
        }
        Assert.Equal(-1234, LastGood(broker, "count").GetProperty("v").GetInt64());
        Assert.Equal(0xBEEF, LastGood(broker, "word").GetProperty("v").GetInt64());
        Assert.Equal(-70000, LastGood(broker, "total").GetProperty("v").GetInt64());
        Assert.Equal(21.5, LastGood(broker, "temp").GetProperty("v").GetDouble());
        Assert.Equal("degC", LastGood(broker, "temp").GetProperty("u").GetString());
        Assert.Equal((-1234 * 0.5) + 1, LastGood(broker, "scaled").GetProperty("v").GetDouble());
        Assert.True(LastGood(broker, "flag").GetProperty("v").GetBoolean());
        Assert.Equal(321, LastGood(broker, "marker").GetProperty("v").GetInt64());
        Assert.True(LastGood(broker, "m_bit").GetProperty("v").GetBoolean());
        Assert.True(LastGood(broker, "input").GetProperty("v").GetBoolean());
        Assert.Equal(40000, LastGood(broker, "in_word").GetProperty("v").GetInt64());
        Assert.True(LastGood(broker, "output").GetProperty("v").GetBoolean());
        Assert.Equal(3_000_000_000, LastGood(broker, "out_dword").GetProperty("v").GetInt64());
        Assert.Equal(200, LastGood(broker, "status").GetProperty("v").GetInt64());
        Assert.Equal(-5, LastGood(broker, "sint").GetProperty("v").GetInt64());
        // Good messages are the norm, not a lucky last cycle: most of every tag's messages are good.
        foreach (var tag in new[] { "count", "temp", "flag", "out_dword" })
        {
            var all = All(broker, tag);
            Assert.True(all.Count(e => e.GetProperty("q").GetString() == "good") * 2 > all.Count, tag);
        }
        var seqs = broker.Received.Where(m => m.Topic.StartsWith("es/t/press1/", StringComparison.Ordinal))
            .Select(m => TestConfig.Json(m.Payload).GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => (long)i), seqs);
        // 14 items fit one job of a 240-byte PDU: one read-var per cycle, one connection.
        Assert.Equal(1, plc.Connections);
    }

    [Fact]
    public async Task S7Tags_InSparkplug_DataCarriesTheValues_AndBirthTheDatatypes()
    {
        await using var plc = S7TestPlc.Start();
        SeedKnownValues(plc);
        await using var broker = await EmbeddedBroker.StartAsync();
        var tags = """
                    - { name: count, address: DB1.DBW2, type: int16 }
                    - { name: temp, address: DB1.DBD10, type: float32 }
                    - { name: flag, address: DB1.DBX0.1 }
                    - { name: missing, address: DB7.DBW0, type: int16 }
            """;
        await using (var service = TestConfig.Service(TestConfig.Load(Yaml(plc.Port, broker.Port, tags, format: "sparkplug-b"))))
        {
            service.Start();
            await TestConfig.Until(() => broker.Received.Count(m => m.Topic == "spBv1.0/site1/DDATA/gw1/press1") >= 2);
        }
        var dbirth = Payload.Parser.ParseFrom(broker.Received.First(m => m.Topic == "spBv1.0/site1/DBIRTH/gw1/press1").Payload);
        Assert.Equal(["count", "temp", "flag", "missing"], dbirth.Metrics.Select(m => m.Name));
        var data = Payload.Parser.ParseFrom(broker.Received.Last(m => m.Topic == "spBv1.0/site1/DDATA/gw1/press1").Payload);
        Assert.Equal(-1234, unchecked((int)data.Metrics[0].IntValue));
        Assert.Equal(2U, dbirth.Metrics[0].Datatype); // Sparkplug Int16
        Assert.Equal(21.5f, data.Metrics[1].FloatValue);
        Assert.True(data.Metrics[2].BooleanValue);
        Assert.True(data.Metrics[3].IsNull);
    }

    [Fact]
    public async Task ItemReturnCode_MakesThatTagBad_WithTheCode_OthersInTheSameJobStayGood()
    {
        await using var plc = S7TestPlc.Start();
        SeedKnownValues(plc);
        await using var broker = await EmbeddedBroker.StartAsync();
        var tags = """
                    - { name: count, address: DB1.DBW2, type: int16 }
                    - { name: no_db, address: DB99.DBW0, type: int16 }
                    - { name: past_end, address: DB1.DBD100, type: float32 }
                    - { name: marker, address: MW10, type: int16 }
            """;
        await using (var service = TestConfig.Service(TestConfig.Load(Yaml(plc.Port, broker.Port, tags))))
        {
            service.Start();
            await TestConfig.Until(() => broker.Received.Count(m => m.Topic == "es/t/press1/marker") >= 2);
        }
        Assert.All(All(broker, "no_db"), m => Assert.Equal(("bad", JsonValueKind.Null), (m.GetProperty("q").GetString(), m.GetProperty("v").ValueKind)));
        Assert.Contains(All(broker, "no_db"), m => m.GetProperty("reason").GetString() == "return-code-0A");
        Assert.Contains(All(broker, "past_end"), m => m.GetProperty("reason").GetString() == "return-code-05");
        Assert.Equal(-1234, LastGood(broker, "count").GetProperty("v").GetInt64());
        Assert.Equal(321, LastGood(broker, "marker").GetProperty("v").GetInt64());
        // All four were items of one job: the refused items did not cost the others their values.
        Assert.True(plc.ReadJobs <= broker.Received.Count(m => m.Topic == "es/t/press1/marker") + 1, $"{plc.ReadJobs} jobs");
    }

    /// <summary>
    /// The diode, on the wire: many tags (more than one job's worth at a 240-byte PDU and the 20-item limit), refused
    /// items and a connection the PLC drops mid-poll; every TPKT packet the poller sent is judged. Each connection starts
    /// with exactly one CR, then one setup-communication, then read-var jobs only; every job fits the negotiated PDU.
    /// </summary>
    [Fact]
    public async Task EveryByteThePollerSends_IsACr_SetupCommunication_OrReadVar()
    {
        await using var plc = S7TestPlc.Start(pduSize: 240);
        var (db1, m) = SeedKnownValues(plc);
        plc.DropAtReadJob = 4;
        await using var broker = await EmbeddedBroker.StartAsync();
        var lines = new List<string>();
        for (int i = 0; i < 45; i++)
        {
            string n = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            lines.Add((i % 3) switch
            {
                0 => "            - { name: w" + n + ", address: DB1.DBW" + (i % 30) + ", type: int16 }",
                1 => "            - { name: b" + n + ", address: M" + (i % 16) + "." + (i % 8) + " }",
                _ => "            - { name: d" + n + ", address: DB" + ((i % 2) + 1) + ".DBD" + (i % 20) + ", type: float32 }",
            });
        }
        var tags = string.Join("\n", lines);
        await using (var service = TestConfig.Service(TestConfig.Load(Yaml(plc.Port, broker.Port, tags, every: "50ms"))))
        {
            service.Start();
            // Past the dropped connection: values good again on the second.
            await TestConfig.Until(() => plc.Connections >= 2 && plc.ReadJobs >= 12, state: () => $"connections {plc.Connections}, read jobs {plc.ReadJobs}");
            await service.StopPollingAsync();
        }
        var received = plc.Received;
        Assert.NotEmpty(received);
        int readJobs = 0;
        foreach (var connection in received.GroupBy(r => r.Connection))
        {
            var packets = connection.Select(r => r.Packet).ToList();
            Assert.Equal(OperationStatus.Done, TpktFramer.TryReadFrame(packets[0], out var cr, out _, out _));
            Assert.Equal(CotpTpduType.ConnectionRequest, cr.Type);
            Assert.Equal([0x01, 0x00], cr.CallingTsap.ToArray());
            Assert.Equal([0x03, 0x02], cr.CalledTsap.ToArray());
            var reassembler = new CotpReassembler(new byte[1024], 1024);
            var functions = new List<S7Function>();
            foreach (var packet in packets.Skip(1))
            {
                Assert.Equal(OperationStatus.Done, TpktFramer.TryReadFrame(packet, out var tpdu, out int consumed, out _));
                Assert.Equal(packet.Length, consumed);
                Assert.Equal(CotpTpduType.Data, tpdu.Type);
                if (reassembler.Append(tpdu, out var pdu, out _) != OperationStatus.Done)
                {
                    continue;
                }
                Assert.True(pdu.Length <= 240, $"a PDU of {pdu.Length} bytes on a 240-byte connection");
                var request = S7Pdu.ParseRequest(pdu);
                Assert.Equal(S7RequestStatus.Ok, request.Status);
                Assert.Equal(S7Rosctr.Job, request.Rosctr);
                functions.Add(request.Function);
                if (request.Function == S7Function.ReadVar)
                {
                    readJobs++;
                    Assert.InRange(request.ItemCount, 1, 20);
                    foreach (var item in request.Items)
                    {
                        Assert.Equal(S7SyntaxId.S7Any, item.Syntax);
                        Assert.Contains(item.Area, (S7Area[])[S7Area.DataBlocks, S7Area.Flags]);
                    }
                }
            }
            Assert.Equal(S7Function.SetupCommunication, functions[0]);
            Assert.All(functions.Skip(1), f => Assert.Equal(S7Function.ReadVar, f));
        }
        Assert.Equal(plc.ReadJobs, readJobs);
        // 45 items (3 × 15 of 4-byte, 15 of 1-byte, 15 of 2-byte data) need 3 jobs per cycle: 20, 20, 5 items.
        Assert.True(readJobs >= 12);
        // After the PLC dropped the connection the poller connected again and read good values. Every tag, in each
        // of the three jobs (19, 19 and 7 items: 12 + 12 × 19 = 240), has the value the PLC holds for it; DB2 is not there.
        for (int i = 0; i < 45; i++)
        {
            string name = (i % 3) switch { 0 => "w", 1 => "b", _ => "d" } + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            switch (i % 3)
            {
                case 0:
                    Assert.Equal(BinaryPrimitives.ReadInt16BigEndian(db1.AsSpan(i % 30)), LastGood(broker, name).GetProperty("v").GetInt64());
                    break;
                case 1:
                    Assert.Equal(((m[i % 16] >> (i % 8)) & 1) == 1, LastGood(broker, name).GetProperty("v").GetBoolean());
                    break;
                default:
                    if (i % 2 == 1)
                    {
                        Assert.Contains(All(broker, name), e => e.GetProperty("reason").GetString() == "return-code-0A");
                    }
                    break;
            }
        }
    }

    [Fact]
    public async Task ConnectRefused_TagsUnreachable_Noticed_AndRetriedWithABackoff()
    {
        await using var plc = S7TestPlc.Start();
        plc.RefuseConnect = true;
        await using var broker = await EmbeddedBroker.StartAsync();
        var notices = new ConcurrentQueue<TelemetryNotice>();
        var watch = Stopwatch.StartNew();
        await using (var service = TestConfig.Service(TestConfig.Load(Yaml(plc.Port, broker.Port, "            - { name: count, address: DB1.DBW2, type: int16 }", every: "20ms")), notices))
        {
            service.Start();
            // A second attempt comes only after the first backoff (1 s): the refusal streak spans it.
            await TestConfig.Until(() => broker.Received.Count(m => m.Topic == "es/t/press1/count") >= 20 && plc.Connections >= 2, state: () => $"connections {plc.Connections}");
            await service.StopPollingAsync();
        }
        double seconds = watch.Elapsed.TotalSeconds;
        var count = Last(broker, "count");
        Assert.Equal("bad", count.GetProperty("q").GetString());
        Assert.Equal("unreachable", count.GetProperty("reason").GetString());
        var notice = Assert.Single(notices, n => n.Reason == "poll-s7-connect-refused");
        Assert.Contains("TSAP 03.02", notice.Detail, StringComparison.Ordinal);
        // One event for the streak, not one per attempt. Every 20 ms without a backoff would be 50 connects a second;
        // with 1 s doubling there is at most one per second.
        Assert.InRange(plc.Connections, 2, 1 + (int)seconds);
        Assert.All(plc.Received, r => Assert.Equal(CotpTpduType.ConnectionRequest, TpktFramer.TryReadFrame(r.Packet, out var t, out _, out _) == OperationStatus.Done ? t.Type : CotpTpduType.Unknown));
    }

    /// <summary>
    /// A job the PLC leaves unanswered: its tags are stale with <c>timeout</c> after the response timeout (1 s, as the
    /// Modbus poll's), the connection is dropped (AmQ 1: no second job beside an unanswered one) and the next cycle
    /// connects again — CR and setup-communication first — and reads good values.
    /// </summary>
    [Fact]
    public async Task UnansweredJob_TimeoutThenANewConnection_GoodAgain()
    {
        await using var plc = S7TestPlc.Start();
        SeedKnownValues(plc);
        plc.SilentAtReadJob = 2;
        await using var broker = await EmbeddedBroker.StartAsync();
        var tags = "            - { name: count, address: DB1.DBW2, type: int16 }";
        await using (var service = TestConfig.Service(TestConfig.Load(Yaml(plc.Port, broker.Port, tags))))
        {
            service.Start();
            await TestConfig.Until(() => plc.Connections >= 2 && plc.ReadJobs >= 4, state: () => $"connections {plc.Connections}, jobs {plc.ReadJobs}");
            await service.StopPollingAsync();
        }
        var counts = broker.Received.Where(m => m.Topic == "es/t/press1/count").Select(m => TestConfig.Json(m.Payload)).ToList();
        Assert.Equal("good", counts[0].GetProperty("q").GetString());
        var timedOut = counts.First(c => c.GetProperty("q").GetString() != "good");
        Assert.Equal(("stale", "timeout", -1234L), (timedOut.GetProperty("q").GetString(), timedOut.GetProperty("reason").GetString(), timedOut.GetProperty("v").GetInt64()));
        Assert.Equal("good", counts[^1].GetProperty("q").GetString());
        // The second connection began as the first did.
        var second = plc.Received.Where(r => r.Connection == 2).Select(r => r.Packet).ToList();
        Assert.Equal(CotpTpduType.ConnectionRequest, TpktFramer.TryReadFrame(second[0], out var cr, out _, out _) == OperationStatus.Done ? cr.Type : CotpTpduType.Unknown);
        Assert.Equal(0xF0, second[1][7 + 10]); // setup-communication's function byte
    }

    [Fact]
    public async Task PlcGone_TagsGoStale_WithTheLastGoodValue()
    {
        var plc = S7TestPlc.Start();
        int port = plc.Port;
        SeedKnownValues(plc);
        await using var broker = await EmbeddedBroker.StartAsync();
        var tags = "            - { name: count, address: DB1.DBW2, type: int16 }";
        await using var service = TestConfig.Service(TestConfig.Load(Yaml(port, broker.Port, tags)));
        service.Start();
        await TestConfig.Until(() => broker.Received.Any(m => m.Topic == "es/t/press1/count"));
        await plc.DisposeAsync();
        await TestConfig.Until(() => broker.Received.Any(m => m.Topic == "es/t/press1/count" && TestConfig.Json(m.Payload).GetProperty("q").GetString() == "stale"));
        var stale = TestConfig.Json(broker.Received.First(m => m.Topic == "es/t/press1/count" && TestConfig.Json(m.Payload).GetProperty("q").GetString() == "stale").Payload);
        Assert.Equal(-1234, stale.GetProperty("v").GetInt64());
        Assert.Contains(stale.GetProperty("reason").GetString(), (string[])["unreachable", "timeout"]);
    }
}
