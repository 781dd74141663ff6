using System.Buffers;
using System.Buffers.Binary;

namespace EdgeShield.Protocols.Modbus;

/// <summary>Which way an RTU frame travels; the length rules differ.</summary>
public enum RtuDirection : byte
{
    /// <summary>Master to device.</summary>
    Request = 0,
    /// <summary>Device to master.</summary>
    Response,
}

/// <summary>
/// A Modbus RTU ADU viewed in place; nothing is copied.
/// </summary>
/// <remarks>
/// <code>
///  0        1                     n-2        n
///  +--------+---------------------+----------+
///  |address | PDU (1..253 bytes)  | CRC lo hi|
///  +--------+---------------------+----------+
///  Modbus over Serial Line V1.02, 2.5.1; at most 256 bytes
/// </code>
/// </remarks>
public readonly ref struct RtuFrame
{
    /// <summary>The whole ADU: address, PDU and CRC.</summary>
    public ReadOnlySpan<byte> Adu { get; }

    internal RtuFrame(ReadOnlySpan<byte> adu) => Adu = adu;

    /// <summary>The device address: 0 broadcast, 1..247 devices.</summary>
    public byte Address => Adu[0];
    /// <summary>Function code and data.</summary>
    public ReadOnlySpan<byte> Pdu => Adu[1..^2];
    public byte FunctionCode => Adu[1];
}

/// <summary>
/// Frames Modbus RTU. The frame's end comes from the function's length rules first (every
/// public function of a request, and every response but 43/14, says its own length, except
/// diagnostics 8/00 "return query data" and reserved sub-functions of 8); for the others the
/// caller's silent interval (t3.5 on a line, the end of what arrived on TCP) ends it.
/// The CRC must check. Never allocates, never reads past its input.
/// </summary>
public static class RtuFramer
{
    /// <summary>Largest RTU ADU (Modbus over Serial Line V1.02, 2.5.1).</summary>
    public const int MaxAduLength = 256;
    /// <summary>Smallest RTU ADU: address, function code, CRC.</summary>
    public const int MinAduLength = 4;
    /// <summary>Address of a broadcast: every device executes, none answers.</summary>
    public const byte BroadcastAddress = 0;
    /// <summary>Highest device address; 248..255 are reserved.</summary>
    public const byte MaxDeviceAddress = 247;

    /// <summary>
    /// Reads one ADU from the start of <paramref name="input"/>.
    /// </summary>
    /// <param name="atSilence">True when the line has been silent for t3.5 after the last byte of
    /// <paramref name="input"/>: a frame of a function whose length is not self-describing ends there.</param>
    /// <returns>
    /// <see cref="OperationStatus.Done"/> with the frame; <see cref="OperationStatus.NeedMoreData"/> when it is
    /// not complete (nothing consumed); <see cref="OperationStatus.InvalidData"/> with <paramref name="error"/>
    /// (<see cref="FramingError.CrcMismatch"/>, <see cref="FramingError.FrameTooLong"/>, <see cref="FramingError.PduTruncated"/>),
    /// where <paramref name="consumed"/> is the length the frame claimed (0 when unknown).
    /// </returns>
    public static OperationStatus TryReadFrame(ReadOnlySpan<byte> input, RtuDirection direction, bool atSilence, out RtuFrame frame, out int consumed, out FramingError error)
    {
        frame = default;
        consumed = 0;
        error = FramingError.None;
        int length = ExpectedLength(input, direction);
        if (length == Unknown)
        {
            if (!atSilence)
            {
                if (input.Length > MaxAduLength)
                {
                    error = FramingError.FrameTooLong;
                    return OperationStatus.InvalidData;
                }
                return OperationStatus.NeedMoreData;
            }
            length = input.Length;
            if (length < MinAduLength)
            {
                error = FramingError.PduTruncated;
                return OperationStatus.InvalidData;
            }
        }
        else if (length == NeedHeader)
        {
            if (atSilence && !input.IsEmpty)
            {
                error = FramingError.PduTruncated;
                return OperationStatus.InvalidData;
            }
            return OperationStatus.NeedMoreData;
        }
        if (length > MaxAduLength)
        {
            error = FramingError.FrameTooLong;
            return OperationStatus.InvalidData;
        }
        if (input.Length < length)
        {
            if (atSilence && input[1] == 8 && input.Length >= MinAduLength && Crc16Modbus.Check(input))
            {
                // A diagnostics sub-function sent without its data word: valid over TCP
                // (ModbusPdu.ParseRequest), so a frame that silence ends and whose CRC checks.
                consumed = input.Length;
                frame = new RtuFrame(input);
                return OperationStatus.Done;
            }
            if (atSilence)
            {
                error = FramingError.PduTruncated;
                return OperationStatus.InvalidData;
            }
            return OperationStatus.NeedMoreData;
        }
        consumed = length;
        if (!Crc16Modbus.Check(input[..length]))
        {
            error = FramingError.CrcMismatch;
            return OperationStatus.InvalidData;
        }
        frame = new RtuFrame(input[..length]);
        return OperationStatus.Done;
    }

