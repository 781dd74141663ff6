using System.Globalization;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Policy.Yaml;

namespace EdgeShield.Policy;

internal sealed partial class ConfigReader
{
    private static readonly string[] SerialKeys = ["name", "device", "baud", "parity", "stop-bits", "response-timeout-ms", "turnaround-ms", "late-reply-guard-ms", "read-retries", "queue-depth", "queue-timeout-ms", "breaker-failures", "breaker-open-ms"];
    private static readonly string[] Parities = ["none", "even", "odd"];
    private static readonly string[] ListenerKeys = ["name", "bind", "protocol", "upstream", "policy", "limits"];
    private static readonly string[] Protocols = ["modbus-tcp", "modbus-rtu-over-tcp", "s7comm", "iec104"];
    private static readonly string[] LimitKeys = ["connections-per-source", "max-connections", "pending-per-connection", "idle-timeout", "frame-timeout", "response-timeout", "connect-timeout", "k", "w", "t1", "t2", "t3"];
    private static readonly string[] TelemetryKeys = ["mqtt", "format", "buffer", "poll"];
    private static readonly string[] MqttKeys = ["broker", "client-id", "topic-prefix", "tls", "username", "password-file"];
    private static readonly string[] TlsKeys = ["ca", "cert", "key"];
    private static readonly string[] Formats = ["json", "sparkplug-b"];
    private static readonly string[] BufferKeys = ["path", "max-mb"];
    private static readonly string[] PollKeys = ["device", "protocol", "upstream", "unit", "every", "max-gap", "rack", "slot", "connection", "called-tsap", "calling-tsap", "ca", "station-time", "tags"];
    private static readonly string[] TagKeys = ["name", "table", "address", "ioa", "type", "word-order", "scale", "offset", "unit", "function"];
    private static readonly string[] Tables = ["coil", "discrete-input", "holding", "input"];
    private static readonly string[] TagTypes = ["bool", "int16", "uint16", "int32", "uint32", "float32", "int64", "uint64", "float64"];
    private static readonly string[] AuditKeys = ["pcap", "journal", "key"];
    private static readonly string[] PcapKeys = ["path", "max-mb"];
    private static readonly string[] JournalKeys = ["path", "max-mb", "checkpoint-every", "checkpoint-seconds"];
    private static readonly string[] HardwareKeys = ["profile", "maintenance-key", "leds"];
    private static readonly string[] MaintenanceKeyKeys = ["gpio", "active", "arm-minutes"];
    private static readonly string[] ActiveLevels = ["low", "high"];
    private static readonly string[] LedKeys = ["run", "alarm", "maintenance"];
    private static readonly string[] NetworkKeys = ["plant", "site", "management"];
    private const int MaxGpio = 1023;

    // ---- serial ----------------------------------------------------------------------------

