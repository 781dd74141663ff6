using System.Text;
using EdgeShield.Protocols.Modbus;
using static EdgeShield.Protocols.Tests.Frames;

namespace EdgeShield.Protocols.Tests;

public class ResponseCheckTests
{
    private static ResponseStatus Check(byte[] request, byte[] response, out ResponseError error)
    {
        var parsed = ModbusPdu.ParseRequest(request);
        Assert.NotEqual(RequestStatus.Malformed, parsed.Status);
        return ModbusPdu.CheckResponse(response, parsed.Expectation, out error);
    }

    private static void AssertNormal(byte[] request, byte[] response)
    {
        Assert.Equal(ResponseStatus.Normal, Check(request, response, out var error));
        Assert.Equal(ResponseError.None, error);
    }

    private static void AssertMismatch(byte[] request, byte[] response, ResponseError expected)
    {
        Assert.Equal(ResponseStatus.Mismatch, Check(request, response, out var error));
        Assert.Equal(expected, error);
    }

    // Spec section 6 examples: request, normal response.
    public static TheoryData<string, string> NormalPairs() => new()
    {
        { "01 0013 0013", "01 03 CD6B05" },
        { "02 00C4 0016", "02 03 ACDB35" },
        { "03 006B 0003", "03 06 022B 0000 0064" },
        { "04 0008 0001", "04 02 000A" },
        { "05 00AC FF00", "05 00AC FF00" },
        { "06 0001 0003", "06 0001 0003" },
        { "07", "07 6D" },
        { "08 0000 A537", "08 0000 A537" },
        { "08 000B 0000", "08 000B 0102" },
        { "0B", "0B FFFF 0108" },
        { "0C", "0C 08 0000 0108 0121 2000" },
        { "0C", "0C 06 0000 0000 0000" },
        { "0F 0013 000A 02 CD01", "0F 0013 000A" },
        { "10 0001 0002 04 000A 0102", "10 0001 0002" },
        { "11", "11 03 01 FF 00" },
        { "14 0E 06 0004 0001 0002 06 0003 0009 0002", "14 0C 05 06 0DFE 0020 05 06 33CD 0040" },
        // One sub-response of one record: 4 bytes, below the 0x07 of the spec's table, sent by real devices.
        { "14 07 06 0004 0001 0001", "14 04 03 06 0DFE" },
        { "15 0D 06 0004 0007 0003 06AF 04BE 100D", "15 0D 06 0004 0007 0003 06AF 04BE 100D" },
        { "16 0004 00F2 0025", "16 0004 00F2 0025" },
        { "17 0003 0006 000E 0003 06 00FF 00FF 00FF", "17 0C 00FE 0ACD 0001 0003 000D 00FF" },
        { "18 04DE", "18 0006 0002 01B8 1284" },
        { "18 04DE", "18 0002 0000" },
        { "2B 0E 01 00", "2B 0E 01 01 00 00 03 00 04 41424344 01 02 5858 02 05 5632 2E3131" },
        { "2B 0E 04 05", "2B 0E 04 83 00 00 01 05 03 414243" },
        { "2B 0E 01 00", "2B 0E 01 01 00 00 00" },
        { "2B 0D 01 02", "2B 0D 01 02 03" },
        { "41 0102", "41 03 04 05" },
        { "5A 00 02", "5A 00 FE 01" },
        { "64", "64" },
    };

    [Theory]
    [MemberData(nameof(NormalPairs))]
    public void CheckResponse_MatchingNormalResponse_IsNormal(string request, string response) =>
        AssertNormal(Hex(request), Hex(response));

    public static TheoryData<string> Requests() =>
    [
        "01 0000 0001", "02 0000 0001", "03 0000 0001", "04 0000 0001", "05 0000 FF00", "06 0000 0001",
        "07", "08 0000 0000", "0B", "0C", "0F 0000 0001 01 01", "10 0000 0001 02 0001", "11",
        "14 07 06 0001 0001 0001", "15 09 06 0001 0001 0001 0000", "16 0000 FFFF 0000",
        "17 0000 0001 0000 0001 02 0000", "18 0000", "2B 0E 01 00", "2B 0D 00", "41", "5A 00", "7F", "00", "80",
    ];

    [Theory]
    [MemberData(nameof(Requests))]
    public void CheckResponse_ExceptionOfSameFunction_IsException(string request)
    {
        var pdu = Hex(request);
        foreach (byte code in (byte[])[1, 2, 3, 4, 5, 6, 8, 0x0A, 0x0B])
        {
            // A request in the exception range is its own exception form: 0x80 is answered by 80 01.
            byte[] exception = [(byte)(pdu[0] | 0x80), code];
            Assert.Equal(ResponseStatus.Exception, Check(pdu, exception, out var error));
            Assert.Equal(ResponseError.None, error);
        }
    }

