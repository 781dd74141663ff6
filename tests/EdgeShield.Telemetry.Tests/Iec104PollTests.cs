using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json;
using EdgeShield.Policy;
using EdgeShield.Transport;

namespace EdgeShield.Telemetry.Tests;

/// <summary>
/// <c>protocol: iec104</c> poll entries through the whole service (client, log, publisher, broker) against
/// <see cref="Iec104ScriptedStation"/>, which speaks raw bytes and records every byte the client writes.
/// </summary>
public class Iec104PollTests
{
    private const ushort Ca = 7;
    private static readonly DateTime CounterTime = new(2026, 11, 2, 10, 20, 30, 456, DateTimeKind.Utc);

    /// <summary>Short timers so a test sees t2, t3 and reconnects in seconds; w stays the standard's 8.</summary>
    private static readonly Iec104ClientOptions Fast = new()
    {
        T1 = TimeSpan.FromSeconds(3),
        T2 = TimeSpan.FromMilliseconds(300),
        T3 = TimeSpan.FromSeconds(30),
        MinBackoff = TimeSpan.FromMilliseconds(100),
        MaxBackoff = TimeSpan.FromMilliseconds(400),
        Tick = TimeSpan.FromMilliseconds(20),
    };

    /// <summary>
    /// The entry; <paramref name="energyType"/> empty leaves the counter tag untyped (then no counter interrogation is sent);
    /// <paramref name="entryKeys"/> are more keys of the entry, one per line, indented as the entry's.
    /// </summary>
    private static string Yaml(int stationPort, int brokerPort, string format = "json", string every = "1s", string energyType = "M_IT_NA_1", string extraTags = "", string entryKeys = "") => $$"""
        gateway: { name: gw1, site: site1 }
        telemetry:
          mqtt: { broker: mqtt://127.0.0.1:{{brokerPort}}, client-id: t1, topic-prefix: es/t }
          format: {{format}}
          buffer: { path: {{TestConfig.TempDir()}}, max-mb: 4 }
          poll:
            - device: rtu7
              protocol: iec104
              upstream: tcp://127.0.0.1:{{stationPort}}
              ca: {{Ca}}
              every: {{every}}
        {{entryKeys}}
              tags:
                - { name: breaker, ioa: 100, type: M_SP_NA_1 }
                - { name: switch, ioa: 110 }
                - { name: feeder-mw, ioa: 200, unit: MW }
                - { name: volts, ioa: 210, scale: 0.1 }
                - { name: norm, ioa: 220 }
                - { name: energy, ioa: 300{{(energyType.Length > 0 ? ", type: " + energyType : "")}} }
                - { name: absent, ioa: 555 }
        {{extraTags}}
        """;

    /// <summary>What the station holds: one ASDU per kind, cause 20, plus a point no tag names and an ASDU of another CA.</summary>
    private static void SeedPoints(Iec104ScriptedStation station)
    {
        var counter = new byte[5 + 7];
        BinaryPrimitives.WriteInt32LittleEndian(counter, 123456);
        Iec104ScriptedStation.Cp56(CounterTime).CopyTo(counter, 5);
        station.Points.AddRange(
        [
            Iec104ScriptedStation.Asdu(1, 20, Ca, (100, [0x01]), (999, [0x00])),
            Iec104ScriptedStation.Asdu(3, 20, Ca, (110, [0x02])),
            Iec104ScriptedStation.Asdu(13, 20, Ca, (200, Iec104ScriptedStation.Float(21.5f))),
            Iec104ScriptedStation.Asdu(11, 20, Ca, (210, Iec104ScriptedStation.Scaled(-300))),
            Iec104ScriptedStation.Asdu(9, 20, Ca, (220, Iec104ScriptedStation.Scaled(0x4000))),
            Iec104ScriptedStation.Asdu(37, 20, Ca, (300, counter)),
            Iec104ScriptedStation.Asdu(1, 20, 8, (100, [0x00])),
        ]);
    }

