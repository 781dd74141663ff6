using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// libmodbus's own test suite (tests/peers/libmodbus, LGPL v2.1, built by tests/peers/build-libmodbus.sh)
/// run directly against its server and again through `edgeshield run` with an allow-all policy: the
/// outcome of every check must be the same both ways, except where the list below says why not — and
/// each such difference must be explained by the refusal the gateway's audit shows for it.
/// </summary>
/// <remarks>
/// unit-test-client stops at its first failed check (ASSERT_TRUE does <c>goto close</c>), so a run
/// compares only a prefix. The test compiles a copy whose ASSERT_TRUE goes on after a failure and names
/// its source line when it passes ("OK line N"); every check then has an outcome keyed by its line.
/// Checks that are unstable direct on a loaded machine are listed in <see cref="Unstable"/>, with why.
/// </remarks>
public partial class LibmodbusSuiteTests(ITestOutputHelper output)
{
    private const int BuildTimeoutMs = 20 * 60_000; // a cold autotools build on a loaded 2-core VM took ~6 min
    private const int ClientTimeoutMs = 180_000;

    private const string AllowAll = """
            mode: enforce
            rules:
              - name: allow-all
        """;

    /// <summary>
    /// Checks whose outcome direct depends on this machine, not on what is between client and server;
    /// their outcomes are printed, not compared. Line numbers are those of the built copy
    /// (build-libmodbus.sh adds one line at the top of each test program).
    /// </summary>
    private static readonly Dictionary<int, string> Unstable = new()
    {
        [680] = "8/8 Connection timeout: connects to 1.2.3.4 with a 1 µs timeout and expects ETIMEDOUT; where the " +
                "network answers 1.2.3.4 at once (this VM's default route often does) connect fails otherwise",
        [706] = "2/2 Adapted byte timeout (7 ms > 5 ms): the server sends the reply byte by byte with usleep(5000); " +
                "on a loaded machine its sleeps overrun 7 ms (a capture here showed 10–52 ms gaps, each byte acked " +
                "within 20 µs, so not Nagle), and the client's 7 ms byte timeout fires",
    };

    /// <summary>
    /// Checks whose outcome through the gateway may differ from direct by design. Each names the audit
    /// event (kind and a part of its reason) that must be present when the difference is seen; the one
    /// difference that is no refusal (695) names none. A listed difference that does not occur is
    /// reported, not failed (item 9 of issue 10 will make 1005 pass through the gateway).
    /// </summary>
    private static readonly KnownDifference[] ByDesign =
    [
        new(695, "1/2 Too small byte timeout (3 ms < 5 ms)", null, null,
            "not a refusal: the gateway forwards a response only once it holds the whole ADU (it checks it " +
            "first), so the server's 5 ms gaps between bytes never reach the client and its 3 ms byte timeout " +
            "cannot fire (for the same reason 706 always passes through the gateway)"),
        new(722, "TEST BAD RESPONSE ERROR: modbus_read_registers answered with one register too few", "response-mismatch",
            "response length or byte count does not match the request",
            "the gateway checks the PLC's answer against the request and answers 0B instead of forwarding a " +
            "wrong one; libmodbus expects to find the bad data itself (EMBBADDATA) and gets exception 0B"),
        new(1005, "send_crafted_request: FC 15/16 with quantity 0 and a PDU longer than it says", "malformed",
            "bytes after the end of the PDU",
            "issue 10 item 9, not landed here: the gateway calls the PDU malformed and closes the connection " +
            "(libmodbus reconnects) where libmodbus's server answers 03"),
    ];

    private sealed record KnownDifference(int Line, string Check, string? AuditKind, string? AuditReason, string Why);