    [Theory]
    [MemberData(nameof(Requests))]
    public void CheckResponse_ExceptionNotTwoBytes_IsMismatch(string request)
    {
        var pdu = Hex(request);
        byte exceptionFc = (byte)(pdu[0] | 0x80);
        AssertMismatch(pdu, [exceptionFc], ResponseError.ExceptionLength);
        AssertMismatch(pdu, [exceptionFc, 0x02, 0x00], ResponseError.ExceptionLength);
    }

    [Theory]
    [MemberData(nameof(Requests))]
    public void CheckResponse_OtherFunctionOrItsException_IsWrongFunction(string request)
    {
        var pdu = Hex(request);
        byte other = pdu[0] == 3 ? (byte)4 : (byte)3;
        AssertMismatch(pdu, Hex("03 02 0000") is var r && other == 3 ? r : Hex("04 02 0000"), ResponseError.WrongFunction);
        AssertMismatch(pdu, [(byte)(other | 0x80), 0x01], ResponseError.WrongFunction);
    }

    [Theory]
    [MemberData(nameof(Requests))]
    public void CheckResponse_EmptyPdu_IsMismatch(string request) =>
        AssertMismatch(Hex(request), [], ResponseError.Empty);

    [Fact]
    public void CheckResponse_ReadBitsWrongByteCount_IsWrongLength()
    {
        var request = Words(1, 0, 19); // 19 coils: 3 bytes
        AssertNormal(request, Hex("01 03 000000"));
        AssertMismatch(request, Hex("01 02 0000"), ResponseError.WrongLength);
        AssertMismatch(request, Hex("01 04 00000000"), ResponseError.WrongLength);
        AssertMismatch(request, Hex("01 03 0000"), ResponseError.WrongLength);
        AssertMismatch(request, Hex("01 03 00000000"), ResponseError.WrongLength);
        AssertMismatch(request, Hex("01"), ResponseError.WrongLength);
        AssertNormal(Words(2, 0, 2000), Cat([2, 250], new byte[250]));
    }

    [Theory]
    [InlineData(3)]
    [InlineData(4)]
    public void CheckResponse_ReadRegistersWrongByteCount_IsWrongLength(byte fc)
    {
        var request = Words(fc, 0, 2);
        AssertNormal(request, [fc, 4, 0, 1, 0, 2]);
        AssertMismatch(request, [fc, 2, 0, 1], ResponseError.WrongLength);
        AssertMismatch(request, [fc, 4, 0, 1], ResponseError.WrongLength);
        AssertMismatch(request, [fc, 3, 0, 1, 0], ResponseError.WrongLength);
        AssertMismatch(request, [fc, 4, 0, 1, 0, 2, 0, 3], ResponseError.WrongLength);
        AssertNormal(Words(fc, 0, 125), Cat([fc, 250], new byte[250]));
    }

    [Fact]
    public void CheckResponse_ReadWriteWrongByteCount_IsWrongLength()
    {
        var request = Hex("17 0003 0006 000E 0003 06 00FF 00FF 00FF");
        // Byte count follows the read quantity (6), not the write quantity (3).
        AssertMismatch(request, Hex("17 06 00FE 0ACD 0001"), ResponseError.WrongLength);
        AssertMismatch(request, Hex("17 0C 00FE 0ACD 0001 0003 000D"), ResponseError.WrongLength);
    }

    [Theory]
    [InlineData("05 00AC FF00", "05 00AD FF00")]
    [InlineData("05 00AC FF00", "05 00AC 0000")]
    [InlineData("06 0001 0003", "06 0001 0004")]
    [InlineData("06 0001 0003", "06 0002 0003")]
    [InlineData("0F 0013 000A 02 CD01", "0F 0013 0009")]
    [InlineData("0F 0013 000A 02 CD01", "0F 0014 000A")]
    [InlineData("10 0001 0002 04 000A 0102", "10 0001 0001")]
    [InlineData("10 0001 0002 04 000A 0102", "10 0000 0002")]
    [InlineData("16 0004 00F2 0025", "16 0005 00F2 0025")]
    [InlineData("16 0004 00F2 0025", "16 0004 00F3 0025")]
    [InlineData("16 0004 00F2 0025", "16 0004 00F2 0026")]
    [InlineData("08 0000 A537", "08 0001 A537")]
    public void CheckResponse_WrongEcho_IsMismatch(string request, string response) =>
        AssertMismatch(Hex(request), Hex(response), ResponseError.WrongEcho);

