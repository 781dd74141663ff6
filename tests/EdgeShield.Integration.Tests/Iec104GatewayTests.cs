using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// The IEC 104 gateway (the real `edgeshield run`) between lib60870 peers (tests/peers/iec104): what the
/// client is told, what the gateway audits, and — the judge — what the station's own log says reached it.
/// </summary>
public partial class Iec104GatewayTests(ITestOutputHelper output)
{
    /// <summary>The policy of the brief: monitoring and clock for CA 1, breakers with select-before-operate, bounded set-points.</summary>
    internal const string Policy = """
            protocol: iec104
            mode: enforce
            rules:
              - name: monitoring
                from: {FROM}
                type: [C_IC_NA_1, C_CS_NA_1]
                ca: 1
              - name: breakers
                from: {FROM}
                type: [C_SC_NA_1, C_DC_NA_1]
                ca: 1-2
                ioa: 2000-2049
                select-before-operate: true
                select-timeout: {SELECT_TIMEOUT}
              - name: setpoints
                from: {FROM}
                type: C_SE_NC_1
                ca: 1
                ioa: 3000-3009
                value: 0-150.0
        """;

    private static readonly int[] PointIoas = [.. Enumerable.Range(100, 20), .. Enumerable.Range(200, 20)];

    [Fact]
    public async Task Interrogation_ThroughTheGateway_GivesExactlyThePointsItGivesDirect()
    {
        await using var gw = await Iec104Gateway.StartAsync();

        var direct = await gw.Station.RunClientAsync("--interrogate");
        var through = await Iec104Peer.RunClientAsync(gw.Endpoint, ["--interrogate"]);

        Assert.True(direct.ExitCode == 0, direct.ToString());
        Assert.True(through.ExitCode == 0, through + "\ngateway: " + gw.Process.Stdout + gw.Process.Stderr);
        static string[] Points(Iec104ClientResult r) =>
            [.. r.OfKind("point").Select(p => $"{p["type"]} {p["ca"]} {p["ioa"]} {p["value"]} {p["cot"]}").Order(StringComparer.Ordinal)];
        Assert.Equal(40, Points(direct).Length);
        Assert.Equal(Points(direct), Points(through));
        Assert.Equal(PointIoas, through.OfKind("point").Select(p => p.Int("ioa")).Order());
        Assert.Equal(("1", "0", "1"), (through.Summary["confirmed"], through.Summary["reconnects"], through.Summary["terms"]));
        await gw.Station.WaitForClosesAsync();
        Assert.Equal(2, gw.Station.Asdus.Count(a => a.Int("type") == 100 && a["qoi"] == "20"));
        Assert.Empty(gw.Audit("denied"));
    }

    /// <summary>The expected answer of one command: positive, or refused by the gateway with this cause.</summary>
    private sealed record Planned(string Line, int Type, int Ca, int Ioa, bool Refused, int Cot);

