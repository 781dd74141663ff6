using System.Buffers;
using System.Buffers.Binary;
using CsCheck;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Modbus;
using static EdgeShield.Protocols.Tests.Frames;

namespace EdgeShield.Protocols.Tests;

/// <summary>
/// Property tests (CsCheck): encode → decode → encode gives the same bytes for every request kind,
/// MBAP ADUs, exception responses and RTU frames; decoding arbitrary bytes never throws. A failure
/// prints the seed and the shrunk input; tests/fuzz covers the same parsers coverage-guided.
/// </summary>
public class RoundTripPropertyTests
{
    private const int Iterations = 5_000;

    /// <summary>A valid request PDU and the spans the decoder must find in it.</summary>
    public sealed record RequestCase(byte[] Pdu, AddressSpan Read, AddressSpan Write, int ValueBytes)
    {
        public override string ToString() => Convert.ToHexString(Pdu);
    }

    private static readonly Gen<ushort> Address = Gen.UShort;

    /// <summary>A start address and a quantity 1..max that together stay inside 0..65535.</summary>
    private static Gen<(ushort Start, ushort Count)> Block(int max) =>
        Gen.Int[1, max].SelectMany(count => Gen.Int[0, 65536 - count].Select(start => ((ushort)start, (ushort)count)));

    private static byte[] Bytes(params int[] values) => values.Select(v => (byte)v).ToArray();

    private static byte[] Be(int value) => [(byte)(value >> 8), (byte)value];

    private static readonly Gen<RequestCase> ReadRequest =
        Gen.Int[1, 4].SelectMany(fc => Block(fc <= 2 ? ModbusLimits.MaxReadBits : ModbusLimits.MaxReadRegisters).Select(b =>
        {
            var table = fc switch { 1 => ModbusTable.Coils, 2 => ModbusTable.DiscreteInputs, 3 => ModbusTable.HoldingRegisters, _ => ModbusTable.InputRegisters };
            return new RequestCase(Words((byte)fc, b.Start, b.Count), new AddressSpan(table, b.Start, b.Count), default, 0);
        }));

    private static readonly Gen<RequestCase> WriteSingleCoil =
        Gen.Select(Address, Gen.Bool, (a, on) => new RequestCase(Words(5, a, on ? ModbusLimits.CoilOn : ModbusLimits.CoilOff), default, new AddressSpan(ModbusTable.Coils, a, 1), 0));

    private static readonly Gen<RequestCase> WriteSingleRegister =
        Gen.Select(Address, Gen.UShort, (a, v) => new RequestCase(Words(6, a, v), default, new AddressSpan(ModbusTable.HoldingRegisters, a, 1), 2));

    private static readonly Gen<RequestCase> NoDataSerial =
        Gen.OneOf<byte>(7, 11, 12, 17).Select(fc => new RequestCase([fc], default, default, 0));

    // A standard sub-function (01-04, 0A-12, 14) carries one data word (or, tolerated, none); 00 and the
    // reserved ones any number of words.
    private static readonly Gen<RequestCase> Diagnostics =
        Gen.Select(Gen.UShort, Gen.UShort.Array[0, 8], (sub, data) => new RequestCase(
            Words(8, [sub, .. (sub is 1 or 2 or 3 or 4 or (>= 10 and <= 18) or 20 ? data[..Math.Min(1, data.Length)] : data)]), default, default, 0));

    private static readonly Gen<RequestCase> WriteMultipleCoils =
        Block(ModbusLimits.MaxWriteBits).SelectMany(b => Gen.Byte.Array[(b.Count + 7) / 8].Select(bits =>
            new RequestCase(Cat(Words(15, b.Start, b.Count), [(byte)bits.Length], bits), default, new AddressSpan(ModbusTable.Coils, b.Start, b.Count), 0)));

    private static readonly Gen<RequestCase> WriteMultipleRegisters =
        Block(ModbusLimits.MaxWriteRegisters).SelectMany(b => Gen.Byte.Array[b.Count * 2].Select(values =>
            new RequestCase(Cat(Words(16, b.Start, b.Count), [(byte)values.Length], values), default, new AddressSpan(ModbusTable.HoldingRegisters, b.Start, b.Count), values.Length)));

    private static readonly Gen<byte[]> FileSubRequest =
        Gen.Select(Gen.UShort, Gen.Int[0, ModbusLimits.MaxFileRecordNumber], Gen.UShort, (file, record, length) =>
            Cat([ModbusLimits.FileRecordReferenceType], Be(file), Be(record), Be(length)));

