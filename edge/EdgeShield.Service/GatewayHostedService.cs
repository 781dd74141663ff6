using System.Net.Sockets;
using EdgeShield.Gateway;
using EdgeShield.Policy;
using EdgeShield.Telemetry;
using EdgeShield.Transport;
using Microsoft.Extensions.Hosting;

namespace EdgeShield.Service;

/// <summary>What one run of the gateway is given: the loaded file and where the audit lines go.</summary>
/// <param name="ConfigPath">The file, for reloads and messages.</param>
/// <param name="Config">Its content as loaded (and validated) at start.</param>
/// <param name="Maintenance">One maintenance state for the life of the process: a reload keeps the key's arming.</param>
/// <param name="AuditOutput">The audit JSON lines (stdout).</param>
/// <param name="JournalPriorities">Prefix each line with its journal priority (stdout is the journal: <see cref="Journal"/>).</param>
/// <param name="Trust"><c>--trust</c>/<c>--state</c>: every reload must pass <see cref="ConfigAdmission"/>; null: configs are not signature-checked (each load says <c>unsigned-config</c>).</param>
/// <param name="Provenance">The started config's version and signer, for the <c>started</c> event.</param>
public sealed record GatewayRunOptions(string ConfigPath, EdgeShieldConfig Config, MaintenanceState Maintenance, Stream AuditOutput, bool JournalPriorities,
    ConfigTrustOptions? Trust = null, ConfigProvenance? Provenance = null)
{
    /// <summary>The event that says a config was loaded without signature checking (priority warning).</summary>
    public static AuditEvent UnsignedConfigEvent(string path, string sha256) =>
        AuditEvent.Service("unsigned-config", $"config {path} sha256 {sha256} was loaded without a signature check: run has no --trust DIR (docs/SIGNING.md)");

    /// <summary>The default state directory (<c>run --state</c>): the audit key and journal live here unless the config says otherwise.</summary>
    public const string DefaultStateDirectory = "/var/lib/edgeshield";

    /// <summary><c>run --state DIR</c>: where the gateway keeps what outlives a run (the audit key, by default the audit journal).</summary>
    public string StateDirectory { get; init; } = DefaultStateDirectory;

    /// <summary><c>audit.key</c>, or <c>STATE/audit-key.pem</c>.</summary>
    public string AuditKeyPath => Config.AuditKey ?? Path.Combine(StateDirectory, "audit-key.pem");

    /// <summary><c>audit.journal.path</c>, or <c>STATE/audit</c>.</summary>
    public string AuditJournalPath => Config.AuditJournal?.Path ?? Path.Combine(StateDirectory, "audit");
}

/// <summary>
/// The gateway failed to start (nothing keeps running): the message for stderr, the systemd
/// <c>STATUS=</c>/<c>ERRNO=</c> and the exit code of DESIGN.md's command table.
/// </summary>
public sealed class GatewayStartException(string message, string status, int errno, int exitCode) : Exception(message)
{
    public string Status { get; } = status;
    public int Errno { get; } = errno;
    public int ExitCode { get; } = exitCode;
}

/// <summary>
/// The gateway as a hosted service: the audit log (journal, and the MQTT events topic with
/// telemetry), the upstreams, the telemetry service (created here, started by
/// <see cref="TelemetryHostedService"/>) and every listener. <see cref="StartAsync"/> returns once
/// every listener is bound, so the host's READY=1 (sent when every hosted service has started)
/// means the gateway accepts. It stops last: after the watchdog, the reload watcher and the hardware.
/// </summary>
public sealed class GatewayHostedService(GatewayRunOptions options) : IHostedLifecycleService, IAsyncDisposable
{
    private AuditLog? _audit;
    private UpstreamRegistry? _upstreams;
    private TelemetryService? _telemetry;
    private AuditLog? _eventsTopic;
    private EdgeGateway? _gateway;
    private IAuditSink? _sink;
    private AuditJournal? _journal;
    private long _journalOpenedAfter;

    public GatewayRunOptions Options => options;

    /// <summary>The running gateway (after <see cref="StartAsync"/>).</summary>
    public EdgeGateway Gateway => _gateway ?? throw new InvalidOperationException("the gateway has not started");

    /// <summary>Where audit events go: the journal, and the events topic with telemetry.</summary>
    public IAuditSink Sink => _sink ?? throw new InvalidOperationException("the gateway has not started");

