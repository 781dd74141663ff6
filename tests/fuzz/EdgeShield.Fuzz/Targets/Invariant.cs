using System.Diagnostics.CodeAnalysis;

namespace EdgeShield.Fuzz;

/// <summary>A parser broke one of its promises. Thrown out of a target, it is a crash to AFL and a failure to xunit.</summary>
public sealed class InvariantViolationException : Exception
{
    public InvariantViolationException()
    {
    }

    public InvariantViolationException(string message) : base(message)
    {
    }

    public InvariantViolationException(string message, Exception innerException) : base(message, innerException)
    {
    }
}

/// <summary>Checks that allocate nothing unless they fail.</summary>
internal static class Invariant
{
    /// <summary>Throws when <paramref name="condition"/> is false. The message is a constant: building it must not allocate on the frame path.</summary>
    public static void That([DoesNotReturnIf(false)] bool condition, string message)
    {
        if (!condition)
        {
            throw new InvariantViolationException(message);
        }
    }

    /// <summary>
    /// True when <paramref name="part"/> lies inside <paramref name="whole"/> starting at <paramref name="offset"/>:
    /// a view a parser returns must be a slice of its input, never memory beside it.
    /// </summary>
    public static bool IsSliceAt(ReadOnlySpan<byte> whole, ReadOnlySpan<byte> part, int offset)
    {
        if (part.IsEmpty)
        {
            return true;
        }
        return whole.Overlaps(part, out int at) && at == offset && at + part.Length <= whole.Length;
    }

    /// <summary>True when <paramref name="part"/> lies anywhere inside <paramref name="whole"/>.</summary>
    public static bool IsInside(ReadOnlySpan<byte> whole, ReadOnlySpan<byte> part) =>
        part.IsEmpty || (whole.Overlaps(part, out int at) && at >= 0 && at + part.Length <= whole.Length);
}

/// <summary>The frame path must not allocate: measured around the parser calls, after warm-up.</summary>
internal static class NoAllocation
{
    public delegate void SpanAction(ReadOnlySpan<byte> input);

    public delegate void StateAction<in TState>(TState state);

    /// <summary>
    /// Runs <paramref name="action"/> and fails when it allocated. The first run of a code path may
    /// allocate once (a static constructor, a tier-up), so an allocating run is repeated: only a path
    /// that allocates again, warmed up, is a failure.
    /// </summary>
    public static void Check(ReadOnlySpan<byte> input, SpanAction action, string what)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        action(input);
        if (GC.GetAllocatedBytesForCurrentThread() == before)
        {
            return;
        }
        before = GC.GetAllocatedBytesForCurrentThread();
        action(input);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Invariant.That(allocated == 0, what + " allocated after warm-up");
    }

    /// <inheritdoc cref="Check(ReadOnlySpan{byte}, SpanAction, string)"/>
    public static void CheckState<TState>(TState state, StateAction<TState> action, string what)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        action(state);
        if (GC.GetAllocatedBytesForCurrentThread() == before)
        {
            return;
        }
        before = GC.GetAllocatedBytesForCurrentThread();
        action(state);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Invariant.That(allocated == 0, what + " allocated after warm-up");
    }
}
