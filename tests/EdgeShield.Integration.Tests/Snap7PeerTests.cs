using Xunit.Abstractions;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// The snap7 peer (tests/peers/snap7, node-snap7 1.0.9) client against its server DIRECT, no gateway:
/// proves the harness the S7 gateway tests stand on — what the client is told, and what the server's
/// own event log says reached it.
/// </summary>
public class Snap7PeerTests(ITestOutputHelper output)
{
    [Fact]
    public async Task DbRead_OfDb1_ReturnsTheSeededBytes_AndTheServerLogsTheRead()
    {
        await using var plc = await Snap7Peer.StartServerAsync();

        var read = await plc.RunClientAsync("db-read", "1", "0", "16");

        Assert.True(read.Ok, read.ToString());
        Assert.Equal(0, read.Error);
        Assert.Equal("000102030405060708090a0b0c0d0e0f", read.Data);
        Assert.Equal(480, read.Pdu); // snap7 client asks 480, its server grants it
        var logged = await plc.WaitForEventAsync(e => e.Code == Snap7Event.DataRead);
        Assert.NotNull(logged);
        Assert.Equal((0, Snap7Event.AreaDb, 1, 0, 16), (logged.RetCode, logged.Param1, logged.Param2, logged.Param3, logged.Param4));
        Assert.Contains("Read request, Area : DB1, Start : 0, Size : 16 --> OK", logged.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DbWrite_ThenDbRead_ReturnsTheWrittenBytes_AndTheServerLogsTheWrite()
    {
        await using var plc = await Snap7Peer.StartServerAsync();

        var write = await plc.RunClientAsync("db-write", "2", "10", "deadbeef");
        var read = await plc.RunClientAsync("db-read", "2", "8", "8");

        Assert.True(write.Ok, write.ToString());
        Assert.True(read.Ok, read.ToString());
        Assert.Equal("0000deadbeef0000", read.Data);
        var logged = await plc.WaitForEventAsync(e => e.Code == Snap7Event.DataWrite);
        Assert.NotNull(logged);
        Assert.Equal("evcDataWrite", logged.Name);
        Assert.Equal((0, Snap7Event.AreaDb, 2, 10, 4), (logged.RetCode, logged.Param1, logged.Param2, logged.Param3, logged.Param4));
        Assert.Contains("Write request, Area : DB2, Start : 10, Size : 4 --> OK", logged.Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("m", Snap7Event.AreaM, "MK")]
    [InlineData("i", Snap7Event.AreaI, "PE")]
    [InlineData("q", Snap7Event.AreaQ, "PA")]
    public async Task WriteArea_ThenReadArea_RoundTrips_AndBothAreLoggedWithTheArea(string area, int code, string snap7Name)
    {
        await using var plc = await Snap7Peer.StartServerAsync();

        var write = await plc.RunClientAsync("write-area", area, "0", "200", "a1b2c3");
        var read = await plc.RunClientAsync("read-area", area, "0", "199", "5");

        Assert.True(write.Ok, write.ToString());
        Assert.Equal("00a1b2c300", read.Data);
        await plc.WaitForDisconnectsAsync();
        var jobs = plc.Events.Where(e => e.IsJob).ToArray();
        Assert.Equal(2, jobs.Length);
        Assert.Equal((Snap7Event.DataWrite, code, 0, 200, 3), (jobs[0].Code, jobs[0].Param1, jobs[0].Param2, jobs[0].Param3, jobs[0].Param4));
        Assert.Equal((Snap7Event.DataRead, code, 0, 199, 5), (jobs[1].Code, jobs[1].Param1, jobs[1].Param2, jobs[1].Param3, jobs[1].Param4));
        Assert.Contains($"Area : {snap7Name}, Start : 200", jobs[0].Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MultiRead_ReadsEveryItemInOneJob_AndTheServerLogsOneReadPerItem()
    {
        await using var plc = await Snap7Peer.StartServerAsync();
        Assert.True((await plc.RunClientAsync("write-area", "q", "0", "4", "0102")).Ok);

        var read = await plc.RunClientAsync("multi-read", "db:1:100:4", "m:0:0:2", "i:0:8:2", "q:0:4:2");

        Assert.True(read.Ok, read.ToString());
        var items = read.Json.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("data").GetString() ?? "").ToArray();
        Assert.Equal<string>(["64656667", "0000", "0000", "0102"], items);
        await plc.WaitForDisconnectsAsync();
        var reads = plc.Events.Where(e => e.Code == Snap7Event.DataRead).Select(e => (e.Param1, e.Param2, e.Param3, e.Param4)).ToArray();
        Assert.Equal([(Snap7Event.AreaDb, 1, 100, 4), (Snap7Event.AreaM, 0, 0, 2), (Snap7Event.AreaI, 0, 8, 2), (Snap7Event.AreaQ, 0, 4, 2)], reads);
    }

    [Fact]
    public async Task PlcStop_IsLoggedByTheServer_AndStopsItsCpuUntilAHotStart()
    {
        await using var plc = await Snap7Peer.StartServerAsync();

        var stop = await plc.RunClientAsync("plc-stop");
        var stopped = await plc.RunClientAsync("get-plc-status");
        var start = await plc.RunClientAsync("plc-hot-start");
        var running = await plc.RunClientAsync("get-plc-status");

        Assert.True(stop.Ok, stop.ToString());
        Assert.True(start.Ok, start.ToString());
        Assert.Equal(0x04, stopped.Json.GetProperty("value").GetInt32()); // S7CpuStatusStop
        Assert.Equal(0x08, running.Json.GetProperty("value").GetInt32()); // S7CpuStatusRun
        await plc.WaitForDisconnectsAsync();
        var controls = plc.Events.Where(e => e.Code == Snap7Event.Control).ToArray();
        Assert.Equal(2, controls.Length);
        Assert.Equal(3, controls[0].Param1); // CodeControlStop
        Assert.Contains("CPU Control request : STOP --> OK", controls[0].Text, StringComparison.Ordinal);
        Assert.Equal(2, controls[1].Param1); // CodeControlWarmStart
        Assert.Contains("Warm START", controls[1].Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SetClock_IsLoggedByTheServerAsAClockWrite()
    {
        await using var plc = await Snap7Peer.StartServerAsync();

        var get = await plc.RunClientAsync("get-clock");
        var set = await plc.RunClientAsync("set-clock", "2024-05-06T07:08:09Z");

        Assert.True(get.Ok, get.ToString());
        Assert.True(set.Ok, set.ToString());
        await plc.WaitForDisconnectsAsync();
        var clock = plc.Events.Where(e => e.Code == Snap7Event.Clock).ToArray();
        Assert.Equal([1, 2], clock.Select(e => e.Param1)); // evsGetClock, evsSetClock
        Assert.Contains("System clock write requested", clock[1].Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DbRead_OfADbThePlcDoesNotHave_GetsErrCliItemNotAvailable()
    {
        await using var plc = await Snap7Peer.StartServerAsync();

        var read = await plc.RunClientAsync("db-read", "7", "0", "4");

        Assert.False(read.Ok, read.ToString());
        Assert.Equal(Snap7Result.ErrItemNotAvailable, read.Error); // 0x00C00000, snap7's documented code
        Assert.Equal("CPU : Item not available", read.Text);
        Assert.Null(read.Data);
        var logged = await plc.WaitForEventAsync(e => e.Code == Snap7Event.DataRead);
        Assert.NotNull(logged);
        Assert.Equal((7, Snap7Event.AreaDb, 7), (logged.RetCode, logged.Param1, logged.Param2)); // evrErrAreaNotFound
        Assert.Contains("Area not found", logged.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UploadAndDownload_AreRefusedBySnap7sServer_WhichLogsBothUnderUpload()
    {
        await using var plc = await Snap7Peer.StartServerAsync();

        var upload = await plc.RunClientAsync("upload", "db", "1");
        var download = await plc.RunClientAsync("download", "5", "sample-db");

        Assert.Equal((false, Snap7Result.ErrNeedPassword), (upload.Ok, upload.Error));
        Assert.Equal((false, Snap7Result.ErrNeedPassword), (download.Ok, download.Error));
        await plc.WaitForDisconnectsAsync();
        var jobs = plc.Events.Where(e => e.IsJob).ToArray();
        Assert.Equal([(Snap7Event.Upload, 14), (Snap7Event.Upload, 15)], jobs.Select(e => (e.Code, e.RetCode))); // evrCannotUpload, evrCannotDownload
    }

    [Fact]
    public async Task PasswordAndBlockFunctions_AreEachLoggedAsTheirJob()
    {
        await using var plc = await Snap7Peer.StartServerAsync();

        string[][] ops = [["set-password", "secret"], ["clear-password"], ["list-blocks"], ["block-info", "db", "1"], ["read-szl", "0x0011", "0"], ["delete", "db", "3"]];
        foreach (var op in ops)
        {
            var result = await plc.RunClientAsync(op[0], op[1..]);
            Assert.True(result.Ok, result.ToString());
        }

        Assert.Equal(4, (await plc.RunClientAsync("list-blocks")).Json.GetProperty("value").GetProperty("DBCount").GetInt32());
        await plc.WaitForDisconnectsAsync();
        var jobs = plc.Events.Where(e => e.IsJob).Select(e => (e.Code, e.Param1)).ToArray();
        output.WriteLine(string.Join('\n', plc.Events.Where(e => e.IsJob)));
        Assert.Equal(
            [(Snap7Event.Security, 1), (Snap7Event.Security, 2), (Snap7Event.Directory, 1), (Snap7Event.Directory, 4),
             (Snap7Event.ReadSzl, 0x0011), (Snap7Event.Control, 6), (Snap7Event.Directory, 1)],
            jobs);
    }

    [Theory]
    [InlineData("pg")]
    [InlineData("op")]
    [InlineData("basic")]
    public async Task EveryConnectionType_Connects_AndReads(string connType)
    {
        await using var plc = await Snap7Peer.StartServerAsync();

        var read = await Snap7Peer.RunClientAsync("127.0.0.1", plc.Port, connType, "db-read", "1", "4", "2");

        Assert.True(read.Ok, read.ToString());
        Assert.Equal(connType, read.Json.GetProperty("connType").GetString());
        Assert.Equal("0405", read.Data);
    }

    [Fact]
    public async Task AnOperationTheClientRejectsItself_ReachesNoJobOnTheServer()
    {
        // The fence a gateway test uses to prove "never reached": wait for every connection's
        // disconnect, then no job is in the log. Here the client refuses a malformed block itself.
        await using var plc = await Snap7Peer.StartServerAsync();

        var download = await plc.RunClientAsync("download", "5", "0102");

        Assert.False(download.Ok);
        Assert.Equal("CLI : Invalid block size", download.Text);
        await plc.WaitForDisconnectsAsync();
        Assert.Contains(plc.Events, e => e.Code == Snap7Event.ClientAdded);
        Assert.DoesNotContain(plc.Events, e => e.IsJob);
    }

    [Fact]
    public async Task NoServer_TheClientReportsAFailedConnect()
    {
        int port = Processes.FreePort();

        var read = await Snap7Peer.RunClientAsync("127.0.0.1", port, "pg", "db-read", "1", "0", "4");

        Assert.False(read.Ok);
        Assert.Equal("connect", read.Stage);
        Assert.NotEqual(0, read.Error);
    }

    [Theory]
    [InlineData("snap7-readwrite-pg", "0102")]
    [InlineData("snap7-readwrite-op", "0202")]
    [InlineData("snap7-dangerous-pg", "0102")]
    [InlineData("snap7-dangerous-op", "0202")]
    [InlineData("snap7-info-pg", "0102")]
    [InlineData("snap7-info-op", "0202")]
    public async Task Capture_ReadAgainByTshark_IsItsGroundTruth_WithTheCalledTsapOfItsConnectionType(string name, string calledTsap)
    {
        string capture = Path.Combine(Processes.RepoRoot, "tests", "data", "s7comm", name + ".pcapng");
        string truth = Path.Combine(Processes.RepoRoot, "tests", "data", "groundtruth", "s7comm", name + ".pcapng.csv");
        string again = Path.Combine(Path.GetTempPath(), $"snap7-gt-{Guid.NewGuid():N}.csv");
        try
        {
            var run = await Processes.RunAsync(Processes.Tool("/usr/bin/python3", Path.Combine(Processes.RepoRoot, "tests", "peers", "snap7", "groundtruth.py"), capture, again), 60_000);
            Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
            Assert.Equal(await File.ReadAllLinesAsync(truth), await File.ReadAllLinesAsync(again));
        }
        finally
        {
            File.Delete(again);
        }

        var rows = (await File.ReadAllLinesAsync(truth)).Select(l => l.Split(',')).ToArray();
        int tsap = Array.IndexOf(rows[0], "cotp_dst_tsap"), malformed = Array.IndexOf(rows[0], "malformed"), protid = Array.IndexOf(rows[0], "protid");
        var called = rows.Skip(1).Select(r => r[tsap]).Where(t => t.Length > 0).Distinct().ToArray();
        Assert.Equal([calledTsap], called); // every COTP CR and CC of the capture
        Assert.All(rows.Skip(1), r => Assert.Equal("0", r[malformed]));
        Assert.True(rows.Skip(1).Count(r => r[protid] == "0x32") >= 16, $"{name}: fewer S7 PDUs than its client runs made");
    }
}
