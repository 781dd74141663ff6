using EdgeShield.Gateway.Tests;
using EdgeShield.Service;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;

namespace EdgeShield.Hardware.Tests;

/// <summary>
/// sd_notify through the Generic Host's systemd lifetime and notifier (Microsoft.Extensions.Hosting.Systemd),
/// the watchdog that pings only while the pipeline is alive, and the journal check for stdout.
/// (The process-level tests are in Integration.Tests.)
/// </summary>
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
            var notifier = new SystemdNotifier();
            Assert.True(SystemdNotify.TryNotify(notifier, "READY=1\nSTATUS=test"));
            Assert.Equal("READY=1\nSTATUS=test", await socket.ReceiveAsync());
        }
        finally
        {
            Environment.SetEnvironmentVariable("NOTIFY_SOCKET", null);
        }
    }

    [Fact]
    public void WithoutNotifySocket_NoSystemdLifetimeIsRegistered()
    {
        Environment.SetEnvironmentVariable("NOTIFY_SOCKET", null);
        // PID 1 here is not systemd and neither is our parent.
        Assert.False(GatewayHost.SystemdRequested);
        var services = new ServiceCollection();
        Assert.False(GatewayHost.AddSystemd(services));
        Assert.Empty(services);
        Assert.False(SystemdNotify.TryNotify(new SystemdNotifier(), "READY=1"));
    }

    [Fact]
    public async Task WithNotifySocket_TheHostSaysReadyOnlyAfterEveryServiceStarted_AndStopping()
    {
        using var socket = new NotifySocket();
        Environment.SetEnvironmentVariable("NOTIFY_SOCKET", socket.Path);
        try
        {
            Assert.True(GatewayHost.SystemdRequested);
            var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
            Assert.True(GatewayHost.AddSystemd(builder.Services));
            var slow = new SlowStart(socket);
            builder.Services.AddHostedService(_ => slow);
            using var host = builder.Build();
            Assert.IsType<SystemdLifetime>(host.Services.GetRequiredService<IHostLifetime>());

            await host.StartAsync();
            Assert.Null(slow.SeenDuringStart);
            Assert.Equal("READY=1", await socket.ReceiveAsync());
            await host.StopAsync();
            Assert.Equal("STOPPING=1", await socket.ReceiveAsync());
        }
        finally
        {
            Environment.SetEnvironmentVariable("NOTIFY_SOCKET", null);
        }
    }

    /// <summary>A hosted service whose start takes a while (as binding listeners does) and watches the socket meanwhile.</summary>
    private sealed class SlowStart(NotifySocket socket) : IHostedService
    {
        public string? SeenDuringStart { get; private set; }

        public async Task StartAsync(CancellationToken cancellationToken) => SeenDuringStart = await socket.ReceiveAsync(300);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [Fact]
    public void WatchdogTimeout_ForAnotherPid_IsNull()
    {
        Environment.SetEnvironmentVariable("WATCHDOG_USEC", "2000000");
        try
        {
            Environment.SetEnvironmentVariable("WATCHDOG_PID", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(TimeSpan.FromSeconds(2), SystemdNotify.WatchdogTimeout());
            Environment.SetEnvironmentVariable("WATCHDOG_PID", "1");
            Assert.Null(SystemdNotify.WatchdogTimeout());
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
        var notifier = new SystemdNotifier();
        Environment.SetEnvironmentVariable("NOTIFY_SOCKET", null);
        var harness = await GatewayHarness.StartAsync();
        using var stop = new CancellationTokenSource();
        var watchdog = SystemdWatchdog.RunAsync(notifier, TimeSpan.FromMilliseconds(200), () => harness.Gateway.IsAlive(TimeSpan.FromSeconds(1)), stop.Token);

        var alive = new List<string>();
        var aliveDeadline = Environment.TickCount64 + 10_000;
        while (alive.Count(m => m.StartsWith("WATCHDOG=1", StringComparison.Ordinal)) < 3 && Environment.TickCount64 < aliveDeadline)
        {
            if (await socket.ReceiveAsync((int)Math.Max(1, aliveDeadline - Environment.TickCount64)) is { } message)
            {
                alive.Add(message);
            }
        }
        Assert.True(alive.Count(m => m.StartsWith("WATCHDOG=1", StringComparison.Ordinal)) >= 3, string.Join(" | ", alive));

        // The pipeline dies (its listeners stop accepting and sweeping): no more pings.
        await harness.DisposeAsync();
        Assert.False(harness.Gateway.IsAlive(TimeSpan.FromSeconds(1)));
        // Until the watchdog says the pipeline stalled (bounded: a loaded CI machine may run its tick late), then
        // four more ticks' worth of datagrams.
        var dead = new List<string>();
        var deadline = Environment.TickCount64 + 10_000;
        while (!dead.Exists(m => m.StartsWith("STATUS=pipeline stalled", StringComparison.Ordinal)) && Environment.TickCount64 < deadline)
        {
            if (await socket.ReceiveAsync((int)Math.Max(1, deadline - Environment.TickCount64)) is { } message)
            {
                dead.Add(message);
            }
        }
        dead.AddRange(await socket.ReceiveForAsync(400));
        await stop.CancelAsync();
        await watchdog;
        // Pings of ticks that ran while the dispose was still under way (one per 100 ms) may be queued ahead;
        // once the watchdog has seen the pipeline dead and said so, not one more ping.
        int stalled = dead.FindIndex(m => m.StartsWith("STATUS=pipeline stalled", StringComparison.Ordinal));
        Assert.True(stalled >= 0, string.Join(" | ", dead));
        Assert.DoesNotContain(dead.Skip(stalled), m => m.Contains("WATCHDOG=1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Journal_MatchesOnlyTheStreamJournalStreamNames()
    {
        string path = Path.GetTempFileName();
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
            int fd = (int)file.SafeFileHandle.DangerousGetHandle();
            using var stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("/usr/bin/stat", ["-c", "%d:%i", path]) { RedirectStandardOutput = true })!;
            string deviceInode = (await stat.StandardOutput.ReadToEndAsync()).Trim();
            await stat.WaitForExitAsync();
            Assert.Matches(@"^\d+:\d+$", deviceInode);

            Assert.True(Journal.Matches(deviceInode, fd));
            Assert.False(Journal.Matches(deviceInode, 0)); // another stream (stdin)
            Assert.False(Journal.Matches(deviceInode.Split(':')[0] + ":1", fd));
            Assert.False(Journal.Matches(null, fd));
            Assert.False(Journal.Matches("", fd));
            Assert.False(Journal.Matches("garbage", fd));
            Assert.False(Journal.Matches(":" + deviceInode, fd));
        }
        finally
        {
            File.Delete(path);
        }
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessEnvironment
{
    public const string Name = "process environment";
}
