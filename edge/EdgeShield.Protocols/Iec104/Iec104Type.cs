namespace EdgeShield.Protocols.Iec104;

/// <summary>
/// ASDU type identifications of IEC 60870-5-104 (docs/IEC104.md "Types"), named as the standard and
/// Wireshark name them. The value is the type octet; a number absent here is unknown to the codec.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1707", Justification = "The standard's type names (C_SC_NA_1) are the words integrators write under type: and read in Wireshark.")]
public enum Iec104TypeId : byte
{
    M_SP_NA_1 = 1,
    M_DP_NA_1 = 3,
    M_ST_NA_1 = 5,
    M_BO_NA_1 = 7,
    M_ME_NA_1 = 9,
    M_ME_NB_1 = 11,
    M_ME_NC_1 = 13,
    M_IT_NA_1 = 15,
    M_PS_NA_1 = 20,
    M_ME_ND_1 = 21,
    M_SP_TB_1 = 30,
    M_DP_TB_1 = 31,
    M_ST_TB_1 = 32,
    M_BO_TB_1 = 33,
    M_ME_TD_1 = 34,
    M_ME_TE_1 = 35,
    M_ME_TF_1 = 36,
    M_IT_TB_1 = 37,
    M_EP_TD_1 = 38,
    M_EP_TE_1 = 39,
    M_EP_TF_1 = 40,
    S_IT_TC_1 = 41,
    C_SC_NA_1 = 45,
    C_DC_NA_1 = 46,
    C_RC_NA_1 = 47,
    C_SE_NA_1 = 48,
    C_SE_NB_1 = 49,
    C_SE_NC_1 = 50,
    C_BO_NA_1 = 51,
    C_SC_TA_1 = 58,
    C_DC_TA_1 = 59,
    C_RC_TA_1 = 60,
    C_SE_TA_1 = 61,
    C_SE_TB_1 = 62,
    C_SE_TC_1 = 63,
    C_BO_TA_1 = 64,
    M_EI_NA_1 = 70,
    S_CH_NA_1 = 81,
    S_RP_NA_1 = 82,
    S_AR_NA_1 = 83,
    S_KR_NA_1 = 84,
    S_KS_NA_1 = 85,
    S_KC_NA_1 = 86,
    S_ER_NA_1 = 87,
    S_US_NA_1 = 90,
    S_UQ_NA_1 = 91,
    S_UR_NA_1 = 92,
    S_UK_NA_1 = 93,
    S_UA_NA_1 = 94,
    S_UC_NA_1 = 95,
    C_IC_NA_1 = 100,
    C_CI_NA_1 = 101,
    C_RD_NA_1 = 102,
    C_CS_NA_1 = 103,
    C_RP_NA_1 = 105,
    C_TS_TA_1 = 107,
    P_ME_NA_1 = 110,
    P_ME_NB_1 = 111,
    P_ME_NC_1 = 112,
    P_AC_NA_1 = 113,
    F_FR_NA_1 = 120,
    F_SR_NA_1 = 121,
    F_SC_NA_1 = 122,
    F_LS_NA_1 = 123,
    F_AF_NA_1 = 124,
    F_SG_NA_1 = 125,
    F_DR_TA_1 = 126,
    F_SC_NB_1 = 127,
}

/// <summary>
/// What a type is for, as the policy groups of DESIGN.md "IEC 60870-5-104" name them. <see cref="Monitor"/>
/// types flow from the station and are never requested; <see cref="Other"/> (41, 81-95) are allowed only by
/// name or number; <see cref="Unknown"/> is every number the table does not hold.
/// </summary>
public enum Iec104TypeGroup : byte
{
    Unknown = 0,
    Monitor,
    Control,
    System,
    Clock,
    Parameter,
    File,
    Other,
}

/// <summary>
/// The type table of docs/IEC104.md, written once: group, element size (octets after the IOA) and name,
/// indexed by the type octet. Allocation-free.
/// </summary>
public static class Iec104Types
{
    /// <summary><see cref="ElementSize"/> of a type whose element length is carried in the element (125 F_SG_NA_1).</summary>
    public const int VariableSize = -1;

