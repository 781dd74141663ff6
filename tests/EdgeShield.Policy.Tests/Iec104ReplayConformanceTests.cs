using System.Globalization;
using EdgeShield.Policy.Replay;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Iec104;
using EdgeShield.Protocols.Tests;

namespace EdgeShield.Policy.Tests;

/// <summary>
/// IEC 104 <c>replay</c> against Wireshark: the three captures of tests/data/iec104 through <see cref="Iec104PolicyReplay"/>
/// with a policy that allows every requestable type, compared with tshark 4.0's <c>iec60870_104</c>/<c>iec60870_asdu</c>
/// dissection (tests/data/groundtruth/iec104): the client's ASDUs (requests) and the station's, each counted per type,
/// per cause and per common address, must be equal. The one listed disagreement: ASDUs tshark reads in a client
/// direction after an APDU the codec refuses (docs/IEC104.md "Against tshark"): the gateway closes there, so
/// replay reads that direction no further.
/// </summary>
public class Iec104ReplayConformanceTests
{
    internal static readonly string[] Files =
    [
        "iti__IEC60870-5-104__090813_diverse.pcap",
        "iti__IEC60870-5-104__JavaRMI_and_IEC_Misc.pcap",
        "iti__IEC60870-5-104__TestDissectIec104.pcap",
    ];

    public static TheoryData<string> Captures() => new(Files);

    /// <summary>Every requestable type, every common address (global in its own rule: a range never includes it).</summary>
    internal const string AllowEverything = """
              - name: everything
                type: [control, system, clock, parameter, file]
              - name: everything global
                type: [control, system, clock, parameter, file]
                ca: global

        """;

    /// <summary>Client frames tshark reads after the first APDU of their direction the codec refuses (malformed at frames 36, 56, 71, 94).</summary>
    private static readonly Dictionary<string, int[]> AfterMalformed = new()
    {
        ["iti__IEC60870-5-104__TestDissectIec104.pcap"] = [41, 58, 83, 96],
    };

    /// <summary>Malformed client APDUs replay must report (each ends its direction), per capture.</summary>
    private static readonly Dictionary<string, int[]> MalformedFrames = new()
    {
        ["iti__IEC60870-5-104__TestDissectIec104.pcap"] = [7, 36, 56, 71, 94],
    };

    internal static CaptureReader Open(string file)
    {
        Assert.True(CaptureReader.TryOpen(File.ReadAllBytes(TestData.PathOf($"iec104/{file}")), out var reader, out _));
        return reader!;
    }

    /// <summary>Per direction: counts by type, cause and common address, as "type 45", "cause 6", "ca 3".</summary>
    internal sealed record Truth(SortedDictionary<string, long> Client, SortedDictionary<string, long> Station);

    internal static Truth Tshark(string file)
    {
        var client = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var station = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var skip = AfterMalformed.GetValueOrDefault(file, []);
        foreach (var row in TestData.ReadCsv(TestData.PathOf($"groundtruth/iec104/{file}.csv")))
        {
            if (skip.Contains(int.Parse(row["frame"], CultureInfo.InvariantCulture)))
            {
                continue;
            }
            var counts = row["dport"] == "2404" ? client : station;
            foreach (var type in Split(row["typeid"]))
            {
                Add(counts, "type " + type);
            }
            foreach (var cause in Split(row["cot"]))
            {
                Add(counts, "cause " + cause);
            }
            foreach (var ca in Split(row["common_addr"]))
            {
                Add(counts, "ca " + ca);
            }
        }
        return new Truth(client, station);
    }

    internal static (SortedDictionary<string, long> Client, SortedDictionary<string, long> Station) Ours(Iec104PolicyReplay replay)
    {
        var client = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var station = new SortedDictionary<string, long>(StringComparer.Ordinal);
        Fill(client, "type", replay.ByType);
        Fill(client, "cause", replay.ByCause);
        Fill(client, "ca", replay.ByCommonAddress);
        Fill(station, "type", replay.ResponsesByType);
        Fill(station, "cause", replay.ResponsesByCause);
        Fill(station, "ca", replay.ResponsesByCommonAddress);
        return (client, station);
    }

    private static void Fill(SortedDictionary<string, long> counts, string what, long[] values)
    {
        for (int i = 0; i < values.Length; i++)
        {
            if (values[i] > 0)
            {
                counts[$"{what} {i.ToString(CultureInfo.InvariantCulture)}"] = values[i];
            }
        }
    }

