using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Xunit.Abstractions;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// tests/peers/iec104/craft.py (scapy's iec104 layers): the malformed IEC 104 frames an attacker
/// would send, each checked against tshark's iec60870_104 / iec60870_asdu dissectors (the oracle):
/// every frame decodes, or is flagged, the way its name says.
/// </summary>
public class Iec104CraftTests(ITestOutputHelper output)
{
    private const string Python = "/usr/bin/python3"; // scapy is Debian's python3-scapy, not in other Pythons on the path

    private static string Craft => Path.Combine(Processes.RepoRoot, "tests", "peers", "iec104", "craft.py");

    /// <summary>One frame of craft.py: its name, its bytes in hex, what tshark must show (for gateway tests too).</summary>
    internal sealed record Frame(string Name, string Hex, JsonElement Expect);

    /// <summary>Runs craft.py (it also writes <paramref name="pcap"/>): every frame with its expectation.</summary>
    internal static async Task<List<Frame>> FramesAsync(string pcap)
    {
        var hex = await Processes.RunAsync(Processes.Tool(Python, Craft, "--pcap", pcap));
        Assert.True(hex.ExitCode == 0, "craft.py failed (apt-get install python3-scapy):\n" + hex.Stdout + hex.Stderr);
        var expect = await Processes.RunAsync(Processes.Tool(Python, Craft, "--expect"));
        Assert.True(expect.ExitCode == 0, expect.Stderr);
        var expectations = expect.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', 2)).ToDictionary(p => p[0], p => JsonDocument.Parse(p[1]).RootElement.Clone());
        var frames = new List<Frame>();
        foreach (string line in hex.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ');
            Assert.True(parts.Length == 2 && parts[1].Length % 2 == 0 && parts[1].All(Uri.IsHexDigit), $"not NAME HEX: {line}");
            Assert.True(expectations.ContainsKey(parts[0]), $"{parts[0]} has no expectation");
            frames.Add(new Frame(parts[0], parts[1], expectations[parts[0]]));
        }
        return frames;
    }

    [Fact]
    public async Task EveryCraftedFrame_DecodesOrIsFlaggedByTshark_AsItsNameSays()
    {
        string pcap = Path.Combine(Path.GetTempPath(), $"iec104-craft-{Guid.NewGuid():N}.pcap");
        try
        {
            var frames = await FramesAsync(pcap);
            Assert.Contains(frames, f => f.Name == "sq1_no_base_ioa");
            Assert.True(frames.Count >= 14, $"only {frames.Count} frames");

            var fields = frames.SelectMany(f => f.Expect.TryGetProperty("fields", out var x) ? x.EnumerateObject().Select(p => p.Name) : [])
                .Concat(frames.SelectMany(f => f.Expect.TryGetProperty("absent", out var x) ? x.EnumerateArray().Select(e => e.GetString()!) : []))
                .Distinct().ToList();
            // One tshark run per set of extra options (frames that want reassembly off are read without it).
            var byOptions = new Dictionary<string, List<string[]>>();
            foreach (var options in frames.Select(Options).Distinct())
            {
                string[] args = ["-r", pcap, .. options.Split(' ', StringSplitOptions.RemoveEmptyEntries), "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,",
                    "-e", "frame.number", .. fields.SelectMany(f => new[] { "-e", f }), "-e", "_ws.expert.message", "-e", "_ws.malformed"];
                var run = await Processes.RunAsync(Processes.Tool("/usr/bin/tshark", args));
                Assert.True(run.ExitCode == 0, "tshark: " + run.Stderr);
                byOptions[options] = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')).ToList();
            }

            var failures = new List<string>();
            for (int i = 0; i < frames.Count; i++)
            {
                var frame = frames[i];
                var row = byOptions[Options(frame)][i];
                string Field(string name) => row[1 + fields.IndexOf(name)];
                string expert = row[1 + fields.Count];
                bool malformed = row[2 + fields.Count].Length > 0;
                output.WriteLine($"{frame.Name} {frame.Hex[..Math.Min(frame.Hex.Length, 40)]}: {string.Join(" ", fields.Select(f => $"{f}={Field(f)}").Where(s => !s.EndsWith('=')))} expert=[{expert}] malformed={malformed}");
                if (frame.Expect.TryGetProperty("fields", out var want))
                {
                    foreach (var p in want.EnumerateObject())
                    {
                        if (Field(p.Name) != p.Value.GetString())
                        {
                            failures.Add($"{frame.Name}: {p.Name} is '{Field(p.Name)}', expected '{p.Value.GetString()}'");
                        }
                    }
                }
                if (frame.Expect.TryGetProperty("absent", out var absent))
                {
                    foreach (var name in absent.EnumerateArray().Select(e => e.GetString()!))
                    {
                        if (Field(name).Length > 0)
                        {
                            failures.Add($"{frame.Name}: {name} is '{Field(name)}', expected none");
                        }
                    }
                }
                if (frame.Expect.TryGetProperty("expert", out var text) && !expert.Contains(text.GetString()!, StringComparison.Ordinal))
                {
                    failures.Add($"{frame.Name}: no expert info '{text.GetString()}' (got '{expert}')");
                }
                if (frame.Expect.TryGetProperty("malformed", out var m) && m.GetBoolean() != malformed)
                {
                    failures.Add($"{frame.Name}: malformed={malformed}, expected {m.GetBoolean()}");
                }
            }
            Assert.True(failures.Count == 0, string.Join('\n', failures));
        }
        finally
        {
            File.Delete(pcap);
        }
    }

