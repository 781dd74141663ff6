using System.Buffers.Text;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace EdgeShield.Transport;

/// <summary>
/// How long an epoll loop polls (<c>epoll_wait</c> with a zero timeout) before it sleeps, adapted the way the
/// kernel's cpuidle-haltpoll adapts a vCPU's poll before it halts. A loop that sleeps is woken by the CPU that
/// queued the data: an inter-processor interrupt, and on a virtual machine a VM exit on both sides, paid per
/// wake-up. Under load the next event is usually a few microseconds away, and a loop that waits for it awake
/// spares both (bench/RESULTS.md §13h: 1.2 wake-ups per request without it, 0.15 with it).
/// </summary>
/// <remarks>
/// <para>The window grows (doubling from a quarter of the maximum) after an idle spell that a longer window would
/// have caught, shrinks (halving, then to zero) after one longer than the maximum, and stays put while polls
/// succeed. A gateway with little traffic therefore never polls: its events are further apart than the maximum.</para>
/// <para>Only a loop that has its CPU to itself polls. When the loop thread waited on the run queue for more than
/// <see cref="SharedDelayShare"/> of a sampling period (other threads want its CPU: the PLC's or HMI's processes on
/// a shared machine), the window is not used for the next period, since polling would take that CPU from them.</para>
/// </remarks>
internal struct IdlePoll
{
    /// <summary>The longest poll, in microseconds: the environment's <c>EDGESHIELD_EPOLL_POLL_US</c> (0 turns polling off), 50 by default.</summary>
    public static readonly int MaxMicroseconds =
        int.TryParse(Environment.GetEnvironmentVariable("EDGESHIELD_EPOLL_POLL_US"), out int us) && us >= 0 ? Math.Min(us, 1000) : 50;

    /// <summary>The share of a sampling period spent waiting to run above which the loop's CPU counts as shared.</summary>
    public const double SharedDelayShare = 0.05;

    private readonly long _max;
    private readonly long _start;
    private long _window;
    private bool _shared;

    /// <summary>Polls for at most <paramref name="maxTicks"/> (<see cref="Stopwatch"/> ticks); 0: never.</summary>
    public IdlePoll(long maxTicks)
    {
        _max = Math.Max(maxTicks, 0);
        _start = _max / 4;
        _window = 0;
        _shared = false;
    }

    /// <summary>How long to poll before sleeping now, in ticks; 0: sleep at once.</summary>
    public readonly long Window => _shared ? 0 : _window;

    /// <summary>The loop was idle for <paramref name="idleTicks"/> (polling, then sleeping) before events came.</summary>
    public void OnWoken(long idleTicks)
    {
        if (idleTicks > _max)
        {
            _window = _window / 2 < _start ? 0 : _window / 2;
        }
        else if (idleTicks > _window)
        {
            _window = Math.Clamp(_window * 2, _start, _max);
        }
    }

    /// <summary>In the last <paramref name="periodNs"/> the loop thread waited <paramref name="runDelayNs"/> on the run queue.</summary>
    public void OnRunQueueDelay(long periodNs, long runDelayNs) =>
        _shared = periodNs > 0 && runDelayNs > SharedDelayShare * periodNs;
}

/// <summary>
/// The calling thread's time spent waiting on a run queue (the second field of /proc/thread-self/schedstat),
/// sampled every 100 ms without allocating. Open it on the thread it is for.
/// </summary>
internal sealed unsafe partial class RunQueueDelay : IDisposable
{
    private static readonly long SampleEvery = Stopwatch.Frequency / 10;

    private int _fd;
    private long _sampledAt;
    private long _sampledDelay = -1;

    private RunQueueDelay()
    {
        _fd = open("/proc/thread-self/schedstat", 0 /* O_RDONLY */ | 0x80000 /* O_CLOEXEC */);
    }

    /// <summary>The calling thread's run-queue delay, or null if the kernel does not say (no schedstats).</summary>
    public static RunQueueDelay? OfThisThread()
    {
        var delay = new RunQueueDelay();
        if (delay.Read() >= 0)
        {
            return delay;
        }
        delay.Dispose();
        return null;
    }

    /// <summary>
    /// At most every 100 ms (<paramref name="now"/> in <see cref="Stopwatch"/> ticks): true with the period since the
    /// last sample and the time waited to run in it, both in nanoseconds.
    /// </summary>
    public bool TrySample(long now, out long periodNs, out long delayNs)
    {
        periodNs = delayNs = 0;
        if (now - _sampledAt < SampleEvery)
        {
            return false;
        }
        long delay = Read();
        bool sampled = delay >= 0 && _sampledDelay >= 0;
        if (sampled)
        {
            periodNs = (long)Stopwatch.GetElapsedTime(_sampledAt, now).TotalNanoseconds;
            delayNs = delay - _sampledDelay;
        }
        _sampledAt = now;
        _sampledDelay = delay;
        return sampled;
    }

    /// <summary>Nanoseconds this thread has waited to run since it started, or -1.</summary>
    public long Read()
    {
        if (_fd < 0)
        {
            return -1;
        }
        byte* text = stackalloc byte[96];
        nint n = pread(_fd, text, 96, 0);
        return n > 0 ? ParseRunDelay(new ReadOnlySpan<byte>(text, (int)n)) : -1;
    }

    /// <summary>"run_ns run_delay_ns timeslices": the second number, or -1.</summary>
    public static long ParseRunDelay(ReadOnlySpan<byte> schedstat)
    {
        int space = schedstat.IndexOf((byte)' ');
        return space >= 0 && Utf8Parser.TryParse(schedstat[(space + 1)..], out long delay, out _) ? delay : -1;
    }

    public void Dispose()
    {
        if (_fd >= 0)
        {
            _ = close(_fd);
            _fd = -1;
        }
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc")]
    private static partial nint pread(int fd, void* buffer, nint count, long offset);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
