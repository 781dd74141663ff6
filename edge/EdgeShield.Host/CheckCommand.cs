using System.Globalization;
using EdgeShield.Policy;
using EdgeShield.Policy.Replay;
using EdgeShield.Protocols.Capture;

namespace EdgeShield.Host;

internal static class CheckCommand
{
    private const string Help = """
        usage: edgeshield check --config FILE [--trust DIR] [--against CAPTURE [--baseline OLD] [--listener NAME] [--port N]]

        Validates a configuration without opening any socket or device. Every problem is printed
        as FILE:LINE:COL: error: message (or warning:), all of them in one pass: also shadowed rules,
        rules that can never match, and rules whose address ranges overlap an earlier rule's with
        other conditions.

          --trust DIR        also check FILE.sig against the public keys (*.pem) of DIR, as
                             'run --trust DIR' would at start (docs/SIGNING.md); the version
                             floor of the gateway's state is not checked here.
          --against CAPTURE  run the capture through the policy and show what it would newly deny:
                             with --baseline OLD, the requests OLD allowed that FILE denies (and the
                             reverse count); without, every request FILE denies. Also lists the rules
                             no request of the capture matched. A protocol: s7comm listener reads
                             S7 streams (COTP connects, jobs, userdata; default port 102); a
                             protocol: iec104 listener reads IEC 104 (client ASDUs, per rule and
                             type; default port 2404).

        Exit 0 when valid (warnings allowed), 2 when invalid, refused by --trust, or a file cannot be read.
        """;

    public static int Execute(string[] args)
    {
        var options = Options.Parse("check", args, ["--config", "--trust", "--against", "--baseline", "--listener", "--port"], []);
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
        // As run --trust would judge it at start: any refusal is exit 2, as run's.
        if (options.Get("--trust") is { } trust && PolicyCommand.VerifyFile("check", trust, path, printValid: true) != Cli.ExitOk)
        {
            Console.Error.WriteLine($"{path}: refused: 'run --trust {trust}' would not start it");
            return Cli.ExitUsage;
        }
        return options.Get("--against") is { } capture ? Against(options, path, capture) : Cli.ExitOk;
    }