    private static TelemetryService Service(TelemetryConfig config, ConcurrentQueue<TelemetryNotice>? notices = null, Iec104ClientOptions? options = null) =>
        new(config, "gw1", "site1", a => new TcpUpstream(a.Host, a.Port, TimeSpan.FromSeconds(1)), n => notices?.Enqueue(n), TimeSpan.FromSeconds(1))
        {
            Iec104Options = options ?? Fast,
        };

    private static List<JsonElement> All(EmbeddedBroker broker, string tag) =>
        [.. broker.Received.Where(m => m.Topic == "es/t/rtu7/" + tag).Select(m => TestConfig.Json(m.Payload))];

    private static JsonElement Last(EmbeddedBroker broker, string tag) => All(broker, tag).Last();

    /// <summary>
    /// The diode on the wire: every APDU the client wrote is STARTDT act, TESTFR act or con, an S-frame, the station
    /// interrogation C_IC_NA_1 cause 6 QOI 20 or the counter interrogation C_CI_NA_1 cause 6 QCC 5 (read: no freeze, no
    /// reset) to the entry's CA, and each connection began with STARTDT act.
    /// </summary>
    internal static void AssertOnlyReadOnlyFrames(IReadOnlyList<(int Connection, byte[] Frame)> received, ushort ca)
    {
        Assert.NotEmpty(received);
        foreach (var group in received.GroupBy(r => r.Connection))
        {
            Assert.Equal(new byte[] { 0x68, 4, 0x07, 0, 0, 0 }, group.First().Frame);
        }
        foreach (var (connection, frame) in received)
        {
            string hex = Convert.ToHexString(frame);
            Assert.True(frame[0] == 0x68 && frame[1] == frame.Length - 2, $"connection {connection}: not an APDU: {hex}");
            bool ok = frame.Length switch
            {
                6 when frame[2] is 0x07 or 0x43 or 0x83 => frame[3] == 0 && frame[4] == 0 && frame[5] == 0,
                6 when frame[2] == 0x01 => frame[3] == 0 && (frame[4] & 1) == 0,
                // I-frame: C1 bit 0 clear; ASDU 64 01 06 00 CA CA 00 00 00 14, or 65 01 06 00 CA CA 00 00 00 05.
                16 => (frame[2] & 1) == 0 && (frame.AsSpan(6).SequenceEqual(new byte[] { 100, 1, 6, 0, (byte)ca, (byte)(ca >> 8), 0, 0, 0, 20 })
                    || frame.AsSpan(6).SequenceEqual(new byte[] { 101, 1, 6, 0, (byte)ca, (byte)(ca >> 8), 0, 0, 0, 5 })),
                _ => false,
            };
            Assert.True(ok, $"connection {connection}: the client wrote a frame that is not STARTDT act, TESTFR, an S-frame or a station or counter interrogation: {hex}");
        }
    }

