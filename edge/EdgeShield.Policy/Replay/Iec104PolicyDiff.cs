using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Policy.Replay;

/// <summary>
/// <see cref="PolicyDiff"/> for IEC 104 streams (<c>edgeshield check --against CAPTURE --baseline OLD</c> with a
/// <c>protocol: iec104</c> listener): every client ASDU of a capture is judged by the old and the new policy side by
/// side, each with its own connections, selects, outstanding commands and rate buckets (<see cref="Iec104PolicyReplay"/>);
/// the ASDUs the old one allowed but the new one refuses (or never reads, its connection closed), and the reverse,
/// are counted per rule and type and the first ones listed. Without a baseline every ASDU the new policy refuses
/// counts as newly denied; a connection the new policy refuses before STARTDT is listed once.
/// </summary>
public sealed class Iec104PolicyDiff : IIec104CaptureObserver
{
    private readonly int _listLimit;

    public Iec104PolicyDiff(CompiledPolicy after, CompiledPolicy? before, ushort serverPort = 2404, int listLimit = 20, ListenerLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(after);
        After = new Iec104PolicyReplay(after, serverPort, listLimit, limits);
        Before = before is null ? null : new Iec104PolicyReplay(before, serverPort, listLimit, limits);
        Scanner = new Iec104CaptureScanner(this, serverPort);
        _listLimit = listLimit;
    }

    public Iec104PolicyReplay After { get; }
    public Iec104PolicyReplay? Before { get; }
    public Iec104CaptureScanner Scanner { get; }

    /// <summary>ASDUs (and refused connections) the old policy allowed and the new one refuses.</summary>
    public long NewlyDenied { get; private set; }

    /// <summary>ASDUs the old policy refused and the new one allows.</summary>
    public long NewlyAllowed { get; private set; }

    /// <summary>Newly denied ASDUs per type octet.</summary>
    public long[] NewlyDeniedByType { get; } = new long[256];

    /// <summary>Newly denied ASDUs by the new policy's closest rule (last slot: no rule, a pending limit, or a closed connection).</summary>
    public long[]? NewlyDeniedByRule { get; private set; }

    /// <summary>Newly allowed ASDUs by the new policy's allowing rule.</summary>
    public long[]? NewlyAllowedByRule { get; private set; }

    public List<Iec104DeniedFrame> FirstNewlyDenied { get; } = [];

    public CaptureError Run(CaptureReader reader) => Scanner.Scan(reader);

    /// <inheritdoc/>
    public bool OnRequest(in CaptureContext context, in Iec104Apdu apdu, in Iec104Asdu asdu)
    {
        NewlyDeniedByRule ??= new long[After.Policy.RuleNames.Count + 1];
        NewlyAllowedByRule ??= new long[After.Policy.RuleNames.Count];
        long connectionsDeniedBefore = Before?.ConnectionsDenied ?? 0;
        long connectionsDeniedAfter = After.ConnectionsDenied;
        var before = Before?.Judge(context, apdu, asdu) ?? Iec104ReplayOutcome.NotARequest;
        var after = After.Judge(context, apdu, asdu);
        bool connectionRefused = After.ConnectionsDenied > connectionsDeniedAfter && (Before is null || Before.ConnectionsDenied == connectionsDeniedBefore);
        if (connectionRefused)
        {
            Newly(After.LastDenied, -1);
        }
        if (apdu.Format == Iec104Format.I && !connectionRefused)
        {
            if (Before is null)
            {
                if (after == Iec104ReplayOutcome.Denied)
                {
                    NewlyDeniedByType[asdu.Type]++;
                    Newly(After.LastDenied, After.LastDenied.RuleIndex);
                }
            }
            else if (before == Iec104ReplayOutcome.Allowed && after == Iec104ReplayOutcome.Denied)
            {
                NewlyDeniedByType[asdu.Type]++;
                Newly(After.LastDenied, After.LastDenied.RuleIndex);
            }
            else if (before == Iec104ReplayOutcome.Allowed && after == Iec104ReplayOutcome.NotARequest)
            {
                // The new policy closed this connection earlier: the gateway never reads this ASDU.
                NewlyDeniedByType[asdu.Type]++;
                Newly(new Iec104DeniedFrame(context.FrameNumber, context.Client, Iec104DenialKind.Connection, asdu.Type, asdu.Cause, asdu.CommonAddress, asdu.FirstIoa,
                    -1, DenyReason.SourceOrUnit, 0), -1);
            }
            else if (after == Iec104ReplayOutcome.Allowed && before is Iec104ReplayOutcome.Denied or Iec104ReplayOutcome.NotARequest)
            {
                NewlyAllowed++;
                NewlyAllowedByRule[After.LastAllowedRule]++;
            }
        }
        // A stream both policies would close ends; one only the new policy closes is still read for the old.
        return !After.IsClosed(context) || (Before is not null && !Before.IsClosed(context));
    }

    private void Newly(Iec104DeniedFrame denied, int rule)
    {
        NewlyDenied++;
        NewlyDeniedByRule![rule >= 0 ? rule : NewlyDeniedByRule.Length - 1]++;
        if (FirstNewlyDenied.Count < _listLimit)
        {
            FirstNewlyDenied.Add(denied);
        }
    }

    /// <inheritdoc/>
    public void OnResponse(in CaptureContext context, in Iec104Apdu apdu, in Iec104Asdu asdu)
    {
        Before?.OnResponse(context, apdu, asdu);
        After.OnResponse(context, apdu, asdu);
    }

    /// <inheritdoc/>
    public void OnMalformed(in CaptureContext context, bool isRequest, Protocols.FrameFault fault)
    {
        Before?.OnMalformed(context, isRequest, fault);
        After.OnMalformed(context, isRequest, fault);
    }
}
