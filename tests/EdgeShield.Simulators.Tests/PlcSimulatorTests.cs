namespace EdgeShield.Simulators.Tests;

public class PlcSimulatorTests
{
    [Fact]
    public async Task ReadHoldingRegisters_ReturnsStoredValues_ExactBytes()
    {
        await using var plc = await Plc.StartAsync();
        plc.SetHoldingRegister(1, 10, 0x1234);
        plc.SetHoldingRegister(1, 11, 0xABCD);
        using var client = await TestClient.ConnectAsync(plc.EndPoint);

        await client.SendPduAsync(0x0102, 1, 0x03, 0x00, 0x0A, 0x00, 0x03);
        var adu = await client.ReadAduAsync();

        Assert.Equal(new byte[] { 0x01, 0x02, 0x00, 0x00, 0x00, 0x09, 0x01, 0x03, 0x06, 0x12, 0x34, 0xAB, 0xCD, 0x00, 0x00 }, adu);
        Assert.Equal(1, plc.RequestsReceived(3));
    }

    [Fact]
    public async Task MalformedFrame_ClosesConnection_AndIsCounted()
    {
        await using var plc = await Plc.StartAsync();
        using var client = await TestClient.ConnectAsync(plc.EndPoint);

        // FC 3 with a 4-byte body: the MBAP length agrees, the PDU does not.
        await client.SendPduAsync(1, 1, 0x03, 0x00, 0x00, 0x00);

        Assert.True(await client.IsClosedByPeerAsync());
        Assert.Equal(1, plc.MalformedFrames);
        Assert.Equal(1, plc.FramesReceived);
        Assert.Equal(0, plc.TotalRequests);
    }
}
