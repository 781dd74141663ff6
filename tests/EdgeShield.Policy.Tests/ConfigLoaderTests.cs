using System.Net;
using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

public class ConfigLoaderTests
{
    private static void AssertErrors(string yaml, params string[] expected)
    {
        var result = Load(yaml);
        Assert.True(result.HasErrors);
        Assert.Null(result.Config);
        Assert.True(expected.SequenceEqual(Lines(result)), string.Join("\n", Lines(result)));
    }

    private const string Policy = "policies:\n  p: { mode: enforce }\n";

    [Fact]
    public void Load_EmptyFile_IsValidEmptyConfig()
    {
        var result = Load("");
        Assert.False(result.HasErrors);
        Assert.Empty(result.Config!.Listeners);
        Assert.Empty(result.Config.Policies);
    }

    [Fact]
    public void Load_Hash_IsSha256OfFileBytes()
    {
        var result = Load("gateway: { name: gw }\n");
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("gateway: { name: gw }\n"u8)), result.Config!.Hash);
        Assert.Equal(64, result.Config.Hash.Length);
    }

    [Fact]
    public void Diagnostic_ToString_IsFileLineColSeverityMessage()
    {
        Assert.Equal("a.yaml:3:7: error: bad", new ConfigDiagnostic("a.yaml", 3, 7, DiagnosticSeverity.Error, "bad").ToString());
        Assert.Equal("a.yaml:1:1: warning: meh", new ConfigDiagnostic("a.yaml", 1, 1, DiagnosticSeverity.Warning, "meh").ToString());
    }

    [Fact]
    public void Load_YamlSyntaxError_IsReportedAtItsPosition()
    {
        AssertErrors("policies:\n  p:\n    mode: enforce\n   rules: [\n",
            "test.yaml:4:4: error: YAML syntax: While parsing a block mapping, did not find expected key.");
    }

    // Found by the config fuzz target (tests/fuzz): YamlDotNet threw InvalidOperationException (broken
    // flow collections) or ArgumentException (a verbatim tag that is not a URI) out of the loader, so
    // `check` crashed and a hot reload threw instead of keeping the old policy.
    [Theory]
    [InlineData(": {\n0")]
    [InlineData("listeners:\n  - { name: a, bind: 0.0.0.0:502\n0")]
    [InlineData("a: !<:> x")]
    [InlineData("policies:\n  p: { mode: !<:> enforce }\n")]
    public void Load_TextYamlDotNetThrowsOn_IsASyntaxError(string yaml)
    {
        var result = Load(yaml);
        Assert.True(result.HasErrors);
        Assert.Null(result.Config);
        var error = Assert.Single(result.Diagnostics);
        Assert.StartsWith("YAML syntax: ", error.Message, StringComparison.Ordinal);
        Assert.True(error.Line >= 1 && error.Column >= 1);
    }

    [Fact]
    public void Load_TwoDocuments_IsError()
    {
        AssertErrors("gateway: { name: a }\n---\ngateway: { name: b }\n",
            "test.yaml:2:1: error: a configuration is one YAML document; remove the second '---' document");
    }

    [Fact]
    public void Load_MisspelledRuleKey_SuggestsTheRightOne()
    {
        AssertErrors(Policy.Replace("{ mode: enforce }", "\n    mode: enforce\n    rules:\n      - fucntion: 3\n", StringComparison.Ordinal),
            "test.yaml:5:9: error: unknown key 'fucntion' in rule; did you mean 'function'? (valid keys: name, from, unit, function, address, type, word-order, value, rate, maintenance)");
    }

    [Fact]
    public void Load_UnknownKeyFarFromAny_ListsValidKeys()
    {
        AssertErrors("network: { firewall: on }\n",
            "test.yaml:1:12: error: unknown key 'firewall' in network; valid keys: plant, site, management");
    }

    [Fact]
    public void Load_UnknownTopLevelKey_SuggestsSection()
    {
        AssertErrors("polices: {}\n",
            "test.yaml:1:1: error: unknown key 'polices' in the configuration file; did you mean 'policies'? (valid keys: gateway, serial, listeners, policies, telemetry, audit, hardware, network, version)");
    }

    [Fact]
    public void Load_DuplicateKey_IsError()
    {
        AssertErrors("gateway:\n  name: a\n  name: b\n",
            "test.yaml:3:3: error: duplicate key 'name' in gateway (first at line 2)");
    }

    [Fact]
    public void Load_PolicyWithoutMode_IsError()
    {
        AssertErrors("policies:\n  p:\n    on-deny: drop\n",
            "test.yaml:3:5: error: policy 'p' is missing required key 'mode' (enforce or monitor; there is no default)");
    }

    [Fact]
    public void Load_BadEnumValues_SuggestClosest()
    {
        AssertErrors("policies:\n  p: { mode: enforced, on-deny: reset }\n",
            "test.yaml:2:14: error: 'mode' must be one of enforce, monitor; found 'enforced'; did you mean 'enforce'?",
            "test.yaml:2:33: error: 'on-deny' must be one of exception, drop, close; found 'reset'");
    }

    [Fact]
    public void Load_EveryRuleProblem_IsReportedInOnePass()
    {
        const string yaml = """
            policies:
              p:
                mode: enforce
                rules:
                  - from: [10.0.0.5/24, 10.0.0.0/33, not-an-ip, "fe80::1%eth0"]
                    unit: [256, 5-1]
                    function: [read-coil, 0, 130, 43/13]
                    address: [10-5, 70000]
                    value: -1
                    rate: 10/d
                    maintenance: yes
                  - from: []
            """;
        AssertErrors(yaml,
            "test.yaml:5:16: error: 'from' entry 10.0.0.5/24 has host bits set; write the network as 10.0.0.0/24",
            "test.yaml:5:29: error: 'from' entry 10.0.0.0/33 has a prefix length outside 0..32",
            "test.yaml:5:42: error: 'from' must be an IPv4 or IPv6 address or CIDR such as 10.20.0.0/24 or fd00::/64, not 'not-an-ip'",
            "test.yaml:5:53: error: 'from' must be an IPv4 or IPv6 address or CIDR such as 10.20.0.0/24 or fd00::/64, not 'fe80::1%eth0'",
            "test.yaml:6:16: error: 'unit' must be a number from 0 to 255 or a range such as 0-9, not '256'",
            "test.yaml:6:21: error: 'unit' range 5-1 runs backwards; write it as 1-5",
            "test.yaml:7:20: error: unknown function 'read-coil'; did you mean 'read-coils'? (valid: a number 1..127, 8/N for a diagnostics sub-function, a group read, write, diagnostics, program, or a name: read-coils, read-discrete-inputs, read-holding-registers, read-input-registers, write-single-coil, write-single-register, read-exception-status, get-comm-event-counter, get-comm-event-log, write-multiple-coils, write-multiple-registers, report-server-id, read-file-record, write-file-record, mask-write-register, read-write-multiple-registers, read-fifo-queue, read-device-identification, canopen-general-reference, return-query-data, restart-communications, return-diagnostic-register, change-ascii-input-delimiter, force-listen-only-mode, clear-counters-and-diagnostic-register, return-bus-message-count, return-bus-communication-error-count, return-bus-exception-error-count, return-server-message-count, return-server-no-response-count, return-server-nak-count, return-server-busy-count, return-bus-character-overrun-count, clear-overrun-counter-and-flag)",
            "test.yaml:7:31: error: 'function' 0 is not a Modbus function; use 1..127, a name or a group",
            "test.yaml:7:34: error: 'function' 130 lies in the exception-response range 128..255 and is never a valid request; use 1..127, a name or a group",
            "test.yaml:7:39: error: 'function' must be a function number from 1 to 127, a name or a group, not '43/13'",
            "test.yaml:8:19: error: 'address' range 10-5 runs backwards; write it as 5-10",
            "test.yaml:8:25: error: 'address' must be a number from 0 to 65535 or a range such as 0-9, not '70000'",
            "test.yaml:9:16: error: 'value' must be a number from 0 to 65535 or a range such as 0-9, not '-1'; negative or decimal bounds need 'type:' (int16, int32, float32, …)",
            "test.yaml:10:15: error: 'rate' must be requests per second, minute or hour such as 10/s, 600/m or 100/h (1 to 1000000 requests), not '10/d'",
            "test.yaml:11:22: error: 'maintenance' must be true or false, not 'yes'",
            "test.yaml:12:15: error: 'from' is an empty list and would match nothing; give an IPv4 or IPv6 address or CIDR such as 10.20.0.0/24, or leave the key out to match any");
    }

    [Fact]
    public void Load_DuplicateRuleNames_IsError()
    {
        AssertErrors("policies:\n  p:\n    mode: enforce\n    rules:\n      - { name: a, function: 1 }\n      - { name: a, function: 2 }\n",
            "test.yaml:6:9: error: duplicate rule name 'a' in policy 'p' (first at line 5); audit events and replay counts name rules, so names must be unique");
    }

    private const string ListenerBase = "serial:\n  - { name: rs485-1, device: /dev/ttyS1 }\n" + Policy + "listeners:\n";

    [Fact]
    public void Load_ValidListeners_AreBuilt()
    {
        var result = Load(ListenerBase + """
              - name: a
                bind: 0.0.0.0:502
                upstream: tcp://10.10.0.11:502
                policy: p
                limits: { connections-per-source: 8, max-connections: 100, pending-per-connection: 4, idle-timeout: 250ms, frame-timeout: 3s, response-timeout: 2s, connect-timeout: 1h }
              - name: b
                bind: "[::1]:1502"
                protocol: modbus-rtu-over-tcp
                upstream: serial://rs485-1
                policy: p
              - name: c
                bind: 127.0.0.1:0
                upstream: tcp://plc-3.plant.local:502
                policy: p
              - name: d
                bind: 127.0.0.2:0
                upstream: tcp://[fd00::3]:502
                policy: p
            """);
        Assert.False(result.HasErrors, string.Join("\n", Lines(result)));
        var listeners = result.Config!.Listeners;
        Assert.Equal(4, listeners.Count);
        Assert.Equal(new IPEndPoint(IPAddress.Any, 502), listeners[0].Bind);
        Assert.Equal(ListenerProtocol.ModbusTcp, listeners[0].Protocol);
        Assert.Equal("tcp://10.10.0.11:502", listeners[0].Upstream.ToString());
        Assert.Equal(new ListenerLimits { ConnectionsPerSource = 8, MaxConnections = 100, PendingPerConnection = 4, IdleTimeout = TimeSpan.FromMilliseconds(250), FrameTimeout = TimeSpan.FromSeconds(3), ResponseTimeout = TimeSpan.FromSeconds(2), ConnectTimeout = TimeSpan.FromHours(1) }, listeners[0].Limits);
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 1502), listeners[1].Bind);
        Assert.Equal(ListenerProtocol.ModbusRtuOverTcp, listeners[1].Protocol);
        Assert.Equal("serial://rs485-1", listeners[1].Upstream.ToString());
        Assert.Equal(new ListenerLimits(), listeners[1].Limits);
        Assert.Equal("plc-3.plant.local", listeners[2].Upstream.Host);
        Assert.Equal("fd00::3", listeners[3].Upstream.Host);
    }

    [Fact]
    public void Load_ListenerProblems_AreAllReported()
    {
        AssertErrors(ListenerBase + """
              - name: a
                bind: 0.0.0.0:502
                upstream: serial://rs485-2
                policy: q
                limits: { idle-timeout: 5, connections-per-source: 0, response-timout: 1s }
              - name: a
                bind: 127.0.0.1:502
                protocol: modbus-udp
                upstream: tcp://10.0.0.1
              - name: c
                bind: localhost:502
                upstream: http://x
                policy: p
            """,
            "test.yaml:8:15: error: serial bus 'rs485-2' is not defined under 'serial:'; did you mean 'rs485-1'? (defined: rs485-1)",
            "test.yaml:9:13: error: policy 'q' is not defined under 'policies:' (defined: p)",
            "test.yaml:10:29: error: 'idle-timeout' must be a duration such as 250ms, 1s, 5m or 1h, not '5'",
            "test.yaml:10:56: error: 'connections-per-source' must be a whole number from 1 to 65535, not '0'",
            "test.yaml:10:59: error: unknown key 'response-timout' in limits; did you mean 'response-timeout'? (valid keys: connections-per-source, max-connections, pending-per-connection, idle-timeout, frame-timeout, response-timeout, connect-timeout)",
            "test.yaml:11:5: error: listener is missing required key 'policy' (the name of a policy under 'policies:'; no listener runs without one)",
            "test.yaml:11:11: error: duplicate listener name 'a' (first at line 6)",
            "test.yaml:12:11: error: bind 127.0.0.1:502 overlaps the listener at line 6 (0.0.0.0:502); each listener needs its own address and port",
            "test.yaml:13:15: error: 'protocol' must be one of modbus-tcp, modbus-rtu-over-tcp, s7comm, iec104; found 'modbus-udp'; did you mean 'modbus-tcp'?",
            "test.yaml:14:15: error: 'upstream' must be tcp://HOST:PORT (port 1..65535) or serial://BUS, not 'tcp://10.0.0.1'",
            "test.yaml:16:11: error: 'bind' must be IP:PORT such as 0.0.0.0:502, 127.0.0.1:5020 or [::]:502 (port 0..65535), not 'localhost:502'",
            "test.yaml:17:15: error: 'upstream' must be tcp://HOST:PORT (port 1..65535) or serial://BUS, not 'http://x'");
    }

    [Fact]
    public void Load_OtherSections_AreChecked()
    {
        AssertErrors("""
            serial:
              - { name: bus, device: /dev/ttyS1, baud: fast, parity: evn, stop-bits: 3, response-timeout-ms: 300 }
              - { name: bus, device: /dev/ttyS2 }
            telemetry:
              mqtt: { broker: http://127.0.0.1, client-id: gw, topic-prefix: a/b, tls: { ca: x, crt: y } }
              format: xml
              buffer: { path: /tmp/b, max-mb: 0 }
              poll:
                - device: plc1
                  upstream: serial://nope
                  every: 1x
                  tags:
                    - { name: t, table: holdings, address: 70000, type: uint16, scale: big }
                    - { name: t, address: 1 }
            audit:
              pcap: { path: /tmp/d.pcapng, max-size: 3 }
            hardware:
              profile: simulated
              maintenance-key: { gpio: 17, active: lo, arm-minutes: 30 }
              leds: { run: 22, alarm: -1, maintenence: 24 }
            network:
              plant: eth1
              management: [10.0.0.0/24, 10.0.0.1/8]
            """,
            "test.yaml:2:44: error: 'baud' must be a whole number from 300 to 4000000, not 'fast'",
            "test.yaml:2:58: error: 'parity' must be one of none, even, odd; found 'evn'; did you mean 'even'?",
            "test.yaml:2:74: error: 'stop-bits' must be one of 1, 2; found '3'",
            "test.yaml:3:13: error: duplicate serial bus name 'bus' (first at line 2)",
            "test.yaml:5:19: error: 'broker' must be mqtt://HOST:PORT or mqtts://HOST:PORT, not 'http://127.0.0.1'",
            "test.yaml:5:85: error: unknown key 'crt' in tls; did you mean 'cert'? (valid keys: ca, cert, key)",
            "test.yaml:6:11: error: 'format' must be one of json, sparkplug-b; found 'xml'",
            "test.yaml:7:35: error: 'max-mb' must be a whole number from 1 to 1048576, not '0'",
            "test.yaml:10:17: error: serial bus 'nope' is not defined under 'serial:' (defined: bus)",
            "test.yaml:11:14: error: 'every' must be a duration such as 250ms, 1s, 5m or 1h, not '1x'",
            "test.yaml:13:29: error: 'table' must be one of coil, discrete-input, holding, input; found 'holdings'; did you mean 'holding'?",
            "test.yaml:13:48: error: 'address' must be a whole number from 0 to 65535, not '70000'",
            "test.yaml:13:76: error: 'scale' must be a number such as 0.1, not 'big'",
            "test.yaml:14:11: error: tag is missing required key 'table' (coil, discrete-input, holding, input)",
            "test.yaml:14:19: error: duplicate tag 't' in this poll entry (first at line 13)",
            "test.yaml:16:32: error: unknown key 'max-size' in pcap; valid keys: path, max-mb",
            "test.yaml:19:40: error: 'active' must be one of low, high; found 'lo'; did you mean 'low'?",
            "test.yaml:20:27: error: 'alarm' must be a whole number from 0 to 1023, not '-1'",
            "test.yaml:20:31: error: unknown key 'maintenence' in leds; did you mean 'maintenance'? (valid keys: run, alarm, maintenance)",
            "test.yaml:23:29: error: 'management' entry 10.0.0.1/8 has host bits set; write the network as 10.0.0.0/8");
    }

    [Fact]
    public void Load_SectionOfWrongShape_SaysWhatIsExpected()
    {
        AssertErrors("listeners: { name: a }\npolicies: [a]\ngateway: plant\n",
            "test.yaml:1:12: error: 'listeners' must be a list of listeners (each item starting with '- '), not a mapping",
            "test.yaml:2:11: error: 'policies' must be a mapping from policy name to policy, not a list",
            "test.yaml:3:10: error: gateway must be a mapping with the keys name, site; found 'plant'");
    }

    [Fact]
    public void Load_MissingFile_IsError()
    {
        var result = ConfigLoader.Load("/nonexistent/edgeshield.yaml");
        Assert.True(result.HasErrors);
        Assert.StartsWith("/nonexistent/edgeshield.yaml:1:1: error: cannot read the file:", result.Diagnostics[0].ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_Gateway_IsRead()
    {
        var config = Load("gateway: { name: line3-gw1, site: plant-a }\n").Config!;
        Assert.Equal("line3-gw1", config.GatewayName);
        Assert.Equal("plant-a", config.Site);
    }

    [Fact]
    public void Load_AliasToAnchor_IsResolved()
    {
        var result = Load("policies:\n  p:\n    mode: enforce\n    rules:\n      - from: &plc 10.0.0.1\n        function: 3\n      - from: *plc\n        function: 4\n");
        Assert.False(result.HasErrors, string.Join("\n", Lines(result)));
    }

    [Theory]
    [InlineData("250ms", 250)]
    [InlineData("1s", 1000)]
    [InlineData("5m", 300_000)]
    [InlineData("1h", 3_600_000)]
    public void Load_Durations_AreParsed(string text, int milliseconds)
    {
        var config = Load(ListenerBase + $"  - {{ name: a, bind: 127.0.0.1:1, upstream: tcp://127.0.0.1:2, policy: p, limits: {{ idle-timeout: {text} }} }}\n").Config!;
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), config.Listeners[0].Limits.IdleTimeout);
    }
}
