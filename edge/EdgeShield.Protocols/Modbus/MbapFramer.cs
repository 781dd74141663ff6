using System.Buffers;
using System.Buffers.Binary;

namespace EdgeShield.Protocols.Modbus;

/// <summary>Why bytes could not be framed as a Modbus TCP ADU.</summary>
public enum FramingError : byte
{
    None = 0,
    /// <summary>The protocol identifier is not 0: these bytes are not Modbus (HTTP, TLS, another protocol).</summary>
    ProtocolIdNotModbus,
    /// <summary>The MBAP length is 0 or 1: there is no room for a unit id and a function code.</summary>
    LengthTooShort,
    /// <summary>
    /// The MBAP length is above 254 (the PDU would exceed 253 bytes) for a public function code, or above
    /// <see cref="ModbusLimits.MaxVendorMbapLength"/> for a user-defined or vendor code.
    /// </summary>
    LengthTooLong,
    /// <summary>The PDU's own structure says it is longer than the MBAP length allows (short PDU).</summary>
    PduTruncated,
    /// <summary>The MBAP length carries bytes that the PDU's structure does not account for.</summary>
    TrailingBytes,
    /// <summary>A byte count inside the PDU disagrees with the bytes that follow it.</summary>
    ByteCountMismatch,
    /// <summary>A function code of 0 or in the exception range where a request was expected.</summary>
    InvalidFunctionCode,
    /// <summary>An RTU frame whose CRC does not check.</summary>
    CrcMismatch,
    /// <summary>An RTU frame above 256 bytes.</summary>
    FrameTooLong,
}

/// <summary>
/// A Modbus TCP ADU viewed in place over the receive buffer; nothing is copied.
/// </summary>
/// <remarks>
/// <code>
///  0      2      4      6    7
///  +------+------+------+----+-----------------------+
///  | tid  | pid  | len  |unit| PDU (len - 1 bytes)   |
///  +------+------+------+----+-----------------------+
///  MBAP header, Messaging on TCP/IP Implementation Guide V1.0b, 3.1.3
/// </code>
/// </remarks>
public readonly ref struct ModbusTcpFrame
{
    /// <summary>The whole ADU: header and PDU.</summary>
    public ReadOnlySpan<byte> Adu { get; }

    /// <summary>Creates a view; the caller guarantees <paramref name="adu"/> is a complete, length-checked ADU.</summary>
    internal ModbusTcpFrame(ReadOnlySpan<byte> adu) => Adu = adu;

    public ushort TransactionId => BinaryPrimitives.ReadUInt16BigEndian(Adu);
    public ushort ProtocolId => BinaryPrimitives.ReadUInt16BigEndian(Adu[2..]);
    /// <summary>The MBAP length field: unit id plus PDU.</summary>
    public ushort Length => BinaryPrimitives.ReadUInt16BigEndian(Adu[4..]);
    public byte UnitId => Adu[6];
    /// <summary>Function code and data.</summary>
    public ReadOnlySpan<byte> Pdu => Adu[ModbusLimits.MbapHeaderLength..];
    public byte FunctionCode => Adu[7];
}

/// <summary>Frames a Modbus TCP byte stream by the MBAP length field, never by reads.</summary>
public static class MbapFramer
{
    /// <summary>
    /// Reads one ADU from the start of <paramref name="input"/>.
    /// </summary>
    /// <returns>
    /// <see cref="OperationStatus.Done"/> with <paramref name="frame"/> and <paramref name="consumed"/> set;
    /// <see cref="OperationStatus.NeedMoreData"/> when the ADU is not complete yet (nothing consumed);
    /// <see cref="OperationStatus.InvalidData"/> with <paramref name="error"/> when the header cannot be Modbus.
    /// The PDU itself is not examined here; see <see cref="ModbusPdu"/>.
    /// </returns>
    public static OperationStatus TryReadFrame(ReadOnlySpan<byte> input, out ModbusTcpFrame frame, out int consumed, out FramingError error)
    {
        frame = default;
        consumed = 0;
        error = FramingError.None;

        // The protocol id and length are checked as soon as they arrive, so that an HTTP or TLS
        // client is refused on its first bytes rather than after it sent a "frame" worth of them.
        if (input.Length >= 4 && BinaryPrimitives.ReadUInt16BigEndian(input[2..]) != 0)
        {
            error = FramingError.ProtocolIdNotModbus;
            return OperationStatus.InvalidData;
        }
        if (input.Length < ModbusLimits.MbapPrefixLength)
        {
            return OperationStatus.NeedMoreData;
        }
        int length = BinaryPrimitives.ReadUInt16BigEndian(input[4..]);
        if (length < ModbusLimits.MinMbapLength)
        {
            error = FramingError.LengthTooShort;
            return OperationStatus.InvalidData;
        }
        if (length > ModbusLimits.MaxMbapLength)
        {
            // Public codes keep the spec's limit; user-defined and vendor codes (UMAS) go a little
            // beyond it in real traffic, which the function byte (after the unit id) tells.
            if (length > ModbusLimits.MaxVendorMbapLength)
            {
                error = FramingError.LengthTooLong;
                return OperationStatus.InvalidData;
            }
            if (input.Length <= ModbusLimits.MbapHeaderLength)
            {
                return OperationStatus.NeedMoreData;
            }
            if (!ModbusFunctions.IsProgramCode(input[ModbusLimits.MbapHeaderLength]))
            {
                error = FramingError.LengthTooLong;
                return OperationStatus.InvalidData;
            }
        }
        int total = ModbusLimits.MbapPrefixLength + length;
        if (input.Length < total)
        {
            return OperationStatus.NeedMoreData;
        }
        frame = new ModbusTcpFrame(input[..total]);
        consumed = total;
        return OperationStatus.Done;
    }

    /// <summary>Writes an MBAP header; <paramref name="pduLength"/> excludes the unit id.</summary>
    public static void WriteHeader(Span<byte> destination, ushort transactionId, byte unitId, int pduLength)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, transactionId);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)(pduLength + 1));
        destination[6] = unitId;
    }

    /// <summary>Writes a 9-byte exception response ADU: header, <c>function | 0x80</c>, code.</summary>
    /// <returns>The number of bytes written (9).</returns>
    public static int WriteException(Span<byte> destination, ushort transactionId, byte unitId, byte functionCode, byte exceptionCode)
    {
        WriteHeader(destination, transactionId, unitId, 2);
        destination[7] = (byte)(functionCode | ModbusExceptionCode.ExceptionFlag);
        destination[8] = exceptionCode;
        return 9;
    }

    /// <summary>Rewrites the transaction id of an ADU in place.</summary>
    public static void SetTransactionId(Span<byte> adu, ushort transactionId) =>
        BinaryPrimitives.WriteUInt16BigEndian(adu, transactionId);
}