    /// <summary>
    /// Allowed: select/execute pairs at 2000-2049, set-points 0..150 at 3000-3009, clock syncs. Refused by the
    /// gateway: a breaker IOA outside 2000-2049 (47; the station itself would accept 2050-2099), a CA the rules do
    /// not name (46), a type no rule names (44), a set-point out of bounds (7), an execute without a select (7).
    /// </summary>
    private static List<Planned> PlanCommands(int count, int seed)
    {
        var random = new Random(seed);
        var plan = new List<Planned>(count);
        while (plan.Count < count)
        {
            int ioa = 2000 + random.Next(50);
            int pick = random.Next(100);
            if (pick < 25 && plan.Count + 2 <= count)
            {
                bool dc = random.Next(2) == 0;
                string type = dc ? "C_DC_NA_1" : "C_SC_NA_1";
                int value = dc ? 1 + random.Next(2) : random.Next(2);
                plan.Add(new($"{type} ca=1 ioa={ioa} value={value} select", dc ? 46 : 45, 1, ioa, false, 7));
                plan.Add(new($"{type} ca=1 ioa={ioa} value={value} execute", dc ? 46 : 45, 1, ioa, false, 7));
            }
            else if (pick < 40)
            {
                int sp = 3000 + random.Next(10);
                string value = (random.Next(3001) / 20.0).ToString("0.##", CultureInfo.InvariantCulture);
                plan.Add(new($"C_SE_NC_1 ca=1 ioa={sp} value={value}", 50, 1, sp, false, 7));
            }
            else if (pick < 50)
            {
                plan.Add(new("C_CS_NA_1 ca=1", 103, 1, 0, false, 7));
            }
            else if (pick < 60)
            {
                plan.Add(new($"C_SC_NA_1 ca=1 ioa={ioa} value=1 execute", 45, 1, ioa, true, 7)); // no select before
            }
            else if (pick < 70)
            {
                int bad = random.Next(2) == 0 ? 2050 + random.Next(50) : 1000 + random.Next(1000);
                plan.Add(new($"C_SC_NA_1 ca=1 ioa={bad} value=1 select", 45, 1, bad, true, 47));
            }
            else if (pick < 78)
            {
                int ca = 3 + random.Next(100);
                plan.Add(new($"C_DC_NA_1 ca={ca} ioa={ioa} value=2 select", 46, ca, ioa, true, 46));
            }
            else if (pick < 86)
            {
                plan.Add(random.Next(2) == 0
                    ? new($"C_RC_NA_1 ca=1 ioa={ioa} value=2", 47, 1, ioa, true, 44)
                    : new($"C_SE_NB_1 ca=1 ioa={3000 + random.Next(10)} value=5", 49, 1, 3000, true, 44));
                if (plan[^1].Type == 49)
                {
                    plan[^1] = plan[^1] with { Ioa = int.Parse(Regex.Match(plan[^1].Line, @"ioa=(\d+)").Groups[1].Value, CultureInfo.InvariantCulture) };
                }
            }
            else
            {
                int sp = 3000 + random.Next(10);
                string value = random.Next(2) == 0 ? "150.5" : (-(1 + random.Next(100))).ToString(CultureInfo.InvariantCulture);
                plan.Add(new($"C_SE_NC_1 ca=1 ioa={sp} value={value}", 50, 1, sp, true, 7));
            }
        }
        return plan;
    }

