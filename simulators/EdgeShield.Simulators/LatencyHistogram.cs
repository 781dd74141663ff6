using System.Numerics;

namespace EdgeShield.Simulators;

/// <summary>
/// Latencies in microseconds in fixed log-linear buckets (32 linear steps per power of two, so a
/// reported percentile is at most ~3 % above the true value). Recording allocates nothing; one
/// histogram per connection, merged at the end, so it needs no locking.
/// </summary>
public sealed class LatencyHistogram
{
    private const int SubBucketBits = 5;
    private const int SubBuckets = 1 << SubBucketBits;
    private const int MaxShift = 40 - SubBucketBits;
    private readonly long[] _counts = new long[SubBuckets * (MaxShift + 2)];

    public long Count { get; private set; }

    public long MaxMicroseconds { get; private set; }

    public void Record(long microseconds)
    {
        if (microseconds < 0)
        {
            microseconds = 0;
        }
        _counts[IndexOf(microseconds)]++;
        Count++;
        if (microseconds > MaxMicroseconds)
        {
            MaxMicroseconds = microseconds;
        }
    }

    public void Add(LatencyHistogram other)
    {
        ArgumentNullException.ThrowIfNull(other);
        for (int i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }
        Count += other.Count;
        MaxMicroseconds = Math.Max(MaxMicroseconds, other.MaxMicroseconds);
    }

    /// <summary>The upper edge of the bucket holding the <paramref name="percentile"/> (0..100) sample; 0 when empty.</summary>
    public long Percentile(double percentile)
    {
        if (Count == 0)
        {
            return 0;
        }
        long rank = Math.Max(1, (long)Math.Ceiling(Count * percentile / 100.0));
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return Math.Min(UpperEdge(i), MaxMicroseconds);
            }
        }
        return MaxMicroseconds;
    }

    private static int IndexOf(long value)
    {
        if (value < SubBuckets)
        {
            return (int)value;
        }
        int msb = 63 - BitOperations.LeadingZeroCount((ulong)value);
        int shift = Math.Min(msb - SubBucketBits, MaxShift);
        long sub = Math.Min(value >> shift, (2 * SubBuckets) - 1);
        return (SubBuckets * (shift + 1)) + (int)(sub - SubBuckets);
    }

    private static long UpperEdge(int index)
    {
        if (index < SubBuckets)
        {
            return index;
        }
        int shift = (index / SubBuckets) - 1;
        long sub = (index % SubBuckets) + SubBuckets;
        return ((sub + 1) << shift) - 1;
    }
}
