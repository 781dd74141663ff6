using System.Text.Json;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// A changed config file is reloaded without SIGHUP, keeping connections; a bad one keeps the policy;
/// a request outstanding at the PLC during a reload is answered as before.
/// </summary>
public class HotReloadTests
{
    private static string[] Reloads(string stdout, string reason) => stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        .Select(l => JsonDocument.Parse(l).RootElement)
        .Where(e => e.GetProperty("reason").GetString() == reason)
        .Select(e => e.GetProperty("detail").GetString()!)
        .ToArray();

    [Fact]
    public async Task FileChange_ReloadsWithOldAndNewHash_KeepingTheConnection_BadFileKeepsThePolicy()
    {
        using var ready = new ReadySignal();
        await using var gw = await GatewayProcess.StartAsync(ready: ready);
        using var client = await RawClient.ConnectAsync(gw.Port);
        Assert.Equal(0x86, (await client.RoundTripAsync([0, 1, 0, 0, 0, 6, 1, 6, 1, 0xF4, 0, 1]))[7]);
        // The watcher is set up after the listeners: READY=1 says it is up (else the unchanged write below proves
        // nothing, and on a loaded machine the real change could come before it).
        Assert.True(await ready.WaitAsync(), "no READY=1\n" + gw.Gateway.Stderr);

        // The same bytes again (an editor saving without change): no reload.
        await File.WriteAllTextAsync(gw.ConfigPath, await File.ReadAllTextAsync(gw.ConfigPath));
        // Then a real change: address 500 becomes writable.
        await Task.Delay(ConfigDebounceMs * 3);
        await File.WriteAllTextAsync(gw.ConfigPath, GatewayProcess.Config(gw.Plc.Port, GatewayProcess.Policy.Replace("address: 100-119", "address: 100-599", StringComparison.Ordinal)));
        Assert.True(await gw.Gateway.WaitForStdoutAsync("\"reloaded\""), gw.Gateway.Stdout + gw.Gateway.Stderr);

        var reloaded = Assert.Single(Reloads(gw.Gateway.Stdout, "reloaded"));
        Assert.Matches("^file changed: policy sha256 [0-9a-f]{64} -> [0-9a-f]{64} \\(" + System.Text.RegularExpressions.Regex.Escape(gw.ConfigPath) + ", [0-9]+ bytes\\); version none, unsigned$", reloaded);
        Assert.Equal(6, (await client.RoundTripAsync([0, 2, 0, 0, 0, 6, 1, 6, 1, 0xF4, 0, 1]))[7]);

        // A broken file: the running policy stays, and the event says why.
        await File.WriteAllTextAsync(gw.ConfigPath, "policies: [not: a: mapping\n");
        Assert.True(await gw.Gateway.WaitForStdoutAsync("\"reload-failed\""), gw.Gateway.Stdout + gw.Gateway.Stderr);
        Assert.StartsWith("file changed: kept policy sha256 ", Assert.Single(Reloads(gw.Gateway.Stdout, "reload-failed")), StringComparison.Ordinal);
        Assert.Equal(6, (await client.RoundTripAsync([0, 3, 0, 0, 0, 6, 1, 6, 1, 0xF5, 0, 2]))[7]);
        Assert.Equal(2, gw.Plc.GetHoldingRegister(1, 501));

        // A listener change beside a policy change: the policy applies, and the event says the listener does not.
        string withLimits = GatewayProcess.Config(gw.Plc.Port, GatewayProcess.Policy.Replace("address: 100-119", "address: 100-699", StringComparison.Ordinal))
            .Replace("bind: 127.0.0.1:0", "bind: 127.0.0.1:0\n    limits: { idle-timeout: 1m }", StringComparison.Ordinal);
        await File.WriteAllTextAsync(gw.ConfigPath, withLimits);
        Assert.True(await gw.Gateway.WaitForStdoutAsync("not applied until a restart"), gw.Gateway.Stdout + gw.Gateway.Stderr);
        Assert.Matches("^file changed: policy sha256 [0-9a-f]{64} -> [0-9a-f]{64} \\([^)]+, [0-9]+ bytes\\); version none, unsigned; not applied until a restart: listeners$", Reloads(gw.Gateway.Stdout, "reloaded")[^1]);
        Assert.Contains("warning: reloaded the policies only; not applied until a restart: listeners", gw.Gateway.Stderr, StringComparison.Ordinal);
        Assert.Equal(6, (await client.RoundTripAsync([0, 4, 0, 0, 0, 6, 1, 6, 2, 0x58, 0, 3]))[7]); // 600: the new policy
    }