    private static string[] Split(string value) => value.Length == 0 ? [] : value.Split('|');

    private static void Add(SortedDictionary<string, long> counts, string key) => counts[key] = counts.GetValueOrDefault(key) + 1;

    [Theory]
    [MemberData(nameof(Captures))]
    public void Iec104Replay_Capture_CountsPerTypeCauseAndCommonAddressEqualTsharks(string file)
    {
        var truth = Tshark(file);
        var replay = new Iec104PolicyReplay(Iec104Requests.Compile(AllowEverything));
        Assert.Equal(CaptureError.None, replay.Run(Open(file)));
        var (client, station) = Ours(replay);

        Assert.NotEmpty(truth.Client);
        Assert.Equal(truth.Client, client);
        Assert.Equal(truth.Station, station);
        Assert.Equal(truth.Client.Where(p => p.Key.StartsWith("type ", StringComparison.Ordinal)).Sum(p => p.Value), replay.Requests);
        Assert.Equal(truth.Station.Where(p => p.Key.StartsWith("type ", StringComparison.Ordinal)).Sum(p => p.Value), replay.Responses);
        Assert.Equal(MalformedFrames.GetValueOrDefault(file, []), replay.FirstMalformed.Select(m => m.FrameNumber).Order().ToArray());
        Assert.All(replay.FirstMalformed, m => Assert.True(m.IsRequest));
        Assert.Equal(0, replay.Scanner.Unsynchronised);
        Assert.Equal(replay.Requests, replay.Allowed);
        Assert.Equal(0, replay.Denied);
    }

    [Fact]
    public void Iec104Replay_ByFunction_IsKeyedByTypeName()
    {
        var replay = new Iec104PolicyReplay(Iec104Requests.Compile(AllowEverything));
        replay.Run(Open(Files[0]));
        using var stream = new MemoryStream();
        using (var writer = new System.Text.Json.Utf8JsonWriter(stream))
        {
            ReplayReport.WriteJson(writer, replay);
        }
        using var json = System.Text.Json.JsonDocument.Parse(stream.ToArray());
        var byFunction = json.RootElement.GetProperty("by_function");
        // tshark, client → station: C_SC_NA_1 2, C_DC_NA_1 2, C_SE_NC_1 4, C_SC_TA_1 2, C_DC_TA_1 4, C_SE_TA_1 2, C_SE_TC_1 2, C_IC_NA_1 1.
        Assert.Equal(2, byFunction.GetProperty("C_SC_NA_1").GetInt64());
        Assert.Equal(4, byFunction.GetProperty("C_DC_TA_1").GetInt64());
        Assert.Equal(1, byFunction.GetProperty("C_IC_NA_1").GetInt64());
        Assert.Equal(19, json.RootElement.GetProperty("requests").GetInt64());
        Assert.Equal(19, json.RootElement.GetProperty("by_ca").GetProperty("3").GetInt64());
        Assert.Equal(19, json.RootElement.GetProperty("by_cause").GetProperty("6").GetInt64());
        Assert.Equal(19, json.RootElement.GetProperty("by_rule").GetProperty("everything").GetInt64());
    }

    [Fact]
    public void Iec104Replay_FrameLoop_AllocatesNothingAfterWarmUp()
    {
        var policy = Iec104Requests.Compile("""
                  - name: breakers
                    type: [C_SC_NA_1, C_DC_NA_1, C_SC_TA_1, C_DC_TA_1]
                    select-before-operate: true
                  - name: set-points
                    type: [C_SE_NC_1, C_SE_TA_1, C_SE_TC_1]
                    value: -50..50
                  - name: system
                    type: [system, clock]
                    rate: 1000/s

            """);
        var readers = Files.Select(Open).ToArray();
        var replay = new Iec104PolicyReplay(policy);
        foreach (var reader in readers)
        {
            replay.Run(reader);
            replay.Clear();
            reader.Reset();
        }

        long frames = 0, requests = 0;
        long allocated = ThreadAllocations.Fewest(() =>
        {
            frames = 0;
            requests = 0;
            for (int round = 0; round < 20; round++)
            {
                foreach (var reader in readers)
                {
                    replay.Run(reader);
                    frames += replay.Scanner.Frames;
                    requests += replay.Requests;
                    replay.Clear();
                    reader.Reset();
                }
            }
        });

        Assert.True(frames > 10_000, $"only {frames} frames");
        Assert.Equal(20 * 47, requests);
        Assert.Equal(0, allocated);
    }
}
