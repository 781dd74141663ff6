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

    private sealed class NotifySocket : IDisposable
    {
        private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);

        public NotifySocket() => _socket.Bind(new UnixDomainSocketEndPoint(Path));

        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"es-it-notify-{Guid.NewGuid():N}.sock");

        public List<string> Messages { get; } = [];

        /// <summary>Collects datagrams until one contains <paramref name="text"/> or the timeout passes.</summary>
        public async Task<bool> WaitForAsync(string text, int timeoutMs = 30_000)
        {
            var buffer = new byte[4096];
            var deadline = Environment.TickCount64 + timeoutMs;
            while (Environment.TickCount64 < deadline)
            {
                using var cts = new CancellationTokenSource((int)Math.Max(1, deadline - Environment.TickCount64));
                try
                {
                    int read = await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                    var message = Encoding.UTF8.GetString(buffer, 0, read);
                    Messages.Add(message);
                    if (message.Contains(text, StringComparison.Ordinal))
                    {
                        return true;
                    }
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
            return false;
        }

        public void Dispose()
        {
            _socket.Dispose();
            File.Delete(Path);
        }
    }

    private static System.Diagnostics.ProcessStartInfo Run(string config, NotifySocket socket, int watchdogUsec)
    {
        var start = Processes.EdgeShield("run", "--config", config);
        start.Environment["NOTIFY_SOCKET"] = socket.Path;
        start.Environment["WATCHDOG_USEC"] = watchdogUsec.ToString(CultureInfo.InvariantCulture);
        return start;
    }

    [Fact]
    public async Task Run_UnderNotifySocket_SendsReadyWatchdogAndStopping()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions(), CancellationToken.None);
        string path = Path.Combine(Path.GetTempPath(), $"edgeshield-sd-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, GatewayProcess.Config(plc.Port, GatewayProcess.Policy));
        using var socket = new NotifySocket();
        try
        {
            await using var gateway = new Processes.Running(Run(path, socket, 400_000));
            Assert.True(await socket.WaitForAsync("READY=1"), "no READY=1: " + string.Join(" | ", socket.Messages) + gateway.Stderr);
            // READY=1 comes only after the listener is bound: it accepts now.
            Assert.True(await gateway.WaitForStderrAsync("listener hmi-plc1 on "));
            var port = int.Parse(ListenLine().Match(gateway.Stderr).Groups[1].Value, CultureInfo.InvariantCulture);
            using (var client = new TcpClient())
            {
                await client.ConnectAsync(IPAddress.Loopback, port);
            }
            // WatchdogSec 0.4 s: pings every 0.2 s.
            Assert.True(await socket.WaitForAsync("WATCHDOG=1", 5000), "no WATCHDOG=1: " + string.Join(" | ", socket.Messages));
            Assert.True(await socket.WaitForAsync("WATCHDOG=1", 5000));
            gateway.Signal(Processes.SIGTERM);
            Assert.True(await socket.WaitForAsync("STOPPING=1", 10_000), "no STOPPING=1: " + string.Join(" | ", socket.Messages));
            Assert.Equal(0, await gateway.WaitForExitAsync());
        }
        finally
        {
            File.Delete(path);
        }
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
            Assert.True(await socket.WaitForAsync("STATUS=invalid configuration", 5000), string.Join(" | ", socket.Messages));
            Assert.Contains("policy 'nope' is not defined", socket.Messages[^1], StringComparison.Ordinal);
            Assert.DoesNotContain(socket.Messages, m => m.Contains("READY=1", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(path);
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
        Assert.Contains(unit, l => l.StartsWith("RestrictAddressFamilies=", StringComparison.Ordinal));
        Assert.Contains(unit, l => l.StartsWith("DeviceAllow=/dev/gpiochip", StringComparison.Ordinal));
    }

    [GeneratedRegex(@"listener hmi-plc1 on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenLine();

    [GeneratedRegex(@"Overall exposure level for .*: (\d+\.\d+)")]
    private static partial Regex ExposureLine();
}
