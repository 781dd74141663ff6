using System.Buffers.Binary;

namespace EdgeShield.Protocols.S7comm;

/// <summary>Writes TPKT + COTP class 0 packets: DT (whole or fragmented), CR, CC and DR.</summary>
public static class CotpWriter
{
    /// <summary>DR reason 0: not specified (ISO 8073, 13.5.3).</summary>
    public const byte DisconnectReasonNotSpecified = 0x00;
    /// <summary>DR reason 3: address unknown (the called TSAP is not served).</summary>
    public const byte DisconnectReasonAddressUnknown = 0x03;
    /// <summary>DR reason 0x80: normal disconnect initiated by the session entity.</summary>
    public const byte DisconnectReasonNormal = 0x80;

    /// <summary>The smallest TPDU size class 0 allows (2^7).</summary>
    public const int MinTpduSize = 128;

    /// <summary>Writes the 7-byte TPKT + DT header for a payload of <paramref name="payloadLength"/> bytes that follows it.</summary>
    /// <returns>The header length (7).</returns>
    public static int WriteDataHeader(Span<byte> destination, int payloadLength, bool endOfTransmission)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(payloadLength, S7Limits.MaxTpktLength - S7Limits.DataTpduOverhead);
        WriteTpkt(destination, S7Limits.DataTpduOverhead + payloadLength);
        destination[4] = S7Limits.DtLengthIndicator;
        destination[5] = (byte)CotpTpduType.Data;
        destination[6] = endOfTransmission ? (byte)0x80 : (byte)0;
        return S7Limits.DataTpduOverhead;
    }

    /// <summary>
    /// The bytes <see cref="WriteData"/> needs for <paramref name="pduLength"/> bytes in TPKT packets no larger
    /// than <paramref name="tpduSize"/>.
    /// </summary>
    public static int DataLength(int pduLength, int tpduSize)
    {
        int perFragment = FragmentPayload(tpduSize);
        int fragments = pduLength == 0 ? 1 : (pduLength + perFragment - 1) / perFragment;
        return pduLength + (fragments * S7Limits.DataTpduOverhead);
    }

    /// <summary>
    /// Writes <paramref name="pdu"/> as DT TPDUs, each TPKT packet (TPKT and COTP headers included) no
    /// larger than <paramref name="tpduSize"/>, the last with EOT.
    /// </summary>
    /// <returns>The bytes written, or -1 when <paramref name="destination"/> is too small (nothing meaningful written).</returns>
    public static int WriteData(Span<byte> destination, ReadOnlySpan<byte> pdu, int tpduSize)
    {
        if (destination.Length < DataLength(pdu.Length, tpduSize))
        {
            return -1;
        }
        int perFragment = FragmentPayload(tpduSize);
        int written = 0;
        do
        {
            int take = Math.Min(perFragment, pdu.Length);
            bool last = take == pdu.Length;
            written += WriteDataHeader(destination[written..], take, last);
            pdu[..take].CopyTo(destination[written..]);
            written += take;
            pdu = pdu[take..];
        }
        while (!pdu.IsEmpty);
        return written;
    }

    /// <summary>
    /// Writes a CC answering a CR: <paramref name="destinationReference"/> is the CR's source reference.
    /// C0 is written when <paramref name="tpduSizeCode"/> is not 0, C1/C2 when the TSAPs are not empty.
    /// </summary>
    /// <returns>The bytes written, or -1 when <paramref name="destination"/> is too small or a TSAP is above 32 bytes.</returns>
    public static int WriteConnectConfirm(Span<byte> destination, ushort destinationReference, ushort sourceReference, byte tpduSizeCode, ReadOnlySpan<byte> callingTsap, ReadOnlySpan<byte> calledTsap)
    {
        if (callingTsap.Length > 32 || calledTsap.Length > 32)
        {
            return -1;
        }
        int parameters = (tpduSizeCode != 0 ? 3 : 0) + (callingTsap.IsEmpty ? 0 : 2 + callingTsap.Length) + (calledTsap.IsEmpty ? 0 : 2 + calledTsap.Length);
        int li = S7Limits.ConnectFixedLength + parameters;
        int total = S7Limits.TpktHeaderLength + 1 + li;
        if (destination.Length < total)
        {
            return -1;
        }
        WriteTpkt(destination, total);
        destination[4] = (byte)li;
        destination[5] = (byte)CotpTpduType.ConnectionConfirm;
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], destinationReference);
        BinaryPrimitives.WriteUInt16BigEndian(destination[8..], sourceReference);
        destination[10] = 0; // class 0, no options
        int at = 11;
        if (tpduSizeCode != 0)
        {
            destination[at++] = TpktFramer.ParameterTpduSize;
            destination[at++] = 1;
            destination[at++] = tpduSizeCode;
        }
        at = WriteParameter(destination, at, TpktFramer.ParameterCallingTsap, callingTsap);
        WriteParameter(destination, at, TpktFramer.ParameterCalledTsap, calledTsap);
        return total;
    }

    /// <summary>
    /// Writes a CR asking for a class 0 connection: source reference <paramref name="sourceReference"/>, destination
    /// reference 0, C0 <paramref name="tpduSizeCode"/> (2^code bytes), C1 calling TSAP and C2 called TSAP, two bytes each,
    /// as every S7 client sends it (snap7 <c>TIsoTcpSocket::BuildControlPDU</c>).
    /// </summary>
    /// <returns>The bytes written (22), or -1 when <paramref name="destination"/> is too small.</returns>
    public static int WriteConnectRequest(Span<byte> destination, ushort sourceReference, byte tpduSizeCode, ushort callingTsap, ushort calledTsap)
    {
        const int li = S7Limits.ConnectFixedLength + 3 + 4 + 4;
        const int total = S7Limits.TpktHeaderLength + 1 + li;
        ArgumentOutOfRangeException.ThrowIfLessThan(tpduSizeCode, S7Limits.MinTpduSizeCode);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(tpduSizeCode, S7Limits.MaxTpduSizeCode);
        if (destination.Length < total)
        {
            return -1;
        }
        WriteTpkt(destination, total);
        destination[4] = li;
        destination[5] = (byte)CotpTpduType.ConnectionRequest;
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(destination[8..], sourceReference);
        destination[10] = 0; // class 0, no options
        destination[11] = TpktFramer.ParameterTpduSize;
        destination[12] = 1;
        destination[13] = tpduSizeCode;
        destination[14] = TpktFramer.ParameterCallingTsap;
        destination[15] = 2;
        BinaryPrimitives.WriteUInt16BigEndian(destination[16..], callingTsap);
        destination[18] = TpktFramer.ParameterCalledTsap;
        destination[19] = 2;
        BinaryPrimitives.WriteUInt16BigEndian(destination[20..], calledTsap);
        return total;
    }

    /// <summary>
    /// Writes an 11-byte DR, e.g. refusing a CR: <paramref name="destinationReference"/> is the CR's source reference.
    /// </summary>
    /// <returns>The bytes written (11), or -1 when <paramref name="destination"/> is too small.</returns>
    public static int WriteDisconnectRequest(Span<byte> destination, ushort destinationReference, ushort sourceReference, byte reason)
    {
        const int total = S7Limits.TpktHeaderLength + 1 + S7Limits.ConnectFixedLength;
        if (destination.Length < total)
        {
            return -1;
        }
        WriteTpkt(destination, total);
        destination[4] = S7Limits.ConnectFixedLength;
        destination[5] = (byte)CotpTpduType.DisconnectRequest;
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], destinationReference);
        BinaryPrimitives.WriteUInt16BigEndian(destination[8..], sourceReference);
        destination[10] = reason;
        return total;
    }

    private static int FragmentPayload(int tpduSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(tpduSize, MinTpduSize);
        return Math.Min(tpduSize, S7Limits.MaxTpktLength) - S7Limits.DataTpduOverhead;
    }

    private static int WriteParameter(Span<byte> destination, int at, byte code, ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty)
        {
            return at;
        }
        destination[at] = code;
        destination[at + 1] = (byte)value.Length;
        value.CopyTo(destination[(at + 2)..]);
        return at + 2 + value.Length;
    }

    private static void WriteTpkt(Span<byte> destination, int length)
    {
        destination[0] = S7Limits.TpktVersion;
        destination[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)length);
    }
}
