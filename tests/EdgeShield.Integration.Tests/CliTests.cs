using System.Text.Json;
using EdgeShield.Simulators;

namespace EdgeShield.Integration.Tests;

/// <summary>The command line of DESIGN.md, run as a user runs it.</summary>
public class CliTests
{
    [Theory]
    [InlineData("--help")]
    [InlineData("run", "--help")]
    [InlineData("check", "--help")]
    [InlineData("replay", "--help")]
    [InlineData("learn", "--help")]
    [InlineData("audit", "--help")]
    [InlineData("audit", "verify", "--help")]
    [InlineData("policy", "--help")]
    [InlineData("policy", "sign", "--help")]
    public async Task Help_IsPrinted_ExitZero(params string[] args)
    {
        var result = await Processes.RunAsync(Processes.EdgeShield(args));

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("usage: edgeshield", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownCommand_ExitTwo()
    {
        var result = await Processes.RunAsync(Processes.EdgeShield("frobnicate"));

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("unknown command 'frobnicate'", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_EveryExampleConfig_IsValid()
    {
        var examples = Directory.GetFiles(Path.Combine(Processes.RepoRoot, "firmware-config", "examples"), "*.yaml");
        Assert.NotEmpty(examples);
        foreach (var example in examples)
        {
            var result = await Processes.RunAsync(Processes.EdgeShield("check", "--config", example));
            Assert.True(result.ExitCode == 0, example + "\n" + result.Stderr);
            Assert.Contains("valid (", result.Stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Check_BadConfig_ReportsEveryErrorWithFileLineColumn_ExitTwo()
    {
        string path = Path.Combine(Path.GetTempPath(), $"bad-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, """
            listeners:
              - name: a
                bind: 127.0.0.1:5020
                upstream: tcp://127.0.0.1:502
                policy: plc1
            policies:
              plc1:
                mode: enforce
                rules:
                  - name: r
                    fucntion: [read]
                  - name: s
                    function: [write-everything]
            """);
        try
        {
            var result = await Processes.RunAsync(Processes.EdgeShield("check", "--config", path));

            Assert.Equal(2, result.ExitCode);
            Assert.Contains($"{path}:11:9: error: ", result.Stderr, StringComparison.Ordinal);
            Assert.Contains("did you mean 'function'", result.Stderr, StringComparison.Ordinal);
            Assert.Contains($"{path}:13:20: error: ", result.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Run_BadConfig_FailsClosed_ExitTwo()
    {
        string path = Path.Combine(Path.GetTempPath(), $"bad-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, "listeners:\n  - name: a\n    bind: 127.0.0.1:0\n    upstream: tcp://127.0.0.1:502\n    policy: missing\n");
        try
        {
            var result = await Processes.RunAsync(Processes.EdgeShield("run", "--config", path));

            Assert.Equal(2, result.ExitCode);
            Assert.Contains($"{path}:5:", result.Stderr, StringComparison.Ordinal);
            Assert.Contains("nothing started", result.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Run_ForwardsAndRefuses_AuditsJsonLines_StopsCleanlyOnSigterm()
    {
        await using var gw = await GatewayProcess.StartAsync();
        using (var client = await RawClient.ConnectAsync(gw.Port))
        {
            var read = await client.RoundTripAsync([0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 2]);
            Assert.Equal(new byte[] { 0, 1, 0, 0, 0, 7, 1, 3, 4, 0, 0, 0, 0 }, read);
            var refused = await client.RoundTripAsync([0, 2, 0, 0, 0, 6, 1, 6, 1, 0xF4, 0, 1]);
            Assert.Equal(new byte[] { 0, 2, 0, 0, 0, 3, 1, 0x86, 0x02 }, refused);
        }

        gw.Gateway.Signal(Processes.SIGTERM);
        int exit = await gw.Gateway.WaitForExitAsync();

        Assert.Equal(0, exit);
        var events = gw.Gateway.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        var denied = Assert.Single(events, e => e.GetProperty("event").GetString() == "denied");
        Assert.Equal("hmi-plc1", denied.GetProperty("listener").GetString());
        Assert.Equal("127.0.0.1", denied.GetProperty("source").GetString());
        Assert.Equal(1, denied.GetProperty("unit").GetInt32());
        Assert.Equal(6, denied.GetProperty("function").GetInt32());
        Assert.Equal(500, denied.GetProperty("write").GetProperty("start").GetInt32());
        Assert.Equal("setpoints", denied.GetProperty("rule").GetString());
        Assert.Equal("deny", denied.GetProperty("verdict").GetString());
        Assert.Equal("02", denied.GetProperty("exception").GetString());
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", denied.GetProperty("time").GetString());
        Assert.Contains(events, e => e.GetProperty("reason").GetString() == "started");
        Assert.Contains(events, e => e.GetProperty("reason").GetString() == "stopping");
        Assert.Equal(1, gw.Plc.TotalRequests);
    }

    [Fact]
    public async Task Run_Sighup_ReloadsThePolicy_KeepingTheConnection()
    {
        using var ready = new ReadySignal();
        await using var gw = await GatewayProcess.StartAsync(ready: ready);
        using var client = await RawClient.ConnectAsync(gw.Port);
        Assert.Equal(0x86, (await client.RoundTripAsync([0, 1, 0, 0, 0, 6, 1, 6, 1, 0xF4, 0, 1]))[7]);
        // The reload service's SIGHUP handler is set up after the listeners (one that comes before is only remembered,
        // Run_SighupDuringStart_…): READY=1 says it is up, so this SIGHUP is the reload under test.
        Assert.True(await ready.WaitAsync(), "no READY=1\n" + gw.Gateway.Stderr);

        await File.WriteAllTextAsync(gw.ConfigPath, GatewayProcess.Config(gw.Plc.Port, GatewayProcess.Policy.Replace("address: 100-119", "address: 100-599", StringComparison.Ordinal)));
        gw.Gateway.Signal(Processes.SIGHUP);
        Assert.True(await gw.Gateway.WaitForStdoutAsync("\"reloaded\""), gw.Gateway.Stdout);

        Assert.Equal(6, (await client.RoundTripAsync([0, 2, 0, 0, 0, 6, 1, 6, 1, 0xF4, 0, 1]))[7]);
        Assert.Equal(1, gw.Plc.GetHoldingRegister(1, 500));
    }

    /// <summary>
    /// SIGHUP's default action ends a process. A SIGHUP that comes while the gateway starts, before the reload service
    /// has its handler (a supervisor or script that reloads right after a start), must not stop it; a file changed
    /// meanwhile is loaded once the gateway runs.
    /// </summary>
    [Fact]
    public async Task Run_SighupDuringStart_DoesNotEndTheProcess_AndTheChangedFileIsLoadedOnceItRuns()
    {
        await using var plc = await PlcSimulator.StartAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), new PlcOptions(), CancellationToken.None);
        string path = Path.Combine(Path.GetTempPath(), $"edgeshield-it-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, GatewayProcess.Config(plc.Port, GatewayProcess.Policy));
        var gateway = new Processes.Running(Processes.EdgeShield("run", "--config", path));
        try
        {
            // Printed after the config is read and before the listeners and the reload service start.
            Assert.True(await gateway.WaitForStderrAsync("is not signature-checked"), gateway.Stderr);
            await File.WriteAllTextAsync(path, GatewayProcess.Config(plc.Port, GatewayProcess.Policy.Replace("address: 100-119", "address: 100-599", StringComparison.Ordinal)));
            gateway.Signal(Processes.SIGHUP);

            Assert.True(await gateway.WaitForStdoutAsync("\"reloaded\""), "no reload (exited: " + gateway.Process.HasExited + ")\n" + gateway.Stdout + gateway.Stderr);
            Assert.False(gateway.Process.HasExited);
            Assert.True(await gateway.WaitForStderrAsync("listener hmi-plc1 on "), gateway.Stderr);
            int port = int.Parse(System.Text.RegularExpressions.Regex.Match(gateway.Stderr, @"listener hmi-plc1 on 127\.0\.0\.1:(\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            using (var client = await RawClient.ConnectAsync(port))
            {
                Assert.Equal(6, (await client.RoundTripAsync([0, 1, 0, 0, 0, 6, 1, 6, 1, 0xF4, 0, 1]))[7]); // register 500: the new file's
            }
            gateway.Signal(Processes.SIGTERM);
            Assert.Equal(0, await gateway.WaitForExitAsync());
        }
        finally
        {
            await gateway.DisposeAsync();
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Demo_InTheSimulator_RunsAndBehaves_ExitZero()
    {
        var result = await Processes.RunAsync(Processes.EdgeShieldSim("demo", "--seconds", "2"));

        Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
        Assert.Matches(@"allowed [1-9]\d* denied [1-9]\d* malformed 1", result.Stdout);
        Assert.Contains("\"event\":\"malformed\"", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b[", result.Stdout, StringComparison.Ordinal);
    }
}
