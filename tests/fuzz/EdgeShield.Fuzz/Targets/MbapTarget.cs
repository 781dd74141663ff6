using System.Buffers;
using System.Buffers.Binary;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Fuzz;

/// <summary>
/// A Modbus TCP byte stream as a client (or a PLC) sends it: framed ADU by ADU by
/// <see cref="MbapFramer.TryReadFrame"/>, each PDU decoded, as the gateway's receive loop does.
/// </summary>
internal static class MbapTarget
{
    public static void Run(byte[] input) =>
        NoAllocation.Check(input, static stream => Frames(stream), "MBAP framing and request decoding");

    private static void Frames(ReadOnlySpan<byte> stream)
    {
        Span<byte> encoded = stackalloc byte[ModbusLimits.MaxVendorTcpAduLength];
        Span<byte> rtu = stackalloc byte[RtuFramer.MaxAduLength];
        Span<byte> back = stackalloc byte[ModbusLimits.MaxVendorTcpAduLength];
        var rest = stream;
        while (true)
        {
            var status = MbapFramer.TryReadFrame(rest, out var frame, out int consumed, out var error);
            if (status == OperationStatus.NeedMoreData)
            {
                Invariant.That(consumed == 0 && error == FramingError.None, "NeedMoreData consumed bytes or named an error");
                Invariant.That(rest.Length < 4 || BinaryPrimitives.ReadUInt16BigEndian(rest[2..]) == 0, "NeedMoreData for a protocol id that is not Modbus");
                Invariant.That(rest.Length < ModbusLimits.MbapPrefixLength
                    || rest.Length < ModbusLimits.MbapPrefixLength + BinaryPrimitives.ReadUInt16BigEndian(rest[4..])
                    || (rest.Length <= ModbusLimits.MbapHeaderLength && BinaryPrimitives.ReadUInt16BigEndian(rest[4..]) > ModbusLimits.MaxMbapLength), "NeedMoreData with a whole ADU present");
                return;
            }
            if (status == OperationStatus.InvalidData)
            {
                Invariant.That(consumed == 0, "InvalidData consumed bytes");
                bool reasonHolds = error switch
                {
                    FramingError.ProtocolIdNotModbus => rest.Length >= 4 && BinaryPrimitives.ReadUInt16BigEndian(rest[2..]) != 0,
                    FramingError.LengthTooShort => rest.Length >= 6 && BinaryPrimitives.ReadUInt16BigEndian(rest[4..]) < ModbusLimits.MinMbapLength,
                    FramingError.LengthTooLong => rest.Length >= 6 && BinaryPrimitives.ReadUInt16BigEndian(rest[4..]) is ushort length && length > ModbusLimits.MaxMbapLength
                        && (length > ModbusLimits.MaxVendorMbapLength || (rest.Length > ModbusLimits.MbapHeaderLength && !ModbusFunctions.IsProgramCode(rest[ModbusLimits.MbapHeaderLength]))),
                    _ => false,
                };
                Invariant.That(reasonHolds, "InvalidData with a reason the header does not show");
                return;
            }
            Invariant.That(status == OperationStatus.Done, "unknown OperationStatus");
            Invariant.That(consumed > ModbusLimits.MbapHeaderLength && consumed <= rest.Length && (consumed <= ModbusLimits.MaxTcpAduLength || (consumed <= ModbusLimits.MaxVendorTcpAduLength && ModbusFunctions.IsProgramCode(frame.FunctionCode))), "consumed outside the input or the ADU limits");
            Invariant.That(Invariant.IsSliceAt(rest, frame.Adu, 0) && frame.Adu.Length == consumed, "frame is not the consumed prefix of the input");
            Invariant.That(frame.ProtocolId == 0 && frame.Length == consumed - ModbusLimits.MbapPrefixLength, "Done for a header that does not hold");

            // Decode → encode with the gateway's own writer: the same bytes.
            MbapFramer.WriteHeader(encoded, frame.TransactionId, frame.UnitId, frame.Pdu.Length);
            frame.Pdu.CopyTo(encoded[ModbusLimits.MbapHeaderLength..]);
            Invariant.That(encoded[..consumed].SequenceEqual(frame.Adu), "Done for an ADU that does not re-encode to its bytes");
            if (frame.Pdu.Length == 2 && frame.FunctionCode >= ModbusExceptionCode.ExceptionFlag)
            {
                int written = MbapFramer.WriteException(encoded, frame.TransactionId, frame.UnitId, (byte)(frame.FunctionCode & 0x7F), frame.Pdu[1]);
                Invariant.That(encoded[..written].SequenceEqual(frame.Adu), "an exception ADU does not re-encode to its bytes");
            }

            PduTargets.CheckRequest(frame.Pdu);
            // A vendor PDU above 253 bytes does not fit an RTU ADU: a serial bus refuses it (03).
            if (ModbusPdu.ParseRequest(frame.Pdu).Status != RequestStatus.Malformed && frame.Pdu.Length <= ModbusLimits.MaxPduLength)
            {
                SameOnTheSerialSide(frame, rtu, back);
            }
            rest = rest[consumed..];
        }
    }

    /// <summary>
    /// A request the TCP side accepts is converted for an RS-485 bus (<see cref="RtuFramer.FromMbap"/>);
    /// an RTU framer reading it (a device, or the gateway's own RTU-over-TCP listener) must find the same
    /// ADU, and converting it back must give the original bytes.
    /// </summary>
    private static void SameOnTheSerialSide(in ModbusTcpFrame frame, Span<byte> rtu, Span<byte> back)
    {
        int length = RtuFramer.FromMbap(frame.Adu, rtu);
        var serial = rtu[..length];
        var status = RtuFramer.TryReadFrame(serial, RtuDirection.Request, atSilence: false, out var rtuFrame, out int consumed, out _);
        if (status == OperationStatus.NeedMoreData)
        {
            status = RtuFramer.TryReadFrame(serial, RtuDirection.Request, atSilence: true, out rtuFrame, out consumed, out _);
        }
        Invariant.That(status == OperationStatus.Done && consumed == length, "a request accepted over TCP does not frame as the same RTU ADU");
        int written = RtuFramer.ToMbap(rtuFrame, frame.TransactionId, back);
        Invariant.That(back[..written].SequenceEqual(frame.Adu), "MBAP → RTU → MBAP does not give the same ADU");
    }
}