    [Fact]
    public async Task Iec104_Interrogation_PublishesEveryNamedPoint_ByType_WithTheTimeTag_AndContiguousSeq()
    {
        await using var station = Iec104ScriptedStation.Start();
        SeedPoints(station);
        await using var broker = await EmbeddedBroker.StartAsync();
        long ignored;
        await using (var service = Service(TestConfig.Load(Yaml(station.Port, broker.Port))))
        {
            service.Start();
            // One station interrogation, then (a tag is typed M_IT) one counter interrogation; the next are a minute away.
            await TestConfig.Until(() => All(broker, "absent").Count >= 1 && service.ReadsSent >= 2);
            ignored = service.Iec104PointsIgnored;
            Assert.Equal(2, service.ReadsSent);
        }
        Assert.True(Last(broker, "breaker").GetProperty("v").GetBoolean());
        Assert.Equal("good", Last(broker, "breaker").GetProperty("q").GetString());
        Assert.Equal(2, Last(broker, "switch").GetProperty("v").GetInt64());
        Assert.Equal(21.5, Last(broker, "feeder-mw").GetProperty("v").GetDouble());
        Assert.Equal("MW", Last(broker, "feeder-mw").GetProperty("u").GetString());
        Assert.Equal(-30.0, Last(broker, "volts").GetProperty("v").GetDouble(), 9);
        Assert.Equal(0.5, Last(broker, "norm").GetProperty("v").GetDouble());
        Assert.Equal(123456, Last(broker, "energy").GetProperty("v").GetInt64());
        Assert.Equal("2026-11-02T10:20:30.456Z", Last(broker, "energy").GetProperty("ts").GetString());
        // Not sent by the station in its interrogation: bad, with the reason.
        var absent = Assert.Single(All(broker, "absent"));
        Assert.Equal(("bad", "not-interrogated", JsonValueKind.Null), (absent.GetProperty("q").GetString(), absent.GetProperty("reason").GetString(), absent.GetProperty("v").ValueKind));
        // IOA 999 names no tag: counted, not published; the ASDU of CA 8 was not this station's: breaker stayed true.
        Assert.Equal(1, ignored);
        Assert.Single(All(broker, "breaker"));
        var seqs = broker.Received.Where(m => m.Topic.StartsWith("es/t/rtu7/", StringComparison.Ordinal))
            .Select(m => TestConfig.Json(m.Payload).GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => (long)i), seqs);
        AssertOnlyReadOnlyFrames(station.Received, Ca);
        Assert.Equal(1, station.Interrogations);
        Assert.Equal(1, station.CounterInterrogations);
        // This station sent its counter in the station interrogation too: it was seen, so the (empty) counter
        // interrogation's end did not call it not interrogated.
        Assert.Single(All(broker, "energy"));
    }

    /// <summary>IEC 60870-5-101 7.4.5 (and -104): integrated totals are read by counter interrogation, not by the station interrogation.</summary>
    private static byte[] Counter(int value, byte sequence = 0)
    {
        var element = new byte[5];
        BinaryPrimitives.WriteInt32LittleEndian(element, value);
        element[4] = sequence;
        return element;
    }

    [Fact]
    public async Task Iec104_CounterTags_AreReadByACounterInterrogation_ThatNeitherFreezesNorResets_AfterTheStationInterrogation()
    {
        await using var station = Iec104ScriptedStation.Start();
        SeedPoints(station);
        station.Points.RemoveAll(a => a[0] == 37); // as the standard has it: no counters in the station interrogation
        station.Counters.Add(Iec104ScriptedStation.Asdu(15, 37, Ca, (300, Counter(987654, 3)), (301, Counter(-5))));
        await using var broker = await EmbeddedBroker.StartAsync();
        await using (var service = Service(TestConfig.Load(Yaml(station.Port, broker.Port,
            extraTags: "        - { name: export, ioa: 301, type: M_IT_TB_1 }\n        - { name: import, ioa: 302, type: M_IT_NA_1, unit: kWh }"))))
        {
            service.Start();
            await TestConfig.Until(() => All(broker, "import").Count >= 1);
        }
        // The station interrogation's end judged the other tags only: absent is not interrogated, energy was not.
        Assert.Equal("not-interrogated", Assert.Single(All(broker, "absent")).GetProperty("reason").GetString());
        var energy = Assert.Single(All(broker, "energy"));
        Assert.Equal(("good", 987654L), (energy.GetProperty("q").GetString(), energy.GetProperty("v").GetInt64()));
        Assert.Equal(-5, Assert.Single(All(broker, "export")).GetProperty("v").GetInt64());
        // IOA 302 is not among the station's counters: bad when the counter interrogation ended.
        var import = Assert.Single(All(broker, "import"));
        Assert.Equal(("bad", "not-interrogated", "kWh"), (import.GetProperty("q").GetString(), import.GetProperty("reason").GetString(), import.GetProperty("u").GetString()));
        AssertOnlyReadOnlyFrames(station.Received, Ca);
        // The counter interrogation went once, after the station interrogation, with QCC 5 (RQT 5, FRZ 0).
        var frames = station.Received.Select(r => r.Frame).ToList();
        int counters = frames.FindIndex(f => f.Length == 16 && f[6] == 101);
        Assert.True(counters > frames.FindIndex(f => f.Length == 16 && f[6] == 100), "the counter interrogation went before the station interrogation");
        Assert.Equal(5, frames[counters][15]);
        Assert.Equal(1, station.CounterInterrogations);
    }

    [Fact]
    public async Task Iec104_ARefusedCounterInterrogation_IsTheCounterTagsReason_AndTheConnectionStaysUp()
    {
        await using var station = Iec104ScriptedStation.Start();
        SeedPoints(station);
        station.Points.RemoveAll(a => a[0] == 37);
        station.RefuseCounterInterrogation = true;
        await using var broker = await EmbeddedBroker.StartAsync();
        var notices = new ConcurrentQueue<TelemetryNotice>();
        await using (var service = Service(TestConfig.Load(Yaml(station.Port, broker.Port)), notices))
        {
            service.Start();
            await TestConfig.Until(() => All(broker, "energy").Count >= 1);
            // The link is still up and the station's spontaneous data still arrive.
            await station.SendAsduAsync(Iec104ScriptedStation.Asdu(13, 3, Ca, (200, Iec104ScriptedStation.Float(5.5f))));
            await TestConfig.Until(() => All(broker, "feeder-mw").Count >= 2);
        }
        var energy = Assert.Single(All(broker, "energy"));
        Assert.Equal(("bad", "counter-interrogation-refused"), (energy.GetProperty("q").GetString(), energy.GetProperty("reason").GetString()));
        Assert.Equal(5.5, Last(broker, "feeder-mw").GetProperty("v").GetDouble());
        Assert.Equal(1, station.Connections);
        Assert.DoesNotContain(notices, n => n.Reason == "poll-iec104-closed");
        Assert.Equal(1, station.CounterInterrogations);
        AssertOnlyReadOnlyFrames(station.Received, Ca);
    }

    [Fact]
    public async Task Iec104_SpontaneousChanges_ArePublished_WithQualityBitsAsReasons()
    {
        await using var station = Iec104ScriptedStation.Start();
        SeedPoints(station);
        await using var broker = await EmbeddedBroker.StartAsync();
        var at = new DateTime(2026, 12, 1, 8, 0, 1, 250, DateTimeKind.Utc);
        await using (var service = Service(TestConfig.Load(Yaml(station.Port, broker.Port))))
        {
            service.Start();
            await TestConfig.Until(() => All(broker, "absent").Count >= 1);
            // Cause 3: the breaker opens (time-tagged single point), the feed is not topical, the voltage invalid.
            await station.SendAsduAsync(Iec104ScriptedStation.Asdu(30, 3, Ca, (100, [0x00, .. Iec104ScriptedStation.Cp56(at)])));
            await station.SendAsduAsync(Iec104ScriptedStation.Asdu(13, 3, Ca, (200, Iec104ScriptedStation.Float(22.25f, qds: 0x40))));
            await station.SendAsduAsync(Iec104ScriptedStation.Asdu(11, 3, Ca, (210, Iec104ScriptedStation.Scaled(-900, qds: 0x80))));
            await station.SendAsduAsync(Iec104ScriptedStation.Asdu(13, 3, Ca, (100, Iec104ScriptedStation.Float(1f))));
            await station.SendAsduAsync(Iec104ScriptedStation.Asdu(31, 3, Ca, (110, [0x01 | 0x10, .. Iec104ScriptedStation.Cp56(at)])));
            await TestConfig.Until(() => All(broker, "switch").Count >= 2 && All(broker, "breaker").Count >= 3);
        }
        var breaker = All(broker, "breaker");
        Assert.False(breaker[1].GetProperty("v").GetBoolean());
        Assert.Equal("good", breaker[1].GetProperty("q").GetString());
        Assert.Equal("2026-12-01T08:00:01.250Z", breaker[1].GetProperty("ts").GetString());
        // A float at the breaker's IOA is not the single point the tag expects: the last value, stale, with the reason.
        Assert.Equal(("stale", "unexpected-M_ME_NC_1", false), (breaker[2].GetProperty("q").GetString(), breaker[2].GetProperty("reason").GetString(), breaker[2].GetProperty("v").GetBoolean()));
        var feed = Last(broker, "feeder-mw");
        Assert.Equal(("stale", "not-topical", 22.25), (feed.GetProperty("q").GetString(), feed.GetProperty("reason").GetString(), feed.GetProperty("v").GetDouble()));
        // IV: the station's value must not be used: the last good one, stale.
        var volts = Last(broker, "volts");
        Assert.Equal(("stale", "invalid"), (volts.GetProperty("q").GetString(), volts.GetProperty("reason").GetString()));
        Assert.Equal(-30.0, volts.GetProperty("v").GetDouble(), 9);
        var sw = Last(broker, "switch");
        Assert.Equal(("stale", "blocked", 1L), (sw.GetProperty("q").GetString(), sw.GetProperty("reason").GetString(), sw.GetProperty("v").GetInt64()));
        AssertOnlyReadOnlyFrames(station.Received, Ca);
    }

    /// <summary>
    /// A station on local time (<c>station-time: +01:00</c>, as some utilities run them): its CP56Time2a is local standard
    /// time, an hour more when it sets SU for summer time; the published sample time is UTC.
    /// </summary>
    [Fact]
    public async Task Iec104_StationOnLocalTime_TimeTagsArePublishedAsUtc_SummerTimeByTheSuBit()
    {
        await using var station = Iec104ScriptedStation.Start();
        SeedPoints(station);
        await using var broker = await EmbeddedBroker.StartAsync();
        var winter = new DateTime(2026, 1, 15, 10, 0, 0, 250, DateTimeKind.Unspecified);
        var summer = new DateTime(2026, 7, 1, 14, 30, 0, 0, DateTimeKind.Unspecified);
        byte[] SummerTag()
        {
            var tag = Iec104ScriptedStation.Cp56(summer);
            tag[3] |= 0x80; // SU
            return tag;
        }
        await using (var service = Service(TestConfig.Load(Yaml(station.Port, broker.Port, entryKeys: "      station-time: \"+01:00\""))))
        {
            service.Start();
            await TestConfig.Until(() => All(broker, "absent").Count >= 1);
            await station.SendAsduAsync(Iec104ScriptedStation.Asdu(30, 3, Ca, (100, [0x00, .. Iec104ScriptedStation.Cp56(winter)])));
            await station.SendAsduAsync(Iec104ScriptedStation.Asdu(30, 3, Ca, (100, [0x01, .. SummerTag()])));
            await TestConfig.Until(() => All(broker, "breaker").Count >= 3);
        }
        var breaker = All(broker, "breaker");
        Assert.Equal("2026-01-15T09:00:00.250Z", breaker[1].GetProperty("ts").GetString()); // 10:00 CET
        Assert.Equal("2026-07-01T12:30:00.000Z", breaker[2].GetProperty("ts").GetString()); // 14:30 CEST
    }

    /// <summary>A protection relay's event (38), start events (39) and output circuit information (40): values, quality and time.</summary>
    [Fact]
    public async Task Iec104_ProtectionEvents_ArePublished_WithTheRelaysTimeTag_AndTheirQuality()
    {
        await using var station = Iec104ScriptedStation.Start();
        SeedPoints(station);
        await using var broker = await EmbeddedBroker.StartAsync();
        var at = new DateTime(2026, 12, 3, 6, 30, 15, 125, DateTimeKind.Utc);
        byte[] Elapsed(ushort ms) => [(byte)ms, (byte)(ms >> 8)]; // CP16Time2a: not published
        await using (var service = Service(TestConfig.Load(Yaml(station.Port, broker.Port,
            extraTags: "        - { name: trip, ioa: 400, type: M_EP_TD_1 }\n        - { name: start, ioa: 401, type: 39 }\n        - { name: command, ioa: 402 }"))))
        {
            service.Start();
            await TestConfig.Until(() => All(broker, "absent").Count >= 1);
            await station.SendAsduAsync(Iec104ScriptedStation.Asdu(38, 3, Ca, (400, [0x02, .. Elapsed(35), .. Iec104ScriptedStation.Cp56(at)])));
            // General start, phases L1 and L3; QDP with NT set.
            await station.SendAsduAsync(Iec104ScriptedStation.Asdu(39, 3, Ca, (401, [0x0B, 0x40, .. Elapsed(20), .. Iec104ScriptedStation.Cp56(at)])));
            await station.SendAsduAsync(Iec104ScriptedStation.Asdu(40, 3, Ca, (402, [0x03, 0x00, .. Elapsed(40), .. Iec104ScriptedStation.Cp56(at)])));
            await TestConfig.Until(() => All(broker, "command").Any(m => m.GetProperty("q").GetString() != "bad"));
        }
        var trip = Last(broker, "trip");
        Assert.Equal(("good", 2L, "2026-12-03T06:30:15.125Z"), (trip.GetProperty("q").GetString(), trip.GetProperty("v").GetInt64(), trip.GetProperty("ts").GetString()));
        var start = Last(broker, "start");
        Assert.Equal(("stale", "not-topical", 0x0BL), (start.GetProperty("q").GetString(), start.GetProperty("reason").GetString(), start.GetProperty("v").GetInt64()));
        Assert.Equal(3, Last(broker, "command").GetProperty("v").GetInt64());
        AssertOnlyReadOnlyFrames(station.Received, Ca);
    }

    [Fact]
    public async Task Iec104_EndOfInitialisation_TriggersAnotherInterrogation_OnTheSameConnection()
    {
        await using var station = Iec104ScriptedStation.Start();
        SeedPoints(station);
        await using var broker = await EmbeddedBroker.StartAsync();
        await using (var service = Service(TestConfig.Load(Yaml(station.Port, broker.Port))))
        {
            service.Start();
            await TestConfig.Until(() => All(broker, "absent").Count >= 1);
            // The station restarted its application: M_EI_NA_1, cause 4, COI 0; and now holds another value.
            station.Points[2] = Iec104ScriptedStation.Asdu(13, 20, Ca, (200, Iec104ScriptedStation.Float(99.5f)));
            await station.SendAsduAsync(Iec104ScriptedStation.Asdu(70, 4, Ca, (0, [0x00])));
            await TestConfig.Until(() => station.Interrogations >= 2 && All(broker, "feeder-mw").Count >= 2);
        }
        Assert.Equal(1, station.Connections);
        Assert.Equal(99.5, Last(broker, "feeder-mw").GetProperty("v").GetDouble());
        AssertOnlyReadOnlyFrames(station.Received, Ca);
    }

    [Fact]
    public async Task Iec104_TestFrAct_IsAnswered_AndAfterT3Idle_TheClientSendsTestFr()
    {
        await using var station = Iec104ScriptedStation.Start();
        SeedPoints(station);
        await using var broker = await EmbeddedBroker.StartAsync();
        await using (var service = Service(TestConfig.Load(Yaml(station.Port, broker.Port)), options: Fast with { T3 = TimeSpan.FromMilliseconds(500) }))
        {
            service.Start();
            await TestConfig.Until(() => All(broker, "absent").Count >= 1);
            await station.SendRawAsync([0x68, 4, 0x43, 0, 0, 0]);
            await TestConfig.Until(() => station.Received.Any(r => r.Frame[2] == 0x83));
            // Then silence: after t3 the client tests the link, the station answers, and it stays up.
            await TestConfig.Until(() => station.Received.Count(r => r.Frame[2] == 0x43) >= 2);
        }
        Assert.Equal(1, station.Connections);
        AssertOnlyReadOnlyFrames(station.Received, Ca);
    }

    [Fact]
    public async Task Iec104_TestFrUnanswered_ClosesAfterT1_AndReconnects()
    {
        await using var station = Iec104ScriptedStation.Start();
        SeedPoints(station);
        station.IgnoreTestFr = true;
        await using var broker = await EmbeddedBroker.StartAsync();
        await using (var service = Service(TestConfig.Load(Yaml(station.Port, broker.Port)), options: Fast with { T1 = TimeSpan.FromMilliseconds(500), T3 = TimeSpan.FromMilliseconds(300) }))
        {
            service.Start();
            await TestConfig.Until(() => station.Connections >= 2 && station.Interrogations >= 2);
        }
        AssertOnlyReadOnlyFrames(station.Received, Ca);
    }

    [Fact]
    public async Task Iec104_SequenceError_ClosesTheConnection_ReconnectsAndReinterrogates_TagsStaleMeanwhile()
    {
        await using var station = Iec104ScriptedStation.Start();
        SeedPoints(station);
        await using var broker = await EmbeddedBroker.StartAsync();
        var notices = new ConcurrentQueue<TelemetryNotice>();
        // The counter tag untyped: no counter interrogation, so after the station interrogation's 9 frames the client expects N(S) 9.
        await using (var service = Service(TestConfig.Load(Yaml(station.Port, broker.Port, energyType: "")), notices))
        {
            service.Start();
            await TestConfig.Until(() => All(broker, "absent").Count >= 1);
            // N(S) 100 where 9 is expected.
            await station.SendAsduWithSequenceAsync(Iec104ScriptedStation.Asdu(1, 3, Ca, (100, [0x00])), 100);
            await TestConfig.Until(() => station.Connections >= 2 && station.Interrogations >= 2 && All(broker, "absent").Count >= 3);
            // A malformed APDU (two U functions at once, CVE-2026-1773's shape) closes it too.
            await station.SendRawAsync([0x68, 4, 0x47, 0, 0, 0]);
            await TestConfig.Until(() => station.Connections >= 3 && station.Interrogations >= 3 && All(broker, "absent").Count >= 5);
        }
        // The value from the wrong N(S) was never published: breaker good true, stale true (unreachable), good true again.
        var breaker = All(broker, "breaker");
        Assert.All(breaker, b => Assert.True(b.GetProperty("v").GetBoolean()));
        Assert.Contains(breaker, b => b.GetProperty("q").GetString() == "stale" && b.GetProperty("reason").GetString() == "unreachable");
        Assert.Equal("good", All(broker, "feeder-mw").Last().GetProperty("q").GetString());
        Assert.Contains(notices, n => n.Reason == "poll-iec104-closed" && n.Detail.Contains("sequence error: N(S) 100, expected 9", StringComparison.Ordinal));
        Assert.Contains(notices, n => n.Reason == "poll-iec104-closed" && n.Detail.Contains("malformed APDU", StringComparison.Ordinal));
        AssertOnlyReadOnlyFrames(station.Received, Ca);
    }

    [Fact]
    public async Task Iec104_Acknowledges_AfterWFrames_AndTheRestAfterT2()
    {
        await using var station = Iec104ScriptedStation.Start();
        SeedPoints(station);
        await using var broker = await EmbeddedBroker.StartAsync();
        // The counter tag untyped: no counter interrogation, so only the station's frames count here.
        await using (var service = Service(TestConfig.Load(Yaml(station.Port, broker.Port, energyType: ""))))
        {
            service.Start();
            // actcon + 7 point ASDUs + actterm = 9 I-frames: an S-frame at 8 (w), then N(R) 9 after t2.
            await TestConfig.Until(() => station.Received.Any(r => r.Frame[2] == 0x01 && r.Frame[4] >> 1 == 9));
            for (int i = 0; i < 11; i++)
            {
                await station.SendAsduAsync(Iec104ScriptedStation.Asdu(13, 3, Ca, (200, Iec104ScriptedStation.Float(i))));
            }
            await TestConfig.Until(() => station.Received.Any(r => r.Frame[2] == 0x01 && r.Frame[4] >> 1 == 20));
        }
        var acks = station.Received.Where(r => r.Frame[2] == 0x01).Select(r => BinaryPrimitives.ReadUInt16LittleEndian(r.Frame.AsSpan(4)) >> 1).ToList();
        Assert.Contains(8, acks);
        Assert.Contains(17, acks);
        Assert.Equal(20, acks[^1]);
        Assert.Equal(10.0, Last(broker, "feeder-mw").GetProperty("v").GetDouble());
        AssertOnlyReadOnlyFrames(station.Received, Ca);
        Assert.Equal(0, station.CounterInterrogations);
    }

    [Fact]
    public async Task Iec104_Sparkplug_DataCarriesThePoints_AndBirthTheDatatypes()
    {
        await using var station = Iec104ScriptedStation.Start();
        SeedPoints(station);
        await using var broker = await EmbeddedBroker.StartAsync();
        await using (var service = Service(TestConfig.Load(Yaml(station.Port, broker.Port, format: "sparkplug-b"))))
        {
            service.Start();
            await TestConfig.Until(() => broker.Received.Count(m => m.Topic == "spBv1.0/site1/DDATA/gw1/rtu7") >= 7);
        }
        var data = Sparkplug.Payload.Parser.ParseFrom(broker.Received.Last(m => m.Topic == "spBv1.0/site1/DDATA/gw1/rtu7").Payload);
        var byName = data.Metrics.ToDictionary(m => m.Name);
        Assert.True(byName["breaker"].BooleanValue);
        Assert.Equal(21.5, byName["feeder-mw"].DoubleValue);
        Assert.Equal(123456, unchecked((int)byName["energy"].IntValue));
        Assert.True(byName["absent"].IsNull);
    }

    [Fact]
    public void WriteFrame_BuildsExactlyTheSixReadOnlyFrames()
    {
        var buffer = new byte[32];
        string Frame(Iec104ClientFrame f, ushort ns = 0, ushort nr = 0) =>
            Convert.ToHexString(buffer, 0, ReadOnlyIec104Client.WriteFrame(buffer, f, ns, nr, 0x1234));
        Assert.Equal("680407000000", Frame(Iec104ClientFrame.StartDtAct));
        Assert.Equal("680443000000", Frame(Iec104ClientFrame.TestFrAct));
        Assert.Equal("680483000000", Frame(Iec104ClientFrame.TestFrCon));
        Assert.Equal("680401000A00", Frame(Iec104ClientFrame.Acknowledge, nr: 5));
        // N(S) 3, N(R) 5; C_IC_NA_1, SQ 0 N 1, COT 6, OA 0, CA 0x1234, IOA 0, QOI 20 (Wireshark: "C_IC_NA_1 Act … QOI=20").
        Assert.Equal("680E06000A00640106003412000000" + "14", Frame(Iec104ClientFrame.StationInterrogation, ns: 3, nr: 5));
        // C_CI_NA_1 Act, QCC 5: RQT 5 (general request counter), FRZ 0 (read; no freeze, no reset).
        Assert.Equal("680E06000A00650106003412000000" + "05", Frame(Iec104ClientFrame.CounterInterrogation, ns: 3, nr: 5));
        Assert.Equal(6, Enum.GetValues<Iec104ClientFrame>().Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => ReadOnlyIec104Client.WriteFrame(buffer, (Iec104ClientFrame)6, 0, 0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => ReadOnlyIec104Client.WriteFrame(buffer, Iec104ClientFrame.StationInterrogation, 0, 0, 0xFFFF));
        Assert.Throws<ArgumentOutOfRangeException>(() => ReadOnlyIec104Client.WriteFrame(buffer, Iec104ClientFrame.CounterInterrogation, 0, 0, 0xFFFF));
    }

    [Fact]
    public void Client_PublicSurface_HasNoWayToSayWhatToSend()
    {
        var type = typeof(ReadOnlyIec104Client);
        var methods = type.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
            .Where(m => !m.IsSpecialName).Select(m => m.Name).Order().ToArray();
        Assert.Equal(["DisposeAsync", "RunAsync", "WriteFrame"], methods);
        // The constructor takes the upstream, the source, the CA, timers and the sink: no type, cause, IOA or bytes.
        var parameters = Assert.Single(type.GetConstructors()).GetParameters().Select(p => p.ParameterType).ToArray();
        Assert.Equal([typeof(IUpstream), typeof(string), typeof(ushort), typeof(Iec104ClientOptions), typeof(IIec104Sink)], parameters);
    }
}