    [Fact]
    public async Task Sighup_WithARequestOutstandingAtThePlc_DeliversItsResponse_AndTheNewPolicyAppliesAfter()
    {
        var plc = await EdgeShield.Simulators.PlcSimulator.StartAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), new EdgeShield.Simulators.PlcOptions(), CancellationToken.None);
        await using var _ = plc;
        string path = Path.Combine(Path.GetTempPath(), $"edgeshield-inflight-{Guid.NewGuid():N}.yaml");
        string Config(string writable) => $$"""
            listeners:
              - name: hmi-plc1
                bind: 127.0.0.1:0
                upstream: tcp://127.0.0.1:{{plc.Port}}
                policy: plc1
                limits: { response-timeout: 30s }
            policies:
              plc1:
                mode: enforce
                rules:
                  - name: reads
                    function: [read]
                    address: 0-999
                  - name: setpoints
                    function: [write-single-register]
                    address: {{writable}}
            """;
        await File.WriteAllTextAsync(path, Config("100-119"));
        try
        {
            using var ready = new ReadySignal();
            await using var gateway = new Processes.Running(ready.Apply(Processes.EdgeShield("run", "--config", path)));
            Assert.True(await gateway.WaitForStderrAsync("listener hmi-plc1 on 127.0.0.1:", 60_000), gateway.Stderr);
            // The reload service's SIGHUP handler is set up after the listeners (one before is only remembered): READY=1 says it is up.
            Assert.True(await ready.WaitAsync(), "no READY=1\n" + gateway.Stderr);
            int port = int.Parse(System.Text.RegularExpressions.Regex.Match(gateway.Stderr, @"listener hmi-plc1 on 127\.0\.0\.1:(\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            using var client = await RawClient.ConnectAsync(port);
            Assert.Equal(3, (await client.RoundTripAsync([0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1]))[7]);

            // The PLC holds its answer long enough for the reload to happen while the read is outstanding.
            plc.Faults.ResponseDelayMs = 8_000;
            var outstanding = client.RoundTripAsync([0, 2, 0, 0, 0, 6, 1, 3, 0, 10, 0, 2], timeoutMs: 60_000);
            await File.WriteAllTextAsync(path, Config("100-599"));
            gateway.Signal(Processes.SIGHUP);
            Assert.True(await gateway.WaitForStdoutAsync("\"reloaded\"", 30_000), gateway.Stdout + gateway.Stderr);
            Assert.False(outstanding.IsCompleted, "the response came before the reload: the test proves nothing on a machine this slow");
            plc.Faults.ResponseDelayMs = 0;

            // The in-flight read is answered by the PLC (not 0B), with the client's transaction id, on the same connection.
            var response = await outstanding;
            Assert.Equal(new byte[] { 0, 2 }, response[..2]);
            Assert.Equal(3, response[7]);
            Assert.Equal(4, response[8]);
            // …and the next request on it is judged by the new policy.
            Assert.Equal(6, (await client.RoundTripAsync([0, 3, 0, 0, 0, 6, 1, 6, 1, 0xF4, 0, 1]))[7]);
            // The file watcher may see the write before the signal arrives (a loaded machine): either trigger
            // reloads, and one of the events names the swap from the old policy to the new one.
            Assert.Contains(Reloads(gateway.Stdout, "reloaded"), detail =>
                System.Text.RegularExpressions.Regex.Match(detail, "^(SIGHUP|file changed): policy sha256 ([0-9a-f]{64}) -> ([0-9a-f]{64}) \\([^)]+, [0-9]+ bytes\\); version none, unsigned$") is { Success: true } m
                && m.Groups[2].Value != m.Groups[3].Value);
            Assert.DoesNotContain("\"response-timeout\"", gateway.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private const int ConfigDebounceMs = 300;
}
