using System.Buffers;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Protocols.Tests.S7comm;

public class TpktFramerTests
{
    // From iti__s7__s7comm_downloading_block_db1.pcap, frames 5, 6 and 7.
    internal static readonly byte[] ConnectRequest = Convert.FromHexString("0300001611E00000000700C1020100C2020102C0010A");
    internal static readonly byte[] ConnectConfirm = Convert.FromHexString("0300001611D00007000300C0010AC1020100C2020102");
    internal static readonly byte[] SetupJob = Convert.FromHexString("0300001902F08032010000020000080000F0000001000101E0");

    private static S7FramingError Invalid(string hex)
    {
        var status = TpktFramer.TryReadFrame(Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal)), out _, out int consumed, out var error);
        Assert.Equal(OperationStatus.InvalidData, status);
        Assert.Equal(0, consumed);
        return error;
    }

    [Fact]
    public void TryReadFrame_CaptureConnectRequest_GivesReferencesTsapsAndPgConnection()
    {
        Assert.Equal(OperationStatus.Done, TpktFramer.TryReadFrame(ConnectRequest, out var tpdu, out int consumed, out var error));
        Assert.Equal(S7FramingError.None, error);
        Assert.Equal(22, consumed);
        Assert.Equal(CotpTpduType.ConnectionRequest, tpdu.Type);
        Assert.Equal(0x0000, tpdu.DestinationReference);
        Assert.Equal(0x0007, tpdu.SourceReference);
        Assert.Equal(0, tpdu.ClassOptions);
        Assert.Equal([0x01, 0x00], tpdu.CallingTsap.ToArray());
        Assert.Equal([0x01, 0x02], tpdu.CalledTsap.ToArray());
        Assert.Equal(10, tpdu.TpduSizeCode);
        Assert.Equal(1024, tpdu.TpduSize);
        Assert.Equal(new S7Connection(S7ConnectionKind.Pg, 1, 0, 2), tpdu.Connection);
        Assert.True(tpdu.Payload.IsEmpty);
    }

    [Fact]
    public void TryReadFrame_DataWithEot_GivesS7Payload()
    {
        Assert.Equal(OperationStatus.Done, TpktFramer.TryReadFrame(SetupJob, out var tpdu, out int consumed, out _));
        Assert.Equal(25, consumed);
        Assert.Equal(CotpTpduType.Data, tpdu.Type);
        Assert.True(tpdu.EndOfTransmission);
        Assert.Equal(0, tpdu.TpduNumber);
        Assert.Equal(SetupJob.AsSpan(7).ToArray(), tpdu.Payload.ToArray());
    }

    [Fact]
    public void TryReadFrame_TwoPacketsInOneBuffer_FramesOnlyTheFirst()
    {
        byte[] both = [.. ConnectConfirm, .. SetupJob];
        Assert.Equal(OperationStatus.Done, TpktFramer.TryReadFrame(both, out var tpdu, out int consumed, out _));
        Assert.Equal(CotpTpduType.ConnectionConfirm, tpdu.Type);
        Assert.Equal(ConnectConfirm.Length, consumed);
    }

    [Fact]
    public void TryReadFrame_EveryPrefix_IsNeedMoreData()
    {
        foreach (var frame in new[] { ConnectRequest, ConnectConfirm, SetupJob })
        {
            for (int n = 0; n < frame.Length; n++)
            {
                Assert.Equal(OperationStatus.NeedMoreData, TpktFramer.TryReadFrame(frame.AsSpan(0, n), out _, out int consumed, out _));
                Assert.Equal(0, consumed);
            }
        }
    }

    [Fact]
    public void TryReadFrame_DisconnectRequestAndError_AreFramed()
    {
        Assert.Equal(OperationStatus.Done, TpktFramer.TryReadFrame(Convert.FromHexString("0300000B068000070003" + "80"), out var dr, out _, out _));
        Assert.Equal(CotpTpduType.DisconnectRequest, dr.Type);
        Assert.Equal(7, dr.DestinationReference);
        Assert.Equal(3, dr.SourceReference);
        Assert.Equal(0x80, dr.Reason);
        Assert.Equal(OperationStatus.Done, TpktFramer.TryReadFrame(Convert.FromHexString("030000090470000702"), out var er, out _, out _));
        Assert.Equal(CotpTpduType.Error, er.Type);
        Assert.Equal(2, er.Reason);
    }

    [Fact]
    public void TryReadFrame_SimaticRootTsaps_AreS7commPlusConnections()
    {
        var hmi = "SIMATIC-ROOT-HMI"u8.ToArray();
        var buffer = new byte[64];
        int n = CotpWriter.WriteConnectConfirm(buffer, 1, 2, 10, [0x01, 0x00], hmi);
        Assert.Equal(OperationStatus.Done, TpktFramer.TryReadFrame(buffer.AsSpan(0, n), out var tpdu, out _, out _));
        Assert.Equal(S7ConnectionKind.PlusHmi, tpdu.Connection.Kind);
        Assert.Equal(S7ConnectionKind.PlusEs, S7Connection.FromCalledTsap("SIMATIC-ROOT-ES"u8).Kind);
        Assert.Equal(S7ConnectionKind.Op, S7Connection.FromCalledTsap([0x02, 0x01]).Kind);
        Assert.Equal(S7ConnectionKind.Basic, S7Connection.FromCalledTsap([0x03, 0x22]).Kind);
        Assert.Equal(new S7Connection(S7ConnectionKind.Other, 0x10, 1, 2), S7Connection.FromCalledTsap([0x10, 0x22]));
        Assert.Equal(S7ConnectionKind.Unknown, S7Connection.FromCalledTsap("SIMATIC-ROOT-XX"u8).Kind);
    }

    [Fact]
    public void TryReadFrame_UnknownParameter_IsSkipped()
    {
        // CR with a C5 (checksum-like) parameter of 2 bytes before C0.
        Assert.Equal(OperationStatus.Done, TpktFramer.TryReadFrame(Convert.FromHexString("030000120D" + "E00000000700" + "C5021234" + "C0010A"), out var tpdu, out _, out var error));
        Assert.Equal(S7FramingError.None, error);
        Assert.Equal(10, tpdu.TpduSizeCode);
    }

    [Theory]
    [InlineData("04", S7FramingError.TpktVersionInvalid)]
    [InlineData("0301", S7FramingError.TpktReservedNotZero)]
    [InlineData("03000006", S7FramingError.TpktLengthTooShort)]
    [InlineData("0300000700", S7FramingError.CotpLengthIndicatorInvalid)]
    [InlineData("0300000701", S7FramingError.CotpLengthIndicatorInvalid)]
    [InlineData("03000107FF", S7FramingError.CotpLengthIndicatorInvalid)]
    [InlineData("0300000703", S7FramingError.CotpHeaderBeyondTpkt)]
    [InlineData("03000007026000", S7FramingError.CotpTypeUnsupported)]
    [InlineData("03000007021000", S7FramingError.CotpTypeUnsupported)]
    [InlineData("0300000803F08000", S7FramingError.CotpDataHeaderInvalid)]
    [InlineData("0300000904E0000000", S7FramingError.CotpFixedPartTooShort)]
    [InlineData("03000007027000", S7FramingError.CotpFixedPartTooShort)]
    [InlineData("0300000B06E00000000710", S7FramingError.CotpClassNotZero)]
    [InlineData("0300000D08E000000007 00 C003", S7FramingError.CotpParameterBeyondHeader)]
    [InlineData("0300000C07E000000007 00 C0", S7FramingError.CotpParameterBeyondHeader)]
    [InlineData("0300000E09E000000007 00 C0010E", S7FramingError.CotpTpduSizeInvalid)]
    [InlineData("0300000F0AE000000007 00 C002000A", S7FramingError.CotpTpduSizeInvalid)]
    [InlineData("0300001510E000000007 00 C0010A C0010A C2020102", S7FramingError.CotpConnectMalformed)]
    [InlineData("0300000C06E000000007 00 32", S7FramingError.CotpConnectMalformed)]
    public void TryReadFrame_MalformedShape_IsInvalidWithItsReason(string hex, S7FramingError expected) =>
        Assert.Equal(expected, Invalid(hex));
}

