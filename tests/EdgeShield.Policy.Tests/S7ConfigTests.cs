using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

/// <summary>The S7 keys of a policy and the protocol of listeners and policies, with exact file:line:col.</summary>
public class S7ConfigTests
{
    private static void AssertDiagnostics(string yaml, params string[] expected)
    {
        var result = Load(yaml);
        Assert.True(expected.SequenceEqual(Lines(result)), string.Join("\n", Lines(result)));
    }

    private const string S7Policy = "policies:\n  p:\n    protocol: s7comm\n    mode: enforce\n    rules:\n";

    [Fact]
    public void OneConfig_ModbusAndS7ListenersWithTheirPolicies_Loads()
    {
        var result = Load("""
            listeners:
              - { name: hmi-plc1, bind: 0.0.0.0:502, upstream: tcp://10.10.0.11:502, policy: plc1 }
              - { name: rtu, bind: 0.0.0.0:503, protocol: modbus-rtu-over-tcp, upstream: tcp://10.10.0.12:502, policy: plc1 }
              - { name: hmi-s7, bind: 0.0.0.0:102, protocol: s7comm, upstream: tcp://10.10.0.21:102, policy: press1 }
            policies:
              plc1:
                mode: enforce
                rules:
                  - { function: read, address: 0-99 }
              press1:
                protocol: s7comm
                mode: enforce
                rules:
                  - { connection: op, function: [setup-communication, read-var], area: db, db: 1, address: 0-99 }
            """);
        Assert.Empty(result.Diagnostics);
        var config = result.Config!;
        Assert.Equal(ListenerProtocol.S7comm, config.Listeners[2].Protocol);
        Assert.Equal(ListenerProtocol.ModbusRtuOverTcp, config.Listeners[1].Protocol);
        Assert.Equal(ListenerProtocol.ModbusTcp, config.Policies["plc1"].Protocol);
        Assert.Equal(ListenerProtocol.S7comm, config.Policies["press1"].Protocol);
    }

    [Fact]
    public void PolicyProtocol_ModbusRtuOverTcp_IsTheModbusVocabulary()
    {
        var result = Load("policies:\n  p:\n    protocol: modbus-rtu-over-tcp\n    mode: enforce\n    rules:\n      - { unit: 1, function: read }\n");
        Assert.Empty(result.Diagnostics);
        Assert.Equal(ListenerProtocol.ModbusTcp, result.Config!.Policies["p"].Protocol);
    }

    [Fact]
    public void Listener_PolicyOfAnotherProtocol_IsAnErrorAtItsPolicyKey()
    {
        AssertDiagnostics("""
            listeners:
              - { name: s7, bind: 0.0.0.0:102, protocol: s7comm, upstream: tcp://10.0.0.1:102, policy: modbus }
              - { name: mb, bind: 0.0.0.0:502, protocol: modbus-rtu-over-tcp, upstream: tcp://10.0.0.2:502, policy: s7 }
              - { name: ser, bind: 0.0.0.0:103, protocol: s7comm, upstream: serial://rs485-1, policy: s7 }
            serial:
              - { name: rs485-1, device: /dev/ttyS1, baud: 9600, parity: none, stop-bits: 1, response-timeout-ms: 300 }
            policies:
              modbus: { mode: enforce }
              s7: { protocol: s7comm, mode: enforce }
              bad: { protocol: s7, mode: enforce }
            """,
            "test.yaml:2:92: error: listener 's7' speaks s7comm, but policy 'modbus' is protocol: modbus-tcp; a listener may only use a policy of its own protocol (use a policy with 'protocol: s7comm')",
            "test.yaml:3:105: error: listener 'mb' speaks modbus-rtu-over-tcp, but policy 's7' is protocol: s7comm; a listener may only use a policy of its own protocol (use a policy with 'protocol: modbus-tcp (or modbus-rtu-over-tcp)')",
            "test.yaml:4:65: error: an s7comm listener forwards to a PLC over ISO-on-TCP: 'upstream' must be tcp://HOST:PORT (usually port 102), not serial://rs485-1",
            "test.yaml:10:20: error: 'protocol' must be one of modbus-tcp, modbus-rtu-over-tcp, s7comm, iec104; found 's7'");
    }

