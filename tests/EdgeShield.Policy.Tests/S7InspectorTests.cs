using EdgeShield.Policy.Replay;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.S7comm;
using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

/// <summary>The S7 decision order, without sockets: the live S7 session and S7 replay both ask <see cref="Inspector"/>.</summary>
public class S7InspectorTests
{
    private const string Rules = """
              - name: hmi reads
                from: 10.20.0.0/24
                connection: op
                function: [setup-communication, read-var]
                area: db
                db: 1
                address: 0-99

        """;

    private static CompiledPolicy Policy(string mode = "enforce", string onDeny = "exception", string rules = Rules)
    {
        var yaml = $"policies:\n  p:\n    protocol: s7comm\n    mode: {mode}\n    on-deny: {onDeny}\n    rules:\n{rules}";
        var result = ConfigLoader.LoadText(yaml, "test.yaml", new MaintenanceState());
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        return result.Config!.Policies["p"];
    }

    private static Inspection Inspect(CompiledPolicy policy, byte[] pdu, S7Connection? connection = null, string source = "10.20.0.7", bool plus = false) =>
        Inspector.InspectS7(policy, Ip(source), connection ?? S7Requests.Op, plus, S7Pdu.ParseRequest(pdu), 1_000);

    [Fact]
    public void Connect_NamedSourceAndType_Forwards_OtherType_IsDeniedAndCloses()
    {
        var policy = Policy();
        Assert.True(Inspector.InspectConnect(policy, Ip("10.20.0.7"), S7Requests.Op).Forwards);
        var pg = Inspector.InspectConnect(policy, Ip("10.20.0.7"), S7Requests.Pg);
        Assert.Equal(InspectionKind.Denied, pg.Kind);
        Assert.True(pg.Closes);
        Assert.False(Inspector.InspectConnect(policy, Ip("10.30.0.7"), S7Requests.Op).Forwards);
        Assert.True(Inspector.InspectConnect(Policy(mode: "monitor"), Ip("10.30.0.7"), S7Requests.Pg).Forwards);
    }

    [Fact]
    public void Job_AllowedInsideTheRule_DeniedOutsideWithTheClosestReason()
    {
        var policy = Policy();
        var allowed = Inspect(policy, S7Requests.ReadVar(S7Requests.Db(1, 0, 10)));
        var span = Inspect(policy, S7Requests.ReadVar(S7Requests.Db(1, 95, 10)));
        var function = Inspect(policy, S7Requests.WriteVar(S7Requests.Db(1, 0, 2, [1, 2])));

        Assert.Equal(InspectionKind.Allowed, allowed.Kind);
        Assert.Equal(0, allowed.Verdict.RuleIndex);
        Assert.Equal((InspectionKind.Denied, DenyReason.Address), (span.Kind, span.Verdict.Reason));
        Assert.Equal((InspectionKind.Denied, DenyReason.Function), (function.Kind, function.Verdict.Reason));
        Assert.False(function.Closes);
        Assert.True(Inspect(Policy(onDeny: "close"), S7Requests.PlcStop).Closes);
    }

    [Fact]
    public void ClientAck_IsAnAnswer_NotMalformed()
    {
        // An Ack_Data the client sends (answering a download-block the PLC sent it): ParseRequest calls it NotARequest.
        byte[] ackData = Convert.FromHexString("3203000001000002000000001B00");
        Assert.Equal(S7RequestError.NotARequest, S7Pdu.ParseRequest(ackData).Error);

        var inspection = Inspect(Policy(), ackData);

        Assert.Equal(InspectionKind.Answer, inspection.Kind);
        Assert.False(inspection.Closes);
        Assert.Equal(InspectionKind.Malformed, Inspect(Policy(), [0x32, 0x01, 0x00]).Kind);
    }

