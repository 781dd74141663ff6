using EdgeShield.Policy;

namespace EdgeShield.Telemetry.Tests;

public class AllocationTests
{
    [Fact]
    public void JsonEncoding_AllocatesNothingPerValue()
    {
        using var encoder = new JsonTelemetryEncoder();
        var now = DateTime.UtcNow;
        var value = TagValue.FromReal(12.5);
        for (int i = 0; i < 100; i++)
        {
            encoder.Encode(now, value, TagQuality.Good, null, "%", i);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            encoder.Encode(now, value, i % 2 == 0 ? TagQuality.Good : TagQuality.Stale, "timeout", "%", i);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void SparkplugEncoding_AllocatesNothingPerValue()
    {
        var tags = Enumerable.Range(0, 50).Select(i => new TagConfig { Name = "t" + i, Table = TagTable.Holding, Address = (ushort)i, Type = i % 2 == 0 ? TagType.UInt16 : TagType.Float32 }).ToArray();
        var encoder = new SparkplugEncoder(tags);
        var historical = new byte[SparkplugEncoder.HistoricalLength(4096)];
        void Cycle(ulong ts)
        {
            for (int t = 0; t < tags.Length; t++)
            {
                // Good, stale and bad metrics: the stale and bad ones carry the Quality property.
                encoder.Set(t, ts, t % 2 == 0 ? TagValue.FromInteger(t) : TagValue.FromReal(t * 0.5), (TagQuality)(t % 3));
            }
            // Live, and as history (buffered data replayed in a new session).
            Assert.True(SparkplugEncoder.MarkHistorical(encoder.EncodeData(ts), historical) > 0);
        }
        for (ulong i = 0; i < 20; i++)
        {
            Cycle(i);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (ulong i = 0; i < 200; i++)
        {
            Cycle(1000 + i);
        }
        // 200 cycles × 50 values = 10 000 values.
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void RecordEncoding_ForTheLog_AllocatesNothing()
    {
        var topic = "es/t/plc1/level"u8.ToArray();
        var payload = new byte[64];
        var buffer = new byte[256];
        MessageLog.Encode(buffer, topic, payload, retain: false);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            MessageLog.Encode(buffer, topic, payload, retain: false);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
