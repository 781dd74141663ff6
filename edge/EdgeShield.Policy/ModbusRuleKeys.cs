using System.Buffers.Binary;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Policy;

/// <summary>
/// The functions a rule names: function bytes, plus the MEI types of function 43 and the
/// sub-functions of function 8 kept apart.
/// </summary>
internal struct FunctionSet
{
    /// <summary>FC 8 sub-function 01, restart communications (MODBUS over serial line, 6.8.1): only by its own name.</summary>
    public const byte RestartCommunications = 1;
    /// <summary>FC 8 sub-function 04, force listen only mode: takes a device off the bus; only by its own name.</summary>
    public const byte ForceListenOnlyMode = 4;

    private const byte DiagnosticsCode = 8;

    /// <summary>Function bytes other than 43; 8 is set when any sub-function of 8 is.</summary>
    public Bits256 Codes;
    /// <summary>43/13, CANopen general reference: only by its own name.</summary>
    public bool Mei13;
    /// <summary>43/14, read device identification (also a bare <c>43</c>).</summary>
    public bool Mei14;
    /// <summary>43 with any other MEI type: only a rule without <c>function:</c>.</summary>
    public bool MeiOther;
    /// <summary>FC 8 sub-functions 0..255 allowed.</summary>
    public Bits256 Diagnostics;
    /// <summary>FC 8 sub-functions 256..65535 (none is defined by the spec): by a bare <c>8</c>, the group or no <c>function:</c>.</summary>
    public bool DiagnosticsOther;

    public static FunctionSet Any => new() { Codes = Bits256.All, Mei13 = true, Mei14 = true, MeiOther = true, Diagnostics = Bits256.All, DiagnosticsOther = true };

    /// <summary>A bare <c>8</c> or the <c>diagnostics</c> group: every sub-function but 01 and 04.</summary>
    public void AddDiagnostics()
    {
        Codes.Add(DiagnosticsCode);
        var all = Bits256.All;
        all.Remove(RestartCommunications);
        all.Remove(ForceListenOnlyMode);
        Diagnostics = Diagnostics.Union(all);
        DiagnosticsOther = true;
    }

    /// <summary>One sub-function of 8, by number (<c>8/4</c>) or name.</summary>
    public void AddDiagnostics(byte subFunction)
    {
        Codes.Add(DiagnosticsCode);
        Diagnostics.Add(subFunction);
    }

    public readonly bool Contains(byte functionCode, byte meiType, ushort subFunction) => functionCode switch
    {
        ModbusFunctions.EncapsulatedInterface => meiType switch
        {
            ModbusFunctions.MeiCanOpen => Mei13,
            ModbusFunctions.MeiDeviceIdentification => Mei14,
            _ => MeiOther,
        },
        DiagnosticsCode => subFunction <= byte.MaxValue ? Diagnostics.Contains((byte)subFunction) : DiagnosticsOther,
        _ => Codes.Contains(functionCode),
    };

    public readonly bool IsSupersetOf(in FunctionSet other) =>
        Codes.IsSupersetOf(other.Codes) && (Mei13 || !other.Mei13) && (Mei14 || !other.Mei14) && (MeiOther || !other.MeiOther)
        && Diagnostics.IsSupersetOf(other.Diagnostics) && (DiagnosticsOther || !other.DiagnosticsOther);

    public readonly bool IsEmpty => Codes.IsEmpty && !Mei13 && !Mei14 && !MeiOther;
}

/// <summary>A Modbus request as a rule sees it: the unit it is addressed to, and the decoded request.</summary>
internal readonly ref struct ModbusTarget(byte unit, in ModbusRequest request)
{
    public byte Unit { get; } = unit;
    public ModbusRequest Request { get; } = request;
}

