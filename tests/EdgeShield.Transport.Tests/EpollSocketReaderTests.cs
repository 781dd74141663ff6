using System.Net;
using System.Net.Sockets;
using EdgeShield.Transport;

namespace EdgeShield.Transport.Tests;

/// <summary>
/// The gateway's own socket reads (edge-triggered epoll, no speculative read after a short one):
/// every byte arrives, in order, and end of stream, resets and disposal are never missed.
/// </summary>
public sealed class EpollSocketReaderTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private static async Task<(Socket Near, Socket Far)> PairAsync()
    {
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var far = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var accept = listener.AcceptAsync();
        await far.ConnectAsync(listener.LocalEndPoint!);
        return (await accept, far);
    }

    private static async Task<byte[]> ReadToEndAsync(EpollSocketReader reader, int bufferSize)
    {
        var received = new List<byte>();
        var buffer = new byte[bufferSize];
        while (true)
        {
            int n = await reader.ReceiveAsync(buffer).AsTask().WaitAsync(Bound);
            if (n == 0)
            {
                return [.. received];
            }
            received.AddRange(buffer.AsSpan(0, n).ToArray());
        }
    }

    [Fact]
    public async Task BytesSentInManySmallPieces_AllArriveInOrder_ThenEndOfStream()
    {
        var (near, far) = await PairAsync();
        using (near)
        using (far)
        {
            using var reader = new EpollSocketReader(near);
            var sent = Enumerable.Range(0, 20_000).Select(i => (byte)(i * 7)).ToArray();
            var reading = ReadToEndAsync(reader, 61);
            var random = new Random(7);
            for (int offset = 0; offset < sent.Length;)
            {
                int size = Math.Min(random.Next(1, 300), sent.Length - offset);
                await far.SendAsync(sent.AsMemory(offset, size));
                offset += size;
                if (random.Next(4) == 0)
                {
                    await Task.Delay(1);
                }
            }
            far.Shutdown(SocketShutdown.Send);

            Assert.Equal(sent, await reading);
        }
    }

    [Fact]
    public async Task DataAndCloseArrivingTogether_DataThenEndOfStream_EveryTime()
    {
        // The race an edge-triggered reader can lose: the peer's last bytes and its FIN are queued
        // before the read that takes the bytes, and no later edge announces the end of stream.
        for (int round = 0; round < 200; round++)
        {
            var (near, far) = await PairAsync();
            using (near)
            {
                using var reader = new EpollSocketReader(near);
                far.Send([1, 2, 3, (byte)round]);
                far.Dispose();

                Assert.Equal(new byte[] { 1, 2, 3, (byte)round }, await ReadToEndAsync(reader, 256));
            }
        }
    }

    [Fact]
    public async Task MoreQueuedThanTheBuffer_TheRestIsReadWithoutNewData()
    {
        var (near, far) = await PairAsync();
        using (near)
        using (far)
        {
            using var reader = new EpollSocketReader(near);
            far.Send(Enumerable.Range(0, 100).Select(i => (byte)i).ToArray());
            var buffer = new byte[100];
            int got = 0;
            while (got < 100)
            {
                got += await reader.ReceiveAsync(buffer.AsMemory(got, Math.Min(10, 100 - got))).AsTask().WaitAsync(Bound);
            }

            Assert.Equal(Enumerable.Range(0, 100).Select(i => (byte)i), buffer);
        }
    }

    [Fact]
    public async Task PeerResets_TheReadFailsWithConnectionReset()
    {
        var (near, far) = await PairAsync();
        using (near)
        {
            using var reader = new EpollSocketReader(near);
            var parked = reader.ReceiveAsync(new byte[64]).AsTask();
            far.LingerState = new LingerOption(true, 0);
            far.Dispose(); // RST

            var error = await Assert.ThrowsAsync<SocketException>(() => parked.WaitAsync(Bound));
            Assert.Equal(SocketError.ConnectionReset, error.SocketErrorCode);
        }
    }

    [Fact]
    public async Task DisposedWhileWaiting_TheReadReturnsEndOfStream_AndLaterReadsToo()
    {
        var (near, far) = await PairAsync();
        using (near)
        using (far)
        {
            var reader = new EpollSocketReader(near);
            var parked = reader.ReceiveAsync(new byte[64]).AsTask();
            await Task.Delay(50);
            Assert.False(parked.IsCompleted);

            reader.Dispose();

            Assert.Equal(0, await parked.WaitAsync(Bound));
            Assert.Equal(0, await reader.ReceiveAsync(new byte[64]));
        }
    }

    [Fact]
    public async Task ManyConnectionsPingPong_EveryRoundTripCompletes()
    {
        // Request/response with one message outstanding, as a Modbus client does: every read after
        // the first of a round finds the queue empty and must be woken by epoll.
        const int Connections = 64, Rounds = 200;
        var pairs = await Task.WhenAll(Enumerable.Range(0, Connections).Select(_ => PairAsync()));
        try
        {
            var readers = pairs.Select(p => new EpollSocketReader(p.Near)).ToArray();
            var echoes = pairs.Select((p, i) => Task.Run(async () =>
            {
                var buffer = new byte[16];
                for (int r = 0; r < Rounds; r++)
                {
                    int n = await readers[i].ReceiveAsync(buffer);
                    Assert.Equal(4, n);
                    await p.Near.SendAsync(buffer.AsMemory(0, n));
                }
            })).ToArray();
            var clients = pairs.Select(p => Task.Run(async () =>
            {
                var answer = new byte[4];
                for (int r = 0; r < Rounds; r++)
                {
                    await p.Far.SendAsync(BitConverter.GetBytes(r));
                    int got = 0;
                    while (got < 4)
                    {
                        got += await p.Far.ReceiveAsync(answer.AsMemory(got));
                    }
                    Assert.Equal(r, BitConverter.ToInt32(answer));
                }
            })).ToArray();

            await Task.WhenAll(clients.Concat(echoes)).WaitAsync(TimeSpan.FromSeconds(60));
            foreach (var reader in readers)
            {
                reader.Dispose();
            }
        }
        finally
        {
            foreach (var (near, far) in pairs)
            {
                near.Dispose();
                far.Dispose();
            }
        }
    }

    [Fact]
    public async Task ConnectWithoutTheRuntimeEngine_ThenReadsAndWrites()
    {
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptAsync();

        using var reader = await EpollSocketReader.ConnectAsync(socket, listener.LocalEndPoint!, EpollLoop.Next(), CancellationToken.None).WaitAsync(Bound);
        using var far = await accept;

        Assert.True(socket.Connected);
        await socket.SendAsync(new byte[] { 5, 6 });
        var two = new byte[2];
        Assert.Equal(2, await far.ReceiveAsync(two));
        await far.SendAsync(new byte[] { 7 });
        var one = new byte[8];
        Assert.Equal(1, await reader.ReceiveAsync(one).AsTask().WaitAsync(Bound));
        Assert.Equal(7, one[0]);
    }

    [Fact]
    public async Task Connect_NeverLeavesTheConnectionMarkedHungUp()
    {
        // A socket registered before connect(2) is reported at once as EPOLLOUT|EPOLLHUP (it is in TCP_CLOSE).
        // Whether the loop saw that report before the connect began was a race, and when it did, the live
        // connection was marked hung up for good: every later read tried recv(2) first and found nothing.
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(128);
        var hungUp = 0;
        for (int i = 0; i < 200; i++)
        {
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            var accept = listener.AcceptAsync();
            using var reader = await EpollSocketReader.ConnectAsync(socket, listener.LocalEndPoint!, EpollLoop.Next(), CancellationToken.None).WaitAsync(Bound);
            using var far = await accept.WaitAsync(Bound);
            await far.SendAsync(new byte[] { (byte)i });
            var one = new byte[8];
            Assert.Equal(1, await reader.ReceiveAsync(one).AsTask().WaitAsync(Bound));
            Assert.Equal((byte)i, one[0]);
            hungUp += reader.HungUp ? 1 : 0;
        }
        Assert.Equal(0, hungUp);
    }

    [Fact]
    public async Task ConnectRefused_FailsWithConnectionRefused()
    {
        int port;
        using (var probe = new Socket(SocketType.Stream, ProtocolType.Tcp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            port = ((IPEndPoint)probe.LocalEndPoint!).Port;
        }
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);

        var error = await Assert.ThrowsAsync<SocketException>(() =>
            EpollSocketReader.ConnectAsync(socket, new IPEndPoint(IPAddress.Loopback, port), EpollLoop.Next(), CancellationToken.None).WaitAsync(Bound));
        Assert.Equal(SocketError.ConnectionRefused, error.SocketErrorCode);
    }

    /// <summary>The Cpus_allowed_list of an epoll thread's /proc task directory; null for other threads and for threads that exited meanwhile.</summary>
    private static string? EpollThreadCpus(string task)
    {
        try
        {
            return File.ReadAllText(Path.Combine(task, "comm")).StartsWith("edgeshield-epol", StringComparison.Ordinal)
                ? File.ReadAllLines(Path.Combine(task, "status")).Single(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal)).Split(':')[1].Trim()
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // a thread pool thread that ended between the listing and the read
        }
    }

    [Fact]
    public async Task EpollThreads_EachPinnedToOneDistinctAllowedCpu()
    {
        var (near, far) = await PairAsync();
        using (near)
        using (far)
        {
            using var reader = new EpollSocketReader(near); // the loops exist from the first reader on
            var pinned = new List<string>();
            var clock = System.Diagnostics.Stopwatch.StartNew(); // bounded by time, generously, for a loaded CI machine
            while (clock.ElapsedMilliseconds < 20_000 && pinned.Count < Math.Min(Environment.ProcessorCount, 8))
            {
                pinned = Directory.GetDirectories("/proc/self/task")
                    .Select(EpollThreadCpus)
                    .OfType<string>()
                    .ToList();
                await Task.Delay(20);
            }

            Assert.Equal(Math.Min(Environment.ProcessorCount, 8), pinned.Count);
            Assert.All(pinned, cpus => Assert.Matches("^[0-9]+$", cpus)); // one CPU each, not a range
            Assert.Equal(pinned.Count, pinned.Distinct().Count());
        }
    }
}
