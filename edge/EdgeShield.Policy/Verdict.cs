namespace EdgeShield.Policy;

/// <summary>Allow or deny. The default is deny.</summary>
public enum VerdictKind : byte
{
    Deny = 0,
    Allow,
}

/// <summary>
/// Why a request was refused: the rule that came closest, in the order of DESIGN.md
/// "Which refusal a request gets". The default is the safest.
/// </summary>
public enum DenyReason : byte
{
    /// <summary>No rule for this source and unit (exception 0A).</summary>
    SourceOrUnit = 0,
    /// <summary>A rule for this source and unit, but not this function (01).</summary>
    Function,
    /// <summary>Only a <c>maintenance: true</c> rule would allow it, and the key is not armed (01).</summary>
    MaintenanceKey,
    /// <summary>The function, but not the object it names (S7: an item's area or data block; never from Modbus rules).</summary>
    AreaOrBlock,
    /// <summary>The function, but not this address span (02).</summary>
    Address,
    /// <summary>The address, but not these values or quantities (03).</summary>
    Value,
    /// <summary>Everything but the rate (06).</summary>
    Rate,
    /// <summary>Allowed: no reason.</summary>
    None,
}

/// <summary>A decision about one request. Allocates nothing.</summary>
/// <param name="Kind">Allow or deny.</param>
/// <param name="Reason">For a denial, which check failed.</param>
/// <param name="RuleIndex">The rule that allowed it, or for a denial the rule that came closest; -1 for none.</param>
public readonly record struct Verdict(VerdictKind Kind, DenyReason Reason, short RuleIndex)
{
    public bool IsAllowed => Kind == VerdictKind.Allow;

    /// <summary>The Modbus exception code a denial is answered with (DESIGN.md "Modbus refusals"); 0 when allowed.</summary>
    public byte ExceptionCode => Kind == VerdictKind.Allow ? (byte)0 : (byte)(Reason switch
    {
        DenyReason.Function or DenyReason.MaintenanceKey => 0x01,
        DenyReason.AreaOrBlock or DenyReason.Address => 0x02,
        DenyReason.Value => 0x03,
        DenyReason.Rate => 0x06,
        _ => 0x0A,
    });

    public static Verdict Allow(short ruleIndex) => new(VerdictKind.Allow, DenyReason.None, ruleIndex);
}

/// <summary><c>mode:</c> of a policy.</summary>
public enum PolicyMode : byte
{
    Enforce = 0,
    /// <summary>Forward everything; audit what would have been denied.</summary>
    Monitor,
}

/// <summary><c>on-deny:</c> of a policy.</summary>
public enum OnDeny : byte
{
    /// <summary>Answer with the Modbus exception of the verdict.</summary>
    Exception = 0,
    /// <summary>Answer nothing (the client times out).</summary>
    Drop,
    /// <summary>Close the client's connection.</summary>
    Close,
}
