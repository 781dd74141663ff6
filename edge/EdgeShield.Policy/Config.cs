using System.Net;

namespace EdgeShield.Policy;

/// <summary>
/// A loaded, validated EdgeShield configuration (DESIGN.md "Configuration"). Immutable: a reload
/// builds a new one and swaps it in whole.
/// </summary>
public sealed partial class EdgeShieldConfig
{
    /// <summary>The file it was loaded from, as given.</summary>
    public required string Path { get; init; }
    /// <summary><c>gateway.name</c>; empty when absent.</summary>
    public string GatewayName { get; init; } = "";
    /// <summary><c>gateway.site</c>; empty when absent.</summary>
    public string Site { get; init; } = "";
    public IReadOnlyList<ListenerConfig> Listeners { get; init; } = [];
    /// <summary>Compiled policies by name.</summary>
    public IReadOnlyDictionary<string, CompiledPolicy> Policies { get; init; } = new Dictionary<string, CompiledPolicy>();
    /// <summary><c>telemetry:</c>; null when absent (a firewall-only config).</summary>
    public TelemetryConfig? Telemetry { get; init; }
    /// <summary>
    /// The top-level <c>version:</c>, a whole number 0..<see cref="MaxVersion"/>; null when absent. A signed
    /// config's signature covers it, and <c>run --trust</c> refuses one lower than the last accepted (no rollback).
    /// </summary>
    public long? Version { get; init; }

    /// <summary>The largest <c>version:</c> (2^53 - 1: exact in any JSON reader that sees it in an audit event).</summary>
    public const long MaxVersion = 9_007_199_254_740_991;

    /// <summary>SHA-256 of the file's bytes, hex, for audit events of reloads.</summary>
    public string Hash { get; init; } = "";
    /// <summary>
    /// SHA-256 (hex) of each top-level section present, over its content only (comments and layout do
    /// not count): a reload compares them to tell which sections changed.
    /// </summary>
    public IReadOnlyDictionary<string, string> SectionHashes { get; init; } = new Dictionary<string, string>();

    /// <summary>The top-level sections whose content differs between <paramref name="before"/> and <paramref name="after"/> (added and removed ones included), in file order of <see cref="SectionNames"/>.</summary>
    public static IReadOnlyList<string> ChangedSections(EdgeShieldConfig before, EdgeShieldConfig after)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        return [.. SectionNames.Where(name =>
            before.SectionHashes.GetValueOrDefault(name) != after.SectionHashes.GetValueOrDefault(name))];
    }

    /// <summary>The top-level keys of a configuration file.</summary>
    public static IReadOnlyList<string> SectionNames { get; } = ["gateway", "serial", "listeners", "policies", "telemetry", "audit", "hardware", "network"];
}

/// <summary>The framing a listener speaks to its clients.</summary>
public enum ListenerProtocol : byte
{
    ModbusTcp = 0,
    ModbusRtuOverTcp,
    /// <summary>Siemens S7comm over ISO-on-TCP (TPKT + COTP), port 102.</summary>
    S7comm,
    /// <summary>IEC 60870-5-104 (telecontrol: APCI + ASDU over TCP), port 2404.</summary>
    Iec104,
}

/// <summary>The words and default ports of <see cref="ListenerProtocol"/> (DESIGN.md "Protocols").</summary>
public static class ListenerProtocols
{
    /// <summary>The word of <c>protocol:</c> (<c>modbus-tcp</c>, <c>modbus-rtu-over-tcp</c>, <c>s7comm</c>, <c>iec104</c>).</summary>
    public static string Word(ListenerProtocol protocol) => protocol switch
    {
        ListenerProtocol.ModbusRtuOverTcp => "modbus-rtu-over-tcp",
        ListenerProtocol.S7comm => "s7comm",
        ListenerProtocol.Iec104 => "iec104",
        _ => "modbus-tcp",
    };

