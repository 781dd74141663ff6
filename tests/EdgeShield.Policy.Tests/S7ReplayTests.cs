using System.Net;
using System.Text;
using System.Text.Json;
using EdgeShield.Policy.Replay;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.S7comm;
using static EdgeShield.Policy.Tests.S7ReplayConformanceTests;

namespace EdgeShield.Policy.Tests;

/// <summary><see cref="S7PolicyReplay"/> decides as the live S7 session does (the same <see cref="Inspector"/>), over real captures.</summary>
public class S7ReplayTests
{
    private const string ReadWriteOp = "snap7-readwrite-op.pcapng";
    private const string ReadWritePg = "snap7-readwrite-pg.pcapng";

    // snap7-readwrite-*: 11 connections, each CR, setup-communication and one job. Reads: DB1 0-15 (frame 10),
    // DB2 8-15 (38), M 0-3 (53), I 0-1 (81), Q 0-1 (109), five items DB1 100-103, M 0-1, I 8-9, Q 4-5, DB100 0-7
    // (137), DB7 0-3 (151); writes DB2 10-13 (24), M 200-202 (67), I 8 (95), Q 4-5 (123).
    private const string HmiReads = """
              - name: hmi reads
                connection: op
                function: [setup-communication, read-var]
                area: [db, m]
                db: 1-2
                address: 0-15

        """;

    private static S7PolicyReplay Run(string file, CompiledPolicy policy)
    {
        var replay = new S7PolicyReplay(policy);
        Assert.Equal(CaptureError.None, replay.Run(Open(file)));
        return replay;
    }

    [Fact]
    public void S7Replay_OpReadPolicy_AllowsReadsInsideItsAreasAndRefusesTheRest()
    {
        var replay = Run(ReadWriteOp, S7Policy(HmiReads));

        Assert.Equal(33, replay.Requests);
        Assert.Equal(11, replay.Connects);
        Assert.Equal(11 + 11 + 3, replay.Allowed);
        Assert.Equal(8, replay.Denied);
        Assert.Equal(14, replay.AllowedByRule[0]);
        Assert.Equal(4, replay.DeniedByReason[(int)DenyReason.Function]);
        Assert.Equal(4, replay.DeniedByReason[(int)DenyReason.AreaOrBlock]);
        Assert.Equal(7, replay.ByFunction[(int)S7Function.ReadVar]);
        Assert.Equal(4, replay.ByFunction[(int)S7Function.WriteVar]);
        Assert.Equal(11, replay.ByFunction[(int)S7Function.SetupCommunication]);
        Assert.Equal(11, replay.ByFunction[S7PolicyReplay.ConnectSlot]);
        Assert.Equal([24, 67, 81, 95, 109, 123, 137, 151], replay.FirstDenied.Select(d => d.FrameNumber));
        Assert.All(replay.FirstDenied, d => Assert.Equal(S7ConnectionKind.Op, d.Connection.Kind));
        Assert.Equal(0, replay.Malformed);
    }

    [Fact]
    public void S7Replay_SpanOutsideAddressRange_IsDeniedForItsAddress()
    {
        var replay = Run(ReadWriteOp, S7Policy("""
                  - name: reads
                    function: [setup-communication, read-var]
                    area: db
                    db: 1-2
                    address: 0-11

            """));

        // DB1 0-15 runs past 11: address; DB2 8-15 too; M, I, Q: area; DB7: block.
        var denied = replay.FirstDenied.Where(d => d.FunctionSlot == (int)S7Function.ReadVar).ToDictionary(d => d.FrameNumber, d => d.Reason);
        Assert.Equal(DenyReason.Address, denied[10]);
        Assert.Equal(DenyReason.Address, denied[38]);
        Assert.Equal(DenyReason.AreaOrBlock, denied[53]);
        Assert.Equal(DenyReason.AreaOrBlock, denied[151]);
        Assert.Equal(7, denied.Count);
    }

    [Fact]
    public void S7Replay_ConnectionTypeNoRuleNames_RefusesTheConnectAndReadsNothingAfterIt()
    {
        var replay = Run(ReadWritePg, S7Policy(HmiReads));

        Assert.Equal(11, replay.Requests);
        Assert.Equal(11, replay.Connects);
        Assert.Equal(11, replay.Denied);
        Assert.Equal(11, replay.DeniedByReason[(int)DenyReason.SourceOrUnit]);
        Assert.Equal(0, replay.ByFunction[(int)S7Function.SetupCommunication]);
        Assert.All(replay.FirstDenied, d => Assert.Equal(S7PolicyReplay.ConnectSlot, d.FunctionSlot));
        Assert.All(replay.FirstDenied, d => Assert.Equal(S7ConnectionKind.Pg, d.Connection.Kind));
    }

    [Fact]
    public void S7Replay_MonitorMode_LetsConnectsThroughAndCountsWouldDeny()
    {
        var replay = Run(ReadWritePg, S7Policy(HmiReads, mode: "monitor"));

        // Monitor mode forwards every connect; the rule names op only, so every job is a would-deny.
        Assert.Equal(33, replay.Requests);
        Assert.Equal(11, replay.Allowed);
        Assert.Equal(22, replay.Denied);
        Assert.Equal(22, replay.DeniedByReason[(int)DenyReason.SourceOrUnit]);
    }

