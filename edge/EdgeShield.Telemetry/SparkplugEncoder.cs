using System.Buffers;
using EdgeShield.Policy;
using EdgeShield.Telemetry.Sparkplug;
using Google.Protobuf;

namespace EdgeShield.Telemetry;

/// <summary>
/// Sparkplug B 3.0 payloads for one device (DBIRTH, DDATA) and the edge node (NBIRTH, NDEATH).
/// Births and deaths use the classes generated from sparkplug_b.proto. DDATA, the per-cycle
/// message, is written field by field in the same wire format into a reused buffer, because the
/// generated classes keep a oneof value as <c>object</c> and would box every value; tests parse
/// it back with the generated parser. <c>seq</c> is not part of the stored DDATA: the publisher
/// appends it (field 3) when it sends, so that data replayed after an outage carries the seq of
/// the session it is sent in (Sparkplug 3.0, 7.3: seq counts per edge-node session).
/// </summary>
/// <remarks>
/// A metric that is not good carries the property <c>Quality</c> (Int32), the convention of Ignition and Cirrus Link's
/// MQTT Engine (Sparkplug itself has no quality): an Ignition 8 quality code, <see cref="UncertainLastKnownValue"/> for a
/// stale one and <see cref="BadQuality"/> (with <c>is_null</c>) for a bad one; a metric without it is good.
/// </remarks>
public sealed class SparkplugEncoder
{
    // Sparkplug 3.0 table 6.4.16 (DataType).
    private const uint Int8 = 1, Int16 = 2, Int32 = 3, Int64 = 4, UInt8 = 5, UInt16 = 6, UInt32 = 7, UInt64 = 8, Float = 9, Double = 10, Boolean = 11, Text = 12;

    /// <summary>Ignition 8 QualityCode Uncertain_LastKnownValue (0x40000101): a stale tag, its last value repeated.</summary>
    public const int UncertainLastKnownValue = 0x40000101;
    /// <summary>Ignition 8 QualityCode Bad (0x80000200): a bad tag, no value.</summary>
    public const int BadQuality = unchecked((int)0x80000200);

    // The whole properties field (9) of a stale and of a bad metric, written as they are into each DDATA metric.
    private static readonly byte[] StaleQualityField = PropertiesField(QualityProperty(UncertainLastKnownValue));
    private static readonly byte[] BadQualityField = PropertiesField(QualityProperty(BadQuality));

