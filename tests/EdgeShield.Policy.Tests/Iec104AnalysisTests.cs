using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

/// <summary>Shadowed IEC 104 rules (the loader's warning, via Covers) and <c>check</c>'s IEC 104 analyses.</summary>
public class Iec104AnalysisTests
{
    private const string Policy = "policies:\n  p:\n    protocol: iec104\n    mode: enforce\n    rules:\n";

    private static string[] Warnings(string rules)
    {
        var result = Load(Policy + rules);
        Assert.False(result.HasErrors, string.Join("\n", Lines(result)));
        return Lines(result);
    }

    private static IReadOnlyList<ConfigDiagnostic> Analyze(string rules)
    {
        var result = Load(Policy + rules);
        Assert.False(result.HasErrors, string.Join("\n", Lines(result)));
        return PolicyAnalysis.Analyze(result.Config!);
    }

    [Fact]
    public void RuleShadowedByABroaderEarlierRule_Warns()
    {
        Assert.Equal(
            ["test.yaml:10:9: warning: rule 'breaker 7' can never match: rule 'operators' (line 6) comes first and allows everything it allows"],
            Warnings("""
                  - name: operators
                    from: 10.30.0.0/24
                    type: [control, C_IC_NA_1]
                    ca: 1-10
                  - name: breaker 7
                    from: 10.30.0.7
                    type: C_SC_NA_1
                    ca: [2, 3]
                    ioa: 2000-2099

            """));
        // A rule without type: covers control and system; without ca: every address but global.
        Assert.Single(Warnings("""
                  - { name: a }
                  - { name: b, type: [C_SE_NC_1, C_RD_NA_1], ca: 7, ioa: 5, value: 0-1 }

            """));
    }

    [Theory]
    [InlineData("type: control", "type: clock")]                                    // clock is in no other group
    [InlineData("type: control", "type: 41")]
    [InlineData("ca: 1-65534", "ca: global")]                                       // global only when named
    [InlineData("ioa: 0-99", "ioa: 50-150")]
    [InlineData("value: 0-10", "type: C_SE_NC_1")]                                  // the later rule has no bound
    [InlineData("value: 0-10", "value: 0-11")]
    [InlineData("select-before-operate: true", "type: C_SC_NA_1")]                  // the earlier one asks for more
    [InlineData("select-before-operate: true", "select-before-operate: true\n        select-timeout: 11s")]
    [InlineData("rate: 10/s", "type: C_SC_NA_1")]
    [InlineData("maintenance: true", "type: C_SC_NA_1")]
    public void NarrowerOrConditionedEarlierRule_DoesNotShadow(string earlierKey, string laterKey)
    {
        Assert.Empty(Warnings($"""
                  - name: earlier
                    {earlierKey}
                  - name: later
                    {laterKey}

            """));
    }

    [Fact]
    public void SelectBeforeOperateRule_ShadowsOneWithAShorterTimeout_AndIsShadowedByOneWithout()
    {
        Assert.Single(Warnings("""
                  - { name: a, type: C_SC_NA_1, select-before-operate: true, select-timeout: 20s }
                  - { name: b, type: C_SC_NA_1, select-before-operate: true }

            """));
        Assert.Single(Warnings("""
                  - { name: a, type: C_SC_NA_1 }
                  - { name: b, type: C_SC_NA_1, select-before-operate: true }

            """));
        Assert.Single(Warnings("""
                  - { name: a, type: C_SC_NA_1, ca: [1, global] }
                  - { name: b, type: C_SC_NA_1, ca: global }

            """));
    }

    [Fact]
    public void Analyze_SystemTypesWithAnIoaRangeWithoutZero_NeverMatch()
    {
        var finding = Assert.Single(Analyze("""
                  - { name: interrogation, type: [C_IC_NA_1, C_CS_NA_1], ca: 1, ioa: 1-100 }
                  - { name: fine, type: [C_IC_NA_1, C_CS_NA_1], ca: 1, ioa: 0 }
                  - { name: reads too, type: [C_IC_NA_1, C_RD_NA_1], ca: 1, ioa: 1-100 }

            """));
        Assert.Equal(6, finding.Line);
        Assert.Equal("rule 'interrogation' of policy 'p' can never match: its types (C_IC_NA_1, C_CI_NA_1, C_CS_NA_1, C_RP_NA_1, C_TS_TA_1) are sent to information object address 0, which its 'ioa' leaves out", finding.Message);
    }

    [Fact]
    public void Analyze_OverlappingIoaRangesWithOtherConditions_WarnsWithTheOverlap()
    {
        var finding = Assert.Single(Analyze("""
                  - name: direct
                    from: 10.30.0.0/24
                    type: [C_SC_NA_1, C_DC_NA_1]
                    ca: 1
                    ioa: 2000-2049
                  - name: guarded
                    from: 10.30.0.10
                    type: C_SC_NA_1
                    ca: [1, 2]
                    ioa: 2040-2099
                    select-before-operate: true

            """));
        Assert.Equal(11, finding.Line);
        Assert.Equal("rule 'guarded' of policy 'p' overlaps rule 'direct' (line 6) on information object addresses 2040-2049 for sources, common addresses and types both cover: there 'direct' decides first, so this rule's 'select-before-operate:' do not apply", finding.Message);

        // Apart in common addresses or types: nothing to say.
        Assert.Empty(Analyze("""
                  - { name: a, type: C_SC_NA_1, ca: 1, ioa: 2000-2049 }
                  - { name: b, type: C_SC_NA_1, ca: 2, ioa: 2040-2099, select-before-operate: true }
                  - { name: c, type: C_DC_NA_1, ca: 1, ioa: 2040-2099, select-before-operate: true }
                  - { name: e, type: C_SE_NC_1, ca: global, ioa: 1-10, value: 0-1 }
                  - { name: f, type: C_SE_NC_1, ca: 1-65534, ioa: 5-20, value: 0-2 }

            """));
    }
}
