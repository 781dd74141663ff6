using EdgeShield.Gateway.Iec104;
using EdgeShield.Gateway.Modbus;
using EdgeShield.Gateway.S7comm;
using EdgeShield.Policy;
using EdgeShield.Protocols.Modbus;
using EdgeShield.Transport;

namespace EdgeShield.Gateway;

/// <summary>
/// Where a protocol plugs into the gateway: the session a listener's <c>protocol:</c> hosts on each client
/// connection. A new protocol adds its codec under EdgeShield.Protocols, its rule vocabulary under
/// EdgeShield.Policy, its <see cref="IProtocolSession"/> here, and one line below.
/// </summary>
internal static class ProtocolSessions
{
    public static Func<ClientConnection, IUpstream, IProtocolSession> For(ListenerProtocol protocol) => protocol switch
    {
        ListenerProtocol.ModbusTcp => static (connection, upstream) => new ModbusSession(connection, upstream, ModbusClientFraming.Mbap),
        ListenerProtocol.ModbusRtuOverTcp => static (connection, upstream) => new ModbusSession(connection, upstream, ModbusClientFraming.RtuOverTcp),
        ListenerProtocol.S7comm => static (connection, upstream) => new S7Session(connection),
        ListenerProtocol.Iec104 => static (connection, upstream) => new Iec104Session(connection),
        _ => throw new ArgumentOutOfRangeException(nameof(protocol), protocol, "no session for this protocol"),
    };
}
