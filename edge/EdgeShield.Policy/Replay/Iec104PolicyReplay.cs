using System.Diagnostics;
using EdgeShield.Protocols;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Policy.Replay;

/// <summary>What one IEC 104 refusal was: a connection refused before STARTDT (<see cref="Type"/> -1), a command the policy refused, or a command refused because too many were outstanding.</summary>
public enum Iec104DenialKind : byte
{
    /// <summary>No rule names the source: the gateway closes the connection before STARTDT.</summary>
    Connection = 0,
    /// <summary>The policy refused the ASDU (<see cref="Iec104DeniedFrame.Reason"/>, <see cref="Iec104DeniedFrame.Cause"/>).</summary>
    Policy,
    /// <summary>Allowed, but the connection already had <c>pending-per-connection</c> commands unanswered.</summary>
    PendingLimit,
}

/// <summary>One refused IEC 104 request, for the report's list of first denials.</summary>
public readonly record struct Iec104DeniedFrame(int FrameNumber, UInt128 Source, Iec104DenialKind Kind, short Type, byte RequestCause, ushort CommonAddress, uint Ioa, short RuleIndex, DenyReason Reason, byte Cause);

/// <summary>One malformed IEC 104 APDU, for the report's list.</summary>
public readonly record struct Iec104MalformedFrame(int FrameNumber, bool IsRequest, Iec104FrameError Error, string? Detail);

/// <summary>What <see cref="Iec104PolicyReplay.Judge"/> made of one client APDU.</summary>
public enum Iec104ReplayOutcome : byte
{
    /// <summary>Not an ASDU (S- or U-frame), or an ASDU of a connection the gateway already closed: not a request.</summary>
    NotARequest = 0,
    /// <summary>Forwarded to the station (allowed).</summary>
    Allowed,
    /// <summary>Refused (or, in monitor mode, would be).</summary>
    Denied,
    /// <summary>Malformed: the connection is closed.</summary>
    Malformed,
}

/// <summary>
/// Runs the IEC 104 traffic of a capture through a compiled <c>protocol: iec104</c> policy with the live session's
/// own decisions (<see cref="Inspector.InspectIec104Connect"/>, <see cref="Inspector.InspectIec104"/>), per connection:
/// the first APDU of a connection judges its source (no rule for it: closed before STARTDT); every ASDU the client
/// sends is a request, judged with that connection's <see cref="Iec104Selects"/> and the capture's timestamps (so
/// select-before-operate arms on the station's positive actcon as seen in the capture, and rate rules see the
/// capture's pace); a forwarded command or read is kept in the connection's <see cref="Iec104Commands"/> (the live
/// session's table: <c>pending-per-connection</c>, <c>response-timeout</c>, t1 for the termination) and the station's
/// confirmations and terminations are matched to it as the live session matches them: one that answers no
/// outstanding command is counted in <see cref="UnmatchedResponses"/> (the gateway drops it).
/// </summary>
/// <remarks>
/// Counts per type name, cause, common address and rule, of the client's ASDUs (requests) and of the station's.
/// Malformed (framing, APCI, ASDU, or a U function only a station sends) ends the client's direction, as the gateway
/// closes; so does a refusal under <c>on-deny: close</c>. Not modelled: sequence numbers and STARTDT (a capture
/// usually starts inside a connection, its N(S) far from 0; each leg of the gateway numbers its own frames anyway),
/// k/w windows and the t1/t3 supervision (the capture holds what the peers did). After warm-up (a first run, then
/// <see cref="Clear"/>), a run allocates nothing per frame.
/// </remarks>
public sealed class Iec104PolicyReplay : IIec104CaptureObserver
{
    /// <summary>A <see cref="DeniedByReason"/> slot for refusals by <c>pending-per-connection</c>.</summary>
    public const int PendingLimitReason = (int)DenyReason.None;

    private readonly CompiledPolicy _policy;
    private readonly int _listLimit;
    private readonly int _pendingPerConnection;
    private readonly long _responseTimeoutTicks;
    private readonly long _terminationWaitTicks;
    private readonly Dictionary<ConnectionKey, Connection> _connections = [];
    private readonly Stack<Connection> _pool = new();
    private readonly byte[] _expired = new byte[Iec104Commands.MaxAsdu];