    private static readonly Gen<RequestCase> ReadFileRecord =
        FileSubRequest.Array[1, 35].Select(subs => new RequestCase(Cat([20, (byte)(subs.Length * 7)], Cat(subs)), default, default, 0));

    private static readonly Gen<RequestCase> WriteFileRecord =
        Gen.Select(Gen.UShort, Gen.Int[0, ModbusLimits.MaxFileRecordNumber], Gen.Int[1, 120]).SelectMany((file, record, words) =>
            Gen.Byte.Array[words * 2].Select(data =>
            {
                var sub = Cat([ModbusLimits.FileRecordReferenceType], Be(file), Be(record), Be(words), data);
                return new RequestCase(Cat([21, (byte)sub.Length], sub), default, default, 0);
            }));

    private static readonly Gen<RequestCase> MaskWriteRegister =
        Gen.Select(Address, Gen.UShort, Gen.UShort, (a, and, or) => new RequestCase(Words(22, a, and, or), default, new AddressSpan(ModbusTable.HoldingRegisters, a, 1), 0));

    private static readonly Gen<RequestCase> ReadWriteMultipleRegisters =
        Gen.Select(Block(ModbusLimits.MaxReadWriteReadRegisters), Block(ModbusLimits.MaxReadWriteWriteRegisters)).SelectMany((read, write) =>
            Gen.Byte.Array[write.Count * 2].Select(values => new RequestCase(
                Cat(Words(23, read.Start, read.Count, write.Start, write.Count), [(byte)values.Length], values),
                new AddressSpan(ModbusTable.HoldingRegisters, read.Start, read.Count),
                new AddressSpan(ModbusTable.HoldingRegisters, write.Start, write.Count),
                values.Length)));

    private static readonly Gen<RequestCase> ReadFifoQueue =
        Address.Select(a => new RequestCase(Words(24, a), new AddressSpan(ModbusTable.HoldingRegisters, a, 1), default, 0));

    private static readonly Gen<RequestCase> ReadDeviceIdentification =
        Gen.Select(Gen.Int[1, 4], Gen.Byte, (code, id) => new RequestCase(Bytes(0x2B, 0x0E, code, id), default, default, 0));

    private static readonly Gen<RequestCase> CanOpen =
        Gen.Byte.Array[0, 40].Select(data => new RequestCase(Cat([0x2B, 0x0D], data), default, default, 0));

    private static readonly Gen<RequestCase> Vendor =
        Gen.Select(Gen.OneOf<byte>(65, 66, 70, 72, 90, 100, 105, 110), Gen.Byte.Array[0, 60], (fc, data) => new RequestCase(Cat([fc], data), default, default, 0));

    /// <summary>Every request kind the codec decodes, valid and within the spec's limits.</summary>
    private static readonly Gen<RequestCase> AnyRequest = Gen.OneOf(
        ReadRequest, WriteSingleCoil, WriteSingleRegister, NoDataSerial, Diagnostics, WriteMultipleCoils, WriteMultipleRegisters,
        ReadFileRecord, WriteFileRecord, MaskWriteRegister, ReadWriteMultipleRegisters, ReadFifoQueue, ReadDeviceIdentification, CanOpen, Vendor);

    [Fact]
    public void EveryRequestKind_Decoded_IsValidWithTheSpansItWasBuiltFrom()
    {
        AnyRequest.Sample(c =>
        {
            var request = ModbusPdu.ParseRequest(c.Pdu);
            Assert.Equal(RequestStatus.Valid, request.Status);
            Assert.Equal(c.Pdu[0], request.FunctionCode);
            Assert.Equal(c.Read, request.ReadSpan);
            Assert.Equal(c.Write, request.WriteSpan);
            Assert.Equal(c.ValueBytes, request.RegisterValues.Length);
            Assert.Equal(ModbusFunctions.Classify(c.Pdu[0], c.Pdu.Length > 1 ? c.Pdu[1] : (byte)0), request.Function);
        }, iter: Iterations);
    }

