using System.Buffers.Binary;
using System.Diagnostics;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Simulators;

/// <summary>The server side of every function, Modbus Application Protocol Specification V1.1b3, section 6.</summary>
public sealed partial class PlcSimulator
{
    // FC 8 counters (6.8), cleared by sub-function 0x0A; indexes are sub-function - 0x0B.
    private const int DiagBusMessage = 0;
    private const int DiagBusCommError = 1;
    private const int DiagBusException = 2;
    private const int DiagServerMessage = 3;
    private const int DiagServerNoResponse = 4;
    private readonly long[] _diagnostics = new long[8];
    private long _commEventCount;

    /// <summary>The device identification objects (6.21): basic 0..2, regular 3..6.</summary>
    private static ReadOnlySpan<byte> DeviceObject(int id) => id switch
    {
        0 => "EdgeShield"u8,
        1 => "ES-SIM-PLC"u8,
        2 => "0.1.0"u8,
        3 => "https://github.com/edgeshield"u8,
        4 => "EdgeShield PLC Simulator"u8,
        5 => "edgeshield-sim"u8,
        6 => "plc"u8,
        _ => default,
    };

    private const int LastRegularObject = 6;
    private const int LastBasicObject = 2;

    /// <summary>Writes the response ADU for one decoded request into <paramref name="adu"/>.</summary>
    /// <returns>Bytes written; 0 when no response is due.</returns>
    private int Execute(ushort tid, byte unitId, in ModbusRequest request, Span<byte> adu)
    {
        Interlocked.Increment(ref _diagnostics[DiagBusMessage]);
        byte fc = request.FunctionCode;
        if (_served is not null && !_served[unitId])
        {
            if (_options.UnitNotServed == UnitNotServedBehavior.Ignore)
            {
                return 0;
            }
            return Exception(tid, unitId, fc, ModbusExceptionCode.GatewayTargetFailedToRespond, adu);
        }
        Interlocked.Increment(ref _diagnostics[DiagServerMessage]);
        if (request.Status == RequestStatus.OutOfSpec)
        {
            return Exception(tid, unitId, fc, request.SpecExceptionCode, adu);
        }
        var pdu = adu[ModbusLimits.MbapHeaderLength..];
        var unit = Unit(unitId);
        int length;
        lock (unit.Sync)
        {
            length = request.Function switch
            {
                ModbusFunction.ReadCoils or ModbusFunction.ReadDiscreteInputs => ReadBits(unit, request, pdu),
                ModbusFunction.ReadHoldingRegisters or ModbusFunction.ReadInputRegisters => ReadRegisters(unit, request, pdu),
                ModbusFunction.WriteSingleCoil => WriteSingleCoil(unit, request, pdu),
                ModbusFunction.WriteSingleRegister => WriteSingleRegister(unit, request, pdu),
                ModbusFunction.ReadExceptionStatus => ReadExceptionStatus(unit, pdu),
                ModbusFunction.Diagnostics => Diagnostics(request, pdu),
                ModbusFunction.GetCommEventCounter => GetCommEventCounter(pdu),
                ModbusFunction.GetCommEventLog => GetCommEventLog(pdu),
                ModbusFunction.WriteMultipleCoils => WriteMultipleCoils(unit, request, pdu),
                ModbusFunction.WriteMultipleRegisters => WriteMultipleRegisters(unit, request, pdu),
                ModbusFunction.ReportServerId => ReportServerId(pdu),
                ModbusFunction.ReadFileRecord => ReadFileRecord(unit, request, pdu),
                ModbusFunction.WriteFileRecord => WriteFileRecord(unit, request, pdu),
                ModbusFunction.MaskWriteRegister => MaskWriteRegister(unit, request, pdu),
                ModbusFunction.ReadWriteMultipleRegisters => ReadWriteMultipleRegisters(unit, request, pdu),
                ModbusFunction.ReadFifoQueue => ReadFifoQueue(unit, request, pdu),
                ModbusFunction.ReadDeviceIdentification => ReadDeviceIdentification(request, pdu),
                // 43/13 CANopen, user-defined codes (65-72, 100-110, 90 UMAS…) and unassigned codes.
                _ => -ModbusExceptionCode.IllegalFunction,
            };
        }
        if (length == 0)
        {
            Interlocked.Increment(ref _diagnostics[DiagServerNoResponse]);
            return 0;
        }
        if (length < 0)
        {
            return Exception(tid, unitId, fc, (byte)-length, adu);
        }
        Interlocked.Increment(ref _commEventCount);
        MbapFramer.WriteHeader(adu, tid, unitId, length);
        return ModbusLimits.MbapHeaderLength + length;
    }

