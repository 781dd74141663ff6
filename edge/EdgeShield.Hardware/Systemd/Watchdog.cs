namespace EdgeShield.Hardware.Systemd;

/// <summary>
/// Sends <c>WATCHDOG=1</c> every half of systemd's <c>WatchdogSec</c>, but only while
/// <c>isAlive</c> says the pipeline is alive. A wedged pipeline therefore stops the pings and
/// systemd restarts the service (<c>Restart=on-failure</c> covers a watchdog timeout); a process
/// that merely keeps a timer running does not count as healthy.
/// </summary>
public static class Watchdog
{
    public static async Task RunAsync(SystemdNotifier notifier, TimeSpan timeout, Func<bool> isAlive, CancellationToken cancellationToken)
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
            do
            {
                if (isAlive())
                {
                    notifier.Notify(reportedStall ? "WATCHDOG=1\nSTATUS=running" : "WATCHDOG=1");
                    reportedStall = false;
                }
                else if (!reportedStall)
                {
                    notifier.Notify("STATUS=pipeline stalled: watchdog pings withheld");
                    reportedStall = true;
                }
            }
            while (await timer.WaitForNextTickAsync(cancellationToken));
        }
        catch (OperationCanceledException)
        {
        }
    }
}
