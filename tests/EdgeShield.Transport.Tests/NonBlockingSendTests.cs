using System.Net;
using System.Net.Sockets;
using EdgeShield.Transport;

namespace EdgeShield.Transport.Tests;

/// <summary>The gateway's sends: one <c>send(2)</c> that never waits, whose failures look like the runtime's.</summary>
public sealed class NonBlockingSendTests
{
    private static async Task<(Socket Near, Socket Far)> PairAsync()
    {
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var far = new Socket(SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptAsync();
        await far.ConnectAsync(listener.LocalEndPoint!);
        return (await accept, far);
    }

    [Fact]
    public async Task AnAdu_GoesWhole_AndArrivesIntact()
    {
        var (near, far) = await PairAsync();
        using var _ = near;
        using var __ = far;
        byte[] adu = [0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 10];

        Assert.Equal(adu.Length, NonBlockingSend.Send(near, adu));

        var received = new byte[64];
        int n = await far.ReceiveAsync(received);
        Assert.Equal(adu, received[..n]);
    }

    [Fact]
    public async Task PeerNotReading_FillsTheWindow_ThenReturnsZero_NeverWaits()
    {
        var (near, far) = await PairAsync();
        using var _ = near;
        using var __ = far;
        near.SendBufferSize = 4096;
        far.ReceiveBufferSize = 4096;
        var chunk = new byte[1024];
        long total = 0;
        int zeroAt = -1;
        for (int i = 0; i < 100_000 && zeroAt < 0; i++)
        {
            int sent = NonBlockingSend.Send(near, chunk);
            Assert.InRange(sent, 0, chunk.Length);
            total += sent;
            if (sent == 0)
            {
                zeroAt = i;
            }
        }
        Assert.True(zeroAt > 0, "the send queue never filled");
        // What was taken all arrives once the peer reads.
        long read = 0;
        var buffer = new byte[65536];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (read < total)
        {
            read += await far.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
        }
        Assert.Equal(total, read);
    }

    [Fact]
    public async Task PeerReset_ThrowsSocketException()
    {
        var (near, far) = await PairAsync();
        using var _ = near;
        far.LingerState = new LingerOption(true, 0); // close with RST
        far.Dispose();
        await Task.Delay(100);

        var e = Assert.Throws<SocketException>(() =>
        {
            for (int i = 0; i < 100; i++)
            {
                NonBlockingSend.Send(near, new byte[16]);
                Thread.Sleep(10);
            }
        });
        Assert.Contains(e.SocketErrorCode, new[] { SocketError.ConnectionReset, SocketError.Shutdown });
    }

    [Fact]
    public async Task ClosedSocket_ThrowsObjectDisposed()
    {
        var (near, far) = await PairAsync();
        using var _ = far;
        near.Dispose();

        Assert.Throws<ObjectDisposedException>(() => NonBlockingSend.Send(near, new byte[16]));
    }
}
