using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace EdgeShield.Transport;

/// <summary>
/// Reads a connected TCP socket the way an event-driven proxy does. After a read that left the
/// kernel's receive queue empty (it returned fewer bytes than asked for), the next read waits for
/// edge-triggered epoll to report new data instead of trying first. The runtime's
/// <see cref="Socket.ReceiveAsync(Memory{byte}, SocketFlags, CancellationToken)"/> always tries
/// first, and with one Modbus request outstanding per connection that try finds nothing
/// (EAGAIN): one wasted system call per socket per request, which was the measured difference
/// between the gateway and HAProxy (bench/RESULTS.md §2).
/// </summary>
/// <remarks>
/// Continuations run inline on the epoll thread that saw the data, as the runtime does with
/// inline socket completions. Sends stay with <see cref="Socket"/>. One read at a time; after
/// <see cref="Dispose"/> a waiting or later read returns 0 (end of stream). Call
/// <see cref="Dispose"/> before disposing the socket, so the registration is removed from the
/// descriptor it was made for.
/// </remarks>
public sealed class EpollSocketReader : IValueTaskSource<int>, IDisposable
{
    private readonly SafeSocketHandle _handle;
    private readonly EpollLoop _loop;
    private readonly ulong _token;
    private ManualResetValueTaskSourceCore<int> _core;
    private Memory<byte> _parked;
    // The previous read filled its buffer, so more may be queued: read without waiting. Not before the first
    // read: epoll_ctl(ADD) reports bytes already queued as an edge, so the first read waits for epoll too and
    // its continuation runs on this socket's loop thread. (An accepted client's first read on the accept
    // thread would open its PLC connection from there, on whatever loop came next, not on the client's.)
    private bool _mayHaveData;
    // Set by the epoll thread on every edge; cleared just before each read.
    private int _edge;
    // 1 while a read is parked in _core; whoever swaps it to 0 completes that read.
    private int _waiting;
    // The peer shut down or the connection failed (EPOLLRDHUP/HUP/ERR): end of stream or an error
    // is queued behind whatever data a short read took, and no later edge will announce it, so
    // from now on every read tries first.
    private int _hangup;
    private int _disposed;
    // Set while a non-blocking connect is in progress: the first event completes it.
    private TaskCompletionSource? _connecting;

    /// <summary>Reads <paramref name="socket"/> (connected, stream) on the calling thread's epoll loop if it is one, else on the next.</summary>
    public EpollSocketReader(Socket socket)
        : this(socket, EpollLoop.Current ?? EpollLoop.Next())
    {
    }

    /// <summary>Reads <paramref name="socket"/> on <paramref name="loop"/>: a client and its PLC connection share one, so one thread carries the whole transaction.</summary>
    internal EpollSocketReader(Socket socket, EpollLoop loop)
        : this(socket, loop, connecting: null)
    {
    }

    private EpollSocketReader(Socket socket, EpollLoop loop, TaskCompletionSource? connecting)
    {
        ArgumentNullException.ThrowIfNull(socket);
        _handle = socket.SafeHandle;
        _core.RunContinuationsAsynchronously = false;
        _loop = loop;
        _connecting = connecting;
        _token = _loop.Register(this, _handle, connecting is null ? EpollLoop.ReadEvents : EpollLoop.ReadEvents | EpollLoop.EPOLLOUT);
    }

