using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Policy;

/// <summary>
/// The functions an S7 rule names (DESIGN.md "S7comm"): one bit per <see cref="S7Function"/>, with
/// <c>plc-control</c> split by its PI service, because the <c>control</c> group holds only
/// <c>P_PROGRAM</c> (run / restart) and the <c>program</c> group every other PI service.
/// </summary>
internal struct S7FunctionSet
{
    /// <summary>Bit <c>1 &lt;&lt; (int)function</c> for every function but <see cref="S7Function.PlcControl"/>.</summary>
    public uint Words;
    /// <summary>plc-control with the PI service <c>P_PROGRAM</c>.</summary>
    public bool PlcControlProgram;
    /// <summary>plc-control with any other PI service (<c>_INSE</c>, <c>_DELE</c>, <c>_MODU</c>, <c>_GARB</c>, <c>_N_…</c>).</summary>
    public bool PlcControlOther;

    /// <summary>
    /// A rule without <c>function:</c>: every classic S7comm function. <c>s7comm-plus</c> is a protocol of its
    /// own that no other key can bound: only a rule that names it allows it ("refused by default").
    /// </summary>
    public static S7FunctionSet AnyClassic
    {
        get
        {
            var set = new S7FunctionSet { PlcControlProgram = true, PlcControlOther = true };
            for (var f = S7Function.CpuServices; f <= S7Function.NcProgramming; f++)
            {
                set.Add(f);
            }
            return set;
        }
    }

    public void Add(S7Function function)
    {
        if (function == S7Function.PlcControl)
        {
            PlcControlProgram = PlcControlOther = true;
        }
        else if (function != S7Function.Unknown)
        {
            Words |= 1u << (int)function;
        }
    }

    public readonly bool Contains(S7Function function) => function switch
    {
        S7Function.Unknown => false,
        S7Function.PlcControl => PlcControlProgram || PlcControlOther,
        _ => (Words & (1u << (int)function)) != 0,
    };

    public readonly bool IsSupersetOf(in S7FunctionSet other) =>
        (other.Words & ~Words) == 0 && (PlcControlProgram || !other.PlcControlProgram) && (PlcControlOther || !other.PlcControlOther);

    public readonly bool Intersects(in S7FunctionSet other) =>
        (Words & other.Words) != 0 || (PlcControlProgram && other.PlcControlProgram) || (PlcControlOther && other.PlcControlOther);

    /// <summary>Whether a rule with these functions can see read-var or write-var items.</summary>
    public readonly bool HasItemFunctions => Contains(S7Function.ReadVar) || Contains(S7Function.WriteVar);

    /// <summary>Whether a PI service can reach this rule: plc-control or plc-stop.</summary>
    public readonly bool HasPiServices => PlcControlProgram || PlcControlOther || Contains(S7Function.PlcStop);
}

/// <summary>The connection types a rule's <c>connection:</c> names: called-TSAP types (pg 1, op 2, basic 3, 1..255) and the S7comm-Plus TSAP strings.</summary>
internal struct S7ConnectionSet
{
    public Bits256 TypeCodes;
    public bool PlusHmi;
    public bool PlusEs;

    public readonly bool Contains(S7Connection connection) => connection.Kind switch
    {
        S7ConnectionKind.Pg or S7ConnectionKind.Op or S7ConnectionKind.Basic or S7ConnectionKind.Other => TypeCodes.Contains(connection.TypeCode),
        S7ConnectionKind.PlusHmi => PlusHmi,
        S7ConnectionKind.PlusEs => PlusEs,
        _ => false,
    };

    public readonly bool IsSupersetOf(in S7ConnectionSet other) =>
        TypeCodes.IsSupersetOf(other.TypeCodes) && (PlusHmi || !other.PlusHmi) && (PlusEs || !other.PlusEs);
}

