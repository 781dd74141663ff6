using System.Diagnostics;
using EdgeShield.Protocols.Iec104;
using static EdgeShield.Policy.Tests.Iec104Requests;

namespace EdgeShield.Policy.Tests;

/// <summary>
/// select-before-operate as the session drives it: it forwards an allowed select and records it, the station confirms,
/// the execute is judged against the table (which rules never change), then the object's selection ends.
/// </summary>
public class Iec104SelectTests
{
    private static readonly long Second = Stopwatch.Frequency;

    private static readonly CompiledPolicy Breakers = Compile("""
              - name: breakers
                type: [C_SC_NA_1, C_SC_TA_1, C_SE_NC_1]
                ca: 1
                ioa: 2000-2099
                select-before-operate: true
                select-timeout: 5s

        """);

    /// <summary>What the session does with an allowed select: records it when the allowing rule requires one.</summary>
    private static void SelectAndForward(Iec104Selects selects, Cmd select, long now)
    {
        var verdict = Evaluate(Breakers, select, selects: selects, now: now);
        Assert.True(verdict.IsAllowed);
        Assert.True(Breakers.RequiresSelect(verdict.RuleIndex));
        selects.Selected(select.Key, select.Point, now);
    }

    private static void Refused(Verdict verdict)
    {
        Assert.Equal(new Verdict(VerdictKind.Deny, DenyReason.Value, 0), verdict);
    }

    [Fact]
    public void Execute_BeforeAnySelect_IsRefusedWithCause7()
    {
        var execute = Single(1, 2000);
        var verdict = Evaluate(Breakers, execute, selects: new Iec104Selects());
        Refused(verdict);
        Assert.Equal(7, Iec104Refusals.Cause(verdict, execute.TypeOctet, execute.Cause));
        Refused(Evaluate(Breakers, execute)); // no table at all
    }

    [Fact]
    public void Execute_AfterSelectNotYetConfirmed_IsRefused_AfterPositiveConfirmation_AllowedOnce()
    {
        var selects = new Iec104Selects();
        SelectAndForward(selects, Single(1, 2000, select: true), T0);
        var execute = Single(1, 2000);
        Refused(Evaluate(Breakers, execute, selects: selects, now: T0 + Second));

        Assert.True(selects.Confirmed(Single(1, 2000, select: true).Key, positive: true, T0 + Second));
        var verdict = Evaluate(Breakers, execute, selects: selects, now: T0 + 2 * Second);
        Assert.Equal(Verdict.Allow(0), verdict);
        // Asking again changes nothing: rules only look.
        Assert.Equal(Verdict.Allow(0), Evaluate(Breakers, execute, selects: selects, now: T0 + 2 * Second));

        // The session ends the object's selection once the execute is judged: one execute per select.
        Assert.Equal(1, selects.EndSelection(execute.Point));
        Refused(Evaluate(Breakers, execute, selects: selects, now: T0 + 2 * Second));
        Assert.Equal(0, selects.EndSelection(execute.Point));
    }

    /// <summary>The point (CA, IOA) of a single-object ASDU, read as the session reads it.</summary>
    private static ulong Point(ushort ca, uint ioa, byte type = 45)
    {
        byte[] bytes = [type, 1, 6, 0, (byte)ca, (byte)(ca >> 8), (byte)ioa, (byte)(ioa >> 8), (byte)(ioa >> 16), 0x01];
        Assert.True(Iec104Asdu.TryParse(bytes, out var asdu, out _));
        return Iec104Command.PointOf(asdu);
    }

    [Fact]
    public void AnExecuteForTheObject_EndsEverySelectOfIt_WhateverItsValueOrType_OthersStay()
    {
        var selects = new Iec104Selects();
        var on = Single(1, 2000, on: true, select: true);
        var off = Single(1, 2000, on: false, select: true);
        var other = Single(1, 2001, select: true);
        selects.Selected(on.Key, Point(1, 2000), T0);
        selects.Selected(off.Key, Point(1, 2000), T0);
        selects.Selected(other.Key, Point(1, 2001), T0);
        foreach (var select in new[] { on, off, other })
        {
            Assert.True(selects.Confirmed(select.Key, positive: true, T0));
        }
        Assert.Equal(Point(1, 2000), Point(1, 2000, type: 46)); // a double command to the same object: the same point
        Assert.NotEqual(Point(1, 2000), Point(2, 2000));

        // An execute for 2000 (the session ends the selection whether it allowed or refused it): both selects of 2000 end.
        Assert.Equal(2, selects.EndSelection(Point(1, 2000)));
        Refused(Evaluate(Breakers, Single(1, 2000, on: true), selects: selects, now: T0 + Second));
        Refused(Evaluate(Breakers, Single(1, 2000, on: false), selects: selects, now: T0 + Second));
        Assert.Equal(Verdict.Allow(0), Evaluate(Breakers, Single(1, 2001), selects: selects, now: T0 + Second));
        Assert.Equal(0, selects.EndSelection(Point(1, 2000)));
        Assert.Equal(0, selects.EndSelection(Iec104Command.NoKey));
        Assert.Equal(1, selects.Count);
    }

