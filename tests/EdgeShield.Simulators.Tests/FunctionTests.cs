using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Simulators.Tests;

public class FunctionTests
{
    private static async Task<byte[]> AskAsync(PlcSimulator plc, params byte[] pdu)
    {
        using var client = await TestClient.ConnectAsync(plc.EndPoint);
        var response = await client.RequestAsync(1, pdu);
        // Whatever the simulator answers must pass the codec's own response check.
        var status = ModbusPdu.CheckResponse(response, ModbusPdu.ParseRequest(pdu).Expectation, out var error);
        Assert.True(status != ResponseStatus.Mismatch, $"response fails CheckResponse: {error}");
        return response;
    }

    [Fact]
    public async Task Fc1_ReadCoils_PacksBitsLsbFirst()
    {
        await using var plc = await Plc.StartAsync();
        plc.SetCoil(1, 0, true);
        plc.SetCoil(1, 2, true);
        plc.SetCoil(1, 9, true);
        Assert.Equal(new byte[] { 0x01, 0x02, 0x05, 0x02 }, await AskAsync(plc, 0x01, 0x00, 0x00, 0x00, 0x0A));
    }

    [Fact]
    public async Task Fc2_ReadDiscreteInputs_InitialPatternIsAddressModTwo()
    {
        await using var plc = await Plc.StartAsync();
        Assert.Equal(new byte[] { 0x02, 0x01, 0xAA }, await AskAsync(plc, 0x02, 0x00, 0x00, 0x00, 0x08));
    }

    [Fact]
    public async Task Fc4_ReadInputRegisters_InitialValueIsAddress()
    {
        await using var plc = await Plc.StartAsync();
        Assert.Equal(new byte[] { 0x04, 0x04, 0x00, 0x0A, 0x00, 0x0B }, await AskAsync(plc, 0x04, 0x00, 0x0A, 0x00, 0x02));
        plc.SetInputRegister(1, 10, 0xBEEF);
        Assert.Equal(new byte[] { 0x04, 0x02, 0xBE, 0xEF }, await AskAsync(plc, 0x04, 0x00, 0x0A, 0x00, 0x01));
    }

    [Fact]
    public async Task Fc5_WriteSingleCoil_EchoesAndStores()
    {
        await using var plc = await Plc.StartAsync();
        Assert.Equal(new byte[] { 0x05, 0x00, 0x03, 0xFF, 0x00 }, await AskAsync(plc, 0x05, 0x00, 0x03, 0xFF, 0x00));
        Assert.True(plc.GetCoil(1, 3));
        Assert.False(plc.GetCoil(2, 3));
    }

    [Fact]
    public async Task Fc6_WriteSingleRegister_EchoesAndStores()
    {
        await using var plc = await Plc.StartAsync();
        Assert.Equal(new byte[] { 0x06, 0x00, 0x64, 0x12, 0x34 }, await AskAsync(plc, 0x06, 0x00, 0x64, 0x12, 0x34));
        Assert.Equal(0x1234, plc.GetHoldingRegister(1, 100));
    }

    [Fact]
    public async Task Fc7_ReadExceptionStatus_IsFirstEightCoils()
    {
        await using var plc = await Plc.StartAsync();
        plc.SetCoil(1, 0, true);
        plc.SetCoil(1, 7, true);
        Assert.Equal(new byte[] { 0x07, 0x81 }, await AskAsync(plc, 0x07));
    }

    [Fact]
    public async Task Fc8_EchoClearAndCounters()
    {
        await using var plc = await Plc.StartAsync();
        Assert.Equal(new byte[] { 0x08, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78 }, await AskAsync(plc, 0x08, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78));
        Assert.Equal(new byte[] { 0x08, 0x00, 0x0A, 0x00, 0x00 }, await AskAsync(plc, 0x08, 0x00, 0x0A, 0x00, 0x00));
        // Bus message count after the clear: this request only.
        Assert.Equal(new byte[] { 0x08, 0x00, 0x0B, 0x00, 0x01 }, await AskAsync(plc, 0x08, 0x00, 0x0B, 0x00, 0x00));
        // Server message count: both requests since the clear.
        Assert.Equal(new byte[] { 0x08, 0x00, 0x0E, 0x00, 0x02 }, await AskAsync(plc, 0x08, 0x00, 0x0E, 0x00, 0x00));
        Assert.Equal(new byte[] { 0x88, 0x01 }, await AskAsync(plc, 0x08, 0x00, 0x40, 0x00, 0x00));
    }

    [Fact]
    public async Task Fc11_Fc12_CommEventCounterAndLog()
    {
        await using var plc = await Plc.StartAsync();
        Assert.Equal(new byte[] { 0x0B, 0x00, 0x00, 0x00, 0x00 }, await AskAsync(plc, 0x0B));
        Assert.Equal(new byte[] { 0x0C, 0x06, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02 }, await AskAsync(plc, 0x0C));
    }

