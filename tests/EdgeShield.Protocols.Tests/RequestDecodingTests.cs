using EdgeShield.Protocols.Modbus;
using static EdgeShield.Protocols.Tests.Frames;

namespace EdgeShield.Protocols.Tests;

public class RequestDecodingTests
{
    private static void AssertOutOfSpec(byte[] pdu, SpecViolation violation, byte exceptionCode)
    {
        var request = ModbusPdu.ParseRequest(pdu);
        Assert.Equal(RequestStatus.OutOfSpec, request.Status);
        Assert.Equal(violation, request.Violation);
        Assert.Equal(exceptionCode, request.SpecExceptionCode);
        Assert.Equal(FramingError.None, request.Error);
        Assert.Equal(pdu[0], request.FunctionCode);
    }

    private static void AssertMalformed(byte[] pdu, FramingError error)
    {
        var request = ModbusPdu.ParseRequest(pdu);
        Assert.Equal(RequestStatus.Malformed, request.Status);
        Assert.Equal(error, request.Error);
        Assert.Equal(0, request.SpecExceptionCode);
    }

    private static void AssertValid(byte[] pdu, ModbusFunction function)
    {
        var request = ModbusPdu.ParseRequest(pdu);
        Assert.Equal(RequestStatus.Valid, request.Status);
        Assert.Equal(SpecViolation.None, request.Violation);
        Assert.Equal(function, request.Function);
        Assert.Equal(pdu[0], request.FunctionCode);
    }

    [Fact]
    public void ParseRequest_EmptyPdu_IsMalformed() => AssertMalformed([], FramingError.PduTruncated);

    // ---- FC 1..4 -------------------------------------------------------------------------

    [Theory]
    [InlineData(1, ModbusFunction.ReadCoils, ModbusTable.Coils)]
    [InlineData(2, ModbusFunction.ReadDiscreteInputs, ModbusTable.DiscreteInputs)]
    [InlineData(3, ModbusFunction.ReadHoldingRegisters, ModbusTable.HoldingRegisters)]
    [InlineData(4, ModbusFunction.ReadInputRegisters, ModbusTable.InputRegisters)]
    public void ParseRequest_ReadBlock_IsValidWithReadSpan(byte fc, ModbusFunction function, ModbusTable table)
    {
        var request = ModbusPdu.ParseRequest(Words(fc, 0x0013, 0x0013));

        Assert.Equal(RequestStatus.Valid, request.Status);
        Assert.Equal(function, request.Function);
        Assert.Equal(new AddressSpan(table, 0x13, 0x13), request.ReadSpan);
        Assert.Equal(0x25, request.ReadSpan.Last);
        Assert.True(request.WriteSpan.IsEmpty);
        Assert.True(request.RegisterValues.IsEmpty);
    }

