using System.Diagnostics;
using EdgeShield.Protocols.Iec104;
using static EdgeShield.Policy.Tests.Iec104Requests;

namespace EdgeShield.Policy.Tests;

/// <summary>The IEC 104 refusal ladder (DESIGN.md "IEC 60870-5-104"): common address → type → IOA span → qualifier / value / select-before-operate → rate.</summary>
public class Iec104PolicyTests
{
    private static readonly CompiledPolicy Rtu7 = Compile("""
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
                from: 10.30.0.10
                type: C_SE_NC_1
                ca: 1
                ioa: 3000-3009
                value: 0-150.0
              - name: everyone, station 2
                type: [C_SC_NA_1, C_RD_NA_1]
                ca: 2

        """);

    private static void Denied(Verdict verdict, DenyReason reason, int rule)
    {
        Assert.False(verdict.IsAllowed);
        Assert.Equal(reason, verdict.Reason);
        Assert.Equal(rule, verdict.RuleIndex);
    }

    private static byte Cause(Verdict verdict, Cmd command) => Iec104Refusals.Cause(verdict, command.TypeOctet, command.Cause);

    [Fact]
    public void Commands_InsideTheirRule_AreAllowed_FirstAllowWins()
    {
        Assert.Equal(Verdict.Allow(0), Evaluate(Rtu7, Interrogation(1)));
        Assert.Equal(Verdict.Allow(0), Evaluate(Rtu7, Read(1, 5000), "10.30.0.99"));
        Assert.Equal(Verdict.Allow(2), Evaluate(Rtu7, Float(1, 3009, 150f)));
        Assert.Equal(Verdict.Allow(2), Evaluate(Rtu7, Float(1, 3000, 0f)));
        // A select needs nothing before it; the breaker rule allows it.
        Assert.Equal(Verdict.Allow(1), Evaluate(Rtu7, Single(1, 2000, select: true)));
        Assert.Equal(Verdict.Allow(3), Evaluate(Rtu7, Single(2, 7), "192.0.2.1"));
    }

    [Fact]
    public void Ladder_CommonAddressThenTypeThenIoaThenValue_MapsToTheStationsCauses()
    {
        // No rule for CA 9 → 46.
        var unknownCa = Single(9, 2000);
        var verdict = Evaluate(Rtu7, unknownCa);
        Denied(verdict, DenyReason.SourceOrUnit, -1);
        Assert.Equal(46, Cause(verdict, unknownCa));

        // CA 1, but a type no rule names → 44 (closest: the first rule in scope).
        var reset = new Cmd(Iec104TypeId.C_RP_NA_1, 1, 0, [1]);
        verdict = Evaluate(Rtu7, reset);
        Denied(verdict, DenyReason.Function, 0);
        Assert.Equal(44, Cause(verdict, reset));

        // The type, but not this IOA → 47.
        var outside = Float(1, 3010, 1f);
        verdict = Evaluate(Rtu7, outside);
        Denied(verdict, DenyReason.Address, 2);
        Assert.Equal(47, Cause(verdict, outside));

        // The IOA, but not the value → 7 (activation confirmation, negative).
        var tooHigh = Float(1, 3001, 150.5f);
        verdict = Evaluate(Rtu7, tooHigh);
        Denied(verdict, DenyReason.Value, 2);
        Assert.Equal(7, Cause(verdict, tooHigh));
        Denied(Evaluate(Rtu7, Float(1, 3001, -0.1f)), DenyReason.Value, 2);
        Denied(Evaluate(Rtu7, Float(1, 3001, float.NaN)), DenyReason.Value, 2);
        Denied(Evaluate(Rtu7, Float(1, 3001, float.PositiveInfinity)), DenyReason.Value, 2);
    }

