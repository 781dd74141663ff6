using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Simulators.Tests;

public class ConnectionTests
{
    [Fact]
    public async Task Pipelining_FiveRequestsInOneWrite_FiveResponsesInOrder()
    {
        await using var plc = await Plc.StartAsync();
        using var client = await TestClient.ConnectAsync(plc.EndPoint);
        var batch = new List<byte>();
        for (ushort tid = 1; tid <= 5; tid++)
        {
            batch.AddRange(TestClient.Adu(tid, 1, 0x04, 0x00, (byte)tid, 0x00, 0x01));
        }
        await client.SendAsync([.. batch]);
        for (ushort tid = 1; tid <= 5; tid++)
        {
            var adu = await client.ReadAduAsync();
            Assert.NotNull(adu);
            Assert.Equal(tid, BinaryPrimitives.ReadUInt16BigEndian(adu));
            Assert.Equal(new byte[] { 0x04, 0x02, 0x00, (byte)tid }, adu[7..]);
        }
        Assert.Equal(5, plc.RequestsReceived(4));
    }

    [Fact]
    public async Task FrameSplitAcrossWrites_IsReassembled()
    {
        await using var plc = await Plc.StartAsync();
        using var client = await TestClient.ConnectAsync(plc.EndPoint);
        var adu = TestClient.Adu(7, 1, 0x03, 0x00, 0x00, 0x00, 0x01);
        await client.SendAsync(adu[..3]);
        await Task.Delay(30);
        await client.SendAsync(adu[3..]);
        Assert.Equal(new byte[] { 0x00, 0x07, 0x00, 0x00, 0x00, 0x05, 0x01, 0x03, 0x02, 0x00, 0x00 }, await client.ReadAduAsync());
    }

    [Theory]
    [InlineData(new byte[] { 0x00, 0x01, 0x00, 0x01, 0x00, 0x06, 0x01, 0x03, 0x00, 0x00, 0x00, 0x01 })] // protocol id 1
    [InlineData(new byte[] { 0x00, 0x01, 0x00, 0x00, 0x00, 0x00 })] // MBAP length 0
    [InlineData(new byte[] { 0x00, 0x01, 0x00, 0x00, 0x00, 0xFF, 0x01, 0x03 })] // MBAP length 255 for a public code (a vendor code may use up to 260)
    [InlineData(new byte[] { 0x47, 0x45, 0x54, 0x20, 0x2F, 0x20, 0x48, 0x54 })] // "GET / HT"
    public async Task FramingError_ClosesAfterAnsweringEarlierRequests(byte[] bad)
    {
        await using var plc = await Plc.StartAsync();
        using var client = await TestClient.ConnectAsync(plc.EndPoint);
        await client.SendAsync([.. TestClient.Adu(1, 1, 0x03, 0x00, 0x00, 0x00, 0x01), .. bad]);
        Assert.NotNull(await client.ReadAduAsync());
        Assert.True(await client.IsClosedByPeerAsync());
        Assert.Equal(1, plc.MalformedFrames);
        Assert.Equal(2, plc.FramesReceived);
        Assert.Equal(1, plc.TotalRequests);
    }

    [Fact]
    public async Task TruncatedFrameAtClose_IsCountedAsTruncated()
    {
        await using var plc = await Plc.StartAsync();
        using (var client = await TestClient.ConnectAsync(plc.EndPoint))
        {
            await client.SendAsync(0x00, 0x01, 0x00, 0x00);
        }
        await WaitForAsync(() => plc.TruncatedFrames == 1);
        Assert.Equal(0, plc.FramesReceived);
    }

    [Fact]
    public async Task Faults_WrongTransactionId_Silent_WrongByteCount_Delay_CloseMidFrame()
    {
        await using var plc = await Plc.StartAsync();
        using var client = await TestClient.ConnectAsync(plc.EndPoint);
        byte[] read = [0x03, 0x00, 0x00, 0x00, 0x02];

        plc.Faults.WrongTransactionId = true;
        await client.SendPduAsync(100, 1, read);
        Assert.Equal(101, BinaryPrimitives.ReadUInt16BigEndian(await client.ReadAduAsync()));
        plc.Faults.Reset();

        plc.Faults.WrongByteCount = true;
        await client.SendPduAsync(1, 1, read);
        var mangled = (await client.ReadAduAsync())!;
        Assert.Equal(ResponseStatus.Mismatch, ModbusPdu.CheckResponse(mangled.AsSpan(7), ModbusPdu.ParseRequest(read).Expectation, out _));
        plc.Faults.Reset();

        plc.Faults.Silent = true;
        await client.SendPduAsync(2, 1, read);
        Assert.Null(await client.ReadAduAsync(300));
        await WaitForAsync(() => plc.RequestsReceived(3) >= 3); // counted once read: a loaded machine may not have yet
        Assert.Equal(3, plc.RequestsReceived(3));
        plc.Faults.Reset();

        plc.Faults.ResponseDelayMs = 150;
        var watch = Stopwatch.StartNew();
        await client.SendPduAsync(3, 1, read);
        Assert.NotNull(await client.ReadAduAsync());
        Assert.True(watch.ElapsedMilliseconds >= 140, $"answered after {watch.ElapsedMilliseconds} ms");
        plc.Faults.Reset();

        plc.Faults.CloseMidFrame = true;
        using var other = await TestClient.ConnectAsync(plc.EndPoint);
        await other.SendPduAsync(4, 1, read);
        Assert.Null(await other.ReadAduAsync());
    }

    [Fact]
    public async Task ManyConnections_AllAnswered_DisposeClosesThem()
    {
        var plc = await Plc.StartAsync();
        var clients = new TestClient[50];
        for (int i = 0; i < clients.Length; i++)
        {
            clients[i] = await TestClient.ConnectAsync(plc.EndPoint);
        }
        foreach (var c in clients)
        {
            Assert.Equal(new byte[] { 0x03, 0x02, 0x00, 0x00 }, await c.RequestAsync(1, 0x03, 0x00, 0x00, 0x00, 0x01));
        }
        Assert.Equal(50, plc.ActiveConnections);
        await plc.DisposeAsync();
        foreach (var c in clients)
        {
            Assert.True(await c.IsClosedByPeerAsync());
            c.Dispose();
        }
    }

    [Fact]
    public async Task ProcessFrames_SteadyState_AllocatesNothing()
    {
        await using var plc = await Plc.StartAsync();
        byte[] input = [.. TestClient.Adu(1, 1, 0x03, 0x00, 0x00, 0x00, 0x0A), .. TestClient.Adu(2, 1, 0x10, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x07), .. TestClient.Adu(3, 1, 0x01, 0x00, 0x00, 0x00, 0x10)];
        var tx = new byte[16 * 1024];
        for (int i = 0; i < 100; i++)
        {
            plc.ProcessFrames(input, tx, out _, out _);
        }
        var outcome = PlcSimulator.BatchOutcome.Close;
        int consumed = 0, txLength = 0;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            outcome = plc.ProcessFrames(input, tx, out consumed, out txLength);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.Equal(PlcSimulator.BatchOutcome.NeedMoreData, outcome);
        Assert.Equal(input.Length, consumed);
        Assert.Equal((7 + 2 + 20) + (7 + 5) + (7 + 2 + 2), txLength);
        Assert.Equal(3 * 10_100, plc.TotalRequests);
    }

    internal static async Task WaitForAsync(Func<bool> condition, int timeoutMs = 20_000)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(watch.ElapsedMilliseconds < timeoutMs, "condition not met in time");
            await Task.Delay(10);
        }
    }
}
