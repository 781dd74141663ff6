using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Xunit.Abstractions;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// The diode on an IEC 104 station nobody here wrote the stack of: lib60870's station (tests/peers/iec104/iec104-station.c),
/// in redundancy-groups mode so the poller's connection is one more active controlling connection, changing a point every
/// 150 ms. `edgeshield run` with a <c>protocol: iec104</c> poll entry publishes the interrogated and the spontaneous values
/// through a real Mosquitto; the published values are the ones the station's log says it held and sent, and the station's log
/// shows that the poller sent it nothing but STARTDT and station interrogations.
/// </summary>
public class Iec104TelemetryTests(ITestOutputHelper output)
{
    private const string Prefix = "it/iec";
    private static readonly int[] Ioas = [100, 101, 102, 103, 110, 111, 112, 113, 200, 201, 202, 203, 210, 211, 212, 213];

    /// <summary>The station's process image at start (iec104-station.c main): single i%2, double on/off, float 10i+0.5, scaled 100i.</summary>
    private static double Initial(int ioa) => ioa switch
    {
        >= 100 and <= 109 => (ioa - 100) % 2,
        >= 110 and <= 119 => (ioa - 110) % 2 == 1 ? 2 : 1,
        >= 200 and <= 209 => (10.0 * (ioa - 200)) + 0.5,
        _ => 100.0 * (ioa - 210),
    };

