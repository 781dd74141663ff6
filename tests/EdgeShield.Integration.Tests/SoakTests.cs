using System.Diagnostics;
using Xunit.Abstractions;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// Issue 7, item 3, the CI version: bench/soak.sh for 60 s with 1 000 connections, on this
/// configuration's builds. The script's own bounds decide (RSS slope after warm-up ≤ 16 MB/min for a
/// run this short (≈ 19 bytes per request at 14 000 requests/s: a per-request leak fails it), descriptor growth ≤ 8, no HMI errors); the 10-minute figures are in bench/RESULTS.md.
/// </summary>
[Collection(RunsAlone.Name)]
public sealed class SoakTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Soak_60Seconds_1000Connections_NoRssSlopeNoFdGrowthNoErrors()
    {
        string configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;
        string sim = Path.Combine(Processes.RepoRoot, "simulators", "edgeshield-sim", "bin", configuration, "net10.0", "edgeshield-sim.dll");
        Assert.True(File.Exists(sim), $"{sim} is not built");
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(Processes.RepoRoot, "bench", "soak.sh"));
        start.ArgumentList.Add("1");
        start.ArgumentList.Add("1000");
        start.Environment["SOAK_SECONDS"] = "60";
        start.Environment["NOBUILD"] = "1";
        start.Environment["GW_CMD"] = "dotnet " + Processes.EdgeShieldDll;
        start.Environment["SIM_DLL"] = sim;

        var result = await Processes.RunAsync(start, timeoutMs: 240_000);
        output.WriteLine(result.Stdout);
        output.WriteLine(result.Stderr);
        Assert.True(result.ExitCode == 0, $"soak failed ({result.ExitCode}):\n{result.Stdout}\n{result.Stderr}");
        Assert.Contains("soak: passed", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("errors 0 exceptions 0", result.Stdout, StringComparison.Ordinal);
    }
}
