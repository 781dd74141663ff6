namespace EdgeShield.Policy;

/// <summary>
/// Sorted, merged, inclusive intervals over a number type (addresses, register values, source
/// addresses as <see cref="UInt128"/>), built once at compile time and searched by binary search.
/// Adjacent and overlapping input ranges are merged, so a span is allowed when it lies inside one
/// stored interval.
/// </summary>
internal sealed class IntervalSet<T> where T : struct, IComparable<T>, System.Numerics.IIncrementOperators<T>, System.Numerics.IMinMaxValue<T>
{
    private readonly T[] _low;
    private readonly T[] _high;

    private IntervalSet(T[] low, T[] high)
    {
        _low = low;
        _high = high;
    }

    public int Count => _low.Length;

    public (T Low, T High) this[int index] => (_low[index], _high[index]);

    public static IntervalSet<T> Build(List<(T Low, T High)> ranges)
    {
        ranges.Sort(static (a, b) => a.Low.CompareTo(b.Low));
        var low = new List<T>(ranges.Count);
        var high = new List<T>(ranges.Count);
        foreach (var (lo, hi) in ranges)
        {
            if (low.Count > 0)
            {
                var last = high[^1];
                // Merge when it overlaps or starts right after the previous one (last + 1 == lo).
                if (lo.CompareTo(last) <= 0 || (last.CompareTo(T.MaxValue) < 0 && Next(last).CompareTo(lo) == 0))
                {
                    if (hi.CompareTo(last) > 0)
                    {
                        high[^1] = hi;
                    }
                    continue;
                }
            }
            low.Add(lo);
            high.Add(hi);
        }
        return new IntervalSet<T>([.. low], [.. high]);
    }

    private static T Next(T value)
    {
        value++;
        return value;
    }

    /// <summary>The index of the interval with the greatest low bound ≤ <paramref name="value"/>, or -1.</summary>
    private int Floor(T value)
    {
        int lo = 0, hi = _low.Length - 1, found = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_low[mid].CompareTo(value) <= 0)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }
        return found;
    }

    public bool Contains(T value)
    {
        var i = Floor(value);
        return i >= 0 && value.CompareTo(_high[i]) <= 0;
    }

    /// <summary>The low bound of the interval that holds <paramref name="value"/>, if one does.</summary>
    public bool TryFindLow(T value, out T low)
    {
        var i = Floor(value);
        if (i >= 0 && value.CompareTo(_high[i]) <= 0)
        {
            low = _low[i];
            return true;
        }
        low = default;
        return false;
    }

    /// <summary>True when all of <paramref name="low"/>..<paramref name="high"/> lies inside one interval.</summary>
    public bool ContainsRange(T low, T high)
    {
        var i = Floor(low);
        return i >= 0 && high.CompareTo(_high[i]) <= 0;
    }

    /// <summary>True when every interval of <paramref name="other"/> lies inside one of this set.</summary>
    public bool IsSupersetOf(IntervalSet<T> other)
    {
        for (var i = 0; i < other._low.Length; i++)
        {
            if (!ContainsRange(other._low[i], other._high[i]))
            {
                return false;
            }
        }
        return true;
    }
}
