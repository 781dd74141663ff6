using EdgeShield.Policy;
using EdgeShield.Transport;

namespace EdgeShield.Telemetry.Tests;

public class PlanAndDecodeTests
{
    private static PollConfig Poll(int maxGap, params TagConfig[] tags) => new()
    {
        Device = "d",
        Upstream = new UpstreamAddress("tcp", "127.0.0.1", 502),
        MaxGap = maxGap,
        Tags = tags,
    };

    private static TagConfig Holding(string name, ushort address, TagType type = TagType.UInt16) => new() { Name = name, Table = TagTable.Holding, Address = address, Type = type };

    [Fact]
    public void AdjacentTags_OneRead_GapSplitsUnlessAllowed()
    {
        var tags = new[] { Holding("a", 0), Holding("b", 1, TagType.Float32), Holding("c", 5) };
        var strict = TagPlan.Build(Poll(0, tags));
        Assert.Equal(2, strict.Count);
        Assert.Equal((ushort)0, strict[0].Start);
        Assert.Equal((ushort)3, strict[0].Quantity);
        Assert.Equal((ushort)5, strict[1].Start);
        var loose = Assert.Single(TagPlan.Build(Poll(2, tags)));
        Assert.Equal((ushort)6, loose.Quantity);
        Assert.Equal(ReadFunction.ReadHoldingRegisters, loose.Function);
    }

    [Fact]
    public void Coalescing_NeverExceeds125Registers_Or2000Bits()
    {
        var registers = Enumerable.Range(0, 300).Select(i => Holding("r" + i, (ushort)i)).ToArray();
        var plan = TagPlan.Build(Poll(0, registers));
        Assert.All(plan, b => Assert.True(b.Quantity <= 125));
        Assert.Equal(3, plan.Count);
        var coils = Enumerable.Range(0, 4500).Select(i => new TagConfig { Name = "c" + i, Table = TagTable.Coil, Address = (ushort)i, Type = TagType.Bool }).ToArray();
        var bits = TagPlan.Build(Poll(0, coils));
        Assert.All(bits, b => Assert.True(b.Quantity <= 2000));
        Assert.Equal(3, bits.Count);
        Assert.Equal(ReadFunction.ReadCoils, bits[0].Function);
    }

    [Theory]
    [InlineData(WordOrder.Abcd, new byte[] { 0x41, 0xAC, 0x00, 0x00 })]
    [InlineData(WordOrder.Cdab, new byte[] { 0x00, 0x00, 0x41, 0xAC })]
    [InlineData(WordOrder.Badc, new byte[] { 0xAC, 0x41, 0x00, 0x00 })]
    [InlineData(WordOrder.Dcba, new byte[] { 0x00, 0x00, 0xAC, 0x41 })]
    public void Float32_WordOrders_Decode(WordOrder order, byte[] wire)
    {
        var tag = new TagConfig { Name = "f", Table = TagTable.Holding, Address = 10, Type = TagType.Float32, WordOrder = order };
        var value = TagDecoder.Decode(tag, wire, 10);
        Assert.Equal(TagValueKind.Real, value.Kind);
        Assert.Equal(21.5, value.Real);
    }

    [Fact]
    public void Int64_Cdab_AndScaleOffset_AndSignedTypes()
    {
        // 0x0102030405060708 with its four words in reverse order.
        byte[] wire = [0x07, 0x08, 0x05, 0x06, 0x03, 0x04, 0x01, 0x02];
        var tag = new TagConfig { Name = "i", Table = TagTable.Input, Address = 0, Type = TagType.Int64, WordOrder = WordOrder.Cdab };
        Assert.Equal(0x0102030405060708L, TagDecoder.Decode(tag, wire, 0).SignedValue);
        var scaled = new TagConfig { Name = "s", Table = TagTable.Holding, Address = 1, Type = TagType.Int16, Scale = 0.5, Offset = -10 };
        Assert.Equal((-2 * 0.5) - 10, TagDecoder.Decode(scaled, [0x00, 0x00, 0xFF, 0xFE], 0).Real);
        var u64 = new TagConfig { Name = "u", Table = TagTable.Holding, Address = 0, Type = TagType.UInt64 };
        Assert.Equal(ulong.MaxValue, TagDecoder.Decode(u64, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], 0).UnsignedValue);
        var coil = new TagConfig { Name = "c", Table = TagTable.Coil, Address = 9, Type = TagType.Bool };
        Assert.True(TagDecoder.Decode(coil, [0x00, 0x02], 0).Boolean);
        Assert.False(TagDecoder.Decode(coil, [0xFF, 0xFD], 0).Boolean);
    }
}
