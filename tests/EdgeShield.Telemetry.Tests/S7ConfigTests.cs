using EdgeShield.Policy;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Telemetry.Tests;

/// <summary><c>protocol: s7comm</c> poll entries: the connection keys and S7 absolute tag addresses.</summary>
public class S7ConfigTests
{
    private static ConfigLoadResult Load(string pollLines, string tagLine) => ConfigLoader.LoadText($$"""
        telemetry:
          mqtt: { broker: mqtt://127.0.0.1:1883 }
          poll:
            - device: press1
              upstream: tcp://10.10.0.21:102
        {{pollLines}}
              tags:
                {{tagLine}}
        """, "c.yaml");

    private const string S7 = "      protocol: s7comm\n      slot: 2";

    private static ConfigDiagnostic SingleError(ConfigLoadResult result) =>
        Assert.Single(result.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);

    [Theory]
    [InlineData("DB1.DBX0.0", S7Area.DataBlocks, 1, 0, 0, 0, TagType.Bool)]
    [InlineData("DB1.DBX3.7", S7Area.DataBlocks, 1, 3, 7, 0, TagType.Bool)]
    [InlineData("DB1.DBW2", S7Area.DataBlocks, 1, 2, 0, 2, TagType.UInt16)]
    [InlineData("DB1.DBB3", S7Area.DataBlocks, 1, 3, 0, 1, TagType.UInt8)]
    [InlineData("MB7", S7Area.Flags, 0, 7, 0, 1, TagType.UInt8)]
    [InlineData("%IB0", S7Area.Inputs, 0, 0, 0, 1, TagType.UInt8)]
    [InlineData("qb5", S7Area.Outputs, 0, 5, 0, 1, TagType.UInt8)]
    [InlineData("DB65535.DBD4", S7Area.DataBlocks, 65535, 4, 0, 4, TagType.UInt32)]
    [InlineData("db2.dbd8", S7Area.DataBlocks, 2, 8, 0, 4, TagType.UInt32)]
    [InlineData("%DB1.DBW2", S7Area.DataBlocks, 1, 2, 0, 2, TagType.UInt16)]
    [InlineData("M10.0", S7Area.Flags, 0, 10, 0, 0, TagType.Bool)]
    [InlineData("MW10", S7Area.Flags, 0, 10, 0, 2, TagType.UInt16)]
    [InlineData("MD12", S7Area.Flags, 0, 12, 0, 4, TagType.UInt32)]
    [InlineData("I0.1", S7Area.Inputs, 0, 0, 1, 0, TagType.Bool)]
    [InlineData("IW4", S7Area.Inputs, 0, 4, 0, 2, TagType.UInt16)]
    [InlineData("Q4.0", S7Area.Outputs, 0, 4, 0, 0, TagType.Bool)]
    [InlineData("%QD8", S7Area.Outputs, 0, 8, 0, 4, TagType.UInt32)]
    public void S7Address_ParsesToAreaDbByteBit_WithTheSizesDefaultType(string address, S7Area area, int db, int byteOffset, int bit, int size, TagType type)
    {
        // Quoted: YAML cannot start a plain scalar with '%'.
        var result = Load(S7, $"- {{ name: t, address: '{address}' }}");
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        var tag = Assert.Single(Assert.Single(result.Config!.Telemetry!.Poll).Tags);
        Assert.Equal(new S7TagAddress(area, (ushort)db, byteOffset, (byte)bit, (byte)size), tag.S7);
        Assert.Equal(type, tag.Type);
    }

    [Fact]
    public void S7Entry_BuildsTheConnection_DefaultBasicRack0_CallingTsap0100()
    {
        var result = Load(S7, "- { name: temp, address: DB1.DBD4, type: float32, scale: 2, offset: 1, unit: degC }");
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        var poll = Assert.Single(result.Config!.Telemetry!.Poll);
        Assert.Equal(PollProtocol.S7comm, poll.Protocol);
        // 03 basic, rack 0 slot 2 → 03.02; calling 01.00.
        Assert.Equal(new S7PollConnection(0x0100, 0x0302), poll.S7);
        var tag = Assert.Single(poll.Tags);
        Assert.Equal((TagType.Float32, 2.0, 1.0, "degC"), (tag.Type, tag.Scale, tag.Offset, tag.Unit));
    }

    [Theory]
    [InlineData("      protocol: s7comm\n      rack: 1\n      slot: 3\n      connection: op", 0x0100, 0x0223)]
    [InlineData("      protocol: s7comm\n      slot: 1\n      connection: pg", 0x0100, 0x0101)]
    [InlineData("      protocol: s7comm\n      called-tsap: 02.00\n      calling-tsap: 01.00", 0x0100, 0x0200)]
    [InlineData("      protocol: s7comm\n      called-tsap: 10.0A\n      calling-tsap: 4D.57", 0x4D57, 0x100A)]
    public void S7Connection_FromRackSlotTypeOrTsaps(string pollLines, int calling, int called)
    {
        var result = Load(pollLines, "- { name: t, address: MW0 }");
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        Assert.Equal(new S7PollConnection((ushort)calling, (ushort)called), Assert.Single(result.Config!.Telemetry!.Poll).S7);
    }

