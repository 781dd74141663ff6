using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Protocols.Tests.S7comm;

/// <summary>S7 PDUs from iti__s7__snap7_s300_everything.pcapng (frame numbers in the names) and hand-made malformed shapes.</summary>
public class S7PduTests
{
    private static byte[] H(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    internal static readonly byte[] SetupJob1 = H("32010000000000080000 F000 0001 0001 01E0");
    internal static readonly byte[] SetupAck2 = H("320300000000000800000000 F000 0001 0001 00F0");
    internal static readonly byte[] WriteReal49 = H("32010000180000 0E0008 0501 120A100800010000830000800007000479E9F642");
    internal static readonly byte[] WriteAck50 = H("320300001800000200010000 0501 FF");
    internal static readonly byte[] ReadReal51 = H("3201000019 00 000E 0000 0401 120A10080001000083000080");
    internal static readonly byte[] ReadAck52 = H("320300001900000200080000 0401 FF0700040000 0000");
    internal static readonly byte[] Write5Items53 = H("320100001A00003E0074 0505 120A100400100000830000 00 120A100200100000810000 00 120A100200100000820000 00 120A101D000800001D0000 00 120A101C000800001C0000 00"
        + "00040100ADDEADDEADDEADDEADDEADDEADDEADDEEFBEEFBEEFBEEFBEEFBEEFBEEFBEEFBE 00040080AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB 00040080BBBBBBBBBBBBBBBBADDEADDEADDEADDE 00090010EFBEEFBEEFBEEFBEEFBEEFBEEFBEEFBE 00090010FECAFECAFECAFECAFECAFECAFECAFECA");
    internal static readonly byte[] Write5Ack54 = H("320300001A000002000500000505FFFFFF0303");
    internal static readonly byte[] PlcStop57 = H("320100001C000010000029000000000009505F50524F4752414D");
    internal static readonly byte[] PiModu59 = H("320100001D000012000028000000000000FD000245500 55F4D4F4455".Replace(" ", ""));
    internal static readonly byte[] TimeSet47 = H("320700001700000800 0E 0001120411470200FF09000A00191602082308100002");
    internal static readonly byte[] TimeSetAck48 = H("3207000017 00000C0004 0001120812870202000000000A000000");
    internal static readonly byte[] AckError44 = H("32020000150000000000D20C");

    [Fact]
    public void ParseHeader_CaptureFrames_GiveTheirFields()
    {
        var h = S7Pdu.ParseHeader(SetupAck2);
        Assert.True(h.IsValid);
        Assert.Equal(S7Protocol.S7comm, h.Protocol);
        Assert.Equal(S7Rosctr.AckData, h.Rosctr);
        Assert.Equal(12, h.HeaderLength);
        Assert.Equal(8, h.ParameterLength);
        Assert.Equal(0, h.DataLength);
        var e = S7Pdu.ParseHeader(AckError44);
        Assert.Equal(S7Rosctr.Ack, e.Rosctr);
        Assert.Equal(0x1500, e.Reference); // snap7 puts its counter in the high byte
        Assert.Equal(0xD2, e.ErrorClass);
        Assert.Equal(0x0C, e.ErrorCode);
    }

    [Theory]
    [InlineData("", S7HeaderError.TooShort)]
    [InlineData("33010000000000000000", S7HeaderError.ProtocolIdUnknown)]
    [InlineData("32", S7HeaderError.TooShort)]
    [InlineData("32040000000000000000", S7HeaderError.RosctrUnknown)]
    [InlineData("320100000000000000", S7HeaderError.TooShort)]
    [InlineData("32030000000000000000", S7HeaderError.TooShort)]
    [InlineData("3201000000000000000200", S7HeaderError.LengthMismatch)]
    [InlineData("32010000000000010000", S7HeaderError.LengthMismatch)]
    [InlineData("3201000000000000000000", S7HeaderError.LengthMismatch)]
    [InlineData("720100", S7HeaderError.TooShort)]
    [InlineData("7201000500", S7HeaderError.PlusLengthBeyondPdu)]
    public void ParseHeader_MalformedShape_GivesItsError(string hex, S7HeaderError expected) =>
        Assert.Equal(expected, S7Pdu.ParseHeader(H(hex)).Error);

    [Fact]
    public void ParseRequest_S7commPlus_IsClassifiedWithSnortVocabulary()
    {
        // 72 | version 1 | length 12 | opcode 31 | reserved | function 054C (get multiple variables) | …  | trailer
        var request = S7Pdu.ParseRequest(H("7201000C 31 0000 054C 0000 0001 0000 00 72010000"));
        Assert.Equal(S7RequestStatus.Ok, request.Status);
        Assert.Equal(S7Function.S7commPlus, request.Function);
        Assert.Equal("s7comm-plus", S7Functions.PolicyWord(request.Function));
        var header = request.Header;
        Assert.Equal(S7PlusOpcode.Request, header.PlusOpcode);
        Assert.Equal(0x054C, header.PlusFunctionCode);
        Assert.Equal(S7PlusFunction.GetMultiVariables, header.PlusFunction);
        Assert.Equal(1, header.PlusVersion);
    }

    [Fact]
    public void ParseRequest_Setup_GivesAmqAndPduSize()
    {
        var r = S7Pdu.ParseRequest(SetupJob1);
        Assert.Equal(S7RequestStatus.Ok, r.Status);
        Assert.Equal(S7Function.SetupCommunication, r.Function);
        Assert.Equal((1, 1, 480), (r.AmqCalling, r.AmqCalled, (int)r.PduSize));
    }

    [Fact]
    public void ParseRequest_ReadVar_ItemAddressesFlagsByteSixteen()
    {
        var r = S7Pdu.ParseRequest(ReadReal51);
        Assert.Equal(S7RequestStatus.Ok, r.Status);
        Assert.Equal(S7Function.ReadVar, r.Function);
        Assert.Equal(1, r.ItemCount);
        int n = 0;
        foreach (var item in r.Items)
        {
            n++;
            Assert.Equal(S7SyntaxId.S7Any, item.Syntax);
            Assert.Equal(S7Area.Flags, item.Area);
            Assert.Equal(8, item.TransportSize); // REAL
            Assert.Equal(0x80, item.Address);
            Assert.Equal((16, 0, 16, 4), (item.ByteOffset, (int)item.BitOffset, item.Start, item.Length));
        }
        Assert.Equal(1, n);
        Assert.Equal(4, r.TotalItemBytes);
    }

    [Fact]
    public void ParseRequest_WriteVar_FiveItemsWithDataAndValues()
    {
        var r = S7Pdu.ParseRequest(Write5Items53);
        Assert.Equal(S7RequestStatus.Ok, r.Status);
        Assert.Equal(5, r.ItemCount);
        var seen = new List<(S7Area, int, int, int, byte)>();
        foreach (var item in r.Items)
        {
            seen.Add((item.Area, item.Start, item.Length, item.Data.Length, item.DataTransportSize));
            if (item.Index == 0)
            {
                Assert.Equal(16, item.ValueCount(S7ValueType.Int16));
                Assert.Equal(unchecked((short)0xADDE), item.ReadValue(S7ValueType.Int16, 0));
                Assert.Equal(0xADDE, item.ReadValue(S7ValueType.UInt16, 0));
                Assert.Equal(0xEFBEEFBE, item.ReadValue(S7ValueType.UInt32, 7));
                Assert.Equal(unchecked((int)0xADDEADDE), item.ReadValue(S7ValueType.Int32, 0));
                bool threw = false;
                try
                {
                    item.ReadValue(S7ValueType.Int32, 8);
                }
                catch (ArgumentOutOfRangeException)
                {
                    threw = true;
                }
                Assert.True(threw);
            }
        }
        Assert.Equal(
            [(S7Area.Flags, 0, 32, 32, 0x04), (S7Area.Inputs, 0, 16, 16, 0x04), (S7Area.Outputs, 0, 16, 16, 0x04), (S7Area.Timers, 0, 8, 16, 0x09), (S7Area.Counters, 0, 8, 16, 0x09)],
            seen);
    }

    [Fact]
    public void ParseRequest_WriteReal_ReadsFloat()
    {
        var r = S7Pdu.ParseRequest(WriteReal49);
        Assert.Equal(S7RequestStatus.Ok, r.Status);
        foreach (var item in r.Items)
        {
            Assert.Equal(BitConverter.Int32BitsToSingle(0x79E9F642), (float)item.ReadValue(S7ValueType.Float32, 0));
        }
    }

    [Fact]
    public void ParseRequest_PiServices_AreNamed()
    {
        var stop = S7Pdu.ParseRequest(PlcStop57);
        Assert.Equal(S7Function.PlcStop, stop.Function);
        Assert.True(stop.PiServiceIs("P_PROGRAM"u8));
        var modu = S7Pdu.ParseRequest(PiModu59);
        Assert.Equal(S7RequestStatus.Ok, modu.Status);
        Assert.Equal(S7Function.PlcControl, modu.Function);
        Assert.True(modu.PiServiceIs("_MODU"u8));
        Assert.Equal("EP"u8.ToArray(), modu.PiParameters.ToArray());
    }

    [Fact]
    public void ParseRequest_UserdataTimeSet_IsTimeSetWithItsGroupAndSequence()
    {
        var r = S7Pdu.ParseRequest(TimeSet47);
        Assert.Equal(S7RequestStatus.Ok, r.Status);
        Assert.Equal(S7Function.TimeSet, r.Function);
        Assert.Equal((S7UserdataType.Request, 7, 2, 0), (r.UserdataType, (int)r.UserdataGroup, (int)r.Subfunction, (int)r.SequenceNumber));
        Assert.Equal(10, r.UserdataPayload.Length);
    }

    [Theory]
    [InlineData(0x0, 1, S7Function.ModeTransition)]
    [InlineData(0x1, 2, S7Function.ProgrammerCommands)]
    [InlineData(0x2, 1, S7Function.CyclicData)]
    [InlineData(0x3, 1, S7Function.BlockFunctions)]
    [InlineData(0x4, 1, S7Function.CpuFunctions)]
    [InlineData(0x5, 1, S7Function.Security)]
    [InlineData(0x6, 1, S7Function.BsendBrecv)]
    [InlineData(0x7, 1, S7Function.TimeRead)]
    [InlineData(0x7, 3, S7Function.TimeRead)]
    [InlineData(0x7, 4, S7Function.TimeSet)]
    [InlineData(0xF, 1, S7Function.NcProgramming)]
    [InlineData(0x7, 9, S7Function.Unknown)]
    [InlineData(0x9, 1, S7Function.Unknown)]
    public void ParseRequest_UserdataGroups_MapToPolicyFunctions(byte group, byte subfunction, S7Function expected)
    {
        var pdu = H($"3207000001000008000400011204114{group:X1}{subfunction:X2}000A000000");
        var r = S7Pdu.ParseRequest(pdu);
        Assert.Equal(expected, r.Function);
        Assert.Equal(expected == S7Function.Unknown ? S7RequestStatus.OutOfSpec : S7RequestStatus.Ok, r.Status);
    }

    [Theory]
    // Malformed
    [InlineData("32030000000000000000 0000", S7RequestStatus.Malformed, S7RequestError.NotARequest)]
    [InlineData("33", S7RequestStatus.Malformed, S7RequestError.HeaderInvalid)]
    [InlineData("32010000000100000000", S7RequestStatus.Malformed, S7RequestError.ParametersEmpty)]
    [InlineData("32010000000000070000 F00000010001 01", S7RequestStatus.Malformed, S7RequestError.SetupLengthInvalid)]
    [InlineData("32010000000000080001 F000000100010 1E0 00", S7RequestStatus.Malformed, S7RequestError.SetupLengthInvalid)]
    [InlineData("32010000000000010000 04", S7RequestStatus.Malformed, S7RequestError.ItemCountMissing)]
    [InlineData("32010000000000020000 0401", S7RequestStatus.Malformed, S7RequestError.ItemSpecificationInvalid)]
    [InlineData("320100000000000E0000 0401 130A10080001000083000080", S7RequestStatus.Malformed, S7RequestError.ItemSpecificationInvalid)]
    [InlineData("320100000000000D0000 0401 1209100800010000830000", S7RequestStatus.Malformed, S7RequestError.ItemSpecificationInvalid)]
    [InlineData("320100000000000F0000 0401 120A10080001000083000080 00", S7RequestStatus.Malformed, S7RequestError.ParametersTrailing)]
    [InlineData("320100000000000E0001 0401 120A10080001000083000080 00", S7RequestStatus.Malformed, S7RequestError.UnexpectedData)]
    [InlineData("320100000000000E0004 0501 120A10080001000083000080 00070004", S7RequestStatus.Malformed, S7RequestError.DataBlockInvalid)]
    [InlineData("320100000000000E0009 0501 120A10080001000083000080 0007000479E9F642 00", S7RequestStatus.Malformed, S7RequestError.DataTrailing)]
    [InlineData("320100000000000F0000 29000000000009505F50524F475241", S7RequestStatus.Malformed, S7RequestError.PiServiceInvalid)]
    [InlineData("32010000000000100000 28000000000000FD0000 06 5F47415242", S7RequestStatus.Malformed, S7RequestError.PiServiceInvalid)]
    [InlineData("32070000000000080004 0001130411470100 0A000000", S7RequestStatus.Malformed, S7RequestError.UserdataHeadInvalid)]
    [InlineData("32070000000000080004 0001120811470100 0A000000", S7RequestStatus.Malformed, S7RequestError.UserdataHeadInvalid)]
    [InlineData("32070000000000080005 0001120411470100 0A00000000", S7RequestStatus.Malformed, S7RequestError.UserdataDataInvalid)]
    // OutOfSpec
    [InlineData("32010000000000010000 77", S7RequestStatus.OutOfSpec, S7RequestError.UnknownFunction)]
    [InlineData("32010000000000020000 0400", S7RequestStatus.OutOfSpec, S7RequestError.NoItems)]
    [InlineData("320100000000000E0000 0401 120A10080000000083000080", S7RequestStatus.OutOfSpec, S7RequestError.ZeroCount)]
    [InlineData("320100000000000E0000 0401 120A10330001000083000080", S7RequestStatus.OutOfSpec, S7RequestError.UnknownTransportSize)]
    [InlineData("320100000000000E0000 0401 120A10080001000099000080", S7RequestStatus.OutOfSpec, S7RequestError.UnknownArea)]
    [InlineData("320100000000000E0000 0401 120A10010002000083000080", S7RequestStatus.OutOfSpec, S7RequestError.BitAddressInvalid)]
    [InlineData("320100000000000E0000 0401 120A10080001000083000081", S7RequestStatus.OutOfSpec, S7RequestError.BitAddressInvalid)]
    [InlineData("320100000000000E0006 0501 120A10080001000083000080 00070002F642", S7RequestStatus.OutOfSpec, S7RequestError.WriteLengthMismatch)]
    [InlineData("32010000000000080000 F000000000010 1E0", S7RequestStatus.OutOfSpec, S7RequestError.SetupValueZero)]
    public void ParseRequest_BadShape_GivesItsStatusAndReason(string hex, S7RequestStatus status, S7RequestError error)
    {
        var r = S7Pdu.ParseRequest(H(hex));
        Assert.Equal((status, error), (r.Status, r.Error));
    }

    [Fact]
    public void ParseRequest_OtherSyntaxIds_AreClassifiedAndSkippedByTheirLength()
    {
        // DBREAD (B0) item of 7 bytes, then an S7ANY item.
        var r = S7Pdu.ParseRequest(H("32010000000000170000 0402 1207B0010400010000 120A10080001000083000080"));
        Assert.Equal(S7RequestStatus.Ok, r.Status);
        Assert.True(r.HasNonS7AnyItems);
        var syntaxes = new List<S7SyntaxId>();
        foreach (var item in r.Items)
        {
            syntaxes.Add(item.Syntax);
        }
        Assert.Equal([S7SyntaxId.DbRead, S7SyntaxId.S7Any], syntaxes);
    }

    [Fact]
    public void CheckResponse_CaptureAnswers_AreNormal()
    {
        Check(SetupJob1, SetupAck2, S7ResponseStatus.Normal, S7ResponseError.None);
        Check(ReadReal51, ReadAck52, S7ResponseStatus.Normal, S7ResponseError.None);
        Check(WriteReal49, WriteAck50, S7ResponseStatus.Normal, S7ResponseError.None);
        Check(Write5Items53, Write5Ack54, S7ResponseStatus.Normal, S7ResponseError.None);
        Check(TimeSet47, TimeSetAck48, S7ResponseStatus.Normal, S7ResponseError.None);
    }

    [Fact]
    public void CheckResponse_NegativeAnswers_AreError()
    {
        var startUpload = S7Pdu.ParseRequest(H("320100001500001200001D00000000000000095F3038303030303041")).Expectation(240);
        Assert.Equal(S7ResponseStatus.Error, S7Pdu.CheckResponse(AckError44, startUpload, out _));
        var buffer = new byte[32];
        int n = S7Pdu.WriteJobError(buffer, startUpload, S7Pdu.ErrorClassAccess, 0x03);
        Assert.Equal(S7ResponseStatus.Error, S7Pdu.CheckResponse(buffer.AsSpan(0, n), startUpload, out _));
        var time = S7Pdu.ParseRequest(TimeSet47).Expectation(240);
        n = S7Pdu.WriteUserdataError(buffer, time, S7Pdu.UserdataErrorNotPermitted);
        Assert.Equal(S7ResponseStatus.Error, S7Pdu.CheckResponse(buffer.AsSpan(0, n), time, out _));
    }

    [Fact]
    public void CheckResponse_WrongAnswers_AreMismatchWithTheirReason()
    {
        Check(ReadReal51, H("320300001A00000200080000 0401 FF07000400000000"), S7ResponseStatus.Mismatch, S7ResponseError.WrongReference);
        Check(ReadReal51, H("320300001900000200080000 0501 FF07000400000000"), S7ResponseStatus.Mismatch, S7ResponseError.WrongFunction);
        Check(ReadReal51, H("320100001900000200080000".Remove(4, 2).Insert(4, "01")[..20] + "0401 FF07000400000000"), S7ResponseStatus.Mismatch, S7ResponseError.WrongRosctr);
        Check(ReadReal51, H("3203000019000002000C0000 0402 FF07000400000000 FF070000"), S7ResponseStatus.Mismatch, S7ResponseError.WrongItemCount);
        Check(ReadReal51, H("3203000019000002000A0000 0401 FF0700060000000000 00"), S7ResponseStatus.Mismatch, S7ResponseError.DataTooLong);
        Check(ReadReal51, H("320300001900000200070000 0401 FF070004000000"), S7ResponseStatus.Mismatch, S7ResponseError.LengthInconsistent);
        Check(WriteReal49, H("320300001800000200020000 0501 FFFF"), S7ResponseStatus.Mismatch, S7ResponseError.LengthInconsistent);
        Check(SetupJob1, H("320300000000000800000000 F000 0001 0001 03C0"), S7ResponseStatus.Mismatch, S7ResponseError.SetupNotNegotiable);
        Check(SetupJob1, H("32020000000000000000 0000"), S7ResponseStatus.Mismatch, S7ResponseError.WrongRosctr);
        Check(TimeSet47, H("3207000017 00000C0004 0001120812830202000000000A000000"), S7ResponseStatus.Mismatch, S7ResponseError.WrongFunction);
        Check(TimeSet47, H("3201000017000000000000"), S7ResponseStatus.Mismatch, S7ResponseError.HeaderInvalid);
    }

    private static void Check(byte[] request, byte[] response, S7ResponseStatus status, S7ResponseError error)
    {
        var parsed = S7Pdu.ParseRequest(request);
        Assert.NotEqual(S7RequestStatus.Malformed, parsed.Status);
        var expectation = parsed.Expectation(240);
        Assert.Equal((status, error), (S7Pdu.CheckResponse(response, expectation, out var e), e));
    }

    [Fact]
    public void WriteJobError_IsAckDataWithErrorClassRefAndFunction()
    {
        var stop = S7Pdu.ParseRequest(PlcStop57).Expectation(240);
        var buffer = new byte[13];
        Assert.Equal(13, S7Pdu.WriteJobError(buffer, stop, 0x87, 0x03));
        Assert.Equal(H("320300001C00000100008703 29"), buffer);
        Assert.Equal(-1, S7Pdu.WriteJobError(new byte[12], stop, 0x83, 0x02));
    }

    [Fact]
    public void WriteItemErrors_ReadAndWrite_OneCodePerItemMirroringRefAndCount()
    {
        var buffer = new byte[64];
        var read = S7Pdu.ParseRequest(ReadReal51).Expectation(240);
        int n = S7Pdu.WriteItemErrors(buffer, read, [S7Items.ReturnAddressOutOfRange]);
        Assert.Equal(H("320300001900000200040000 0401 05000000"), buffer.AsSpan(0, n).ToArray());
        Assert.Equal(S7ResponseStatus.Normal, S7Pdu.CheckResponse(buffer.AsSpan(0, n), read, out _));

        var write = S7Pdu.ParseRequest(Write5Items53).Expectation(240);
        n = S7Pdu.WriteItemErrors(buffer, write, [3, 3, 5, 3, 3]);
        Assert.Equal(H("320300001A00000200050000 0505 0303050303"), buffer.AsSpan(0, n).ToArray());
        Assert.Equal(S7ResponseStatus.Normal, S7Pdu.CheckResponse(buffer.AsSpan(0, n), write, out _));
        Assert.Throws<ArgumentException>(() => S7Pdu.WriteItemErrors(buffer, write, [3]));
    }

    [Fact]
    public void WriteUserdataError_IsTheD0A1Response()
    {
        var time = S7Pdu.ParseRequest(TimeSet47).Expectation(240);
        var buffer = new byte[26];
        Assert.Equal(26, S7Pdu.WriteUserdataError(buffer, time, S7Pdu.UserdataErrorNotPermitted));
        Assert.Equal(H("320700001700000C0004 000112081287020000 00D0A1 0A000000"), buffer);
        var parsed = S7Pdu.ParseRequest(buffer);
        Assert.Equal((S7UserdataType.Response, S7Function.TimeSet, (ushort)0xD0A1), (parsed.UserdataType, parsed.Function, parsed.UserdataErrorCode));
    }

    [Fact]
    public void ClampSetupCommunication_RewritesJobAndAckDataInPlace()
    {
        var job = (byte[])SetupJob1.Clone();
        Assert.Equal(S7ClampResult.Clamped, S7Pdu.ClampSetupCommunication(job, 240, 1));
        Assert.Equal(240, S7Pdu.ParseRequest(job).PduSize);
        Assert.Equal(S7ClampResult.Unchanged, S7Pdu.ClampSetupCommunication(job, 240, 1));
        var ack = (byte[])SetupAck2.Clone();
        Assert.Equal(S7ClampResult.Clamped, S7Pdu.ClampSetupCommunication(ack, 200, 1));
        Assert.Equal(H("320300000000000800000000 F000 0001 0001 00C8"), ack);
        var amq = H("32010000000000080000 F000 0008 0008 01E0");
        Assert.Equal(S7ClampResult.Clamped, S7Pdu.ClampSetupCommunication(amq, 960, 2));
        Assert.Equal((2, 2, 480), (S7Pdu.ParseRequest(amq).AmqCalling, S7Pdu.ParseRequest(amq).AmqCalled, (int)S7Pdu.ParseRequest(amq).PduSize));
        Assert.Equal(S7ClampResult.NotSetup, S7Pdu.ClampSetupCommunication((byte[])ReadReal51.Clone(), 240, 1));
    }
}

/// <summary>Answers real peers give that a strict reading of the length fields would drop.</summary>
public class S7PeerAnswerTests
{
    [Fact]
    public void Snap7sAnswerToAReadOfAMissingDb_FailedItemWithALengthButNoData_IsANormalAnswer()
    {
        // snap7 1.4 server, read of DB7 bytes 0..3 (DB7 does not exist): item 0A 00 0004 and nothing after it.
        // tshark reads it without a malformed flag; the gateway must pass it on, not answer 0x01 instead.
        var request = S7Pdu.ParseRequest(Convert.FromHexString("32010000010000" + "0e0000" + "0401" + "120a10020004000784000000"));
        Assert.Equal(S7RequestStatus.Ok, request.Status);
        var answer = Convert.FromHexString("32030000010000020004" + "0000" + "0401" + "0a000004");
        Assert.Equal(S7ResponseStatus.Normal, S7Pdu.CheckResponse(answer, request.Expectation(480), out var error));
        Assert.Equal(S7ResponseError.None, error);
    }
}