    /// <summary>
    /// Connects <paramref name="socket"/> (new, stream) to <paramref name="endPoint"/> with a non-blocking
    /// connect whose completion epoll reports on <paramref name="loop"/>, and returns its reader. The
    /// runtime's <see cref="Socket.ConnectAsync(EndPoint, CancellationToken)"/> would register the socket
    /// with the runtime's own epoll threads, which then wake for every response the PLC sends although
    /// nothing of theirs waits on it: at 64 connections that was half a wake-up per request and a
    /// quarter of the gateway's throughput (bench/RESULTS.md §2).
    /// </summary>
    /// <exception cref="SocketException">Refused, unreachable, reset.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> (the connect timeout) fired first.</exception>
    internal static async Task<EpollSocketReader> ConnectAsync(Socket socket, EndPoint endPoint, EpollLoop loop, CancellationToken cancellationToken)
    {
        socket.Blocking = false;
        try
        {
            socket.Connect(endPoint);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
        {
            // Registered only now that the connect has begun: a socket added before connect(2) is in TCP_CLOSE,
            // and epoll reports it at once as EPOLLOUT|EPOLLHUP. That early event completed the connect before
            // the handshake and marked the connection hung up for good, so every later read tried recv(2)
            // first and found nothing: up to 0.4 wasted system calls per request (bench/RESULTS.md §13h).
            var connecting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var pending = new EpollSocketReader(socket, loop, connecting);
            try
            {
                await connecting.Task.WaitAsync(cancellationToken);
                Volatile.Write(ref pending._connecting, null);
                ThrowIfConnectFailed(socket);
                loop.Modify(pending._token, pending._handle, EpollLoop.ReadEvents);
                return pending;
            }
            catch
            {
                pending.Dispose();
                throw;
            }
        }
        // Connected at once (loopback can): the first read waits for epoll, which reports bytes already queued.
        ThrowIfConnectFailed(socket);
        return new EpollSocketReader(socket, loop);
    }

    private static void ThrowIfConnectFailed(Socket socket)
    {
        if (socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error) is int error && error != 0)
        {
            throw Enum.IsDefined((SocketError)error) ? new SocketException(error) : EpollLoop.Error(error);
        }
    }

    /// <summary>The peer shut down or the connection failed: every read now tries recv(2) before waiting for epoll.</summary>
    internal bool HungUp => Volatile.Read(ref _hangup) != 0;

    /// <summary>Reads into <paramref name="buffer"/> (not empty): the byte count, or 0 at end of stream or after <see cref="Dispose"/>.</summary>
    /// <exception cref="SocketException">The connection failed (reset, timed out).</exception>
    public ValueTask<int> ReceiveAsync(Memory<byte> buffer)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return new ValueTask<int>(0);
        }
        if (_mayHaveData || Volatile.Read(ref _hangup) != 0)
        {
            Interlocked.Exchange(ref _edge, 0);
            int n = EpollLoop.Receive(_handle, buffer.Span, out int errno);
            if (n >= 0 || errno != EpollLoop.EAGAIN)
            {
                return Completed(n, errno, buffer.Length);
            }
            _mayHaveData = false;
        }
        _parked = buffer;
        _core.Reset();
        Interlocked.Exchange(ref _waiting, 1);
        // An edge that came before we parked (or while disposing) would not wake us: take it here.
        while ((Volatile.Read(ref _edge) != 0 || Volatile.Read(ref _disposed) != 0) && Interlocked.Exchange(ref _waiting, 0) == 1)
        {
            if (Volatile.Read(ref _disposed) != 0)
            {
                return new ValueTask<int>(0);
            }
            Interlocked.Exchange(ref _edge, 0);
            int n = EpollLoop.Receive(_handle, buffer.Span, out int errno);
            if (n >= 0 || errno != EpollLoop.EAGAIN)
            {
                return Completed(n, errno, buffer.Length);
            }
            Interlocked.Exchange(ref _waiting, 1);
        }
        return new ValueTask<int>(this, _core.Version);
    }

    private ValueTask<int> Completed(int n, int errno, int asked)
    {
        if (n < 0)
        {
            return errno == EpollLoop.EBADF ? new ValueTask<int>(0) : ValueTask.FromException<int>(EpollLoop.Error(errno));
        }
        _mayHaveData = n == asked || Volatile.Read(ref _hangup) != 0;
        return new ValueTask<int>(n);
    }

    /// <summary>On the epoll thread: data, end of stream or an error was reported for this socket.</summary>
    internal void OnReadable(uint events)
    {
        if (Volatile.Read(ref _connecting) is { } connecting)
        {
            // Writable (connected) or an error: ConnectAsync reads SO_ERROR. A hang-up here is the connect's
            // failure, not the connection's end. Data or an end of stream queued by then is reported again
            // when ConnectAsync switches to read events (EPOLL_CTL_MOD re-polls), so nothing is lost.
            connecting.TrySetResult();
            return;
        }
        if ((events & EpollLoop.HangupEvents) != 0)
        {
            Interlocked.Exchange(ref _hangup, 1);
        }
        Interlocked.Exchange(ref _edge, 1);
        while (Interlocked.Exchange(ref _waiting, 0) == 1)
        {
            Interlocked.Exchange(ref _edge, 0);
            var buffer = _parked;
            int errno = 0;
            int n = Volatile.Read(ref _disposed) != 0 ? 0 : EpollLoop.Receive(_handle, buffer.Span, out errno);
            if (n < 0 && errno == EpollLoop.EAGAIN)
            {
                // The edge was for bytes an earlier read already took.
                Interlocked.Exchange(ref _waiting, 1);
                if (Volatile.Read(ref _edge) == 0)
                {
                    return;
                }
                continue;
            }
            if (n < 0 && errno != EpollLoop.EBADF)
            {
                _core.SetException(EpollLoop.Error(errno));
                return;
            }
            n = Math.Max(n, 0);
            _mayHaveData = n == buffer.Length || Volatile.Read(ref _hangup) != 0;
            _core.SetResult(n);
            return;
        }
    }

    /// <summary>Removes the socket from epoll; a parked read returns 0.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _loop.Unregister(_token, _handle);
        if (Interlocked.Exchange(ref _waiting, 0) == 1)
        {
            _core.SetResult(0);
        }
    }

    int IValueTaskSource<int>.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}

