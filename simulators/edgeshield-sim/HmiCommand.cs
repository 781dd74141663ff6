using System.Globalization;
using System.Net;
using System.Text.Json;

namespace EdgeShield.Simulators.Cli;

internal static class HmiCommand
{
    private const string Help = """
        usage: edgeshield-sim hmi --target HOST:PORT --conns N --seconds S [--unit U]
                                  [--mix read=80,write=20] [--pipeline N] [--timeout-ms N] [--json]
          --target HOST:PORT   the PLC or the gateway in front of it
          --conns N            connections, each with one request outstanding (default 1)
          --seconds S          run time (default 5)
          --unit U             unit id (default 1)
          --mix read=R,write=W weights; reads split FC3:FC4:FC1 2:1:1, writes FC6:FC16 1:1 (default read=80,write=20)
          --read-range A,N     reads within addresses A..A+N-1 (default 0,1000)
          --write-range A,N    writes within addresses A..A+N-1, values 0..1000 (default 100,20)
          --pipeline N         requests in flight per connection (default 1)
          --timeout-ms N       response timeout (default 2000)
          --interval S         also report every S seconds: answers, errors, p50/p99/max of that interval
                               (a line as it ends; with --json one object per interval before the summary)
          --json               print one JSON object instead of text
          --protocol P         modbus-tcp (default) or s7comm: ISO-on-TCP connections (COTP connect, setup-communication),
                               one job outstanding each, read-var / write-var of one DB item; --read-range and
                               --write-range are byte offsets in the DB (default 0,200 and 100,20)
          --db N               s7comm: the DB read and written (default 1)
          --read-bytes N       s7comm: bytes per read-var item (default 20); --write-bytes N per write (default 4)
          --conn-type T        s7comm: op (default, an HMI's), pg or basic; --rack R --slot S (default 0, 2)
          --protocol iec104    IEC 60870-5-104: each connection STARTDT, then one command outstanding at a time, waiting for
                               its actcon: select+execute pairs of C_SC_NA_1 / C_DC_NA_1 (IOA 2000-2099) and C_SE_NC_1
                               set-points (IOA 3000-3009, values 0..100); --mix command=C,setpoint=S (default 70,30)
          --ca N               iec104: the station's common address (default 1)
        For s7comm, exceptions_by_code counts item return codes (01..0A) and negative Ack_Data by error class (81..87, D2);
        for iec104, negative confirmations by cause (7, 44..47, decimal).
        Exit 0 when every request was answered, 1 when there were errors.
        """;

