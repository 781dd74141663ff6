using System.Globalization;

namespace EdgeShield.Policy;

/// <summary>
/// Static checks of a loaded configuration beyond what the loader reports (it already warns about
/// shadowed rules): rules that no request can ever match, and rules whose address ranges overlap an
/// earlier rule's for the same sources, units and functions while they set different conditions —
/// in the overlap the earlier rule decides first, so the later rule's values, rate or maintenance
/// conditions do not apply there. Warnings only: <c>edgeshield check</c> still exits 0.
/// </summary>
public static class PolicyAnalysis
{
    /// <summary>Functions whose requests touch a table (have an address span): only these can match a rule with <c>address:</c>.</summary>
    private static readonly byte[] TableFunctions = [1, 2, 3, 4, 5, 6, 15, 16, 22, 23, 24];

    /// <summary>Every finding, as warnings at the rule's line and column, in file order.</summary>
    public static IReadOnlyList<ConfigDiagnostic> Analyze(EdgeShieldConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var findings = new List<ConfigDiagnostic>();
        foreach (var (name, policy) in config.Policies)
        {
            for (int j = 0; j < policy.RuleCount; j++)
            {
                var rule = policy.RuleAt(j);
                if (NeverMatches(rule) is { } why)
                {
                    findings.Add(Warn(config, rule, $"rule '{rule.Name}' of policy '{name}' can never match: {why}"));
                    continue;
                }
                if (S7KeysWithoutEffect(rule) is { } idle)
                {
                    findings.Add(Warn(config, rule, $"rule '{rule.Name}' of policy '{name}': {idle}"));
                }
                for (int i = 0; i < j; i++)
                {
                    var earlier = policy.RuleAt(i);
                    if (OverlapWithOtherConditions(earlier, rule) is { } range)
                    {
                        findings.Add(Warn(config, rule, $"rule '{rule.Name}' of policy '{name}' overlaps rule '{earlier.Name}' (line {earlier.Line}) {(rule.Keys is Iec104RuleKeys ? $"on information object addresses {range} for sources, common addresses and types" : $"on addresses {range} for sources, units and functions")} both cover: there '{earlier.Name}' decides first, so this rule's {Conditions(rule, earlier)} do not apply"));
                    }
                }
            }
        }
        findings.Sort((a, b) => a.Line != b.Line ? a.Line.CompareTo(b.Line) : a.Column.CompareTo(b.Column));
        return findings;
    }

    private static ConfigDiagnostic Warn(EdgeShieldConfig config, AllowRule rule, string message) =>
        new(config.Path, rule.Line, rule.Column, DiagnosticSeverity.Warning, message);

    private static string? NeverMatches(AllowRule common)
    {
        if (common.Keys is S7RuleKeys s7)
        {
            return S7NeverMatches(s7);
        }
        if (common.Keys is Iec104RuleKeys iec104)
        {
            return Iec104NeverMatches(iec104);
        }
        if (common.Keys is not ModbusRuleKeys rule)
        {
            return null;
        }
        var functions = rule.EffectiveFunctions;
        if (functions.IsEmpty)
        {
            return null; // the loader already warns: 'value' excludes every function the rule names
        }
        if (rule.Addresses is not null)
        {
            bool anyTable = false;
            foreach (byte fc in TableFunctions)
            {
                anyTable |= functions.Codes.Contains(fc);
            }
            if (!anyTable)
            {
                return "it bounds 'address:' but none of its functions touches a table (a rule with 'address:' never allows 7, 8, 11, 12, 17, 20, 21, 43 or vendor codes)";
            }
        }
        if (rule.Units.IsEmpty)
        {
            return "it names no unit";
        }
        return null;
    }

    /// <summary>
    /// An S7 rule whose <c>connection:</c> names only S7comm-Plus connections (SIMATIC-ROOT-HMI, -ES), which carry
    /// nothing but S7comm-Plus PDUs, while its <c>function:</c> does not name <c>s7comm-plus</c>.
    /// </summary>
    private static string? S7NeverMatches(S7RuleKeys rule)
    {
        if (rule.Connections is { } connections && connections.TypeCodes.IsEmpty && !rule.Functions.Contains(Protocols.S7comm.S7Function.S7commPlus))
        {
            return "its 'connection' names only S7comm-Plus connections (plus-hmi, plus-es), which carry only s7comm-plus, and its 'function' does not name s7comm-plus";
        }
        return null;
    }

    /// <summary>
    /// IEC 104: a rule whose every type addresses information object 0 (interrogation, counter interrogation,
    /// clock synchronisation, reset process, test: the standard's "irrelevant" IOA) while its <c>ioa:</c> leaves 0 out.
    /// </summary>
    private static string? Iec104NeverMatches(Iec104RuleKeys rule)
    {
        if (rule.Ioas is null || rule.Ioas.Contains(0))
        {
            return null;
        }
        for (int t = 0; t < 256; t++)
        {
            if (rule.Types.Contains((byte)t) && t is not (100 or 101 or 103 or 105 or 107))
            {
                return null;
            }
        }
        return "its types (C_IC_NA_1, C_CI_NA_1, C_CS_NA_1, C_RP_NA_1, C_TS_TA_1) are sent to information object address 0, which its 'ioa' leaves out";
    }

