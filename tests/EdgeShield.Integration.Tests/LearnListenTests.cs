using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using EdgeShield.Simulators;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// <c>edgeshield learn --listen</c> in front of the PLC simulator: traffic its (enforcing) policy would
/// refuse is forwarded, the draft loads with <c>check</c>, has the rules the traffic needs, and a
/// gateway running the draft in enforce mode refuses none of the same traffic.
/// </summary>
public sealed partial class LearnListenTests : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgeshield-learn-").FullName;
    private PlcSimulator? _plc;

    private static byte[] Adu(ushort tid, byte unit, params byte[] pdu)
    {
        var adu = new byte[7 + pdu.Length];
        adu[0] = (byte)(tid >> 8);
        adu[1] = (byte)tid;
        adu[4] = (byte)((pdu.Length + 1) >> 8);
        adu[5] = (byte)(pdu.Length + 1);
        adu[6] = unit;
        pdu.CopyTo(adu, 7);
        return adu;
    }

    /// <summary>Reads and writes on several addresses of two units; every request must be answered normally.</summary>
    private static byte[][] Traffic() =>
    [
        Adu(1, 1, 3, 0, 0, 0, 10),                      // read holding 0-9
        Adu(2, 1, 3, 0, 100, 0, 10),                    // read holding 100-109
        Adu(3, 1, 3, 0, 5, 0, 2),                       // read holding 5-6 (inside 0-9)
        Adu(4, 1, 4, 0, 20, 0, 4),                      // read input 20-23
        Adu(5, 1, 6, 0, 100, 0, 5),                     // write register 100 = 5
        Adu(6, 1, 6, 0, 101, 0x05, 0xDC),               // write register 101 = 1500
        Adu(7, 2, 16, 0, 200, 0, 2, 4, 0, 7, 0, 9),     // unit 2: write registers 200-201 = 7, 9
        Adu(8, 2, 5, 0, 7, 0xFF, 0),                    // unit 2: coil 7 on
        Adu(9, 2, 1, 0, 0, 0, 16),                      // unit 2: read coils 0-15
    ];

    private static async Task DriveAsync(int port, string what)
    {
        using var client = await RawClient.ConnectAsync(port);
        foreach (var request in Traffic())
        {
            var response = await client.RoundTripAsync(request);
            Assert.True(response[7] == request[7], $"{what}: FC{request[7]} to unit {request[6]} answered with exception {response[8]:X2}");
        }
    }

    private async Task<string> ConfigAsync(string name, string text)
    {
        string path = Path.Combine(_dir, name);
        await File.WriteAllTextAsync(path, text);
        return path;
    }

    [GeneratedRegex(@"listener hmi-plc1 on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenLine();

    private static async Task<int> ListenPortAsync(Processes.Running process)
    {
        Assert.True(await process.WaitForStderrAsync("listener hmi-plc1 on ", 60_000), "did not start:\n" + process.Stderr);
        return int.Parse(ListenLine().Match(process.Stderr).Groups[1].Value, CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task LearnListen_ThenEnforceTheDraft_TheSameTrafficIsAllAllowed()
    {
        _plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions(), CancellationToken.None);
        // Enforcing, this policy would refuse most of the traffic: learn must run it in monitor mode.
        string config = await ConfigAsync("site.yaml", $"""
            listeners:
              - name: hmi-plc1
                bind: 127.0.0.1:0
                upstream: tcp://127.0.0.1:{_plc.Port}
                policy: plc1
            policies:
              plc1:
                mode: enforce
                rules:
                  - name: only reads of 0-9
                    unit: 1
                    function: read-holding-registers
                    address: 0-9
            """);
        string draft = Path.Combine(_dir, "draft.yaml");

        await using (var learn = new Processes.Running(Processes.EdgeShield("learn", "--listen", "--config", config, "--seconds", "600", "--out", draft)))
        {
            int port = await ListenPortAsync(learn);
            await DriveAsync(port, "learn --listen (monitor mode)");
            Assert.True(await learn.WaitForStdoutAsync("\"would-deny\"", 30_000), "would-deny not audited:\n" + learn.Stdout);
            learn.Signal(Processes.SIGTERM);
            Assert.Equal(0, await learn.WaitForExitAsync(60_000));
            Assert.Contains("edgeshield learn: 9 requests → " + draft, learn.Stderr, StringComparison.Ordinal);
        }

        string yaml = await File.ReadAllTextAsync(draft);
        var check = await Processes.RunAsync(Processes.EdgeShield("check", "--config", draft));
        Assert.True(check.ExitCode == 0 && !check.Stdout.Contains("warning", StringComparison.Ordinal) && !check.Stderr.Contains("warning", StringComparison.Ordinal),
            check.Stdout + check.Stderr + "\n" + yaml);
        // The rules the traffic needs, with counts and first/last seen.
        Assert.Contains("upstream: tcp://127.0.0.1:" + _plc.Port.ToString(CultureInfo.InvariantCulture), yaml, StringComparison.Ordinal);
        Assert.Contains("function: [read-holding-registers]", yaml, StringComparison.Ordinal);
        Assert.Contains("address: [0-9, 100-109]", yaml, StringComparison.Ordinal);
        Assert.Contains("function: [write-single-register]", yaml, StringComparison.Ordinal);
        Assert.Contains("value: 5-1500", yaml, StringComparison.Ordinal);
        Assert.Contains("function: [write-multiple-registers]", yaml, StringComparison.Ordinal);
        Assert.Contains("unit: [2]", yaml, StringComparison.Ordinal);
        Assert.Matches(@"# 3 requests \(read-holding-registers 3\); first seen 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \(request 1\), last .* \(request 3\)", yaml);
        Assert.Contains("mode: monitor", yaml, StringComparison.Ordinal);

        // The draft, switched to enforce, in front of the same PLC: the same traffic, nothing refused.
        string enforced = await ConfigAsync("enforced.yaml", yaml.Replace("mode: monitor", "mode: enforce", StringComparison.Ordinal));
        await using var run = new Processes.Running(Processes.EdgeShield("run", "--config", enforced));
        int runPort = await ListenPortAsync(run);
        await DriveAsync(runPort, "run with the learned policy enforced");
        // An address just outside what was seen is refused: the draft allows what was seen, not more.
        using (var client = await RawClient.ConnectAsync(runPort))
        {
            var refused = await client.RoundTripAsync(Adu(10, 1, 6, 0, 102, 0, 5));
            Assert.Equal(new byte[] { 0x86, 0x02 }, refused[7..9]);
        }
        Assert.True(await run.WaitForStdoutAsync("\"denied\"", 30_000), run.Stdout);
        Assert.Single(Regex.Matches(run.Stdout, "\"denied\""));
    }

    [Theory]
    [InlineData("learn", "--listen", "--seconds", "5", "--out", "d.yaml")]
    [InlineData("learn", "--listen", "--config", "c.yaml", "--out", "d.yaml")]
    [InlineData("learn", "--listen", "--config", "c.yaml", "--seconds", "0", "--out", "d.yaml")]
    [InlineData("learn", "--listen", "--config", "c.yaml", "--seconds", "5", "--out", "d.yaml", "--pcap", "x.pcap")]
    public async Task LearnListen_MissingOrWrongOptions_ExitTwoAndSayWhat(params string[] args)
    {
        var result = await Processes.RunAsync(Processes.EdgeShield(args));

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("edgeshield learn: ", result.Stderr, StringComparison.Ordinal);
    }

    public async ValueTask DisposeAsync()
    {
        if (_plc is not null)
        {
            await _plc.DisposeAsync();
        }
        Directory.Delete(_dir, recursive: true);
    }
}
