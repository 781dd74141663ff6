using System.Buffers;
using System.Globalization;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Protocols.Tests;

public class RtuFramerTests
{
    // Modbus over Serial Line V1.02, 6.2.2 and the widely published check value of CRC-16/MODBUS.
    [Fact]
    public void Crc_CheckValueOf123456789_Is4B37() =>
        Assert.Equal(0x4B37, Crc16Modbus.Compute("123456789"u8));

    [Fact]
    public void Crc_ReadHolding_MatchesKnownFrame()
    {
        // 01 03 00 00 00 0A C5 CD: read 10 holding registers from unit 1, as mbpoll and pymodbus send it.
        byte[] frame = [0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD];
        Assert.True(Crc16Modbus.Check(frame));
        frame[3] ^= 1;
        Assert.False(Crc16Modbus.Check(frame));
    }

    [Fact]
    public void TryReadFrame_ReadRequest_IsDoneWithAddressAndPdu()
    {
        byte[] frame = [0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87];
        var status = RtuFramer.TryReadFrame(frame, RtuDirection.Request, false, out var f, out int consumed, out _);
        Assert.Equal(OperationStatus.Done, status);
        Assert.Equal(8, consumed);
        Assert.Equal(0x11, f.Address);
        Assert.Equal([0x03, 0x00, 0x6B, 0x00, 0x03], f.Pdu.ToArray());
    }

    [Fact]
    public void TryReadFrame_EveryPrefix_NeedsMoreData()
    {
        var frame = Frame(1, [0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02]);
        for (int i = 0; i < frame.Length; i++)
        {
            Assert.Equal(OperationStatus.NeedMoreData, RtuFramer.TryReadFrame(frame.AsSpan(0, i), RtuDirection.Request, false, out _, out int consumed, out _));
            Assert.Equal(0, consumed);
        }
        Assert.Equal(OperationStatus.Done, RtuFramer.TryReadFrame(frame, RtuDirection.Request, false, out _, out _, out _));
    }

    [Fact]
    public void TryReadFrame_BadCrc_IsInvalidCrcMismatch()
    {
        var frame = Frame(1, [0x06, 0x00, 0x01, 0x00, 0x03]);
        frame[^1] ^= 0xFF;
        Assert.Equal(OperationStatus.InvalidData, RtuFramer.TryReadFrame(frame, RtuDirection.Request, false, out _, out int consumed, out var error));
        Assert.Equal(FramingError.CrcMismatch, error);
        Assert.Equal(frame.Length, consumed);
    }

    [Fact]
    public void TryReadFrame_LengthAboveLimit_IsInvalidFrameTooLong()
    {
        // FC 16 byte count 250 says 259 bytes: above the 256-byte ADU limit, refused before waiting for them.
        byte[] header = [0x01, 0x10, 0x00, 0x00, 0x00, 0x7D, 250];
        Assert.Equal(OperationStatus.InvalidData, RtuFramer.TryReadFrame(header, RtuDirection.Request, false, out _, out _, out var error));
        Assert.Equal(FramingError.FrameTooLong, error);
    }

    [Fact]
    public void TryReadFrame_UnknownLengthFunction_EndsAtSilence()
    {
        var frame = Frame(1, [0x5A, 0x00, 0x02, 0x03]); // vendor function (UMAS), length not self-describing
        Assert.Equal(OperationStatus.NeedMoreData, RtuFramer.TryReadFrame(frame, RtuDirection.Request, false, out _, out _, out _));
        Assert.Equal(OperationStatus.Done, RtuFramer.TryReadFrame(frame, RtuDirection.Request, true, out var f, out int consumed, out _));
        Assert.Equal(frame.Length, consumed);
        Assert.Equal(0x5A, f.FunctionCode);
    }

    // Found by the mbap fuzz target (tests/fuzz): a diagnostics request the TCP side accepts as valid
    // — return query data with other than one word, or a sub-function without its data word — was
    // cut at 8 bytes by the RTU length rules, so the bus (and the RTU-over-TCP listener) refused it,
    // or the PLC's echo of it, as a CRC mismatch or a truncated frame.
    [Theory]
    [InlineData(RtuDirection.Request, new byte[] { 0x08, 0x00, 0x00, 0xA5, 0x37, 0x12, 0x34 })]
    [InlineData(RtuDirection.Response, new byte[] { 0x08, 0x00, 0x00, 0xA5, 0x37, 0x12, 0x34 })]
    [InlineData(RtuDirection.Request, new byte[] { 0x08, 0x00, 0x04 })]
    [InlineData(RtuDirection.Response, new byte[] { 0x08, 0x00, 0x01 })]
    [InlineData(RtuDirection.Request, new byte[] { 0x08, 0x00, 0x00, 0xA5, 0x37 })]
    public void TryReadFrame_Diagnostics_EndsAtSilenceWhateverItsDataLength(RtuDirection direction, byte[] pdu)
    {
        var frame = Frame(1, pdu);
        Assert.Equal(OperationStatus.NeedMoreData, RtuFramer.TryReadFrame(frame, direction, false, out _, out int pending, out _));
        Assert.Equal(0, pending);
        Assert.Equal(OperationStatus.Done, RtuFramer.TryReadFrame(frame, direction, true, out var f, out int consumed, out _));
        Assert.Equal(frame.Length, consumed);
        Assert.Equal(pdu, f.Pdu.ToArray());
    }