    /// <summary>The server port of the protocol where none is given (<c>replay</c>, <c>check --against</c>): 502, 102 or 2404.</summary>
    public static ushort DefaultPort(ListenerProtocol protocol) => protocol switch
    {
        ListenerProtocol.S7comm => 102,
        ListenerProtocol.Iec104 => 2404,
        _ => 502,
    };
}

/// <summary>Where a listener forwards to: <c>tcp://HOST:PORT</c> or <c>serial://BUS</c>.</summary>
public sealed record UpstreamAddress(string Scheme, string Host, int Port)
{
    public override string ToString() => Scheme == "serial" ? $"serial://{Host}" : $"{Scheme}://{Host}:{Port}";
}

/// <summary><c>limits:</c> of a listener, with DESIGN.md's defaults.</summary>
public sealed record ListenerLimits
{
    public int ConnectionsPerSource { get; init; } = 256;
    /// <summary>
    /// Client connections the listener holds at once, from all sources. When full, a new connection
    /// closes the oldest one that has not sent a complete frame since it connected (half-open); when
    /// every one has spoken, the new connection is refused. Bounds the descriptors a many-source
    /// attacker can take (each client holds one, and one more to the PLC once it sends).
    /// </summary>
    public int MaxConnections { get; init; } = 1024;
    public int PendingPerConnection { get; init; } = 16;
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>
    /// How long a client may take to complete a frame once its first byte arrived; then the connection is
    /// closed. A real client writes a whole ADU at once; a slowloris drips one byte per idle-timeout.
    /// </summary>
    public TimeSpan FrameTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>How long the PLC has to answer before the client gets 0B. Keep it below the HMI's own timeout.</summary>
    public TimeSpan ResponseTimeout { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>How long a TCP connect to the PLC may take before requests are answered 0B.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// IEC 104 <c>k</c>: I-frames the gateway sends on one leg without an acknowledgement before it waits
    /// (1..32767, the 15-bit sequence space halved). Only for <c>protocol: iec104</c> listeners; the same on both legs.
    /// </summary>
    public int K { get; init; } = 12;
    /// <summary>IEC 104 <c>w</c>: I-frames received on one leg before the gateway acknowledges them (1..<see cref="K"/>).</summary>
    public int W { get; init; } = 8;
    /// <summary>IEC 104 <c>t1</c>: how long a sent I-frame or U-frame waits for its acknowledgement before the leg is closed.</summary>
    public TimeSpan T1 { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>IEC 104 <c>t2</c>: the latest the gateway acknowledges received I-frames when it has none to send (below <see cref="T1"/>).</summary>
    public TimeSpan T2 { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>IEC 104 <c>t3</c>: idle time on a leg before the gateway sends TESTFR act.</summary>
    public TimeSpan T3 { get; init; } = TimeSpan.FromSeconds(20);
}

/// <summary>One entry of <c>listeners:</c>.</summary>
public sealed record ListenerConfig
{
    public required string Name { get; init; }
    public required IPEndPoint Bind { get; init; }
    public ListenerProtocol Protocol { get; init; }
    public required UpstreamAddress Upstream { get; init; }
    public required string PolicyName { get; init; }
    public ListenerLimits Limits { get; init; } = new();
}

public sealed partial class EdgeShieldConfig
{
    /// <summary>
    /// This configuration with every policy in <c>mode: monitor</c> (<c>edgeshield learn --listen</c>):
    /// the same listeners, buses and capture, forwarding everything and auditing what would be refused.
    /// </summary>
    public EdgeShieldConfig InMonitorMode()
    {
        var policies = new Dictionary<string, CompiledPolicy>(StringComparer.Ordinal);
        foreach (var (name, policy) in Policies)
        {
            policies[name] = policy.AsMonitor();
        }
        // Every property of the class, with the policies swapped.
        return new EdgeShieldConfig
        {
            Path = Path,
            Hash = Hash,
            GatewayName = GatewayName,
            Site = Site,
            Listeners = Listeners,
            Policies = policies,
            Telemetry = Telemetry,
            SerialBuses = SerialBuses,
            Hardware = Hardware,
            Network = Network,
            AuditPcap = AuditPcap,
            Version = Version,
        };
    }
}
