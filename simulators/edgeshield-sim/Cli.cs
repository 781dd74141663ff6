namespace EdgeShield.Simulators.Cli;

internal static class Cli
{
    private const string Usage = """
        usage: edgeshield-sim <command> [options]   (--help on each command)
          plc     --listen HOST:PORT [--units 1,2] [--delay-ms N]   a Modbus TCP PLC (--protocol s7comm: an S7-300/400-like CPU;
                                                                   --protocol iec104: an IEC 60870-5-104 controlled station)
          hmi     --target HOST:PORT --conns N --seconds S [...]   HMI load; requests/s and latency (--protocol s7comm: S7 read/write-var;
                                                                   --protocol iec104: IEC 104 select+execute commands and set-points)
          attack  --target HOST:PORT [--scenario NAME[,NAME]]      malformed frames, forbidden functions, sweeps, floods, slowloris, half-open
                                                                   (--protocol s7comm: stop, download, upload, passwords, forced outputs, fragments, bad COTP;
                                                                   --protocol iec104: floods, global CA, forged confirmations, length/SQ/sequence lies, U-frames)
          demo    [--seconds N] [--broker URL]                    Modbus and S7 PLCs and an IEC 104 station, the gateway with the demo policy, HMI traffic and an MQTT broker, in one process
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        try
        {
            return args[0] switch
            {
                "plc" => await PlcCommand.RunAsync(new Args(args, 1)),
                "hmi" => await HmiCommand.RunAsync(new Args(args, 1)),
                "attack" => await AttackCommand.RunAsync(new Args(args, 1)),
                "demo" => await DemoCommand.RunAsync(new Args(args, 1)),
                _ => throw new UsageException($"unknown command '{args[0]}' (valid: plc, hmi, attack, demo)"),
            };
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"edgeshield-sim: {e.Message}");
            return 2;
        }
    }

    /// <summary>Completes on SIGINT or SIGTERM.</summary>
    public static CancellationTokenSource StopOnSignal(out IDisposable registrations)
    {
        var cts = new CancellationTokenSource();
        var sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, c =>
        {
            c.Cancel = true;
            cts.Cancel();
        });
        var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            cts.Cancel();
        });
        registrations = new Both(sigint, sigterm);
        return cts;
    }

    private sealed class Both(IDisposable a, IDisposable b) : IDisposable
    {
        public void Dispose()
        {
            a.Dispose();
            b.Dispose();
        }
    }
}
