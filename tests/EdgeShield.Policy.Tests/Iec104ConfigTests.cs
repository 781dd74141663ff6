using static EdgeShield.Policy.Tests.Iec104Requests;
using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

/// <summary>The IEC 104 keys of a policy, the iec104 listener and its limits, with exact file:line:col.</summary>
public class Iec104ConfigTests
{
    private static void AssertDiagnostics(string yaml, params string[] expected)
    {
        var result = Load(yaml);
        Assert.True(expected.SequenceEqual(Lines(result)), string.Join("\n", Lines(result)));
    }

    private const string Iec104Policy = "policies:\n  p:\n    protocol: iec104\n    mode: enforce\n    rules:\n";

    [Fact]
    public void DesignExample_Loads_WithEveryKey()
    {
        var result = Load("""
            listeners:
              - { name: scada-rtu7, bind: 0.0.0.0:2404, protocol: iec104, upstream: tcp://10.10.0.31:2404, policy: rtu7 }
              - name: scada-rtu8
                bind: 0.0.0.0:2405
                protocol: iec104
                upstream: tcp://10.10.0.32:2404
                policy: rtu7
                limits: { k: 24, w: 16, t1: 30s, t2: 20s, t3: 1m, idle-timeout: 10m }
            policies:
              rtu7:
                protocol: iec104
                mode: enforce
                on-deny: exception
                rules:
                  - name: scada monitoring
                    from: 10.30.0.0/24
                    type: [C_IC_NA_1, C_CI_NA_1, C_RD_NA_1, C_TS_TA_1]
                    ca: 1
                  - name: breaker commands
                    from: 10.30.0.10
                    type: [C_SC_NA_1, C_DC_NA_1, C_SC_TA_1, C_DC_TA_1]
                    ca: 1
                    ioa: 2000-2099
                    select-before-operate: true
                  - name: set-points
                    type: C_SE_NC_1
                    ca: 1
                    ioa: 3000-3009
                    value: 0-150.0
                  - name: engineering
                    from: 10.30.0.9
                    type: [clock, parameter, file, 41, S_CH_NA_1, c_rp_na_1, 107]
                    ca: [1-10, 20, global]
                    ioa: [0, 100-199]
                    select-before-operate: false
                    rate: 10/m
                    maintenance: true
                  - name: slow operator
                    type: control
                    ca: 65535
                    select-before-operate: true
                    select-timeout: 30s
            """);
        Assert.Empty(result.Diagnostics);
        var config = result.Config!;
        var policy = config.Policies["rtu7"];
        Assert.Equal(ListenerProtocol.Iec104, policy.Protocol);
        Assert.Equal(ListenerProtocol.Iec104, config.Listeners[0].Protocol);
        // An iec104 listener's response-timeout defaults to its t1, not Modbus's 1 s (docs/IEC104-GATEWAY.md).
        Assert.Equal(new ListenerLimits() with { ResponseTimeout = new ListenerLimits().T1 }, config.Listeners[0].Limits);
        var limits = config.Listeners[1].Limits;
        Assert.Equal((24, 16, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(20), TimeSpan.FromMinutes(1)), (limits.K, limits.W, limits.T1, limits.T2, limits.T3));
        Assert.Equal(TimeSpan.FromMinutes(10), limits.IdleTimeout);
        Assert.Equal((12, 8, TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(20)), (new ListenerLimits().K, new ListenerLimits().W, new ListenerLimits().T1, new ListenerLimits().T2, new ListenerLimits().T3));
        Assert.Equal(["scada monitoring", "breaker commands", "set-points", "engineering", "slow operator"], policy.RuleNames);
        Assert.True(policy.RequiresSelect(1));
        Assert.Equal(TimeSpan.FromSeconds(10), policy.SelectTimeout(1));
        Assert.False(policy.RequiresSelect(3));
        Assert.Equal(TimeSpan.FromSeconds(30), policy.SelectTimeout(4));
    }

