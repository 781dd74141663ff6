using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using EdgeShield.Simulators;
using EdgeShield.Transport.Tests;
using Xunit.Abstractions;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// Faults of the inspected path with the real `edgeshield run` process (issue 7, item 5): the PLC process killed
/// with SIGKILL and started again under load, and the serial adapter unplugged and plugged back.
/// </summary>
public partial class GatewayFaultTests(ITestOutputHelper output)
{
    private const int Clients = 6;

    private enum Outcome { Normal, Exception0A, Exception0B, OtherException, Hung, Closed }

    private sealed record Answer(long AtMs, Outcome Outcome);

    /// <summary>
    /// Expected: six HMI connections poll as fast as they are answered; the PLC process is killed with -9 and started
    /// again on the same port 3 s later. During the outage every request is answered 0B (PLC unreachable or no answer
    /// within response-timeout) — never hung (no request waits beyond 5 s), no client connection closed; after the
    /// restart every connection gets normal answers again (within the reconnect backoff, at most 5 s), without a
    /// gateway restart. Lost: the requests in flight at the kill (answered 0B; the HMI retries).
    /// </summary>
    [Fact]
    public async Task PlcKill9AndRestartUnderLoad_Outage0B_NoHang_EveryConnectionRecovers()
    {
        string dir = Directory.CreateTempSubdirectory("es-plcfault-").FullName;
        int plcPort = Processes.FreePort();
        string config = Path.Combine(dir, "edgeshield.yaml");
        await File.WriteAllTextAsync(config, $$"""
            gateway: { name: it-gw, site: lab }
            listeners:
              - name: hmi-plc1
                bind: 127.0.0.1:0
                upstream: tcp://127.0.0.1:{{plcPort}}
                policy: plc1
                limits: { response-timeout: 1s, connect-timeout: 1s }
            policies:
              plc1:
            {{GatewayProcess.Policy}}
            """);
        var plc = new Processes.Running(Processes.EdgeShieldSim("plc", "--listen", $"127.0.0.1:{plcPort}", "--units", "1"));
        await using var gateway = new Processes.Running(Processes.EdgeShield("run", "--config", config));
        var answers = new ConcurrentQueue<Answer>[Clients];
        using var stop = new CancellationTokenSource();
        var clock = Stopwatch.StartNew();
        Task[] load = [];
        long killedAt = 0, restartBegunAt = 0, restartedAt = 0;
        try
        {
            Assert.True(await plc.WaitForStdoutAsync("listening on", 60_000), "PLC did not start:\n" + plc.Stderr);
            Assert.True(await gateway.WaitForStderrAsync("listener hmi-plc1 on ", 60_000), "gateway did not start:\n" + gateway.Stderr);
            int port = int.Parse(ListenLine().Match(gateway.Stderr).Groups[1].Value, CultureInfo.InvariantCulture);
            load = [.. Enumerable.Range(0, Clients).Select(i => PollAsync(port, answers[i] = new(), clock, stop.Token))];

            await Until(() => answers.All(a => a.Count(x => x.Outcome == Outcome.Normal) >= 20), "normal traffic before the kill");
            plc.Process.Kill();
            await plc.Process.WaitForExitAsync();
            killedAt = clock.ElapsedMilliseconds;
            await Task.Delay(3000);
            await plc.DisposeAsync();
            // The outage ends when the new PLC is started, not when the test sees its "listening" line: on a
            // loaded machine the gateway may already have reached it by then (normal answers before restartedAt).
            restartBegunAt = clock.ElapsedMilliseconds;
            plc = new Processes.Running(Processes.EdgeShieldSim("plc", "--listen", $"127.0.0.1:{plcPort}", "--units", "1"));
            Assert.True(await plc.WaitForStdoutAsync("listening on", 60_000), "PLC did not restart:\n" + plc.Stderr);
            restartedAt = clock.ElapsedMilliseconds;
            await Until(() => answers.All(a => a.Count(x => x.AtMs > restartedAt && x.Outcome == Outcome.Normal) >= 20), "normal answers on every connection after the restart");
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(load);
            if (!plc.Process.HasExited)
            {
                plc.Signal(Processes.SIGTERM);
                await plc.WaitForExitAsync(30_000);
            }
            await plc.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }

        var all = answers.SelectMany(a => a).ToList();
        var outage = all.Where(a => a.AtMs > killedAt + 200 && a.AtMs < restartBegunAt).ToList();
        var byOutcome = all.GroupBy(a => a.Outcome).ToDictionary(g => g.Key, g => g.Count());
        output.WriteLine($"answers {all.Count}: {string.Join(", ", byOutcome.Select(kv => $"{kv.Key} {kv.Value}"))}; during the {restartedAt - killedAt} ms outage: {outage.Count} answers, all {string.Join('/', outage.Select(a => a.Outcome).Distinct())}");
        Assert.Equal(0, byOutcome.GetValueOrDefault(Outcome.Hung));
        Assert.Equal(0, byOutcome.GetValueOrDefault(Outcome.Closed));
        Assert.Equal(0, byOutcome.GetValueOrDefault(Outcome.OtherException));
        Assert.NotEmpty(outage);
        Assert.All(outage, a => Assert.Equal(Outcome.Exception0B, a.Outcome));
        // The restarted PLC was reached through the same gateway process, which never restarted.
        Assert.False(gateway.Process.HasExited);
        Assert.Matches(@"fc 3: [1-9]", plc.Stdout);
    }

