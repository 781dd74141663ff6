using EdgeShield.Policy.Learn;
using EdgeShield.Policy.Replay;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.S7comm;
using static EdgeShield.Policy.Tests.S7ReplayConformanceTests;

namespace EdgeShield.Policy.Tests;

/// <summary><see cref="S7PolicyLearner"/>: the draft loads without errors and, enforced, allows everything of its captures.</summary>
public class S7LearnTests
{
    private static (EdgeShieldConfig Config, string Yaml) Learn(params string[] files)
    {
        var learner = new S7PolicyLearner();
        foreach (var file in files)
        {
            Assert.Equal(CaptureError.None, new S7CaptureScanner(learner).Scan(Open(file)));
        }
        var text = new StringWriter();
        learner.WriteYaml(text, files, 102);
        var yaml = text.ToString();
        var result = ConfigLoader.LoadText(yaml, "learned.yaml");
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics) + "\n" + yaml);
        Assert.DoesNotContain(result.Diagnostics, d => d.Severity == DiagnosticSeverity.Warning);
        return (result.Config!, yaml);
    }

    private static CompiledPolicy Enforced(string yaml)
    {
        var result = ConfigLoader.LoadText(yaml.Replace("mode: monitor", "mode: enforce", StringComparison.Ordinal), "learned.yaml");
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        return result.Config!.Policies["learned"];
    }

    [Theory]
    [MemberData(nameof(Captures), MemberType = typeof(S7ReplayConformanceTests))]
    public void Learn_S7Capture_DraftEnforcedAllowsEverythingOfIt(string file)
    {
        var (config, yaml) = Learn(file);
        var learned = config.Policies["learned"];
        Assert.Equal(ListenerProtocol.S7comm, learned.Protocol);
        Assert.Equal(PolicyMode.Monitor, learned.Mode);
        Assert.All(config.Listeners, l => Assert.Equal(ListenerProtocol.S7comm, l.Protocol));

        var all = new S7PolicyReplay(S7Policy(AllowEverything));
        all.Run(Open(file));
        var replay = new S7PolicyReplay(Enforced(yaml));
        replay.Run(Open(file));

        Assert.True(replay.Requests > 0);
        Assert.Equal(all.Requests, replay.Requests);
        Assert.True(replay.Denied == 0, $"{replay.Denied} denied, first at frame {replay.FirstDenied.FirstOrDefault().FrameNumber}\n{yaml}");
    }

    [Fact]
    public void Learn_SeveralCaptures_OneDraftAllowsThemAll()
    {
        string[] files = Files;
        var (_, yaml) = Learn(files);
        var policy = Enforced(yaml);
        foreach (var file in files)
        {
            var replay = new S7PolicyReplay(policy);
            replay.Run(Open(file));
            Assert.True(replay.Denied == 0, $"{file}: {replay.Denied} denied");
        }
    }

    [Fact]
    public void Learn_ReadWriteCapture_DraftNamesItsSpansAndRefusesWhatWasNotSeen()
    {
        var (_, yaml) = Learn("snap7-readwrite-op.pcapng");

        Assert.Contains("connection: op", yaml, StringComparison.Ordinal);
        Assert.Contains("function: read-var", yaml, StringComparison.Ordinal);
        Assert.Contains("area: [i, q, m, db]", yaml, StringComparison.Ordinal);
        Assert.Contains("db: [1-2, 7, 100]", yaml, StringComparison.Ordinal);
        Assert.Contains("address: [0-15, 100-103]", yaml, StringComparison.Ordinal);
        Assert.Contains("#   db 1: 0-15, 100-103", yaml, StringComparison.Ordinal);
        Assert.Contains("address: [4-5, 8, 10-13, 200-202]", yaml, StringComparison.Ordinal);
        Assert.Contains("# setup-communication: 11 requests", yaml, StringComparison.Ordinal);

        // The same client's stop, start, upload, download, clock and password on OP connections: none was seen.
        var replay = new S7PolicyReplay(Enforced(yaml));
        replay.Run(Open("snap7-dangerous-op.pcapng"));
        Assert.Equal(9, replay.ByFunction[S7PolicyReplay.ConnectSlot]);
        Assert.Equal(0, replay.DeniedByReason[(int)DenyReason.SourceOrUnit]);
        Assert.Equal(9, replay.Denied);
        Assert.Equal(9, replay.DeniedByReason[(int)DenyReason.Function]);
        // On PG connections the connect itself is refused: the draft names op only.
        var pg = new S7PolicyReplay(Enforced(yaml));
        pg.Run(Open("snap7-readwrite-pg.pcapng"));
        Assert.Equal(11, pg.Denied);
        Assert.Equal(11, pg.Requests);
    }

    [Fact]
    public void Learn_PiServices_AreNamedOnThePlcControlRule()
    {
        var (_, yaml) = Learn("iti__s7__snap7_s300_everything.pcapng");

        Assert.Contains("function: [plc-control, plc-stop]", yaml, StringComparison.Ordinal);
        Assert.Contains("pi-service: [P_PROGRAM, _GARB, _MODU]", yaml, StringComparison.Ordinal);
        Assert.DoesNotContain("connection:", yaml, StringComparison.Ordinal); // the capture holds no COTP connect
        var replay = new S7PolicyReplay(Enforced(yaml.Replace("pi-service: [P_PROGRAM, _GARB, _MODU]", "pi-service: [P_PROGRAM]", StringComparison.Ordinal)));
        replay.Run(Open("iti__s7__snap7_s300_everything.pcapng"));
        Assert.Equal(2, replay.Denied); // _MODU and _GARB
    }

    [Fact]
    public void Learn_ListenDraftOfAMixedConfig_GivesEachListenerThePolicyOfItsProtocol()
    {
        // learn --listen's draft: the config's listeners, Modbus ones with `learned`, s7comm ones with `learned-s7`.
        var config = ConfigLoader.Load(Path.Combine(EdgeShield.Protocols.Tests.TestData.Directory, "..", "..", "firmware-config", "examples", "s7-and-modbus.yaml")).Config!;
        var modbus = new PolicyLearner { SequenceLabel = "request" };
        new ModbusCaptureScanner(modbus, 502).Scan(ReplayTests.Open("pymodbus_socket_over_tcp_port502.pcapng"));
        var s7 = new S7PolicyLearner { SequenceLabel = "request" };
        new S7CaptureScanner(s7).Scan(Open("snap7-readwrite-op.pcapng"));
        var text = new StringWriter();
        modbus.WriteYaml(text, ["live"], 0, config, s7);
        string yaml = text.ToString();

        var result = ConfigLoader.LoadText(yaml, "learned.yaml");
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics) + "\n" + yaml);
        var draft = result.Config!;
        Assert.Equal(["learned", "learned-s7"], draft.Listeners.Select(l => l.PolicyName));
        Assert.Equal(ListenerProtocol.ModbusTcp, draft.Policies["learned"].Protocol);
        Assert.Equal(ListenerProtocol.S7comm, draft.Policies["learned-s7"].Protocol);
        var replay = new S7PolicyReplay(LoadPolicy(yaml, "learned-s7"));
        replay.Run(Open("snap7-readwrite-op.pcapng"));
        Assert.Equal(33, replay.Requests);
        Assert.Equal(0, replay.Denied);
    }

    private static CompiledPolicy LoadPolicy(string yaml, string name)
    {
        var result = ConfigLoader.LoadText(yaml.Replace("mode: monitor", "mode: enforce", StringComparison.Ordinal), "learned.yaml");
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        return result.Config!.Policies[name];
    }
}
