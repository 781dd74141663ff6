using System.Diagnostics;

namespace EdgeShield.Policy;

/// <summary>
/// <c>rate: N/s</c> of one rule: a token bucket per source address. A bucket holds at most
/// <c>N</c> requests and refills at <c>N</c> per period, so a source may send a burst of N and
/// then N per period.
/// </summary>
/// <remarks>
/// The table is set-associative and fully allocated when the policy is compiled: 512 sets of 8
/// ways (<see cref="Capacity"/> sources). A source hashes to one set and keeps its way, exactly, for as
/// long as its bucket is not full. A way is given to another source only once its bucket has refilled
/// completely: forgetting a full bucket loses nothing, because a source that comes back finds a full
/// bucket either way. A new source that finds all 8 ways of its set held by buckets that are still
/// refilling is refused (as over its rate) until one of them is full again — at most one period. So no
/// choice of source addresses raises anyone's rate: an address that is evicted and returns, or a new
/// one in a busy set, never gets tokens that an exact per-source limiter would not give it. (The old
/// least-recently-seen eviction gave the newcomer a full bucket: nine addresses in one set rotating
/// through eight ways each came back full.) The price is that 8 busy sources hashing to one set hold
/// it against a ninth for up to one period. Checking costs at most 8 comparisons, allocates nothing
/// (not even for a source's first request), and never blocks a source that holds a way.
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
            var victim = -1;
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
                // Only a way whose bucket is full by now may change hands (least recently seen first).
                if (IsFullAt(i, timestamp) && (victim < 0 || _lastSeen[i] < _lastSeen[victim]))
                {
                    victim = i;
                }
            }

            if (way < 0)
            {
                if (victim < 0)
                {
                    // Every way of the set holds a bucket that is still refilling: forgetting one would
                    // refill it early. The newcomer waits, as an exact limiter with no room would make it.
                    return false;
                }
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

    /// <summary>True when the bucket in <paramref name="way"/> has refilled completely by <paramref name="timestamp"/>.</summary>
    private bool IsFullAt(int way, long timestamp)
    {
        var elapsed = timestamp - _lastSeen[way];
        return elapsed >= _periodTicks || (elapsed >= 0 && _tokens[way] + (elapsed * _count) >= _full);
    }

    private static int SetOf(UInt128 source)
    {
        var folded = (ulong)source ^ (ulong)(source >> 64);
        // Fibonacci hashing: the multiply spreads the low bits of neighbouring addresses over the sets.
        return (int)((folded * 0x9E3779B97F4A7C15UL) >> 55);
    }
}