    private readonly IReadOnlyList<TagConfig> _tags;
    private readonly Payload _data = new();
    private readonly Payload.Types.Metric[] _metrics;
    private readonly ArrayBufferWriter<byte> _buffer = new(1024);
    private readonly byte[][] _names;
    private readonly TagValue[] _values;
    private readonly TagQuality[] _qualities;
    private readonly ulong[] _timestamps;
    private byte[] _scratch = new byte[4096];

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
        _names = tags.Select(t => System.Text.Encoding.UTF8.GetBytes(t.Name)).ToArray();
        _values = new TagValue[tags.Count];
        _qualities = new TagQuality[tags.Count];
        _timestamps = new ulong[tags.Count];
    }

    /// <summary>Sets one metric of the next DDATA (and of the next DBIRTH).</summary>
    public void Set(int tagIndex, ulong timestampMs, in TagValue value, TagQuality quality)
    {
        _values[tagIndex] = value;
        _qualities[tagIndex] = quality;
        _timestamps[tagIndex] = timestampMs;
    }

    /// <summary>The DDATA payload (without seq); valid until the next call. Allocates nothing.</summary>
    public ReadOnlySpan<byte> EncodeData(ulong timestampMs)
    {
        int worst = 16;
        foreach (var name in _names)
        {
            worst += name.Length + 80;
        }
        if (_scratch.Length < worst)
        {
            _scratch = new byte[worst];
        }
        var w = new ProtoWriter(_scratch);
        w.Varint(1, timestampMs);
        Span<byte> metric = stackalloc byte[80];
        for (int i = 0; i < _names.Length; i++)
        {
            // Metric body without the name, then: | tag 2 | length | name field | body |.
            var m = new ProtoWriter(metric);
            m.Varint(3, _timestamps[i]);
            m.Varint(4, _metrics[i].Datatype);
            if (_qualities[i] == TagQuality.Bad)
            {
                m.Varint(7, 1);
                m.Raw(BadQualityField);
            }
            else
            {
                if (_qualities[i] == TagQuality.Stale)
                {
                    m.Raw(StaleQualityField);
                }
                WriteValue(ref m, _metrics[i].Datatype, _values[i]);
            }
            int nameField = 1 + ProtoWriter.VarintLength((ulong)_names[i].Length) + _names[i].Length;
            w.Tag(2, 2);
            w.RawVarint((ulong)(nameField + m.Position));
            w.Bytes(1, _names[i]);
            w.Raw(metric[..m.Position]);
        }
        return _scratch.AsSpan(0, w.Position);
    }

    /// <summary>The most bytes <see cref="MarkHistorical"/> writes for a payload of <paramref name="length"/> bytes.</summary>
    public static int HistoricalLength(int length) => length + (3 * ((length / 4) + 1));

    /// <summary>
    /// Copies a DDATA payload of this encoder (timestamp and metrics, no seq yet) into <paramref name="destination"/>
    /// (at least <see cref="HistoricalLength"/> bytes) with <c>is_historical</c> (metric field 5) set on every metric: data
    /// buffered while the broker was away, which a host stores without moving its tags' current values back in time.
    /// Returns the length written, or -1 when <paramref name="data"/> is not such a payload. Allocates nothing.
    /// </summary>
    public static int MarkHistorical(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        if (destination.Length < HistoricalLength(data.Length))
        {
            return -1;
        }
        var w = new ProtoWriter(destination);
        int read = 0;
        while (read < data.Length)
        {
            int field = read;
            if (!TryReadVarint(data, ref read, out ulong tag))
            {
                return -1;
            }
            switch (tag & 7)
            {
                case 0:
                    if (!TryReadVarint(data, ref read, out _))
                    {
                        return -1;
                    }
                    w.Raw(data[field..read]);
                    break;
                case 2:
                    if (!TryReadVarint(data, ref read, out ulong n) || n > (ulong)(data.Length - read))
                    {
                        return -1;
                    }
                    var body = data.Slice(read, (int)n);
                    read += (int)n;
                    if (tag >> 3 == 2)
                    {
                        // A metric: the same body, then is_historical = true.
                        w.Tag(2, 2);
                        w.RawVarint(n + 2);
                        w.Raw(body);
                        w.Varint(5, 1);
                    }
                    else
                    {
                        w.Raw(data[field..read]);
                    }
                    break;
                default:
                    return -1;
            }
        }
        return w.Position;
    }

    private static bool TryReadVarint(ReadOnlySpan<byte> data, ref int at, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64 && at < data.Length; shift += 7)
        {
            byte b = data[at++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The property set { Quality: Int32 <paramref name="code"/> } (a signed Int32 travels as its uint32 bits).</summary>
    private static Payload.Types.PropertySet QualityProperty(int code)
    {
        var properties = new Payload.Types.PropertySet();
        properties.Keys.Add("Quality");
        properties.Values.Add(new Payload.Types.PropertyValue { Type = Int32, IntValue = unchecked((uint)code) });
        return properties;
    }

    /// <summary>Metric field 9 (length-delimited) holding <paramref name="properties"/>: tag, length, bytes.</summary>
    private static byte[] PropertiesField(Payload.Types.PropertySet properties)
    {
        byte[] body = properties.ToByteArray();
        var field = new byte[1 + ProtoWriter.VarintLength((ulong)body.Length) + body.Length];
        var w = new ProtoWriter(field);
        w.Bytes(9, body);
        return field;
    }

    private static void WriteValue(ref ProtoWriter m, uint datatype, in TagValue value)
    {
        switch (datatype)
        {
            case Boolean: m.Varint(14, value.Boolean ? 1UL : 0UL); break;
            case Int8 or Int16 or Int32 or UInt8 or UInt16 or UInt32: m.Varint(10, unchecked((uint)value.SignedValue)); break;
            case Int64: m.Varint(11, unchecked((ulong)value.SignedValue)); break;
            case UInt64: m.Varint(11, value.UnsignedValue); break;
            case Float: m.Fixed32(12, BitConverter.SingleToUInt32Bits((float)value.Real)); break;
            default:
                double d = value.Kind switch
                {
                    TagValueKind.Whole or TagValueKind.Boolean => value.SignedValue,
                    TagValueKind.UnsignedLong => value.UnsignedValue,
                    _ => value.Real,
                };
                m.Fixed64(13, BitConverter.DoubleToUInt64Bits(d));
                break;
        }
    }

    /// <summary>A DBIRTH with every metric, its datatype, current value and engineering unit.</summary>
    public byte[] EncodeBirth(ulong timestampMs, ulong seq)
    {
        var birth = new Payload { Timestamp = timestampMs, Seq = seq };
        for (int i = 0; i < _tags.Count; i++)
        {
            var metric = _metrics[i].Clone();
            metric.Timestamp = _timestamps[i] == 0 ? timestampMs : _timestamps[i];
            if (_qualities[i] == TagQuality.Bad)
            {
                metric.IsNull = true;
            }
            else
            {
                SetValue(metric, _values[i]);
            }
            var properties = new Payload.Types.PropertySet();
            if (_tags[i].Unit is { } unit)
            {
                properties.Keys.Add("engUnit");
                properties.Values.Add(new Payload.Types.PropertyValue { Type = Text, StringValue = unit });
            }
            if (_qualities[i] != TagQuality.Good)
            {
                properties.MergeFrom(QualityProperty(_qualities[i] == TagQuality.Bad ? BadQuality : UncertainLastKnownValue));
            }
            if (properties.Keys.Count > 0)
            {
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
            TagType.Int8 => Int8,
            TagType.UInt8 => UInt8,
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
            case Int8 or Int16 or Int32 or UInt8 or UInt16 or UInt32: metric.IntValue = unchecked((uint)value.SignedValue); break;
            case Int64: metric.LongValue = unchecked((ulong)value.SignedValue); break;
            case UInt64: metric.LongValue = value.UnsignedValue; break;
            case Float: metric.FloatValue = (float)value.Real; break;
            default:
                metric.DoubleValue = value.Kind switch
                {
                    TagValueKind.Whole or TagValueKind.Boolean => value.SignedValue,
                    TagValueKind.UnsignedLong => value.UnsignedValue,
                    _ => value.Real,
                };
                break;
        }
    }
}

/// <summary>Protocol Buffers wire format (varint, fixed32/64, length-delimited) into a span.</summary>
internal ref struct ProtoWriter(Span<byte> destination)
{
    private readonly Span<byte> _destination = destination;
    public int Position { get; private set; }

    public void Tag(int field, int wireType) => RawVarint((ulong)((field << 3) | wireType));

    public void Varint(int field, ulong value)
    {
        Tag(field, 0);
        RawVarint(value);
    }

    public void Fixed32(int field, uint value)
    {
        Tag(field, 5);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(_destination[Position..], value);
        Position += 4;
    }

    public void Fixed64(int field, ulong value)
    {
        Tag(field, 1);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(_destination[Position..], value);
        Position += 8;
    }

    public void Bytes(int field, scoped ReadOnlySpan<byte> value)
    {
        Tag(field, 2);
        RawVarint((ulong)value.Length);
        Raw(value);
    }

    public void Raw(scoped ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_destination[Position..]);
        Position += bytes.Length;
    }

    public void RawVarint(ulong value)
    {
        while (value >= 0x80)
        {
            _destination[Position++] = (byte)(value | 0x80);
            value >>= 7;
        }
        _destination[Position++] = (byte)value;
    }

    public static int VarintLength(ulong value)
    {
        int n = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            n++;
        }
        return n;
    }
}
