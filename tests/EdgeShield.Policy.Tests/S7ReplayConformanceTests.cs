using System.Globalization;
using EdgeShield.Policy.Replay;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.S7comm;
using EdgeShield.Protocols.Tests;

namespace EdgeShield.Policy.Tests;

/// <summary>
/// S7 <c>replay</c> against Wireshark: every capture of tests/data/s7comm through <see cref="S7PolicyReplay"/>
/// (TCP reassembled, TPKT/COTP framed, DT fragments joined), with a policy that allows every function, compared
/// with tshark 4.0's <c>s7comm</c> dissection (tests/data/groundtruth/s7comm, made by make.sh there and
/// tests/peers/snap7/groundtruth.py): COTP connects, client jobs per function code and userdata per group and
/// subfunction (as policy words), the client's answers to the server's jobs, and every S7 PDU from the server.
/// No disagreement is tolerated: the counts must be equal.
/// </summary>
public class S7ReplayConformanceTests
{
    /// <summary>Every capture of tests/data/s7comm.</summary>
    internal static readonly string[] Files =
    [
        "iti__s7__s7comm_downloading_block_db1.pcap",
        "iti__s7__snap7_s300_everything.pcapng",
        "iti__s7__step7_s300_AuthPassword.pcapng",
        "snap7-readwrite-pg.pcapng",
        "snap7-readwrite-op.pcapng",
        "snap7-dangerous-pg.pcapng",
        "snap7-dangerous-op.pcapng",
        "snap7-info-pg.pcapng",
        "snap7-info-op.pcapng",
    ];

    public static TheoryData<string> Captures() => new(Files);

    internal const string AllowEverything = """
              - name: everything
                function: [cpu-services, read, write, program, control, engineering, bsend-brecv, nc-programming, s7comm-plus]

        """;

    internal static CaptureReader Open(string file)
    {
        Assert.True(CaptureReader.TryOpen(File.ReadAllBytes(TestData.PathOf($"s7comm/{file}")), out var reader, out _));
        return reader!;
    }

    internal static CompiledPolicy S7Policy(string rules, string mode = "enforce", string onDeny = "exception")
    {
        var yaml = $"policies:\n  p:\n    protocol: s7comm\n    mode: {mode}\n    on-deny: {onDeny}\n    rules:\n{rules}";
        var result = ConfigLoader.LoadText(yaml, "test.yaml");
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        return result.Config!.Policies["p"];
    }

    /// <summary>What tshark read: requests per policy word (cotp-connect for CRs), client answers, server PDUs.</summary>
    private sealed record Truth(SortedDictionary<string, long> Requests, long ClientAnswers, long Responses);

    private static Truth Tshark(string file)
    {
        var requests = new SortedDictionary<string, long>(StringComparer.Ordinal);
        long answers = 0, responses = 0;
        foreach (var row in TestData.ReadCsv(TestData.PathOf($"groundtruth/s7comm/{file}.csv")))
        {
            bool fromClient = row["dport"] == "102";
            foreach (var cotp in Split(row["cotp_type"]))
            {
                if (fromClient && cotp == "0x0e")
                {
                    Add(requests, "cotp-connect");
                }
            }
            var protocols = Split(row["protid"]);
            var rosctrs = Split(row["rosctr"]);
            var functions = new Queue<string>(Split(row["func"]));
            var groups = new Queue<string>(Split(row["ud_funcgroup"]));
            var subfunctions = new Queue<string>(Split(row["ud_subfunc"]));
            for (int i = 0; i < protocols.Length; i++)
            {
                if (protocols[i] == "0x72")
                {
                    if (fromClient)
                    {
                        Add(requests, "s7comm-plus");
                    }
                    else
                    {
                        responses++;
                    }
                    continue;
                }
                string rosctr = rosctrs[i];
                string? function = rosctr is "1" or "3" && functions.Count > 0 ? functions.Dequeue() : null;
                string word = "";
                if (rosctr == "7")
                {
                    byte group = Number(groups.Dequeue());
                    byte subfunction = Number(subfunctions.Dequeue());
                    word = S7Functions.PolicyWord(S7Functions.FromUserdata(group, subfunction));
                }
                else if (rosctr == "1")
                {
                    word = S7Functions.PolicyWord(S7Functions.FromJobCode(Number(function!)));
                }
                if (!fromClient)
                {
                    responses++;
                }
                else if (rosctr is "2" or "3")
                {
                    answers++;
                }
                else
                {
                    Add(requests, word);
                }
            }
        }
        return new Truth(requests, answers, responses);
    }

    private static string[] Split(string value) => value.Length == 0 ? [] : value.Split('|');

    private static byte Number(string value) => value.StartsWith("0x", StringComparison.Ordinal)
        ? byte.Parse(value.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture)
        : byte.Parse(value, CultureInfo.InvariantCulture);

    private static void Add(SortedDictionary<string, long> counts, string key) => counts[key] = counts.GetValueOrDefault(key) + 1;

    [Theory]
    [MemberData(nameof(Captures))]
    public void S7Replay_Capture_CountsEqualTsharks(string file)
    {
        var truth = Tshark(file);
        var replay = new S7PolicyReplay(S7Policy(AllowEverything));
        Assert.Equal(CaptureError.None, replay.Run(Open(file)));

        var ours = new SortedDictionary<string, long>(StringComparer.Ordinal);
        for (int slot = 0; slot < replay.ByFunction.Length; slot++)
        {
            if (replay.ByFunction[slot] > 0)
            {
                ours[S7PolicyReplay.FunctionWord(slot)] = replay.ByFunction[slot];
            }
        }
        Assert.NotEmpty(truth.Requests);
        Assert.Equal(truth.Requests, ours);
        Assert.Equal(truth.Requests.Values.Sum(), replay.Requests);
        Assert.Equal(truth.ClientAnswers, replay.ClientAnswers);
        Assert.Equal(truth.Responses, replay.Responses);
        Assert.Equal(0, replay.Malformed);
        Assert.Equal(0, replay.Scanner.Unsynchronised);
        // Everything is allowed by a policy naming every function: what is not allowed would be out of spec.
        Assert.Equal(replay.Requests, replay.Allowed);
        Assert.Equal(0, replay.Denied);
    }
}
