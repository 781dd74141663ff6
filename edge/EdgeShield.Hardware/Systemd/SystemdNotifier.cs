using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace EdgeShield.Hardware.Systemd;

/// <summary>
/// sd_notify(3) without libsystemd: one datagram per message to the Unix socket named by
/// <c>NOTIFY_SOCKET</c> (a path, or <c>@name</c> for the abstract namespace). Lives beside the
/// hardware code because it is the same kind of thing — the device platform the host composes —
/// and so it is unit-tested without a process.
/// </summary>
public sealed class SystemdNotifier : IDisposable
{
    private readonly Socket _socket;
    private readonly UnixDomainSocketEndPoint _endPoint;

    private SystemdNotifier(string address)
    {
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _endPoint = new UnixDomainSocketEndPoint(address.StartsWith('@') ? "\0" + address[1..] : address);
    }

    /// <summary>The notifier systemd asked for, or null when not started as <c>Type=notify</c>.</summary>
    public static SystemdNotifier? FromEnvironment()
    {
        var address = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        return string.IsNullOrEmpty(address) || address.Length < 2 || address[0] is not ('/' or '@') ? null : new SystemdNotifier(address);
    }

    /// <summary>
    /// <c>WATCHDOG_USEC</c> when it is meant for this process (<c>WATCHDOG_PID</c> absent or ours);
    /// null when systemd does not watch us.
    /// </summary>
    public static TimeSpan? WatchdogTimeout()
    {
        var pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
        if (!string.IsNullOrEmpty(pid) && pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
        {
            return null;
        }
        return ulong.TryParse(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), NumberStyles.None, CultureInfo.InvariantCulture, out var usec) && usec > 0
            ? TimeSpan.FromMicroseconds(usec)
            : null;
    }

    /// <summary>Sends newline-separated <c>KEY=VALUE</c> assignments; false when systemd could not be reached.</summary>
    public bool Notify(string state)
    {
        try
        {
            return _socket.SendTo(Encoding.UTF8.GetBytes(state), SocketFlags.None, _endPoint) > 0;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public void Dispose() => _socket.Dispose();
}