    [Fact]
    public void S7Replay_OnDenyClose_EndsTheConnectionAtTheFirstRefusal()
    {
        // snap7_s300_everything: one connection (its CR is not in the capture) with 32 requests; the policy allows
        // reads and writes, so the first upload or stop is refused, and with on-deny: close nothing after it is read.
        const string ReadsAndWrites = """
                  - name: reads and writes
                    function: [read, write]

            """;
        var open = Run("iti__s7__snap7_s300_everything.pcapng", S7Policy(ReadsAndWrites));
        var closing = Run("iti__s7__snap7_s300_everything.pcapng", S7Policy(ReadsAndWrites, onDeny: "close"));

        Assert.Equal(32, open.Requests);
        Assert.Equal(0, open.Connects);
        Assert.True(open.Denied > 1, $"{open.Denied} denied");
        Assert.Equal(1, closing.Denied);
        Assert.Equal(open.FirstDenied[0].FrameNumber, closing.FirstDenied[0].FrameNumber);
        Assert.Equal(closing.Allowed + 1, closing.Requests);
        Assert.True(closing.Requests < open.Requests - open.Denied + 1, $"{closing.Requests} requests read with on-deny: close");
    }

    [Fact]
    public void S7Replay_MalformedPdu_EndsTheDirection()
    {
        string path = Path.Combine(Path.GetTempPath(), $"s7-malformed-{Guid.NewGuid():N}.pcapng");
        try
        {
            var client = SourceAddress.From(IPAddress.Parse("10.0.0.5")).Value;
            var server = SourceAddress.From(IPAddress.Parse("10.0.0.21")).Value;
            byte[] cr = Convert.FromHexString("0300001611E00000000100C0010AC1020100C2020202");
            byte[] setup = Convert.FromHexString("0300001902F080" + "32010000000100080000F0000001000101E0");
            byte[] empty = Convert.FromHexString("0300000702F080");
            using (var writer = new PcapngWriter(path, 1 << 20))
            {
                uint seq = 1;
                foreach (var (packet, n) in new[] { (cr, 1), (setup, 2), (empty, 3), (setup, 4) })
                {
                    writer.Write(n * 1_000_000L, client, 40000, server, 102, seq, packet, "");
                    seq += (uint)packet.Length;
                }
            }
            Assert.True(CaptureReader.TryOpen(File.ReadAllBytes(path), out var reader, out _));
            var replay = new S7PolicyReplay(S7Policy(AllowEverything));
            Assert.Equal(CaptureError.None, replay.Run(reader!));

            Assert.Equal(2, replay.Requests); // the connect and the first setup-communication
            Assert.Equal(1, replay.Malformed);
            Assert.Equal(3, replay.FirstMalformed[0].FrameNumber);
            Assert.True(replay.FirstMalformed[0].IsRequest);
            Assert.Equal(S7CaptureFault.Request, replay.FirstMalformed[0].Fault);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void S7Replay_Json_HasTheContractKeysAndFunctionWords()
    {
        var replay = Run(ReadWriteOp, S7Policy(HmiReads));
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            ReplayReport.WriteJson(writer, replay);
        }
        using var json = JsonDocument.Parse(buffer.ToArray());
        var root = json.RootElement;
        Assert.Equal(["frames", "requests", "responses", "malformed", "unsynchronised", "allowed", "denied", "by_function", "by_rule"],
            root.EnumerateObject().Select(p => p.Name));
        Assert.Equal(33, root.GetProperty("requests").GetInt64());
        Assert.Equal(22, root.GetProperty("responses").GetInt64());
        var functions = root.GetProperty("by_function").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64());
        Assert.Equal(new Dictionary<string, long> { ["setup-communication"] = 11, ["read-var"] = 7, ["write-var"] = 4, ["cotp-connect"] = 11 }, functions);
        Assert.Equal(14, root.GetProperty("by_rule").GetProperty("hmi reads").GetInt64());

        var text = new StringWriter();
        ReplayReport.WriteText(text, replay, "s7");
        Assert.Contains("frame 24      127.0.0.1 connection op write-var (function, closest rule hmi reads)", text.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void S7Replay_FrameLoop_AllocatesNothingAfterWarmUp()
    {
        var policy = S7Policy(HmiReads + "        rate: 1000/s\n      - name: engineering\n        connection: pg\n        function: [read, program, control, engineering]\n");
        string[] files = ["iti__s7__s7comm_downloading_block_db1.pcap", "iti__s7__snap7_s300_everything.pcapng", ReadWriteOp, ReadWritePg, "snap7-info-op.pcapng"];
        var readers = files.Select(Open).ToArray();
        var replay = new S7PolicyReplay(policy);
        foreach (var reader in readers)
        {
            replay.Run(reader);
            replay.Clear();
            reader.Reset();
        }

        long frames = 0;
        long allocated = ThreadAllocations.Fewest(() =>
        {
            frames = 0;
            for (int round = 0; round < 20; round++)
            {
                foreach (var reader in readers)
                {
                    replay.Run(reader);
                    frames += replay.Scanner.Frames;
                    replay.Clear();
                    reader.Reset();
                }
            }
        });

        Assert.True(frames > 10_000, $"only {frames} frames");
        Assert.Equal(0, allocated);
    }
}
