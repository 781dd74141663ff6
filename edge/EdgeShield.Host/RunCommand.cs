using System.Net.Sockets;
using System.Runtime.InteropServices;
using EdgeShield.Gateway;
using EdgeShield.Hardware.Systemd;
using EdgeShield.Policy;
using EdgeShield.Service;

namespace EdgeShield.Host;

internal static class RunCommand
{
    private const string Help = """
        usage: edgeshield run --config FILE

        Runs the gateway: every listener of FILE, each enforcing its policy. Audit events are
        written to stdout as JSON lines (one per event); messages for people go to stderr.
        SIGTERM or SIGINT stops it cleanly; SIGHUP or a change to FILE reloads it (a bad file keeps the
        running policy; connections stay open).
        Exit 0 on a clean stop, 2 when the configuration is invalid (nothing is started: fail closed),
        1 on a fault such as an address that cannot be bound.
        """;

    public static async Task<int> ExecuteAsync(string[] args)
    {
        var options = Options.Parse("run", args, ["--config"], []);
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
        // Under systemd (Type=notify): READY=1 only once every listener is bound; errors as STATUS=.
        using var systemd = SystemdNotifier.FromEnvironment();
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
            systemd?.Notify($"STATUS=invalid configuration, nothing started: {FirstError(loaded)}\nERRNO=22");
            return Cli.ExitUsage;
        }
        var config = loaded.Config;

        await using var audit = new AuditLog(Console.OpenStandardOutput());
        // The PLCs and serial buses, first: the listeners and the poller share them, and they are
        // disposed last (declared first), after both.
        await using var upstreams = await UpstreamRegistry.StartAsync(config);
        // With telemetry: the diode's pollers and publisher, and a copy of every audit event on the events topic.
        await using var telemetry = config.Telemetry is { } telemetryConfig ? TelemetryWiring.Create(config, telemetryConfig, audit, upstreams) : null;
        await using var eventsTopic = telemetry is null ? null : new AuditLog(new EventsTopicStream(telemetry));
        IAuditSink sink = eventsTopic is null ? audit : new FanOutAuditSink(audit, eventsTopic);
        EdgeGateway gateway;
        try
        {
            gateway = await EdgeGateway.StartAsync(config, sink, upstreams);
        }
        catch (SocketException e)
        {
            Console.Error.WriteLine($"edgeshield run: cannot listen: {e.Message}");
            systemd?.Notify($"STATUS=cannot listen: {e.Message}\nERRNO={(int)e.SocketErrorCode}");
            return Cli.ExitFault;
        }
        catch (NotSupportedException e)
        {
            Console.Error.WriteLine($"edgeshield run: {e.Message}");
            systemd?.Notify($"STATUS={e.Message}\nERRNO=95");
            return Cli.ExitUsage;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // audit.pcap cannot be created: a fault of the device (path, permissions), like an address that cannot be bound.
            Console.Error.WriteLine($"edgeshield run: audit pcap {config.AuditPcap?.Path}: {e.Message}");
            systemd?.Notify($"STATUS=cannot write audit pcap: {e.Message}\nERRNO=5");
            return Cli.ExitFault;
        }

