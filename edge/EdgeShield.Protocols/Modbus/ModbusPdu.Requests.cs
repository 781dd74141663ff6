using System.Buffers.Binary;

namespace EdgeShield.Protocols.Modbus;

/// <summary>
/// Request and response PDU decoding, Modbus Application Protocol Specification V1.1b3, section 6.
/// Decoding never throws on bytes and never reads past the PDU it was given.
/// </summary>
public static partial class ModbusPdu
{
    /// <summary>Decodes a request PDU (function code and data; no MBAP header, no RTU address or CRC).</summary>
    public static ModbusRequest ParseRequest(ReadOnlySpan<byte> pdu)
    {
        if (pdu.IsEmpty)
        {
            return Malformed(pdu, 0, FramingError.PduTruncated);
        }
        byte fc = pdu[0];
        switch (fc)
        {
            case 1:
            case 2:
                return ReadBlock(pdu, fc == 1 ? ModbusTable.Coils : ModbusTable.DiscreteInputs, ModbusLimits.MaxReadBits);
            case 3:
            case 4:
                return ReadBlock(pdu, fc == 3 ? ModbusTable.HoldingRegisters : ModbusTable.InputRegisters, ModbusLimits.MaxReadRegisters);
            case 5:
                return WriteSingleCoil(pdu);
            case 6:
                return WriteSingleRegister(pdu);
            case 7:
            case 11:
            case 12:
            case 17:
                // Serial-line functions with no data (6.8, 6.9, 6.10, 6.13).
                return FixedLength(pdu, 1) is { } e1 ? Malformed(pdu, fc, e1) : Valid(pdu, fc);
            case 8:
                return Diagnostics(pdu);
            case 15:
                return WriteMultipleCoils(pdu);
            case 16:
                return WriteMultipleRegisters(pdu);
            case 20:
                return ReadFileRecord(pdu);
            case 21:
                return WriteFileRecord(pdu);
            case 22:
                return MaskWriteRegister(pdu);
            case 23:
                return ReadWriteMultipleRegisters(pdu);
            case 24:
                return ReadFifoQueue(pdu);
            case ModbusFunctions.EncapsulatedInterface:
                return EncapsulatedInterface(pdu);
            case 0:
            case >= 128:
                return new ModbusRequest
                {
                    Pdu = pdu,
                    FunctionCode = fc,
                    Status = RequestStatus.OutOfSpec,
                    Violation = SpecViolation.IllegalFunctionCode,
                };
            default:
                // User-defined, vendor (e.g. 90 Schneider UMAS) and unassigned public codes: their
                // structure is not ours to know. They are well framed by the MBAP length; the policy
                // decides on the function number alone.
                return Valid(pdu, fc);
        }
    }

    /// <summary>
    /// Decodes a request PDU whose extent an outer frame already fixed (the MBAP length of Modbus TCP):
    /// a PDU whose structure disagrees with that extent is <see cref="RequestStatus.OutOfSpec"/>
    /// (<see cref="SpecViolation.PduLengthInvalid"/>, answered 03 as a real PLC and libmodbus answer it)
    /// rather than malformed, because the stream stays in step: the next frame starts where the outer
    /// length says. Where the PDU's structure is what frames it (RTU), use <see cref="ParseRequest"/>.
    /// </summary>
    public static ModbusRequest ParseFramedRequest(ReadOnlySpan<byte> pdu)
    {
        var request = ParseRequest(pdu);
        return request.Status == RequestStatus.Malformed && !pdu.IsEmpty
            ? request with { Status = RequestStatus.OutOfSpec, Violation = SpecViolation.PduLengthInvalid }
            : request;
    }