    private const int Unknown = -1;
    private const int NeedHeader = -2;

    /// <summary>
    /// The ADU length the function's rules give (address + PDU + CRC), <see cref="NeedHeader"/> when
    /// the bytes that tell it have not arrived, <see cref="Unknown"/> when the function does not say.
    /// Modbus Application Protocol V1.1b3, section 6, request and response layouts.
    /// </summary>
    private static int ExpectedLength(ReadOnlySpan<byte> input, RtuDirection direction)
    {
        if (input.Length < 2)
        {
            return NeedHeader;
        }
        byte fc = input[1];
        if (direction == RtuDirection.Request)
        {
            return fc switch
            {
                1 or 2 or 3 or 4 or 5 or 6 => 8,
                8 => Diagnostics(input),
                7 or 11 or 12 or 17 => 4,
                15 or 16 => Counted(input, 6, 9),
                20 or 21 => Counted(input, 2, 5),
                22 => 10,
                23 => Counted(input, 10, 13),
                24 => 6,
                ModbusFunctions.EncapsulatedInterface => input.Length < 3 ? NeedHeader
                    : input[2] == ModbusFunctions.MeiDeviceIdentification ? 7 : Unknown,
                _ => Unknown,
            };
        }
        if ((fc & ModbusExceptionCode.ExceptionFlag) != 0)
        {
            return 5;
        }
        return fc switch
        {
            1 or 2 or 3 or 4 or 12 or 17 or 20 or 21 or 23 => Counted(input, 2, 5),
            5 or 6 or 11 or 15 or 16 => 8,
            8 => Diagnostics(input), // echoes its request, or returns one data word
            7 => 5,
            22 => 10,
            24 => input.Length < 4 ? NeedHeader : 6 + BinaryPrimitives.ReadUInt16BigEndian(input[2..]),
            _ => Unknown,
        };
    }

    /// <summary>
    /// Diagnostics (8): every standard sub-function but 00 carries exactly one data word, in the
    /// request and in the response (6.8.1: 01-04, 0A-12, 14), so its ADU is 8 bytes. "Return query
    /// data" (00) echoes any number of words and reserved sub-functions say nothing: those end only at
    /// silence (on RTU over TCP, when a CRC checks over everything received). A standard
    /// sub-function sent without its data word is only told apart at silence (see TryReadFrame).
    /// </summary>
    private static int Diagnostics(ReadOnlySpan<byte> input)
    {
        if (input.Length < 4)
        {
            return NeedHeader;
        }
        return BinaryPrimitives.ReadUInt16BigEndian(input[2..]) is 1 or 2 or 3 or 4 or (>= 10 and <= 18) or 20 ? 8 : Unknown;
    }

    /// <summary>A frame whose byte at <paramref name="countOffset"/> counts the data bytes: fixed part plus that count.</summary>
    private static int Counted(ReadOnlySpan<byte> input, int countOffset, int fixedLength) =>
        input.Length <= countOffset ? NeedHeader : fixedLength + input[countOffset];

    /// <summary>Writes address, PDU and CRC into <paramref name="destination"/>.</summary>
    /// <returns>Bytes written: PDU length + 3.</returns>
    public static int WriteFrame(Span<byte> destination, byte address, ReadOnlySpan<byte> pdu)
    {
        destination[0] = address;
        pdu.CopyTo(destination[1..]);
        int length = 1 + pdu.Length;
        Crc16Modbus.Write(destination[..length], destination[length..]);
        return length + 2;
    }

    /// <summary>Writes a 5-byte exception response: address, <c>function | 0x80</c>, code, CRC.</summary>
    public static int WriteException(Span<byte> destination, byte address, byte functionCode, byte exceptionCode)
    {
        destination[0] = address;
        destination[1] = (byte)(functionCode | ModbusExceptionCode.ExceptionFlag);
        destination[2] = exceptionCode;
        Crc16Modbus.Write(destination[..3], destination[3..]);
        return 5;
    }

    /// <summary>Converts a Modbus TCP ADU into an RTU ADU: the unit id becomes the address, the PDU is kept, a CRC is added.</summary>
    /// <returns>Bytes written.</returns>
    public static int FromMbap(ReadOnlySpan<byte> mbapAdu, Span<byte> destination) =>
        WriteFrame(destination, mbapAdu[6], mbapAdu[ModbusLimits.MbapHeaderLength..]);

    /// <summary>Converts an RTU ADU into a Modbus TCP ADU carrying <paramref name="transactionId"/>.</summary>
    /// <returns>Bytes written.</returns>
    public static int ToMbap(in RtuFrame frame, ushort transactionId, Span<byte> destination)
    {
        var pdu = frame.Pdu;
        MbapFramer.WriteHeader(destination, transactionId, frame.Address, pdu.Length);
        pdu.CopyTo(destination[ModbusLimits.MbapHeaderLength..]);
        return ModbusLimits.MbapHeaderLength + pdu.Length;
    }
}
