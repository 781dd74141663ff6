using EdgeShield.Protocols.Modbus;
using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

public class EvaluateTests
{
    private const string HmiRules = """
              - name: hmi reads
                from: [10.20.0.0/24]
                unit: [1]
                function: [read-holding-registers, read-input-registers, 1, 2]
                address: 0-999
              - name: setpoints
                from: 10.20.0.5
                unit: 1
                function: [write-single-register, write-multiple-registers]
                address: 100-119
                value: 0-1500

        """;

    private static readonly CompiledPolicy Hmi = Compile(HmiRules);

    [Fact]
    public void Evaluate_ReadInsideRange_IsAllowedByFirstRule()
    {
        var verdict = Evaluate(Hmi, "10.20.0.7", 1, Read(3, 0, 10));
        Assert.Equal(Verdict.Allow(0), verdict);
        Assert.Equal(0, verdict.ExceptionCode);
        Assert.Equal("hmi reads", Hmi.RuleNames[verdict.RuleIndex]);
    }

    [Fact]
    public void Evaluate_UnknownSource_IsSourceOrUnitDenied()
    {
        var verdict = Evaluate(Hmi, "10.30.0.7", 1, Read(3, 0, 10));
        Assert.Equal(new Verdict(VerdictKind.Deny, DenyReason.SourceOrUnit, -1), verdict);
        Assert.Equal(0x0A, verdict.ExceptionCode);
    }

    [Fact]
    public void Evaluate_WrongUnit_IsSourceOrUnitDenied()
    {
        var verdict = Evaluate(Hmi, "10.20.0.7", 2, Read(3, 0, 10));
        Assert.Equal(DenyReason.SourceOrUnit, verdict.Reason);
        Assert.Equal(0x0A, verdict.ExceptionCode);
    }

    [Fact]
    public void Evaluate_FunctionNotListed_IsFunctionDenied()
    {
        var verdict = Evaluate(Hmi, "10.20.0.7", 1, WriteCoil(5));
        Assert.Equal(new Verdict(VerdictKind.Deny, DenyReason.Function, 0), verdict);
        Assert.Equal(0x01, verdict.ExceptionCode);
    }

    [Fact]
    public void Evaluate_AddressOutsideRange_IsAddressDenied()
    {
        var verdict = Evaluate(Hmi, "10.20.0.7", 1, Read(3, 1000, 1));
        Assert.Equal(new Verdict(VerdictKind.Deny, DenyReason.Address, 0), verdict);
        Assert.Equal(0x02, verdict.ExceptionCode);
    }

    [Fact]
    public void Evaluate_SpanCrossesRangeEnd_IsAddressDenied()
    {
        // Start 990 is inside 0-999, the last address 1009 is not.
        var verdict = Evaluate(Hmi, "10.20.0.7", 1, Read(3, 990, 20));
        Assert.Equal(DenyReason.Address, verdict.Reason);
        Assert.Equal(0x02, verdict.ExceptionCode);
    }

    [Fact]
    public void Evaluate_SpanEndingOnRangeEnd_IsAllowed()
    {
        Assert.True(Evaluate(Hmi, "10.20.0.7", 1, Read(3, 990, 10)).IsAllowed);
    }

    [Fact]
    public void Evaluate_SpanOverAdjacentRanges_IsAllowedBecauseRangesMerge()
    {
        var policy = Compile("""
                  - address: [0-9, 10-19, 15-30]

            """);
        Assert.True(Evaluate(policy, "10.0.0.1", 1, Read(3, 5, 20)).IsAllowed);
        Assert.Equal(DenyReason.Address, Evaluate(policy, "10.0.0.1", 1, Read(3, 25, 10)).Reason);
    }

    [Fact]
    public void Evaluate_SpanOverGapBetweenRanges_IsAddressDenied()
    {
        var policy = Compile("""
                  - address: [0-9, 11-19]

            """);
        Assert.Equal(DenyReason.Address, Evaluate(policy, "10.0.0.1", 1, Read(3, 5, 10)).Reason);
    }

