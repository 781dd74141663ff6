namespace EdgeShield.Policy;

/// <summary>
/// The bounds of <c>value:</c> on a rule with <c>type:</c>: sorted, merged, inclusive ranges of real
/// numbers (negative and decimal bounds allowed), searched by binary search. Unlike
/// <see cref="IntervalSet{T}"/> only overlapping ranges merge: 1-2 and 3-4 leave 2.5 out.
/// </summary>
internal sealed class ValueBounds
{
    private readonly double[] _low;
    private readonly double[] _high;

    private ValueBounds(double[] low, double[] high)
    {
        _low = low;
        _high = high;
    }

    public static ValueBounds Build(List<(double Low, double High)> ranges)
    {
        ranges.Sort(static (a, b) => a.Low.CompareTo(b.Low));
        var low = new List<double>(ranges.Count);
        var high = new List<double>(ranges.Count);
        foreach (var (lo, hi) in ranges)
        {
            if (low.Count > 0 && lo <= high[^1])
            {
                high[^1] = Math.Max(high[^1], hi);
                continue;
            }
            low.Add(lo);
            high.Add(hi);
        }
        return new ValueBounds([.. low], [.. high]);
    }

    /// <summary>True when <paramref name="value"/> lies inside a range; NaN never does.</summary>
    public bool Contains(double value)
    {
        int lo = 0, hi = _low.Length - 1, found = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_low[mid] <= value)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }
        return found >= 0 && value <= _high[found];
    }

    /// <summary>True when every range of <paramref name="other"/> lies inside one of this set.</summary>
    public bool IsSupersetOf(ValueBounds other)
    {
        for (var i = 0; i < other._low.Length; i++)
        {
            if (!InsideOne(other._low[i], other._high[i]))
            {
                return false;
            }
        }
        return true;
    }

    private bool InsideOne(double low, double high)
    {
        for (var i = 0; i < _low.Length; i++)
        {
            if (_low[i] <= low && high <= _high[i])
            {
                return true;
            }
        }
        return false;
    }
}
