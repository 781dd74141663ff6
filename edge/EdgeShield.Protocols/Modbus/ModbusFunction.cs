namespace EdgeShield.Protocols.Modbus;

/// <summary>
/// Function codes of the Modbus Application Protocol Specification V1.1b3, section 5.1,
/// plus the two MEI sub-functions of code 43 that the spec defines (section 6.19–6.21).
/// </summary>
/// <remarks>
/// A wire byte is never cast to this enum: <see cref="ModbusFunctions.Classify"/> maps it with an
/// explicit arm for codes the spec does not define.
/// </remarks>
public enum ModbusFunction : byte
{
    /// <summary>A code the spec does not define as a public function (user-defined, reserved or an exception code).</summary>
    Unknown = 0,
    ReadCoils = 1,
    ReadDiscreteInputs = 2,
    ReadHoldingRegisters = 3,
    ReadInputRegisters = 4,
    WriteSingleCoil = 5,
    WriteSingleRegister = 6,
    ReadExceptionStatus = 7,
    Diagnostics = 8,
    GetCommEventCounter = 11,
    GetCommEventLog = 12,
    WriteMultipleCoils = 15,
    WriteMultipleRegisters = 16,
    ReportServerId = 17,
    ReadFileRecord = 20,
    WriteFileRecord = 21,
    MaskWriteRegister = 22,
    ReadWriteMultipleRegisters = 23,
    ReadFifoQueue = 24,
    /// <summary>Function 43, MEI type 13.</summary>
    CanOpenGeneralReference = 200,
    /// <summary>Function 43, MEI type 14.</summary>
    ReadDeviceIdentification = 201,
}

/// <summary>Where a function code lies in the code space of the spec (section 5).</summary>
public enum FunctionCodeClass : byte
{
    /// <summary>Public code with no function assigned (reserved for future use).</summary>
    PublicUnassigned = 0,
    /// <summary>Public code with a function the spec defines.</summary>
    Public,
    /// <summary>65–72 and 100–110: user-defined, where vendors put engineering and programming services (e.g. 90 is not; see <see cref="ModbusFunctions.IsProgramCode"/>).</summary>
    UserDefined,
    /// <summary>128–255: the exception-response range, never a valid request.</summary>
    ExceptionRange,
    /// <summary>Code 0, never valid.</summary>
    Zero,
}

/// <summary>Function-code facts and names.</summary>
public static class ModbusFunctions
{
    /// <summary>Function code 43, Encapsulated Interface Transport.</summary>
    public const byte EncapsulatedInterface = 43;
    /// <summary>MEI type of CANopen General Reference.</summary>
    public const byte MeiCanOpen = 13;
    /// <summary>MEI type of Read Device Identification.</summary>
    public const byte MeiDeviceIdentification = 14;

    /// <summary>Maps a function byte (and, for 43, its MEI type) to a known function, or <see cref="ModbusFunction.Unknown"/>.</summary>
    public static ModbusFunction Classify(byte functionCode, byte meiType) => functionCode switch
    {
        1 => ModbusFunction.ReadCoils,
        2 => ModbusFunction.ReadDiscreteInputs,
        3 => ModbusFunction.ReadHoldingRegisters,
        4 => ModbusFunction.ReadInputRegisters,
        5 => ModbusFunction.WriteSingleCoil,
        6 => ModbusFunction.WriteSingleRegister,
        7 => ModbusFunction.ReadExceptionStatus,
        8 => ModbusFunction.Diagnostics,
        11 => ModbusFunction.GetCommEventCounter,
        12 => ModbusFunction.GetCommEventLog,
        15 => ModbusFunction.WriteMultipleCoils,
        16 => ModbusFunction.WriteMultipleRegisters,
        17 => ModbusFunction.ReportServerId,
        20 => ModbusFunction.ReadFileRecord,
        21 => ModbusFunction.WriteFileRecord,
        22 => ModbusFunction.MaskWriteRegister,
        23 => ModbusFunction.ReadWriteMultipleRegisters,
        24 => ModbusFunction.ReadFifoQueue,
        EncapsulatedInterface => meiType switch
        {
            MeiCanOpen => ModbusFunction.CanOpenGeneralReference,
            MeiDeviceIdentification => ModbusFunction.ReadDeviceIdentification,
            _ => ModbusFunction.Unknown,
        },
        _ => ModbusFunction.Unknown,
    };

    /// <summary>The class of a function byte in the spec's code space.</summary>
    public static FunctionCodeClass ClassOf(byte functionCode) => functionCode switch
    {
        0 => FunctionCodeClass.Zero,
        >= 128 => FunctionCodeClass.ExceptionRange,
        >= 65 and <= 72 => FunctionCodeClass.UserDefined,
        >= 100 and <= 110 => FunctionCodeClass.UserDefined,
        1 or 2 or 3 or 4 or 5 or 6 or 7 or 8 or 11 or 12 or 15 or 16 or 17 or 20 or 21 or 22 or 23 or 24 or 43 => FunctionCodeClass.Public,
        _ => FunctionCodeClass.PublicUnassigned,
    };

    /// <summary>
    /// The codes of the policy group <c>program</c>: user-defined codes (65–72, 100–110) and 90,
    /// which Schneider Electric uses for UMAS (Unity engineering: download, start/stop, memory writes).
    /// </summary>
    public static bool IsProgramCode(byte functionCode) =>
        functionCode is (>= 65 and <= 72) or 90 or (>= 100 and <= 110);

    /// <summary>The spec's name in kebab case, as used in policies and audit events; null for unknown functions.</summary>
    public static string? Name(ModbusFunction function) => function switch
    {
        ModbusFunction.ReadCoils => "read-coils",
        ModbusFunction.ReadDiscreteInputs => "read-discrete-inputs",
        ModbusFunction.ReadHoldingRegisters => "read-holding-registers",
        ModbusFunction.ReadInputRegisters => "read-input-registers",
        ModbusFunction.WriteSingleCoil => "write-single-coil",
        ModbusFunction.WriteSingleRegister => "write-single-register",
        ModbusFunction.ReadExceptionStatus => "read-exception-status",
        ModbusFunction.Diagnostics => "diagnostics",
        ModbusFunction.GetCommEventCounter => "get-comm-event-counter",
        ModbusFunction.GetCommEventLog => "get-comm-event-log",
        ModbusFunction.WriteMultipleCoils => "write-multiple-coils",
        ModbusFunction.WriteMultipleRegisters => "write-multiple-registers",
        ModbusFunction.ReportServerId => "report-server-id",
        ModbusFunction.ReadFileRecord => "read-file-record",
        ModbusFunction.WriteFileRecord => "write-file-record",
        ModbusFunction.MaskWriteRegister => "mask-write-register",
        ModbusFunction.ReadWriteMultipleRegisters => "read-write-multiple-registers",
        ModbusFunction.ReadFifoQueue => "read-fifo-queue",
        ModbusFunction.CanOpenGeneralReference => "canopen-general-reference",
        ModbusFunction.ReadDeviceIdentification => "read-device-identification",
        _ => null,
    };
}
