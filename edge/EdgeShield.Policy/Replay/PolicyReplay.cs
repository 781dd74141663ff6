using System.Diagnostics;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Policy.Replay;

/// <summary>One refused request, for the report's list of first denials.</summary>
public readonly record struct DeniedFrame(int FrameNumber, UInt128 Source, byte UnitId, byte FunctionCode, byte ExceptionCode, short RuleIndex, DenyReason Reason, SpecViolation Violation);

/// <summary>One malformed ADU, for the report's list.</summary>
public readonly record struct MalformedFrame(int FrameNumber, bool IsRequest, FramingError Reason, short UnitId, short FunctionCode);

/// <summary>
/// Runs the requests of a capture through a compiled policy with the live gateway's own
/// <see cref="Inspector"/>: framing error → malformed (the direction ends); PDU malformed → malformed
/// (ends); out of spec → denied with the spec's exception (never forwarded, in any mode); else the
/// policy's verdict, with the capture's timestamps, so rate rules see the capture's pace.
/// <c>on-deny: close</c> ends the direction.
/// In monitor mode a request the policy would refuse counts as denied ("would deny").
/// Allocation-free per frame after warm-up.
/// </summary>
public sealed class PolicyReplay : IModbusCaptureObserver
{
    /// <summary>Out-of-spec requests are kept apart from the policy's deny reasons in <see cref="DeniedByReason"/>.</summary>
    public const int OutOfSpecReason = (int)DenyReason.None;

    private readonly CompiledPolicy _policy;
    private readonly int _listLimit;

    /// <summary>Creates a replay of <paramref name="policy"/>; lists keep the first <paramref name="listLimit"/> frames.</summary>
    public PolicyReplay(CompiledPolicy policy, ushort serverPort = 502, int listLimit = 20)
    {
        ArgumentNullException.ThrowIfNull(policy);
        _policy = policy;
        _listLimit = listLimit;
        Scanner = new ModbusCaptureScanner(this, serverPort) { GapListLimit = listLimit };
        AllowedByRule = new long[policy.RuleCount];
        ClosestRuleOfDenied = new long[policy.RuleCount + 1];
    }

    /// <summary>The policy replayed.</summary>
    public CompiledPolicy Policy => _policy;

    /// <summary>Transport-level counts: frames, segments, retransmissions, gaps.</summary>
    public ModbusCaptureScanner Scanner { get; }

    public long Requests { get; private set; }
    public long Responses { get; private set; }
    public long ExceptionResponses { get; private set; }
    public long Malformed { get; private set; }
    public long Allowed { get; private set; }
    public long Denied { get; private set; }

    /// <summary>Requests per function byte as sent.</summary>
    public long[] ByFunction { get; } = new long[256];

    /// <summary>Requests per unit id.</summary>
    public long[] ByUnit { get; } = new long[256];

    /// <summary>Exception responses per exception code.</summary>
    public long[] ExceptionsByCode { get; } = new long[256];

    /// <summary>Requests each rule allowed (first match), by rule index.</summary>
    public long[] AllowedByRule { get; }

    /// <summary>Denied requests by the rule that came closest; the last slot is "no rule for this source and unit at all".</summary>
    public long[] ClosestRuleOfDenied { get; }

    /// <summary>Denied requests by <see cref="DenyReason"/>; slot <see cref="OutOfSpecReason"/> counts out-of-spec requests.</summary>
    public long[] DeniedByReason { get; } = new long[(int)DenyReason.None + 1];

    /// <summary>Malformed ADUs by <see cref="FramingError"/>.</summary>
    public long[] MalformedByReason { get; } = new long[16];

    public List<DeniedFrame> FirstDenied { get; } = [];

    /// <summary>The most recent denial.</summary>
    public DeniedFrame LastDenied { get; private set; }
    public List<MalformedFrame> FirstMalformed { get; } = [];

    /// <summary>Replays a whole capture.</summary>
    public CaptureError Run(CaptureReader reader) => Scanner.Scan(reader);

    /// <summary>Forgets every count and connection (pooled memory is kept).</summary>
    public void Clear()
    {
        Scanner.Clear();
        Requests = Responses = ExceptionResponses = Malformed = Allowed = Denied = 0;
        Array.Clear(ByFunction);
        Array.Clear(ByUnit);
        Array.Clear(ExceptionsByCode);
        Array.Clear(AllowedByRule);
        Array.Clear(ClosestRuleOfDenied);
        Array.Clear(DeniedByReason);
        Array.Clear(MalformedByReason);
        FirstDenied.Clear();
        FirstMalformed.Clear();
    }

    /// <inheritdoc/>
    public bool OnRequest(in CaptureContext context, in ModbusTcpFrame frame, in ModbusRequest request)
    {
        Requests++;
        ByFunction[request.FunctionCode]++;
        byte unit = frame.UnitId;
        ByUnit[unit]++;
        var inspection = Inspector.Inspect(_policy, new SourceAddress(context.Client), unit, request, ToStopwatchTicks(context.TimestampNs));
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
                Remember(new DeniedFrame(context.FrameNumber, context.Client, unit, request.FunctionCode, inspection.RefusalCode, -1, DenyReason.None, request.Violation));
                break;
            default:
                // Denied, or in monitor mode would-deny.
                Denied++;
                DeniedByReason[(int)verdict.Reason]++;
                ClosestRuleOfDenied[verdict.RuleIndex >= 0 ? verdict.RuleIndex : ClosestRuleOfDenied.Length - 1]++;
                Remember(new DeniedFrame(context.FrameNumber, context.Client, unit, request.FunctionCode, inspection.RefusalCode, verdict.RuleIndex, verdict.Reason, SpecViolation.None));
                break;
        }
        // The live gateway closes the client's connection: nothing after it reaches the PLC.
        return !inspection.Closes;
    }

    /// <inheritdoc/>
    public void OnResponse(in CaptureContext context, in ModbusTcpFrame frame)
    {
        Responses++;
        if ((frame.FunctionCode & 0x80) != 0)
        {
            ExceptionResponses++;
            if (frame.Pdu.Length >= 2)
            {
                ExceptionsByCode[frame.Pdu[1]]++;
            }
        }
    }

    /// <inheritdoc/>
    public void OnMalformed(in CaptureContext context, bool isRequest, FramingError reason, short unitId, short functionCode)
    {
        Malformed++;
        MalformedByReason[(int)reason & 15]++;
        if (FirstMalformed.Count < _listLimit)
        {
            FirstMalformed.Add(new MalformedFrame(context.FrameNumber, isRequest, reason, unitId, functionCode));
        }
    }

    private void Remember(DeniedFrame denied)
    {
        LastDenied = denied;
        if (FirstDenied.Count < _listLimit)
        {
            FirstDenied.Add(denied);
        }
    }

    /// <summary>Capture nanoseconds as <see cref="Stopwatch"/> ticks, the clock of rate buckets and maintenance.</summary>
    private static long ToStopwatchTicks(long nanoseconds) => Stopwatch.Frequency == 1_000_000_000
        ? nanoseconds
        : (long)((Int128)nanoseconds * Stopwatch.Frequency / 1_000_000_000);
}
