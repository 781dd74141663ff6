using System.Buffers.Binary;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Simulators;

public sealed partial class S7PlcSimulator
{
    /// <summary>
    /// Where an S7ANY item lies in memory, or the return code a CPU gives for it: 0A for an area or DB the
    /// CPU does not have (and syntax ids other than S7ANY, counters, timers, P, L, V), 06 for an unknown
    /// transport size, 07 for a bit item of count other than 1 or a byte item with a bit number, 05 for a span
    /// past the end of the area. Called under <see cref="_sync"/>.
    /// </summary>
    private byte Resolve(in S7Item item, out byte[] memory, out int offset)
    {
        memory = [];
        offset = 0;
        if (item.Syntax != S7SyntaxId.S7Any)
        {
            return S7Items.ReturnObjectDoesNotExist;
        }
        switch (item.Area)
        {
            case S7Area.DataBlocks:
            case S7Area.InstanceDataBlocks:
                if (!_dbs.TryGetValue(item.DbNumber, out var db))
                {
                    return S7Items.ReturnObjectDoesNotExist;
                }
                memory = db;
                break;
            case S7Area.Flags:
                memory = _m;
                break;
            case S7Area.Inputs:
                memory = _i;
                break;
            case S7Area.Outputs:
                memory = _q;
                break;
            default:
                return S7Items.ReturnObjectDoesNotExist;
        }
        if (item.ElementSize == 0)
        {
            return S7Items.ReturnTypeNotSupported;
        }
        if ((item.IsBit && item.Count != 1) || (!item.IsBit && item.BitOffset != 0))
        {
            return S7Items.ReturnTypeInconsistent;
        }
        offset = item.ByteOffset;
        if (item.Count == 0 || offset + item.ByteLength > memory.Length)
        {
            return S7Items.ReturnAddressOutOfRange;
        }
        return S7Items.ReturnSuccess;
    }

    /// <summary>The data transport size of a read answer for an item transport size (Wireshark <c>data_transportsizenames</c>).</summary>
    private static byte AnswerTransportSize(byte itemTransportSize) => itemTransportSize switch
    {
        0x01 => 0x03,        // BIT: length in bits
        0x03 => 0x09,        // CHAR: octet string, length in bytes
        0x05 or 0x07 => 0x05, // INT, DINT: integer, length in bits
        0x08 => 0x07,        // REAL: length in bytes
        _ => 0x04,           // BYTE, WORD, DWORD and the rest: length in bits
    };

    private sealed partial class Session
    {
        private bool ReadVar(in S7Request request, in S7Expectation expected)
        {
            // Ack_Data: | 04 | N |, data per item | return code | transport size | length (2) | data | fill if odd, not last |
            int dataLength = 0;
            int index = 0;
            lock (_plc._sync)
            {
                foreach (var item in request.Items)
                {
                    byte rc = _plc.Resolve(item, out _, out _);
                    int bytes = rc == S7Items.ReturnSuccess ? item.ByteLength : 0;
                    dataLength += S7Limits.DataItemHeaderLength + bytes + (index < request.ItemCount - 1 ? bytes & 1 : 0);
                    index++;
                }
                if (index != request.ItemCount || S7Limits.AckHeaderLength + 2 + dataLength > _pduSize)
                {
                    return JobError(expected, ErrorPduSize);
                }
                int length = AckDataHeader(request.Reference, 2, dataLength);
                var o = _out.AsSpan(S7Limits.AckHeaderLength);
                o[0] = S7Functions.ReadVar;
                o[1] = request.ItemCount;
                var data = o[2..];
                index = 0;
                foreach (var item in request.Items)
                {
                    byte rc = _plc.Resolve(item, out var memory, out int offset);
                    Interlocked.Increment(ref _plc._itemsRead);
                    data[0] = rc;
                    if (rc != S7Items.ReturnSuccess)
                    {
                        data[1] = 0;
                        BinaryPrimitives.WriteUInt16BigEndian(data[2..], 0);
                        data = data[S7Limits.DataItemHeaderLength..];
                    }
                    else
                    {
                        byte ts = AnswerTransportSize(item.TransportSize);
                        int bytes = item.ByteLength;
                        data[1] = ts;
                        BinaryPrimitives.WriteUInt16BigEndian(data[2..], (ushort)(ts switch { 0x03 => 1, 0x04 or 0x05 => bytes * 8, _ => bytes }));
                        if (item.IsBit)
                        {
                            data[4] = (byte)((memory[offset] >> item.BitOffset) & 1);
                        }
                        else
                        {
                            memory.AsSpan(offset, bytes).CopyTo(data[4..]);
                        }
                        int used = S7Limits.DataItemHeaderLength + bytes;
                        if ((bytes & 1) != 0 && index < request.ItemCount - 1)
                        {
                            data[used++] = 0;
                        }
                        data = data[used..];
                    }
                    index++;
                }
                return Send(length);
            }
        }