    [Fact]
    public async Task AThousandCommands_AllowedReachTheStation_RefusedAreAnsweredByTheGateway_OneConfirmationEach()
    {
        var plan = PlanCommands(1000, seed: 60870);
        Assert.All(new[] { 7, 44, 46, 47 }, cause => Assert.Contains(plan, p => p.Refused && p.Cot == cause));
        string file = Path.Combine(Path.GetTempPath(), $"iec104-gw-commands-{Guid.NewGuid():N}.txt");
        await File.WriteAllLinesAsync(file, plan.Select(p => p.Line));
        try
        {
            await using var gw = await Iec104Gateway.StartAsync();

            var sw = Stopwatch.StartNew();
            var run = await Iec104Peer.RunClientAsync(gw.Endpoint, ["--commands", file, "--timeout-ms", "5000"], 240_000);
            output.WriteLine($"1000 commands through the gateway in {sw.ElapsedMilliseconds} ms; {run.Summary}");

            Assert.True(run.ExitCode == 0, string.Join('\n', run.Lines.TakeLast(30)) + "\n" + gw.Process.Stdout[^Math.Min(3000, gw.Process.Stdout.Length)..]);
            int refused = plan.Count(p => p.Refused);
            var summary = run.Summary;
            Assert.Equal(("1000", "1000", (1000 - refused).ToString(CultureInfo.InvariantCulture), refused.ToString(CultureInfo.InvariantCulture), "0", "0"),
                (summary["sent"], summary["confirmed"], summary["positive"], summary["negative"], summary["timeouts"], summary["reconnects"]));
            Assert.Empty(run.OfKind("drop"));
            Assert.Empty(run.OfKind("lib")); // no sequence error, no invalid frame

            var confirms = run.OfKind("confirm").ToArray();
            Assert.Equal(plan.Count, confirms.Length);
            for (int i = 0; i < plan.Count; i++)
            {
                var c = confirms[i];
                var p = plan[i];
                Assert.True((c.Int("type"), c.Int("ca"), c.Int("ioa"), c["negative"] == "1", c.Int("cot")) == (p.Type, p.Ca, p.Ioa, p.Refused, p.Cot),
                    $"command {i + 1} `{p.Line}`: expected negative={p.Refused} cot={p.Cot}, got {c}");
            }
            // Every execute allowed is terminated by the station; set-points too.
            Assert.Equal(plan.Count(p => !p.Refused && (p.Line.EndsWith(" execute", StringComparison.Ordinal) || p.Type == 50)), int.Parse(summary["terms"], CultureInfo.InvariantCulture));

            // The station saw exactly the allowed commands, in order, on one connection; none of the refused ones.
            await gw.Station.WaitForClosesAsync(30_000);
            var allowed = plan.Where(p => !p.Refused).ToArray();
            var asdus = gw.Station.Asdus;
            Assert.Equal(allowed.Length, asdus.Count);
            for (int i = 0; i < allowed.Length; i++)
            {
                var a = asdus[i];
                var p = allowed[i];
                Assert.True((a.Int("type"), a.Int("ca"), a.Int("ioa"), a.Int("neg")) == (p.Type, p.Ca, p.Ioa, 0), $"ASDU {i + 1}: expected `{p.Line}`, the station logged {a}");
                if (p.Type is 45 or 46)
                {
                    Assert.Equal(p.Line.EndsWith(" select", StringComparison.Ordinal) ? "1" : "0", a["se"]);
                }
            }
            Assert.Single(gw.Station.Log, l => l.Kind == "connect");
            Assert.Single(gw.Station.Log, l => l.Kind == "startdt");
            Assert.DoesNotContain(gw.Station.Log, l => l.Kind == "reply" && l["neg"] == "1");
            Assert.DoesNotContain(gw.Station.Log, l => l.Kind == "lib" && !l["msg"].Contains("Error reading from socket", StringComparison.Ordinal));

            // One denied event per refused command, in order, naming its CA, IOA and the cause answered. The audit
            // log summarises floods (50 events of a kind per source per second): what it did not write, it counted.
            await gw.WaitForAuditAsync(() => gw.Audit("denied").Length + gw.Audit("suppressed").Where(e => e.GetProperty("suppressed_event").GetString() == "denied").Sum(e => e.GetProperty("count").GetInt32()) >= refused);
            var denied = gw.Audit("denied");
            int suppressed = gw.Audit("suppressed").Where(e => e.GetProperty("suppressed_event").GetString() == "denied").Sum(e => e.GetProperty("count").GetInt32());
            output.WriteLine($"{denied.Length} denied events written, {suppressed} counted in suppressed summaries; {refused} refused");
            Assert.Equal(refused, denied.Length + suppressed);
            int next = 0;
            var refusedPlan = plan.Where(p => p.Refused).ToArray();
            foreach (var e in denied)
            {
                // Each written event is the next refused command that matches it (those between were summarised).
                while (next < refusedPlan.Length && !Matches(e, refusedPlan[next]))
                {
                    next++;
                }
                Assert.True(next < refusedPlan.Length, $"denied event matches no refused command in order: {e}");
                next++;
            }
            Assert.Empty(gw.Audit("pending-limit"));
            Assert.Empty(gw.Audit("unmatched-response"));
        }
        finally
        {
            File.Delete(file);
        }

        static bool Matches(JsonElement e, Planned p) =>
            e.GetProperty("ca").GetInt32() == p.Ca && e.GetProperty("ioa").GetInt32() == p.Ioa && e.GetProperty("function").GetInt32() == p.Type
            && e.GetProperty("cause").GetInt32() == 6
            && e.GetProperty("reason").GetString()!.Contains($"(cause {p.Cot}:", StringComparison.Ordinal);
    }

