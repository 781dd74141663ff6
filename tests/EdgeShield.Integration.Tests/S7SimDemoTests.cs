using System.Globalization;
using System.Text.RegularExpressions;

namespace EdgeShield.Integration.Tests;

/// <summary><c>edgeshield-sim demo</c> includes an S7 CPU behind an s7comm listener, with an HMI that tries forbidden jobs.</summary>
public sealed partial class S7SimDemoTests
{
    [GeneratedRegex(@"S7 HMI sent (\d+) jobs \((\d+) forbidden: CPU stop and forced outputs\) and saw (\d+) answers and (\d+) refusals; S7 PLC received (\d+) jobs \((\d+) items written, (\d+) stops, (\d+) output writes, (\d+) malformed\), CPU in (\w+)")]
    private static partial Regex S7Line();

    [Fact]
    public async Task Demo_S7Hmi_IsAnsweredAndItsForbiddenJobsRefused_TheCpuStaysInRun()
    {
        // 10 s: the demo now runs Modbus, S7 and IEC 104 side by side, and on a loaded CI machine the S7 HMI's
        // first forbidden job (a CPU stop, its 10th job) must have time to be sent and refused.
        var result = await Processes.RunAsync(Processes.EdgeShieldSim("demo", "--seconds", "10"), 120_000);

        Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
        Assert.Contains("listener hmi-s7 (s7comm) on 127.0.0.1:", result.Stdout, StringComparison.Ordinal);
        var m = S7Line().Match(result.Stdout);
        Assert.True(m.Success, result.Stdout);
        int N(int group) => int.Parse(m.Groups[group].Value, CultureInfo.InvariantCulture);
        Assert.True(N(2) > 0 && N(3) > 0 && N(4) >= N(2) - 1, result.Stdout); // the last forbidden job may be cut off by the end
        Assert.True(N(6) > 0, result.Stdout);                                  // recipe writes reached the CPU
        Assert.Equal((0, 0, 0), (N(7), N(8), N(9)));                           // no stop, no output write, nothing malformed
        Assert.Equal("Run", m.Groups[10].Value);
        // The gateway-wide counts printed each second include the S7 jobs; its audit names the S7 refusals.
        Assert.Contains("\"listener\":\"hmi-s7\"", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("\"function_name\":\"plc-stop\"", result.Stderr, StringComparison.Ordinal);
    }
}
