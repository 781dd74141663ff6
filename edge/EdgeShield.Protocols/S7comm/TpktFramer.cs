using System.Buffers;
using System.Buffers.Binary;

namespace EdgeShield.Protocols.S7comm;

/// <summary>Why bytes could not be framed as TPKT + COTP, or COTP data could not be reassembled.</summary>
public enum S7FramingError : byte
{
    None = 0,
    /// <summary>The first byte is not TPKT version 3: these bytes are not ISO-on-TCP (HTTP, TLS, Modbus…).</summary>
    TpktVersionInvalid,
    /// <summary>The TPKT reserved byte is not 0.</summary>
    TpktReservedNotZero,
    /// <summary>The TPKT length is below 7.</summary>
    TpktLengthTooShort,
    /// <summary>The COTP length indicator is 0, 1 or the reserved 255: no room for a TPDU type and its fields.</summary>
    CotpLengthIndicatorInvalid,
    /// <summary>The COTP header (LI + 1 bytes) is longer than the TPKT packet holds.</summary>
    CotpHeaderBeyondTpkt,
    /// <summary>A TPDU type other than CR, CC, DT, DR or ER (ED, AK, RJ, DC… are not used by class 0).</summary>
    CotpTypeUnsupported,
    /// <summary>A DT whose LI is not 2 (class 0 DT: type and EOT/TPDU-number only).</summary>
    CotpDataHeaderInvalid,
    /// <summary>A CR, CC, DR or ER whose LI is shorter than the type's fixed part.</summary>
    CotpFixedPartTooShort,
    /// <summary>A CR or CC of a class other than 0, or with option bits set.</summary>
    CotpClassNotZero,
    /// <summary>A CR, CC or DR parameter whose length runs past the LI.</summary>
    CotpParameterBeyondHeader,
    /// <summary>A CR or CC carrying user data after its header (class 0 does not allow it), or a parameter repeated.</summary>
    CotpConnectMalformed,
    /// <summary>A TPDU size parameter (C0) that is not one byte of 7..13 (128..8192 bytes).</summary>
    CotpTpduSizeInvalid,
    /// <summary>The reassembler was given a TPDU that is not DT.</summary>
    NotData,
    /// <summary>DT fragments add up to more than the reassembler's maximum PDU size.</summary>
    PduTooLarge,
}

/// <summary>COTP TPDU types used on ISO-on-TCP class 0 (ISO 8073, 13.1).</summary>
public enum CotpTpduType : byte
{
    Unknown = 0,
    /// <summary>Connection request, E0.</summary>
    ConnectionRequest = 0xE0,
    /// <summary>Connection confirm, D0.</summary>
    ConnectionConfirm = 0xD0,
    /// <summary>Data, F0.</summary>
    Data = 0xF0,
    /// <summary>Disconnect request, 80.</summary>
    DisconnectRequest = 0x80,
    /// <summary>TPDU error, 70.</summary>
    Error = 0x70,
}

/// <summary>What a COTP connect's called TSAP says about the connection.</summary>
public enum S7ConnectionKind : byte
{
    /// <summary>No called TSAP, or one of another length or content.</summary>
    Unknown = 0,
    /// <summary>Two-byte TSAP with type 01: programming device (engineering tools).</summary>
    Pg,
    /// <summary>Two-byte TSAP with type 02: operator panel (HMI).</summary>
    Op,
    /// <summary>Two-byte TSAP with type 03: S7 basic communication.</summary>
    Basic,
    /// <summary>Two-byte TSAP with another type (<see cref="S7Connection.TypeCode"/> says which).</summary>
    Other,
    /// <summary>S7comm-Plus string TSAP <c>SIMATIC-ROOT-HMI</c>.</summary>
    PlusHmi,
    /// <summary>S7comm-Plus string TSAP <c>SIMATIC-ROOT-ES</c> (engineering station).</summary>
    PlusEs,
}

