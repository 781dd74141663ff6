using System.Globalization;
using System.Text.Json;
using EdgeShield.Policy;
using EdgeShield.Policy.Replay;
using EdgeShield.Protocols.Capture;

namespace EdgeShield.Host;

/// <summary><c>edgeshield replay</c>: a capture through a listener's policy, offline.</summary>
internal static class ReplayCommand
{
    private const string Help = """
        usage: edgeshield replay --config FILE --pcap CAPTURE [--listener NAME] [--port N] [--json]

        Runs every request of a capture (pcap or pcapng; Ethernet, Linux cooked, raw IP; IPv4 and
        IPv6; TCP streams reassembled) through the compiled policy of a listener, exactly as the
        gateway decides it, with the capture's timestamps for rate rules: Modbus TCP requests for a
        Modbus policy; for a protocol: s7comm policy, COTP connects and the reassembled S7 jobs,
        userdata and S7comm-Plus PDUs; for a protocol: iec104 policy, every ASDU the client sends
        (its connection's source judged first, select-before-operate armed by the station's actcon
        in the capture) and the station's answers matched to them. Prints counts per verdict, rule,
        unit (Modbus) and function (IEC 104: type, cause, common address), the first denied frames
        and the malformed frames with their frame numbers (as Wireshark numbers them).

          --listener NAME   the listener whose policy applies (default: the first listener)
          --port N          the server port that marks the streams and their direction
                            (default 502 for Modbus, 102 for S7comm, 2404 for IEC 104)
          --json            print only {"frames","requests","responses","malformed","allowed","denied",
                            "by_function":{…},"by_rule":{…}} (IEC 104: by type name, and more keys:
                            by_cause, by_ca, denied_by_cause, responses_by_*, connections, …)

        Exit 0; 2 when the config or the capture cannot be read.
        """;

    public static int Execute(string[] args)
    {
        var options = Options.Parse("replay", args, ["--config", "--pcap", "--listener", "--port"], ["--json"]);
        if (options is null)
        {
            return Cli.ExitUsage;
        }
        if (options.Help)
        {
            Console.Out.Write(Help);
            return Cli.ExitOk;
        }
        string? configPath = options.Get("--config");
        string? capturePath = options.Get("--pcap");
        if (configPath is null || capturePath is null)
        {
            Console.Error.WriteLine("edgeshield replay: --config FILE and --pcap CAPTURE are required");
            return Cli.ExitUsage;
        }
        ushort? portOption = null;
        if (options.Get("--port") is { } portText)
        {
            if (!ushort.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) || parsed == 0)
            {
                Console.Error.WriteLine($"edgeshield replay: --port {portText}: expected a TCP port 1-65535");
                return Cli.ExitUsage;
            }
            portOption = parsed;
        }
        if (!TryLoadPolicy("replay", configPath, options.Get("--listener"), out var listenerName, out var policy, out var limits))
        {
            return Cli.ExitUsage;
        }
        if (!TryOpenCapture("replay", capturePath, out var reader))
        {
            return Cli.ExitUsage;
        }

