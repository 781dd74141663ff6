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
               edgeshield-sim plc --protocol s7comm --listen HOST:PORT [--db FIRST,COUNT,SIZE] [--area-size N]
                                  [--pdu-size N] [--password PWD]
               edgeshield-sim plc --protocol iec104 --listen HOST:PORT [--ca N] [--spontaneous-ms N] [--single-group]
                                  [--direct-operate]
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
          --protocol P              modbus-tcp (default), s7comm (an S7-300/400-like CPU on ISO-on-TCP) or iec104
                                    (an IEC 60870-5-104 controlled station, port 2404 by convention)
          --db FIRST,COUNT,SIZE     s7comm: the DBs served (default 1,10,256: DB1..DB10 of 256 bytes)
          --area-size N             s7comm: bytes of M, I and Q each (default 256)
          --pdu-size N              s7comm: the largest PDU size negotiated (240..960, default 480)
          --password PWD            s7comm: protect the CPU (stop, PI services, upload, download need PWD)
          --ca N                    iec104: the station's common address (default 1; 1..65534)
          --spontaneous-ms N        iec104: one point changes and is sent with cause 3 every N ms (default 1000; 0 = never)
          --single-group            iec104: one redundancy group: STARTDT on a connection closes the one active before
          --direct-operate          iec104: execute C_SC/C_DC/C_RC without a select (default: select-before-operate)
        iec104 says on stderr why it closed a connection (sequence error, malformed frame, t1, I-frame before STARTDT).
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
        string protocol = "modbus-tcp";
        int firstDb = 1, dbCount = 10, dbSize = 256, areaSize = 256, pduSize = 480;
        string? password = null;
        int ca = 1, spontaneousMs = 1000;
        bool singleGroup = false, directOperate = false, iecOnly = false;
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
                case "--protocol":
                    protocol = args.Value(option) switch
                    {
                        var p when p is "modbus-tcp" or "s7comm" or "iec104" => p,
                        var other => throw new UsageException($"--protocol: '{other}' is not modbus-tcp, s7comm or iec104"),
                    };
                    break;
                case "--db":
                    (firstDb, dbCount, dbSize) = ParseDbs(args.Value(option));
                    break;
                case "--area-size":
                    areaSize = args.Int(option, 1, 65536);
                    break;
                case "--pdu-size":
                    pduSize = args.Int(option, 240, S7PlcSimulator.MaxPduBuffer);
                    break;
                case "--password":
                    password = args.Value(option);
                    if (password.Length is 0 or > 8)
                    {
                        throw new UsageException("--password: 1 to 8 characters");
                    }
                    break;
                case "--ca":
                    ca = args.Int(option, 1, 65534);
                    iecOnly = true;
                    break;
                case "--spontaneous-ms":
                    spontaneousMs = args.Int(option, 0, 3_600_000);
                    iecOnly = true;
                    break;
                case "--single-group":
                    singleGroup = true;
                    iecOnly = true;
                    break;
                case "--direct-operate":
                    directOperate = true;
                    iecOnly = true;
                    break;
                default:
                    throw new UsageException($"plc: unknown argument '{option}' (see plc --help)");
            }
        }
        if (serial is not null && protocol == "iec104")
        {
            throw new UsageException("plc --protocol iec104: --serial is Modbus RTU (IEC 104 is TCP only: --listen HOST:PORT)");
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
        if (iecOnly && protocol != "iec104")
        {
            throw new UsageException("plc: --ca, --spontaneous-ms, --single-group and --direct-operate are iec104 options (--protocol iec104)");
        }
        if (protocol == "iec104")
        {
            var iec = new Iec104PlcOptions
            {
                CommonAddress = (ushort)ca,
                SpontaneousMs = spontaneousMs,
                SingleGroup = singleGroup,
                DirectOperate = directOperate,
                Log = static line => Console.Error.WriteLine(line),
            };
            return await RunIec104Async(listen, iec);
        }
        if (protocol == "s7comm")
        {
            var s7 = new S7PlcOptions { FirstDb = firstDb, DbCount = dbCount, DbSize = dbSize, AreaSize = areaSize, MaxPduSize = pduSize, Password = password };
            return await RunS7Async(listen, s7);
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

    private static async Task<int> RunS7Async(IPEndPoint listen, S7PlcOptions options)
    {
        using var stop = Cli.StopOnSignal(out var signals);
        using (signals)
        {
            await using var plc = await S7PlcSimulator.StartAsync(listen, options, stop.Token);
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
            Console.WriteLine($"frames {plc.FramesReceived} pdus {plc.PdusReceived} requests {plc.TotalRequests} malformed {plc.MalformedFrames} oversize {plc.OversizePdus} data-before-connect {plc.DataBeforeConnect} incomplete {plc.IncompletePdus} connections {plc.ConnectionsAccepted}");
            Console.WriteLine($"items-read {plc.ItemsRead} items-written {plc.ItemsWritten} output-writes {plc.OutputWrites} stops {plc.Stops} starts {plc.Starts} uploads {plc.Uploads} downloads {plc.Downloads} password-attempts {plc.PasswordAttempts} password-failures {plc.PasswordFailures} state {plc.State}");
            foreach (var function in Enum.GetValues<EdgeShield.Protocols.S7comm.S7Function>())
            {
                long count = plc.Requests(function);
                if (count > 0)
                {
                    Console.WriteLine($"  {EdgeShield.Protocols.S7comm.S7Functions.PolicyWord(function)}: {count}");
                }
            }
        }
        return 0;
    }

    private static async Task<int> RunIec104Async(IPEndPoint listen, Iec104PlcOptions options)
    {
        using var stop = Cli.StopOnSignal(out var signals);
        using (signals)
        {
            await using var plc = await Iec104PlcSimulator.StartAsync(listen, options, stop.Token);
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
            Console.WriteLine($"frames {plc.FramesReceived} i {plc.IFrames} s {plc.SFrames} u {plc.UFrames} malformed {plc.MalformedFrames} sequence-errors {plc.SequenceErrors} before-startdt {plc.IFramesBeforeStart} t1-expired {plc.T1Expired} connections {plc.ConnectionsAccepted}");
            Console.WriteLine($"selects {plc.Selects} executes {plc.Executes} setpoints {plc.Setpoints} interrogations {plc.Interrogations} counter-interrogations {plc.CounterInterrogations} reads {plc.Reads} clock-syncs {plc.ClockSyncs} spontaneous {plc.SpontaneousChanges} negative {plc.TotalNegatives}");
            for (int type = 0; type < 256; type++)
            {
                long count = plc.Asdus((byte)type);
                if (count > 0)
                {
                    Console.WriteLine($"  {(EdgeShield.Protocols.Iec104.Iec104Types.IsKnown((byte)type) ? EdgeShield.Protocols.Iec104.Iec104Types.Name((byte)type) : $"type {type}")}: {count}");
                }
            }
            for (int cause = 0; cause < 64; cause++)
            {
                long count = plc.Negatives((byte)cause);
                if (count > 0)
                {
                    Console.WriteLine($"  negative cause {cause} ({EdgeShield.Protocols.Iec104.Iec104Causes.Name((byte)cause)}): {count}");
                }
            }
        }
        return 0;
    }

    private static (int First, int Count, int Size) ParseDbs(string text)
    {
        var parts = text.Split(',');
        if (parts.Length != 3
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int first)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int count)
            || !int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out int size)
            || first < 1 || count > 65536 - first || size < 1 || size > 65536)
        {
            throw new UsageException($"--db: '{text}' is not FIRST,COUNT,SIZE (DB numbers 1..65535, size 1..65536)");
        }
        return (first, count, size);
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
