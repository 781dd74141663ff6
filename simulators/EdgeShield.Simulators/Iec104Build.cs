using System.Buffers.Binary;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Simulators;

/// <summary>
/// Writes ASDUs for the IEC 104 simulators (docs/IEC104.md "ASDU"). The product's codec
/// (edge/EdgeShield.Protocols/Iec104) reads ASDUs and writes APCI frames (<see cref="Iec104Writer"/>) but has
/// no ASDU writer: a station and a controlling station need one, so it lives here. Not a hot path.
/// </summary>
internal static class Iec104Build
{
    /// <summary>Causes of transmission used by the simulators.</summary>
    public const byte Periodic = 1, Spontaneous = 3, Request = 5, Activation = 6, ActivationCon = 7, Deactivation = 8,
        DeactivationCon = 9, ActivationTerm = 10, Station = 20, CounterGeneral = 37, UnknownType = 44, UnknownCause = 45,
        UnknownCommonAddress = 46, UnknownIoa = 47;

    /// <summary>An ASDU of one object: TYPE, VSQ (SQ = 0, N = 1), COT, originator, CA, IOA, element.</summary>
    public static byte[] Asdu(byte type, byte cause, ushort ca, uint ioa, ReadOnlySpan<byte> element, bool negative = false, bool test = false, byte originator = 0)
    {
        var asdu = new byte[Iec104Limits.AsduHeaderLength + Iec104Limits.IoaLength + element.Length];
        Header(asdu, type, sequence: false, 1, cause, negative, test, originator, ca);
        WriteIoa(asdu.AsSpan(Iec104Limits.AsduHeaderLength), ioa);
        element.CopyTo(asdu.AsSpan(Iec104Limits.AsduHeaderLength + Iec104Limits.IoaLength));
        return asdu;
    }

    /// <summary>An ASDU with SQ = 1: one base IOA, then <paramref name="count"/> elements of <paramref name="elementSize"/> octets.</summary>
    public static byte[] Sequence(byte type, byte cause, ushort ca, uint baseIoa, ReadOnlySpan<byte> elements, int count)
    {
        var asdu = new byte[Iec104Limits.AsduHeaderLength + Iec104Limits.IoaLength + elements.Length];
        Header(asdu, type, sequence: true, count, cause, negative: false, test: false, 0, ca);
        WriteIoa(asdu.AsSpan(Iec104Limits.AsduHeaderLength), baseIoa);
        elements.CopyTo(asdu.AsSpan(Iec104Limits.AsduHeaderLength + Iec104Limits.IoaLength));
        return asdu;
    }

    /// <summary>The 6-octet header. VSQ, COT and CA exactly as given (a caller may lie on purpose: N is masked to 7 bits).</summary>
    public static void Header(Span<byte> asdu, byte type, bool sequence, int count, byte cause, bool negative, bool test, byte originator, ushort ca)
    {
        asdu[0] = type;
        asdu[1] = (byte)((sequence ? 0x80 : 0) | (count & 0x7F));
        asdu[2] = (byte)((test ? 0x80 : 0) | (negative ? 0x40 : 0) | (cause & 0x3F));
        asdu[3] = originator;
        BinaryPrimitives.WriteUInt16LittleEndian(asdu[4..], ca);
    }

    public static void WriteIoa(Span<byte> destination, uint ioa)
    {
        destination[0] = (byte)ioa;
        destination[1] = (byte)(ioa >> 8);
        destination[2] = (byte)(ioa >> 16);
    }