public class CotpReassemblerTests
{
    private static byte[] Dt(bool eot, params byte[] payload)
    {
        var packet = new byte[7 + payload.Length];
        CotpWriter.WriteDataHeader(packet, payload.Length, eot);
        payload.CopyTo(packet, 7);
        return packet;
    }

    private static OperationStatus Append(CotpReassembler r, byte[] packet, out byte[] pdu, out S7FramingError error)
    {
        Assert.Equal(OperationStatus.Done, TpktFramer.TryReadFrame(packet, out var tpdu, out _, out _));
        var status = r.Append(tpdu, out var span, out error);
        pdu = span.ToArray();
        return status;
    }

    [Fact]
    public void Append_FragmentsUntilEot_JoinsThem()
    {
        var r = new CotpReassembler(new byte[64], 64);
        Assert.Equal(OperationStatus.NeedMoreData, Append(r, Dt(false, 1, 2, 3), out _, out _));
        Assert.Equal(OperationStatus.NeedMoreData, Append(r, Dt(false), out _, out _)); // empty fragment (STEP 7 sends them)
        Assert.True(r.HasPending);
        Assert.Equal(3, r.PendingLength);
        Assert.Equal(OperationStatus.Done, Append(r, Dt(true, 4, 5), out var pdu, out _));
        Assert.Equal([1, 2, 3, 4, 5], pdu);
        Assert.False(r.HasPending);
        Assert.Equal(OperationStatus.Done, Append(r, Dt(true, 9), out pdu, out _));
        Assert.Equal([9], pdu);
    }

    [Fact]
    public void Append_WholePdu_IsReturnedInPlaceWithoutCopy()
    {
        var buffer = new byte[64];
        var r = new CotpReassembler(buffer, 64);
        var packet = Dt(true, 7, 8, 9);
        Assert.Equal(OperationStatus.Done, TpktFramer.TryReadFrame(packet, out var tpdu, out _, out _));
        Assert.Equal(OperationStatus.Done, r.Append(tpdu, out var pdu, out _));
        Assert.True(pdu.Overlaps(packet));
        Assert.Equal(0, buffer[0]);
    }

