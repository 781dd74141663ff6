using System.Buffers;

namespace EdgeShield.Protocols.Iec104;

/// <summary>
/// Delimits IEC 104 APDUs in a TCP byte stream (either direction) by the start octet 0x68 and LEN
/// (docs/IEC104.md "APCI"): consumed = LEN + 2. Only the start octet and LEN 4..253 are checked here;
/// <see cref="Iec104Apdu.TryParse"/> checks the control octets and <see cref="Iec104Asdu.TryParse"/> the ASDU.
/// </summary>
public sealed class Iec104Framer : IStreamFramer
{
    /// <summary>The one instance (stateless).</summary>
    public static readonly Iec104Framer Instance = new();

    private Iec104Framer()
    {
    }

    /// <inheritdoc/>
    public string Name => "IEC 104";

    /// <inheritdoc/>
    public OperationStatus TryDelimit(ReadOnlySpan<byte> input, out int consumed, out FrameFault fault)
    {
        consumed = 0;
        fault = FrameFault.None;
        if (input.IsEmpty)
        {
            return OperationStatus.NeedMoreData;
        }
        // Checked on the first octet, so that a peer speaking something else is refused at once.
        if (input[0] != Iec104Limits.StartOctet)
        {
            fault = Iec104FrameErrors.Fault(Iec104FrameError.StartOctetInvalid);
            return OperationStatus.InvalidData;
        }
        if (input.Length < Iec104Limits.PrefixLength)
        {
            return OperationStatus.NeedMoreData;
        }
        int length = input[1];
        if (length is < Iec104Limits.MinLength or > Iec104Limits.MaxLength)
        {
            fault = Iec104FrameErrors.Fault(length < Iec104Limits.MinLength ? Iec104FrameError.LengthTooShort : Iec104FrameError.LengthTooLong);
            return OperationStatus.InvalidData;
        }
        if (input.Length < length + Iec104Limits.PrefixLength)
        {
            return OperationStatus.NeedMoreData;
        }
        consumed = length + Iec104Limits.PrefixLength;
        return OperationStatus.Done;
    }

    /// <inheritdoc/>
    public string Describe(FrameFault fault) => "IEC 104: " + Iec104FrameErrors.Describe(fault);
}
