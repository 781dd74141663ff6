namespace EdgeShield.Gateway.Tests;

/// <summary>
/// <c>type:</c> on a rule over a real gateway (issue 10 item 16): a 32-bit set-point whose two halves
/// each lie inside <c>value:</c> but whose value does not is answered 03 and never reaches the PLC.
/// </summary>
public class TypedValueGatewayTests
{
    private static byte[] WriteMultiple(ushort tid, ushort start, params ushort[] values)
    {
        var pdu = new byte[6 + (values.Length * 2)];
        pdu[0] = 16;
        pdu[1] = (byte)(start >> 8);
        pdu[2] = (byte)start;
        pdu[4] = (byte)values.Length;
        pdu[5] = (byte)(values.Length * 2);
        for (var i = 0; i < values.Length; i++)
        {
            pdu[6 + (i * 2)] = (byte)(values[i] >> 8);
            pdu[7 + (i * 2)] = (byte)values[i];
        }
        return ModbusClient.Adu(tid, 1, pdu);
    }

    [Fact]
    public async Task Int32SetPoint_OutOfRangeAsTheDword_IsRefused03_AndNeverReachesThePlc()
    {
        const string Policy = """
                mode: enforce
                rules:
                  - name: setpoints
                    function: [write-single-register, write-multiple-registers]
                    address: 100-103
                    type: int32
                    value: 0-1500
                  - name: temperature
                    function: write-multiple-registers
                    address: 200-201
                    type: float32
                    value: -20.5..80
            """;
        await using var h = await GatewayHarness.StartAsync(Policy);
        using var client = await h.ConnectAsync();

        // 0x05DC05DC: each register is 1500, the int32 is 98 305 500.
        var refused = await client.RoundTripAsync(WriteMultiple(0x0301, 100, 0x05DC, 0x05DC));
        Assert.Equal(new byte[] { 0x03, 0x01, 0, 0, 0, 3, 1, 0x90, 0x03 }, refused);
        // Half a value (FC 6), a write off the grid, a NaN float: 03 each.
        Assert.Equal(new byte[] { 0x03, 0x02, 0, 0, 0, 3, 1, 0x86, 0x03 }, await client.RoundTripAsync(ModbusClient.WriteRegister(0x0302, 1, 101, 7)));
        Assert.Equal(new byte[] { 0x90, 0x03 }, (await client.RoundTripAsync(WriteMultiple(0x0303, 101, 0, 7)))[7..9]);
        Assert.Equal(new byte[] { 0x90, 0x03 }, (await client.RoundTripAsync(WriteMultiple(0x0304, 200, 0x7FC0, 0)))[7..9]);
        Assert.Equal(0, h.Plc.TotalRequests);
        Assert.Equal(0, h.Plc.GetHoldingRegister(1, 100));
        Assert.Equal(0, h.Plc.GetHoldingRegister(1, 101));
        Assert.Equal(4, h.Audit.OfKind(AuditEventKind.Denied).Length);

        // In range as the PLC reads it: forwarded.
        var allowed = await client.RoundTripAsync(WriteMultiple(0x0305, 100, 0, 1500, 0, 7));
        Assert.Equal(16, allowed[7]);
        Assert.Equal(1500, h.Plc.GetHoldingRegister(1, 101));
        Assert.Equal(7, h.Plc.GetHoldingRegister(1, 103));
        var temperature = BitConverter.SingleToUInt32Bits(21.5f);
        Assert.Equal(16, (await client.RoundTripAsync(WriteMultiple(0x0306, 200, (ushort)(temperature >> 16), (ushort)temperature)))[7]);
        Assert.Equal((ushort)(temperature >> 16), h.Plc.GetHoldingRegister(1, 200));
    }
}
