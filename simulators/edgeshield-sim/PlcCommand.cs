using System.Globalization;
using System.Net;

namespace EdgeShield.Simulators.Cli;

internal static class PlcCommand
{
    private const string Help = """
        usage: edgeshield-sim plc --listen HOST:PORT [--units 1,2] [--unit-not-served exception|ignore]
                                  [--delay-ms N] [--sine START,COUNT]
               edgeshield-sim plc --serial DEVICE --baud N [--unit ID] [--second-unit ID]
                                  [--parity even|none|odd] [--stop-bits 1|2] [--fault LIST]
                                  [--late-ms N] [--split-gap-ms N]
          --listen HOST:PORT        address to bind (port 0 picks a free port; the bound one is printed)
          --units LIST              unit ids served (default: every unit id)
          --unit-not-served MODE    other unit ids get exception 0B (default) or no answer
          --delay-ms N              wait N ms before each batch of responses
          --sine START,COUNT        COUNT input registers from START follow a 60 s sine (1000 ± 1000)
          --serial DEVICE           answer Modbus RTU on a serial device (or pty), paced at --baud
          --unit ID                 the RTU device address (default 1); --second-unit adds another on the line
          --fault LIST              comma list of crc, no-reply, late, split, garbage, wrong-unit,
                                    wrong-function, truncated, twice (applied to every reply)
          --late-ms N / --split-gap-ms N   size of the late and split faults (default 500 / 20)
        Prints "listening on HOST:PORT" (or "serial on DEVICE"), runs until SIGINT/SIGTERM, then prints its counters.
        """;

