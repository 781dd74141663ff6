using System.Buffers;
using System.Text;
using EdgeShield.Protocols.Modbus;
using static EdgeShield.Protocols.Tests.Frames;

namespace EdgeShield.Protocols.Tests;

public class MbapFramerTests
{
    // Read holding registers 0x006B, 3 registers (spec 6.3 example), transaction 0x1234, unit 0x11.
    private static readonly byte[] ReadHolding = Hex("1234 0000 0006 11 03 006B 0003");

    private static OperationStatus Read(byte[] input, out int consumed, out FramingError error) =>
        MbapFramer.TryReadFrame(input, out _, out consumed, out error);

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    public void TryReadFrame_TruncatedMbapHeader_IsNeedMoreData(int prefixLength)
    {
        var status = Read(ReadHolding[..prefixLength], out int consumed, out var error);

        Assert.Equal(OperationStatus.NeedMoreData, status);
        Assert.Equal(0, consumed);
        Assert.Equal(FramingError.None, error);
    }

    [Fact]
    public void TryReadFrame_TruncatedPdu_IsNeedMoreData()
    {
        for (int length = 7; length < ReadHolding.Length; length++)
        {
            Assert.Equal(OperationStatus.NeedMoreData, Read(ReadHolding[..length], out int consumed, out _));
            Assert.Equal(0, consumed);
        }
    }

