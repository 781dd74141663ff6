using EdgeShield.Policy;

namespace EdgeShield.Telemetry.Tests;

/// <summary><c>protocol: iec104</c> poll entries: the station keys and tags by information object address.</summary>
public class Iec104ConfigTests
{
    private static ConfigLoadResult Load(string pollLines, string tagLine) => ConfigLoader.LoadText($$"""
        telemetry:
          mqtt: { broker: mqtt://127.0.0.1:1883 }
          poll:
            - device: rtu7
              upstream: tcp://10.10.0.31:2404
        {{pollLines}}
              tags:
                {{tagLine}}
        """, "c.yaml");

    private const string Iec104 = "      protocol: iec104\n      ca: 7";

    private static ConfigDiagnostic SingleError(ConfigLoadResult result) =>
        Assert.Single(result.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);

    [Fact]
    public void Iec104Entry_ReadsTheCa_TagsByIoa_TypeAndScale()
    {
        var result = ConfigLoader.LoadText("""
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:1883 }
              poll:
                - device: rtu7
                  protocol: iec104
                  upstream: tcp://10.10.0.31:2404
                  ca: 7
                  every: 10s
                  tags:
                    - { name: breaker-1, ioa: 100 }
                    - { name: breaker-2, ioa: 110, type: M_DP_TB_1 }
                    - { name: feeder-mw, ioa: 200, type: 13, scale: 0.001, unit: MW }
                    - { name: energy, ioa: 16777215, type: m_it_na_1 }
                    - { name: trip, ioa: 400, type: M_EP_TD_1 }
                    - { name: start, ioa: 401, type: 39 }
            """, "c.yaml");
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        var poll = Assert.Single(result.Config!.Telemetry!.Poll);
        Assert.Equal((PollProtocol.Iec104, (ushort)7), (poll.Protocol, poll.CommonAddress));
        Assert.Equal(TimeSpan.FromMinutes(10), poll.InterrogationPeriod);
        Assert.Equal([100u, 110u, 200u, 16777215u, 400u, 401u], poll.Tags.Select(t => t.Ioa!.Value));
        Assert.Equal([(byte)0, (byte)3, (byte)13, (byte)15, (byte)38, (byte)39], poll.Tags.Select(t => t.Iec104Type));
        Assert.Equal([TagType.Float64, TagType.UInt16, TagType.Float32, TagType.Int32, TagType.UInt16, TagType.UInt16], poll.Tags.Select(t => t.Type));
        Assert.Equal(0.001, poll.Tags[2].Scale);
    }

