using EdgeShield.Protocols.Iec104;
using static EdgeShield.Protocols.Tests.Iec104.Iec104Frames;

namespace EdgeShield.Protocols.Tests.Iec104;

public class Iec104CommandTests
{
    // 090813_diverse frames 9 and 13: C_SC_TA_1 select then execute, ON, CA 3, IOA 4501 (the select's time tag says year 109).
    private static readonly byte[] SelectFrame = Hex("681528009c003a010600030095110081080017130d086d");
    private static readonly byte[] ExecuteFrame = Hex("68152a009e003a010600030095110001080017130d086d");

    private static Iec104Asdu Parse(byte[] asdu)
    {
        Assert.True(Iec104Asdu.TryParse(asdu, out var view, out var fault), Iec104FrameErrors.Describe(fault));
        return view;
    }

    private static Iec104Asdu ParseFrame(byte[] frame)
    {
        Assert.True(Iec104Apdu.TryParse(frame, out var apdu, out _));
        return Parse(apdu.Asdu.ToArray());
    }

    [Fact]
    public void CaptureSelectAndExecute_HaveTheSameKey()
    {
        var select = ParseFrame(SelectFrame);
        var execute = ParseFrame(ExecuteFrame);
        Assert.True(select.IsCommand);
        Assert.True(select.IsSelect);
        Assert.False(execute.IsSelect);
        Assert.True(select.QualifierValid);
        Assert.True(select.TryGetCommandKey(out var selectKey));
        Assert.True(execute.TryGetCommandKey(out var executeKey));
        Assert.Equal(selectKey, executeKey);
        Assert.Equal(new Iec104CommandKey(58, 3, 4501, 1ul << 32), selectKey);
        Assert.True(execute.TryGetValue(out double min, out double max));
        Assert.Equal(1, min);
        Assert.Equal(1, max);
    }

    [Fact]
    public void CommandKey_DiffersByTypeCaIoaValueAndQualifier_NotByTimeTag()
    {
        static Iec104CommandKey Key(byte[] asdu)
        {
            Assert.True(Iec104Asdu.TryParse(asdu, out var view, out _));
            Assert.True(view.TryGetCommandKey(out var key));
            return key;
        }
        var basis = Key(Command(50, 1, 3000, [0, 0, 0x48, 0x42, 0x80]));
        Assert.Equal(basis, Key(Command(50, 1, 3000, [0, 0, 0x48, 0x42, 0x00])));
        Assert.NotEqual(basis, Key(Command(50, 1, 3000, [0, 0, 0x48, 0x43, 0x80])));
        Assert.NotEqual(basis, Key(Command(50, 2, 3000, [0, 0, 0x48, 0x42, 0x80])));
        Assert.NotEqual(basis, Key(Command(50, 1, 3001, [0, 0, 0x48, 0x42, 0x80])));
        Assert.NotEqual(basis, Key(Command(50, 1, 3000, [0, 0, 0x48, 0x42, 0x81])));
        Assert.NotEqual(basis, Key(Command(63, 1, 3000, [0, 0, 0x48, 0x42, 0x80, 1, 2, 3, 4, 5, 6, 7])));
        Assert.Equal(Key(Command(63, 1, 3000, [0, 0, 0x48, 0x42, 0x80, 1, 2, 3, 4, 5, 6, 7])), Key(Command(63, 1, 3000, [0, 0, 0x48, 0x42, 0x00, 9, 9, 9, 9, 9, 9, 9])));
        Assert.NotEqual(Key(Command(45, 1, 1, [0x81])), Key(Command(45, 1, 1, [0x80])));
        Assert.NotEqual(Key(Command(45, 1, 1, [0x81])), Key(Command(45, 1, 1, [0x85])));
    }