    [Fact]
    public void Evaluate_ValueOutOfBounds_IsValueDenied()
    {
        var verdict = Evaluate(Hmi, "10.20.0.5", 1, WriteSingle(100, 1501));
        Assert.Equal(new Verdict(VerdictKind.Deny, DenyReason.Value, 1), verdict);
        Assert.Equal(0x03, verdict.ExceptionCode);
        Assert.True(Evaluate(Hmi, "10.20.0.5", 1, WriteSingle(100, 1500)).IsAllowed);
    }

    [Fact]
    public void Evaluate_WriteMultipleWithOneBadValue_IsValueDenied()
    {
        Assert.True(Evaluate(Hmi, "10.20.0.5", 1, WriteMultiple(100, 0, 1500, 7)).IsAllowed);
        var verdict = Evaluate(Hmi, "10.20.0.5", 1, WriteMultiple(100, 0, 1501, 7));
        Assert.Equal(new Verdict(VerdictKind.Deny, DenyReason.Value, 1), verdict);
    }

    [Fact]
    public void Evaluate_ValueRule_NeverAllowsMaskWrite()
    {
        var policy = Compile("""
                  - function: [mask-write-register, write-single-register]
                    value: 0-65535

            """);
        Assert.True(Evaluate(policy, "10.0.0.1", 1, WriteSingle(0, 65535)).IsAllowed);
        var verdict = Evaluate(policy, "10.0.0.1", 1, MaskWrite(0));
        Assert.Equal(DenyReason.Value, verdict.Reason);
        Assert.Equal(0x03, verdict.ExceptionCode);
    }

    [Fact]
    public void Evaluate_RuleWithoutValue_AllowsMaskWrite()
    {
        var policy = Compile("""
                  - function: mask-write-register

            """);
        Assert.True(Evaluate(policy, "10.0.0.1", 1, MaskWrite(0)).IsAllowed);
    }

    [Fact]
    public void Evaluate_ValueRule_DoesNotBoundCoilWrites()
    {
        var policy = Compile("""
                  - function: write
                    value: 0-10

            """);
        Assert.True(Evaluate(policy, "10.0.0.1", 1, WriteCoil(3)).IsAllowed);
        Assert.Equal(DenyReason.Value, Evaluate(policy, "10.0.0.1", 1, PduFor(21)).Reason);
    }

    [Fact]
    public void Evaluate_ReadWriteBothHalvesInside_IsAllowed()
    {
        var policy = Compile("""
                  - function: read-write-multiple-registers
                    address: [0-9, 100-109]
                    value: 0-100

            """);
        Assert.True(Evaluate(policy, "10.0.0.1", 1, ReadWrite(0, 10, 100, 1, 2, 3)).IsAllowed);
    }

    [Fact]
    public void Evaluate_ReadWriteReadHalfOutside_IsAddressDenied()
    {
        var policy = Compile("""
                  - function: read-write-multiple-registers
                    address: [0-9, 100-109]

            """);
        Assert.Equal(DenyReason.Address, Evaluate(policy, "10.0.0.1", 1, ReadWrite(5, 10, 100, 1)).Reason);
    }

    [Fact]
    public void Evaluate_ReadWriteWriteHalfOutside_IsAddressDenied()
    {
        var policy = Compile("""
                  - function: read-write-multiple-registers
                    address: [0-9, 100-109]

            """);
        Assert.Equal(DenyReason.Address, Evaluate(policy, "10.0.0.1", 1, ReadWrite(0, 10, 108, 1, 2, 3)).Reason);
    }

    [Fact]
    public void Evaluate_ReadWriteWithBadValue_IsValueDenied()
    {
        var policy = Compile("""
                  - function: 23
                    value: 0-100

            """);
        Assert.Equal(DenyReason.Value, Evaluate(policy, "10.0.0.1", 1, ReadWrite(0, 10, 100, 1, 101)).Reason);
    }

