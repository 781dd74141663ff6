namespace EdgeShield.Integration.Tests;

/// <summary>`edgeshield nft --config` and the kernel's own parser as the judge (`nft -c -f`, needs root: CI runs as root).</summary>
public class NftTests
{
    private static string Example => Path.Combine(Processes.RepoRoot, "firmware-config", "examples", "plc-basic.yaml");

    private static async Task<ProcessResult> CheckWithNftAsync(string ruleset)
    {
        string file = Path.Combine(Path.GetTempPath(), $"edgeshield-{Guid.NewGuid():N}.nft");
        await File.WriteAllTextAsync(file, ruleset);
        try
        {
            return await Processes.RunAsync(Processes.Tool("/usr/sbin/nft", "-c", "-f", file));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Nft_ForTheExample_IsAcceptedByNft_AndDefaultsToDrop()
    {
        var result = await Processes.RunAsync(Processes.EdgeShield("nft", "--config", Example));
        Assert.True(result.ExitCode == 0, result.Stderr);
        var ruleset = result.Stdout;

        var check = await CheckWithNftAsync(ruleset);
        Assert.True(check.ExitCode == 0, check.Stderr + "\n" + ruleset);

        Assert.Contains("type filter hook input priority filter; policy drop;", ruleset, StringComparison.Ordinal);
        Assert.Contains("type filter hook forward priority filter; policy drop;", ruleset, StringComparison.Ordinal);
        Assert.Contains("type filter hook output priority filter; policy drop;", ruleset, StringComparison.Ordinal);
        // The forward chain holds no accept: nothing crosses between plant and site.
        var forward = ruleset[ruleset.IndexOf("chain forward", StringComparison.Ordinal)..ruleset.IndexOf("chain output", StringComparison.Ordinal)];
        Assert.DoesNotContain("accept", forward, StringComparison.Ordinal);
        // ...and counts what it drops, so an operator (and DiodeIsolationTests) can see routing attempts.
        Assert.Contains("counter comment \"routed packets, every one dropped by the policy\"", forward, StringComparison.Ordinal);
        // The example's listeners bind loopback (a desk setup): no interface rule opens them.
        Assert.Contains("binds loopback 127.0.0.1:5020: reachable only from this host", ruleset, StringComparison.Ordinal);
        Assert.DoesNotContain("iifname \"eth", ruleset, StringComparison.Ordinal);
        Assert.Contains("set management4 { type ipv4_addr; flags interval; elements = { 10.0.0.0/24 } }", ruleset, StringComparison.Ordinal);
        Assert.Contains("ip saddr @management4 tcp dport 22 accept", ruleset, StringComparison.Ordinal);
        // Site side: nothing but what the example's broker (on loopback) needs: no egress rule on eth0 at all.
        Assert.DoesNotContain("oifname \"eth0\"", ruleset, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Nft_WithRemoteBrokerAndBinds_OnlyMqttLeavesTheSiteSide()
    {
        string config = Path.Combine(Path.GetTempPath(), $"edgeshield-nft-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(config, """
            gateway: { name: gw, site: s }
            listeners:
              - { name: hmi, bind: "10.10.0.1:502", upstream: "tcp://10.10.0.11:502", policy: p }
              - { name: eng, bind: "[::]:1502", upstream: "tcp://plc2.plant:502", policy: p }
            policies:
              p: { mode: enforce, rules: [{ name: r, function: read }] }
            telemetry:
              mqtt: { broker: "mqtts://192.0.2.10" }
            network: { plant: eth1, site: eth0, management: [10.0.0.0/24, "fd00::/64"] }
            """);
        try
        {
            var result = await Processes.RunAsync(Processes.EdgeShield("nft", "--config", config));
            Assert.True(result.ExitCode == 0, result.Stderr);
            var check = await CheckWithNftAsync(result.Stdout);
            Assert.True(check.ExitCode == 0, check.Stderr + "\n" + result.Stdout);
            var siteRules = result.Stdout.Split('\n').Where(l => l.Contains("\"eth0\"", StringComparison.Ordinal)).ToArray();
            Assert.Equal(["oifname \"eth0\" ip daddr 192.0.2.10 tcp dport 8883 accept comment \"MQTT broker\""], siteRules.Select(l => l.Trim()));
            Assert.Contains("iifname \"eth1\" ip daddr 10.10.0.1 tcp dport 502 accept", result.Stdout, StringComparison.Ordinal);
            Assert.Contains("iifname \"eth1\" tcp dport 1502 accept", result.Stdout, StringComparison.Ordinal);
            Assert.Contains("ip6 saddr @management6 tcp dport 22 accept", result.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(config);
        }
    }

    [Fact]
    public async Task Nft_WithoutNetworkSection_Exits2()
    {
        string config = Path.Combine(Path.GetTempPath(), $"edgeshield-nft-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(config, "gateway: { name: gw }\n");
        try
        {
            var result = await Processes.RunAsync(Processes.EdgeShield("nft", "--config", config));
            Assert.Equal(2, result.ExitCode);
            Assert.Contains("network.plant and network.site", result.Stderr, StringComparison.Ordinal);
            Assert.Equal("", result.Stdout);
        }
        finally
        {
            File.Delete(config);
        }
    }
}
