using System.Buffers.Binary;

namespace EdgeShield.Simulators;

/// <summary>
/// S7 blocks as a CPU's load memory holds them and as upload/download move them: a 36-byte header, the MC7
/// code (for a DB its data), a 56-byte footer (snap7 s7_types.h <c>TS7CompactBlockInfo</c> and
/// <c>TS7BlockFooter</c>; Wireshark calls the transfer "block data").
/// </summary>
/// <remarks>
/// <code>
///  0   70 70  | 01 | flags | language | sub-block type | number (2) | load memory length (4) | security (4)
///  16  code time (6) | interface time (6) | SBB length (2) | ADD length (2) | local data (2) | MC7 length (2)
///  36  MC7 code … | footer (56 bytes, byte 44 = 0x11)
/// </code>
/// Block files are named <c>_0TNNNNNF</c>: type as one ASCII character (8 OB, A DB, B SDB, C FC, D SFC,
/// E FB, F SFB), five ASCII digits, and the file system (P passive, A active, B both).
/// </remarks>
public static class S7Blocks
{
    public const byte TypeOb = 0x38, TypeDb = 0x41, TypeSdb = 0x42, TypeFc = 0x43, TypeSfc = 0x44, TypeFb = 0x45, TypeSfb = 0x46;
    public const int HeaderLength = 36, FooterLength = 56;

    /// <summary>The sub-block type byte of a block header for a block type (snap7 <c>SubBlk_…</c>).</summary>
    public static byte SubBlockType(byte type) => type switch
    {
        TypeOb => 0x08,
        TypeDb => 0x0A,
        TypeSdb => 0x0B,
        TypeFc => 0x0C,
        TypeSfc => 0x0D,
        TypeFb => 0x0E,
        _ => 0x0F,
    };

    /// <summary>The block type for a sub-block type byte; 0 when unknown.</summary>
    public static byte FromSubBlockType(byte subBlockType) => subBlockType switch
    {
        0x08 => TypeOb,
        0x0A => TypeDb,
        0x0B => TypeSdb,
        0x0C => TypeFc,
        0x0D => TypeSfc,
        0x0E => TypeFb,
        0x0F => TypeSfb,
        _ => 0,
    };

    /// <summary>A block's load memory image around <paramref name="mc7"/>.</summary>
    public static byte[] Image(byte type, int number, ReadOnlySpan<byte> mc7)
    {
        var image = new byte[HeaderLength + mc7.Length + FooterLength];
        BinaryPrimitives.WriteUInt16BigEndian(image, 0x7070);
        image[2] = 0x01;
        image[3] = 0x01;                                      // flags
        image[4] = type == TypeDb ? (byte)0x05 : (byte)0x01;  // language: DB, or STL
        image[5] = SubBlockType(type);
        BinaryPrimitives.WriteUInt16BigEndian(image.AsSpan(6), (ushort)number);
        BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(8), (uint)image.Length);
        BinaryPrimitives.WriteUInt16BigEndian(image.AsSpan(20), 5800); // code date: days since 1984
        BinaryPrimitives.WriteUInt16BigEndian(image.AsSpan(26), 5800); // interface date
        BinaryPrimitives.WriteUInt16BigEndian(image.AsSpan(34), (ushort)mc7.Length);
        mc7.CopyTo(image.AsSpan(HeaderLength));
        image[HeaderLength + mc7.Length + 44] = 0x11;
        return image;
    }

    /// <summary>The MC7 length a block image's header declares.</summary>
    public static int Mc7Length(ReadOnlySpan<byte> image) => image.Length >= HeaderLength ? BinaryPrimitives.ReadUInt16BigEndian(image[34..]) : 0;

    /// <summary>
    /// Reads <c>0TNNNNN</c> (ASCII '0', the type character, five digits) as in block file names and block-info
    /// requests.
    /// </summary>
    public static bool TryParseName(ReadOnlySpan<byte> name, out byte type, out int number)
    {
        type = 0;
        number = 0;
        if (name.Length < 7 || name[0] != (byte)'0' || name[1] is < TypeOb or > TypeSfb)
        {
            return false;
        }
        type = name[1];
        for (int i = 2; i < 7; i++)
        {
            if (name[i] is < (byte)'0' or > (byte)'9')
            {
                return false;
            }
            number = (number * 10) + (name[i] - '0');
        }
        return number <= 65535;
    }

    /// <summary>Writes <c>_0TNNNNNF</c> (9 bytes).</summary>
    public static void WriteFileName(Span<byte> destination, byte type, int number, byte fileSystem)
    {
        destination[0] = (byte)'_';
        destination[1] = (byte)'0';
        destination[2] = type;
        WriteDigits(destination.Slice(3, 5), number);
        destination[8] = fileSystem;
    }

    /// <summary>Writes <paramref name="value"/> as ASCII digits filling <paramref name="destination"/>.</summary>
    public static void WriteDigits(Span<byte> destination, int value)
    {
        for (int i = destination.Length - 1; i >= 0; i--)
        {
            destination[i] = (byte)('0' + (value % 10));
            value /= 10;
        }
    }

    /// <summary>Reads ASCII digits; -1 when one is not a digit.</summary>
    public static int ReadDigits(ReadOnlySpan<byte> digits)
    {
        int value = 0;
        foreach (byte b in digits)
        {
            if (b is < (byte)'0' or > (byte)'9')
            {
                return -1;
            }
            value = (value * 10) + (b - '0');
        }
        return value;
    }
}