    [Fact]
    public async Task UnitTestClient_ThroughAnAllowAllGateway_DiffersFromDirectOnlyWhereTheAuditShowsARefusal()
    {
        var peers = await BuildPeersAsync();
        string client = await BuildKeepGoingClientAsync(peers);

        var direct = await RunSuiteDirectAsync(peers, client);
        var (through, audit) = await RunSuiteThroughGatewayAsync(peers, client);
        var directOutcomes = Outcomes(direct);
        var gatewayOutcomes = Outcomes(through);
        output.WriteLine($"direct: {directOutcomes.Sum(o => o.Value.Count)} checks, through the gateway: {gatewayOutcomes.Sum(o => o.Value.Count)}");
        Assert.True(directOutcomes.Sum(o => o.Value.Count) > 100, "the suite did not run direct:\n" + direct);

        var differences = new List<int>();
        foreach (int line in directOutcomes.Keys.Union(gatewayOutcomes.Keys).Order())
        {
            string d = Describe(directOutcomes.GetValueOrDefault(line)), g = Describe(gatewayOutcomes.GetValueOrDefault(line));
            if (d == g)
            {
                continue;
            }
            if (Unstable.TryGetValue(line, out string? why))
            {
                output.WriteLine($"line {line}: direct {d}, gateway {g} (unstable, not compared: {why})");
                continue;
            }
            output.WriteLine($"line {line}: direct {d}, gateway {g}");
            differences.Add(line);
        }

        var unexplained = new StringBuilder();
        foreach (int line in differences)
        {
            var known = ByDesign.FirstOrDefault(k => k.Line == line);
            if (known is null)
            {
                unexplained.AppendLine(CultureInfo.InvariantCulture, $"line {line}: direct {Describe(directOutcomes.GetValueOrDefault(line))}, gateway {Describe(gatewayOutcomes.GetValueOrDefault(line))}");
                continue;
            }
            if (known.AuditKind is not null)
            {
                bool audited = audit.Any(e => e.Contains($"\"event\":\"{known.AuditKind}\"", StringComparison.Ordinal) && e.Contains(known.AuditReason!, StringComparison.Ordinal));
                Assert.True(audited, $"line {line} ({known.Check}) differs by design ({known.Why}) but the audit has no {known.AuditKind} event with '{known.AuditReason}':\n{string.Join('\n', audit)}");
            }
            output.WriteLine($"  by design: {known.Check}: {known.Why}");
        }
        foreach (var known in ByDesign.Where(k => !differences.Contains(k.Line)))
        {
            output.WriteLine($"listed difference not seen (now as direct): line {known.Line}, {known.Check}");
        }
        Assert.True(unexplained.Length == 0,
            $"checks that differ from direct with no refusal by design to explain them:\n{unexplained}\naudit:\n{string.Join('\n', audit)}\n--- through the gateway:\n{Tail(through)}");
    }

