using System.Net.Sockets;
using System.Text;

namespace EdgeShield.Hardware.Tests;

/// <summary>A NOTIFY_SOCKET the test owns: a bound Unix datagram socket, read message by message.</summary>
internal sealed class NotifySocket : IDisposable
{
    private readonly Socket _socket;

    public NotifySocket()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"es-notify-{Guid.NewGuid():N}.sock");
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _socket.Bind(new UnixDomainSocketEndPoint(Path));
    }

    public string Path { get; }

    /// <summary>The next datagram, or null when none came within <paramref name="timeoutMs"/> (by default generous, for one that must come).</summary>
    public async Task<string?> ReceiveAsync(int timeoutMs = 15_000)
    {
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(timeoutMs);
        try
        {
            int read = await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            return Encoding.UTF8.GetString(buffer, 0, read);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Every datagram that arrives within <paramref name="windowMs"/>.</summary>
    public async Task<List<string>> ReceiveForAsync(int windowMs)
    {
        var messages = new List<string>();
        var deadline = Environment.TickCount64 + windowMs;
        while (Environment.TickCount64 < deadline)
        {
            var message = await ReceiveAsync((int)Math.Max(1, deadline - Environment.TickCount64));
            if (message is not null)
            {
                messages.Add(message);
            }
        }
        return messages;
    }

    public void Dispose()
    {
        _socket.Dispose();
        File.Delete(Path);
    }
}