    public static async Task<int> RunAsync(Args args)
    {
        IPEndPoint? target = null;
        int conns = 1, seconds = 5, unit = 1, pipeline = 1, timeoutMs = 2000;
        int read = 80, write = 20;
        (ushort Start, int Count) readRange = (0, 1000), writeRange = (100, 20);
        bool json = false;
        int intervalSeconds = 0;
        string protocol = "modbus-tcp";
        int db = 1, readBytes = 20, writeBytes = 4, rack = 0, slot = 2;
        byte connType = 2;
        bool readRangeSet = false, unitOrPipelineSet = false, modbusOrS7Set = false;
        int ca = 1;
        string? mix = null;
        for (string? option = args.NextOption(); option is not null; option = args.NextOption())
        {
            switch (option)
            {
                case "--help" or "-h":
                    Console.WriteLine(Help);
                    return 0;
                case "--target":
                    target = args.EndPoint(option);
                    break;
                case "--conns":
                    conns = args.Int(option, 1, 10_000);
                    break;
                case "--seconds":
                    seconds = args.Int(option, 1, 86_400);
                    break;
                case "--unit":
                    unit = args.Int(option, 0, 255);
                    unitOrPipelineSet = true;
                    break;
                case "--pipeline":
                    pipeline = args.Int(option, 1, 64);
                    unitOrPipelineSet = true;
                    break;
                case "--protocol":
                    protocol = args.Value(option) switch
                    {
                        var p when p is "modbus-tcp" or "s7comm" or "iec104" => p,
                        var other => throw new UsageException($"--protocol: '{other}' is not modbus-tcp, s7comm or iec104"),
                    };
                    break;
                case "--db":
                    modbusOrS7Set = true;
                    db = args.Int(option, 1, 65535);
                    break;
                case "--read-bytes":
                    modbusOrS7Set = true;
                    readBytes = args.Int(option, 1, 462);
                    break;
                case "--write-bytes":
                    modbusOrS7Set = true;
                    writeBytes = args.Int(option, 1, 452);
                    break;
                case "--rack":
                    modbusOrS7Set = true;
                    rack = args.Int(option, 0, 7);
                    break;
                case "--slot":
                    modbusOrS7Set = true;
                    slot = args.Int(option, 0, 31);
                    break;
                case "--conn-type":
                    modbusOrS7Set = true;
                    connType = args.Value(option) switch
                    {
                        "pg" => 1,
                        "op" => 2,
                        "basic" => 3,
                        var other => throw new UsageException($"--conn-type: '{other}' is not op, pg or basic"),
                    };
                    break;
                case "--timeout-ms":
                    timeoutMs = args.Int(option, 1, 600_000);
                    break;
                case "--mix":
                    mix = args.Value(option);
                    break;
                case "--ca":
                    ca = args.Int(option, 1, 65535);
                    break;
                case "--read-range":
                    modbusOrS7Set = true;
                    readRange = ParseRange(option, args.Value(option));
                    readRangeSet = true;
                    break;
                case "--write-range":
                    modbusOrS7Set = true;
                    writeRange = ParseRange(option, args.Value(option));
                    break;
                case "--json":
                    json = true;
                    break;
                case "--interval":
                    intervalSeconds = args.Int(option, 1, 86_400);
                    break;
                default:
                    throw new UsageException($"hmi: unknown argument '{option}' (see hmi --help)");
            }
        }
        if (target is null)
        {
            throw new UsageException("hmi: --target HOST:PORT is required");
        }

        if (protocol == "iec104")
        {
            if (unitOrPipelineSet || intervalSeconds > 0 || modbusOrS7Set)
            {
                throw new UsageException("hmi --protocol iec104: --unit, --pipeline, --interval, --db, --read-*, --write-*, --rack, --slot and --conn-type are Modbus or S7 options");
            }
            var (commands, setpoints) = mix is null ? (70, 30) : ParseIec104Mix(mix);
            var iec = new Iec104HmiOptions
            {
                Connections = conns,
                Duration = TimeSpan.FromSeconds(seconds),
                CommonAddress = (ushort)ca,
                CommandWeight = commands,
                SetpointWeight = setpoints,
                TimeoutMs = timeoutMs,
            };
            using var iecStop = Cli.StopOnSignal(out var iecSignals);
            using (iecSignals)
            {
                return Report(await Iec104HmiLoad.RunAsync(target, iec, iecStop.Token), json, causes: true);
            }
        }
        if (mix is not null)
        {
            (read, write) = ParseMix(mix);
        }
        if (ca != 1)
        {
            throw new UsageException("hmi: --ca is an iec104 option (--protocol iec104)");
        }
        if (protocol == "s7comm")
        {
            if (unitOrPipelineSet || intervalSeconds > 0)
            {
                throw new UsageException("hmi --protocol s7comm: --unit, --pipeline and --interval are Modbus options");
            }
            var s7 = new S7HmiOptions
            {
                Connections = conns,
                Duration = TimeSpan.FromSeconds(seconds),
                ReadWeight = read,
                WriteWeight = write,
                Db = db,
                ReadStart = readRange.Start,
                ReadRange = readRangeSet ? readRange.Count : 200,
                ReadBytes = readBytes,
                WriteStart = writeRange.Start,
                WriteRange = writeRange.Count,
                WriteBytes = writeBytes,
                ConnectionType = connType,
                Rack = (byte)rack,
                Slot = (byte)slot,
                TimeoutMs = timeoutMs,
            };
            using var s7Stop = Cli.StopOnSignal(out var s7Signals);
            using (s7Signals)
            {
                return Report(await S7HmiLoad.RunAsync(target, s7, s7Stop.Token), json);
            }
        }

        var options = HmiOptions.WithMix(read, write, new HmiOptions
        {
            Connections = conns,
            Duration = TimeSpan.FromSeconds(seconds),
            Unit = (byte)unit,
            Pipeline = pipeline,
            TimeoutMs = timeoutMs,
            ReadStart = readRange.Start,
            ReadRange = readRange.Count,
            WriteStart = writeRange.Start,
            WriteRange = writeRange.Count,
            Interval = intervalSeconds > 0 ? TimeSpan.FromSeconds(intervalSeconds) : null,
            OnInterval = intervalSeconds > 0 ? (json ? WriteIntervalJson : WriteIntervalText) : null,
        });
        using var stop = Cli.StopOnSignal(out var signals);
        using (signals)
        {
            return Report(await HmiLoad.RunAsync(target, options, stop.Token), json);
        }
    }

