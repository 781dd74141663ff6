using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

public class ShadowingTests
{
    private static string[] Warnings(string rules)
    {
        var result = Load($"policies:\n  p:\n    mode: enforce\n    rules:\n{rules}");
        Assert.False(result.HasErrors, string.Join("\n", Lines(result)));
        Assert.NotNull(result.Config);
        return Lines(result);
    }

    [Fact]
    public void Load_RuleShadowedByBroaderEarlierRule_Warns()
    {
        var warnings = Warnings("""
                  - name: all reads
                    from: 10.0.0.0/8
                    function: read
                    address: 0-999
                  - name: hmi
                    from: [10.1.0.0/16, 10.2.0.5]
                    unit: 1
                    function: [3, 4]
                    address: [0-9, 100-199]

            """);
        Assert.Equal(["test.yaml:9:9: warning: rule 'hmi' can never match: rule 'all reads' (line 5) comes first and allows everything it allows"], warnings);
    }

    [Fact]
    public void Load_RuleAfterValueRule_IsShadowedOnlyWhenLooser()
    {
        Assert.Single(Warnings("""
                  - { name: a, function: 6, value: 0-100 }
                  - { name: b, function: 6, value: 10-20 }

            """));
        Assert.Empty(Warnings("""
                  - { name: a, function: 6, value: 10-20 }
                  - { name: b, function: 6, value: 0-100 }

            """));
        Assert.Empty(Warnings("""
                  - { name: a, function: 6, value: 0-100 }
                  - { name: b, function: 6 }

            """));
    }

    [Fact]
    public void Load_ValueRuleDoesNotShadowMaskWrite()
    {
        Assert.Empty(Warnings("""
                  - { name: a, function: write, value: 0-65535 }
                  - { name: b, function: mask-write-register }

            """));
    }

    [Fact]
    public void Load_EarlierRateOrAddressRule_DoesNotShadow()
    {
        Assert.Empty(Warnings("""
                  - { name: a, function: 3, rate: 10/s }
                  - { name: b, function: 3 }
                  - { name: c, function: 7, address: 0-65535 }
                  - { name: d, function: 7 }

            """));
    }

    [Fact]
    public void Load_MaintenanceShadowing_FollowsArming()
    {
        // A maintenance rule first does not shadow a normal rule (it is skipped while disarmed) ...
        Assert.Empty(Warnings("""
                  - { name: a, function: 6, maintenance: true }
                  - { name: b, function: 6 }

            """));
        // ... but a normal rule first shadows a maintenance rule, and so does another maintenance rule.
        Assert.Equal(2, Warnings("""
                  - { name: a, function: 6 }
                  - { name: b, function: 6, maintenance: true }
                  - { name: c, function: 5, maintenance: true }
                  - { name: d, function: 5, maintenance: true, address: 0-9 }

            """).Length);
    }

    [Fact]
    public void Load_RuleWithoutKeys_ShadowsEverythingAfterIt()
    {
        var warnings = Warnings("""
                  - name: any
                  - { name: reads, function: read, from: "::1" }

            """);
        Assert.Equal(["test.yaml:6:9: warning: rule 'reads' can never match: rule 'any' (line 5) comes first and allows everything it allows"], warnings);
    }

    [Fact]
    public void Load_ValueRuleThatCanAllowNothing_Warns()
    {
        var warnings = Warnings("      - { name: a, function: mask-write-register, value: 0-10 }\n");
        Assert.Equal(["test.yaml:5:58: warning: rule 'a' can never match: 'value' never allows functions 21, 22, 43/13 or vendor codes (their written values cannot be checked), and it names no other function"], warnings);
    }

    [Fact]
    public void Load_WarningsOnly_KeepsConfig()
    {
        var result = Load("policies:\n  p:\n    mode: enforce\n    rules:\n      - name: any\n      - name: other\n");
        Assert.False(result.HasErrors);
        Assert.NotNull(result.Config);
        Assert.Equal(DiagnosticSeverity.Warning, Assert.Single(result.Diagnostics).Severity);
    }
}
