using System.Buffers.Binary;
using EdgeShield.Policy;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Telemetry;

/// <summary>
/// Turns the information element of a monitor point (docs/IEC104.md "Types") into a tag value, its quality bits and its
/// time tag (docs/TELEMETRY.md "IEC 104 stations"):
/// <list type="bullet">
/// <item>single point (1, 30): a boolean (SPI);</item>
/// <item>double point (3, 31): the state DPI as a number 0..3 (1 off, 2 on, 0 intermediate, 3 indeterminate);</item>
/// <item>step position (5, 32): the value -64..63 (the transient bit is dropped);</item>
/// <item>bitstring (7, 33): the 32 bits as an unsigned number;</item>
/// <item>normalised (9, 34, 21): a number -1..1 (NVA / 32768); scaled (11, 35): an integer; short float (13, 36): a number;</item>
/// <item>integrated total (15, 37): the counter as an integer (its IV bit is the quality; CY, CA and the sequence are dropped);</item>
/// <item>packed single points (20): the 16 status bits as a number;</item>
/// <item>protection events, all time-tagged: M_EP_TD_1 (38) the event state ES 0..3 (1 off, 2 on, as a double point),
/// M_EP_TE_1 (39) the start events SPE as a number (bit 0 general start, 1-3 phases L1-L3, 4 earth current, 5 reverse
/// direction), M_EP_TF_1 (40) the output circuit information OCI (bit 0 general command, 1-3 phases); their quality is
/// the SEP's or QDP's IV NT SB BL, and the relay's elapsed time (CP16Time2a) is not published.</item>
/// </list>
/// Scale and offset apply to every kind but booleans, as for Modbus registers.
/// </summary>
public static class Iec104PointDecoder
{
    /// <summary>IV: invalid.</summary>
    public const byte Invalid = 0x80;
    /// <summary>NT: not topical.</summary>
    public const byte NotTopical = 0x40;
    /// <summary>SB: substituted.</summary>
    public const byte Substituted = 0x20;
    /// <summary>BL: blocked.</summary>
    public const byte Blocked = 0x10;
    /// <summary>OV: overflow (QDS only).</summary>
    public const byte Overflow = 0x01;

    private static readonly string?[] FlagReasons = BuildFlagReasons();

    /// <summary>The untimed form of a time-tagged monitor type (30 → 1 … 37 → 15); other types unchanged.</summary>
    public static byte Untimed(byte type) => type switch
    {
        30 => 1,
        31 => 3,
        32 => 5,
        33 => 7,
        34 => 9,
        35 => 11,
        36 => 13,
        37 => 15,
        _ => type,
    };

    /// <summary>
    /// Decodes <paramref name="element"/> of <paramref name="type"/>: the raw value, the quality bits (IV NT SB BL OV, as
    /// <see cref="Invalid"/> …) and the CP56Time2a as UTC when the type has one and it is valid. False for a type that is
    /// not a point (a type the station cannot send as one). <paramref name="stationTimeOffset"/>: null when the station's time
    /// tags are UTC; else the UTC offset of its standard time (local time, an hour more when SU marks summer time).
    /// </summary>
    public static bool TryDecode(byte type, ReadOnlySpan<byte> element, out TagValue value, out byte flags, out DateTime? time, TimeSpan? stationTimeOffset = null)
    {
        time = null;
        switch (Untimed(type))
        {
            case 1:
                value = TagValue.FromBoolean((element[0] & 0x01) != 0);
                flags = (byte)(element[0] & 0xF0);
                break;
            case 3:
                value = TagValue.FromInteger(element[0] & 0x03);
                flags = (byte)(element[0] & 0xF0);
                break;
            case 5:
                value = TagValue.FromInteger((sbyte)(element[0] << 1) >> 1);
                flags = (byte)(element[1] & 0xF1);
                break;
            case 7:
                value = TagValue.FromInteger(BinaryPrimitives.ReadUInt32LittleEndian(element));
                flags = (byte)(element[4] & 0xF1);
                break;
            case 9:
                value = TagValue.FromReal(Iec104Values.Normalised(element));
                flags = (byte)(element[2] & 0xF1);
                break;
            case 11:
                value = TagValue.FromInteger(Iec104Values.Scaled(element));
                flags = (byte)(element[2] & 0xF1);
                break;
            case 13:
                value = TagValue.FromReal(Iec104Values.Float(element));
                flags = (byte)(element[4] & 0xF1);
                break;
            case 15:
                value = TagValue.FromInteger(BinaryPrimitives.ReadInt32LittleEndian(element));
                flags = (byte)(element[4] & Invalid);
                break;
            case 20:
                value = TagValue.FromInteger(BinaryPrimitives.ReadUInt16LittleEndian(element));
                flags = (byte)(element[4] & 0xF1);
                break;
            case 21:
                value = TagValue.FromReal(Iec104Values.Normalised(element));
                flags = 0;
                break;
            case 38:
                value = TagValue.FromInteger(element[0] & 0x03);
                flags = (byte)(element[0] & 0xF0);
                break;
            case 39:
                value = TagValue.FromInteger(element[0] & 0x3F);
                flags = (byte)(element[1] & 0xF0);
                break;
            case 40:
                value = TagValue.FromInteger(element[0] & 0x0F);
                flags = (byte)(element[1] & 0xF0);
                break;
            default:
                value = default;
                flags = 0;
                return false;
        }
        if (type is >= 30 and <= 40)
        {
            var tag = Cp56Time2a.Read(element[^Cp56Time2a.Size..]);
            if (!tag.Invalid && tag.TryToDateTime(out var at))
            {
                if (stationTimeOffset is { } offset)
                {
                    at -= offset + (tag.SummerTime ? TimeSpan.FromHours(1) : TimeSpan.Zero);
                }
                time = DateTime.SpecifyKind(at, DateTimeKind.Utc);
            }
        }
        return true;
    }

    /// <summary><paramref name="raw"/> × scale + offset for numeric values when the tag has either; booleans and unscaled values as they are.</summary>
    public static TagValue Scale(TagConfig tag, in TagValue raw)
    {
        ArgumentNullException.ThrowIfNull(tag);
        if ((tag.Scale == 1 && tag.Offset == 0) || raw.Kind == TagValueKind.Boolean)
        {
            return raw;
        }
        double value = raw.Kind == TagValueKind.Real ? raw.Real : raw.SignedValue;
        return TagValue.FromReal((value * tag.Scale) + tag.Offset);
    }

    /// <summary>The words of set quality bits, comma-separated in the order invalid, not-topical, substituted, blocked, overflow; null for none.</summary>
    public static string? Reason(byte flags) => FlagReasons[flags];

    private static string?[] BuildFlagReasons()
    {
        var reasons = new string?[256];
        (byte Bit, string Word)[] words = [(Invalid, "invalid"), (NotTopical, "not-topical"), (Substituted, "substituted"), (Blocked, "blocked"), (Overflow, "overflow")];
        for (int flags = 1; flags < 256; flags++)
        {
            var set = words.Where(w => (flags & w.Bit) != 0).Select(w => w.Word).ToArray();
            reasons[flags] = set.Length == 0 ? null : string.Join(',', set);
        }
        return reasons;
    }
}
