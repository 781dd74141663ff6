using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Policy.Replay;

/// <summary>
/// <see cref="PolicyDiff"/> for S7 streams (<c>edgeshield check --against CAPTURE --baseline OLD</c> with a
/// <c>protocol: s7comm</c> listener): every COTP connect and S7 request of a capture is decided by the old and
/// the new policy side by side (each with its own rate buckets); the requests the old one allowed but the new
/// one denies, and the reverse, are counted and the first ones listed. Without a baseline every request the
/// new policy denies counts as newly denied.
/// </summary>
public sealed class S7PolicyDiff : IS7CaptureObserver
{
    private readonly int _listLimit;

    public S7PolicyDiff(CompiledPolicy after, CompiledPolicy? before, ushort serverPort = 102, int listLimit = 20)
    {
        ArgumentNullException.ThrowIfNull(after);
        After = new S7PolicyReplay(after, serverPort, listLimit);
        Before = before is null ? null : new S7PolicyReplay(before, serverPort, listLimit);
        Scanner = new S7CaptureScanner(this, serverPort);
        _listLimit = listLimit;
    }

    public S7PolicyReplay After { get; }
    public S7PolicyReplay? Before { get; }
    public S7CaptureScanner Scanner { get; }
    public long NewlyDenied { get; private set; }
    public long NewlyAllowed { get; private set; }
    public List<S7DeniedFrame> FirstNewlyDenied { get; } = [];

    public CaptureError Run(CaptureReader reader) => Scanner.Scan(reader);

    /// <inheritdoc/>
    public bool OnConnect(in CaptureContext context, in CotpTpdu request)
    {
        long deniedBefore = Before?.Denied ?? 0;
        long deniedAfter = After.Denied;
        bool continueBefore = Before?.OnConnect(context, request) ?? true;
        bool continueAfter = After.OnConnect(context, request);
        Compare(deniedBefore, deniedAfter);
        return continueBefore || continueAfter;
    }

    /// <inheritdoc/>
    public bool OnRequest(in CaptureContext context, S7Connection connection, bool plus, in S7Request request)
    {
        long deniedBefore = Before?.Denied ?? 0;
        long deniedAfter = After.Denied;
        bool continueBefore = Before?.OnRequest(context, connection, plus, request) ?? true;
        bool continueAfter = After.OnRequest(context, connection, plus, request);
        Compare(deniedBefore, deniedAfter);
        // A stream both policies would close ends; one only the new policy closes is still read for the old.
        return continueBefore || continueAfter;
    }

    private void Compare(long deniedBefore, long deniedAfter)
    {
        bool wasDenied = Before is not null && Before.Denied > deniedBefore;
        bool isDenied = After.Denied > deniedAfter;
        if (isDenied && !wasDenied)
        {
            NewlyDenied++;
            if (FirstNewlyDenied.Count < _listLimit)
            {
                FirstNewlyDenied.Add(After.LastDenied);
            }
        }
        else if (wasDenied && !isDenied)
        {
            NewlyAllowed++;
        }
    }

    /// <inheritdoc/>
    public void OnResponse(in CaptureContext context, in S7Header header)
    {
        Before?.OnResponse(context, header);
        After.OnResponse(context, header);
    }

    /// <inheritdoc/>
    public void OnMalformed(in CaptureContext context, bool isRequest, S7CaptureFault fault, S7FramingError framing, S7RequestError request)
    {
        Before?.OnMalformed(context, isRequest, fault, framing, request);
        After.OnMalformed(context, isRequest, fault, framing, request);
    }
}
