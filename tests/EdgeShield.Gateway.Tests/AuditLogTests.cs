using System.Text.Json;

namespace EdgeShield.Gateway.Tests;

public class AuditLogTests
{
    private static AuditEvent Denied(int i) => new()
    {
        Time = new DateTime(2026, 11, 26, 12, 0, 0, 123, DateTimeKind.Utc),
        Kind = AuditEventKind.Denied,
        Listener = "hmi-plc1",
        Source = EdgeShield.Policy.SourceAddress.From(System.Net.IPAddress.Parse("10.20.0.5")),
        SourcePort = 40000,
        Unit = 1,
        FunctionCode = 6,
        WriteSpan = new EdgeShield.Protocols.Modbus.AddressSpan(EdgeShield.Protocols.Modbus.ModbusTable.HoldingRegisters, (ushort)i, 1),
        Rule = "setpoints",
        Reason = "address span not allowed",
        ExceptionCode = 2,
        Count = 1,
    };

    [Fact]
    public async Task Event_IsOneJsonLine_WithTheFieldsIntegratorsRead()
    {
        var output = new MemoryStream();
        await using (var log = new AuditLog(output))
        {
            log.Write(Denied(500));
        }

        var lines = System.Text.Encoding.UTF8.GetString(output.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var e = JsonDocument.Parse(Assert.Single(lines)).RootElement;
        Assert.Equal("2026-11-26T12:00:00.123Z", e.GetProperty("time").GetString());
        Assert.Equal("denied", e.GetProperty("event").GetString());
        Assert.Equal("hmi-plc1", e.GetProperty("listener").GetString());
        Assert.Equal("10.20.0.5", e.GetProperty("source").GetString());
        Assert.Equal(1, e.GetProperty("unit").GetInt32());
        Assert.Equal(6, e.GetProperty("function").GetInt32());
        Assert.Equal("write-single-register", e.GetProperty("function_name").GetString());
        Assert.Equal("holding-registers", e.GetProperty("write").GetProperty("table").GetString());
        Assert.Equal(500, e.GetProperty("write").GetProperty("start").GetInt32());
        Assert.Equal("setpoints", e.GetProperty("rule").GetString());
        Assert.Equal("deny", e.GetProperty("verdict").GetString());
        Assert.Equal("02", e.GetProperty("exception").GetString());
    }

    [Fact]
    public async Task Flood_IsSummarised_NothingLost()
    {
        var output = new MemoryStream();
        const int flood = 10_000;
        await using (var log = new AuditLog(output, eventsPerSecond: 20))
        {
            for (int i = 0; i < flood; i++)
            {
                log.Write(Denied(i));
            }
        }

        var events = System.Text.Encoding.UTF8.GetString(output.ToArray())
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement)
            .ToArray();
        int written = events.Count(e => e.GetProperty("event").GetString() == "denied");
        long suppressed = events.Where(e => e.GetProperty("event").GetString() == "suppressed")
            .Sum(e => e.GetProperty("count").GetInt64());

        Assert.InRange(written, 20, 200); // at most 20 per second of the loop
        Assert.Equal(flood, written + suppressed);
        Assert.All(events.Where(e => e.GetProperty("event").GetString() == "suppressed"),
            e => Assert.Equal("denied", e.GetProperty("suppressed_event").GetString()));
    }

    private static JsonElement[] Lines(MemoryStream output) =>
        System.Text.Encoding.UTF8.GetString(output.ToArray())
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement)
            .ToArray();

    [Fact]
    public async Task OneSourcesFlood_DoesNotHideAnotherSourcesFirstRefusal_CountsPerSource()
    {
        var output = new MemoryStream();
        var flooder = Denied(0);
        var other = Denied(777) with { Source = EdgeShield.Policy.SourceAddress.From(System.Net.IPAddress.Parse("10.20.0.9")) };
        const int flood = 5_000;
        await using (var log = new AuditLog(output, eventsPerSecond: 20))
        {
            for (int i = 0; i < flood; i++)
            {
                log.Write(flooder);
            }
            log.Write(other);
        }

        var events = Lines(output);
        var denied = events.Where(e => e.GetProperty("event").GetString() == "denied").ToArray();
        Assert.Contains(denied, e => e.GetProperty("source").GetString() == "10.20.0.9" && e.GetProperty("write").GetProperty("start").GetInt32() == 777);
        var summaries = events.Where(e => e.GetProperty("event").GetString() == "suppressed").ToArray();
        Assert.NotEmpty(summaries);
        Assert.All(summaries, e => Assert.Equal("10.20.0.5", e.GetProperty("source").GetString()));
        Assert.All(summaries, e => Assert.Equal("hmi-plc1", e.GetProperty("listener").GetString()));
        long written = denied.Count(e => e.GetProperty("source").GetString() == "10.20.0.5");
        Assert.Equal(flood, written + summaries.Sum(e => e.GetProperty("count").GetInt64()));
    }

    [Fact]
    public async Task ManySources_LinesStayBounded_NothingLost()
    {
        var output = new MemoryStream();
        const int sources = 2_000;
        await using (var log = new AuditLog(output, eventsPerSecond: 5, sourcesPerWindow: 64))
        {
            for (int i = 0; i < sources; i++)
            {
                log.Write(Denied(i) with { Source = new EdgeShield.Policy.SourceAddress((UInt128)(0x0A000000u + (uint)i)) });
            }
        }

        var events = Lines(output);
        int written = events.Count(e => e.GetProperty("event").GetString() == "denied");
        long suppressed = events.Where(e => e.GetProperty("event").GetString() == "suppressed").Sum(e => e.GetProperty("count").GetInt64());
        Assert.Equal(sources, written + suppressed);
        Assert.InRange(written, 64, 20 * (4 * 5 + 64)); // 4 x 5 per kind + 64 first events per second of the loop
    }

    [Fact]
    public async Task Reason_WithAnApostrophe_IsWrittenAsIs_AndAServiceEventHasNoListener()
    {
        var output = new MemoryStream();
        await using (var log = new AuditLog(output))
        {
            log.Write(Denied(1) with { Reason = "the PLC's answer" });
            log.Write(new AuditEvent { Time = DateTime.UtcNow, Kind = AuditEventKind.Service, Listener = "", Unit = -1, FunctionCode = -1, Reason = "started", Count = 1 });
        }

        var text = System.Text.Encoding.UTF8.GetString(output.ToArray());
        Assert.Contains("\"reason\":\"the PLC's answer\"", text, StringComparison.Ordinal);
        Assert.DoesNotContain("\\u0027", text, StringComparison.Ordinal);
        var service = Assert.Single(Lines(output), e => e.GetProperty("event").GetString() == "service");
        Assert.False(service.TryGetProperty("listener", out _));
    }
}
