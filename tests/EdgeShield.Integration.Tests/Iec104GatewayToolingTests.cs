using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// The tooling on a live <c>protocol: iec104</c> listener, with lib60870's station and client (tests/peers/iec104):
/// <c>audit.pcap</c> records the refused ASDUs as tshark's iec60870_104 dissector reads them, and <c>learn --listen</c>
/// drafts a policy that, enforced, lets the same client's commands through.
/// </summary>
public partial class Iec104GatewayToolingTests(ITestOutputHelper output)
{
    private static string Config(int stationPort, string policy, string sections = "") => $$"""
        gateway: { name: it-gw, site: lab }
        listeners:
          - name: scada-rtu
            bind: 127.0.0.1:0
            protocol: iec104
            upstream: tcp://127.0.0.1:{{stationPort}}
            policy: rtu
        policies:
          rtu:
            protocol: iec104
        {{policy}}
        {{sections}}
        """;

    private const string Enforce = """
            mode: enforce
            rules:
              - name: interrogation and breakers
                from: 127.0.0.1
                type: [C_IC_NA_1, C_SC_NA_1]
                ca: 1
                ioa: [0, 2000-2009]
        """;

    [GeneratedRegex(@"listener scada-rtu on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenLine();

    private static async Task<(Processes.Running Gateway, int Port)> RunAsync(string configPath, params string[] args)
    {
        var gateway = new Processes.Running(Processes.EdgeShield([.. args, "--config", configPath]));
        Assert.True(await gateway.WaitForStderrAsync("listener scada-rtu on "), "gateway did not start:\n" + gateway.Stderr);
        var match = ListenLine().Match(gateway.Stderr);
        Assert.True(match.Success, gateway.Stderr);
        return (gateway, int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task AuditPcap_RefusedAsdus_AreRecordedAndTsharkDecodesThemAsIec104()
    {
        string dir = Directory.CreateTempSubdirectory("iec104-pcap-").FullName;
        string pcap = Path.Combine(dir, "denied.pcapng");
        try
        {
            await using var station = await Iec104Peer.StartStationAsync();
            string config = Path.Combine(dir, "gw.yaml");
            await File.WriteAllTextAsync(config, Config(station.Port, Enforce, $"audit:\n  pcap: {{ path: {pcap}, max-mb: 1 }}"));
            string commands = Path.Combine(dir, "cmds.txt");
            // Allowed: a breaker select/execute at 2001. Refused: a set-point (type, cause 44), a breaker at 2050 (IOA, 47), CA 2 (46).
            await File.WriteAllLinesAsync(commands, [
                "C_SC_NA_1 ca=1 ioa=2001 value=1 select",
                "C_SC_NA_1 ca=1 ioa=2001 value=1",
                "C_SE_NC_1 ca=1 ioa=3001 value=12.5",
                "C_SC_NA_1 ca=1 ioa=2050 value=1",
                "C_SC_NA_1 ca=2 ioa=2001 value=1",
            ]);
            var (gateway, port) = await RunAsync(config, "run");
            await using (gateway)
            {
                var run = await Iec104Peer.RunClientAsync($"127.0.0.1:{port}", ["--interrogate", "--commands", commands, "--timeout-ms", "3000"]);
                output.WriteLine(run.ToString());
                Assert.True(await gateway.WaitForStdoutAsync("\"ca\":2"), gateway.Stdout);
                await WaitForRowsAsync(pcap, port, 3);
            }

            var rows = await TsharkAsync(pcap, port);
            output.WriteLine(string.Join("\n", rows));
            Assert.Equal(3, rows.Count);
            // typeid, cot, common address, ioa, malformed, comment
            var setPoint = rows[0].Split('\t');
            var ioa = rows[1].Split('\t');
            var ca = rows[2].Split('\t');
            Assert.Equal(["50", "6", "1", "3001", ""], setPoint[..5]);
            Assert.StartsWith("denied", setPoint[5], StringComparison.Ordinal);
            Assert.Contains("cause 44", setPoint[5], StringComparison.Ordinal);
            Assert.Equal(["45", "6", "1", "2050", ""], ioa[..5]);
            Assert.Contains("cause 47", ioa[5], StringComparison.Ordinal);
            Assert.Equal(["45", "6", "2", "2001", ""], ca[..5]);
            Assert.Contains("cause 46", ca[5], StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task LearnListen_Iec104_DraftEnforcedLetsTheSameCommandsThrough()
    {
        string dir = Directory.CreateTempSubdirectory("iec104-learn-").FullName;
        try
        {
            await using var station = await Iec104Peer.StartStationAsync();
            string config = Path.Combine(dir, "gw.yaml");
            // The config's policy would refuse everything but interrogation: learn --listen runs it in monitor mode.
            await File.WriteAllTextAsync(config, Config(station.Port, """
                    mode: enforce
                    rules:
                      - name: interrogation only
                        from: 127.0.0.1
                        type: C_IC_NA_1
                        ca: 1
                """));
            string commands = Path.Combine(dir, "cmds.txt");
            await File.WriteAllLinesAsync(commands, [
                "C_SC_NA_1 ca=1 ioa=2001 value=1 select",
                "C_SC_NA_1 ca=1 ioa=2001 value=1",
                "C_SE_NC_1 ca=1 ioa=3001 value=12.5",
                "C_SE_NC_1 ca=1 ioa=3002 value=40",
            ]);
            string draft = Path.Combine(dir, "learned.yaml");
            var (learn, port) = await RunAsync(config, "learn", "--listen", "--seconds", "60", "--out", draft);
            await using (learn)
            {
                var run = await Iec104Peer.RunClientAsync($"127.0.0.1:{port}", ["--interrogate", "--commands", commands, "--timeout-ms", "3000"]);
                output.WriteLine(run.ToString());
                Assert.True(run.ExitCode == 0, run.ToString());
                learn.Signal(Processes.SIGTERM);
                Assert.Equal(0, await learn.WaitForExitAsync(60_000));
            }
            string yaml = await File.ReadAllTextAsync(draft);
            output.WriteLine(yaml);
            Assert.Contains("protocol: iec104", yaml, StringComparison.Ordinal);
            Assert.Contains("policy: learned-iec104", yaml, StringComparison.Ordinal);
            Assert.Contains("value: 12.5..40", yaml, StringComparison.Ordinal);
            Assert.Contains("select-before-operate: true", yaml, StringComparison.Ordinal);

            string enforced = Path.Combine(dir, "enforced.yaml");
            await File.WriteAllTextAsync(enforced, yaml.Replace("mode: monitor", "mode: enforce", StringComparison.Ordinal));
            var check = await Processes.RunAsync(Processes.EdgeShield("check", "--config", enforced));
            Assert.True(check.ExitCode == 0, check.Stderr + yaml);

            var (gateway, port2) = await RunAsync(enforced, "run");
            await using (gateway)
            {
                var again = await Iec104Peer.RunClientAsync($"127.0.0.1:{port2}", ["--interrogate", "--commands", commands, "--timeout-ms", "3000"]);
                output.WriteLine(again.ToString());
                Assert.True(again.ExitCode == 0, again.ToString());
                Assert.Equal("0", again.Summary["negative"]);
                // A set-point outside what was learned is refused.
                await File.WriteAllLinesAsync(commands, ["C_SE_NC_1 ca=1 ioa=3001 value=99"]);
                var outside = await Iec104Peer.RunClientAsync($"127.0.0.1:{port2}", ["--commands", commands, "--timeout-ms", "3000"]);
                output.WriteLine(outside.ToString());
                Assert.Equal("1", outside.Summary["negative"]);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Polls the file (at most 30 s) until tshark reads <paramref name="count"/> IEC 104 ASDU rows.</summary>
    private static async Task WaitForRowsAsync(string pcap, int port, int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (File.Exists(pcap) && (await TsharkAsync(pcap, port, requireSuccess: false)).Count >= count)
            {
                return;
            }
            await Task.Delay(200);
        }
    }

    /// <summary>The listener's port is not 2404: tshark is told it carries IEC 104.</summary>
    private static async Task<List<string>> TsharkAsync(string pcap, int port, bool requireSuccess = true)
    {
        var start = new ProcessStartInfo("tshark") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[]
        {
            "-n", "-r", pcap, "-d", $"tcp.port=={port},iec60870_104", "-Y", "iec60870_asdu", "-T", "fields",
            "-e", "iec60870_asdu.typeid", "-e", "iec60870_asdu.causetx", "-e", "iec60870_asdu.addr", "-e", "iec60870_asdu.ioa",
            "-e", "_ws.malformed", "-e", "frame.comment",
        })
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        if (!requireSuccess && process.ExitCode != 0)
        {
            return [];
        }
        Assert.True(process.ExitCode == 0, "tshark: " + await stderr);
        return [.. (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries)];
    }
}