/// <summary>
/// The S7comm keys of one rule (<c>connection</c>, <c>function</c>, <c>pi-service</c>, <c>area</c>, <c>db</c>,
/// <c>address</c>, <c>type</c>, <c>value</c>), compiled (DESIGN.md "S7comm"). A left-out key matches any value
/// of it, except that <c>s7comm-plus</c> needs naming. Checks allocate nothing.
/// </summary>
/// <remarks>
/// The refusal ladder of a job: the function (with its PI service) → <see cref="DenyReason.Function"/>; an
/// item's area or data block → <see cref="DenyReason.AreaOrBlock"/>; an item's span outside one
/// <c>address</c> range → <see cref="DenyReason.Address"/>; a written value outside <c>value</c> →
/// <see cref="DenyReason.Value"/>. A job is allowed only if every item is; the job's reason is the lowest rung
/// any item fails. Items whose syntax is not S7ANY carry no area, block or span: a rule that bounds any of
/// those never allows them, nor one with <c>value:</c> when they are written. Userdata is judged by its
/// function word only.
/// </remarks>
internal sealed class S7RuleKeys : RuleKeys, IRuleKeys<S7Target>
{
    /// <summary>The PI service of <c>control</c> (and of plc-stop): run, warm or cold restart.</summary>
    internal static ReadOnlySpan<byte> ProgramService => "P_PROGRAM"u8;

    /// <summary><c>connection:</c>; null = any connection type.</summary>
    public S7ConnectionSet? Connections { get; init; }
    public S7FunctionSet Functions { get; init; } = S7FunctionSet.AnyClassic;
    /// <summary><c>pi-service:</c> as ASCII names; null = any PI service.</summary>
    public byte[][]? PiServices { get; init; }
    /// <summary><c>area:</c> as area codes; null = any area.</summary>
    public Bits256? Areas { get; init; }
    /// <summary><c>db:</c>: the block numbers of items in areas db and di; null = any.</summary>
    public IntervalSet<int>? Blocks { get; init; }
    /// <summary><c>address:</c>: byte offsets (element numbers for counters and timers); null = any.</summary>
    public IntervalSet<int>? Addresses { get; init; }
    /// <summary><c>type:</c>: how written bytes are read for <see cref="Values"/>.</summary>
    public S7ValueType ValueType { get; init; }
    /// <summary><c>value:</c>; null = any written value.</summary>
    public ValueBounds? Values { get; init; }

    /// <summary>True when the rule bounds what items may name (area, block or span): such a rule never allows an item that is not S7ANY.</summary>
    public bool BoundsObjects => Areas is not null || Blocks is not null || Addresses is not null;

    public bool InScope(in S7Target target) => Connections is not { } set || set.Contains(target.Connection);

    public DenyReason Check(in S7Target target)
    {
        ref readonly var request = ref target.Request;
        if (request.Status == S7RequestStatus.Malformed || !AllowsFunction(request))
        {
            return DenyReason.Function;
        }
        if (request.Function is not (S7Function.ReadVar or S7Function.WriteVar))
        {
            // Out of spec beyond the function (setup-communication asking for 0): the values are wrong.
            return request.Status == S7RequestStatus.Ok ? DenyReason.None : DenyReason.Value;
        }
        var write = request.Function == S7Function.WriteVar;
        var worst = DenyReason.None;
        var seen = 0;
        foreach (var item in request.Items)
        {
            seen++;
            var reason = CheckItem(item, write);
            if (reason < worst)
            {
                worst = reason;
            }
        }
        if (worst == DenyReason.None && (request.Status != S7RequestStatus.Ok || seen != request.ItemCount))
        {
            // Items the codec could not place (zero count, unknown transport size, bad bit address): no span to check.
            return DenyReason.Address;
        }
        return worst;
    }

    /// <summary>The function rung: the function word, and for plc-control and plc-stop the PI service.</summary>
    public bool AllowsFunction(in S7Request request) => request.Function switch
    {
        S7Function.Unknown => false,
        S7Function.PlcControl =>
            (request.PiServiceIs(ProgramService) ? Functions.PlcControlProgram : Functions.PlcControlOther) && NamesPiService(request.PiService),
        S7Function.PlcStop => Functions.Contains(S7Function.PlcStop) && NamesPiService(request.PiService),
        _ => Functions.Contains(request.Function),
    };