    [Fact]
    public async Task RandomTestClient_ThroughAnAllowAllGateway_SucceedsAsDirect()
    {
        var peers = await BuildPeersAsync();
        string client = Path.Combine(peers, "tests", "random-test-client");
        string server = Path.Combine(peers, "tests", "random-test-server");

        string direct = await RunPairAsync(server, client, port => port);
        Assert.Contains("Test: SUCCESS", direct, StringComparison.Ordinal);

        int plcPort = Processes.FreePort();
        await using var plc = StartServer(server, plcPort);
        await using var gateway = await StartGatewayAsync(plcPort);
        var result = await Processes.RunAsync(Peer(client, gateway.Port), ClientTimeoutMs);
        output.WriteLine(Tail(result.Stdout));
        Assert.Contains("Test: SUCCESS", result.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("ERROR", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(0, result.ExitCode);
        Assert.DoesNotContain("\"denied\"", gateway.Gateway.Stdout, StringComparison.Ordinal);
    }

    /// <summary>tests/peers/build-libmodbus.sh into artifacts/peers/libmodbus (idempotent), bounded.</summary>
    private static async Task<string> BuildPeersAsync()
    {
        string out_ = Path.Combine(Processes.RepoRoot, "artifacts", "peers", "libmodbus");
        var result = await Processes.RunAsync(Processes.Tool("/bin/bash", Path.Combine(Processes.RepoRoot, "tests", "peers", "build-libmodbus.sh"), out_), BuildTimeoutMs);
        Assert.True(result.ExitCode == 0, "build-libmodbus.sh failed:\n" + result.Stdout + result.Stderr);
        return out_;
    }

    /// <summary>unit-test-client.c with ASSERT_TRUE going on after a failure and naming its line when it passes.</summary>
    private static async Task<string> BuildKeepGoingClientAsync(string peers)
    {
        string source = await File.ReadAllTextAsync(Path.Combine(peers, "tests", "unit-test-client.c"));
        string passes = "printf(\"OK\\n\");", stops = "goto close;                           \\";
        Assert.Contains(passes, source, StringComparison.Ordinal); // the macro as upstream writes it
        Assert.Contains(stops, source, StringComparison.Ordinal);
        int macro = source.IndexOf("#define ASSERT_TRUE", StringComparison.Ordinal);
        int end = source.IndexOf("};", macro, StringComparison.Ordinal);
        string patched = source[..macro]
            + source[macro..end].Replace(passes, "printf(\"OK line %d\\n\", __LINE__);", StringComparison.Ordinal)
                                .Replace(stops, ";                                    \\", StringComparison.Ordinal)
            + source[end..];
        string dir = Path.Combine(peers, "keep-going");
        Directory.CreateDirectory(dir);
        string c = Path.Combine(dir, "unit-test-client.c"), exe = Path.Combine(dir, "unit-test-client");
        await File.WriteAllTextAsync(c, patched);
        var cc = await Processes.RunAsync(Processes.Tool("/usr/bin/cc", "-O1", "-w",
            "-I", Path.Combine(peers, "install", "include", "modbus"), "-I", Path.Combine(peers, "tests"), "-I", peers,
            "-o", exe, c, Path.Combine(peers, "install", "lib", "libmodbus.a")), BuildTimeoutMs);
        Assert.True(cc.ExitCode == 0, cc.Stdout + cc.Stderr);
        return exe;
    }

    private static async Task<string> RunSuiteDirectAsync(string peers, string client) =>
        await RunPairAsync(Path.Combine(peers, "tests", "unit-test-server"), client, port => port, "tcp");

    private async Task<(string Stdout, List<string> Audit)> RunSuiteThroughGatewayAsync(string peers, string client)
    {
        int plcPort = Processes.FreePort();
        await using var plc = StartServer(Path.Combine(peers, "tests", "unit-test-server"), plcPort, "tcp");
        // The suite's client gives up after libmodbus's 0.5 s and goes on with its next check, which makes the gateway drop
        // the abandoned request without a 0B (DESIGN.md "Timeouts"). With the default 1 s, a loaded machine that delays the
        // client's next request by another 0.5 s turns that into a late 0B in the next check (seen once in CI under load);
        // 3 s keeps what is tested — abandonment, not the machine's speed — and no check here waits for a 0B of a timeout.
        await using var gateway = await StartGatewayAsync(plcPort, "{ response-timeout: 3s }");
        var result = await Processes.RunAsync(Peer(client, gateway.Port, "tcp"), ClientTimeoutMs);
        await Task.Delay(300); // the audit lines of the last requests
        // Then stop it: a clean stop flushes the audit log, and the exit drains its stdout, so the last lines are
        // in even when a loaded machine writes them later than the 300 ms above.
        gateway.Gateway.Signal(Processes.SIGTERM);
        await gateway.Gateway.WaitForExitAsync();
        var audit = gateway.Gateway.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith('{') && !l.Contains("\"allowed\"", StringComparison.Ordinal)).ToList();
        foreach (var line in audit)
        {
            output.WriteLine("audit: " + line);
        }
        return (result.Stdout, audit);
    }

    private static async Task<string> RunPairAsync(string server, string client, Func<int, int> clientPort, params string[] args)
    {
        int port = Processes.FreePort();
        await using var plc = StartServer(server, port, args);
        var result = await Processes.RunAsync(Peer(client, clientPort(port), args), ClientTimeoutMs);
        return result.Stdout;
    }

    /// <summary>A libmodbus test server on <paramref name="port"/>, once it listens (bounded wait).</summary>
    private static Processes.Running StartServer(string server, int port, params string[] args)
    {
        var running = new Processes.Running(Peer(server, port, args));
        var sw = Stopwatch.StartNew();
        while (sw.ElapsedMilliseconds < 10_000 && !Listening(port))
        {
            Thread.Sleep(20);
        }
        Assert.True(Listening(port), $"{server} did not listen on {port}: {running.Stderr}");
        return running;
    }

    private static bool Listening(int port) =>
        System.Net.NetworkInformation.IPGlobalProperties.GetIPGlobalProperties().GetActiveTcpListeners().Any(e => e.Port == port);

    private static ProcessStartInfo Peer(string path, int port, params string[] args)
    {
        var start = Processes.Tool(path, args);
        start.Environment["MODBUS_PORT"] = port.ToString(CultureInfo.InvariantCulture);
        return start;
    }

    private sealed class RunningGateway(Processes.Running process, string config, int port) : IAsyncDisposable
    {
        public Processes.Running Gateway { get; } = process;
        public int Port { get; } = port;

        public async ValueTask DisposeAsync()
        {
            await Gateway.DisposeAsync();
            File.Delete(config);
        }
    }

    private static async Task<RunningGateway> StartGatewayAsync(int plcPort, string? limits = null)
    {
        string path = Path.Combine(Path.GetTempPath(), $"edgeshield-lmb-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, GatewayProcess.Config(plcPort, AllowAll, limits));
        var process = new Processes.Running(Processes.EdgeShield("run", "--config", path));
        Assert.True(await process.WaitForStderrAsync("listener hmi-plc1 on "), "gateway did not start:\n" + process.Stderr);
        var match = ListenLine().Match(process.Stderr);
        Assert.True(match.Success, process.Stderr);
        return new RunningGateway(process, path, int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"listener hmi-plc1 on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenLine();

    [GeneratedRegex(@"OK line (\d+)|Line (\d+): assertion error")]
    private static partial Regex Outcome();

    /// <summary>Per source line of a check, its outcomes in order (true = passed).</summary>
    private static Dictionary<int, List<bool>> Outcomes(string stdout)
    {
        var outcomes = new Dictionary<int, List<bool>>();
        foreach (Match m in Outcome().Matches(stdout))
        {
            bool ok = m.Groups[1].Success;
            int line = int.Parse(ok ? m.Groups[1].Value : m.Groups[2].Value, CultureInfo.InvariantCulture);
            if (!outcomes.TryGetValue(line, out var list))
            {
                outcomes[line] = list = [];
            }
            list.Add(ok);
        }
        return outcomes;
    }

    private static string Describe(List<bool>? outcomes) =>
        outcomes is null ? "not run" : string.Join(',', outcomes.Select(ok => ok ? "OK" : "FAIL"));

    private static string Tail(string text) => text.Length <= 6000 ? text : text[^6000..];
}
