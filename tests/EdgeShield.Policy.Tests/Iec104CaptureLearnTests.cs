using EdgeShield.Policy.Learn;
using EdgeShield.Policy.Replay;
using EdgeShield.Protocols.Capture;

namespace EdgeShield.Policy.Tests;

/// <summary>
/// <c>learn --pcap</c> for IEC 104 (<see cref="Iec104CaptureLearner"/>): the draft of each capture of tests/data/iec104 loads
/// without errors or warnings and, enforced, replays its own capture without a denial (select-before-operate included:
/// the learner counts an execute as following its select only when the capture's station confirmed the select).
/// </summary>
public class Iec104CaptureLearnTests
{
    public static TheoryData<string> Captures() => new(Iec104ReplayConformanceTests.Files);

    private static string Draft(params string[] files)
    {
        var learner = new Iec104CaptureLearner();
        foreach (var file in files)
        {
            Assert.Equal(CaptureError.None, new Iec104CaptureScanner(learner).Scan(Iec104ReplayConformanceTests.Open(file)));
        }
        var text = new StringWriter();
        learner.WriteYaml(text, files);
        return text.ToString();
    }

    private static CompiledPolicy Enforced(string yaml)
    {
        var result = ConfigLoader.LoadText(yaml.Replace("mode: monitor", "mode: enforce", StringComparison.Ordinal), "learned.yaml");
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics) + "\n" + yaml);
        Assert.DoesNotContain(result.Diagnostics, d => d.Severity == DiagnosticSeverity.Warning);
        return result.Config!.Policies["learned"];
    }

    [Theory]
    [MemberData(nameof(Captures))]
    public void Draft_Enforced_DeniesNothingOfItsCapture(string file)
    {
        var yaml = Draft(file);
        var replay = new Iec104PolicyReplay(Enforced(yaml));
        replay.Run(Iec104ReplayConformanceTests.Open(file));
        Assert.True(replay.Requests > 0);
        Assert.True(replay.Denied == 0, string.Join("\n", replay.FirstDenied.Select(d => ReplayReport.DescribeDenied(d, ReplayReport.UniqueRuleNames(replay.Policy)))) + "\n" + yaml);
        Assert.Equal(0, replay.ConnectionsDenied);
    }

    [Fact]
    public void Draft_OfTheDiverseCapture_BoundsSetPointsAndAsksForTheirSelects()
    {
        var yaml = Draft(Iec104ReplayConformanceTests.Files[0]);
        Assert.Contains("protocol: iec104", yaml, StringComparison.Ordinal);
        Assert.Contains("upstream: tcp://10.0.0.10:2404", yaml, StringComparison.Ordinal);
        Assert.Contains("type: [C_SE_NC_1, C_SE_TA_1, C_SE_TC_1]", yaml, StringComparison.Ordinal);
        Assert.Contains("value: -43.5..123", yaml, StringComparison.Ordinal);
        Assert.Contains("select-before-operate: true", yaml, StringComparison.Ordinal);
        Assert.Contains("ca: [3]", yaml, StringComparison.Ordinal);

        // The same draft refuses what the capture never did: a clock sync, another common address.
        var policy = Enforced(yaml);
        var replay = new Iec104PolicyReplay(policy);
        replay.Run(Iec104ReplayConformanceTests.Open(Iec104ReplayConformanceTests.Files[2]));
        // Its client (172.27.248.109) is no source of the draft: each of its six connections is closed before STARTDT.
        Assert.Equal(6, replay.ConnectionsDenied);
        Assert.Equal(0, replay.Requests);
    }

    [Fact]
    public void Draft_OfAllCaptures_AllowsThemAll()
    {
        var yaml = Draft(Iec104ReplayConformanceTests.Files);
        var policy = Enforced(yaml);
        foreach (var file in Iec104ReplayConformanceTests.Files)
        {
            var replay = new Iec104PolicyReplay(policy);
            replay.Run(Iec104ReplayConformanceTests.Open(file));
            Assert.Equal(0, replay.Denied);
            Assert.Equal(replay.Requests, replay.Allowed);
        }
    }
}