    [Theory]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(17)]
    [InlineData(20)]
    [InlineData(21)]
    [InlineData(43)]
    [InlineData(90)]
    public void Evaluate_AddressRuleAndFunctionWithoutTable_IsAddressDenied(byte function)
    {
        var policy = Compile("""
                  - address: 0-65535

            """);
        var verdict = Evaluate(policy, "10.0.0.1", 1, PduFor(function, 14));
        Assert.Equal(new Verdict(VerdictKind.Deny, DenyReason.Address, 0), verdict);
        Assert.Equal(0x02, verdict.ExceptionCode);
    }

    [Fact]
    public void Evaluate_ReadFifo_ChecksOnlyThePointerAddress()
    {
        var policy = Compile("""
                  - function: read-fifo-queue
                    address: 10

            """);
        Assert.True(Evaluate(policy, "10.0.0.1", 1, [24, 0, 10]).IsAllowed);
        Assert.Equal(DenyReason.Address, Evaluate(policy, "10.0.0.1", 1, [24, 0, 11]).Reason);
    }

    [Fact]
    public void Evaluate_ClosestRuleDecidesReason_DeepestStageWins()
    {
        // Rule 1 fails at function, rule 2 at address: the answer is 02 from rule 2.
        var policy = Compile("""
                  - function: read-coils
                  - function: read-holding-registers
                    address: 0-9

            """);
        Assert.Equal(new Verdict(VerdictKind.Deny, DenyReason.Address, 1), Evaluate(policy, "10.0.0.1", 1, Read(3, 10, 1)));
    }

    [Fact]
    public void Evaluate_FirstMatchingRuleWins()
    {
        var policy = Compile("""
                  - name: narrow
                    function: 3
                    address: 0-9
                  - name: wide
                    function: 3

            """);
        Assert.Equal(Verdict.Allow(0), Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1)));
        Assert.Equal(Verdict.Allow(1), Evaluate(policy, "10.0.0.1", 1, Read(3, 10, 1)));
    }

    [Fact]
    public void Evaluate_NoRules_DeniesEverything()
    {
        var result = Load("policies:\n  p: { mode: enforce }\n");
        Assert.False(result.HasErrors);
        var verdict = Evaluate(result.Config!.Policies["p"], "10.0.0.1", 1, Read(3, 0, 1));
        Assert.Equal(new Verdict(VerdictKind.Deny, DenyReason.SourceOrUnit, -1), verdict);
    }

    [Theory]
    [InlineData("10.20.0.5", true)]
    [InlineData("10.20.0.6", false)]
    public void Evaluate_FromSingleIPv4_MatchesOnlyThatAddress(string source, bool allowed)
    {
        var policy = Compile("""
                  - from: 10.20.0.5

            """);
        Assert.Equal(allowed, Evaluate(policy, source, 1, Read(3, 0, 1)).IsAllowed);
    }

    [Theory]
    [InlineData("192.168.4.0", true)]
    [InlineData("192.168.7.255", true)]
    [InlineData("192.168.8.0", false)]
    [InlineData("192.168.3.255", false)]
    [InlineData("fd00::1", false)]
    public void Evaluate_FromIPv4Cidr_MatchesItsBlock(string source, bool allowed)
    {
        var policy = Compile("""
                  - from: [192.168.4.0/22]

            """);
        Assert.Equal(allowed, Evaluate(policy, source, 1, Read(3, 0, 1)).IsAllowed);
    }

    [Theory]
    [InlineData("fd00:1::1", true)]
    [InlineData("fd00:1:0:0:ffff:ffff:ffff:ffff", true)]
    [InlineData("fd00:2::1", false)]
    [InlineData("::1", true)]
    [InlineData("::2", false)]
    [InlineData("10.0.0.1", false)]
    public void Evaluate_FromIPv6AndCidr_MatchesThem(string source, bool allowed)
    {
        var policy = Compile("""
                  - from: ["fd00:1::/64", "::1"]

            """);
        Assert.Equal(allowed, Evaluate(policy, source, 1, Read(3, 0, 1)).IsAllowed);
    }

    [Fact]
    public void Evaluate_FromIPv4MappedAddress_MatchesIPv4Rule()
    {
        var policy = Compile("""
                  - from: 10.0.0.0/8

            """);
        Assert.True(Evaluate(policy, "::ffff:10.1.2.3", 1, Read(3, 0, 1)).IsAllowed);
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, true)]
    [InlineData(5, true)]
    [InlineData(6, false)]
    [InlineData(9, true)]
    [InlineData(255, false)]
    public void Evaluate_UnitRangesAndList_MatchTheirUnits(byte unit, bool allowed)
    {
        var policy = Compile("""
                  - unit: [1-5, 9]

            """);
        Assert.Equal(allowed, Evaluate(policy, "10.0.0.1", unit, Read(3, 0, 1)).IsAllowed);
    }

    [Fact]
    public void Evaluate_RuleWithoutKeys_AllowsAnything()
    {
        var policy = Compile("""
                  - name: any

            """);
        Assert.True(Evaluate(policy, "fd00::9", 255, PduFor(90)).IsAllowed);
        Assert.True(Evaluate(policy, "10.0.0.1", 1, PduFor(43, 13)).IsAllowed);
        // …except a broadcast (unit 0) that is not a read: only a rule naming unit 0 allows it (issue 10 item 15).
        Assert.True(Evaluate(policy, "10.0.0.1", 0, PduFor(3)).IsAllowed);
        Assert.False(Evaluate(policy, "10.0.0.1", 0, PduFor(43, 13)).IsAllowed);
    }

    [Fact]
    public void Evaluate_MonitorMode_ReturnsTrueVerdict()
    {
        var policy = Compile("""
                  - function: read

            """, mode: "monitor");
        Assert.Equal(PolicyMode.Monitor, policy.Mode);
        Assert.Equal(DenyReason.Function, Evaluate(policy, "10.0.0.1", 1, WriteSingle(0, 1)).Reason);
        Assert.True(Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1)).IsAllowed);
    }

    [Fact]
    public void Evaluate_MalformedRequest_IsDeniedWithoutThrowing()
    {
        var request = ModbusPdu.ParseRequest([16, 0, 0, 0, 2, 4, 0]);
        Assert.Equal(RequestStatus.Malformed, request.Status);
        Assert.False(Hmi.Evaluate(Ip("10.20.0.5"), 1, request, 0).IsAllowed);
    }

    [Fact]
    public void Evaluate_OutOfSpecRequest_DoesNotThrow()
    {
        var request = ModbusPdu.ParseRequest(Read(3, 65530, 100));
        Assert.Equal(RequestStatus.OutOfSpec, request.Status);
        Assert.Equal(DenyReason.Address, Hmi.Evaluate(Ip("10.20.0.5"), 1, request, 0).Reason);
    }

    [Fact]
    public void RuleNames_UnnamedRules_AreNumberedFromOne()
    {
        var policy = Compile("""
                  - function: 1
                  - name: second
                    function: 2
                  - function: 3

            """);
        Assert.Equal(["rule 1", "second", "rule 3"], policy.RuleNames);
    }

    [Theory]
    [InlineData("exception", OnDeny.Exception)]
    [InlineData("drop", OnDeny.Drop)]
    [InlineData("close", OnDeny.Close)]
    public void Load_OnDeny_IsParsed(string text, OnDeny expected)
    {
        var result = Load($"policies:\n  p: {{ mode: enforce, on-deny: {text} }}\n");
        Assert.Equal(expected, result.Config!.Policies["p"].OnDeny);
    }

    [Fact]
    public void Load_OnDenyAbsent_IsException()
    {
        Assert.Equal(OnDeny.Exception, Load("policies:\n  p: { mode: monitor }\n").Config!.Policies["p"].OnDeny);
    }
}