    /// <param name="policy">The listener's policy (<c>protocol: iec104</c>).</param>
    /// <param name="serverPort">The station's port (2404).</param>
    /// <param name="listLimit">How many denied and malformed frames are kept for the report.</param>
    /// <param name="limits">The listener's limits (<c>pending-per-connection</c>, <c>response-timeout</c>, <c>t1</c>); defaults when null.</param>
    public Iec104PolicyReplay(CompiledPolicy policy, ushort serverPort = 2404, int listLimit = 20, ListenerLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(policy);
        _policy = policy;
        _listLimit = listLimit;
        limits ??= new ListenerLimits();
        _pendingPerConnection = limits.PendingPerConnection;
        _responseTimeoutTicks = ToTicks(limits.ResponseTimeout);
        _terminationWaitTicks = ToTicks(limits.T1);
        Scanner = new Iec104CaptureScanner(this, serverPort);
        AllowedByRule = new long[policy.RuleNames.Count];
        ClosestRuleOfDenied = new long[policy.RuleNames.Count + 1];
    }

    public CompiledPolicy Policy => _policy;
    public Iec104CaptureScanner Scanner { get; }

    /// <summary>Client connections whose source was judged (their first APDU was read).</summary>
    public long Connections { get; private set; }

    /// <summary>Connections closed before STARTDT: no rule names their source (in monitor mode: would be).</summary>
    public long ConnectionsDenied { get; private set; }

    /// <summary>ASDUs (I-frames) the client sent on a connection still open: every one is judged; <c>allowed + denied = requests</c>.</summary>
    public long Requests { get; private set; }
    public long Allowed { get; private set; }
    public long Denied { get; private set; }

    /// <summary>S- and U-frames of the client (not requests; the gateway answers them on the client's leg).</summary>
    public long ClientControlFrames { get; private set; }

    /// <summary>ASDUs the client sent after its connection was closed by a refusal (<c>on-deny: close</c>, a refused source): never read by the gateway.</summary>
    public long NotRead { get; private set; }

    /// <summary>ASDUs (I-frames) of the station.</summary>
    public long Responses { get; private set; }

    /// <summary>S- and U-frames of the station.</summary>
    public long StationControlFrames { get; private set; }

    /// <summary>Confirmations and terminations of the station (cause 7, 9, 10, negative 44-47) that matched a command outstanding on their connection.</summary>
    public long MatchedResponses { get; private set; }

    /// <summary>Confirmations and terminations that answered no outstanding command: the gateway drops them (<c>unmatched-response</c>).</summary>
    public long UnmatchedResponses { get; private set; }

    /// <summary>Station ASDUs of a type the gateway cannot check: dropped (<c>response-mismatch</c>).</summary>
    public long UncheckableResponses { get; private set; }

    /// <summary>Commands the station did not confirm within <c>response-timeout</c> (the gateway answers them negatively).</summary>
    public long ResponseTimeouts { get; private set; }

    /// <summary>Selects the station confirmed positively (each arms one execute under select-before-operate).</summary>
    public long SelectsConfirmed { get; private set; }

    public long Malformed { get; private set; }

    /// <summary>Requests per type octet.</summary>
    public long[] ByType { get; } = new long[256];

    /// <summary>Requests per cause of transmission (bits 0-5).</summary>
    public long[] ByCause { get; } = new long[64];

    /// <summary>Requests per common address (65535: global).</summary>
    public long[] ByCommonAddress { get; } = new long[65536];

    /// <summary>Station ASDUs per type octet.</summary>
    public long[] ResponsesByType { get; } = new long[256];

    /// <summary>Station ASDUs per cause (bits 0-5).</summary>
    public long[] ResponsesByCause { get; } = new long[64];

    /// <summary>Station ASDUs with P/N = 1, per cause.</summary>
    public long[] NegativeResponsesByCause { get; } = new long[64];

    /// <summary>Station ASDUs per common address.</summary>
    public long[] ResponsesByCommonAddress { get; } = new long[65536];