    private SerialSection ReadSerial(KeyMap root)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var buses = new List<SerialBusConfig>();
        var firstLine = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var node in Sequence(root, "serial", "serial bus"))
        {
            var map = Map(node, "serial bus", SerialKeys);
            if (map is null)
            {
                continue;
            }
            var name = RequiredText(map, "name", "serial bus", "the name that serial://NAME upstreams refer to");
            if (name is not null)
            {
                if (firstLine.TryGetValue(name, out var line))
                {
                    map.TryGet("name", out var nameNode);
                    _diagnostics.Error(nameNode, $"duplicate serial bus name '{name}' (first at line {line})");
                }
                else
                {
                    firstLine.Add(name, map.Node.Line);
                    names.Add(name);
                }
            }
            var device = RequiredText(map, "device", "serial bus", "the serial device, such as /dev/ttyS1");
            var baud = OptionalInteger(map, "baud", 300, 4_000_000);
            var parity = LineParity.Even;
            if (map.TryGet("parity", out var parityNode))
            {
                parity = OneOf(parityNode, "parity", Parities) switch
                {
                    "none" => LineParity.None,
                    "odd" => LineParity.Odd,
                    _ => LineParity.Even,
                };
            }
            int stopBits = 1;
            if (map.TryGet("stop-bits", out var stopBitsNode))
            {
                stopBits = OneOf(stopBitsNode, "stop-bits", ["1", "2"]) == "2" ? 2 : 1;
            }
            var responseTimeout = OptionalInteger(map, "response-timeout-ms", 1, 60_000);
            var turnaround = OptionalInteger(map, "turnaround-ms", 0, 10_000);
            var lateReplyGuard = OptionalInteger(map, "late-reply-guard-ms", 1, 60_000);
            var retries = OptionalInteger(map, "read-retries", 0, 5);
            var queueDepth = OptionalInteger(map, "queue-depth", 1, 4096);
            var queueTimeout = OptionalInteger(map, "queue-timeout-ms", 1, 600_000);
            var breakerFailures = OptionalInteger(map, "breaker-failures", 1, 1000);
            var breakerOpen = OptionalInteger(map, "breaker-open-ms", 1, 600_000);
            if (name is not null && device is not null)
            {
                buses.Add(new SerialBusConfig
                {
                    Name = name,
                    Device = device,
                    Baud = (int)(baud ?? 19200),
                    Parity = parity,
                    StopBits = stopBits,
                    ResponseTimeoutMs = (int)(responseTimeout ?? 300),
                    TurnaroundMs = (int)(turnaround ?? 100),
                    LateReplyGuardMs = (int?)lateReplyGuard,
                    ReadRetries = (int)(retries ?? 0),
                    QueueDepth = (int)(queueDepth ?? 64),
                    QueueTimeoutMs = (int)(queueTimeout ?? 1000),
                    BreakerFailures = (int)(breakerFailures ?? 3),
                    BreakerOpenMs = (int)(breakerOpen ?? 1000),
                });
            }
        }
        return new SerialSection(names, buses);
    }

    // ---- listeners -------------------------------------------------------------------------

    private List<ListenerConfig> ReadListeners(KeyMap root, HashSet<string> serialNames, Dictionary<string, YamlNode> policies)
    {
        var listeners = new List<ListenerConfig>();
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        var binds = new List<(IPEndPoint EndPoint, int Line)>();
        foreach (var node in Sequence(root, "listeners", "listener"))
        {
            var map = Map(node, "listener", ListenerKeys);
            if (map is null)
            {
                continue;
            }
            const string what = "listener";
            var name = RequiredText(map, "name", what, "a unique name for audit events");
            if (name is not null)
            {
                if (names.TryGetValue(name, out var line))
                {
                    map.TryGet("name", out var nameNode);
                    _diagnostics.Error(nameNode, $"duplicate listener name '{name}' (first at line {line})");
                }
                else
                {
                    names.Add(name, map.Node.Line);
                }
            }

            IPEndPoint? bind = null;
            if (!map.TryGet("bind", out var bindNode))
            {
                Missing(map, what, "bind", "HOST:PORT to listen on, such as 0.0.0.0:502 or [::]:502");
            }
            else if (IsText(bindNode, "bind"))
            {
                if (!TryParseBind(bindNode.Value, out bind))
                {
                    _diagnostics.Error(bindNode, $"'bind' must be IP:PORT such as 0.0.0.0:502, 127.0.0.1:5020 or [::]:502 (port 0..65535), not '{bindNode.Value}'");
                }
                else
                {
                    foreach (var (other, line) in binds)
                    {
                        if (BindsConflict(bind, other))
                        {
                            _diagnostics.Error(bindNode, $"bind {bindNode.Value} overlaps the listener at line {line} ({FormatEndPoint(other)}); each listener needs its own address and port");
                            break;
                        }
                    }
                    binds.Add((bind, map.Node.Line));
                }
            }

            var protocol = ListenerProtocol.ModbusTcp;
            if (map.TryGet("protocol", out var protocolNode))
            {
                switch (OneOf(protocolNode, "protocol", Protocols))
                {
                    case "modbus-rtu-over-tcp": protocol = ListenerProtocol.ModbusRtuOverTcp; break;
                    case "s7comm": protocol = ListenerProtocol.S7comm; break;
                    case "iec104": protocol = ListenerProtocol.Iec104; break;
                }
            }

            UpstreamAddress? upstream = null;
            if (!map.TryGet("upstream", out var upstreamNode))
            {
                Missing(map, what, "upstream", "tcp://HOST:PORT or serial://BUS");
            }
            else
            {
                upstream = Upstream(upstreamNode, "upstream", serialNames);
                if (protocol == ListenerProtocol.S7comm && upstream is { Scheme: "serial" })
                {
                    _diagnostics.Error(upstreamNode, $"an s7comm listener forwards to a PLC over ISO-on-TCP: 'upstream' must be tcp://HOST:PORT (usually port 102), not {upstreamNode.Value}");
                    upstream = null;
                }
                else if (protocol == ListenerProtocol.Iec104 && upstream is { Scheme: "serial" })
                {
                    _diagnostics.Error(upstreamNode, $"an iec104 listener forwards to a station over TCP: 'upstream' must be tcp://HOST:PORT (usually port 2404), not {upstreamNode.Value}");
                    upstream = null;
                }
            }

            string? policy = null;
            if (!map.TryGet("policy", out var policyNode))
            {
                Missing(map, what, "policy", "the name of a policy under 'policies:'; no listener runs without one");
            }
            else if (IsText(policyNode, "policy"))
            {
                if (policies.ContainsKey(policyNode.Value))
                {
                    policy = policyNode.Value;
                    CheckListenerPolicyProtocol(name, protocol, policyNode);
                }
                else
                {
                    var suggestion = Suggestions.Closest(policyNode.Value, policies.Keys);
                    var defined = policies.Count == 0 ? "none is defined" : "defined: " + string.Join(", ", policies.Keys);
                    _diagnostics.Error(policyNode, suggestion is null
                        ? $"policy '{policyNode.Value}' is not defined under 'policies:' ({defined})"
                        : $"policy '{policyNode.Value}' is not defined under 'policies:'; did you mean '{suggestion}'? ({defined})");
                }
            }

            var limits = new ListenerLimits();
            var limitKeys = protocol == ListenerProtocol.Iec104 ? LimitKeys : NonIec104LimitWords;
            bool responseTimeoutGiven = false;
            if (map.TryGet("limits", out var limitsNode) && Map(limitsNode, "limits", limitKeys, key => LimitKeyMessage(key, protocol, limitKeys)) is { } limitsMap)
            {
                limits = ReadLimits(limitsMap, protocol);
                responseTimeoutGiven = limitsMap.TryGet("response-timeout", out _);
            }
            if (protocol == ListenerProtocol.Iec104 && !responseTimeoutGiven)
            {
                // An RTU confirms a command when it has acted (a breaker may take seconds), and a controlling station
                // waits for that as long as for an acknowledgement: t1, not Modbus's 1 s. Shorter, the gateway would
                // answer a negative confirmation of a command the RTU then confirms and executes (its actcon dropped).
                limits = limits with { ResponseTimeout = limits.T1 };
            }

            if (name is not null && bind is not null && upstream is not null && policy is not null)
            {
                listeners.Add(new ListenerConfig
                {
                    Name = name,
                    Bind = bind,
                    Protocol = protocol,
                    Upstream = upstream,
                    PolicyName = policy,
                    Limits = limits,
                });
            }
        }
        return listeners;
    }

    private ListenerLimits ReadLimits(KeyMap map, ListenerProtocol protocol)
    {
        var limits = new ListenerLimits();
        if (OptionalInteger(map, "connections-per-source", 1, 65_535) is { } connections)
        {
            limits = limits with { ConnectionsPerSource = (int)connections };
        }
        if (OptionalInteger(map, "max-connections", 1, 65_535) is { } maxConnections)
        {
            limits = limits with { MaxConnections = (int)maxConnections };
        }
        // A Modbus TCP transaction id is 16 bits; more pending requests than that cannot be told apart.
        if (OptionalInteger(map, "pending-per-connection", 1, 65_535) is { } pending)
        {
            limits = limits with { PendingPerConnection = (int)pending };
        }
        if (map.TryGet("idle-timeout", out var idle) && Duration(idle, "idle-timeout") is { } idleTimeout)
        {
            limits = limits with { IdleTimeout = idleTimeout };
        }
        if (map.TryGet("frame-timeout", out var frame) && Duration(frame, "frame-timeout") is { } frameTimeout)
        {
            limits = limits with { FrameTimeout = frameTimeout };
        }
        if (map.TryGet("response-timeout", out var response) && Duration(response, "response-timeout") is { } responseTimeout)
        {
            limits = limits with { ResponseTimeout = responseTimeout };
        }
        if (map.TryGet("connect-timeout", out var connect) && Duration(connect, "connect-timeout") is { } connectTimeout)
        {
            limits = limits with { ConnectTimeout = connectTimeout };
        }
        return ReadIec104Limits(map, protocol, limits);
    }

    internal static bool TryParseBind(string text, out IPEndPoint endPoint)
    {
        endPoint = null!;
        string host, port;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf("]:", StringComparison.Ordinal);
            if (close < 0)
            {
                return false;
            }
            host = text[1..close];
            port = text[(close + 2)..];
            if (!IPAddress.TryParse(host, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6 || host.Contains('%', StringComparison.Ordinal))
            {
                return false;
            }
            if (!TryInt(port, out var p6) || p6 > 65_535)
            {
                return false;
            }
            endPoint = new IPEndPoint(v6, p6);
            return true;
        }
        var colon = text.LastIndexOf(':');
        if (colon < 0 || text.IndexOf(':', StringComparison.Ordinal) != colon)
        {
            return false;
        }
        host = text[..colon];
        port = text[(colon + 1)..];
        if (!IPAddress.TryParse(host, out var v4) || v4.AddressFamily != AddressFamily.InterNetwork || host.Count(static c => c == '.') != 3)
        {
            return false;
        }
        if (!TryInt(port, out var p4) || p4 > 65_535)
        {
            return false;
        }
        endPoint = new IPEndPoint(v4, p4);
        return true;
    }

    /// <summary>
    /// Two binds collide when they share a port and an address, or one of them is a wildcard that
    /// covers the other (0.0.0.0 covers IPv4; [::] is dual-stack and covers both). Port 0 asks the
    /// system for a free port and never collides.
    /// </summary>
    private static bool BindsConflict(IPEndPoint a, IPEndPoint b)
    {
        if (a.Port != b.Port || a.Port == 0)
        {
            return false;
        }
        if (a.Address.Equals(b.Address) || a.Address.Equals(IPAddress.IPv6Any) || b.Address.Equals(IPAddress.IPv6Any))
        {
            return true;
        }
        return a.AddressFamily == b.AddressFamily && (a.Address.Equals(IPAddress.Any) || b.Address.Equals(IPAddress.Any));
    }

    private static string FormatEndPoint(IPEndPoint endPoint) =>
        endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{endPoint.Address}]:{endPoint.Port}" : $"{endPoint.Address}:{endPoint.Port}";

    /// <summary><c>tcp://HOST:PORT</c> (IP or host name) or <c>serial://BUS</c> of a bus under <c>serial:</c>.</summary>
    private UpstreamAddress? Upstream(YamlNode node, string key, HashSet<string> serialNames)
    {
        if (!IsText(node, key))
        {
            return null;
        }
        var text = node.Value;
        if (text.StartsWith("serial://", StringComparison.Ordinal))
        {
            var bus = text["serial://".Length..];
            if (serialNames.Contains(bus))
            {
                return new UpstreamAddress("serial", bus, 0);
            }
            var suggestion = Suggestions.Closest(bus, serialNames);
            var defined = serialNames.Count == 0 ? "none is defined" : "defined: " + string.Join(", ", serialNames);
            _diagnostics.Error(node, suggestion is null
                ? $"serial bus '{bus}' is not defined under 'serial:' ({defined})"
                : $"serial bus '{bus}' is not defined under 'serial:'; did you mean '{suggestion}'? ({defined})");
            return null;
        }
        if (text.StartsWith("tcp://", StringComparison.Ordinal))
        {
            var rest = text["tcp://".Length..];
            if (TryParseBind(rest, out var ip) && ip.Port != 0)
            {
                return new UpstreamAddress("tcp", ip.Address.ToString(), ip.Port);
            }
            var colon = rest.LastIndexOf(':');
            if (colon > 0 && Uri.CheckHostName(rest[..colon]) == UriHostNameType.Dns
                && TryInt(rest[(colon + 1)..], out var port) && port is >= 1 and <= 65_535)
            {
                return new UpstreamAddress("tcp", rest[..colon], port);
            }
        }
        _diagnostics.Error(node, $"'{key}' must be tcp://HOST:PORT (port 1..65535) or serial://BUS, not '{text}'");
        return null;
    }

    // ---- telemetry, audit, hardware, network -----------------------------------------------

    private TelemetryConfig? ReadTelemetry(KeyMap root, HashSet<string> serialNames)
    {
        if (!root.TryGet("telemetry", out var node) || Map(node, "telemetry", TelemetryKeys) is not { } telemetry)
        {
            return null;
        }
        MqttConfig? mqttConfig = null;
        if (!telemetry.TryGet("mqtt", out var mqttNode))
        {
            Missing(telemetry, "telemetry", "mqtt", "{ broker: mqtt://HOST:PORT, client-id: ID, topic-prefix: PREFIX }");
        }
        else if (Map(mqttNode, "mqtt", MqttKeys) is { } mqtt)
        {
            Uri? brokerUri = null;
            if (RequiredText(mqtt, "broker", "mqtt", "mqtt://HOST:PORT or mqtts://HOST:PORT") is { } broker)
            {
                if (Uri.TryCreate(broker, UriKind.Absolute, out var uri) && uri.Scheme is "mqtt" or "mqtts" && uri.Host.Length > 0 && uri.AbsolutePath is "/" or "")
                {
                    brokerUri = uri;
                }
                else
                {
                    mqtt.TryGet("broker", out var brokerNode);
                    _diagnostics.Error(brokerNode, $"'broker' must be mqtt://HOST:PORT or mqtts://HOST:PORT, not '{broker}'");
                }
            }
            var clientId = OptionalText(mqtt, "client-id");
            var topicPrefix = OptionalText(mqtt, "topic-prefix");
            if (topicPrefix is not null && (topicPrefix.AsSpan().IndexOfAny('+', '#') >= 0 || topicPrefix.EndsWith('/')))
            {
                mqtt.TryGet("topic-prefix", out var prefixNode);
                _diagnostics.Error(prefixNode, $"'topic-prefix' must be a topic without wildcards (+, #) or a trailing '/', not '{topicPrefix}'");
            }
            var username = OptionalText(mqtt, "username");
            var passwordFile = OptionalText(mqtt, "password-file");
            string? ca = null, cert = null, key = null;
            if (mqtt.TryGet("tls", out var tlsNode) && Map(tlsNode, "tls", TlsKeys) is { } tls)
            {
                ca = OptionalText(tls, "ca");
                cert = OptionalText(tls, "cert");
                key = OptionalText(tls, "key");
                if ((cert is null) != (key is null))
                {
                    _diagnostics.Error(tlsNode, "tls needs both 'cert' and 'key' for a client certificate, or neither");
                }
                if (brokerUri is { Scheme: "mqtt" })
                {
                    _diagnostics.Error(tlsNode, "tls is set but the broker is mqtt://; use mqtts://HOST:PORT");
                }
            }
            if (brokerUri is not null)
            {
                mqttConfig = new MqttConfig
                {
                    Broker = brokerUri,
                    ClientId = clientId ?? "",
                    TopicPrefix = topicPrefix ?? "",
                    Username = username,
                    PasswordFile = passwordFile,
                    TlsCaFile = ca,
                    TlsCertFile = cert,
                    TlsKeyFile = key,
                };
            }
        }
        var format = TelemetryFormat.Json;
        if (telemetry.TryGet("format", out var formatNode) && OneOf(formatNode, "format", Formats) == "sparkplug-b")
        {
            format = TelemetryFormat.SparkplugB;
        }
        var bufferConfig = new BufferConfig();
        if (telemetry.TryGet("buffer", out var bufferNode) && Map(bufferNode, "buffer", BufferKeys) is { } buffer)
        {
            bufferConfig = new BufferConfig
            {
                Path = OptionalText(buffer, "path") ?? bufferConfig.Path,
                MaxMb = (int)(OptionalInteger(buffer, "max-mb", 1, 1_048_576) ?? bufferConfig.MaxMb),
            };
        }
        var polls = new List<PollConfig>();
        var devices = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var pollNode in Sequence(telemetry, "poll", "poll entry"))
        {
            if (Map(pollNode, "poll entry", PollKeys) is not { } poll)
            {
                continue;
            }
            var device = RequiredText(poll, "device", "poll entry", "the device name used in topics");
            if (device is not null)
            {
                poll.TryGet("device", out var deviceNode);
                if (device.AsSpan().IndexOfAny("/+#") >= 0 || device.Length == 0)
                {
                    _diagnostics.Error(deviceNode, $"'device' is a topic level: it must not be empty or contain '/', '+' or '#' ('{device}')");
                }
                else if (devices.TryGetValue(device, out var line))
                {
                    _diagnostics.Error(deviceNode, $"duplicate poll device '{device}' (first at line {line})");
                }
                else
                {
                    devices.Add(device, poll.Node.Line);
                }
            }
            var protocol = PollProtocol.Modbus;
            bool protocolOk = true;
            if (poll.TryGet("protocol", out var protocolNode))
            {
                switch (OneOf(protocolNode, "protocol", PollProtocols))
                {
                    case "modbus": break;
                    case "s7comm": protocol = PollProtocol.S7comm; break;
                    case "iec104": protocol = PollProtocol.Iec104; break;
                    default: protocolOk = false; break;
                }
            }
            UpstreamAddress? upstreamAddress = null;
            if (!poll.TryGet("upstream", out var upstream))
            {
                Missing(poll, "poll entry", "upstream", protocol switch
                {
                    PollProtocol.S7comm => "tcp://HOST:102",
                    PollProtocol.Iec104 => "tcp://HOST:2404",
                    _ => "tcp://HOST:PORT or serial://BUS",
                });
            }
            else
            {
                upstreamAddress = Upstream(upstream, "upstream", serialNames);
            }
            S7PollConnection? s7 = null;
            ushort commonAddress = 0;
            TimeSpan? stationTime = null;
            if (protocol == PollProtocol.S7comm)
            {
                s7 = ReadS7Connection(poll, upstreamAddress, upstream);
                protocolOk &= s7 is not null;
            }
            else
            {
                foreach (var key in (ReadOnlySpan<string>)["rack", "slot", "connection", "called-tsap", "calling-tsap"])
                {
                    if (poll.TryGetKey(key, out var keyNode))
                    {
                        _diagnostics.Error(keyNode!, protocol == PollProtocol.Iec104
                            ? $"'{key}' is an S7 connection key; an iec104 poll entry names its station by 'ca' (the common address)"
                            : $"'{key}' is an S7 connection key: add 'protocol: s7comm' to this poll entry, or leave it out for Modbus");
                        protocolOk = false;
                    }
                }
            }
            if (protocol == PollProtocol.Iec104)
            {
                var ca = ReadIec104Station(poll, upstreamAddress, upstream);
                protocolOk &= ca is not null;
                commonAddress = ca ?? 0;
                protocolOk &= ReadIec104StationTime(poll, out stationTime);
            }
            else
            {
                foreach (var (key, what) in (ReadOnlySpan<(string, string)>)[("ca", "the common address of an IEC 104 station"), ("station-time", "the time of an IEC 104 station's time tags")])
                {
                    if (poll.TryGetKey(key, out var keyNode))
                    {
                        _diagnostics.Error(keyNode!, $"'{key}' is {what}: add 'protocol: iec104' to this poll entry, or leave it out");
                        protocolOk = false;
                    }
                }
            }
            var unit = protocol != PollProtocol.Modbus ? 0 : OptionalInteger(poll, "unit", 0, 255) ?? 1;
            TimeSpan every = TimeSpan.FromSeconds(1);
            if (poll.TryGet("every", out var everyNode) && Duration(everyNode, "every") is { } parsedEvery)
            {
                every = parsedEvery;
            }
            var maxGap = protocol != PollProtocol.Modbus ? 0 : OptionalInteger(poll, "max-gap", 0, ModbusReadRegistersLimit - 1) ?? 0;
            var tags = new List<TagConfig>();
            var tagNames = new Dictionary<string, int>(StringComparer.Ordinal);
            var ioas = new Dictionary<uint, (string Name, int Line)>();
            foreach (var tagNode in Sequence(poll, "tags", "tag"))
            {
                var tag = protocol switch
                {
                    PollProtocol.S7comm => ReadS7Tag(tagNode, tagNames),
                    PollProtocol.Iec104 => ReadIec104Tag(tagNode, tagNames, ioas),
                    _ => ReadTag(tagNode, tagNames),
                };
                if (tag is not null)
                {
                    tags.Add(tag);
                }
            }
            if (device is not null && upstreamAddress is not null && protocolOk)
            {
                polls.Add(new PollConfig
                {
                    Device = device,
                    Upstream = upstreamAddress,
                    Unit = (byte)unit,
                    Every = every,
                    MaxGap = (int)maxGap,
                    Tags = tags,
                    Protocol = protocol,
                    S7 = s7,
                    CommonAddress = commonAddress,
                    StationTimeOffset = stationTime,
                });
            }
        }
        return mqttConfig is null ? null : new TelemetryConfig { Mqtt = mqttConfig, Format = format, Buffer = bufferConfig, Poll = polls };
    }

    private (PcapAuditConfig? Pcap, AuditJournalConfig? Journal, string? Key) ReadAudit(KeyMap root)
    {
        if (!root.TryGet("audit", out var node) || Map(node, "audit", AuditKeys) is not { } audit)
        {
            return default;
        }
        PcapAuditConfig? pcapConfig = null;
        if (audit.TryGet("pcap", out var pcapNode) && Map(pcapNode, "pcap", PcapKeys) is { } pcap)
        {
            var path = RequiredText(pcap, "path", "pcap", "the pcapng file to write denied and malformed frames to");
            var maxMb = OptionalNumber(pcap, "max-mb");
            if (maxMb is < PcapAuditConfig.MinMaxMb or > 1_048_576)
            {
                pcap.TryGet("max-mb", out var maxNode);
                _diagnostics.Error(maxNode, $"'max-mb' must be a number of MiB from {PcapAuditConfig.MinMaxMb.ToString(CultureInfo.InvariantCulture)} to 1048576 (fractions such as 0.5 allowed), not {maxNode.Describe()}");
            }
            else if (path is not null)
            {
                var config = new PcapAuditConfig { Path = path };
                pcapConfig = maxMb is { } mb ? config with { MaxMb = mb } : config;
            }
        }
        AuditJournalConfig? journalConfig = null;
        if (audit.TryGet("journal", out var journalNode) && Map(journalNode, "journal", JournalKeys) is { } journal)
        {
            var path = OptionalText(journal, "path");
            var maxMb = OptionalNumber(journal, "max-mb");
            var every = OptionalInteger(journal, "checkpoint-every", 1, 1_000_000);
            var seconds = OptionalInteger(journal, "checkpoint-seconds", 1, 3600);
            bool valid = true;
            if (maxMb is < AuditJournalConfig.MinMaxMb or > 1_048_576)
            {
                journal.TryGet("max-mb", out var maxNode);
                _diagnostics.Error(maxNode, $"'max-mb' must be a number of MiB from {AuditJournalConfig.MinMaxMb.ToString(CultureInfo.InvariantCulture)} to 1048576 (the journal keeps {AuditJournalConfig.Segments} segments of max-mb / {AuditJournalConfig.Segments}), not {maxNode.Describe()}");
                valid = false;
            }
            if ((journal.Has("checkpoint-every") && every is null) || (journal.Has("checkpoint-seconds") && seconds is null)
                || (journal.Has("path") && path is null) || (journal.Has("max-mb") && maxMb is null))
            {
                valid = false;
            }
            if (valid)
            {
                var config = new AuditJournalConfig { Path = path };
                config = maxMb is { } mb ? config with { MaxMb = mb } : config;
                config = every is { } n ? config with { CheckpointEvery = (int)n } : config;
                journalConfig = seconds is { } t ? config with { CheckpointSeconds = (int)t } : config;
            }
        }
        var key = OptionalText(audit, "key");
        return (pcapConfig, journalConfig, key);
    }

    private HardwareConfig? ReadHardware(KeyMap root)
    {
        if (!root.TryGet("hardware", out var node) || Map(node, "hardware", HardwareKeys) is not { } hardware)
        {
            return null;
        }
        var config = new HardwareConfig();
        if (OptionalText(hardware, "profile") is { } profile)
        {
            config = config with { Profile = profile };
        }
        if (hardware.TryGet("maintenance-key", out var keyNode) && Map(keyNode, "maintenance-key", MaintenanceKeyKeys) is { } key)
        {
            long? line = null;
            if (!key.TryGet("gpio", out var gpio))
            {
                Missing(key, "maintenance-key", "gpio", $"the GPIO line number of the key switch, 0..{MaxGpio}");
            }
            else
            {
                line = Integer(gpio, "gpio", 0, MaxGpio);
            }
            bool activeLow = !(key.TryGet("active", out var active) && OneOf(active, "active", ActiveLevels) == "high");
            long minutes = OptionalInteger(key, "arm-minutes", 1, 24 * 60) ?? 30;
            if (line is { } l)
            {
                config = config with
                {
                    MaintenanceKey = new MaintenanceKeyConfig { Gpio = (int)l, ActiveLow = activeLow, ArmDuration = TimeSpan.FromMinutes(minutes) },
                };
            }
        }
        if (hardware.TryGet("leds", out var ledsNode) && Map(ledsNode, "leds", LedKeys) is { } leds)
        {
            config = config with
            {
                Leds = new LedPins
                {
                    Run = (int?)OptionalInteger(leds, "run", 0, MaxGpio),
                    Alarm = (int?)OptionalInteger(leds, "alarm", 0, MaxGpio),
                    Maintenance = (int?)OptionalInteger(leds, "maintenance", 0, MaxGpio),
                },
            };
        }
        return config;
    }

    private NetworkConfig? ReadNetwork(KeyMap root)
    {
        if (!root.TryGet("network", out var node) || Map(node, "network", NetworkKeys) is not { } network)
        {
            return null;
        }
        var plant = OptionalText(network, "plant");
        var site = OptionalText(network, "site");
        var management = new List<string>();
        if (network.TryGet("management", out var managementNode) && ReadSources(managementNode, "management") is not null)
        {
            if (managementNode.Kind == YamlNodeKind.Sequence)
            {
                foreach (var item in managementNode.Items)
                {
                    management.Add(item.Value);
                }
            }
            else
            {
                management.Add(managementNode.Value);
            }
        }
        foreach (var name in (ReadOnlySpan<string?>)[plant, site])
        {
            // nft matches interface names literally; these are the kernel's limits (IFNAMSIZ 16, no '/', no space).
            if (name is not null && (name.Length is 0 or > 15 || name.AsSpan().IndexOfAny(" /\\\"'") >= 0))
            {
                network.TryGet(name == plant ? "plant" : "site", out var nameNode);
                _diagnostics.Error(nameNode, $"'{name}' is not a network interface name (1..15 characters, no spaces, quotes or '/')");
            }
        }
        // The broker and poll upstreams are validated by ReadTelemetry; here they are only read, so that nft can let them out.
        Uri? broker = null;
        var pollUpstreams = new List<UpstreamAddress>();
        if (root.TryGet("telemetry", out var telemetry) && telemetry.Kind == YamlNodeKind.Mapping)
        {
            foreach (var (key, value) in telemetry.Entries)
            {
                if (key.Value == "mqtt" && value.Kind == YamlNodeKind.Mapping)
                {
                    foreach (var (mqttKey, mqttValue) in value.Entries)
                    {
                        if (mqttKey.Value == "broker" && mqttValue.Kind == YamlNodeKind.Scalar
                            && Uri.TryCreate(mqttValue.Value, UriKind.Absolute, out var uri) && uri.Scheme is "mqtt" or "mqtts")
                        {
                            broker = uri;
                        }
                    }
                }
                else if (key.Value == "poll" && value.Kind == YamlNodeKind.Sequence)
                {
                    foreach (var poll in value.Items)
                    {
                        foreach (var (pollKey, pollValue) in poll.Entries)
                        {
                            if (pollKey.Value == "upstream" && pollValue.Kind == YamlNodeKind.Scalar && pollValue.Value.StartsWith("tcp://", StringComparison.Ordinal)
                                && Uri.TryCreate(pollValue.Value, UriKind.Absolute, out var upstream) && upstream.Port > 0)
                            {
                                pollUpstreams.Add(new UpstreamAddress("tcp", upstream.Host.Trim('[', ']'), upstream.Port));
                            }
                        }
                    }
                }
            }
        }
        return new NetworkConfig { Plant = plant, Site = site, Management = management, Broker = broker, PollUpstreams = pollUpstreams };
    }
}
