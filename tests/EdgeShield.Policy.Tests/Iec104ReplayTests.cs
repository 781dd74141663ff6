using EdgeShield.Policy.Replay;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Policy.Tests;

/// <summary>
/// <see cref="Iec104PolicyReplay"/> and <see cref="Iec104PolicyDiff"/> fed APDU by APDU as the capture scanner feeds them:
/// select-before-operate replays as live (a select arms only on the station's positive actcon seen in the capture),
/// the station's answers are matched to commands, a source no rule names is closed before STARTDT.
/// </summary>
public class Iec104ReplayTests
{
    private static readonly UInt128 Scada = SourceAddress.From(System.Net.IPAddress.Parse("10.30.0.10")).Value;
    private static readonly UInt128 Other = SourceAddress.From(System.Net.IPAddress.Parse("10.30.0.99")).Value;
    private static readonly UInt128 Rtu = SourceAddress.From(System.Net.IPAddress.Parse("10.10.0.31")).Value;
    private int _frame;

    private const string Sbo = """
              - name: breaker
                from: 10.30.0.10
                type: [C_SC_NA_1]
                ca: 1
                ioa: 2000-2099
                select-before-operate: true
              - name: interrogation
                from: 10.30.0.10
                type: C_IC_NA_1
                ca: 1

        """;

    private static byte[] Asdu(byte type, byte cause, ushort ca, uint ioa, byte[] element, bool negative = false)
    {
        var asdu = new byte[9 + element.Length];
        asdu[0] = type;
        asdu[1] = 1;
        asdu[2] = (byte)(cause | (negative ? 0x40 : 0));
        asdu[4] = (byte)ca;
        asdu[5] = (byte)(ca >> 8);
        asdu[6] = (byte)ioa;
        asdu[7] = (byte)(ioa >> 8);
        asdu[8] = (byte)(ioa >> 16);
        element.CopyTo(asdu, 9);
        return asdu;
    }

    private static byte[] Single(uint ioa, bool select, byte cause = 6, bool negative = false) => Asdu(45, cause, 1, ioa, [(byte)(1 | (select ? 0x80 : 0))], negative);

    private CaptureContext Context(UInt128 client, double seconds) =>
        new(++_frame, (long)(seconds * 1e9) + 1_000_000_000_000, client, 40000, Rtu, 2404);

    private bool Client(IIec104CaptureObserver observer, double seconds, byte[] asdu, UInt128? client = null)
    {
        var frame = new byte[6 + asdu.Length];
        Iec104Writer.WriteI(frame, 0, 0, asdu);
        Assert.True(Iec104Apdu.TryParse(frame, out var apdu, out _));
        Assert.True(Iec104Asdu.TryParse(apdu.Asdu, out var view, out _));
        return observer.OnRequest(Context(client ?? Scada, seconds), apdu, view);
    }

    private void Station(IIec104CaptureObserver observer, double seconds, byte[] asdu, UInt128? client = null)
    {
        var frame = new byte[6 + asdu.Length];
        Iec104Writer.WriteI(frame, 0, 0, asdu);
        Assert.True(Iec104Apdu.TryParse(frame, out var apdu, out _));
        Assert.True(Iec104Asdu.TryParse(apdu.Asdu, out var view, out _));
        observer.OnResponse(Context(client ?? Scada, seconds), apdu, view);
    }

    [Fact]
    public void SelectBeforeOperate_ArmsOnlyOnTheStationsPositiveActconInTheCapture()
    {
        var replay = new Iec104PolicyReplay(Iec104Requests.Compile(Sbo));
        // Select, positive actcon, execute: allowed, one execute per select.
        Client(replay, 0.0, Single(2001, select: true));
        Station(replay, 0.1, Single(2001, select: true, cause: 7));
        Client(replay, 0.2, Single(2001, select: false));
        Assert.Equal(3 - 1, replay.Allowed);
        Assert.Equal(0, replay.Denied);
        // Select with no actcon seen: the execute is refused with cause 7.
        Client(replay, 1.0, Single(2002, select: true));
        Client(replay, 1.2, Single(2002, select: false));
        Assert.Equal(1, replay.Denied);
        Assert.Equal(7, replay.LastDenied.Cause);
        Assert.Equal(DenyReason.Value, replay.LastDenied.Reason);
        // Negative actcon: disarmed.
        Client(replay, 2.0, Single(2003, select: true));
        Station(replay, 2.1, Single(2003, select: true, cause: 7, negative: true));
        Client(replay, 2.2, Single(2003, select: false));
        Assert.Equal(2, replay.Denied);
        // Positive actcon but the execute comes after select-timeout (10 s).
        Client(replay, 3.0, Single(2004, select: true));
        Station(replay, 3.1, Single(2004, select: true, cause: 7));
        Client(replay, 13.5, Single(2004, select: false));
        Assert.Equal(3, replay.Denied);
        // A second execute of a consumed select.
        Client(replay, 14.0, Single(2001, select: false));
        Assert.Equal(4, replay.Denied);
        Assert.Equal(2, replay.SelectsConfirmed);
        Assert.Equal(4, replay.DeniedByRefusalCause[7]);
        Assert.Equal(9, replay.Requests);
        Assert.Equal(replay.Requests, replay.Allowed + replay.Denied);
    }

