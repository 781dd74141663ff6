using System.Buffers;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Fuzz.Tests;

/// <summary>
/// The IEC 104 target (<c>iec104stream</c>) beyond the corpus replay: its seeds are the captures' streams and the
/// crafted cases, they reach every layer, and every cut and bit flip of them keeps every invariant.
/// </summary>
public class Iec104TargetTests
{
    private const string Target = "iec104stream";
    private static readonly string Corpus = CorpusReplayTests.CorpusDirectory;

    private static IEnumerable<string> SeedFiles() =>
        Directory.GetFiles(Path.Combine(Corpus, Target), "seed-*").Order(StringComparer.Ordinal);

    [Fact]
    public void Iec104Seeds_AreWhatTheSeedCommandMakes()
    {
        string repository = Path.GetFullPath(Path.Combine(Corpus, "..", "..", ".."));
        string made = Path.Combine(Path.GetTempPath(), "edgeshield-seeds-" + Guid.NewGuid().ToString("N"));
        try
        {
            Assert.Equal(0, Seeds.Write(repository, made));
            var committed = SeedFiles().Select(Path.GetFileName).ToList();
            var again = Directory.GetFiles(Path.Combine(made, Target)).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(again, committed);
            foreach (string? file in committed)
            {
                Assert.Equal(File.ReadAllBytes(Path.Combine(made, Target, file!)), File.ReadAllBytes(Path.Combine(Corpus, Target, file!)));
            }
        }
        finally
        {
            Directory.Delete(made, recursive: true);
        }
    }

    [Fact]
    public void Iec104Seeds_ReachEveryFormatAndRefusal()
    {
        var formats = new HashSet<Iec104Format>();
        var types = new HashSet<byte>();
        var errors = new HashSet<Iec104FrameError>();
        foreach (string file in SeedFiles())
        {
            ReadOnlySpan<byte> rest = File.ReadAllBytes(file);
            while (Iec104Framer.Instance.TryDelimit(rest, out int consumed, out _) == OperationStatus.Done)
            {
                if (Iec104Apdu.TryParse(rest[..consumed], out var apdu, out var fault))
                {
                    formats.Add(apdu.Format);
                    if (apdu.Format == Iec104Format.I)
                    {
                        if (Iec104Asdu.TryParse(apdu.Asdu, out var asdu, out fault))
                        {
                            types.Add(asdu.Type);
                        }
                        else
                        {
                            errors.Add((Iec104FrameError)fault.Detail);
                        }
                    }
                }
                else
                {
                    errors.Add((Iec104FrameError)fault.Detail);
                }
                rest = rest[consumed..];
            }
        }
        Assert.Equal(3, formats.Count);
        Assert.True(types.Count >= 12, $"only {types.Count} types");
        Assert.Contains(Iec104FrameError.SequenceWithoutBaseIoa, errors);
        Assert.Contains(Iec104FrameError.UFrameSeveralFunctions, errors);
        Assert.Contains(Iec104FrameError.SegmentLengthMismatch, errors);
    }

    [Fact]
    public void Iec104Target_EveryCutOfEverySeed_KeepsEveryInvariant()
    {
        foreach (string file in SeedFiles())
        {
            byte[] input = File.ReadAllBytes(file);
            for (int length = 0; length < input.Length; length++)
            {
                FuzzTargets.Run(Target, input[..length]);
            }
        }
    }

    [Fact]
    public void Iec104Target_EveryBitFlipOfTheSmallSeeds_KeepsEveryInvariant()
    {
        int runs = 0;
        foreach (string file in SeedFiles())
        {
            byte[] input = File.ReadAllBytes(file);
            if (input.Length > 512)
            {
                continue;
            }
            for (int bit = 0; bit < input.Length * 8; bit++)
            {
                byte[] flipped = (byte[])input.Clone();
                flipped[bit / 8] ^= (byte)(1 << (bit % 8));
                FuzzTargets.Run(Target, flipped);
                runs++;
            }
        }
        Assert.True(runs > 10_000, $"only {runs} flips");
    }
}
