using EdgeShield.Simulators;

namespace EdgeShield.Gateway.Tests;

public class ForwardingTests
{
    [Fact]
    public async Task AllowedRead_IsForwarded_WithTheClientsTransactionId()
    {
        await using var h = await GatewayHarness.StartAsync();
        h.Plc.SetHoldingRegister(1, 10, 0x1234);
        using var client = await h.ConnectAsync();

        var response = await client.RoundTripAsync(ModbusClient.ReadHolding(0xBEEF, 1, 10, 2));

        Assert.Equal(new byte[] { 0xBE, 0xEF, 0, 0, 0, 7, 1, 3, 4, 0x12, 0x34, 0, 0 }, response);
        Assert.Equal(1, h.Plc.RequestsReceived(3));
        Assert.Equal(1, h.Gateway.Counters.Allowed);
    }

    [Fact]
    public async Task AllowedWrite_ReachesThePlc()
    {
        await using var h = await GatewayHarness.StartAsync();
        using var client = await h.ConnectAsync();

        var response = await client.RoundTripAsync(ModbusClient.WriteRegister(7, 1, 105, 1200));

        Assert.Equal(ModbusClient.WriteRegister(7, 1, 105, 1200), response);
        Assert.Equal(1200, h.Plc.GetHoldingRegister(1, 105));
    }

    [Fact]
    public async Task TwoFramesInOneSegment_BothAnswered()
    {
        await using var h = await GatewayHarness.StartAsync();
        using var client = await h.ConnectAsync();

        await client.SendAsync([.. ModbusClient.ReadHolding(1, 1, 0, 1), .. ModbusClient.ReadHolding(2, 1, 1, 1)]);
        var first = await client.ReceiveAsync();
        var second = await client.ReceiveAsync();

        Assert.NotNull(first);
        Assert.NotNull(second);
        Assert.Equal(new ushort[] { 1, 2 }, new[] { Tid(first), Tid(second) }.Order().ToArray());
    }

    [Fact]
    public async Task OneFrameSplitOverManySegmentsWithGaps_IsReassembled()
    {
        await using var h = await GatewayHarness.StartAsync();
        using var client = await h.ConnectAsync();
        var request = ModbusClient.ReadHolding(9, 1, 0, 3);

        foreach (byte b in request)
        {
            await client.SendAsync([b]);
            await Task.Delay(20);
        }
        var response = await client.ReceiveAsync();

        Assert.NotNull(response);
        Assert.Equal(9, Tid(response));
        Assert.Equal(3 + 6, response.Length - 6);
    }

    [Fact]
    public async Task Pipelining_SixteenOutstanding_AllAnsweredWithTheirOwnIds()
    {
        // Up to sixteen batches of 100 ms at the simulator: the response timeout must outlast them.
        await using var h = await GatewayHarness.StartAsync(limits: "{ response-timeout: 5s }", plcOptions: new PlcOptions { ResponseDelayMs = 100 });
        using var client = await h.ConnectAsync();

        var burst = Enumerable.Range(0, 16).SelectMany(i => ModbusClient.ReadHolding((ushort)(1000 + i), 1, (ushort)i, 1)).ToArray();
        await client.SendAsync(burst);
        var ids = new List<ushort>();
        for (int i = 0; i < 16; i++)
        {
            var response = await client.ReceiveAsync();
            Assert.NotNull(response);
            Assert.Equal(3, response[7]);
            ids.Add(Tid(response));
        }

        Assert.Equal(Enumerable.Range(1000, 16).Select(i => (ushort)i), ids.Order());
    }

    [Fact]
    public async Task Pipelining_BeyondPendingLimit_IsAnsweredBusy()
    {
        // The simulator waits before each batch it reads; the four forwarded requests may reach it as
        // four batches (4 x 300 ms), so the response timeout must outlast all of them.
        await using var h = await GatewayHarness.StartAsync(limits: "{ pending-per-connection: 4, response-timeout: 5s }", plcOptions: new PlcOptions { ResponseDelayMs = 300 });
        using var client = await h.ConnectAsync();

        var burst = Enumerable.Range(0, 6).SelectMany(i => ModbusClient.ReadHolding((ushort)i, 1, 0, 1)).ToArray();
        await client.SendAsync(burst);
        var responses = new List<byte[]>();
        for (int i = 0; i < 6; i++)
        {
            responses.Add((await client.ReceiveAsync())!);
        }

        var busy = responses.Where(r => r[7] == 0x83).ToArray();
        Assert.Equal(2, busy.Length);
        Assert.All(busy, r => Assert.Equal(new byte[] { 0, 0, 0, 3, 1, 0x83, 0x06 }, r[2..]));
        Assert.Equal(4, responses.Count(r => r[7] == 3));
        Assert.Equal(4, h.Plc.RequestsReceived(3));
    }

    [Fact]
    public async Task ClientReusingATransactionId_GetsEachResponseOnce()
    {
        await using var h = await GatewayHarness.StartAsync(plcOptions: new PlcOptions { ResponseDelayMs = 50 });
        h.Plc.SetHoldingRegister(1, 1, 11);
        h.Plc.SetHoldingRegister(1, 2, 22);
        using var client = await h.ConnectAsync();

        await client.SendAsync([.. ModbusClient.ReadHolding(5, 1, 1, 1), .. ModbusClient.ReadHolding(5, 1, 2, 1)]);
        var a = (await client.ReceiveAsync())!;
        var b = (await client.ReceiveAsync())!;

        Assert.Equal(5, Tid(a));
        Assert.Equal(5, Tid(b));
        Assert.Equal(new[] { 11, 22 }, new[] { a[10], b[10] }.Select(x => (int)x).Order());
    }

    [Fact]
    public async Task ClientThatNeverReads_StallsOnlyItself()
    {
        await using var h = await GatewayHarness.StartAsync();
        using var greedy = await h.ConnectAsync(receiveBufferSize: 4096);
        var request = ModbusClient.ReadHolding(1, 1, 0, 125);
        var flood = Enumerable.Repeat(request, 2000).SelectMany(r => r).ToArray();

        // Write 20 000 requests (each answered with 259 bytes) and never read.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        var sending = Task.Run(async () =>
        {
            try
            {
                for (int i = 0; i < 10; i++)
                {
                    await greedy.Socket.SendAsync(flood, System.Net.Sockets.SocketFlags.None, cts.Token);
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        // The flood has begun to reach the PLC (a loaded machine may take a while to get there), then 1.5 s more.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (h.Plc.RequestsReceived(3) == 0 && clock.ElapsedMilliseconds < 20_000)
        {
            await Task.Delay(10);
        }
        await Task.Delay(1500);

        // The gateway stopped reading from the greedy client: the PLC saw a bounded number of its requests.
        long seen = h.Plc.RequestsReceived(3);
        Assert.InRange(seen, 1, 10_000);
        // Another client is served normally meanwhile.
        using var polite = await h.ConnectAsync();
        var response = await polite.RoundTripAsync(ModbusClient.ReadHolding(77, 1, 0, 1));
        Assert.Equal(77, Tid(response));
        await sending;
    }

    internal static ushort Tid(byte[] adu) => (ushort)((adu[0] << 8) | adu[1]);
}