    [Fact]
    public void EveryRequestKind_EncodeDecodeEncode_GivesTheSameBytes()
    {
        AnyRequest.Sample(c =>
        {
            var decoded = ModbusPdu.ParseRequest(c.Pdu);
            var reencoded = Encode(decoded);
            Assert.Equal(c.Pdu, reencoded);
            Assert.Equal(RequestStatus.Valid, ModbusPdu.ParseRequest(reencoded).Status);
        }, iter: Iterations);
    }

    /// <summary>
    /// Writes a request PDU from its decoded view. Where the view carries every field (reads, writes of
    /// registers, FIFO, no-data functions) it is built from the view alone; otherwise the fields the view
    /// does not carry are taken from the decoded PDU after the fields it does.
    /// </summary>
    private static byte[] Encode(in ModbusRequest r)
    {
        byte fc = r.FunctionCode;
        var values = r.RegisterValues.ToArray();
        return fc switch
        {
            1 or 2 or 3 or 4 => Words(fc, r.ReadSpan.Start, r.ReadSpan.Count),
            5 => Cat(Words(5, r.WriteSpan.Start), r.Pdu[3..].ToArray()),
            6 => Cat(Words(6, r.WriteSpan.Start), values),
            7 or 11 or 12 or 17 => [fc],
            8 => Cat(Words(8, r.SubFunction), r.Pdu[3..].ToArray()),
            15 => Cat(Words(15, r.WriteSpan.Start, r.WriteSpan.Count), [(byte)((r.WriteSpan.Count + 7) / 8)], r.Pdu[6..].ToArray()),
            16 => Cat(Words(16, r.WriteSpan.Start, r.WriteSpan.Count), [(byte)values.Length], values),
            22 => Cat(Words(22, r.WriteSpan.Start), r.Pdu[3..].ToArray()),
            23 => Cat(Words(23, r.ReadSpan.Start, r.ReadSpan.Count, r.WriteSpan.Start, r.WriteSpan.Count), [(byte)values.Length], values),
            24 => Words(24, r.ReadSpan.Start),
            ModbusFunctions.EncapsulatedInterface => Cat([fc, r.MeiType], r.Pdu[2..].ToArray()),
            _ => Cat([fc], r.Pdu[1..].ToArray()),
        };
    }

    [Fact]
    public void MbapAdu_EncodeDecodeEncode_GivesTheSameBytes()
    {
        Gen.Select(Gen.UShort, Gen.Byte, AnyRequest).Sample((tid, unit, c) =>
        {
            var adu = new byte[ModbusLimits.MaxTcpAduLength];
            MbapFramer.WriteHeader(adu, tid, unit, c.Pdu.Length);
            c.Pdu.CopyTo(adu, ModbusLimits.MbapHeaderLength);
            int length = ModbusLimits.MbapHeaderLength + c.Pdu.Length;
            var exact = adu[..length];

            Assert.Equal(OperationStatus.Done, MbapFramer.TryReadFrame(exact, out var frame, out int consumed, out _));
            Assert.Equal(length, consumed);
            Assert.Equal((tid, unit), (frame.TransactionId, frame.UnitId));
            Assert.Equal(c.Pdu, frame.Pdu.ToArray());

            var again = new byte[length];
            MbapFramer.WriteHeader(again, frame.TransactionId, frame.UnitId, frame.Pdu.Length);
            frame.Pdu.CopyTo(again.AsSpan(ModbusLimits.MbapHeaderLength));
            Assert.Equal(exact, again);
        }, iter: Iterations);
    }

    [Fact]
    public void MbapStream_OfSeveralAdus_FramesEachExactlyOnce()
    {
        Gen.Select(Gen.UShort, AnyRequest).Array[1, 6].Sample(adus =>
        {
            var stream = Cat(adus.Select(a => Adu(a.Item1, 1, a.Item2.Pdu)).ToArray());
            ReadOnlySpan<byte> rest = stream;
            foreach (var (tid, c) in adus)
            {
                Assert.Equal(OperationStatus.Done, MbapFramer.TryReadFrame(rest, out var frame, out int consumed, out _));
                Assert.Equal(tid, frame.TransactionId);
                Assert.Equal(c.Pdu, frame.Pdu.ToArray());
                rest = rest[consumed..];
            }
            Assert.True(rest.IsEmpty);
        }, iter: 1_000);
    }

    private static readonly Gen<byte> FunctionCode = Gen.Byte[1, 127];

    private static readonly Gen<byte> ExceptionCode = Gen.OneOf<byte>(1, 2, 3, 4, 5, 6, 8, 0x0A, 0x0B);

