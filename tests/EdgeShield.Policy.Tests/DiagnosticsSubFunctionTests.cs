using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

/// <summary>
/// Issue 10 item 14: <c>diagnostics</c> forwarded FC 8/01 (restart communications) and 8/04 (force
/// listen-only mode). FC 8 is now granular by sub-function; the group and a bare <c>8</c> leave out 01
/// and 04, which pass only when named.
/// </summary>
public class DiagnosticsSubFunctionTests
{
    private static byte[] Diag(ushort sub) => [8, (byte)(sub >> 8), (byte)sub, 0x12, 0x34];

    /// <summary>The sub-functions 0..20 and 0x1234 a rule with <paramref name="function"/> allows.</summary>
    private static List<int> SubFunctionsAllowedBy(string function)
    {
        var policy = Compile($"      - function: {function}\n");
        var allowed = new List<int>();
        foreach (var sub in (int[])[0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 0x1234])
        {
            var verdict = Evaluate(policy, "10.0.0.1", 1, Diag((ushort)sub));
            if (verdict.IsAllowed)
            {
                allowed.Add(sub);
            }
            else
            {
                Assert.Equal(new Verdict(VerdictKind.Deny, DenyReason.Function, 0), verdict);
                Assert.Equal(0x01, verdict.ExceptionCode);
            }
        }
        return allowed;
    }

    private static readonly int[] AllBut1And4 = [0, 2, 3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 0x1234];

    [Theory]
    [InlineData("diagnostics")]
    [InlineData("8")]
    [InlineData("[read, write, diagnostics, program]")]
    public void GroupAndBare8_LeaveOutRestartAndListenOnly(string function)
    {
        Assert.Equal(AllBut1And4, SubFunctionsAllowedBy(function));
    }

    [Theory]
    [InlineData("8/1", 1)]
    [InlineData("restart-communications", 1)]
    [InlineData("8/4", 4)]
    [InlineData("force-listen-only-mode", 4)]
    [InlineData("return-query-data", 0)]
    [InlineData("8/0", 0)]
    [InlineData("return-diagnostic-register", 2)]
    [InlineData("change-ascii-input-delimiter", 3)]
    [InlineData("clear-counters-and-diagnostic-register", 10)]
    [InlineData("return-bus-message-count", 11)]
    [InlineData("return-bus-communication-error-count", 12)]
    [InlineData("return-bus-exception-error-count", 13)]
    [InlineData("return-server-message-count", 14)]
    [InlineData("return-server-no-response-count", 15)]
    [InlineData("return-server-nak-count", 16)]
    [InlineData("return-server-busy-count", 17)]
    [InlineData("return-bus-character-overrun-count", 18)]
    [InlineData("clear-overrun-counter-and-flag", 20)]
    public void NamedSubFunction_AllowsExactlyIt(string function, int sub)
    {
        Assert.Equal([sub], SubFunctionsAllowedBy(function));
    }

    [Fact]
    public void GroupPlusNamedRestart_AllowsRestartButNotListenOnly()
    {
        Assert.Equal([0, 1, 2, 3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 0x1234], SubFunctionsAllowedBy("[diagnostics, restart-communications]"));
    }

    [Fact]
    public void NoFunctionKey_AllowsEverySubFunction()
    {
        var policy = Compile("      - unit: 1\n");
        Assert.True(Evaluate(policy, "10.0.0.1", 1, Diag(1)).IsAllowed);
        Assert.True(Evaluate(policy, "10.0.0.1", 1, Diag(4)).IsAllowed);
    }

    [Theory]
    [InlineData("8/256")]
    [InlineData("8/x")]
    [InlineData("8/")]
    public void BadSubFunction_IsAnErrorWithItsPosition(string function)
    {
        var result = Load($"policies:\n  p:\n    mode: enforce\n    rules:\n      - function: {function}\n");
        Assert.True(result.HasErrors);
        Assert.StartsWith("test.yaml:5:19: error: 'function' " + function + ": a diagnostics sub-function is 8/0 to 8/255", Lines(result)[0], StringComparison.Ordinal);
    }

    [Fact]
    public void ShadowCheck_SeesSubFunctions()
    {
        // 'diagnostics' does not cover 8/4, so the later rule is not shadowed…
        var result = Load("policies:\n  p:\n    mode: enforce\n    rules:\n      - function: diagnostics\n      - function: force-listen-only-mode\n");
        Assert.DoesNotContain(Lines(result), l => l.Contains("can never match", StringComparison.Ordinal));
        // …but it covers 8/2.
        result = Load("policies:\n  p:\n    mode: enforce\n    rules:\n      - function: diagnostics\n      - function: 8/2\n");
        Assert.Contains(Lines(result), l => l.Contains("can never match", StringComparison.Ordinal));
    }
}
