using System.Diagnostics;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// Tells when <c>edgeshield run</c> has started every hosted service, the SIGHUP handler and the config file watcher
/// included: the process runs with NOTIFY_SOCKET set to a socket this owns, and the host says READY=1 once they are
/// all up. The 'started' audit event comes before the reload service starts, so a fixed pause after it was a guess
/// that a loaded CI machine can miss (a SIGHUP before the reload service's handler is only remembered until the
/// start ends; a change before the watcher is never seen).
/// </summary>
internal sealed class ReadySignal : IDisposable
{
    private readonly NotifySocket _socket = new();

    /// <summary>The start info, run under this socket.</summary>
    public ProcessStartInfo Apply(ProcessStartInfo start)
    {
        start.Environment["NOTIFY_SOCKET"] = _socket.Path;
        return start;
    }

    /// <summary>True once READY=1 came (bounded, generously: a loaded machine may start slowly).</summary>
    public Task<bool> WaitAsync(int timeoutMs = 60_000) => _socket.WaitForAsync("READY=1", timeoutMs);

    public void Dispose() => _socket.Dispose();
}
