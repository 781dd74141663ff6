using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace EdgeShield.Integration.Tests;

internal sealed record ProcessResult(int ExitCode, string Stdout, string Stderr);

/// <summary>Runs programs the way a user does: a separate process, its exit code and output.</summary>
internal static partial class Processes
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The edgeshield.dll built beside this test assembly's configuration (Debug or Release).</summary>
    public static string EdgeShieldDll
    {
        get
        {
            string configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name; // bin/<Configuration>/net10.0/
            string dll = Path.Combine(RepoRoot, "edge", "EdgeShield.Host", "bin", configuration, "net10.0", "edgeshield.dll");
            Assert.True(File.Exists(dll), $"{dll} is not built");
            return dll;
        }
    }

    /// <summary>The edgeshield-sim.dll built beside this test assembly's configuration.</summary>
    public static string EdgeShieldSimDll
    {
        get
        {
            string configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;
            string dll = Path.Combine(RepoRoot, "simulators", "edgeshield-sim", "bin", configuration, "net10.0", "edgeshield-sim.dll");
            Assert.True(File.Exists(dll), $"{dll} is not built");
            return dll;
        }
    }

    public static ProcessStartInfo EdgeShield(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(EdgeShieldDll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        return start;
    }

    public static ProcessStartInfo EdgeShieldSim(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(EdgeShieldSimDll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        return start;
    }

    public static ProcessStartInfo Tool(string path, params string[] args)
    {
        Assert.True(File.Exists(path), $"{path} is missing: install it (apt-get install mbpoll python3-pymodbus; .ci/run does)");
        var start = new ProcessStartInfo(path) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        return start;
    }

    public static async Task<ProcessResult> RunAsync(ProcessStartInfo start, int timeoutMs = 60_000)
    {
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeoutMs);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{start.FileName} {string.Join(' ', start.ArgumentList)} did not exit within {timeoutMs} ms");
        }
        return new ProcessResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>A running process whose output is collected line by line.</summary>
    public sealed class Running : IAsyncDisposable
    {
        private readonly StringBuilder _stdout = new();
        private readonly StringBuilder _stderr = new();

        public Running(ProcessStartInfo start)
        {
            Process = Process.Start(start)!;
            Process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (_stdout) { _stdout.AppendLine(e.Data); } } };
            Process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (_stderr) { _stderr.AppendLine(e.Data); } } };
            Process.BeginOutputReadLine();
            Process.BeginErrorReadLine();
        }

        public Process Process { get; }

        public string Stdout { get { lock (_stdout) { return _stdout.ToString(); } } }
        public string Stderr { get { lock (_stderr) { return _stderr.ToString(); } } }

        // The defaults bound waits for output that must come (they return as soon as it does, or the process ended):
        // generous, as a CI machine that builds and runs peers beside the tests may start a process slowly.
        public async Task<bool> WaitForStderrAsync(string text, int timeoutMs = 60_000)
        {
            var sw = Stopwatch.StartNew();
            while (sw.ElapsedMilliseconds < timeoutMs && !Process.HasExited)
            {
                if (Stderr.Contains(text, StringComparison.Ordinal))
                {
                    return true;
                }
                await Task.Delay(50);
            }
            return Stderr.Contains(text, StringComparison.Ordinal);
        }

        public async Task<bool> WaitForStdoutAsync(string text, int timeoutMs = 60_000)
        {
            var sw = Stopwatch.StartNew();
            while (sw.ElapsedMilliseconds < timeoutMs && !Process.HasExited)
            {
                if (Stdout.Contains(text, StringComparison.Ordinal))
                {
                    return true;
                }
                await Task.Delay(50);
            }
            return Stdout.Contains(text, StringComparison.Ordinal);
        }

        public void Signal(int signal) => Assert.Equal(0, Kill(Process.Id, signal));

        public async Task<int> WaitForExitAsync(int timeoutMs = 60_000)
        {
            using var cts = new CancellationTokenSource(timeoutMs);
            try
            {
                await Process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                // Say what the process last wrote: a hang is found from its last lines, not from "a task was canceled".
                throw new TimeoutException($"pid {Process.Id} did not exit within {timeoutMs} ms\n--- stdout (end)\n{Tail(Stdout)}\n--- stderr (end)\n{Tail(Stderr)}{await StacksAsync()}");
            }
            Process.WaitForExit(); // drain the asynchronous output readers
            return Process.ExitCode;
        }

        /// <summary>
        /// With <c>EDGESHIELD_TEST_STACKS</c> naming a dotnet-stack binary (<c>dotnet tool install -g dotnet-stack</c>),
        /// every managed thread's stack of a process that would not exit: where a stop hangs, not only that it did.
        /// </summary>
        private async Task<string> StacksAsync()
        {
            if (Environment.GetEnvironmentVariable("EDGESHIELD_TEST_STACKS") is not { Length: > 0 } tool || !File.Exists(tool))
            {
                return "";
            }
            try
            {
                var report = await Processes.RunAsync(Processes.Tool(tool, "report", "-p", Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)), 60_000);
                return "\n--- dotnet-stack\n" + report.Stdout + report.Stderr;
            }
            catch (Exception e) when (e is TimeoutException or System.ComponentModel.Win32Exception)
            {
                return "\n--- dotnet-stack failed: " + e.Message;
            }
        }

        private static string Tail(string text) => text.Length <= 4000 ? text : text[^4000..];

        public async ValueTask DisposeAsync()
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                await Process.WaitForExitAsync();
            }
            Process.Dispose();
        }
    }

    public const int SIGTERM = 15;
    public const int SIGHUP = 1;
    public const int SIGINT = 2;

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);

    public static int FreePort()
    {
        using var probe = new Socket(SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "EdgeShield.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("repository root (EdgeShield.slnx) not found");
    }
}