    [Fact]
    public void TypeWords_Numbers_AndCaseInsensitiveNames_AllowTheirTypes()
    {
        var maintenance = new MaintenanceState();
        maintenance.Arm();
        var policy = Compile("""
                  - name: engineering
                    type: [clock, parameter, file, 41, S_CH_NA_1, c_rp_na_1, 107]
                    ca: [1-10, 20, global]
                    ioa: [0, 100-199]

            """, maintenance);
        Assert.True(Evaluate(policy, ClockSync(10)).IsAllowed);
        Assert.True(Evaluate(policy, ClockSync(20)).IsAllowed);
        Assert.True(Evaluate(policy, ClockSync(0xFFFF)).IsAllowed);
        Assert.False(Evaluate(policy, ClockSync(11)).IsAllowed);
        Assert.True(Evaluate(policy, new Cmd(Protocols.Iec104.Iec104TypeId.C_RP_NA_1, 1, 0, [1])).IsAllowed);
        Assert.True(Evaluate(policy, new Cmd(Protocols.Iec104.Iec104TypeId.C_TS_TA_1, 1, 0, new byte[9])).IsAllowed);
        Assert.True(Evaluate(policy, new Cmd(Protocols.Iec104.Iec104TypeId.P_ME_NC_1, 1, 150, new byte[5])).IsAllowed);
        Assert.False(Evaluate(policy, new Cmd(Protocols.Iec104.Iec104TypeId.P_ME_NC_1, 1, 200, new byte[5])).IsAllowed);
        Assert.False(Evaluate(policy, Interrogation(1)).IsAllowed);
    }

    [Fact]
    public void TypeMistakes_AreErrorsAtTheItem()
    {
        AssertDiagnostics(Iec104Policy + """
                  - { type: [C_SC_NA_1, M_SP_NA_1, 13, monitor, other, C_SC_NA_2, 42, 104, C_TS_NA_1, 300, xyz] }
            """,
            "test.yaml:6:29: error: 'type' M_SP_NA_1: M_SP_NA_1 (1) is a monitor type; it flows from the station to the client and is never requested, so no rule allows it (a rule names what a client may send: control, system, clock, parameter, file, 41 or 81-95)",
            "test.yaml:6:40: error: 'type' 13: M_ME_NC_1 (13) is a monitor type; it flows from the station to the client and is never requested, so no rule allows it (a rule names what a client may send: control, system, clock, parameter, file, 41 or 81-95)",
            "test.yaml:6:44: error: 'type' monitor: monitor types (1-40, 70) flow from the station to the client and are never requested; a rule names what a client may send",
            "test.yaml:6:53: error: 'type' other: 41 and 81-95 are allowed only by name or number, never as a group (valid groups: control, system, clock, parameter, file)",
            "test.yaml:6:60: error: unknown IEC 104 type 'C_SC_NA_2'; did you mean 'C_SC_NA_1'? (valid: a type name such as C_SC_NA_1 or C_IC_NA_1, a type number, or a group control, system, clock, parameter, file)",
            "test.yaml:6:71: error: 'type' 42 is not a type identification of IEC 60870-5-104 (docs/IEC104.md \"Types\")",
            "test.yaml:6:75: error: 'type' 104 (C_TS_NA_1) is IEC 60870-5-101 only; IEC 104 does not use it (its test command is 107 C_TS_TA_1)",
            "test.yaml:6:80: error: 'type' C_TS_NA_1 is IEC 60870-5-101 only; IEC 104 does not use it (its test command is C_TS_TA_1, 107)",
            "test.yaml:6:91: error: 'type' 300 is not a type identification: a type number is 1..255 (or write its name, such as C_SC_NA_1)",
            "test.yaml:6:96: error: unknown IEC 104 type 'xyz' (valid: a type name such as C_SC_NA_1 or C_IC_NA_1, a type number, or a group control, system, clock, parameter, file)");
    }

    [Fact]
    public void CommonAddressMistakes_GlobalInARange_ZeroAndTooLarge()
    {
        AssertDiagnostics(Iec104Policy + """
                  - ca: [1-65535, 0, 65536, 100-65535, 5-3, station]
            """,
            "test.yaml:6:14: error: 'ca' range 1-65535 reaches 65535, the global address, which a range never includes: end the range at 65534 and write 'global' to allow commands to every station",
            "test.yaml:6:23: error: 'ca' must be a number from 1 to 65534 or a range such as 1-10, not '0' (or global for 65535)",
            "test.yaml:6:26: error: 'ca' must be a number from 1 to 65534 or a range such as 1-10, not '65536' (or global for 65535)",
            "test.yaml:6:33: error: 'ca' range 100-65535 reaches 65535, the global address, which a range never includes: end the range at 65534 and write 'global' to allow commands to every station",
            "test.yaml:6:44: error: 'ca' range 5-3 runs backwards; write it as 3-5",
            "test.yaml:6:49: error: 'ca' must be a number from 1 to 65534 or a range such as 1-10, not 'station' (or global for 65535)");
    }