    [Fact]
    public void CommandKey_SeveralObjectsOrNotACommand_IsNone()
    {
        Assert.False(Parse(Asdu(45, false, 2, 6, 1, [.. Ioa(1), 0x81, .. Ioa(2), 0x81])).TryGetCommandKey(out _));
        Assert.False(Parse(Asdu(100, false, 1, 6, 1, [.. Ioa(0), 20])).TryGetCommandKey(out _));
        Assert.False(Parse(Asdu(51, false, 1, 6, 1, [.. Ioa(0), 1, 2, 3, 4])).TryGetCommandKey(out _));
    }

    [Theory]
    [InlineData(45, 0x01, true)]
    [InlineData(45, 0x0D, true)]   // QU 3 persistent
    [InlineData(45, 0x11, false)]  // QU 4
    [InlineData(45, 0x7D, false)]  // QU 31
    [InlineData(46, 0x81, true)]
    [InlineData(46, 0x82, true)]
    [InlineData(46, 0x80, false)]  // DCO 0 not permitted
    [InlineData(46, 0x83, false)]  // DCO 3 not permitted
    [InlineData(47, 0x02, true)]
    [InlineData(47, 0x00, false)]
    [InlineData(47, 0x03, false)]
    [InlineData(59, 0x03, false)]
    [InlineData(60, 0x01, true)]
    public void QualifierValid_ChecksStatesAndQu(byte type, byte qualifier, bool valid)
    {
        byte[] element = type >= 58 ? [qualifier, 0, 0, 0, 0, 1, 1, 9] : [qualifier];
        var view = Parse(Command(type, 1, 100, element));
        Assert.Equal(valid, view.QualifierValid);
        Assert.Equal((qualifier & 0x80) != 0, view.IsSelect);
    }

    [Fact]
    public void QualifierValid_EveryObjectIsChecked_AndSelectCannotMixWithExecute()
    {
        Assert.False(Parse(Asdu(46, false, 2, 6, 1, [.. Ioa(1), 0x81, .. Ioa(2), 0x83])).QualifierValid);
        Assert.False(Parse(Asdu(46, false, 2, 6, 1, [.. Ioa(1), 0x81, .. Ioa(2), 0x01])).QualifierValid);
        Assert.True(Parse(Asdu(46, true, 2, 6, 1, [.. Ioa(1), 0x81, 0x82])).QualifierValid);
        Assert.False(Parse(Asdu(50, false, 2, 6, 1, [.. Ioa(1), 0, 0, 0, 0, 0x80, .. Ioa(2), 0, 0, 0, 0, 0x00])).QualifierValid);
        Assert.True(Parse(Asdu(1, false, 1, 3, 1, [.. Ioa(1), 0x83])).QualifierValid);
    }

    [Fact]
    public void TryGetValue_SetPoints_ReadAsTheStationReads()
    {
        // Normalised 0x4000 = 0.5 and 0x8000 = -1; scaled -2; float 50.0 and 150.5.
        var normalised = Parse(Asdu(48, false, 2, 6, 1, [.. Ioa(1), 0x00, 0x40, 0, .. Ioa(2), 0x00, 0x80, 0]));
        Assert.True(normalised.TryGetValue(out double min, out double max));
        Assert.Equal(-1.0, min);
        Assert.Equal(0.5, max);

        var scaled = Parse(Command(49, 1, 1, [0xFE, 0xFF, 0x80]));
        Assert.True(scaled.TryGetValue(out min, out max));
        Assert.Equal(-2, min);
        Assert.Equal(-2, max);
        Assert.True(scaled.IsSelect);

        byte[] f50 = BitConverter.GetBytes(50f), f150 = BitConverter.GetBytes(150.5f);
        var floats = Parse(Asdu(63, true, 2, 6, 1, [.. Ioa(3000), .. f150, 0, 1, 2, 3, 4, 5, 6, 7, .. f50, 0, 1, 2, 3, 4, 5, 6, 7]));
        Assert.True(floats.TryGetValue(out min, out max));
        Assert.Equal(50, min);
        Assert.Equal(150.5, max);
    }

