using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using EdgeShield.Gateway;
using EdgeShield.Policy;
using EdgeShield.Policy.Learn;
using EdgeShield.Protocols.Capture;

namespace EdgeShield.Host;

/// <summary><c>edgeshield learn</c>: a draft allow-list from captures, or from live traffic in monitor mode.</summary>
internal static class LearnCommand
{
    private const string Help = """
        usage: edgeshield learn --pcap CAPTURE [--pcap CAPTURE …] --out FILE [--port N]
               edgeshield learn --listen --config FILE --seconds N --out FILE

        Drafts the smallest allow-list that allows every Modbus request in the captures: per source,
        unit and function, with the touched addresses merged into ranges and written register values
        bounded by what was written; each rule commented with counts and first/last seen. The draft
        is in monitor mode: review it, replay the captures through it, then switch to enforce.
        What no rule can allow (out-of-spec and malformed requests) is listed in comments.
        Captures of S7comm alone (port 102) give a protocol: s7comm draft: per source and connection
        type, the functions, PI services, and the areas, data blocks and byte spans read and written.
        Captures of IEC 104 alone (port 2404) give a protocol: iec104 draft: per source, the types,
        common addresses, IOA ranges, set-point value bounds, and select-before-operate where every
        execute followed a select the station confirmed.

          --port N   the server port of the streams (default 502 for Modbus, 102 for S7comm, 2404 for IEC 104)
          --out FILE where to write the draft YAML ('-' for stdout)

        --listen runs the listeners of --config FILE for N seconds (or until SIGINT/SIGTERM) with every
        policy in monitor mode: everything is forwarded, what the policy would refuse is audited (JSON
        lines on stdout, or stderr with --out -), and every request is learned. The draft keeps the
        config's listeners, the Modbus ones with the learned policy, the s7comm ones with learned-s7,
        the iec104 ones with learned-iec104.

        Exit 0; 2 when a capture or the config cannot be read; 1 when a listener cannot be bound.
        """;

