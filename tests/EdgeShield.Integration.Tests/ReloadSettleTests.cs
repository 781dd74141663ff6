using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// Issue 10 items 1 and 3 over a real <c>edgeshield run</c>: a config written in place in pieces is never
/// applied half-written, and config bombs are refused by <c>check</c> and by a reload, the running
/// policy staying in force.
/// </summary>
public class ReloadSettleTests
{
    private static string[] Details(string stdout, string reason) => stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        .Select(l => JsonDocument.Parse(l).RootElement)
        .Where(e => e.GetProperty("reason").GetString() == reason)
        .Select(e => e.GetProperty("detail").GetString()!)
        .ToArray();

    /// <summary>FC 6 of <paramref name="value"/> to holding register 500 of unit 1.</summary>
    private static byte[] Write500(ushort tid, ushort value) => [(byte)(tid >> 8), (byte)tid, 0, 0, 0, 6, 1, 6, 0x01, 0xF4, (byte)(value >> 8), (byte)value];

    [Fact]
    public async Task ConfigWrittenInPiecesInPlace_IsNeverAppliedHalfWritten_AndTheReloadNamesWhatWasLoaded()
    {
        using var ready = new ReadySignal();
        await using var gw = await GatewayProcess.StartAsync(ready: ready);
        using var client = await RawClient.ConnectAsync(gw.Port);
        Assert.True(await gw.Gateway.WaitForStdoutAsync("\"started\""), gw.Gateway.Stdout + gw.Gateway.Stderr);
        Assert.True(await ready.WaitAsync(), "no READY=1 (the watcher is set up just after 'started')\n" + gw.Gateway.Stderr);

        // The new file widens 'setpoints' to 100-599; its last line bounds the values. Cut before that
        // line, the file is a valid config whose 'setpoints' writes any value to 500.
        string complete = GatewayProcess.Config(gw.Plc.Port, GatewayProcess.Policy.Replace("address: 100-119", "address: 100-599", StringComparison.Ordinal));
        int cut = complete.IndexOf("        value: 0-1500", StringComparison.Ordinal);
        Assert.True(cut > 0);
        byte[] bytes = Encoding.UTF8.GetBytes(complete);
        int cutBytes = Encoding.UTF8.GetByteCount(complete[..cut]);

        // The writer: in place (no rename), the first piece, then a pause longer than the watcher's
        // 300 ms debounce (what an editor or a script over a slow link does), twice, then the rest.
        var writer = Task.Run(async () =>
        {
            await using var file = new FileStream(gw.ConfigPath, FileMode.Truncate, FileAccess.Write, FileShare.ReadWrite);
            await file.WriteAsync(bytes.AsMemory(0, cutBytes - 40));
            await file.FlushAsync();
            await Task.Delay(800);
            await file.WriteAsync(bytes.AsMemory(cutBytes - 40, 40));
            await file.FlushAsync();
            await Task.Delay(800);
            await file.WriteAsync(bytes.AsMemory(cutBytes));
            await file.FlushAsync();
        });

        // Meanwhile an out-of-range write to 500 every 50 ms: refused by the old policy (02) and by the
        // complete new one (03); only the half-written one would let it through.
        var answers = new List<byte>();
        ushort tid = 1;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!writer.IsCompleted || clock.ElapsedMilliseconds < 6_000)
        {
            Assert.True(clock.ElapsedMilliseconds < 30_000, "the writer did not finish");
            var response = await client.RoundTripAsync(Write500(tid++, 2000));
            answers.Add(response[8]);
            Assert.True(response[7] == 0x86, $"a write of 2000 to 500 was answered {Convert.ToHexString(response)}: the half-written file was applied\n{gw.Gateway.Stdout}");
            await Task.Delay(50);
        }
        await writer;
        Assert.Equal(0, gw.Plc.GetHoldingRegister(1, 500));
        Assert.True(await gw.Gateway.WaitForStdoutAsync("\"reloaded\"", 20_000), gw.Gateway.Stdout + gw.Gateway.Stderr);