    /// <summary>The telemetry service when the config has a telemetry section.</summary>
    public TelemetryService? Telemetry => _telemetry;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var config = options.Config;
        _journal = config.AuditJournal is { } journalConfig ? OpenJournal(journalConfig) : null;
        _audit = new AuditLog(options.AuditOutput, journal: _journal, journalPriorities: options.JournalPriorities);
        // The PLCs and serial buses, first: the listeners and the poller share them, and they are
        // disposed last, after both.
        _upstreams = await UpstreamRegistry.StartAsync(config);
        // With telemetry: the diode's pollers and publisher, and a copy of every audit event on the events topic.
        _telemetry = config.Telemetry is { } telemetryConfig ? TelemetryWiring.Create(config, telemetryConfig, _audit, _upstreams) : null;
        _eventsTopic = _telemetry is null ? null : new AuditLog(new EventsTopicStream(_telemetry));
        _sink = _eventsTopic is null ? _audit : new FanOutAuditSink(_audit, _eventsTopic);
        // The journal's checkpoints reach the events topic as they are in the chain, byte for byte: a site keeps them off the box.
        _audit.CopyJournalLinesTo(_telemetry is null ? null : new EventsTopicStream(_telemetry));
        try
        {
            _gateway = await EdgeGateway.StartAsync(config, _sink, _upstreams);
        }
        catch (SocketException e)
        {
            throw new GatewayStartException($"cannot listen: {e.Message}", $"cannot listen: {e.Message}", (int)e.SocketErrorCode, ExitCodes.Fault);
        }
        catch (NotSupportedException e)
        {
            throw new GatewayStartException(e.Message, e.Message, 95, ExitCodes.Usage);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // audit.pcap cannot be created: a fault of the device (path, permissions), like an address that cannot be bound.
            throw new GatewayStartException($"audit pcap {config.AuditPcap?.Path}: {e.Message}", $"cannot write audit pcap: {e.Message}", 5, ExitCodes.Fault);
        }
        foreach (var listener in _gateway.Listeners)
        {
            Console.Error.WriteLine($"edgeshield: listener {listener.Config.Name} on {listener.LocalEndPoint} -> {listener.Config.Upstream} (policy {listener.Config.PolicyName}, {listener.Policy.Current.Mode.ToString().ToLowerInvariant()})");
        }
        if (config.AuditPcap is { } pcap)
        {
            Console.Error.WriteLine($"edgeshield: refused and malformed frames to {pcap.Path} (rotates to {pcap.Path}.1 at {pcap.MaxMb.ToString(System.Globalization.CultureInfo.InvariantCulture)} MiB)");
        }
    }

    /// <summary>Every hosted service has started (hardware and telemetry too).</summary>
    public Task StartedAsync(CancellationToken cancellationToken)
    {
        var provenance = options.Provenance ?? ConfigProvenance.Unchecked(options.Config);
        Sink.Write(AuditEvent.Service("started", $"config {options.ConfigPath} sha256 {options.Config.Hash}; {provenance.Describe()}"));
        if (options.Trust is null)
        {
            Sink.Write(GatewayRunOptions.UnsignedConfigEvent(options.ConfigPath, options.Config.Hash));
        }
        if (_journal is { } journal)
        {
            // The public key in the clear, on the events topic too: whoever keeps the checkpoints off the box also gets the key that signs them.
            Sink.Write(AuditEvent.Service("audit-journal", $"journal {journal.Directory} opened after seq {_journalOpenedAfter}; checkpoints signed by key id {journal.Key.KeyId} ({journal.Key.PublicKeyPath}{(journal.Key.Created ? ", created now" : "")}) spki {Convert.ToBase64String(journal.Key.SubjectPublicKeyInfo)}"));
        }
        return Task.CompletedTask;
    }

    /// <summary>Before any hosted service stops.</summary>
    public Task StoppingAsync(CancellationToken cancellationToken)
    {
        _sink?.Write(AuditEvent.Service("stopping", "signal received; closing listeners and connections"));
        // Signed while the events topic still publishes; the final checkpoint at close reaches the disk and stdout.
        _audit?.RequestCheckpoint();
        return Task.CompletedTask;
    }

    /// <summary>The audit key (made at first start) and the journal; a failure stops the start like an unwritable audit pcap (exit 1).</summary>
    private AuditJournal OpenJournal(AuditJournalConfig journalConfig)
    {
        AuditKey? key = null;
        try
        {
            key = AuditKey.LoadOrCreate(options.AuditKeyPath);
            var journal = AuditJournal.Open(options.AuditJournalPath, journalConfig, key);
            // Read here, before the writer owns the journal.
            _journalOpenedAfter = journal.Seq;
            Console.Error.WriteLine($"edgeshield: audit journal {journal.Directory} (after seq {journal.Seq}, checkpoints every {journalConfig.CheckpointEvery} lines or {journalConfig.CheckpointSeconds} s, key id {key.KeyId}{(key.Created ? $", key created at {key.Path}" : "")})");
            return journal;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            key?.Dispose();
            throw new GatewayStartException($"audit journal {options.AuditJournalPath} (key {options.AuditKeyPath}): {e.Message}", $"cannot open the audit journal: {e.Message}", 5, ExitCodes.Fault);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken) => await DisposeAsync();

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>In the reverse order of the start; also after a start that failed half-way.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_gateway is { } gateway)
        {
            _gateway = null;
            await gateway.DisposeAsync();
        }
        if (_eventsTopic is { } eventsTopic)
        {
            _eventsTopic = null;
            await eventsTopic.DisposeAsync();
        }
        if (_telemetry is { } telemetry)
        {
            _telemetry = null;
            await telemetry.DisposeAsync();
        }
        if (_upstreams is { } upstreams)
        {
            _upstreams = null;
            await upstreams.DisposeAsync();
        }
        if (_audit is { } audit)
        {
            _audit = null;
            await audit.DisposeAsync();
        }
        _journal?.Key.Dispose();
        _journal = null;
    }
}

/// <summary>The exit codes of DESIGN.md's command table that a start can end with.</summary>
public static class ExitCodes
{
    public const int Fault = 1;
    public const int Usage = 2;
}
