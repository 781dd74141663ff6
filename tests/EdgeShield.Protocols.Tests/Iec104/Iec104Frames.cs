using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Protocols.Tests.Iec104;

/// <summary>Builds IEC 104 test frames.</summary>
internal static class Iec104Frames
{
    public static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    /// <summary>An ASDU header followed by <paramref name="objects"/>.</summary>
    public static byte[] Asdu(byte type, bool sequence, int count, byte cause, ushort ca, ReadOnlySpan<byte> objects, byte originator = 0, bool negative = false, bool test = false)
    {
        var asdu = new byte[6 + objects.Length];
        asdu[0] = type;
        asdu[1] = (byte)((sequence ? 0x80 : 0) | count);
        asdu[2] = (byte)(cause | (negative ? 0x40 : 0) | (test ? 0x80 : 0));
        asdu[3] = originator;
        asdu[4] = (byte)ca;
        asdu[5] = (byte)(ca >> 8);
        objects.CopyTo(asdu.AsSpan(6));
        return asdu;
    }

    /// <summary>A single-object ASDU at <paramref name="ioa"/>.</summary>
    public static byte[] Command(byte type, ushort ca, uint ioa, ReadOnlySpan<byte> element, byte cause = 6) =>
        Asdu(type, false, 1, cause, ca, [.. Ioa(ioa), .. element]);

    public static byte[] Ioa(uint ioa) => [(byte)ioa, (byte)(ioa >> 8), (byte)(ioa >> 16)];

    /// <summary>An I-frame around <paramref name="asdu"/>.</summary>
    public static byte[] IFrame(ushort ns, ushort nr, byte[] asdu)
    {
        var frame = new byte[6 + asdu.Length];
        Iec104Writer.WriteI(frame, ns, nr, asdu);
        return frame;
    }

    /// <summary>SQ = 0: N objects of <paramref name="size"/> octets at IOA base, base + 7, …</summary>
    public static byte[] Objects(int count, int size, uint baseIoa, bool sequence)
    {
        var list = new List<byte>();
        if (sequence)
        {
            list.AddRange(Ioa(baseIoa));
        }
        for (int i = 0; i < count; i++)
        {
            if (!sequence)
            {
                list.AddRange(Ioa(baseIoa + (uint)(7 * i)));
            }
            for (int j = 0; j < size; j++)
            {
                list.Add((byte)(i * 16 + j));
            }
        }
        return [.. list];
    }
}
