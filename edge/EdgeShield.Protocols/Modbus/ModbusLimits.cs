namespace EdgeShield.Protocols.Modbus;

/// <summary>Hard limits of the Modbus Application Protocol Specification V1.1b3 and the TCP implementation guide.</summary>
public static class ModbusLimits
{
    /// <summary>MBAP header: transaction id, protocol id, length, unit id.</summary>
    public const int MbapHeaderLength = 7;
    /// <summary>Bytes before the MBAP length field counts: transaction id, protocol id, length.</summary>
    public const int MbapPrefixLength = 6;
    /// <summary>Smallest MBAP length: unit id and function code.</summary>
    public const int MinMbapLength = 2;
    /// <summary>Largest MBAP length: unit id and a 253-byte PDU.</summary>
    public const int MaxMbapLength = 254;
    /// <summary>Largest PDU (section 4.1: 256-byte RTU ADU less address and CRC).</summary>
    public const int MaxPduLength = 253;
    /// <summary>Largest Modbus TCP ADU of a public function code.</summary>
    public const int MaxTcpAduLength = MbapPrefixLength + MaxMbapLength;
    /// <summary>
    /// Largest MBAP length of a user-defined or vendor function code (<see cref="ModbusFunctions.IsProgramCode"/>:
    /// 65–72, 90, 100–110). Schneider's UMAS (90) sends MBAP length 255 both ways in a real Modicon
    /// capture (tests/data/modbus/iti__modicon__modicon_test.pcap); 260 leaves a few bytes of room over
    /// the largest seen while every receive buffer still holds many such ADUs.
    /// </summary>
    public const int MaxVendorMbapLength = 260;
    /// <summary>Largest Modbus TCP ADU of any function code: what a buffer that holds one whole ADU must hold.</summary>
    public const int MaxVendorTcpAduLength = MbapPrefixLength + MaxVendorMbapLength;

    public const int MaxReadBits = 2000;
    public const int MaxReadRegisters = 125;
    public const int MaxWriteBits = 1968;
    public const int MaxWriteRegisters = 123;
    public const int MaxReadWriteReadRegisters = 125;
    public const int MaxReadWriteWriteRegisters = 121;
    public const int MaxFifoCount = 31;
    public const ushort CoilOn = 0xFF00;
    public const ushort CoilOff = 0x0000;
    /// <summary>Record numbers of file records run 0x0000..0x270F (section 6.14).</summary>
    public const int MaxFileRecordNumber = 0x270F;
    /// <summary>Reference type of file record sub-requests.</summary>
    public const byte FileRecordReferenceType = 6;
}
