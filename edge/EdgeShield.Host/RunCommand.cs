using EdgeShield.Gateway;
using EdgeShield.Policy;
using EdgeShield.Service;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;

namespace EdgeShield.Host;

internal static class RunCommand
{
    private const string Help = """
        usage: edgeshield run --config FILE [--trust DIR] [--state DIR]

        Runs the gateway: every listener of FILE, each enforcing its policy. Audit events are
        written to stdout as JSON lines (one per event); messages for people go to stderr.
        SIGTERM or SIGINT stops it cleanly; SIGHUP or a change to FILE reloads it (a bad file keeps the
        running policy; connections stay open).

          --trust DIR   signed configs only (docs/SIGNING.md): at start and at every reload, FILE.sig
                        must verify with a public key (*.pem) of DIR over exactly the bytes loaded, and
                        FILE's version: must not be lower than the last one accepted. A reload waits a
                        few seconds for a FILE.sig that matches the new file. Without --trust every load
                        is audited as unsigned-config.
          --state DIR   what outlives a run (default /var/lib/edgeshield; created when missing):
                        config-version, the last accepted version; the audit key audit-key.pem (made
                        with mode 0600 at first start, public key beside it) and, unless
                        audit.journal.path says otherwise, the audit journal in DIR/audit.

        Exit 0 on a clean stop, 2 when the configuration is invalid or refused (nothing is started:
        fail closed), 1 on a fault such as an address that cannot be bound.
        """;

    public static async Task<int> ExecuteAsync(string[] args)
    {
        var options = Options.Parse("run", args, ["--config", "--trust", "--state"], []);
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
        // SIGHUP's default action ends the process. Until the reload service has its own handler (after the listeners
        // are up) a SIGHUP is caught here and honoured once the gateway runs: a reload sent right after a start (a
        // supervisor other than systemd, a script) never stops the gateway.
        int hupDuringStart = 0;
        using var startHup = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true;
            Volatile.Write(ref hupDuringStart, 1);
        });
        // Under systemd (Type=notify): READY=1 only once every listener is bound (the host's systemd
        // lifetime, GatewayHost); a configuration that stops the start is said as STATUS= and ERRNO=.
        ISystemdNotifier systemd = new SystemdNotifier();
        // One maintenance state for the life of the process: a reload keeps the key's arming.
        var maintenance = new MaintenanceState();
        // One read: the bytes parsed are the bytes whose signature is checked.
        var loaded = ConfigLoader.TryReadFile(path, out var bytes, out _)
            ? ConfigLoader.LoadBytes(bytes, path, maintenance)
            : ConfigLoader.Load(path, maintenance);
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
        var config = loaded.Config;
        // Where what outlives a run is kept (the unit's StateDirectory=): the accepted version, the audit key and journal.
        string state = options.Get("--state") ?? GatewayRunOptions.DefaultStateDirectory;
        ConfigTrustOptions? trust = options.Get("--trust") is { } trustDirectory
            ? new ConfigTrustOptions(trustDirectory, state)
            : null;
        var provenance = ConfigProvenance.Unchecked(config);
        if (trust is not null)
        {
            if (!ConfigAdmission.TryAdmit(trust, path, bytes, config, TimeSpan.Zero,
                    warning => Console.Error.WriteLine($"edgeshield run: trust: {warning}"), out provenance, out var refusal))
            {
                Console.Error.WriteLine($"edgeshield run: {path} refused: {refusal}; nothing started (fail closed)");
                // EKEYREJECTED: the configuration is well formed but not one this gateway may run.
                SystemdNotify.TryNotify(systemd, $"STATUS=configuration refused, nothing started: {refusal}\nERRNO=129");
                return Cli.ExitUsage;
            }
            Console.Error.WriteLine($"edgeshield: {path}: {provenance.Describe()} (trusted keys in {trust.TrustDirectory}; last accepted version kept in {ConfigVersionFile.PathIn(trust.StateDirectory)})");
        }
        else
        {
            Console.Error.WriteLine($"edgeshield: warning: {path} is not signature-checked (no --trust DIR): an unsigned-config event is audited at each load");
        }

        // The audit lines carry journal priorities only when stdout is the journal.
        var run = new GatewayRunOptions(path, config, maintenance, Console.OpenStandardOutput(), Journal.IsStdout(), trust, provenance)
        {
            StateDirectory = state,
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
        // The reload service's handler is installed now.
        startHup.Dispose();
        if (Volatile.Read(ref hupDuringStart) != 0)
        {
            host.Services.GetRequiredService<ReloadHostedService>().ReloadAfterStart();
        }
        // Until SIGTERM or SIGINT; then the hosted services stop in the reverse order of their start.
        await host.WaitForShutdownAsync();
        return Cli.ExitOk;
    }

    private static string FirstError(ConfigLoadResult loaded) =>
        loaded.Diagnostics.FirstOrDefault(d => d.Severity == DiagnosticSeverity.Error).ToString();
}
