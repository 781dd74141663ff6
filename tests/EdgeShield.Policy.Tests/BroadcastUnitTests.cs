using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

/// <summary>
/// Issue 10 item 15: a write rule without <c>unit:</c> allowed unit 0, a serial broadcast that every
/// device on the bus acts on. Unit 0 is allowed for writes only when a rule names it.
/// </summary>
public class BroadcastUnitTests
{
    [Theory]
    [InlineData(new byte[] { 6, 0, 100, 0, 5 })]                    // write single register
    [InlineData(new byte[] { 16, 0, 100, 0, 1, 2, 0, 5 })]          // write multiple registers
    [InlineData(new byte[] { 5, 0, 100, 0xFF, 0 })]                 // write single coil
    public void WriteRuleWithoutUnit_RefusesUnitZero_AllowsOtherUnits(byte[] pdu)
    {
        var policy = Compile("      - name: writes\n        function: write\n");
        Assert.Equal(new Verdict(VerdictKind.Deny, DenyReason.SourceOrUnit, -1), Evaluate(policy, "10.0.0.1", 0, pdu));
        Assert.Equal(0x0A, Evaluate(policy, "10.0.0.1", 0, pdu).ExceptionCode);
        Assert.True(Evaluate(policy, "10.0.0.1", 1, pdu).IsAllowed);
        Assert.True(Evaluate(policy, "10.0.0.1", 255, pdu).IsAllowed);
    }

    [Fact]
    public void RuleWithoutAnyKeyButName_RefusesBroadcastWriteAndDiagnostics()
    {
        var policy = Compile("      - name: everything\n");
        Assert.False(Evaluate(policy, "10.0.0.1", 0, WriteSingle(1, 1)).IsAllowed);
        Assert.False(Evaluate(policy, "10.0.0.1", 0, [8, 0, 1, 0, 0]).IsAllowed); // broadcast restart communications
        Assert.True(Evaluate(policy, "10.0.0.1", 0, Read(3, 0, 1)).IsAllowed);  // a read: a TCP device may answer unit 0; a bus refuses a broadcast read itself
    }

    [Theory]
    [InlineData("0")]
    [InlineData("[0, 1]")]
    [InlineData("0-5")]
    public void UnitZeroNamed_AllowsTheBroadcastWrite(string units)
    {
        var policy = Compile($"      - function: write-single-register\n        unit: {units}\n");
        Assert.True(Evaluate(policy, "10.0.0.1", 0, WriteSingle(1, 1)).IsAllowed);
    }

    [Fact]
    public void ShadowCheck_RuleWithoutUnit_DoesNotCoverALaterBroadcastRule()
    {
        var result = Load("policies:\n  p:\n    mode: enforce\n    rules:\n      - function: write\n      - function: write-single-register\n        unit: 0\n");
        Assert.DoesNotContain(Lines(result), l => l.Contains("can never match", StringComparison.Ordinal));
    }
}
