using EdgeShield.Protocols.Iec104;
using EdgeShield.Protocols.Modbus;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Policy;

/// <summary>What an inspected request comes to.</summary>
public enum InspectionKind : byte
{
    /// <summary>A rule allows it: forwarded.</summary>
    Allowed = 0,
    /// <summary>Monitor mode: the policy would refuse it; forwarded, audited as would-deny.</summary>
    WouldDeny,
    /// <summary>The policy refuses it (no rule for the source, or the closest rule's reason).</summary>
    Denied,
    /// <summary>Well framed but with values the protocol forbids: never forwarded, in any mode.</summary>
    OutOfSpec,
    /// <summary>The framing is lost: never forwarded, never answered, the connection is closed.</summary>
    Malformed,
    /// <summary>
    /// S7: the client's Ack or Ack_Data to a job the PLC sent it (a download's download-block): not a request the
    /// policy judges; relayed when it answers a job the PLC sent, else dropped.
    /// </summary>
    Answer,
}

/// <summary>
/// The decision about one request: what it comes to, the verdict behind it (rule and reason), how a
/// refusal is made (<see cref="OnDeny"/>, already adjusted for monitor mode) and the protocol's refusal
/// code (a Modbus exception code). Allocates nothing.
/// </summary>
public readonly record struct Inspection(InspectionKind Kind, Verdict Verdict, OnDeny OnDeny, byte RefusalCode)
{
    /// <summary>Forwarded to the PLC: allowed, or monitor mode's would-deny.</summary>
    public bool Forwards => Kind is InspectionKind.Allowed or InspectionKind.WouldDeny;

    /// <summary>The client's connection is closed after this request (malformed, or a refusal with <c>on-deny: close</c>).</summary>
    public bool Closes => Kind == InspectionKind.Malformed || (!Forwards && OnDeny == OnDeny.Close);
}