    /// <summary>What lib60870's station did with one crafted frame sent after STARTDT on a fresh connection.</summary>
    internal sealed record Reaction(bool Closed, string Reply);

    /// <summary>
    /// The same frames sent straight to our lib60870 station (no gateway): what the peer a gateway protects
    /// does with each. This is lib60870's behaviour, written down: it accepts LEN &gt; 253 and bytes beyond
    /// what TYPE/N imply (and echoes them), ignores the ASDU of an S-frame, answers a U-frame with two function
    /// bits as STARTDT, ignores one with none and a frame with LEN &lt; 4, and closes on an ASDU shorter than its header or N says
    /// (so issue 200 is fixed in this version). A gateway test that sends these through EdgeShield compares
    /// against this: an ASDU line in the station's log means the frame reached the station.
    /// </summary>
    [Fact]
    public async Task EveryCraftedFrame_SentToTheLib60870Station_GetsTheReactionWrittenHere()
    {
        // name -> (the station closes the connection, the station logs an ASDU, the start of its reply in hex or "" for none)
        var expected = new Dictionary<string, (bool Closes, bool Asdu, string Reply)>
        {
            ["valid_startdt_act"] = (false, false, "68040b000000"),
            ["valid_c_sc_na_1_select"] = (false, true, "680e000002002d0107"),       // positive actcon
            ["len_over_253"] = (false, true, "68fe000002002d0107"),                 // accepted, answered with all 254
            ["len_under_4"] = (false, false, ""),                                   // ignored
            ["s_frame_with_asdu"] = (false, false, ""),                             // taken as an S-frame, the ASDU ignored
            ["u_frame_two_functions"] = (false, false, "68040b000000"),             // taken as STARTDT act
            ["u_frame_no_function"] = (false, false, ""),                           // "unknown message - IGNORE"
            ["i_len_longer_than_type_n"] = (false, true, "6811000002002d0107"),     // accepted, the 3 extra octets echoed
            ["i_len_shorter_than_type_n"] = (true, false, ""),                      // "Invalid ASDU"
            ["n_larger_than_objects"] = (true, false, ""),                          // "Invalid ASDU"
            ["sq1_n0"] = (false, true, "680d000002002d8047"),                       // negative actcon (our station: no object)
            ["sq1_no_base_ioa"] = (true, false, ""),                                // "Invalid ASDU"
            ["cause_0"] = (false, true, "680e000002002d016d"),                      // negative, cause 45
            ["global_ca_command"] = (false, true, "680e000002002d016e00ffff"),      // negative, cause 46
            ["global_ca_interrogation"] = (false, true, "680e0000020064010700ffff"), // actcon, then the points
        };
        string pcap = Path.Combine(Path.GetTempPath(), $"iec104-craft-{Guid.NewGuid():N}.pcap");
        List<Frame> frames;
        try
        {
            frames = await FramesAsync(pcap);
        }
        finally
        {
            File.Delete(pcap);
        }
        Assert.Equal(expected.Keys.Order(), frames.Select(f => f.Name).Order());
        await using var station = await Iec104Peer.StartStationAsync();

        var reactions = new List<Reaction>();
        foreach (var frame in frames)
        {
            // A reaction that must come (a reply or the close) is waited for up to 10 s: a loaded machine may run the
            // station late. Where none may come, the 400 ms of silence is the window.
            var (closes, _, reply) = expected[frame.Name];
            reactions.Add(await SendAsync(station.Port, Convert.FromHexString(frame.Hex), closes || reply.Length > 0 ? 10_000 : 400));
        }
        await station.WaitForClosesAsync();
        var log = station.Log;

        var failures = new List<string>();
        for (int i = 0; i < frames.Count; i++)
        {
            string conn = (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            var lines = log.Where(l => l.Has("conn") && l["conn"] == conn).ToArray();
            var (closes, asdu, reply) = expected[frames[i].Name];
            var got = reactions[i];
            bool logged = lines.Any(l => l.Kind == "asdu");
            string summary = $"{frames[i].Name}: closed={got.Closed} asdu={logged} reply={got.Reply[..Math.Min(got.Reply.Length, 40)]} | {string.Join(" | ", lines.Where(l => l.Kind is "asdu" or "lib" or "close"))}";
            output.WriteLine(summary);
            if (got.Closed != closes || logged != asdu || (reply.Length == 0 ? got.Reply.Length != 0 : !got.Reply.StartsWith(reply, StringComparison.Ordinal)))
            {
                failures.Add($"expected closed={closes} asdu={asdu} reply={reply}; got {summary}");
            }
        }
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    /// <summary>
    /// Connects to 127.0.0.1:port (a station or a gateway), STARTDT act/con, sends the frame (its N(S) 0, right for a
    /// fresh connection), then collects what comes back until 400 ms of silence or the close (the first bytes or the
    /// close are waited for up to <paramref name="firstMs"/>: more than 400 ms where a reaction must come).
    /// </summary>
    internal static async Task<Reaction> SendAsync(int port, byte[] frame, int firstMs = 400)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        await socket.SendAsync(new byte[] { 0x68, 0x04, 0x07, 0x00, 0x00, 0x00 }, SocketFlags.None);
        var con = new byte[6];
        int have = 0;
        using (var cts = new CancellationTokenSource(15_000))
        {
            while (have < 6)
            {
                int n = await socket.ReceiveAsync(con.AsMemory(have), SocketFlags.None, cts.Token);
                Assert.True(n > 0, "the station closed before STARTDT con");
                have += n;
            }
        }
        Assert.Equal("68040b000000", Convert.ToHexStringLower(con));
        await socket.SendAsync(frame, SocketFlags.None);
        var reply = new List<byte>();
        var buffer = new byte[4096];
        bool closed = false;
        while (reply.Count < 65536)
        {
            using var idle = new CancellationTokenSource(reply.Count == 0 ? firstMs : 400);
            try
            {
                int n = await socket.ReceiveAsync(buffer, SocketFlags.None, idle.Token);
                if (n == 0)
                {
                    closed = true;
                    break;
                }
                reply.AddRange(buffer.AsSpan(0, n).ToArray());
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (SocketException)
            {
                closed = true; // reset
                break;
            }
        }
        return new Reaction(closed, Convert.ToHexStringLower([.. reply]));
    }

    private static string Options(Frame f) =>
        f.Expect.TryGetProperty("tshark", out var o) ? string.Join(' ', o.EnumerateArray().Select(e => e.GetString())) : "";
}
