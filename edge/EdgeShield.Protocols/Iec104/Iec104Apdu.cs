using System.Buffers.Binary;

namespace EdgeShield.Protocols.Iec104;

/// <summary>Sizes and limits of IEC 60870-5-104 (docs/IEC104.md "APCI", "ASDU").</summary>
public static class Iec104Limits
{
    /// <summary>The start octet of every APDU.</summary>
    public const byte StartOctet = 0x68;
    /// <summary>Octets before the control field: start and LEN.</summary>
    public const int PrefixLength = 2;
    /// <summary>Octets of the APCI: start, LEN and four control octets.</summary>
    public const int ApciLength = 6;
    /// <summary>The smallest LEN: the four control octets.</summary>
    public const int MinLength = 4;
    /// <summary>The largest LEN (an APDU is at most 255 octets).</summary>
    public const int MaxLength = 253;
    /// <summary>The largest APDU: 0x68, LEN and LEN octets.</summary>
    public const int MaxFrame = MaxLength + PrefixLength;
    /// <summary>Octets of the ASDU header: TYPE, VSQ, two of COT, two of CA.</summary>
    public const int AsduHeaderLength = 6;
    /// <summary>The largest ASDU: LEN 253 less the four control octets.</summary>
    public const int MaxAsduLength = MaxLength - 4;
    /// <summary>Octets of an information object address.</summary>
    public const int IoaLength = 3;
    /// <summary>The largest information object address (three octets).</summary>
    public const uint MaxIoa = 0xFF_FFFF;
    /// <summary>The global common address.</summary>
    public const ushort GlobalCommonAddress = 0xFFFF;
    /// <summary>Sequence numbers are 15 bits: they count modulo 32768.</summary>
    public const int SequenceModulus = 0x8000;
}

/// <summary>
/// Why bytes are not a well-formed IEC 104 APDU or ASDU: one code per check of docs/IEC104.md, the
/// <see cref="FrameFault.Detail"/> of IEC 104 faults; <see cref="Iec104FrameErrors.Describe"/> gives the words.
/// </summary>
public enum Iec104FrameError : byte
{
    None = 0,
    /// <summary>The first octet is not the start octet 0x68: not IEC 104.</summary>
    StartOctetInvalid,
    /// <summary>LEN is below 4: no room for the control octets.</summary>
    LengthTooShort,
    /// <summary>LEN is above 253.</summary>
    LengthTooLong,
    /// <summary>The frame given to the parser is not LEN + 2 octets long.</summary>
    FrameLengthMismatch,
    /// <summary>An S-frame with octets after its four control octets.</summary>
    SFrameNotFourOctets,
    /// <summary>An S-frame whose C1 is not exactly 0x01 or whose C2 is not 0.</summary>
    SFrameControlInvalid,
    /// <summary>A U-frame with octets (an ASDU) after its four control octets.</summary>
    UFrameNotFourOctets,
    /// <summary>A U-frame with no function bit (C1 = 0x03).</summary>
    UFrameNoFunction,
    /// <summary>A U-frame with more than one function bit (STARTDT and TESTFR at once, …): CVE-2026-1773.</summary>
    UFrameSeveralFunctions,
    /// <summary>A U-frame whose C2, C3 or C4 is not 0.</summary>
    UFrameControlNotZero,
    /// <summary>An I-frame (or an ASDU) shorter than the 6-octet ASDU header.</summary>
    AsduHeaderTruncated,
    /// <summary>VSQ says N = 0 objects.</summary>
    ObjectCountZero,
    /// <summary>The cause of transmission is 0 (not defined).</summary>
    CauseZero,
    /// <summary>SQ = 1 and no room for the base IOA (lib60870 issue 200 read past the buffer here).</summary>
    SequenceWithoutBaseIoa,
    /// <summary>The ASDU is shorter than TYPE, SQ and N imply.</summary>
    ObjectsTruncated,
    /// <summary>The ASDU is longer than TYPE, SQ and N imply.</summary>
    ObjectsTrailingBytes,
    /// <summary>SQ = 1 and base IOA + N - 1 runs past 0xFFFFFF.</summary>
    IoaSequenceOverflow,
    /// <summary>F_SG_NA_1 with SQ = 1 or N other than 1 (a file segment is one object).</summary>
    SegmentNotSingle,
    /// <summary>F_SG_NA_1 whose length of segment (LOS) disagrees with the octets the ASDU carries.</summary>
    SegmentLengthMismatch,
}

/// <summary>The three APCI formats (docs/IEC104.md "APCI").</summary>
public enum Iec104Format : byte
{
    /// <summary>Information transfer: numbered, carries an ASDU.</summary>
    I = 0,
    /// <summary>Supervisory: acknowledges up to N(R).</summary>
    S,
    /// <summary>Unnumbered control: STARTDT, STOPDT, TESTFR.</summary>
    U,
}

