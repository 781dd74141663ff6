using System.Diagnostics;

namespace EdgeShield.Policy;

/// <summary>
/// <c>rate: N/s</c> of one rule: a token bucket per source address. A bucket holds at most
/// <c>N</c> requests and refills at <c>N</c> per period, so a source may send a burst of N and
/// then N per period.
/// </summary>
/// <remarks>
/// The table is set-associative and fully allocated when the policy is compiled: 512 sets of 8
/// ways (<see cref="Capacity"/> sources). A source hashes to one set; when all 8 ways of the set are
/// taken by other sources, the way seen least recently is reused, and the new source starts with a
/// full bucket. That is deterministic, costs at most 8 comparisons, allocates nothing (not even for a
/// source's first request), and never blocks a source because of others. Evicting the least
/// recently seen source is what loses least: its bucket has had the longest time to refill.
/// Buckets are kept in fixed point (tokens × ticks per period) so refill needs no division.
/// One lock per set: the critical section is a few arithmetic operations.
/// </remarks>
internal sealed class RateLimiter
{
    public const int Ways = 8;
    public const int Sets = 512;
    public const int Capacity = Ways * Sets;

    private readonly long _count;
    private readonly long _periodTicks;
    private readonly long _full;
    private readonly UInt128[] _sources = new UInt128[Capacity];
    private readonly long[] _lastSeen = new long[Capacity];
    private readonly long[] _tokens = new long[Capacity];
    private readonly bool[] _used = new bool[Capacity];
    private readonly Lock[] _locks = new Lock[Sets];

    public RateLimiter(int count, TimeSpan period)
    {
        _count = count;
        _periodTicks = Math.Max(1, (long)(period.TotalSeconds * Stopwatch.Frequency));
        _full = _count * _periodTicks;
        for (var i = 0; i < _locks.Length; i++)
        {
            _locks[i] = new Lock();
        }
    }

    public int Count => (int)_count;

    /// <summary>Takes one token of <paramref name="source"/>'s bucket at <paramref name="timestamp"/>; false when it is empty.</summary>
    public bool TryTake(UInt128 source, long timestamp)
    {
        var set = SetOf(source);
        var first = set * Ways;
        lock (_locks[set])
        {
            // Ways fill from the front and are never freed, so the first free way ends the search.
            var way = -1;
            var victim = first;
            for (var i = first; i < first + Ways; i++)
            {
                if (!_used[i])
                {
                    victim = i;
                    break;
                }
                if (_sources[i] == source)
                {
                    way = i;
                    break;
                }
                if (_lastSeen[i] < _lastSeen[victim])
                {
                    victim = i;
                }
            }

            if (way < 0)
            {
                way = victim;
                _used[way] = true;
                _sources[way] = source;
                _lastSeen[way] = timestamp;
                _tokens[way] = _full;
            }

            var elapsed = timestamp - _lastSeen[way];
            if (elapsed > 0)
            {
                // Past one period the bucket is full anyway; capping first keeps elapsed × count from overflowing.
                var refill = elapsed >= _periodTicks ? _full : elapsed * _count;
                _tokens[way] = Math.Min(_full, _tokens[way] + refill);
                _lastSeen[way] = timestamp;
            }

            if (_tokens[way] >= _periodTicks)
            {
                _tokens[way] -= _periodTicks;
                return true;
            }
            return false;
        }
    }

    private static int SetOf(UInt128 source)
    {
        var folded = (ulong)source ^ (ulong)(source >> 64);
        // Fibonacci hashing: the multiply spreads the low bits of neighbouring addresses over the sets.
        return (int)((folded * 0x9E3779B97F4A7C15UL) >> 55);
    }
}
