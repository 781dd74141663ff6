using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// Network namespaces (<c>ip netns</c>, iproute2) with names unique to this test run, and programs run
/// inside them with <c>ip netns exec</c>. Disposing kills what still runs in them and deletes them.
/// </summary>
internal sealed class NetnsLab : IAsyncDisposable
{
    private static readonly Lazy<string?> s_unavailable = new(Probe);
    private readonly List<string> _namespaces = [];

    /// <summary>A prefix unique to this lab: process id plus random, so parallel or leftover runs never collide.</summary>
    public string Prefix { get; } = string.Create(CultureInfo.InvariantCulture, $"es{Environment.ProcessId % 100_000:x}{Random.Shared.Next(0x10000):x4}");

    /// <summary>Null when namespaces can be created here; otherwise why not (the skip message).</summary>
    public static string? Unavailable => s_unavailable.Value;

    public static string ProbeScript => Path.Combine(AppContext.BaseDirectory, "netns_probe.py");

    public async Task<string> AddAsync(string role)
    {
        string name = $"{Prefix}-{role}";
        await RunCheckedAsync("ip", "netns", "add", name);
        _namespaces.Add(name);
        await RunCheckedAsync("ip", "-n", name, "link", "set", "lo", "up");
        return name;
    }

    /// <summary>A veth pair: <paramref name="ifA"/> in <paramref name="nsA"/> with <paramref name="cidrA"/>, its peer likewise; both up.</summary>
    public static async Task LinkAsync(string nsA, string ifA, string cidrA, string nsB, string ifB, string cidrB)
    {
        await RunCheckedAsync("ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB);
        await RunCheckedAsync("ip", "-n", nsA, "addr", "add", cidrA, "dev", ifA);
        await RunCheckedAsync("ip", "-n", nsB, "addr", "add", cidrB, "dev", ifB);
        await RunCheckedAsync("ip", "-n", nsA, "link", "set", ifA, "up");
        await RunCheckedAsync("ip", "-n", nsB, "link", "set", ifB, "up");
    }

    /// <summary>A further address on <paramref name="dev"/> (an IPv6 one without duplicate address detection, so it is usable at once).</summary>
    public static Task AddAddressAsync(string ns, string dev, string cidr) =>
        cidr.Contains(':', StringComparison.Ordinal)
            ? RunCheckedAsync("ip", "-n", ns, "addr", "add", cidr, "dev", dev, "nodad")
            : RunCheckedAsync("ip", "-n", ns, "addr", "add", cidr, "dev", dev);

    public static ProcessStartInfo Exec(string ns, string file, params string[] args)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])["netns", "exec", ns, file, .. args])
        {
            start.ArgumentList.Add(arg);
        }
        return start;
    }

    /// <summary>Runs <c>ip netns exec NS FILE ARGS</c> to completion; a non-zero exit fails the test with its output.</summary>
    public static async Task<string> ExecCheckedAsync(string ns, string file, params string[] args)
    {
        var result = await Processes.RunAsync(Exec(ns, file, args), 120_000);
        Assert.True(result.ExitCode == 0, $"ip netns exec {ns} {file} {string.Join(' ', args)} exited {result.ExitCode}:\n{result.Stdout}{result.Stderr}");
        return result.Stdout;
    }

    /// <summary>`edgeshield ARGS` (the built dll under dotnet) inside a namespace.</summary>
    public static ProcessStartInfo EdgeShield(string ns, params string[] args) => Exec(ns, "dotnet", [Processes.EdgeShieldDll, .. args]);

    /// <summary>`edgeshield-sim ARGS` inside a namespace.</summary>
    public static ProcessStartInfo Sim(string ns, params string[] args) => Exec(ns, "dotnet", [Processes.EdgeShieldSimDll, .. args]);

    /// <summary>TCP connect sweep from <paramref name="ns"/>: port lists of open, refused and timed-out.</summary>
    public static async Task<TcpSweep> TcpSweepAsync(string ns, string host, string ports, double timeoutSeconds = 3)
    {
        using var json = JsonDocument.Parse(await ExecCheckedAsync(ns, "/usr/bin/python3", ProbeScript, "tcp", host, ports, timeoutSeconds.ToString(CultureInfo.InvariantCulture)));
        var root = json.RootElement;
        return new TcpSweep(Ports(root, "open"), Ports(root, "refused"), Ports(root, "timeout"), root.GetProperty("error").GetRawText());
    }

    /// <summary>UDP probe from <paramref name="ns"/>: ports that answered, were refused (ICMP unreachable) or stayed silent.</summary>
    public static async Task<UdpSweep> UdpSweepAsync(string ns, string host, string ports, double timeoutSeconds = 3)
    {
        using var json = JsonDocument.Parse(await ExecCheckedAsync(ns, "/usr/bin/python3", ProbeScript, "udp", host, ports, timeoutSeconds.ToString(CultureInfo.InvariantCulture)));
        var root = json.RootElement;
        return new UdpSweep(Ports(root, "answered"), Ports(root, "refused"), Ports(root, "silent"));
    }

    /// <summary>Listeners on the given ports in <paramref name="ns"/>, so a port that is blocked is blocked by the rules, not by absence.</summary>
    public static async Task<Processes.Running> DecoysAsync(string ns, string tcpPorts, string udpPorts)
    {
        var decoys = new Processes.Running(Exec(ns, "/usr/bin/python3", ProbeScript, "decoy", tcpPorts, udpPorts));
        Assert.True(await decoys.WaitForStdoutAsync("decoys up", 30_000), "decoys did not start:\n" + decoys.Stderr);
        return decoys;
    }

    private static int[] Ports(JsonElement root, string name) => [.. root.GetProperty(name).EnumerateArray().Select(e => e.GetInt32())];

    public static async Task RunCheckedAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        var result = await Processes.RunAsync(start, 60_000);
        Assert.True(result.ExitCode == 0, $"{file} {string.Join(' ', args)} exited {result.ExitCode}:\n{result.Stdout}{result.Stderr}");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var ns in _namespaces)
        {
            // Whatever still runs in our namespaces was started by this lab: kill it by pid, then delete the namespace.
            var pids = await Processes.RunAsync(new ProcessStartInfo("ip", ["netns", "pids", ns]) { RedirectStandardOutput = true, RedirectStandardError = true });
            foreach (var line in pids.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                {
                    try
                    {
                        using var process = Process.GetProcessById(pid);
                        process.Kill();
                        process.WaitForExit(5000);
                    }
                    catch (ArgumentException)
                    {
                        // Already gone.
                    }
                    catch (InvalidOperationException)
                    {
                        // Already gone.
                    }
                }
            }
            await Processes.RunAsync(new ProcessStartInfo("ip", ["netns", "del", ns]) { RedirectStandardOutput = true, RedirectStandardError = true });
        }
    }

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "network namespaces need Linux";
        }
        if (!File.Exists("/usr/sbin/ip") && !File.Exists("/sbin/ip") && !File.Exists("/usr/bin/ip"))
        {
            return "ip (iproute2) is not installed";
        }
        string name = $"es-probe-{Environment.ProcessId}-{Random.Shared.Next():x}";
        try
        {
            using var add = Process.Start(new ProcessStartInfo("ip", ["netns", "add", name]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            string error = add.StandardError.ReadToEnd();
            add.WaitForExit();
            if (add.ExitCode != 0)
            {
                return $"cannot create a network namespace here (needs root / CAP_SYS_ADMIN): ip netns add: {error.Trim()}";
            }
            using var del = Process.Start(new ProcessStartInfo("ip", ["netns", "del", name]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            del.WaitForExit();
            return null;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return "cannot run ip: " + e.Message;
        }
    }
}

internal sealed record TcpSweep(int[] Open, int[] Refused, int[] TimedOut, string Errors)
{
    public override string ToString() => $"open [{string.Join(',', Open)}] refused {Refused.Length} timed out {TimedOut.Length} errors {Errors}";
}

internal sealed record UdpSweep(int[] Answered, int[] Refused, int[] Silent)
{
    public override string ToString() => $"answered [{string.Join(',', Answered)}] refused [{string.Join(',', Refused)}] silent {Silent.Length}";
}

/// <summary>A fact that runs only where network namespaces can be created (root or CAP_SYS_ADMIN); elsewhere it is skipped, saying why.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class NetnsFactAttribute : FactAttribute
{
    public NetnsFactAttribute()
    {
        if (NetnsLab.Unavailable is { } why)
        {
            Skip = why;
        }
    }
}