    [Fact]
    public async Task ASourceNoRuleNames_IsClosedBeforeStartDt_AndAudited()
    {
        await using var gw = await Iec104Gateway.StartAsync(from: "10.99.0.0/16");

        var run = await Iec104Peer.RunClientAsync(gw.Endpoint, ["--interrogate", "--max-reconnects", "0", "--timeout-ms", "2000"], 30_000);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Empty(run.OfKind("startdt-con"));
        Assert.Empty(run.OfKind("point"));
        await gw.WaitForAuditAsync(() => gw.Audit("denied").Length > 0);
        var e = Assert.Single(gw.Audit("denied"));
        Assert.Contains("no rule for this source", e.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.True(e.GetProperty("connection").GetString() == "closed", e.ToString());
        // The gateway never opened the station connection: nothing of the client reached it.
        await Task.Delay(300);
        Assert.DoesNotContain(gw.Station.Log, l => l.Kind is "connect" or "startdt" or "asdu");
    }

    [Fact]
    public async Task SelectBeforeOperate_OneExecutePerConfirmedSelect_NotAfterTimeout_NotAfterANegativeSelect_NotAfterARefusedExecute()
    {
        // select-timeout 3 s (not 1 s): each execute below follows its select's confirmation, which crosses the gateway and
        // the station's process; a loaded machine may take over a second for that.
        await using var gw = await Iec104Gateway.StartAsync(selectTimeout: "3s");
        using var client = await RawIec104.ConnectAsync(gw.Port);
        await client.StartDtAsync();

        // Select then execute: both pass; a second execute for the same select is refused with 7 by the gateway.
        Assert.Equal((7, false), await client.CommandAsync(RawIec104.SingleCommand(1, 2010, select: true, on: true)));
        Assert.Equal((7, false), await client.CommandAsync(RawIec104.SingleCommand(1, 2010, select: false, on: true)));
        Assert.Equal(10, (await client.ReadAsduAsync()).Cause); // the station's actterm, relayed
        Assert.Equal((7, true), await client.CommandAsync(RawIec104.SingleCommand(1, 2010, select: false, on: true)));

        // An execute after select-timeout (3 s) is refused.
        Assert.Equal((7, false), await client.CommandAsync(RawIec104.SingleCommand(1, 2011, select: true, on: true)));
        await Task.Delay(3500);
        Assert.Equal((7, true), await client.CommandAsync(RawIec104.SingleCommand(1, 2011, select: false, on: true)));

        // A select the station refuses (CA 2: the policy allows it, the station answers 46) does not arm the execute.
        Assert.Equal((46, true), await client.CommandAsync(RawIec104.SingleCommand(2, 2012, select: true, on: true)));
        Assert.Equal((7, true), await client.CommandAsync(RawIec104.SingleCommand(2, 2012, select: false, on: true)));

        // An execute the gateway refuses (OFF after a select of ON: not the selected command) ends the selection,
        // as the station's own selection ends on any execute: the ON that follows needs a new select. The station
        // never sees either execute (its log, below, has exactly the executes allowed here).
        Assert.Equal((7, false), await client.CommandAsync(RawIec104.SingleCommand(1, 2014, select: true, on: true)));
        Assert.Equal((7, true), await client.CommandAsync(RawIec104.SingleCommand(1, 2014, select: false, on: false)));
        Assert.Equal((7, true), await client.CommandAsync(RawIec104.SingleCommand(1, 2014, select: false, on: true)));

        // The session goes on: a fresh select and execute still pass.
        Assert.Equal((7, false), await client.CommandAsync(RawIec104.SingleCommand(1, 2013, select: true, on: false)));
        Assert.Equal((7, false), await client.CommandAsync(RawIec104.SingleCommand(1, 2013, select: false, on: false)));
        Assert.Equal(10, (await client.ReadAsduAsync()).Cause);
        client.Dispose();

        await gw.Station.WaitForClosesAsync();
        Assert.Equal(
            ["45 1 2010 se=1", "45 1 2010 se=0", "45 1 2011 se=1", "45 2 2012 se=1", "45 1 2014 se=1", "45 1 2013 se=1", "45 1 2013 se=0"],
            gw.Station.Asdus.Select(a => $"{a["type"]} {a["ca"]} {a["ioa"]} se={a["se"]}"));
        Assert.Equal(5, gw.Audit("denied").Length);
    }

    /// <summary>Crafted frames (tests/peers/iec104/craft.py) that are malformed, and the words the gateway's audit must name.</summary>
    public static TheoryData<string, string> MalformedFrames => new()
    {
        { "len_over_253", "APDU length above 253" },
        { "len_under_4", "APDU length below 4" },
        { "s_frame_with_asdu", "S-frame longer than its 4 control octets" },
        { "u_frame_two_functions", "U-frame with more than one function bit" },
        { "u_frame_no_function", "U-frame without a function bit" },
        { "i_len_longer_than_type_n", "ASDU longer than its type, SQ and number of objects imply" },
        { "i_len_shorter_than_type_n", "ASDU shorter than its type, SQ and number of objects imply" },
        { "n_larger_than_objects", "ASDU shorter than its type, SQ and number of objects imply" },
        { "sq1_n0", "ASDU with 0 information objects" },
        { "sq1_no_base_ioa", "SQ=1 ASDU without its base information object address" },
        { "cause_0", "cause of transmission 0" },
    };

    [Theory]
    [MemberData(nameof(MalformedFrames))]
    public async Task AMalformedFrameAfterStartDt_ClosesTheConnection_IsAuditedWithItsReason_AndNeverReachesTheStation(string name, string reasonWords)
    {
        byte[] frame = (await CraftedAsync())[name];
        await using var gw = await Iec104Gateway.StartAsync();
        using var client = await RawIec104.ConnectAsync(gw.Port);
        await client.StartDtAsync();

        await client.SendRawAsync(frame);

        Assert.True(await client.ClosedAsync(20_000), $"{name}: the gateway did not close the connection");
        await gw.WaitForAuditAsync(() => gw.Audit("malformed").Length > 0);
        var e = Assert.Single(gw.Audit("malformed"));
        string reason = e.GetProperty("reason").GetString()!;
        output.WriteLine($"{name}: {reason}");
        Assert.StartsWith("IEC 104", reason, StringComparison.Ordinal);
        Assert.Contains(reasonWords, reason, StringComparison.Ordinal);
        Assert.Equal("closed", e.GetProperty("connection").GetString());
        await gw.Station.WaitForClosesAsync();
        Assert.Single(gw.Station.Log, l => l.Kind == "startdt");
        Assert.Empty(gw.Station.Asdus);
        Assert.DoesNotContain(gw.Station.Log, l => l.Kind == "lib" && !l["msg"].Contains("Error reading from socket", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AnIdleClient_LongerThanT3_KeepsItsConnection_TestFrOnEachLeg()
    {
        // t1 11 s: longer than lib60870's own t2 (10 s), as IEC 60870-5-104 wants of a sender's t1 (the client acknowledges
        // the interrogation's I-frames only after its t2; a TESTFR con carries no N(R)). t2 must be below t1.
        await using var gw = await Iec104Gateway.StartAsync(limits: "{ t3: 2s, t1: 11s, t2: 1s }");

        // The lib60870 client: an interrogation, then 12 s of silence, longer than t1 (its own t3 is 20 s: the gateway tests both legs).
        var idle = Iec104Peer.RunClientAsync(gw.Endpoint, ["--interrogate", "--listen-ms", "14000"], 60_000);
        // A raw client beside it: it must be asked TESTFR act by the gateway every t3, and answering keeps it open.
        using var raw = await RawIec104.ConnectAsync(gw.Port);
        await raw.StartDtAsync();
        var sw = Stopwatch.StartNew();
        int tests = 0;
        while (sw.ElapsedMilliseconds < 12_000)
        {
            byte[]? f;
            try
            {
                f = await raw.ReadFrameAsync(Math.Max(1, 12_000 - (int)sw.ElapsedMilliseconds));
            }
            catch (OperationCanceledException)
            {
                break;
            }
            Assert.True(f is not null, $"the gateway closed the idle raw client after {sw.ElapsedMilliseconds} ms ({tests} TESTFR act)");
            if (f is [0x68, 4, 0x43, 0, 0, 0])
            {
                tests++;
                await raw.SendRawAsync([0x68, 4, 0x83, 0, 0, 0]);
            }
        }
        output.WriteLine($"{tests} TESTFR act from the gateway in 12 s of silence (t3 2 s)");
        Assert.InRange(tests, 3, 7);
        // 12 s on, both clients are still connected and the station has closed no connection.
        Assert.False(idle.IsCompleted, "the lib60870 client ended before 12 s");
        Assert.DoesNotContain(gw.Station.Log, l => l.Kind is "close" or "lib");
        Assert.Equal(2, gw.Station.Log.Count(l => l.Kind == "connect"));
        var run = await idle;

        Assert.True(run.ExitCode == 0, run + "\n" + gw.Process.Stdout);
        Assert.Equal(("0", "40"), (run.Summary["reconnects"], run.Summary["points"]));
        Assert.Empty(run.OfKind("drop"));
        Assert.Empty(gw.Audit("idle-timeout"));
        Assert.Empty(gw.Audit("upstream-lost"));
    }

    private static Dictionary<string, byte[]>? _crafted;

    private static async Task<Dictionary<string, byte[]>> CraftedAsync()
    {
        if (_crafted is null)
        {
            var run = await Processes.RunAsync(Processes.Tool("/usr/bin/python3", Path.Combine(Processes.RepoRoot, "tests", "peers", "iec104", "craft.py")));
            Assert.True(run.ExitCode == 0, "craft.py failed (apt-get install python3-scapy):\n" + run.Stderr);
            _crafted = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' '))
                .ToDictionary(p => p[0], p => Convert.FromHexString(p[1]));
        }
        return _crafted;
    }
}

/// <summary>iec104-station and `edgeshield run` in front of it (listener rtu7, the test's policy); the audit is its stdout.</summary>
internal sealed partial class Iec104Gateway : IAsyncDisposable
{
    private Iec104Gateway(Iec104Peer station, Processes.Running process, string configPath, int port)
    {
        Station = station;
        Process = process;
        ConfigPath = configPath;
        Port = port;
    }

    public Iec104Peer Station { get; }
    public Processes.Running Process { get; }
    public string ConfigPath { get; }
    public int Port { get; }
    public string Endpoint => $"127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}";

    public static async Task<Iec104Gateway> StartAsync(string from = "127.0.0.0/8", string selectTimeout = "10s", string limits = "")
    {
        var station = await Iec104Peer.StartStationAsync("--ca", "1", "--redundancy-groups");
        string policy = PolicyText(from, selectTimeout);
        string yaml = $$"""
            gateway: { name: it-gw, site: lab }
            listeners:
              - name: rtu7
                bind: 127.0.0.1:0
                protocol: iec104
                upstream: tcp://{{station.Endpoint}}
                policy: rtu7
            {{(limits.Length > 0 ? "    limits: " + limits : "")}}
            policies:
              rtu7:
            {{policy}}
            """;
        string path = Path.Combine(Path.GetTempPath(), $"edgeshield-iec104-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, yaml);
        var process = new Processes.Running(Processes.EdgeShield("run", "--config", path));
        if (!await process.WaitForStderrAsync("listener rtu7 on "))
        {
            await process.DisposeAsync();
            await station.DisposeAsync();
            Assert.Fail("gateway did not start:\n" + process.Stderr + "\n" + yaml);
        }
        var match = ListenLine().Match(process.Stderr);
        Assert.True(match.Success, process.Stderr);
        return new Iec104Gateway(station, process, path, int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture));
    }

    private static string PolicyText(string from, string selectTimeout)
    {
        return Iec104GatewayTests.Policy.Replace("{FROM}", from, StringComparison.Ordinal).Replace("{SELECT_TIMEOUT}", selectTimeout, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"listener rtu7 on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenLine();

    /// <summary>The audit events (stdout JSON lines) of this kind so far.</summary>
    public JsonElement[] Audit(string kind) =>
        [.. Process.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith('{'))
            .Select(l => JsonDocument.Parse(l).RootElement.Clone())
            .Where(e => e.TryGetProperty("event", out var k) && k.GetString() == kind)];

    public async Task WaitForAuditAsync(Func<bool> done, int timeoutMs = 30_000) // generous: a loaded CI machine
    {
        var sw = Stopwatch.StartNew();
        while (!done() && sw.ElapsedMilliseconds < timeoutMs && !Process.Process.HasExited)
        {
            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Process.DisposeAsync();
        await Station.DisposeAsync();
        File.Delete(ConfigPath);
    }
}

/// <summary>A raw IEC 104 controlling station on a socket: frames by hand, N(S)/N(R) counted, every I-frame acknowledged.</summary>
internal sealed class RawIec104 : IDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[4096];
    private int _filled;
    private ushort _sendNext;
    private ushort _receiveNext;

    private RawIec104(Socket socket) => _socket = socket;

    public static async Task<RawIec104> ConnectAsync(int port)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        return new RawIec104(socket);
    }

    /// <summary>C_SC_NA_1, cause 6, one object: SCO with S/E and the state.</summary>
    public static byte[] SingleCommand(ushort ca, int ioa, bool select, bool on) =>
        [45, 1, 6, 0, (byte)ca, (byte)(ca >> 8), (byte)ioa, (byte)(ioa >> 8), (byte)(ioa >> 16), (byte)((select ? 0x80 : 0) | (on ? 1 : 0))];

    public Task SendRawAsync(byte[] bytes) => _socket.SendAsync(bytes, SocketFlags.None);

    public async Task StartDtAsync()
    {
        await SendRawAsync([0x68, 4, 0x07, 0, 0, 0]);
        while (true)
        {
            var f = await ReadFrameAsync(20_000) ?? throw new InvalidOperationException("closed before STARTDT con");
            if (f is [0x68, 4, 0x0B, 0, 0, 0])
            {
                return;
            }
            await AnswerAsync(f);
        }
    }

    public async Task SendAsduAsync(byte[] asdu)
    {
        var frame = new byte[6 + asdu.Length];
        frame[0] = 0x68;
        frame[1] = (byte)(4 + asdu.Length);
        frame[2] = (byte)(_sendNext << 1);
        frame[3] = (byte)(_sendNext >> 7);
        frame[4] = (byte)(_receiveNext << 1);
        frame[5] = (byte)(_receiveNext >> 7);
        asdu.CopyTo(frame, 6);
        _sendNext = (ushort)((_sendNext + 1) & 0x7FFF);
        await SendRawAsync(frame);
    }

    /// <summary>Sends a command and returns its confirmation's cause and P/N.</summary>
    public async Task<(int Cause, bool Negative)> CommandAsync(byte[] asdu)
    {
        await SendAsduAsync(asdu);
        var answer = await ReadAsduAsync();
        Assert.True(answer.Bytes[0] == asdu[0] && answer.Bytes.AsSpan(4, 5).SequenceEqual(asdu.AsSpan(4, 5)), $"not the answer of {Convert.ToHexString(asdu)}: {Convert.ToHexString(answer.Bytes)}");
        return (answer.Cause, answer.Negative);
    }

    public sealed record Asdu(byte[] Bytes)
    {
        public int Cause => Bytes[2] & 0x3F;
        public bool Negative => (Bytes[2] & 0x40) != 0;
    }

    /// <summary>The next ASDU (acknowledged at once); TESTFR act is answered on the way.</summary>
    public async Task<Asdu> ReadAsduAsync(int timeoutMs = 10_000)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var f = await ReadFrameAsync(Math.Max(1, timeoutMs - (int)sw.ElapsedMilliseconds)) ?? throw new InvalidOperationException("closed while waiting for an ASDU");
            if ((f[2] & 1) == 0)
            {
                await AnswerAsync(f);
                return new Asdu(f[6..]);
            }
            await AnswerAsync(f);
        }
    }