    private int Exception(ushort tid, byte unitId, byte fc, byte code, Span<byte> adu)
    {
        Interlocked.Increment(ref _diagnostics[DiagBusException]);
        return MbapFramer.WriteException(adu, tid, unitId, fc, code);
    }

    private bool InTable(AddressSpan span) => span.Start + span.Count <= _options.TableSize;

    /// <summary>FC 1, 2: <c>| fc | N = ceil(qty/8) | bits, LSB first |</c></summary>
    private int ReadBits(PlcUnit unit, in ModbusRequest request, Span<byte> pdu)
    {
        var span = request.ReadSpan;
        if (!InTable(span))
        {
            return -ModbusExceptionCode.IllegalDataAddress;
        }
        int bytes = (span.Count + 7) / 8;
        pdu[0] = request.FunctionCode;
        pdu[1] = (byte)bytes;
        var data = pdu.Slice(2, bytes);
        data.Clear();
        bool coils = span.Table == ModbusTable.Coils;
        for (int i = 0; i < span.Count; i++)
        {
            int address = span.Start + i;
            if (coils ? unit.GetCoil(address) : unit.GetDiscreteInput(address))
            {
                data[i >> 3] |= (byte)(1 << (i & 7));
            }
        }
        return 2 + bytes;
    }

    /// <summary>FC 3, 4: <c>| fc | N = 2·qty | values |</c></summary>
    private int ReadRegisters(PlcUnit unit, in ModbusRequest request, Span<byte> pdu)
    {
        var span = request.ReadSpan;
        if (!InTable(span))
        {
            return -ModbusExceptionCode.IllegalDataAddress;
        }
        pdu[0] = request.FunctionCode;
        pdu[1] = (byte)(span.Count * 2);
        if (span.Table == ModbusTable.HoldingRegisters)
        {
            WriteHolding(unit, span, pdu[2..]);
        }
        else
        {
            for (int i = 0; i < span.Count; i++)
            {
                BinaryPrimitives.WriteUInt16BigEndian(pdu[(2 + (i * 2))..], InputValue(unit, span.Start + i));
            }
        }
        return 2 + (span.Count * 2);
    }

    private static void WriteHolding(PlcUnit unit, AddressSpan span, Span<byte> values)
    {
        for (int i = 0; i < span.Count; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(values[(i * 2)..], unit.GetHolding(span.Start + i));
        }
    }

    private ushort InputValue(PlcUnit unit, int address)
    {
        int offset = address - _options.SineStart;
        if (offset < 0 || offset >= _options.SineCount)
        {
            return unit.GetInput(address);
        }
        double seconds = Stopwatch.GetElapsedTime(_startTimestamp).TotalSeconds;
        double phase = (2 * Math.PI * seconds / _options.SinePeriodSeconds) + (offset * 0.5);
        return (ushort)(1000 + (1000 * Math.Sin(phase)));
    }

    /// <summary>FC 5: echo of <c>| 05 | address | FF00 or 0000 |</c></summary>
    private int WriteSingleCoil(PlcUnit unit, in ModbusRequest request, Span<byte> pdu)
    {
        if (!InTable(request.WriteSpan))
        {
            return -ModbusExceptionCode.IllegalDataAddress;
        }
        unit.SetCoil(request.WriteSpan.Start, BinaryPrimitives.ReadUInt16BigEndian(request.Pdu[3..]) == ModbusLimits.CoilOn);
        request.Pdu.CopyTo(pdu);
        return request.Pdu.Length;
    }

    /// <summary>FC 6: echo of <c>| 06 | address | value |</c></summary>
    private int WriteSingleRegister(PlcUnit unit, in ModbusRequest request, Span<byte> pdu)
    {
        if (!InTable(request.WriteSpan))
        {
            return -ModbusExceptionCode.IllegalDataAddress;
        }
        unit.SetHolding(request.WriteSpan.Start, request.RegisterValue(0));
        request.Pdu.CopyTo(pdu);
        return request.Pdu.Length;
    }

