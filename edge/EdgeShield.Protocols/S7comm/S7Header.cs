using System.Buffers.Binary;

namespace EdgeShield.Protocols.S7comm;

/// <summary>Which protocol an ISO-on-TCP payload speaks, by its first byte.</summary>
public enum S7Protocol : byte
{
    Unknown = 0,
    /// <summary>Classic S7comm, protocol id 32.</summary>
    S7comm,
    /// <summary>S7comm-Plus, protocol id 72: recognised and classified, never inspected deeper.</summary>
    S7commPlus,
}

/// <summary>The S7 message type (ROSCTR).</summary>
public enum S7Rosctr : byte
{
    Unknown = 0,
    /// <summary>01: a job (request).</summary>
    Job = 1,
    /// <summary>02: acknowledgement without data.</summary>
    Ack = 2,
    /// <summary>03: acknowledgement with data (the response to a job).</summary>
    AckData = 3,
    /// <summary>07: userdata (requests, responses and pushes of the userdata groups).</summary>
    Userdata = 7,
}

/// <summary>Why a PDU's header does not hold together.</summary>
public enum S7HeaderError : byte
{
    None = 0,
    /// <summary>Shorter than its header (10 bytes for Job/Userdata, 12 for Ack/Ack_Data; 4 for S7comm-Plus).</summary>
    TooShort,
    /// <summary>The first byte is neither 32 (S7comm) nor 72 (S7comm-Plus).</summary>
    ProtocolIdUnknown,
    /// <summary>A ROSCTR other than 1, 2, 3 or 7.</summary>
    RosctrUnknown,
    /// <summary>Header, parameter length and data length do not add up to the PDU's length exactly.</summary>
    LengthMismatch,
    /// <summary>An S7comm-Plus data length that runs past the PDU.</summary>
    PlusLengthBeyondPdu,
}

/// <summary>S7comm-Plus opcodes (Snort 3's s7commplus vocabulary).</summary>
public enum S7PlusOpcode : byte
{
    Unknown = 0,
    Request = 0x31,
    Response = 0x32,
    Notification = 0x33,
    Response2 = 0x02,
}

/// <summary>S7comm-Plus functions (Snort 3's s7commplus vocabulary); the 16-bit code is in <see cref="S7Header.PlusFunctionCode"/>.</summary>
public enum S7PlusFunction : byte
{
    Unknown = 0,
    Explore,
    CreateObject,
    DeleteObject,
    SetVariable,
    GetLink,
    SetMultiVariables,
    GetMultiVariables,
    BeginSequence,
    EndSequence,
    Invoke,
    GetVarSubstring,
}