    [Fact]
    public void ExceptionResponse_Mbap_EncodeDecodeEncode_AndAnswersItsFunction()
    {
        Gen.Select(Gen.UShort, Gen.Byte, FunctionCode, ExceptionCode).Sample((tid, unit, fc, code) =>
        {
            var adu = new byte[9];
            Assert.Equal(9, MbapFramer.WriteException(adu, tid, unit, fc, code));
            Assert.Equal(OperationStatus.Done, MbapFramer.TryReadFrame(adu, out var frame, out int consumed, out _));
            Assert.Equal(9, consumed);
            Assert.Equal((byte)(fc | 0x80), frame.FunctionCode);
            var expectation = new ResponseExpectation(fc, 0, 0, 0, 0, 0);
            Assert.Equal(ResponseStatus.Exception, ModbusPdu.CheckResponse(frame.Pdu, expectation, out _));

            var again = new byte[9];
            MbapFramer.WriteException(again, frame.TransactionId, frame.UnitId, (byte)(frame.FunctionCode & 0x7F), frame.Pdu[1]);
            Assert.Equal(adu, again);
        }, iter: Iterations);
    }

    [Fact]
    public void ExceptionResponse_Rtu_EncodeDecodeEncode_FramedByItsLengthRule()
    {
        Gen.Select(Gen.Byte[1, RtuFramer.MaxDeviceAddress], FunctionCode, ExceptionCode, Gen.Byte.Array[0, 8]).Sample((address, fc, code, next) =>
        {
            var frame = new byte[5];
            Assert.Equal(5, RtuFramer.WriteException(frame, address, fc, code));
            // Followed by whatever comes next on the line: the length rule, not silence, ends it.
            Assert.Equal(OperationStatus.Done, RtuFramer.TryReadFrame(Cat(frame, next), RtuDirection.Response, false, out var f, out int consumed, out _));
            Assert.Equal(5, consumed);
            var again = new byte[5];
            RtuFramer.WriteException(again, f.Address, (byte)(f.FunctionCode & 0x7F), f.Pdu[1]);
            Assert.Equal(frame, again);
        }, iter: Iterations);
    }

    [Fact]
    public void RtuRequest_EncodeDecodeEncode_GivesTheSameBytes_AndConvertsToTheSameMbapAdu()
    {
        Gen.Select(Gen.Byte[0, RtuFramer.MaxDeviceAddress], Gen.UShort, AnyRequest).Sample((address, tid, c) =>
        {
            var rtu = new byte[RtuFramer.MaxAduLength];
            int length = RtuFramer.WriteFrame(rtu, address, c.Pdu);
            var exact = rtu[..length];

            var status = RtuFramer.TryReadFrame(exact, RtuDirection.Request, atSilence: false, out var frame, out int consumed, out _);
            if (status == OperationStatus.NeedMoreData)
            {
                status = RtuFramer.TryReadFrame(exact, RtuDirection.Request, atSilence: true, out frame, out consumed, out _);
            }
            Assert.Equal(OperationStatus.Done, status);
            Assert.Equal(length, consumed);
            Assert.Equal(address, frame.Address);
            Assert.Equal(c.Pdu, frame.Pdu.ToArray());

            var again = new byte[RtuFramer.MaxAduLength];
            Assert.Equal(exact, again[..RtuFramer.WriteFrame(again, frame.Address, frame.Pdu)]);

            var mbap = new byte[ModbusLimits.MaxTcpAduLength];
            int mbapLength = RtuFramer.ToMbap(frame, tid, mbap);
            Assert.Equal(Adu(tid, address, c.Pdu), mbap[..mbapLength]);
            Assert.Equal(exact, again[..RtuFramer.FromMbap(mbap.AsSpan(0, mbapLength), again)]);
        }, iter: Iterations);
    }

    /// <summary>Normal responses to the read functions and the echoing writes, built from a valid request.</summary>
    private static readonly Gen<(byte[] Request, byte[] Response)> ReadOrEchoPair = Gen.OneOf(
        ReadRequest.SelectMany(c =>
        {
            int bytes = c.Pdu[0] <= 2 ? (c.Read.Count + 7) / 8 : c.Read.Count * 2;
            return Gen.Byte.Array[bytes].Select(data => (c.Pdu, Cat([c.Pdu[0], (byte)bytes], data)));
        }),
        Gen.OneOf(WriteSingleCoil, WriteSingleRegister).Select(c => (c.Pdu, c.Pdu)),
        Gen.OneOf(WriteMultipleCoils, WriteMultipleRegisters).Select(c => (c.Pdu, c.Pdu[..5])),
        MaskWriteRegister.Select(c => (c.Pdu, c.Pdu)));

