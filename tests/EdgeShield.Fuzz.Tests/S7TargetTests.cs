using System.Buffers;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Fuzz.Tests;

/// <summary>
/// The S7 targets (<c>s7stream</c>, <c>s7response</c>) beyond the corpus replay: their seeds are the
/// peers' traffic and cover what it does, and every cut and bit flip of that traffic keeps every invariant.
/// </summary>
public class S7TargetTests
{
    private static readonly string Corpus = CorpusReplayTests.CorpusDirectory;

    private static IEnumerable<string> SeedFiles(string target) =>
        Directory.GetFiles(Path.Combine(Corpus, target), "seed-*").Order(StringComparer.Ordinal);

    [Fact]
    public void S7Seeds_AreWhatTheSeedCommandMakesFromTheCaptures()
    {
        string repository = Path.GetFullPath(Path.Combine(Corpus, "..", "..", ".."));
        string made = Path.Combine(Path.GetTempPath(), "edgeshield-seeds-" + Guid.NewGuid().ToString("N"));
        try
        {
            Assert.Equal(0, Seeds.Write(repository, made));
            foreach (string target in new[] { "s7stream", "s7response" })
            {
                var committed = SeedFiles(target).ToList();
                Assert.True(committed.Count >= 20, $"{target}: only {committed.Count} seeds");
                foreach (string file in committed)
                {
                    string again = Path.Combine(made, target, Path.GetFileName(file));
                    Assert.True(File.Exists(again), $"{target}/{Path.GetFileName(file)} is not made by the seed command from tests/data/s7comm");
                    Assert.Equal(File.ReadAllBytes(again), File.ReadAllBytes(file));
                }
            }
        }
        finally
        {
            Directory.Delete(made, recursive: true);
        }
    }

    [Fact]
    public void S7ResponseSeeds_CoverTheFunctionsThePeersUse()
    {
        var functions = new HashSet<S7Function>();
        var statuses = new HashSet<S7ResponseStatus>();
        foreach (string file in SeedFiles("s7response"))
        {
            byte[] input = File.ReadAllBytes(file);
            int split = S7ResponseTarget.RequestLength(input);
            var request = S7Pdu.ParseRequest(input.AsSpan(0, split));
            Assert.True(request.Status != S7RequestStatus.Malformed, $"{Path.GetFileName(file)}: the request does not parse ({request.Error})");
            functions.Add(request.Function);
            statuses.Add(S7Pdu.CheckResponse(input.AsSpan(split), request.Expectation(ushort.MaxValue), out _));
        }
        S7Function[] expected =
        [
            S7Function.SetupCommunication, S7Function.ReadVar, S7Function.WriteVar, S7Function.PlcStop, S7Function.PlcControl,
            S7Function.RequestDownload, S7Function.DownloadBlock, S7Function.DownloadEnded, S7Function.StartUpload, S7Function.Upload,
            S7Function.EndUpload, S7Function.BlockFunctions, S7Function.CpuFunctions, S7Function.Security, S7Function.TimeRead, S7Function.TimeSet,
        ];
        Assert.Empty(expected.Except(functions));
        Assert.Contains(S7ResponseStatus.Normal, statuses);
        Assert.Contains(S7ResponseStatus.Error, statuses);
    }

    [Fact]
    public void S7StreamSeeds_HoldConnectsAndFragmentedPdus()
    {
        int connects = 0, fragments = 0, pdus = 0;
        foreach (string file in SeedFiles("s7stream"))
        {
            ReadOnlySpan<byte> rest = File.ReadAllBytes(file);
            while (TpktFramer.TryReadFrame(rest, out var tpdu, out int consumed, out _) == OperationStatus.Done)
            {
                connects += tpdu.Type == CotpTpduType.ConnectionRequest ? 1 : 0;
                fragments += tpdu.Type == CotpTpduType.Data && !tpdu.EndOfTransmission ? 1 : 0;
                pdus += tpdu.Type == CotpTpduType.Data && tpdu.EndOfTransmission ? 1 : 0;
                rest = rest[consumed..];
            }
            Assert.True(rest.IsEmpty, $"{Path.GetFileName(file)} ends inside a TPKT packet");
        }
        Assert.True(connects >= 20 && fragments >= 10 && pdus >= 100, $"{connects} CRs, {fragments} fragments without EOT, {pdus} PDUs");
    }

    [Theory]
    [InlineData("s7stream")]
    [InlineData("s7response")]
    public void S7Target_EveryCutOfEverySeed_KeepsEveryInvariant(string target)
    {
        // A stream cut anywhere (a TPKT packet or a fragment arriving in part), an answer cut anywhere.
        foreach (string file in SeedFiles(target))
        {
            byte[] input = File.ReadAllBytes(file);
            for (int length = 0; length < input.Length; length++)
            {
                FuzzTargets.Run(target, input[..length]);
            }
        }
    }

    [Theory]
    [InlineData("s7stream")]
    [InlineData("s7response")]
    public void S7Target_EveryBitFlipOfTheSmallSeeds_KeepsEveryInvariant(string target)
    {
        // Every single bit flipped in the seeds of at most 256 bytes: lengths, TSAPs, function codes, items, REFs.
        int runs = 0;
        foreach (string file in SeedFiles(target))
        {
            byte[] input = File.ReadAllBytes(file);
            if (input.Length > 256)
            {
                continue;
            }
            for (int bit = 0; bit < input.Length * 8; bit++)
            {
                byte[] flipped = (byte[])input.Clone();
                flipped[bit / 8] ^= (byte)(1 << (bit % 8));
                FuzzTargets.Run(target, flipped);
                runs++;
            }
        }
        Assert.True(runs > 10_000, $"only {runs} flips");
    }
}
