using System.Buffers.Binary;

namespace EdgeShield.Protocols.Tests;

/// <summary>Builds test ADUs and PDUs from readable parts.</summary>
internal static class Frames
{
    /// <summary>An ADU: MBAP header with a length that matches <paramref name="pdu"/>, then the PDU.</summary>
    public static byte[] Adu(ushort transactionId, byte unitId, params byte[] pdu)
    {
        var adu = new byte[7 + pdu.Length];
        BinaryPrimitives.WriteUInt16BigEndian(adu, transactionId);
        BinaryPrimitives.WriteUInt16BigEndian(adu.AsSpan(4), (ushort)(pdu.Length + 1));
        adu[6] = unitId;
        pdu.CopyTo(adu, 7);
        return adu;
    }

    /// <summary>A PDU from a function code and 16-bit big-endian words.</summary>
    public static byte[] Words(byte functionCode, params ushort[] words)
    {
        var pdu = new byte[1 + (words.Length * 2)];
        pdu[0] = functionCode;
        for (int i = 0; i < words.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(1 + (i * 2)), words[i]);
        }
        return pdu;
    }

    /// <summary>Concatenates byte arrays.</summary>
    public static byte[] Cat(params byte[][] parts)
    {
        int length = 0;
        foreach (var part in parts)
        {
            length += part.Length;
        }
        var all = new byte[length];
        int offset = 0;
        foreach (var part in parts)
        {
            part.CopyTo(all, offset);
            offset += part.Length;
        }
        return all;
    }

    /// <summary>Bytes from hex text; spaces ignored.</summary>
    public static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));
}
