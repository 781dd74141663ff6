using System.Runtime.InteropServices;
using EdgeShield.Gateway;
using EdgeShield.Policy;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;

namespace EdgeShield.Service;

/// <summary>
/// Reloads the policies on SIGHUP (systemd's <c>ExecReload=/bin/kill -HUP $MAINPID</c>) or when the
/// file changes (<see cref="ConfigFileWatcher"/>); a bad file keeps the running policy and
/// connections stay open. Under systemd it says RELOADING=1, then READY=1 with the policy's hash.
/// </summary>
public sealed class ReloadHostedService(GatewayHostedService gateway, ISystemdNotifier? systemd) : IHostedService, IDisposable
{
    private readonly Lock _reloading = new();
    private EdgeShieldConfig? _current;
    private PosixSignalRegistration? _sighup;
    private ConfigFileWatcher? _watcher;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var options = gateway.Options;
        _current = options.Config;
        _sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true;
            ReloadNow("SIGHUP");
        });
        _watcher = new ConfigFileWatcher(options.ConfigPath, () => ReloadNow("file changed", onlyIfChanged: true), signatureToo: options.Trust is not null);
        return Task.CompletedTask;
    }

    /// <summary>
    /// A SIGHUP came while the gateway was starting, before this service's handler was installed (<c>edgeshield run</c>
    /// catches it from its first line so that it does not end the process): the file is loaded again if it changed
    /// since the start read it.
    /// </summary>
    public void ReloadAfterStart() => ReloadNow("SIGHUP during start", onlyIfChanged: true);

    private void ReloadNow(string trigger, bool onlyIfChanged = false)
    {
        var options = gateway.Options;
        lock (_reloading)
        {
            if (_current is not { } current)
            {
                return; // stopped
            }
            SystemdNotify.TryNotify(systemd, "RELOADING=1");
            current = Reload(options, current, gateway.Gateway, gateway.Sink, trigger, onlyIfChanged);
            Volatile.Write(ref _current, current);
            SystemdNotify.TryNotify(systemd, $"READY=1\nSTATUS=running, policy sha256 {current.Hash}");
        }
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _sighup?.Dispose();
        _watcher?.Dispose();
        // A reload under way finishes before the gateway is disposed; none starts after.
        lock (_reloading)
        {
            _current = null;
        }
    }

    /// <summary>
    /// Loads the file again; on success swaps the policies in, on failure keeps the old ones and says why.
    /// Every other section runs as the started config had it until a restart, and the event says which differ.
    /// Under <c>--trust</c> the new file must also pass <see cref="ConfigAdmission"/> (signature over the
    /// very bytes parsed, no rollback); without it, every load is followed by an <c>unsigned-config</c> event.
    /// </summary>
    private static EdgeShieldConfig Reload(GatewayRunOptions options, EdgeShieldConfig current, EdgeGateway gateway, IAuditSink audit, string trigger, bool onlyIfChanged = false)
    {
        string path = options.ConfigPath;
        // Only a file that has stopped changing, and exactly the bytes that were hashed, are parsed.
        if (!SettledConfigFile.TryRead(path, out var bytes, out var sha256, out var problem))
        {
            audit.Write(AuditEvent.Service("reload-failed", $"{trigger}: kept policy sha256 {current.Hash}; {path}:1:1: error: {problem}"));
            Console.Error.WriteLine($"{path}:1:1: error: {problem}");
            return current;
        }
        if (onlyIfChanged && sha256 == current.Hash)
        {
            return current; // a touch, or a save of the same bytes (or a new signature of the running file)
        }
        var loaded = ConfigLoader.LoadBytes(bytes, path, options.Maintenance);
        if (loaded.HasErrors || loaded.Config is null)
        {
            string first = loaded.Diagnostics.FirstOrDefault(d => d.Severity == DiagnosticSeverity.Error).ToString();
            audit.Write(AuditEvent.Service("reload-failed", $"{trigger}: kept policy sha256 {current.Hash}; {first}"));
            foreach (var diagnostic in loaded.Diagnostics)
            {
                Console.Error.WriteLine(diagnostic.ToString());
            }
            return current;
        }
        var provenance = ConfigProvenance.Unchecked(loaded.Config);
        if (options.Trust is { } trust)
        {
            // The bytes judged are the bytes parsed; the signature may follow the file by a few seconds.
            if (!ConfigAdmission.TryAdmit(trust, path, bytes, loaded.Config, ConfigAdmission.SignatureWait,
                    warning => Console.Error.WriteLine($"edgeshield: trust: {warning}"), out provenance, out var refusal))
            {
                audit.Write(AuditEvent.Service("reload-failed", $"{trigger}: kept policy sha256 {current.Hash}; {path} sha256 {loaded.Config.Hash} refused: {refusal}"));
                Console.Error.WriteLine($"{path}: error: refused: {refusal}; the running policy stays");
                return current;
            }
        }
        gateway.UpdatePolicies(loaded.Config);
        // Only policies are swapped. Say so when other sections changed, so that nobody believes a new
        // listener, limit, bus, telemetry or audit setting is in force after a reload.
        var notApplied = EdgeShieldConfig.ChangedSections(options.Config, loaded.Config).Where(s => s != "policies").ToList();
        string notice = notApplied.Count == 0 ? ""
            : $"; not applied until a restart: {string.Join(", ", notApplied)}"
              + (notApplied.Contains("network") ? " (network: regenerate and load the ruleset with `edgeshield nft`)" : "");
        // What was loaded: the file and its exact size and hash (the same bytes were parsed), its version and signer.
        audit.Write(AuditEvent.Service("reloaded", $"{trigger}: policy sha256 {current.Hash} -> {loaded.Config.Hash} ({path}, {bytes.Length} bytes); {provenance.Describe()}{notice}"));
        if (options.Trust is null)
        {
            audit.Write(GatewayRunOptions.UnsignedConfigEvent(path, loaded.Config.Hash));
        }
        if (notice.Length > 0)
        {
            Console.Error.WriteLine($"{path}: warning: reloaded the policies only{notice}");
        }
        return loaded.Config;
    }
}
