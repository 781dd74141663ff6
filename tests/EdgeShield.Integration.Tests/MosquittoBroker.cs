using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace EdgeShield.Integration.Tests;

/// <summary>A real Mosquitto on a free loopback port, that a test can kill with SIGKILL and start again on the same port.</summary>
internal sealed class MosquittoBroker : IAsyncDisposable
{
    private readonly string _conf;
    private Process? _process;

    /// <param name="persistent">Keep sessions and queued messages in <paramref name="dir"/>, saved every second
    /// (a SIGKILL then loses at most the last second of broker state).</param>
    public MosquittoBroker(string dir, bool persistent = false)
    {
        Port = Processes.FreePort();
        _conf = Path.Combine(dir, $"mosquitto-{Port}.conf");
        // user root: as root Mosquitto would otherwise switch to the user mosquitto, who cannot write the test's directory.
        File.WriteAllText(_conf, $"listener {Port} 127.0.0.1\nallow_anonymous true\nlog_dest stderr\nuser root\nmax_queued_messages 0\n"
            + (persistent ? $"persistence true\npersistence_location {dir}/\npersistence_file mosquitto-{Port}.db\nautosave_interval 1\n" : ""));
    }

    public int Port { get; }

    public async Task StartAsync()
    {
        _process = Process.Start(new ProcessStartInfo("/usr/sbin/mosquitto", ["-c", _conf]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        _process.ErrorDataReceived += static (_, _) => { };
        _process.OutputDataReceived += static (_, _) => { };
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(30))
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50);
            }
        }
        throw new TimeoutException("mosquitto did not listen within 30 s");
    }

    /// <summary>SIGKILL: no clean shutdown, no saved state, connections cut.</summary>
    public async Task Kill9Async()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill();
            await p.WaitForExitAsync();
        }
        _process?.Dispose();
        _process = null;
    }

    public ValueTask DisposeAsync() => new(Kill9Async());
}

/// <summary>
/// <c>mosquitto_sub</c> as an independent consumer of one topic filter: lines "topic payload".
/// It reconnects by itself after a broker restart (and subscribes again).
/// </summary>
internal sealed class MosquittoSubscriber : IAsyncDisposable
{
    private readonly Processes.Running _process;

    /// <param name="clientId">With an id: a persistent session (-c), so messages published while it reconnects wait for it.</param>
    public MosquittoSubscriber(int port, string topic, string? clientId = null)
    {
        var start = new ProcessStartInfo("stdbuf", ["-oL", "/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-t", topic, "-q", "1", "-v"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (clientId is not null)
        {
            foreach (var arg in (string[])["-c", "-i", clientId])
            {
                start.ArgumentList.Add(arg);
            }
        }
        _process = new Processes.Running(start);
    }

    public string[] Lines => _process.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public ValueTask DisposeAsync() => _process.DisposeAsync();
}