    [Fact]
    public void Execute_AfterSelectTimeout_IsRefused()
    {
        var selects = new Iec104Selects();
        var select = Single(1, 2000, select: true);
        SelectAndForward(selects, select, T0);
        selects.Confirmed(select.Key, positive: true, T0 + Second);
        Assert.True(Evaluate(Breakers, Single(1, 2000), selects: selects, now: T0 + 5 * Second).IsAllowed);
        // select-timeout runs from the select, not from its confirmation.
        Refused(Evaluate(Breakers, Single(1, 2000), selects: selects, now: T0 + 5 * Second + 1));
        // A clock that runs backwards never confirms.
        Refused(Evaluate(Breakers, Single(1, 2000), selects: selects, now: T0 - 1));
    }

    [Fact]
    public void Execute_OfAnotherValueIoaOrType_IsRefused()
    {
        var selects = new Iec104Selects();
        var select = Single(1, 2000, on: true, select: true);
        SelectAndForward(selects, select, T0);
        selects.Confirmed(select.Key, positive: true, T0);
        Refused(Evaluate(Breakers, Single(1, 2000, on: false), selects: selects, now: T0 + 1));
        Refused(Evaluate(Breakers, Single(1, 2001, on: true), selects: selects, now: T0 + 1));
        Refused(Evaluate(Breakers, new Cmd(Iec104TypeId.C_SC_TA_1, 1, 2000, [1, 0, 0, 0, 0, 0, 0, 0]), selects: selects, now: T0 + 1));
        Assert.True(Evaluate(Breakers, Single(1, 2000, on: true), selects: selects, now: T0 + 1).IsAllowed);

        var setPoint = Float(1, 2050, 42.5f, select: true);
        SelectAndForward(selects, setPoint, T0);
        selects.Confirmed(setPoint.Key, positive: true, T0);
        Refused(Evaluate(Breakers, Float(1, 2050, 42.25f), selects: selects, now: T0 + 1));
        Assert.True(Evaluate(Breakers, Float(1, 2050, 42.5f), selects: selects, now: T0 + 1).IsAllowed);
    }

    [Fact]
    public void NegativeConfirmation_ClearsTheSelect()
    {
        var selects = new Iec104Selects();
        var select = Single(1, 2000, select: true);
        SelectAndForward(selects, select, T0);
        Assert.True(selects.Confirmed(select.Key, positive: false, T0 + 1));
        Assert.Equal(0, selects.Count);
        Refused(Evaluate(Breakers, Single(1, 2000), selects: selects, now: T0 + 2));
        // A late positive confirmation of a select no longer held confirms nothing.
        Assert.False(selects.Confirmed(select.Key, positive: true, T0 + 3));
        Refused(Evaluate(Breakers, Single(1, 2000), selects: selects, now: T0 + 4));
    }

    [Fact]
    public void TimeTaggedCommands_MatchTheirSelectWhateverTheTimeTag()
    {
        var selects = new Iec104Selects();
        var select = new Cmd(Iec104TypeId.C_SC_TA_1, 1, 2010, [0x81, 1, 2, 3, 4, 5, 6, 7]);
        Assert.True(select.IsSelect);
        SelectAndForward(selects, select, T0);
        selects.Confirmed(select.Key, positive: true, T0);
        var execute = new Cmd(Iec104TypeId.C_SC_TA_1, 1, 2010, [0x01, 9, 9, 9, 9, 9, 9, 9]);
        Assert.Equal(select.Key, execute.Key);
        Assert.True(Evaluate(Breakers, execute, selects: selects, now: T0 + 1).IsAllowed);
    }

    [Fact]
    public void RepeatedSelect_WaitsForItsOwnConfirmation()
    {
        var selects = new Iec104Selects();
        var select = Single(1, 2000, select: true);
        selects.Selected(select.Key, select.Point, T0);
        selects.Confirmed(select.Key, positive: true, T0);
        selects.Selected(select.Key, select.Point, T0 + 1);
        Assert.Equal(1, selects.Count);
        Assert.False(selects.HasConfirmedSelect(select.Key, Second, T0 + 2));
    }

