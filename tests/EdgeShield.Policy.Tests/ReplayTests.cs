using System.Text;
using System.Text.Json;
using EdgeShield.Policy.Replay;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Modbus;
using EdgeShield.Protocols.Tests;

namespace EdgeShield.Policy.Tests;

/// <summary><see cref="PolicyReplay"/> decides as the gateway does, over real captures.</summary>
public class ReplayTests
{
    private const string Pymodbus = "pymodbus_socket_over_tcp_port502.pcapng";

    private const string Reads = """
              - name: reads
                from: 127.0.0.1
                function: [1, 2, 3, 4]

        """;

    internal static CaptureReader Open(string file)
    {
        Assert.True(CaptureReader.TryOpen(File.ReadAllBytes(TestData.PathOf($"modbus/{file}")), out var reader, out _));
        return reader!;
    }

    private static PolicyReplay Run(string file, CompiledPolicy policy, ushort port = 502)
    {
        var replay = new PolicyReplay(policy, port);
        Assert.Equal(CaptureError.None, replay.Run(Open(file)));
        return replay;
    }

    private static CompiledPolicy Policy(string rules, string mode = "enforce", string onDeny = "exception")
    {
        var yaml = $"policies:\n  p:\n    mode: {mode}\n    on-deny: {onDeny}\n    rules:\n{rules}";
        var result = ConfigLoader.LoadText(yaml, "test.yaml");
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        return result.Config!.Policies["p"];
    }

    [Fact]
    public void Replay_ReadsOnlyPolicy_CountsPerVerdictRuleUnitAndFunction()
    {
        var replay = Run(Pymodbus, Policy(Reads));

        // tshark: FC1 9, FC2 9, FC3 15, FC4 9, FC5 3, FC6 3, FC15 3, FC16 3.
        Assert.Equal(54, replay.Requests);
        Assert.Equal(42, replay.Allowed);
        Assert.Equal(12, replay.Denied);
        Assert.Equal(42, replay.AllowedByRule[0]);
        Assert.Equal(12, replay.DeniedByReason[(int)DenyReason.Function]);
        Assert.Equal(12, replay.ClosestRuleOfDenied[0]);
        Assert.Equal(54, replay.ByUnit.Sum());
        Assert.Equal([9L, 9, 15, 9, 3, 3], replay.ByFunction[1..7]);
        Assert.Equal(3, replay.ByFunction[15]);
        Assert.Equal(12, replay.FirstDenied.Count);
        Assert.All(replay.FirstDenied, d => Assert.Equal(0x01, d.ExceptionCode));
        Assert.Equal(replay.FirstDenied.OrderBy(d => d.FrameNumber).Select(d => d.FrameNumber), replay.FirstDenied.Select(d => d.FrameNumber));
    }

    [Fact]
    public void Replay_OnDenyClose_EndsTheConnectionLikeTheGateway()
    {
        var exception = Run(Pymodbus, Policy(Reads));
        var close = Run(Pymodbus, Policy(Reads, onDeny: "close"));
        var monitor = Run(Pymodbus, Policy(Reads, mode: "monitor", onDeny: "close"));

        Assert.True(close.Requests < exception.Requests, $"close {close.Requests}, exception {exception.Requests}");
        // At most one refusal per connection: the first one closes it.
        Assert.InRange(close.Denied, 1, close.Scanner.Connections);
        // Monitor mode forwards everything: what would be denied is counted, nothing is cut short.
        Assert.Equal(exception.Requests, monitor.Requests);
        Assert.Equal(exception.Denied, monitor.Denied);
    }

    [Fact]
    public void Replay_RateRule_UsesTheCaptureTimestamps()
    {
        var unlimited = Run(Pymodbus, Policy(Reads));
        var limited = Run(Pymodbus, Policy(Reads + "        rate: 2/s\n"));
        var again = Run(Pymodbus, Policy(Reads + "        rate: 2/s\n"));

        Assert.Equal(unlimited.Allowed, limited.Allowed + limited.DeniedByReason[(int)DenyReason.Rate]);
        Assert.True(limited.DeniedByReason[(int)DenyReason.Rate] > 0);
        // The capture's clock, not the machine's: the same capture gives the same verdicts.
        Assert.Equal(limited.Allowed, again.Allowed);
    }

    [Fact]
    public void Replay_Json_IsExactlyTheObjectOfDesignMd()
    {
        var replay = Run(Pymodbus, Policy(Reads + "      - name: writes\n        function: [5, 6]\n"));
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            ReplayReport.WriteJson(writer, replay);
        }
        using var json = JsonDocument.Parse(stream.ToArray());
        var root = json.RootElement;