/// <summary>
/// One epoll instance and the thread that waits on it; one per allowed CPU (pinned to it), sockets spread over them.
/// Registrations carry a slot and a generation, so an event already fetched for a socket that was
/// just removed can never reach the reader that took its slot.
/// </summary>
internal sealed unsafe partial class EpollLoop
{
    internal const int EAGAIN = 11;
    internal const int EBADF = 9;
    private const int EINTR = 4;
    private const uint EPOLLIN = 0x001;
    internal const uint EPOLLOUT = 0x004;
    internal const uint HangupEvents = 0x008 | 0x010 | 0x2000; // EPOLLERR | EPOLLHUP | EPOLLRDHUP
    private const uint EPOLLRDHUP = 0x2000;
    private const uint EPOLLET = 1u << 31;
    private const int EPOLL_CTL_ADD = 1;
    private const int EPOLL_CTL_DEL = 2;
    private const int EPOLL_CTL_MOD = 3;
    internal const uint ReadEvents = EPOLLIN | EPOLLRDHUP | EPOLLET;
    private const int EPOLL_CLOEXEC = 0x80000;
    private const int MSG_DONTWAIT = 0x40;
    private const int MaxEvents = 256;

    // struct epoll_event is packed on x86-64 (12 bytes, data at 4) and naturally aligned elsewhere (16, data at 8).
    private static readonly bool Packed = RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86;
    private static readonly int EventSize = Packed ? 12 : 16;
    private static readonly int DataOffset = Packed ? 4 : 8;

    // One loop per allowed CPU, at most 8. EDGESHIELD_EPOLL_LOOPS=n (a bench and diagnosis switch, like
    // EDGESHIELD_EPOLL_PIN) sets the count: one loop on 2 shared CPUs gave a lower p99 and a lower throughput
    // (bench/RESULTS.md §13g).
    private static readonly Lazy<EpollLoop[]> Loops = new(() =>
    {
        int count = int.TryParse(Environment.GetEnvironmentVariable("EDGESHIELD_EPOLL_LOOPS"), out int asked) ? asked : Environment.ProcessorCount;
        var loops = new EpollLoop[Math.Clamp(count, 1, 8)];
        for (int i = 0; i < loops.Length; i++)
        {
            loops[i] = new EpollLoop(i);
        }
        return loops;
    });

    private static int s_next;

    private readonly int _epoll;
    // Guards registering and releasing (slots, generations, growth). The epoll thread looks readers up
    // without it: a slot holds an immutable registration, replaced whole, in an array that is only ever
    // replaced by a larger copy.
    private readonly object _gate = new();
    private readonly Stack<int> _freeSlots = new();
    private Registration?[] _registrations = new Registration?[64];
    private uint[] _generations = new uint[64];
    private int _used;

