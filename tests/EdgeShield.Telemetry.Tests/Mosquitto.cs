using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace EdgeShield.Telemetry.Tests;

/// <summary>A real Mosquitto broker (Debian's <c>mosquitto</c>) on a free loopback port, with persistence so it can be stopped and restarted.</summary>
internal sealed class Mosquitto : IAsyncDisposable
{
    private readonly string _dir;
    private Process? _process;

    public Mosquitto(string extra = "")
    {
        _dir = TestConfig.TempDir();
        Port = Ports.Free();
        File.WriteAllText(Path.Combine(_dir, "mosquitto.conf"), $"""
            listener {Port} 127.0.0.1
            allow_anonymous true
            persistence true
            persistence_location {_dir}/
            max_queued_messages 0
            max_inflight_messages 0
            log_dest stderr
            {extra}
            """);
    }

    public int Port { get; }

    public async Task StartAsync()
    {
        _process = Process.Start(new ProcessStartInfo("mosquitto", ["-c", Path.Combine(_dir, "mosquitto.conf")])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginErrorReadLine();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30)) // generous: a loaded CI machine may start it slowly
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(25);
            }
        }
        throw new InvalidOperationException("mosquitto did not start");
    }

    /// <summary>SIGTERM: Mosquitto saves its persistence database and exits.</summary>
    public async Task StopAsync()
    {
        if (_process is { HasExited: false } p)
        {
            Process.Start("kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await p.WaitForExitAsync(timeout.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill();
            await p.WaitForExitAsync();
        }
        _process?.Dispose();
    }
}

/// <summary><c>mosquitto_sub</c> as an independent consumer: a persistent QoS 1 session, lines "topic payload".</summary>
internal sealed class MosquittoSub : IAsyncDisposable
{
    private readonly Process _process;
    public ConcurrentQueue<(string Topic, string Payload)> Lines { get; }

    private MosquittoSub(Process process, ConcurrentQueue<(string, string)> lines)
    {
        _process = process;
        Lines = lines;
    }

    /// <param name="extra">More mosquitto_sub arguments (e.g. <c>--cafile</c>, <c>--cert</c>, <c>--key</c> for a TLS listener).</param>
    public static MosquittoSub Start(int port, string topic, string clientId, ConcurrentQueue<(string, string)>? into = null, params string[] extra)
    {
        var lines = into ?? new ConcurrentQueue<(string, string)>();
        // stdbuf: line-buffered stdout, so a line the consumer acknowledged is never lost in a pipe buffer when it stops.
        var info = new ProcessStartInfo("stdbuf", ["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-t", topic, "-q", "1", "-c", "-i", clientId, "-v", .. extra])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line && line.IndexOf(' ', StringComparison.Ordinal) is int space and > 0)
            {
                lines.Enqueue((line[..space], line[(space + 1)..]));
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new MosquittoSub(process, lines);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            Process.Start("kill", ["-INT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
            }
        }
        // Let the asynchronous stdout reader hand over the last lines.
        _process.WaitForExit();
        _process.Dispose();
    }
}
