using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Policy.Replay;

/// <summary>
/// What a policy change does to real traffic (<c>edgeshield check --against CAPTURE --baseline OLD</c>):
/// every request of a capture is decided by the old and the new policy side by side, and the
/// requests the old one allowed but the new one denies (and the reverse) are counted and listed.
/// Without a baseline every request the new policy denies counts as newly denied.
/// </summary>
public sealed class PolicyDiff : IModbusCaptureObserver
{
    private readonly int _listLimit;

    public PolicyDiff(CompiledPolicy after, CompiledPolicy? before, ushort serverPort = 502, int listLimit = 20)
    {
        ArgumentNullException.ThrowIfNull(after);
        After = new PolicyReplay(after, serverPort, listLimit);
        Before = before is null ? null : new PolicyReplay(before, serverPort, listLimit);
        Scanner = new ModbusCaptureScanner(this, serverPort);
        _listLimit = listLimit;
    }

    public PolicyReplay After { get; }
    public PolicyReplay? Before { get; }
    public ModbusCaptureScanner Scanner { get; }
    public long NewlyDenied { get; private set; }
    public long NewlyAllowed { get; private set; }
    public List<DeniedFrame> FirstNewlyDenied { get; } = [];

    public CaptureError Run(CaptureReader reader) => Scanner.Scan(reader);

    /// <inheritdoc/>
    public bool OnRequest(in CaptureContext context, in ModbusTcpFrame frame, in ModbusRequest request)
    {
        long deniedBefore = Before?.Denied ?? 0;
        long deniedAfter = After.Denied;
        bool continueBefore = Before?.OnRequest(context, frame, request) ?? true;
        bool continueAfter = After.OnRequest(context, frame, request);
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
        // A stream both policies would close ends; one only the new policy closes is still read for the old.
        return continueBefore || continueAfter;
    }

    /// <inheritdoc/>
    public void OnResponse(in CaptureContext context, in ModbusTcpFrame frame)
    {
        Before?.OnResponse(context, frame);
        After.OnResponse(context, frame);
    }

    /// <inheritdoc/>
    public void OnMalformed(in CaptureContext context, bool isRequest, FramingError reason, short unitId, short functionCode)
    {
        Before?.OnMalformed(context, isRequest, reason, unitId, functionCode);
        After.OnMalformed(context, isRequest, reason, unitId, functionCode);
    }
}
