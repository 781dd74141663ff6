using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Xunit.Abstractions;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// The lib60870 peers (tests/peers/iec104: our station and client against lib60870, GPL v3, a test
/// peer only) DIRECT, no gateway: proves the harness the IEC 104 gateway tests stand on — what the
/// client is told, and what the station's own log says reached it.
/// </summary>
public class Iec104PeerTests(ITestOutputHelper output)
{
    private static readonly int[] PointIoas = [.. Enumerable.Range(100, 20), .. Enumerable.Range(200, 20)];

    [Fact]
    public async Task Interrogation_ReturnsEveryPoint_WithCause20_BetweenActconAndActterm()
    {
        await using var station = await Iec104Peer.StartStationAsync();

        var run = await station.RunClientAsync("--interrogate");

        Assert.True(run.ExitCode == 0, run.ToString());
        var points = run.OfKind("point").ToArray();
        Assert.Equal(PointIoas, points.Select(p => p.Int("ioa")).Order());
        Assert.All(points, p => Assert.Equal(("20", "1"), (p["cot"], p["ca"])));
        Assert.Equal(new[] { 1, 3, 13, 11 }, points.Select(p => p.Int("type")).Distinct());
        var kinds = run.Lines.Select(l => l.Kind).ToList();
        Assert.True(kinds.IndexOf("confirm") < kinds.IndexOf("point") && kinds.LastIndexOf("point") < kinds.IndexOf("term"), run.ToString());
        Assert.Equal("40", run.OfKind("interrogation").Single()["points"]);
        Assert.Equal("1", run.Summary["confirmed"]);

        await station.WaitForClosesAsync();
        var asdu = Assert.Single(station.Asdus);
        Assert.Equal((100, 6, 1, "20"), (asdu.Int("type"), asdu.Int("cot"), asdu.Int("ca"), asdu["qoi"]));
    }

    /// <summary>The expected answer of one command: positive, or negative with this cause.</summary>
    private sealed record Planned(string Line, int Type, int Ca, int Ioa, bool Negative, int Cot);

    /// <summary>
    /// 1 000 commands: select/execute pairs, set-points, reads, interrogations, clock syncs — and what
    /// the station refuses: execute without select, a wrong IOA, a wrong CA, the global CA, an unknown type.
    /// </summary>
    private static List<Planned> PlanCommands(int count, int seed)
    {
        var random = new Random(seed);
        var plan = new List<Planned>(count);
        while (plan.Count < count)
        {
            int ioa = 2000 + random.Next(100);
            int pick = random.Next(100);
            if (pick < 30 && plan.Count + 2 <= count)
            {
                bool dc = random.Next(2) == 0;
                string type = dc ? "C_DC_NA_1" : "C_SC_NA_1";
                int value = dc ? 1 + random.Next(2) : random.Next(2);
                plan.Add(new($"{type} ca=1 ioa={ioa} value={value} select", dc ? 46 : 45, 1, ioa, false, 7));
                plan.Add(new($"{type} ca=1 ioa={ioa} value={value} execute", dc ? 46 : 45, 1, ioa, false, 7));
            }
            else if (pick < 50)
            {
                int sp = 3000 + random.Next(10);
                string value = (random.Next(3000) / 20.0).ToString("0.##", CultureInfo.InvariantCulture);
                plan.Add(new($"C_SE_NC_1 ca=1 ioa={sp} value={value}", 50, 1, sp, false, 7));
            }
            else if (pick < 58)
            {
                int point = PointIoas[random.Next(PointIoas.Length)];
                plan.Add(new($"C_RD_NA_1 ca=1 ioa={point}", 102, 1, point, false, 5));
            }
            else if (pick < 60)
            {
                plan.Add(new("C_IC_NA_1 ca=1 qoi=20", 100, 1, 0, false, 7));
            }
            else if (pick < 62)
            {
                plan.Add(new("C_CS_NA_1 ca=1", 103, 1, 0, false, 7));
            }
            else if (pick < 72)
            {
                plan.Add(new($"C_SC_NA_1 ca=1 ioa={ioa} value=1 execute", 45, 1, ioa, true, 7)); // no select before
            }
            else if (pick < 80)
            {
                int bad = random.Next(2) == 0 ? 1000 + random.Next(1000) : 2100 + random.Next(800);
                plan.Add(new($"C_SC_NA_1 ca=1 ioa={bad} value=1 select", 45, 1, bad, true, 47));
            }
            else if (pick < 85)
            {
                int bad = 3010 + random.Next(90);
                plan.Add(new($"C_SE_NC_1 ca=1 ioa={bad} value=1.5", 50, 1, bad, true, 47));
            }
            else if (pick < 92)
            {
                int ca = 2 + random.Next(100);
                plan.Add(new($"C_SC_NA_1 ca={ca} ioa={ioa} value=1 select", 45, ca, ioa, true, 46));
            }
            else if (pick < 95)
            {
                plan.Add(new($"C_DC_NA_1 ca=65535 ioa={ioa} value=2 select", 46, 65535, ioa, true, 46));
            }
            else
            {
                plan.Add(new($"C_RC_NA_1 ca=1 ioa={ioa} value=2", 47, 1, ioa, true, 44)); // the station has no regulating step
            }
        }
        return plan;
    }