    [Fact]
    public void Refusal_OfADeactivation_Is9_AndOfARead_Keeps5()
    {
        var deactivation = Single(1, 2000, cause: 8);
        var verdict = Evaluate(Rtu7, deactivation);
        Denied(verdict, DenyReason.Value, 1); // an execute without a select
        Assert.Equal(9, Cause(verdict, deactivation));

        // A read refused for its rate keeps cause 5; refused for its type or IOA it gets 44 / 47 like any other.
        var policy = Compile("""
                  - type: C_RD_NA_1
                    ca: 1
                    ioa: 100-199
                    rate: 1/h

            """);
        var read = Read(1, 100);
        Assert.True(Evaluate(policy, read).IsAllowed);
        verdict = Evaluate(policy, read);
        Denied(verdict, DenyReason.Rate, 0);
        Assert.Equal(5, Cause(verdict, read));
        var readOutside = Read(1, 200);
        Assert.Equal(47, Cause(Evaluate(policy, readOutside), readOutside));
        Assert.Equal(44, Cause(Evaluate(policy, Interrogation(1)), Interrogation(1)));
        Assert.Equal(0, Iec104Refusals.Cause(Verdict.Allow(0), 45, 6));
    }

    [Fact]
    public void InvalidQualifier_IsRefusedAsItsValue()
    {
        var policy = Compile("      - { type: C_DC_NA_1, ca: 1 }\n");
        Assert.True(Evaluate(policy, Double(1, 10, state: 1)).IsAllowed);
        var bad = Double(1, 10, state: 3);
        var verdict = Evaluate(policy, bad);
        Denied(verdict, DenyReason.Value, 0);
        Assert.Equal(7, Cause(verdict, bad));
        // The type comes first on the ladder: an invalid qualifier of a type no rule names is still 44.
        Denied(Evaluate(policy, Single(1, 10) with { QualifierValid = false }), DenyReason.Function, 0);
    }

    [Fact]
    public void MultiObjectAsdu_IsJudgedOnTheSpanFromItsLowestToItsHighestIoa()
    {
        var policy = Compile("      - { type: C_RD_NA_1, ca: 1, ioa: [100-199, 300-399] }\n");
        Assert.True(Evaluate(policy, Read(1, 100) with { HighestIoa = 199 }).IsAllowed);
        Denied(Evaluate(policy, Read(1, 150) with { HighestIoa = 300 }), DenyReason.Address, 0);
        Denied(Evaluate(policy, Read(1, 150) with { HighestIoa = 140 }), DenyReason.Address, 0);  // backwards: malformed
        var anyIoa = Compile("      - { type: C_RD_NA_1, ca: 1 }\n");
        Assert.True(Evaluate(anyIoa, Read(1, 0) with { HighestIoa = 16_777_215 }).IsAllowed);
        Denied(Evaluate(anyIoa, Read(1, 0) with { HighestIoa = 16_777_216 }), DenyReason.Address, 0);
    }

    [Fact]
    public void GlobalCommonAddress_OnlyByName()
    {
        var policy = Compile("""
                  - name: any station
                    type: C_IC_NA_1
                  - name: ranges
                    type: C_CS_NA_1
                    ca: 1-65534
                  - name: broadcast
                    type: [C_IC_NA_1, C_CS_NA_1]
                    ca: global
                    from: 10.30.0.1

            """);
        Assert.Equal(Verdict.Allow(0), Evaluate(policy, Interrogation(7)));
        Assert.Equal(Verdict.Allow(0), Evaluate(policy, Interrogation(0)));
        Assert.Equal(Verdict.Allow(1), Evaluate(policy, ClockSync(65534)));
        // 0xFFFF: neither the rule without ca: nor the range covers it; only the named global.
        var verdict = Evaluate(policy, Interrogation(0xFFFF));
        Denied(verdict, DenyReason.SourceOrUnit, -1);
        Assert.Equal(46, Cause(verdict, Interrogation(0xFFFF)));
        Assert.Equal(Verdict.Allow(2), Evaluate(policy, Interrogation(0xFFFF), "10.30.0.1"));
        Assert.Equal(Verdict.Allow(2), Evaluate(policy, ClockSync(0xFFFF), "10.30.0.1"));
        var numbered = Compile("      - { type: C_IC_NA_1, ca: [1, 65535] }\n");
        Assert.True(Evaluate(numbered, Interrogation(0xFFFF)).IsAllowed);
        Assert.True(Evaluate(numbered, Interrogation(1)).IsAllowed);
        Denied(Evaluate(numbered, Interrogation(2)), DenyReason.SourceOrUnit, -1);
    }

