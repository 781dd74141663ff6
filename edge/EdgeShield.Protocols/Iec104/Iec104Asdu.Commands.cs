using System.Buffers.Binary;

namespace EdgeShield.Protocols.Iec104;

/// <summary>
/// What identifies a command for select-before-operate (docs/IEC104.md "Select-before-operate"): the execute
/// must carry the same type, common address, information object address and value as its select.
/// <see cref="Value"/> is the element up to and including the qualifier, with the S/E bit cleared and the time
/// tag left out, so the qualifier (QU pulse, QL) must match too.
/// </summary>
public readonly record struct Iec104CommandKey(byte Type, ushort CommonAddress, uint Ioa, ulong Value);

public readonly ref partial struct Iec104Asdu
{
    /// <summary>
    /// True for a well-formed command that carries a qualifier with an S/E bit: 45-47 (SCO, DCO, RCO), 48-50
    /// set-points (QOS) and their time-tagged forms 58-63. Bitstrings (51, 64) have no qualifier.
    /// </summary>
    public bool IsCommand => Status == Iec104AsduStatus.WellFormed && Type is >= 45 and <= 50 or >= 58 and <= 63;

    /// <summary>The untimed form of a command type (58 → 45 …), else the type itself.</summary>
    private byte BaseType => Type is >= 58 and <= 64 ? (byte)(Type - 13) : Type;

    /// <summary>Offset of the qualifier (SCO/DCO/RCO, QOS) in a command's element.</summary>
    private int QualifierOffset => BaseType switch
    {
        48 or 49 => 2,
        50 => 4,
        _ => 0,
    };

    /// <summary>A command's first object selects (S/E = 1); false for an execute and for every other type.</summary>
    public bool IsSelect
    {
        get
        {
            if (!IsCommand)
            {
                return false;
            }
            var e = GetEnumerator();
            e.MoveNext();
            return (e.Current.Element[QualifierOffset] & 0x80) != 0;
        }
    }

    /// <summary>
    /// The qualifiers of a command hold values docs/IEC104.md permits, in every object: DCO and RCO state 1 or 2
    /// (0 and 3 are not permitted), QU of SCO/DCO/RCO 0..3, and one S/E for all objects (a select and an execute
    /// mixed in one ASDU is refused). For the system commands: C_IC_NA_1's QOI 20 (station) or 21-36 (group),
    /// C_CI_NA_1's QCC request 1-5 (group 1-4, general; any freeze), C_RP_NA_1's QRP 1 or 2 (general reset, reset of
    /// the event buffer). True for every other parsed ASDU; false on a view that was not parsed.
    /// </summary>
    public bool QualifierValid
    {
        get
        {
            if (Status == Iec104AsduStatus.WellFormed && Type is 100 or 101 or 105)
            {
                return SystemQualifiersValid();
            }
            if (!IsCommand)
            {
                return Status != Iec104AsduStatus.Malformed;
            }
            byte baseType = BaseType;
            int offset = QualifierOffset;
            int select = -1;
            foreach (var o in this)
            {
                byte q = o.Element[offset];
                int se = q >> 7;
                if (select >= 0 && se != select)
                {
                    return false;
                }
                select = se;
                if (baseType is 45 or 46 or 47)
                {
                    int qu = (q >> 2) & 0x1F;
                    if (qu > 3)
                    {
                        return false;
                    }
                    if (baseType != 45 && (q & 0x03) is 0 or 3)
                    {
                        return false;
                    }
                }
            }
            return true;
        }
    }

    /// <summary>QOI, QCC or QRP of every object of a C_IC_NA_1, C_CI_NA_1 or C_RP_NA_1 (IEC 60870-5-101, 7.2.6.22, 7.2.6.23, 7.2.6.27).</summary>
    private bool SystemQualifiersValid()
    {
        byte type = Type;
        foreach (var o in this)
        {
            byte q = o.Element[0];
            bool valid = type switch
            {
                100 => q is >= 20 and <= 36,
                101 => (q & 0x3F) is >= 1 and <= 5,
                _ => q is 1 or 2,
            };
            if (!valid)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// The lowest and highest value a command carries across its objects, as the station reads it: SCO its state
    /// (0, 1), DCO and RCO their state (bits 0-1), normalised set-points int16 / 32768, scaled int16, float IEEE
    /// single. False for other types and for a float that is not a number (a value bound then refuses it).
    /// </summary>
    public bool TryGetValue(out double min, out double max)
    {
        min = 0;
        max = 0;
        if (!IsCommand)
        {
            return false;
        }
        byte baseType = BaseType;
        bool any = false;
        foreach (var o in this)
        {
            var element = o.Element;
            double value = baseType switch
            {
                45 => element[0] & 0x01,
                46 or 47 => element[0] & 0x03,
                48 => Iec104Values.Normalised(element),
                49 => Iec104Values.Scaled(element),
                _ => Iec104Values.Float(element),
            };
            if (double.IsNaN(value))
            {
                min = max = 0;
                return false;
            }
            if (!any)
            {
                min = max = value;
                any = true;
            }
            else
            {
                min = Math.Min(min, value);
                max = Math.Max(max, value);
            }
        }
        return any;
    }

    /// <summary>
    /// The select-before-operate key of a single-object command (N = 1): same type, CA, IOA, value and qualifier,
    /// ignoring S/E and the time tag. False for other types and for commands with several objects (which
    /// select-before-operate does not match: the gateway refuses them under such a rule).
    /// </summary>
    public bool TryGetCommandKey(out Iec104CommandKey key)
    {
        key = default;
        if (!IsCommand || Count != 1)
        {
            return false;
        }
        var e = GetEnumerator();
        e.MoveNext();
        var o = e.Current;
        int offset = QualifierOffset;
        ulong value = (ulong)(o.Element[offset] & 0x7F) << 32;
        value |= offset switch
        {
            2 => BinaryPrimitives.ReadUInt16LittleEndian(o.Element),
            4 => BinaryPrimitives.ReadUInt32LittleEndian(o.Element),
            _ => 0,
        };
        key = new Iec104CommandKey(Type, CommonAddress, o.Ioa, value);
        return true;
    }
}