    /// <summary>
    /// FC 1, 2, 3, 4 (6.1–6.4)
    /// <code>
    /// | fc | start (2) | quantity (2) |
    /// </code>
    /// </summary>
    private static ModbusRequest ReadBlock(ReadOnlySpan<byte> pdu, ModbusTable table, int maxQuantity)
    {
        byte fc = pdu[0];
        if (FixedLength(pdu, 5) is { } error)
        {
            return Malformed(pdu, fc, error);
        }
        ushort start = BinaryPrimitives.ReadUInt16BigEndian(pdu[1..]);
        ushort quantity = BinaryPrimitives.ReadUInt16BigEndian(pdu[3..]);
        var span = new AddressSpan(table, start, quantity);
        return WithLimits(new ModbusRequest { Pdu = pdu, FunctionCode = fc, Function = ModbusFunctions.Classify(fc, 0), ReadSpan = span }, span, maxQuantity);
    }

    /// <summary>FC 5 (6.5): <c>| 05 | address (2) | 0xFF00 or 0x0000 |</c></summary>
    private static ModbusRequest WriteSingleCoil(ReadOnlySpan<byte> pdu)
    {
        if (FixedLength(pdu, 5) is { } error)
        {
            return Malformed(pdu, 5, error);
        }
        ushort value = BinaryPrimitives.ReadUInt16BigEndian(pdu[3..]);
        var request = new ModbusRequest
        {
            Pdu = pdu,
            FunctionCode = 5,
            Function = ModbusFunction.WriteSingleCoil,
            WriteSpan = new AddressSpan(ModbusTable.Coils, BinaryPrimitives.ReadUInt16BigEndian(pdu[1..]), 1),
        };
        return value is ModbusLimits.CoilOn or ModbusLimits.CoilOff
            ? request with { Status = RequestStatus.Valid }
            : request with { Status = RequestStatus.OutOfSpec, Violation = SpecViolation.CoilValueInvalid };
    }

    /// <summary>FC 6 (6.6): <c>| 06 | address (2) | value (2) |</c></summary>
    private static ModbusRequest WriteSingleRegister(ReadOnlySpan<byte> pdu)
    {
        if (FixedLength(pdu, 5) is { } error)
        {
            return Malformed(pdu, 6, error);
        }
        return new ModbusRequest
        {
            Pdu = pdu,
            Status = RequestStatus.Valid,
            FunctionCode = 6,
            Function = ModbusFunction.WriteSingleRegister,
            WriteSpan = new AddressSpan(ModbusTable.HoldingRegisters, BinaryPrimitives.ReadUInt16BigEndian(pdu[1..]), 1),
            RegisterValues = pdu.Slice(3, 2),
        };
    }

    /// <summary>
    /// FC 8 (6.8): <c>| 08 | sub-function (2) | data (2·N) |</c>. Every standard sub-function but 00
    /// carries exactly one data word (6.8.1: 01-04, 0A-12, 14), so anything after it does not belong
    /// to the PDU (trailing bytes; over TCP a wrong-size PDU, answered 03), as an RTU framer delimits
    /// it (8 bytes). Sent without its data word it is still taken, as RtuFramer takes it at silence.
    /// </summary>
    private static ModbusRequest Diagnostics(ReadOnlySpan<byte> pdu)
    {
        if (pdu.Length < 3)
        {
            return Malformed(pdu, 8, FramingError.PduTruncated);
        }
        if (pdu.Length > 5 && BinaryPrimitives.ReadUInt16BigEndian(pdu[1..]) is 1 or 2 or 3 or 4 or (>= 10 and <= 18) or 20)
        {
            return Malformed(pdu, 8, FramingError.TrailingBytes);
        }
        var request = new ModbusRequest
        {
            Pdu = pdu,
            FunctionCode = 8,
            Function = ModbusFunction.Diagnostics,
            SubFunction = BinaryPrimitives.ReadUInt16BigEndian(pdu[1..]),
        };
        return (pdu.Length - 3) % 2 == 0
            ? request with { Status = RequestStatus.Valid }
            : request with { Status = RequestStatus.OutOfSpec, Violation = SpecViolation.DiagnosticsDataOdd };
    }