        // One reload, of the whole file: the event names the file, its size and the hash of its bytes.
        string sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        var reloaded = Assert.Single(Details(gw.Gateway.Stdout, "reloaded"));
        Assert.EndsWith($" -> {sha} ({gw.ConfigPath}, {bytes.Length} bytes); version none, unsigned", reloaded, StringComparison.Ordinal);
        Assert.Equal(new byte[] { 0x86, 0x03 }, (await client.RoundTripAsync(Write500(tid++, 2000)))[7..9]);
        Assert.Equal(6, (await client.RoundTripAsync(Write500(tid++, 1000)))[7]);
        Assert.Equal(1000, gw.Plc.GetHoldingRegister(1, 500));
    }

    public static TheoryData<string, string> Bombs() => new()
    {
        { "deep", "policies: " + new string('[', 100_000) + new string(']', 100_000) + "\n" },
        { "laughs", EdgeShieldBombs.BillionLaughs },
        { "oversize", string.Concat(Enumerable.Repeat("# " + new string('x', 1021) + "\n", 4 * 1024 + 1)) },
    };

    [Theory]
    [MemberData(nameof(Bombs))]
    public async Task ConfigBomb_CheckSaysWhereAndExits2_ReloadKeepsTheRunningPolicy(string name, string text)
    {
        string path = Path.Combine(Path.GetTempPath(), $"edgeshield-bomb-{name}-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, text);
        try
        {
            var check = await Processes.RunAsync(Processes.EdgeShield("check", "--config", path), 30_000);
            Assert.Equal(2, check.ExitCode);
            Assert.Matches("^" + System.Text.RegularExpressions.Regex.Escape(path) + @":\d+:\d+: error: ", check.Stderr);
        }
        finally
        {
            File.Delete(path);
        }

        using var ready = new ReadySignal();
        await using var gw = await GatewayProcess.StartAsync(ready: ready);
        using var client = await RawClient.ConnectAsync(gw.Port);
        // The SIGHUP handler and the watcher are set up just after the 'started' event; a SIGHUP before them is
        // only remembered until the start ends, which proves nothing here. READY=1 says they are up.
        Assert.True(await gw.Gateway.WaitForStdoutAsync("\"started\""), gw.Gateway.Stdout + gw.Gateway.Stderr);
        Assert.True(await ready.WaitAsync(), "no READY=1\n" + gw.Gateway.Stderr);
        await File.WriteAllTextAsync(gw.ConfigPath, text);
        gw.Gateway.Signal(Processes.SIGHUP);
        Assert.True(await gw.Gateway.WaitForStdoutAsync("\"reload-failed\"", 30_000), gw.Gateway.Stdout + gw.Gateway.Stderr);
        Assert.Matches(@"^(SIGHUP|file changed): kept policy sha256 [0-9a-f]{64}; .+:\d+:\d+: error: ", Details(gw.Gateway.Stdout, "reload-failed")[0]);
        Assert.Empty(Details(gw.Gateway.Stdout, "reloaded"));
        // Alive, same connection, same policy: 1000 to 110 allowed, 2000 refused 03.
        Assert.Equal(6, (await client.RoundTripAsync([0, 1, 0, 0, 0, 6, 1, 6, 0, 110, 0x03, 0xE8]))[7]);
        Assert.Equal(new byte[] { 0x86, 0x03 }, (await client.RoundTripAsync([0, 2, 0, 0, 0, 6, 1, 6, 0, 110, 0x07, 0xD0]))[7..9]);
    }
}

/// <summary>The bombs shared with the policy tests' copy (this project does not reference them).</summary>
internal static class EdgeShieldBombs
{
    public const string BillionLaughs = """
        a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
        c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
        e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
        f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
        g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
        h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
        i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]

        """;
}
