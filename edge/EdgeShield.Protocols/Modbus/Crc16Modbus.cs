namespace EdgeShield.Protocols.Modbus;

/// <summary>
/// CRC-16/MODBUS: reflected polynomial 0xA001, initial value 0xFFFF, no final XOR
/// (Modbus over Serial Line V1.02, 6.2.2). Sent low byte first.
/// </summary>
public static class Crc16Modbus
{
    private static readonly ushort[] Table = BuildTable();

    /// <summary>The CRC of <paramref name="data"/>.</summary>
    public static ushort Compute(ReadOnlySpan<byte> data)
    {
        var table = Table;
        uint crc = 0xFFFF;
        foreach (byte b in data)
        {
            crc = (crc >> 8) ^ table[(byte)(crc ^ b)];
        }
        return (ushort)crc;
    }

    /// <summary>True when the last two bytes of <paramref name="adu"/> are the CRC (low byte first) of the bytes before them.</summary>
    public static bool Check(ReadOnlySpan<byte> adu)
    {
        if (adu.Length < 3)
        {
            return false;
        }
        ushort crc = Compute(adu[..^2]);
        return adu[^2] == (byte)crc && adu[^1] == (byte)(crc >> 8);
    }

    /// <summary>Writes the CRC of <paramref name="data"/> (low byte first) into the two bytes of <paramref name="destination"/>.</summary>
    public static void Write(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        ushort crc = Compute(data);
        destination[0] = (byte)crc;
        destination[1] = (byte)(crc >> 8);
    }

    private static ushort[] BuildTable()
    {
        var table = new ushort[256];
        for (int i = 0; i < 256; i++)
        {
            uint crc = (uint)i;
            for (int bit = 0; bit < 8; bit++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xA001 : crc >> 1;
            }
            table[i] = (ushort)crc;
        }
        return table;
    }
}
