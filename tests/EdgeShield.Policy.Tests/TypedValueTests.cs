using EdgeShield.Protocols.Modbus;
using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

/// <summary>
/// <c>type:</c> and <c>word-order:</c> on a rule: <c>value:</c> bounds values as the PLC reads them,
/// 32-bit values two registers each from the first address of each <c>address:</c> range.
/// </summary>
public class TypedValueTests
{
    private const string Source = "10.20.0.5";

    private static CompiledPolicy Rule(string keys) => Compile($"""
              - name: setpoint
                from: 10.20.0.5
                unit: 1
                function: [write-single-register, write-multiple-registers, read-write-multiple-registers]
        {keys}

        """);

    private static DenyReason? Outcome(CompiledPolicy policy, byte[] pdu)
    {
        var verdict = Evaluate(policy, Source, 1, pdu);
        return verdict.IsAllowed ? null : verdict.Reason;
    }

    private static (ushort High, ushort Low) Words(uint value) => ((ushort)(value >> 16), (ushort)value);

    private static (ushort High, ushort Low) Float(float value) => Words(BitConverter.SingleToUInt32Bits(value));

    [Fact]
    public void Int32_TwoHalvesEachInRange_IsValueDenied_WhereTheUntypedRuleLetsItThrough()
    {
        var typed = Rule("""
                    address: 100-119
                    type: int32
                    value: 0-1500
            """);
        var untyped = Rule("""
                    address: 100-119
                    value: 0-1500
            """);

        // 0x05DC05DC = 98 305 500 as the PLC reads the int32; each register alone is 1500.
        var verdict = Evaluate(typed, Source, 1, WriteMultiple(100, 0x05DC, 0x05DC));
        Assert.Equal(DenyReason.Value, verdict.Reason);
        Assert.Equal(0x03, verdict.ExceptionCode);
        Assert.Null(Outcome(untyped, WriteMultiple(100, 0x05DC, 0x05DC)));

        Assert.Null(Outcome(typed, WriteMultiple(100, 0, 1500)));
        Assert.Null(Outcome(typed, WriteMultiple(100, 0, 1500, 0, 0, 0, 7)));
        Assert.Equal(DenyReason.Value, Outcome(typed, WriteMultiple(100, 0, 1500, 0, 1501)));
        Assert.Equal(DenyReason.Value, Outcome(typed, WriteMultiple(100, 0xFFFF, 0xFFFF))); // -1
    }