    [Fact]
    public void IoaMistakes_AreErrorsAtTheItem()
    {
        AssertDiagnostics(Iec104Policy + """
                  - ioa: [0-16777215, 16777216, -1]
            """,
            "test.yaml:6:27: error: 'ioa' must be a number from 0 to 16777215 or a range such as 0-9, not '16777216'",
            "test.yaml:6:37: error: 'ioa' must be a number from 0 to 16777215 or a range such as 0-9, not '-1'");
    }

    [Fact]
    public void ValueMistakes_WithoutASetPointType_AList_Backwards()
    {
        AssertDiagnostics(Iec104Policy + """
                  - { type: [C_SC_NA_1, C_SE_TA_1], value: 0-1 }
                  - { type: [C_SC_NA_1, C_DC_NA_1], value: 0-1 }
                  - { type: parameter, value: 0-1 }
                  - { type: C_SE_NB_1, value: [0-1, 5-6] }
                  - { type: C_SE_NB_1, value: 10..-10 }
                  - { type: C_SE_NB_1, value: high }
            """,
            "test.yaml:7:48: error: 'value' bounds set-points (C_SE_NA_1, C_SE_NB_1, C_SE_NC_1 and their time-tagged C_SE_TA_1, C_SE_TB_1, C_SE_TC_1), but this rule's 'type' names none",
            "test.yaml:8:35: error: 'value' bounds set-points (C_SE_NA_1, C_SE_NB_1, C_SE_NC_1 and their time-tagged C_SE_TA_1, C_SE_TB_1, C_SE_TC_1), but this rule's 'type' names none",
            "test.yaml:9:35: error: 'value' of an IEC 104 rule is one range LOW..HIGH such as 0..150.0 or -0.5..0.5 (normalised set-points read as -1..1, scaled as int16, float as float), not a list",
            "test.yaml:10:35: error: 'value' range 10..-10 runs backwards; write the lower bound first",
            "test.yaml:11:35: error: 'value' must be a finite number or a range LOW..HIGH such as 0..150.0 or -0.5..0.5 (normalised set-points read as -1..1, scaled as int16, float as float), not 'high'");
    }

    [Fact]
    public void SelectMistakes_TimeoutWithoutSelectBeforeOperate_NoSelectableType()
    {
        AssertDiagnostics(Iec104Policy + """
                  - { type: C_SC_NA_1, select-timeout: 5s }
                  - { type: C_SC_NA_1, select-before-operate: false, select-timeout: 5s }
                  - { type: [C_IC_NA_1, C_BO_NA_1], select-before-operate: true }
                  - { type: C_SC_NA_1, select-before-operate: yes, select-timeout: 0s }
                  - { type: C_SC_NA_1, select-before-operate: true, select-timeout: 5s }
            """,
            "test.yaml:6:44: error: 'select-timeout' is how long an execute may follow its select, but this rule has no 'select-before-operate: true'; add it or remove 'select-timeout'",
            "test.yaml:7:74: error: 'select-timeout' is how long an execute may follow its select, and this rule has 'select-before-operate: false'; remove 'select-timeout' or set 'select-before-operate: true'",
            "test.yaml:8:64: error: 'select-before-operate' gates commands that carry S/E (single, double and regulating step commands and set-points: 45-50, 58-63), but this rule's 'type' names none",
            "test.yaml:9:51: error: 'select-before-operate' must be true or false, not 'yes'",
            "test.yaml:9:72: error: 'select-timeout' must be a duration such as 250ms, 1s, 5m or 1h, not '0s'");
    }

    [Fact]
    public void ForeignKeys_NameTheirProtocolAndTheIec104KeyForTheJob()
    {
        AssertDiagnostics(Iec104Policy + """
                  - { unit: 1, function: read, address: 0-9, word-order: cdab, connection: op, caa: 1 }
            modbus:
              x:
                mode: enforce
                rules:
                  - { ca: 1, ioa: 2 }
              y:
                protocol: s7comm
                mode: enforce
                rules:
                  - { select-before-operate: true }
            """,
            "test.yaml:6:11: error: 'unit' is a Modbus rule key, but policy 'p' is protocol: iec104 (an IEC 104 rule names stations by 'ca', their common addresses); valid keys of an IEC 104 rule: name, from, type, ca, ioa, value, select-before-operate, select-timeout, rate, maintenance",
            "test.yaml:6:20: error: 'function' is a Modbus and S7comm rule key, but policy 'p' is protocol: iec104 (an IEC 104 rule names what it allows by 'type'); valid keys of an IEC 104 rule: name, from, type, ca, ioa, value, select-before-operate, select-timeout, rate, maintenance",
            "test.yaml:6:36: error: 'address' is a Modbus and S7comm rule key, but policy 'p' is protocol: iec104 (an IEC 104 rule bounds information objects by 'ioa'); valid keys of an IEC 104 rule: name, from, type, ca, ioa, value, select-before-operate, select-timeout, rate, maintenance",
            "test.yaml:6:50: error: 'word-order' is a Modbus rule key, but policy 'p' is protocol: iec104; valid keys of an IEC 104 rule: name, from, type, ca, ioa, value, select-before-operate, select-timeout, rate, maintenance",
            "test.yaml:6:68: error: 'connection' is an S7comm rule key, but policy 'p' is protocol: iec104 (an IEC 104 rule names stations by 'ca', their common addresses); valid keys of an IEC 104 rule: name, from, type, ca, ioa, value, select-before-operate, select-timeout, rate, maintenance",
            "test.yaml:6:84: error: unknown key 'caa' in IEC 104 rule; did you mean 'ca'? (valid keys: name, from, type, ca, ioa, value, select-before-operate, select-timeout, rate, maintenance)",
            "test.yaml:7:1: error: unknown key 'modbus' in the configuration file; valid keys: gateway, serial, listeners, policies, telemetry, audit, hardware, network, version");
    }