    [Fact]
    public void TryReadFrame_CompleteFrame_IsDoneWithHeaderFields()
    {
        var status = MbapFramer.TryReadFrame(ReadHolding, out var frame, out int consumed, out var error);

        Assert.Equal(OperationStatus.Done, status);
        Assert.Equal(FramingError.None, error);
        Assert.Equal(12, consumed);
        Assert.Equal(0x1234, frame.TransactionId);
        Assert.Equal(0, frame.ProtocolId);
        Assert.Equal(6, frame.Length);
        Assert.Equal(0x11, frame.UnitId);
        Assert.Equal(3, frame.FunctionCode);
        Assert.Equal(Hex("03 006B 0003"), frame.Pdu.ToArray());
        Assert.Equal(ReadHolding, frame.Adu.ToArray());
    }

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(12)]
    public void TryReadFrame_ProtocolIdNotZero_IsInvalidDataAsSoonAsFourBytesArrive(int available)
    {
        var adu = (byte[])ReadHolding.Clone();
        adu[3] = 1;

        Assert.Equal(OperationStatus.NeedMoreData, Read(adu[..3], out _, out _));
        var status = Read(adu[..available], out int consumed, out var error);

        Assert.Equal(OperationStatus.InvalidData, status);
        Assert.Equal(FramingError.ProtocolIdNotModbus, error);
        Assert.Equal(0, consumed);
    }

    [Theory]
    [InlineData(0, FramingError.LengthTooShort)]
    [InlineData(1, FramingError.LengthTooShort)]
    [InlineData(261, FramingError.LengthTooLong)]
    [InlineData(0x0200, FramingError.LengthTooLong)]
    [InlineData(0xFFFF, FramingError.LengthTooLong)]
    public void TryReadFrame_LengthOutsideLimits_IsInvalidData(int length, FramingError expected)
    {
        // Only the 6-byte prefix: an oversized length is refused before its bytes arrive.
        byte[] prefix = [0x00, 0x01, 0x00, 0x00, (byte)(length >> 8), (byte)length];

        var status = Read(prefix, out int consumed, out var error);

        Assert.Equal(OperationStatus.InvalidData, status);
        Assert.Equal(expected, error);
        Assert.Equal(0, consumed);
    }

    [Fact]
    public void TryReadFrame_LengthAtLimits_IsDone()
    {
        // Length 2: unit id and function code only (e.g. read exception status).
        var smallest = Adu(1, 1, 0x07);
        Assert.Equal(OperationStatus.Done, Read(smallest, out int consumed, out _));
        Assert.Equal(8, consumed);

        // Length 254: a 253-byte PDU.
        var pdu = new byte[253];
        pdu[0] = 100;
        var largest = Adu(1, 1, pdu);
        Assert.Equal(OperationStatus.Done, Read(largest, out consumed, out _));
        Assert.Equal(260, consumed);
        Assert.Equal(OperationStatus.NeedMoreData, Read(largest[..259], out _, out _));
    }

    [Theory]
    [InlineData(3)]
    [InlineData(16)]
    [InlineData(43)]
    [InlineData(0x80 | 90)]
    public void TryReadFrame_LengthAbove254_PublicCode_IsInvalidDataOnceTheFunctionByteArrives(byte functionCode)
    {
        byte[] header = [0x00, 0x01, 0x00, 0x00, 0x00, 0xFF, 0x01, functionCode];

        // 255..260 may be a vendor code's: the function byte decides.
        Assert.Equal(OperationStatus.NeedMoreData, Read(header[..7], out _, out _));
        Assert.Equal(OperationStatus.InvalidData, Read(header, out int consumed, out var error));
        Assert.Equal(FramingError.LengthTooLong, error);
        Assert.Equal(0, consumed);
    }

    [Theory]
    [InlineData(90, 255)]
    [InlineData(90, 260)]
    [InlineData(65, 260)]
    [InlineData(110, 256)]
    public void TryReadFrame_VendorOrUserDefinedCode_AcceptsMbapLengthUpTo260(byte functionCode, int length)
    {
        // Schneider UMAS (90) sends MBAP length 255 both ways in a real Modicon capture.
        var pdu = new byte[length - 1];
        pdu[0] = functionCode;
        var adu = Adu(7, 0, pdu);

        Assert.Equal(OperationStatus.Done, Read(adu, out int consumed, out _));
        Assert.Equal(6 + length, consumed);
        Assert.Equal(OperationStatus.NeedMoreData, Read(adu[..^1], out _, out _));
        Assert.True(consumed <= ModbusLimits.MaxVendorTcpAduLength);
    }

    [Fact]
    public void TryReadFrame_VendorCodeAbove260_IsInvalidData()
    {
        var pdu = new byte[260];
        pdu[0] = 90;
        Assert.Equal(OperationStatus.InvalidData, Read(Adu(7, 0, pdu), out _, out var error));
        Assert.Equal(FramingError.LengthTooLong, error);
    }

    [Theory]
    [InlineData("06 0001 0003 0000")]                  // FC6 with 2 bytes after the value (part2's 7th request)
    [InlineData("10 0000 0000 00 0102 0304 0506")]     // FC16 quantity 0, byte count 0, 6 bytes more (libmodbus)
    [InlineData("0F 0000 0000 00 0102")]               // FC15 likewise
    [InlineData("03 0000")]                            // FC3 too short
    public void ParseFramedRequest_WrongSizePduInAWellDelimitedAdu_IsOutOfSpec03(string hex)
    {
        var pdu = Hex(hex);

        Assert.Equal(RequestStatus.Malformed, ModbusPdu.ParseRequest(pdu).Status);
        var request = ModbusPdu.ParseFramedRequest(pdu);
        Assert.Equal(RequestStatus.OutOfSpec, request.Status);
        Assert.Equal(SpecViolation.PduLengthInvalid, request.Violation);
        Assert.NotEqual(FramingError.None, request.Error);
        Assert.Equal(ModbusExceptionCode.IllegalDataValue, request.SpecExceptionCode);
    }

    [Fact]
    public void TryReadFrame_LengthLongerThanPdu_IsFramedThenPduHasTrailingBytes()
    {
        // MBAP length 8 around a 5-byte read request: the stream frames, the PDU does not hold together.
        var adu = Hex("0001 0000 0008 01 03 0000 0001 AAAA");

        Assert.Equal(OperationStatus.Done, MbapFramer.TryReadFrame(adu, out var frame, out int consumed, out _));
        Assert.Equal(adu.Length, consumed);
        var request = ModbusPdu.ParseRequest(frame.Pdu);

        Assert.Equal(RequestStatus.Malformed, request.Status);
        Assert.Equal(FramingError.TrailingBytes, request.Error);
    }

    [Fact]
    public void TryReadFrame_LengthShorterThanPdu_IsFramedThenPduTruncated()
    {
        // MBAP length 4: the read request's quantity falls outside the frame and starts the next one.
        var stream = Hex("0001 0000 0004 01 03 0000 0001");

        Assert.Equal(OperationStatus.Done, MbapFramer.TryReadFrame(stream, out var frame, out int consumed, out _));
        Assert.Equal(10, consumed);
        var request = ModbusPdu.ParseRequest(frame.Pdu);

        Assert.Equal(RequestStatus.Malformed, request.Status);
        Assert.Equal(FramingError.PduTruncated, request.Error);
    }

    [Fact]
    public void TryReadFrame_TwoFramesInOneBuffer_ReadsBothInOrder()
    {
        var first = Adu(7, 1, Words(3, 0, 10));
        var second = Adu(8, 2, Words(6, 5, 0x1234));
        var buffer = Cat(first, second);

        Assert.Equal(OperationStatus.Done, MbapFramer.TryReadFrame(buffer, out var frame, out int consumed, out _));
        Assert.Equal(first.Length, consumed);
        Assert.Equal(7, frame.TransactionId);
        Assert.Equal(3, frame.FunctionCode);

        Assert.Equal(OperationStatus.Done, MbapFramer.TryReadFrame(buffer.AsSpan(consumed), out frame, out int consumed2, out _));
        Assert.Equal(second.Length, consumed2);
        Assert.Equal(8, frame.TransactionId);
        Assert.Equal(2, frame.UnitId);
        Assert.Equal(6, frame.FunctionCode);
        Assert.Equal(buffer.Length, consumed + consumed2);
    }

    [Fact]
    public void TryReadFrame_FrameFedByteByByte_IsDoneOnlyOnLastByte()
    {
        var adu = Adu(0x0102, 9, Cat(Words(16, 100, 2), [4, 0, 1, 0, 2]));
        var received = new List<byte>();

        for (int i = 0; i < adu.Length; i++)
        {
            received.Add(adu[i]);
            var status = MbapFramer.TryReadFrame(received.ToArray(), out var frame, out int consumed, out var error);
            if (i < adu.Length - 1)
            {
                Assert.Equal(OperationStatus.NeedMoreData, status);
                Assert.Equal(0, consumed);
                continue;
            }
            Assert.Equal(OperationStatus.Done, status);
            Assert.Equal(FramingError.None, error);
            Assert.Equal(adu.Length, consumed);
            Assert.Equal(0x0102, frame.TransactionId);
            Assert.Equal(RequestStatus.Valid, ModbusPdu.ParseRequest(frame.Pdu).Status);
        }
    }

    [Fact]
    public void TryReadFrame_HttpRequest_IsInvalidData()
    {
        var http = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: plc\r\n\r\n");

        Assert.Equal(OperationStatus.InvalidData, Read(http, out int consumed, out var error));
        Assert.Equal(FramingError.ProtocolIdNotModbus, error);
        Assert.Equal(0, consumed);
        Assert.Equal(OperationStatus.InvalidData, Read(http[..4], out _, out _));
    }

    [Fact]
    public void TryReadFrame_TlsClientHello_IsInvalidData()
    {
        // TLS record header (handshake, TLS 1.0 record version, length 0x0200), ClientHello, length, version 1.2.
        var clientHello = Hex("16 0301 0200 01 0001FC 0303");

        Assert.Equal(OperationStatus.InvalidData, Read(clientHello, out int consumed, out var error));
        Assert.Equal(FramingError.ProtocolIdNotModbus, error);
        Assert.Equal(0, consumed);
    }

    [Fact]
    public void WriteException_WritesNineExactBytes()
    {
        var buffer = new byte[16];

        int written = MbapFramer.WriteException(buffer, 0xBEEF, 0x11, 0x10, ModbusExceptionCode.IllegalDataAddress);

        Assert.Equal(9, written);
        Assert.Equal(Hex("BEEF 0000 0003 11 90 02"), buffer[..written]);
        Assert.All(buffer[written..], b => Assert.Equal(0, b));
    }

    [Fact]
    public void WriteException_IsFramedAndCheckedAsExceptionOfItsRequest()
    {
        var request = ModbusPdu.ParseRequest(Words(3, 0, 10));
        var buffer = new byte[9];
        MbapFramer.WriteException(buffer, 5, 1, 3, ModbusExceptionCode.GatewayPathUnavailable);

        Assert.Equal(OperationStatus.Done, MbapFramer.TryReadFrame(buffer, out var frame, out _, out _));
        Assert.Equal(ResponseStatus.Exception, ModbusPdu.CheckResponse(frame.Pdu, request.Expectation, out _));
        Assert.Equal(0x0A, frame.Pdu[1]);
    }

    [Fact]
    public void SetTransactionId_RewritesOnlyTheFirstTwoBytes()
    {
        var adu = (byte[])ReadHolding.Clone();

        MbapFramer.SetTransactionId(adu, 0xA55A);

        Assert.Equal(Hex("A55A 0000 0006 11 03 006B 0003"), adu);
    }
}
