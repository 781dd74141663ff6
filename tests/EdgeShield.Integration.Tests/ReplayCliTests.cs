using System.Text.Json;

namespace EdgeShield.Integration.Tests;

/// <summary><c>edgeshield replay</c> as an integrator runs it.</summary>
public class ReplayCliTests
{
    private static string Data(string relative) => Path.Combine(Processes.RepoRoot, "tests", "data", relative);

    private static string Example => Path.Combine(Processes.RepoRoot, "firmware-config", "examples", "plc-basic.yaml");

    [Fact]
    public async Task Replay_Json_PrintsOnlyTheObject()
    {
        var result = await Processes.RunAsync(Processes.EdgeShield("replay", "--config", Example, "--pcap", Data("modbus/pymodbus_socket_over_tcp_port502.pcapng"), "--json"));

        Assert.True(result.ExitCode == 0, result.Stderr);
        using var json = JsonDocument.Parse(result.Stdout);
        Assert.Equal(132, json.RootElement.GetProperty("frames").GetInt64());
        Assert.Equal(54, json.RootElement.GetProperty("requests").GetInt64());
        Assert.Equal(15, json.RootElement.GetProperty("by_function").GetProperty("3").GetInt64());
        Assert.Equal(json.RootElement.GetProperty("requests").GetInt64(), json.RootElement.GetProperty("allowed").GetInt64() + json.RootElement.GetProperty("denied").GetInt64());
    }

    [Fact]
    public async Task Replay_Text_ListsDeniedFramesAndCounts()
    {
        var result = await Processes.RunAsync(Processes.EdgeShield("replay", "--config", Example, "--pcap", Data("modbus/libmodbus-3.1.12-unit-tests-tcp-port1502.pcapng"), "--port", "1502", "--listener", "hmi-plc1"));

        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Contains("listener hmi-plc1, policy plc1", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("first denied frames", result.Stdout, StringComparison.Ordinal);
        // libmodbus's invalid FC16 (quantity 0, 6 bytes more) is a request refused 03, not a malformed frame.
        Assert.DoesNotContain("malformed frames", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Replay_NotACapture_ExitTwo()
    {
        var result = await Processes.RunAsync(Processes.EdgeShield("replay", "--config", Example, "--pcap", Example));

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("not a pcap or pcapng file", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Replay_MissingCaptureOrUnknownListener_ExitTwo()
    {
        var missing = await Processes.RunAsync(Processes.EdgeShield("replay", "--config", Example, "--pcap", "/nonexistent.pcap"));
        var listener = await Processes.RunAsync(Processes.EdgeShield("replay", "--config", Example, "--pcap", Data("modbus/sv__modbus__modbus.pcap"), "--listener", "nope"));

        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("cannot read the file", missing.Stderr, StringComparison.Ordinal);
        Assert.Equal(2, listener.ExitCode);
        Assert.Contains("no listener 'nope'", listener.Stderr, StringComparison.Ordinal);
    }
}

/// <summary><c>edgeshield learn</c> then <c>check</c> and <c>replay</c>, as an integrator chains them.</summary>
public class LearnCliTests
{
    [Fact]
    public async Task Learn_CheckAndReplay_TheDraftDeniesNothingOfItsCapture()
    {
        string capture = Path.Combine(Processes.RepoRoot, "tests", "data", "modbus", "iti__ModbusTCP__Modbus__modbus_test.pcap");
        string draft = Path.Combine(Path.GetTempPath(), $"learned-{Guid.NewGuid():N}.yaml");
        try
        {
            var learn = await Processes.RunAsync(Processes.EdgeShield("learn", "--pcap", capture, "--out", draft));
            var check = await Processes.RunAsync(Processes.EdgeShield("check", "--config", draft));
            var replay = await Processes.RunAsync(Processes.EdgeShield("replay", "--config", draft, "--pcap", capture, "--json"));

            Assert.True(learn.ExitCode == 0, learn.Stderr);
            Assert.True(check.ExitCode == 0, check.Stderr + File.ReadAllText(draft));
            Assert.True(replay.ExitCode == 0, replay.Stderr);
            using var json = System.Text.Json.JsonDocument.Parse(replay.Stdout);
            Assert.Equal(1142, json.RootElement.GetProperty("requests").GetInt64());
            Assert.Equal(0, json.RootElement.GetProperty("denied").GetInt64());
        }
        finally
        {
            File.Delete(draft);
        }
    }
}

/// <summary><c>edgeshield check --against</c>.</summary>
public class CheckAgainstCliTests
{
    [Fact]
    public async Task CheckAgainst_Baseline_PrintsNewlyDeniedFramesAndUnmatchedRules()
    {
        string capture = Path.Combine(Processes.RepoRoot, "tests", "data", "modbus", "pymodbus_socket_over_tcp_port502.pcapng");
        string dir = Path.Combine(Path.GetTempPath(), $"against-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            const string Head = "listeners:\n  - name: l\n    bind: 127.0.0.1:5020\n    upstream: tcp://127.0.0.1:502\n    policy: p\npolicies:\n  p:\n    mode: enforce\n    rules:\n";
            string old = Path.Combine(dir, "old.yaml");
            string next = Path.Combine(dir, "new.yaml");
            await File.WriteAllTextAsync(old, Head + "      - name: reads\n        function: [1, 2, 3, 4]\n");
            await File.WriteAllTextAsync(next, Head + "      - name: reads\n        function: [1, 2, 3, 4]\n        address: 0-9\n      - name: unused\n        function: [43]\n");

            var result = await Processes.RunAsync(Processes.EdgeShield("check", "--config", next, "--against", capture, "--baseline", old));

            Assert.True(result.ExitCode == 0, result.Stderr);
            Assert.Contains("newly denied (allowed by " + old + "): 12; newly allowed: 0", result.Stdout, StringComparison.Ordinal);
            Assert.Contains("frame 8 ", result.Stdout, StringComparison.Ordinal);
            Assert.Contains("rule 'unused' matched no request of the capture", result.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