    /// <summary><see cref="ElementSize"/> of a type whose element the codec does not size (unknown types, 41, 81-95).</summary>
    public const int Unsized = -2;

    /// <summary>Octets of a CP56Time2a time tag.</summary>
    public const int TimeTagSize = 7;

    private static readonly sbyte[] Sizes = BuildSizes();
    private static readonly Iec104TypeGroup[] Groups = BuildGroups();
    private static readonly string[] Names = BuildNames();

    /// <summary>Octets of one information element of <paramref name="type"/> (after its 3-octet IOA), or <see cref="VariableSize"/> / <see cref="Unsized"/>.</summary>
    public static int ElementSize(byte type) => Sizes[type];

    /// <summary>The policy group of <paramref name="type"/>.</summary>
    public static Iec104TypeGroup Group(byte type) => Groups[type];

    /// <summary>True for a type the table holds.</summary>
    public static bool IsKnown(byte type) => Groups[type] != Iec104TypeGroup.Unknown;

    /// <summary>True for a type that carries a CP56Time2a time tag at the end of its element.</summary>
    public static bool HasTimeTag(byte type) => type is >= 30 and <= 40 or >= 58 and <= 64 or 103 or 107 or 126;

    /// <summary>The standard's name of <paramref name="type"/> (<c>C_SC_NA_1</c>), or its number for an unknown type.</summary>
    public static string Name(byte type) => Names[type];

    /// <summary>Parses a type name (<c>C_SC_NA_1</c>, case-insensitive) of the table.</summary>
    public static bool TryParseName(string name, out byte type)
    {
        for (var t = 0; t < Names.Length; t++)
        {
            if (IsKnown((byte)t) && string.Equals(Names[t], name, StringComparison.OrdinalIgnoreCase))
            {
                type = (byte)t;
                return true;
            }
        }
        type = 0;
        return false;
    }

    /// <summary>The policy word of a group (<c>control</c>…), as written under <c>type:</c>.</summary>
    public static string GroupWord(Iec104TypeGroup group) => group switch
    {
        Iec104TypeGroup.Monitor => "monitor",
        Iec104TypeGroup.Control => "control",
        Iec104TypeGroup.System => "system",
        Iec104TypeGroup.Clock => "clock",
        Iec104TypeGroup.Parameter => "parameter",
        Iec104TypeGroup.File => "file",
        Iec104TypeGroup.Other => "other",
        _ => "unknown",
    };