    public static async Task<int> RunAsync(Args args)
    {
        IPEndPoint? listen = null;
        List<byte>? units = null;
        var notServed = UnitNotServedBehavior.GatewayException;
        int delayMs = 0;
        ushort sineStart = 0;
        int sineCount = 0;
        string? serial = null;
        int baud = 19200, stopBits = 1, lateMs = 500, splitGapMs = 20;
        byte unit = 1, secondUnit = 0;
        string parity = "even";
        string[] faults = [];
        for (string? option = args.NextOption(); option is not null; option = args.NextOption())
        {
            switch (option)
            {
                case "--help" or "-h":
                    Console.WriteLine(Help);
                    return 0;
                case "--listen":
                    listen = args.EndPoint(option);
                    break;
                case "--units":
                    units = ParseUnits(args.Value(option));
                    break;
                case "--unit-not-served":
                    notServed = args.Value(option) switch
                    {
                        "exception" => UnitNotServedBehavior.GatewayException,
                        "ignore" => UnitNotServedBehavior.Ignore,
                        var other => throw new UsageException($"--unit-not-served: '{other}' is not exception or ignore"),
                    };
                    break;
                case "--delay-ms":
                    delayMs = args.Int(option, 0, 600_000);
                    break;
                case "--sine":
                    (sineStart, sineCount) = ParseSine(args.Value(option));
                    break;
                case "--serial":
                    serial = args.Value(option);
                    break;
                case "--baud":
                    baud = args.Int(option, 300, 4_000_000);
                    break;
                case "--unit":
                    unit = (byte)args.Int(option, 1, 247);
                    break;
                case "--second-unit":
                    secondUnit = (byte)args.Int(option, 1, 247);
                    break;
                case "--parity":
                    parity = args.Value(option) switch
                    {
                        var p when p is "even" or "none" or "odd" => p,
                        var other => throw new UsageException($"--parity: '{other}' is not even, none or odd"),
                    };
                    break;
                case "--stop-bits":
                    stopBits = args.Int(option, 1, 2);
                    break;
                case "--fault":
                    faults = args.Value(option).Split(',', StringSplitOptions.RemoveEmptyEntries);
                    break;
                case "--late-ms":
                    lateMs = args.Int(option, 1, 600_000);
                    break;
                case "--split-gap-ms":
                    splitGapMs = args.Int(option, 1, 60_000);
                    break;
                default:
                    throw new UsageException($"plc: unknown argument '{option}' (see plc --help)");
            }
        }
        if (serial is not null)
        {
            var rtu = new RtuPlcOptions { Device = serial, Baud = baud, Parity = parity, StopBits = stopBits, Unit = unit, SecondUnit = secondUnit };
            return await RunSerialAsync(rtu, faults, lateMs, splitGapMs);
        }
        if (listen is null)
        {
            throw new UsageException("plc: --listen HOST:PORT or --serial DEVICE is required");
        }

        using var stop = Cli.StopOnSignal(out var signals);
        using (signals)
        {
            var options = new PlcOptions
            {
                Units = units,
                UnitNotServed = notServed,
                ResponseDelayMs = delayMs,
                SineStart = sineStart,
                SineCount = sineCount,
            };
            await using var plc = await PlcSimulator.StartAsync(listen, options, stop.Token);
            Console.WriteLine($"listening on {plc.EndPoint}");
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
                // SIGINT or SIGTERM: stop and report.
            }
            await plc.DisposeAsync();
            Console.WriteLine($"frames {plc.FramesReceived} requests {plc.TotalRequests} malformed {plc.MalformedFrames} truncated {plc.TruncatedFrames} responses {plc.ResponsesSent} exceptions {plc.ExceptionsSent} connections {plc.ConnectionsAccepted}");
            Console.WriteLine($"out-of-spec {plc.OutOfSpecRequests} values-written {plc.RegisterValuesWritten}");
            foreach (var table in (ReadOnlySpan<EdgeShield.Protocols.Modbus.ModbusTable>)[EdgeShield.Protocols.Modbus.ModbusTable.Coils, EdgeShield.Protocols.Modbus.ModbusTable.DiscreteInputs, EdgeShield.Protocols.Modbus.ModbusTable.HoldingRegisters, EdgeShield.Protocols.Modbus.ModbusTable.InputRegisters])
            {
                Console.WriteLine($"  {table}: read {plc.ReadRange(table)} write {plc.WriteRange(table)}");
            }
            for (int fc = 0; fc < 256; fc++)
            {
                long count = plc.RequestsReceived((byte)fc);
                if (count > 0)
                {
                    Console.WriteLine($"  fc {fc}: {count}");
                }
            }
        }
        return 0;
    }

    private static async Task<int> RunSerialAsync(RtuPlcOptions options, string[] faultNames, int lateMs, int splitGapMs)
    {
        using var stop = Cli.StopOnSignal(out var signals);
        using (signals)
        {
            using var plc = RtuPlcSimulator.Start(options);
            foreach (var name in faultNames)
            {
                switch (name)
                {
                    case "crc": plc.Faults.BadCrc = true; break;
                    case "no-reply": plc.Faults.NoReply = true; break;
                    case "late": plc.Faults.LateMs = lateMs; break;
                    case "split": plc.Faults.SplitGapMs = splitGapMs; break;
                    case "garbage": plc.Faults.Garbage = true; break;
                    case "wrong-unit": plc.Faults.WrongUnit = true; break;
                    case "wrong-function": plc.Faults.WrongFunction = true; break;
                    case "truncated": plc.Faults.Truncated = true; break;
                    case "twice": plc.Faults.Twice = true; break;
                    default: throw new UsageException($"--fault: '{name}' is not crc, no-reply, late, split, garbage, wrong-unit, wrong-function, truncated or twice");
                }
            }
            Console.WriteLine($"serial on {options.Device} at {options.Baud} baud, unit {options.Unit}");
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
                // SIGINT or SIGTERM: stop and report.
            }
            Console.WriteLine($"frames {plc.FramesReceived} crc-errors {plc.CrcErrors} replies {plc.RepliesSent} broadcasts {plc.Broadcasts}");
        }
        return 0;
    }

    private static List<byte> ParseUnits(string text)
    {
        var units = new List<byte>();
        foreach (var part in text.Split(','))
        {
            if (!byte.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out byte unit))
            {
                throw new UsageException($"--units: '{part}' is not a unit id 0..255");
            }
            units.Add(unit);
        }
        return units;
    }

    private static (ushort Start, int Count) ParseSine(string text)
    {
        var parts = text.Split(',');
        if (parts.Length != 2
            || !ushort.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out ushort start)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int count)
            || count > 65536 - start)
        {
            throw new UsageException($"--sine: '{text}' is not START,COUNT within 0..65535");
        }
        return (start, count);
    }
}
