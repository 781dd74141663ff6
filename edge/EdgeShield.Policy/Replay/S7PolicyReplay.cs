using System.Diagnostics;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Policy.Replay;

/// <summary>One refused S7 request (a job, userdata, S7comm-Plus PDU or COTP connect), for the report's list of first denials.</summary>
public readonly record struct S7DeniedFrame(int FrameNumber, UInt128 Source, S7Connection Connection, int FunctionSlot, short RuleIndex, DenyReason Reason, S7RequestError Violation);

/// <summary>One malformed S7 packet or PDU, for the report's list.</summary>
public readonly record struct S7MalformedFrame(int FrameNumber, bool IsRequest, S7CaptureFault Fault, S7FramingError Framing, S7RequestError Request);

/// <summary>
/// Runs the S7 requests of a capture through a compiled <c>protocol: s7comm</c> policy with the live S7 session's
/// own decisions (<see cref="Inspector.InspectConnect"/>, <see cref="Inspector.InspectS7"/>): the COTP connect is
/// a request (function <c>cotp-connect</c>) refused unless a rule names the source and connection type, and a
/// refused connect ends the connection; every reassembled job, userdata and S7comm-Plus PDU is a request, judged
/// as a whole with the capture's timestamps. Malformed ends the direction, as does a refusal that closes
/// (<c>on-deny: close</c>, S7comm-Plus). The client's answers to jobs the server sent are counted apart
/// (<see cref="ClientAnswers"/>), as the gateway relays them unjudged. Allocation-free per frame after warm-up.
/// </summary>
public sealed class S7PolicyReplay : IS7CaptureObserver
{
    /// <summary>Slot of <see cref="ByFunction"/> for COTP connects (after every <see cref="S7Function"/>).</summary>
    public const int ConnectSlot = (int)S7Function.S7commPlus + 1;
    /// <summary>Out-of-spec requests are kept apart from the policy's deny reasons in <see cref="DeniedByReason"/>.</summary>
    public const int OutOfSpecReason = (int)DenyReason.None;

    private readonly CompiledPolicy _policy;
    private readonly int _listLimit;

    /// <summary>Creates a replay of <paramref name="policy"/>; lists keep the first <paramref name="listLimit"/> frames.</summary>
    public S7PolicyReplay(CompiledPolicy policy, ushort serverPort = 102, int listLimit = 20)
    {
        ArgumentNullException.ThrowIfNull(policy);
        _policy = policy;
        _listLimit = listLimit;
        Scanner = new S7CaptureScanner(this, serverPort) { GapListLimit = listLimit };
        AllowedByRule = new long[policy.RuleCount];
        ClosestRuleOfDenied = new long[policy.RuleCount + 1];
    }

    /// <summary>The policy replayed.</summary>
    public CompiledPolicy Policy => _policy;

    /// <summary>Transport-level counts.</summary>
    public S7CaptureScanner Scanner { get; }

    public long Requests { get; private set; }
    public long Responses { get; private set; }
    public long Malformed { get; private set; }
    public long Allowed { get; private set; }
    public long Denied { get; private set; }

    /// <summary>COTP connects (counted in <see cref="Requests"/> too).</summary>
    public long Connects { get; private set; }

    /// <summary>Ack/Ack_Data the client sent (answers to jobs the server sent it): relayed by the gateway, not judged.</summary>
    public long ClientAnswers { get; private set; }

    /// <summary>Requests per <see cref="S7Function"/> (slot <see cref="ConnectSlot"/>: COTP connects).</summary>
    public long[] ByFunction { get; } = new long[ConnectSlot + 1];

    /// <summary>Server PDUs per ROSCTR (1 job, 2 Ack, 3 Ack_Data, 7 userdata; 0 S7comm-Plus).</summary>
    public long[] ResponsesByRosctr { get; } = new long[8];

    /// <summary>Server Ack/Ack_Data with a header error class other than 0, by error class.</summary>
    public long[] ErrorsByClass { get; } = new long[256];

    /// <summary>Requests each rule allowed (first match), by rule index.</summary>
    public long[] AllowedByRule { get; }

    /// <summary>Denied requests by the rule that came closest; the last slot is "no rule for this source and connection type, or out of spec".</summary>
    public long[] ClosestRuleOfDenied { get; }

    /// <summary>Denied requests by <see cref="DenyReason"/>; slot <see cref="OutOfSpecReason"/> counts out-of-spec requests.</summary>
    public long[] DeniedByReason { get; } = new long[(int)DenyReason.None + 1];

    public List<S7DeniedFrame> FirstDenied { get; } = [];

    /// <summary>The most recent denial.</summary>
    public S7DeniedFrame LastDenied { get; private set; }

    public List<S7MalformedFrame> FirstMalformed { get; } = [];

