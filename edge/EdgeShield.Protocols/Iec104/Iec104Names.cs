namespace EdgeShield.Protocols.Iec104;

/// <summary>Causes of transmission (docs/IEC104.md "Causes"), by number, and their names for the audit.</summary>
public static class Iec104Causes
{
    public const byte Periodic = 1;
    public const byte Background = 2;
    public const byte Spontaneous = 3;
    public const byte Initialised = 4;
    public const byte Request = 5;
    public const byte Activation = 6;
    public const byte ActivationConfirmation = 7;
    public const byte Deactivation = 8;
    public const byte DeactivationConfirmation = 9;
    public const byte ActivationTermination = 10;
    public const byte ReturnRemote = 11;
    public const byte ReturnLocal = 12;
    public const byte File = 13;
    public const byte StationInterrogation = 20;
    public const byte UnknownType = 44;
    public const byte UnknownCause = 45;
    public const byte UnknownCommonAddress = 46;
    public const byte UnknownIoa = 47;

    /// <summary>
    /// True for a cause a station answers a command with (DESIGN.md "IEC 60870-5-104"): activation or deactivation
    /// confirmation (7, 9), activation termination (10), or, with P/N set, unknown type, cause, common address or
    /// information object address (44-47). Such an ASDU must match a command outstanding on its connection.
    /// </summary>
    public static bool IsAnswer(byte cause, bool negative) => cause is ActivationConfirmation or DeactivationConfirmation or ActivationTermination
        || (negative && cause is >= UnknownType and <= UnknownIoa);

    /// <summary>The name of <paramref name="cause"/> (bits 0-5 of the COT octet), "reserved" for 14-16 and 48-63.</summary>
    public static string Name(byte cause) => cause switch
    {
        0 => "not used",
        1 => "periodic",
        2 => "background",
        3 => "spontaneous",
        4 => "initialised",
        5 => "request",
        6 => "activation",
        7 => "activation confirmation",
        8 => "deactivation",
        9 => "deactivation confirmation",
        10 => "activation termination",
        11 => "return remote",
        12 => "return local",
        13 => "file",
        20 => "station interrogation",
        >= 21 and <= 36 => GroupNames[cause - 21],
        37 => "counter interrogation",
        >= 38 and <= 41 => CounterGroupNames[cause - 38],
        44 => "unknown type",
        45 => "unknown cause",
        46 => "unknown common address",
        47 => "unknown information object address",
        _ => "reserved",
    };

    private static readonly string[] GroupNames = BuildGroupNames("group interrogation ", 16);
    private static readonly string[] CounterGroupNames = BuildGroupNames("counter group interrogation ", 4);

    private static string[] BuildGroupNames(string prefix, int count)
    {
        var names = new string[count];
        for (int i = 0; i < count; i++)
        {
            names[i] = prefix + (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return names;
    }
}

/// <summary>Names of U-frame functions for the audit.</summary>
public static class Iec104UFunctions
{
    /// <summary>STARTDT act, TESTFR con…; "invalid" for no or several function bits.</summary>
    public static string Name(Iec104UFunction function) => function switch
    {
        Iec104UFunction.StartDtAct => "STARTDT act",
        Iec104UFunction.StartDtCon => "STARTDT con",
        Iec104UFunction.StopDtAct => "STOPDT act",
        Iec104UFunction.StopDtCon => "STOPDT con",
        Iec104UFunction.TestFrAct => "TESTFR act",
        Iec104UFunction.TestFrCon => "TESTFR con",
        _ => "invalid",
    };

    /// <summary>The confirmation of an activation (STARTDT act → STARTDT con …); None for a confirmation.</summary>
    public static Iec104UFunction Confirmation(Iec104UFunction activation) => activation switch
    {
        Iec104UFunction.StartDtAct => Iec104UFunction.StartDtCon,
        Iec104UFunction.StopDtAct => Iec104UFunction.StopDtCon,
        Iec104UFunction.TestFrAct => Iec104UFunction.TestFrCon,
        _ => Iec104UFunction.None,
    };
}
