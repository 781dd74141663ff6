namespace EdgeShield.Protocols.S7comm;

/// <summary>Hard limits of TPKT (RFC 1006), COTP class 0 (ISO 8073 / RFC 905) and S7comm as the codec enforces them.</summary>
public static class S7Limits
{
    /// <summary>TPKT header: version 3, reserved 0, 16-bit length of the whole packet (RFC 1006, section 6).</summary>
    public const int TpktHeaderLength = 4;
    /// <summary>TPKT version.</summary>
    public const byte TpktVersion = 3;
    /// <summary>Smallest TPKT length (RFC 1006): header plus a COTP header of at least LI and type and one more byte.</summary>
    public const int MinTpktLength = 7;
    /// <summary>Largest TPKT length: the 16-bit length field.</summary>
    public const int MaxTpktLength = 65535;
    /// <summary>A COTP DT header in class 0: LI (2), type F0, EOT and TPDU number.</summary>
    public const int DtHeaderLength = 3;
    /// <summary>TPKT header plus COTP DT header: where a DT's S7 payload starts in a TPKT packet.</summary>
    public const int DataTpduOverhead = TpktHeaderLength + DtHeaderLength;
    /// <summary>The COTP length indicator of a class 0 DT.</summary>
    public const byte DtLengthIndicator = 2;
    /// <summary>The fixed part of a CR, CC or DR after LI: type, dst-ref, src-ref, class or reason.</summary>
    public const int ConnectFixedLength = 6;
    /// <summary>The fixed part of an ER after LI: type, dst-ref, reject cause.</summary>
    public const int ErrorFixedLength = 4;
    /// <summary>ISO 8073 reserves LI 255.</summary>
    public const byte ReservedLengthIndicator = 255;
    /// <summary>Smallest TPDU size code of parameter C0 (2^7 = 128 bytes).</summary>
    public const byte MinTpduSizeCode = 7;
    /// <summary>Largest TPDU size code of parameter C0 (2^13 = 8192 bytes).</summary>
    public const byte MaxTpduSizeCode = 13;

    /// <summary>S7 header of a Job or Userdata: 32, ROSCTR, reserved (2), REF (2), parameter length (2), data length (2).</summary>
    public const int HeaderLength = 10;
    /// <summary>S7 header of an Ack or Ack_Data: the job header plus error class and error code.</summary>
    public const int AckHeaderLength = 12;
    /// <summary>Protocol id of classic S7comm.</summary>
    public const byte ProtocolId = 0x32;
    /// <summary>Protocol id of S7comm-Plus (S7-1200/1500).</summary>
    public const byte PlusProtocolId = 0x72;
    /// <summary>S7comm-Plus header: 72, version, data length (2).</summary>
    public const int PlusHeaderLength = 4;
    /// <summary>The length of an S7ANY item: 12, 0A, syntax id 10, transport size, count (2), DB (2), area, address (3).</summary>
    public const int S7AnyItemLength = 12;
    /// <summary>Setup communication parameters: F0, reserved, AmQ calling (2), AmQ called (2), PDU size (2).</summary>
    public const int SetupParameterLength = 8;
    /// <summary>Write-var data block head: return code, transport size, length (2).</summary>
    public const int DataItemHeaderLength = 4;
    /// <summary>Userdata parameter head 00 01 12.</summary>
    public const int UserdataHeadLength = 3;
}
