using System.Buffers;
namespace EdgeShield.Protocols.S7comm;

/// <summary>TPKT (RFC 1006) as an <see cref="IStreamFramer"/>: how an upstream reads an S7 PLC's packets (the gateway's S7 sessions and the telemetry poller's read-only S7 client).</summary>
public sealed class TpktStreamFramer : IStreamFramer
{
    /// <summary>The one instance (stateless).</summary>
    public static readonly TpktStreamFramer Instance = new();

    private TpktStreamFramer()
    {
    }

    /// <inheritdoc/>
    public string Name => "TPKT/COTP";

    /// <inheritdoc/>
    public OperationStatus TryDelimit(ReadOnlySpan<byte> input, out int consumed, out FrameFault fault)
    {
        var status = TpktFramer.TryReadFrame(input, out _, out consumed, out var error);
        fault = status == OperationStatus.InvalidData ? new FrameFault(FrameFaultKind.Inconsistent, (byte)error) : FrameFault.None;
        return status;
    }

    /// <inheritdoc/>
    public string Describe(FrameFault fault) => "TPKT/COTP framing: " + ((S7FramingError)fault.Detail).ToString();
}
