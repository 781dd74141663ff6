using EdgeShield.Simulators;

namespace EdgeShield.Gateway.Tests;

/// <summary>The attack suite of edgeshield-sim against the gateway: nothing malformed or refused reaches the PLC.</summary>
public class AttackTests
{
    [Fact]
    public async Task AttackSuite_NothingMalformedOrForbiddenReachesThePlc()
    {
        await using var h = await GatewayHarness.StartAsync();

        var results = await AttackSuite.RunAllAsync(h.EndPoint, new AttackOptions(), CancellationToken.None);

        Assert.Equal(AttackSuite.CaseNames.Count, results.Count);
        Assert.Equal(0, h.Plc.MalformedFrames);
        foreach (byte fc in new byte[] { 8, 15, 16, 22, 23, 43, 90, 65, 100 })
        {
            Assert.True(h.Plc.RequestsReceived(fc) == 0, $"FC {fc} reached the PLC");
        }
        Assert.True(h.Gateway.Counters.Malformed > 0);
        Assert.True(h.Gateway.Counters.Denied > 0);
        // Everything the PLC received was something the gateway allowed.
        Assert.Equal(h.Gateway.Counters.Allowed, h.Plc.TotalRequests);
    }
}