    [Fact]
    public void RuleWithoutType_AllowsControlAndSystem_NeverClockParameterFileOrOther()
    {
        var policy = Compile("      - { ca: 1 }\n");
        foreach (var type in new byte[] { 45, 46, 47, 48, 49, 50, 51, 58, 64, 100, 101, 102, 105, 107 })
        {
            Assert.True(Evaluate(policy, new Cmd((Iec104TypeId)type, 1, 0, [1])).IsAllowed, $"type {type}");
        }
        foreach (var type in new byte[] { 103, 110, 113, 120, 127, 41, 81, 95 })
        {
            Denied(Evaluate(policy, new Cmd((Iec104TypeId)type, 1, 0, [1])), DenyReason.Function, 0);
        }
        // Unknown and monitor types are never allowed (the session answers them itself; here they are refused).
        Denied(Evaluate(policy, new Cmd((Iec104TypeId)1, 1, 0, [1])), DenyReason.Function, 0);
        Denied(Evaluate(policy, new Cmd((Iec104TypeId)104, 1, 0, [1])), DenyReason.Function, 0);
    }

    [Fact]
    public void Groups_NameTheirTypes()
    {
        var policy = Compile("""
                  - { name: c, type: clock, ca: 1 }
                  - { name: p, type: parameter, ca: 2 }
                  - { name: f, type: file, ca: 3 }
                  - { name: o, type: [41, S_CH_NA_1, 95], ca: 4 }
                  - { name: s, type: system, ca: 5 }

            """);
        Assert.True(Evaluate(policy, ClockSync(1)).IsAllowed);
        Denied(Evaluate(policy, Interrogation(1)), DenyReason.Function, 0);
        Assert.True(Evaluate(policy, new Cmd(Iec104TypeId.P_AC_NA_1, 2, 1, [1])).IsAllowed);
        Assert.True(Evaluate(policy, new Cmd(Iec104TypeId.F_SC_NB_1, 3, 1, new byte[16])).IsAllowed);
        Assert.True(Evaluate(policy, new Cmd(Iec104TypeId.S_CH_NA_1, 4, 1, [])).IsAllowed);
        Assert.True(Evaluate(policy, new Cmd((Iec104TypeId)41, 4, 1, [])).IsAllowed);
        Denied(Evaluate(policy, new Cmd(Iec104TypeId.S_RP_NA_1, 4, 1, [])), DenyReason.Function, 3);
        foreach (var type in new byte[] { 100, 101, 102, 105, 107 })
        {
            Assert.True(Evaluate(policy, new Cmd((Iec104TypeId)type, 5, 0, [1])).IsAllowed, $"type {type}");
        }
        Denied(Evaluate(policy, ClockSync(5)), DenyReason.Function, 4);
    }