/// <summary>
/// The connection a COTP connect asks for, from its called TSAP (C2): for two-byte TSAPs the high
/// byte is the connection type (01 PG, 02 OP, 03 basic, …) and the low byte rack × 32 + slot.
/// </summary>
public readonly record struct S7Connection(S7ConnectionKind Kind, byte TypeCode, byte Rack, byte Slot)
{
    /// <summary>Classifies a called TSAP.</summary>
    public static S7Connection FromCalledTsap(ReadOnlySpan<byte> calledTsap)
    {
        if (calledTsap.Length == 2)
        {
            byte type = calledTsap[0];
            var kind = type switch
            {
                1 => S7ConnectionKind.Pg,
                2 => S7ConnectionKind.Op,
                3 => S7ConnectionKind.Basic,
                _ => S7ConnectionKind.Other,
            };
            return new S7Connection(kind, type, (byte)(calledTsap[1] >> 5), (byte)(calledTsap[1] & 0x1F));
        }
        if (calledTsap.SequenceEqual("SIMATIC-ROOT-HMI"u8))
        {
            return new S7Connection(S7ConnectionKind.PlusHmi, 0, 0, 0);
        }
        if (calledTsap.SequenceEqual("SIMATIC-ROOT-ES"u8))
        {
            return new S7Connection(S7ConnectionKind.PlusEs, 0, 0, 0);
        }
        return default;
    }
}

/// <summary>
/// One TPKT packet and its COTP TPDU, viewed in place over the receive buffer; nothing is copied.
/// </summary>
/// <remarks>
/// <code>
///  0    1    2    4    5     6 …            4+1+LI
///  +----+----+----+----+-----+--------------+----------------+
///  | 03 | 00 | len| LI | type| fixed part,  | payload (DT:   |
///  |    |    |    |    |     | parameters   | S7 PDU bytes)  |
///  +----+----+----+----+-----+--------------+----------------+
///  TPKT: RFC 1006, section 6.  COTP: ISO 8073 / RFC 905, section 13.
///  CR E0 / CC D0: dst-ref (2), src-ref (2), class+options (1), parameters (code, length, value):
///                 C0 TPDU size (2^n), C1 calling TSAP, C2 called TSAP.
///  DT F0: EOT (bit 7) + TPDU number (bits 0-6).   DR 80: dst-ref, src-ref, reason.   ER 70: dst-ref, cause.
/// </code>
/// </remarks>
public readonly ref struct CotpTpdu
{
    internal CotpTpdu(ReadOnlySpan<byte> packet, CotpTpduType type, ReadOnlySpan<byte> callingTsap, ReadOnlySpan<byte> calledTsap, byte tpduSizeCode)
    {
        Packet = packet;
        Type = type;
        CallingTsap = callingTsap;
        CalledTsap = calledTsap;
        TpduSizeCode = tpduSizeCode;
    }

    /// <summary>The whole TPKT packet.</summary>
    public ReadOnlySpan<byte> Packet { get; }

    /// <summary>The TPDU type.</summary>
    public CotpTpduType Type { get; }

    /// <summary>The COTP length indicator: header bytes after LI.</summary>
    public byte LengthIndicator => Packet[S7Limits.TpktHeaderLength];

    /// <summary>The COTP header: LI and the bytes it counts.</summary>
    public ReadOnlySpan<byte> Header => Packet.Slice(S7Limits.TpktHeaderLength, 1 + LengthIndicator);

    /// <summary>The bytes after the COTP header: for DT a fragment of an S7 PDU.</summary>
    public ReadOnlySpan<byte> Payload => Packet[(S7Limits.TpktHeaderLength + 1 + LengthIndicator)..];

    /// <summary>DT: the last fragment of a PDU (EOT).</summary>
    public bool EndOfTransmission => Type == CotpTpduType.Data && (Packet[6] & 0x80) != 0;

    /// <summary>DT: the TPDU number (bits 0-6).</summary>
    public byte TpduNumber => Type == CotpTpduType.Data ? (byte)(Packet[6] & 0x7F) : (byte)0;

    /// <summary>CR, CC, DR, ER: the destination reference.</summary>
    public ushort DestinationReference => Type is CotpTpduType.Data or CotpTpduType.Unknown ? (ushort)0 : BinaryPrimitives.ReadUInt16BigEndian(Packet[6..]);

    /// <summary>CR, CC, DR: the source reference.</summary>
    public ushort SourceReference => Type is CotpTpduType.ConnectionRequest or CotpTpduType.ConnectionConfirm or CotpTpduType.DisconnectRequest
        ? BinaryPrimitives.ReadUInt16BigEndian(Packet[8..])
        : (ushort)0;

    /// <summary>CR, CC: the class and options byte (class in the high nibble; 0 on ISO-on-TCP).</summary>
    public byte ClassOptions => Type is CotpTpduType.ConnectionRequest or CotpTpduType.ConnectionConfirm ? Packet[10] : (byte)0;

    /// <summary>DR: the disconnect reason. ER: the reject cause.</summary>
    public byte Reason => Type switch
    {
        CotpTpduType.DisconnectRequest => Packet[10],
        CotpTpduType.Error => Packet[8],
        _ => 0,
    };

    /// <summary>CR, CC: the TPDU size code of parameter C0 (size = 2^code), 0 when absent.</summary>
    public byte TpduSizeCode { get; }

    /// <summary>CR, CC: the TPDU size in bytes from C0; 0 when absent (class 0 default is 128).</summary>
    public int TpduSize => TpduSizeCode == 0 ? 0 : 1 << TpduSizeCode;

    /// <summary>CR, CC: the calling TSAP (C1) value, empty when absent.</summary>
    public ReadOnlySpan<byte> CallingTsap { get; }

    /// <summary>CR, CC: the called TSAP (C2) value, empty when absent.</summary>
    public ReadOnlySpan<byte> CalledTsap { get; }

    /// <summary>CR, CC: the connection type from the called TSAP.</summary>
    public S7Connection Connection => S7Connection.FromCalledTsap(CalledTsap);
}

