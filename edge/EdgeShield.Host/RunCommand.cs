using EdgeShield.Gateway;
using EdgeShield.Policy;
using EdgeShield.Service;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;

namespace EdgeShield.Host;

internal static class RunCommand
{
    private const string Help = """
        usage: edgeshield run --config FILE [--state DIR]

        Runs the gateway: every listener of FILE, each enforcing its policy. Audit events are
        written to stdout as JSON lines (one per event); messages for people go to stderr.
        SIGTERM or SIGINT stops it cleanly; SIGHUP or a change to FILE reloads it (a bad file keeps the
        running policy; connections stay open).
        --state DIR keeps what outlives a run (default /var/lib/edgeshield): the audit key audit-key.pem
        (made with mode 0600 at first start, public key beside it) and, unless audit.journal.path says
        otherwise, the audit journal in DIR/audit.
        Exit 0 on a clean stop, 2 when the configuration is invalid (nothing is started: fail closed),
        1 on a fault such as an address that cannot be bound.
        """;

    public static async Task<int> ExecuteAsync(string[] args)
    {
        var options = Options.Parse("run", args, ["--config", "--state"], []);
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
            Console.Error.WriteLine("edgeshield run: --config FILE is required");
            return Cli.ExitUsage;
        }
        // Under systemd (Type=notify): READY=1 only once every listener is bound (the host's systemd
        // lifetime, GatewayHost); a configuration that stops the start is said as STATUS= and ERRNO=.
        ISystemdNotifier systemd = new SystemdNotifier();
        // One maintenance state for the life of the process: a reload keeps the key's arming.
        var maintenance = new MaintenanceState();
        var loaded = ConfigLoader.Load(path, maintenance);
        foreach (var diagnostic in loaded.Diagnostics)
        {
            Console.Error.WriteLine(diagnostic.ToString());
        }
        if (loaded.HasErrors || loaded.Config is null)
        {
            Console.Error.WriteLine($"edgeshield run: {path} is invalid; nothing started");
            SystemdNotify.TryNotify(systemd, $"STATUS=invalid configuration, nothing started: {FirstError(loaded)}\nERRNO=22");
            return Cli.ExitUsage;
        }

        // The audit lines carry journal priorities only when stdout is the journal.
        var run = new GatewayRunOptions(path, loaded.Config, maintenance, Console.OpenStandardOutput(), Journal.IsStdout())
        {
            StateDirectory = options.Get("--state") ?? GatewayRunOptions.DefaultStateDirectory,
        };
        var host = GatewayHost.Build(run);
        // Asynchronously: the gateway's services close sockets and flush the audit log on the way out.
        await using var disposeHost = (IAsyncDisposable)host;
        try
        {
            await host.StartAsync();
        }
        catch (GatewayStartException e)
        {
            Console.Error.WriteLine($"edgeshield run: {e.Message}");
            SystemdNotify.TryNotify(systemd, $"STATUS={e.Status}\nERRNO={e.Errno}");
            return e.ExitCode;
        }
        // Until SIGTERM or SIGINT; then the hosted services stop in the reverse order of their start.
        await host.WaitForShutdownAsync();
        return Cli.ExitOk;
    }

    private static string FirstError(ConfigLoadResult loaded) =>
        loaded.Diagnostics.FirstOrDefault(d => d.Severity == DiagnosticSeverity.Error).ToString();
}