    /// <summary>Requests each rule allowed (first match), by rule index.</summary>
    public long[] AllowedByRule { get; }

    /// <summary>Denied requests by the rule that came closest; the last slot is "no rule for this source", and pending-limit refusals.</summary>
    public long[] ClosestRuleOfDenied { get; }

    /// <summary>Denied requests by <see cref="DenyReason"/>; slot <see cref="PendingLimitReason"/> counts pending-per-connection refusals.</summary>
    public long[] DeniedByReason { get; } = new long[(int)DenyReason.None + 1];

    /// <summary>Denied requests by the cause of the negative confirmation the gateway answers (44, 46, 47, 7, 9, 5).</summary>
    public long[] DeniedByRefusalCause { get; } = new long[64];

    public List<Iec104DeniedFrame> FirstDenied { get; } = [];

    /// <summary>The rule that allowed the most recent allowed request.</summary>
    public int LastAllowedRule { get; private set; }

    /// <summary>The most recent denial.</summary>
    public Iec104DeniedFrame LastDenied { get; private set; }

    public List<Iec104MalformedFrame> FirstMalformed { get; } = [];

    /// <summary>Replays a whole capture.</summary>
    public CaptureError Run(CaptureReader reader) => Scanner.Scan(reader);

    /// <summary>The key a common address is reported under: its number, or <c>global</c>.</summary>
    public static string CommonAddressWord(int commonAddress) => commonAddress == Iec104Command.GlobalAddress
        ? "global"
        : commonAddress.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Forgets every count and connection.</summary>
    public void Clear()
    {
        Scanner.Clear();
        foreach (var connection in _connections.Values)
        {
            connection.Reset(_expired);
            _pool.Push(connection);
        }
        _connections.Clear();
        Connections = ConnectionsDenied = Requests = Allowed = Denied = ClientControlFrames = NotRead = 0;
        Responses = StationControlFrames = MatchedResponses = UnmatchedResponses = UncheckableResponses = ResponseTimeouts = SelectsConfirmed = Malformed = 0;
        Array.Clear(ByType);
        Array.Clear(ByCause);
        Array.Clear(ByCommonAddress);
        Array.Clear(ResponsesByType);
        Array.Clear(ResponsesByCause);
        Array.Clear(NegativeResponsesByCause);
        Array.Clear(ResponsesByCommonAddress);
        Array.Clear(AllowedByRule);
        Array.Clear(ClosestRuleOfDenied);
        Array.Clear(DeniedByReason);
        Array.Clear(DeniedByRefusalCause);
        FirstDenied.Clear();
        FirstMalformed.Clear();
    }

    /// <inheritdoc/>
    public bool OnRequest(in CaptureContext context, in Iec104Apdu apdu, in Iec104Asdu asdu)
    {
        Judge(context, apdu, asdu);
        return !IsClosed(context);
    }

    /// <summary>True when the gateway has closed this connection (a refusal that closes, a malformed frame).</summary>
    public bool IsClosed(in CaptureContext context) => _connections.TryGetValue(Key(context), out var c) && c.Closed;