    /// <summary>
    /// A copy of <paramref name="request"/> with its cause and P/N replaced (T and the originator kept), and its
    /// CA replaced by <paramref name="commonAddress"/> when given: how a station confirms or refuses.
    /// </summary>
    public static byte[] Mirror(ReadOnlySpan<byte> request, byte cause, bool negative, ushort? commonAddress = null)
    {
        var asdu = request.ToArray();
        asdu[2] = (byte)((asdu[2] & 0x80) | (negative ? 0x40 : 0) | (cause & 0x3F));
        if (commonAddress is ushort ca)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(asdu.AsSpan(4), ca);
        }
        return asdu;
    }

    /// <summary>A whole I-frame around <paramref name="asdu"/> (through <see cref="Iec104Writer.WriteI"/>).</summary>
    public static byte[] IFrame(ushort sendSequence, ushort receiveSequence, ReadOnlySpan<byte> asdu)
    {
        var frame = new byte[Iec104Limits.ApciLength + asdu.Length];
        Iec104Writer.WriteI(frame, sendSequence, receiveSequence, asdu);
        return frame;
    }

    public static byte[] UFrame(Iec104UFunction function)
    {
        var frame = new byte[Iec104Limits.ApciLength];
        Iec104Writer.WriteU(frame, function);
        return frame;
    }

    public static byte[] SFrame(ushort receiveSequence)
    {
        var frame = new byte[Iec104Limits.ApciLength];
        Iec104Writer.WriteS(frame, receiveSequence);
        return frame;
    }

    /// <summary>A CP56Time2a of <paramref name="time"/>.</summary>
    public static byte[] Time(DateTime time)
    {
        var bytes = new byte[Cp56Time2a.Size];
        Cp56Time2a.Write(bytes, time);
        return bytes;
    }

    // ---------------------------------------------------------------- command elements

    /// <summary>SCO: bit 7 S/E, bits 2-6 QU, bit 0 state.</summary>
    public static byte Sco(bool on, bool select, int qu = 0) => (byte)((select ? 0x80 : 0) | (qu & 0x1F) << 2 | (on ? 1 : 0));

    /// <summary>DCO/RCO: bit 7 S/E, bits 2-6 QU, bits 0-1 state (1 off/lower, 2 on/higher).</summary>
    public static byte Dco(int state, bool select, int qu = 0) => (byte)((select ? 0x80 : 0) | (qu & 0x1F) << 2 | (state & 0x03));

    /// <summary>C_SE_NC_1 element: float + QOS (bit 7 S/E).</summary>
    public static byte[] SetpointFloat(float value, bool select, int ql = 0)
    {
        var e = new byte[5];
        BinaryPrimitives.WriteSingleLittleEndian(e, value);
        e[4] = (byte)((select ? 0x80 : 0) | (ql & 0x7F));
        return e;
    }

    /// <summary>C_SE_NA_1 / C_SE_NB_1 element: int16 + QOS.</summary>
    public static byte[] SetpointInt16(short value, bool select, int ql = 0)
    {
        var e = new byte[3];
        BinaryPrimitives.WriteInt16LittleEndian(e, value);
        e[2] = (byte)((select ? 0x80 : 0) | (ql & 0x7F));
        return e;
    }

    /// <summary>The standard's name of a type (C_SC_NA_1), or "type N" for a number the codec does not know.</summary>
    public static string TypeName(byte type) => Iec104Types.IsKnown(type) ? Iec104Types.Name(type) : "type " + type.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Type, IOA and cause of an ASDU, for logs and reports: "C_SC_NA_1 ca=1 ioa=2000 cause=7 neg".</summary>
    public static string Describe(ReadOnlySpan<byte> asdu)
    {
        if (asdu.Length < Iec104Limits.AsduHeaderLength)
        {
            return "ASDU of " + asdu.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) + " octets";
        }
        uint ioa = asdu.Length >= Iec104Limits.AsduHeaderLength + 3 ? (uint)(asdu[6] | asdu[7] << 8 | asdu[8] << 16) : 0;
        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{TypeName(asdu[0])} ca={BinaryPrimitives.ReadUInt16LittleEndian(asdu[4..])} ioa={ioa} cause={asdu[2] & 0x3F}{((asdu[2] & 0x40) != 0 ? " negative" : "")}");
    }
}
