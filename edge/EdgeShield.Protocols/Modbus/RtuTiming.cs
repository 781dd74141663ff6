namespace EdgeShield.Protocols.Modbus;

/// <summary>
/// Character and silent-interval times of a serial line (Modbus over Serial Line V1.02, 2.5.1.1):
/// frames are separated by 3.5 character times (t3.5); a gap above 1.5 character times (t1.5)
/// inside a frame breaks it. Above 19200 baud the spec fixes t1.5 = 750 µs and t3.5 = 1.75 ms.
/// </summary>
public readonly record struct RtuTiming
{
    /// <summary>Baud rates above this use the fixed t1.5 and t3.5.</summary>
    public const int FixedTimingAboveBaud = 19200;

    /// <summary>Creates the timing of a line.</summary>
    /// <param name="baud">Bits per second, at least 1.</param>
    /// <param name="bitsPerCharacter">Start, 8 data, parity and stop bits: 11 for 8E1, 8O1 and 8N2; 10 for 8N1.</param>
    public RtuTiming(int baud, int bitsPerCharacter)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(baud, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(bitsPerCharacter, 10);
        Baud = baud;
        BitsPerCharacter = bitsPerCharacter;
        CharacterMicros = bitsPerCharacter * 1_000_000.0 / baud;
        InterCharacterMicros = baud > FixedTimingAboveBaud ? 750 : 1.5 * CharacterMicros;
        InterFrameMicros = baud > FixedTimingAboveBaud ? 1750 : 3.5 * CharacterMicros;
    }

    public int Baud { get; }
    public int BitsPerCharacter { get; }
    /// <summary>Time on the wire of one character.</summary>
    public double CharacterMicros { get; }
    /// <summary>t1.5: the longest gap allowed between two characters of a frame.</summary>
    public double InterCharacterMicros { get; }
    /// <summary>t3.5: the silence that ends a frame and must precede the next.</summary>
    public double InterFrameMicros { get; }

    /// <summary>Time on the wire of <paramref name="bytes"/> characters.</summary>
    public double FrameMicros(int bytes) => bytes * CharacterMicros;

    /// <summary>Bits per character for 8 data bits with the given parity and stop bits.</summary>
    public static int Bits(bool parity, int stopBits) => 1 + 8 + (parity ? 1 : 0) + stopBits;
}
