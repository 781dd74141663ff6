using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace EdgeShield.Simulators.Tests;

/// <summary>A raw loopback client: sends bytes, reads whole ADUs by the MBAP length, notices a close.</summary>
internal sealed class TestClient : IDisposable
{
    private readonly Socket _socket;

    private TestClient(Socket socket) => _socket = socket;

    public static async Task<TestClient> ConnectAsync(IPEndPoint endPoint)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endPoint);
        return new TestClient(socket);
    }

    public Task SendAsync(params byte[] bytes) => _socket.SendAsync(bytes, SocketFlags.None);

    /// <summary>Sends a request PDU with an MBAP header.</summary>
    public Task SendPduAsync(ushort tid, byte unit, params byte[] pdu) => SendAsync(Adu(tid, unit, pdu));

    public static byte[] Adu(ushort tid, byte unit, params byte[] pdu)
    {
        var adu = new byte[7 + pdu.Length];
        BinaryPrimitives.WriteUInt16BigEndian(adu, tid);
        BinaryPrimitives.WriteUInt16BigEndian(adu.AsSpan(4), (ushort)(pdu.Length + 1));
        adu[6] = unit;
        pdu.CopyTo(adu, 7);
        return adu;
    }

    /// <summary>
    /// One whole ADU, or null when the server closed the connection first (or nothing came within the timeout: by
    /// default a generous bound, for answers that must come on a loaded CI machine).
    /// </summary>
    public async Task<byte[]?> ReadAduAsync(int timeoutMs = 15_000)
    {
        var header = new byte[6];
        if (!await ReadExactAsync(header, timeoutMs))
        {
            return null;
        }
        int length = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(4));
        var adu = new byte[6 + length];
        header.CopyTo(adu, 0);
        return await ReadExactAsync(adu.AsMemory(6), timeoutMs) ? adu : null;
    }

    /// <summary>The response PDU to a request, asserting the transaction id and unit.</summary>
    public async Task<byte[]> RequestAsync(byte unit, params byte[] pdu)
    {
        ushort tid = (ushort)Random.Shared.Next(1, 65535);
        await SendPduAsync(tid, unit, pdu);
        var adu = await ReadAduAsync() ?? throw new InvalidOperationException("connection closed");
        Assert.Equal(tid, BinaryPrimitives.ReadUInt16BigEndian(adu));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(adu.AsSpan(2)));
        Assert.Equal(unit, adu[6]);
        return adu[7..];
    }

    /// <summary>True when the server closed (EOF or reset) within the timeout (by default generous, for a loaded CI machine).</summary>
    public async Task<bool> IsClosedByPeerAsync(int timeoutMs = 15_000)
    {
        var buffer = new byte[512];
        using var cts = new CancellationTokenSource(timeoutMs);
        try
        {
            while (true)
            {
                int n = await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0)
                {
                    return true;
                }
            }
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private async Task<bool> ReadExactAsync(Memory<byte> buffer, int timeoutMs)
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        while (!buffer.IsEmpty)
        {
            int n;
            try
            {
                n = await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                return false;
            }
            if (n == 0)
            {
                return false;
            }
            buffer = buffer[n..];
        }
        return true;
    }

    public void Dispose() => _socket.Dispose();
}
