using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Gateway;
using EdgeShield.Policy;
using EdgeShield.Simulators;

namespace EdgeShield.Benchmarks;

/// <summary>
/// Steady-state allocation per proxied request: a PLC simulator, the gateway and N clients in one
/// process. The clients use blocking socket calls on their own threads with fixed buffers, so they
/// allocate nothing; whatever <see cref="GC.GetTotalAllocatedBytes"/> counts between the two
/// barriers is the gateway's (and the simulator's, which is itself allocation-free) cost.
/// </summary>
internal static class AllocationProbe
{
    public static async Task<int> RunAsync(string[] args)
    {
        int conns = 8, requests = 20_000, warmup = 5_000;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            int value = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--conns": conns = Math.Clamp(value, 1, 256); break;
                case "--requests": requests = Math.Clamp(value, 1, 10_000_000); break;
                case "--warmup": warmup = Math.Clamp(value, 0, 10_000_000); break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }

        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions(), CancellationToken.None);
        var loaded = ConfigLoader.LoadText(Frames.Config("127.0.0.1:0", plc.Port), "alloc.yaml");
        if (loaded.HasErrors || loaded.Config is null)
        {
            Console.Error.WriteLine(string.Join('\n', loaded.Diagnostics));
            return 2;
        }
        await using var audit = new AuditLog(Stream.Null);
        await using var gateway = await EdgeGateway.StartAsync(loaded.Config, audit);
        var target = gateway.Listeners[0].LocalEndPoint;

        using var ready = new Barrier(conns + 1);
        var clients = new Thread[conns];
        var failures = 0;
        for (int c = 0; c < conns; c++)
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            socket.Connect(target);
            clients[c] = new Thread(() =>
            {
                try
                {
                    Client(socket, warmup, requests, ready);
                }
                catch (Exception e) when (e is SocketException or InvalidOperationException)
                {
                    Console.Error.WriteLine(e.Message);
                    Interlocked.Increment(ref failures);
                    ready.RemoveParticipant();
                }
                finally
                {
                    socket.Dispose();
                }
            }) { IsBackground = true };
            clients[c].Start();
        }

        ready.SignalAndWait(); // every client has warmed up
        GC.Collect();
        long before = GC.GetTotalAllocatedBytes(precise: true);
        long allowedBefore = gateway.Counters.Allowed;
        ready.SignalAndWait(); // measured run starts
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        ready.SignalAndWait(); // measured run done
        long after = GC.GetTotalAllocatedBytes(precise: true);
        long proxied = gateway.Counters.Allowed - allowedBefore;
        foreach (var t in clients)
        {
            t.Join(TimeSpan.FromSeconds(30));
        }
        var busy = System.Diagnostics.Stopwatch.GetElapsedTime(start);
        long total = (long)conns * requests;

        // The same span of time with the connections open and no traffic: what the process
        // allocates on timers alone (audit writer's 1 s tick, sweeper, runtime), independent of requests.
        long idleBefore = GC.GetTotalAllocatedBytes(precise: true);
        Thread.Sleep(busy);
        long idle = GC.GetTotalAllocatedBytes(precise: true) - idleBefore;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"connections {conns} requests {total} proxied {proxied} in {busy.TotalSeconds:F1} s: allocated {after - before} B = {(double)(after - before) / Math.Max(1, total):F3} B/request; idle for the same time: {idle} B; difference per request {(double)(after - before - idle) / Math.Max(1, total):F3} B (failures {failures})"));
        return failures == 0 && proxied == total ? 0 : 1;
    }

    /// <summary>Alternates an FC 3 read of 10 and an FC 16 write of 10, one outstanding; no allocation.</summary>
    private static void Client(Socket socket, int warmup, int requests, Barrier ready)
    {
        byte[] read = Frames.ReadHolding();
        byte[] write = Frames.WriteMultiple();
        byte[] rx = new byte[512];
        ushort tid = 0;
        for (int i = 0; i < warmup; i++)
        {
            RoundTrip(socket, (i & 1) == 0 ? read : write, rx, ++tid);
        }
        ready.SignalAndWait();
        ready.SignalAndWait();
        for (int i = 0; i < requests; i++)
        {
            RoundTrip(socket, (i & 1) == 0 ? read : write, rx, ++tid);
        }
        ready.SignalAndWait();
    }

    private static void RoundTrip(Socket socket, byte[] request, byte[] rx, ushort tid)
    {
        BinaryPrimitives.WriteUInt16BigEndian(request, tid);
        int sent = 0;
        while (sent < request.Length)
        {
            sent += socket.Send(request, sent, request.Length - sent, SocketFlags.None);
        }
        int have = 0;
        int need = 6;
        while (have < need)
        {
            int n = socket.Receive(rx, have, rx.Length - have, SocketFlags.None);
            if (n == 0)
            {
                throw new InvalidOperationException("gateway closed the connection");
            }
            have += n;
            if (have >= 6)
            {
                need = 6 + BinaryPrimitives.ReadUInt16BigEndian(rx.AsSpan(4));
            }
        }
        if (BinaryPrimitives.ReadUInt16BigEndian(rx) != tid || (rx[7] & 0x80) != 0)
        {
            throw new InvalidOperationException("unexpected response");
        }
    }
}