    // Issue 10, item 6: two FC 8 frames in one TCP segment were neither framed (the CRC over both
    // never checks), and the RTU-over-TCP connection died at frame-timeout. Every standard
    // sub-function but 00 carries one data word: 8 bytes, framed by length, both ways.
    [Theory]
    [InlineData(RtuDirection.Request, 0x01)]
    [InlineData(RtuDirection.Request, 0x04)]
    [InlineData(RtuDirection.Request, 0x0B)]
    [InlineData(RtuDirection.Response, 0x02)]
    [InlineData(RtuDirection.Response, 0x14)]
    public void TryReadFrame_DiagnosticsStandardSubFunction_IsEightBytes_TwoInARowBothFramed(RtuDirection direction, byte subFunction)
    {
        var first = Frame(1, [0x08, 0x00, subFunction, 0x00, 0x00]);
        var second = Frame(1, [0x08, 0x00, subFunction, 0xFF, 0x00]);
        var both = first.Concat(second).ToArray();
        Assert.Equal(OperationStatus.Done, RtuFramer.TryReadFrame(both, direction, false, out var f, out int consumed, out _));
        Assert.Equal(8, consumed);
        Assert.Equal(first, f.Adu.ToArray());
        Assert.Equal(OperationStatus.Done, RtuFramer.TryReadFrame(both.AsSpan(consumed), direction, false, out f, out consumed, out _));
        Assert.Equal(second, f.Adu.ToArray());
        Assert.Equal(OperationStatus.NeedMoreData, RtuFramer.TryReadFrame(first.AsSpan(0, 7), direction, false, out _, out _, out _));
    }

    [Fact]
    public void TryReadFrame_TruncatedAtSilence_IsInvalid()
    {
        var frame = Frame(1, [0x03, 0x04, 0x00, 0x01, 0x00, 0x02]);
        Assert.Equal(OperationStatus.InvalidData, RtuFramer.TryReadFrame(frame.AsSpan(0, 5), RtuDirection.Response, true, out _, out _, out var error));
        Assert.Equal(FramingError.PduTruncated, error);
    }

    [Theory]
    [InlineData(new byte[] { 0x83, 0x02 }, 5)]
    [InlineData(new byte[] { 0x03, 0x04, 0, 1, 0, 2 }, 9)]
    [InlineData(new byte[] { 0x06, 0, 1, 0, 3 }, 8)]
    [InlineData(new byte[] { 0x10, 0, 1, 0, 2 }, 8)]
    [InlineData(new byte[] { 0x18, 0, 4, 0, 1, 0, 7 }, 10)]
    public void TryReadFrame_Responses_FramedByTheirLengthRules(byte[] pdu, int expected)
    {
        var frame = Frame(7, pdu);
        var withTail = frame.Concat(new byte[] { 0x07, 0x03 }).ToArray();
        Assert.Equal(OperationStatus.Done, RtuFramer.TryReadFrame(withTail, RtuDirection.Response, false, out var f, out int consumed, out _));
        Assert.Equal(expected, consumed);
        Assert.Equal(pdu, f.Pdu.ToArray());
    }

    [Fact]
    public void MbapConversion_RoundTrips()
    {
        byte[] mbap = [0x12, 0x34, 0, 0, 0, 6, 0x05, 0x03, 0x00, 0x10, 0x00, 0x02];
        var rtu = new byte[16];
        int n = RtuFramer.FromMbap(mbap, rtu);
        Assert.Equal(8, n);
        Assert.True(Crc16Modbus.Check(rtu.AsSpan(0, n)));
        RtuFramer.TryReadFrame(rtu.AsSpan(0, n), RtuDirection.Request, false, out var frame, out _, out _);
        var back = new byte[16];
        int m = RtuFramer.ToMbap(frame, 0x1234, back);
        Assert.Equal(mbap, back.AsSpan(0, m).ToArray());
    }

    [Fact]
    public void WriteException_IsFunctionOr80CodeAndCrc()
    {
        var buffer = new byte[5];
        Assert.Equal(5, RtuFramer.WriteException(buffer, 1, 3, 0x0B));
        Assert.Equal(new byte[] { 1, 0x83, 0x0B }, buffer[..3]);
        Assert.True(Crc16Modbus.Check(buffer));
    }

