namespace EdgeShield.Protocols.Modbus;

/// <summary>The outcome of decoding a request PDU.</summary>
public enum RequestStatus : byte
{
    /// <summary>The PDU's structure does not hold together (lengths, byte counts): it must never be forwarded.</summary>
    Malformed = 0,
    /// <summary>Well formed and within the spec's limits.</summary>
    Valid,
    /// <summary>Well framed, but a quantity, value or code lies outside the spec: a server answers it with <see cref="ModbusRequest.SpecExceptionCode"/>.</summary>
    OutOfSpec,
}

/// <summary>Which limit of the spec a well-framed request breaks.</summary>
public enum SpecViolation : byte
{
    None = 0,
    /// <summary>Function code 0, or one in the exception range 128–255.</summary>
    IllegalFunctionCode,
    /// <summary>A quantity of 0 or above the function's limit.</summary>
    QuantityOutOfRange,
    /// <summary>Start address plus quantity runs past 65535.</summary>
    AddressOverflow,
    /// <summary>A byte count that disagrees with the quantity it announces.</summary>
    ByteCountNotQuantity,
    /// <summary>Write single coil with a value other than 0x0000 or 0xFF00.</summary>
    CoilValueInvalid,
    /// <summary>Diagnostics data that is not a whole number of 16-bit words.</summary>
    DiagnosticsDataOdd,
    /// <summary>A file record sub-request with a wrong reference type, byte count or record number.</summary>
    FileRecordInvalid,
    /// <summary>Read device identification with a read code outside 1..4.</summary>
    ReadDeviceIdCodeInvalid,
    /// <summary>
    /// An outer frame (the MBAP length) delimits the PDU, but the PDU's own structure says another
    /// length (trailing bytes, too short, a byte count that disagrees); <see cref="ModbusRequest.Error"/> says which.
    /// </summary>
    PduLengthInvalid,
}

/// <summary>
/// A decoded request PDU, viewed in place. What the policy sees: the function, the address
/// spans it touches on each table, and the register values it writes.
/// </summary>
public readonly ref struct ModbusRequest
{
    /// <summary>The PDU: function code and data.</summary>
    public ReadOnlySpan<byte> Pdu { get; init; }
    public RequestStatus Status { get; init; }
    /// <summary>Set when <see cref="Status"/> is <see cref="RequestStatus.Malformed"/>.</summary>
    public FramingError Error { get; init; }
    /// <summary>Set when <see cref="Status"/> is <see cref="RequestStatus.OutOfSpec"/>.</summary>
    public SpecViolation Violation { get; init; }
    /// <summary>The function byte as sent.</summary>
    public byte FunctionCode { get; init; }
    /// <summary>MEI type for function 43; 0 otherwise.</summary>
    public byte MeiType { get; init; }
    public ModbusFunction Function { get; init; }
    /// <summary>What the request reads (FC 1, 2, 3, 4, 23, 24).</summary>
    public AddressSpan ReadSpan { get; init; }
    /// <summary>What the request writes (FC 5, 6, 15, 16, 22, 23).</summary>
    public AddressSpan WriteSpan { get; init; }
    /// <summary>Big-endian register values written by FC 6, 16 and 23 (two bytes each); empty otherwise.</summary>
    public ReadOnlySpan<byte> RegisterValues { get; init; }
    /// <summary>Diagnostics (FC 8) sub-function.</summary>
    public ushort SubFunction { get; init; }

    /// <summary>The number of 16-bit values in <see cref="RegisterValues"/>.</summary>
    public int RegisterValueCount => RegisterValues.Length / 2;

    /// <summary>The register value at <paramref name="index"/> of <see cref="RegisterValues"/>.</summary>
    public ushort RegisterValue(int index) =>
        System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(RegisterValues.Slice(index * 2, 2));

    /// <summary>The exception code a conforming server answers an out-of-spec request with.</summary>
    public byte SpecExceptionCode => Violation switch
    {
        SpecViolation.None => 0,
        SpecViolation.IllegalFunctionCode => ModbusExceptionCode.IllegalFunction,
        SpecViolation.AddressOverflow => ModbusExceptionCode.IllegalDataAddress,
        _ => ModbusExceptionCode.IllegalDataValue,
    };

    /// <summary>What a matching response must look like.</summary>
    public ResponseExpectation Expectation => ResponseExpectation.For(this);
}