    private sealed record Registration(EpollSocketReader Reader, uint Generation);

    private EpollLoop(int index)
    {
        _epoll = epoll_create1(EPOLL_CLOEXEC);
        if (_epoll < 0)
        {
            throw Error(Marshal.GetLastPInvokeError());
        }
        _index = index;
        new Thread(Run) { IsBackground = true, Name = $"edgeshield-epoll-{index}" }.Start();
    }

    private readonly int _index;

    /// <summary>False when the environment says <c>EDGESHIELD_EPOLL_PIN=0</c> (a bench and diagnosis switch).</summary>
    internal static readonly bool PinLoops = Environment.GetEnvironmentVariable("EDGESHIELD_EPOLL_PIN") != "0";

    /// <summary>Pins the calling thread to the index-th CPU it is allowed on (best effort).</summary>
    private static void PinToAllowedCpu(int index)
    {
        ulong* mask = stackalloc ulong[16];
        if (sched_getaffinity(0, 16 * sizeof(ulong), mask) != 0)
        {
            return;
        }
        int seen = 0;
        for (int cpu = 0; cpu < 1024; cpu++)
        {
            if ((mask[cpu / 64] & (1UL << (cpu % 64))) == 0)
            {
                continue;
            }
            if (seen++ == index)
            {
                ulong* one = stackalloc ulong[16];
                new Span<ulong>(one, 16).Clear();
                one[cpu / 64] = 1UL << (cpu % 64);
                _ = sched_setaffinity(0, 16 * sizeof(ulong), one);
                return;
            }
        }
    }

    [ThreadStatic]
    private static EpollLoop? t_current;

    /// <summary>The loop whose thread is running, or null on any other thread.</summary>
    public static EpollLoop? Current => t_current;

    public static EpollLoop Next()
    {
        var loops = Loops.Value;
        return loops[(uint)Interlocked.Increment(ref s_next) % (uint)loops.Length];
    }

    public ulong Register(EpollSocketReader reader, SafeSocketHandle handle, uint events)
    {
        ulong token;
        lock (_gate)
        {
            if (!_freeSlots.TryPop(out int slot))
            {
                if (_used == _registrations.Length)
                {
                    var registrations = new Registration?[_registrations.Length * 2];
                    var generations = new uint[_registrations.Length * 2];
                    _registrations.CopyTo(registrations, 0);
                    _generations.CopyTo(generations, 0);
                    _generations = generations;
                    Volatile.Write(ref _registrations, registrations);
                }
                slot = _used++;
            }
            uint generation = ++_generations[slot];
            token = ((ulong)generation << 32) | (uint)slot;
            Volatile.Write(ref _registrations[slot], new Registration(reader, generation));
        }
        try
        {
            Control(EPOLL_CTL_ADD, token, handle, events);
        }
        catch
        {
            Release(token);
            throw;
        }
        return token;
    }

    /// <summary>Changes the events a registered socket reports.</summary>
    public void Modify(ulong token, SafeSocketHandle handle, uint events) => Control(EPOLL_CTL_MOD, token, handle, events);

    private void Control(int op, ulong token, SafeSocketHandle handle, uint events)
    {
        byte* ev = stackalloc byte[16];
        *(uint*)ev = events;
        *(ulong*)(ev + DataOffset) = token;
        if (epoll_ctl(_epoll, op, handle, ev) != 0)
        {
            throw Error(Marshal.GetLastPInvokeError());
        }
    }

    public void Unregister(ulong token, SafeSocketHandle handle)
    {
        try
        {
            // The handle is still open here (the reader is disposed before its socket), so this
            // removes the registration from the descriptor it was made for, not from a reused one.
            _ = epoll_ctl(_epoll, EPOLL_CTL_DEL, handle, null);
        }
        catch (ObjectDisposedException)
        {
            // Closed already: the kernel dropped the registration with the descriptor.
        }
        Release(token);
    }

    private void Release(ulong token)
    {
        int slot = (int)(uint)token;
        lock (_gate)
        {
            Volatile.Write(ref _registrations[slot], null);
            _freeSlots.Push(slot);
        }
    }