    [Fact]
    public void TryGetValue_CommandStates_AreTheirValues()
    {
        Assert.True(Parse(Command(45, 1, 1, [0x80])).TryGetValue(out double min, out _));
        Assert.Equal(0, min);
        Assert.True(Parse(Command(46, 1, 1, [0x02])).TryGetValue(out min, out _));
        Assert.Equal(2, min);
        Assert.True(Parse(Command(47, 1, 1, [0x01])).TryGetValue(out min, out _));
        Assert.Equal(1, min);
    }

    [Fact]
    public void TryGetValue_NaNOrNotACommand_IsNoValue()
    {
        Assert.False(Parse(Command(50, 1, 1, [0, 0, 0xC0, 0x7F, 0])).TryGetValue(out _, out _));
        Assert.False(Parse(Asdu(13, false, 1, 3, 1, [.. Ioa(1), 0, 0, 0x48, 0x42, 0])).TryGetValue(out _, out _));
        Assert.False(Parse(Asdu(100, false, 1, 6, 1, [.. Ioa(0), 20])).TryGetValue(out _, out _));
    }

    [Fact]
    public void Values_DecodeLittleEndian()
    {
        Assert.Equal(0.5, Iec104Values.Normalised([0x00, 0x40]));
        Assert.Equal(-1.0, Iec104Values.Normalised([0x00, 0x80]));
        Assert.Equal(32767 / 32768.0, Iec104Values.Normalised([0xFF, 0x7F]));
        Assert.Equal((short)-32768, Iec104Values.Scaled([0x00, 0x80]));
        Assert.Equal((short)1000, Iec104Values.Scaled([0xE8, 0x03]));
        Assert.Equal(30f, Iec104Values.Float(Hex("0000F041")));
    }

    [Fact]
    public void Cp56Time2a_CaptureBytes_Decode()
    {
        // 090813_diverse frame 11 (the station's confirmation): 2009-08-13 19:23:00.008.
        var time = Cp56Time2a.Read(Hex("080017130d0809"));
        Assert.Equal(8, time.Milliseconds);
        Assert.Equal(0, time.Second);
        Assert.Equal(23, time.Minute);
        Assert.Equal(19, time.Hour);
        Assert.Equal(13, time.Day);
        Assert.Equal(0, time.DayOfWeek);
        Assert.Equal(8, time.Month);
        Assert.Equal(9, time.Year);
        Assert.False(time.Invalid);
        Assert.False(time.SummerTime);
        Assert.True(time.IsValid);
        Assert.Equal(new DateTime(2009, 8, 13, 19, 23, 0, 8), time.ToDateTime());

        // The same client's select wrote year 109 (years since 1900): out of range here.
        var select = Cp56Time2a.Read(Hex("080017130d086d"));
        Assert.Equal(109, select.Year);
        Assert.False(select.IsValid);
        Assert.False(select.TryToDateTime(out _));
        Assert.Equal(DateTime.MinValue, select.ToDateTime());
    }

