using EdgeShield.Policy;
using EdgeShield.Protocols.Modbus;

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
}