    /// <summary>A <see cref="SocketException"/> for a Linux errno (the same numbers on x86-64 and arm64).</summary>
    public static SocketException Error(int errno) => new((int)(errno switch
    {
        104 => SocketError.ConnectionReset,
        103 => SocketError.ConnectionAborted,
        110 => SocketError.TimedOut,
        111 => SocketError.ConnectionRefused,
        113 => SocketError.HostUnreachable,
        101 => SocketError.NetworkUnreachable,
        107 => SocketError.NotConnected,
        32 => SocketError.Shutdown,
        _ => SocketError.SocketError,
    }));

    /// <summary>recv(2) without blocking: bytes read, 0 at end of stream, or -1 with <paramref name="errno"/>.</summary>
    public static int Receive(SafeSocketHandle handle, Span<byte> buffer, out int errno)
    {
        errno = 0;
        nint n;
        try
        {
            fixed (byte* p = buffer)
            {
                n = recv(handle, p, buffer.Length, MSG_DONTWAIT);
            }
        }
        catch (ObjectDisposedException)
        {
            errno = EBADF;
            return -1;
        }
        if (n < 0)
        {
            errno = Marshal.GetLastPInvokeError();
        }
        return (int)n;
    }

    private void Run()
    {
        t_current = this;
        // One loop per allowed CPU, each staying on its own (as HAProxy's cpu-map): on 2 cores shared
        // with other processes this took 64-connection throughput from 0.86-0.93x to 0.95-1.0x HAProxy's.
        // EDGESHIELD_EPOLL_PIN=0 leaves the loops to the scheduler (bench/RESULTS.md §13 and §13d compare both:
        // pinned is better with libmodbus's 64 client threads beside it, unpinned with lib60870's 130).
        if (PinLoops)
        {
            PinToAllowedCpu(_index);
        }
        byte* events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * EventSize));
        // Poll a little before sleeping while events come close together and the CPU is the loop's own (IdlePoll).
        long maxPoll = IdlePoll.MaxMicroseconds * Stopwatch.Frequency / 1_000_000;
        var poll = new IdlePoll(maxPoll);
        // Without the run-queue delay (a kernel without schedstats) a shared CPU cannot be told: never poll.
        var runQueue = maxPoll > 0 ? RunQueueDelay.OfThisThread() : null;
        while (true)
        {
            int n = 0;
            long idleFrom = 0;
            if (runQueue is not null)
            {
                idleFrom = Stopwatch.GetTimestamp();
                if (runQueue.TrySample(idleFrom, out long periodNs, out long delayNs))
                {
                    poll.OnRunQueueDelay(periodNs, delayNs);
                }
                long until = idleFrom + poll.Window;
                while (Stopwatch.GetTimestamp() < until && (n = epoll_wait(_epoll, events, MaxEvents, 0)) == 0)
                {
                }
            }
            if (n == 0)
            {
                n = epoll_wait(_epoll, events, MaxEvents, -1);
            }
            if (runQueue is not null && n > 0)
            {
                poll.OnWoken(Stopwatch.GetTimestamp() - idleFrom);
            }
            if (n < 0)
            {
                if (Marshal.GetLastPInvokeError() == EINTR)
                {
                    continue;
                }
                Thread.Sleep(10);
                continue;
            }
            for (int i = 0; i < n; i++)
            {
                byte* ev = events + i * EventSize;
                ulong token = *(ulong*)(ev + DataOffset);
                int slot = (int)(uint)token;
                // The socket's registration was made (and published) before epoll_ctl added it, so any event
                // of it finds it; one fetched just before a release may still find it, as with any unregister.
                var registrations = Volatile.Read(ref _registrations);
                var registration = slot < registrations.Length ? Volatile.Read(ref registrations[slot]) : null;
                if (registration is not null && registration.Generation == (uint)(token >> 32))
                {
                    registration.Reader.OnReadable(*(uint*)ev);
                }
            }
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sched_getaffinity(int pid, nint size, ulong* mask);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sched_setaffinity(int pid, nint size, ulong* mask);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_ctl(int epfd, int op, SafeSocketHandle fd, void* ev);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_wait(int epfd, void* events, int maxevents, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recv(SafeSocketHandle fd, void* buf, nint len, int flags);
}
