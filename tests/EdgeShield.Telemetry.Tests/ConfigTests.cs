using EdgeShield.Policy;

namespace EdgeShield.Telemetry.Tests;

public class ConfigTests
{
    private static ConfigLoadResult Load(string tagLine, string pollExtra = "") => ConfigLoader.LoadText($$"""
        telemetry:
          mqtt: { broker: mqtt://127.0.0.1:1883 }
          poll:
            - device: plc1
              upstream: tcp://127.0.0.1:502
        {{pollExtra}}
              tags:
                {{tagLine}}
        """, "c.yaml");

    [Fact]
    public void WriteFunction_OnATag_IsRejected_WithLineAndColumn()
    {
        var result = Load("- { name: sp, table: holding, address: 100, function: write-single-register }");
        Assert.True(result.HasErrors);
        var error = Assert.Single(result.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);
        Assert.Equal(8, error.Line);
        Assert.True(error.Column > 40);
        Assert.Contains("telemetry only reads", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("- { name: x, table: holding, address: 1, function: 16 }")]
    [InlineData("- { name: x, table: coil, address: 1, function: read-holding-registers }")]
    [InlineData("- { name: x, table: setpoint, address: 1 }")]
    [InlineData("- { name: x, table: coil, address: 1, type: float32 }")]
    [InlineData("- { name: x, table: holding, address: 65535, type: float32 }")]
    [InlineData("- { name: x, table: holding, address: 1, word-order: bacd }")]
    [InlineData("- { name: x, table: holding, address: 1, value: 3 }")]
    public void NotARead_OrInvalidTag_IsAnError(string tag) => Assert.True(Load(tag).HasErrors);

    [Fact]
    public void FullTag_BuildsTheModel()
    {
        var result = Load("- { name: t, table: input, address: 7, type: float64, word-order: dcba, scale: 2, offset: 1.5, unit: degC, function: read-input-registers }", "      max-gap: 4\n      every: 250ms");
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        var telemetry = result.Config!.Telemetry!;
        Assert.Equal(TelemetryFormat.Json, telemetry.Format);
        Assert.Equal(1883, telemetry.Mqtt.Port);
        var poll = Assert.Single(telemetry.Poll);
        Assert.Equal(4, poll.MaxGap);
        Assert.Equal(TimeSpan.FromMilliseconds(250), poll.Every);
        var tag = Assert.Single(poll.Tags);
        Assert.Equal((TagTable.Input, (ushort)7, TagType.Float64, WordOrder.Dcba, 2.0, 1.5, "degC"), (tag.Table, tag.Address, tag.Type, tag.WordOrder, tag.Scale, tag.Offset, tag.Unit));
    }
}