        Assert.Equal(["frames", "requests", "responses", "malformed", "unsynchronised", "allowed", "denied", "by_function", "by_rule"], root.EnumerateObject().Select(p => p.Name));
        Assert.Equal(0, root.GetProperty("unsynchronised").GetInt64());
        Assert.Equal(132, root.GetProperty("frames").GetInt64());
        Assert.Equal(54, root.GetProperty("requests").GetInt64());
        Assert.Equal(51, root.GetProperty("responses").GetInt64());
        Assert.Equal(48, root.GetProperty("allowed").GetInt64());
        Assert.Equal(6, root.GetProperty("denied").GetInt64());
        Assert.Equal(["1", "2", "3", "4", "5", "6", "15", "16"], root.GetProperty("by_function").EnumerateObject().Select(p => p.Name));
        Assert.Equal(54, root.GetProperty("by_function").EnumerateObject().Sum(p => p.Value.GetInt64()));
        Assert.Equal(42, root.GetProperty("by_rule").GetProperty("reads").GetInt64());
        Assert.Equal(6, root.GetProperty("by_rule").GetProperty("writes").GetInt64());
    }

    private const string AllowAll = "      - name: any\n";

    /// <summary>tshark's query rows of a capture (the ground truth), for the counts replay must match.</summary>
    private static int TsharkRequests(string file) =>
        TestData.ReadCsv(TestData.PathOf($"groundtruth/modbus/{file}.csv")).Count(r => r["direction"] == "query" && r["trans_id"].Length > 0);

    [Fact]
    public void Replay_WrongSizePduInAWellDelimitedAdu_IsARequestRefused03_AndTheConnectionGoesOn()
    {
        const string File = "iti__ModbusTCP__modbus_test_data_part2.pcap";
        var replay = Run(File, Policy(AllowAll));

        // Frame 22, the 7th request: FC6 with 2 bytes after the value. A PLC answers it 03, and so does
        // the gateway; the function-code sweep after it on the same connection is read on.
        var fc6 = replay.FirstDenied.First(d => d.FrameNumber == 22);
        Assert.Equal((6, 0x03, SpecViolation.PduLengthInvalid), (fc6.FunctionCode, fc6.ExceptionCode, fc6.Violation));
        Assert.Equal(0, replay.Malformed);
        Assert.Equal(TsharkRequests(File), replay.Requests);
    }

    [Fact]
    public void Replay_CaptureWithLostSegments_CountsTheRequestsTsharkCounts_SkippedBytesAreUnsynchronised()
    {
        const string File = "zeek__modbus__fuzz-72.pcap";
        var replay = Run(File, Policy(AllowAll));

        Assert.Equal(16, TsharkRequests(File));
        Assert.Equal(16, replay.Requests);
        Assert.True(replay.Scanner.Gaps > 0);
        Assert.True(replay.Scanner.Unsynchronised > 0);
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            ReplayReport.WriteJson(writer, replay);
        }
        using var json = JsonDocument.Parse(stream.ToArray());
        Assert.Equal(replay.Scanner.Unsynchronised, json.RootElement.GetProperty("unsynchronised").GetInt64());
        Assert.Equal(16, json.RootElement.GetProperty("requests").GetInt64());
    }

    [Fact]
    public void Replay_SchneiderUmas_MbapLength255BothWays_IsFramedNotMalformed()
    {
        const string File = "iti__modicon__modicon_test.pcap";
        // The Modicon session speaks to unit 0, which a rule must name for anything but reads (POLICY.md).
        var replay = Run(File, Policy("      - name: engineering\n        unit: 0\n        function: program\n"));

        Assert.Equal(0, replay.Malformed);
        Assert.Equal(TsharkRequests(File), replay.Requests);
        Assert.Equal(replay.Requests, replay.ByFunction[90]);
        Assert.Equal(replay.Requests, replay.Allowed);
        Assert.Equal(replay.Requests, replay.Responses);
    }

    [Fact]
    public void Replay_TextReport_IsDeterministicAndListsDeniedAndMalformedFrames()
    {
        string Text()
        {
            var replay = Run("libmodbus-3.1.12-unit-tests-tcp-port1502.pcapng", Policy(Reads), 1502);
            var output = new StringWriter(new StringBuilder());
            ReplayReport.WriteText(output, replay, "l");
            return output.ToString();
        }

        string first = Text();
        Assert.Equal(first, Text());
        Assert.Contains("first denied frames", first, StringComparison.Ordinal);
        // FC16 quantity 0 with 6 bytes more: a request refused 03 (out of spec), not a malformed frame.
        Assert.DoesNotContain("frame 175     request", first, StringComparison.Ordinal);
        Assert.Contains("by unit:", first, StringComparison.Ordinal);
    }

    [Fact]
    public void Replay_FrameLoop_AllocatesNothingAfterWarmUp()
    {
        var policy = Policy(Reads + "        rate: 1000/s\n      - name: writes\n        function: [5, 6, 15, 16]\n        value: 0-1000\n");
        string[] files = ["iti__ModbusTCP__Modbus__modbus_test.pcap", Pymodbus, "zeek__modbus__fuzz-72.pcap", "sv__modbus__modbus.pcap"];
        var readers = files.Select(Open).ToArray();
        var replay = new PolicyReplay(policy);
        foreach (var reader in readers)
        {
            replay.Run(reader);
            replay.Clear();
            reader.Reset();
        }

        long frames = 0;
        long allocated = ThreadAllocations.Fewest(() =>
        {
            frames = 0;
            for (int round = 0; round < 5; round++)
            {
                foreach (var reader in readers)
                {
                    replay.Run(reader);
                    frames += replay.Scanner.Frames;
                    replay.Clear();
                    reader.Reset();
                }
            }
        });

        Assert.True(frames > 10_000, $"only {frames} frames");
        Assert.Equal(0, allocated);
    }
}
