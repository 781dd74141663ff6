using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeShield.Simulators;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// <c>run</c> with <c>audit.journal</c> as a separate process, and <c>audit verify</c> on what it wrote: a kill -9
/// during a burst leaves an intact chain (at most a torn last line), a restart continues it, and the checkpoints
/// reach the MQTT events topic, where they catch a cut tail.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed partial class AuditJournalProcessTests : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgeshield-it-journal-").FullName;
    private PlcSimulator? _plc;

    private string Journal => Path.Combine(_dir, "audit");
    private string PublicKey => Path.Combine(_dir, "audit-key.pub.pem");

    public async ValueTask DisposeAsync()
    {
        if (_plc is not null)
        {
            await _plc.DisposeAsync();
        }
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<string> ConfigAsync(string extra = "", int checkpointEvery = 100, int checkpointSeconds = 10)
    {
        _plc ??= await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions(), CancellationToken.None);
        string path = Path.Combine(_dir, "edgeshield.yaml");
        await File.WriteAllTextAsync(path, GatewayProcess.Config(_plc.Port, GatewayProcess.Policy)
            + $"\naudit:\n  journal: {{ path: {Journal}, checkpoint-every: {checkpointEvery}, checkpoint-seconds: {checkpointSeconds} }}\n" + extra);
        return path;
    }

    private static async Task<(Processes.Running Gateway, int Port)> StartAsync(string config, string state)
    {
        var gateway = new Processes.Running(Processes.EdgeShield("run", "--config", config, "--state", state));
        Assert.True(await gateway.WaitForStderrAsync("listener hmi-plc1 on "), "gateway did not start:\n" + gateway.Stderr);
        return (gateway, int.Parse(ListenLine().Match(gateway.Stderr).Groups[1].Value, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"listener hmi-plc1 on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenLine();

    /// <summary>Write single register 500: outside every rule, so each one is a <c>denied</c> event.</summary>
    private static async Task DenyAsync(int port, int requests, CancellationToken ct = default)
    {
        using var client = await RawClient.ConnectAsync(port);
        for (int i = 0; i < requests && !ct.IsCancellationRequested; i++)
        {
            await client.RoundTripAsync([(byte)(i >> 8), (byte)i, 0, 0, 0, 6, 1, 6, 0x01, 0xF4, 0, 1]);
        }
    }

    private async Task<ProcessResult> VerifyAsync(params string[] extra) =>
        await Processes.RunAsync(Processes.EdgeShield(["audit", "verify", Journal, "--key", PublicKey, .. extra]));

    [Fact]
    public async Task Kill9DuringABurst_VerifyIntact_ThenARestartContinuesTheChain()
    {
        string config = await ConfigAsync(checkpointEvery: 20);
        var (gateway, port) = await StartAsync(config, _dir);
        await using (gateway)
        {
            // Several clients (sources share 127.0.0.1, so flood control writes some and summarises the rest).
            using var stop = new CancellationTokenSource();
            var burst = Enumerable.Range(0, 4).Select(_ => DenyAsync(port, 100_000, stop.Token)).ToArray();
            var until = DateTime.UtcNow.AddSeconds(20);
            while (File.ReadAllText(Path.Combine(Journal, "audit-000001.jsonl")).Split('\n').Length < 150 && DateTime.UtcNow < until)
            {
                await Task.Delay(100);
            }
            gateway.Process.Kill();
            await gateway.Process.WaitForExitAsync();
            stop.Cancel();
            // The clients end with the connection the kill cut.
            await Task.WhenAny(Task.WhenAll(burst), Task.Delay(5000));
        }
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_dir, "audit-key.pem")));

        var afterKill = await VerifyAsync();
        Assert.True(afterKill.ExitCode == 0, afterKill.Stdout + afterKill.Stderr);
        Assert.Contains("intact: ", afterKill.Stdout, StringComparison.Ordinal);
        long lastBefore = long.Parse(Regex.Match(afterKill.Stdout, @"seq 1\.\.(\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.True(lastBefore >= 150, afterKill.Stdout);

        // What a power cut in the middle of a write leaves (a kill -9 does not tear a write(2)): a line cut short.
        string segment = Path.Combine(Journal, "audit-000001.jsonl");
        await File.AppendAllTextAsync(segment, $"{{\"seq\":{lastBefore + 1},\"prev\":\"5e2f");
        var torn = await VerifyAsync();
        Assert.True(torn.ExitCode == 0, torn.Stdout + torn.Stderr);
        Assert.Contains($"audit-000001.jsonl:{lastBefore + 1}: warning: torn-line: ", torn.Stderr, StringComparison.Ordinal);

        (gateway, _) = await StartAsync(config, _dir);
        await using (gateway)
        {
            Assert.DoesNotContain("key created", gateway.Stderr, StringComparison.Ordinal);
            gateway.Signal(Processes.SIGTERM);
            Assert.Equal(0, await gateway.WaitForExitAsync());
        }
        var afterRestart = await VerifyAsync("--json");
        Assert.True(afterRestart.ExitCode == 0, afterRestart.Stdout + afterRestart.Stderr);
        var report = JsonDocument.Parse(afterRestart.Stdout).RootElement;
        Assert.Equal("intact", report.GetProperty("status").GetString());
        Assert.Equal(1, report.GetProperty("first_seq").GetInt64());
        Assert.True(report.GetProperty("last_seq").GetInt64() > lastBefore);
        // The clean stop signed its tail.
        Assert.Equal(report.GetProperty("last_seq").GetInt64(), report.GetProperty("last_checkpoint_seq").GetInt64());
        Assert.Empty(report.GetProperty("warnings").EnumerateArray());
        var journal = await File.ReadAllTextAsync(segment);
        // The restart's first line is the note about the torn tail it cut (seq lastBefore + 1), then the chain goes on.
        Assert.Contains($"opened after seq {lastBefore + 1}; ", journal, StringComparison.Ordinal);
        Assert.Contains("\"reason\":\"audit-journal-torn-tail\"", journal, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Checkpoints_ReachTheEventsTopic_AndCatchACutTail()
    {
        await using var broker = new MosquittoBroker(_dir);
        await broker.StartAsync();
        await using var subscriber = new MosquittoSubscriber(broker.Port, "it/gw/events");
        string config = await ConfigAsync($$"""
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:{{broker.Port}}, client-id: it-journal-{{broker.Port}}, topic-prefix: it/gw }
              buffer: { path: {{_dir}}/buffer, max-mb: 8 }
              poll:
                - device: plc1
                  upstream: tcp://127.0.0.1:{{(await EnsurePlcAsync()).Port}}
                  every: 1s
                  tags:
                    - { name: level, table: holding, address: 0, type: uint16 }

            """, checkpointEvery: 1000, checkpointSeconds: 1);
        var (gateway, port) = await StartAsync(config, _dir);
        await using (gateway)
        {
            await DenyAsync(port, 20);
            var until = DateTime.UtcNow.AddSeconds(30);
            while (subscriber.Lines.Count(l => l.Contains("\"event\":\"checkpoint\"", StringComparison.Ordinal)) < 2 && DateTime.UtcNow < until)
            {
                await DenyAsync(port, 2);
                await Task.Delay(300);
            }
            gateway.Signal(Processes.SIGTERM);
            Assert.Equal(0, await gateway.WaitForExitAsync());
        }
        var seen = subscriber.Lines.Where(l => l.Contains("\"event\":\"checkpoint\"", StringComparison.Ordinal)).ToArray();
        Assert.True(seen.Length >= 2, string.Join('\n', subscriber.Lines));
        Assert.Contains(subscriber.Lines, l => l.Contains("\"reason\":\"audit-journal\"", StringComparison.Ordinal) && l.Contains(" spki ", StringComparison.Ordinal));
        string checkpoints = Path.Combine(_dir, "mqtt-events.log");
        await File.WriteAllLinesAsync(checkpoints, subscriber.Lines);
        // What MQTT carried is the journal's line, byte for byte.
        string segment = Path.Combine(Journal, "audit-000001.jsonl");
        var chain = await File.ReadAllLinesAsync(segment);
        Assert.All(seen, l => Assert.Contains(l["it/gw/events ".Length..], chain));

        var intact = await VerifyAsync("--checkpoints", checkpoints);
        Assert.True(intact.ExitCode == 0, intact.Stdout + intact.Stderr);

        // An insider cuts the journal before the second checkpoint MQTT saw: alone it still looks whole, not against MQTT.
        long cutAt = JsonDocument.Parse(seen[1]["it/gw/events ".Length..]).RootElement.GetProperty("seq").GetInt64();
        await File.WriteAllLinesAsync(segment, chain.Take((int)cutAt - 1));
        var alone = await VerifyAsync();
        Assert.True(alone.ExitCode == 0, alone.Stdout + alone.Stderr);
        var cut = await VerifyAsync("--checkpoints", checkpoints);
        Assert.True(cut.ExitCode == 1, cut.Stdout + cut.Stderr);
        Assert.Contains($"audit-000001.jsonl:{cutAt - 1}: error: cut-tail: ", cut.Stdout, StringComparison.Ordinal);
    }

    private async Task<PlcSimulator> EnsurePlcAsync() =>
        _plc ??= await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions(), CancellationToken.None);

    [Fact]
    public async Task Verify_ExitCodes_BrokenAndUnreadable()
    {
        var missing = await Processes.RunAsync(Processes.EdgeShield("audit", "verify", Path.Combine(_dir, "nope")));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("no such file or directory", missing.Stderr, StringComparison.Ordinal);

        string config = await ConfigAsync();
        var (gateway, port) = await StartAsync(config, _dir);
        await using (gateway)
        {
            await DenyAsync(port, 10);
            gateway.Signal(Processes.SIGTERM);
            Assert.Equal(0, await gateway.WaitForExitAsync());
        }
        string segment = Path.Combine(Journal, "audit-000001.jsonl");
        var lines = (await File.ReadAllLinesAsync(segment)).ToList();
        lines.RemoveAt(3);
        await File.WriteAllLinesAsync(segment, lines);
        var broken = await VerifyAsync();
        Assert.Equal(1, broken.ExitCode);
        Assert.Contains($"{segment}:4: error: removed: seq 4 is missing", broken.Stdout, StringComparison.Ordinal);

        var help = await Processes.RunAsync(Processes.EdgeShield("audit", "verify", "--help"));
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("usage: edgeshield audit verify", help.Stdout, StringComparison.Ordinal);
    }
}