    /// <summary>One HMI connection: reads in a loop, each answer classified; a request not answered in 5 s is a hang.</summary>
    private static async Task PollAsync(int port, ConcurrentQueue<Answer> answers, Stopwatch clock, CancellationToken ct)
    {
        using var client = await RawClient.ConnectAsync(port);
        for (ushort tid = 1; !ct.IsCancellationRequested; tid++)
        {
            Outcome outcome;
            try
            {
                var response = await client.RoundTripAsync([(byte)(tid >> 8), (byte)tid, 0, 0, 0, 6, 1, 3, 0, 0, 0, 4]);
                outcome = response[7] == 3 ? Outcome.Normal : response[7] != 0x83 ? Outcome.OtherException : response[8] switch
                {
                    0x0A => Outcome.Exception0A,
                    0x0B => Outcome.Exception0B,
                    _ => Outcome.OtherException,
                };
            }
            catch (OperationCanceledException)
            {
                answers.Enqueue(new Answer(clock.ElapsedMilliseconds, Outcome.Hung));
                return;
            }
            catch (IOException)
            {
                answers.Enqueue(new Answer(clock.ElapsedMilliseconds, Outcome.Closed));
                return;
            }
            answers.Enqueue(new Answer(clock.ElapsedMilliseconds, outcome));
            if (outcome != Outcome.Normal)
            {
                await Task.Delay(20, CancellationToken.None); // an HMI's retry pace, not a busy loop against the outage
            }
        }
    }

    /// <summary>
    /// Expected: the RS-485 adapter disappears (socat killed: both pty ends hang up, as an unplugged USB adapter) —
    /// the bus reports the port gone and answers 0A at once (no 1 s timeouts piling up); plugged back (a new socat on
    /// the same path, the RTU device on it) the bus reopens it by itself and the same client connection gets normal
    /// answers, without a gateway restart. Lost: requests in flight at the unplug (answered 0B or 0A).
    /// </summary>
    [Fact]
    public async Task SerialAdapterUnpluggedAndReplugged_Answers0A_ThenRecoversWithoutRestart()
    {
        using var pty = new PtyPair();
        var plc = RtuPlcSimulator.Start(new RtuPlcOptions { Device = pty.Device, Baud = 38400, Unit = 3 });
        string config = Path.Combine(pty.Directory, "serial.yaml");
        await File.WriteAllTextAsync(config, SerialGatewayConfig.Yaml(pty.Master));
        try
        {
            await using var gateway = new Processes.Running(Processes.EdgeShield("run", "--config", config));
            Assert.True(await gateway.WaitForStderrAsync("listener hmi-rtu on ", 60_000), "gateway did not start:\n" + gateway.Stderr);
            int port = int.Parse(RtuListenLine().Match(gateway.Stderr).Groups[1].Value, CultureInfo.InvariantCulture);
            using var client = await RawClient.ConnectAsync(port);
            ushort tid = 0;
            async Task<byte[]> ReadAsync() => await client.RoundTripAsync([0, (byte)++tid, 0, 0, 0, 6, 3, 3, 0, 0, 0, 2]);

            Assert.Equal(3, (await ReadAsync())[7]);
            pty.Stop();
            plc.Dispose();
            var unplugged = await ReadUntilAsync(ReadAsync, r => r[7] == 0x83 && r[8] == 0x0A);
            Assert.NotNull(unplugged);
            // While it stays unplugged every answer is 0A (path unavailable, at once), not 0B (a response timeout on a line it knows is gone).
            var sw = Stopwatch.StartNew();
            var again = await ReadAsync();
            byte[] gatewayPathUnavailable = [0x83, 0x0A];
            Assert.Equal(gatewayPathUnavailable, again[7..9]);
            long unpluggedAnswerMs = sw.ElapsedMilliseconds;

            pty.Start();
            plc = RtuPlcSimulator.Start(new RtuPlcOptions { Device = pty.Device, Baud = 38400, Unit = 3 });
            plc.SetHoldingRegister(3, 1, 77);
            var recovered = await ReadUntilAsync(ReadAsync, r => r[7] == 3);
            Assert.NotNull(recovered);
            Assert.Equal(77, recovered.Value.Response[12]);
            Assert.False(gateway.Process.HasExited);
            output.WriteLine($"unplugged: 0A after {unplugged.Value.Attempts} reads (then answered in {unpluggedAnswerMs} ms); replugged: normal after {recovered.Value.Attempts} reads");
        }
        finally
        {
            plc.Dispose();
        }
    }

    /// <summary>Reads every 100 ms (bounded: 200 tries) until <paramref name="done"/> holds.</summary>
    private static async Task<(byte[] Response, int Attempts)?> ReadUntilAsync(Func<Task<byte[]>> read, Func<byte[], bool> done)
    {
        for (int attempt = 1; attempt <= 200; attempt++)
        {
            var response = await read();
            if (done(response))
            {
                return (response, attempt);
            }
            await Task.Delay(100);
        }
        return null;
    }

    private static async Task Until(Func<bool> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        bool reached;
        while (!(reached = condition()) && sw.Elapsed < TimeSpan.FromSeconds(60))
        {
            await Task.Delay(50);
        }
        Assert.True(reached, "not reached in 60 s: " + what);
    }

    [GeneratedRegex(@"listener hmi-plc1 on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenLine();

    [GeneratedRegex(@"listener hmi-rtu on 127\.0\.0\.1:(\d+)")]
    private static partial Regex RtuListenLine();
}
