using System.Net.Sockets;
using System.Text;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// A NOTIFY_SOCKET the test owns: the datagrams <c>edgeshield run</c> sends systemd (READY=1, WATCHDOG=1, STATUS=…).
/// Read all the time, as systemd reads it: a unix datagram socket queues only <c>net.unix.max_dgram_qlen</c>
/// (10) datagrams, and a sender finding the queue full blocks, so a socket read only up to READY=1 stalled
/// the gateway's STOPPING=1 after a dozen reloads and SIGTERM never finished.
/// </summary>
internal sealed class NotifySocket : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly List<string> _messages = [];
    private readonly Task _receiving;
    private int _cursor;

    public NotifySocket()
    {
        _socket.Bind(new UnixDomainSocketEndPoint(Path));
        _receiving = Task.Run(ReceiveLoopAsync);
    }

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"es-it-notify-{Guid.NewGuid():N}.sock");

    /// <summary>Every datagram so far, in the order received.</summary>
    public List<string> Messages
    {
        get
        {
            lock (_messages)
            {
                return [.. _messages];
            }
        }
    }

    /// <summary>The datagram the last successful <see cref="WaitForAsync"/> found.</summary>
    public string? LastMatch { get; private set; }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[4096];
        while (true)
        {
            int read;
            try
            {
                read = await _socket.ReceiveAsync(buffer, SocketFlags.None);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }
            lock (_messages)
            {
                _messages.Add(Encoding.UTF8.GetString(buffer, 0, read));
            }
        }
    }

    /// <summary>
    /// Waits until a datagram after the one the previous call found contains <paramref name="text"/>, or the timeout
    /// passes; each call goes on from where the last one stopped, so two calls for WATCHDOG=1 need two pings.
    /// </summary>
    public async Task<bool> WaitForAsync(string text, int timeoutMs = 30_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (true)
        {
            lock (_messages)
            {
                for (; _cursor < _messages.Count; _cursor++)
                {
                    if (_messages[_cursor].Contains(text, StringComparison.Ordinal))
                    {
                        LastMatch = _messages[_cursor++];
                        return true;
                    }
                }
            }
            if (Environment.TickCount64 >= deadline)
            {
                return false;
            }
            await Task.Delay(20);
        }
    }

    public void Dispose()
    {
        _socket.Dispose();
        _receiving.Wait(TimeSpan.FromSeconds(5));
        File.Delete(Path);
    }
}
