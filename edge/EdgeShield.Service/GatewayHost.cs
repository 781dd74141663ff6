using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace EdgeShield.Service;

/// <summary>
/// <c>edgeshield run</c> as a .NET Generic Host: the empty application builder (no configuration
/// sources, no logging providers: the audit log is the output) with the gateway, telemetry,
/// hardware, reload watcher and watchdog as hosted services, started in that order and stopped in
/// the reverse one.
/// </summary>
public static class GatewayHost
{
    /// <summary>The host for one run; <c>StartAsync</c> returns once every listener is bound.</summary>
    public static IHost Build(GatewayRunOptions options)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        bool systemd = AddSystemd(builder.Services);
        AddGateway(builder.Services, options, systemd);
        return builder.Build();
    }

    /// <summary>
    /// True when systemd waits for our notifications: <c>NOTIFY_SOCKET</c> is set (systemd sets it
    /// for <c>Type=notify</c>), or the package's <see cref="SystemdHelpers.IsSystemdService"/> says so.
    /// </summary>
    /// <remarks>
    /// Not <see cref="SystemdHelpers.IsSystemdService"/> alone: in Microsoft.Extensions.Hosting.Systemd
    /// 10.0 it is true only for PID 1 with NOTIFY_SOCKET/LISTEN_PID or when /proc/PPID/comm reads
    /// "systemd", and our unit's <c>ProtectProc=invisible</c> hides PID 1's /proc entry from the
    /// service user, so under the hardened unit it answers false and READY=1 would never be sent.
    /// Keyed on NOTIFY_SOCKET, the product under systemd and the tests (which own the socket) take
    /// the same path. (The package's later sources register the lifetime on the same condition.)
    /// </remarks>
    public static bool SystemdRequested =>
        !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NOTIFY_SOCKET")) || SystemdHelpers.IsSystemdService();

    /// <summary>
    /// What <c>UseSystemd()</c> registers, on <see cref="SystemdRequested"/>: the package's
    /// <see cref="SystemdNotifier"/> and <see cref="SystemdLifetime"/> (READY=1 once every hosted
    /// service has started, STOPPING=1 when the stop begins, SIGTERM stops). Not its journal console
    /// logger: nothing here logs through ILogger. Returns whether it did.
    /// </summary>
    public static bool AddSystemd(IServiceCollection services)
    {
        if (!SystemdRequested)
        {
            return false;
        }
        services.AddSingleton<ISystemdNotifier>(_ => new SystemdNotifier());
        services.AddSingleton<IHostLifetime>(sp => new SystemdLifetime(
            sp.GetRequiredService<IHostEnvironment>(),
            sp.GetRequiredService<IHostApplicationLifetime>(),
            sp.GetRequiredService<ISystemdNotifier>(),
            sp.GetRequiredService<ILoggerFactory>()));
        return true;
    }

    /// <summary>The gateway's hosted services, in start order.</summary>
    public static void AddGateway(IServiceCollection services, GatewayRunOptions options, bool systemd)
    {
        var gateway = new GatewayHostedService(options);
        services.AddSingleton(gateway);
        services.AddHostedService(_ => gateway);
        services.AddHostedService(_ => new TelemetryHostedService(gateway));
        services.AddHostedService(_ => new HardwareHostedService(gateway));
        services.AddSingleton(sp => new ReloadHostedService(gateway, sp.GetService<ISystemdNotifier>()));
        services.AddHostedService(sp => sp.GetRequiredService<ReloadHostedService>());
        if (systemd)
        {
            services.AddHostedService(sp => new WatchdogHostedService(gateway, sp.GetRequiredService<ISystemdNotifier>(), sp.GetRequiredService<IHostApplicationLifetime>()));
        }
        services.AddHostedService(sp => new InterruptHostedService(sp.GetRequiredService<IHostApplicationLifetime>()));
    }
}

/// <summary>
/// SIGINT (Ctrl+C) stops the host as SIGTERM does. The systemd lifetime listens for SIGTERM only
/// (systemd sends nothing else); a person running <c>edgeshield run</c> in a terminal gets the same clean stop.
/// </summary>
public sealed class InterruptHostedService(IHostApplicationLifetime lifetime) : IHostedService, IDisposable
{
    private PosixSignalRegistration? _sigint;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            context.Cancel = true;
            lifetime.StopApplication();
        });
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _sigint?.Dispose();
}