    private bool NamesPiService(ReadOnlySpan<byte> service)
    {
        if (PiServices is null)
        {
            return true;
        }
        foreach (var name in PiServices)
        {
            if (service.SequenceEqual(name))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The first rung one read-var or write-var item fails, or <see cref="DenyReason.None"/>.</summary>
    public DenyReason CheckItem(in S7Item item, bool write)
    {
        if (item.Syntax != S7SyntaxId.S7Any)
        {
            return BoundsObjects ? DenyReason.AreaOrBlock : write && Values is not null ? DenyReason.Value : DenyReason.None;
        }
        var area = item.AreaCode;
        if (Areas is { } areas && !areas.Contains(area))
        {
            return DenyReason.AreaOrBlock;
        }
        if (Blocks is not null && area is (byte)S7Area.DataBlocks or (byte)S7Area.InstanceDataBlocks && !Blocks.Contains(item.DbNumber))
        {
            return DenyReason.AreaOrBlock;
        }
        if (Addresses is not null && (item.Length <= 0 || !Addresses.ContainsRange(item.Start, item.Start + item.Length - 1)))
        {
            return DenyReason.Address;
        }
        if (write && Values is not null && !AllowsValues(item))
        {
            return DenyReason.Value;
        }
        return DenyReason.None;
    }

    /// <summary>
    /// Every value written by the item, read big-endian as <c>type:</c>. Values lie end to end from the first
    /// byte of the <c>address:</c> range that holds the item (the loader requires <c>address:</c> with
    /// <c>type:</c>), so a write that starts off that grid or covers part of a value cannot be checked and does
    /// not match; a bit write never holds a whole value. Counters and timers are read from their own start.
    /// NaN and infinities never match.
    /// </summary>
    private bool AllowsValues(in S7Item item)
    {
        var size = S7Item.ValueSize(ValueType);
        var data = item.Data;
        if (data.IsEmpty || data.Length % size != 0)
        {
            return false;
        }
        if (!item.IsElementAddressed)
        {
            if (Addresses is null || !Addresses.TryFindLow(item.Start, out var low) || (item.Start - low) % size != 0)
            {
                return false;
            }
        }
        var bounds = Values!;
        var count = data.Length / size;
        for (var i = 0; i < count; i++)
        {
            var value = item.ReadValue(ValueType, i);
            if (!double.IsFinite(value) || !bounds.Contains(value))
            {
                return false;
            }
        }
        return true;
    }

    public override bool Covers(RuleKeys later)
    {
        if (later is not S7RuleKeys other)
        {
            return false;
        }
        if (Connections is { } connections && (other.Connections is not { } otherConnections || !connections.IsSupersetOf(otherConnections)))
        {
            return false;
        }
        if (!Functions.IsSupersetOf(other.Functions))
        {
            return false;
        }
        if (PiServices is not null && (other.PiServices is null || !ContainsAll(PiServices, other.PiServices)))
        {
            return false;
        }
        if (Areas is { } areas && (other.Areas is not { } otherAreas || !areas.IsSupersetOf(otherAreas)))
        {
            return false;
        }
        if (Blocks is not null && (other.Blocks is null || !Blocks.IsSupersetOf(other.Blocks)))
        {
            return false;
        }
        if (Addresses is not null && (other.Addresses is null || !Addresses.IsSupersetOf(other.Addresses)))
        {
            return false;
        }
        return ValueBoundsCover(other);
    }

    /// <summary>True when every write this rule's <c>value:</c> allows, <paramref name="other"/>'s allows too, as far as values go (conservative).</summary>
    public bool ValueBoundsCover(S7RuleKeys other)
    {
        if (Values is null)
        {
            return true;
        }
        if (other.Values is null || other.ValueType != ValueType)
        {
            return false;
        }
        // The grid of values starts at each address range: only the same ranges read values the same way.
        if (Addresses is null || other.Addresses is null || !Addresses.IsSupersetOf(other.Addresses) || !other.Addresses.IsSupersetOf(Addresses))
        {
            return false;
        }
        return Values.IsSupersetOf(other.Values);
    }

    private static bool ContainsAll(byte[][] set, byte[][] subset)
    {
        foreach (var name in subset)
        {
            var found = false;
            foreach (var candidate in set)
            {
                found |= candidate.AsSpan().SequenceEqual(name);
            }
            if (!found)
            {
                return false;
            }
        }
        return true;
    }
}
