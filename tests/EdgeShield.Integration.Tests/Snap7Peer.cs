using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace EdgeShield.Integration.Tests;

/// <summary>One event snap7's server logged (tests/peers/snap7/server.js writes one JSON line per event).</summary>
/// <remarks>
/// For <c>evcDataRead</c>/<c>evcDataWrite</c>: Param1 is the area (0x81 I, 0x82 Q, 0x83 M, 0x84 DB),
/// Param2 the DB number, Param3 the start byte, Param4 the size in bytes. The other codes are listed
/// in tests/peers/snap7/README.md.
/// </remarks>
internal sealed record Snap7Event(long Code, string Name, int RetCode, int Param1, int Param2, int Param3, int Param4, string Text, string Line)
{
    public const long ClientAdded = 0x00000008, ClientDisconnected = 0x00000080, PduIncoming = 0x00010000, DataRead = 0x00020000,
        DataWrite = 0x00040000, NegotiatePdu = 0x00080000, ReadSzl = 0x00100000, Clock = 0x00200000,
        Upload = 0x00400000, Download = 0x00800000, Directory = 0x01000000, Security = 0x02000000,
        Control = 0x04000000;

    /// <summary>snap7's S7 area codes as its events carry them.</summary>
    public const int AreaI = 0x81, AreaQ = 0x82, AreaM = 0x83, AreaDb = 0x84;

    /// <summary>
    /// An S7 job or userdata request reached the server (evcPDUincoming included: snap7 logs under it what
    /// it could not handle); connects, the PDU negotiation of a connect and disconnects are not jobs.
    /// snap7 logs a block download under <see cref="Upload"/> (with EvtRetCode 15), not <see cref="Download"/>.
    /// </summary>
    public bool IsJob => Code >= PduIncoming && Code != NegotiatePdu;

    public override string ToString() => Line;
}

/// <summary>What tests/peers/snap7/client.js printed for one operation.</summary>
internal sealed record Snap7Result(string Op, bool Ok, long Error, string Text, string? Data, int? Pdu, string? Stage, JsonElement Json)
{
    /// <summary>snap7 client error codes (s7_micro_client.h) that tests look for.</summary>
    public const long ErrItemNotAvailable = 0x00C00000, ErrNeedPassword = 0x01D00000;

    public override string ToString() => Json.GetRawText();
}

/// <summary>
/// snap7's S7 server (node-snap7 1.0.9, built by tests/peers/build-snap7.sh) as a PLC for tests, and
/// its client as a separate process per operation. The server's event log is the judge of what
/// reached the PLC. Built once per test run (the script is cached by a stamp; this class builds at
/// most once per process).
/// </summary>
/// <remarks>
/// Ordering: events of one connection come from one snap7 worker thread, in order, and its
/// <c>evcClientDisconnected</c> is the last of them: wait for it (<see cref="WaitForDisconnectsAsync"/>)
/// before asserting that something was not logged.
/// </remarks>
internal sealed class Snap7Peer : IAsyncDisposable
{
    private const int BuildTimeoutMs = 15 * 60_000; // a cold node-gyp build is ~1-2 min on 2 idle cores
    private const int ClientTimeoutMs = 30_000;     // snap7's own timeouts are 3 s per exchange
    private const int MaxEvents = 10_000;

    private static readonly SemaphoreSlim BuildLock = new(1, 1);
    private static string? _built;

    private readonly Process _process;
    private readonly List<Snap7Event> _events = [];
    private readonly List<string> _stderr = [];
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _dropped;

