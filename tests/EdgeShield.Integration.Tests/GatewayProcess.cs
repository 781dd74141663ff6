using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using EdgeShield.Simulators;

namespace EdgeShield.Integration.Tests;

/// <summary>A PLC simulator in this process and `edgeshield run` in front of it as a separate process.</summary>
internal sealed partial class GatewayProcess : IAsyncDisposable
{
    public const string Policy = """
            mode: enforce
            rules:
              - name: hmi reads
                from: [127.0.0.0/8]
                unit: 1
                function: [read]
                address: 0-999
              - name: setpoints
                unit: 1
                function: [write-single-register, write-multiple-registers]
                address: 100-119
                value: 0-1500
        """;

    private GatewayProcess(PlcSimulator plc, Processes.Running gateway, string configPath, int port)
    {
        Plc = plc;
        Gateway = gateway;
        ConfigPath = configPath;
        Port = port;
    }

    public PlcSimulator Plc { get; }
    public Processes.Running Gateway { get; }
    public string ConfigPath { get; }
    public int Port { get; }

    /// <summary>One listener hmi-plc1 in front of <paramref name="plcPort"/> with <paramref name="policy"/>; <paramref name="limits"/> its limits (flow mapping), if any.</summary>
    public static string Config(int plcPort, string policy, string? limits = null) => $$"""
        gateway: { name: it-gw, site: lab }
        listeners:
          - name: hmi-plc1
            bind: 127.0.0.1:0
            upstream: tcp://127.0.0.1:{{plcPort}}
            policy: plc1
        {{(limits is null ? "" : "    limits: " + limits)}}
        policies:
          plc1:
        {{policy}}
        """;

    /// <summary>Starts both; with <paramref name="ready"/>, the gateway runs under its NOTIFY_SOCKET (see <see cref="ReadySignal"/>).</summary>
    public static async Task<GatewayProcess> StartAsync(string policy = Policy, ReadySignal? ready = null)
    {
        var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions(), CancellationToken.None);
        string path = Path.Combine(Path.GetTempPath(), $"edgeshield-it-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, Config(plc.Port, policy));
        var start = Processes.EdgeShield("run", "--config", path);
        var gateway = new Processes.Running(ready is null ? start : ready.Apply(start));
        Assert.True(await gateway.WaitForStderrAsync("listener hmi-plc1 on "), "gateway did not start:\n" + gateway.Stderr);
        var match = ListenLine().Match(gateway.Stderr);
        Assert.True(match.Success, gateway.Stderr);
        return new GatewayProcess(plc, gateway, path, int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"listener hmi-plc1 on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenLine();

    public async ValueTask DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Plc.DisposeAsync();
        File.Delete(ConfigPath);
    }
}
