using EdgeShield.Protocols.Modbus;
using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

/// <summary>The decision order, without sockets: the live session and replay both ask <see cref="Inspector"/>.</summary>
public class InspectorTests
{
    private const string Rules = """
              - name: hmi reads
                from: 10.20.0.0/24
                unit: 1
                function: read-holding-registers
                address: 0-99

        """;

    private static CompiledPolicy Policy(string mode = "enforce", string onDeny = "exception")
    {
        var yaml = $"policies:\n  p:\n    mode: {mode}\n    on-deny: {onDeny}\n    rules:\n{Rules}";
        var result = ConfigLoader.LoadText(yaml, "test.yaml", new MaintenanceState());
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        return result.Config!.Policies["p"];
    }

    private static Inspection Inspect(CompiledPolicy policy, string source, byte unit, byte[] pdu) =>
        Inspector.Inspect(policy, Ip(source), unit, ModbusPdu.ParseRequest(pdu), 1_000);

    [Fact]
    public void Allowed_Forwards_WithTheRule()
    {
        var inspection = Inspect(Policy(), "10.20.0.7", 1, Read(3, 0, 10));
        Assert.Equal(InspectionKind.Allowed, inspection.Kind);
        Assert.True(inspection.Forwards);
        Assert.False(inspection.Closes);
        Assert.Equal(0, inspection.Verdict.RuleIndex);
    }

    [Fact]
    public void Malformed_Closes_AndIsNeverAnswered()
    {
        var inspection = Inspect(Policy(), "10.20.0.7", 1, [3, 0]);
        Assert.Equal(InspectionKind.Malformed, inspection.Kind);
        Assert.True(inspection.Closes);
        Assert.False(inspection.Forwards);
        Assert.Equal(0, inspection.RefusalCode);
    }

    [Fact]
    public void OutOfSpec_FromASourceNoRuleNames_GetsTheSourceRefusal_NotAnAnswerAboutItsBytes()
    {
        var inspection = Inspect(Policy(), "192.0.2.1", 1, Read(3, 0, 0));
        Assert.Equal(InspectionKind.Denied, inspection.Kind);
        Assert.Equal(DenyReason.SourceOrUnit, inspection.Verdict.Reason);
        Assert.Equal(ModbusExceptionCode.GatewayPathUnavailable, inspection.RefusalCode);
    }

    [Fact]
    public void OutOfSpec_FromANamedSource_GetsTheSpecException()
    {
        var inspection = Inspect(Policy(), "10.20.0.7", 1, Read(3, 0, 0));
        Assert.Equal(InspectionKind.OutOfSpec, inspection.Kind);
        Assert.Equal(ModbusExceptionCode.IllegalDataValue, inspection.RefusalCode);
        Assert.False(inspection.Forwards);
    }

    [Fact]
    public void Monitor_NeverForwardsOutOfSpec_AndAnswersItWithTheException_EvenWithOnDenyClose()
    {
        var inspection = Inspect(Policy("monitor", "close"), "192.0.2.1", 1, Read(3, 0, 0));
        Assert.Equal(InspectionKind.OutOfSpec, inspection.Kind);
        Assert.Equal(OnDeny.Exception, inspection.OnDeny);
        Assert.False(inspection.Forwards);
        Assert.False(inspection.Closes);
    }

    [Fact]
    public void Monitor_ForwardsWhatThePolicyWouldRefuse_AsWouldDeny()
    {
        var inspection = Inspect(Policy("monitor", "close"), "10.20.0.7", 1, Read(3, 500, 1));
        Assert.Equal(InspectionKind.WouldDeny, inspection.Kind);
        Assert.True(inspection.Forwards);
        Assert.False(inspection.Closes);
        Assert.Equal(DenyReason.Address, inspection.Verdict.Reason);
    }

    [Theory]
    [InlineData("exception", false)]
    [InlineData("drop", false)]
    [InlineData("close", true)]
    public void Denied_ClosesOnlyWithOnDenyClose(string onDeny, bool closes)
    {
        var inspection = Inspect(Policy("enforce", onDeny), "10.20.0.7", 1, Read(4, 0, 1));
        Assert.Equal(InspectionKind.Denied, inspection.Kind);
        Assert.Equal(DenyReason.Function, inspection.Verdict.Reason);
        Assert.Equal(ModbusExceptionCode.IllegalFunction, inspection.RefusalCode);
        Assert.Equal(closes, inspection.Closes);
    }
}