/// <summary>
/// The Modbus keys of one rule (<c>unit</c>, <c>function</c>, <c>address</c>, <c>value</c>, <c>type</c>,
/// <c>word-order</c>), compiled. Every constraint is precomputed into a structure whose check costs O(1)
/// or O(log n) and allocates nothing. A null set means the rule left the key out and matches any value of it.
/// </summary>
internal sealed class ModbusRuleKeys : RuleKeys, IRuleKeys<ModbusTarget>
{
    public Bits256 Units { get; init; } = Bits256.All;
    /// <summary>True when the rule has <c>unit:</c>. Without it, unit 0 (a serial broadcast) matches reads only.</summary>
    public bool UnitNamed { get; init; }
    public FunctionSet Functions { get; init; } = FunctionSet.Any;
    /// <summary>Wire addresses, 0..65535; null = any, including requests that touch no table.</summary>
    public IntervalSet<int>? Addresses { get; init; }
    /// <summary>Register values, 0..65535, each register on its own (a rule without <c>type:</c>); null = any.</summary>
    public IntervalSet<int>? Values { get; init; }
    /// <summary><c>type:</c> (int16, uint16, int32, uint32, float32): how <see cref="TypedValues"/> reads the written registers; null without it.</summary>
    public TagType? ValueType { get; init; }
    /// <summary><c>word-order:</c> of a typed value's bytes as written.</summary>
    public WordOrder WordOrder { get; init; }
    /// <summary>The bounds of <c>value:</c> on a rule with <c>type:</c>; null otherwise.</summary>
    public ValueBounds? TypedValues { get; init; }

    /// <summary>True when the rule has <c>value:</c>, typed or not.</summary>
    public bool BoundsValues => Values is not null || TypedValues is not null;

    /// <summary>Registers per typed value: 2 for int32, uint32 and float32, else 1.</summary>
    public int ValueWidth => ValueType is TagType.Int32 or TagType.UInt32 or TagType.Float32 ? 2 : 1;

    public override bool Covers(RuleKeys later) =>
        later is ModbusRuleKeys other
        && Units.IsSupersetOf(other.Units) && !(other.UnitNamed && other.Units.Contains(0) && !UnitNamed)
        && EffectiveFunctions.IsSupersetOf(other.EffectiveFunctions)
        && (Addresses is null || (other.Addresses is not null && Addresses.IsSupersetOf(other.Addresses)))
        && ValueBoundsCover(other);

    public bool InScope(in ModbusTarget target) => MatchesUnit(target.Unit, target.Request);

    public DenyReason Check(in ModbusTarget target)
    {
        var request = target.Request;
        return !Functions.Contains(request.FunctionCode, request.MeiType, request.SubFunction) ? DenyReason.Function
            : !MatchesAddress(request) ? DenyReason.Address
            : !MatchesValues(request) ? DenyReason.Value
            : DenyReason.None;
    }

    /// <summary>
    /// The unit check. Unit 0 is a broadcast on a serial bus (every device acts on it, none answers): a
    /// rule that does not name unit 0 in <c>unit:</c> lets it through only for the <c>read</c> group (which
    /// a bus refuses to broadcast, and which a TCP device may answer as unit 0), never for a write.
    /// </summary>
    public bool MatchesUnit(byte unitId, in ModbusRequest request) =>
        Units.Contains(unitId) && (unitId != 0 || UnitNamed || IsRead(request));

    /// <summary>The <c>read</c> group: 1, 2, 3, 4, 20, 24, 43/14.</summary>
    public static bool IsRead(in ModbusRequest request) => request.FunctionCode switch
    {
        1 or 2 or 3 or 4 or 20 or 24 => true,
        ModbusFunctions.EncapsulatedInterface => request.MeiType == ModbusFunctions.MeiDeviceIdentification,
        _ => false,
    };

    public bool MatchesAddress(in ModbusRequest request)
    {
        if (Addresses is null)
        {
            return true;
        }
        var read = request.ReadSpan;
        var write = request.WriteSpan;
        if (read.IsEmpty && write.IsEmpty)
        {
            // A rule that bounds addresses says nothing about functions that touch no table
            // (7, 8, 11, 12, 17, 20, 21, 43, user codes): it does not allow them.
            return false;
        }
        return (read.IsEmpty || Addresses.ContainsRange(read.Start, read.Last))
            && (write.IsEmpty || Addresses.ContainsRange(write.Start, write.Last));
    }

