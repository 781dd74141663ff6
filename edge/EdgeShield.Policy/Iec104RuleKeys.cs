using System.Diagnostics;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Policy;

/// <summary>
/// The IEC 104 keys of one rule (<c>type</c>, <c>ca</c>, <c>ioa</c>, <c>value</c>, <c>select-before-operate</c>,
/// <c>select-timeout</c>), compiled (DESIGN.md "IEC 60870-5-104", docs/POLICY.md "IEC 104 policies"). Checks
/// allocate nothing and change nothing.
/// </summary>
/// <remarks>
/// Scope is the common address: a rule without <c>ca:</c> covers every common address but the global one
/// (0xFFFF), which only a rule that names <c>global</c> (or 65535) covers. The refusal ladder: the type →
/// <see cref="DenyReason.Function"/>; the IOA span → <see cref="DenyReason.Address"/>; an invalid qualifier,
/// a set-point outside <c>value:</c>, or an execute without a confirmed matching select within
/// <c>select-timeout</c> → <see cref="DenyReason.Value"/>. Rate and maintenance are the common engine's.
/// </remarks>
internal sealed class Iec104RuleKeys : RuleKeys, IRuleKeys<Iec104Command>
{
    /// <summary>
    /// A rule without <c>type:</c>: the groups <c>control</c> and <c>system</c>. <c>clock</c>, <c>parameter</c>,
    /// <c>file</c> and the types 41, 81-95 are never implied, as no group implies them.
    /// </summary>
    public static Bits256 DefaultTypes { get; } = GroupTypes(Iec104TypeGroup.Control).Union(GroupTypes(Iec104TypeGroup.System));

    private readonly TimeSpan _selectTimeout = TimeSpan.FromSeconds(10);

    /// <summary><c>ca:</c> without the global address; null = every common address 0..65534.</summary>
    public IntervalSet<int>? CommonAddresses { get; init; }

    /// <summary><c>ca:</c> names <c>global</c> (65535).</summary>
    public bool Global { get; init; }

    /// <summary><c>type:</c> as type octets.</summary>
    public Bits256 Types { get; init; } = DefaultTypes;

    /// <summary><c>ioa:</c>; null = any information object address.</summary>
    public IntervalSet<int>? Ioas { get; init; }

    /// <summary><c>value:</c>: one range for every set-point type of the rule; null = any value.</summary>
    public ValueBounds? Values { get; init; }

    /// <summary><c>select-before-operate: true</c>: an execute of a selectable type needs a confirmed matching select.</summary>
    public bool SelectBeforeOperate { get; init; }

    /// <summary><c>select-timeout:</c> (default 10 s): how long after its select an execute may follow.</summary>
    public TimeSpan SelectTimeout
    {
        get => _selectTimeout;
        init
        {
            _selectTimeout = value;
            SelectTimeoutTicks = (long)(value.TotalSeconds * Stopwatch.Frequency);
        }
    }

    /// <summary><see cref="SelectTimeout"/> in Stopwatch ticks.</summary>
    public long SelectTimeoutTicks { get; private init; } = 10 * Stopwatch.Frequency;

    /// <summary>All types of a policy group.</summary>
    public static Bits256 GroupTypes(Iec104TypeGroup group)
    {
        var set = default(Bits256);
        for (var t = 0; t < 256; t++)
        {
            if (Iec104Types.Group((byte)t) == group)
            {
                set.Add((byte)t);
            }
        }
        return set;
    }

    /// <summary>True when some type of <paramref name="types"/> is a set-point (<see cref="Iec104Command.IsSetPoint"/>).</summary>
    public static bool HasSetPoint(in Bits256 types)
    {
        for (var t = 0; t < 256; t++)
        {
            if (Iec104Command.IsSetPoint((byte)t) && types.Contains((byte)t))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>True when some type of <paramref name="types"/> carries S/E (<see cref="Iec104Command.CarriesSelect"/>).</summary>
    public static bool HasSelectable(in Bits256 types)
    {
        for (var t = 0; t < 256; t++)
        {
            if (Iec104Command.CarriesSelect((byte)t) && types.Contains((byte)t))
            {
                return true;
            }
        }
        return false;
    }

    public bool InScope(in Iec104Command request) =>
        request.CommonAddress == Iec104Command.GlobalAddress ? Global : CommonAddresses is null || CommonAddresses.Contains(request.CommonAddress);

    public DenyReason Check(in Iec104Command request)
    {
        if (!Types.Contains(request.Type))
        {
            return DenyReason.Function;
        }
        if (request.LowestIoa > request.HighestIoa || request.HighestIoa > Iec104Command.MaxIoa
            || (Ioas is not null && !Ioas.ContainsRange((int)request.LowestIoa, (int)request.HighestIoa)))
        {
            return DenyReason.Address;
        }
        if (!request.QualifierValid)
        {
            return DenyReason.Value;
        }
        if (Values is not null && Iec104Command.IsSetPoint(request.Type)
            && (!request.HasValue || !double.IsFinite(request.ValueMin) || !double.IsFinite(request.ValueMax)
                || request.ValueMin > request.ValueMax || !Values.Contains(request.ValueMin) || !Values.Contains(request.ValueMax)))
        {
            return DenyReason.Value;
        }
        if (SelectBeforeOperate && request.IsExecuteOfSelectable
            && (request.Selects is not { } selects || !selects.HasConfirmedSelect(request.CommandKey, SelectTimeoutTicks, request.Now)))
        {
            return DenyReason.Value;
        }
        return DenyReason.None;
    }

    public override bool Covers(RuleKeys later)
    {
        if (later is not Iec104RuleKeys other)
        {
            return false;
        }
        if (other.Global && !Global)
        {
            return false;
        }
        if (CommonAddresses is not null && (other.CommonAddresses is null || !CommonAddresses.IsSupersetOf(other.CommonAddresses)))
        {
            return false;
        }
        if (!Types.IsSupersetOf(other.Types))
        {
            return false;
        }
        if (Ioas is not null && (other.Ioas is null || !Ioas.IsSupersetOf(other.Ioas)))
        {
            return false;
        }
        if (Values is not null && (other.Values is null || !Values.IsSupersetOf(other.Values)))
        {
            return false;
        }
        // A select-before-operate rule allows fewer executes; a longer select-timeout more.
        return !SelectBeforeOperate || (other.SelectBeforeOperate && SelectTimeout >= other.SelectTimeout);
    }
}
