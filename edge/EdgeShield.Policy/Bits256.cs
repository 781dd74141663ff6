using System.Numerics;

namespace EdgeShield.Policy;

/// <summary>A set of byte values (unit ids, function codes) as four machine words: membership is one shift and one AND.</summary>
internal struct Bits256 : IEquatable<Bits256>
{
    private ulong _w0, _w1, _w2, _w3;

    public static Bits256 All
    {
        get
        {
            var b = default(Bits256);
            b._w0 = b._w1 = b._w2 = b._w3 = ulong.MaxValue;
            return b;
        }
    }

    public readonly bool Contains(byte value) => ((value >> 6) switch
    {
        0 => _w0,
        1 => _w1,
        2 => _w2,
        _ => _w3,
    } >> (value & 63) & 1) != 0;

    public void Add(byte value)
    {
        var bit = 1UL << (value & 63);
        switch (value >> 6)
        {
            case 0: _w0 |= bit; break;
            case 1: _w1 |= bit; break;
            case 2: _w2 |= bit; break;
            default: _w3 |= bit; break;
        }
    }

    public void Remove(byte value)
    {
        var bit = ~(1UL << (value & 63));
        switch (value >> 6)
        {
            case 0: _w0 &= bit; break;
            case 1: _w1 &= bit; break;
            case 2: _w2 &= bit; break;
            default: _w3 &= bit; break;
        }
    }

    public readonly Bits256 Union(in Bits256 other)
    {
        var b = this;
        b._w0 |= other._w0;
        b._w1 |= other._w1;
        b._w2 |= other._w2;
        b._w3 |= other._w3;
        return b;
    }

    public readonly bool IsEmpty => (_w0 | _w1 | _w2 | _w3) == 0;

    public readonly int Count =>
        BitOperations.PopCount(_w0) + BitOperations.PopCount(_w1) + BitOperations.PopCount(_w2) + BitOperations.PopCount(_w3);

    /// <summary>True when every member of <paramref name="other"/> is a member of this set.</summary>
    public readonly bool IsSupersetOf(in Bits256 other) =>
        (other._w0 & ~_w0) == 0 && (other._w1 & ~_w1) == 0 && (other._w2 & ~_w2) == 0 && (other._w3 & ~_w3) == 0;

    public readonly bool Equals(Bits256 other) => _w0 == other._w0 && _w1 == other._w1 && _w2 == other._w2 && _w3 == other._w3;

    public override readonly bool Equals(object? obj) => obj is Bits256 other && Equals(other);

    public override readonly int GetHashCode() => HashCode.Combine(_w0, _w1, _w2, _w3);

    public static bool operator ==(Bits256 left, Bits256 right) => left.Equals(right);

    public static bool operator !=(Bits256 left, Bits256 right) => !left.Equals(right);
}
