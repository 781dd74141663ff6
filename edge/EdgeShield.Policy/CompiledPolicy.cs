using EdgeShield.Protocols.Modbus;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Policy;

/// <summary>
/// One entry of <c>policies:</c>, compiled into an immutable decision structure. Thread-safe:
/// many connections evaluate concurrently; only the rate buckets change, under their own locks.
/// </summary>
public sealed class CompiledPolicy
{
    private readonly AllowRule[] _rules;

    internal CompiledPolicy(string name, PolicyMode mode, OnDeny onDeny, AllowRule[] rules, MaintenanceState maintenance)
    {
        Name = name;
        Mode = mode;
        OnDeny = onDeny;
        _rules = rules;
        Maintenance = maintenance;
        var names = new string[rules.Length];
        for (var i = 0; i < rules.Length; i++)
        {
            names[i] = rules[i].Name;
        }
        RuleNames = names;
    }

    /// <summary>
    /// The same rules in <see cref="PolicyMode.Monitor"/> (<c>learn --listen</c>): everything is
    /// forwarded, would-be refusals are audited. Shares the rules (and their rate buckets) with this one.
    /// </summary>
    public CompiledPolicy AsMonitor() => Mode == PolicyMode.Monitor ? this : new CompiledPolicy(Name, PolicyMode.Monitor, OnDeny, _rules, Maintenance) { Protocol = Protocol };

    /// <summary>The key under <c>policies:</c>.</summary>
    public string Name { get; }

    /// <summary>
    /// <c>protocol:</c> of the policy: whose vocabulary its rules speak. <see cref="ListenerProtocol.ModbusTcp"/> for
    /// both Modbus framings (<c>modbus-tcp</c>, <c>modbus-rtu-over-tcp</c>: one vocabulary), or
    /// <see cref="ListenerProtocol.S7comm"/> or <see cref="ListenerProtocol.Iec104"/>. A listener uses only a policy of its own protocol family.
    /// </summary>
    public ListenerProtocol Protocol { get; internal init; }

    /// <summary><c>mode:</c>. In <see cref="PolicyMode.Monitor"/> the gateway forwards everything; <see cref="Evaluate"/> still returns the true verdict.</summary>
    public PolicyMode Mode { get; }

    /// <summary><c>on-deny:</c>; <see cref="OnDeny.Exception"/> when absent.</summary>
    public OnDeny OnDeny { get; }

    /// <summary>Rule names by <see cref="Verdict.RuleIndex"/>; a rule without <c>name:</c> is <c>rule N</c> (1-based).</summary>
    public IReadOnlyList<string> RuleNames { get; }

    /// <summary>The maintenance switch that <c>maintenance: true</c> rules follow.</summary>
    public MaintenanceState Maintenance { get; }

    /// <summary>
    /// Decides one Modbus request: the first rule that allows it wins; if none does, the verdict carries the
    /// reason of the rule that came closest (DESIGN.md "Which refusal a request gets").
    /// Allocates nothing; O(rules × log ranges).
    /// </summary>
    /// <param name="source">The client's address.</param>
    /// <param name="unitId">The unit id the request is addressed to (MBAP unit id or RTU address).</param>
    /// <param name="request">The decoded request. The gateway answers malformed requests itself; one passed here anyway is denied.</param>
    /// <param name="timestamp">Now, as <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>: refills rate buckets and times maintenance.</param>
    public Verdict Evaluate(SourceAddress source, byte unitId, in ModbusRequest request, long timestamp) =>
        request.Status == RequestStatus.Malformed
            ? new Verdict(VerdictKind.Deny, DenyReason.SourceOrUnit, -1)
            : Evaluate(source, new ModbusTarget(unitId, request), timestamp);

    /// <summary>
    /// Decides one S7 job (or, with an empty request, the COTP connect of <paramref name="target"/>'s connection
    /// type): as <see cref="Evaluate(SourceAddress, byte, in ModbusRequest, long)"/>, with the rules' S7 keys.
    /// </summary>
    public Verdict Evaluate(SourceAddress source, in S7Target target, long timestamp) => Evaluate<S7Target>(source, target, timestamp);

