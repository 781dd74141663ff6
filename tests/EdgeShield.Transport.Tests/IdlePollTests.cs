using System.Text;
using EdgeShield.Transport;

namespace EdgeShield.Transport.Tests;

/// <summary>
/// The epoll loop's poll before sleeping: it grows only while events come within the maximum, falls back to
/// sleeping at once when they stop, and never polls on a CPU that other threads are waiting for.
/// </summary>
public sealed class IdlePollTests
{
    private const long Max = 400; // ticks; the first window is a quarter of it

    [Fact]
    public void NewLoop_SleepsAtOnce()
    {
        Assert.Equal(0, new IdlePoll(Max).Window);
    }

    [Fact]
    public void EventsWithinTheMaximum_GrowTheWindowByDoubling_UpToTheMaximum()
    {
        var poll = new IdlePoll(Max);
        var windows = new List<long>();
        for (int i = 0; i < 5; i++)
        {
            poll.OnWoken(Max); // slept until an event that a longer window would have caught
            windows.Add(poll.Window);
        }
        Assert.Equal([100, 200, 400, 400, 400], windows);
    }

    [Fact]
    public void EventsCaughtWithinTheWindow_LeaveItAlone()
    {
        var poll = new IdlePoll(Max);
        poll.OnWoken(150);
        poll.OnWoken(150);
        Assert.Equal(200, poll.Window);
        poll.OnWoken(120); // the poll caught it
        poll.OnWoken(0);   // events were already queued
        Assert.Equal(200, poll.Window);
    }

    [Fact]
    public void IdleLongerThanTheMaximum_HalvesTheWindow_ThenSleepsAtOnce()
    {
        var poll = new IdlePoll(Max);
        for (int i = 0; i < 3; i++)
        {
            poll.OnWoken(Max);
        }
        var windows = new List<long>();
        for (int i = 0; i < 4; i++)
        {
            poll.OnWoken(10 * Max); // traffic stopped: a poll would only have burnt the CPU
            windows.Add(poll.Window);
        }
        Assert.Equal([200, 100, 0, 0], windows);
    }

    [Fact]
    public void ASharedCpu_StopsPolling_UntilItIsTheLoopsOwnAgain()
    {
        var poll = new IdlePoll(Max);
        poll.OnWoken(Max);
        poll.OnWoken(Max);
        Assert.Equal(200, poll.Window);

        poll.OnRunQueueDelay(100_000_000, 20_000_000); // waited 20 % of 100 ms to run: others want this CPU
        Assert.Equal(0, poll.Window);
        poll.OnRunQueueDelay(100_000_000, 1_000_000);  // 1 %: its own again
        Assert.Equal(200, poll.Window);
    }

    [Fact]
    public void PollingOff_NeverPolls()
    {
        var poll = new IdlePoll(0);
        poll.OnWoken(0);
        poll.OnWoken(1);
        Assert.Equal(0, poll.Window);
    }

    [Theory]
    [InlineData("1234567 89012 345\n", 89012)]
    [InlineData("0 0 0\n", 0)]
    [InlineData("1234567\n", -1)]
    [InlineData("12 x 3\n", -1)]
    public void RunDelay_IsTheSecondSchedstatField(string schedstat, long expected)
    {
        Assert.Equal(expected, RunQueueDelay.ParseRunDelay(Encoding.ASCII.GetBytes(schedstat)));
    }

    [Fact]
    public void RunDelay_OfThisThread_IsReadAndNeverGoesBack()
    {
        using var delay = RunQueueDelay.OfThisThread();
        Assert.NotNull(delay); // this kernel exports /proc/thread-self/schedstat
        long first = delay.Read();
        Assert.True(first >= 0);
        Thread.Sleep(5);
        Assert.True(delay.Read() >= first);
    }
}
