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

    private sealed record Frame(string Name, string Hex, JsonElement Expect);

    private static async Task<List<Frame>> FramesAsync(string pcap)
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

    private static string Options(Frame f) =>
        f.Expect.TryGetProperty("tshark", out var o) ? string.Join(' ', o.EnumerateArray().Select(e => e.GetString())) : "";
}
