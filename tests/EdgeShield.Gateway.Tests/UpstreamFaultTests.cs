using System.Net;
using System.Net.Sockets;
using EdgeShield.Simulators;

namespace EdgeShield.Gateway.Tests;

/// <summary>What the client sees when the PLC misbehaves or goes away: 0B, never a wrong answer.</summary>
public class UpstreamFaultTests
{
    private static readonly byte[] GatewayTargetFailed = [0, 0, 0, 3, 1, 0x83, 0x0B];

    [Fact]
    public async Task PlcAnswersWithWrongTransactionId_ResponseDropped_ClientGets0B()
    {
        await using var h = await GatewayHarness.StartAsync(limits: "{ response-timeout: 300ms }");
        h.Plc.Faults.WrongTransactionId = true;
        using var client = await h.ConnectAsync();

        var response = await client.RoundTripAsync(ModbusClient.ReadHolding(0x4242, 1, 0, 1));

        Assert.Equal(0x4242, ForwardingTests.Tid(response));
        Assert.Equal(GatewayTargetFailed, response[2..]);
        Assert.NotEmpty(h.Audit.OfKind(AuditEventKind.UnmatchedResponse));
        Assert.Single(h.Audit.OfKind(AuditEventKind.ResponseTimeout));
    }

    [Fact]
    public async Task PlcAnswersWithWrongByteCount_ResponseDropped_ClientGets0B()
    {
        await using var h = await GatewayHarness.StartAsync();
        h.Plc.Faults.WrongByteCount = true;
        using var client = await h.ConnectAsync();

        var response = await client.RoundTripAsync(ModbusClient.ReadHolding(8, 1, 0, 2));

        Assert.Equal(GatewayTargetFailed, response[2..]);
        var mismatch = Assert.Single(h.Audit.OfKind(AuditEventKind.ResponseMismatch));
        Assert.Contains("length", mismatch.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SilentPlc_ClientGets0BAfterResponseTimeout()
    {
        await using var h = await GatewayHarness.StartAsync(limits: "{ response-timeout: 200ms }");
        h.Plc.Faults.Silent = true;
        using var client = await h.ConnectAsync();

        var response = await client.RoundTripAsync(ModbusClient.ReadHolding(8, 1, 0, 2));

        Assert.Equal(GatewayTargetFailed, response[2..]);
        Assert.Equal(1, h.Gateway.Counters.Timeouts);
    }

    [Fact]
    public async Task PlcClosesMidFrame_ClientGets0B_AndTheNextRequestReconnects()
    {
        await using var h = await GatewayHarness.StartAsync();
        h.Plc.Faults.CloseMidFrame = true;
        using var client = await h.ConnectAsync();

        var response = await client.RoundTripAsync(ModbusClient.ReadHolding(8, 1, 0, 2));
        Assert.Equal(GatewayTargetFailed, response[2..]);

        h.Plc.Faults.CloseMidFrame = false;
        await Task.Delay(150); // past the reconnect backoff
        var retry = await client.RoundTripAsync(ModbusClient.ReadHolding(9, 1, 0, 2));
        Assert.Equal(3, retry[7]);
    }

    [Fact]
    public async Task PlcDown_ClientGets0B_PlcRestarted_TrafficResumesOnTheSameClientConnection()
    {
        int port = FreePort();
        await using var h = await GatewayHarness.StartAsync(upstreamPort: port);
        using var client = await h.ConnectAsync();

        var refused = await client.RoundTripAsync(ModbusClient.ReadHolding(1, 1, 0, 1));
        Assert.Equal(GatewayTargetFailed, refused[2..]);
        Assert.Single(h.Audit.OfKind(AuditEventKind.UpstreamUnreachable));

        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, port), new PlcOptions(), CancellationToken.None);
        var answered = await ReadUntilAnsweredAsync(client);

        Assert.NotNull(answered);
        Assert.Equal(1, plc.RequestsReceived(3));
    }

    [Fact]
    public async Task PlcRestartWhileConnected_OutstandingGets0B_ThenReconnects()
    {
        await using var h = await GatewayHarness.StartAsync();
        using var client = await h.ConnectAsync();
        Assert.Equal(3, (await client.RoundTripAsync(ModbusClient.ReadHolding(1, 1, 0, 1)))[7]);
        int port = h.Plc.Port;

        await h.Plc.DisposeAsync();
        await using var restarted = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, port), new PlcOptions(), CancellationToken.None);
        var answered = await ReadUntilAnsweredAsync(client);

        Assert.NotNull(answered);
        Assert.True(restarted.RequestsReceived(3) >= 1);
    }

    /// <summary>
    /// Reads every 100 ms (bounded: 30 s, as a loaded machine may stretch the reconnect) until the PLC answers
    /// normally, as an HMI would poll through a reconnect.
    /// </summary>
    private static async Task<byte[]?> ReadUntilAnsweredAsync(ModbusClient client)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int attempt = 0; clock.ElapsedMilliseconds < 30_000; attempt++)
        {
            var response = await client.RoundTripAsync(ModbusClient.ReadHolding((ushort)(2 + attempt), 1, 0, 1));
            if (response[7] == 3)
            {
                return response;
            }
            await Task.Delay(100);
        }
        return null;
    }

    private static int FreePort()
    {
        using var probe = new Socket(SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }
}
