using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeShield.Simulators;
using Xunit.Abstractions;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// The wall clock jumps under a running `edgeshield run` (issue 7, item 5). How: libfaketime (Debian `faketime`)
/// preloaded into the gateway process only, reading its offset from a file the test rewrites, with
/// FAKETIME_DONT_FAKE_MONOTONIC=1 — exactly what an NTP step or an RTC-less gateway setting its clock does: the
/// realtime clock jumps, the monotonic clock does not. (`unshare --time` offsets only the monotonic and boot clocks,
/// the opposite; an injectable TimeProvider would test our code, not the process.)
/// </summary>
public partial class ClockJumpTests(ITestOutputHelper output)
{
    private static string FakeTimeLibrary =>
        Directory.EnumerateFiles("/usr/lib", "libfaketime.so.1", SearchOption.AllDirectories).FirstOrDefault()
        ?? throw new Xunit.Sdk.XunitException("libfaketime.so.1 is missing: apt-get install faketime (.ci/run does)");

    /// <summary>
    /// Expected: wall clock set back 1 hour, then forward 1 day, while HMI traffic and telemetry run —
    /// audit event times and telemetry `ts` follow the wall clock (they are what it says); everything that measures
    /// time uses the monotonic clock and does not notice: the rate bucket (5/s) refills normally after the backward
    /// jump (a wall-clock bucket would refuse for an hour), telemetry keeps its 100 ms period (a wall-clock timer would
    /// stall), an idle connection survives the forward jump (a wall-clock idle-timeout would close it), and no
    /// request times out.
    /// </summary>
    [Fact]
    public async Task WallClockJumpsBackAndForward_TimestampsFollowIt_TimersAndRateLimitsDoNot()
    {
        string dir = Directory.CreateTempSubdirectory("es-clock-").FullName;
        string offsetFile = Path.Combine(dir, "faketime");
        await File.WriteAllTextAsync(offsetFile, "+0\n");
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
        await using var broker = new MosquittoBroker(dir);
        await broker.StartAsync();
        await using var sub = new MosquittoSubscriber(broker.Port, "it/gw/plc1/#");
        string config = Path.Combine(dir, "edgeshield.yaml");
        await File.WriteAllTextAsync(config, $$"""
            gateway: { name: it-gw, site: lab }
            listeners:
              - name: hmi-plc1
                bind: 127.0.0.1:0
                upstream: tcp://127.0.0.1:{{plc.Port}}
                policy: plc1
                limits: { idle-timeout: 5m, response-timeout: 1s }
            policies:
              plc1:
                mode: enforce
                rules:
                  - { name: reads, unit: 1, function: [read], address: 0-999 }
                  - { name: setpoints, unit: 1, function: [write-single-register], address: 100-119, rate: 5/s }
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:{{broker.Port}}, topic-prefix: it/gw }
              buffer: { path: {{dir}}/buffer }
              poll:
                - device: plc1
                  upstream: tcp://127.0.0.1:{{plc.Port}}
                  every: 100ms
                  tags: [{ name: level, table: holding, address: 0 }]
            """);
        var start = Processes.EdgeShield("run", "--config", config);
        start.Environment["LD_PRELOAD"] = FakeTimeLibrary;
        start.Environment["FAKETIME_TIMESTAMP_FILE"] = offsetFile;
        start.Environment["FAKETIME_CACHE_DURATION"] = "1";
        start.Environment["FAKETIME_DONT_FAKE_MONOTONIC"] = "1";
        var gateway = new Processes.Running(start);
        try
        {
            Assert.True(await gateway.WaitForStderrAsync("listener hmi-plc1 on ", 60_000), "gateway did not start:\n" + gateway.Stderr);
            int port = int.Parse(ListenLine().Match(gateway.Stderr).Groups[1].Value, CultureInfo.InvariantCulture);
            using var client = await RawClient.ConnectAsync(port);
            using var idle = await RawClient.ConnectAsync(port);
            Assert.Equal(3, (await Read(idle))[7]);
            ushort tid = 100;
            async Task<int> BurstAsync(int n)
            {
                int allowed = 0;
                for (int i = 0; i < n; i++)
                {
                    var r = await client.RoundTripAsync([0, (byte)++tid, 0, 0, 0, 6, 1, 6, 0, 100, 0, 7]);
                    allowed += r[7] == 6 ? 1 : 0;
                    Assert.True(r[7] == 6 || (r[7] == 0x86 && r[8] == 6), $"write answered {Convert.ToHexString(r)}");
                }
                return allowed;
            }
            await WaitTelemetry(sub, 5, gateway);
            var burstClock = Stopwatch.StartNew();
            int burstBefore = await BurstAsync(20);
            double burstBeforeSeconds = burstClock.Elapsed.TotalSeconds;

            // Back one hour.
            await JumpAsync(offsetFile, "-1h", TimeSpan.FromHours(-1), client, gateway, sub, output);
            await Task.Delay(1200); // a monotonic bucket refills 5 tokens in 1 s
            int pacedAllowed = 0;
            for (int i = 0; i < 5; i++)
            {
                pacedAllowed += await BurstAsync(1);
                await Task.Delay(300);
            }
            Assert.Equal(5, pacedAllowed);
            // A timer on the wall clock would now wait an hour; the poller must go on (30 per 3 s on a quiet
            // machine; a loaded one skips ticks, which are not queued, so the bar is only "clearly running": 5 more
            // messages, waited for up to 30 s, far from the hour).
            int telemetryBefore = Telemetry(sub).Count;
            var telemetryClock = Stopwatch.StartNew();
            while (Telemetry(sub).Count - telemetryBefore < 5 && telemetryClock.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(100);
            }
            int telemetryIn3s = Telemetry(sub).Count - telemetryBefore;
            Assert.True(telemetryIn3s >= 5, $"{telemetryIn3s} telemetry messages in {telemetryClock.Elapsed.TotalSeconds:F1} s after the backward jump (period 100 ms)");

            // Forward one day.
            await JumpAsync(offsetFile, "+1d", TimeSpan.FromDays(1), client, gateway, sub, output);
            Assert.Equal(3, (await Read(idle))[7]);
            await Task.Delay(1200);
            burstClock.Restart();
            int burstAfter = await BurstAsync(20);
            double burstAfterSeconds = burstClock.Elapsed.TotalSeconds;
            // A burst that took longer than the first (a loaded machine) rightly earns the tokens of its extra time (5/s).
            int slower = (int)Math.Ceiling(5 * Math.Max(0, burstAfterSeconds - burstBeforeSeconds));
            Assert.True(burstAfter <= burstBefore + 1 + slower, $"after a day's jump the bucket allowed a burst of {burstAfter} in {burstAfterSeconds:F2} s (before: {burstBefore} in {burstBeforeSeconds:F2} s): it counted wall time");
            output.WriteLine($"burst of 20 writes: {burstBefore} allowed before, {burstAfter} after +1d; 5 paced writes after -1h: {pacedAllowed} allowed; telemetry after -1h: {telemetryIn3s} in {telemetryClock.Elapsed.TotalSeconds:F1} s");
            Assert.False(gateway.Process.HasExited);
            Assert.DoesNotContain("\"reason\":\"response-timeout\"", gateway.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            await gateway.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// Sets the offset; then a denied request's audit event and a fresh telemetry message must carry the new wall
    /// time (within 5 minutes of real time + offset, which allows for a loaded machine).
    /// </summary>
    private static async Task JumpAsync(string offsetFile, string offset, TimeSpan expected, RawClient client, Processes.Running gateway, MosquittoSubscriber sub, ITestOutputHelper output)
    {
        await File.WriteAllTextAsync(offsetFile, offset + "\n");
        var target = DateTime.UtcNow + expected;
        var sw = Stopwatch.StartNew();
        DateTime? eventTime = null, telemetryTime = null;
        while (sw.Elapsed < TimeSpan.FromSeconds(30) && (eventTime is null || telemetryTime is null))
        {
            // FC 6 to address 500: refused 02 and audited, with the gateway's wall time.
            await client.RoundTripAsync([0, 9, 0, 0, 0, 6, 1, 6, 0x01, 0xF4, 0, 1]);
            await Task.Delay(200);
            eventTime ??= Near(EventTimes(gateway.Stdout), target);
            telemetryTime ??= Near(Telemetry(sub).Select(m => m.Ts), target);
        }
        output.WriteLine($"{offset}: event time {eventTime:O}, telemetry ts {telemetryTime:O}, expected about {target:O}");
        Assert.True(eventTime is not null, $"no audit event near {target:O} after the jump {offset}:\n{gateway.Stdout[^Math.Min(gateway.Stdout.Length, 2000)..]}");
        Assert.True(telemetryTime is not null, $"no telemetry ts near {target:O} after the jump {offset}");
    }

    private static DateTime? Near(IEnumerable<DateTime> times, DateTime target)
    {
        foreach (var t in times)
        {
            if ((t - target).Duration() < TimeSpan.FromMinutes(5))
            {
                return t;
            }
        }
        return null;
    }

    private static IEnumerable<DateTime> EventTimes(string journal) =>
        EventTime().Matches(journal).Select(m => DateTime.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal));

    private static List<(long Seq, DateTime Ts)> Telemetry(MosquittoSubscriber sub) =>
        [.. sub.Lines.Where(l => l.StartsWith("it/gw/plc1/level ", StringComparison.Ordinal)).Select(l =>
        {
            var json = JsonDocument.Parse(l["it/gw/plc1/level ".Length..]).RootElement;
            return (json.GetProperty("seq").GetInt64(), DateTime.Parse(json.GetProperty("ts").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal));
        })];

    private static async Task WaitTelemetry(MosquittoSubscriber sub, int count, Processes.Running gateway)
    {
        var sw = Stopwatch.StartNew();
        while (Telemetry(sub).Count < count && sw.Elapsed < TimeSpan.FromSeconds(60))
        {
            await Task.Delay(100);
        }
        Assert.True(Telemetry(sub).Count >= count, "no telemetry:\n" + gateway.Stdout + gateway.Stderr);
    }

    private static Task<byte[]> Read(RawClient client) => client.RoundTripAsync([0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1]);

    [GeneratedRegex(@"listener hmi-plc1 on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenLine();

    [GeneratedRegex("\"time\":\"([^\"]+)\",\"event\":\"denied\"")]
    private static partial Regex EventTime();
}