/// <summary>The function bits of a U-frame's C1 (well-formed U-frames carry exactly one).</summary>
[Flags]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1008", Justification = "0 is no function: a malformed U-frame, never a valid value.")]
public enum Iec104UFunction : byte
{
    None = 0,
    StartDtAct = 0x04,
    StartDtCon = 0x08,
    StopDtAct = 0x10,
    StopDtCon = 0x20,
    TestFrAct = 0x40,
    TestFrCon = 0x80,
}

/// <summary>Words for <see cref="Iec104FrameError"/>, for the audit.</summary>
public static class Iec104FrameErrors
{
    /// <summary>The protocol-neutral kind of an error.</summary>
    public static FrameFaultKind Kind(Iec104FrameError error) => error switch
    {
        Iec104FrameError.None => FrameFaultKind.None,
        Iec104FrameError.StartOctetInvalid => FrameFaultKind.NotThisProtocol,
        Iec104FrameError.LengthTooShort or Iec104FrameError.LengthTooLong => FrameFaultKind.LengthOutOfRange,
        Iec104FrameError.AsduHeaderTruncated or Iec104FrameError.SequenceWithoutBaseIoa or Iec104FrameError.ObjectsTruncated => FrameFaultKind.Truncated,
        Iec104FrameError.SFrameNotFourOctets or Iec104FrameError.UFrameNotFourOctets or Iec104FrameError.ObjectsTrailingBytes => FrameFaultKind.TrailingBytes,
        _ => FrameFaultKind.Inconsistent,
    };

    /// <summary>A fault of <paramref name="error"/>.</summary>
    public static FrameFault Fault(Iec104FrameError error) => new(Kind(error), (byte)error);

    /// <summary>Words for <paramref name="error"/>.</summary>
    public static string Describe(Iec104FrameError error) => error switch
    {
        Iec104FrameError.None => "no error",
        Iec104FrameError.StartOctetInvalid => "start octet is not 0x68",
        Iec104FrameError.LengthTooShort => "APDU length below 4",
        Iec104FrameError.LengthTooLong => "APDU length above 253",
        Iec104FrameError.FrameLengthMismatch => "frame is not APDU length + 2 octets",
        Iec104FrameError.SFrameNotFourOctets => "S-frame longer than its 4 control octets",
        Iec104FrameError.SFrameControlInvalid => "S-frame control octet 1 not 0x01 or octet 2 not 0",
        Iec104FrameError.UFrameNotFourOctets => "U-frame longer than its 4 control octets",
        Iec104FrameError.UFrameNoFunction => "U-frame without a function bit",
        Iec104FrameError.UFrameSeveralFunctions => "U-frame with more than one function bit",
        Iec104FrameError.UFrameControlNotZero => "U-frame control octets 2-4 not 0",
        Iec104FrameError.AsduHeaderTruncated => "ASDU shorter than its 6-octet header",
        Iec104FrameError.ObjectCountZero => "ASDU with 0 information objects",
        Iec104FrameError.CauseZero => "cause of transmission 0",
        Iec104FrameError.SequenceWithoutBaseIoa => "SQ=1 ASDU without its base information object address",
        Iec104FrameError.ObjectsTruncated => "ASDU shorter than its type, SQ and number of objects imply",
        Iec104FrameError.ObjectsTrailingBytes => "ASDU longer than its type, SQ and number of objects imply",
        Iec104FrameError.IoaSequenceOverflow => "SQ=1 addresses run past 0xFFFFFF",
        Iec104FrameError.SegmentNotSingle => "F_SG_NA_1 not a single object with SQ=0",
        Iec104FrameError.SegmentLengthMismatch => "F_SG_NA_1 segment length disagrees with the ASDU",
        _ => "unknown IEC 104 error",
    };

    /// <summary>Words for an IEC 104 <paramref name="fault"/> (its detail is an <see cref="Iec104FrameError"/>).</summary>
    public static string Describe(FrameFault fault) => Describe((Iec104FrameError)fault.Detail);
}