    [Fact]
    public async Task AThousandCommands_EachGetsExactlyOneConfirmationOfTheExpectedPolarity_AndTheStationLogsExactlyThem()
    {
        var plan = PlanCommands(1000, seed: 104);
        string file = Path.Combine(Path.GetTempPath(), $"iec104-commands-{Guid.NewGuid():N}.txt");
        await File.WriteAllLinesAsync(file, plan.Select(p => p.Line));
        try
        {
            await using var station = await Iec104Peer.StartStationAsync();

            var sw = Stopwatch.StartNew();
            var run = await station.RunClientAsync("--commands", file, "--timeout-ms", "5000");
            output.WriteLine($"1000 commands direct in {sw.ElapsedMilliseconds} ms; {run.Summary}");

            Assert.True(run.ExitCode == 0, string.Join('\n', run.Lines.TakeLast(30)));
            var summary = run.Summary;
            int negatives = plan.Count(p => p.Negative);
            Assert.Equal(("1000", "1000", (1000 - negatives).ToString(CultureInfo.InvariantCulture), negatives.ToString(CultureInfo.InvariantCulture), "0", "0"),
                (summary["sent"], summary["confirmed"], summary["positive"], summary["negative"], summary["timeouts"], summary["reconnects"]));
            Assert.Empty(run.OfKind("drop"));
            Assert.Empty(run.OfKind("lib"));

            // One confirmation per command, in order (the client sends the next only after the last was confirmed).
            var confirms = run.OfKind("confirm").ToArray();
            Assert.Equal(plan.Count, confirms.Length);
            for (int i = 0; i < plan.Count; i++)
            {
                var c = confirms[i];
                var p = plan[i];
                Assert.True((c.Int("type"), c.Int("ca"), c.Int("ioa"), c["negative"] == "1", c.Int("cot")) == (p.Type, p.Ca, p.Ioa, p.Negative, p.Cot),
                    $"command {i + 1} `{p.Line}`: expected negative={p.Negative} cot={p.Cot}, got {c}");
            }

            // The station saw exactly those ASDUs, in that order, on one connection, and nothing went wrong.
            await station.WaitForClosesAsync();
            var asdus = station.Asdus;
            Assert.Equal(plan.Count, asdus.Count);
            for (int i = 0; i < plan.Count; i++)
            {
                var a = asdus[i];
                var p = plan[i];
                Assert.True((a.Int("type"), a.Int("ca"), a.Int("ioa")) == (p.Type, p.Ca, p.Ioa), $"ASDU {i + 1}: expected `{p.Line}`, the station logged {a}");
                if (p.Line.EndsWith(" select", StringComparison.Ordinal) || p.Line.EndsWith(" execute", StringComparison.Ordinal))
                {
                    Assert.Equal(p.Line.EndsWith(" select", StringComparison.Ordinal) ? "1" : "0", a["se"]);
                }
            }
            Assert.Single(station.Log, l => l.Kind == "connect");
            Assert.Single(station.Log, l => l.Kind == "startdt");
            Assert.DoesNotContain(station.Log, l => l.Kind == "lib");
            Assert.Equal("peer closed or reset", station.Log.Single(l => l.Kind == "close")["reason"]);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task ExecuteAfterSelect_IsConfirmedAndTerminated_ButASelectOfAnotherValueOrConnection_DoesNotArmIt()
    {
        await using var station = await Iec104Peer.StartStationAsync();
        string file = Path.Combine(Path.GetTempPath(), $"iec104-sbo-{Guid.NewGuid():N}.txt");
        await File.WriteAllLinesAsync(file,
        [
            "C_SC_NA_1 ca=1 ioa=2010 value=1 select",
            "C_SC_NA_1 ca=1 ioa=2010 value=0 execute", // another value than selected: refused
            "C_SC_NA_1 ca=1 ioa=2010 value=1 execute", // the refusal consumed the selection
            "C_DC_NA_1 ca=1 ioa=2011 value=2 select",
            "C_DC_NA_1 ca=1 ioa=2011 value=2 execute",
            "C_DC_NA_1 ca=1 ioa=2011 value=2 execute", // a selection arms one execute
        ]);
        try
        {
            var first = await station.RunClientAsync("--commands", file);
            var second = await station.RunClientAsync("--commands", file);

            foreach (var run in new[] { first, second })
            {
                Assert.True(run.ExitCode == 0, run.ToString());
                Assert.Equal(["0", "1", "1", "0", "0", "1"], run.OfKind("confirm").Select(c => c["negative"]));
                Assert.Equal([2011], run.OfKind("term").Select(t => t.Int("ioa")));
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task TwoClientsAtOnce_InRedundancyGroupsMode_BothGetInterrogationAndSpontaneousData()
    {
        await using var station = await Iec104Peer.StartStationAsync("--redundancy-groups", "--spontaneous-ms", "50");

        var runs = await Task.WhenAll(
            station.RunClientAsync("--interrogate", "--listen-ms", "1500"),
            station.RunClientAsync("--interrogate", "--listen-ms", "1500"));

        foreach (var run in runs)
        {
            Assert.True(run.ExitCode == 0, run.ToString());
            Assert.Equal(PointIoas, run.OfKind("point").Where(p => p["cot"] == "20").Select(p => p.Int("ioa")).Order());
            int spontaneous = run.OfKind("point").Count(p => p["cot"] == "3");
            Assert.True(spontaneous >= 5, $"only {spontaneous} spontaneous points:\n{run}");
            Assert.Empty(run.OfKind("drop"));
        }
        await station.WaitForClosesAsync();
        Assert.Equal(2, station.Log.Count(l => l.Kind == "startdt"));
        Assert.Equal(2, station.Asdus.Count(a => a.Int("type") == 100));
        Assert.Equal(2, station.Asdus.Select(a => a["conn"]).Distinct().Count());
    }

    [Fact]
    public async Task InSingleRedundancyGroupMode_ASecondClientsStartdt_MakesTheStationCloseTheFirst()
    {
        await using var station = await Iec104Peer.StartStationAsync("--spontaneous-ms", "50");

        var first = station.RunClientAsync("--listen-ms", "4000");
        Assert.NotNull(await station.WaitForLineAsync(l => l.Kind == "startdt"));
        var second = await station.RunClientAsync("--interrogate");
        var firstRun = await first;

        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Equal(1, firstRun.ExitCode);
        Assert.Single(firstRun.OfKind("drop"));
        await station.WaitForClosesAsync();
        Assert.Equal("closed", station.Log.Single(l => l.Kind == "close" && l["conn"] == "1")["reason"]);
        Assert.True(station.Log.ToList().FindIndex(l => l.Kind == "close" && l["conn"] == "1") > station.Log.ToList().FindIndex(l => l.Kind == "startdt" && l["conn"] == "2"));
    }

    [Fact]
    public async Task ClockSyncAndReads_AreConfirmed_AndASetPointIsReadBack()
    {
        await using var station = await Iec104Peer.StartStationAsync("--ca", "7");
        string file = Path.Combine(Path.GetTempPath(), $"iec104-misc-{Guid.NewGuid():N}.txt");
        await File.WriteAllLinesAsync(file, ["C_CS_NA_1 ca=7", "C_SE_NC_1 ca=7 ioa=3004 value=42.5", "C_RD_NA_1 ca=7 ioa=3004", "C_RD_NA_1 ca=7 ioa=150", "C_CI_NA_1 ca=7 qcc=5"]);
        try
        {
            var run = await station.RunClientAsync("--ca", "7", "--commands", file);

            Assert.True(run.ExitCode == 0, run.ToString());
            Assert.Equal([("103", "7", "0"), ("50", "7", "0"), ("102", "5", "0"), ("102", "47", "1"), ("101", "7", "0")],
                run.OfKind("confirm").Select(c => (c["type"], c["cot"], c["negative"])));
            var read = Assert.Single(run.OfKind("point"), p => p["cot"] == "5");
            Assert.Equal(("13", "3004", "42.5", "5", "7"), (read["type"], read["ioa"], read["value"], read["cot"], read["ca"]));
            // The counter interrogation (QCC 5, read): the ten integrated totals with cause 37, at their start values.
            Assert.Equal(Enumerable.Range(0, 10).Select(i => ("15", (300 + i).ToString(CultureInfo.InvariantCulture), (1000 * (i + 1)).ToString(CultureInfo.InvariantCulture))),
                run.OfKind("point").Where(p => p["cot"] == "37").Select(p => (p["type"], p["ioa"], p["value"])));
            await station.WaitForClosesAsync();
            Assert.Matches(@"^\d{4}-\d\d-\d\dT", station.Asdus[0]["time"]);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task AnIFrameWithTheWrongSendSequenceNumber_IsLoggedByTheStationAsASequenceError_AndClosed()
    {
        await using var station = await Iec104Peer.StartStationAsync();
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, station.Port));
        await socket.SendAsync(new byte[] { 0x68, 0x04, 0x07, 0x00, 0x00, 0x00 }, SocketFlags.None); // STARTDT act
        await ReadAsync(socket, 6);
        // C_SC_NA_1 select, IOA 2000, with N(S) = 5 where the station expects 0.
        await socket.SendAsync(Convert.FromHexString("680e0a0000002d0106000100d0070081"), SocketFlags.None);

        Assert.Equal(0, await ReadAsync(socket, 1, allowClose: true)); // the station closes
        await station.WaitForClosesAsync();
        Assert.Empty(station.Asdus);
        Assert.Contains(station.Log, l => l.Kind == "lib" && l["msg"].Contains("Sequence error", StringComparison.Ordinal));
        Assert.Contains("Sequence error", station.Log.Single(l => l.Kind == "close")["reason"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheClient_ReportsADroppedConnection_Reconnects_AndExitsNonZero()
    {
        // A fake station that confirms STARTDT and closes at the first I-frame, every time.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var stop = new CancellationTokenSource(60_000);
        int accepted = 0;
        var fake = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var peer = await listener.AcceptSocketAsync(stop.Token);
                Interlocked.Increment(ref accepted);
                var buffer = new byte[256];
                while (true)
                {
                    int n = await peer.ReceiveAsync(buffer, SocketFlags.None, stop.Token);
                    if (n == 0 || (buffer[2] & 1) == 0)
                    {
                        break; // closed, or an I-frame: drop the connection
                    }
                    if (buffer[2] == 0x07)
                    {
                        await peer.SendAsync(new byte[] { 0x68, 0x04, 0x0b, 0x00, 0x00, 0x00 }, SocketFlags.None);
                    }
                }
            }
        });
        string file = Path.Combine(Path.GetTempPath(), $"iec104-drop-{Guid.NewGuid():N}.txt");
        await File.WriteAllLinesAsync(file, ["C_SE_NC_1 ca=1 ioa=3000 value=1", "C_SE_NC_1 ca=1 ioa=3000 value=2", "C_SE_NC_1 ca=1 ioa=3000 value=3"]);
        try
        {
            var run = await Iec104Peer.RunClientAsync($"127.0.0.1:{port}", ["--commands", file, "--timeout-ms", "2000", "--max-reconnects", "2"]);

            Assert.Equal(1, run.ExitCode);
            Assert.Equal(("3", "0", "3", "2"), (run.Summary["sent"], run.Summary["confirmed"], run.Summary["timeouts"], run.Summary["reconnects"]));
            Assert.Equal(3, run.OfKind("drop").Count());
            Assert.Equal(3, accepted);
        }
        finally
        {
            File.Delete(file);
            await stop.CancelAsync();
            listener.Stop();
            try { await fake; } catch (OperationCanceledException) { } catch (SocketException) { } catch (ObjectDisposedException) { }
        }
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes (5 s at most); with allowClose, returns 0 when the peer closed first.</summary>
    private static async Task<int> ReadAsync(Socket socket, int count, bool allowClose = false)
    {
        var buffer = new byte[count];
        int have = 0;
        using var cts = new CancellationTokenSource(5_000);
        while (have < count)
        {
            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer.AsMemory(have), SocketFlags.None, cts.Token);
            }
            catch (SocketException) when (allowClose)
            {
                return 0; // reset
            }
            if (n == 0)
            {
                Assert.True(allowClose, "the station closed the connection");
                return 0;
            }
            have += n;
        }
        return have;
    }
}
