using System.Buffers.Binary;
using EdgeShield.Policy;

namespace EdgeShield.Telemetry;

/// <summary>Quality of a published value.</summary>
public enum TagQuality : byte
{
    /// <summary>Never read successfully; there is no value.</summary>
    Bad = 0,
    /// <summary>Read in this cycle.</summary>
    Good,
    /// <summary>This cycle's read failed; the value is the last good one.</summary>
    Stale,
}

/// <summary>How a tag's value is represented once decoded and scaled.</summary>
public enum TagValueKind : byte
{
    None = 0,
    Boolean,
    Whole,
    UnsignedLong,
    Real,
}

/// <summary>A decoded value: a small struct, never boxed.</summary>
public readonly record struct TagValue(TagValueKind Kind, long SignedValue, ulong UnsignedValue, double Real)
{
    public bool Boolean => SignedValue != 0;
    public static TagValue FromBoolean(bool value) => new(TagValueKind.Boolean, value ? 1 : 0, 0, 0);
    public static TagValue FromInteger(long value) => new(TagValueKind.Whole, value, 0, 0);
    public static TagValue FromUnsigned(ulong value) => new(TagValueKind.UnsignedLong, 0, value, 0);
    public static TagValue FromReal(double value) => new(TagValueKind.Real, 0, 0, value);
}

/// <summary>Turns the data bytes of a read response into tag values (Modbus registers are big-endian 16-bit words; S7 stores big-endian).</summary>
public static class TagDecoder
{
    /// <summary>
    /// Decodes <paramref name="tag"/> from <paramref name="data"/>, the data of a read that started at
    /// <paramref name="blockStart"/>. Integers stay integers unless the tag has a scale or offset.
    /// </summary>
    public static TagValue Decode(TagConfig tag, ReadOnlySpan<byte> data, ushort blockStart)
    {
        ArgumentNullException.ThrowIfNull(tag);
        int index = tag.Address - blockStart;
        if (tag.IsBitTable)
        {
            // Bits are packed LSB first from the first byte (6.1).
            return TagValue.FromBoolean((data[index / 8] & (1 << (index % 8))) != 0);
        }
        var words = data.Slice(index * 2, tag.Width * 2);
        Span<byte> ordered = stackalloc byte[8];
        ordered = ordered[..words.Length];
        Reorder(words, ordered, tag.WordOrder);
        return FromBigEndian(tag, ordered);
    }

    /// <summary>
    /// Decodes an S7 tag from its item's data: one byte (0 or 1) for a bit, else the value as the CPU stores it,
    /// big-endian (S7 has no word order to choose). Scale and offset as for Modbus tags.
    /// </summary>
    public static TagValue DecodeS7(TagConfig tag, ReadOnlySpan<byte> data)
    {
        ArgumentNullException.ThrowIfNull(tag);
        return tag.Type == TagType.Bool ? TagValue.FromBoolean(data[0] != 0) : FromBigEndian(tag, data);
    }

    private static TagValue FromBigEndian(TagConfig tag, ReadOnlySpan<byte> ordered)
    {
        TagValue raw = tag.Type switch
        {
            TagType.Bool => TagValue.FromBoolean(BinaryPrimitives.ReadUInt16BigEndian(ordered) != 0),
            TagType.Int16 => TagValue.FromInteger(BinaryPrimitives.ReadInt16BigEndian(ordered)),
            TagType.UInt16 => TagValue.FromInteger(BinaryPrimitives.ReadUInt16BigEndian(ordered)),
            TagType.Int32 => TagValue.FromInteger(BinaryPrimitives.ReadInt32BigEndian(ordered)),
            TagType.UInt32 => TagValue.FromInteger(BinaryPrimitives.ReadUInt32BigEndian(ordered)),
            TagType.Float32 => TagValue.FromReal(BinaryPrimitives.ReadSingleBigEndian(ordered)),
            TagType.Int64 => TagValue.FromInteger(BinaryPrimitives.ReadInt64BigEndian(ordered)),
            TagType.UInt64 => TagValue.FromUnsigned(BinaryPrimitives.ReadUInt64BigEndian(ordered)),
            TagType.Float64 => TagValue.FromReal(BinaryPrimitives.ReadDoubleBigEndian(ordered)),
            TagType.UInt8 => TagValue.FromInteger(ordered[0]),
            TagType.Int8 => TagValue.FromInteger((sbyte)ordered[0]),
            _ => default,
        };
        if (tag.Scale == 1 && tag.Offset == 0)
        {
            return raw;
        }
        double value = raw.Kind switch
        {
            TagValueKind.Whole => raw.SignedValue,
            TagValueKind.UnsignedLong => raw.UnsignedValue,
            TagValueKind.Real => raw.Real,
            _ => raw.SignedValue,
        };
        return TagValue.FromReal((value * tag.Scale) + tag.Offset);
    }

    /// <summary>Puts the received bytes into big-endian (abcd) order (<see cref="WordOrdering.ToBigEndian"/>).</summary>
    internal static void Reorder(ReadOnlySpan<byte> source, Span<byte> destination, WordOrder order) =>
        WordOrdering.ToBigEndian(source, destination, order);
}
