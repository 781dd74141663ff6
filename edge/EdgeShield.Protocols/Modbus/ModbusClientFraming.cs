using System.Buffers;

namespace EdgeShield.Protocols.Modbus;

/// <summary>One client request delimited in its framing, viewed in place.</summary>
public readonly ref struct ModbusClientFrame
{
    public ModbusClientFrame(ushort transactionId, byte unit, ReadOnlySpan<byte> pdu)
    {
        TransactionId = transactionId;
        Unit = unit;
        Pdu = pdu;
    }

    /// <summary>The MBAP transaction id; 0 in a framing without one.</summary>
    public ushort TransactionId { get; }
    /// <summary>MBAP unit id or RTU address.</summary>
    public byte Unit { get; }
    public ReadOnlySpan<byte> Pdu { get; }
}

/// <summary>
/// How a client frames Modbus on a listener (<c>protocol:</c>): <see cref="Mbap"/> for <c>modbus-tcp</c>,
/// <see cref="RtuOverTcp"/> for <c>modbus-rtu-over-tcp</c>. Upstreams always speak MBAP; a framing
/// converts a request into an upstream ADU and an upstream answer back into the client's framing.
/// Stateless singletons; allocation-free.
/// </summary>
public abstract class ModbusClientFraming
{
    public static readonly ModbusClientFraming Mbap = new MbapClientFraming();
    public static readonly ModbusClientFraming RtuOverTcp = new RtuOverTcpClientFraming();

    /// <summary>
    /// The client's frames carry a transaction id. Without one (RTU over TCP) answers must leave in the
    /// order of the requests, and a response's event names no client id.
    /// </summary>
    public abstract bool HasTransactionId { get; }

    /// <summary>Where the unit byte sits in a frame being read (for the event of a frame that did not frame).</summary>
    public abstract int UnitOffset { get; }

    /// <summary>The largest response PDU the client's framing can carry.</summary>
    public abstract int MaxResponsePduLength { get; }

    /// <summary>Delimits one request at the start of <paramref name="input"/>.</summary>
    public abstract OperationStatus TryReadRequest(ReadOnlySpan<byte> input, out ModbusClientFrame frame, out int consumed, out FramingError fault);

    /// <summary>
    /// Decodes a delimited request's PDU. MBAP's length keeps the stream in step, so a PDU of the wrong
    /// size for its function is out of spec (answered 03); over RTU the PDU's structure is the framing.
    /// </summary>
    public abstract ModbusRequest ParseRequest(ReadOnlySpan<byte> pdu);

    /// <summary>An exception response in the client's framing; returns its length.</summary>
    public abstract int WriteException(Span<byte> destination, ushort transactionId, byte unit, byte functionCode, byte exceptionCode);

    /// <summary>
    /// Makes the upstream ADU of an allowed request carrying <paramref name="gatewayTid"/>: MBAP rewrites the
    /// client's frame in place and returns 0; RTU over TCP writes an MBAP ADU into <paramref name="scratch"/>
    /// (at least <see cref="ModbusLimits.MaxTcpAduLength"/> bytes) and returns its length.
    /// </summary>
    public abstract int WriteUpstreamRequest(Span<byte> clientFrame, byte unit, ReadOnlySpan<byte> pdu, ushort gatewayTid, Span<byte> scratch);

    /// <summary>
    /// Makes the client's answer from a checked upstream MBAP ADU: MBAP puts the client's transaction id back in
    /// place and returns 0; RTU over TCP writes an RTU frame into <paramref name="scratch"/> (at least
    /// <see cref="RtuFramer.MaxAduLength"/> bytes) and returns its length.
    /// </summary>
    public abstract int WriteClientResponse(Span<byte> upstreamAdu, ushort clientTid, Span<byte> scratch);

    private sealed class MbapClientFraming : ModbusClientFraming
    {
        public override bool HasTransactionId => true;
        public override int UnitOffset => 6;
        public override int MaxResponsePduLength => ModbusLimits.MaxVendorMbapLength - 1;

        public override OperationStatus TryReadRequest(ReadOnlySpan<byte> input, out ModbusClientFrame frame, out int consumed, out FramingError fault)
        {
            var status = MbapFramer.TryReadFrame(input, out var mbap, out consumed, out fault);
            frame = status == OperationStatus.Done ? new ModbusClientFrame(mbap.TransactionId, mbap.UnitId, mbap.Pdu) : default;
            return status;
        }

        public override ModbusRequest ParseRequest(ReadOnlySpan<byte> pdu) => ModbusPdu.ParseFramedRequest(pdu);

        public override int WriteException(Span<byte> destination, ushort transactionId, byte unit, byte functionCode, byte exceptionCode) =>
            MbapFramer.WriteException(destination, transactionId, unit, functionCode, exceptionCode);

        public override int WriteUpstreamRequest(Span<byte> clientFrame, byte unit, ReadOnlySpan<byte> pdu, ushort gatewayTid, Span<byte> scratch)
        {
            MbapFramer.SetTransactionId(clientFrame, gatewayTid);
            return 0;
        }

        public override int WriteClientResponse(Span<byte> upstreamAdu, ushort clientTid, Span<byte> scratch)
        {
            MbapFramer.SetTransactionId(upstreamAdu, clientTid);
            return 0;
        }
    }

    private sealed class RtuOverTcpClientFraming : ModbusClientFraming
    {
        public override bool HasTransactionId => false;
        public override int UnitOffset => 0;
        public override int MaxResponsePduLength => ModbusLimits.MaxPduLength;

        public override OperationStatus TryReadRequest(ReadOnlySpan<byte> input, out ModbusClientFrame frame, out int consumed, out FramingError fault)
        {
            // Framed by the function's length rules and, for functions that do not say their length, by a
            // CRC that checks over everything received so far.
            var status = RtuFramer.TryReadFrame(input, RtuDirection.Request, atSilence: false, out var rtu, out consumed, out fault);
            if (status == OperationStatus.NeedMoreData && input.Length >= RtuFramer.MinAduLength
                && RtuFramer.TryReadFrame(input, RtuDirection.Request, atSilence: true, out var whole, out int wholeLength, out _) == OperationStatus.Done)
            {
                status = OperationStatus.Done;
                rtu = whole;
                consumed = wholeLength;
            }
            frame = status == OperationStatus.Done ? new ModbusClientFrame(0, rtu.Address, rtu.Pdu) : default;
            return status;
        }

        public override ModbusRequest ParseRequest(ReadOnlySpan<byte> pdu) => ModbusPdu.ParseRequest(pdu);

        public override int WriteException(Span<byte> destination, ushort transactionId, byte unit, byte functionCode, byte exceptionCode) =>
            RtuFramer.WriteException(destination, unit, functionCode, exceptionCode);

        public override int WriteUpstreamRequest(Span<byte> clientFrame, byte unit, ReadOnlySpan<byte> pdu, ushort gatewayTid, Span<byte> scratch)
        {
            MbapFramer.WriteHeader(scratch, gatewayTid, unit, pdu.Length);
            pdu.CopyTo(scratch[ModbusLimits.MbapHeaderLength..]);
            return ModbusLimits.MbapHeaderLength + pdu.Length;
        }

        public override int WriteClientResponse(Span<byte> upstreamAdu, ushort clientTid, Span<byte> scratch) =>
            RtuFramer.FromMbap(upstreamAdu, scratch);
    }
}
