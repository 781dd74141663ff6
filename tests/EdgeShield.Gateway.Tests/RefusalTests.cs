namespace EdgeShield.Gateway.Tests;

/// <summary>Every refusal answers with the exact exception bytes of DESIGN.md, and never reaches the PLC.</summary>
public class RefusalTests
{
    private const string Policy = """
            mode: enforce
            rules:
              - name: reads
                from: [127.0.0.0/8]
                unit: [1]
                function: [read-holding-registers]
                address: 0-99
              - name: setpoints
                unit: 1
                function: write-single-register
                address: 100-119
                value: 0-1500
              - name: limited
                unit: 2
                function: read-input-registers
                rate: 2/m
        """;

    [Theory]
    [InlineData(9, new byte[] { 3, 0, 0, 0, 1 }, 0x83, 0x0A)]          // no rule for unit 9
    [InlineData(1, new byte[] { 5, 0, 1, 0xFF, 0 }, 0x85, 0x01)]       // unit 1, function not allowed
    [InlineData(1, new byte[] { 3, 0, 98, 0, 5 }, 0x83, 0x02)]         // span 98..102 crosses the end of 0-99
    [InlineData(1, new byte[] { 6, 0, 100, 0x07, 0xD0 }, 0x86, 0x03)]  // value 2000 above 1500
    [InlineData(1, new byte[] { 90, 0, 1 }, 0xDA, 0x01)]               // Schneider UMAS
    public async Task Refused_IsAnsweredWithTheExceptionOfTheClosestRule(byte unit, byte[] pdu, byte function, byte code)
    {
        await using var h = await GatewayHarness.StartAsync(Policy);
        using var client = await h.ConnectAsync();

        var response = await client.RoundTripAsync(ModbusClient.Adu(0x0102, unit, pdu));

        Assert.Equal(new byte[] { 0x01, 0x02, 0, 0, 0, 3, unit, function, code }, response);
        Assert.Equal(0, h.Plc.TotalRequests);
        var denied = Assert.Single(h.Audit.OfKind(AuditEventKind.Denied));
        Assert.Equal(code, denied.ExceptionCode);
        Assert.Equal("hmi-plc1", denied.Listener);
        Assert.Equal(unit, denied.Unit);
    }

    [Fact]
    public async Task RateExceeded_IsAnsweredBusy()
    {
        await using var h = await GatewayHarness.StartAsync(Policy);
        using var client = await h.ConnectAsync();
        var codes = new List<byte>();
        for (ushort i = 0; i < 5; i++)
        {
            var response = await client.RoundTripAsync(ModbusClient.Adu(i, 2, 4, 0, 0, 0, 1));
            codes.Add(response[7] == 0x84 ? response[8] : (byte)0);
        }

        Assert.Equal(0, codes[0]);
        Assert.Contains((byte)0x06, codes);
        Assert.Equal(codes.Count(c => c == 0), h.Plc.RequestsReceived(4));
    }

    [Fact]
    public async Task OutOfSpecQuantity_IsAnsweredIllegalDataValue_NotForwarded()
    {
        await using var h = await GatewayHarness.StartAsync(Policy);
        using var client = await h.ConnectAsync();

        var response = await client.RoundTripAsync(ModbusClient.ReadHolding(3, 1, 0, 0));

        Assert.Equal(new byte[] { 0, 3, 0, 0, 0, 3, 1, 0x83, 0x03 }, response);
        Assert.Equal(0, h.Plc.TotalRequests);
        Assert.Single(h.Audit.OfKind(AuditEventKind.OutOfSpec));
    }

    [Fact]
    public async Task CoilValueOtherThanOnOrOff_IsIllegalDataValue()
    {
        await using var h = await GatewayHarness.StartAsync();
        using var client = await h.ConnectAsync();

        var response = await client.RoundTripAsync(ModbusClient.Adu(4, 1, 5, 0, 1, 0x12, 0x34));

        Assert.Equal(new byte[] { 0, 4, 0, 0, 0, 3, 1, 0x85, 0x03 }, response);
        Assert.Equal(0, h.Plc.TotalRequests);
    }

    [Fact]
    public async Task OnDenyDrop_AnswersNothing_ButKeepsTheConnection()
    {
        await using var h = await GatewayHarness.StartAsync(Policy.Replace("mode: enforce", "mode: enforce\n    on-deny: drop", StringComparison.Ordinal));
        using var client = await h.ConnectAsync();

        await client.SendAsync(ModbusClient.WriteRegister(1, 1, 5, 1));
        Assert.Null(await client.ReceiveAsync(500));
        var allowed = await client.RoundTripAsync(ModbusClient.ReadHolding(2, 1, 0, 1));

        Assert.Equal(3, allowed[7]);
        Assert.Single(h.Audit.OfKind(AuditEventKind.Denied));
    }

    [Fact]
    public async Task OnDenyClose_ClosesTheConnection()
    {
        await using var h = await GatewayHarness.StartAsync(Policy.Replace("mode: enforce", "mode: enforce\n    on-deny: close", StringComparison.Ordinal));
        using var client = await h.ConnectAsync();

        await client.SendAsync(ModbusClient.WriteRegister(1, 1, 5, 1));

        Assert.True(await client.IsClosedByPeerAsync());
        Assert.Equal(0, h.Plc.TotalRequests);
    }

    [Fact]
    public async Task MonitorMode_ForwardsWhatWouldBeDenied_AndAuditsIt()
    {
        await using var h = await GatewayHarness.StartAsync(Policy.Replace("mode: enforce", "mode: monitor", StringComparison.Ordinal));
        using var client = await h.ConnectAsync();

        var response = await client.RoundTripAsync(ModbusClient.WriteRegister(1, 1, 5, 1));

        Assert.Equal(ModbusClient.WriteRegister(1, 1, 5, 1), response);
        Assert.Equal(1, h.Plc.GetHoldingRegister(1, 5));
        var wouldDeny = Assert.Single(h.Audit.OfKind(AuditEventKind.WouldDeny));
        Assert.Equal(6, wouldDeny.FunctionCode);
        Assert.Empty(h.Audit.OfKind(AuditEventKind.Denied));
    }
}
