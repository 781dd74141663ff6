using System.Net;
using System.Net.Sockets;

namespace EdgeShield.Integration.Tests;

/// <summary>A minimal Modbus TCP client over a real socket: one request, one ADU back.</summary>
internal sealed class RawClient(Socket socket) : IDisposable
{
    public static async Task<RawClient> ConnectAsync(int port)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        return new RawClient(socket);
    }

    public async Task<byte[]> RoundTripAsync(byte[] request, int timeoutMs = 15_000) // generous: an answer that must come on a loaded CI machine
    {
        await socket.SendAsync(request, SocketFlags.None);
        using var cts = new CancellationTokenSource(timeoutMs);
        var header = new byte[6];
        await ReadExactlyAsync(header, cts.Token);
        var adu = new byte[6 + ((header[4] << 8) | header[5])];
        header.CopyTo(adu, 0);
        await ReadExactlyAsync(adu.AsMemory(6), cts.Token);
        return adu;
    }

    private async Task ReadExactlyAsync(Memory<byte> buffer, CancellationToken ct)
    {
        while (!buffer.IsEmpty)
        {
            int read = await socket.ReceiveAsync(buffer, SocketFlags.None, ct);
            if (read == 0)
            {
                throw new IOException("connection closed");
            }
            buffer = buffer[read..];
        }
    }

    public void Dispose() => socket.Dispose();
}
