namespace EdgeShield.Fuzz.Tests;

/// <summary>Every corpus input (seeds from real captures and configs, and every crash AFL ever found) through the fuzz targets.</summary>
public class CorpusReplayTests
{
    internal static readonly string CorpusDirectory = FindCorpus();

    public static TheoryData<string, string> CorpusFiles()
    {
        var data = new TheoryData<string, string>();
        foreach (string target in FuzzTargets.Names)
        {
            string dir = Path.Combine(CorpusDirectory, target);
            if (!Directory.Exists(dir))
            {
                continue;
            }
            foreach (string file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
            {
                data.Add(target, Path.GetFileName(file));
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(CorpusFiles))]
    public void Target_CorpusInput_KeepsEveryInvariant(string target, string file) =>
        FuzzTargets.Run(target, File.ReadAllBytes(Path.Combine(CorpusDirectory, target, file)));

    [Fact]
    public void Corpus_EveryTarget_HasSeeds()
    {
        foreach (string target in FuzzTargets.Names)
        {
            string dir = Path.Combine(CorpusDirectory, target);
            Assert.True(Directory.Exists(dir) && Directory.GetFiles(dir).Length > 0, $"no corpus for {target} in {dir}");
        }
    }

    [Fact]
    public void Corpus_Regressions_AreKept()
    {
        // Inputs that once broke a parser stay in the corpus (named regression-*), replayed above.
        int regressions = 0;
        foreach (string target in FuzzTargets.Names)
        {
            string dir = Path.Combine(CorpusDirectory, target);
            regressions += Directory.Exists(dir) ? Directory.GetFiles(dir, "regression-*").Length : 0;
        }
        Assert.True(regressions > 0, "the fuzzers' past findings are missing from the corpus");
    }

    [Fact]
    public void Run_UnknownTarget_IsAnArgumentError() =>
        Assert.Throws<ArgumentException>(() => FuzzTargets.Run("no-such-parser", [1, 2, 3]));

    [Fact]
    public void NoAllocation_AnAllocatingFramePath_IsAViolation()
    {
        // The allocation invariant must be able to fail: a path that allocates on every run is caught.
        var e = Assert.Throws<InvariantViolationException>(() =>
            NoAllocation.Check([1, 2, 3], static input => GC.KeepAlive(input.ToArray()), "a copying parser"));
        Assert.Contains("allocated", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NoAllocation_AFramePathThatAllocatesOnlyOnce_IsWarmUp()
    {
        int runs = 0;
        NoAllocation.CheckState(new int[1], counter =>
        {
            if (counter[0]++ == 0)
            {
                GC.KeepAlive(new object());
            }
            runs++;
        }, "a path with a one-time initialisation");
        Assert.Equal(2, runs);
    }

    [Fact]
    public void IsSliceAt_MemoryBesideTheInput_IsNotASlice()
    {
        var buffer = new byte[16];
        Assert.True(Invariant.IsSliceAt(buffer.AsSpan(0, 8), buffer.AsSpan(0, 4), 0));
        Assert.False(Invariant.IsSliceAt(buffer.AsSpan(0, 8), buffer.AsSpan(4, 8), 4));
        Assert.False(Invariant.IsSliceAt(buffer.AsSpan(0, 8), new byte[4], 0));
    }

    private static string FindCorpus()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fuzz", "corpus");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException("tests/fuzz/corpus not found above " + AppContext.BaseDirectory);
    }
}