    [Theory]
    [InlineData(1, 2000)]
    [InlineData(2, 2000)]
    [InlineData(3, 125)]
    [InlineData(4, 125)]
    public void ParseRequest_ReadQuantityAtEdges_ValidInsideOutOfSpecOutside(byte fc, int max)
    {
        Assert.Equal(RequestStatus.Valid, ModbusPdu.ParseRequest(Words(fc, 0, 1)).Status);
        Assert.Equal(RequestStatus.Valid, ModbusPdu.ParseRequest(Words(fc, 0, (ushort)max)).Status);
        Assert.Equal(max, ModbusPdu.ParseRequest(Words(fc, 0, (ushort)max)).ReadSpan.Count);
        AssertOutOfSpec(Words(fc, 0, 0), SpecViolation.QuantityOutOfRange, ModbusExceptionCode.IllegalDataValue);
        AssertOutOfSpec(Words(fc, 0, (ushort)(max + 1)), SpecViolation.QuantityOutOfRange, ModbusExceptionCode.IllegalDataValue);
        AssertOutOfSpec(Words(fc, 0, 0xFFFF), SpecViolation.QuantityOutOfRange, ModbusExceptionCode.IllegalDataValue);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void ParseRequest_ReadPastAddress65535_IsOutOfSpecIllegalAddress(byte fc)
    {
        AssertOutOfSpec(Words(fc, 65535, 2), SpecViolation.AddressOverflow, ModbusExceptionCode.IllegalDataAddress);
        var last = ModbusPdu.ParseRequest(Words(fc, 65535, 1));
        Assert.Equal(RequestStatus.Valid, last.Status);
        Assert.Equal(65535, last.ReadSpan.Last);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    public void ParseRequest_FixedFiveBytePdu_WrongLengthIsMalformed(byte fc)
    {
        var pdu = Words(fc, 1, 0xFF00);
        for (int length = 1; length < 5; length++)
        {
            AssertMalformed(pdu[..length], FramingError.PduTruncated);
        }
        AssertMalformed(Cat(pdu, [0]), FramingError.TrailingBytes);
    }

    // ---- FC 5, 6 -------------------------------------------------------------------------

    [Theory]
    [InlineData(0x0000)]
    [InlineData(0xFF00)]
    public void ParseRequest_WriteSingleCoilOnOrOff_IsValid(ushort value)
    {
        var request = ModbusPdu.ParseRequest(Words(5, 0x00AC, value));

        Assert.Equal(RequestStatus.Valid, request.Status);
        Assert.Equal(ModbusFunction.WriteSingleCoil, request.Function);
        Assert.Equal(new AddressSpan(ModbusTable.Coils, 0xAC, 1), request.WriteSpan);
        Assert.True(request.ReadSpan.IsEmpty);
    }

    [Theory]
    [InlineData(0x1234)]
    [InlineData(0x00FF)]
    [InlineData(0x0001)]
    [InlineData(0xFFFF)]
    public void ParseRequest_WriteSingleCoilOtherValue_IsOutOfSpecIllegalValue(ushort value) =>
        AssertOutOfSpec(Words(5, 0x00AC, value), SpecViolation.CoilValueInvalid, ModbusExceptionCode.IllegalDataValue);

    [Fact]
    public void ParseRequest_WriteSingleRegister_IsValidWithValue()
    {
        var request = ModbusPdu.ParseRequest(Words(6, 0x0001, 0x0003));

        Assert.Equal(RequestStatus.Valid, request.Status);
        Assert.Equal(ModbusFunction.WriteSingleRegister, request.Function);
        Assert.Equal(new AddressSpan(ModbusTable.HoldingRegisters, 1, 1), request.WriteSpan);
        Assert.Equal(1, request.RegisterValueCount);
        Assert.Equal(0x0003, request.RegisterValue(0));
    }

    // ---- Serial-line functions -------------------------------------------------------------

    [Theory]
    [InlineData(7, ModbusFunction.ReadExceptionStatus)]
    [InlineData(11, ModbusFunction.GetCommEventCounter)]
    [InlineData(12, ModbusFunction.GetCommEventLog)]
    [InlineData(17, ModbusFunction.ReportServerId)]
    public void ParseRequest_NoDataFunction_ValidAloneMalformedWithData(byte fc, ModbusFunction function)
    {
        AssertValid([fc], function);
        AssertMalformed([fc, 0], FramingError.TrailingBytes);
    }

    [Fact]
    public void ParseRequest_DiagnosticsReturnQueryData_IsValidWithSubFunction()
    {
        var request = ModbusPdu.ParseRequest(Words(8, 0x0000, 0xA537));

        Assert.Equal(RequestStatus.Valid, request.Status);
        Assert.Equal(ModbusFunction.Diagnostics, request.Function);
        Assert.Equal(0x0000, request.SubFunction);
        Assert.Equal(0x0004, ModbusPdu.ParseRequest(Words(8, 0x0004, 0)).SubFunction);
        Assert.Equal(RequestStatus.Valid, ModbusPdu.ParseRequest(Words(8, 0x0000, 1, 2, 3)).Status);
    }

    [Fact]
    public void ParseRequest_DiagnosticsOddData_IsOutOfSpec() =>
        AssertOutOfSpec(Cat(Words(8, 0x0000, 0xA537), [0x01]), SpecViolation.DiagnosticsDataOdd, ModbusExceptionCode.IllegalDataValue);

    // A standard sub-function carries one data word; what follows it is not part of the PDU, as an RTU
    // framer delimits it (8 bytes). Fuzzing found FC 8/01 with 12 more bytes taken as valid over TCP and
    // framed differently on the bus (corpus/mbap/regression-diagnostics-trailing-*). Over TCP: 03.
    [Fact]
    public void ParseRequest_DiagnosticsStandardSubFunctionWithMoreThanOneWord_HasTrailingBytes()
    {
        AssertMalformed(Words(8, 0x0001, 0x0004, 0x0003), FramingError.TrailingBytes);
        AssertMalformed(Words(8, 0x000A, 0x0000, 0x0000), FramingError.TrailingBytes);
        var framed = ModbusPdu.ParseFramedRequest(Words(8, 0x0001, 0x0004, 0x0003));
        Assert.Equal(RequestStatus.OutOfSpec, framed.Status);
        Assert.Equal(ModbusExceptionCode.IllegalDataValue, framed.SpecExceptionCode);
        Assert.Equal(RequestStatus.Valid, ModbusPdu.ParseRequest(Words(8, 0x0001, 0x0004)).Status);
        Assert.Equal(RequestStatus.Valid, ModbusPdu.ParseRequest(Words(8, 0x0000, 0x0004, 0x0003)).Status);
    }

    [Fact]
    public void ParseRequest_DiagnosticsWithoutSubFunction_IsMalformed()
    {
        AssertMalformed([8], FramingError.PduTruncated);
        AssertMalformed([8, 0], FramingError.PduTruncated);
    }

    // ---- FC 15, 16 -----------------------------------------------------------------------

    [Fact]
    public void ParseRequest_WriteMultipleCoils_IsValidWithWriteSpan()
    {
        // Spec 6.11 example: 10 coils from 0x0013, byte count 2, values CD 01.
        var request = ModbusPdu.ParseRequest(Hex("0F 0013 000A 02 CD01"));

        Assert.Equal(RequestStatus.Valid, request.Status);
        Assert.Equal(ModbusFunction.WriteMultipleCoils, request.Function);
        Assert.Equal(new AddressSpan(ModbusTable.Coils, 0x13, 10), request.WriteSpan);
        Assert.True(request.ReadSpan.IsEmpty);
    }

    private static byte[] WriteCoils(ushort start, int quantity, int byteCount, int dataBytes) =>
        Cat(Words(15, start, (ushort)quantity), [(byte)byteCount], new byte[dataBytes]);

    [Fact]
    public void ParseRequest_WriteMultipleCoilsQuantityAtEdges_ValidInsideOutOfSpecOutside()
    {
        Assert.Equal(RequestStatus.Valid, ModbusPdu.ParseRequest(WriteCoils(0, 1, 1, 1)).Status);
        Assert.Equal(RequestStatus.Valid, ModbusPdu.ParseRequest(WriteCoils(0, 1968, 246, 246)).Status);
        AssertOutOfSpec(WriteCoils(0, 0, 0, 0), SpecViolation.QuantityOutOfRange, 3);
        AssertOutOfSpec(WriteCoils(0, 1969, 247, 247), SpecViolation.QuantityOutOfRange, 3);
    }

    [Fact]
    public void ParseRequest_WriteMultipleCoilsByteCountNotQuantity_IsOutOfSpec()
    {
        // Byte count agrees with the PDU length but not with ceil(10 / 8) = 2.
        AssertOutOfSpec(WriteCoils(0, 10, 3, 3), SpecViolation.ByteCountNotQuantity, 3);
        AssertOutOfSpec(WriteCoils(0, 8, 2, 2), SpecViolation.ByteCountNotQuantity, 3);
    }

    [Fact]
    public void ParseRequest_WriteMultipleCoilsByteCountNotPduLength_IsMalformed()
    {
        AssertMalformed(WriteCoils(0, 10, 2, 3), FramingError.TrailingBytes);
        AssertMalformed(WriteCoils(0, 10, 2, 1), FramingError.PduTruncated);
        AssertMalformed(Words(15, 0, 10), FramingError.PduTruncated);
    }

    [Fact]
    public void ParseRequest_WriteMultipleCoilsPastAddress65535_IsOutOfSpecIllegalAddress() =>
        AssertOutOfSpec(WriteCoils(65535, 2, 1, 1), SpecViolation.AddressOverflow, 2);

    private static byte[] WriteRegisters(ushort start, int quantity, int byteCount, int dataBytes)
    {
        var data = new byte[dataBytes];
        for (int i = 0; i < dataBytes; i++)
        {
            data[i] = (byte)i;
        }
        return Cat(Words(16, start, (ushort)quantity), [(byte)byteCount], data);
    }

    [Fact]
    public void ParseRequest_WriteMultipleRegisters_IsValidWithValues()
    {
        // Spec 6.12 example: 2 registers from 1, values 000A 0102.
        var request = ModbusPdu.ParseRequest(Hex("10 0001 0002 04 000A 0102"));

        Assert.Equal(RequestStatus.Valid, request.Status);
        Assert.Equal(ModbusFunction.WriteMultipleRegisters, request.Function);
        Assert.Equal(new AddressSpan(ModbusTable.HoldingRegisters, 1, 2), request.WriteSpan);
        Assert.Equal(2, request.RegisterValueCount);
        Assert.Equal(0x000A, request.RegisterValue(0));
        Assert.Equal(0x0102, request.RegisterValue(1));
    }

    [Fact]
    public void ParseRequest_WriteMultipleRegistersQuantityAtEdges_ValidInsideOutOfSpecOutside()
    {
        Assert.Equal(RequestStatus.Valid, ModbusPdu.ParseRequest(WriteRegisters(0, 1, 2, 2)).Status);
        var max = ModbusPdu.ParseRequest(WriteRegisters(0, 123, 246, 246));
        Assert.Equal(RequestStatus.Valid, max.Status);
        Assert.Equal(123, max.RegisterValueCount);
        AssertOutOfSpec(WriteRegisters(0, 0, 0, 0), SpecViolation.QuantityOutOfRange, 3);
        AssertOutOfSpec(WriteRegisters(0, 124, 248, 248), SpecViolation.QuantityOutOfRange, 3);
    }

    [Fact]
    public void ParseRequest_WriteMultipleRegistersByteCountNotTwiceQuantity_IsOutOfSpec()
    {
        AssertOutOfSpec(WriteRegisters(0, 2, 6, 6), SpecViolation.ByteCountNotQuantity, 3);
        AssertOutOfSpec(WriteRegisters(0, 2, 3, 3), SpecViolation.ByteCountNotQuantity, 3);
    }

    [Fact]
    public void ParseRequest_WriteMultipleRegistersByteCountNotPduLength_IsMalformed()
    {
        AssertMalformed(WriteRegisters(0, 2, 4, 5), FramingError.TrailingBytes);
        AssertMalformed(WriteRegisters(0, 2, 4, 3), FramingError.PduTruncated);
        AssertMalformed(Words(16, 0, 2), FramingError.PduTruncated);
    }

    [Fact]
    public void ParseRequest_WriteMultipleRegistersPastAddress65535_IsOutOfSpecIllegalAddress() =>
        AssertOutOfSpec(WriteRegisters(65535, 2, 4, 4), SpecViolation.AddressOverflow, 2);

    // ---- FC 20, 21 -----------------------------------------------------------------------

    [Fact]
    public void ParseRequest_ReadFileRecord_IsValid()
    {
        // Spec 6.14 example: two sub-requests (file 4 record 1 length 2, file 3 record 9 length 2).
        AssertValid(Hex("14 0E 06 0004 0001 0002 06 0003 0009 0002"), ModbusFunction.ReadFileRecord);
        AssertValid(Hex("14 07 06 0001 270F 0001"), ModbusFunction.ReadFileRecord);
    }

    [Fact]
    public void ParseRequest_ReadFileRecordBadSubRequest_IsOutOfSpec()
    {
        // Reference type 5, record 0x2710, byte count not a multiple of 7, byte count below 7.
        AssertOutOfSpec(Hex("14 07 05 0004 0001 0002"), SpecViolation.FileRecordInvalid, 3);
        AssertOutOfSpec(Hex("14 0E 06 0004 0001 0002 06 0003 2710 0002"), SpecViolation.FileRecordInvalid, 3);
        AssertOutOfSpec(Hex("14 08 06 0004 0001 0002 00"), SpecViolation.FileRecordInvalid, 3);
        AssertOutOfSpec(Hex("14 00"), SpecViolation.FileRecordInvalid, 3);
    }

    [Fact]
    public void ParseRequest_ReadFileRecordByteCountNotPduLength_IsMalformed()
    {
        AssertMalformed(Hex("14 0E 06 0004 0001 0002"), FramingError.PduTruncated);
        AssertMalformed(Hex("14 07 06 0004 0001 0002 06"), FramingError.TrailingBytes);
        AssertMalformed(Hex("14"), FramingError.PduTruncated);
    }

    [Fact]
    public void ParseRequest_WriteFileRecord_IsValid() =>
        // Spec 6.15 example: file 4, record 7, 3 registers.
        AssertValid(Hex("15 0D 06 0004 0007 0003 06AF 04BE 100D"), ModbusFunction.WriteFileRecord);

    [Fact]
    public void ParseRequest_WriteFileRecordBadSubRequest_IsOutOfSpec()
    {
        AssertOutOfSpec(Hex("15 0D 07 0004 0007 0003 06AF 04BE 100D"), SpecViolation.FileRecordInvalid, 3);
        AssertOutOfSpec(Hex("15 0D 06 0004 2710 0003 06AF 04BE 100D"), SpecViolation.FileRecordInvalid, 3);
        // Byte count 7 (below 9): a sub-request with no data.
        AssertOutOfSpec(Hex("15 07 06 0004 0007 0000"), SpecViolation.FileRecordInvalid, 3);
    }

    [Fact]
    public void ParseRequest_WriteFileRecordSubRequestsNotByteCount_IsMalformed()
    {
        // Record length 4 announces 8 data bytes; only 6 follow within the byte count.
        AssertMalformed(Hex("15 0D 06 0004 0007 0004 06AF 04BE 100D"), FramingError.ByteCountMismatch);
        // A sub-request header cut short.
        AssertMalformed(Hex("15 03 06 0004"), FramingError.ByteCountMismatch);
        AssertMalformed(Hex("15 0D 06 0004 0007 0003 06AF 04BE"), FramingError.PduTruncated);
    }

    // ---- FC 22, 23, 24 -------------------------------------------------------------------

    [Fact]
    public void ParseRequest_MaskWriteRegister_IsValidWithWriteSpan()
    {
        var request = ModbusPdu.ParseRequest(Hex("16 0004 00F2 0025"));

        Assert.Equal(RequestStatus.Valid, request.Status);
        Assert.Equal(ModbusFunction.MaskWriteRegister, request.Function);
        Assert.Equal(new AddressSpan(ModbusTable.HoldingRegisters, 4, 1), request.WriteSpan);
        AssertMalformed(Hex("16 0004 00F2"), FramingError.PduTruncated);
        AssertMalformed(Hex("16 0004 00F2 0025 00"), FramingError.TrailingBytes);
    }

    private static byte[] ReadWrite(ushort readStart, int readQuantity, ushort writeStart, int writeQuantity, int byteCount, int dataBytes) =>
        Cat(Words(23, readStart, (ushort)readQuantity, writeStart, (ushort)writeQuantity), [(byte)byteCount], new byte[dataBytes]);

    [Fact]
    public void ParseRequest_ReadWriteMultipleRegisters_IsValidWithBothSpans()
    {
        // Spec 6.17 example: read 6 from 3, write 3 at 14: 00FF 00FF 00FF.
        var request = ModbusPdu.ParseRequest(Hex("17 0003 0006 000E 0003 06 00FF 00FF 00FF"));

        Assert.Equal(RequestStatus.Valid, request.Status);
        Assert.Equal(ModbusFunction.ReadWriteMultipleRegisters, request.Function);
        Assert.Equal(new AddressSpan(ModbusTable.HoldingRegisters, 3, 6), request.ReadSpan);
        Assert.Equal(new AddressSpan(ModbusTable.HoldingRegisters, 14, 3), request.WriteSpan);
        Assert.Equal(3, request.RegisterValueCount);
        Assert.Equal(0x00FF, request.RegisterValue(2));
    }

    [Fact]
    public void ParseRequest_ReadWriteQuantitiesAtEdges_ValidInsideOutOfSpecOutside()
    {
        Assert.Equal(RequestStatus.Valid, ModbusPdu.ParseRequest(ReadWrite(0, 1, 0, 1, 2, 2)).Status);
        Assert.Equal(RequestStatus.Valid, ModbusPdu.ParseRequest(ReadWrite(0, 125, 0, 121, 242, 242)).Status);
        AssertOutOfSpec(ReadWrite(0, 0, 0, 1, 2, 2), SpecViolation.QuantityOutOfRange, 3);
        AssertOutOfSpec(ReadWrite(0, 126, 0, 1, 2, 2), SpecViolation.QuantityOutOfRange, 3);
        AssertOutOfSpec(ReadWrite(0, 1, 0, 0, 0, 0), SpecViolation.QuantityOutOfRange, 3);
        AssertOutOfSpec(ReadWrite(0, 1, 0, 122, 244, 244), SpecViolation.QuantityOutOfRange, 3);
    }

    [Fact]
    public void ParseRequest_ReadWriteByteCountNotTwiceWriteQuantity_IsOutOfSpec() =>
        AssertOutOfSpec(ReadWrite(0, 1, 0, 2, 2, 2), SpecViolation.ByteCountNotQuantity, 3);

    [Fact]
    public void ParseRequest_ReadWritePastAddress65535_IsOutOfSpecIllegalAddress()
    {
        AssertOutOfSpec(ReadWrite(65535, 2, 0, 1, 2, 2), SpecViolation.AddressOverflow, 2);
        AssertOutOfSpec(ReadWrite(0, 1, 65535, 2, 4, 4), SpecViolation.AddressOverflow, 2);
    }

    [Fact]
    public void ParseRequest_ReadWriteByteCountNotPduLength_IsMalformed()
    {
        AssertMalformed(ReadWrite(0, 1, 0, 1, 2, 3), FramingError.TrailingBytes);
        AssertMalformed(ReadWrite(0, 1, 0, 1, 2, 1), FramingError.PduTruncated);
        AssertMalformed(Words(23, 0, 1, 0, 1), FramingError.PduTruncated);
    }

    [Fact]
    public void ParseRequest_ReadFifoQueue_IsValidWithPointerAddress()
    {
        var request = ModbusPdu.ParseRequest(Words(24, 0x04DE));

        Assert.Equal(RequestStatus.Valid, request.Status);
        Assert.Equal(ModbusFunction.ReadFifoQueue, request.Function);
        Assert.Equal(new AddressSpan(ModbusTable.HoldingRegisters, 0x04DE, 1), request.ReadSpan);
        AssertMalformed(Hex("18 04"), FramingError.PduTruncated);
        AssertMalformed(Hex("18 04DE 00"), FramingError.TrailingBytes);
    }

    // ---- FC 43 ---------------------------------------------------------------------------

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void ParseRequest_ReadDeviceIdentification_IsValid(byte readCode)
    {
        var request = ModbusPdu.ParseRequest([0x2B, 0x0E, readCode, 0x00]);

        Assert.Equal(RequestStatus.Valid, request.Status);
        Assert.Equal(ModbusFunction.ReadDeviceIdentification, request.Function);
        Assert.Equal(14, request.MeiType);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(0xFF)]
    public void ParseRequest_ReadDeviceIdentificationBadReadCode_IsOutOfSpec(byte readCode) =>
        AssertOutOfSpec([0x2B, 0x0E, readCode, 0x00], SpecViolation.ReadDeviceIdCodeInvalid, 3);

    [Fact]
    public void ParseRequest_ReadDeviceIdentificationWrongLength_IsMalformed()
    {
        AssertMalformed([0x2B], FramingError.PduTruncated);
        AssertMalformed([0x2B, 0x0E, 0x01], FramingError.PduTruncated);
        AssertMalformed([0x2B, 0x0E, 0x01, 0x00, 0x00], FramingError.TrailingBytes);
        Assert.Equal(ModbusFunction.ReadDeviceIdentification, ModbusPdu.ParseRequest([0x2B, 0x0E, 0x01]).Function);
    }

    [Fact]
    public void ParseRequest_CanOpenGeneralReference_IsValid()
    {
        var request = ModbusPdu.ParseRequest([0x2B, 0x0D, 0x01, 0x02, 0x03]);

        Assert.Equal(RequestStatus.Valid, request.Status);
        Assert.Equal(ModbusFunction.CanOpenGeneralReference, request.Function);
        Assert.Equal(13, request.MeiType);
    }

    [Fact]
    public void ParseRequest_EncapsulatedInterfaceOtherMei_IsValidUnknown()
    {
        var request = ModbusPdu.ParseRequest([0x2B, 0x0F, 0x01]);

        Assert.Equal(RequestStatus.Valid, request.Status);
        Assert.Equal(ModbusFunction.Unknown, request.Function);
        Assert.Equal(0x0F, request.MeiType);
    }

    // ---- Code space ----------------------------------------------------------------------

    public static TheoryData<byte> UserDefinedCodes() => [65, 66, 67, 68, 69, 70, 71, 72, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110];

    [Theory]
    [MemberData(nameof(UserDefinedCodes))]
    public void ParseRequest_UserDefinedCode_IsValidUnknownProgramCode(byte fc)
    {
        AssertValid([fc, 0x01, 0x02, 0x03], ModbusFunction.Unknown);
        AssertValid([fc], ModbusFunction.Unknown);
        Assert.Equal(FunctionCodeClass.UserDefined, ModbusFunctions.ClassOf(fc));
        Assert.True(ModbusFunctions.IsProgramCode(fc));
        Assert.Null(ModbusFunctions.Name(ModbusPdu.ParseRequest([fc]).Function));
    }

    [Fact]
    public void ParseRequest_SchneiderUmas_IsValidUnknownProgramCode()
    {
        // UMAS: 0x5A, session byte, UMAS function code 0x02 (read PLC id).
        AssertValid([0x5A, 0x00, 0x02], ModbusFunction.Unknown);
        Assert.Equal(FunctionCodeClass.PublicUnassigned, ModbusFunctions.ClassOf(90));
        Assert.True(ModbusFunctions.IsProgramCode(90));
    }

    public static TheoryData<byte> UnassignedCodes()
    {
        var data = new TheoryData<byte>();
        byte[] assigned = [1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24, 43];
        for (int fc = 1; fc < 128; fc++)
        {
            if (Array.IndexOf(assigned, (byte)fc) < 0 && fc is not (>= 65 and <= 72) and not (>= 100 and <= 110))
            {
                data.Add((byte)fc);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(UnassignedCodes))]
    public void ParseRequest_UnassignedPublicCode_IsValidUnknown(byte fc)
    {
        AssertValid([fc, 0xAA], ModbusFunction.Unknown);
        Assert.Equal(FunctionCodeClass.PublicUnassigned, ModbusFunctions.ClassOf(fc));
        Assert.Equal(fc == 90, ModbusFunctions.IsProgramCode(fc));
    }

    [Fact]
    public void ParseRequest_FunctionCodeZeroOrExceptionRange_IsOutOfSpecIllegalFunction()
    {
        for (int fc = 0; fc < 256; fc = fc == 0 ? 128 : fc + 1)
        {
            AssertOutOfSpec([(byte)fc, 0x00, 0x00, 0x00, 0x01], SpecViolation.IllegalFunctionCode, ModbusExceptionCode.IllegalFunction);
            Assert.Equal(ModbusFunction.Unknown, ModbusPdu.ParseRequest([(byte)fc]).Function);
        }
        Assert.Equal(FunctionCodeClass.Zero, ModbusFunctions.ClassOf(0));
        Assert.Equal(FunctionCodeClass.ExceptionRange, ModbusFunctions.ClassOf(0x80));
        Assert.Equal(FunctionCodeClass.ExceptionRange, ModbusFunctions.ClassOf(0xFF));
    }

    [Theory]
    [InlineData(1, "read-coils")]
    [InlineData(3, "read-holding-registers")]
    [InlineData(23, "read-write-multiple-registers")]
    [InlineData(24, "read-fifo-queue")]
    public void Name_PublicFunction_IsSpecNameInKebabCase(byte fc, string name) =>
        Assert.Equal(name, ModbusFunctions.Name(ModbusFunctions.Classify(fc, 0)));

    [Fact]
    public void Name_EveryClassifiedPublicCode_HasName()
    {
        byte[] assigned = [1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24];
        foreach (byte fc in assigned)
        {
            Assert.Equal(FunctionCodeClass.Public, ModbusFunctions.ClassOf(fc));
            Assert.NotNull(ModbusFunctions.Name(ModbusFunctions.Classify(fc, 0)));
        }
        Assert.Equal("read-device-identification", ModbusFunctions.Name(ModbusFunctions.Classify(43, 14)));
        Assert.Equal("canopen-general-reference", ModbusFunctions.Name(ModbusFunctions.Classify(43, 13)));
        Assert.Equal(ModbusFunction.Unknown, ModbusFunctions.Classify(43, 0));
    }
}