    private async Task AnswerAsync(byte[] f)
    {
        if ((f[2] & 1) == 0)
        {
            int ns = (f[2] >> 1) | (f[3] << 7);
            Assert.Equal(_receiveNext, ns);
            _receiveNext = (ushort)((_receiveNext + 1) & 0x7FFF);
            await SendRawAsync([0x68, 4, 1, 0, (byte)(_receiveNext << 1), (byte)(_receiveNext >> 7)]);
        }
        else if (f is [0x68, 4, 0x43, 0, 0, 0])
        {
            await SendRawAsync([0x68, 4, 0x83, 0, 0, 0]);
        }
    }

    /// <summary>The next whole APDU, or null when the gateway closed; throws on timeout.</summary>
    public async Task<byte[]?> ReadFrameAsync(int timeoutMs)
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        while (true)
        {
            if (_filled >= 2 && _filled >= 2 + _buffer[1])
            {
                int length = 2 + _buffer[1];
                var frame = _buffer[..length];
                _buffer.AsSpan(length, _filled - length).CopyTo(_buffer);
                _filled -= length;
                return frame;
            }
            int read;
            try
            {
                read = await _socket.ReceiveAsync(_buffer.AsMemory(_filled), SocketFlags.None, cts.Token);
            }
            catch (SocketException)
            {
                return null;
            }
            if (read == 0)
            {
                return null;
            }
            _filled += read;
        }
    }

    /// <summary>True when the gateway closes the connection within <paramref name="timeoutMs"/> (frames before the close are skipped).</summary>
    public async Task<bool> ClosedAsync(int timeoutMs)
    {
        try
        {
            while (await ReadFrameAsync(timeoutMs) is not null)
            {
            }
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Dispose() => _socket.Dispose();
}
