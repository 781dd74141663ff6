using System.Buffers;
using EdgeShield.Protocols.Iec104;
using static EdgeShield.Protocols.Tests.Iec104.Iec104Frames;

namespace EdgeShield.Protocols.Tests.Iec104;

public class Iec104ApduTests
{
    // From iti__IEC60870-5-104__TestDissectIec104.pcap: STARTDT act, STARTDT con, and an S-frame.
    private static readonly byte[] StartDtAct = Hex("680407000000");
    private static readonly byte[] StartDtCon = Hex("68040B000000");

    private static Iec104FrameError Malformed(string hex)
    {
        Assert.False(Iec104Apdu.TryParse(Hex(hex), out _, out var fault));
        Assert.True(fault.IsFault);
        return (Iec104FrameError)fault.Detail;
    }

    private static Iec104FrameError Undelimited(string hex)
    {
        Assert.Equal(OperationStatus.InvalidData, Iec104Framer.Instance.TryDelimit(Hex(hex), out int consumed, out var fault));
        Assert.Equal(0, consumed);
        return (Iec104FrameError)fault.Detail;
    }

    [Fact]
    public void TryDelimit_TwoFramesInOneBuffer_DelimitsTheFirst()
    {
        byte[] both = [.. StartDtAct, .. StartDtCon];
        Assert.Equal(OperationStatus.Done, Iec104Framer.Instance.TryDelimit(both, out int consumed, out var fault));
        Assert.Equal(6, consumed);
        Assert.False(fault.IsFault);
    }

    [Fact]
    public void TryDelimit_EveryPrefix_IsNeedMoreData()
    {
        var frame = IFrame(1, 2, Asdu(100, false, 1, 6, 1, [0, 0, 0, 20]));
        for (int i = 0; i < frame.Length; i++)
        {
            Assert.Equal(OperationStatus.NeedMoreData, Iec104Framer.Instance.TryDelimit(frame.AsSpan(0, i), out int consumed, out _));
            Assert.Equal(0, consumed);
        }
        Assert.Equal(OperationStatus.Done, Iec104Framer.Instance.TryDelimit(frame, out int all, out _));
        Assert.Equal(frame.Length, all);
    }