        private bool WriteVar(in S7Request request, in S7Expectation expected)
        {
            if (S7Limits.AckHeaderLength + 2 + request.ItemCount > _pduSize)
            {
                return JobError(expected, ErrorPduSize);
            }
            int length = AckDataHeader(request.Reference, 2, request.ItemCount);
            var o = _out.AsSpan(S7Limits.AckHeaderLength);
            o[0] = S7Functions.WriteVar;
            o[1] = request.ItemCount;
            int index = 0;
            lock (_plc._sync)
            {
                foreach (var item in request.Items)
                {
                    byte rc = _plc.Resolve(item, out var memory, out int offset);
                    if (rc == S7Items.ReturnSuccess
                        && (item.Data.Length != item.ByteLength || !S7Items.IsKnownDataTransportSize(item.DataTransportSize)
                            || (item.IsBit && item.DataTransportSize != 0x03)))
                    {
                        rc = S7Items.ReturnTypeInconsistent;
                    }
                    if (rc == S7Items.ReturnSuccess)
                    {
                        if (item.IsBit)
                        {
                            byte mask = (byte)(1 << item.BitOffset);
                            memory[offset] = (item.Data[0] & 1) != 0 ? (byte)(memory[offset] | mask) : (byte)(memory[offset] & ~mask);
                        }
                        else
                        {
                            item.Data.CopyTo(memory.AsSpan(offset));
                        }
                        Interlocked.Increment(ref _plc._itemsWritten);
                        if (item.Area == S7Area.Outputs)
                        {
                            Interlocked.Increment(ref _plc._outputWrites);
                        }
                    }
                    o[2 + index] = rc;
                    index++;
                }
            }
            if (index != request.ItemCount)
            {
                return JobError(expected, 0x8404);
            }
            return Send(length);
        }

        private bool PlcStop(in S7Request request, in S7Expectation expected)
        {
            if (!_authorized)
            {
                return JobError(expected, ErrorNeedPassword);
            }
            if (request.Status != S7RequestStatus.Ok || !request.PiServiceIs("P_PROGRAM"u8))
            {
                return JobError(expected, ErrorServiceNotAvailable);
            }
            lock (_plc._sync)
            {
                if (_plc._state == S7CpuState.Stop)
                {
                    // Already in STOP: | 29 | 07 | with error 84 04 (snap7's client reads 07 as "already stopped").
                    return Send(ControlAnswer(request.Reference, S7Functions.PlcStop, 0x07));
                }
                _plc._state = S7CpuState.Stop;
            }
            Interlocked.Increment(ref _plc._stops);
            int length = AckDataHeader(request.Reference, 1, 0);
            _out[S7Limits.AckHeaderLength] = S7Functions.PlcStop;
            return Send(length);
        }

        private int ControlAnswer(ushort reference, byte function, byte reason)
        {
            int length = AckDataHeader(reference, 2, 0, ErrorStateConflict);
            _out[S7Limits.AckHeaderLength] = function;
            _out[S7Limits.AckHeaderLength + 1] = reason;
            return length;
        }

        private bool PlcControl(in S7Request request, in S7Expectation expected)
        {
            if (!_authorized)
            {
                return JobError(expected, ErrorNeedPassword);
            }
            if (request.Status != S7RequestStatus.Ok)
            {
                return JobError(expected, ErrorServiceNotAvailable);
            }
            if (request.PiServiceIs("P_PROGRAM"u8))
            {
                // Hot start (no argument) or cold start (argument "C"): back to RUN.
                lock (_plc._sync)
                {
                    if (_plc._state == S7CpuState.Run)
                    {
                        return Send(ControlAnswer(request.Reference, S7Functions.PlcControl, 0x03));
                    }
                    _plc._state = S7CpuState.Run;
                }
                Interlocked.Increment(ref _plc._starts);
            }
            else if (request.PiServiceIs("_INSE"u8) || request.PiServiceIs("_DELE"u8))
            {
                // Parameter block: | count | 00 | then per block '0' type, five ASCII digits | 'P' or 'B' |
                var block = request.PiParameters;
                if (block.Length < 10 || !S7Blocks.TryParseName(block.Slice(2, 7), out byte type, out int number))
                {
                    return JobError(expected, ErrorServiceNotAvailable);
                }
                bool insert = request.PiServiceIs("_INSE"u8);
                lock (_plc._sync)
                {
                    if (insert)
                    {
                        if (_passive is not { } p || p.Type != type || p.Number != number)
                        {
                            return JobError(expected, ErrorBlockNotFound);
                        }
                        _plc.Insert(p.Type, p.Number, p.Image);
                        _passive = null;
                    }
                    else if (!_plc.Delete(type, number))
                    {
                        return JobError(expected, ErrorBlockNotFound);
                    }
                }
            }
            else if (!(request.PiServiceIs("_MODU"u8) || request.PiServiceIs("_GARB"u8)))
            {
                return JobError(expected, ErrorServiceNotAvailable);
            }
            int length = AckDataHeader(request.Reference, 1, 0);
            _out[S7Limits.AckHeaderLength] = S7Functions.PlcControl;
            return Send(length);
        }
    }
}