/// <summary>Frames an ISO-on-TCP byte stream by the TPKT length, and checks the COTP TPDU inside.</summary>
public static class TpktFramer
{
    /// <summary>COTP parameter code: TPDU size.</summary>
    public const byte ParameterTpduSize = 0xC0;
    /// <summary>COTP parameter code: calling TSAP.</summary>
    public const byte ParameterCallingTsap = 0xC1;
    /// <summary>COTP parameter code: called TSAP.</summary>
    public const byte ParameterCalledTsap = 0xC2;

    /// <summary>Reads one TPKT packet with its COTP TPDU from the start of <paramref name="input"/>.</summary>
    /// <returns>
    /// <see cref="OperationStatus.Done"/> with <paramref name="tpdu"/> and <paramref name="consumed"/> set;
    /// <see cref="OperationStatus.NeedMoreData"/> when the packet is not complete yet (nothing consumed);
    /// <see cref="OperationStatus.InvalidData"/> with <paramref name="error"/> when the bytes cannot be TPKT + COTP class 0.
    /// </returns>
    public static OperationStatus TryReadFrame(ReadOnlySpan<byte> input, out CotpTpdu tpdu, out int consumed, out S7FramingError error)
    {
        tpdu = default;
        consumed = 0;
        error = S7FramingError.None;

        // Checked as each byte arrives, so that a client speaking something else is refused on its first bytes.
        if (input.Length >= 1 && input[0] != S7Limits.TpktVersion)
        {
            return Invalid(S7FramingError.TpktVersionInvalid, out error);
        }
        if (input.Length >= 2 && input[1] != 0)
        {
            return Invalid(S7FramingError.TpktReservedNotZero, out error);
        }
        if (input.Length < S7Limits.TpktHeaderLength)
        {
            return OperationStatus.NeedMoreData;
        }
        int length = BinaryPrimitives.ReadUInt16BigEndian(input[2..]);
        if (length < S7Limits.MinTpktLength)
        {
            return Invalid(S7FramingError.TpktLengthTooShort, out error);
        }
        if (input.Length < S7Limits.TpktHeaderLength + 1)
        {
            return OperationStatus.NeedMoreData;
        }
        int li = input[S7Limits.TpktHeaderLength];
        if (li < 2 || li == S7Limits.ReservedLengthIndicator)
        {
            return Invalid(S7FramingError.CotpLengthIndicatorInvalid, out error);
        }
        if (S7Limits.TpktHeaderLength + 1 + li > length)
        {
            return Invalid(S7FramingError.CotpHeaderBeyondTpkt, out error);
        }
        if (input.Length < length)
        {
            return OperationStatus.NeedMoreData;
        }

        var packet = input[..length];
        var header = packet.Slice(S7Limits.TpktHeaderLength + 1, li); // type and what follows it, LI bytes
        byte typeByte = header[0];
        CotpTpduType type;
        switch (typeByte)
        {
            case 0xF0:
                type = CotpTpduType.Data;
                if (li != S7Limits.DtLengthIndicator)
                {
                    return Invalid(S7FramingError.CotpDataHeaderInvalid, out error);
                }
                break;
            case 0x80:
                type = CotpTpduType.DisconnectRequest;
                break;
            case 0x70:
                type = CotpTpduType.Error;
                break;
            default:
                // CR and CC carry the credit (CDT) in the low nibble; class 0 sets it to 0 but ISO 8073 lets it be ignored.
                type = (typeByte & 0xF0) switch
                {
                    0xE0 => CotpTpduType.ConnectionRequest,
                    0xD0 => CotpTpduType.ConnectionConfirm,
                    _ => CotpTpduType.Unknown,
                };
                if (type == CotpTpduType.Unknown)
                {
                    return Invalid(S7FramingError.CotpTypeUnsupported, out error);
                }
                break;
        }

        ReadOnlySpan<byte> calling = default;
        ReadOnlySpan<byte> called = default;
        byte sizeCode = 0;
        if (type is CotpTpduType.ConnectionRequest or CotpTpduType.ConnectionConfirm or CotpTpduType.DisconnectRequest)
        {
            if (li < S7Limits.ConnectFixedLength)
            {
                return Invalid(S7FramingError.CotpFixedPartTooShort, out error);
            }
            bool connect = type != CotpTpduType.DisconnectRequest;
            if (connect && header[5] != 0)
            {
                return Invalid(S7FramingError.CotpClassNotZero, out error);
            }
            if (connect && packet.Length != S7Limits.TpktHeaderLength + 1 + li)
            {
                return Invalid(S7FramingError.CotpConnectMalformed, out error);
            }
            error = ReadParameters(header[S7Limits.ConnectFixedLength..], connect, ref calling, ref called, ref sizeCode);
            if (error != S7FramingError.None)
            {
                return OperationStatus.InvalidData;
            }
        }
        else if (type == CotpTpduType.Error && li < S7Limits.ErrorFixedLength)
        {
            return Invalid(S7FramingError.CotpFixedPartTooShort, out error);
        }

        tpdu = new CotpTpdu(packet, type, calling, called, sizeCode);
        consumed = length;
        return OperationStatus.Done;
    }

