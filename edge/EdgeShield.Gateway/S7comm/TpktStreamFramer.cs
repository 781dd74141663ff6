using System.Buffers;
using EdgeShield.Protocols;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Gateway.S7comm;

/// <summary>TPKT (RFC 1006) as an <see cref="IStreamFramer"/>: how an upstream reads an S7 PLC's packets.</summary>
internal sealed class TpktStreamFramer : IStreamFramer
{
    public static readonly TpktStreamFramer Instance = new();

    private TpktStreamFramer()
    {
    }

    public string Name => "TPKT/COTP";

    public OperationStatus TryDelimit(ReadOnlySpan<byte> input, out int consumed, out FrameFault fault)
    {
        var status = TpktFramer.TryReadFrame(input, out _, out consumed, out var error);
        fault = status == OperationStatus.InvalidData ? new FrameFault(FrameFaultKind.Inconsistent, (byte)error) : FrameFault.None;
        return status;
    }

    public string Describe(FrameFault fault) => "TPKT/COTP framing: " + ((S7FramingError)fault.Detail).ToString();
}
