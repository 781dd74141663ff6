using EdgeShield.Protocols.Modbus;

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
}