    /// <summary>
    /// Decides one IEC 104 command ASDU: as <see cref="Evaluate(SourceAddress, byte, in ModbusRequest, long)"/>, with the
    /// rules' IEC 104 keys (scope: the common address; then type, IOA span, qualifier / value / select-before-operate).
    /// <see cref="Iec104Refusals.Cause"/> turns a refusal into the station's cause. Allocates nothing and changes
    /// nothing but the rate buckets: the session records selects and consumes them (<see cref="RequiresSelect"/>).
    /// </summary>
    /// <param name="timestamp">Now, as <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/> (also <see cref="Iec104Command.Now"/>).</param>
    public Verdict Evaluate(SourceAddress source, in Iec104Command command, long timestamp) => Evaluate<Iec104Command>(source, command, timestamp);

    /// <summary>
    /// The common engine, for every protocol: sources, scope, maintenance, the protocol's keys, rate; first
    /// allowing rule wins, else the closest rule's reason. A rule whose keys are of another protocol never matches.
    /// </summary>
    internal Verdict Evaluate<TRequest>(SourceAddress source, in TRequest request, long timestamp)
        where TRequest : allows ref struct
    {
        var best = DenyReason.SourceOrUnit;
        short bestRule = -1;
        var armed = Maintenance.IsArmedAt(timestamp);
        var rules = _rules;
        for (var i = 0; i < rules.Length; i++)
        {
            var rule = rules[i];
            if (rule.Keys is not IRuleKeys<TRequest> keys || !keys.InScope(request) || !rule.MatchesSource(source.Value))
            {
                continue;
            }

            DenyReason failed = keys.Check(request);
            if (rule.Maintenance && !armed)
            {
                // Skipped while disarmed, and never closer than a function refusal: what it would allow
                // says so in the audit, what it would not is refused as a function. Its rate is not touched.
                failed = failed == DenyReason.None ? DenyReason.MaintenanceKey : DenyReason.Function;
            }
            else if (failed == DenyReason.None)
            {
                if (rule.Rate is not null && !rule.Rate.TryTake(source.Value, timestamp))
                {
                    failed = DenyReason.Rate;
                }
                else
                {
                    return Verdict.Allow((short)i);
                }
            }

            if (bestRule < 0 || failed > best)
            {
                best = failed;
                bestRule = (short)i;
            }
        }
        return new Verdict(VerdictKind.Deny, best, bestRule);
    }

