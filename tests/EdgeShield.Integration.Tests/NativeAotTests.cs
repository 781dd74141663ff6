using System.Diagnostics;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// The shipped form: `edgeshield` published as a Native AOT binary for linux-x64 with no trim or
/// AOT warning, that binary checking an example config, and carrying only the gateway: no PLC
/// simulator, traffic generator or MQTT broker (the demo is `edgeshield-sim demo`).
/// (linux-arm64 under qemu: firmware-config/smoke-arm64.sh.)
/// </summary>
public class NativeAotTests
{
    [Fact]
    public async Task PublishAot_LinuxX64_HasNoTrimOrAotWarnings_AndRuns()
    {
        string output = Path.Combine(Path.GetTempPath(), $"edgeshield-aot-{Guid.NewGuid():N}");
        try
        {
            var publish = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in new[]
            {
                "publish", Path.Combine(Processes.RepoRoot, "edge", "EdgeShield.Host", "EdgeShield.Host.csproj"),
                "-c", "Release", "-r", "linux-x64", "-o", Path.Combine(output, "bin"),
                // Its own bin/obj, so that the test build's outputs are not touched.
                "--artifacts-path", Path.Combine(output, "artifacts"),
            })
            {
                publish.ArgumentList.Add(arg);
            }
            var result = await Processes.RunAsync(publish, timeoutMs: 600_000);

            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            Assert.DoesNotMatch(@"warning IL[23]\d{3}", result.Stdout + result.Stderr);
            string binary = Path.Combine(output, "bin", "edgeshield");
            Assert.True(File.Exists(binary));
            Assert.False(File.Exists(Path.Combine(output, "bin", "edgeshield.dll")), "not a native binary");

            var check = await Processes.RunAsync(Processes.Tool(binary, "check", "--config", Path.Combine(Processes.RepoRoot, "firmware-config", "examples", "plc-basic.yaml")));
            Assert.True(check.ExitCode == 0, check.Stderr);
            var demo = await Processes.RunAsync(Processes.Tool(binary, "demo", "--seconds", "2"));
            Assert.Equal(2, demo.ExitCode);
            Assert.Contains("unknown command 'demo'", demo.Stderr, StringComparison.Ordinal);
            // Native AOT keeps the names of the types it compiled in (stack traces); none of the
            // simulators' or the broker's may be there.
            string image = System.Text.Encoding.Latin1.GetString(await File.ReadAllBytesAsync(binary));
            foreach (string absent in new[] { "PlcSimulator", "DemoTraffic", "AttackSuite", "MqttServer" })
            {
                Assert.DoesNotContain(absent, image, StringComparison.Ordinal);
            }
            Assert.Contains("EdgeGateway", image, StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
        }
    }
}