    [Fact]
    public void ForeignAndUnknownKeys_AreErrorsNamingTheKey()
    {
        AssertDiagnostics(S7Policy + """
                  - { unit: 1, word-order: cdab, areas: db }
            modbus:
              x:
                mode: enforce
                rules:
                  - { area: db, db: 1, connection: pg, pi-service: _INSE }
            """.Replace("modbus:\n", "policies2:\n", StringComparison.Ordinal),
            "test.yaml:6:11: error: 'unit' is a Modbus rule key, but policy 'p' is protocol: s7comm; valid keys of an S7 rule: name, from, connection, function, pi-service, area, db, address, type, value, rate, maintenance",
            "test.yaml:6:20: error: 'word-order' is a Modbus rule key, but policy 'p' is protocol: s7comm; valid keys of an S7 rule: name, from, connection, function, pi-service, area, db, address, type, value, rate, maintenance",
            "test.yaml:6:38: error: unknown key 'areas' in S7 rule; did you mean 'area'? (valid keys: name, from, connection, function, pi-service, area, db, address, type, value, rate, maintenance)",
            "test.yaml:7:1: error: unknown key 'policies2' in the configuration file; did you mean 'policies'? (valid keys: gateway, serial, listeners, policies, telemetry, audit, hardware, network, version)");
        AssertDiagnostics("policies:\n  x:\n    mode: enforce\n    rules:\n      - { area: db, db: 1, connection: pg, pi-service: _INSE }\n",
            "test.yaml:5:11: error: 'area' is an S7comm rule key, but policy 'x' is a Modbus policy (add 'protocol: s7comm' to the policy for S7 PLCs); valid keys of a Modbus rule: name, from, unit, function, address, type, word-order, value, rate, maintenance",
            "test.yaml:5:21: error: 'db' is an S7comm rule key, but policy 'x' is a Modbus policy (add 'protocol: s7comm' to the policy for S7 PLCs); valid keys of a Modbus rule: name, from, unit, function, address, type, word-order, value, rate, maintenance",
            "test.yaml:5:28: error: 'connection' is an S7comm rule key, but policy 'x' is a Modbus policy (add 'protocol: s7comm' to the policy for S7 PLCs); valid keys of a Modbus rule: name, from, unit, function, address, type, word-order, value, rate, maintenance",
            "test.yaml:5:44: error: 'pi-service' is an S7comm rule key, but policy 'x' is a Modbus policy (add 'protocol: s7comm' to the policy for S7 PLCs); valid keys of a Modbus rule: name, from, unit, function, address, type, word-order, value, rate, maintenance");
    }

    [Fact]
    public void ConnectionFunctionPiServiceAndArea_BadWords_AreErrorsAtTheItem()
    {
        AssertDiagnostics(S7Policy + """
                  - connection: [pg, 0, opp, 256]
                    function: [read-var, read-holding-registers, 3, wirte-var]
                    area: [db, x, 0x1E, 30, 0x99]
                    pi-service: [_INSE, p_program, _N_F_DELE]

            """,
            "test.yaml:6:26: error: 'connection' must be pg, op, basic, a connection type 1..255 (the called TSAP's high byte), plus-hmi or plus-es, not '0'",
            "test.yaml:6:29: error: 'connection' must be pg, op, basic, a connection type 1..255 (the called TSAP's high byte), plus-hmi or plus-es, not 'opp'; did you mean 'op'?",
            "test.yaml:6:34: error: 'connection' must be pg, op, basic, a connection type 1..255 (the called TSAP's high byte), plus-hmi or plus-es, not '256'",
            "test.yaml:7:30: error: 'read-holding-registers' is a Modbus function; an S7 rule names S7 functions by word (valid: a group read, write, program, control, engineering, or a word: cpu-services, setup-communication, read-var, write-var, request-download, download-block, download-ended, start-upload, upload, end-upload, plc-control, plc-stop, mode-transition, programmer-commands, cyclic-data, block-functions, cpu-functions, security, bsend-brecv, time-read, time-set, nc-programming, s7comm-plus)",
            "test.yaml:7:54: error: '3' is a Modbus function; an S7 rule names S7 functions by word (valid: a group read, write, program, control, engineering, or a word: cpu-services, setup-communication, read-var, write-var, request-download, download-block, download-ended, start-upload, upload, end-upload, plc-control, plc-stop, mode-transition, programmer-commands, cyclic-data, block-functions, cpu-functions, security, bsend-brecv, time-read, time-set, nc-programming, s7comm-plus)",
            "test.yaml:7:57: error: unknown S7 function 'wirte-var'; did you mean 'write-var'? (valid: a group read, write, program, control, engineering, or a word: cpu-services, setup-communication, read-var, write-var, request-download, download-block, download-ended, start-upload, upload, end-upload, plc-control, plc-stop, mode-transition, programmer-commands, cyclic-data, block-functions, cpu-functions, security, bsend-brecv, time-read, time-set, nc-programming, s7comm-plus)",
            "test.yaml:8:20: error: 'area' must be one of i, q, m, db, di, p, c, t, l, v or an S7-200 area by number (3, 5, 6, 7, 30, 31 or 0x03, 0x05, 0x06, 0x07, 0x1E, 0x1F), not 'x'",
            "test.yaml:8:33: error: 'area' must be one of i, q, m, db, di, p, c, t, l, v or an S7-200 area by number (3, 5, 6, 7, 30, 31 or 0x03, 0x05, 0x06, 0x07, 0x1E, 0x1F), not '0x99'",
            "test.yaml:9:29: error: 'pi-service' must be _INSE, _DELE, P_PROGRAM, _MODU, _GARB or an NC service _N_… (upper case, as sent), not 'p_program'; did you mean 'P_PROGRAM'?");
    }

