using System.Buffers.Binary;

namespace EdgeShield.Protocols.Iec104;

/// <summary>Information element values (docs/IEC104.md "Set-points"; IEC 60870-5-101, 7.2.6.6-7.2.6.8).</summary>
public static class Iec104Values
{
    /// <summary>NVA: a normalised value, int16 / 32768 (-1 .. 1 - 2^-15), from the first two octets (little-endian).</summary>
    public static double Normalised(ReadOnlySpan<byte> element) => BinaryPrimitives.ReadInt16LittleEndian(element) / 32768.0;

    /// <summary>SVA: a scaled value, int16, from the first two octets (little-endian).</summary>
    public static short Scaled(ReadOnlySpan<byte> element) => BinaryPrimitives.ReadInt16LittleEndian(element);

    /// <summary>R32-IEEE STD 754: a short floating-point value from the first four octets (little-endian).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720", Justification = "The standard's word for the R32 value; the set-point type is 'float' in DESIGN.md.")]
    public static float Float(ReadOnlySpan<byte> element) => BinaryPrimitives.ReadSingleLittleEndian(element);
}

/// <summary>
/// A CP56Time2a time tag (IEC 60870-5-101, 7.2.6.18), seven octets, decoded.
/// </summary>
/// <remarks>
/// <code>
///  0-1  milliseconds 0..59999 (seconds × 1000 + ms), little-endian
///  2    bits 0-5 minute 0..59, bit 7 IV (invalid)
///  3    bits 0-4 hour 0..23, bit 7 SU (summer time)
///  4    bits 0-4 day of month 1..31, bits 5-7 day of week 1..7 (0 not used)
///  5    bits 0-3 month 1..12
///  6    bits 0-6 year 0..99 (of the century: 2000 + year here)
/// </code>
/// Reserved bits (2.6, 3.5-6, 5.4-7, 6.7) are ignored.
/// </remarks>
public readonly struct Cp56Time2a : IEquatable<Cp56Time2a>
{
    /// <summary>Octets of the time tag.</summary>
    public const int Size = 7;

    private Cp56Time2a(ushort milliseconds, byte minute, byte hour, byte day, byte dayOfWeek, byte month, byte year, bool invalid, bool summerTime)
    {
        Milliseconds = milliseconds;
        Minute = minute;
        Hour = hour;
        Day = day;
        DayOfWeek = dayOfWeek;
        Month = month;
        Year = year;
        Invalid = invalid;
        SummerTime = summerTime;
    }

    /// <summary>Milliseconds within the minute (seconds × 1000 + ms).</summary>
    public ushort Milliseconds { get; }

    /// <summary>Seconds within the minute.</summary>
    public int Second => Milliseconds / 1000;

    /// <summary>Minute 0..59.</summary>
    public byte Minute { get; }

    /// <summary>Hour 0..23.</summary>
    public byte Hour { get; }

    /// <summary>Day of month 1..31.</summary>
    public byte Day { get; }

    /// <summary>Day of week 1 (Monday) .. 7, 0 when not used.</summary>
    public byte DayOfWeek { get; }

    /// <summary>Month 1..12.</summary>
    public byte Month { get; }

    /// <summary>Year of the century, 0..99 (7 bits can say up to 127: then <see cref="IsValid"/> is false).</summary>
    public byte Year { get; }

    /// <summary>IV: the time is invalid.</summary>
    public bool Invalid { get; }

    /// <summary>SU: summer time.</summary>
    public bool SummerTime { get; }

    /// <summary>Every field in its range, and the day within its month (IV is reported, not judged).</summary>
    public bool IsValid => Milliseconds <= 59_999 && Minute <= 59 && Hour <= 23 && Month is >= 1 and <= 12 && Year <= 99
        && Day >= 1 && Day <= DateTime.DaysInMonth(2000 + Year, Month);

    /// <summary>Decodes the first seven octets of <paramref name="bytes"/>.</summary>
    public static Cp56Time2a Read(ReadOnlySpan<byte> bytes)
    {
        var b = bytes[..Size];
        return new Cp56Time2a(
            BinaryPrimitives.ReadUInt16LittleEndian(b),
            (byte)(b[2] & 0x3F),
            (byte)(b[3] & 0x1F),
            (byte)(b[4] & 0x1F),
            (byte)(b[4] >> 5),
            (byte)(b[5] & 0x0F),
            (byte)(b[6] & 0x7F),
            (b[2] & 0x80) != 0,
            (b[3] & 0x80) != 0);
    }

    /// <summary>Encodes <paramref name="time"/> (years 2000..2099) into seven octets; the day of week is written.</summary>
    public static void Write(Span<byte> destination, DateTime time, bool invalid = false, bool summerTime = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, Size);
        if (time.Year is < 2000 or > 2099)
        {
            throw new ArgumentOutOfRangeException(nameof(time), "CP56Time2a holds years 2000..2099 here");
        }
        BinaryPrimitives.WriteUInt16LittleEndian(destination, (ushort)(time.Second * 1000 + time.Millisecond));
        destination[2] = (byte)(time.Minute | (invalid ? 0x80 : 0));
        destination[3] = (byte)(time.Hour | (summerTime ? 0x80 : 0));
        int dayOfWeek = time.DayOfWeek == System.DayOfWeek.Sunday ? 7 : (int)time.DayOfWeek;
        destination[4] = (byte)(time.Day | dayOfWeek << 5);
        destination[5] = (byte)time.Month;
        destination[6] = (byte)(time.Year - 2000);
    }

    /// <summary>The time as written (the station's clock, <see cref="DateTimeKind.Unspecified"/>, 2000 + year); false when not <see cref="IsValid"/>.</summary>
    public bool TryToDateTime(out DateTime time)
    {
        if (!IsValid)
        {
            time = default;
            return false;
        }
        time = new DateTime(2000 + Year, Month, Day, Hour, Minute, Second, Milliseconds % 1000, DateTimeKind.Unspecified);
        return true;
    }

    /// <summary>The time as written (<see cref="TryToDateTime"/>), or <see cref="DateTime.MinValue"/> when not <see cref="IsValid"/>.</summary>
    public DateTime ToDateTime() => TryToDateTime(out var time) ? time : DateTime.MinValue;

    /// <inheritdoc/>
    public bool Equals(Cp56Time2a other) => Milliseconds == other.Milliseconds && Minute == other.Minute && Hour == other.Hour && Day == other.Day
        && DayOfWeek == other.DayOfWeek && Month == other.Month && Year == other.Year && Invalid == other.Invalid && SummerTime == other.SummerTime;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Cp56Time2a other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Milliseconds, Minute, Hour, Day, Month, Year, Invalid, SummerTime);

    public static bool operator ==(Cp56Time2a left, Cp56Time2a right) => left.Equals(right);

    public static bool operator !=(Cp56Time2a left, Cp56Time2a right) => !left.Equals(right);
}