/// <summary>
/// One delimited APDU, its APCI read in place (docs/IEC104.md "APCI"; IEC 60870-5-104, 5.1-5.3).
/// </summary>
/// <remarks>
/// <code>
///  0     1     2    3    4    5    6 …
///  +-----+-----+----+----+----+----+---------------------+
///  | 68  | LEN | C1 | C2 | C3 | C4 | ASDU (I-format only)|   LEN = 4 + ASDU length, 4..253
///  +-----+-----+----+----+----+----+---------------------+
///  I: C1 bit 0 = 0.  N(S) = (C1 | C2 &lt;&lt; 8) &gt;&gt; 1,  N(R) = (C3 | C4 &lt;&lt; 8) &gt;&gt; 1.
///  S: C1 = 01, C2 = 00, N(R) in C3/C4; no ASDU.
///  U: C1 = 03 | one of 04 08 10 20 40 80 (STARTDT act/con, STOPDT act/con, TESTFR act/con); C2..C4 = 0; no ASDU.
/// </code>
/// </remarks>
public readonly ref struct Iec104Apdu
{
    private Iec104Apdu(ReadOnlySpan<byte> frame, Iec104Format format)
    {
        Frame = frame;
        Format = format;
    }

    /// <summary>The whole APDU, start octet included.</summary>
    public ReadOnlySpan<byte> Frame { get; }

    /// <summary>I, S or U.</summary>
    public Iec104Format Format { get; }

    /// <summary>I-format: N(S), the 15-bit send sequence number; 0 otherwise.</summary>
    public ushort SendSequence => Format == Iec104Format.I && IsParsed ? (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(Frame[2..]) >> 1) : (ushort)0;

    /// <summary>I- and S-format: N(R), the 15-bit receive sequence number (every frame before it is acknowledged); 0 for U.</summary>
    public ushort ReceiveSequence => Format == Iec104Format.U || !IsParsed ? (ushort)0 : (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(Frame[4..]) >> 1);

    /// <summary>U-format: the one function bit; <see cref="Iec104UFunction.None"/> otherwise.</summary>
    public Iec104UFunction UFunction => Format == Iec104Format.U && IsParsed ? (Iec104UFunction)(Frame[2] & 0xFC) : Iec104UFunction.None;

    /// <summary>I-format: the ASDU (at least its 6-octet header); empty otherwise.</summary>
    public ReadOnlySpan<byte> Asdu => Format == Iec104Format.I && IsParsed ? Frame[Iec104Limits.ApciLength..] : default;

    /// <summary>False on a view that was not parsed (default): then every number is 0 and every span empty.</summary>
    public bool IsParsed => Frame.Length >= Iec104Limits.ApciLength;

    /// <summary>
    /// Reads the APCI of one delimited frame (<see cref="Iec104Framer"/>): start octet, LEN 4..253 and the frame
    /// exactly LEN + 2 octets, S- and U-frames exactly four control octets (S: C1 = 01, C2 = 0; U: one function bit,
    /// C2..C4 = 0), an I-frame with at least an ASDU header. The ASDU itself is read by <see cref="Iec104Asdu.TryParse"/>.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> frame, out Iec104Apdu apdu, out FrameFault fault)
    {
        apdu = default;
        if (frame.IsEmpty || frame[0] != Iec104Limits.StartOctet)
        {
            return Fail(Iec104FrameError.StartOctetInvalid, out fault);
        }
        if (frame.Length < Iec104Limits.PrefixLength)
        {
            return Fail(Iec104FrameError.FrameLengthMismatch, out fault);
        }
        int length = frame[1];
        if (length < Iec104Limits.MinLength)
        {
            return Fail(Iec104FrameError.LengthTooShort, out fault);
        }
        if (length > Iec104Limits.MaxLength)
        {
            return Fail(Iec104FrameError.LengthTooLong, out fault);
        }
        if (frame.Length != length + Iec104Limits.PrefixLength)
        {
            return Fail(Iec104FrameError.FrameLengthMismatch, out fault);
        }
        byte c1 = frame[2];
        if ((c1 & 0x01) == 0)
        {
            if (length < Iec104Limits.MinLength + Iec104Limits.AsduHeaderLength)
            {
                return Fail(Iec104FrameError.AsduHeaderTruncated, out fault);
            }
            apdu = new Iec104Apdu(frame, Iec104Format.I);
            fault = FrameFault.None;
            return true;
        }
        if ((c1 & 0x02) == 0)
        {
            if (c1 != 0x01 || frame[3] != 0)
            {
                return Fail(Iec104FrameError.SFrameControlInvalid, out fault);
            }
            if (length != Iec104Limits.MinLength)
            {
                return Fail(Iec104FrameError.SFrameNotFourOctets, out fault);
            }
            apdu = new Iec104Apdu(frame, Iec104Format.S);
            fault = FrameFault.None;
            return true;
        }
        int functions = c1 & 0xFC;
        if (functions == 0)
        {
            return Fail(Iec104FrameError.UFrameNoFunction, out fault);
        }
        if ((functions & (functions - 1)) != 0)
        {
            return Fail(Iec104FrameError.UFrameSeveralFunctions, out fault);
        }
        if (frame[3] != 0 || frame[4] != 0 || frame[5] != 0)
        {
            return Fail(Iec104FrameError.UFrameControlNotZero, out fault);
        }
        if (length != Iec104Limits.MinLength)
        {
            return Fail(Iec104FrameError.UFrameNotFourOctets, out fault);
        }
        apdu = new Iec104Apdu(frame, Iec104Format.U);
        fault = FrameFault.None;
        return true;
    }

    private static bool Fail(Iec104FrameError error, out FrameFault fault)
    {
        fault = Iec104FrameErrors.Fault(error);
        return false;
    }
}
