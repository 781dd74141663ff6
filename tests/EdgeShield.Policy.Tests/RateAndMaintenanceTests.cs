using System.Diagnostics;
using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

public class RateAndMaintenanceTests
{
    private const long T0 = 1_000_000;

    [Fact]
    public void Evaluate_AfterBurst_IsRateDenied()
    {
        var policy = Compile("      - function: 3\n        rate: 10/s\n");
        for (var i = 0; i < 10; i++)
        {
            Assert.True(Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1), T0).IsAllowed, $"request {i}");
        }
        var verdict = Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1), T0);
        Assert.Equal(new Verdict(VerdictKind.Deny, DenyReason.Rate, 0), verdict);
        Assert.Equal(0x06, verdict.ExceptionCode);
    }

    [Fact]
    public void Evaluate_RateBucket_RefillsOverTime()
    {
        var policy = Compile("      - function: 3\n        rate: 10/s\n");
        for (var i = 0; i < 10; i++)
        {
            Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1), T0);
        }
        var tenth = Stopwatch.Frequency / 10;
        Assert.False(Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1), T0 + tenth - 1).IsAllowed);
        Assert.True(Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1), T0 + tenth).IsAllowed);
        Assert.False(Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1), T0 + tenth).IsAllowed);
        // A long pause refills the bucket only up to its size.
        var later = T0 + 100 * Stopwatch.Frequency;
        for (var i = 0; i < 10; i++)
        {
            Assert.True(Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1), later).IsAllowed);
        }
        Assert.False(Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1), later).IsAllowed);
    }

    [Fact]
    public void Evaluate_RatePerMinute_RefillsOnePerSixSeconds()
    {
        var policy = Compile("      - rate: 10/m\n");
        for (var i = 0; i < 10; i++)
        {
            Assert.True(Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1), T0).IsAllowed);
        }
        Assert.False(Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1), T0 + 5 * Stopwatch.Frequency).IsAllowed);
        Assert.True(Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1), T0 + 6 * Stopwatch.Frequency).IsAllowed);
    }

    [Fact]
    public void Evaluate_RateBuckets_ArePerSource()
    {
        var policy = Compile("      - rate: 1/s\n");
        Assert.True(Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1), T0).IsAllowed);
        Assert.False(Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1), T0).IsAllowed);
        Assert.True(Evaluate(policy, "10.0.0.2", 1, Read(3, 0, 1), T0).IsAllowed);
    }

    [Fact]
    public void Evaluate_RateDeniedRule_FallsThroughToLaterRule()
    {
        var policy = Compile("      - rate: 1/s\n      - function: 3\n        address: 0-9\n");
        Assert.Equal(Verdict.Allow(0), Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1), T0));
        Assert.Equal(Verdict.Allow(1), Evaluate(policy, "10.0.0.1", 1, Read(3, 0, 1), T0));
        Assert.Equal(new Verdict(VerdictKind.Deny, DenyReason.Rate, 0), Evaluate(policy, "10.0.0.1", 1, Read(3, 10, 1), T0));
    }

    [Fact]
    public void Evaluate_ManySources_TableStaysBounded_NewcomersWaitAtMostOnePeriod()
    {
        var policy = Compile("      - rate: 1/s\n");
        var allowed = 0;
        var firstRefused = -1;
        for (var i = 0; i < 10_000; i++)
        {
            var source = new SourceAddress((UInt128)i + 1);
            if (policy.Evaluate(source, 1, Parse(Read(3, 0, 1)), T0 + i).IsAllowed)
            {
                allowed++;
            }
            else if (firstRefused < 0)
            {
                firstRefused = i;
            }
        }
        // Never more sources held than the table has ways; each held source got its one token.
        Assert.InRange(allowed, 1, 4096);
        Assert.True(firstRefused >= 0);
        // One period later every bucket is full again, so a source refused then finds a way and a token.
        var later = T0 + Stopwatch.Frequency + 10_000;
        Assert.True(policy.Evaluate(new SourceAddress((UInt128)firstRefused + 1), 1, Parse(Read(3, 0, 1)), later).IsAllowed);
        static EdgeShield.Protocols.Modbus.ModbusRequest Parse(byte[] pdu) => EdgeShield.Protocols.Modbus.ModbusPdu.ParseRequest(pdu);
    }

    /// <summary>
    /// Issue 10 item 2: nine addresses of one /20 that share a limiter set, each sending five requests in
    /// turn against 3/min, got 45 of 45 through (each evicted the least recent and came back full). Each
    /// must get at most what one source gets: 3 in the minute.
    /// </summary>
    [Fact]
    public void Evaluate_NineAddressesInOneSet_RotatingAgainst3PerMinute_EachGetsAtMostThree()
    {
        var policy = Compile("      - function: 3\n        rate: 3/m\n");
        var sameSet = SameSetAddresses(9);
        var allowedBy = new int[sameSet.Length];
        var t = T0;
        for (var round = 0; round < 5; round++)
        {
            for (var a = 0; a < sameSet.Length; a++)
            {
                t += Stopwatch.Frequency / 10; // 4.5 s in all: well inside the minute
                if (policy.Evaluate(sameSet[a], 1, EdgeShield.Protocols.Modbus.ModbusPdu.ParseRequest(Read(3, 0, 1)), t).IsAllowed)
                {
                    allowedBy[a]++;
                }
            }
        }
        Assert.All(allowedBy, n => Assert.InRange(n, 0, 3));
        Assert.InRange(allowedBy.Sum(), 0, 8 * 3);
        // The ninth address was not shut out for good: a minute on, the set has room again.
        Assert.True(policy.Evaluate(sameSet[8], 1, EdgeShield.Protocols.Modbus.ModbusPdu.ParseRequest(Read(3, 0, 1)), t + 60 * Stopwatch.Frequency).IsAllowed);
    }

    /// <summary>Nine IPv4 addresses of 10.20.0.0/20 that the limiter puts in one set (its Fibonacci hash of the folded address).</summary>
    private static SourceAddress[] SameSetAddresses(int count)
    {
        var bySet = new Dictionary<int, List<SourceAddress>>();
        for (var host = 0; host < 4096; host++)
        {
            var address = Ip($"10.20.{host >> 8}.{host & 255}");
            var folded = (ulong)address.Value ^ (ulong)(address.Value >> 64);
            var set = (int)((folded * 0x9E3779B97F4A7C15UL) >> 55);
            var list = bySet.TryGetValue(set, out var l) ? l : bySet[set] = [];
            list.Add(address);
            if (list.Count == count)
            {
                return [.. list];
            }
        }
        throw new InvalidOperationException("no set of the /20 holds nine addresses");
    }

    [Fact]
    public void KeepRateBucketsOf_SameRuleAfterReload_KeepsItsBucket_ChangedRuleStartsAfresh()
    {
        const string Rules = "      - name: limited\n        function: 3\n        rate: 3/m\n      - name: other\n        function: 4\n        rate: 3/m\n";
        var before = Compile(Rules);
        for (var i = 0; i < 3; i++)
        {
            Assert.True(Evaluate(before, "10.0.0.1", 1, Read(3, 0, 1), T0).IsAllowed);
            Assert.True(Evaluate(before, "10.0.0.1", 1, Read(4, 0, 1), T0).IsAllowed);
        }

        // The same file again, except that rule 'other' now allows 5/m: 'limited' keeps its empty bucket.
        var after = Compile(Rules.Replace("function: 4\n        rate: 3/m", "function: 4\n        rate: 5/m", StringComparison.Ordinal));
        after.KeepRateBucketsOf(before);
        Assert.Equal(new Verdict(VerdictKind.Deny, DenyReason.Rate, 0), Evaluate(after, "10.0.0.1", 1, Read(3, 0, 1), T0 + 1));
        Assert.True(Evaluate(after, "10.0.0.1", 1, Read(4, 0, 1), T0 + 1).IsAllowed);

        // Without the hand-over (what a reload did before), the bucket came back full.
        var fresh = Compile(Rules);
        Assert.True(Evaluate(fresh, "10.0.0.1", 1, Read(3, 0, 1), T0 + 1).IsAllowed);
    }

    [Fact]
    public void Evaluate_RateFromManyThreads_AllowsExactlyTheBurst()
    {
        var policy = Compile("      - rate: 1000/s\n");
        var allowed = 0;
        Parallel.For(0, 8, _ =>
        {
            for (var i = 0; i < 500; i++)
            {
                var request = EdgeShield.Protocols.Modbus.ModbusPdu.ParseRequest(Read(3, 0, 1));
                if (policy.Evaluate(Ip("10.0.0.1"), 1, request, T0).IsAllowed)
                {
                    Interlocked.Increment(ref allowed);
                }
            }
        });
        Assert.Equal(1000, allowed);
    }

    private const string MaintenanceRules = """
              - name: reads
                function: read
              - name: setpoints
                function: write-single-register
                address: 100-119
                maintenance: true

        """;

    [Fact]
    public void Evaluate_MaintenanceRuleWhileDisarmed_IsMaintenanceKeyDenied01()
    {
        var policy = Compile(MaintenanceRules);
        var verdict = Evaluate(policy, "10.0.0.1", 1, WriteSingle(100, 5));
        Assert.Equal(DenyReason.MaintenanceKey, verdict.Reason);
        Assert.Equal(0x01, verdict.ExceptionCode);
        // What the rule would not allow even when armed is refused as a function, never as an address (02).
        var outside = Evaluate(policy, "10.0.0.1", 1, WriteSingle(120, 5));
        Assert.Equal(DenyReason.Function, outside.Reason);
        Assert.Equal(0x01, outside.ExceptionCode);
    }

    [Fact]
    public void Evaluate_MaintenanceRuleWhileArmed_IsAllowed()
    {
        var maintenance = new MaintenanceState();
        var policy = Compile(MaintenanceRules, maintenance);
        maintenance.Arm();
        Assert.Equal(Verdict.Allow(1), Evaluate(policy, "10.0.0.1", 1, WriteSingle(100, 5)));
        Assert.Equal(DenyReason.Address, Evaluate(policy, "10.0.0.1", 1, WriteSingle(120, 5)).Reason);
        maintenance.Disarm();
        Assert.Equal(DenyReason.MaintenanceKey, Evaluate(policy, "10.0.0.1", 1, WriteSingle(100, 5)).Reason);
    }

    [Fact]
    public void Evaluate_MaintenanceArmedUntil_DisarmsByItself()
    {
        var maintenance = new MaintenanceState();
        var policy = Compile(MaintenanceRules, maintenance);
        maintenance.ArmUntil(T0 + 10);
        Assert.True(Evaluate(policy, "10.0.0.1", 1, WriteSingle(100, 5), T0 + 9).IsAllowed);
        Assert.Equal(DenyReason.MaintenanceKey, Evaluate(policy, "10.0.0.1", 1, WriteSingle(100, 5), T0 + 10).Reason);
    }

    [Fact]
    public void MaintenanceState_Default_IsNeverArmed()
    {
        var maintenance = new MaintenanceState();
        Assert.False(maintenance.IsArmed);
        Assert.False(maintenance.IsArmedAt(long.MaxValue - 1));
        var result = ConfigLoader.LoadText("policies:\n  p:\n    mode: enforce\n    rules:\n      - maintenance: true\n", "t.yaml");
        Assert.False(result.Config!.Policies["p"].Maintenance.IsArmed);
    }
}