        ushort port = portOption ?? DefaultPort(policy);
        CaptureError error;
        bool json = options.Has("--json");
        using var stdout = json ? Console.OpenStandardOutput() : Stream.Null;
        if (policy.Protocol == ListenerProtocol.Iec104)
        {
            var replay = new Iec104PolicyReplay(policy, port, limits: limits);
            error = replay.Run(reader);
            if (json)
            {
                using var writer = new Utf8JsonWriter(stdout);
                ReplayReport.WriteJson(writer, replay);
            }
            else
            {
                ReplayReport.WriteText(Console.Out, replay, listenerName);
            }
        }
        else if (policy.Protocol == ListenerProtocol.S7comm)
        {
            var replay = new S7PolicyReplay(policy, port);
            error = replay.Run(reader);
            if (json)
            {
                using var writer = new Utf8JsonWriter(stdout);
                ReplayReport.WriteJson(writer, replay);
            }
            else
            {
                ReplayReport.WriteText(Console.Out, replay, listenerName);
            }
        }
        else
        {
            var replay = new PolicyReplay(policy, port);
            error = replay.Run(reader);
            if (json)
            {
                using var writer = new Utf8JsonWriter(stdout);
                ReplayReport.WriteJson(writer, replay);
            }
            else
            {
                ReplayReport.WriteText(Console.Out, replay, listenerName);
            }
        }
        if (json)
        {
            stdout.WriteByte((byte)'\n');
        }
        if (error != CaptureError.None)
        {
            Console.Error.WriteLine($"edgeshield replay: {capturePath}: reading stopped at byte {reader.ErrorOffset} after frame {reader.FrameCount}: {Describe(error)}; counts cover the frames before it");
        }
        // Nothing readable at all is unreadable input; a capture cut short still reports what it holds.
        return error != CaptureError.None && reader.FrameCount == 0 ? Cli.ExitUsage : Cli.ExitOk;
    }

    /// <summary>The server port of a policy's protocol when --port is not given: 102 for S7comm, 2404 for IEC 104, else 502.</summary>
    internal static ushort DefaultPort(CompiledPolicy policy) => ListenerProtocols.DefaultPort(policy.Protocol);

    /// <summary>Loads the config and picks the listener's compiled policy; prints why not.</summary>
    internal static bool TryLoadPolicy(string command, string configPath, string? listener, out string listenerName, out CompiledPolicy policy, bool printWarnings = true) =>
        TryLoadPolicy(command, configPath, listener, out listenerName, out policy, out _, printWarnings);

    /// <summary>Loads the config and picks the listener's compiled policy and limits; prints why not.</summary>
    internal static bool TryLoadPolicy(string command, string configPath, string? listener, out string listenerName, out CompiledPolicy policy, out ListenerLimits limits, bool printWarnings = true)
    {
        listenerName = "";
        policy = null!;
        limits = new ListenerLimits();
        var result = ConfigLoader.Load(configPath);
        foreach (var diagnostic in result.Diagnostics)
        {
            if (printWarnings || diagnostic.Severity == DiagnosticSeverity.Error)
            {
                Console.Error.WriteLine(diagnostic.ToString());
            }
        }
        if (result.HasErrors || result.Config is null)
        {
            Console.Error.WriteLine($"edgeshield {command}: {configPath}: invalid configuration");
            return false;
        }
        var config = result.Config;
        ListenerConfig? chosen = null;
        foreach (var l in config.Listeners)
        {
            if (listener is null || l.Name == listener)
            {
                chosen = l;
                break;
            }
        }
        if (chosen is null)
        {
            Console.Error.WriteLine(listener is null
                ? $"edgeshield {command}: {configPath} has no listener"
                : $"edgeshield {command}: {configPath} has no listener '{listener}'; listeners are {string.Join(", ", config.Listeners.Select(l => l.Name))}");
            return false;
        }
        listenerName = chosen.Name;
        policy = config.Policies[chosen.PolicyName];
        limits = chosen.Limits;
        return true;
    }

    /// <summary>Reads a capture file into memory and opens it; prints why not.</summary>
    internal static bool TryOpenCapture(string command, string path, out CaptureReader reader)
    {
        reader = null!;
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            Console.Error.WriteLine($"edgeshield {command}: {path}: cannot read the file: {e.Message}");
            return false;
        }
        if (!CaptureReader.TryOpen(bytes, out var opened, out var error) || opened is null)
        {
            Console.Error.WriteLine($"edgeshield {command}: {path}: {Describe(error)}");
            return false;
        }
        reader = opened;
        return true;
    }

    internal static string Describe(CaptureError error) => error switch
    {
        CaptureError.NotACapture => "not a pcap or pcapng file (no pcap magic number or pcapng section header)",
        CaptureError.Truncated => "the file ends inside a record (truncated capture)",
        CaptureError.BadBlock => "a pcapng block with an impossible length or body",
        CaptureError.UnknownInterface => "a pcapng packet of an interface that no interface description block declared",
        _ => "unreadable",
    };
}