    /// <summary>FC 7: <c>| 07 | coils 0..7 |</c> — this device's eight exception status outputs are its first eight coils.</summary>
    private static int ReadExceptionStatus(PlcUnit unit, Span<byte> pdu)
    {
        int status = 0;
        for (int i = 0; i < 8; i++)
        {
            if (unit.GetCoil(i))
            {
                status |= 1 << i;
            }
        }
        pdu[0] = 7;
        pdu[1] = (byte)status;
        return 2;
    }

    /// <summary>
    /// FC 8 (6.8): <c>| 08 | sub-function (2) | data |</c>. 0x00 echoes any data; 0x01, 0x03,
    /// 0x0A, 0x14 echo; 0x02 and 0x0B..0x12 return one word in place of the request's 0000;
    /// 0x04 (force listen only) gets no response, as the spec demands; the simulator stays on line
    /// so that an attack that got through is visible in <see cref="RequestsReceived"/> rather than
    /// silencing every later test.
    /// </summary>
    private int Diagnostics(in ModbusRequest request, Span<byte> pdu)
    {
        ushort sub = request.SubFunction;
        bool oneWord = request.Pdu.Length == 5;
        ushort word = oneWord ? BinaryPrimitives.ReadUInt16BigEndian(request.Pdu[3..]) : (ushort)0;
        switch (sub)
        {
            case 0x00:
                break;
            case 0x01:
                if (!oneWord || word is not (0x0000 or 0xFF00))
                {
                    return -ModbusExceptionCode.IllegalDataValue;
                }
                ClearDiagnostics();
                break;
            case 0x04:
                return 0;
            case 0x03:
            case 0x0A:
            case 0x14:
                if (!oneWord)
                {
                    return -ModbusExceptionCode.IllegalDataValue;
                }
                if (sub == 0x0A)
                {
                    ClearDiagnostics();
                }
                break;
            case 0x02:
            case >= 0x0B and <= 0x12:
                if (!oneWord || word != 0)
                {
                    return -ModbusExceptionCode.IllegalDataValue;
                }
                request.Pdu.CopyTo(pdu);
                ushort value = sub == 0x02 ? (ushort)0 : (ushort)Interlocked.Read(ref _diagnostics[sub - 0x0B]);
                BinaryPrimitives.WriteUInt16BigEndian(pdu[3..], value);
                return 5;
            default:
                return -ModbusExceptionCode.IllegalFunction;
        }
        request.Pdu.CopyTo(pdu);
        return request.Pdu.Length;
    }

    private void ClearDiagnostics()
    {
        for (int i = 0; i < _diagnostics.Length; i++)
        {
            Interlocked.Exchange(ref _diagnostics[i], 0);
        }
        Interlocked.Exchange(ref _commEventCount, 0);
    }

