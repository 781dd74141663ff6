using System.Text.Json;

namespace EdgeShield.Integration.Tests;

/// <summary><c>edgeshield replay</c>, <c>learn</c> and <c>check --against</c> on IEC 104 captures, as an integrator runs them.</summary>
public class Iec104ToolingCliTests
{
    private static string Data(string relative) => Path.Combine(Processes.RepoRoot, "tests", "data", relative);

    private static readonly string Diverse = Data("iec104/iti__IEC60870-5-104__090813_diverse.pcap");

    private const string Head = "listeners:\n  - name: rtu\n    bind: 127.0.0.1:12404\n    protocol: iec104\n    upstream: tcp://127.0.0.1:2404\n    policy: p\npolicies:\n  p:\n    protocol: iec104\n    mode: enforce\n    rules:\n";

    [Fact]
    public async Task Replay_Iec104Listener_CountsByTypeNameCauseAndCommonAddress()
    {
        string dir = Directory.CreateTempSubdirectory("iec104-replay-").FullName;
        try
        {
            string config = Path.Combine(dir, "p.yaml");
            await File.WriteAllTextAsync(config, Head + "      - name: interrogation\n        from: 10.0.0.10\n        type: C_IC_NA_1\n        ca: 3\n      - name: breakers\n        from: 10.0.0.10\n        type: [C_SC_NA_1, C_DC_NA_1]\n        ca: 3\n");

            var result = await Processes.RunAsync(Processes.EdgeShield("replay", "--config", config, "--pcap", Diverse, "--json"));
            Assert.True(result.ExitCode == 0, result.Stderr);
            using var json = JsonDocument.Parse(result.Stdout);
            var root = json.RootElement;
            Assert.Equal(173, root.GetProperty("frames").GetInt64());
            Assert.Equal(19, root.GetProperty("requests").GetInt64());
            Assert.Equal(5, root.GetProperty("allowed").GetInt64());
            Assert.Equal(14, root.GetProperty("denied").GetInt64());
            Assert.Equal(2, root.GetProperty("by_function").GetProperty("C_SC_NA_1").GetInt64());
            Assert.Equal(4, root.GetProperty("by_function").GetProperty("C_SE_NC_1").GetInt64());
            Assert.Equal(19, root.GetProperty("by_cause").GetProperty("6").GetInt64());
            Assert.Equal(19, root.GetProperty("by_ca").GetProperty("3").GetInt64());
            Assert.Equal(1, root.GetProperty("by_rule").GetProperty("interrogation").GetInt64());
            Assert.Equal(4, root.GetProperty("by_rule").GetProperty("breakers").GetInt64());
            Assert.Equal(14, root.GetProperty("denied_by_cause").GetProperty("44").GetInt64());
            Assert.Equal(53, root.GetProperty("responses").GetInt64());

            var text = await Processes.RunAsync(Processes.EdgeShield("replay", "--config", config, "--pcap", Diverse));
            Assert.True(text.ExitCode == 0, text.Stderr);
            Assert.Contains("policy p (iec104, enforce, on-deny exception), server port 2404", text.Stdout, StringComparison.Ordinal);
            Assert.Contains("C_SE_NC_1 cause 6 ca 3 ioa 5020 (type, closest rule", text.Stdout, StringComparison.Ordinal);
            Assert.Contains("negative confirmation, cause 44", text.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Learn_Iec104Captures_CheckAndReplayEnforcedDenyNothing()
    {
        string[] captures = [Diverse, Data("iec104/iti__IEC60870-5-104__JavaRMI_and_IEC_Misc.pcap"), Data("iec104/iti__IEC60870-5-104__TestDissectIec104.pcap")];
        string dir = Directory.CreateTempSubdirectory("iec104-learn-").FullName;
        try
        {
            string draft = Path.Combine(dir, "learned.yaml");
            var learn = await Processes.RunAsync(Processes.EdgeShield(["learn", .. captures.SelectMany(c => new[] { "--pcap", c }), "--out", draft]));
            Assert.True(learn.ExitCode == 0, learn.Stderr);
            Assert.Contains("47 IEC 104 requests", learn.Stderr, StringComparison.Ordinal);
            string yaml = await File.ReadAllTextAsync(draft);
            Assert.Contains("protocol: iec104", yaml, StringComparison.Ordinal);
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
                Assert.Equal(0, json.RootElement.GetProperty("connections_denied").GetInt64());
                requests += json.RootElement.GetProperty("requests").GetInt64();

                var against = await Processes.RunAsync(Processes.EdgeShield("check", "--config", enforced, "--against", capture));
                Assert.True(against.ExitCode == 0, against.Stderr);
                Assert.Contains("newly denied (no --baseline: every denial): 0", against.Stdout, StringComparison.Ordinal);
            }
            Assert.Equal(47, requests);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task CheckAgainst_Iec104_NewPolicyWithoutSetPoints_NewlyDeniesThemPerRuleAndType()
    {
        string dir = Directory.CreateTempSubdirectory("iec104-check-").FullName;
        try
        {
            string old = Path.Combine(dir, "old.yaml");
            string @new = Path.Combine(dir, "new.yaml");
            await File.WriteAllTextAsync(old, Head + "      - name: all\n        from: 10.0.0.10\n        type: [control, system]\n        ca: 3\n");
            await File.WriteAllTextAsync(@new, Head + "      - name: no set-points\n        from: 10.0.0.10\n        type: [C_SC_NA_1, C_DC_NA_1, C_SC_TA_1, C_DC_TA_1, C_IC_NA_1]\n        ca: 3\n");

            var result = await Processes.RunAsync(Processes.EdgeShield("check", "--config", @new, "--against", Diverse, "--baseline", old));
            Assert.True(result.ExitCode == 0, result.Stderr);
            Assert.Contains("19 requests, 8 denied by", result.Stdout, StringComparison.Ordinal);
            Assert.Contains("newly denied (allowed by " + old + "): 8; newly allowed: 0", result.Stdout, StringComparison.Ordinal);
            Assert.Contains("type C_SE_NC_1: newly denied 4", result.Stdout, StringComparison.Ordinal);
            Assert.Contains("rule 'no set-points': newly denied 8 (closest), newly allowed 0", result.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
