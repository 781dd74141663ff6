using System.Diagnostics;

namespace EdgeShield.Hardware.Tests;

internal static class Wait
{
    /// <summary>
    /// Polls <paramref name="condition"/> until true or <paramref name="timeoutMs"/> passes (by default generous: a
    /// loaded CI machine may run the timers and callbacks behind the condition seconds late).
    /// </summary>
    public static async Task<bool> UntilAsync(Func<bool> condition, int timeoutMs = 20_000)
    {
        var sw = Stopwatch.StartNew();
        while (sw.ElapsedMilliseconds < timeoutMs)
        {
            if (condition())
            {
                return true;
            }
            await Task.Delay(10);
        }
        return condition();
    }
}