    public static async Task<int> ExecuteAsync(string[] args)
    {
        var captures = new List<string>();
        var rest = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--pcap" && i + 1 < args.Length)
            {
                captures.Add(args[++i]);
            }
            else
            {
                rest.Add(args[i]);
            }
        }
        var options = Options.Parse("learn", [.. rest], ["--out", "--port", "--config", "--seconds"], ["--listen"]);
        if (options is null)
        {
            return Cli.ExitUsage;
        }
        if (options.Help)
        {
            Console.Out.Write(Help);
            return Cli.ExitOk;
        }
        string? output = options.Get("--out");
        if (options.Has("--listen"))
        {
            return captures.Count > 0
                ? Usage("--listen and --pcap exclude each other")
                : await ListenAsync(options, output);
        }
        if (captures.Count == 0 || output is null)
        {
            Console.Error.WriteLine("edgeshield learn: at least one --pcap CAPTURE and --out FILE are required");
            return Cli.ExitUsage;
        }
        ushort? portOption = null;
        if (options.Get("--port") is { } portText)
        {
            if (!ushort.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) || parsed == 0)
            {
                Console.Error.WriteLine($"edgeshield learn: --port {portText}: expected a TCP port 1-65535");
                return Cli.ExitUsage;
            }
            portOption = parsed;
        }

        // Each capture is read for Modbus (port 502) and for S7comm (port 102), or both on --port N; the draft is
        // of the protocol seen (Modbus when both are).
        ushort modbusPort = portOption ?? 502;
        ushort s7Port = portOption ?? 102;
        ushort iec104Port = portOption ?? 2404;
        var learner = new PolicyLearner();
        var s7Learner = new S7PolicyLearner();
        var iec104Learner = new Iec104CaptureLearner();
        foreach (var capture in captures)
        {
            if (!ReplayCommand.TryOpenCapture("learn", capture, out var reader))
            {
                return Cli.ExitUsage;
            }
            var error = new ModbusCaptureScanner(learner, modbusPort).Scan(reader);
            reader.Reset();
            new S7CaptureScanner(s7Learner, s7Port).Scan(reader);
            reader.Reset();
            new Iec104CaptureScanner(iec104Learner, iec104Port).Scan(reader);
            if (error != CaptureError.None)
            {
                Console.Error.WriteLine($"edgeshield learn: {capture}: reading stopped after frame {reader.FrameCount}: {ReplayCommand.Describe(error)}");
            }
        }
        bool s7 = s7Learner.Requests > 0 && learner.Requests == 0;
        bool iec104 = iec104Learner.Requests > 0 && learner.Requests == 0 && s7Learner.Requests == 0;
        if (s7Learner.Requests > 0 && !s7)
        {
            Console.Error.WriteLine($"edgeshield learn: S7comm traffic was seen too ({s7Learner.Requests} requests on port {s7Port}); this draft is for Modbus: learn the S7 captures on their own for an s7comm draft");
        }
        if (iec104Learner.Requests > 0 && !iec104)
        {
            Console.Error.WriteLine($"edgeshield learn: IEC 104 traffic was seen too ({iec104Learner.Requests} ASDUs on port {iec104Port}); this draft is for {(s7 ? "S7comm" : "Modbus")}: learn the IEC 104 captures on their own for an iec104 draft");
        }
        void Write(TextWriter writer)
        {
            if (iec104)
            {
                iec104Learner.WriteYaml(writer, captures);
            }
            else if (s7)
            {
                s7Learner.WriteYaml(writer, captures, s7Port);
            }
            else
            {
                learner.WriteYaml(writer, captures, modbusPort);
            }
        }
        if (output == "-")
        {
            Write(Console.Out);
        }
        else
        {
            using (var writer = new StreamWriter(output, append: false, new System.Text.UTF8Encoding(false)))
            {
                Write(writer);
            }
            Console.Error.WriteLine($"edgeshield learn: {(iec104 ? iec104Learner.Requests : s7 ? s7Learner.Requests : learner.Requests)} {(iec104 ? "IEC 104" : s7 ? "S7comm" : "Modbus")} requests → {output}");
        }
        return Cli.ExitOk;
    }

    private static int Usage(string message)
    {
        Console.Error.WriteLine($"edgeshield learn: {message}");
        return Cli.ExitUsage;
    }

    private static async Task<int> ListenAsync(Options options, string? output)
    {
        string? path = options.Get("--config");
        string? secondsText = options.Get("--seconds");
        if (path is null || secondsText is null || output is null)
        {
            return Usage("--listen needs --config FILE, --seconds N and --out FILE");
        }
        if (!int.TryParse(secondsText, NumberStyles.None, CultureInfo.InvariantCulture, out int seconds) || seconds < 1)
        {
            return Usage($"--seconds {secondsText}: expected a whole number of seconds, 1 or more");
        }
        var loaded = ConfigLoader.Load(path, new MaintenanceState());
        foreach (var diagnostic in loaded.Diagnostics)
        {
            Console.Error.WriteLine(diagnostic.ToString());
        }
        if (loaded.HasErrors || loaded.Config is null)
        {
            return Usage($"{path} is invalid; nothing started");
        }
        if (loaded.Config.Listeners.Count == 0)
        {
            return Usage($"{path} has no listeners to learn on");
        }
        var config = loaded.Config.InMonitorMode();

        // Would-deny events are audited as in `run`; stdout is the draft's when --out is '-'.
        await using var audit = new AuditLog(output == "-" ? Console.OpenStandardError() : Console.OpenStandardOutput());
        var learner = new LiveLearner();
        EdgeGateway gateway;
        try
        {
            gateway = await EdgeGateway.StartAsync(config, audit, learner);
        }
        catch (SocketException e)
        {
            Console.Error.WriteLine($"edgeshield learn: cannot listen: {e.Message}");
            return Cli.ExitFault;
        }
        catch (Exception e) when (e is NotSupportedException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"edgeshield learn: {e.Message}");
            return Cli.ExitFault;
        }
        var started = DateTime.UtcNow;
        await using (gateway)
        {
            learner.Attach(gateway.Listeners);
            foreach (var listener in gateway.Listeners)
            {
                Console.Error.WriteLine($"edgeshield learn: listener {listener.Config.Name} on {listener.LocalEndPoint} -> {listener.Config.Upstream} (policy {listener.Config.PolicyName} in monitor mode), learning for {seconds} s");
            }
            audit.Write(AuditEvent.Service("learning", $"config {path} sha256 {config.Hash}, every policy in monitor mode, for {seconds} s"));
            var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
            {
                context.Cancel = true;
                stop.TrySetResult();
            });
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
            {
                context.Cancel = true;
                stop.TrySetResult();
            });
            await Task.WhenAny(stop.Task, Task.Delay(TimeSpan.FromSeconds(seconds)));
            audit.Write(AuditEvent.Service("stopping", "learning done; closing listeners and connections"));
        }

        string description = string.Create(CultureInfo.InvariantCulture,
            $"live traffic on the listeners of {path}, {started:yyyy-MM-dd'T'HH:mm:ss'Z'} for {(DateTime.UtcNow - started).TotalSeconds:0} s");
        if (output == "-")
        {
            learner.WriteYaml(Console.Out, description, config);
        }
        else
        {
            using var writer = new StreamWriter(output, append: false, new System.Text.UTF8Encoding(false));
            learner.WriteYaml(writer, description, config);
            Console.Error.WriteLine($"edgeshield learn: {learner.Learner.Requests + learner.S7Learner.Requests + learner.Iec104Learner.Requests} requests → {output}");
        }
        return Cli.ExitOk;
    }
}