    [Fact]
    public void TryDelimit_BadStartOctet_IsNotThisProtocol()
    {
        Assert.Equal(OperationStatus.InvalidData, Iec104Framer.Instance.TryDelimit(Hex("03"), out _, out var fault));
        Assert.Equal(FrameFaultKind.NotThisProtocol, fault.Kind);
        Assert.Equal(Iec104FrameError.StartOctetInvalid, (Iec104FrameError)fault.Detail);
        Assert.Contains("0x68", Iec104Framer.Instance.Describe(fault), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("6800", Iec104FrameError.LengthTooShort)]
    [InlineData("6803", Iec104FrameError.LengthTooShort)]
    [InlineData("68FE", Iec104FrameError.LengthTooLong)]
    [InlineData("68FF", Iec104FrameError.LengthTooLong)]
    public void TryDelimit_LengthOutOfRange_IsRefusedOnTheLengthOctet(string hex, Iec104FrameError expected)
    {
        Assert.Equal(expected, Undelimited(hex));
        Iec104Framer.Instance.TryDelimit(Hex(hex), out _, out var fault);
        Assert.Equal(FrameFaultKind.LengthOutOfRange, fault.Kind);
    }

    [Fact]
    public void TryDelimit_Length253_IsTheLargestFrame()
    {
        var frame = new byte[255];
        frame[0] = 0x68;
        frame[1] = 253;
        Assert.Equal(OperationStatus.Done, Iec104Framer.Instance.TryDelimit(frame, out int consumed, out _));
        Assert.Equal(255, consumed);
    }

    [Fact]
    public void TryParse_UFrames_GiveTheirFunction()
    {
        foreach (var (c1, function) in new[] { (0x07, Iec104UFunction.StartDtAct), (0x0B, Iec104UFunction.StartDtCon), (0x13, Iec104UFunction.StopDtAct), (0x23, Iec104UFunction.StopDtCon), (0x43, Iec104UFunction.TestFrAct), (0x83, Iec104UFunction.TestFrCon) })
        {
            Assert.True(Iec104Apdu.TryParse([0x68, 4, (byte)c1, 0, 0, 0], out var apdu, out var fault));
            Assert.False(fault.IsFault);
            Assert.Equal(Iec104Format.U, apdu.Format);
            Assert.Equal(function, apdu.UFunction);
            Assert.True(apdu.Asdu.IsEmpty);
            Assert.NotEqual("invalid", Iec104UFunctions.Name(function));
        }
    }

    [Fact]
    public void TryParse_SFrame_GivesReceiveSequence()
    {
        Assert.True(Iec104Apdu.TryParse(Hex("680401009C00"), out var apdu, out _));
        Assert.Equal(Iec104Format.S, apdu.Format);
        Assert.Equal(78, apdu.ReceiveSequence);
        Assert.Equal(0, apdu.SendSequence);
    }

    [Fact]
    public void TryParse_IFrame_GivesBothSequencesAndTheAsdu()
    {
        // 090813_diverse frame 1: N(S) 77, N(R) 20, M_ME_NC_1, 2 objects.
        var frame = Hex("681A9A0028000D02010003001405000000F041001505000000314400");
        Assert.True(Iec104Apdu.TryParse(frame, out var apdu, out _));
        Assert.Equal(Iec104Format.I, apdu.Format);
        Assert.Equal(77, apdu.SendSequence);
        Assert.Equal(20, apdu.ReceiveSequence);
        Assert.Equal(22, apdu.Asdu.Length);
        Assert.Equal(Iec104UFunction.None, apdu.UFunction);
    }

    [Fact]
    public void TryParse_FifteenBitSequences_UseAllBits()
    {
        var frame = IFrame(32767, 32767, Asdu(100, false, 1, 6, 1, [0, 0, 0, 20]));
        Assert.Equal(Hex("FEFFFEFF"), frame.AsSpan(2, 4).ToArray());
        Assert.True(Iec104Apdu.TryParse(frame, out var apdu, out _));
        Assert.Equal(32767, apdu.SendSequence);
        Assert.Equal(32767, apdu.ReceiveSequence);
    }

    [Theory]
    [InlineData("", Iec104FrameError.StartOctetInvalid)]
    [InlineData("690400000000", Iec104FrameError.StartOctetInvalid)]
    [InlineData("68", Iec104FrameError.FrameLengthMismatch)]
    [InlineData("680201000000", Iec104FrameError.LengthTooShort)]
    [InlineData("6803010000", Iec104FrameError.LengthTooShort)]
    [InlineData("6804010000", Iec104FrameError.FrameLengthMismatch)]
    [InlineData("68040100000000", Iec104FrameError.FrameLengthMismatch)]
    // S-frames: exactly 4 control octets, C1 = 01, C2 = 0.
    [InlineData("68050100000000", Iec104FrameError.SFrameNotFourOctets)]
    [InlineData("680A01000200640101000100", Iec104FrameError.SFrameNotFourOctets)]
    [InlineData("680401010200", Iec104FrameError.SFrameControlInvalid)]
    [InlineData("680405000200", Iec104FrameError.SFrameControlInvalid)]
    // U-frames: exactly one function bit, C2..C4 = 0, no ASDU (CVE-2026-1773).
    [InlineData("680403000000", Iec104FrameError.UFrameNoFunction)]
    [InlineData("680447000000", Iec104FrameError.UFrameSeveralFunctions)]
    [InlineData("68040F000000", Iec104FrameError.UFrameSeveralFunctions)]
    [InlineData("6804FF000000", Iec104FrameError.UFrameSeveralFunctions)]
    [InlineData("680407010000", Iec104FrameError.UFrameControlNotZero)]
    [InlineData("680407000100", Iec104FrameError.UFrameControlNotZero)]
    [InlineData("680407000001", Iec104FrameError.UFrameControlNotZero)]
    [InlineData("680A07000000640101000100", Iec104FrameError.UFrameNotFourOctets)]
    [InlineData("68054300000000", Iec104FrameError.UFrameNotFourOctets)]
    // I-frames: at least the 6-octet ASDU header.
    [InlineData("680400000000", Iec104FrameError.AsduHeaderTruncated)]
    [InlineData("6809000000006401060001", Iec104FrameError.AsduHeaderTruncated)]
    public void TryParse_MalformedApci_IsRefusedWithItsDetail(string hex, Iec104FrameError expected) =>
        Assert.Equal(expected, Malformed(hex));

    [Fact]
    public void Describe_EveryError_HasItsOwnWords()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var error in Enum.GetValues<Iec104FrameError>())
        {
            string words = Iec104FrameErrors.Describe(error);
            Assert.True(seen.Add(words), $"{error}: '{words}' is not unique");
            Assert.NotEqual("unknown IEC 104 error", words);
            if (error != Iec104FrameError.None)
            {
                Assert.NotEqual(FrameFaultKind.None, Iec104FrameErrors.Kind(error));
            }
        }
    }
}