    [Fact]
    public void Append_AboveMaxPduSize_IsPduTooLargeAndDropsWhatWasHeld()
    {
        var r = new CotpReassembler(new byte[64], 64) { MaxPduSize = 4 };
        Assert.Equal(OperationStatus.NeedMoreData, Append(r, Dt(false, 1, 2, 3), out _, out _));
        Assert.Equal(OperationStatus.InvalidData, Append(r, Dt(true, 4, 5), out _, out var error));
        Assert.Equal(S7FramingError.PduTooLarge, error);
        Assert.Equal(0, r.PendingLength);
        Assert.Equal(OperationStatus.InvalidData, Append(r, Dt(true, 1, 2, 3, 4, 5), out _, out error));
        Assert.Equal(S7FramingError.PduTooLarge, error);
        Assert.Equal(OperationStatus.Done, Append(r, Dt(true, 1, 2, 3, 4), out var pdu, out _));
        Assert.Equal([1, 2, 3, 4], pdu);
    }

    [Fact]
    public void Append_NotData_IsNotData()
    {
        var r = new CotpReassembler(new byte[64], 64);
        Assert.Equal(OperationStatus.InvalidData, Append(r, TpktFramerTests.ConnectRequest, out _, out var error));
        Assert.Equal(S7FramingError.NotData, error);
    }

    [Fact]
    public void Reset_DropsHeldFragments()
    {
        var r = new CotpReassembler(new byte[64], 64);
        Append(r, Dt(false, 1, 2), out _, out _);
        r.Reset();
        Assert.Equal(OperationStatus.Done, Append(r, Dt(true, 3), out var pdu, out _));
        Assert.Equal([3], pdu);
    }

    [Fact]
    public void MaxPduSize_AboveBuffer_IsAProgrammingFault() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new CotpReassembler(new byte[16], 17));
}

public class CotpWriterTests
{
    [Theory]
    [InlineData(0, 128)]
    [InlineData(1, 128)]
    [InlineData(121, 128)]
    [InlineData(122, 128)]
    [InlineData(480, 128)]
    [InlineData(960, 1024)]
    [InlineData(5000, 256)]
    public void WriteData_FragmentsNoLargerThanTpduSize_ReassembleToThePdu(int length, int tpduSize)
    {
        var pdu = new byte[length];
        new Random(length).NextBytes(pdu);
        var wire = new byte[CotpWriter.DataLength(length, tpduSize)];
        Assert.Equal(wire.Length, CotpWriter.WriteData(wire, pdu, tpduSize));

        var r = new CotpReassembler(new byte[8192], 8192);
        ReadOnlySpan<byte> input = wire;
        int fragments = 0;
        byte[]? result = null;
        while (!input.IsEmpty)
        {
            Assert.Equal(OperationStatus.Done, TpktFramer.TryReadFrame(input, out var tpdu, out int consumed, out _));
            Assert.True(consumed <= tpduSize, $"fragment of {consumed} bytes above {tpduSize}");
            Assert.Equal(0, tpdu.TpduNumber); // class 0 does not number DTs
            fragments++;
            input = input[consumed..];
            var status = r.Append(tpdu, out var whole, out _);
            Assert.Equal(input.IsEmpty ? OperationStatus.Done : OperationStatus.NeedMoreData, status);
            if (status == OperationStatus.Done)
            {
                result = whole.ToArray();
            }
        }
        Assert.Equal(pdu, result);
        Assert.Equal(Math.Max(1, (length + tpduSize - 8) / (tpduSize - 7)), fragments);
    }

    [Fact]
    public void WriteData_DestinationTooSmall_IsMinusOne() =>
        Assert.Equal(-1, CotpWriter.WriteData(new byte[10], new byte[10], 128));

    [Fact]
    public void WriteConnectConfirm_AnsweringTheCaptureCr_IsTheCapturedCc()
    {
        var buffer = new byte[64];
        int n = CotpWriter.WriteConnectConfirm(buffer, 0x0007, 0x0003, 10, [0x01, 0x00], [0x01, 0x02]);
        // The captured CC orders C0, C1, C2 the same way.
        Assert.Equal(TpktFramerTests.ConnectConfirm, buffer.AsSpan(0, n).ToArray());
    }

    [Fact]
    public void WriteDisconnectRequest_RefusingAConnect_IsElevenExactBytes()
    {
        var buffer = new byte[16];
        Assert.Equal(11, CotpWriter.WriteDisconnectRequest(buffer, 0x0007, 0x0000, CotpWriter.DisconnectReasonAddressUnknown));
        Assert.Equal(Convert.FromHexString("0300000B06800007000003"), buffer.AsSpan(0, 11).ToArray());
        Assert.Equal(-1, CotpWriter.WriteDisconnectRequest(new byte[10], 1, 0, 0));
    }
}