    /// <summary>
    /// True when some rule names this source and unit (a disarmed maintenance rule too): the gateway
    /// judges this before a request's values, so a source no rule names learns nothing from an
    /// out-of-spec answer (DESIGN.md "Which refusal a request gets"). Allocates nothing.
    /// </summary>
    public bool NamesSourceAndUnit(SourceAddress source, byte unitId)
    {
        foreach (var rule in _rules)
        {
            if (rule.Keys is ModbusRuleKeys keys && keys.Units.Contains(unitId) && rule.MatchesSource(source.Value))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// True when some rule names this source and S7 connection type (a disarmed maintenance rule too): the
    /// gateway refuses the COTP connect (COTP DR) otherwise (DESIGN.md "S7comm"). Allocates nothing.
    /// </summary>
    public bool NamesSourceAndConnection(SourceAddress source, S7Connection connection)
    {
        foreach (var rule in _rules)
        {
            if (rule.Keys is S7RuleKeys keys && (keys.Connections is not { } set || set.Contains(connection)) && rule.MatchesSource(source.Value))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// True when some IEC 104 rule names this source (a disarmed maintenance rule too, whatever its common
    /// addresses): the gateway closes the connection before STARTDT otherwise (DESIGN.md "IEC 60870-5-104").
    /// Allocates nothing.
    /// </summary>
    public bool NamesIec104Source(SourceAddress source)
    {
        foreach (var rule in _rules)
        {
            if (rule.Keys is Iec104RuleKeys && rule.MatchesSource(source.Value))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// True when rule <paramref name="ruleIndex"/> (the one that allowed a select) has <c>select-before-operate: true</c>:
    /// the session then records the select it forwards (<see cref="Iec104Selects.Selected"/>), and after an allowed
    /// execute consumes it. False for -1 and for rules of other protocols.
    /// </summary>
    public bool RequiresSelect(int ruleIndex) =>
        ruleIndex >= 0 && ruleIndex < _rules.Length && _rules[ruleIndex].Keys is Iec104RuleKeys { SelectBeforeOperate: true };

    /// <summary><c>select-timeout:</c> of rule <paramref name="ruleIndex"/> (10 s when not written); <see cref="TimeSpan.Zero"/> for a rule without <c>select-before-operate</c>.</summary>
    public TimeSpan SelectTimeout(int ruleIndex) =>
        ruleIndex >= 0 && ruleIndex < _rules.Length && _rules[ruleIndex].Keys is Iec104RuleKeys { SelectBeforeOperate: true } keys ? keys.SelectTimeout : TimeSpan.Zero;

    /// <summary>
    /// The item return codes of a refused read-var or write-var job, one per item into <paramref name="codes"/>,
    /// judged against rule <paramref name="ruleIndex"/> (the verdict's closest rule): an item whose byte span
    /// that rule does not allow, while it allows its area and block, gets 0x05 (address out of range); every
    /// other item 0x03 (object access not allowed): a refused area or block, refused values, and items the
    /// rule would allow, since nothing in a refused job executes (DESIGN.md "S7comm"). With
    /// <paramref name="ruleIndex"/> -1, or a rule that refuses the function, every item gets 0x03.
    /// Allocates nothing.
    /// </summary>
    /// <returns>The job's item count (0 for any other request).</returns>
    /// <exception cref="ArgumentException"><paramref name="codes"/> is shorter than the item count (at most 255).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="ruleIndex"/> is not -1 or a rule of this policy.</exception>
    public int S7ItemRefusals(int ruleIndex, in S7Target target, Span<byte> codes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(ruleIndex, -1);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(ruleIndex, _rules.Length);
        ref readonly var request = ref target.Request;
        if (request.Status == S7RequestStatus.Malformed || request.Function is not (S7Function.ReadVar or S7Function.WriteVar))
        {
            return 0;
        }
        int count = request.ItemCount;
        if (codes.Length < count)
        {
            throw new ArgumentException($"room for {count} item return codes is needed", nameof(codes));
        }
        codes[..count].Fill(S7Items.ReturnAccessNotAllowed);
        if (ruleIndex < 0 || _rules[ruleIndex].Keys is not S7RuleKeys keys || !keys.AllowsFunction(request))
        {
            return count;
        }
        var write = request.Function == S7Function.WriteVar;
        foreach (var item in request.Items)
        {
            if (item.Index < count && keys.CheckItem(item, write) == DenyReason.Address)
            {
                codes[item.Index] = S7Items.ReturnAddressOutOfRange;
            }
        }
        return count;
    }

    /// <summary>
    /// Takes over the rate buckets of <paramref name="previous"/> (the policy of the same name this one
    /// replaces on a reload) for every rule with the same name and the same content, so that a reload does
    /// not refill them. Call before this policy is published; idempotent.
    /// </summary>
    public void KeepRateBucketsOf(CompiledPolicy previous)
    {
        ArgumentNullException.ThrowIfNull(previous);
        if (ReferenceEquals(previous, this) || previous.Name != Name)
        {
            return;
        }
        foreach (var rule in _rules)
        {
            if (rule.Rate is null)
            {
                continue;
            }
            foreach (var old in previous._rules)
            {
                if (old.Rate is not null && old.Name == rule.Name && old.Content == rule.Content)
                {
                    rule.Rate = old.Rate;
                    break;
                }
            }
        }
    }

    internal AllowRule RuleAt(int index) => _rules[index];

    internal int RuleCount => _rules.Length;
}
