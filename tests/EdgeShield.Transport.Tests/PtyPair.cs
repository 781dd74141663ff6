using System.Diagnostics;

namespace EdgeShield.Transport.Tests;

/// <summary>
/// Two connected pseudo-terminals made by socat in a temp directory of their own:
/// <see cref="Master"/> for the bus, <see cref="Device"/> for the simulated PLC. Killed on dispose.
/// </summary>
public sealed class PtyPair : IDisposable
{
    private Process? _socat;

    public PtyPair()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("es-pty-").FullName;
        Master = Path.Combine(Directory, "master");
        Device = Path.Combine(Directory, "device");
        Start();
    }

    public string Directory { get; }
    public string Master { get; }
    public string Device { get; }

    /// <summary>Starts socat and waits (at most 5 s) for both links.</summary>
    public void Start()
    {
        var info = new ProcessStartInfo("socat")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { $"pty,raw,echo=0,link={Master}", $"pty,raw,echo=0,link={Device}" })
        {
            info.ArgumentList.Add(arg);
        }
        _socat = Process.Start(info) ?? throw new InvalidOperationException("socat did not start");
        _socat.ErrorDataReceived += static (_, _) => { };
        _socat.BeginErrorReadLine();
        _socat.BeginOutputReadLine();
        for (int i = 0; i < 500; i++)
        {
            if (File.Exists(Master) && File.Exists(Device))
            {
                return;
            }
            Thread.Sleep(10);
        }
        throw new TimeoutException("socat made no pty links within 5 s");
    }

    /// <summary>Kills socat: both ends hang up, as an unplugged USB adapter would.</summary>
    public void Stop()
    {
        if (_socat is { } socat)
        {
            try
            {
                socat.Kill();
                socat.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
            }
            socat.Dispose();
            _socat = null;
        }
        // Killed with SIGKILL, socat leaves its links behind, pointing at ptys that no longer exist.
        File.Delete(Master);
        File.Delete(Device);
    }

    public void Dispose()
    {
        Stop();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
