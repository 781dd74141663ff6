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
    public void Evaluate_ManySources_TableStaysBoundedAndKeepsWorking()
    {
        var policy = Compile("      - rate: 1/s\n");
        for (var i = 0; i < 10_000; i++)
        {
            var source = new SourceAddress((UInt128)i + 1);
            Assert.True(policy.Evaluate(source, 1, Parse(Read(3, 0, 1)), T0 + i).IsAllowed, $"source {i}");
        }
        static EdgeShield.Protocols.Modbus.ModbusRequest Parse(byte[] pdu) => EdgeShield.Protocols.Modbus.ModbusPdu.ParseRequest(pdu);
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