    [Fact]
    public void Float32_InRange_IsAllowed_OutOfRangeNaNAndInfinity_AreValueDenied()
    {
        var policy = Rule("""
                    address: 200-203
                    type: float32
                    value: -20.5..80
            """);

        foreach (var ok in new[] { -20.5f, 0f, 21.25f, 80f })
        {
            var (high, low) = Float(ok);
            Assert.Null(Outcome(policy, WriteMultiple(200, high, low)));
        }
        foreach (var bad in new[] { -20.6f, 80.01f, float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            var (high, low) = Float(bad);
            Assert.Equal(DenyReason.Value, Outcome(policy, WriteMultiple(200, high, low)));
        }
        // A quiet NaN with a payload is still NaN.
        Assert.Equal(DenyReason.Value, Outcome(policy, WriteMultiple(202, 0x7FC1, 0x2345)));
    }

    [Fact]
    public void WordOrder_IsAppliedBeforeTheBound()
    {
        var cdab = Rule("""
                    address: 100-101
                    type: int32
                    word-order: cdab
                    value: 0-1500
            """);
        var abcd = Rule("""
                    address: 100-101
                    type: int32
                    value: 0-1500
            """);

        // 1500 with the low word first.
        Assert.Null(Outcome(cdab, WriteMultiple(100, 1500, 0)));
        Assert.Equal(DenyReason.Value, Outcome(abcd, WriteMultiple(100, 1500, 0)));
        Assert.Equal(DenyReason.Value, Outcome(cdab, WriteMultiple(100, 0, 1500)));

        var (high, low) = Float(42.5f);
        var swappedFloat = Rule("""
                    address: 100-101
                    type: float32
                    word-order: dcba
                    value: 40..45
            """);
        ushort Swap(ushort w) => (ushort)((w >> 8) | (w << 8));
        Assert.Null(Outcome(swappedFloat, WriteMultiple(100, Swap(low), Swap(high))));
        Assert.Equal(DenyReason.Value, Outcome(swappedFloat, WriteMultiple(100, high, low)));
    }

    [Fact]
    public void Int16_ReadsTheRegisterAsSigned()
    {
        var policy = Rule("""
                    address: 0-9
                    type: int16
                    value: -40..120
            """);

        Assert.Null(Outcome(policy, WriteSingle(3, 0xFFD8))); // -40
        Assert.Null(Outcome(policy, WriteMultiple(3, 0xFFFF, 0, 120))); // -1, 0, 120
        Assert.Equal(DenyReason.Value, Outcome(policy, WriteSingle(3, 0xFFD7))); // -41
        Assert.Equal(DenyReason.Value, Outcome(policy, WriteSingle(3, 121)));
        Assert.Equal(DenyReason.Value, Outcome(policy, WriteSingle(3, 0x8000))); // -32768
    }

    [Fact]
    public void PartialCover_IsValueDenied()
    {
        var policy = Rule("""
                    address: 100-119
                    type: uint32
                    value: 0-1500
            """);

        // FC 6 always writes half a 32-bit value.
        var single = Evaluate(policy, Source, 1, WriteSingle(100, 0));
        Assert.Equal(DenyReason.Value, single.Reason);
        Assert.Equal(0x03, single.ExceptionCode);
        Assert.Equal(DenyReason.Value, Outcome(policy, WriteMultiple(100, 0)));
        Assert.Equal(DenyReason.Value, Outcome(policy, WriteMultiple(100, 0, 5, 0)));
        Assert.Equal(DenyReason.Value, Outcome(policy, ReadWrite(100, 1, 104, 0, 5, 0)));
        Assert.Null(Outcome(policy, ReadWrite(100, 1, 104, 0, 5)));
    }

    [Fact]
    public void OffGridStart_IsValueDenied_InEveryRange()
    {
        var policy = Rule("""
                    address: [100-103, 201-204, 300-301, 302-305]
                    type: int32
                    value: 0-1500
            """);

        Assert.Null(Outcome(policy, WriteMultiple(100, 0, 1)));
        Assert.Null(Outcome(policy, WriteMultiple(102, 0, 1)));
        Assert.Equal(DenyReason.Value, Outcome(policy, WriteMultiple(101, 0, 1)));
        // The grid starts at each range's first address: 201, 203.
        Assert.Null(Outcome(policy, WriteMultiple(203, 0, 1)));
        Assert.Equal(DenyReason.Value, Outcome(policy, WriteMultiple(202, 0, 1)));
        // Adjacent ranges merge into 300-305 before the grid is laid.
        Assert.Null(Outcome(policy, WriteMultiple(302, 0, 1, 0, 2)));
        Assert.Equal(DenyReason.Value, Outcome(policy, WriteMultiple(301, 0, 1)));
        // Outside every range is still an address refusal.
        Assert.Equal(DenyReason.Address, Outcome(policy, WriteMultiple(104, 0, 1)));
    }

    [Fact]
    public void Uint16Type_AndUntypedRule_BoundTheSameWay_CoilWritesUnbounded()
    {
        var typed = Compile("""
                  - from: 10.20.0.5
                    address: 0-9
                    type: uint16
                    value: [0-1500, 2000.5..2100]
            """);

        Assert.Null(Outcome(typed, WriteMultiple(0, 0, 1500, 2001, 2100)));
        Assert.Equal(DenyReason.Value, Outcome(typed, WriteMultiple(0, 2000)));
        Assert.Equal(DenyReason.Value, Outcome(typed, WriteSingle(0, 0xFFFF)));
        Assert.Null(Outcome(typed, WriteCoil(1)));
        Assert.Equal(DenyReason.Value, Outcome(typed, MaskWrite(1)));
    }

    [Theory]
    [InlineData("0-1500", 0, 1500)]
    [InlineData("-40..120", -40, 120)]
    [InlineData("-40-120", -40, 120)]
    [InlineData("-40 - -10", -40, -10)]
    [InlineData("-20.5..80", -20.5, 80)]
    [InlineData("1e-3..2.5e2", 0.001, 250)]
    [InlineData("-7", -7, -7)]
    public void TypedRange_Syntax(string text, double low, double high)
    {
        var policy = Rule($"""
                    address: 0-1
                    type: float32
                    value: "{text}"
            """);
        foreach (var (value, allowed) in new[] { (low, true), (high, true), ((low + high) / 2, true), (low - 1, false), (high + 1, false) })
        {
            var (h, l) = Float((float)value);
            Assert.True(allowed == (Outcome(policy, WriteMultiple(0, h, l)) is null), $"{text}: {value}");
        }
    }

    [Theory]
    [InlineData("nan")]
    [InlineData("NaN..1")]
    [InlineData("0..Infinity")]
    [InlineData("1..")]
    [InlineData("abc")]
    public void TypedRange_Rejects(string text) =>
        Assert.Single(Errors($"      - address: 0-9\n        type: float32\n        value: \"{text}\"\n"));

    private static string[] Errors(string rule) =>
        Lines(Load($"policies:\n  p:\n    mode: enforce\n    rules:\n{rule}")).Where(l => l.Contains(": error: ", StringComparison.Ordinal)).ToArray();

    [Fact]
    public void ConfigErrors_HaveLineAndColumn()
    {
        Assert.Equal(["test.yaml:6:15: error: 'type' says how 'value' reads the written registers, but this rule has no 'value': add 'value:' bounds or remove 'type:'"],
            Errors("      - address: 0-9\n        type: int16\n"));
        Assert.Equal(["test.yaml:5:15: error: 'type: float32' takes two registers per value, which start at the first address of each 'address' range: this rule needs 'address:'"],
            Errors("      - type: float32\n        value: 0..1\n"));
        Assert.Equal(["test.yaml:5:18: error: 'address' range 100-102 holds 3 registers, not a whole number of int32 values (2 registers each, from its first address)"],
            Errors("      - address: [100-102, 200-201]\n        type: int32\n        value: 0-1500\n"));
        Assert.Equal(["test.yaml:6:21: error: 'word-order' says how a typed value's bytes are written; it needs 'type:' (int16, uint16, int32, uint32, float32)"],
            Errors("      - address: 0-9\n        word-order: cdab\n        value: 0-10\n"));
        Assert.Equal(["test.yaml:7:22: error: 'value' with 'type: int16' must be a finite number or a range LOW..HIGH such as -20.5..80 or 0-1500, not 'nan'"],
            Errors("      - address: 0-9\n        type: int16\n        value: [0-5, nan]\n"));
        Assert.Equal(["test.yaml:7:16: error: 'value' range 80..-20.5 runs backwards; write the lower bound first"],
            Errors("      - address: 0-9\n        type: float32\n        value: 80..-20.5\n"));
        Assert.Single(Errors("      - address: 0-9\n        type: int64\n        value: 0-1\n"), e => e.StartsWith("test.yaml:6:15: error: 'type' must be one of int16, uint16, int32, uint32, float32", StringComparison.Ordinal));
        // Without type: the old syntax and range: a negative bound says what it needs.
        Assert.Single(Errors("      - address: 0-9\n        value: -40..120\n"), e => e.StartsWith("test.yaml:6:16: error: 'value' must be", StringComparison.Ordinal) && e.Contains("need 'type:'", StringComparison.Ordinal));
    }

    [Fact]
    public void Shadowing_ComparesTypedBoundsOnlyWithTheSameTypeOrderAndGrid()
    {
        static string[] Warnings(string rules) => Lines(Load($"policies:\n  p:\n    mode: enforce\n    rules:\n{rules}")).Where(l => l.Contains("can never match", StringComparison.Ordinal)).ToArray();

        Assert.Single(Warnings("""
                  - { address: 0-9, type: int32, value: -100..100 }
                  - { address: 0-9, type: int32, value: 0..10 }

            """));
        Assert.Empty(Warnings("""
                  - { address: 0-9, value: 0-1500 }
                  - { address: 0-9, type: int32, value: 0-1500 }

            """));
        Assert.Empty(Warnings("""
                  - { address: 0-9, type: int32, value: 0..10 }
                  - { address: 0-9, type: int32, word-order: cdab, value: 0..10 }

            """));
        Assert.Empty(Warnings("""
                  - { address: 0-9, type: int32, value: 0..10 }
                  - { address: 1-8, type: int32, value: 0..10 }

            """));
    }
}
