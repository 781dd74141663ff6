using System.Buffers;
using EdgeShield.Policy;
using EdgeShield.Telemetry.Sparkplug;
using Google.Protobuf;

namespace EdgeShield.Telemetry;

/// <summary>
/// Sparkplug B 3.0 payloads for one device (DBIRTH, DDATA) and the edge node (NBIRTH, NDEATH).
/// The DDATA payload object and its metrics are built once and updated in place each cycle, so
/// encoding allocates nothing per value. <c>seq</c> is not part of the stored DDATA: the publisher
/// appends it (field 3) when it sends, so that data replayed after an outage carries the seq of
/// the session it is sent in (Sparkplug 3.0, 7.3: seq counts per edge-node session).
/// </summary>
public sealed class SparkplugEncoder
{
    // Sparkplug 3.0 table 6.4.16 (DataType).
    private const uint Int16 = 2, Int32 = 3, Int64 = 4, UInt16 = 6, UInt32 = 7, UInt64 = 8, Float = 9, Double = 10, Boolean = 11, Text = 12;

    private readonly IReadOnlyList<TagConfig> _tags;
    private readonly Payload _data = new();
    private readonly Payload.Types.Metric[] _metrics;
    private readonly ArrayBufferWriter<byte> _buffer = new(1024);

    public SparkplugEncoder(IReadOnlyList<TagConfig> tags)
    {
        ArgumentNullException.ThrowIfNull(tags);
        _tags = tags;
        _metrics = new Payload.Types.Metric[tags.Count];
        for (int i = 0; i < tags.Count; i++)
        {
            _metrics[i] = new Payload.Types.Metric { Name = tags[i].Name, Datatype = DataType(tags[i]) };
            _data.Metrics.Add(_metrics[i]);
        }
    }

    /// <summary>Sets one metric of the next DDATA.</summary>
    public void Set(int tagIndex, ulong timestampMs, in TagValue value, TagQuality quality)
    {
        var metric = _metrics[tagIndex];
        metric.Timestamp = timestampMs;
        if (quality == TagQuality.Bad)
        {
            metric.ClearValue();
            metric.IsNull = true;
            return;
        }
        metric.ClearIsNull();
        SetValue(metric, value);
    }

    /// <summary>The DDATA payload (without seq); valid until the next call.</summary>
    public ReadOnlySpan<byte> EncodeData(ulong timestampMs)
    {
        _data.Timestamp = timestampMs;
        _buffer.ResetWrittenCount();
        _data.WriteTo(_buffer);
        return _buffer.WrittenSpan;
    }

    /// <summary>A DBIRTH with every metric, its datatype, current value and engineering unit.</summary>
    public byte[] EncodeBirth(ulong timestampMs, ulong seq)
    {
        var birth = new Payload { Timestamp = timestampMs, Seq = seq };
        for (int i = 0; i < _tags.Count; i++)
        {
            var metric = _metrics[i].Clone();
            if (!metric.HasIsNull && metric.ValueCase == Payload.Types.Metric.ValueOneofCase.None)
            {
                metric.IsNull = true;
            }
            if (_tags[i].Unit is { } unit)
            {
                var properties = new Payload.Types.PropertySet();
                properties.Keys.Add("engUnit");
                properties.Values.Add(new Payload.Types.PropertyValue { Type = Text, StringValue = unit });
                metric.Properties = properties;
            }
            birth.Metrics.Add(metric);
        }
        return birth.ToByteArray();
    }

    /// <summary>NBIRTH: bdSeq and the Node Control/Rebirth metric (false: a diode cannot receive NCMD), seq 0.</summary>
    public static byte[] EncodeNodeBirth(ulong timestampMs, ulong bdSeq)
    {
        var birth = new Payload { Timestamp = timestampMs, Seq = 0 };
        birth.Metrics.Add(new Payload.Types.Metric { Name = "bdSeq", Datatype = Int64, LongValue = bdSeq, Timestamp = timestampMs });
        birth.Metrics.Add(new Payload.Types.Metric { Name = "Node Control/Rebirth", Datatype = Boolean, BooleanValue = false, Timestamp = timestampMs });
        return birth.ToByteArray();
    }

    /// <summary>NDEATH (the MQTT will): bdSeq only, no seq (Sparkplug 3.0, 6.4.1).</summary>
    public static byte[] EncodeNodeDeath(ulong timestampMs, ulong bdSeq)
    {
        var death = new Payload { Timestamp = timestampMs };
        death.Metrics.Add(new Payload.Types.Metric { Name = "bdSeq", Datatype = Int64, LongValue = bdSeq });
        return death.ToByteArray();
    }

    /// <summary>Appends <c>seq</c> (field 3, varint) to an encoded payload: protobuf takes the last occurrence of a field.</summary>
    public static int AppendSeq(Span<byte> destination, ulong seq)
    {
        destination[0] = (3 << 3) | 0;
        int n = 1;
        do
        {
            byte b = (byte)(seq & 0x7F);
            seq >>= 7;
            destination[n++] = seq != 0 ? (byte)(b | 0x80) : b;
        }
        while (seq != 0);
        return n;
    }

    private static uint DataType(TagConfig tag)
    {
        if (tag.Scale != 1 || tag.Offset != 0)
        {
            return Double;
        }
        return tag.Type switch
        {
            TagType.Bool => Boolean,
            TagType.Int16 => Int16,
            TagType.UInt16 => UInt16,
            TagType.Int32 => Int32,
            TagType.UInt32 => UInt32,
            TagType.Float32 => Float,
            TagType.Int64 => Int64,
            TagType.UInt64 => UInt64,
            _ => Double,
        };
    }

    private static void SetValue(Payload.Types.Metric metric, in TagValue value)
    {
        switch (metric.Datatype)
        {
            case Boolean: metric.BooleanValue = value.Boolean; break;
            case Int16 or Int32 or UInt16 or UInt32: metric.IntValue = unchecked((uint)value.SignedValue); break;
            case Int64: metric.LongValue = unchecked((ulong)value.SignedValue); break;
            case UInt64: metric.LongValue = value.UnsignedValue; break;
            case Float: metric.FloatValue = (float)value.Real; break;
            default:
                metric.DoubleValue = value.Kind switch
                {
                    TagValueKind.Whole => value.SignedValue,
                    TagValueKind.UnsignedLong => value.UnsignedValue,
                    _ => value.Real,
                };
                break;
        }
    }
}
