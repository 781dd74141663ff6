using System.Globalization;
using System.Net;
using System.Text.Json;

namespace EdgeShield.Simulators.Cli;

internal static class AttackCommand
{
    private const string Help = """
        usage: edgeshield-sim attack --target HOST:PORT [--scenario NAME[,NAME]] [--case NAME]... [options]
          --target HOST:PORT        the gateway (or PLC) to attack
          --scenario NAME[,NAME]    run these scenarios (default: all); --list names them and their cases
          --case NAME               run one case (repeatable) instead of scenarios
          --unit U                  unit id of the Modbus requests (default 1)
          --timeout-ms N            wait this long for an answer before "no answer" (default 1000)
          --source ADDR             connect from this local address (default: the system's choice)
          --source-count N          ... and from the N-1 addresses after it, round robin (e.g. 127.0.1.1 and 40:
                                    one attacker that looks like 40 hosts to connections-per-source)
          --half-open N             half-open connections (default 10000); --hold-ms N: held this long (default 5000)
          --flood N                 connections of the flood (default 300)
          --slowloris N             slowloris connections (default 20); --slowloris-seconds S (default 15),
                                    --slowloris-interval-ms N between bytes (default 1000)
          --burst N                 maximal FC 16 frames in the oversize burst (default 256)
          --value-window START,N    where the value sweeps write (default 100,20), values from --value-from V (default 1501)
          --forbidden-address A     where forbidden writes aim (default 4000)
          --sweep-max N             requests per address sweep (default 512; FC 3 scan 525)
          --json                    print one JSON object instead of lines
          --list                    print the scenarios and their cases
          --protocol P              modbus-tcp (default) or s7comm: the S7 suite (scenarios stop, download, upload,
                                    password, forced-outputs, oversize-pdu, fragments, bad-cotp; --list names the cases)
          --conn-type T             s7comm: the connection type of the attacker's COTP connects, pg (default), op or basic
          --guesses N               s7comm: passwords tried by password-guess (default 32)
          --partial N               s7comm: connections holding an unfinished PDU in never-completed-many (default 32)
          --protocol iec104         the IEC 60870-5-104 suite (scenarios command-flood, global-ca, forged-confirmations,
                                    bad-lengths, sq-number-lies, sequence-gaps, u-frames, before-startdt, unknown-types,
                                    monitor-types, select-before-operate; --list names the cases)
          --ca N                    iec104: the station's common address (default 1)
          --commands N              iec104: commands of command-flood and setpoint-flood (default 500)
          --interrogations N        iec104: interrogations of interrogation-flood (default 100)
        The Modbus options (--unit, --source, --half-open, --flood, --slowloris, --burst, --value-*, --forbidden-address,
        --sweep-max) do not apply to s7comm or iec104; for iec104 "exception N" is a negative confirmation with cause N
        (hex, as the other suites print codes; the detail says it in decimal).
        Prints one line per case (NAME: exception XX | connection closed | no answer | answered normally,
        with counts for multi-frame cases) and one line per scenario with the frames it sent.
        """;