    public bool MatchesValues(in ModbusRequest request)
    {
        if (TypedValues is not null)
        {
            return MatchesTypedValues(request);
        }
        if (Values is null)
        {
            return true;
        }
        if (WritesUncheckedValues(request))
        {
            return false;
        }
        var count = request.RegisterValueCount;
        for (var i = 0; i < count; i++)
        {
            if (!Values.Contains(request.RegisterValue(i)))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// <c>value:</c> with <c>type:</c>: the written registers read as the PLC reads them. Values lie
    /// end to end from the first address of each merged <c>address:</c> range (the loader requires
    /// <c>address:</c> for a 32-bit type and a whole number of values in each range), so a write
    /// that starts off that grid or covers part of a value cannot be checked and does not match;
    /// FC 6 against a 32-bit type always covers part of one. NaN and infinities never match.
    /// </summary>
    private bool MatchesTypedValues(in ModbusRequest request)
    {
        if (WritesUncheckedValues(request))
        {
            return false;
        }
        var values = request.RegisterValues;
        var size = ValueWidth * 2;
        if (values.IsEmpty)
        {
            return true;
        }
        if (size == 4)
        {
            var start = request.WriteSpan.Start;
            if (values.Length % 4 != 0 || Addresses is null || !Addresses.TryFindLow(start, out var low) || ((start - low) & 1) != 0)
            {
                return false;
            }
        }
        Span<byte> word = stackalloc byte[4];
        word = word[..size];
        var bounds = TypedValues!;
        for (var i = 0; i + size <= values.Length; i += size)
        {
            WordOrdering.ToBigEndian(values.Slice(i, size), word, WordOrder);
            double value = ValueType switch
            {
                TagType.Int16 => BinaryPrimitives.ReadInt16BigEndian(word),
                TagType.Int32 => BinaryPrimitives.ReadInt32BigEndian(word),
                TagType.UInt32 => BinaryPrimitives.ReadUInt32BigEndian(word),
                TagType.Float32 => BinaryPrimitives.ReadSingleBigEndian(word),
                _ => BinaryPrimitives.ReadUInt16BigEndian(word),
            };
            if (!double.IsFinite(value) || !bounds.Contains(value))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// True when every write this rule's <c>value:</c> allows is one <paramref name="other"/>'s allows
    /// too, as far as values go. Conservative: typed and untyped bounds, or different types, word
    /// orders or (for 32-bit types) address grids, never cover each other.
    /// </summary>
    public bool ValueBoundsCover(ModbusRuleKeys other)
    {
        if (!BoundsValues)
        {
            return true;
        }
        if (!other.BoundsValues)
        {
            return false;
        }
        if (Values is not null || other.Values is not null)
        {
            return Values is not null && other.Values is not null && Values.IsSupersetOf(other.Values);
        }
        if (ValueType != other.ValueType || WordOrder != other.WordOrder)
        {
            return false;
        }
        if (ValueWidth == 2 && (Addresses is null || other.Addresses is null || !Addresses.IsSupersetOf(other.Addresses) || !other.Addresses.IsSupersetOf(Addresses)))
        {
            return false;
        }
        return TypedValues!.IsSupersetOf(other.TypedValues!);
    }

    /// <summary>
    /// Functions whose written data <c>value:</c> cannot bound: 22 (the result depends on the
    /// register's current value), 21 (file records), 43/13 (CANopen SDO) and codes whose
    /// meaning the spec does not define (vendor programming services).
    /// </summary>
    public static bool WritesUncheckedValues(in ModbusRequest request) =>
        request.FunctionCode is 21 or 22 || ModbusFunctions.Classify(request.FunctionCode, request.MeiType) is ModbusFunction.Unknown or ModbusFunction.CanOpenGeneralReference;

    /// <summary>The functions this rule can ever allow: with <c>value:</c>, not those of <see cref="WritesUncheckedValues"/>.</summary>
    public FunctionSet EffectiveFunctions
    {
        get
        {
            var set = Functions;
            if (BoundsValues)
            {
                for (var fc = 0; fc < 256; fc++)
                {
                    if (fc is 21 or 22 || (fc != ModbusFunctions.EncapsulatedInterface && ModbusFunctions.Classify((byte)fc, 0) == ModbusFunction.Unknown))
                    {
                        set.Codes.Remove((byte)fc);
                    }
                }
                set.Mei13 = false;
                set.MeiOther = false;
            }
            return set;
        }
    }
}
