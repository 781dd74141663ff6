using EdgeShield.Gateway.Tests;
using EdgeShield.Hardware.Systemd;

namespace EdgeShield.Hardware.Tests;

/// <summary>sd_notify and the watchdog that pings only while the pipeline is alive. (The process-level test is in Integration.Tests.)</summary>
[Collection(ProcessEnvironment.Name)]
public sealed class SystemdTests
{
    [Fact]
    public async Task Notify_ReachesTheSocketNamedByNotifySocket()
    {
        using var socket = new NotifySocket();
        Environment.SetEnvironmentVariable("NOTIFY_SOCKET", socket.Path);
        try
        {
            using var notifier = SystemdNotifier.FromEnvironment();
            Assert.NotNull(notifier);
            Assert.True(notifier.Notify("READY=1\nSTATUS=test"));
            Assert.Equal("READY=1\nSTATUS=test", await socket.ReceiveAsync());
        }
        finally
        {
            Environment.SetEnvironmentVariable("NOTIFY_SOCKET", null);
        }
    }

    [Fact]
    public void FromEnvironment_WithoutNotifySocket_IsNull()
    {
        Environment.SetEnvironmentVariable("NOTIFY_SOCKET", null);
        Assert.Null(SystemdNotifier.FromEnvironment());
    }

    [Fact]
    public void WatchdogTimeout_ForAnotherPid_IsNull()
    {
        Environment.SetEnvironmentVariable("WATCHDOG_USEC", "2000000");
        try
        {
            Environment.SetEnvironmentVariable("WATCHDOG_PID", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(TimeSpan.FromSeconds(2), SystemdNotifier.WatchdogTimeout());
            Environment.SetEnvironmentVariable("WATCHDOG_PID", "1");
            Assert.Null(SystemdNotifier.WatchdogTimeout());
        }
        finally
        {
            Environment.SetEnvironmentVariable("WATCHDOG_USEC", null);
            Environment.SetEnvironmentVariable("WATCHDOG_PID", null);
        }
    }

    [Fact]
    public async Task Watchdog_PingsWhileGatewayAlive_AndStopsWhenItsListenerIsGone()
    {
        using var socket = new NotifySocket();
        Environment.SetEnvironmentVariable("NOTIFY_SOCKET", socket.Path);
        using var notifier = SystemdNotifier.FromEnvironment()!;
        Environment.SetEnvironmentVariable("NOTIFY_SOCKET", null);
        var harness = await GatewayHarness.StartAsync();
        using var stop = new CancellationTokenSource();
        var watchdog = Watchdog.RunAsync(notifier, TimeSpan.FromMilliseconds(200), () => harness.Gateway.IsAlive(TimeSpan.FromSeconds(1)), stop.Token);

        var alive = await socket.ReceiveForAsync(600);
        Assert.True(alive.Count(m => m.StartsWith("WATCHDOG=1", StringComparison.Ordinal)) >= 3, string.Join(" | ", alive));

        // The pipeline dies (its listeners stop accepting and sweeping): no more pings.
        await harness.DisposeAsync();
        Assert.False(harness.Gateway.IsAlive(TimeSpan.FromSeconds(1)));
        var dead = await socket.ReceiveForAsync(600);
        await stop.CancelAsync();
        await watchdog;
        // Pings of ticks that ran while the dispose was still under way (one per 100 ms) may be queued ahead;
        // once the watchdog has seen the pipeline dead and said so, not one more ping.
        int stalled = dead.FindIndex(m => m.StartsWith("STATUS=pipeline stalled", StringComparison.Ordinal));
        Assert.True(stalled >= 0, string.Join(" | ", dead));
        Assert.DoesNotContain(dead.Skip(stalled), m => m.Contains("WATCHDOG=1", StringComparison.Ordinal));
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessEnvironment
{
    public const string Name = "process environment";
}