    /// <summary>FC 15 (6.11): <c>| 0F | start (2) | quantity (2) | byte count N | N bytes |</c>, N = ceil(quantity / 8).</summary>
    private static ModbusRequest WriteMultipleCoils(ReadOnlySpan<byte> pdu)
    {
        if (CountedLength(pdu, 5) is { } error)
        {
            return Malformed(pdu, 15, error);
        }
        ushort start = BinaryPrimitives.ReadUInt16BigEndian(pdu[1..]);
        ushort quantity = BinaryPrimitives.ReadUInt16BigEndian(pdu[3..]);
        var span = new AddressSpan(ModbusTable.Coils, start, quantity);
        var request = WithLimits(new ModbusRequest { Pdu = pdu, FunctionCode = 15, Function = ModbusFunction.WriteMultipleCoils, WriteSpan = span }, span, ModbusLimits.MaxWriteBits);
        if (request.Status == RequestStatus.Valid && pdu[5] != (quantity + 7) / 8)
        {
            return request with { Status = RequestStatus.OutOfSpec, Violation = SpecViolation.ByteCountNotQuantity };
        }
        return request;
    }

    /// <summary>FC 16 (6.12): <c>| 10 | start (2) | quantity (2) | byte count 2·quantity | values |</c></summary>
    private static ModbusRequest WriteMultipleRegisters(ReadOnlySpan<byte> pdu)
    {
        if (CountedLength(pdu, 5) is { } error)
        {
            return Malformed(pdu, 16, error);
        }
        ushort start = BinaryPrimitives.ReadUInt16BigEndian(pdu[1..]);
        ushort quantity = BinaryPrimitives.ReadUInt16BigEndian(pdu[3..]);
        var span = new AddressSpan(ModbusTable.HoldingRegisters, start, quantity);
        var request = WithLimits(new ModbusRequest
        {
            Pdu = pdu,
            FunctionCode = 16,
            Function = ModbusFunction.WriteMultipleRegisters,
            WriteSpan = span,
            RegisterValues = pdu[6..],
        }, span, ModbusLimits.MaxWriteRegisters);
        if (request.Status == RequestStatus.Valid && pdu[5] != quantity * 2)
        {
            return request with { Status = RequestStatus.OutOfSpec, Violation = SpecViolation.ByteCountNotQuantity };
        }
        return request;
    }

    /// <summary>
    /// FC 20 (6.14): <c>| 14 | byte count (0x07..0xF5) | sub-requests |</c>, each sub-request
    /// <c>| reference type 6 | file (2) | record (2, ≤ 0x270F) | record length (2) |</c>.
    /// </summary>
    private static ModbusRequest ReadFileRecord(ReadOnlySpan<byte> pdu)
    {
        if (CountedLength(pdu, 1) is { } error)
        {
            return Malformed(pdu, 20, error);
        }
        var request = new ModbusRequest { Pdu = pdu, FunctionCode = 20, Function = ModbusFunction.ReadFileRecord };
        int count = pdu[1];
        if (count < 0x07 || count > 0xF5 || count % 7 != 0)
        {
            return request with { Status = RequestStatus.OutOfSpec, Violation = SpecViolation.FileRecordInvalid };
        }
        for (var sub = pdu[2..]; !sub.IsEmpty; sub = sub[7..])
        {
            if (sub[0] != ModbusLimits.FileRecordReferenceType || BinaryPrimitives.ReadUInt16BigEndian(sub[3..]) > ModbusLimits.MaxFileRecordNumber)
            {
                return request with { Status = RequestStatus.OutOfSpec, Violation = SpecViolation.FileRecordInvalid };
            }
        }
        return request with { Status = RequestStatus.Valid };
    }

