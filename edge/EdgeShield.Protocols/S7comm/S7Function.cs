namespace EdgeShield.Protocols.S7comm;

/// <summary>
/// What a job or userdata request asks for, named after the policy words of DESIGN.md "S7comm"
/// (<see cref="S7Functions.PolicyWord"/> gives the word).
/// </summary>
public enum S7Function : byte
{
    /// <summary>A job function code or userdata group/subfunction the codec does not know (refused).</summary>
    Unknown = 0,
    /// <summary>Job 00.</summary>
    CpuServices,
    /// <summary>Job F0.</summary>
    SetupCommunication,
    /// <summary>Job 04.</summary>
    ReadVar,
    /// <summary>Job 05.</summary>
    WriteVar,
    /// <summary>Job 1A.</summary>
    RequestDownload,
    /// <summary>Job 1B.</summary>
    DownloadBlock,
    /// <summary>Job 1C.</summary>
    DownloadEnded,
    /// <summary>Job 1D.</summary>
    StartUpload,
    /// <summary>Job 1E.</summary>
    Upload,
    /// <summary>Job 1F.</summary>
    EndUpload,
    /// <summary>Job 28: a PI service by name (<see cref="S7Request.PiService"/>).</summary>
    PlcControl,
    /// <summary>Job 29.</summary>
    PlcStop,
    /// <summary>Userdata group 0.</summary>
    ModeTransition,
    /// <summary>Userdata group 1.</summary>
    ProgrammerCommands,
    /// <summary>Userdata group 2.</summary>
    CyclicData,
    /// <summary>Userdata group 3.</summary>
    BlockFunctions,
    /// <summary>Userdata group 4.</summary>
    CpuFunctions,
    /// <summary>Userdata group 5.</summary>
    Security,
    /// <summary>Userdata group 6.</summary>
    BsendBrecv,
    /// <summary>Userdata group 7, subfunction 1 or 3.</summary>
    TimeRead,
    /// <summary>Userdata group 7, subfunction 2 or 4.</summary>
    TimeSet,
    /// <summary>Userdata group F.</summary>
    NcProgramming,
    /// <summary>An S7comm-Plus PDU (protocol id 72), allowed or refused as a whole.</summary>
    S7commPlus,
}

/// <summary>Function codes and names.</summary>
public static class S7Functions
{
    public const byte CpuServices = 0x00;
    public const byte SetupCommunication = 0xF0;
    public const byte ReadVar = 0x04;
    public const byte WriteVar = 0x05;
    public const byte RequestDownload = 0x1A;
    public const byte DownloadBlock = 0x1B;
    public const byte DownloadEnded = 0x1C;
    public const byte StartUpload = 0x1D;
    public const byte Upload = 0x1E;
    public const byte EndUpload = 0x1F;
    public const byte PlcControl = 0x28;
    public const byte PlcStop = 0x29;

    /// <summary>The job function of a job function code.</summary>
    public static S7Function FromJobCode(byte code) => code switch
    {
        CpuServices => S7Function.CpuServices,
        SetupCommunication => S7Function.SetupCommunication,
        ReadVar => S7Function.ReadVar,
        WriteVar => S7Function.WriteVar,
        RequestDownload => S7Function.RequestDownload,
        DownloadBlock => S7Function.DownloadBlock,
        DownloadEnded => S7Function.DownloadEnded,
        StartUpload => S7Function.StartUpload,
        Upload => S7Function.Upload,
        EndUpload => S7Function.EndUpload,
        PlcControl => S7Function.PlcControl,
        PlcStop => S7Function.PlcStop,
        _ => S7Function.Unknown,
    };

    /// <summary>The function of a userdata group and subfunction (group 7 splits into time-read and time-set).</summary>
    public static S7Function FromUserdata(byte group, byte subfunction) => group switch
    {
        0x0 => S7Function.ModeTransition,
        0x1 => S7Function.ProgrammerCommands,
        0x2 => S7Function.CyclicData,
        0x3 => S7Function.BlockFunctions,
        0x4 => S7Function.CpuFunctions,
        0x5 => S7Function.Security,
        0x6 => S7Function.BsendBrecv,
        0x7 => subfunction switch
        {
            1 or 3 => S7Function.TimeRead,
            2 or 4 => S7Function.TimeSet,
            _ => S7Function.Unknown,
        },
        0xF => S7Function.NcProgramming,
        _ => S7Function.Unknown,
    };

    /// <summary>The policy word of DESIGN.md for a function ("unknown" for <see cref="S7Function.Unknown"/>).</summary>
    public static string PolicyWord(S7Function function) => function switch
    {
        S7Function.CpuServices => "cpu-services",
        S7Function.SetupCommunication => "setup-communication",
        S7Function.ReadVar => "read-var",
        S7Function.WriteVar => "write-var",
        S7Function.RequestDownload => "request-download",
        S7Function.DownloadBlock => "download-block",
        S7Function.DownloadEnded => "download-ended",
        S7Function.StartUpload => "start-upload",
        S7Function.Upload => "upload",
        S7Function.EndUpload => "end-upload",
        S7Function.PlcControl => "plc-control",
        S7Function.PlcStop => "plc-stop",
        S7Function.ModeTransition => "mode-transition",
        S7Function.ProgrammerCommands => "programmer-commands",
        S7Function.CyclicData => "cyclic-data",
        S7Function.BlockFunctions => "block-functions",
        S7Function.CpuFunctions => "cpu-functions",
        S7Function.Security => "security",
        S7Function.BsendBrecv => "bsend-brecv",
        S7Function.TimeRead => "time-read",
        S7Function.TimeSet => "time-set",
        S7Function.NcProgramming => "nc-programming",
        S7Function.S7commPlus => "s7comm-plus",
        _ => "unknown",
    };

    /// <summary>The function for a policy word, or <see cref="S7Function.Unknown"/>.</summary>
    public static S7Function FromPolicyWord(ReadOnlySpan<char> word)
    {
        for (var f = S7Function.CpuServices; f <= S7Function.S7commPlus; f++)
        {
            if (word.SequenceEqual(PolicyWord(f)))
            {
                return f;
            }
        }
        return S7Function.Unknown;
    }
}
