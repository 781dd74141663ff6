using System.Diagnostics;
using System.Globalization;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// One line of the IEC 104 peers' output (tests/peers/iec104/*.c): a word, then key=value fields
/// (a value in double quotes may hold spaces), e.g. <c>asdu conn=1 type=45 cot=6 ca=1 ioa=2000 se=1 value=1</c>.
/// </summary>
internal sealed record Iec104Line(string Kind, IReadOnlyDictionary<string, string> Fields, string Text)
{
    public string this[string key] => Fields.TryGetValue(key, out var v) ? v : throw new KeyNotFoundException($"{key} not in: {Text}");

    public int Int(string key) => int.Parse(this[key], CultureInfo.InvariantCulture);

    public bool Has(string key) => Fields.ContainsKey(key);

    public static Iec104Line Parse(string line)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        int i = line.IndexOf(' ', StringComparison.Ordinal);
        string kind = i < 0 ? line : line[..i];
        // The client's summary line has no leading word: "sent=N confirmed=N …".
        if (kind.Contains('=', StringComparison.Ordinal))
        {
            kind = "summary";
            i = -1;
        }
        int pos = i < 0 ? 0 : i + 1;
        while (pos < line.Length)
        {
            while (pos < line.Length && line[pos] == ' ')
            {
                pos++;
            }
            int eq = line.IndexOf('=', pos);
            if (eq < 0)
            {
                break;
            }
            string key = line[pos..eq];
            string value;
            if (eq + 1 < line.Length && line[eq + 1] == '"')
            {
                int end = line.IndexOf('"', eq + 2);
                end = end < 0 ? line.Length : end;
                value = line[(eq + 2)..end];
                pos = end + 1;
            }
            else
            {
                int end = line.IndexOf(' ', eq + 1);
                end = end < 0 ? line.Length : end;
                value = line[(eq + 1)..end];
                pos = end;
            }
            fields[key] = value;
        }
        return new Iec104Line(kind, fields, line);
    }

    public override string ToString() => Text;
}

/// <summary>What one run of iec104-client printed.</summary>
internal sealed record Iec104ClientResult(int ExitCode, IReadOnlyList<Iec104Line> Lines, string Stderr)
{
    public IEnumerable<Iec104Line> OfKind(string kind) => Lines.Where(l => l.Kind == kind);

    /// <summary>The last line: <c>sent=N confirmed=N positive=N negative=N timeouts=N reconnects=N …</c>.</summary>
    public Iec104Line Summary => Lines.LastOrDefault(l => l.Kind == "summary") ?? throw new InvalidOperationException("no summary line:\n" + this);

    public override string ToString() => string.Join('\n', Lines) + (Stderr.Length > 0 ? "\nstderr: " + Stderr : "");
}

/// <summary>
/// lib60870 (tests/peers/lib60870, GPL v3, a test peer only) as an IEC 60870-5-104 station and client
/// for tests: our iec104-station and iec104-client, built by tests/peers/build-lib60870.sh (once per
/// test process, cached by its stamps). The station's log (one line per received ASDU) is the judge
/// of what reached the station.
/// </summary>
/// <remarks>
/// Ordering: lib60870 runs each connection in its own thread, which logs its ASDUs in order and then
/// its <c>close</c> line: wait for the close of every connection (<see cref="WaitForClosesAsync"/>)
/// before asserting that something did not reach the station.
/// </remarks>
internal sealed class Iec104Peer : IAsyncDisposable
{
    private const int BuildTimeoutMs = 5 * 60_000; // the library builds in ~5 s on 2 idle cores
    private const int MaxLines = 200_000;

    private static readonly SemaphoreSlim BuildLock = new(1, 1);
    private static string? _built;

    private readonly Process _process;
    private readonly List<Iec104Line> _lines = [];
    private readonly List<string> _stderr = [];
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _dropped;