    /// <summary>
    /// FC 21 (6.15): <c>| 15 | byte count (0x09..0xFB) | sub-requests |</c>, each sub-request
    /// <c>| reference type 6 | file (2) | record (2) | record length N (2) | N registers |</c>.
    /// </summary>
    private static ModbusRequest WriteFileRecord(ReadOnlySpan<byte> pdu)
    {
        if (CountedLength(pdu, 1) is { } error)
        {
            return Malformed(pdu, 21, error);
        }
        var request = new ModbusRequest { Pdu = pdu, FunctionCode = 21, Function = ModbusFunction.WriteFileRecord };
        bool valid = pdu[1] is >= 0x09 and <= 0xFB;
        var sub = pdu[2..];
        while (!sub.IsEmpty)
        {
            if (sub.Length < 7)
            {
                return Malformed(pdu, 21, FramingError.ByteCountMismatch);
            }
            int dataLength = BinaryPrimitives.ReadUInt16BigEndian(sub[5..]) * 2;
            if (sub.Length < 7 + dataLength)
            {
                return Malformed(pdu, 21, FramingError.ByteCountMismatch);
            }
            valid &= sub[0] == ModbusLimits.FileRecordReferenceType && BinaryPrimitives.ReadUInt16BigEndian(sub[3..]) <= ModbusLimits.MaxFileRecordNumber;
            sub = sub[(7 + dataLength)..];
        }
        return valid
            ? request with { Status = RequestStatus.Valid }
            : request with { Status = RequestStatus.OutOfSpec, Violation = SpecViolation.FileRecordInvalid };
    }

    /// <summary>FC 22 (6.16): <c>| 16 | address (2) | AND mask (2) | OR mask (2) |</c></summary>
    private static ModbusRequest MaskWriteRegister(ReadOnlySpan<byte> pdu)
    {
        if (FixedLength(pdu, 7) is { } error)
        {
            return Malformed(pdu, 22, error);
        }
        return new ModbusRequest
        {
            Pdu = pdu,
            Status = RequestStatus.Valid,
            FunctionCode = 22,
            Function = ModbusFunction.MaskWriteRegister,
            WriteSpan = new AddressSpan(ModbusTable.HoldingRegisters, BinaryPrimitives.ReadUInt16BigEndian(pdu[1..]), 1),
        };
    }

    /// <summary>
    /// FC 23 (6.17):
    /// <code>
    /// | 17 | read start (2) | read qty (2, 1..125) | write start (2) | write qty (2, 1..121) | byte count 2·write qty | values |
    /// </code>
    /// </summary>
    private static ModbusRequest ReadWriteMultipleRegisters(ReadOnlySpan<byte> pdu)
    {
        if (CountedLength(pdu, 9) is { } error)
        {
            return Malformed(pdu, 23, error);
        }
        var read = new AddressSpan(ModbusTable.HoldingRegisters, BinaryPrimitives.ReadUInt16BigEndian(pdu[1..]), BinaryPrimitives.ReadUInt16BigEndian(pdu[3..]));
        var write = new AddressSpan(ModbusTable.HoldingRegisters, BinaryPrimitives.ReadUInt16BigEndian(pdu[5..]), BinaryPrimitives.ReadUInt16BigEndian(pdu[7..]));
        var request = new ModbusRequest
        {
            Pdu = pdu,
            FunctionCode = 23,
            Function = ModbusFunction.ReadWriteMultipleRegisters,
            ReadSpan = read,
            WriteSpan = write,
            RegisterValues = pdu[10..],
        };
        request = WithLimits(request, read, ModbusLimits.MaxReadWriteReadRegisters);
        if (request.Status == RequestStatus.Valid)
        {
            request = WithLimits(request, write, ModbusLimits.MaxReadWriteWriteRegisters);
        }
        if (request.Status == RequestStatus.Valid && pdu[9] != write.Count * 2)
        {
            return request with { Status = RequestStatus.OutOfSpec, Violation = SpecViolation.ByteCountNotQuantity };
        }
        return request;
    }