/// <summary>
/// The order in which a request is judged, written once: the live gateway's session and <c>replay</c>
/// both ask it (DESIGN.md "Which refusal a request gets"). Pure: no I/O, no audit; only the rate
/// buckets of the policy's rules change.
/// </summary>
public static class Inspector
{
    /// <summary>
    /// Judges one decoded Modbus request of <paramref name="source"/> to <paramref name="unit"/> at
    /// <paramref name="timestamp"/> (<see cref="System.Diagnostics.Stopwatch"/> ticks).
    /// </summary>
    /// <remarks>
    /// Malformed closes. Source and unit come before the request's values, so a source no rule names gets
    /// exactly what the policy gives it (0A, nothing, or a close), never an answer about its bytes; then
    /// out-of-spec values, refused in every mode (monitor lets policy refusals through, not invalid requests,
    /// and answers them with the spec's exception so that learning does not change the plant's traffic); then
    /// the rules. A well-formed request needs no separate look at the source: Evaluate answers an unnamed one 0A.
    /// </remarks>
    public static Inspection Inspect(CompiledPolicy policy, SourceAddress source, byte unit, in ModbusRequest request, long timestamp)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var unnamed = new Verdict(VerdictKind.Deny, DenyReason.SourceOrUnit, -1);
        if (request.Status == RequestStatus.Malformed)
        {
            return new Inspection(InspectionKind.Malformed, unnamed, OnDeny.Close, 0);
        }
        bool monitor = policy.Mode == PolicyMode.Monitor;
        if (request.Status == RequestStatus.OutOfSpec)
        {
            if (!monitor && !policy.NamesSourceAndUnit(source, unit))
            {
                return new Inspection(InspectionKind.Denied, unnamed, policy.OnDeny, unnamed.ExceptionCode);
            }
            return new Inspection(InspectionKind.OutOfSpec, new Verdict(VerdictKind.Deny, DenyReason.None, -1),
                monitor ? OnDeny.Exception : policy.OnDeny, request.SpecExceptionCode);
        }
        var verdict = policy.Evaluate(source, unit, request, timestamp);
        if (verdict.IsAllowed)
        {
            return new Inspection(InspectionKind.Allowed, verdict, policy.OnDeny, 0);
        }
        return monitor
            ? new Inspection(InspectionKind.WouldDeny, verdict, policy.OnDeny, verdict.ExceptionCode)
            : new Inspection(InspectionKind.Denied, verdict, policy.OnDeny, verdict.ExceptionCode);
    }

    /// <summary>
    /// Judges an S7 COTP connect (CR) of <paramref name="source"/> asking for <paramref name="connection"/>
    /// (DESIGN.md "S7comm"): refused unless some rule (a disarmed maintenance rule too) names the source and
    /// the connection type; monitor mode lets every connect through. A refused connect always ends the
    /// connection (<c>on-deny: exception</c> answers a COTP DR first, <c>drop</c> and <c>close</c> close).
    /// </summary>
    public static Inspection InspectConnect(CompiledPolicy policy, SourceAddress source, S7Connection connection)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (policy.Mode == PolicyMode.Monitor || policy.NamesSourceAndConnection(source, connection))
        {
            return new Inspection(InspectionKind.Allowed, Verdict.Allow(-1), policy.OnDeny, 0);
        }
        return new Inspection(InspectionKind.Denied, new Verdict(VerdictKind.Deny, DenyReason.SourceOrUnit, -1), OnDeny.Close, 0);
    }

    /// <summary>
    /// Judges one reassembled S7 PDU the client sent on a connection of type <paramref name="connection"/>
    /// (<paramref name="plus"/>: the connect asked for an S7comm-Plus TSAP), in the live S7 session's order:
    /// malformed closes; S7comm-Plus (the PDU's protocol id or the connection's TSAP) is judged as a whole by the
    /// <c>s7comm-plus</c> word and a refusal closes (no third party can answer it); an Ack/Ack_Data is the
    /// client's <see cref="InspectionKind.Answer"/> to a PLC job; out of spec is refused in every mode (a source
    /// and connection type no rule names gets the policy's refusal instead); then the rules.
    /// </summary>
    /// <remarks><see cref="Inspection.RefusalCode"/> is 0: an S7 refusal's bytes depend on the job (DESIGN.md "S7comm").</remarks>
    public static Inspection InspectS7(CompiledPolicy policy, SourceAddress source, S7Connection connection, bool plus, in S7Request request, long timestamp)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var unnamed = new Verdict(VerdictKind.Deny, DenyReason.SourceOrUnit, -1);
        if (request.Status == S7RequestStatus.Malformed && !(request.Rosctr is S7Rosctr.Ack or S7Rosctr.AckData))
        {
            return new Inspection(InspectionKind.Malformed, unnamed, OnDeny.Close, 0);
        }
        bool monitor = policy.Mode == PolicyMode.Monitor;
        if (request.Protocol == S7Protocol.S7commPlus || plus)
        {
            var plusVerdict = policy.Evaluate(source, new S7Target(connection, request), timestamp);
            if (plusVerdict.IsAllowed)
            {
                return new Inspection(InspectionKind.Allowed, plusVerdict, policy.OnDeny, 0);
            }
            return monitor
                ? new Inspection(InspectionKind.WouldDeny, plusVerdict, policy.OnDeny, 0)
                : new Inspection(InspectionKind.Denied, plusVerdict, OnDeny.Close, 0);
        }
        if (request.Rosctr is S7Rosctr.Ack or S7Rosctr.AckData)
        {
            return new Inspection(InspectionKind.Answer, default, policy.OnDeny, 0);
        }
        if (request.Status == S7RequestStatus.OutOfSpec)
        {
            if (!monitor && !policy.NamesSourceAndConnection(source, connection))
            {
                return new Inspection(InspectionKind.Denied, unnamed, policy.OnDeny, 0);
            }
            return new Inspection(InspectionKind.OutOfSpec, new Verdict(VerdictKind.Deny, DenyReason.None, -1),
                monitor ? OnDeny.Exception : policy.OnDeny, 0);
        }
        var verdict = policy.Evaluate(source, new S7Target(connection, request), timestamp);
        if (verdict.IsAllowed)
        {
            return new Inspection(InspectionKind.Allowed, verdict, policy.OnDeny, 0);
        }
        return monitor
            ? new Inspection(InspectionKind.WouldDeny, verdict, policy.OnDeny, 0)
            : new Inspection(InspectionKind.Denied, verdict, policy.OnDeny, 0);
    }

    /// <summary>
    /// Judges a new IEC 104 connection of <paramref name="source"/> before anything it sends is carried: no rule
    /// names the source → refused, and the connection is closed before STARTDT (DESIGN.md "IEC 60870-5-104").
    /// </summary>
    public static Inspection InspectIec104Connect(CompiledPolicy policy, SourceAddress source)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (policy.NamesIec104Source(source))
        {
            return new Inspection(InspectionKind.Allowed, Verdict.Allow(-1), policy.OnDeny, 0);
        }
        var unnamed = new Verdict(VerdictKind.Deny, DenyReason.SourceOrUnit, -1);
        return policy.Mode == PolicyMode.Monitor
            ? new Inspection(InspectionKind.WouldDeny, unnamed, policy.OnDeny, 0)
            : new Inspection(InspectionKind.Denied, unnamed, OnDeny.Close, 0);
    }

    /// <summary>
    /// Judges one ASDU a controlling station sent (an I-frame's payload): malformed closes; otherwise the rules,
    /// with <paramref name="selects"/> the connection's confirmed selects for select-before-operate. A type the
    /// codec cannot size is judged by its type and common address alone (only a rule naming 41 or 81-95 allows it).
    /// </summary>
    /// <remarks><see cref="Inspection.RefusalCode"/> is the cause of the station's negative confirmation (44, 46, 47, 7, 9, or 5 for a read).</remarks>
    public static Inspection InspectIec104(CompiledPolicy policy, SourceAddress source, in Iec104Asdu asdu, Iec104Selects? selects, long timestamp)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (asdu.Status == Iec104AsduStatus.Malformed)
        {
            return new Inspection(InspectionKind.Malformed, new Verdict(VerdictKind.Deny, DenyReason.SourceOrUnit, -1), OnDeny.Close, 0);
        }
        var verdict = policy.Evaluate(source, Iec104Command.From(asdu, selects, timestamp), timestamp);
        if (verdict.IsAllowed)
        {
            return new Inspection(InspectionKind.Allowed, verdict, policy.OnDeny, 0);
        }
        byte cause = Iec104Refusals.Cause(verdict, asdu.Type, asdu.Cause);
        return policy.Mode == PolicyMode.Monitor
            ? new Inspection(InspectionKind.WouldDeny, verdict, policy.OnDeny, cause)
            : new Inspection(InspectionKind.Denied, verdict, policy.OnDeny, cause);
    }
}