    [Fact]
    public void Timing_FixedAbove19200_ScaledBelow()
    {
        var slow = new RtuTiming(9600, 11);
        Assert.Equal(3.5 * 11 * 1e6 / 9600, slow.InterFrameMicros, 3);
        Assert.Equal(1.5 * 11 * 1e6 / 9600, slow.InterCharacterMicros, 3);
        var fast = new RtuTiming(115200, 11);
        Assert.Equal(1750, fast.InterFrameMicros);
        Assert.Equal(750, fast.InterCharacterMicros);
    }

    [Fact]
    public void TryReadFrame_RandomAndMutatedInput_NeverThrowsNorOverreads()
    {
        var random = new Random(1234);
        var buffer = new byte[300];
        for (int i = 0; i < 20_000; i++)
        {
            int length = random.Next(0, buffer.Length);
            random.NextBytes(buffer.AsSpan(0, length));
            var input = buffer.AsSpan(0, length);
            var status = RtuFramer.TryReadFrame(input, (RtuDirection)(i & 1), (i & 2) != 0, out var frame, out int consumed, out _);
            Assert.InRange(consumed, 0, length);
            if (status == OperationStatus.Done)
            {
                Assert.True(Crc16Modbus.Check(frame.Adu));
                Assert.InRange(frame.Adu.Length, RtuFramer.MinAduLength, RtuFramer.MaxAduLength);
            }
        }
    }

    /// <summary>
    /// Golden frames: pymodbus 3.0 speaking RTU over TCP on port 5020, dissected by tshark's mbrtu
    /// (tests/data/groundtruth). Every segment is one ADU: framed whole, CRC checked, and the
    /// address, function and exception code agree with Wireshark.
    /// </summary>
    [Fact]
    public void GoldenCapture_PymodbusRtuOverTcp_AgreesWithTshark()
    {
        var segments = CaptureReader.ReadTcp(File.ReadAllBytes(TestData.PathOf("modbus/pymodbus_rtu_over_tcp_port5020.pcapng")));
        var rows = TestData.ReadCsv(TestData.PathOf("groundtruth/modbus/pymodbus_rtu_over_tcp_port5020.pcapng.csv"))
            .Where(r => r["rtu_unit_id"].Length > 0)
            .ToDictionary(r => int.Parse(r["frame"], CultureInfo.InvariantCulture));
        int checkedFrames = 0;
        foreach (var segment in segments.Where(s => s.Payload.Length > 0))
        {
            Assert.True(rows.TryGetValue(segment.Frame, out var row), $"frame {segment.Frame} not dissected by tshark");
            var direction = segment.DestinationPort == 5020 ? RtuDirection.Request : RtuDirection.Response;
            Assert.Equal(row["direction"] == "query" ? RtuDirection.Request : RtuDirection.Response, direction);
            var status = RtuFramer.TryReadFrame(segment.Payload, direction, false, out var frame, out int consumed, out var error);
            Assert.True(status == OperationStatus.Done, $"frame {segment.Frame}: {status} {error}");
            Assert.Equal(segment.Payload.Length, consumed);
            Assert.Equal(row["rtu_unit_id"], frame.Address.ToString(CultureInfo.InvariantCulture));
            Assert.Equal(row["func_code"], (frame.FunctionCode & 0x7F).ToString(CultureInfo.InvariantCulture));
            if (row["exception_code"].Length > 0)
            {
                Assert.Equal(row["exception_code"], frame.Pdu[1].ToString(CultureInfo.InvariantCulture));
            }
            if (direction == RtuDirection.Request)
            {
                Assert.Equal(RequestStatus.Valid, ModbusPdu.ParseRequest(frame.Pdu).Status);
            }
            checkedFrames++;
        }
        Assert.Equal(rows.Count, checkedFrames);
        Assert.True(checkedFrames >= 100, $"only {checkedFrames} frames");
    }

    [Fact]
    public void CrcAndFraming_10000Frames_AllocateNothing()
    {
        byte[] request = [0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD];
        byte[] mbap = [0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 10];
        var output = new byte[300];
        int sink = 0;
        for (int i = 0; i < 100; i++)
        {
            sink += Run(request, mbap, output);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            sink += Run(request, mbap, output);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.NotEqual(0, sink);

        static int Run(byte[] request, byte[] mbap, byte[] output)
        {
            RtuFramer.TryReadFrame(request, RtuDirection.Request, false, out var frame, out int consumed, out _);
            int n = RtuFramer.ToMbap(frame, 1, output);
            n += RtuFramer.FromMbap(mbap, output.AsSpan(16));
            return consumed + n + Crc16Modbus.Compute(request);
        }
    }

    private static byte[] Frame(byte address, byte[] pdu)
    {
        var buffer = new byte[pdu.Length + 3];
        RtuFramer.WriteFrame(buffer, address, pdu);
        return buffer;
    }
}