    [Fact]
    public void SetPointValues_AreReadAsTheStationReadsThem()
    {
        var policy = Compile("""
                  - { name: normalised, type: C_SE_NA_1, ca: 1, value: -0.5..0.5 }
                  - { name: scaled, type: C_SE_NB_1, ca: 1, value: -40..120 }
                  - { name: mixed, type: [C_SC_NA_1, C_SE_NC_1], ca: 2, value: 0-10 }

            """);
        Assert.True(Evaluate(policy, Normalised(1, 1, 16384)).IsAllowed);      // 0.5
        Denied(Evaluate(policy, Normalised(1, 1, 16385)), DenyReason.Value, 0);
        Assert.True(Evaluate(policy, Normalised(1, 1, -16384)).IsAllowed);
        Assert.True(Evaluate(policy, Scaled(1, 1, -40)).IsAllowed);
        Denied(Evaluate(policy, Scaled(1, 1, 121)), DenyReason.Value, 1);
        // value: bounds only the set-points of a rule; its other types have no value to bound.
        Assert.True(Evaluate(policy, Single(2, 1)).IsAllowed);
        Denied(Evaluate(policy, Float(2, 1, 10.5f)), DenyReason.Value, 2);
        // A set-point the session could not read is refused by a rule with value:.
        var unread = Float(2, 1, 5f).Build() with { HasValue = false };
        Denied(policy.Evaluate(TestPolicies.Ip("10.0.0.1"), unread, T0), DenyReason.Value, 2);
        // A multi-object set-point ASDU: every value between the least and the greatest.
        var spread = Float(2, 1, 5f).Build() with { ValueMin = 1, ValueMax = 11 };
        Denied(policy.Evaluate(TestPolicies.Ip("10.0.0.1"), spread, T0), DenyReason.Value, 2);
    }

    [Fact]
    public void Maintenance_AndRate_AsForOtherProtocols()
    {
        var maintenance = new MaintenanceState();
        var policy = Compile("""
                  - name: reads
                    type: C_RD_NA_1
                    ca: 1
                  - name: reset
                    type: C_RP_NA_1
                    ca: 1
                    ioa: 0
                    maintenance: true
                  - name: interrogation
                    type: C_IC_NA_1
                    ca: 1
                    rate: 2/m

            """, maintenance);
        var reset = new Cmd(Iec104TypeId.C_RP_NA_1, 1, 0, [1]);
        var verdict = Evaluate(policy, reset);
        Denied(verdict, DenyReason.MaintenanceKey, 1);
        Assert.Equal(7, Cause(verdict, reset));
        // What the disarmed rule would not allow anyway is a function refusal, as for Modbus.
        Denied(Evaluate(policy, reset with { Ioa = 1 }), DenyReason.Function, 0);
        maintenance.Arm();
        Assert.Equal(Verdict.Allow(1), Evaluate(policy, reset));
        Denied(Evaluate(policy, reset with { Ioa = 1 }), DenyReason.Address, 1);

        Assert.True(Evaluate(policy, Interrogation(1)).IsAllowed);
        Assert.True(Evaluate(policy, Interrogation(1)).IsAllowed);
        verdict = Evaluate(policy, Interrogation(1));
        Denied(verdict, DenyReason.Rate, 2);
        Assert.Equal(7, Cause(verdict, Interrogation(1)));
        // Buckets are per source; and they refill (one per 30 s).
        Assert.True(Evaluate(policy, Interrogation(1), "10.30.0.11").IsAllowed);
        Assert.True(Evaluate(policy, Interrogation(1), now: T0 + 31 * Stopwatch.Frequency).IsAllowed);
    }

    [Fact]
    public void NamesIec104Source_IsAnyRuleForTheSource_WhateverItsCommonAddresses()
    {
        Assert.True(Rtu7.NamesIec104Source(TestPolicies.Ip("10.30.0.10")));
        Assert.True(Rtu7.NamesIec104Source(TestPolicies.Ip("192.0.2.1"))); // the last rule has no from:
        var policy = Compile("      - { from: 10.30.0.0/24, ca: global, maintenance: true }\n");
        Assert.True(policy.NamesIec104Source(TestPolicies.Ip("10.30.0.200")));
        Assert.False(policy.NamesIec104Source(TestPolicies.Ip("10.31.0.1")));
        Assert.False(TestPolicies.Compile("      - { function: read }\n").NamesIec104Source(TestPolicies.Ip("10.30.0.1")));
    }

