using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace EdgeShield.Transport;

/// <summary>
/// One <c>send(2)</c> that never waits: as many bytes as the kernel takes now. A Modbus ADU (at most 260
/// bytes) almost always goes whole; the caller awaits <see cref="Socket.SendAsync(ReadOnlyMemory{byte}, SocketFlags, CancellationToken)"/>
/// for a remainder only when the peer's window is full. It skips the runtime's per-send machinery (event
/// args, handle reference counting, switching the descriptor to non-blocking), which was about 2 % of the
/// gateway's CPU at 64 busy connections (perf, bench/RESULTS.md §2).
/// </summary>
public static unsafe partial class NonBlockingSend
{
    private const int MSG_DONTWAIT = 0x40;
    private const int MSG_NOSIGNAL = 0x4000;
    private const int EINTR = 4;

    /// <summary>Sends from <paramref name="data"/> what fits now: the byte count, 0 when the send queue is full.</summary>
    /// <exception cref="SocketException">The connection failed (reset, broken pipe).</exception>
    /// <exception cref="ObjectDisposedException">The socket was closed.</exception>
    public static int Send(Socket socket, ReadOnlySpan<byte> data)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (data.IsEmpty)
        {
            return 0;
        }
        while (true)
        {
            nint n;
            fixed (byte* p = data)
            {
                n = send(socket.SafeHandle, p, data.Length, MSG_DONTWAIT | MSG_NOSIGNAL);
            }
            if (n >= 0)
            {
                return (int)n;
            }
            int errno = Marshal.GetLastPInvokeError();
            if (errno == EINTR)
            {
                continue;
            }
            if (errno == EpollLoop.EAGAIN)
            {
                return 0;
            }
            ObjectDisposedException.ThrowIf(errno == EpollLoop.EBADF, socket);
            throw EpollLoop.Error(errno);
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint send(SafeSocketHandle fd, byte* buf, nint len, int flags);
}
