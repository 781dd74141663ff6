using System.Globalization;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// snap7's client through `edgeshield run` to snap7's server (tests/peers/snap7), with a Modbus listener in the same
/// config: what reached the PLC is judged by the server's own event log, not by the gateway's counters.
/// </summary>
public partial class S7GatewayTests(ITestOutputHelper output)
{
    private const string S7Policy = """
            protocol: s7comm
            mode: enforce
            rules:
              - name: hmi reads
                from: 127.0.0.0/8
                connection: [op, pg]
                function: [read]
                area: [db, m, i, q]
                db: 1-3
                address: 0-127
              - name: recipe writes
                from: 127.0.0.0/8
                connection: [op, pg]
                function: write-var
                area: db
                db: 2
                address: 0-63
        """;

    private sealed partial class Gateway : IAsyncDisposable
    {
        private Gateway(Processes.Running process, string path, int s7Port)
        {
            Process = process;
            Path = path;
            S7Port = s7Port;
        }

        public Processes.Running Process { get; }
        public string Path { get; }
        public int S7Port { get; }

        public static async Task<Gateway> StartAsync(int plcPort, string policy = S7Policy, string sections = "")
        {
            string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"edgeshield-s7-{Guid.NewGuid():N}.yaml");
            await File.WriteAllTextAsync(path, $$"""
                gateway: { name: it-gw, site: lab }
                {{sections}}
                listeners:
                  - name: hmi-modbus
                    bind: 127.0.0.1:0
                    upstream: tcp://127.0.0.1:1
                    policy: modbus
                  - name: hmi-s7
                    bind: 127.0.0.1:0
                    protocol: s7comm
                    upstream: tcp://127.0.0.1:{{plcPort}}
                    policy: press1
                policies:
                  modbus:
                    mode: enforce
                    rules:
                      - { name: reads, unit: 1, function: read }
                  press1:
                {{policy}}
                """);
            var process = new Processes.Running(Processes.EdgeShield("run", "--config", path));
            Assert.True(await process.WaitForStderrAsync("listener hmi-s7 on "), "gateway did not start:\n" + process.Stderr);
            var match = S7Listen().Match(process.Stderr);
            Assert.True(match.Success, process.Stderr);
            return new Gateway(process, path, int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture));
        }

        [GeneratedRegex(@"listener hmi-s7 on 127\.0\.0\.1:(\d+)")]
        private static partial Regex S7Listen();

        public async ValueTask DisposeAsync()
        {
            await Process.DisposeAsync();
            File.Delete(Path);
        }
    }

    private static Task<Snap7Result> Client(Gateway gateway, string connection, string op, params string[] args) =>
        Snap7Peer.RunClientAsync("127.0.0.1", gateway.S7Port, connection, op, args);

    [Fact]
    public async Task AllowedReadsAndWrites_ReachTheServer_AndReturnItsData()
    {
        await using var plc = await Snap7Peer.StartServerAsync();
        await using var gateway = await Gateway.StartAsync(plc.Port);

        var read = await Client(gateway, "op", "db-read", "1", "0", "16");
        var write = await Client(gateway, "op", "db-write", "2", "10", "deadbeef");
        var readBack = await Client(gateway, "pg", "db-read", "2", "8", "8");

        output.WriteLine(gateway.Process.Stdout);
        Assert.True(read.Ok, read.ToString());
        Assert.Equal("000102030405060708090a0b0c0d0e0f", read.Data);
        Assert.True(write.Ok, write.ToString());
        Assert.Equal("0000deadbeef0000", readBack.Data);
        var logged = await plc.WaitForEventAsync(e => e.Code == Snap7Event.DataWrite);
        Assert.NotNull(logged);
        Assert.Equal((0, Snap7Event.AreaDb, 2, 10, 4), (logged.RetCode, logged.Param1, logged.Param2, logged.Param3, logged.Param4));
    }

    // snap7's client error for each refusal (its s7_client.cpp): the gateway's answer is what a PLC's would be.
    [Theory]
    [InlineData("plc-stop", 0x01000000, "plc-stop", "function not allowed")]                 // Ack_Data 87/03: "CPU : Cannot stop PLC"
    [InlineData("upload", 0x02300000, "start-upload", "function not allowed")]              // "CLI : function refused by CPU"
    [InlineData("set-password", 0x02300000, "security", "function not allowed")]           // userdata D0A1
    [InlineData("set-clock", 0x02300000, "time-set", "function not allowed")]              // userdata D0A1
    [InlineData("write-outside-span", 0x00900000, "write-var", "address span not allowed")] // item 05: "CPU : Address out of range"
    [InlineData("write-other-db", 0x02300000, "write-var", "area or data block not allowed")] // item 03
    public async Task Refused_NeverReachesTheServer_AndTheClientGetsThePlcsError(string what, long snap7Error, string function, string reason)
    {
        await using var plc = await Snap7Peer.StartServerAsync();
        await using var gateway = await Gateway.StartAsync(plc.Port);

        var result = what switch
        {
            "plc-stop" => await Client(gateway, "op", "plc-stop"),
            "upload" => await Client(gateway, "op", "upload", "DB", "1"),
            "set-password" => await Client(gateway, "op", "set-password", "secret"),
            "set-clock" => await Client(gateway, "op", "set-clock"),
            "write-outside-span" => await Client(gateway, "op", "db-write", "2", "100", "01"),
            _ => await Client(gateway, "op", "db-write", "3", "0", "01"),
        };
        await plc.WaitForDisconnectsAsync();

        output.WriteLine(result.ToString());
        output.WriteLine(gateway.Process.Stdout);
        Assert.False(result.Ok, result.ToString());
        Assert.NotEqual("connect", result.Stage);
        Assert.Equal(snap7Error, result.Error);
        Assert.DoesNotContain(plc.Events, e => e.IsJob);
        Assert.True(await gateway.Process.WaitForStdoutAsync($"\"function_name\":\"{function}\""), gateway.Process.Stdout);
        Assert.Contains(gateway.Process.Stdout.Split('\n'), line => line.Contains("\"event\":\"denied\"", StringComparison.Ordinal)
            && line.Contains("\"protocol\":\"s7comm\"", StringComparison.Ordinal) && line.Contains($"\"reason\":\"{reason}\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AConnectionTypeNoRuleNames_IsRefusedAtTheCotpConnect()
    {
        await using var plc = await Snap7Peer.StartServerAsync();
        await using var gateway = await Gateway.StartAsync(plc.Port);

        var result = await Client(gateway, "basic", "db-read", "1", "0", "4");

        Assert.False(result.Ok, result.ToString());
        Assert.Equal("connect", result.Stage);
        Assert.DoesNotContain(plc.Events, e => e.Code == Snap7Event.ClientAdded);
        Assert.Contains("no rule for this source and connection type", gateway.Process.Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("04000007" + "02f080", "not TPKT version 3")]
    [InlineData("03000007" + "02f080", "data before the COTP connect")]
    [InlineData("0300ffff" + "02f080", "a TPKT packet above the negotiated TPDU size")]
    public async Task Malformed_ClosesTheConnection_AndNeverReachesThePlc(string hex, string what)
    {
        await using var plc = await Snap7Peer.StartServerAsync();
        await using var gateway = await Gateway.StartAsync(plc.Port);
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(System.Net.IPAddress.Loopback, gateway.S7Port);
        var stream = client.GetStream();
        await stream.WriteAsync(Convert.FromHexString(hex));
        var buffer = new byte[64];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        int read = await stream.ReadAsync(buffer, timeout.Token);

        output.WriteLine(what + ": " + gateway.Process.Stdout);
        Assert.Equal(0, read);
        Assert.DoesNotContain(plc.Events, e => e.Code == Snap7Event.ClientAdded);
        Assert.True(await gateway.Process.WaitForStdoutAsync("\"event\":\"malformed\""), gateway.Process.Stdout);
    }

    [Fact]
    public async Task AMultiReadWithOneItemOutsideTheRules_IsRefusedWhole_NoItemReachesTheServer()
    {
        await using var plc = await Snap7Peer.StartServerAsync();
        await using var gateway = await Gateway.StartAsync(plc.Port);

        var allowed = await Client(gateway, "op", "multi-read", "db:1:0:4", "m:0:0:2", "q:0:0:1");
        await plc.WaitForDisconnectsAsync();
        int readsAfterAllowed = plc.Events.Count(e => e.Code == Snap7Event.DataRead);
        var mixed = await Client(gateway, "op", "multi-read", "db:1:0:4", "db:1:200:4", "m:0:0:2");
        await plc.WaitForDisconnectsAsync();

        output.WriteLine(allowed.ToString());
        output.WriteLine(mixed.ToString());
        Assert.True(allowed.Ok, allowed.ToString());
        Assert.Equal(3, readsAfterAllowed);
        // A job is never split: the span refusal of the second item refuses the other two as well.
        Assert.Equal(3, plc.Events.Count(e => e.Code == Snap7Event.DataRead));
        Assert.Contains(gateway.Process.Stdout.Split('\n'), line => line.Contains("\"function_name\":\"read-var\"", StringComparison.Ordinal)
            && line.Contains("\"reason\":\"address span not allowed\"", StringComparison.Ordinal));
        var items = mixed.Json.GetProperty("items");
        Assert.Equal(3, items.GetArrayLength());
        Assert.All(items.EnumerateArray(), item => Assert.NotEqual(0, item.GetProperty("error").GetInt64()));
    }
}

