using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using EdgeShield.Simulators;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// `edgeshield run` as systemd runs it (Type=notify, WatchdogSec): the test owns the NOTIFY_SOCKET.
/// And the unit file: `systemd-analyze verify` clean, `security --offline=yes` exposure ≤ 2.0.
/// </summary>
public partial class SystemdTests
{
    private static string UnitPath => Path.Combine(Processes.RepoRoot, "firmware-config", "systemd", "edgeshield.service");

    private static System.Diagnostics.ProcessStartInfo Run(string config, NotifySocket socket, int watchdogUsec)
    {
        var start = Processes.EdgeShield("run", "--config", config);
        start.Environment["NOTIFY_SOCKET"] = socket.Path;
        start.Environment["WATCHDOG_USEC"] = watchdogUsec.ToString(CultureInfo.InvariantCulture);
        return start;
    }

    /// <summary>A gateway for a simulated PLC under <paramref name="watchdogUsec"/>, run until READY=1, then <paramref name="body"/>.</summary>
    private static async Task UnderNotifySocketAsync(int watchdogUsec, Func<Processes.Running, NotifySocket, Task> body)
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions(), CancellationToken.None);
        string path = Path.Combine(Path.GetTempPath(), $"edgeshield-sd-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, GatewayProcess.Config(plc.Port, GatewayProcess.Policy));
        using var socket = new NotifySocket();
        try
        {
            await using var gateway = new Processes.Running(Run(path, socket, watchdogUsec));
            Assert.True(await socket.WaitForAsync("READY=1"), "no READY=1: " + string.Join(" | ", socket.Messages) + gateway.Stderr);
            await body(gateway, socket);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Run_UnderNotifySocket_SendsReadyWatchdogAndStopping()
    {
        await UnderNotifySocketAsync(400_000, async (gateway, socket) =>
        {
            Assert.DoesNotContain(socket.Messages.TakeWhile(m => !m.Contains("READY=1", StringComparison.Ordinal)), m => m.Contains("WATCHDOG=1", StringComparison.Ordinal)); // READY first
            // READY=1 comes only after the listener is bound: it accepts now.
            Assert.True(await gateway.WaitForStderrAsync("listener hmi-plc1 on "));
            var port = int.Parse(ListenLine().Match(gateway.Stderr).Groups[1].Value, CultureInfo.InvariantCulture);
            using (var client = new TcpClient())
            {
                await client.ConnectAsync(IPAddress.Loopback, port);
            }
            // WatchdogSec 0.4 s: pings every 0.2 s.
            Assert.True(await socket.WaitForAsync("WATCHDOG=1", 20_000), "no WATCHDOG=1: " + string.Join(" | ", socket.Messages));
            Assert.True(await socket.WaitForAsync("WATCHDOG=1", 20_000)); // bounds generous: a loaded machine runs the 0.2 s pings late
            gateway.Signal(Processes.SIGTERM);
            Assert.True(await socket.WaitForAsync("STOPPING=1", 10_000), "no STOPPING=1: " + string.Join(" | ", socket.Messages));
            Assert.Equal(0, await gateway.WaitForExitAsync());
        });
    }

    /// <summary>
    /// Each SIGHUP is RELOADING=1 then READY=1 with the policy's hash (systemd's reload protocol), and after more
    /// reloads than a unix datagram queue holds (net.unix.max_dgram_qlen, 10) SIGTERM still stops the gateway.
    /// </summary>
    [Fact]
    public async Task Run_UnderNotifySocket_EveryReloadIsNotified_AndStopsAfterMany()
    {
        await UnderNotifySocketAsync(0, async (gateway, socket) =>
        {
            for (int i = 0; i < 12; i++)
            {
                gateway.Signal(Processes.SIGHUP);
                Assert.True(await socket.WaitForAsync("RELOADING=1", 20_000), $"reload {i + 1}: no RELOADING=1: " + string.Join(" | ", socket.Messages));
                Assert.True(await socket.WaitForAsync("READY=1", 20_000), $"reload {i + 1}: no READY=1: " + string.Join(" | ", socket.Messages));
                Assert.Matches("STATUS=running, policy sha256 [0-9a-f]{64}", socket.LastMatch);
            }
            gateway.Signal(Processes.SIGTERM);
            Assert.True(await socket.WaitForAsync("STOPPING=1", 10_000), "no STOPPING=1: " + string.Join(" | ", socket.Messages));
            Assert.Equal(0, await gateway.WaitForExitAsync());
        });
    }

    /// <summary>The host's systemd lifetime listens for SIGTERM only; Ctrl+C (SIGINT) must stop as cleanly.</summary>
    [Fact]
    public async Task Run_UnderNotifySocket_SigintStopsCleanly()
    {
        await UnderNotifySocketAsync(0, async (gateway, socket) =>
        {
            gateway.Signal(Processes.SIGINT);
            Assert.True(await socket.WaitForAsync("STOPPING=1", 10_000), "no STOPPING=1: " + string.Join(" | ", socket.Messages));
            Assert.Equal(0, await gateway.WaitForExitAsync());
            Assert.Contains("\"reason\":\"stopping\"", gateway.Stdout, StringComparison.Ordinal);
        });
    }

    [Fact]
    public async Task Run_WithInvalidConfig_ReportsStatusAndNeverReady()
    {
        string path = Path.Combine(Path.GetTempPath(), $"edgeshield-sd-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, "listeners:\n  - name: x\n    bind: 127.0.0.1:0\n    upstream: tcp://127.0.0.1:1\n    policy: nope\n");
        using var socket = new NotifySocket();
        try
        {
            await using var gateway = new Processes.Running(Run(path, socket, 0));
            Assert.Equal(2, await gateway.WaitForExitAsync());
            Assert.True(await socket.WaitForAsync("STATUS=invalid configuration", 20_000), string.Join(" | ", socket.Messages));
            Assert.Contains("policy 'nope' is not defined", socket.LastMatch, StringComparison.Ordinal);
            Assert.DoesNotContain(socket.Messages, m => m.Contains("READY=1", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// journald: with JOURNAL_STREAM naming stdout (here a file whose device:inode the test puts in it, as
    /// systemd does for its stream socket), each audit line starts with its priority — &lt;4&gt; refusals,
    /// &lt;3&gt; malformed, &lt;5&gt; service events — and is one JSON object after it. When stdout is another
    /// stream (a pipe that inherited the variable), no prefix.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Run_WritesJournalPriorities_OnlyWhenStdoutIsTheJournal(bool stdoutIsTheJournal)
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions(), CancellationToken.None);
        string path = Path.Combine(Path.GetTempPath(), $"edgeshield-sd-{Guid.NewGuid():N}.yaml");
        string journal = Path.Combine(Path.GetTempPath(), $"edgeshield-journal-{Guid.NewGuid():N}.log");
        await File.WriteAllTextAsync(path, GatewayProcess.Config(plc.Port, GatewayProcess.Policy));
        await File.WriteAllTextAsync(journal, "");
        try
        {
            var stat = await Processes.RunAsync(Processes.Tool("/usr/bin/stat", "-c", "%d:%i", journal));
            string deviceInode = stat.Stdout.Trim();
            Assert.Matches(@"^\d+:\d+$", deviceInode);
            System.Diagnostics.ProcessStartInfo start;
            if (stdoutIsTheJournal)
            {
                // exec: the shell's pid becomes the gateway's, with stdout on the file.
                start = Processes.Tool("/bin/sh", "-c", "exec dotnet \"$0\" run --config \"$1\" >>\"$2\"", Processes.EdgeShieldDll, path, journal);
            }
            else
            {
                start = Processes.EdgeShield("run", "--config", path);
            }
            start.Environment["JOURNAL_STREAM"] = deviceInode;
            await using var gateway = new Processes.Running(start);
            Assert.True(await gateway.WaitForStderrAsync("listener hmi-plc1 on "), gateway.Stderr);
            var port = int.Parse(ListenLine().Match(gateway.Stderr).Groups[1].Value, CultureInfo.InvariantCulture);
            using (var client = await RawClient.ConnectAsync(port))
            {
                // Allowed (routine: no event), then a write the policy refuses.
                Assert.Equal(3, (await client.RoundTripAsync([0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1]))[7]);
                Assert.Equal(0x86, (await client.RoundTripAsync([0, 2, 0, 0, 0, 6, 1, 6, 1, 0xF4, 0, 1]))[7]);
            }
            using (var raw = new Socket(SocketType.Stream, ProtocolType.Tcp))
            {
                // Not Modbus: protocol id 7. The gateway drops it and closes the connection.
                await raw.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
                await raw.SendAsync(new byte[] { 0, 3, 0, 7, 0, 6, 1, 3, 0, 0, 0, 1 }, SocketFlags.None);
                using var closed = new CancellationTokenSource(20_000); // a close that must come: generous for CI
                Assert.Equal(0, await raw.ReceiveAsync(new byte[16], SocketFlags.None, closed.Token));
            }
            gateway.Signal(Processes.SIGTERM);
            Assert.Equal(0, await gateway.WaitForExitAsync());

            var lines = (stdoutIsTheJournal ? await File.ReadAllTextAsync(journal) : gateway.Stdout)
                .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            Assert.True(lines.Length >= 4, string.Join("\n", lines) + gateway.Stderr);
            var events = new List<(string Prefix, string Event)>();
            foreach (var line in lines)
            {
                var match = JournalLine().Match(line);
                Assert.True(match.Success, line);
                // One JSON object per line after the prefix.
                using var json = System.Text.Json.JsonDocument.Parse(match.Groups[2].Value);
                // Service events by their reason (started, stopping), the others by their event name.
                string name = json.RootElement.GetProperty("event").GetString()!;
                events.Add((match.Groups[1].Value, name == "service" ? json.RootElement.GetProperty("reason").GetString()! : name));
            }
            string Prefix(string name) => Assert.Single(events, e => e.Event == name).Prefix;
            if (stdoutIsTheJournal)
            {
                Assert.Equal("<5>", Prefix("started"));
                Assert.Equal("<4>", Prefix("denied"));
                Assert.Equal("<3>", Prefix("malformed"));
                Assert.Equal("<5>", Prefix("stopping"));
            }
            else
            {
                Assert.All(events, e => Assert.Equal("", e.Prefix));
                Assert.Equal(["started", "denied", "malformed", "stopping"], events.Select(e => e.Event).Where(e => e is "started" or "denied" or "malformed" or "stopping"));
            }
        }
        finally
        {
            File.Delete(path);
            File.Delete(journal);
        }
    }

    [Fact]
    public async Task UnitFile_VerifiesClean_AndExposureIsAtMost2()
    {
        // verify checks that ExecStart= exists: point the unit at a stand-in binary, nothing else changed.
        string dir = Directory.CreateTempSubdirectory("es-unit-").FullName;
        try
        {
            string stub = Path.Combine(dir, "edgeshield");
            File.Copy("/bin/true", stub);
            string unit = Path.Combine(dir, "edgeshield.service");
            await File.WriteAllTextAsync(unit, (await File.ReadAllTextAsync(UnitPath)).Replace("/usr/bin/edgeshield", stub, StringComparison.Ordinal));

            var verify = await Processes.RunAsync(Processes.Tool("/usr/bin/systemd-analyze", "verify", "--man=no", unit));
            Assert.True(verify.ExitCode == 0 && verify.Stderr.Trim().Length == 0 && verify.Stdout.Trim().Length == 0, verify.Stdout + verify.Stderr);

            var security = await Processes.RunAsync(Processes.Tool("/usr/bin/systemd-analyze", "security", "--offline=yes", "--no-pager", UnitPath));
            var match = ExposureLine().Match(security.Stdout);
            Assert.True(match.Success, security.Stdout + security.Stderr);
            double exposure = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.True(exposure <= 2.0, $"exposure {exposure} > 2.0:\n{security.Stdout}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task UnitFile_HasTheContractedSettings()
    {
        var unit = await File.ReadAllLinesAsync(UnitPath);
        foreach (var line in new[]
        {
            "Type=notify", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID", "User=edgeshield", "ProtectSystem=strict",
            "NoNewPrivileges=yes", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "SystemCallFilter=@system-service", "DevicePolicy=closed",
        })
        {
            Assert.Contains(line, unit);
        }
        Assert.Contains(unit, l => l.StartsWith("WatchdogSec=", StringComparison.Ordinal));
        // Signed configs only, judged by keys outside the config, with the version floor in the state directory (docs/SIGNING.md).
        Assert.Contains("ExecStart=/usr/bin/edgeshield run --config /etc/edgeshield/edgeshield.yaml --trust /etc/edgeshield/trust --state /var/lib/edgeshield", unit);
        Assert.Contains("ReadWritePaths=/var/lib/edgeshield", unit);
        Assert.Contains(unit, l => l.StartsWith("RestrictAddressFamilies=", StringComparison.Ordinal));
        Assert.Contains(unit, l => l.StartsWith("DeviceAllow=/dev/gpiochip", StringComparison.Ordinal));
    }

    [GeneratedRegex(@"listener hmi-plc1 on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenLine();

    [GeneratedRegex(@"^(<[0-7]>)?(\{.*\})$")]
    private static partial Regex JournalLine();

    [GeneratedRegex(@"Overall exposure level for .*: (\d+\.\d+)")]
    private static partial Regex ExposureLine();
}