    [Fact]
    public void StationAnswers_AreMatchedToCommands_UnmatchedAndLateOnesCounted()
    {
        var replay = new Iec104PolicyReplay(Iec104Requests.Compile(Sbo));
        byte[] interrogation = Asdu(100, 6, 1, 0, [20]);
        Client(replay, 0.0, interrogation);
        Station(replay, 0.2, Asdu(100, 7, 1, 0, [20]));
        Station(replay, 0.5, Asdu(100, 10, 1, 0, [20]));
        Assert.Equal(2, replay.MatchedResponses);
        // An actcon nobody asked for is dropped by the gateway.
        Station(replay, 1.0, Asdu(100, 7, 1, 0, [20]));
        Assert.Equal(1, replay.UnmatchedResponses);
        // An actcon later than response-timeout (1 s): the gateway has answered it itself; the late one is unmatched.
        Client(replay, 2.0, interrogation);
        Station(replay, 3.5, Asdu(100, 7, 1, 0, [20]));
        Assert.Equal(1, replay.ResponseTimeouts);
        Assert.Equal(2, replay.UnmatchedResponses);
        // With response-timeout 2s in the listener's limits, it matches.
        var patient = new Iec104PolicyReplay(Iec104Requests.Compile(Sbo), limits: new ListenerLimits { ResponseTimeout = TimeSpan.FromSeconds(2) });
        Client(patient, 2.0, interrogation);
        Station(patient, 3.5, Asdu(100, 7, 1, 0, [20]));
        Assert.Equal(0, patient.ResponseTimeouts);
        Assert.Equal(1, patient.MatchedResponses);
        Assert.Equal(4, replay.ResponsesByType[100]);
        Assert.Equal(4, replay.ResponsesByCause[7] + replay.ResponsesByCause[10]);
    }

    [Fact]
    public void UnnamedSource_IsClosedBeforeStartdt_AndNothingLaterIsRead()
    {
        var replay = new Iec104PolicyReplay(Iec104Requests.Compile(Sbo));
        Assert.False(Client(replay, 0.0, Asdu(100, 6, 1, 0, [20]), Other));
        Assert.Equal(1, replay.ConnectionsDenied);
        Assert.Equal(Iec104DenialKind.Connection, replay.LastDenied.Kind);
        Assert.Equal(0, replay.Requests);
        Assert.Equal(1, replay.NotRead);
        // A refused type (cause 44) and a refused common address (cause 46) of a named source.
        Client(replay, 1.0, Asdu(103, 6, 1, 0, [0, 0, 0, 0, 0, 0, 0]));
        Assert.Equal(44, replay.LastDenied.Cause);
        Client(replay, 1.1, Asdu(100, 6, 7, 0, [20]));
        Assert.Equal(46, replay.LastDenied.Cause);
        Client(replay, 1.2, Single(3000, select: true));
        Assert.Equal(47, replay.LastDenied.Cause);
        Assert.Equal(3, replay.Denied);
        Assert.Equal(1, replay.ByType[103]);
        Assert.Equal(1, replay.ByCommonAddress[7]);
    }

    [Fact]
    public void OnDenyClose_EndsTheConnection()
    {
        var policy = ConfigLoader.LoadText($"policies:\n  p:\n    protocol: iec104\n    mode: enforce\n    on-deny: close\n    rules:\n{Sbo}", "t.yaml").Config!.Policies["p"];
        var replay = new Iec104PolicyReplay(policy);
        Assert.False(Client(replay, 0.0, Asdu(103, 6, 1, 0, [0, 0, 0, 0, 0, 0, 0])));
        Client(replay, 0.1, Asdu(100, 6, 1, 0, [20]));
        Assert.Equal(1, replay.Requests);
        Assert.Equal(1, replay.NotRead);
    }

    [Fact]
    public void Diff_NewPolicyWithoutClockSync_NewlyDeniesItPerRuleAndType()
    {
        var before = Iec104Requests.Compile(Sbo + """
                  - name: clock
                    from: 10.30.0.10
                    type: clock
                    ca: 1

            """);
        var after = Iec104Requests.Compile(Sbo);
        var diff = new Iec104PolicyDiff(after, before);
        Client(diff, 0.0, Asdu(100, 6, 1, 0, [20]));
        Client(diff, 0.1, Asdu(103, 6, 1, 0, [0, 0, 0, 0, 0, 0, 0]));
        Client(diff, 0.2, Asdu(103, 6, 1, 0, [0, 0, 0, 0, 0, 0, 0]));
        Assert.Equal(2, diff.NewlyDenied);
        Assert.Equal(2, diff.NewlyDeniedByType[103]);
        Assert.Equal(0, diff.NewlyAllowed);
        Assert.Equal(2, diff.FirstNewlyDenied.Count);
        Assert.Equal(44, diff.FirstNewlyDenied[0].Cause);

        var reverse = new Iec104PolicyDiff(before, after);
        Client(reverse, 0.1, Asdu(103, 6, 1, 0, [0, 0, 0, 0, 0, 0, 0]));
        Assert.Equal(1, reverse.NewlyAllowed);
        Assert.Equal(1, reverse.NewlyAllowedByRule![2]);
        Assert.Equal(0, reverse.NewlyDenied);
    }
}
