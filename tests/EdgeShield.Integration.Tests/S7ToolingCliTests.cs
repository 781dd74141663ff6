using System.Text.Json;

namespace EdgeShield.Integration.Tests;

/// <summary><c>edgeshield replay</c>, <c>learn</c> and <c>check --against</c> on S7comm captures, as an integrator runs them.</summary>
public class S7ToolingCliTests
{
    private static string Data(string relative) => Path.Combine(Processes.RepoRoot, "tests", "data", relative);

    private static string Example => Path.Combine(Processes.RepoRoot, "firmware-config", "examples", "s7-and-modbus.yaml");

    private const string Head = "listeners:\n  - name: s7\n    bind: 127.0.0.1:10102\n    protocol: s7comm\n    upstream: tcp://127.0.0.1:102\n    policy: p\npolicies:\n  p:\n    protocol: s7comm\n    mode: enforce\n    rules:\n";

    [Fact]
    public async Task Replay_S7Listener_ReadsPort102WithFunctionWords()
    {
        // The example's S7 policy names 10.20.0.0/24 and 10.20.0.5/9: the capture's 127.0.0.1 gets no connect.
        var result = await Processes.RunAsync(Processes.EdgeShield("replay", "--config", Example, "--listener", "hmi-s7", "--pcap", Data("s7comm/snap7-readwrite-op.pcapng"), "--json"));

        Assert.True(result.ExitCode == 0, result.Stderr);
        using var json = JsonDocument.Parse(result.Stdout);
        var root = json.RootElement;
        Assert.Equal(155, root.GetProperty("frames").GetInt64());
        Assert.Equal(11, root.GetProperty("requests").GetInt64());
        Assert.Equal(11, root.GetProperty("denied").GetInt64());
        Assert.Equal(11, root.GetProperty("by_function").GetProperty("cotp-connect").GetInt64());
        Assert.Equal(0, root.GetProperty("by_rule").GetProperty("hmi reads").GetInt64());
    }

    [Fact]
    public async Task Replay_S7Text_ListsDeniedJobsWithTheirWords()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"s7-replay-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            string config = Path.Combine(dir, "p.yaml");
            await File.WriteAllTextAsync(config, Head + "      - name: reads\n        connection: op\n        function: [setup-communication, read-var]\n");

            var result = await Processes.RunAsync(Processes.EdgeShield("replay", "--config", config, "--pcap", Data("s7comm/snap7-dangerous-op.pcapng")));

            Assert.True(result.ExitCode == 0, result.Stderr);
            Assert.Contains("policy p (s7comm, enforce, on-deny exception), server port 102", result.Stdout, StringComparison.Ordinal);
            Assert.Contains("requests 27 (connects 9)  allowed 18  denied 9", result.Stdout, StringComparison.Ordinal);
            Assert.Contains("connection op plc-stop (function, closest rule reads)", result.Stdout, StringComparison.Ordinal);
            Assert.Contains("connection op security (function, closest rule reads)", result.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Learn_S7Captures_CheckAndReplayEnforcedDenyNothing()
    {
        string[] captures = [Data("s7comm/snap7-readwrite-pg.pcapng"), Data("s7comm/snap7-info-pg.pcapng"), Data("s7comm/iti__s7__s7comm_downloading_block_db1.pcap")];
        string dir = Path.Combine(Path.GetTempPath(), $"s7-learn-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            string draft = Path.Combine(dir, "learned.yaml");
            var learn = await Processes.RunAsync(Processes.EdgeShield(["learn", .. captures.SelectMany(c => new[] { "--pcap", c }), "--out", draft]));
            Assert.True(learn.ExitCode == 0, learn.Stderr);
            string yaml = await File.ReadAllTextAsync(draft);
            Assert.Contains("protocol: s7comm", yaml, StringComparison.Ordinal);
            string enforced = Path.Combine(dir, "enforced.yaml");
            await File.WriteAllTextAsync(enforced, yaml.Replace("mode: monitor", "mode: enforce", StringComparison.Ordinal));

            var check = await Processes.RunAsync(Processes.EdgeShield("check", "--config", enforced));
            Assert.True(check.ExitCode == 0, check.Stderr + yaml);
            Assert.DoesNotContain("warning", check.Stderr + check.Stdout, StringComparison.Ordinal);
            long requests = 0;
            foreach (var capture in captures)
            {
                var replay = await Processes.RunAsync(Processes.EdgeShield("replay", "--config", enforced, "--pcap", capture, "--json"));
                Assert.True(replay.ExitCode == 0, replay.Stderr);
                using var json = JsonDocument.Parse(replay.Stdout);
                Assert.Equal(0, json.RootElement.GetProperty("denied").GetInt64());
                requests += json.RootElement.GetProperty("requests").GetInt64();
            }
            // 33 + 24 + 23 requests (connects included), as tshark counts them.
            Assert.Equal(80, requests);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task CheckAgainst_S7Baseline_PrintsNewlyDeniedJobs()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"s7-against-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            string old = Path.Combine(dir, "old.yaml");
            string next = Path.Combine(dir, "new.yaml");
            await File.WriteAllTextAsync(old, Head + "      - name: hmi\n        function: [read, write]\n");
            await File.WriteAllTextAsync(next, Head + "      - name: hmi\n        function: [read, write]\n        area: db\n        db: 1-2\n      - name: unused\n        function: plc-stop\n");

            var result = await Processes.RunAsync(Processes.EdgeShield("check", "--config", next, "--against", Data("s7comm/snap7-readwrite-op.pcapng"), "--baseline", old));

            Assert.True(result.ExitCode == 0, result.Stderr);
            // Reads and writes outside DB 1-2: M, I, Q (3 reads, 3 writes), the five-item read and DB 7.
            Assert.Contains("(listener s7, port 102): 33 requests, 8 denied by", result.Stdout, StringComparison.Ordinal);
            Assert.Contains("newly denied (allowed by " + old + "): 8; newly allowed: 0", result.Stdout, StringComparison.Ordinal);
            Assert.Contains("frame 53      127.0.0.1 connection op read-var (closest rule hmi)", result.Stdout, StringComparison.Ordinal);
            Assert.Contains("rule 'unused' matched no request of the capture", result.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