    [Theory]
    [InlineData("", "- { name: a, ioa: 1 }", 4, "missing required key 'ca'")]
    [InlineData("      ca: 65535", "- { name: a, ioa: 1 }", 7, "global address 65535 is not a station")]
    [InlineData("      ca: global", "- { name: a, ioa: 1 }", 7, "global address 65535 is not a station")]
    [InlineData("      ca: 0", "- { name: a, ioa: 1 }", 7, "'ca'")]
    [InlineData("      ca: 7\n      unit: 1", "- { name: a, ioa: 1 }", 8, "'unit' is a Modbus unit id")]
    [InlineData("      ca: 7\n      slot: 2", "- { name: a, ioa: 1 }", 8, "names its station by 'ca'")]
    public void Iec104Entry_StationKeyErrors_NameTheLineAndWhy(string extra, string tag, int line, string message)
    {
        var result = Load("      protocol: iec104" + (extra.Length > 0 ? "\n" + extra : ""), tag);
        var error = SingleError(result);
        Assert.Equal(line, error.Line);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.StartsWith("c.yaml:" + line + ":", error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("utc", null)]
    [InlineData("UTC", null)]
    [InlineData("\"+01:00\"", 60)]
    [InlineData("+05:30", 330)]
    [InlineData("-03:00", -180)]
    [InlineData("+14:00", 840)]
    public void Iec104Entry_StationTime_IsUtcOrTheStandardTimeOffset(string? value, int? minutes)
    {
        var result = Load(Iec104 + (value is null ? "" : "\n      station-time: " + value), "- { name: a, ioa: 1 }");
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        var poll = Assert.Single(result.Config!.Telemetry!.Poll);
        Assert.Equal(minutes is null ? null : TimeSpan.FromMinutes(minutes.Value), poll.StationTimeOffset);
    }

    [Theory]
    [InlineData("local")]
    [InlineData("+1")]
    [InlineData("01:00")]
    [InlineData("+15:00")]
    [InlineData("+01:60")]
    [InlineData("Europe/Berlin")]
    public void Iec104Entry_StationTime_AnythingElse_IsAnErrorAtItsLine(string value)
    {
        var error = SingleError(Load(Iec104 + "\n      station-time: " + value, "- { name: a, ioa: 1 }"));
        Assert.Equal(8, error.Line);
        Assert.Contains("'station-time' is utc", error.Message, StringComparison.Ordinal);
        Assert.Contains("such as +01:00", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("- { name: a }", "missing required key 'ioa'")]
    [InlineData("- { name: a, ioa: 16777216 }", "'ioa'")]
    [InlineData("- { name: a, ioa: 1, table: holding }", "an IEC 104 tag is addressed by 'ioa'")]
    [InlineData("- { name: a, ioa: 1, address: 4 }", "an IEC 104 tag is addressed by 'ioa'")]
    [InlineData("- { name: a, ioa: 1, word-order: cdab }", "IEC 104 fixes every value's encoding")]
    [InlineData("- { name: a, ioa: 1, function: 3 }", "station interrogation and spontaneous data")]
    [InlineData("- { name: a, ioa: 1, type: C_SC_NA_1 }", "is not one")]
    [InlineData("- { name: a, ioa: 1, type: 100 }", "is not one")]
    [InlineData("- { name: a, ioa: 1, type: float32 }", "monitor type name or number")]
    [InlineData("- { name: a, ioa: 1, type: M_SP_NA_1, scale: 2 }", "applies to numeric points")]
    public void Iec104Tag_Errors_SayWhatIsValid(string tag, string message)
    {
        var error = SingleError(Load(Iec104, tag));
        Assert.Equal(9, error.Line);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Iec104Tag_DuplicateIoa_IsAnError()
    {
        var error = SingleError(Load(Iec104, "- { name: a, ioa: 5 }\n        - { name: b, ioa: 5 }"));
        Assert.Equal(10, error.Line);
        Assert.Contains("ioa 5 is already tag 'a'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void IecKeys_OnOtherProtocols_AreErrors()
    {
        Assert.Contains("add 'protocol: iec104'", SingleError(Load("      ca: 7", "- { name: a, table: holding, address: 1 }")).Message, StringComparison.Ordinal);
        Assert.Contains("'station-time' is the time of an IEC 104 station's time tags: add 'protocol: iec104'", SingleError(Load("      station-time: +01:00", "- { name: a, table: holding, address: 1 }")).Message, StringComparison.Ordinal);
        Assert.Contains("'ioa' is an IEC 104 key", SingleError(Load("", "- { name: a, table: holding, address: 1, ioa: 3 }")).Message, StringComparison.Ordinal);
        Assert.Contains("'ioa' is an IEC 104 key", SingleError(Load("      protocol: s7comm\n      slot: 2", "- { name: a, address: MW2, ioa: 3 }")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Iec104Entry_OverSerial_IsAnError()
    {
        var result = ConfigLoader.LoadText("""
            serial:
              - { name: rs485-1, device: /dev/ttyS1, baud: 19200, parity: even, stop-bits: 1, response-timeout-ms: 300 }
            telemetry:
              mqtt: { broker: mqtt://127.0.0.1:1883 }
              poll:
                - device: rtu7
                  protocol: iec104
                  upstream: serial://rs485-1
                  ca: 7
                  tags:
                    - { name: a, ioa: 1 }
            """, "c.yaml");
        Assert.Contains("reads a station over TCP", SingleError(result).Message, StringComparison.Ordinal);
    }
}