    [Fact]
    public void ForeignKeys_InModbusAndS7Policies_NameIec104()
    {
        AssertDiagnostics("""
            policies:
              x:
                mode: enforce
                rules:
                  - { ca: 1, ioa: 2 }
              y:
                protocol: s7comm
                mode: enforce
                rules:
                  - { select-before-operate: true }
            """,
            "test.yaml:5:11: error: 'ca' is an IEC 104 rule key, but policy 'x' is a Modbus policy (add 'protocol: iec104' to the policy for IEC 104 stations); valid keys of a Modbus rule: name, from, unit, function, address, type, word-order, value, rate, maintenance",
            "test.yaml:5:18: error: 'ioa' is an IEC 104 rule key, but policy 'x' is a Modbus policy (add 'protocol: iec104' to the policy for IEC 104 stations); valid keys of a Modbus rule: name, from, unit, function, address, type, word-order, value, rate, maintenance",
            "test.yaml:10:11: error: 'select-before-operate' is an IEC 104 rule key, but policy 'y' is protocol: s7comm; valid keys of an S7 rule: name, from, connection, function, pi-service, area, db, address, type, value, rate, maintenance");
    }

    [Fact]
    public void Listener_Iec104_NeedsAnIec104PolicyAndATcpUpstream()
    {
        AssertDiagnostics("""
            serial:
              - { name: rs485-1, device: /dev/ttyS1, baud: 9600, parity: none, stop-bits: 1, response-timeout-ms: 300 }
            listeners:
              - { name: a, bind: 0.0.0.0:2404, protocol: iec104, upstream: tcp://10.0.0.1:2404, policy: modbus }
              - { name: b, bind: 0.0.0.0:502, upstream: tcp://10.0.0.2:502, policy: rtu }
              - { name: c, bind: 0.0.0.0:2405, protocol: iec104, upstream: serial://rs485-1, policy: rtu }
              - { name: d, bind: 0.0.0.0:2406, protocol: iec104, upstream: tcp://10.0.0.1:2404, policy: rtu }
            policies:
              modbus: { mode: enforce }
              rtu: { protocol: iec104, mode: enforce }
            """,
            "test.yaml:4:93: error: listener 'a' speaks iec104, but policy 'modbus' is protocol: modbus-tcp; a listener may only use a policy of its own protocol (use a policy with 'protocol: iec104')",
            "test.yaml:5:73: error: listener 'b' speaks modbus-tcp, but policy 'rtu' is protocol: iec104; a listener may only use a policy of its own protocol (use a policy with 'protocol: modbus-tcp (or modbus-rtu-over-tcp)')",
            "test.yaml:6:64: error: an iec104 listener forwards to a station over TCP: 'upstream' must be tcp://HOST:PORT (usually port 2404), not serial://rs485-1");
    }

