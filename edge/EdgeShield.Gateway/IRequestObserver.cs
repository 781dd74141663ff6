using EdgeShield.Policy;
using EdgeShield.Protocols.Iec104;
using EdgeShield.Protocols.Modbus;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Gateway;

/// <summary>
/// Sees every client request a listener parses, before the policy decides (<c>edgeshield learn
/// --listen</c>). Called on the frame path, from many connections at once: an implementation must be
/// thread-safe, quick and should not allocate per request. Normal runs have none.
/// </summary>
public interface IRequestObserver
{
    /// <summary>A well-framed request that is not malformed (it may be out of spec).</summary>
    void OnRequest(GatewayListener listener, SourceAddress source, ushort sourcePort, byte unit, in ModbusRequest request);

    /// <summary>A malformed frame; <paramref name="unit"/> and <paramref name="functionCode"/> are -1 when not received.</summary>
    void OnMalformed(GatewayListener listener, SourceAddress source, ushort sourcePort, FramingError reason, short unit, short functionCode);

    /// <summary>An S7 client's COTP connect on a <c>protocol: s7comm</c> listener, before the policy decides.</summary>
    void OnS7Connect(GatewayListener listener, SourceAddress source, ushort sourcePort, S7Connection connection)
    {
    }

    /// <summary>
    /// A reassembled S7 PDU an S7 client sent that is neither malformed nor an answer to a job the PLC sent (it may be
    /// out of spec); <paramref name="plus"/> when the connect asked for an S7comm-Plus TSAP.
    /// </summary>
    void OnS7Request(GatewayListener listener, SourceAddress source, ushort sourcePort, S7Connection connection, bool plus, in S7Request request)
    {
    }

    /// <summary>
    /// An ASDU an IEC 104 client sent on a <c>protocol: iec104</c> listener (well-formed, or of a type the codec cannot
    /// size), before the policy decides; <paramref name="timestamp"/> is when it was read (Stopwatch ticks).
    /// </summary>
    void OnIec104Request(GatewayListener listener, SourceAddress source, ushort sourcePort, in Iec104Asdu asdu, long timestamp)
    {
    }
}