    [Fact]
    public void FullTable_EvictsTheOldestSelect()
    {
        var selects = new Iec104Selects(capacity: 4);
        for (var i = 0; i < 4; i++)
        {
            selects.Selected((ulong)i, (ulong)i, T0 + i);
            selects.Confirmed((ulong)i, positive: true, T0 + i);
        }
        selects.Selected(99, 99, T0 + 10);
        Assert.Equal(4, selects.Count);
        Assert.False(selects.HasConfirmedSelect(0, Second, T0 + 10));
        Assert.True(selects.HasConfirmedSelect(1, Second, T0 + 10));
        Assert.True(selects.HasConfirmedSelect(3, Second, T0 + 10));
        Assert.False(selects.HasConfirmedSelect(99, Second, T0 + 10)); // not yet confirmed
        // An ended slot is reused before anything is evicted.
        Assert.Equal(1, selects.EndSelection(2));
        selects.Selected(100, 100, T0 + 11);
        Assert.True(selects.HasConfirmedSelect(1, Second, T0 + 11));
        selects.Clear();
        Assert.Equal(0, selects.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Iec104Selects(0));
    }

    [Fact]
    public async Task Table_IsSafeForTheTwoLoopsOfAConnection()
    {
        var selects = new Iec104Selects();
        var errors = 0;
        var upstream = Task.Run(() =>
        {
            for (var i = 0; i < 20_000; i++)
            {
                selects.Confirmed((ulong)(i % 8), positive: i % 3 != 0, T0 + i);
            }
        });
        for (var i = 0; i < 20_000; i++)
        {
            selects.Selected((ulong)(i % 8), (ulong)(i % 8), T0 + i);
            if (selects.HasConfirmedSelect((ulong)(i % 8), long.MaxValue, T0 + i))
            {
                selects.EndSelection((ulong)(i % 8));
            }
            if (selects.Count > selects.Capacity)
            {
                errors++;
            }
        }
        await upstream;
        Assert.Equal(0, errors);
        Assert.True(selects.Count <= 8);
    }

    [Fact]
    public void CommandKey_IgnoresSelectExecuteAndTimeTag_NotTypeCaIoaOrValue()
    {
        Assert.Equal(Single(1, 2000, select: true).Key, Single(1, 2000).Key);
        Assert.Equal(Float(1, 5, 3.5f, select: true).Key, Float(1, 5, 3.5f).Key);
        Assert.NotEqual(Single(1, 2000, on: true).Key, Single(1, 2000, on: false).Key);
        Assert.NotEqual(Single(1, 2000).Key, Single(2, 2000).Key);
        Assert.NotEqual(Single(1, 2000).Key, Single(1, 2001).Key);
        Assert.NotEqual(Single(1, 2000).Key, Double(1, 2000, 1).Key);
        Assert.NotEqual(Float(1, 5, 3.5f).Key, Float(1, 5, 3.75f).Key);
        // The qualifier's other bits (QU, QL) are part of the command.
        Assert.NotEqual(Iec104Command.Key(45, 1, 1, [0x01]), Iec104Command.Key(45, 1, 1, [0x05]));
    }

    [Fact]
    public void SetPoints_AreReadAsTheStationReadsThem()
    {
        Assert.True(Iec104Command.TryReadSetPoint(48, [0x00, 0x80, 0], out var normalised));
        Assert.Equal(-1.0, normalised);
        Assert.True(Iec104Command.TryReadSetPoint(62, [0x18, 0xFC, 0, 1, 2, 3, 4, 5, 6, 7], out var scaled));
        Assert.Equal(-1000.0, scaled);
        Assert.True(Iec104Command.TryReadSetPoint(50, [0x00, 0x00, 0x28, 0x42, 0x80], out var single));
        Assert.Equal(42.0, single);
        Assert.False(Iec104Command.TryReadSetPoint(45, [1], out _));
        Assert.False(Iec104Command.TryReadSetPoint(50, [0, 0, 0], out _));
    }

    [Fact]
    public void NoKey_IsNeverSelected_SoAnExecuteWithoutAKeyNeverPasses()
    {
        var selects = new Iec104Selects();
        selects.Selected(Iec104Command.NoKey, Iec104Command.NoKey, T0);
        Assert.False(selects.Confirmed(Iec104Command.NoKey, positive: true, T0));
        Assert.Equal(0, selects.Count);
        Assert.False(selects.HasConfirmedSelect(Iec104Command.NoKey, long.MaxValue, T0));
        // A multi-object execute the session could not key: refused by a select-before-operate rule.
        var execute = Single(1, 2000).Build(selects, T0) with { CommandKey = Iec104Command.NoKey, HighestIoa = 2001 };
        Assert.Equal(DenyReason.Value, Breakers.Evaluate(TestPolicies.Ip("10.30.0.10"), execute, T0).Reason);
        Assert.NotEqual(Iec104Command.NoKey, Iec104Command.Key(45, 1, 1, [1]));
    }
}
