namespace EdgeShield.Protocols.Modbus;

/// <summary>Exception codes, Modbus Application Protocol Specification V1.1b3, section 7.</summary>
public static class ModbusExceptionCode
{
    public const byte IllegalFunction = 0x01;
    public const byte IllegalDataAddress = 0x02;
    public const byte IllegalDataValue = 0x03;
    public const byte ServerDeviceFailure = 0x04;
    public const byte Acknowledge = 0x05;
    public const byte ServerDeviceBusy = 0x06;
    public const byte MemoryParityError = 0x08;
    public const byte GatewayPathUnavailable = 0x0A;
    public const byte GatewayTargetFailedToRespond = 0x0B;

    /// <summary>The bit a server sets in the function code of an exception response.</summary>
    public const byte ExceptionFlag = 0x80;
}
