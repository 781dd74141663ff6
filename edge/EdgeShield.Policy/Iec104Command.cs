using System.Buffers.Binary;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Policy;

/// <summary>
/// One IEC 104 command ASDU (client → station) as a rule sees it (DESIGN.md "IEC 60870-5-104"), built by the
/// gateway session from primitive fields of its own ASDU view; <see cref="CompiledPolicy.Evaluate(SourceAddress, in Iec104Command, long)"/>
/// judges it. Fields the session leaves out take their safe defaults: <see cref="QualifierValid"/> false and
/// <see cref="IsSelect"/> false (an execute) are refusals, never a bypass. Allocation-free.
/// </summary>
/// <remarks>
/// A multi-object ASDU (N &gt; 1, SQ = 0 or 1) is judged as one request on the span from its lowest to its highest
/// IOA (<see cref="LowestIoa"/>..<see cref="HighestIoa"/>): that whole span must lie inside one merged <c>ioa:</c>
/// range, even where the objects leave gaps, and for set-points every value between <see cref="ValueMin"/> and
/// <see cref="ValueMax"/> must lie inside <c>value:</c>. Nothing in a refused ASDU is forwarded.
/// </remarks>
public readonly ref struct Iec104Command
{
    /// <summary>The type identification (45 C_SC_NA_1 …; <see cref="Iec104TypeId"/>).</summary>
    public byte Type { get; init; }

    /// <summary>
    /// The cause of transmission (bits 0-5): 6 activation, 8 deactivation, 5 request (C_RD_NA_1)… Rules do not judge it
    /// (a cause the type does not take is the session's to answer, 45, before the policy is asked); it chooses the
    /// refusal's cause (<see cref="Iec104Refusals.Cause"/>: 7, 9 or 5).
    /// </summary>
    public byte Cause { get; init; }

    /// <summary>The common address (station); 0xFFFF is the global address.</summary>
    public ushort CommonAddress { get; init; }

    /// <summary>The lowest information object address of the ASDU (0..16777215).</summary>
    public uint LowestIoa { get; init; }

    /// <summary>The highest information object address of the ASDU (= <see cref="LowestIoa"/> for one object).</summary>
    public uint HighestIoa { get; init; }

    /// <summary>True when the ASDU carries set-point values (<see cref="ValueMin"/>, <see cref="ValueMax"/>), read as the station reads them (<see cref="TryReadSetPoint"/>).</summary>
    public bool HasValue { get; init; }

    /// <summary>The least set-point value of the ASDU (normalised as -1..1, scaled as int16, float as float).</summary>
    public double ValueMin { get; init; }

    /// <summary>The greatest set-point value of the ASDU.</summary>
    public double ValueMax { get; init; }

    /// <summary>S/E = 1 in the qualifier (SCO, DCO, RCO, QOS): a select. False for an execute and for types without S/E.</summary>
    public bool IsSelect { get; init; }

    /// <summary>
    /// True when the qualifier is one the standard permits (DCO and RCO state 1 or 2, QU and QL as the session
    /// accepts, QOI 20..36 …). A request whose qualifier is not valid is refused as its value (<see cref="DenyReason.Value"/>).
    /// </summary>
    public bool QualifierValid { get; init; }

    /// <summary>
    /// Identifies type, common address, IOA and value (not S/E, not a time tag) so that an execute matches its
    /// select: <see cref="Key(byte, ushort, uint, ReadOnlySpan{byte})"/>.
    /// </summary>
    public ulong CommandKey { get; init; }

    /// <summary>The connection's table of selects, asked (never changed) by a <c>select-before-operate</c> rule; null = no select was ever recorded.</summary>
    public Iec104Selects? Selects { get; init; }

    /// <summary>Now, as <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>: the clock of <c>select-timeout</c> (the same as Evaluate's timestamp).</summary>
    public long Now { get; init; }

    /// <summary>An execute (S/E = 0) of a type that can be selected (<see cref="CarriesSelect"/>): what <c>select-before-operate</c> gates.</summary>
    public bool IsExecuteOfSelectable => CarriesSelect(Type) && !IsSelect;

    /// <summary>
    /// A <see cref="CommandKey"/> that identifies nothing (a multi-object command, a command the session could not
    /// key): <see cref="Iec104Selects"/> never records nor confirms it, so it never satisfies select-before-operate.
    /// <see cref="Key(byte, ushort, uint, ReadOnlySpan{byte})"/> never returns it.
    /// </summary>
    public const ulong NoKey = 0;

    /// <summary>The global common address (broadcast to every station behind the address).</summary>
    public const ushort GlobalAddress = 0xFFFF;

    /// <summary>Largest information object address (3 octets).</summary>
    public const uint MaxIoa = 0xFFFFFF;

    /// <summary>
    /// The command as rules see it, read from a well-formed (or unsized) ASDU: IOA span, values and qualifiers of
    /// every object; the select-before-operate key of a single-object command (0 for several objects, which
    /// select-before-operate never matches). Allocation-free.
    /// </summary>
    public static Iec104Command From(in Iec104Asdu asdu, Iec104Selects? selects, long now)
    {
        double min = 0, max = 0;
        bool hasValue = IsSetPoint(asdu.Type) && asdu.TryGetValue(out min, out max);
        ulong key = KeyOf(asdu);
        bool wellFormed = asdu.Status == Iec104AsduStatus.WellFormed;
        return new Iec104Command
        {
            Type = asdu.Type,
            Cause = asdu.Cause,
            CommonAddress = asdu.CommonAddress,
            LowestIoa = wellFormed ? asdu.LowestIoa : asdu.FirstIoa,
            HighestIoa = wellFormed ? asdu.HighestIoa : asdu.FirstIoa,
            HasValue = hasValue,
            ValueMin = min,
            ValueMax = max,
            IsSelect = asdu.IsSelect,
            QualifierValid = asdu.QualifierValid,
            CommandKey = key,
            Selects = selects,
            Now = now,
        };
    }

    /// <summary>The <see cref="CommandKey"/> of a well-formed single-object ASDU; <see cref="NoKey"/> otherwise (several objects never match a select).</summary>
    public static ulong KeyOf(in Iec104Asdu asdu)
    {
        if (asdu.Status != Iec104AsduStatus.WellFormed || asdu.Count != 1)
        {
            return NoKey;
        }
        foreach (var o in asdu)
        {
            return Key(asdu.Type, asdu.CommonAddress, o.Ioa, o.Element);
        }
        return NoKey;
    }

    /// <summary>
    /// The object a well-formed single-object ASDU addresses — common address and IOA, whatever the type and value —
    /// for <see cref="Iec104Selects.EndSelection"/>; <see cref="NoKey"/> otherwise.
    /// </summary>
    public static ulong PointOf(in Iec104Asdu asdu) =>
        asdu.Status == Iec104AsduStatus.WellFormed && asdu.Count == 1
            ? 1UL << 63 | (ulong)asdu.CommonAddress << 24 | (asdu.FirstIoa & MaxIoa)
            : NoKey;

    /// <summary>Types whose qualifier carries S/E (select / execute): 45-50 and 58-63 (SCO, DCO, RCO, QOS). Not 51/64 (bitstrings).</summary>
    public static bool CarriesSelect(byte type) => type is >= 45 and <= 50 or >= 58 and <= 63;

    /// <summary>Set-point types, the ones <c>value:</c> bounds: 48-50 and 61-63.</summary>
    public static bool IsSetPoint(byte type) => type is >= 48 and <= 50 or >= 61 and <= 63;

    /// <summary>
    /// Reads the value of one set-point element (the octets after its IOA) as the station does: normalised
    /// (48, 61) as int16 / 32768 (-1..1), scaled (49, 62) as int16, float (50, 63) as IEEE 754 single,
    /// little-endian. False for another type or a short element.
    /// </summary>
    public static bool TryReadSetPoint(byte type, ReadOnlySpan<byte> element, out double value)
    {
        value = 0;
        switch (type)
        {
            case 48 or 61 when element.Length >= 2:
                value = Iec104Values.Normalised(element);
                return true;
            case 49 or 62 when element.Length >= 2:
                value = Iec104Values.Scaled(element);
                return true;
            case 50 or 63 when element.Length >= 4:
                value = Iec104Values.Float(element);
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// The <see cref="CommandKey"/> of one object: type, common address, IOA and the element (the octets after
    /// the IOA) without its CP56Time2a time tag and with S/E cleared, so a select and its execute (same type, CA,
    /// IOA, value and qualifier but S/E and time) get the same key. Two commands to the same type, CA and IOA with
    /// different elements (up to 8 octets) never share a key; keys of different objects are mixed with a secret
    /// of the process. Never <see cref="NoKey"/>. Allocation-free.
    /// </summary>
    public static ulong Key(byte type, ushort commonAddress, uint ioa, ReadOnlySpan<byte> element)
    {
        if (Iec104Types.HasTimeTag(type) && element.Length >= Iec104Types.TimeTagSize)
        {
            element = element[..^Iec104Types.TimeTagSize];
        }
        var hash = Mix(Seed ^ (type | (ulong)commonAddress << 8 | (ulong)(ioa & MaxIoa) << 24));
        var selectable = CarriesSelect(type);
        var last = element.Length - 1;
        var chunk = 0UL;
        var shift = 0;
        for (var i = 0; i < element.Length; i++)
        {
            var octet = element[i];
            if (selectable && i == last)
            {
                octet &= 0x7F; // S/E: bit 7 of SCO, DCO, RCO and QOS, the last octet before the time tag
            }
            chunk |= (ulong)octet << shift;
            shift += 8;
            if (shift == 64)
            {
                hash = Mix(hash ^ chunk);
                chunk = 0;
                shift = 0;
            }
        }
        if (shift != 0 || element.IsEmpty)
        {
            hash = Mix(hash ^ chunk);
        }
        hash = Mix(hash ^ (ulong)element.Length);
        return hash == NoKey ? 1 : hash;
    }

    private static readonly ulong Seed = BitConverter.ToUInt64(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));

    /// <summary>MurmurHash3's 64-bit finaliser: a bijection, so one object's different elements never collide.</summary>
    private static ulong Mix(ulong k)
    {
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdUL;
        k ^= k >> 33;
        k *= 0xc4ceb9fe1a85ec53UL;
        k ^= k >> 33;
        return k;
    }
}
