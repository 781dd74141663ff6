using System.Buffers.Binary;

namespace EdgeShield.Protocols.Iec104;

/// <summary>
/// Writes APDUs (docs/IEC104.md "APCI"): S- and U-frames, I-frames around an ASDU, the control octets of a
/// forwarded I-frame renumbered in place, and a station's mirror of a refused command. Allocation-free; a
/// destination too small or an ASDU outside 6..249 octets is the caller's error (an exception).
/// </summary>
public static class Iec104Writer
{
    /// <summary>Writes an S-frame acknowledging up to <paramref name="receiveSequence"/>; returns 6.</summary>
    public static int WriteS(Span<byte> destination, ushort receiveSequence)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, Iec104Limits.ApciLength);
        destination[0] = Iec104Limits.StartOctet;
        destination[1] = Iec104Limits.MinLength;
        destination[2] = 0x01;
        destination[3] = 0;
        WriteSequence(destination[4..], receiveSequence);
        return Iec104Limits.ApciLength;
    }

    /// <summary>Writes a U-frame of one <paramref name="function"/>; returns 6.</summary>
    public static int WriteU(Span<byte> destination, Iec104UFunction function)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, Iec104Limits.ApciLength);
        int bits = (int)function;
        if (bits == 0 || (bits & (bits - 1)) != 0 || (bits & 0x03) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(function), "a U-frame carries exactly one function");
        }
        destination[0] = Iec104Limits.StartOctet;
        destination[1] = Iec104Limits.MinLength;
        destination[2] = (byte)(0x03 | bits);
        destination[3] = 0;
        destination[4] = 0;
        destination[5] = 0;
        return Iec104Limits.ApciLength;
    }

    /// <summary>
    /// Rewrites the control octets of the I-frame at the start of <paramref name="iFrame"/> with N(S)
    /// <paramref name="sendSequence"/> and N(R) <paramref name="receiveSequence"/>: how the gateway renumbers a
    /// forwarded frame for the other leg. The ASDU is untouched.
    /// </summary>
    public static void SetControl(Span<byte> iFrame, ushort sendSequence, ushort receiveSequence)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(iFrame.Length, Iec104Limits.ApciLength);
        if (iFrame[0] != Iec104Limits.StartOctet || (iFrame[2] & 0x01) != 0)
        {
            throw new ArgumentException("not an I-frame", nameof(iFrame));
        }
        WriteSequence(iFrame[2..], sendSequence);
        WriteSequence(iFrame[4..], receiveSequence);
    }

    /// <summary>Writes an I-frame carrying <paramref name="asdu"/>; returns its length (6 + ASDU).</summary>
    public static int WriteI(Span<byte> destination, ushort sendSequence, ushort receiveSequence, ReadOnlySpan<byte> asdu)
    {
        int length = Header(destination, sendSequence, receiveSequence, asdu.Length);
        asdu.CopyTo(destination[Iec104Limits.ApciLength..]);
        return length;
    }

    /// <summary>
    /// Writes what a station answers to a refused command: an I-frame whose ASDU is <paramref name="requestAsdu"/>
    /// with the cause replaced by <paramref name="cause"/> (44, 45, 46, 47, 7, 9, 5 …) and P/N set to
    /// <paramref name="negative"/>; T and the originator are kept. Returns the frame's length.
    /// </summary>
    public static int WriteMirror(Span<byte> destination, ushort sendSequence, ushort receiveSequence, ReadOnlySpan<byte> requestAsdu, byte cause, bool negative)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(cause, (byte)63);
        int length = WriteI(destination, sendSequence, receiveSequence, requestAsdu);
        ref byte cot = ref destination[Iec104Limits.ApciLength + 2];
        cot = (byte)((cot & 0x80) | (negative ? 0x40 : 0) | cause);
        return length;
    }

    private static int Header(Span<byte> destination, ushort sendSequence, ushort receiveSequence, int asduLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(asduLength, Iec104Limits.AsduHeaderLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(asduLength, Iec104Limits.MaxAsduLength);
        int length = Iec104Limits.ApciLength + asduLength;
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, length);
        destination[0] = Iec104Limits.StartOctet;
        destination[1] = (byte)(Iec104Limits.MinLength + asduLength);
        WriteSequence(destination[2..], sendSequence);
        WriteSequence(destination[4..], receiveSequence);
        return length;
    }

    private static void WriteSequence(Span<byte> destination, ushort sequence) =>
        BinaryPrimitives.WriteUInt16LittleEndian(destination, (ushort)((sequence & (Iec104Limits.SequenceModulus - 1)) << 1));
}