    private static sbyte[] BuildSizes()
    {
        var sizes = new sbyte[256];
        Array.Fill(sizes, (sbyte)Unsized);
        void Set(Iec104TypeId type, int size) => sizes[(byte)type] = (sbyte)size;
        // Monitor direction: value + quality; 30-37 add a CP56Time2a.
        Set(Iec104TypeId.M_SP_NA_1, 1);
        Set(Iec104TypeId.M_DP_NA_1, 1);
        Set(Iec104TypeId.M_ST_NA_1, 2);
        Set(Iec104TypeId.M_BO_NA_1, 5);
        Set(Iec104TypeId.M_ME_NA_1, 3);
        Set(Iec104TypeId.M_ME_NB_1, 3);
        Set(Iec104TypeId.M_ME_NC_1, 5);
        Set(Iec104TypeId.M_IT_NA_1, 5);
        Set(Iec104TypeId.M_PS_NA_1, 5);
        Set(Iec104TypeId.M_ME_ND_1, 2);
        Set(Iec104TypeId.M_SP_TB_1, 1 + TimeTagSize);
        Set(Iec104TypeId.M_DP_TB_1, 1 + TimeTagSize);
        Set(Iec104TypeId.M_ST_TB_1, 2 + TimeTagSize);
        Set(Iec104TypeId.M_BO_TB_1, 5 + TimeTagSize);
        Set(Iec104TypeId.M_ME_TD_1, 3 + TimeTagSize);
        Set(Iec104TypeId.M_ME_TE_1, 3 + TimeTagSize);
        Set(Iec104TypeId.M_ME_TF_1, 5 + TimeTagSize);
        Set(Iec104TypeId.M_IT_TB_1, 5 + TimeTagSize);
        // Protection events: SEP/SPE/OCI + CP16Time2a elapsed time (+ QDP) + CP56Time2a.
        Set(Iec104TypeId.M_EP_TD_1, 3 + TimeTagSize);
        Set(Iec104TypeId.M_EP_TE_1, 4 + TimeTagSize);
        Set(Iec104TypeId.M_EP_TF_1, 4 + TimeTagSize);
        Set(Iec104TypeId.M_EI_NA_1, 1);
        // Control direction: SCO/DCO/RCO, set-points value + QOS, bitstring; 58-64 add a CP56Time2a.
        Set(Iec104TypeId.C_SC_NA_1, 1);
        Set(Iec104TypeId.C_DC_NA_1, 1);
        Set(Iec104TypeId.C_RC_NA_1, 1);
        Set(Iec104TypeId.C_SE_NA_1, 3);
        Set(Iec104TypeId.C_SE_NB_1, 3);
        Set(Iec104TypeId.C_SE_NC_1, 5);
        Set(Iec104TypeId.C_BO_NA_1, 4);
        Set(Iec104TypeId.C_SC_TA_1, 1 + TimeTagSize);
        Set(Iec104TypeId.C_DC_TA_1, 1 + TimeTagSize);
        Set(Iec104TypeId.C_RC_TA_1, 1 + TimeTagSize);
        Set(Iec104TypeId.C_SE_TA_1, 3 + TimeTagSize);
        Set(Iec104TypeId.C_SE_TB_1, 3 + TimeTagSize);
        Set(Iec104TypeId.C_SE_TC_1, 5 + TimeTagSize);
        Set(Iec104TypeId.C_BO_TA_1, 4 + TimeTagSize);
        // System, clock, parameters.
        Set(Iec104TypeId.C_IC_NA_1, 1);
        Set(Iec104TypeId.C_CI_NA_1, 1);
        Set(Iec104TypeId.C_RD_NA_1, 0);
        Set(Iec104TypeId.C_CS_NA_1, TimeTagSize);
        Set(Iec104TypeId.C_RP_NA_1, 1);
        Set(Iec104TypeId.C_TS_TA_1, 2 + TimeTagSize);
        Set(Iec104TypeId.P_ME_NA_1, 3);
        Set(Iec104TypeId.P_ME_NB_1, 3);
        Set(Iec104TypeId.P_ME_NC_1, 5);
        Set(Iec104TypeId.P_AC_NA_1, 1);
        // File transfer.
        Set(Iec104TypeId.F_FR_NA_1, 6);
        Set(Iec104TypeId.F_SR_NA_1, 7);
        Set(Iec104TypeId.F_SC_NA_1, 4);
        Set(Iec104TypeId.F_LS_NA_1, 5);
        Set(Iec104TypeId.F_AF_NA_1, 4);
        Set(Iec104TypeId.F_SG_NA_1, VariableSize);
        Set(Iec104TypeId.F_DR_TA_1, 6 + TimeTagSize);
        Set(Iec104TypeId.F_SC_NB_1, 16);
        return sizes;
    }

    private static Iec104TypeGroup[] BuildGroups()
    {
        var groups = new Iec104TypeGroup[256];
        foreach (var type in Enum.GetValues<Iec104TypeId>())
        {
            var t = (byte)type;
            groups[t] = t switch
            {
                <= 40 or 70 => Iec104TypeGroup.Monitor,
                41 or >= 81 and <= 95 => Iec104TypeGroup.Other,
                >= 45 and <= 64 => Iec104TypeGroup.Control,
                103 => Iec104TypeGroup.Clock,
                >= 100 and <= 107 => Iec104TypeGroup.System,
                >= 110 and <= 113 => Iec104TypeGroup.Parameter,
                >= 120 and <= 127 => Iec104TypeGroup.File,
                _ => Iec104TypeGroup.Unknown,
            };
        }
        return groups;
    }

    private static string[] BuildNames()
    {
        var names = new string[256];
        for (var t = 0; t < names.Length; t++)
        {
            names[t] = t.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        foreach (var type in Enum.GetValues<Iec104TypeId>())
        {
            names[(byte)type] = type.ToString();
        }
        return names;
    }
}