    [Theory]
    [InlineData("05 00AC FF00", "05 00AC FF")]
    [InlineData("06 0001 0003", "06 0001 0003 00")]
    [InlineData("0F 0013 000A 02 CD01", "0F 0013 000A 02 CD01")]
    [InlineData("10 0001 0002 04 000A 0102", "10 0001")]
    [InlineData("16 0004 00F2 0025", "16 0004 00F2")]
    [InlineData("08 0000 A537", "08 0000 A537 00")]
    [InlineData("07", "07")]
    [InlineData("07", "07 6D 00")]
    [InlineData("0B", "0B FFFF 01")]
    [InlineData("0C", "0C 05 0000 0000 00")]
    [InlineData("0C", "0C 08 0000 0108 0121 20")]
    [InlineData("0C", "0C 47 0000 0000 0000 0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("11", "11 03 01 FF")]
    [InlineData("14 07 06 0004 0001 0002", "14 06 07 06 0DFE 0020")]
    [InlineData("14 07 06 0004 0001 0002", "14 0C 05 06 0DFE 0020")]
    [InlineData("15 0D 06 0004 0007 0003 06AF 04BE 100D", "15 0B 06 0004 0007 0002 06AF 04BE")]
    public void CheckResponse_WrongLength_IsMismatch(string request, string response) =>
        AssertMismatch(Hex(request), Hex(response), ResponseError.WrongLength);

    [Fact]
    public void CheckResponse_DiagnosticsWithoutData_EchoesSubFunction()
    {
        // The decoder accepts a diagnostics request with a sub-function and no data (N = 0 words);
        // its echo must then be checked against that sub-function, not against zero.
        var request = Hex("08 0001");
        Assert.Equal(RequestStatus.Valid, ModbusPdu.ParseRequest(request).Status);
        AssertNormal(request, Hex("08 0001"));
        AssertMismatch(request, Hex("08 0000"), ResponseError.WrongEcho);
    }

    [Theory]
    [InlineData("00", "00", ResponseError.WrongFunction)]
    [InlineData("00 0000", "00 0000", ResponseError.WrongFunction)]
    [InlineData("80 0001", "80 0001", ResponseError.ExceptionLength)]
    [InlineData("FF", "FF 01 02", ResponseError.ExceptionLength)]
    [InlineData("FF", "7F 01", ResponseError.WrongFunction)]
    public void CheckResponse_NormalResponseToIllegalFunctionCode_IsMismatch(string request, string response, ResponseError error) =>
        AssertMismatch(Hex(request), Hex(response), error);

    [Theory]
    [InlineData("08", "08")]
    [InlineData("08 00", "08 00")]
    public void CheckResponse_ExpectationOfTruncatedDiagnostics_IsWrongLengthWithoutThrowing(string request, string response)
    {
        // Such a request is Malformed and never forwarded, but the check must not read past the PDU.
        var parsed = ModbusPdu.ParseRequest(Hex(request));
        Assert.Equal(RequestStatus.Malformed, parsed.Status);
        Assert.Equal(ResponseStatus.Mismatch, ModbusPdu.CheckResponse(Hex(response), parsed.Expectation, out var error));
        Assert.Equal(ResponseError.WrongLength, error);
    }

    [Fact]
    public void CheckResponse_ReadFifoCounts_AreChecked()
    {
        var request = Words(24, 0x04DE);
        AssertNormal(request, Cat(Words(24, 64, 31), new byte[62]));
        // FIFO count 32 is over the limit of 31, even with a consistent byte count.
        AssertMismatch(request, Cat(Words(24, 66, 32), new byte[64]), ResponseError.WrongLength);
        // Byte count disagrees with FIFO count, or with the bytes that follow.
        AssertMismatch(request, Hex("18 0004 0002 01B8 1284"), ResponseError.WrongLength);
        AssertMismatch(request, Hex("18 0006 0002 01B8"), ResponseError.WrongLength);
        AssertMismatch(request, Hex("18 0006 0002 01B8 1284 00"), ResponseError.WrongLength);
        AssertMismatch(request, Hex("18 0006"), ResponseError.WrongLength);
    }

    private static byte[] DeviceId(params string[] values)
    {
        var objects = new List<byte>();
        for (int i = 0; i < values.Length; i++)
        {
            objects.Add((byte)i);
            objects.Add((byte)values[i].Length);
            objects.AddRange(Encoding.ASCII.GetBytes(values[i]));
        }
        return Cat([0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, (byte)values.Length], [.. objects]);
    }

    [Fact]
    public void CheckResponse_DeviceIdentificationObjectWalk_IsChecked()
    {
        var request = Hex("2B 0E 01 00");
        var good = DeviceId("Company identification", "Product code XX", "V2.11");
        AssertNormal(request, good);

        // Object list cut short, one byte too many, object count too high or too low.
        AssertMismatch(request, good[..^1], ResponseError.WrongLength);
        AssertMismatch(request, Cat(good, [0]), ResponseError.WrongLength);
        var countHigh = (byte[])good.Clone();
        countHigh[6] = 4;
        AssertMismatch(request, countHigh, ResponseError.WrongLength);
        var countLow = (byte[])good.Clone();
        countLow[6] = 2;
        AssertMismatch(request, countLow, ResponseError.WrongLength);
        // An object length running past the end.
        var longObject = (byte[])good.Clone();
        longObject[8] = 0xFF;
        AssertMismatch(request, longObject, ResponseError.WrongLength);
        AssertMismatch(request, Hex("2B 0E 01 01 00 00"), ResponseError.WrongLength);
        // A response of the other MEI type.
        AssertMismatch(request, Hex("2B 0D 01 01 00 00 00"), ResponseError.WrongEcho);
        AssertMismatch(request, Hex("2B"), ResponseError.WrongEcho);
    }

    [Fact]
    public void Expectation_IsTwentyBytesWithoutReferences()
    {
        // 16 until FC 8/00 and FC 20 answers were checked by content (a 4-byte digest).
        Assert.Equal(20, System.Runtime.CompilerServices.Unsafe.SizeOf<ResponseExpectation>());
        Assert.False(System.Runtime.CompilerServices.RuntimeHelpers.IsReferenceOrContainsReferences<ResponseExpectation>());
    }

    [Theory]
    // FC 8/00 return query data: the echo is the request, byte for byte.
    [InlineData("08 0000 1234 5678", "08 0000 1234 5679", ResponseError.WrongEcho)]
    [InlineData("08 0000 1234", "08 0000 4321", ResponseError.WrongEcho)]
    // FC 20: one sub-response per sub-request, with the record length asked for (2 records here).
    [InlineData("14 07 06 0004 0001 0002", "14 0C 05 06 0001 0002 05 06 0003 0004", ResponseError.WrongRecords)]
    [InlineData("14 07 06 0004 0001 0002", "14 08 07 06 0001 0002 0003", ResponseError.WrongRecords)]
    // Exception code 0 is no exception at all.
    [InlineData("03 0000 0001", "83 00", ResponseError.ExceptionCodeInvalid)]
    // FC 43/14: another read code, or (individual access) another object than asked.
    [InlineData("2B 0E 01 00", "2B 0E 02 01 00 00 01 00 03 414243", ResponseError.WrongDeviceIdObject)]
    [InlineData("2B 0E 04 01", "2B 0E 04 01 00 00 01 02 03 414243", ResponseError.WrongDeviceIdObject)]
    [InlineData("2B 0E 04 01", "2B 0E 04 01 00 00 02 01 01 41 02 01 42", ResponseError.WrongDeviceIdObject)]
    // Individual access answered with one object and nothing after the count: the object id is not there
    // to compare (fuzzing found the read past the end, corpus/pdu-*/regression-device-id-individual-no-object).
    [InlineData("2B 0E 04 01", "2B 0E 04 01 00 00 01", ResponseError.WrongDeviceIdObject)]
    public void CheckResponse_ContentThatDoesNotAnswerTheRequest_IsMismatch(string request, string response, ResponseError expected) =>
        AssertMismatch(Hex(request), Hex(response), expected);

    [Theory]
    [InlineData("08 0000 1234 5678", "08 0000 1234 5678")]
    [InlineData("08 000B 0000", "08 000B 002A")] // a counter sub-function returns data in place of 0000
    [InlineData("14 0E 06 0004 0001 0002 06 0003 0009 0001", "14 0A 05 06 0001 0002 03 06 00FF")]
    [InlineData("2B 0E 04 01", "2B 0E 04 01 00 00 01 01 03 414243")]
    [InlineData("2B 0E 01 05", "2B 0E 01 01 00 00 01 00 03 414243")] // stream access may restart at object 0
    public void CheckResponse_ContentThatAnswersTheRequest_IsNormal(string request, string response) =>
        AssertNormal(Hex(request), Hex(response));

    [Fact]
    public void ClearPaddingBits_Fc1BitsAfterTheLastCoil_AreClearedAndReported()
    {
        var expectation = ModbusPdu.ParseRequest(Hex("01 0000 000A")).Expectation; // 10 coils: 6 padding bits
        var response = Hex("01 02 FF FF");

        Assert.Equal(ResponseStatus.Normal, ModbusPdu.CheckResponse(response, expectation, out _));
        Assert.True(ModbusPdu.ClearPaddingBits(response, expectation));
        Assert.Equal(Hex("01 02 FF 03"), response);
        Assert.False(ModbusPdu.ClearPaddingBits(response, expectation));

        var eight = ModbusPdu.ParseRequest(Hex("02 0000 0008")).Expectation;
        Assert.False(ModbusPdu.ClearPaddingBits(Hex("02 01 FF"), eight));
    }
}
