using EdgeShield.Policy.Learn;
using EdgeShield.Policy.Replay;
using EdgeShield.Protocols.Capture;
using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

/// <summary><c>edgeshield learn</c>: the draft allows exactly what the capture did, and loads.</summary>
public class LearnTests
{
    public static TheoryData<string, int> Captures() => ReplayConformanceTests.Captures();

    private static (EdgeShieldConfig Config, string Yaml) Learn(string file, int port)
    {
        var learner = new PolicyLearner();
        var scanner = new ModbusCaptureScanner(learner, (ushort)port);
        scanner.Scan(ReplayTests.Open(file));
        var text = new StringWriter();
        learner.WriteYaml(text, [file], (ushort)port);
        var result = ConfigLoader.LoadText(text.ToString(), "learned.yaml");
        Assert.False(result.HasErrors, text + "\n" + string.Join("\n", result.Diagnostics));
        Assert.DoesNotContain(result.Diagnostics, d => d.Severity == DiagnosticSeverity.Warning);
        return (result.Config!, text.ToString());
    }

    [Theory]
    [MemberData(nameof(Captures))]
    public void Learn_ThenReplayTheSameCapture_DeniesNothingThePolicyDecides(string file, int port)
    {
        var (config, yaml) = Learn(file, port);
        if (config.Listeners.Count == 0)
        {
            Assert.Contains("No Modbus request was seen", yaml, StringComparison.Ordinal);
            return;
        }

        var replay = new PolicyReplay(config.Policies[config.Listeners[0].PolicyName], (ushort)port, listLimit: 100_000);
        replay.Run(ReplayTests.Open(file));

        // Out-of-spec requests are refused by the gateway whatever the policy; nothing else is denied
        // but what the draft itself names as not allowed (e.g. FC43 with a MEI type no name covers).
        var named = System.Text.RegularExpressions.Regex.Matches(yaml, @"# not allowed: frame (\d+):")
            .Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
        var byPolicy = replay.FirstDenied.Where(d => d.Reason != DenyReason.None).ToList();
        Assert.True(byPolicy.All(d => named.Contains(d.FrameNumber)), $"{replay.Denied} denied\n{yaml}");
        Assert.Equal(replay.Denied - replay.DeniedByReason[PolicyReplay.OutOfSpecReason], byPolicy.Count);
        Assert.Equal(replay.Requests - replay.Denied, replay.Allowed);
    }

    [Fact]
    public void Learn_Pymodbus_AllowsNoMoreThanWasSeen()
    {
        var (config, yaml) = Learn("pymodbus_socket_over_tcp_port502.pcapng", 502);
        var policy = config.Policies["learned"];

        // Seen: write-single-register unit 1 address 3 value 1234; read-holding-registers unit 1 at 0-9 and 95-104.
        Assert.True(Evaluate(policy, "127.0.0.1", 1, WriteSingle(3, 1234)).IsAllowed);
        Assert.Equal(DenyReason.Value, Evaluate(policy, "127.0.0.1", 1, WriteSingle(3, 1235)).Reason);
        Assert.Equal(DenyReason.Address, Evaluate(policy, "127.0.0.1", 1, WriteSingle(4, 1234)).Reason);
        Assert.True(Evaluate(policy, "127.0.0.1", 1, Read(3, 95, 10)).IsAllowed);
        Assert.Equal(DenyReason.Address, Evaluate(policy, "127.0.0.1", 1, Read(3, 10, 1)).Reason);
        Assert.Equal(DenyReason.SourceOrUnit, Evaluate(policy, "127.0.0.2", 1, Read(3, 0, 1)).Reason);
        Assert.Equal(DenyReason.SourceOrUnit, Evaluate(policy, "127.0.0.1", 5, Read(3, 0, 1)).Reason);
        Assert.Contains("# 3 requests (write-single-register 3); first seen 2026-", yaml, StringComparison.Ordinal);
        Assert.Equal("monitor", yaml.Contains("mode: monitor", StringComparison.Ordinal) ? "monitor" : "enforce");
    }
}

/// <summary><c>learn --listen</c> feeds the learner from the frame path: recording a request must not allocate.</summary>
public class LiveLearnAllocationTests
{
    [Fact]
    public void Observe_AfterEachSourceUnitFunctionWasSeen_AllocatesNothing()
    {
        var learner = new PolicyLearner { SequenceLabel = "request" };
        byte[][] pdus =
        [
            Read(3, 0, 10), Read(3, 100, 10), Read(4, 20, 4), WriteSingle(100, 5), WriteSingle(101, 1500),
            WriteMultiple(200, 7, 9), WriteCoil(7), [90, 0, 0], [8, 0, 0, 0x12, 0x34], Read(3, 40, 0),
        ];
        UInt128[] clients = [Ip("10.20.0.5").Value, Ip("fd00:20::1").Value];
        var server = Ip("10.10.0.11").Value;
        int sequence = 0;

        void Run(int count)
        {
            for (int i = 0; i < count; i++)
            {
                var request = Protocols.Modbus.ModbusPdu.ParseRequest(pdus[i % pdus.Length]);
                var context = new CaptureContext(++sequence, 1_700_000_000_000_000_000 + i, clients[i % clients.Length], 40000, server, 502);
                learner.Observe(context, (byte)(1 + ((i / pdus.Length) & 1)), request);
            }
        }

        Run(5_000); // every key's address list has grown to its compacting size
        long before = GC.GetAllocatedBytesForCurrentThread();
        Run(10_000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.Equal(15_000, learner.Requests);
        var yaml = new StringWriter();
        learner.WriteYaml(yaml, ["live"], 502);
        // Out-of-spec requests (quantity 0) are listed up to the cap, then counted.
        Assert.Contains($"# not allowed: {15_000 / pdus.Length - PolicyLearner.MaxListedUnlearnable} more such requests, not listed", yaml.ToString(), StringComparison.Ordinal);
        Assert.Contains("(request 1)", yaml.ToString(), StringComparison.Ordinal);
    }
}
