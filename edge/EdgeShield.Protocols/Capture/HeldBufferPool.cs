namespace EdgeShield.Protocols.Capture;

/// <summary>
/// Buffers for segments held ahead of a hole, shared by the assemblers of one scanner. Unlike
/// <see cref="System.Buffers.ArrayPool{T}.Shared"/> it keeps every buffer returned to it (best fit
/// on rent), so replaying the same traffic again allocates nothing, however many holes are open at
/// once. Not thread-safe: one scanner, one thread.
/// </summary>
public sealed class HeldBufferPool
{
    private const int MinimumSize = 4096;
    private readonly List<byte[]> _free = [];

    /// <summary>A buffer of at least <paramref name="minimumLength"/> bytes.</summary>
    public byte[] Rent(int minimumLength)
    {
        int best = -1;
        for (int i = 0; i < _free.Count; i++)
        {
            if (_free[i].Length >= minimumLength && (best < 0 || _free[i].Length < _free[best].Length))
            {
                best = i;
            }
        }
        if (best >= 0)
        {
            var buffer = _free[best];
            _free[best] = _free[^1];
            _free.RemoveAt(_free.Count - 1);
            return buffer;
        }
        int size = MinimumSize;
        while (size < minimumLength)
        {
            size *= 2;
        }
        return new byte[size];
    }

    /// <summary>Takes a buffer back for the next <see cref="Rent"/>.</summary>
    public void Return(byte[] buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        _free.Add(buffer);
    }
}