    [Fact]
    public void RequiresSelect_AndSelectTimeout_OfTheAllowingRule()
    {
        var policy = Compile("""
                  - { name: sbo, type: C_SC_NA_1, ca: 1, select-before-operate: true }
                  - { name: sbo 3s, type: C_DC_NA_1, ca: 1, select-before-operate: true, select-timeout: 3s }
                  - { name: direct, type: C_SE_NC_1, ca: 1, select-before-operate: false }

            """);
        Assert.True(policy.RequiresSelect(0));
        Assert.Equal(TimeSpan.FromSeconds(10), policy.SelectTimeout(0));
        Assert.True(policy.RequiresSelect(1));
        Assert.Equal(TimeSpan.FromSeconds(3), policy.SelectTimeout(1));
        Assert.False(policy.RequiresSelect(2));
        Assert.Equal(TimeSpan.Zero, policy.SelectTimeout(2));
        Assert.False(policy.RequiresSelect(-1));
        Assert.False(policy.RequiresSelect(3));
        // Without select-before-operate an execute needs no select.
        Assert.True(Evaluate(policy, Float(1, 1, 3f)).IsAllowed);
    }

    [Fact]
    public void Policy_IsProtocolIec104_AndRulesOfOtherProtocolsNeverMatch()
    {
        Assert.Equal(ListenerProtocol.Iec104, Rtu7.Protocol);
        Assert.Equal(ListenerProtocol.Iec104, Rtu7.AsMonitor().Protocol);
        var modbus = TestPolicies.Compile("      - { function: read }\n");
        Denied(Evaluate(modbus, Interrogation(1)), DenyReason.SourceOrUnit, -1);
        Assert.Equal(2404, ListenerProtocols.DefaultPort(ListenerProtocol.Iec104));
        Assert.Equal("iec104", ListenerProtocols.Word(ListenerProtocol.Iec104));
    }

    [Fact]
    public void Evaluate_Iec104Command_AllocatesNothing()
    {
        var maintenance = new MaintenanceState();
        maintenance.Arm();
        var policy = Compile("""
                  - name: scada monitoring
                    from: [10.30.0.0/24, "fd00:30::/64"]
                    type: [C_IC_NA_1, C_CI_NA_1, C_RD_NA_1, C_TS_TA_1]
                    ca: [1-9, 20]
                    rate: 1000000/s
                  - name: breakers
                    from: 10.30.0.10
                    type: [C_SC_NA_1, C_DC_NA_1, C_SC_TA_1]
                    ca: 1
                    ioa: [2000-2099, 4000-4010]
                    select-before-operate: true
                  - name: set-points
                    type: [C_SE_NC_1, C_SE_NA_1]
                    ca: [1, global]
                    ioa: 3000-3009
                    value: -0.5..150
                    maintenance: true

            """, maintenance);
        var selects = new Iec104Selects();
        var select = Single(1, 2000, select: true);
        selects.Selected(select.Key, select.Point, T0);
        selects.Confirmed(select.Key, positive: true, T0);
        Cmd[] commands =
        [
            Interrogation(1), Interrogation(30), Read(20, 7), select, Single(1, 2000), Single(1, 2001), Double(1, 4005, 3),
            Float(1, 3000, 149f), Float(0xFFFF, 3001, 151f), Normalised(1, 3009, -16384), ClockSync(1),
        ];
        SourceAddress[] sources = [TestPolicies.Ip("10.30.0.10"), TestPolicies.Ip("fd00:30::5"), TestPolicies.Ip("10.40.0.1")];

        var allowed = Run(100);
        var before = GC.GetAllocatedBytesForCurrentThread();
        allowed += Run(10_000);
        var after = GC.GetAllocatedBytesForCurrentThread();

        Assert.Equal(0, after - before);
        Assert.True(allowed > 0);

        int Run(int count)
        {
            var n = 0;
            for (var i = 0; i < count; i++)
            {
                var command = commands[i % commands.Length];
                var verdict = policy.Evaluate(sources[i % sources.Length], command.Build(selects, T0 + i), T0 + i);
                n += verdict.IsAllowed ? 1 : 0;
                n += Iec104Refusals.Cause(verdict, command.TypeOctet, command.Cause) == 0 ? 0 : 0;
            }
            return n;
        }
    }
}
