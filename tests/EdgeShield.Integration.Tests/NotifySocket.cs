using System.Net.Sockets;
using System.Text;

namespace EdgeShield.Integration.Tests;

/// <summary>A NOTIFY_SOCKET the test owns: the datagrams <c>edgeshield run</c> sends systemd (READY=1, WATCHDOG=1, STATUS=…).</summary>
internal sealed class NotifySocket : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);

    public NotifySocket() => _socket.Bind(new UnixDomainSocketEndPoint(Path));

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"es-it-notify-{Guid.NewGuid():N}.sock");

    public List<string> Messages { get; } = [];

    /// <summary>Collects datagrams until one contains <paramref name="text"/> or the timeout passes.</summary>
    public async Task<bool> WaitForAsync(string text, int timeoutMs = 30_000)
    {
        var buffer = new byte[4096];
        var deadline = Environment.TickCount64 + timeoutMs;
        while (Environment.TickCount64 < deadline)
        {
            using var cts = new CancellationTokenSource((int)Math.Max(1, deadline - Environment.TickCount64));
            try
            {
                int read = await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                var message = Encoding.UTF8.GetString(buffer, 0, read);
                Messages.Add(message);
                if (message.Contains(text, StringComparison.Ordinal))
                {
                    return true;
                }
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        return false;
    }

    public void Dispose()
    {
        _socket.Dispose();
        File.Delete(Path);
    }
}
