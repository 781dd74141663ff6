using System.Globalization;
using System.Net.Sockets;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;

namespace EdgeShield.Service;

/// <summary>sd_notify through the Generic Host's <see cref="ISystemdNotifier"/>, never throwing at the caller.</summary>
public static class SystemdNotify
{
    /// <summary>Sends newline-separated <c>KEY=VALUE</c> assignments; false when there is no notifier or systemd could not be reached.</summary>
    public static bool TryNotify(ISystemdNotifier? notifier, string state)
    {
        if (notifier is not { IsEnabled: true })
        {
            return false;
        }
        try
        {
            notifier.Notify(new ServiceState(state));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>
    /// <c>WATCHDOG_USEC</c> when it is meant for this process (<c>WATCHDOG_PID</c> absent or ours);
    /// null when systemd does not watch us.
    /// </summary>
    public static TimeSpan? WatchdogTimeout()
    {
        var pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
        if (!string.IsNullOrEmpty(pid) && pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
        {
            return null;
        }
        return ulong.TryParse(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), NumberStyles.None, CultureInfo.InvariantCulture, out var usec) && usec > 0
            ? TimeSpan.FromMicroseconds(usec)
            : null;
    }
}

/// <summary>
/// Sends <c>WATCHDOG=1</c> every half of systemd's <c>WatchdogSec</c> (the first after one half), but only while
/// <c>isAlive</c> says the pipeline is alive. A wedged pipeline therefore stops the pings and
/// systemd restarts the service (<c>Restart=on-failure</c> covers a watchdog timeout); a process
/// that merely keeps a timer running does not count as healthy.
/// </summary>
public static class SystemdWatchdog
{
    public static async Task RunAsync(ISystemdNotifier notifier, TimeSpan timeout, Func<bool> isAlive, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(notifier);
        ArgumentNullException.ThrowIfNull(isAlive);
        var interval = timeout / 2;
        if (interval < TimeSpan.FromMilliseconds(10))
        {
            interval = TimeSpan.FromMilliseconds(10);
        }
        using var timer = new PeriodicTimer(interval);
        bool reportedStall = false;
        try
        {
            // The first ping one interval after the start: the host's READY=1 (sent when ApplicationStarted
            // fires, after the callback that starts this loop) goes first.
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                if (isAlive())
                {
                    SystemdNotify.TryNotify(notifier, reportedStall ? "WATCHDOG=1\nSTATUS=running" : "WATCHDOG=1");
                    reportedStall = false;
                }
                else if (!reportedStall)
                {
                    SystemdNotify.TryNotify(notifier, "STATUS=pipeline stalled: watchdog pings withheld");
                    reportedStall = true;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}

/// <summary>
/// The watchdog as a hosted service: from the moment the host is started (READY=1 sent) until it
/// begins to stop, pings while every accept loop runs and every sweeper ticked within a second.
/// Also gives systemd the running state's STATUS= line.
/// </summary>
public sealed class WatchdogHostedService(GatewayHostedService gateway, ISystemdNotifier notifier, IHostApplicationLifetime lifetime) : IHostedService, IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private CancellationTokenRegistration _started;
    private Task _watchdog = Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _started = lifetime.ApplicationStarted.Register(() =>
        {
            var gatewayNow = gateway.Gateway;
            SystemdNotify.TryNotify(notifier, $"STATUS=running, {gatewayNow.Listeners.Count} listener(s), policy sha256 {gateway.Options.Config.Hash}");
            if (SystemdNotify.WatchdogTimeout() is { } timeout)
            {
                _watchdog = SystemdWatchdog.RunAsync(notifier, timeout, () => gatewayNow.IsAlive(TimeSpan.FromSeconds(1)), _stop.Token);
            }
        });
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _started.DisposeAsync();
        await _stop.CancelAsync();
        await _watchdog;
    }

    public void Dispose()
    {
        _started.Dispose();
        _stop.Dispose();
    }
}