    [Fact]
    public void DbAddressTypeValue_RulesBetweenKeys_AreErrorsAtTheKey()
    {
        AssertDiagnostics(S7Policy + """
                  - { db: 1 }
                  - { area: [m, q], db: 1-9 }
                  - { area: db, db: [0, 9-1], address: [0-2097151, 2097152] }
                  - { area: m, value: 0-10 }
                  - { area: m, type: int16 }
                  - { area: m, type: int32, value: 0-10 }
                  - { area: m, address: [0-7, 10-12], type: int32, value: 0-10 }
                  - { function: read-var, pi-service: _INSE }

            """,
            "test.yaml:6:15: error: 'db' bounds the block numbers of items in areas db and di, but this rule has no 'area:'; add 'area: db' (or di), else items in every other area would pass",
            "test.yaml:7:29: error: 'db' bounds the block numbers of items in areas db and di, but this rule's 'area' names neither",
            "test.yaml:8:26: error: 'db' must be a number from 1 to 65535 or a range such as 1-10, not '0'",
            "test.yaml:8:29: error: 'db' range 9-1 runs backwards; write it as 1-9",
            "test.yaml:8:56: error: 'address' must be a number from 0 to 2097151 or a range such as 0-9, not '2097152'",
            "test.yaml:9:27: error: 'value' bounds written values as 'type' reads them (S7 stores big-endian): add 'type:' (int16, uint16, int32, uint32 or float32)",
            "test.yaml:10:26: error: 'type' says how 'value' reads the written bytes, but this rule has no 'value': add 'value:' bounds or remove 'type:'",
            "test.yaml:10:26: error: 'type: int16' reads written values 2 bytes each from the first byte of each 'address' range: this rule needs 'address:'",
            "test.yaml:11:26: error: 'type: int32' reads written values 4 bytes each from the first byte of each 'address' range: this rule needs 'address:'",
            "test.yaml:12:29: error: 'address' range 10-12 holds 3 bytes, not a whole number of int32 values (4 bytes each, from its first byte)",
            "test.yaml:13:43: error: 'pi-service' narrows plc-control and plc-stop, but this rule's 'function' allows neither (add plc-control, plc-stop, or the group program or control)");
    }

    [Fact]
    public void ShadowedS7Rule_Warns()
    {
        AssertDiagnostics(S7Policy + """
                  - { from: 10.20.0.0/24, function: read, area: [db, m] }
                  - { name: narrower, from: 10.20.0.5, connection: op, function: read-var, area: db, db: 1-9, address: 0-99 }
                  - { name: wider, from: 10.20.0.5, function: read-var, area: [db, q] }
                  - { name: pi, function: [control, program], pi-service: P_PROGRAM }
                  - { name: pi2, function: plc-stop, pi-service: P_PROGRAM }
                  - { name: pi3, function: plc-control, pi-service: _INSE }

            """,
            "test.yaml:7:9: warning: rule 'narrower' can never match: rule 'rule 1' (line 6) comes first and allows everything it allows",
            "test.yaml:10:9: warning: rule 'pi2' can never match: rule 'pi' (line 9) comes first and allows everything it allows");
    }

    [Fact]
    public void S7Analysis_WarnsAboutKeysWithoutEffectAndPlusOnlyConnections()
    {
        var result = Load(S7Policy + """
                  - { name: a, function: setup-communication, area: db }
                  - { name: b, function: read-var, area: m, address: 0-9, type: int16, value: 0-1 }
                  - { name: c, connection: plus-hmi, function: read }
                  - { name: d, function: write-var, area: m, address: 0-99, type: int16, value: 0-10 }
                  - { name: e, function: write-var, area: m, address: 50-149, maintenance: true }

            """);
        Assert.Empty(result.Diagnostics);
        var findings = PolicyAnalysis.Analyze(result.Config!).Select(d => d.ToString()).ToArray();
        Assert.Equal(
        [
            "test.yaml:6:9: warning: rule 'a' of policy 'p': 'area', 'db' and 'address' bound the items of read-var and write-var, and this rule allows neither: they have no effect (its other functions pass them)",
            "test.yaml:7:9: warning: rule 'b' of policy 'p': 'type' and 'value' bound the values write-var writes, and this rule does not allow write-var: they have no effect",
            "test.yaml:8:9: warning: rule 'c' of policy 'p' can never match: its 'connection' names only S7comm-Plus connections (plus-hmi, plus-es), which carry only s7comm-plus, and its 'function' does not name s7comm-plus",
            "test.yaml:10:9: warning: rule 'e' of policy 'p' overlaps rule 'd' (line 9) on addresses 50-99 for sources, units and functions both cover: there 'd' decides first, so this rule's 'value:' bounds and 'maintenance:' do not apply",
        ], findings);
    }
}