    [Fact]
    public void Limits_Iec104_AreValidated_AndOnlyForIec104Listeners()
    {
        AssertDiagnostics("""
            listeners:
              - { name: a, bind: 0.0.0.0:2404, protocol: iec104, upstream: tcp://10.0.0.1:2404, policy: rtu, limits: { k: 0, w: 40000 } }
              - { name: b, bind: 0.0.0.0:2405, protocol: iec104, upstream: tcp://10.0.0.1:2404, policy: rtu, limits: { k: 4, w: 5 } }
              - { name: c, bind: 0.0.0.0:2406, protocol: iec104, upstream: tcp://10.0.0.1:2404, policy: rtu, limits: { w: 13 } }
              - { name: d, bind: 0.0.0.0:2407, protocol: iec104, upstream: tcp://10.0.0.1:2404, policy: rtu, limits: { k: 6 } }
              - { name: e, bind: 0.0.0.0:2408, protocol: iec104, upstream: tcp://10.0.0.1:2404, policy: rtu, limits: { t1: 10s, t2: 10s } }
              - { name: f, bind: 0.0.0.0:2409, protocol: iec104, upstream: tcp://10.0.0.1:2404, policy: rtu, limits: { t2: 15s } }
              - { name: g, bind: 0.0.0.0:2410, protocol: iec104, upstream: tcp://10.0.0.1:2404, policy: rtu, limits: { t1: 5s } }
              - { name: h, bind: 0.0.0.0:2411, protocol: iec104, upstream: tcp://10.0.0.1:2404, policy: rtu, limits: { t1: 256s, t3: 10 } }
              - { name: i, bind: 0.0.0.0:502, upstream: tcp://10.0.0.1:502, policy: mb, limits: { k: 12, t3: 20s } }
              - { name: j, bind: 0.0.0.0:2412, protocol: iec104, upstream: tcp://10.0.0.1:2404, policy: rtu, limits: { k: 32767, w: 1, t1: 255s, t2: 500ms, t3: 1s } }
            policies:
              rtu: { protocol: iec104, mode: enforce }
              mb: { mode: enforce }
            """,
            "test.yaml:2:111: error: 'k' must be a whole number from 1 to 32767, not '0'",
            "test.yaml:2:117: error: 'w' must be a whole number from 1 to 32767, not '40000'",
            "test.yaml:3:117: error: 'w' 5 exceeds 'k' 4: a receiver must acknowledge after at most k I-frames, or the sender stops (IEC 60870-5-104 recommends w = 2/3 k)",
            "test.yaml:4:111: error: 'w' 13 exceeds 'k' 12 (the default): a receiver must acknowledge after at most k I-frames, or the sender stops (IEC 60870-5-104 recommends w = 2/3 k)",
            "test.yaml:5:111: error: 'k' 6 is below 'w' 8 (the default): a receiver must acknowledge after at most k I-frames; give 'w' too (IEC 60870-5-104 recommends w = 2/3 k)",
            "test.yaml:6:121: error: 't2' 10s must be shorter than 't1' (10s): the receiver acknowledges within t2 so that the sender's t1 does not expire",
            "test.yaml:7:112: error: 't2' 15s must be shorter than 't1' (15s, the default): the receiver acknowledges within t2 so that the sender's t1 does not expire",
            "test.yaml:8:112: error: 't1' 5s must be longer than 't2' (10s, the default): the receiver acknowledges within t2 so that the sender's t1 does not expire; give a shorter 't2' too",
            "test.yaml:9:112: error: 't1' 256s exceeds 255s, the longest IEC 104 timer (IEC 60870-5-104 9.6: 1s to 255s)",
            "test.yaml:9:122: error: 't3' must be a duration such as 250ms, 1s, 5m or 1h, not '10'",
            "test.yaml:10:87: error: 'k' is a limit of IEC 104 listeners (k, w, t1, t2, t3), and this listener speaks modbus-tcp",
            "test.yaml:10:94: error: 't3' is a limit of IEC 104 listeners (k, w, t1, t2, t3), and this listener speaks modbus-tcp");
    }

    [Fact]
    public void PolicyPageExample_Loads()
    {
        var root = Path.GetDirectoryName(Path.GetDirectoryName(EdgeShield.Protocols.Tests.TestData.Directory))!;
        var page = File.ReadAllText(Path.Combine(root, "docs", "POLICY.md"));
        var section = page[page.IndexOf("## IEC 104 policies", StringComparison.Ordinal)..];
        var start = section.IndexOf("```yaml\n", StringComparison.Ordinal) + "```yaml\n".Length;
        var yaml = section[start..section.IndexOf("```", start, StringComparison.Ordinal)];
        var result = Load(yaml);
        Assert.True(result.Diagnostics.Count == 0, string.Join("\n", Lines(result)));
        var policy = result.Config!.Policies["rtu7"];
        Assert.Equal(4, policy.RuleNames.Count);
        Assert.True(Evaluate(policy, ClockSync(0xFFFF), "10.30.0.2").IsAllowed);
        Assert.False(Evaluate(policy, ClockSync(0xFFFF), "10.30.0.3").IsAllowed);
    }
}
