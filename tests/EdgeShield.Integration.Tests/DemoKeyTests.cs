namespace EdgeShield.Integration.Tests;

/// <summary>The demo's maintenance key, turned from stdin (the only way in: never the network).</summary>
public class DemoKeyTests
{
    [Fact]
    public async Task Demo_KeyOnStdin_ArmsThenDisarms_AndAuditsBoth()
    {
        var start = Processes.EdgeShieldSim("demo", "--seconds", "5");
        start.RedirectStandardInput = true;
        await using var demo = new Processes.Running(start);
        Assert.True(await demo.WaitForStdoutAsync("type 'key'"), demo.Stdout + demo.Stderr);
        await demo.Process.StandardInput.WriteLineAsync("key");
        await demo.Process.StandardInput.FlushAsync();
        Assert.True(await demo.WaitForStderrAsync("\"reason\":\"maintenance-armed\"", 10_000), demo.Stderr);
        await demo.Process.StandardInput.WriteLineAsync("key");
        await demo.Process.StandardInput.FlushAsync();
        Assert.True(await demo.WaitForStderrAsync("\"reason\":\"maintenance-disarmed\"", 10_000), demo.Stderr);
        demo.Process.StandardInput.Close();
        Assert.Equal(0, await demo.WaitForExitAsync(30_000));
        Assert.DoesNotContain("maintenance-key-ignored", demo.Stderr, StringComparison.Ordinal);
    }
}