    /// <summary>FC 11: <c>| 0B | status 0000 (not busy) | event count |</c></summary>
    private int GetCommEventCounter(Span<byte> pdu)
    {
        pdu[0] = 11;
        BinaryPrimitives.WriteUInt16BigEndian(pdu[1..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(pdu[3..], (ushort)Interlocked.Read(ref _commEventCount));
        return 5;
    }

    /// <summary>FC 12: <c>| 0C | 06 | status | event count | message count |</c> — no events are logged.</summary>
    private int GetCommEventLog(Span<byte> pdu)
    {
        pdu[0] = 12;
        pdu[1] = 6;
        BinaryPrimitives.WriteUInt16BigEndian(pdu[2..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(pdu[4..], (ushort)Interlocked.Read(ref _commEventCount));
        BinaryPrimitives.WriteUInt16BigEndian(pdu[6..], (ushort)Interlocked.Read(ref _diagnostics[DiagBusMessage]));
        return 8;
    }

    /// <summary>FC 15: <c>| 0F | start | qty |</c></summary>
    private int WriteMultipleCoils(PlcUnit unit, in ModbusRequest request, Span<byte> pdu)
    {
        var span = request.WriteSpan;
        if (!InTable(span))
        {
            return -ModbusExceptionCode.IllegalDataAddress;
        }
        var bits = request.Pdu[6..];
        for (int i = 0; i < span.Count; i++)
        {
            unit.SetCoil(span.Start + i, (bits[i >> 3] & (1 << (i & 7))) != 0);
        }
        request.Pdu[..5].CopyTo(pdu);
        return 5;
    }

    /// <summary>FC 16: <c>| 10 | start | qty |</c></summary>
    private int WriteMultipleRegisters(PlcUnit unit, in ModbusRequest request, Span<byte> pdu)
    {
        var span = request.WriteSpan;
        if (!InTable(span))
        {
            return -ModbusExceptionCode.IllegalDataAddress;
        }
        for (int i = 0; i < span.Count; i++)
        {
            unit.SetHolding(span.Start + i, request.RegisterValue(i));
        }
        request.Pdu[..5].CopyTo(pdu);
        return 5;
    }

    /// <summary>FC 17: <c>| 11 | byte count | "EdgeShield-Sim" | run indicator FF |</c></summary>
    private static int ReportServerId(Span<byte> pdu)
    {
        var id = "EdgeShield-Sim"u8;
        pdu[0] = 17;
        pdu[1] = (byte)(id.Length + 1);
        id.CopyTo(pdu[2..]);
        pdu[2 + id.Length] = 0xFF;
        return 3 + id.Length;
    }

    /// <summary>
    /// FC 20 (6.14): response <c>| 14 | byte count | sub-responses |</c>, each
    /// <c>| length 1 + 2·N | reference type 6 | N words |</c>.
    /// </summary>
    private int ReadFileRecord(PlcUnit unit, in ModbusRequest request, Span<byte> pdu)
    {
        var subs = request.Pdu[2..];
        int total = 0;
        for (var sub = subs; !sub.IsEmpty; sub = sub[7..])
        {
            int words = BinaryPrimitives.ReadUInt16BigEndian(sub[5..]);
            if (FileStart(sub) < 0)
            {
                return -ModbusExceptionCode.IllegalDataAddress;
            }
            total += 2 + (words * 2);
        }
        if (total > 0xF5)
        {
            return -ModbusExceptionCode.IllegalDataValue;
        }
        pdu[0] = 20;
        pdu[1] = (byte)total;
        int at = 2;
        for (var sub = subs; !sub.IsEmpty; sub = sub[7..])
        {
            int words = BinaryPrimitives.ReadUInt16BigEndian(sub[5..]);
            int start = FileStart(sub);
            pdu[at] = (byte)(1 + (words * 2));
            pdu[at + 1] = ModbusLimits.FileRecordReferenceType;
            at += 2;
            for (int i = 0; i < words; i++, at += 2)
            {
                BinaryPrimitives.WriteUInt16BigEndian(pdu[at..], unit.GetFileWord(start + i));
            }
        }
        return at;
    }

    /// <summary>FC 21 (6.15): writes every sub-request, then echoes the request.</summary>
    private int WriteFileRecord(PlcUnit unit, in ModbusRequest request, Span<byte> pdu)
    {
        for (var sub = request.Pdu[2..]; !sub.IsEmpty; sub = sub[(7 + (BinaryPrimitives.ReadUInt16BigEndian(sub[5..]) * 2))..])
        {
            if (FileStart(sub) < 0)
            {
                return -ModbusExceptionCode.IllegalDataAddress;
            }
        }
        for (var sub = request.Pdu[2..]; !sub.IsEmpty;)
        {
            int words = BinaryPrimitives.ReadUInt16BigEndian(sub[5..]);
            int start = FileStart(sub);
            for (int i = 0; i < words; i++)
            {
                unit.SetFileWord(start + i, BinaryPrimitives.ReadUInt16BigEndian(sub[(7 + (i * 2))..]));
            }
            sub = sub[(7 + (words * 2))..];
        }
        request.Pdu.CopyTo(pdu);
        return request.Pdu.Length;
    }

    /// <summary>Index of a sub-request's first word in the file store, or -1 when file or records do not exist.</summary>
    private int FileStart(ReadOnlySpan<byte> sub)
    {
        int file = BinaryPrimitives.ReadUInt16BigEndian(sub[1..]);
        int record = BinaryPrimitives.ReadUInt16BigEndian(sub[3..]);
        int words = BinaryPrimitives.ReadUInt16BigEndian(sub[5..]);
        if (file < 1 || file > _options.FileCount || record + words > _options.RecordsPerFile)
        {
            return -1;
        }
        return ((file - 1) * _options.RecordsPerFile) + record;
    }

    /// <summary>FC 22: result = (current AND and) OR (or AND NOT and); echo.</summary>
    private int MaskWriteRegister(PlcUnit unit, in ModbusRequest request, Span<byte> pdu)
    {
        if (!InTable(request.WriteSpan))
        {
            return -ModbusExceptionCode.IllegalDataAddress;
        }
        int address = request.WriteSpan.Start;
        ushort and = BinaryPrimitives.ReadUInt16BigEndian(request.Pdu[3..]);
        ushort or = BinaryPrimitives.ReadUInt16BigEndian(request.Pdu[5..]);
        unit.SetHolding(address, (ushort)((unit.GetHolding(address) & and) | (or & ~and)));
        request.Pdu.CopyTo(pdu);
        return request.Pdu.Length;
    }

    /// <summary>FC 23: the write happens first, then the read (6.17).</summary>
    private int ReadWriteMultipleRegisters(PlcUnit unit, in ModbusRequest request, Span<byte> pdu)
    {
        if (!InTable(request.ReadSpan) || !InTable(request.WriteSpan))
        {
            return -ModbusExceptionCode.IllegalDataAddress;
        }
        var write = request.WriteSpan;
        for (int i = 0; i < write.Count; i++)
        {
            unit.SetHolding(write.Start + i, request.RegisterValue(i));
        }
        pdu[0] = 23;
        pdu[1] = (byte)(request.ReadSpan.Count * 2);
        WriteHolding(unit, request.ReadSpan, pdu[2..]);
        return 2 + (request.ReadSpan.Count * 2);
    }

    /// <summary>FC 24: <c>| 18 | byte count (2) | FIFO count (2) | values |</c>; only the configured pointer holds a FIFO.</summary>
    private int ReadFifoQueue(PlcUnit unit, in ModbusRequest request, Span<byte> pdu)
    {
        if (request.ReadSpan.Start != _options.FifoPointerAddress)
        {
            return -ModbusExceptionCode.IllegalDataAddress;
        }
        int count = unit.FifoCount;
        pdu[0] = 24;
        BinaryPrimitives.WriteUInt16BigEndian(pdu[1..], (ushort)(2 + (count * 2)));
        BinaryPrimitives.WriteUInt16BigEndian(pdu[3..], (ushort)count);
        for (int i = 0; i < count; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(pdu[(5 + (i * 2))..], unit.Fifo[i]);
        }
        return 5 + (count * 2);
    }

    /// <summary>
    /// FC 43/14 (6.21): <c>| 2B | 0E | read code | conformity 82 | more 00 | next 00 | count | objects |</c>.
    /// Conformity 0x82: basic and regular objects, stream and individual access. Read code 3
    /// (extended) returns the regular objects, since there are no extended ones.
    /// </summary>
    private static int ReadDeviceIdentification(in ModbusRequest request, Span<byte> pdu)
    {
        byte code = request.Pdu[2];
        int objectId = request.Pdu[3];
        int first;
        int last;
        if (code == 4)
        {
            if (objectId > LastRegularObject)
            {
                return -ModbusExceptionCode.IllegalDataAddress;
            }
            first = last = objectId;
        }
        else
        {
            last = code == 1 ? LastBasicObject : LastRegularObject;
            // A stream read from an object id that does not exist restarts at object 0.
            first = objectId <= last ? objectId : 0;
        }
        pdu[0] = ModbusFunctions.EncapsulatedInterface;
        pdu[1] = ModbusFunctions.MeiDeviceIdentification;
        pdu[2] = code;
        pdu[3] = 0x82;
        pdu[4] = 0;
        pdu[5] = 0;
        pdu[6] = (byte)(last - first + 1);
        int at = 7;
        for (int id = first; id <= last; id++)
        {
            var value = DeviceObject(id);
            pdu[at] = (byte)id;
            pdu[at + 1] = (byte)value.Length;
            value.CopyTo(pdu[(at + 2)..]);
            at += 2 + value.Length;
        }
        return at;
    }
}

public sealed partial class PlcSimulator
{
    /// <summary>The tables and functions with no TCP listener, for the RTU simulator.</summary>
    internal static PlcSimulator CreateEngine(PlcOptions options) => new(null, options);

    /// <summary>Executes one request for <paramref name="unitId"/>; writes the MBAP response into <paramref name="adu"/>.</summary>
    /// <returns>Bytes written; 0 when no response is due.</returns>
    internal int ExecuteRequest(byte unitId, in ModbusRequest request, Span<byte> adu)
    {
        Interlocked.Increment(ref _requestsByFunction[request.FunctionCode]);
        return Execute(0, unitId, request, adu);
    }
}
