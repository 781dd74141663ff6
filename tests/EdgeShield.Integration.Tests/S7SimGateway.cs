using System.Globalization;
using System.Text.RegularExpressions;

namespace EdgeShield.Integration.Tests;

/// <summary>`edgeshield run` with one s7comm listener in front of a PLC (snap7's server or the sim), for the S7Sim tests.</summary>
internal sealed partial class S7SimGateway : IAsyncDisposable
{
    /// <summary>An HMI's policy: reads of DB1-3, M, I, Q at bytes 0-127 and writes to DB1 bytes 64-127, on OP and PG connections.</summary>
    public const string HmiPolicy = """
            protocol: s7comm
            mode: enforce
            on-deny: exception
            rules:
              - name: hmi reads
                from: 127.0.0.0/8
                connection: [op, pg]
                function: [read]
                area: [db, m, i, q]
                db: 1-3
                address: 0-127
              - name: hmi writes
                from: 127.0.0.0/8
                connection: [op, pg]
                function: write-var
                area: db
                db: 1
                address: 64-127
        """;

    private S7SimGateway(Processes.Running process, string path, int port)
    {
        Process = process;
        Path = path;
        Port = port;
    }

    public Processes.Running Process { get; }
    public string Path { get; }
    public int Port { get; }

    public static async Task<S7SimGateway> StartAsync(int plcPort, string policy = HmiPolicy)
    {
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"edgeshield-s7sim-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, $$"""
            gateway: { name: it-gw, site: lab }
            listeners:
              - name: hmi-s7
                bind: 127.0.0.1:0
                protocol: s7comm
                upstream: tcp://127.0.0.1:{{plcPort}}
                policy: press1
            policies:
              press1:
            {{policy}}
            """);
        var process = new Processes.Running(Processes.EdgeShield("run", "--config", path));
        Assert.True(await process.WaitForStderrAsync("listener hmi-s7 on ", 60_000), "gateway did not start:\n" + process.Stderr);
        var match = Listen().Match(process.Stderr);
        Assert.True(match.Success, process.Stderr);
        return new S7SimGateway(process, path, int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"listener hmi-s7 on 127\.0\.0\.1:(\d+)")]
    private static partial Regex Listen();

    public async ValueTask DisposeAsync()
    {
        await Process.DisposeAsync();
        File.Delete(Path);
    }
}