    [Fact]
    public async Task Fc15_WriteMultipleCoils_StoresBits()
    {
        await using var plc = await Plc.StartAsync();
        Assert.Equal(new byte[] { 0x0F, 0x00, 0x13, 0x00, 0x0A }, await AskAsync(plc, 0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01));
        bool[] expected = [true, false, true, true, false, false, true, true, true, false];
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], plc.GetCoil(1, (ushort)(0x13 + i)));
        }
    }

    [Fact]
    public async Task Fc16_WriteMultipleRegisters_ThenFc3ReadsThem()
    {
        await using var plc = await Plc.StartAsync();
        Assert.Equal(new byte[] { 0x10, 0x00, 0x01, 0x00, 0x02 }, await AskAsync(plc, 0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02));
        Assert.Equal(new byte[] { 0x03, 0x06, 0x00, 0x00, 0x00, 0x0A, 0x01, 0x02 }, await AskAsync(plc, 0x03, 0x00, 0x00, 0x00, 0x03));
    }

    [Fact]
    public async Task Fc17_ReportServerId_NamesTheSimulator()
    {
        await using var plc = await Plc.StartAsync();
        byte[] expected = [0x11, 0x0F, .. "EdgeShield-Sim"u8.ToArray(), 0xFF];
        Assert.Equal(expected, await AskAsync(plc, 0x11));
    }

    [Fact]
    public async Task Fc20_ReadFileRecord_SpecExample()
    {
        await using var plc = await Plc.StartAsync();
        plc.SetFileRecord(1, 4, 1, 0x0DFE);
        plc.SetFileRecord(1, 4, 2, 0x0020);
        plc.SetFileRecord(1, 3, 9, 0x33CD);
        plc.SetFileRecord(1, 3, 10, 0x0040);
        Assert.Equal(new byte[] { 0x14, 0x0C, 0x05, 0x06, 0x0D, 0xFE, 0x00, 0x20, 0x05, 0x06, 0x33, 0xCD, 0x00, 0x40 },
            await AskAsync(plc, 0x14, 0x0E, 0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02, 0x06, 0x00, 0x03, 0x00, 0x09, 0x00, 0x02));
    }

    [Fact]
    public async Task Fc21_WriteFileRecord_SpecExample_EchoesAndStores()
    {
        await using var plc = await Plc.StartAsync();
        byte[] request = [0x15, 0x0D, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x06, 0xAF, 0x04, 0xBE, 0x10, 0x0D];
        Assert.Equal(request, await AskAsync(plc, request));
        Assert.Equal(0x06AF, plc.GetFileRecord(1, 4, 7));
        Assert.Equal(0x100D, plc.GetFileRecord(1, 4, 9));
    }

    [Fact]
    public async Task Fc22_MaskWriteRegister_SpecExample()
    {
        await using var plc = await Plc.StartAsync();
        plc.SetHoldingRegister(1, 4, 0x12);
        Assert.Equal(new byte[] { 0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25 }, await AskAsync(plc, 0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25));
        Assert.Equal(0x17, plc.GetHoldingRegister(1, 4));
    }

    [Fact]
    public async Task Fc23_WriteHappensBeforeRead()
    {
        await using var plc = await Plc.StartAsync();
        plc.SetHoldingRegister(1, 0, 0x1111);
        // Read 0..2, write 1..2 with 0x00FF, 0x0102: the read sees the new values.
        Assert.Equal(new byte[] { 0x17, 0x06, 0x11, 0x11, 0x00, 0xFF, 0x01, 0x02 },
            await AskAsync(plc, 0x17, 0x00, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0xFF, 0x01, 0x02));
    }

    [Fact]
    public async Task Fc24_ReadFifoQueue_SpecExampleAtPointer()
    {
        await using var plc = await Plc.StartAsync();
        Assert.Equal(new byte[] { 0x18, 0x00, 0x06, 0x00, 0x02, 0x01, 0xB8, 0x12, 0x84 }, await AskAsync(plc, 0x18, 0x04, 0xDE));
        plc.SetFifo(1, [7]);
        Assert.Equal(new byte[] { 0x18, 0x00, 0x04, 0x00, 0x01, 0x00, 0x07 }, await AskAsync(plc, 0x18, 0x04, 0xDE));
        Assert.Equal(new byte[] { 0x98, 0x02 }, await AskAsync(plc, 0x18, 0x00, 0x01));
    }

    [Fact]
    public async Task Fc43_14_BasicDeviceIdentification()
    {
        await using var plc = await Plc.StartAsync();
        byte[] expected =
        [
            0x2B, 0x0E, 0x01, 0x82, 0x00, 0x00, 0x03,
            0x00, 0x0A, .. "EdgeShield"u8.ToArray(),
            0x01, 0x0A, .. "ES-SIM-PLC"u8.ToArray(),
            0x02, 0x05, .. "0.1.0"u8.ToArray(),
        ];
        Assert.Equal(expected, await AskAsync(plc, 0x2B, 0x0E, 0x01, 0x00));
        var regular = await AskAsync(plc, 0x2B, 0x0E, 0x02, 0x00);
        Assert.Equal(7, regular[6]);
        byte[] single = [0x2B, 0x0E, 0x04, 0x82, 0x00, 0x00, 0x01, 0x05, 0x0E, .. "edgeshield-sim"u8.ToArray()];
        Assert.Equal(single, await AskAsync(plc, 0x2B, 0x0E, 0x04, 0x05));
        Assert.Equal(new byte[] { 0xAB, 0x02 }, await AskAsync(plc, 0x2B, 0x0E, 0x04, 0x07));
    }

    [Theory]
    [InlineData(new byte[] { 0x5A, 0x00, 0x02 }, 0x01)] // UMAS
    [InlineData(new byte[] { 0x41 }, 0x01)] // user-defined 65
    [InlineData(new byte[] { 0x64, 0x01 }, 0x01)] // user-defined 100
    [InlineData(new byte[] { 0x2B, 0x0D, 0x00 }, 0x01)] // 43/13 CANopen
    [InlineData(new byte[] { 0x81 }, 0x01)] // exception range
    [InlineData(new byte[] { 0x03, 0x00, 0x00, 0x00, 0x00 }, 0x03)] // quantity 0
    [InlineData(new byte[] { 0x03, 0x00, 0x00, 0x00, 0x7E }, 0x03)] // quantity 126
    [InlineData(new byte[] { 0x05, 0x00, 0x00, 0x12, 0x34 }, 0x03)] // coil value
    [InlineData(new byte[] { 0x03, 0xFF, 0xFF, 0x00, 0x02 }, 0x02)] // runs past 65535
    [InlineData(new byte[] { 0x14, 0x07, 0x06, 0x00, 0x09, 0x00, 0x00, 0x00, 0x01 }, 0x02)] // no file 9
    public async Task Exceptions_HaveFunctionOr80AndCode(byte[] pdu, byte code)
    {
        await using var plc = await Plc.StartAsync();
        Assert.Equal(new byte[] { (byte)(pdu[0] | 0x80), code }, await AskAsync(plc, pdu));
        Assert.Equal(1, plc.ExceptionsSent);
    }

    [Fact]
    public async Task AddressBeyondTableSize_IsException02()
    {
        await using var plc = await Plc.StartAsync(new PlcOptions { TableSize = 1000 });
        Assert.Equal(new byte[] { 0x83, 0x02 }, await AskAsync(plc, 0x03, 0x03, 0xE7, 0x00, 0x02));
        Assert.Equal(new byte[] { 0x86, 0x02 }, await AskAsync(plc, 0x06, 0x03, 0xE8, 0x00, 0x01));
        Assert.Equal(new byte[] { 0x03, 0x02, 0x00, 0x00 }, await AskAsync(plc, 0x03, 0x03, 0xE7, 0x00, 0x01));
    }

    [Fact]
    public async Task UnitsNotServed_Exception0B_OrIgnored()
    {
        await using var plc = await Plc.StartAsync(new PlcOptions { Units = [1] });
        using var client = await TestClient.ConnectAsync(plc.EndPoint);
        Assert.Equal(new byte[] { 0x83, 0x0B }, await client.RequestAsync(2, 0x03, 0x00, 0x00, 0x00, 0x01));
        Assert.Equal(new byte[] { 0x03, 0x02, 0x00, 0x00 }, await client.RequestAsync(1, 0x03, 0x00, 0x00, 0x00, 0x01));

        await using var quiet = await Plc.StartAsync(new PlcOptions { Units = [1], UnitNotServed = UnitNotServedBehavior.Ignore });
        using var other = await TestClient.ConnectAsync(quiet.EndPoint);
        await other.SendPduAsync(9, 2, 0x03, 0x00, 0x00, 0x00, 0x01);
        Assert.Null(await other.ReadAduAsync(300));
        await ConnectionTests.WaitForAsync(() => quiet.RequestsReceived(3) >= 1); // a loaded machine may not have read it yet
        Assert.Equal(1, quiet.RequestsReceived(3));
    }

    [Fact]
    public async Task SineBlock_Moves_OtherInputsStay()
    {
        await using var plc = await Plc.StartAsync(new PlcOptions { SineStart = 100, SineCount = 2, SinePeriodSeconds = 0.2 });
        using var client = await TestClient.ConnectAsync(plc.EndPoint);
        var first = await client.RequestAsync(1, 0x04, 0x00, 0x64, 0x00, 0x01);
        // It moves: a later read differs (a few tries, bounded: a loaded machine's delay may happen to be a whole period).
        byte[] second = first;
        for (int attempt = 0; attempt < 20 && second.AsSpan().SequenceEqual(first); attempt++)
        {
            await Task.Delay(50 + attempt);
            second = await client.RequestAsync(1, 0x04, 0x00, 0x64, 0x00, 0x01);
        }
        Assert.NotEqual(first, second);
        Assert.Equal(new byte[] { 0x04, 0x02, 0x00, 0x66 }, await client.RequestAsync(1, 0x04, 0x00, 0x66, 0x00, 0x01));
    }
}
