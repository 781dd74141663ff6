namespace EdgeShield.Policy;

/// <summary>
/// One compiled rule of a policy: the keys every protocol shares (<c>name</c>, <c>from</c>, <c>rate</c>,
/// <c>maintenance</c>) and the protocol's own keys (<see cref="Keys"/>), which the common engine
/// (<see cref="CompiledPolicy.Evaluate{TRequest}"/>) asks in the order of the refusal ladder.
/// </summary>
internal sealed class AllowRule
{
    public required string Name { get; init; }
    public int Line { get; init; }
    public int Column { get; init; }
    /// <summary>Source addresses (IPv4 as IPv4-mapped IPv6) as merged intervals; null = any.</summary>
    public IntervalSet<UInt128>? Sources { get; init; }
    /// <summary>The token buckets of <c>rate:</c>; a reload hands over the previous policy's limiter to an identical rule (<see cref="CompiledPolicy.KeepRateBucketsOf"/>).</summary>
    public RateLimiter? Rate { get; set; }
    /// <summary>The rule's canonical YAML (keys, values, quoting; not layout): "same content" for a reload.</summary>
    public string Content { get; init; } = "";
    public bool Maintenance { get; init; }
    /// <summary>The protocol's keys of this rule (<see cref="ModbusRuleKeys"/> for Modbus).</summary>
    public required RuleKeys Keys { get; init; }

    public bool MatchesSource(UInt128 source) => Sources is null || Sources.Contains(source);
}

/// <summary>The compiled keys of one protocol in a rule; each protocol's keys also implement <see cref="IRuleKeys{TRequest}"/>.</summary>
internal abstract class RuleKeys
{
    /// <summary>
    /// True when every request these keys allow, <paramref name="later"/>'s allow too is allowed by these
    /// (for the shadowed-rule warning); conservative: false when unsure, or for another protocol's keys.
    /// </summary>
    public abstract bool Covers(RuleKeys later);
}

/// <summary>
/// What the common engine asks of a protocol's rule keys about one request: is it in the rule's scope
/// (Modbus: the unit; S7: the connection type; IEC 104: the common address), and the first protocol key
/// it fails, in the order of the refusal ladder (function, then address or object, then value), or
/// <see cref="DenyReason.None"/> when it passes them all. Allocation-free.
/// </summary>
internal interface IRuleKeys<TRequest>
    where TRequest : allows ref struct
{
    bool InScope(in TRequest request);

    DenyReason Check(in TRequest request);
}
