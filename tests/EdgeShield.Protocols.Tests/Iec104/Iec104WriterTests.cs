using EdgeShield.Protocols.Iec104;
using static EdgeShield.Protocols.Tests.Iec104.Iec104Frames;

namespace EdgeShield.Protocols.Tests.Iec104;

public class Iec104WriterTests
{
    [Fact]
    public void WriteS_IsTheSFrameTsharkReads()
    {
        var buffer = new byte[6];
        Assert.Equal(6, Iec104Writer.WriteS(buffer, 78));
        Assert.Equal(Hex("680401009C00"), buffer);
        Assert.True(Iec104Apdu.TryParse(buffer, out var apdu, out _));
        Assert.Equal(Iec104Format.S, apdu.Format);
        Assert.Equal(78, apdu.ReceiveSequence);
    }

    [Fact]
    public void WriteU_EveryFunction_ReadsBack()
    {
        foreach (var function in new[] { Iec104UFunction.StartDtAct, Iec104UFunction.StartDtCon, Iec104UFunction.StopDtAct, Iec104UFunction.StopDtCon, Iec104UFunction.TestFrAct, Iec104UFunction.TestFrCon })
        {
            var buffer = new byte[6];
            Assert.Equal(6, Iec104Writer.WriteU(buffer, function));
            Assert.True(Iec104Apdu.TryParse(buffer, out var apdu, out _));
            Assert.Equal(Iec104Format.U, apdu.Format);
            Assert.Equal(function, apdu.UFunction);
        }
        var testFr = new byte[6];
        Iec104Writer.WriteU(testFr, Iec104UFunction.TestFrAct);
        Assert.Equal(Hex("680443000000"), testFr);
        Assert.Equal(Iec104UFunction.TestFrCon, Iec104UFunctions.Confirmation(Iec104UFunction.TestFrAct));
    }

    [Fact]
    public void WriteU_NoneOrTwoFunctions_IsTheCallersError()
    {
        var buffer = new byte[6];
        Assert.Throws<ArgumentOutOfRangeException>(() => Iec104Writer.WriteU(buffer, Iec104UFunction.None));
        Assert.Throws<ArgumentOutOfRangeException>(() => Iec104Writer.WriteU(buffer, Iec104UFunction.StartDtAct | Iec104UFunction.TestFrAct));
    }

    [Fact]
    public void WriteI_AndSetControl_RenumberWithoutTouchingTheAsdu()
    {
        var asdu = Asdu(100, false, 1, 6, 1, [0, 0, 0, 20]);
        var frame = new byte[6 + asdu.Length];
        Assert.Equal(frame.Length, Iec104Writer.WriteI(frame, 3, 4, asdu));
        Assert.Equal(Hex("680E06000800"), frame[..6]);
        Iec104Writer.SetControl(frame, 32767, 12345);
        Assert.True(Iec104Apdu.TryParse(frame, out var apdu, out _));
        Assert.Equal(32767, apdu.SendSequence);
        Assert.Equal(12345, apdu.ReceiveSequence);
        Assert.Equal(asdu, apdu.Asdu.ToArray());
        Assert.Throws<ArgumentException>(() => Iec104Writer.SetControl(Hex("680401000000"), 1, 1));
    }

    [Fact]
    public void WriteI_AsduOutsideItsLimits_IsTheCallersError()
    {
        var buffer = new byte[300];
        Assert.Throws<ArgumentOutOfRangeException>(() => Iec104Writer.WriteI(buffer, 0, 0, new byte[5]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Iec104Writer.WriteI(buffer, 0, 0, new byte[250]));
        Assert.Equal(255, Iec104Writer.WriteI(buffer, 0, 0, new byte[249]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Iec104Writer.WriteI(new byte[20], 0, 0, new byte[15]));
    }

    [Theory]
    [InlineData(44)]
    [InlineData(46)]
    [InlineData(47)]
    [InlineData(7)]
    [InlineData(9)]
    [InlineData(5)]
    public void WriteMirror_IsTheRequestWithCauseAndPn(byte cause)
    {
        var request = Asdu(46, false, 1, 6, 0xFFFF, [.. Ioa(2001), 0x82], originator: 3, test: true);
        var frame = new byte[6 + request.Length];
        Assert.Equal(frame.Length, Iec104Writer.WriteMirror(frame, 10, 20, request, cause, negative: true));
        Assert.True(Iec104Apdu.TryParse(frame, out var apdu, out _));
        Assert.Equal(10, apdu.SendSequence);
        Assert.Equal(20, apdu.ReceiveSequence);
        Assert.True(Iec104Asdu.TryParse(apdu.Asdu, out var answer, out _));
        Assert.Equal(cause, answer.Cause);
        Assert.True(answer.Negative);
        Assert.True(answer.Test);
        Assert.Equal(3, answer.Originator);
        Assert.Equal(0xFFFF, answer.CommonAddress);
        Assert.True(answer.IsGlobal);
        Assert.Equal(2001u, answer.FirstIoa);
        // Only the cause octet differs from the request.
        var expected = (byte[])request.Clone();
        expected[2] = (byte)(0x80 | 0x40 | cause);
        Assert.Equal(expected, apdu.Asdu.ToArray());

        Iec104Writer.WriteMirror(frame, 10, 20, request, 7, negative: false);
        Assert.Equal(0x87, frame[8]);
    }

    [Fact]
    public void WriteMirror_InPlace_OverTheRequestFrame()
    {
        // The session may answer in the receive buffer: the request's I-frame becomes the mirror.
        var request = Asdu(45, false, 1, 6, 1, [.. Ioa(5000), 0x81]);
        var frame = IFrame(7, 8, request);
        Assert.True(Iec104Apdu.TryParse(frame, out var apdu, out _));
        int n = Iec104Writer.WriteMirror(frame, 100, 200, apdu.Asdu, Iec104Causes.UnknownIoa, negative: true);
        Assert.Equal(frame.Length, n);
        Assert.True(Iec104Apdu.TryParse(frame, out var answer, out _));
        Assert.Equal(100, answer.SendSequence);
        Assert.True(Iec104Asdu.TryParse(answer.Asdu, out var asdu, out _));
        Assert.Equal(47, asdu.Cause);
        Assert.True(asdu.Negative);
        Assert.Equal(5000u, asdu.FirstIoa);
        Assert.True(Iec104Causes.IsAnswer(asdu.Cause, asdu.Negative));
    }

    [Theory]
    [InlineData(7, false, true)]
    [InlineData(7, true, true)]
    [InlineData(9, false, true)]
    [InlineData(10, false, true)]
    [InlineData(44, true, true)]
    [InlineData(47, true, true)]
    [InlineData(44, false, false)]
    [InlineData(6, false, false)]
    [InlineData(3, false, false)]
    [InlineData(48, true, false)]
    public void IsAnswer_ConfirmationsTerminationsAndNegativeUnknowns(byte cause, bool negative, bool answer) =>
        Assert.Equal(answer, Iec104Causes.IsAnswer(cause, negative));
}
