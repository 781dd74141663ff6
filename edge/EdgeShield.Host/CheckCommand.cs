using EdgeShield.Policy;

namespace EdgeShield.Host;

internal static class CheckCommand
{
    private const string Help = """
        usage: edgeshield check --config FILE

        Validates a configuration without opening any socket or device. Every problem is printed
        as FILE:LINE:COL: error: message (or warning:), all of them in one pass.
        Exit 0 when valid (warnings allowed), 2 when invalid.
        """;

    public static int Execute(string[] args)
    {
        var options = Options.Parse("check", args, ["--config"], []);
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
        Console.Out.WriteLine($"{path}: valid ({config.Listeners.Count} listener{(config.Listeners.Count == 1 ? "" : "s")}, {config.Policies.Count} polic{(config.Policies.Count == 1 ? "y" : "ies")})");
        return Cli.ExitOk;
    }
}
