using EdgeShield.Policy.Replay;
using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

/// <summary><c>check</c>'s analyses: rules that can never match, overlapping ranges with other conditions, and <c>--against</c>.</summary>
public class PolicyAnalysisTests
{
    private static IReadOnlyList<ConfigDiagnostic> Analyze(string rules)
    {
        var result = Load($"policies:\n  p:\n    mode: enforce\n    rules:\n{rules}");
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        return PolicyAnalysis.Analyze(result.Config!);
    }

    [Fact]
    public void Analyze_AddressOnFunctionsThatTouchNoTable_NeverMatches()
    {
        var findings = Analyze("""
                  - name: diag
                    function: [diagnostics, read-device-identification]
                    address: 0-10
                  - name: reads
                    function: [read, diagnostics]
                    address: 0-10

            """);

        var finding = Assert.Single(findings);
        Assert.Equal(5, finding.Line);
        Assert.Equal(DiagnosticSeverity.Warning, finding.Severity);
        Assert.Contains("rule 'diag' of policy 'p' can never match", finding.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Analyze_OverlappingRangesWithOtherValueBounds_WarnsWithTheOverlap()
    {
        var findings = Analyze("""
                  - name: setpoints
                    from: 10.0.0.0/24
                    function: [6, 16]
                    address: [0-20]
                    value: 0-100
                  - name: wide
                    from: 10.0.0.5
                    function: 6
                    address: [50-60, 10-30]
                    value: 0-2000

            """);

        var finding = Assert.Single(findings);
        Assert.Equal(10, finding.Line);
        Assert.Contains("on addresses 10-20", finding.Message, StringComparison.Ordinal);
        Assert.Contains("'value:' bounds do not apply", finding.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("from: 10.0.0.0/24", "from: 10.1.0.5", "value: 0-2000")] // sources apart
    [InlineData("function: 3", "function: 6", "value: 0-2000")]         // functions apart
    [InlineData("unit: 1", "unit: 2", "value: 0-2000")]                 // units apart
    [InlineData("unit: 1", "unit: 1", "value: 0-100")]                  // same conditions: harmless
    public void Analyze_OverlapThatCannotMislead_IsNotReported(string earlierKey, string laterKey, string laterValue)
    {
        var findings = Analyze($"""
                  - name: a
                    {earlierKey}
                    address: 0-20
                    value: 0-100
                  - name: b
                    {laterKey}
                    address: 10-30
                    {laterValue}

            """);

        Assert.Empty(findings);
    }

    [Fact]
    public void Diff_NarrowerPolicyAgainstCapture_ListsExactlyTheNewlyDeniedRequests()
    {
        var wide = Compile("      - name: reads\n        function: [1, 2, 3, 4]\n");
        var narrow = Compile("      - name: reads\n        function: [1, 2, 3, 4]\n        address: 0-9\n");

        var diff = new PolicyDiff(narrow, wide);
        diff.Run(ReplayTests.Open("pymodbus_socket_over_tcp_port502.pcapng"));

        // Reads in the capture outside 0-9: FC1 0-15 (9 requests) and FC3 95-104 (3 requests); the 12 writes both deny.
        Assert.Equal(12, diff.NewlyDenied);
        Assert.Equal(0, diff.NewlyAllowed);
        Assert.Equal(24, diff.After.Denied);
        Assert.Equal(12, diff.Before!.Denied);
        Assert.All(diff.FirstNewlyDenied, d => Assert.Equal(DenyReason.Address, d.Reason));

        var reverse = new PolicyDiff(wide, narrow);
        reverse.Run(ReplayTests.Open("pymodbus_socket_over_tcp_port502.pcapng"));
        Assert.Equal(0, reverse.NewlyDenied);
        Assert.Equal(12, reverse.NewlyAllowed);
    }
}