    private static int Report(HmiResult result, bool json, bool causes = false)
    {
        if (json)
        {
            WriteJson(result);
        }
        else
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"requests/s {result.RequestsPerSecond:F0} p50 {result.P50Us} us p99 {result.P99Us} us p999 {result.P999Us} us max {result.MaxUs} us"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"requests {result.Requests} ok {result.ResponsesOk} exceptions {result.TotalExceptions} errors {result.Errors} (timeouts {result.Timeouts} mismatched {result.Mismatched} disconnects {result.Disconnects} connect-failures {result.ConnectFailures})"));
            for (int code = 1; code < 256; code++)
            {
                if (result.Exceptions((byte)code) > 0)
                {
                    Console.WriteLine(causes
                        ? string.Create(CultureInfo.InvariantCulture, $"  negative cause {code} ({EdgeShield.Protocols.Iec104.Iec104Causes.Name((byte)code)}): {result.Exceptions((byte)code)}")
                        : string.Create(CultureInfo.InvariantCulture, $"  exception {code:X2}: {result.Exceptions((byte)code)}"));
                }
            }
        }
        return result.Errors == 0 ? 0 : 1;
    }

    private static void WriteIntervalText(HmiInterval i) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"interval {i.Index} at {i.StartSeconds:F0} s: answered {i.Answered} ({i.AnsweredPerSecond:F0}/s) errors {i.Errors} p50 {i.P50Us} us p99 {i.P99Us} us max {i.MaxUs} us"));

    private static void WriteIntervalJson(HmiInterval i)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var writer = new Utf8JsonWriter(stdout))
        {
            writer.WriteStartObject();
            writer.WriteNumber("interval", i.Index);
            writer.WriteNumber("start_s", Math.Round(i.StartSeconds, 3));
            writer.WriteNumber("seconds", Math.Round(i.Seconds, 3));
            writer.WriteNumber("answered", i.Answered);
            writer.WriteNumber("errors", i.Errors);
            writer.WriteNumber("p50_us", i.P50Us);
            writer.WriteNumber("p99_us", i.P99Us);
            writer.WriteNumber("max_us", i.MaxUs);
            writer.WriteEndObject();
        }
        stdout.WriteByte((byte)'\n');
    }

    private static void WriteJson(HmiResult result)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var writer = new Utf8JsonWriter(stdout))
        {
            writer.WriteStartObject();
            writer.WriteNumber("requests", result.Requests);
            writer.WriteNumber("ok", result.ResponsesOk);
            writer.WriteNumber("exceptions", result.TotalExceptions);
            writer.WriteStartObject("exceptions_by_code");
            for (int code = 1; code < 256; code++)
            {
                if (result.Exceptions((byte)code) > 0)
                {
                    writer.WriteNumber(code.ToString(CultureInfo.InvariantCulture), result.Exceptions((byte)code));
                }
            }
            writer.WriteEndObject();
            writer.WriteNumber("errors", result.Errors);
            writer.WriteNumber("timeouts", result.Timeouts);
            writer.WriteNumber("mismatched", result.Mismatched);
            writer.WriteNumber("disconnects", result.Disconnects);
            writer.WriteNumber("connect_failures", result.ConnectFailures);
            writer.WriteNumber("seconds", Math.Round(result.Elapsed.TotalSeconds, 3));
            writer.WriteNumber("requests_per_second", Math.Round(result.RequestsPerSecond, 1));
            writer.WriteNumber("p50_us", result.P50Us);
            writer.WriteNumber("p99_us", result.P99Us);
            writer.WriteNumber("p999_us", result.P999Us);
            writer.WriteNumber("max_us", result.MaxUs);
            writer.WriteEndObject();
        }
        stdout.WriteByte((byte)'\n');
    }

    private static (int Read, int Write) ParseMix(string text)
    {
        int read = 0, write = 0;
        foreach (var part in text.Split(','))
        {
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0 || !int.TryParse(part.AsSpan(eq + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int weight))
            {
                throw new UsageException($"--mix: '{part}' is not read=N or write=N");
            }
            switch (part[..eq])
            {
                case "read":
                    read = weight;
                    break;
                case "write":
                    write = weight;
                    break;
                default:
                    throw new UsageException($"--mix: '{part[..eq]}' is not read or write");
            }
        }
        if (read + write == 0)
        {
            throw new UsageException("--mix: read and write cannot both be 0");
        }
        return (read, write);
    }

    private static (int Commands, int Setpoints) ParseIec104Mix(string text)
    {
        int commands = 0, setpoints = 0;
        foreach (var part in text.Split(','))
        {
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0 || !int.TryParse(part.AsSpan(eq + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int weight))
            {
                throw new UsageException($"--mix: '{part}' is not command=N or setpoint=N");
            }
            switch (part[..eq])
            {
                case "command":
                    commands = weight;
                    break;
                case "setpoint":
                    setpoints = weight;
                    break;
                default:
                    throw new UsageException($"--mix: '{part[..eq]}' is not command or setpoint (iec104)");
            }
        }
        if (commands + setpoints == 0)
        {
            throw new UsageException("--mix: command and setpoint cannot both be 0");
        }
        return (commands, setpoints);
    }

    private static (ushort Start, int Count) ParseRange(string option, string text)
    {
        var parts = text.Split(',');
        if (parts.Length != 2
            || !ushort.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out ushort start)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int count)
            || count < 1 || count > 65536 - start)
        {
            throw new UsageException($"{option}: '{text}' is not START,COUNT within 0..65535");
        }
        return (start, count);
    }
}