    private Snap7Peer(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    /// <summary>Where build-snap7.sh puts the peer (server.js, client.js, node_modules).</summary>
    public static string Dir { get; } = Path.Combine(Processes.RepoRoot, "artifacts", "peers", "snap7");

    public int Port { get; }

    /// <summary>A snapshot of the events logged so far, in the order the server logged them.</summary>
    public IReadOnlyList<Snap7Event> Events
    {
        get
        {
            lock (_events)
            {
                Assert.True(_dropped == 0, $"the server logged more than {MaxEvents} events; {_dropped} were not kept");
                return [.. _events];
            }
        }
    }

    public string Stderr { get { lock (_stderr) { return string.Join('\n', _stderr); } } }

    /// <summary>Runs tests/peers/build-snap7.sh once in this process (bounded); returns the peer's directory.</summary>
    public static async Task<string> BuildAsync()
    {
        await BuildLock.WaitAsync();
        try
        {
            if (_built is null)
            {
                string script = Path.Combine(Processes.RepoRoot, "tests", "peers", "build-snap7.sh");
                var result = await Processes.RunAsync(Processes.Tool("/bin/bash", script, Dir), BuildTimeoutMs);
                Assert.True(result.ExitCode == 0, "build-snap7.sh failed:\n" + result.Stdout + result.Stderr);
                _built = Dir;
            }
            return _built;
        }
        finally
        {
            BuildLock.Release();
        }
    }

    /// <summary>Builds the peer if needed, starts server.js on a free loopback port and waits for <c>ready</c>.</summary>
    public static Task<Snap7Peer> StartServerAsync(int readyTimeoutMs = 15_000) => StartServerAsync([], readyTimeoutMs);

    /// <summary>
    /// As <see cref="StartServerAsync(int)"/>, with more arguments for server.js, e.g. <c>--seed DB2:0:FB2E</c>
    /// (known values put in before the server starts, so no write event for them).
    /// </summary>
    public static async Task<Snap7Peer> StartServerAsync(string[] serverArgs, int readyTimeoutMs = 15_000)
    {
        string dir = await BuildAsync();
        // server.js binds the port itself; a port taken between FreePort and bind fails StartTo, so retry.
        for (int attempt = 1; ; attempt++)
        {
            int port = Processes.FreePort();
            var start = Node(Path.Combine(dir, "server.js"), ["--port", port.ToString(CultureInfo.InvariantCulture), "--watch-stdin", .. serverArgs]);
            start.RedirectStandardInput = true; // the lifeline: the server stops when this process goes
            var peer = new Snap7Peer(Process.Start(start)!, port);
            peer.Attach();
            await Task.WhenAny(peer._ready.Task, Task.Delay(readyTimeoutMs), peer._process.WaitForExitAsync());
            if (peer._ready.Task.IsCompleted)
            {
                return peer;
            }
            string why = peer.Stderr;
            await peer.DisposeAsync();
            if (attempt == 3)
            {
                Assert.Fail($"snap7 server.js did not print ready within {readyTimeoutMs} ms:\n{why}");
            }
        }
    }

    /// <summary>Runs client.js once against this server, direct.</summary>
    public Task<Snap7Result> RunClientAsync(string op, params string[] args) => RunClientAsync("127.0.0.1", Port, "pg", op, args);

    /// <summary>Runs client.js once: one connection (with the given connection type), one operation, one JSON result.</summary>
    public static async Task<Snap7Result> RunClientAsync(string host, int port, string connType, string op, params string[] args)
    {
        string dir = await BuildAsync();
        var start = Node(Path.Combine(dir, "client.js"), "--host", host, "--port", port.ToString(CultureInfo.InvariantCulture), "--conn-type", connType, op);
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        var result = await Processes.RunAsync(start, ClientTimeoutMs);
        Assert.True(result.ExitCode == 0, $"client.js {op} exited {result.ExitCode}:\n{result.Stdout}{result.Stderr}");
        string line = result.Stdout.Trim();
        Assert.False(string.IsNullOrEmpty(line) || line.Contains('\n', StringComparison.Ordinal), $"client.js {op} printed not one line:\n{result.Stdout}{result.Stderr}");
        using var json = JsonDocument.Parse(line);
        var root = json.RootElement.Clone();
        return new Snap7Result(
            root.GetProperty("op").GetString()!,
            root.GetProperty("ok").GetBoolean(),
            root.GetProperty("error").GetInt64(),
            root.GetProperty("text").GetString()!,
            root.TryGetProperty("data", out var data) ? data.GetString() : null,
            root.TryGetProperty("pdu", out var pdu) ? pdu.GetInt32() : null,
            root.TryGetProperty("stage", out var stage) ? stage.GetString() : null,
            root);
    }

    /// <summary>Waits (bounded) for an event that matches; null when none came.</summary>
    public async Task<Snap7Event?> WaitForEventAsync(Func<Snap7Event, bool> match, int timeoutMs = 10_000)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            lock (_events)
            {
                foreach (var e in _events)
                {
                    if (match(e))
                    {
                        return e;
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

    /// <summary>
    /// Waits (bounded) until the server has logged as many disconnects as there were connections:
    /// after that every job of those connections is in <see cref="Events"/>.
    /// </summary>
    public async Task WaitForDisconnectsAsync(int timeoutMs = 10_000)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            int added, gone;
            lock (_events)
            {
                added = _events.Count(e => e.Code == Snap7Event.ClientAdded);
                gone = _events.Count(e => e.Code == Snap7Event.ClientDisconnected);
            }
            if (added == gone)
            {
                return;
            }
            Assert.True(sw.ElapsedMilliseconds < timeoutMs && !_process.HasExited,
                $"snap7 server logged {added} connections but {gone} disconnects within {timeoutMs} ms:\n{string.Join('\n', Events)}");
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            try
            {
                _process.StandardInput.Close(); // --watch-stdin: server.js stops its server and exits
                using var cts = new CancellationTokenSource(5_000);
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
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
        if (line is null)
        {
            return;
        }
        if (line == "ready")
        {
            _ready.TrySetResult();
            return;
        }
        if (!line.StartsWith('{'))
        {
            lock (_stderr) { _stderr.Add("stdout: " + line); }
            return;
        }
        using var json = JsonDocument.Parse(line);
        var r = json.RootElement;
        var e = new Snap7Event(
            r.GetProperty("EvtCode").GetInt64(), r.GetProperty("name").GetString()!, r.GetProperty("EvtRetCode").GetInt32(),
            r.GetProperty("EvtParam1").GetInt32(), r.GetProperty("EvtParam2").GetInt32(), r.GetProperty("EvtParam3").GetInt32(),
            r.GetProperty("EvtParam4").GetInt32(), r.GetProperty("text").GetString()!, line);
        lock (_events)
        {
            if (_events.Count < MaxEvents)
            {
                _events.Add(e);
            }
            else
            {
                _dropped++;
            }
        }
    }

    private static ProcessStartInfo Node(string script, params string[] args)
    {
        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(script);
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        return start;
    }
}