    /// <summary>The word a <see cref="ByFunction"/> slot is reported under (DESIGN.md's function words, <c>cotp-connect</c>, <c>unknown</c>).</summary>
    public static string FunctionWord(int slot) => slot == ConnectSlot ? "cotp-connect" : S7Functions.PolicyWord((S7Function)slot);

    /// <summary>Replays a whole capture.</summary>
    public CaptureError Run(CaptureReader reader) => Scanner.Scan(reader);

    /// <summary>Forgets every count and connection (pooled memory is kept).</summary>
    public void Clear()
    {
        Scanner.Clear();
        Requests = Responses = Malformed = Allowed = Denied = Connects = ClientAnswers = 0;
        Array.Clear(ByFunction);
        Array.Clear(ResponsesByRosctr);
        Array.Clear(ErrorsByClass);
        Array.Clear(AllowedByRule);
        Array.Clear(ClosestRuleOfDenied);
        Array.Clear(DeniedByReason);
        FirstDenied.Clear();
        FirstMalformed.Clear();
    }

    /// <inheritdoc/>
    public bool OnConnect(in CaptureContext context, in CotpTpdu request)
    {
        Requests++;
        Connects++;
        ByFunction[ConnectSlot]++;
        var connection = request.Connection;
        var inspection = Inspector.InspectConnect(_policy, new SourceAddress(context.Client), connection);
        if (inspection.Forwards)
        {
            Allowed++;
            return true;
        }
        Denied++;
        DeniedByReason[(int)DenyReason.SourceOrUnit]++;
        ClosestRuleOfDenied[^1]++;
        Remember(new S7DeniedFrame(context.FrameNumber, context.Client, connection, ConnectSlot, -1, DenyReason.SourceOrUnit, S7RequestError.None));
        // The gateway answers a DR (or nothing) and closes: nothing after it reaches the PLC.
        return false;
    }

    /// <inheritdoc/>
    public bool OnRequest(in CaptureContext context, S7Connection connection, bool plus, in S7Request request)
    {
        var inspection = Inspector.InspectS7(_policy, new SourceAddress(context.Client), connection, plus, request, ToStopwatchTicks(context.TimestampNs));
        if (inspection.Kind == InspectionKind.Malformed)
        {
            OnMalformed(context, isRequest: true, S7CaptureFault.Request, S7FramingError.None, request.Error);
            return false;
        }
        if (inspection.Kind == InspectionKind.Answer)
        {
            ClientAnswers++;
            return true;
        }
        Requests++;
        int slot = plus ? (int)S7Function.S7commPlus : (int)request.Function;
        ByFunction[slot]++;
        var verdict = inspection.Verdict;
        switch (inspection.Kind)
        {
            case InspectionKind.Allowed:
                Allowed++;
                AllowedByRule[verdict.RuleIndex]++;
                return true;
            case InspectionKind.OutOfSpec:
                Denied++;
                DeniedByReason[OutOfSpecReason]++;
                ClosestRuleOfDenied[^1]++;
                Remember(new S7DeniedFrame(context.FrameNumber, context.Client, connection, slot, -1, DenyReason.None, request.Error));
                break;
            default:
                Denied++;
                DeniedByReason[(int)verdict.Reason]++;
                ClosestRuleOfDenied[verdict.RuleIndex >= 0 ? verdict.RuleIndex : ClosestRuleOfDenied.Length - 1]++;
                Remember(new S7DeniedFrame(context.FrameNumber, context.Client, connection, slot, verdict.RuleIndex, verdict.Reason, S7RequestError.None));
                break;
        }
        return !inspection.Closes;
    }

    /// <inheritdoc/>
    public void OnResponse(in CaptureContext context, in S7Header header)
    {
        Responses++;
        ResponsesByRosctr[header.Protocol == S7Protocol.S7commPlus ? 0 : (int)header.Rosctr & 7]++;
        if (header.ErrorClass != 0)
        {
            ErrorsByClass[header.ErrorClass]++;
        }
    }

    /// <inheritdoc/>
    public void OnMalformed(in CaptureContext context, bool isRequest, S7CaptureFault fault, S7FramingError framing, S7RequestError request)
    {
        Malformed++;
        if (FirstMalformed.Count < _listLimit)
        {
            FirstMalformed.Add(new S7MalformedFrame(context.FrameNumber, isRequest, fault, framing, request));
        }
    }

    private void Remember(S7DeniedFrame denied)
    {
        LastDenied = denied;
        if (FirstDenied.Count < _listLimit)
        {
            FirstDenied.Add(denied);
        }
    }

    private static long ToStopwatchTicks(long nanoseconds) => Stopwatch.Frequency == 1_000_000_000
        ? nanoseconds
        : (long)((Int128)nanoseconds * Stopwatch.Frequency / 1_000_000_000);
}