    [Fact]
    public void RtuResponse_ToAValidRequest_RoundTripsAndPassesTheResponseCheck()
    {
        Gen.Select(Gen.Byte[1, RtuFramer.MaxDeviceAddress], ReadOrEchoPair, Gen.Byte.Array[0, 4]).Sample((address, pair, next) =>
        {
            var rtu = new byte[RtuFramer.MaxAduLength];
            int length = RtuFramer.WriteFrame(rtu, address, pair.Response);
            Assert.Equal(OperationStatus.Done, RtuFramer.TryReadFrame(Cat(rtu[..length], next), RtuDirection.Response, false, out var frame, out int consumed, out _));
            Assert.Equal(length, consumed);
            Assert.Equal(pair.Response, frame.Pdu.ToArray());
            var expectation = ModbusPdu.ParseRequest(pair.Request).Expectation;
            Assert.Equal(ResponseStatus.Normal, ModbusPdu.CheckResponse(frame.Pdu, expectation, out var error));
            Assert.Equal(ResponseError.None, error);
        }, iter: Iterations);
    }

    [Fact]
    public void RtuFrame_AnySingleBitFlipped_IsNeverTheSameFrame()
    {
        // CRC-16 detects every single-bit error: a flipped frame can never come back Done whole.
        Gen.Select(Gen.Byte[0, RtuFramer.MaxDeviceAddress], AnyRequest, Gen.Int[0, int.MaxValue], Gen.Bool).Sample((address, c, bit, silence) =>
        {
            var rtu = new byte[RtuFramer.MaxAduLength];
            int length = RtuFramer.WriteFrame(rtu, address, c.Pdu);
            var flipped = rtu[..length];
            int at = bit % (length * 8);
            flipped[at / 8] ^= (byte)(1 << (at % 8));
            var status = RtuFramer.TryReadFrame(flipped, RtuDirection.Request, silence, out _, out int consumed, out _);
            Assert.False(status == OperationStatus.Done && consumed == length);
        }, iter: Iterations);
    }

    [Fact]
    public void Decoders_ArbitraryBytes_NeverThrowAndNeverConsumePastTheInput()
    {
        Gen.Select(Gen.Byte.Array[0, 300], Gen.Bool, Gen.Byte.Array[0, 12]).Sample((bytes, silence, requestPdu) =>
        {
            var mbap = MbapFramer.TryReadFrame(bytes, out var frame, out int consumed, out _);
            Assert.InRange(consumed, 0, bytes.Length);
            if (mbap == OperationStatus.Done)
            {
                var request = ModbusPdu.ParseRequest(frame.Pdu);
                ModbusPdu.CheckResponse(frame.Pdu, request.Expectation, out _);
            }
            var parsed = ModbusPdu.ParseRequest(bytes);
            Assert.Equal(parsed.Status == RequestStatus.Malformed, parsed.Error != FramingError.None);
            ModbusPdu.CheckResponse(bytes, ModbusPdu.ParseRequest(requestPdu).Expectation, out _);
            foreach (var direction in new[] { RtuDirection.Request, RtuDirection.Response })
            {
                var rtu = RtuFramer.TryReadFrame(bytes, direction, silence, out var rtuFrame, out consumed, out _);
                Assert.InRange(consumed, 0, bytes.Length);
                Assert.True(rtu != OperationStatus.Done || Crc16Modbus.Check(rtuFrame.Adu));
            }
            // A capture file with a valid header and random records after it.
            var pcap = Cat(Hex("D4C3B2A1 0200 0400 00000000 00000000 FFFF0000 01000000"), bytes);
            Assert.True(EdgeShield.Protocols.Capture.CaptureReader.TryOpen(pcap, out var reader, out _));
            int packets = 0;
            while (reader!.TryReadPacket(out var packet) == OperationStatus.Done)
            {
                packets++;
                TcpPacketDecoder.TryDecode(packet.LinkType, packet.Data, out _);
            }
            Assert.InRange(packets, 0, (bytes.Length / 16) + 1);
        }, iter: 20_000);
    }
}
