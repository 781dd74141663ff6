using System.Globalization;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// <c>learn --listen</c> on an <c>s7comm</c> listener: snap7's client through the learning gateway to snap7's server,
/// then the draft checked and run in enforce mode in front of the same server, with the same traffic allowed.
/// </summary>
public sealed partial class S7LearnListenTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgeshield-s7-learn-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [GeneratedRegex(@"listener hmi-s7 on 127\.0\.0\.1:(\d+)")]
    private static partial Regex S7Listen();

    private static async Task<int> PortAsync(Processes.Running process)
    {
        Assert.True(await process.WaitForStderrAsync("listener hmi-s7 on ", 60_000), "did not start:\n" + process.Stderr);
        var match = S7Listen().Match(process.Stderr);
        Assert.True(match.Success, process.Stderr);
        return int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private static async Task<Snap7Result[]> TrafficAsync(int port) =>
    [
        await Snap7Peer.RunClientAsync("127.0.0.1", port, "op", "db-read", "1", "0", "4"),
        await Snap7Peer.RunClientAsync("127.0.0.1", port, "op", "db-write", "2", "10", "01020304"),
        await Snap7Peer.RunClientAsync("127.0.0.1", port, "op", "multi-read", "db:1:0:4", "m:0:0:2"),
    ];

    [Fact]
    public async Task LearnListen_S7Listener_DraftEnforcedAllowsTheSameTraffic()
    {
        await using var plc = await Snap7Peer.StartServerAsync();
        string config = Path.Combine(_dir, "config.yaml");
        await File.WriteAllTextAsync(config, $"""
            gateway: {"{"} name: it-gw, site: lab {"}"}
            listeners:
              - name: hmi-s7
                bind: 127.0.0.1:0
                protocol: s7comm
                upstream: tcp://127.0.0.1:{plc.Port}
                policy: press1
            policies:
              press1:
                protocol: s7comm
                mode: enforce
                rules:
                  - name: setup only
                    from: 127.0.0.0/8
                    connection: pg
                    function: setup-communication
            """);
        string draft = Path.Combine(_dir, "draft.yaml");
        await using (var learn = new Processes.Running(Processes.EdgeShield("learn", "--listen", "--config", config, "--seconds", "600", "--out", draft)))
        {
            int port = await PortAsync(learn);
            var learned = await TrafficAsync(port);
            Assert.All(learned, r => Assert.True(r.Ok, r.ToString()));
            // The enforcing config would have refused the OP connects: monitor mode audits them would-deny.
            Assert.True(await learn.WaitForStdoutAsync("\"would-deny\"", 30_000), "would-deny not audited:\n" + learn.Stdout);
            learn.Signal(Processes.SIGTERM);
            Assert.Equal(0, await learn.WaitForExitAsync(60_000));
            output.WriteLine(learn.Stderr);
        }

        string yaml = await File.ReadAllTextAsync(draft);
        output.WriteLine(yaml);
        Assert.Contains("policy: learned-s7", yaml, StringComparison.Ordinal);
        Assert.Contains("connection: op", yaml, StringComparison.Ordinal);
        Assert.Contains("function: write-var", yaml, StringComparison.Ordinal);
        Assert.Contains("(request ", yaml, StringComparison.Ordinal);
        string enforced = Path.Combine(_dir, "enforced.yaml");
        await File.WriteAllTextAsync(enforced, yaml.Replace("mode: monitor", "mode: enforce", StringComparison.Ordinal));
        var check = await Processes.RunAsync(Processes.EdgeShield("check", "--config", enforced));
        Assert.True(check.ExitCode == 0, check.Stdout + check.Stderr);

        await using var run = new Processes.Running(Processes.EdgeShield("run", "--config", enforced));
        int runPort = await PortAsync(run);
        var again = await TrafficAsync(runPort);
        Assert.All(again, r => Assert.True(r.Ok, r.ToString()));
        // Something it did not learn is refused: a write to DB 1.
        var other = await Snap7Peer.RunClientAsync("127.0.0.1", runPort, "op", "db-write", "1", "0", "01");
        Assert.False(other.Ok, other.ToString());
        Assert.True(await run.WaitForStdoutAsync("\"event\":\"denied\"", 30_000), run.Stdout);
        Assert.Single(run.Stdout.Split('\n'), line => line.Contains("\"event\":\"denied\"", StringComparison.Ordinal));
    }
}