/// <summary>15-bit sequence number arithmetic of N(S) and N(R) (docs/IEC104.md "APCI": modulo 32768).</summary>
public static class Iec104Sequence
{
    private const int Mask = Iec104Limits.SequenceModulus - 1;

    /// <summary>The number after <paramref name="sequence"/> (32767 → 0).</summary>
    public static ushort Next(ushort sequence) => (ushort)((sequence + 1) & Mask);

    /// <summary><paramref name="sequence"/> + <paramref name="count"/>, modulo 32768.</summary>
    public static ushort Add(ushort sequence, int count) => (ushort)((sequence + count) & Mask);

    /// <summary>How many steps forward from <paramref name="from"/> to <paramref name="to"/>, 0..32767.</summary>
    public static int Distance(ushort from, ushort to) => (to - from) & Mask;

    /// <summary>
    /// True when an N(R) of <paramref name="receiveSequence"/> acknowledges the I-frame sent with N(S)
    /// <paramref name="sent"/>, given that <paramref name="nextToSend"/> is the next N(S) (so the frames in flight
    /// are those from <paramref name="sent"/> up to it).
    /// </summary>
    public static bool IsAcknowledged(ushort sent, ushort receiveSequence, ushort nextToSend)
    {
        int acked = Distance(sent, receiveSequence);
        return acked >= 1 && acked <= Distance(sent, nextToSend);
    }

    /// <summary>
    /// True when an N(R) of <paramref name="receiveSequence"/> is possible: between the oldest unacknowledged N(S)
    /// <paramref name="oldestUnacknowledged"/> and <paramref name="nextToSend"/>, both included. Any other N(R)
    /// acknowledges a frame never sent: the peer is out of step and the connection is closed.
    /// </summary>
    public static bool IsValidAcknowledgement(ushort oldestUnacknowledged, ushort receiveSequence, ushort nextToSend) =>
        Distance(oldestUnacknowledged, receiveSequence) <= Distance(oldestUnacknowledged, nextToSend);
}