        await using (gateway)
        {
            using var hardware = HardwareRuntime.Start(config.Hardware, maintenance, gateway.Counters, sink);
            foreach (var listener in gateway.Listeners)
            {
                Console.Error.WriteLine($"edgeshield: listener {listener.Config.Name} on {listener.LocalEndPoint} -> {listener.Config.Upstream} (policy {listener.Config.PolicyName}, {listener.Policy.Current.Mode.ToString().ToLowerInvariant()})");
            }
            if (config.AuditPcap is { } pcap)
            {
                Console.Error.WriteLine($"edgeshield: refused and malformed frames to {pcap.Path} (rotates to {pcap.Path}.1 at {pcap.MaxMb.ToString(System.Globalization.CultureInfo.InvariantCulture)} MiB)");
            }
            telemetry?.Start();
            if (telemetry is not null)
            {
                Console.Error.WriteLine($"edgeshield: telemetry to {config.Telemetry!.Mqtt.Broker} as {telemetry.ClientId}, topics {telemetry.TopicPrefix}/…, {config.Telemetry.Poll.Count} devices, buffer {config.Telemetry.Buffer.Path}");
            }
            sink.Write(ServiceEvent("started", $"config {path} sha256 {config.Hash}"));

            var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var current = config;
            var reloading = new Lock();
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
            using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true;
                lock (reloading)
                {
                    systemd?.Notify("RELOADING=1");
                    current = Reload(path, config, current, gateway, sink, maintenance, "SIGHUP");
                    systemd?.Notify($"READY=1\nSTATUS=running, policy sha256 {current.Hash}");
                }
            });
            using var watcher = new ConfigFileWatcher(path, () =>
            {
                lock (reloading)
                {
                    systemd?.Notify("RELOADING=1");
                    current = Reload(path, config, current, gateway, sink, maintenance, "file changed", onlyIfChanged: true);
                    systemd?.Notify($"READY=1\nSTATUS=running, policy sha256 {current.Hash}");
                }
            });

            using var watchdogStop = new CancellationTokenSource();
            var watchdog = Task.CompletedTask;
            if (systemd is not null)
            {
                systemd.Notify($"READY=1\nSTATUS=running, {gateway.Listeners.Count} listener(s), policy sha256 {config.Hash}");
                if (SystemdNotifier.WatchdogTimeout() is { } timeout)
                {
                    // Alive means: every accept loop runs and every sweeper ticked within a second.
                    watchdog = Watchdog.RunAsync(systemd, timeout, () => gateway.IsAlive(TimeSpan.FromSeconds(1)), watchdogStop.Token);
                }
            }
            await stop.Task;
            systemd?.Notify("STOPPING=1\nSTATUS=stopping");
            await watchdogStop.CancelAsync();
            await watchdog;
            sink.Write(ServiceEvent("stopping", "signal received; closing listeners and connections"));
        }
        return Cli.ExitOk;
    }

    /// <summary>
    /// Loads the file again; on success swaps the policies in, on failure keeps the old ones and says why.
    /// Every other section runs as <paramref name="started"/> had it until a restart, and the event says which differ.
    /// </summary>
    private static EdgeShieldConfig Reload(string path, EdgeShieldConfig started, EdgeShieldConfig current, EdgeGateway gateway, IAuditSink audit, MaintenanceState maintenance, string trigger, bool onlyIfChanged = false)
    {
        // Only a file that has stopped changing, and exactly the bytes that were hashed, are parsed.
        if (!SettledConfigFile.TryRead(path, out var bytes, out var sha256, out var problem))
        {
            audit.Write(ServiceEvent("reload-failed", $"{trigger}: kept policy sha256 {current.Hash}; {path}:1:1: error: {problem}"));
            Console.Error.WriteLine($"{path}:1:1: error: {problem}");
            return current;
        }
        if (onlyIfChanged && sha256 == current.Hash)
        {
            return current; // a touch, or a save of the same bytes
        }
        var loaded = ConfigLoader.LoadBytes(bytes, path, maintenance);
        if (loaded.HasErrors || loaded.Config is null)
        {
            string first = loaded.Diagnostics.FirstOrDefault(d => d.Severity == DiagnosticSeverity.Error).ToString();
            audit.Write(ServiceEvent("reload-failed", $"{trigger}: kept policy sha256 {current.Hash}; {first}"));
            foreach (var diagnostic in loaded.Diagnostics)
            {
                Console.Error.WriteLine(diagnostic.ToString());
            }
            return current;
        }
        gateway.UpdatePolicies(loaded.Config);
        // Only policies are swapped. Say so when other sections changed, so that nobody believes a new
        // listener, limit, bus, telemetry or audit setting is in force after a reload.
        var notApplied = EdgeShieldConfig.ChangedSections(started, loaded.Config).Where(s => s != "policies").ToList();
        string notice = notApplied.Count == 0 ? ""
            : $"; not applied until a restart: {string.Join(", ", notApplied)}"
              + (notApplied.Contains("network") ? " (network: regenerate and load the ruleset with `edgeshield nft`)" : "");
        // What was loaded: the file and its exact size and hash (the same bytes were parsed).
        audit.Write(ServiceEvent("reloaded", $"{trigger}: policy sha256 {current.Hash} -> {loaded.Config.Hash} ({path}, {bytes.Length} bytes){notice}"));
        if (notice.Length > 0)
        {
            Console.Error.WriteLine($"{path}: warning: reloaded the policies only{notice}");
        }
        return loaded.Config;
    }

    private static string FirstError(ConfigLoadResult loaded) =>
        loaded.Diagnostics.FirstOrDefault(d => d.Severity == DiagnosticSeverity.Error).ToString();

    internal static AuditEvent ServiceEvent(string reason, string detail) => ServiceEvents.Create(reason, detail);
}