/// <summary>
/// The header of one S7 PDU (a reassembled COTP TSDU), viewed in place.
/// </summary>
/// <remarks>
/// <code>
///  0    1       2     4     6     8     10    11     10 or 12
///  +----+-------+-----+-----+-----+-----+-----+-----+-------------+---------+
///  | 32 |ROSCTR | 0000| REF | PL  | DL  | EC  | EE  | parameters  | data    |
///  +----+-------+-----+-----+-----+-----+-----+-----+-------------+---------+
///                                       (Ack 02 and Ack_Data 03 only)
///  S7comm-Plus: | 72 | version | data length (2) | opcode | reserved (2) | function (2) | …
///  Wireshark packet-s7comm.c (s7comm_decode_req_resp) and Snort 3 s7commplus (s7comm_decode.cc).
/// </code>
/// </remarks>
public readonly ref struct S7Header
{
    internal S7Header(ReadOnlySpan<byte> pdu, S7Protocol protocol, S7HeaderError error)
    {
        Pdu = pdu;
        Protocol = protocol;
        Error = error;
    }

    /// <summary>The whole PDU.</summary>
    public ReadOnlySpan<byte> Pdu { get; }

    /// <summary>S7comm or S7comm-Plus (set even when <see cref="Error"/> is set, once the first byte is known).</summary>
    public S7Protocol Protocol { get; }

    /// <summary>None when the header holds together.</summary>
    public S7HeaderError Error { get; }

    /// <summary>True when the header holds together.</summary>
    public bool IsValid => Error == S7HeaderError.None;

    private bool IsClassic => IsValid && Protocol == S7Protocol.S7comm;

    /// <summary>The ROSCTR byte as sent.</summary>
    public byte RosctrCode => Pdu.Length > 1 && Protocol == S7Protocol.S7comm ? Pdu[1] : (byte)0;

    /// <summary>The message type.</summary>
    public S7Rosctr Rosctr => RosctrCode switch
    {
        1 => S7Rosctr.Job,
        2 => S7Rosctr.Ack,
        3 => S7Rosctr.AckData,
        7 => S7Rosctr.Userdata,
        _ => S7Rosctr.Unknown,
    };

    /// <summary>The PDU reference chosen by the job's sender; its answer carries the same.</summary>
    public ushort Reference => IsClassic ? BinaryPrimitives.ReadUInt16BigEndian(Pdu[4..]) : (ushort)0;

    /// <summary>Parameter length.</summary>
    public ushort ParameterLength => IsClassic ? BinaryPrimitives.ReadUInt16BigEndian(Pdu[6..]) : (ushort)0;

    /// <summary>Data length.</summary>
    public ushort DataLength => IsClassic ? BinaryPrimitives.ReadUInt16BigEndian(Pdu[8..]) : (ushort)0;

    /// <summary>12 for Ack and Ack_Data, 10 otherwise.</summary>
    public int HeaderLength => IsAck(RosctrCode) ? S7Limits.AckHeaderLength : S7Limits.HeaderLength;

    /// <summary>Ack, Ack_Data: the error class (00 none, 81 application relationship, 82 object definition, 83 no resources, 84 service processing, 85 supplies, 87 access).</summary>
    public byte ErrorClass => IsClassic && IsAck(RosctrCode) ? Pdu[10] : (byte)0;

    /// <summary>Ack, Ack_Data: the error code.</summary>
    public byte ErrorCode => IsClassic && IsAck(RosctrCode) ? Pdu[11] : (byte)0;

    /// <summary>The parameters (PL bytes after the header).</summary>
    public ReadOnlySpan<byte> Parameters => IsClassic ? Pdu.Slice(HeaderLength, ParameterLength) : default;

    /// <summary>The data (DL bytes after the parameters).</summary>
    public ReadOnlySpan<byte> Data => IsClassic ? Pdu.Slice(HeaderLength + ParameterLength, DataLength) : default;

    /// <summary>S7comm-Plus: the protocol version byte.</summary>
    public byte PlusVersion => Protocol == S7Protocol.S7commPlus && Pdu.Length > 1 ? Pdu[1] : (byte)0;

    /// <summary>S7comm-Plus: the opcode byte, 0 when the PDU is too short to hold it.</summary>
    public byte PlusOpcodeCode => IsValid && Protocol == S7Protocol.S7commPlus && Pdu.Length > 4 ? Pdu[4] : (byte)0;

    /// <summary>S7comm-Plus: the opcode.</summary>
    public S7PlusOpcode PlusOpcode => PlusOpcodeCode switch
    {
        0x31 => S7PlusOpcode.Request,
        0x32 => S7PlusOpcode.Response,
        0x33 => S7PlusOpcode.Notification,
        0x02 => S7PlusOpcode.Response2,
        _ => S7PlusOpcode.Unknown,
    };

    /// <summary>S7comm-Plus: the 16-bit function code, 0 when the PDU is too short to hold it.</summary>
    public ushort PlusFunctionCode => IsValid && Protocol == S7Protocol.S7commPlus && Pdu.Length >= 9 ? BinaryPrimitives.ReadUInt16BigEndian(Pdu[7..]) : (ushort)0;

    /// <summary>S7comm-Plus: the function by Snort 3's name.</summary>
    public S7PlusFunction PlusFunction => PlusFunctionCode switch
    {
        0x04BB => S7PlusFunction.Explore,
        0x04CA => S7PlusFunction.CreateObject,
        0x04D4 => S7PlusFunction.DeleteObject,
        0x04F2 => S7PlusFunction.SetVariable,
        0x0524 => S7PlusFunction.GetLink,
        0x0542 => S7PlusFunction.SetMultiVariables,
        0x054C => S7PlusFunction.GetMultiVariables,
        0x0556 => S7PlusFunction.BeginSequence,
        0x0560 => S7PlusFunction.EndSequence,
        0x056B => S7PlusFunction.Invoke,
        0x0586 => S7PlusFunction.GetVarSubstring,
        _ => S7PlusFunction.Unknown,
    };

    internal static bool IsAck(byte rosctr) => rosctr is 2 or 3;
}

/// <summary>S7 PDU parsing, response checks and refusal writers.</summary>
public static partial class S7Pdu
{
    /// <summary>
    /// Reads the header of <paramref name="pdu"/>: protocol id 32 (or 72, S7comm-Plus, recognised and
    /// classified), ROSCTR 1/2/3/7, and parameter and data lengths that add up to the PDU exactly.
    /// </summary>
    public static S7Header ParseHeader(ReadOnlySpan<byte> pdu)
    {
        if (pdu.IsEmpty)
        {
            return new S7Header(pdu, S7Protocol.Unknown, S7HeaderError.TooShort);
        }
        if (pdu[0] == S7Limits.PlusProtocolId)
        {
            if (pdu.Length < S7Limits.PlusHeaderLength)
            {
                return new S7Header(pdu, S7Protocol.S7commPlus, S7HeaderError.TooShort);
            }
            int plusLength = BinaryPrimitives.ReadUInt16BigEndian(pdu[2..]);
            return new S7Header(pdu, S7Protocol.S7commPlus, S7Limits.PlusHeaderLength + plusLength > pdu.Length ? S7HeaderError.PlusLengthBeyondPdu : S7HeaderError.None);
        }
        if (pdu[0] != S7Limits.ProtocolId)
        {
            return new S7Header(pdu, S7Protocol.Unknown, S7HeaderError.ProtocolIdUnknown);
        }
        if (pdu.Length < 2)
        {
            return new S7Header(pdu, S7Protocol.S7comm, S7HeaderError.TooShort);
        }
        byte rosctr = pdu[1];
        if (rosctr is not (1 or 2 or 3 or 7))
        {
            return new S7Header(pdu, S7Protocol.S7comm, S7HeaderError.RosctrUnknown);
        }
        int headerLength = S7Header.IsAck(rosctr) ? S7Limits.AckHeaderLength : S7Limits.HeaderLength;
        if (pdu.Length < headerLength)
        {
            return new S7Header(pdu, S7Protocol.S7comm, S7HeaderError.TooShort);
        }
        int parameters = BinaryPrimitives.ReadUInt16BigEndian(pdu[6..]);
        int data = BinaryPrimitives.ReadUInt16BigEndian(pdu[8..]);
        if (headerLength + parameters + data != pdu.Length)
        {
            return new S7Header(pdu, S7Protocol.S7comm, S7HeaderError.LengthMismatch);
        }
        return new S7Header(pdu, S7Protocol.S7comm, S7HeaderError.None);
    }
}
