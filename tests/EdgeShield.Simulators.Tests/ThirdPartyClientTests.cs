using System.Diagnostics;

namespace EdgeShield.Simulators.Tests;

/// <summary>
/// Independent judges: mbpoll (libmodbus) and pymodbus talk to the simulator. Missing tools fail
/// the test with a message; CI installs them (apt-get install mbpoll python3-pymodbus).
/// </summary>
public class ThirdPartyClientTests
{
    private const string Mbpoll = "/usr/bin/mbpoll";
    private const string Python = "/usr/bin/python3";

    private static async Task<(int Exit, string Output)> RunAsync(string file, params string[] args)
    {
        Assert.True(File.Exists(file), $"{file} is missing: install it (apt-get install mbpoll python3-pymodbus)");
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
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

    [Fact]
    public async Task Mbpoll_ReadsHoldingRegisters_AndWritesOne()
    {
        await using var plc = await Plc.StartAsync();
        for (ushort i = 0; i < 5; i++)
        {
            plc.SetHoldingRegister(1, i, (ushort)(100 + i));
        }
        string port = plc.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var (exit, output) = await RunAsync(Mbpoll, "-m", "tcp", "-o", "5", "-a", "1", "-r", "1", "-c", "5", "-t", "4", "-1", "-p", port, "127.0.0.1");
        Assert.True(exit == 0, output);
        for (int i = 0; i < 5; i++)
        {
            Assert.Contains($"[{i + 1}]: \t{100 + i}", output, StringComparison.Ordinal);
        }

        (exit, output) = await RunAsync(Mbpoll, "-m", "tcp", "-o", "5", "-a", "1", "-r", "10", "-t", "4", "-p", port, "127.0.0.1", "--", "4321");
        Assert.True(exit == 0, output);
        Assert.Contains("Written 1 references", output, StringComparison.Ordinal);
        Assert.Equal(4321, plc.GetHoldingRegister(1, 9));
    }

    [Fact]
    public async Task Pymodbus_WritesAndReads()
    {
        await using var plc = await Plc.StartAsync();
        plc.SetInputRegister(1, 20, 777);
        string script = $$"""
            import sys
            from pymodbus.client import ModbusTcpClient
            c = ModbusTcpClient("127.0.0.1", port={{plc.Port}})
            assert c.connect(), "connect failed"
            w = c.write_registers(30, [11, 22, 33], slave=1)
            assert not w.isError(), str(w)
            r = c.read_holding_registers(30, 3, slave=1)
            assert not r.isError(), str(r)
            i = c.read_input_registers(20, 2, slave=1)
            print("holding", r.registers, "input", i.registers)
            c.close()
            """;
        var (exit, output) = await RunAsync(Python, "-c", script);
        Assert.True(exit == 0, output);
        Assert.Contains("holding [11, 22, 33] input [777, 21]", output, StringComparison.Ordinal);
        Assert.Equal(22, plc.GetHoldingRegister(1, 31));
    }
}