    /// <summary>
    /// IEC 104: the first overlapping IOA range, when both rules can allow the same sources, common addresses and
    /// types but set different conditions (value bounds, select-before-operate, maintenance, rate).
    /// </summary>
    private static string? Iec104OverlapWithOtherConditions(AllowRule earlierRule, AllowRule laterRule)
    {
        if (earlierRule.Keys is not Iec104RuleKeys earlier || laterRule.Keys is not Iec104RuleKeys later
            || earlier.Ioas is null || later.Ioas is null)
        {
            return null;
        }
        bool sameConditions = SameIec104Conditions(earlier, later)
            && earlierRule.Maintenance == laterRule.Maintenance
            && (earlierRule.Rate is null) == (laterRule.Rate is null)
            && (earlierRule.Rate is null || earlierRule.Rate.Count == laterRule.Rate!.Count);
        if (sameConditions || earlier.Ioas.IsSupersetOf(later.Ioas))
        {
            return null;
        }
        bool sharedCa = (earlier.Global && later.Global)
            || earlier.CommonAddresses is null || later.CommonAddresses is null
            || FirstOverlap(earlier.CommonAddresses, later.CommonAddresses) is not null;
        if (!Intersect(earlierRule.Sources, laterRule.Sources) || !sharedCa || !Intersect(earlier.Types, later.Types))
        {
            return null;
        }
        return FirstOverlap(earlier.Ioas, later.Ioas);
    }

    /// <summary>The same <c>value:</c>, <c>select-before-operate</c> and <c>select-timeout</c>.</summary>
    private static bool SameIec104Conditions(Iec104RuleKeys a, Iec104RuleKeys b) =>
        (a.Values is null) == (b.Values is null)
        && (a.Values is null || (a.Values.IsSupersetOf(b.Values!) && b.Values!.IsSupersetOf(a.Values)))
        && a.SelectBeforeOperate == b.SelectBeforeOperate
        && (!a.SelectBeforeOperate || a.SelectTimeout == b.SelectTimeout);

    /// <summary>S7 keys that bound items (<c>area</c>, <c>db</c>, <c>address</c>, <c>value</c>) on a rule that allows neither read-var nor write-var.</summary>
    private static string? S7KeysWithoutEffect(AllowRule common)
    {
        if (common.Keys is not S7RuleKeys rule)
        {
            return null;
        }
        if (rule.BoundsObjects && !rule.Functions.HasItemFunctions)
        {
            return "'area', 'db' and 'address' bound the items of read-var and write-var, and this rule allows neither: they have no effect (its other functions pass them)";
        }
        if (rule.Values is not null && !rule.Functions.Contains(Protocols.S7comm.S7Function.WriteVar))
        {
            return "'type' and 'value' bound the values write-var writes, and this rule does not allow write-var: they have no effect";
        }
        return null;
    }

    /// <summary>
    /// S7: the first overlapping byte range, when both rules can allow read-var or write-var for shared sources,
    /// connection types, areas and blocks but set different conditions (values, maintenance, rate).
    /// </summary>
    private static string? S7OverlapWithOtherConditions(AllowRule earlierRule, AllowRule laterRule)
    {
        if (earlierRule.Keys is not S7RuleKeys earlier || laterRule.Keys is not S7RuleKeys later
            || earlier.Addresses is null || later.Addresses is null)
        {
            return null;
        }
        bool sameConditions = earlier.ValueBoundsCover(later) && later.ValueBoundsCover(earlier)
            && earlierRule.Maintenance == laterRule.Maintenance
            && (earlierRule.Rate is null) == (laterRule.Rate is null)
            && (earlierRule.Rate is null || earlierRule.Rate.Count == laterRule.Rate!.Count);
        if (sameConditions || earlier.Addresses.IsSupersetOf(later.Addresses))
        {
            return null;
        }
        var items = default(S7FunctionSet);
        items.Add(Protocols.S7comm.S7Function.ReadVar);
        items.Add(Protocols.S7comm.S7Function.WriteVar);
        if (!Intersect(earlierRule.Sources, laterRule.Sources) || !earlier.Functions.Intersects(later.Functions) || !earlier.Functions.Intersects(items)
            || !later.Functions.Intersects(items)
            || (earlier.Connections is { } ec && later.Connections is { } lc && !Intersect(ec.TypeCodes, lc.TypeCodes))
            || (earlier.Areas is { } ea && later.Areas is { } la && !Intersect(ea, la)))
        {
            return null;
        }
        return FirstOverlap(earlier.Addresses, later.Addresses);
    }

