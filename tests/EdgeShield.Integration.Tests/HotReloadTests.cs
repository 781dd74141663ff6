using System.Text.Json;

namespace EdgeShield.Integration.Tests;

/// <summary>A changed config file is reloaded without SIGHUP, keeping connections; a bad one keeps the policy.</summary>
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
        await using var gw = await GatewayProcess.StartAsync();
        using var client = await RawClient.ConnectAsync(gw.Port);
        Assert.Equal(0x86, (await client.RoundTripAsync([0, 1, 0, 0, 0, 6, 1, 6, 1, 0xF4, 0, 1]))[7]);

        // The same bytes again (an editor saving without change): no reload.
        await File.WriteAllTextAsync(gw.ConfigPath, await File.ReadAllTextAsync(gw.ConfigPath));
        // Then a real change: address 500 becomes writable.
        await Task.Delay(ConfigDebounceMs * 3);
        await File.WriteAllTextAsync(gw.ConfigPath, GatewayProcess.Config(gw.Plc.Port, GatewayProcess.Policy.Replace("address: 100-119", "address: 100-599", StringComparison.Ordinal)));
        Assert.True(await gw.Gateway.WaitForStdoutAsync("\"reloaded\""), gw.Gateway.Stdout + gw.Gateway.Stderr);

        var reloaded = Assert.Single(Reloads(gw.Gateway.Stdout, "reloaded"));
        Assert.Matches("^file changed: policy sha256 [0-9a-f]{64} -> [0-9a-f]{64}$", reloaded);
        Assert.Equal(6, (await client.RoundTripAsync([0, 2, 0, 0, 0, 6, 1, 6, 1, 0xF4, 0, 1]))[7]);

        // A broken file: the running policy stays, and the event says why.
        await File.WriteAllTextAsync(gw.ConfigPath, "policies: [not: a: mapping\n");
        Assert.True(await gw.Gateway.WaitForStdoutAsync("\"reload-failed\""), gw.Gateway.Stdout + gw.Gateway.Stderr);
        Assert.StartsWith("file changed: kept policy sha256 ", Assert.Single(Reloads(gw.Gateway.Stdout, "reload-failed")), StringComparison.Ordinal);
        Assert.Equal(6, (await client.RoundTripAsync([0, 3, 0, 0, 0, 6, 1, 6, 1, 0xF5, 0, 2]))[7]);
        Assert.Equal(2, gw.Plc.GetHoldingRegister(1, 501));
    }

    private const int ConfigDebounceMs = 300;
}
