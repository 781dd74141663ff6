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
        for (string? option = args.NextOption(); option is not null; option = args.NextOption())
        {
            switch (option)
            {
                case "--help" or "-h":
                    Console.WriteLine(Help);
                    return 0;
                case "--list":
                    foreach (string scenario in AttackSuite.ScenarioNames)
                    {
                        Console.WriteLine($"{scenario}: {string.Join(' ', AttackSuite.CasesOf(scenario))}");
                    }
                    return 0;
                case "--target":
                    target = args.EndPoint(option);
                    break;
                case "--case":
                    string value = args.Value(option);
                    if (!AttackSuite.CaseNames.Contains(value))
                    {
                        throw new UsageException($"attack: no case '{value}' (attack --list names them)");
                    }
                    cases.Add(value);
                    break;
                case "--scenario":
                    foreach (string name in args.Value(option).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    {
                        if (!AttackSuite.ScenarioNames.Contains(name))
                        {
                            throw new UsageException($"attack: no scenario '{name}' (valid: {string.Join(", ", AttackSuite.ScenarioNames)})");
                        }
                        scenarios.Add(name);
                    }
                    break;
                case "--unit":
                    unit = args.Int(option, 0, 255);
                    break;
                case "--timeout-ms":
                    timeoutMs = args.Int(option, 1, 60_000);
                    break;
                case "--source":
                    string text = args.Value(option);
                    if (!IPAddress.TryParse(text, out source))
                    {
                        throw new UsageException($"--source: '{text}' is not an IP address");
                    }
                    break;
                case "--source-count":
                    sourceCount = args.Int(option, 1, 4096);
                    break;
                case "--half-open":
                    halfOpen = args.Int(option, 1, 100_000);
                    break;
                case "--hold-ms":
                    holdMs = args.Int(option, 0, 600_000);
                    break;
                case "--flood":
                    flood = args.Int(option, 1, 100_000);
                    break;
                case "--slowloris":
                    slowloris = args.Int(option, 1, 10_000);
                    break;
                case "--slowloris-seconds":
                    slowSeconds = args.Int(option, 1, 3600);
                    break;
                case "--slowloris-interval-ms":
                    slowInterval = args.Int(option, 1, 60_000);
                    break;
                case "--burst":
                    burst = args.Int(option, 1, 65_536);
                    break;
                case "--sweep-max":
                    sweepMax = args.Int(option, 1, 65_536);
                    break;
                case "--value-from":
                    valueFrom = args.Int(option, 0, 65535);
                    break;
                case "--forbidden-address":
                    forbidden = args.Int(option, 0, 65535);
                    break;
                case "--value-window":
                    valueWindow = ParseWindow(option, args.Value(option));
                    break;
                case "--json":
                    json = true;
                    break;
                default:
                    throw new UsageException($"attack: unknown argument '{option}' (see attack --help)");
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
                    var result = await AttackSuite.RunCaseAsync(target, name, options, stop.Token);
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
                foreach (string scenario in scenarios.Count > 0 ? scenarios : AttackSuite.ScenarioNames)
                {
                    var result = await AttackSuite.RunScenarioAsync(target, scenario, options, stop.Token);
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
