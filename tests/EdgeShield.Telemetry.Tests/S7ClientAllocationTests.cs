using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using EdgeShield.Protocols.S7comm;
using EdgeShield.Transport;

namespace EdgeShield.Telemetry.Tests;

/// <summary>
/// What a steady-state S7 read costs in allocations: the whole read (job written, sent through the shared
/// <see cref="TcpUpstream"/> session, answer received, checked and copied, timeout armed and disarmed) against a
/// PLC that answers from fixed buffers, so that everything <see cref="GC.GetTotalAllocatedBytes"/> counts is the
/// client's and its session's. This assembly runs its tests one at a time (AssemblyInfo.cs).
/// </summary>
public class S7ClientAllocationTests
{
    /// <summary>An S7 PLC that answers CR, setup-communication and one-item read-var from fixed bytes, allocating nothing per exchange.</summary>
    private static async Task CannedPlcAsync(Socket listener, CancellationToken ct)
    {
        using var socket = await listener.AcceptAsync(ct);
        var received = new byte[4096];
        var reply = new byte[4096];
        int cc = CotpWriter.WriteConnectConfirm(reply, 1, 0x44, 0x0A, [0x01, 0x00], [0x03, 0x02]);
        byte[] connectConfirm = reply[..cc];
        // Ack_Data of setup-communication (PDU 240) and of a one-item read of 4 bytes: FF 04 0020 11223344.
        byte[] setup = Convert.FromHexString("0300001B02F080" + "320300000000000800000000" + "F0000001000100F0");
        byte[] read = Convert.FromHexString("0300001D02F080" + "320300000000000200080000" + "0401" + "FF04002011223344");
        int filled = 0;
        while (true)
        {
            int n = await socket.ReceiveAsync(received.AsMemory(filled), SocketFlags.None, ct);
            if (n == 0)
            {
                return;
            }
            filled += n;
            while (filled >= 4 && filled >= ((received[2] << 8) | received[3]))
            {
                int length = (received[2] << 8) | received[3];
                byte[] answer = received[5] == 0xE0 ? connectConfirm : received[17] == 0xF0 ? setup : read;
                answer.CopyTo(reply, 0);
                if (answer != connectConfirm)
                {
                    // The job's PDU reference.
                    reply[11] = received[11];
                    reply[12] = received[12];
                }
                await socket.SendAsync(reply.AsMemory(0, answer.Length), SocketFlags.None, ct);
                received.AsSpan(length, filled - length).CopyTo(received);
                filled -= length;
            }
        }
    }

    /// <summary>
    /// Optimised (as shipped: Release, AOT): nothing per read. A Debug build's compiler makes every async state machine a
    /// class, allocated per call (ReadAsync, its job, its exchange, the session's send): there the bound is theirs.
    /// </summary>
    [Fact]
    public async Task S7Read_SteadyState_AllocatesNothingOptimized_OnlyTheDebugStateMachinesInDebug()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var plc = CannedPlcAsync(listener, cts.Token);
        var upstream = new TcpUpstream("127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port, TimeSpan.FromSeconds(5));
        var client = new ReadOnlyS7Client(upstream, "telemetry", 0x0100, 0x0302, TimeSpan.FromSeconds(10));
        S7ReadItem[] items = [new(S7Area.DataBlocks, 1, 0, 0, 4)];
        var data = new byte[4];
        var results = new S7ItemResult[1];
        for (int i = 0; i < 500; i++)
        {
            await client.ReadAsync(items, data, results, cts.Token);
        }
        Assert.Equal(new S7ItemResult(ReadStatus.Ok, 0, 0, 4), results[0]);
        const int Reads = 5000;
        long before = GC.GetTotalAllocatedBytes(precise: true);
        for (int i = 0; i < Reads; i++)
        {
            await client.ReadAsync(items, data, results, cts.Token);
        }
        long perRead = (GC.GetTotalAllocatedBytes(precise: true) - before) / Reads;
        Assert.Equal(new S7ItemResult(ReadStatus.Ok, 0, 0, 4), results[0]);
        Assert.Equal([0x11, 0x22, 0x33, 0x44], data);
        Assert.Equal(240, client.PduSize);
        await client.DisposeAsync();
        await cts.CancelAsync();
        try
        {
            await plc;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException)
        {
            // Stopped.
        }
        bool optimized = typeof(ReadOnlyS7Client).Assembly.GetCustomAttribute<DebuggableAttribute>()?.IsJITOptimizerDisabled != true;
        if (optimized)
        {
            // Whole bytes per read over 5000 reads: a stray runtime allocation (a timer, the thread pool) rounds away.
            Assert.Equal(0, perRead);
        }
        else
        {
            // Measured: about 850 B (four class state machines). A TaskCompletionSource, a Task and a WaitAsync timer per
            // exchange, as before the reusable awaitable, would add some 500 B more.
            Assert.InRange(perRead, 0, 1100);
        }
    }
}