    private static int Against(Options options, string path, string capture)
    {
        ushort? portOption = null;
        if (options.Get("--port") is { } portText)
        {
            if (!ushort.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) || parsed == 0)
            {
                Console.Error.WriteLine($"edgeshield check: --port {portText}: expected a TCP port 1-65535");
                return Cli.ExitUsage;
            }
            portOption = parsed;
        }
        string? listener = options.Get("--listener");
        if (!ReplayCommand.TryLoadPolicy("check", path, listener, out var listenerName, out var after, out var limits, printWarnings: false))
        {
            return Cli.ExitUsage;
        }
        CompiledPolicy? before = null;
        if (options.Get("--baseline") is { } baseline && !ReplayCommand.TryLoadPolicy("check", baseline, listener, out _, out before))
        {
            return Cli.ExitUsage;
        }
        bool s7 = after.Protocol == ListenerProtocol.S7comm;
        if (before is not null && before.Protocol != after.Protocol)
        {
            Console.Error.WriteLine($"edgeshield check: --baseline {options.Get("--baseline")}: its listener's policy speaks another protocol than {path}'s; compare policies of the same protocol");
            return Cli.ExitUsage;
        }
        if (!ReplayCommand.TryOpenCapture("check", capture, out var reader))
        {
            return Cli.ExitUsage;
        }
        ushort port = portOption ?? ReplayCommand.DefaultPort(after);
        var names = ReplayReport.UniqueRuleNames(after);
        var inv = CultureInfo.InvariantCulture;
        var output = Console.Out;
        CaptureError error;
        long requests, denied, newlyDenied, newlyAllowed;
        long[] allowedByRule;
        var lines = new List<string>();
        if (after.Protocol == ListenerProtocol.Iec104)
        {
            var diff = new Iec104PolicyDiff(after, before, port, limits: limits);
            error = diff.Run(reader);
            (requests, denied, newlyDenied, newlyAllowed, allowedByRule) = (diff.After.Requests, diff.After.Denied, diff.NewlyDenied, diff.NewlyAllowed, diff.After.AllowedByRule);
            foreach (var d in diff.FirstNewlyDenied)
            {
                lines.Add(string.Create(inv, $"  frame {d.FrameNumber,-7} {(d.Kind == Iec104DenialKind.Connection && d.Type >= 0 ? PolicyLearnFormat(d.Source) + " " + EdgeShield.Protocols.Iec104.Iec104Types.Name((byte)d.Type) + " (its connection was closed earlier by this policy)" : ReplayReport.DescribeDenied(d, names))}"));
            }
            if (diff.NewlyDenied > 0 || diff.NewlyAllowed > 0)
            {
                var perRule = new List<string>();
                for (int i = 0; i < names.Length; i++)
                {
                    long nd = diff.NewlyDeniedByRule![i], na = diff.NewlyAllowedByRule![i];
                    if (nd > 0 || na > 0)
                    {
                        perRule.Add(string.Create(inv, $"  rule '{names[i]}': newly denied {nd} (closest), newly allowed {na}"));
                    }
                }
                if (diff.NewlyDeniedByRule![^1] > 0)
                {
                    perRule.Add(string.Create(inv, $"  no rule / pending limit / connection closed: newly denied {diff.NewlyDeniedByRule[^1]}"));
                }
                for (int t = 0; t < 256; t++)
                {
                    if (diff.NewlyDeniedByType[t] > 0)
                    {
                        perRule.Add(string.Create(inv, $"  type {EdgeShield.Protocols.Iec104.Iec104Types.Name((byte)t)}: newly denied {diff.NewlyDeniedByType[t]}"));
                    }
                }
                lines.Add("per rule and type:");
                lines.AddRange(perRule);
            }
        }
        else if (s7)
        {
            var diff = new S7PolicyDiff(after, before, port);
            error = diff.Run(reader);
            (requests, denied, newlyDenied, newlyAllowed, allowedByRule) = (diff.After.Requests, diff.After.Denied, diff.NewlyDenied, diff.NewlyAllowed, diff.After.AllowedByRule);
            foreach (var d in diff.FirstNewlyDenied)
            {
                string rule = d.RuleIndex >= 0 ? names[d.RuleIndex] : "none";
                string why = d.Reason == DenyReason.None ? "out of spec: " + d.Violation : $"closest rule {rule}";
                lines.Add(string.Create(inv, $"  frame {d.FrameNumber,-7} {PolicyLearnFormat(d.Source)} connection {ReplayReport.ConnectionWord(d.Connection)} {S7PolicyReplay.FunctionWord(d.FunctionSlot)} ({why})"));
            }
        }
        else
        {
            var diff = new PolicyDiff(after, before, port);
            error = diff.Run(reader);
            (requests, denied, newlyDenied, newlyAllowed, allowedByRule) = (diff.After.Requests, diff.After.Denied, diff.NewlyDenied, diff.NewlyAllowed, diff.After.AllowedByRule);
            foreach (var d in diff.FirstNewlyDenied)
            {
                string rule = d.RuleIndex >= 0 ? names[d.RuleIndex] : "none";
                lines.Add(string.Create(inv, $"  frame {d.FrameNumber,-7} {PolicyLearnFormat(d.Source)} unit {d.UnitId} function {d.FunctionCode} → exception {d.ExceptionCode:X2} (closest rule {rule})"));
            }
        }
        output.WriteLine(string.Create(inv, $"against {capture} (listener {listenerName}, port {port}): {requests} requests, {denied} denied by {path}"));
        output.WriteLine(before is null
            ? string.Create(inv, $"newly denied (no --baseline: every denial): {newlyDenied}")
            : string.Create(inv, $"newly denied (allowed by {options.Get("--baseline")}): {newlyDenied}; newly allowed: {newlyAllowed}"));
        foreach (var line in lines)
        {
            output.WriteLine(line);
        }
        for (int i = 0; i < names.Length; i++)
        {
            if (allowedByRule[i] == 0)
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