    [Fact]
    public void OutOfSpec_NamedSource_IsRefusedInEveryMode_UnnamedSourceGetsThePolicysRefusal()
    {
        byte[] unknownJob = S7Requests.Bare(0x42);
        Assert.Equal(S7RequestStatus.OutOfSpec, S7Pdu.ParseRequest(unknownJob).Status);

        Assert.Equal(InspectionKind.OutOfSpec, Inspect(Policy(), unknownJob).Kind);
        Assert.Equal(InspectionKind.OutOfSpec, Inspect(Policy(mode: "monitor"), unknownJob).Kind);
        var unnamed = Inspect(Policy(), unknownJob, source: "10.30.0.7");
        Assert.Equal((InspectionKind.Denied, DenyReason.SourceOrUnit), (unnamed.Kind, unnamed.Verdict.Reason));
    }

    [Fact]
    public void S7commPlus_RefusedClosesWhateverOnDeny_MonitorWouldDeny()
    {
        var refused = Inspect(Policy(), S7Requests.Plus, S7Requests.PlusHmi, plus: true);
        Assert.Equal(InspectionKind.Denied, refused.Kind);
        Assert.True(refused.Closes);
        Assert.Equal(InspectionKind.WouldDeny, Inspect(Policy(mode: "monitor"), S7Requests.Plus, S7Requests.PlusHmi, plus: true).Kind);
        var allowed = Inspect(Policy(rules: "      - name: plus\n        function: s7comm-plus\n"), S7Requests.Plus, S7Requests.PlusHmi, plus: true);
        Assert.Equal(InspectionKind.Allowed, allowed.Kind);
    }

    [Fact]
    public void S7Replay_MutatedCaptures_NeverThrowAndKeepTheirSums()
    {
        // Bytes flipped in real captures: the scanner and replay never throw, and allowed + denied = requests.
        var random = new Random(12);
        var policy = Policy();
        foreach (var file in S7ReplayConformanceTests.Files)
        {
            byte[] original = File.ReadAllBytes(EdgeShield.Protocols.Tests.TestData.PathOf($"s7comm/{file}"));
            for (int round = 0; round < 40; round++)
            {
                byte[] bytes = (byte[])original.Clone();
                for (int flips = 0; flips < 8; flips++)
                {
                    int at = random.Next(bytes.Length / 4, bytes.Length);
                    bytes[at] = (byte)random.Next(256);
                }
                if (!CaptureReader.TryOpen(bytes, out var reader, out _))
                {
                    continue;
                }
                var replay = new S7PolicyReplay(policy);
                replay.Run(reader!);
                Assert.Equal(replay.Requests, replay.Allowed + replay.Denied);
            }
        }
    }

    [Fact]
    public void InspectS7_AllocatesNothing()
    {
        var policy = Policy();
        var source = Ip("10.20.0.7");
        byte[][] pdus =
        [
            S7Requests.ReadVar(S7Requests.Db(1, 0, 10)),
            S7Requests.ReadVar(S7Requests.Db(1, 95, 10), S7Requests.M(0, 2)),
            S7Requests.WriteVar(S7Requests.Db(1, 0, 2, [1, 2])),
            S7Requests.Setup,
            S7Requests.PlcStop,
            S7Requests.Userdata(4, 1),
            S7Requests.Bare(0x42),
        ];
        foreach (var pdu in pdus)
        {
            Inspector.InspectS7(policy, source, S7Requests.Op, false, S7Pdu.ParseRequest(pdu), 1_000);
            Inspector.InspectConnect(policy, source, S7Requests.Pg);
        }

        int denied = 0;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            var pdu = pdus[i % pdus.Length];
            if (!Inspector.InspectS7(policy, source, S7Requests.Op, false, S7Pdu.ParseRequest(pdu), 1_000 + i).Forwards)
            {
                denied++;
            }
            if (!Inspector.InspectConnect(policy, source, S7Requests.Op).Forwards)
            {
                denied++;
            }
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(denied > 5_000, $"{denied} denied");
        Assert.Equal(0, allocated);
    }
}
