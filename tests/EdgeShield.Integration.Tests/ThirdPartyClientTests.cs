using System.Globalization;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// Modbus clients no one here wrote — mbpoll (libmodbus) and pymodbus — talk to the PLC through
/// `edgeshield run`, allowed and refused: independent judges of the gateway's framing and answers.
/// </summary>
public class ThirdPartyClientTests
{
    private const string Mbpoll = "/usr/bin/mbpoll";
    private const string Python = "/usr/bin/python3";

    [Fact]
    public async Task Mbpoll_ReadHoldingRegisters_ThroughTheGateway()
    {
        await using var gw = await GatewayProcess.StartAsync();
        for (ushort i = 0; i < 5; i++)
        {
            gw.Plc.SetHoldingRegister(1, (ushort)(10 + i), (ushort)(1000 + i));
        }

        // mbpoll's -r is the 1-based reference: 11 is wire address 10.
        var result = await Processes.RunAsync(Processes.Tool(Mbpoll, "-m", "tcp", "-a", "1", "-t", "4", "-r", "11", "-c", "5", "-1", "-p", Port(gw), "127.0.0.1"));

        Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
        for (int i = 0; i < 5; i++)
        {
            Assert.Contains($"[{11 + i}]: \t{1000 + i}", result.Stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Mbpoll_WriteAllowedRegister_ReachesThePlc()
    {
        await using var gw = await GatewayProcess.StartAsync();

        var result = await Processes.RunAsync(Processes.Tool(Mbpoll, "-m", "tcp", "-a", "1", "-t", "4", "-r", "106", "-1", "-p", Port(gw), "127.0.0.1", "1234"));

        Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
        Assert.Equal(1234, gw.Plc.GetHoldingRegister(1, 105));
    }

    [Fact]
    public async Task Mbpoll_WriteForbiddenRegister_IsRefusedWithIllegalDataAddress()
    {
        await using var gw = await GatewayProcess.StartAsync();

        var result = await Processes.RunAsync(Processes.Tool(Mbpoll, "-m", "tcp", "-a", "1", "-t", "4", "-r", "501", "-1", "-p", Port(gw), "127.0.0.1", "1234"));

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("Illegal data address", result.Stdout + result.Stderr, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0, gw.Plc.GetHoldingRegister(1, 500));
        Assert.Equal(0, gw.Plc.RequestsReceived(6));
    }

    [Fact]
    public async Task Pymodbus_ReadAllowed_WriteRefused_ValueOutOfRange()
    {
        await using var gw = await GatewayProcess.StartAsync();
        gw.Plc.SetInputRegister(1, 7, 4242);
        string script = """
            import sys
            from pymodbus.client import ModbusTcpClient
            c = ModbusTcpClient("127.0.0.1", port=int(sys.argv[1]), timeout=3)
            assert c.connect(), "connect failed"
            r = c.read_input_registers(7, 1, slave=1)
            print("read", "error" if r.isError() else r.registers[0])
            w = c.write_register(110, 9999, slave=1)
            print("write", w.exception_code if w.isError() else "ok")
            w = c.write_register(110, 1500, slave=1)
            print("write", w.exception_code if w.isError() else "ok")
            c.close()
            """;

        var result = await Processes.RunAsync(Processes.Tool(Python, "-c", script, Port(gw)));

        Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(["read 4242", "write 3", "write ok"], lines);
        Assert.Equal(1500, gw.Plc.GetHoldingRegister(1, 110));
    }

    private static string Port(GatewayProcess gw) => gw.Port.ToString(CultureInfo.InvariantCulture);
}
