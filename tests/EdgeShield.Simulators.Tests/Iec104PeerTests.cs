using System.Diagnostics;
using System.Globalization;

namespace EdgeShield.Simulators.Tests;

/// <summary>
/// The independent judge: lib60870's client (our tests/peers/iec104/iec104-client.c against the library, built by
/// tests/peers/build-lib60870.sh into artifacts/peers/lib60870/bin) interrogates and commands the simulated station.
/// </summary>
public sealed class Iec104PeerTests
{
    private static string RepoRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "EdgeShield.slnx")))
                {
                    return dir.FullName;
                }
            }
            throw new InvalidOperationException("EdgeShield.slnx not found above " + AppContext.BaseDirectory);
        }
    }

    private static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(string file, TimeSpan limit, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>The client binary; built (idempotent, about 15 s) when it is missing.</summary>
    private static async Task<string> ClientAsync()
    {
        string client = Path.Combine(RepoRoot, "artifacts", "peers", "lib60870", "bin", "iec104-client");
        if (!File.Exists(client))
        {
            var (exit, stdout, stderr) = await RunAsync(Path.Combine(RepoRoot, "tests", "peers", "build-lib60870.sh"), TimeSpan.FromMinutes(3));
            Assert.True(exit == 0, "build-lib60870.sh failed (needs gcc, make, binutils):\n" + stdout + stderr);
        }
        return client;
    }

    [Fact]
    public async Task Lib60870Client_InterrogatesAndCommandsTheStation()
    {
        string client = await ClientAsync();
        await using var plc = await Iec104PlcSimulatorTests.StartAsync(new Iec104PlcOptions { SpontaneousMs = 100 });
        string commands = Path.Combine(Path.GetTempPath(), $"iec104-sim-{Environment.ProcessId}-{Guid.NewGuid():N}.txt");
        await File.WriteAllLinesAsync(commands,
        [
            "C_SC_NA_1 ca=1 ioa=2000 value=1 select",
            "C_SC_NA_1 ca=1 ioa=2000 value=1 execute",
            "C_SC_NA_1 ca=1 ioa=2001 value=1 execute",   // no select: negative
            "C_DC_NA_1 ca=1 ioa=2002 value=2 select",
            "C_DC_NA_1 ca=1 ioa=2002 value=2 execute",
            "C_SE_NC_1 ca=1 ioa=3000 value=42.5",
            "C_RD_NA_1 ca=1 ioa=3000",
            "C_RD_NA_1 ca=1 ioa=9999",                  // unknown IOA: 47
            "C_CI_NA_1 ca=1 qcc=5",
            "C_CS_NA_1 ca=1",
            "C_BO_NA_1 ca=1 ioa=2000 value=0xFF",       // not served: 44
            "C_SC_NA_1 ca=7 ioa=2000 value=1 select",   // other CA: 46
        ]);
        try
        {
            var (exit, stdout, stderr) = await RunAsync(client, TimeSpan.FromSeconds(30),
                "--connect", "127.0.0.1:" + plc.Port.ToString(CultureInfo.InvariantCulture), "--interrogate", "--commands", commands, "--listen-ms", "400");
            string all = stdout + stderr;
            Assert.True(exit == 0, all);
            // 60 points with cause 20 (the client's "interrogation points=" also counts spontaneous ones arriving meanwhile).
            Assert.True(stdout.Split('\n').Count(l => l.StartsWith("point ", StringComparison.Ordinal) && l.EndsWith(" cot=20", StringComparison.Ordinal)) == 60, all);
            Assert.Contains("term type=100 ca=1 ioa=0", stdout, StringComparison.Ordinal);
            // The interrogation is the first of the 13 sent.
            Assert.Contains("sent=13 confirmed=13 positive=9 negative=4 timeouts=0 reconnects=0 terms=5 missing_terms=0", stdout, StringComparison.Ordinal);
            Assert.Contains("confirm type=45 name=C_SC_NA_1 ca=1 ioa=2001 cot=7 negative=1", stdout, StringComparison.Ordinal);
            Assert.Contains("confirm type=102 name=C_RD_NA_1 ca=1 ioa=9999 cot=47 negative=1", stdout, StringComparison.Ordinal);
            Assert.Contains("confirm type=51 name=C_BO_NA_1 ca=1 ioa=2000 cot=44 negative=1", stdout, StringComparison.Ordinal);
            Assert.Contains("confirm type=45 name=C_SC_NA_1 ca=7 ioa=2000 cot=46 negative=1", stdout, StringComparison.Ordinal);
            Assert.Contains("point type=30 name=M_SP_TB_1 ca=1 ioa=2000 value=1 cot=3", stdout, StringComparison.Ordinal);
            Assert.Contains("point type=13 name=M_ME_NC_1 ca=1 ioa=3000 value=42.5 cot=5", stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("lib msg=", stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("drop reason=", stdout, StringComparison.Ordinal);
            Assert.True(plc.SinglePoint(2000));
            Assert.Equal(2, plc.DoublePoint(2002));
            Assert.Equal(42.5f, plc.Setpoint(3000));
            Assert.Equal(0, plc.MalformedFrames + plc.SequenceErrors);
        }
        finally
        {
            File.Delete(commands);
        }
    }
}
