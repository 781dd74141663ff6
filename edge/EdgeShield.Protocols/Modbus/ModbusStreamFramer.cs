using System.Buffers;

namespace EdgeShield.Protocols.Modbus;

/// <summary>
/// Modbus TCP as an <see cref="IStreamFramer"/>: MBAP framing (<see cref="MbapFramer"/>), the way every
/// upstream reads a PLC's answers, whatever the client's framing.
/// </summary>
public sealed class MbapStreamFramer : IStreamFramer
{
    public static readonly MbapStreamFramer Instance = new();

    private MbapStreamFramer()
    {
    }

    public string Name => "Modbus TCP";

    public OperationStatus TryDelimit(ReadOnlySpan<byte> input, out int consumed, out FrameFault fault)
    {
        var status = MbapFramer.TryReadFrame(input, out _, out consumed, out var error);
        fault = ModbusFaults.ToFault(error);
        return status;
    }

    public string Describe(FrameFault fault) => ModbusFaults.Describe((FramingError)fault.Detail);
}

/// <summary>Modbus framing errors in the protocol-neutral words of <see cref="FrameFault"/>, and in words for people.</summary>
public static class ModbusFaults
{
    public static FrameFault ToFault(FramingError error) => new(error switch
    {
        FramingError.None => FrameFaultKind.None,
        FramingError.ProtocolIdNotModbus => FrameFaultKind.NotThisProtocol,
        FramingError.LengthTooShort or FramingError.LengthTooLong or FramingError.FrameTooLong => FrameFaultKind.LengthOutOfRange,
        FramingError.PduTruncated => FrameFaultKind.Truncated,
        FramingError.TrailingBytes => FrameFaultKind.TrailingBytes,
        FramingError.CrcMismatch => FrameFaultKind.Checksum,
        _ => FrameFaultKind.Inconsistent,
    }, (byte)error);

    /// <summary>The one description of each Modbus framing error, for audit events and replay reports.</summary>
    public static string Describe(FramingError error) => error switch
    {
        FramingError.ProtocolIdNotModbus => "protocol id is not 0 (not Modbus)",
        FramingError.LengthTooShort => "MBAP length below 2",
        FramingError.LengthTooLong => "MBAP length above 254 (260 for user-defined and vendor codes)",
        FramingError.PduTruncated => "PDU shorter than its function requires",
        FramingError.TrailingBytes => "bytes after the end of the PDU",
        FramingError.ByteCountMismatch => "byte count disagrees with the PDU length",
        FramingError.InvalidFunctionCode => "function code 0 or in the exception range",
        FramingError.CrcMismatch => "CRC mismatch",
        FramingError.FrameTooLong => "frame too long",
        _ => "malformed",
    };
}
