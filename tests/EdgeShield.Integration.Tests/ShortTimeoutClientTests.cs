using System.Globalization;
using System.Text.RegularExpressions;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// Issue 10 item 5: a libmodbus client on its default 0.5 s response timeout, against a PLC that
/// leaves some requests unanswered (or answers them after 0.8 s), sees through `edgeshield run`
/// (response-timeout 1 s) exactly what it sees direct. tests/peers/short-timeout-client.c is both
/// the client (linked against the libmodbus static build) and the PLC.
/// </summary>
public partial class ShortTimeoutClientTests
{
    private const string AllowAll = """
            mode: enforce
            rules:
              - name: everything
        """;

    private static readonly Lazy<string> Peer = new(Build);

    [Fact]
    public async Task LibmodbusDefaultTimeout_ThroughTheGateway_SameReadsAsDirect()
    {
        var direct = await RunAgainstAsync("silent", throughGateway: false);
        var silent = await RunAgainstAsync("silent", throughGateway: true, SilentGaveUp);
        var late = await RunAgainstAsync("late", throughGateway: true, LateGaveUp);

        // Direct: the four unanswered reads time out, the sixteen others have their own values.
        Assert.Equal(16, Right(direct.Lines));
        Assert.Equal(4, direct.Lines.Count(l => l.EndsWith(": timeout", StringComparison.Ordinal)));
        Assert.True(direct.Lines.SequenceEqual(silent.Lines), string.Join('\n', silent.Lines) + "\n" + silent.Audit);
        Assert.True(direct.Lines.SequenceEqual(late.Lines), string.Join('\n', late.Lines) + "\n" + late.Audit);
        // The gateway said why: no 0B for what the client gave up on, the late answers dropped.
        Assert.True(Regex.Count(silent.Audit, SilentGaveUp) == 4, silent.Audit);
        Assert.True(Regex.Count(late.Audit, LateGaveUp) == 4, late.Audit);
    }

    private const string SilentGaveUp = "\"start\":(30|80|130|180),\"count\":2},\"reason\":\"PLC did not answer within response-timeout; the client had given up on it \\(it sent a new one\\): no 0B";
    private const string LateGaveUp = "\"start\":(30|80|130|180),\"count\":2},\"reason\":\"late response to a request the client gave up on";

    private sealed record Run(string[] Lines, string Audit);

    private static int Right(string[] lines) =>
        int.Parse(lines.Single(l => l.StartsWith("right ", StringComparison.Ordinal))[6..], CultureInfo.InvariantCulture);

    /// <summary>Through the gateway, its audit once it holds four events matching <paramref name="expected"/> (bounded) and 300 ms more.</summary>
    private static async Task<Run> RunAgainstAsync(string plcMode, bool throughGateway, string expected = "")
    {
        int plcPort = Processes.FreePort();
        await using var plc = new Processes.Running(Processes.Tool(Peer.Value, "server", plcPort.ToString(CultureInfo.InvariantCulture), plcMode));
        Assert.True(await plc.WaitForStdoutAsync("listening"), plc.Stderr);
        if (!throughGateway)
        {
            return new Run(await ClientAsync(plcPort), "");
        }
        string config = Path.Combine(Path.GetTempPath(), $"edgeshield-it-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(config, GatewayProcess.Config(plcPort, AllowAll));
        try
        {
            await using var gateway = new Processes.Running(Processes.EdgeShield("run", "--config", config));
            Assert.True(await gateway.WaitForStderrAsync("listener hmi-plc1 on "), "gateway did not start:\n" + gateway.Stderr);
            int port = int.Parse(ListenLine().Match(gateway.Stderr).Groups[1].Value, CultureInfo.InvariantCulture);
            await WarmUpAsync(port);
            var lines = await ClientAsync(port);
            // The client stayed connected past the last abandoned read's response-timeout; its event is written once the
            // gateway's sweep sees it, which a loaded machine may run late: wait for the four (bounded), then 300 ms more.
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (Regex.Count(gateway.Stdout, expected) < 4 && clock.ElapsedMilliseconds < 30_000 && !gateway.Process.HasExited)
            {
                await Task.Delay(50);
            }
            await Task.Delay(300);
            return new Run(lines, gateway.Stdout);
        }
        finally
        {
            File.Delete(config);
        }
    }

    /// <summary>
    /// A patient client first walks the paths the libmodbus run takes (a request the PLC leaves unanswered at
    /// address 230, given up for a read of address 0): the gateway's first pass over them pays for JIT and the
    /// PLC connection, which on a loaded CI machine can take longer than the 0.5 s libmodbus waits.
    /// </summary>
    private static async Task WarmUpAsync(int port)
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port));
        await socket.SendAsync(new byte[] { 0, 1, 0, 0, 0, 6, 1, 3, 0, 230, 0, 1 }, System.Net.Sockets.SocketFlags.None);
        await Task.Delay(200);
        await socket.SendAsync(new byte[] { 0, 2, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1 }, System.Net.Sockets.SocketFlags.None);
        // Replies until the one of the read of address 0 (an unfixed gateway sends the given-up request's 0B too).
        using var timeout = new CancellationTokenSource(10_000);
        var header = new byte[6];
        for (int replies = 0; replies < 3; replies++)
        {
            await ReadExactlyAsync(socket, header, timeout.Token);
            var rest = new byte[(header[4] << 8) | header[5]];
            await ReadExactlyAsync(socket, rest, timeout.Token);
            if (header[1] == 2)
            {
                Assert.Equal(3, rest[1]);
                return;
            }
        }
        Assert.Fail("no answer to the warm-up read of address 0");
    }

    private static async Task ReadExactlyAsync(System.Net.Sockets.Socket socket, Memory<byte> buffer, CancellationToken ct)
    {
        while (!buffer.IsEmpty)
        {
            int n = await socket.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, ct);
            Assert.True(n > 0, "the gateway closed the warm-up connection");
            buffer = buffer[n..];
        }
    }

    private static async Task<string[]> ClientAsync(int port)
    {
        var result = await Processes.RunAsync(Processes.Tool(Peer.Value, "client", "127.0.0.1", port.ToString(CultureInfo.InvariantCulture)), timeoutMs: 60_000);
        Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
        return result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    /// <summary>libmodbus's static build (tests/peers/build-libmodbus.sh, reused when up to date), then the peer against it.</summary>
    private static string Build()
    {
        string root = Processes.RepoRoot;
        string libmodbus = Path.Combine(root, "artifacts", "peers", "libmodbus");
        var built = Processes.RunAsync(Processes.Tool("/bin/bash", Path.Combine(root, "tests", "peers", "build-libmodbus.sh"), libmodbus), timeoutMs: 900_000).GetAwaiter().GetResult();
        Assert.True(built.ExitCode == 0, built.Stdout + built.Stderr);
        string output = Path.Combine(libmodbus, "short-timeout-client");
        var cc = Processes.RunAsync(Processes.Tool("/usr/bin/cc", "-O2", "-Wall", "-Werror",
            "-I", Path.Combine(libmodbus, "install", "include", "modbus"),
            Path.Combine(root, "tests", "peers", "short-timeout-client.c"),
            Path.Combine(libmodbus, "install", "lib", "libmodbus.a"),
            "-o", output)).GetAwaiter().GetResult();
        Assert.True(cc.ExitCode == 0, cc.Stdout + cc.Stderr);
        return output;
    }

    [GeneratedRegex(@"listener hmi-plc1 on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenLine();
}
