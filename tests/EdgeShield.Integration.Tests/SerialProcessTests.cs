using System.Text.RegularExpressions;
using EdgeShield.Simulators;
using EdgeShield.Transport.Tests;

namespace EdgeShield.Integration.Tests;

/// <summary>`edgeshield run` as a user runs it, with a serial bus on a socat pty pair and the RTU PLC on the other end.</summary>
public partial class SerialProcessTests
{
    [Fact]
    public async Task Run_TcpHmiToRtuPlc_ThroughTheServiceProcess_Inspected()
    {
        using var pty = new PtyPair();
        using var plc = RtuPlcSimulator.Start(new RtuPlcOptions { Device = pty.Device, Baud = 38400, Unit = 3 });
        plc.SetHoldingRegister(3, 0, 31);
        plc.SetHoldingRegister(3, 1, 32);
        string config = Path.Combine(pty.Directory, "serial.yaml");
        await File.WriteAllTextAsync(config, SerialGatewayConfig.Yaml(pty.Master));
        await using var gateway = new Processes.Running(Processes.EdgeShield("run", "--config", config));
        Assert.True(await gateway.WaitForStderrAsync("listener hmi-rtu on "), "gateway did not start:\n" + gateway.Stderr);
        var match = ListenLine().Match(gateway.Stderr);
        Assert.True(match.Success, gateway.Stderr);
        string port = match.Groups[1].Value;

        var read = await Processes.RunAsync(Processes.Tool("/usr/bin/mbpoll", "-m", "tcp", "-p", port, "-a", "3", "-r", "1", "-c", "2", "-t", "4", "-1", "-o", "5", "127.0.0.1"));
        Assert.True(read.ExitCode == 0, read.Stdout + read.Stderr);
        Assert.Contains("[2]: \t32", read.Stdout, StringComparison.Ordinal);

        var write = await Processes.RunAsync(Processes.Tool("/usr/bin/mbpoll", "-m", "tcp", "-p", port, "-a", "3", "-r", "1", "-t", "4", "-1", "-o", "5", "127.0.0.1", "7"));
        Assert.NotEqual(0, write.ExitCode);
        Assert.Equal(31, plc.GetHoldingRegister(3, 0));
        Assert.Equal(0, plc.RequestsReceived(6));
        Assert.True(plc.FramesReceived >= 1, "the read reached the RTU PLC");
    }

    [Fact]
    public async Task Check_SerialConfig_IsStatic_OpensNoDevice()
    {
        string dir = Directory.CreateTempSubdirectory("es-check-").FullName;
        try
        {
            string config = Path.Combine(dir, "serial.yaml");
            await File.WriteAllTextAsync(config, """
                serial:
                  - name: rs485-1
                    device: /dev/does-not-exist
                    read-retries: 1
                listeners:
                  - name: hmi-rtu
                    bind: 127.0.0.1:0
                    protocol: modbus-rtu-over-tcp
                    upstream: serial://rs485-1
                    policy: plc
                policies:
                  plc:
                    mode: enforce
                    rules:
                      - name: reads
                        function: [read]
                """);
            var result = await Processes.RunAsync(Processes.EdgeShield("check", "--config", config));
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [GeneratedRegex(@"listener hmi-rtu on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenLine();
}