    /// <summary>Judges one client APDU as the live session does; what it came to.</summary>
    public Iec104ReplayOutcome Judge(in CaptureContext context, in Iec104Apdu apdu, in Iec104Asdu asdu)
    {
        var connection = ConnectionOf(context);
        if (connection.Closed)
        {
            NotRead += apdu.Format == Iec104Format.I ? 1 : 0;
            return Iec104ReplayOutcome.NotARequest;
        }
        long now = ToStopwatchTicks(context.TimestampNs);
        var source = new SourceAddress(context.Client);
        if (!connection.Judged)
        {
            connection.Judged = true;
            Connections++;
            var connect = Inspector.InspectIec104Connect(_policy, source);
            if (!connect.Forwards || connect.Kind == InspectionKind.WouldDeny)
            {
                ConnectionsDenied++;
                Remember(new Iec104DeniedFrame(context.FrameNumber, context.Client, Iec104DenialKind.Connection, -1, 0, 0, 0, -1, DenyReason.SourceOrUnit, 0));
            }
            if (!connect.Forwards)
            {
                connection.Closed = true;
                NotRead += apdu.Format == Iec104Format.I ? 1 : 0;
                return Iec104ReplayOutcome.NotARequest;
            }
        }
        if (apdu.Format == Iec104Format.U && apdu.UFunction is not (Iec104UFunction.StartDtAct or Iec104UFunction.StopDtAct or Iec104UFunction.TestFrAct or Iec104UFunction.TestFrCon))
        {
            // STARTDT con / STOPDT con from the client: only a station sends them; the session closes.
            connection.Closed = true;
            OnMalformed(context, isRequest: true, Iec104FrameError.None, "the client sent " + Iec104UFunctions.Name(apdu.UFunction) + ", which only a station sends");
            return Iec104ReplayOutcome.Malformed;
        }
        if (apdu.Format != Iec104Format.I)
        {
            ClientControlFrames++;
            return Iec104ReplayOutcome.NotARequest;
        }
        ExpireCommands(connection, now);
        Requests++;
        ByType[asdu.Type]++;
        ByCause[asdu.Cause]++;
        ByCommonAddress[asdu.CommonAddress]++;
        var inspection = Inspector.InspectIec104(_policy, source, asdu, connection.Selects, now);
        var verdict = inspection.Verdict;
        ulong point = asdu.IsCommand ? Iec104Command.PointOf(asdu) : Iec104Command.NoKey;
        if (asdu.IsCommand && !asdu.IsSelect)
        {
            // As the live session: any judged execute ends its object's selection.
            connection.Selects.EndSelection(point);
        }
        if (inspection.Kind == InspectionKind.Denied)
        {
            Deny(context, asdu, Iec104DenialKind.Policy, verdict, inspection.RefusalCode);
            connection.Closed = inspection.Closes;
            return Iec104ReplayOutcome.Denied;
        }
        bool tracked = Iec104Commands.Tracks(asdu);
        bool select = tracked && asdu.IsSelect && _policy.RequiresSelect(verdict.RuleIndex);
                if (tracked && !connection.Commands.TryAdd(asdu, select, now + _responseTimeoutTicks))
        {
            byte cause = Iec104Refusals.ConfirmationCause(asdu.Cause);
            Deny(context, asdu, Iec104DenialKind.PendingLimit, new Verdict(VerdictKind.Deny, DenyReason.None, -1), cause);
            return Iec104ReplayOutcome.Denied;
        }
        if (inspection.Kind == InspectionKind.WouldDeny)
        {
            Deny(context, asdu, Iec104DenialKind.Policy, verdict, inspection.RefusalCode);
            return Iec104ReplayOutcome.Denied;
        }
        if (asdu.IsSelect && _policy.RequiresSelect(verdict.RuleIndex))
        {
            connection.Selects.Selected(Iec104Command.KeyOf(asdu), point, now);
        }
        Allowed++;
        AllowedByRule[verdict.RuleIndex]++;
        LastAllowedRule = verdict.RuleIndex;
        return Iec104ReplayOutcome.Allowed;
    }

    /// <inheritdoc/>
    public void OnResponse(in CaptureContext context, in Iec104Apdu apdu, in Iec104Asdu asdu)
    {
        if (apdu.Format != Iec104Format.I)
        {
            StationControlFrames++;
            return;
        }
        Responses++;
        ResponsesByType[asdu.Type]++;
        ResponsesByCause[asdu.Cause]++;
        ResponsesByCommonAddress[asdu.CommonAddress]++;
        if (asdu.Negative)
        {
            NegativeResponsesByCause[asdu.Cause]++;
        }
        if (asdu.Status != Iec104AsduStatus.WellFormed)
        {
            UncheckableResponses++;
            return;
        }
        var connection = ConnectionOf(context);
        long now = ToStopwatchTicks(context.TimestampNs);
        ExpireCommands(connection, now);
        byte cause = asdu.Cause;
        if (Iec104Causes.IsAnswer(cause, asdu.Negative))
        {
            if (!connection.Commands.TryMatch(asdu.Type, cause, asdu.Negative, asdu.CommonAddress, asdu.FirstIoa, now, _terminationWaitTicks, out var command))
            {
                UnmatchedResponses++;
                return;
            }
            MatchedResponses++;
            if (command.IsSelect && cause == Iec104Causes.ActivationConfirmation)
            {
                connection.Selects.Confirmed(command.CommandKey, positive: !asdu.Negative, now);
                SelectsConfirmed += asdu.Negative ? 0 : 1;
            }
        }
        else if (cause == Iec104Causes.Request)
        {
            connection.Commands.ReadAnswered(asdu.CommonAddress, asdu.FirstIoa);
        }
    }