    private static string? FirstOverlap(IntervalSet<int> a, IntervalSet<int> b)
    {
        for (int i = 0; i < a.Count; i++)
        {
            var (lowA, highA) = a[i];
            for (int j = 0; j < b.Count; j++)
            {
                var (lowB, highB) = b[j];
                int low = Math.Max(lowA, lowB);
                int high = Math.Min(highA, highB);
                if (low <= high)
                {
                    return low == high ? low.ToString(CultureInfo.InvariantCulture) : string.Create(CultureInfo.InvariantCulture, $"{low}-{high}");
                }
            }
        }
        return null;
    }

    /// <summary>The first overlapping address range, when the rules share sources, units and functions but set different conditions.</summary>
    private static string? OverlapWithOtherConditions(AllowRule earlierRule, AllowRule laterRule)
    {
        if (earlierRule.Keys is S7RuleKeys)
        {
            return S7OverlapWithOtherConditions(earlierRule, laterRule);
        }
        if (earlierRule.Keys is Iec104RuleKeys)
        {
            return Iec104OverlapWithOtherConditions(earlierRule, laterRule);
        }
        if (earlierRule.Keys is not ModbusRuleKeys earlier || laterRule.Keys is not ModbusRuleKeys later
            || earlier.Addresses is null || later.Addresses is null)
        {
            return null;
        }
        bool sameConditions = SameValues(earlierRule, laterRule)
            && earlierRule.Maintenance == laterRule.Maintenance
            && (earlierRule.Rate is null) == (laterRule.Rate is null)
            && (earlierRule.Rate is null || earlierRule.Rate.Count == laterRule.Rate!.Count);
        if (sameConditions || earlier.Addresses.IsSupersetOf(later.Addresses))
        {
            return null; // harmless, or already reported as shadowing when everything else is covered too
        }
        if (!Intersect(earlierRule.Sources, laterRule.Sources) || !Intersect(earlier.Units, later.Units) || !Intersect(earlier.EffectiveFunctions, later.EffectiveFunctions))
        {
            return null;
        }
        for (int a = 0; a < earlier.Addresses.Count; a++)
        {
            var (lowA, highA) = earlier.Addresses[a];
            for (int b = 0; b < later.Addresses.Count; b++)
            {
                var (lowB, highB) = later.Addresses[b];
                int low = Math.Max(lowA, lowB);
                int high = Math.Min(highA, highB);
                if (low <= high)
                {
                    return low == high ? low.ToString(CultureInfo.InvariantCulture) : string.Create(CultureInfo.InvariantCulture, $"{low}-{high}");
                }
            }
        }
        return null;
    }

    private static string Conditions(AllowRule later, AllowRule earlier)
    {
        var parts = new List<string>(4);
        if (earlier.Keys is Iec104RuleKeys ie && later.Keys is Iec104RuleKeys il)
        {
            if ((ie.Values is null) != (il.Values is null) || (ie.Values is not null && !(ie.Values.IsSupersetOf(il.Values!) && il.Values!.IsSupersetOf(ie.Values))))
            {
                parts.Add("'value:' bounds");
            }
            if (ie.SelectBeforeOperate != il.SelectBeforeOperate || (ie.SelectBeforeOperate && ie.SelectTimeout != il.SelectTimeout))
            {
                parts.Add("'select-before-operate:'");
            }
        }
        else if (!SameValues(earlier, later) && !(earlier.Keys is S7RuleKeys se && later.Keys is S7RuleKeys sl && se.ValueBoundsCover(sl) && sl.ValueBoundsCover(se)))
        {
            parts.Add("'value:' bounds");
        }
        if (earlier.Maintenance != later.Maintenance)
        {
            parts.Add("'maintenance:'");
        }
        if ((earlier.Rate is null) != (later.Rate is null) || (earlier.Rate is not null && earlier.Rate.Count != later.Rate!.Count))
        {
            parts.Add("'rate:'");
        }
        return string.Join(" and ", parts);
    }

    /// <summary>The same <c>value:</c> bounds, read the same way (<c>type:</c>, <c>word-order:</c>, the grid of a 32-bit type).</summary>
    private static bool SameValues(AllowRule a, AllowRule b) =>
        a.Keys is ModbusRuleKeys ka && b.Keys is ModbusRuleKeys kb && ka.ValueBoundsCover(kb) && kb.ValueBoundsCover(ka);

    private static bool Intersect(IntervalSet<UInt128>? a, IntervalSet<UInt128>? b)
    {
        if (a is null || b is null)
        {
            return true;
        }
        for (int i = 0; i < a.Count; i++)
        {
            for (int j = 0; j < b.Count; j++)
            {
                if (a[i].Low <= b[j].High && b[j].Low <= a[i].High)
                {
                    return true;
                }
            }
        }
        return false;
    }

    private static bool Intersect(Bits256 a, Bits256 b)
    {
        for (int i = 0; i < 256; i++)
        {
            if (a.Contains((byte)i) && b.Contains((byte)i))
            {
                return true;
            }
        }
        return false;
    }

    private static bool Intersect(FunctionSet a, FunctionSet b) =>
        Intersect(a.Codes, b.Codes) || (a.Mei13 && b.Mei13) || (a.Mei14 && b.Mei14) || (a.MeiOther && b.MeiOther);
}