    [Fact]
    public void ModbusEntry_IsTheDefault_AndHasNoS7Connection()
    {
        var result = Load("", "- { name: t, table: holding, address: 3 }");
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        var poll = Assert.Single(result.Config!.Telemetry!.Poll);
        Assert.Equal(PollProtocol.Modbus, poll.Protocol);
        Assert.Null(poll.S7);
        Assert.Null(Assert.Single(poll.Tags).S7);
    }

    [Theory]
    // address: what is wrong, on the tag line (9), at the key or value in question.
    [InlineData("- { name: t, address: DB1.DBB3, type: int16 }", 9, "a byte address (DBB, MB, IB, QB) holds uint8 or int8")]
    [InlineData("- { name: t, address: MW2, type: uint8 }", 9, "a word address (DBW, MW, IW, QW) holds int16 or uint16")]
    [InlineData("- { name: t, address: DB1.DBY3 }", 9, "the size is X (bit, byte.bit), B (byte), W (word) or D (double word)")]
    [InlineData("- { name: t, address: DB0.DBW2 }", 9, "the DB number is 1..65535")]
    [InlineData("- { name: t, address: DB1.DBX0.8 }", 9, "the bit number is 0..7")]
    [InlineData("- { name: t, address: MW70000 }", 9, "the byte offset is 0..65535")]
    [InlineData("- { name: t, address: T5 }", 9, "the area is DB, M, I or Q")]
    [InlineData("- { name: t, address: 40001 }", 9, "DB1.DBX0.0, DB1.DBB1, DB1.DBW2, DB1.DBD4, M10.0, MB10")]
    [InlineData("- { name: t, address: DB1.DBW2, type: float32 }", 9, "a word address (DBW, MW, IW, QW) holds int16 or uint16")]
    [InlineData("- { name: t, address: MD4, type: int16 }", 9, "a double-word address (DBD, MD, ID, QD) holds int32, uint32 or float32")]
    [InlineData("- { name: t, address: M0.0, type: int16 }", 9, "a bit address (DBX, M10.0, I0.1) is a bool")]
    [InlineData("- { name: t, address: MD4, type: float64 }", 9, "at most a double word")]
    [InlineData("- { name: t, address: MW4, word-order: cdab }", 9, "S7 stores every value big-endian")]
    [InlineData("- { name: t, table: holding, address: MW4 }", 9, "an S7 tag's address names its area")]
    [InlineData("- { name: t, address: MW4, function: read-var }", 9, "always read with read-var")]
    public void S7Tag_Errors_PointAtTheTag_AndSayWhatWouldBeValid(string tag, int line, string expected)
    {
        var result = Load(S7, tag);
        var error = SingleError(result);
        Assert.Equal(line, error.Line);
        Assert.True(error.Column > 10, error.ToString());
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.StartsWith($"c.yaml:{line}:", error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("      protocol: s7comm", 4, "missing required key 'slot'")]
    [InlineData("      protocol: s7comm\n      slot: 32", 7, "'slot' must be a whole number from 0 to 31")]
    [InlineData("      protocol: s7comm\n      slot: 2\n      rack: 8", 8, "'rack' must be a whole number from 0 to 7")]
    [InlineData("      protocol: s7comm\n      slot: 2\n      connection: hmi", 8, "'connection' must be one of pg, op, basic")]
    [InlineData("      protocol: s7comm\n      slot: 2\n      unit: 1", 8, "an S7 CPU is addressed by 'rack' and 'slot'")]
    [InlineData("      protocol: s7comm\n      slot: 2\n      max-gap: 4", 8, "S7 tags are read as items of multi-item jobs")]
    [InlineData("      protocol: s7comm\n      called-tsap: 0302", 7, "two hex bytes with a dot, e.g. 03.02")]
    [InlineData("      protocol: s7comm\n      called-tsap: 03.02\n      slot: 2", 8, "give rack and slot (and connection), or called-tsap alone")]
    [InlineData("      protocol: s7", 6, "'protocol' must be one of modbus, s7comm")]
    [InlineData("      slot: 2", 6, "'slot' is an S7 connection key: add 'protocol: s7comm'")]
    public void S7Connection_Errors_WithLineAndWhatWouldBeValid(string pollLines, int line, string expected)
    {
        var result = Load(pollLines, "- { name: t, address: MW0 }");
        var errors = result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        // A Modbus entry (bad protocol, or none) also reads the S7 tag address as a Modbus address: only the connection error is checked here.
        var error = Assert.Single(errors, e => e.Message.Contains(expected, StringComparison.Ordinal));
        Assert.Equal(line, error.Line);
        Assert.StartsWith($"c.yaml:{line}:", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void S7Entry_OnASerialBus_IsAnError()
    {
        var result = ConfigLoader.LoadText("""
            serial:
              - { name: rs485-1, device: /dev/ttyUSB0, baud: 19200 }
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:1883 }
              poll:
                - device: press1
                  protocol: s7comm
                  upstream: serial://rs485-1
                  slot: 2
                  tags:
                    - { name: t, address: MW0 }
            """, "c.yaml");
        var error = SingleError(result);
        Assert.Equal(8, error.Line);
        Assert.Contains("'upstream' must be tcp://HOST:PORT", error.Message, StringComparison.Ordinal);
    }
}