    /// <summary>
    /// FC 24 (6.18): <c>| 18 | FIFO pointer address (2) |</c>. The policy sees the pointer
    /// register; the queue behind it is the device's to define.
    /// </summary>
    private static ModbusRequest ReadFifoQueue(ReadOnlySpan<byte> pdu)
    {
        if (FixedLength(pdu, 3) is { } error)
        {
            return Malformed(pdu, 24, error);
        }
        return new ModbusRequest
        {
            Pdu = pdu,
            Status = RequestStatus.Valid,
            FunctionCode = 24,
            Function = ModbusFunction.ReadFifoQueue,
            ReadSpan = new AddressSpan(ModbusTable.HoldingRegisters, BinaryPrimitives.ReadUInt16BigEndian(pdu[1..]), 1),
        };
    }

    /// <summary>
    /// FC 43 (6.19–6.21): <c>| 2B | MEI type | … |</c>; MEI 14 is
    /// <c>| 2B | 0E | read code (1..4) | object id |</c>, MEI 13 carries CANopen data of its own.
    /// </summary>
    private static ModbusRequest EncapsulatedInterface(ReadOnlySpan<byte> pdu)
    {
        if (pdu.Length < 2)
        {
            return Malformed(pdu, ModbusFunctions.EncapsulatedInterface, FramingError.PduTruncated);
        }
        byte mei = pdu[1];
        var request = new ModbusRequest
        {
            Pdu = pdu,
            FunctionCode = ModbusFunctions.EncapsulatedInterface,
            MeiType = mei,
            Function = ModbusFunctions.Classify(ModbusFunctions.EncapsulatedInterface, mei),
        };
        if (mei != ModbusFunctions.MeiDeviceIdentification)
        {
            return request with { Status = RequestStatus.Valid };
        }
        if (FixedLength(pdu, 4) is { } error)
        {
            return Malformed(pdu, ModbusFunctions.EncapsulatedInterface, error) with { MeiType = mei, Function = request.Function };
        }
        return pdu[2] is >= 1 and <= 4
            ? request with { Status = RequestStatus.Valid }
            : request with { Status = RequestStatus.OutOfSpec, Violation = SpecViolation.ReadDeviceIdCodeInvalid };
    }

    private static ModbusRequest Valid(ReadOnlySpan<byte> pdu, byte fc) => new()
    {
        Pdu = pdu,
        Status = RequestStatus.Valid,
        FunctionCode = fc,
        Function = ModbusFunctions.Classify(fc, 0),
    };

    private static ModbusRequest Malformed(ReadOnlySpan<byte> pdu, byte fc, FramingError error) => new()
    {
        Pdu = pdu,
        Status = RequestStatus.Malformed,
        Error = error,
        FunctionCode = fc,
        Function = ModbusFunctions.Classify(fc, 0),
    };

    private static ModbusRequest WithLimits(ModbusRequest request, AddressSpan span, int maxQuantity)
    {
        if (span.Count == 0 || span.Count > maxQuantity)
        {
            return request with { Status = RequestStatus.OutOfSpec, Violation = SpecViolation.QuantityOutOfRange };
        }
        if (span.Last > ushort.MaxValue)
        {
            return request with { Status = RequestStatus.OutOfSpec, Violation = SpecViolation.AddressOverflow };
        }
        return request with { Status = RequestStatus.Valid };
    }

    /// <summary>A PDU of exactly <paramref name="length"/> bytes, or the framing error it has.</summary>
    private static FramingError? FixedLength(ReadOnlySpan<byte> pdu, int length) =>
        pdu.Length < length ? FramingError.PduTruncated
        : pdu.Length > length ? FramingError.TrailingBytes
        : null;

    /// <summary>
    /// A PDU whose byte at <paramref name="countOffset"/> counts the bytes after it, to the end.
    /// </summary>
    private static FramingError? CountedLength(ReadOnlySpan<byte> pdu, int countOffset)
    {
        if (pdu.Length <= countOffset)
        {
            return FramingError.PduTruncated;
        }
        int expected = countOffset + 1 + pdu[countOffset];
        return pdu.Length < expected ? FramingError.PduTruncated
            : pdu.Length > expected ? FramingError.TrailingBytes
            : null;
    }
}
