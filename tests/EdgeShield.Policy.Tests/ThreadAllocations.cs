namespace EdgeShield.Policy.Tests;

/// <summary>Allocation measured on the calling thread, for the frame loops that must allocate nothing.</summary>
internal static class ThreadAllocations
{
    /// <summary>
    /// The fewest bytes this thread allocated over up to <paramref name="windows"/> runs of <paramref name="window"/>
    /// (stops at the first run that allocated nothing): an allocation in the loop shows in every run; a one-off of the
    /// runtime on this thread (seen once in a CI-like run, 6920 B in one window) does not fail the test.
    /// </summary>
    public static long Fewest(Action window, int windows = 3)
    {
        long fewest = long.MaxValue;
        for (int i = 0; i < windows && fewest != 0; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            window();
            fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return fewest;
    }
}