    /// <summary>
    /// Walks the variable part of a CR, CC or DR: every parameter must lie inside the LI; unknown ones
    /// are skipped. The walk is bounded by the LI (at most 127 two-byte parameters).
    /// </summary>
    private static S7FramingError ReadParameters(ReadOnlySpan<byte> parameters, bool connect, ref ReadOnlySpan<byte> calling, ref ReadOnlySpan<byte> called, ref byte sizeCode)
    {
        bool seenSize = false, seenCalling = false, seenCalled = false;
        while (!parameters.IsEmpty)
        {
            if (parameters.Length < 2 || 2 + parameters[1] > parameters.Length)
            {
                return S7FramingError.CotpParameterBeyondHeader;
            }
            byte code = parameters[0];
            var value = parameters.Slice(2, parameters[1]);
            if (connect)
            {
                switch (code)
                {
                    case ParameterTpduSize:
                        if (seenSize)
                        {
                            return S7FramingError.CotpConnectMalformed;
                        }
                        if (value.Length != 1 || value[0] < S7Limits.MinTpduSizeCode || value[0] > S7Limits.MaxTpduSizeCode)
                        {
                            return S7FramingError.CotpTpduSizeInvalid;
                        }
                        seenSize = true;
                        sizeCode = value[0];
                        break;
                    case ParameterCallingTsap:
                        if (seenCalling)
                        {
                            return S7FramingError.CotpConnectMalformed;
                        }
                        seenCalling = true;
                        calling = value;
                        break;
                    case ParameterCalledTsap:
                        if (seenCalled)
                        {
                            return S7FramingError.CotpConnectMalformed;
                        }
                        seenCalled = true;
                        called = value;
                        break;
                    default:
                        break; // other parameters (version, checksum, preferred size…) are skipped
                }
            }
            parameters = parameters[(2 + value.Length)..];
        }
        return S7FramingError.None;
    }

    private static OperationStatus Invalid(S7FramingError reason, out S7FramingError error)
    {
        error = reason;
        return OperationStatus.InvalidData;
    }
}
