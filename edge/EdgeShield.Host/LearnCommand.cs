using System.Globalization;
using EdgeShield.Policy.Learn;
using EdgeShield.Protocols.Capture;

namespace EdgeShield.Host;

/// <summary><c>edgeshield learn</c>: a draft allow-list from captures.</summary>
internal static class LearnCommand
{
    private const string Help = """
        usage: edgeshield learn --pcap CAPTURE [--pcap CAPTURE …] --out FILE [--port N]

        Drafts the smallest allow-list that allows every Modbus request in the captures: per source,
        unit and function, with the touched addresses merged into ranges and written register values
        bounded by what was written; each rule commented with counts and first/last seen. The draft
        is in monitor mode: review it, replay the captures through it, then switch to enforce.
        What no rule can allow (out-of-spec and malformed requests) is listed in comments.

          --port N   the server port of the Modbus streams (default 502)
          --out FILE where to write the draft YAML ('-' for stdout)

        Exit 0; 2 when a capture cannot be read.
        """;

    public static int Execute(string[] args)
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
        var options = Options.Parse("learn", [.. rest], ["--out", "--port"], []);
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
        if (captures.Count == 0 || output is null)
        {
            Console.Error.WriteLine("edgeshield learn: at least one --pcap CAPTURE and --out FILE are required");
            return Cli.ExitUsage;
        }
        ushort port = 502;
        if (options.Get("--port") is { } portText && !ushort.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port))
        {
            Console.Error.WriteLine($"edgeshield learn: --port {portText}: expected a TCP port 1-65535");
            return Cli.ExitUsage;
        }

        var learner = new PolicyLearner();
        foreach (var capture in captures)
        {
            if (!ReplayCommand.TryOpenCapture("learn", capture, out var reader))
            {
                return Cli.ExitUsage;
            }
            var scanner = new ModbusCaptureScanner(learner, port);
            var error = scanner.Scan(reader);
            if (error != CaptureError.None)
            {
                Console.Error.WriteLine($"edgeshield learn: {capture}: reading stopped after frame {reader.FrameCount}: {ReplayCommand.Describe(error)}");
            }
        }
        if (output == "-")
        {
            learner.WriteYaml(Console.Out, captures, port);
        }
        else
        {
            using var writer = new StreamWriter(output, append: false, new System.Text.UTF8Encoding(false));
            learner.WriteYaml(writer, captures, port);
            Console.Error.WriteLine($"edgeshield learn: {learner.Requests} requests → {output}");
        }
        return Cli.ExitOk;
    }
}