    private Iec104Peer(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    /// <summary>Where build-lib60870.sh puts the peer (bin/, install/).</summary>
    public static string Dir { get; } = Path.Combine(Processes.RepoRoot, "artifacts", "peers", "lib60870");

    public static string StationPath => Path.Combine(Dir, "bin", "iec104-station");

    public static string ClientPath => Path.Combine(Dir, "bin", "iec104-client");

    public int Port { get; }

    public string Endpoint => $"127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>A snapshot of the station's log so far.</summary>
    public IReadOnlyList<Iec104Line> Log
    {
        get
        {
            lock (_lines)
            {
                Assert.True(_dropped == 0, $"the station logged more than {MaxLines} lines; {_dropped} were not kept");
                return [.. _lines];
            }
        }
    }

    public IReadOnlyList<Iec104Line> Asdus => Log.Where(l => l.Kind == "asdu").ToArray();

    public string Stderr { get { lock (_stderr) { return string.Join('\n', _stderr); } } }

    /// <summary>Runs tests/peers/build-lib60870.sh once in this process (bounded); returns the peer's directory.</summary>
    public static async Task<string> BuildAsync()
    {
        await BuildLock.WaitAsync();
        try
        {
            if (_built is null)
            {
                string script = Path.Combine(Processes.RepoRoot, "tests", "peers", "build-lib60870.sh");
                var result = await Processes.RunAsync(Processes.Tool("/bin/bash", script, Dir), BuildTimeoutMs);
                Assert.True(result.ExitCode == 0, "build-lib60870.sh failed:\n" + result.Stdout + result.Stderr);
                _built = Dir;
            }
            return _built;
        }
        finally
        {
            BuildLock.Release();
        }
    }

    /// <summary>Builds if needed, starts iec104-station on a free loopback port (more arguments: e.g. --redundancy-groups) and waits for <c>ready</c>.</summary>
    public static async Task<Iec104Peer> StartStationAsync(params string[] stationArgs)
    {
        await BuildAsync();
        for (int attempt = 1; ; attempt++)
        {
            int port = Processes.FreePort();
            var start = new ProcessStartInfo(StationPath) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            start.ArgumentList.Add("--listen");
            start.ArgumentList.Add($"127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}");
            foreach (string arg in stationArgs)
            {
                start.ArgumentList.Add(arg);
            }
            var peer = new Iec104Peer(Process.Start(start)!, port);
            peer.Attach();
            await Task.WhenAny(peer._ready.Task, Task.Delay(30_000), peer._process.WaitForExitAsync()); // generous: a loaded CI machine
            if (peer._ready.Task.IsCompleted)
            {
                return peer;
            }
            string why = peer.Stderr;
            await peer.DisposeAsync();
            if (attempt == 3)
            {
                Assert.Fail($"iec104-station did not print ready:\n{why}");
            }
        }
    }

    /// <summary>Runs iec104-client against this station, direct.</summary>
    public Task<Iec104ClientResult> RunClientAsync(params string[] args) => RunClientAsync(Endpoint, args);

    /// <summary>Runs iec104-client once against HOST:PORT (a station or a gateway), bounded.</summary>
    public static async Task<Iec104ClientResult> RunClientAsync(string endpoint, string[] args, int timeoutMs = 120_000)
    {
        await BuildAsync();
        var start = Processes.Tool(ClientPath, ["--connect", endpoint, .. args]);
        var result = await Processes.RunAsync(start, timeoutMs);
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Iec104Line.Parse).ToArray();
        return new Iec104ClientResult(result.ExitCode, lines, result.Stderr);
    }

    /// <summary>Waits (bounded) for a log line that matches; null when none came.</summary>
    public async Task<Iec104Line?> WaitForLineAsync(Func<Iec104Line, bool> match, int timeoutMs = 10_000)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            lock (_lines)
            {
                foreach (var l in _lines)
                {
                    if (match(l))
                    {
                        return l;
                    }
                }
            }
            if (sw.ElapsedMilliseconds > timeoutMs || _process.HasExited)
            {
                return null;
            }
            await Task.Delay(20);
        }
    }

    /// <summary>Waits (bounded) until every connection the station logged has logged its close.</summary>
    public async Task WaitForClosesAsync(int timeoutMs = 10_000)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            int opened, closed;
            lock (_lines)
            {
                opened = _lines.Count(l => l.Kind == "connect");
                closed = _lines.Count(l => l.Kind == "close");
            }
            if (opened == closed)
            {
                return;
            }
            Assert.True(sw.ElapsedMilliseconds < timeoutMs && !_process.HasExited,
                $"iec104-station logged {opened} connections but {closed} closes within {timeoutMs} ms:\n{string.Join('\n', Log.TakeLast(50))}");
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    private void Attach()
    {
        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (_stderr) { _stderr.Add(e.Data); } } };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    private void OnLine(string? line)
    {
        if (string.IsNullOrEmpty(line))
        {
            return;
        }
        var parsed = Iec104Line.Parse(line);
        lock (_lines)
        {
            if (_lines.Count < MaxLines)
            {
                _lines.Add(parsed);
            }
            else
            {
                _dropped++;
            }
        }
        if (parsed.Kind == "ready")
        {
            _ready.TrySetResult();
        }
    }
}