    public static async Task<int> RunAsync(Args args)
    {
        IPEndPoint? target = null;
        var cases = new List<string>();
        var scenarios = new List<string>();
        int unit = 1, timeoutMs = 1000, sourceCount = 1;
        IPAddress? source = null;
        bool json = false;
        var defaults = new AttackOptions();
        int halfOpen = defaults.HalfOpenConnections, holdMs = defaults.HalfOpenHoldMs, flood = defaults.FloodConnections;
        int slowloris = defaults.SlowlorisConnections, slowSeconds = (int)defaults.SlowlorisDuration.TotalSeconds, slowInterval = defaults.SlowlorisByteIntervalMs;
        int burst = defaults.BurstFrames, sweepMax = defaults.SweepMaxRequests, valueFrom = defaults.ValueSweepFrom, forbidden = defaults.ForbiddenWriteAddress;
        (ushort Start, int Count) valueWindow = (defaults.ValueSweepStart, defaults.ValueSweepCount);
        string protocol = "modbus-tcp";
        bool list = false, modbusOnly = false;
        byte connType = 1;
        var s7Defaults = new S7AttackOptions();
        int guesses = s7Defaults.PasswordGuesses, partial = s7Defaults.PartialConnections;
        var iecDefaults = new Iec104AttackOptions();
        int ca = iecDefaults.CommonAddress, floodCommands = iecDefaults.FloodCommands, floodInterrogations = iecDefaults.FloodInterrogations;
        bool s7Only = false, iecOnly = false;
        for (string? option = args.NextOption(); option is not null; option = args.NextOption())
        {
            switch (option)
            {
                case "--help" or "-h":
                    Console.WriteLine(Help);
                    return 0;
                case "--list":
                    list = true;
                    break;
                case "--protocol":
                    protocol = args.Value(option) switch
                    {
                        var p when p is "modbus-tcp" or "s7comm" or "iec104" => p,
                        var other => throw new UsageException($"--protocol: '{other}' is not modbus-tcp, s7comm or iec104"),
                    };
                    break;
                case "--ca":
                    iecOnly = true;
                    ca = args.Int(option, 1, 65535);
                    break;
                case "--commands":
                    iecOnly = true;
                    floodCommands = args.Int(option, 1, 1_000_000);
                    break;
                case "--interrogations":
                    iecOnly = true;
                    floodInterrogations = args.Int(option, 1, 1_000_000);
                    break;
                case "--conn-type":
                    s7Only = true;
                    connType = args.Value(option) switch
                    {
                        "pg" => 1,
                        "op" => 2,
                        "basic" => 3,
                        var other => throw new UsageException($"--conn-type: '{other}' is not pg, op or basic"),
                    };
                    break;
                case "--guesses":
                    s7Only = true;
                    guesses = args.Int(option, 1, 100_000);
                    break;
                case "--partial":
                    s7Only = true;
                    partial = args.Int(option, 1, 10_000);
                    break;
                case "--target":
                    target = args.EndPoint(option);
                    break;
                case "--case":
                    cases.Add(args.Value(option));
                    break;
                case "--scenario":
                    scenarios.AddRange(args.Value(option).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
                    break;
                case "--unit":
                    modbusOnly = true;
                    unit = args.Int(option, 0, 255);
                    break;
                case "--timeout-ms":
                    timeoutMs = args.Int(option, 1, 60_000);
                    break;
                case "--source":
                    modbusOnly = true;
                    string text = args.Value(option);
                    if (!IPAddress.TryParse(text, out source))
                    {
                        throw new UsageException($"--source: '{text}' is not an IP address");
                    }
                    break;
                case "--source-count":
                    modbusOnly = true;
                    sourceCount = args.Int(option, 1, 4096);
                    break;
                case "--half-open":
                    modbusOnly = true;
                    halfOpen = args.Int(option, 1, 100_000);
                    break;
                case "--hold-ms":
                    modbusOnly = true;
                    holdMs = args.Int(option, 0, 600_000);
                    break;
                case "--flood":
                    modbusOnly = true;
                    flood = args.Int(option, 1, 100_000);
                    break;
                case "--slowloris":
                    modbusOnly = true;
                    slowloris = args.Int(option, 1, 10_000);
                    break;
                case "--slowloris-seconds":
                    modbusOnly = true;
                    slowSeconds = args.Int(option, 1, 3600);
                    break;
                case "--slowloris-interval-ms":
                    modbusOnly = true;
                    slowInterval = args.Int(option, 1, 60_000);
                    break;
                case "--burst":
                    modbusOnly = true;
                    burst = args.Int(option, 1, 65_536);
                    break;
                case "--sweep-max":
                    modbusOnly = true;
                    sweepMax = args.Int(option, 1, 65_536);
                    break;
                case "--value-from":
                    modbusOnly = true;
                    valueFrom = args.Int(option, 0, 65535);
                    break;
                case "--forbidden-address":
                    modbusOnly = true;
                    forbidden = args.Int(option, 0, 65535);
                    break;
                case "--value-window":
                    modbusOnly = true;
                    valueWindow = ParseWindow(option, args.Value(option));
                    break;
                case "--json":
                    json = true;
                    break;
                default:
                    throw new UsageException($"attack: unknown argument '{option}' (see attack --help)");
            }
        }
        bool s7 = protocol == "s7comm", iec = protocol == "iec104";
        IReadOnlyList<string> scenarioNames = s7 ? S7AttackSuite.ScenarioNames : iec ? Iec104AttackSuite.ScenarioNames : AttackSuite.ScenarioNames;
        IReadOnlyList<string> caseNames = s7 ? S7AttackSuite.CaseNames : iec ? Iec104AttackSuite.CaseNames : AttackSuite.CaseNames;
        if (list)
        {
            foreach (string scenario in scenarioNames)
            {
                Console.WriteLine($"{scenario}: {string.Join(' ', s7 ? S7AttackSuite.CasesOf(scenario) : iec ? Iec104AttackSuite.CasesOf(scenario) : AttackSuite.CasesOf(scenario))}");
            }
            return 0;
        }
        foreach (string name in cases)
        {
            if (!caseNames.Contains(name))
            {
                throw new UsageException($"attack: no {protocol} case '{name}' (attack --list names them)");
            }
        }
        foreach (string name in scenarios)
        {
            if (!scenarioNames.Contains(name))
            {
                throw new UsageException($"attack: no {protocol} scenario '{name}' (valid: {string.Join(", ", scenarioNames)})");
            }
        }
        if (target is null)
        {
            throw new UsageException("attack: --target HOST:PORT is required");
        }
        if (cases.Count > 0 && scenarios.Count > 0)
        {
            throw new UsageException("attack: give --case or --scenario, not both");
        }
        if (s7 && modbusOnly)
        {
            throw new UsageException("attack --protocol s7comm: a Modbus option was given (see attack --help)");
        }
        if (iec && (modbusOnly || s7Only))
        {
            throw new UsageException("attack --protocol iec104: a Modbus or S7 option was given (see attack --help)");
        }
        if (iecOnly && !iec)
        {
            throw new UsageException("attack: --ca, --commands and --interrogations are iec104 options (--protocol iec104)");
        }
        var iecOptions = new Iec104AttackOptions { AnswerTimeoutMs = timeoutMs, CommonAddress = (ushort)ca, FloodCommands = floodCommands, FloodInterrogations = floodInterrogations };
        var s7Options = new S7AttackOptions { AnswerTimeoutMs = timeoutMs, ConnectionType = connType, PasswordGuesses = guesses, PartialConnections = partial };
        var options = new AttackOptions
        {
            Unit = (byte)unit,
            AnswerTimeoutMs = timeoutMs,
            SourceAddresses = source is null ? null : Sources(source, sourceCount),
            HalfOpenConnections = halfOpen,
            HalfOpenHoldMs = holdMs,
            FloodConnections = flood,
            SlowlorisConnections = slowloris,
            SlowlorisDuration = TimeSpan.FromSeconds(slowSeconds),
            SlowlorisByteIntervalMs = slowInterval,
            BurstFrames = burst,
            SweepMaxRequests = sweepMax,
            ValueSweepFrom = (ushort)valueFrom,
            ValueSweepStart = valueWindow.Start,
            ValueSweepCount = valueWindow.Count,
            ForbiddenWriteAddress = (ushort)forbidden,
        };
        using var stop = Cli.StopOnSignal(out var signals);
        using (signals)
        {
            var results = new List<AttackScenarioResult>();
            if (cases.Count > 0)
            {
                var watch = System.Diagnostics.Stopwatch.StartNew();
                var caseResults = new List<AttackCaseResult>();
                foreach (string name in cases)
                {
                    var result = s7 ? await S7AttackSuite.RunCaseAsync(target, name, s7Options, stop.Token)
                        : iec ? await Iec104AttackSuite.RunCaseAsync(target, name, iecOptions, stop.Token)
                        : await AttackSuite.RunCaseAsync(target, name, options, stop.Token);
                    caseResults.Add(result);
                    if (!json)
                    {
                        Console.WriteLine(result);
                    }
                }
                results.Add(new AttackScenarioResult("cases", caseResults, watch.Elapsed));
            }
            else
            {
                foreach (string scenario in scenarios.Count > 0 ? scenarios : scenarioNames)
                {
                    var result = s7 ? await S7AttackSuite.RunScenarioAsync(target, scenario, s7Options, stop.Token)
                        : iec ? await Iec104AttackSuite.RunScenarioAsync(target, scenario, iecOptions, stop.Token)
                        : await AttackSuite.RunScenarioAsync(target, scenario, options, stop.Token);
                    results.Add(result);
                    if (!json)
                    {
                        foreach (var c in result.Cases)
                        {
                            Console.WriteLine(c);
                        }
                        Console.WriteLine(result);
                    }
                }
            }
            if (json)
            {
                WriteJson(results);
            }
            else
            {
                int frames = 0;
                foreach (var r in results)
                {
                    frames += r.FramesSent;
                }
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"total: frames sent {frames}"));
            }
        }
        return 0;
    }

    private static IPAddress[] Sources(IPAddress first, int count)
    {
        var sources = new IPAddress[count];
        byte[] bytes = first.GetAddressBytes();
        for (int i = 0; i < count; i++)
        {
            sources[i] = new IPAddress(bytes);
            for (int b = bytes.Length - 1; b >= 0 && ++bytes[b] == 0; b--)
            {
            }
        }
        return sources;
    }

    private static (ushort Start, int Count) ParseWindow(string option, string text)
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

    private static void WriteJson(List<AttackScenarioResult> results)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var w = new Utf8JsonWriter(stdout))
        {
            int frames = 0;
            w.WriteStartObject();
            w.WriteStartArray("scenarios");
            foreach (var s in results)
            {
                frames += s.FramesSent;
                w.WriteStartObject();
                w.WriteString("name", s.Name);
                w.WriteNumber("frames_sent", s.FramesSent);
                WriteCounts(w, s.Connections, s.Normal, s.Exceptions, s.Closed, s.NoAnswer, s.ConnectFailed, s.Mismatched);
                w.WriteNumber("seconds", Math.Round(s.Elapsed.TotalSeconds, 2));
                w.WriteStartArray("cases");
                foreach (var c in s.Cases)
                {
                    w.WriteStartObject();
                    w.WriteString("name", c.Name);
                    w.WriteString("outcome", c.ToString());
                    if (c.Detail is not null)
                    {
                        w.WriteString("detail", c.Detail);
                    }
                    w.WriteNumber("frames_sent", c.Sent);
                    WriteCounts(w, c.Connections, c.Normal, c.Exceptions, c.Closed, c.NoAnswer, c.ConnectFailed, c.Mismatched);
                    w.WriteBoolean("stopped_at_bound", c.Truncated);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNumber("frames_sent", frames);
            w.WriteEndObject();
        }
        stdout.WriteByte((byte)'\n');

        static void WriteCounts(Utf8JsonWriter w, int connections, int normal, int exceptions, int closed, int noAnswer, int connectFailed, int mismatched)
        {
            w.WriteNumber("connections", connections);
            w.WriteNumber("normal", normal);
            w.WriteNumber("exceptions", exceptions);
            w.WriteNumber("closed", closed);
            w.WriteNumber("no_answer", noAnswer);
            w.WriteNumber("connect_failed", connectFailed);
            w.WriteNumber("mismatched", mismatched);
        }
    }
}
