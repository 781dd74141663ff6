using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// Tells when <c>edgeshield run</c> has started every hosted service, the SIGHUP handler and the config file watcher
/// included: the process runs with NOTIFY_SOCKET set to a socket this owns, and the host says READY=1 once they are
/// all up. The 'started' audit event comes before the reload service starts, so a fixed pause after it was a guess
/// that a loaded CI machine can miss (a SIGHUP before the handler ends the process; a change before the watcher is
/// never seen).
/// </summary>
internal sealed class ReadySignal : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"es-it-ready-{Guid.NewGuid():N}.sock");

    public ReadySignal() => _socket.Bind(new UnixDomainSocketEndPoint(_path));

    /// <summary>The start info, run under this socket.</summary>
    public ProcessStartInfo Apply(ProcessStartInfo start)
    {
        start.Environment["NOTIFY_SOCKET"] = _path;
        return start;
    }

    /// <summary>True once READY=1 came (bounded, generously: a loaded machine may start slowly).</summary>
    public async Task<bool> WaitAsync(int timeoutMs = 60_000)
    {
        var buffer = new byte[4096];
        var deadline = Environment.TickCount64 + timeoutMs;
        while (Environment.TickCount64 < deadline)
        {
            using var cts = new CancellationTokenSource((int)Math.Max(1, deadline - Environment.TickCount64));
            try
            {
                int read = await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (Encoding.UTF8.GetString(buffer, 0, read).Contains("READY=1", StringComparison.Ordinal))
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
        File.Delete(_path);
    }
}