    /// <summary>Whether each change of a tagged point the station logged after its interrogation has a good message with its value.</summary>
    private static bool SnapshotPublished(IReadOnlyList<Iec104Line> log, string[] lines)
    {
        int interrogation = log.ToList().FindIndex(l => l.Kind == "asdu" && l.Int("type") == 100);
        if (interrogation < 0)
        {
            return false;
        }
        foreach (var change in log.Skip(interrogation).Where(l => l.Kind == "spontaneous" && Ioas.Contains(l.Int("ioa"))))
        {
            double value = double.Parse(change["value"], CultureInfo.InvariantCulture);
            string topic = Prefix + "/rtu7/p" + change["ioa"] + " ";
            bool seen = lines.Any(l =>
            {
                if (!l.StartsWith(topic, StringComparison.Ordinal))
                {
                    return false;
                }
                var m = JsonDocument.Parse(l[topic.Length..]).RootElement;
                return m.GetProperty("q").GetString() == "good" && Math.Abs(Number(m.GetProperty("v")) - value) < 1e-6;
            });
            if (!seen)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>A published value as a number (booleans as 0 and 1, as the station logs single points).</summary>
    private static double Number(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.True => 1,
        JsonValueKind.False => 0,
        _ => v.GetDouble(),
    };

    /// <summary>The value of <paramref name="ioa"/> the station's log implies after its first <paramref name="lines"/> lines.</summary>
    private static double Implied(IReadOnlyList<Iec104Line> log, int lines, int ioa)
    {
        double value = Initial(ioa);
        for (int i = 0; i < lines && i < log.Count; i++)
        {
            if (log[i].Kind == "spontaneous" && log[i].Int("ioa") == ioa)
            {
                value = double.Parse(log[i]["value"], CultureInfo.InvariantCulture);
            }
        }
        return value;
    }

    [Fact]
    public async Task Run_Iec104PollEntry_PublishesWhatTheStationSent_AndTheStationSawOnlyStartDtAndInterrogations()
    {
        await using var station = await Iec104Peer.StartStationAsync("--ca", "7", "--redundancy-groups", "--spontaneous-ms", "150");
        string dir = Directory.CreateTempSubdirectory("es-iec104-telemetry-").FullName;
        await using var broker = new MosquittoBroker(dir);
        await broker.StartAsync();
        await using var sub = new MosquittoSubscriber(broker.Port, Prefix + "/rtu7/#");
        string tags = string.Join('\n', Ioas.Select(ioa => $"        - {{ name: p{ioa}, ioa: {ioa}{(ioa >= 200 ? ", unit: kW" : ioa == 100 ? ", type: M_SP_NA_1" : "")} }}"));
        string config = Path.Combine(dir, "edgeshield.yaml");
        await File.WriteAllTextAsync(config, $$"""
            gateway: { name: it-gw, site: lab }
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:{{broker.Port}}, client-id: it-iec-{{broker.Port}}, topic-prefix: {{Prefix}} }
              buffer: { path: {{dir}}/buffer, max-mb: 8 }
              poll:
                - device: rtu7
                  protocol: iec104
                  upstream: tcp://127.0.0.1:{{station.Port}}
                  ca: 7
                  every: 1s
                  tags:
                    - { name: absent, ioa: 555 }
            {{tags}}
            """);
        var gateway = new Processes.Running(Processes.EdgeShield("run", "--config", config));
        IReadOnlyList<Iec104Line> snapshot = [];
        await RunThenStopAsync(gateway, async () =>
        {
            // The interrogation's values, then at least 60 spontaneous changes (each of the 16 tagged points changes at least once).
            int Spontaneous() => station.Log.SkipWhile(l => l.Kind != "startdt").Count(l => l.Kind == "spontaneous");
            await UntilAsync(gateway, () => Spontaneous() >= 60 && sub.Lines.Any(l => l.StartsWith(Prefix + "/rtu7/absent ", StringComparison.Ordinal)), TimeSpan.FromSeconds(90));
            snapshot = station.Log;
            Assert.True(Spontaneous() >= 60 && sub.Lines.Length > 0, $"no telemetry within 90 s; gateway stderr:\n{gateway.Stderr}\nstation:\n{string.Join('\n', station.Log.TakeLast(30))}");
            // What the station logged up to the snapshot has been sent; give it time to be published: 2 s, and then until
            // every tagged change in the snapshot is (bounded, 30 s: a loaded machine may publish later).
            await Task.Delay(2000);
            await UntilAsync(gateway, () => SnapshotPublished(snapshot, sub.Lines), TimeSpan.FromSeconds(30));
        });
        var published = new Dictionary<string, List<JsonElement>>(StringComparer.Ordinal);
        foreach (var line in sub.Lines)
        {
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space > 0 && line.StartsWith(Prefix + "/rtu7/", StringComparison.Ordinal))
            {
                string tag = line[(Prefix.Length + "/rtu7/".Length)..space];
                (published.TryGetValue(tag, out var list) ? list : published[tag] = []).Add(JsonDocument.Parse(line[(space + 1)..]).RootElement.Clone());
            }
        }
        output.WriteLine(string.Join('\n', published.Select(p => $"{p.Key}: {string.Join(' ', p.Value.Select(v => v.GetProperty("v").GetRawText() + "/" + v.GetProperty("q").GetString()))}")));

        // The interrogation: each tag's first value is the station's state when the interrogation reached it (the log's
        // spontaneous lines before it; a change logged in the same instant may or may not be in it).
        var log = snapshot;
        int interrogation = log.ToList().FindIndex(l => l.Kind == "asdu" && l.Int("type") == 100);
        Assert.True(interrogation > 0, "the station logged no interrogation");
        int nextChange = log.Skip(interrogation).ToList().FindIndex(l => l.Kind == "spontaneous");
        int after = nextChange < 0 ? interrogation + 1 : interrogation + nextChange + 1;
        foreach (int ioa in Ioas)
        {
            var first = published["p" + ioa.ToString(CultureInfo.InvariantCulture)].First(m => m.GetProperty("q").GetString() == "good");
            double value = Number(first.GetProperty("v"));
            Assert.True(Math.Abs(value - Implied(log, interrogation, ioa)) < 1e-6 || Math.Abs(value - Implied(log, after, ioa)) < 1e-6,
                $"p{ioa}: interrogated {value}, the station held {Implied(log, interrogation, ioa)}");
        }
        Assert.Equal("kW", published["p200"][0].GetProperty("u").GetString());

        // Every spontaneous change of a tagged point the station logged after the interrogation was published, with its value.
        var changes = log.Skip(interrogation).Where(l => l.Kind == "spontaneous" && Ioas.Contains(l.Int("ioa"))).ToList();
        Assert.True(changes.Count >= 16, $"{changes.Count} changes of tagged points");
        foreach (var change in changes)
        {
            double value = double.Parse(change["value"], CultureInfo.InvariantCulture);
            var messages = published["p" + change["ioa"]];
            Assert.True(messages.Any(m => m.GetProperty("q").GetString() == "good" && Math.Abs(Number(m.GetProperty("v")) - value) < 1e-6),
                $"the station sent ioa {change["ioa"]} = {value} (type {change["type"]}); published: {string.Join(' ', messages.Select(m => m.GetProperty("v").GetRawText()))}");
        }
        // Every published good value is one the station held at some point (its log's start or a change; the whole log, as
        // values were published after the snapshot too).
        var whole = station.Log;
        foreach (int ioa in Ioas)
        {
            var held = whole.Where(l => l.Kind == "spontaneous" && l.Int("ioa") == ioa).Select(l => double.Parse(l["value"], CultureInfo.InvariantCulture)).Append(Initial(ioa)).ToList();
            Assert.All(published["p" + ioa.ToString(CultureInfo.InvariantCulture)].Where(m => m.GetProperty("q").GetString() == "good"),
                m => Assert.Contains(held, h => Math.Abs(h - Number(m.GetProperty("v"))) < 1e-6));
        }
        // The station has no IOA 555: bad, not interrogated.
        Assert.Equal(("bad", "not-interrogated"), (published["absent"][0].GetProperty("q").GetString(), published["absent"][0].GetProperty("reason").GetString()));

        // The station's own log: the poller's connection became active (STARTDT) and sent only station interrogations.
        await station.WaitForClosesAsync(15_000);
        var full = station.Log;
        output.WriteLine(string.Join('\n', full.Where(l => l.Kind is "connect" or "startdt" or "asdu" or "close" or "lib")));
        Assert.Single(full, l => l.Kind == "connect");
        Assert.Single(full, l => l.Kind == "startdt");
        var asdus = full.Where(l => l.Kind == "asdu").ToList();
        Assert.NotEmpty(asdus);
        Assert.All(asdus, a => Assert.Equal(("C_IC_NA_1", 6, 7, "20"), (a["name"], a.Int("cot"), a.Int("ca"), a["qoi"])));
        // lib60870 reports every close of the peer as "Error reading from socket" (Socket_read returns -1 on EOF): that is
        // the gateway stopping. Nothing else: no invalid frame, sequence error or timeout.
        Assert.All(full.Where(l => l.Kind == "lib"), l => Assert.Equal("CS104 SLAVE: Error reading from socket", l["msg"]));
        Directory.Delete(dir, recursive: true);
    }

    /// <summary>
    /// Integrated totals (energy meters): lib60870's station sends them only to a counter interrogation, as IEC 60870-5-101
    /// 7.4.5 has it. Tags typed M_IT make the poller send one after the station interrogation: the published counters are
    /// the values the station logged sending, a counter the station does not have is not interrogated, and the station's log
    /// shows only the station interrogation and C_CI_NA_1 with QCC 5 (read: no freeze, no reset of anyone's counters).
    /// </summary>
    [Fact]
    public async Task Run_Iec104PollEntry_CounterTags_AreTheStationsCounters_ReadWithoutFreezeOrReset()
    {
        await using var station = await Iec104Peer.StartStationAsync("--ca", "7", "--redundancy-groups", "--spontaneous-ms", "150");
        string dir = Directory.CreateTempSubdirectory("es-iec104-counters-").FullName;
        await using var broker = new MosquittoBroker(dir);
        await broker.StartAsync();
        await using var sub = new MosquittoSubscriber(broker.Port, Prefix + "/rtu7/#");
        var gateway = await StartGatewayAsync(station, broker, dir,
            "{ name: p200, ioa: 200 }",
            "{ name: e300, ioa: 300, type: M_IT_NA_1, unit: kWh }",
            "{ name: e305, ioa: 305, type: M_IT_TB_1, unit: kWh }",
            "{ name: e310, ioa: 310, type: M_IT_NA_1 }");
        await RunThenStopAsync(gateway, async () =>
        {
            Assert.NotNull(await station.WaitForLineAsync(l => l.Kind == "counters", 60_000));
            await UntilAsync(gateway, () => sub.Lines.Any(l => l.StartsWith(Prefix + "/rtu7/e310 ", StringComparison.Ordinal)), TimeSpan.FromSeconds(30));
        });
        await station.WaitForClosesAsync(15_000);
        var log = station.Log;
        output.WriteLine(string.Join('\n', log.Where(l => l.Kind is "connect" or "startdt" or "asdu" or "counters" or "close")));
        output.WriteLine(string.Join('\n', sub.Lines));
        JsonElement Published(string tag) => JsonDocument.Parse(Assert.Single(sub.Lines, l => l.StartsWith($"{Prefix}/rtu7/{tag} ", StringComparison.Ordinal))[(Prefix.Length + tag.Length + 7)..]).RootElement;
        // The counters the station sent (its log), once: IOA 300 is the first of ten, 305 the sixth.
        var sent = Assert.Single(log, l => l.Kind == "counters")["values"].Split(',').Select(v => long.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(10, sent.Length);
        var e300 = Published("e300");
        Assert.Equal(("good", sent[0], "kWh"), (e300.GetProperty("q").GetString(), e300.GetProperty("v").GetInt64(), e300.GetProperty("u").GetString()));
        Assert.Equal(sent[5], Published("e305").GetProperty("v").GetInt64());
        Assert.True(sent[0] > 1000, $"the counters counted from 1000: {sent[0]}");
        // The station has no counter 310: not interrogated, when the counter interrogation ended.
        var e310 = Published("e310");
        Assert.Equal(("bad", "not-interrogated"), (e310.GetProperty("q").GetString(), e310.GetProperty("reason").GetString()));
        // The station's own log: one connection, and only the station interrogation and one counter interrogation that reads.
        Assert.Single(log, l => l.Kind == "connect");
        var asdus = log.Where(l => l.Kind == "asdu").ToList();
        Assert.Equal(("C_IC_NA_1", "20", 7), (asdus[0]["name"], asdus[0]["qoi"], asdus[0].Int("ca")));
        var counterInterrogation = Assert.Single(asdus, a => a["name"] == "C_CI_NA_1");
        Assert.Equal(("5", 6, 7), (counterInterrogation["qcc"], counterInterrogation.Int("cot"), counterInterrogation.Int("ca")));
        Assert.All(asdus, a => Assert.Contains(a["name"], new[] { "C_IC_NA_1", "C_CI_NA_1" }));
        Assert.All(log.Where(l => l.Kind == "lib"), l => Assert.Equal("CS104 SLAVE: Error reading from socket", l["msg"]));
        Directory.Delete(dir, recursive: true);
    }

    /// <summary>Waits (every 100 ms) until <paramref name="done"/>, <paramref name="limit"/> has passed or the gateway exited.</summary>
    private static async Task UntilAsync(Processes.Running gateway, Func<bool> done, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (!done() && clock.Elapsed < limit && !gateway.Process.HasExited)
        {
            await Task.Delay(100);
        }
    }

    /// <summary>Runs <paramref name="body"/> beside the gateway, then stops it with SIGTERM, which it must obey with exit code 0.</summary>
    private static async Task RunThenStopAsync(Processes.Running gateway, Func<Task> body)
    {
        try
        {
            await body();
            gateway.Signal(Processes.SIGTERM);
            Assert.Equal(0, await gateway.WaitForExitAsync(30_000));
        }
        finally
        {
            await gateway.DisposeAsync();
        }
    }

    /// <summary>
    /// `edgeshield run` with one iec104 poll entry for <paramref name="station"/> (CA 7), through <paramref name="broker"/>; its
    /// <paramref name="tags"/> are flow mappings, by default p100 and p200.
    /// </summary>
    private static async Task<Processes.Running> StartGatewayAsync(Iec104Peer station, MosquittoBroker broker, string dir, params string[] tags)
    {
        string tagLines = string.Join('\n', (tags.Length > 0 ? tags : ["{ name: p100, ioa: 100 }", "{ name: p200, ioa: 200 }"]).Select(t => "        - " + t));
        string config = Path.Combine(dir, "edgeshield.yaml");
        await File.WriteAllTextAsync(config, $$"""
            gateway: { name: it-gw, site: lab }
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:{{broker.Port}}, client-id: it-iec2-{{broker.Port}}, topic-prefix: {{Prefix}} }
              buffer: { path: {{dir}}/buffer, max-mb: 8 }
              poll:
                - device: rtu7
                  protocol: iec104
                  upstream: tcp://127.0.0.1:{{station.Port}}
                  ca: 7
                  tags:
            {{tagLines}}
            """);
        return new Processes.Running(Processes.EdgeShield("run", "--config", config));
    }

    /// <summary>
    /// DESIGN.md's "a second controlling connection": with one redundancy group per connection the poller and a SCADA
    /// (lib60870's client) are both active, the SCADA's interrogation and spontaneous data are undisturbed and the poller
    /// keeps its one connection; with a single redundancy group the SCADA's STARTDT drops the poller's connection, and the
    /// poller's STARTDT when it reconnects drops the SCADA's.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Run_Iec104PollEntry_BesideAScada_RedundancyGroupsDecideWhetherBothStayActive(bool groups)
    {
        string[] args = groups ? ["--ca", "7", "--redundancy-groups", "--spontaneous-ms", "200"] : ["--ca", "7", "--spontaneous-ms", "200"];
        await using var station = await Iec104Peer.StartStationAsync(args);
        string dir = Directory.CreateTempSubdirectory("es-iec104-scada-").FullName;
        await using var broker = new MosquittoBroker(dir);
        await broker.StartAsync();
        await using var sub = new MosquittoSubscriber(broker.Port, Prefix + "/rtu7/#");
        var gateway = await StartGatewayAsync(station, broker, dir);
        Iec104ClientResult? scada = null;
        await RunThenStopAsync(gateway, async () =>
        {
            Assert.NotNull(await station.WaitForLineAsync(l => l.Kind == "asdu" && l.Int("type") == 100, 60_000));
            scada = await Iec104Peer.RunClientAsync(station.Endpoint, ["--ca", "7", "--interrogate", "--listen-ms", "4000"], 60_000);
            await Task.Delay(2500); // the poller's reconnect (backoff 1 s) in single-group mode
            // …which a loaded machine may run later: in that mode, until it reconnected and said its tags were unreachable (bounded).
            await UntilAsync(gateway, () => groups || (station.Log.Count(l => l.Kind == "connect") >= 3
                && sub.Lines.Any(l => l.StartsWith(Prefix + "/rtu7/p100 ", StringComparison.Ordinal) && l.Contains("\"unreachable\"", StringComparison.Ordinal))), TimeSpan.FromSeconds(30));
        });
        Assert.NotNull(scada);
        await station.WaitForClosesAsync(15_000);
        var log = station.Log;
        output.WriteLine(scada.ToString());
        output.WriteLine(string.Join('\n', log.Where(l => l.Kind is "connect" or "startdt" or "close" or "asdu")));
        if (groups)
        {
            Assert.True(scada.ExitCode == 0, scada.ToString());
            Assert.Empty(scada.OfKind("drop"));
            Assert.Contains(scada.OfKind("point"), p => p["cot"] == "3"); // spontaneous data reached the SCADA too
            Assert.Equal(2, log.Count(l => l.Kind == "connect"));     // the poller's one connection, the SCADA's one
            Assert.Equal(2, log.Count(l => l.Kind == "startdt"));
        }
        else
        {
            // The SCADA's STARTDT closed the poller's connection; the poller reconnected and its STARTDT closed the SCADA's.
            Assert.True(log.Count(l => l.Kind == "connect") >= 3, "the poller did not reconnect");
            Assert.True(scada.ExitCode != 0 && scada.OfKind("drop").Any(), "the SCADA's connection was not dropped:\n" + scada);
            Assert.Contains(sub.Lines, l => l.StartsWith(Prefix + "/rtu7/p100 ", StringComparison.Ordinal) && l.Contains("\"unreachable\"", StringComparison.Ordinal));
        }
        // Whatever the mode, only station interrogations reached the station (the SCADA here sends nothing else either).
        Assert.All(log.Where(l => l.Kind == "asdu"), a => Assert.Equal(("C_IC_NA_1", "20", 7), (a["name"], a["qoi"], a.Int("ca"))));
        Directory.Delete(dir, recursive: true);
    }
}
