using EdgeShield.Policy;

namespace EdgeShield.Gateway.Tests;

/// <summary>
/// Policy words as an integrator reads them, over a real gateway (issue 10 items 2, 15, 16): a write rule
/// without <c>unit:</c> does not reach unit 0 (a serial broadcast), and a reload that leaves a rate rule
/// as it was does not refill its buckets.
/// </summary>
public class PolicyVocabularyTests
{
    [Fact]
    public async Task WriteRuleWithoutUnit_BroadcastWrite_IsRefused0A_AndNeverReachesThePlc()
    {
        const string Policy = """
                mode: enforce
                rules:
                  - name: setpoints
                    function: [write-single-register, write-multiple-registers]
                    address: 100-119
            """;
        await using var h = await GatewayHarness.StartAsync(Policy);
        using var client = await h.ConnectAsync();

        var refused = await client.RoundTripAsync(ModbusClient.WriteRegister(0x0201, 0, 100, 7));
        Assert.Equal(new byte[] { 0x02, 0x01, 0, 0, 0, 3, 0, 0x86, 0x0A }, refused);
        Assert.Equal(0, h.Plc.TotalRequests);
        var denied = Assert.Single(h.Audit.OfKind(AuditEventKind.Denied));
        Assert.Equal(0, denied.Unit);

        // The same write to unit 1 is the rule's business and reaches the PLC.
        var allowed = await client.RoundTripAsync(ModbusClient.WriteRegister(0x0202, 1, 100, 7));
        Assert.Equal(6, allowed[7]);
        Assert.Equal(7, h.Plc.GetHoldingRegister(1, 100));
    }

    [Fact]
    public async Task Reload_OfAnUnchangedRateRule_KeepsItsEmptyBucket()
    {
        const string Policy = """
                mode: enforce
                rules:
                  - name: limited
                    function: read-holding-registers
                    rate: 2/m
            """;
        await using var h = await GatewayHarness.StartAsync(Policy);
        using var client = await h.ConnectAsync();
        Assert.Equal(3, (await client.RoundTripAsync(ModbusClient.ReadHolding(1, 1, 0, 1)))[7]);
        Assert.Equal(3, (await client.RoundTripAsync(ModbusClient.ReadHolding(2, 1, 0, 1)))[7]);
        Assert.Equal(new byte[] { 0x83, 0x06 }, (await client.RoundTripAsync(ModbusClient.ReadHolding(3, 1, 0, 1)))[7..9]);

        // The same file loaded again (a reload that changed another part of it): still 06.
        var again = ConfigLoader.LoadText(GatewayHarness.BuildConfig(h.Plc.Port, Policy, ""), "test.yaml");
        Assert.False(again.HasErrors);
        h.Gateway.UpdatePolicies(again.Config!);
        Assert.Same(again.Config!.Policies["plc1"], h.Listener.Policy.Current);
        Assert.Equal(new byte[] { 0x83, 0x06 }, (await client.RoundTripAsync(ModbusClient.ReadHolding(4, 1, 0, 1)))[7..9]);

        // A changed rule is a new rule: its buckets start full.
        var changed = ConfigLoader.LoadText(GatewayHarness.BuildConfig(h.Plc.Port, Policy.Replace("2/m", "3/m", StringComparison.Ordinal), ""), "test.yaml");
        h.Gateway.UpdatePolicies(changed.Config!);
        Assert.Equal(3, (await client.RoundTripAsync(ModbusClient.ReadHolding(5, 1, 0, 1)))[7]);
    }
}
