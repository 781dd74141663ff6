using System.Diagnostics;
using System.Text.Json;
using Xunit.Abstractions;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// The diode on an S7 PLC nobody here wrote: snap7's server (node-snap7 1.0.9) holds known values in DB, M, I and Q;
/// `edgeshield run` with a <c>protocol: s7comm</c> poll entry publishes them through a real Mosquitto, and the server's
/// own event log shows that only reads reached it.
/// </summary>
public class S7TelemetryTests(ITestOutputHelper output)
{
    private const string Prefix = "it/s7";

    /// <summary>
    /// (tag, payload) of the newest message per tag that mosquitto_sub printed; with <paramref name="good"/>, of the newest
    /// good one (a loaded machine may stretch one answer past the 1 s timeout: that cycle is stale, not wrong).
    /// </summary>
    private static Dictionary<string, JsonElement> Latest(MosquittoSubscriber sub, bool good = false)
    {
        var latest = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var line in sub.Lines)
        {
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space < 0 || !line.StartsWith(Prefix + "/press1/", StringComparison.Ordinal))
            {
                continue;
            }
            var message = JsonDocument.Parse(line[(space + 1)..]).RootElement.Clone();
            if (!good || message.GetProperty("q").GetString() == "good")
            {
                latest[line[(Prefix.Length + "/press1/".Length)..space]] = message;
            }
        }
        return latest;
    }

    [Fact]
    public async Task Run_S7PollEntry_PublishesTheValuesSnap7Holds_AndSnap7LogsOnlyReads()
    {
        // Known values, put in before snap7 starts (no client, so no write in its log). S7 stores big-endian.
        string[] seeds =
        [
            "--seed", "DB2:0:FB2E",            // DB2.DBW0  int16   -1234
            "--seed", "DB2:2:41AC0000",        // DB2.DBD2  float32 21.5
            "--seed", "DB2:6:FFFEEE90",        // DB2.DBD6  int32   -70000
            "--seed", "DB2:10:9C40",           // DB2.DBW10 uint16  40000
            "--seed", "DB2:12:20",             // DB2.DBX12.5 true
            "--seed", "DB2:14:C8FB",           // DB2.DBB14 uint8 200, DB2.DBB15 int8 -5
            "--seed", "MK:10:0141",            // MW10      int16   321
            "--seed", "MK:12:80",              // M12.7     true
            "--seed", "PE:0:08",               // I0.3      true
            "--seed", "PE:4:C0500000",         // ID4       float32 -3.25
            "--seed", "PA:4:01",               // Q4.0      true
            "--seed", "PA:8:B2D05E00",         // QD8       uint32  3000000000
        ];
        await using var plc = await Snap7Peer.StartServerAsync(seeds);
        string dir = Directory.CreateTempSubdirectory("es-s7-telemetry-").FullName;
        await using var broker = new MosquittoBroker(dir);
        await broker.StartAsync();
        await using var sub = new MosquittoSubscriber(broker.Port, Prefix + "/press1/#");
        string config = Path.Combine(dir, "edgeshield.yaml");
        await File.WriteAllTextAsync(config, $$"""
            gateway: { name: it-gw, site: lab }
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:{{broker.Port}}, client-id: it-s7-{{broker.Port}}, topic-prefix: {{Prefix}} }
              buffer: { path: {{dir}}/buffer, max-mb: 8 }
              poll:
                - device: press1
                  protocol: s7comm
                  upstream: tcp://127.0.0.1:{{plc.Port}}
                  rack: 0
                  slot: 2
                  every: 200ms
                  tags:
                    - { name: count, address: DB2.DBW0, type: int16 }
                    - { name: temp, address: DB2.DBD2, type: float32, unit: degC }
                    - { name: total, address: DB2.DBD6, type: int32 }
                    - { name: speed, address: DB2.DBW10 }
                    - { name: ready, address: DB2.DBX12.5 }
                    - { name: idle, address: DB2.DBX12.4 }
                    - { name: state, address: DB2.DBB14 }
                    - { name: trim, address: DB2.DBB15, type: int8 }
                    - { name: seeded, address: DB1.DBW2 }
                    - { name: marker, address: MW10, type: int16 }
                    - { name: m_bit, address: M12.7 }
                    - { name: input, address: I0.3 }
                    - { name: pressure, address: ID4, type: float32, scale: 10 }
                    - { name: output, address: Q4.0 }
                    - { name: counter, address: QD8, type: uint32 }
                    - { name: absent, address: DB7.DBW0, type: int16 }
            """);
        var gateway = new Processes.Running(Processes.EdgeShield("run", "--config", config));
        try
        {
            var sw = Stopwatch.StartNew();
            // Three cycles of every tag: the first may race the broker connection, the values must be stable.
            while (!(sub.Lines.Count(l => l.StartsWith(Prefix + "/press1/absent ", StringComparison.Ordinal)) >= 3) && sw.Elapsed < TimeSpan.FromSeconds(60) && !gateway.Process.HasExited)
            {
                await Task.Delay(100);
            }
            Assert.True(sub.Lines.Count(l => l.StartsWith(Prefix + "/press1/absent ", StringComparison.Ordinal)) >= 3,
                $"no telemetry within 60 s; gateway stderr:\n{gateway.Stderr}\nsnap7:\n{string.Join('\n', plc.Events)}");
            gateway.Signal(Processes.SIGTERM);
            Assert.Equal(0, await gateway.WaitForExitAsync(30_000));
        }
        finally
        {
            await gateway.DisposeAsync();
        }
        var latest = Latest(sub, good: true);
        output.WriteLine(string.Join('\n', Latest(sub).Select(p => $"{p.Key} {p.Value.GetRawText()}")));
        Assert.Equal(15, latest.Count); // every tag but 'absent' was read good
        Assert.Equal(-1234, latest["count"].GetProperty("v").GetInt64());
        Assert.Equal(21.5, latest["temp"].GetProperty("v").GetDouble());
        Assert.Equal("degC", latest["temp"].GetProperty("u").GetString());
        Assert.Equal(-70000, latest["total"].GetProperty("v").GetInt64());
        Assert.Equal(40000, latest["speed"].GetProperty("v").GetInt64());
        Assert.True(latest["ready"].GetProperty("v").GetBoolean());
        Assert.False(latest["idle"].GetProperty("v").GetBoolean());
        Assert.Equal(200, latest["state"].GetProperty("v").GetInt64());
        Assert.Equal(-5, latest["trim"].GetProperty("v").GetInt64());
        Assert.Equal(0x0203, latest["seeded"].GetProperty("v").GetInt64()); // DB1 holds its byte index: bytes 2, 3
        Assert.Equal(321, latest["marker"].GetProperty("v").GetInt64());
        Assert.True(latest["m_bit"].GetProperty("v").GetBoolean());
        Assert.True(latest["input"].GetProperty("v").GetBoolean());
        Assert.Equal(-32.5, latest["pressure"].GetProperty("v").GetDouble());
        Assert.True(latest["output"].GetProperty("v").GetBoolean());
        Assert.Equal(3_000_000_000, latest["counter"].GetProperty("v").GetInt64());
        // A DB the PLC does not have: snap7 answers the item with return code 0A; the tag is bad, the others are not.
        var absent = sub.Lines.Where(l => l.StartsWith(Prefix + "/press1/absent ", StringComparison.Ordinal))
            .Select(l => JsonDocument.Parse(l[(l.IndexOf(' ', StringComparison.Ordinal) + 1)..]).RootElement.Clone()).ToList();
        Assert.All(absent, a => Assert.Equal("bad", a.GetProperty("q").GetString()));
        Assert.Contains(absent, a => a.GetProperty("reason").GetString() == "return-code-0A");

        // snap7's log, complete once every connection has logged its disconnect: reads only.
        await plc.WaitForDisconnectsAsync(15_000);
        var events = plc.Events;
        output.WriteLine(string.Join('\n', events.Take(40)));
        var jobs = events.Where(e => e.IsJob).ToList();
        Assert.NotEmpty(jobs);
        Assert.All(jobs, e => Assert.True(e.Code == Snap7Event.DataRead, "not a read reached snap7: " + e));
        Assert.DoesNotContain(events, e => e.Code == Snap7Event.DataWrite);
        // The reads are the tags' items: DB2 bytes 0..1 (count), 2..5 (temp), M byte 12 (M12.7)…
        Assert.Contains(jobs, e => (e.RetCode, e.Param1, e.Param2, e.Param3, e.Param4) == (0, Snap7Event.AreaDb, 2, 0, 2));
        Assert.Contains(jobs, e => (e.RetCode, e.Param1, e.Param2, e.Param3, e.Param4) == (0, Snap7Event.AreaDb, 2, 2, 4));
        Assert.Contains(jobs, e => (e.RetCode, e.Param1, e.Param2, e.Param3, e.Param4) == (0, Snap7Event.AreaDb, 2, 14, 1)); // DB2.DBB14: one byte
        Assert.Contains(jobs, e => (e.RetCode, e.Param1, e.Param3) == (0, Snap7Event.AreaM, 10));
        Assert.Contains(jobs, e => (e.RetCode, e.Param1, e.Param3, e.Param4) == (0, Snap7Event.AreaQ, 8, 4));
        Assert.Contains(jobs, e => e.Param1 == Snap7Event.AreaDb && e.Param2 == 7 && e.RetCode != 0);
        // The poller asked for a 960-byte PDU when it connected.
        Assert.Contains(events, e => e.Code == Snap7Event.NegotiatePdu && e.Param1 == 960);
        Directory.Delete(dir, recursive: true);
    }
}
