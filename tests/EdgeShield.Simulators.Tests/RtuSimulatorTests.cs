using System.Diagnostics;
using System.Globalization;
using EdgeShield.Simulators;
using EdgeShield.Transport.Tests;

namespace EdgeShield.Simulators.Tests;

/// <summary>A third-party RTU master (mbpoll, libmodbus) judges the RTU simulator over a pty pair.</summary>
public class RtuSimulatorTests
{
    [Fact]
    public async Task Mbpoll_Rtu_ReadsHoldingRegisters()
    {
        using var pty = new PtyPair();
        using var plc = RtuPlcSimulator.Start(new RtuPlcOptions { Device = pty.Device, Baud = 19200, Unit = 5 });
        for (ushort i = 0; i < 10; i++)
        {
            plc.SetHoldingRegister(5, i, (ushort)(1000 + i));
        }
        var (exit, output) = await RunMbpollAsync("-m", "rtu", "-b", "19200", "-P", "even", "-a", "5", "-r", "1", "-c", "10", "-t", "4", "-1", "-o", "5", pty.Master);
        Assert.True(exit == 0, output);
        Assert.Contains("[10]: \t1009", output, StringComparison.Ordinal);
        Assert.Equal(1, plc.FramesReceived);
        Assert.Equal(0, plc.CrcErrors);
    }

    [Fact]
    public async Task Mbpoll_Rtu_WritesAndReadsBackOnTheSecondUnit()
    {
        using var pty = new PtyPair();
        using var plc = RtuPlcSimulator.Start(new RtuPlcOptions { Device = pty.Device, Baud = 115200, Unit = 1, SecondUnit = 2 });
        var (exit, output) = await RunMbpollAsync("-m", "rtu", "-b", "115200", "-P", "even", "-a", "2", "-r", "11", "-t", "4", "-1", "-o", "5", pty.Master, "4242");
        Assert.True(exit == 0, output);
        Assert.Equal(4242, plc.GetHoldingRegister(2, 10));
        Assert.Equal(0, plc.GetHoldingRegister(1, 10));
    }

    [Fact]
    public async Task Pacing_ReplyTakesAtLeastTheLineTime()
    {
        using var pty = new PtyPair();
        // 1200 baud 8E1: a 10-register read is 8 + 25 bytes, 275 ms of line time plus t3.5.
        using var plc = RtuPlcSimulator.Start(new RtuPlcOptions { Device = pty.Device, Baud = 1200, Unit = 1 });
        var watch = Stopwatch.StartNew();
        var (exit, output) = await RunMbpollAsync("-m", "rtu", "-b", "1200", "-P", "even", "-a", "1", "-r", "1", "-c", "10", "-t", "4", "-1", "-o", "5", pty.Master);
        Assert.True(exit == 0, output);
        double minimumMs = plc.Timing.FrameMicros(33) / 1000;
        Assert.True(watch.Elapsed.TotalMilliseconds >= minimumMs, $"{watch.Elapsed.TotalMilliseconds} ms < {minimumMs.ToString(CultureInfo.InvariantCulture)} ms");
    }

    private static async Task<(int Exit, string Output)> RunMbpollAsync(params string[] args)
    {
        const string mbpoll = "/usr/bin/mbpoll";
        Assert.True(File.Exists(mbpoll), "mbpoll is missing: apt-get install mbpoll");
        var start = new ProcessStartInfo(mbpoll) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