    /// <inheritdoc/>
    public void OnMalformed(in CaptureContext context, bool isRequest, FrameFault fault) =>
        OnMalformed(context, isRequest, (Iec104FrameError)fault.Detail, null);

    private void OnMalformed(in CaptureContext context, bool isRequest, Iec104FrameError error, string? detail)
    {
        Malformed++;
        if (FirstMalformed.Count < _listLimit)
        {
            FirstMalformed.Add(new Iec104MalformedFrame(context.FrameNumber, isRequest, error, detail));
        }
    }

    /// <summary>The connection's commands the station did not confirm in time: the gateway answers them itself.</summary>
    private void ExpireCommands(Connection connection, long now)
    {
        while (connection.Commands.TryTakeExpired(now, out var expired, _expired))
        {
            ResponseTimeouts += expired.Confirmed ? 0 : 1;
        }
    }

    private void Deny(in CaptureContext context, in Iec104Asdu asdu, Iec104DenialKind kind, Verdict verdict, byte cause)
    {
        Denied++;
        DeniedByRefusalCause[cause & 0x3F]++;
        if (kind == Iec104DenialKind.PendingLimit)
        {
            DeniedByReason[PendingLimitReason]++;
            ClosestRuleOfDenied[^1]++;
        }
        else
        {
            DeniedByReason[(int)verdict.Reason]++;
            ClosestRuleOfDenied[verdict.RuleIndex >= 0 ? verdict.RuleIndex : ClosestRuleOfDenied.Length - 1]++;
        }
        Remember(new Iec104DeniedFrame(context.FrameNumber, context.Client, kind, asdu.Type, asdu.Cause, asdu.CommonAddress, asdu.FirstIoa,
            (short)verdict.RuleIndex, verdict.Reason, cause));
    }

    private void Remember(Iec104DeniedFrame denied)
    {
        LastDenied = denied;
        if (FirstDenied.Count < _listLimit)
        {
            FirstDenied.Add(denied);
        }
    }

    private Connection ConnectionOf(in CaptureContext context)
    {
        var key = Key(context);
        if (!_connections.TryGetValue(key, out var connection))
        {
            connection = _pool.Count > 0 ? _pool.Pop() : new Connection(_pendingPerConnection);
            _connections.Add(key, connection);
        }
        return connection;
    }

    private static ConnectionKey Key(in CaptureContext context) => new(context.Client, context.Server, context.ClientPort, context.ServerPort);

    private static long ToTicks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    /// <summary>Capture nanoseconds as Stopwatch ticks, the clock of rate buckets and select-timeout.</summary>
    internal static long ToStopwatchTicks(long nanoseconds) => Stopwatch.Frequency == 1_000_000_000
        ? nanoseconds
        : (long)((Int128)nanoseconds * Stopwatch.Frequency / 1_000_000_000);

    private readonly record struct ConnectionKey(UInt128 Client, UInt128 Server, ushort ClientPort, ushort ServerPort);

    private sealed class Connection(int pending)
    {
        public readonly Iec104Selects Selects = new();
        public readonly Iec104Commands Commands = new(pending);
        public bool Judged;
        public bool Closed;

        /// <summary>Forgets the connection's state for reuse (pooled: a replay run again allocates nothing per connection).</summary>
        public void Reset(byte[] scratch)
        {
            Selects.Clear();
            while (Commands.TryTakeExpired(long.MaxValue, out _, scratch))
            {
            }
            Judged = false;
            Closed = false;
        }
    }
}
