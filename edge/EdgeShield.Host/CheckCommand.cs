using System.Globalization;
using EdgeShield.Policy;
using EdgeShield.Policy.Replay;
using EdgeShield.Protocols.Capture;

namespace EdgeShield.Host;

internal static class CheckCommand
{
    private const string Help = """
        usage: edgeshield check --config FILE [--against CAPTURE [--baseline OLD] [--listener NAME] [--port N]]

        Validates a configuration without opening any socket or device. Every problem is printed
        as FILE:LINE:COL: error: message (or warning:), all of them in one pass: also shadowed rules,
        rules that can never match, and rules whose address ranges overlap an earlier rule's with
        other conditions.

          --against CAPTURE  run the capture through the policy and show what it would newly deny:
                             with --baseline OLD, the requests OLD allowed that FILE denies (and the
                             reverse count); without, every request FILE denies. Also lists the rules
                             no request of the capture matched.

        Exit 0 when valid (warnings allowed), 2 when invalid or a file cannot be read.
        """;

    public static int Execute(string[] args)
    {
        var options = Options.Parse("check", args, ["--config", "--against", "--baseline", "--listener", "--port"], []);
        if (options is null)
        {
            return Cli.ExitUsage;
        }
        if (options.Help)
        {
            Console.Out.Write(Help);
            return Cli.ExitOk;
        }
        string? path = options.Get("--config");
        if (path is null)
        {
            Console.Error.WriteLine("edgeshield check: --config FILE is required");
            return Cli.ExitUsage;
        }
        var result = ConfigLoader.Load(path);
        foreach (var diagnostic in result.Diagnostics)
        {
            Console.Error.WriteLine(diagnostic.ToString());
        }
        if (result.HasErrors || result.Config is null)
        {
            int errors = result.Diagnostics.Count(d => d.Severity == DiagnosticSeverity.Error);
            Console.Error.WriteLine($"{path}: invalid ({errors} error{(errors == 1 ? "" : "s")})");
            return Cli.ExitUsage;
        }
        var config = result.Config;
        foreach (var finding in PolicyAnalysis.Analyze(config))
        {
            Console.Error.WriteLine(finding.ToString());
        }
        Console.Out.WriteLine($"{path}: valid ({config.Listeners.Count} listener{(config.Listeners.Count == 1 ? "" : "s")}, {config.Policies.Count} polic{(config.Policies.Count == 1 ? "y" : "ies")})");
        return options.Get("--against") is { } capture ? Against(options, path, capture) : Cli.ExitOk;
    }

    private static int Against(Options options, string path, string capture)
    {
        ushort port = 502;
        if (options.Get("--port") is { } portText && !ushort.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port))
        {
            Console.Error.WriteLine($"edgeshield check: --port {portText}: expected a TCP port 1-65535");
            return Cli.ExitUsage;
        }
        string? listener = options.Get("--listener");
        if (!ReplayCommand.TryLoadPolicy("check", path, listener, out var listenerName, out var after, printWarnings: false))
        {
            return Cli.ExitUsage;
        }
        CompiledPolicy? before = null;
        if (options.Get("--baseline") is { } baseline && !ReplayCommand.TryLoadPolicy("check", baseline, listener, out _, out before))
        {
            return Cli.ExitUsage;
        }
        if (!ReplayCommand.TryOpenCapture("check", capture, out var reader))
        {
            return Cli.ExitUsage;
        }
        var diff = new PolicyDiff(after, before, port);
        var error = diff.Run(reader);
        var names = ReplayReport.UniqueRuleNames(after);
        var inv = CultureInfo.InvariantCulture;
        var output = Console.Out;
        output.WriteLine(string.Create(inv, $"against {capture} (listener {listenerName}, port {port}): {diff.After.Requests} requests, {diff.After.Denied} denied by {path}"));
        output.WriteLine(before is null
            ? string.Create(inv, $"newly denied (no --baseline: every denial): {diff.NewlyDenied}")
            : string.Create(inv, $"newly denied (allowed by {options.Get("--baseline")}): {diff.NewlyDenied}; newly allowed: {diff.NewlyAllowed}"));
        foreach (var d in diff.FirstNewlyDenied)
        {
            string rule = d.RuleIndex >= 0 ? names[d.RuleIndex] : "none";
            output.WriteLine(string.Create(inv, $"  frame {d.FrameNumber,-7} {PolicyLearnFormat(d.Source)} unit {d.UnitId} function {d.FunctionCode} → exception {d.ExceptionCode:X2} (closest rule {rule})"));
        }
        for (int i = 0; i < names.Length; i++)
        {
            if (diff.After.AllowedByRule[i] == 0)
            {
                output.WriteLine($"rule '{names[i]}' matched no request of the capture");
            }
        }
        if (error != CaptureError.None)
        {
            Console.Error.WriteLine($"edgeshield check: {capture}: reading stopped after frame {reader.FrameCount}: {ReplayCommand.Describe(error)}");
        }
        return Cli.ExitOk;
    }

    private static string PolicyLearnFormat(UInt128 address) => EdgeShield.Policy.Learn.PolicyLearner.FormatAddress(address);
}