    [Fact]
    public void Cp56Time2a_FlagsRangesAndWrite_RoundTrip()
    {
        var flagged = Cp56Time2a.Read(Hex("5BEA BB 97 A1 0C 1A"));
        Assert.Equal(59_995, flagged.Milliseconds);
        Assert.Equal(59, flagged.Second);
        Assert.Equal(59, flagged.Minute);
        Assert.True(flagged.Invalid);
        Assert.Equal(23, flagged.Hour);
        Assert.True(flagged.SummerTime);
        Assert.Equal(1, flagged.Day);
        Assert.Equal(5, flagged.DayOfWeek);
        Assert.Equal(12, flagged.Month);
        Assert.Equal(26, flagged.Year);
        Assert.True(flagged.IsValid);

        Assert.False(Cp56Time2a.Read(Hex("60EA 00 00 01 01 1A")).IsValid); // 60000 ms
        Assert.False(Cp56Time2a.Read(Hex("0000 3C 00 01 01 1A")).IsValid); // minute 60
        Assert.False(Cp56Time2a.Read(Hex("0000 00 18 01 01 1A")).IsValid); // hour 24
        Assert.False(Cp56Time2a.Read(Hex("0000 00 00 00 01 1A")).IsValid); // day 0
        Assert.False(Cp56Time2a.Read(Hex("0000 00 00 1E 02 1A")).IsValid); // 30 February
        Assert.False(Cp56Time2a.Read(Hex("0000 00 00 01 00 1A")).IsValid); // month 0
        Assert.False(Cp56Time2a.Read(Hex("0000 00 00 01 0D 1A")).IsValid); // month 13
        Assert.True(Cp56Time2a.Read(Hex("0000 00 00 1D 02 18")).IsValid);  // 29 February 2024

        var buffer = new byte[7];
        var when = new DateTime(2026, 12, 3, 8, 15, 42, 123);
        Cp56Time2a.Write(buffer, when, invalid: false, summerTime: true);
        var back = Cp56Time2a.Read(buffer);
        Assert.Equal(when, back.ToDateTime());
        Assert.True(back.SummerTime);
        Assert.Equal(4, back.DayOfWeek); // Thursday
    }

    [Fact]
    public void Sequence_WrapsAt15Bits()
    {
        Assert.Equal(0, Iec104Sequence.Next(32767));
        Assert.Equal(1, Iec104Sequence.Next(0));
        Assert.Equal(2, Iec104Sequence.Add(32765, 5));
        Assert.Equal(3, Iec104Sequence.Distance(32766, 1));
        Assert.Equal(32767, Iec104Sequence.Distance(1, 0));
        Assert.Equal(0, Iec104Sequence.Distance(5, 5));

        // Sent 32766, 32767, 0; next to send is 1.
        Assert.True(Iec104Sequence.IsAcknowledged(32766, 32767, 1));
        Assert.True(Iec104Sequence.IsAcknowledged(32767, 1, 1));
        Assert.False(Iec104Sequence.IsAcknowledged(0, 0, 1));
        Assert.False(Iec104Sequence.IsAcknowledged(0, 2, 1));
        Assert.True(Iec104Sequence.IsValidAcknowledgement(32766, 32766, 1));
        Assert.True(Iec104Sequence.IsValidAcknowledgement(32766, 1, 1));
        Assert.False(Iec104Sequence.IsValidAcknowledgement(32766, 2, 1));
        Assert.False(Iec104Sequence.IsValidAcknowledgement(32766, 32765, 1));
    }

    [Theory]
    [InlineData(100, 20, true)]   // station interrogation
    [InlineData(100, 21, true)]
    [InlineData(100, 36, true)]   // group 16
    [InlineData(100, 0, false)]
    [InlineData(100, 19, false)]
    [InlineData(100, 37, false)]
    [InlineData(100, 255, false)]
    [InlineData(101, 0x05, true)] // general counter request, no freeze
    [InlineData(101, 0x45, true)] // general, freeze without reset
    [InlineData(101, 0x01, true)] // group 1
    [InlineData(101, 0x00, false)]
    [InlineData(101, 0x06, false)]
    [InlineData(101, 0x60, false)]
    [InlineData(105, 1, true)]
    [InlineData(105, 2, true)]
    [InlineData(105, 0, false)]
    [InlineData(105, 3, false)]
    [InlineData(105, 128, false)]
    [InlineData(102, 0, true)]    // C_RD_NA_1 has no qualifier
    public void QualifierValid_SystemCommands_CheckQoiQccQrp(byte type, byte qualifier, bool valid)
    {
        byte[] element = type == 102 ? [] : [qualifier];
        var view = Parse(Asdu(type, false, 1, type == 102 ? (byte)5 : (byte)6, 1, [.. Ioa(0), .. element]));
        Assert.Equal(valid, view.QualifierValid);
        Assert.False(view.IsCommand);
        Assert.False(view.IsSelect);
    }
}
