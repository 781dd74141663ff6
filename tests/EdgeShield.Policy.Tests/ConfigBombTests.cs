using System.Diagnostics;
using System.Text;

namespace EdgeShield.Policy.Tests;

/// <summary>
/// Issue 10 item 3: a 100 000-deep nested file overflowed the stack (check crashed, SIGHUP aborted the
/// process); 479 bytes of nested aliases expanded to ~2.3 GB before the file was found invalid. Depth,
/// alias expansion and file size are bounded; each is a <c>file:line:col: error</c>, quickly and in
/// little memory.
/// </summary>
public class ConfigBombTests
{
    /// <summary>The classic "billion laughs" in YAML: nine levels of nine aliases, under 512 bytes, 9^9 "lol"s expanded.</summary>
    internal const string BillionLaughs = """
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

    internal static string DeepNesting(int depth) => "policies: " + new string('[', depth) + new string(']', depth) + "\n";

    private static (ConfigLoadResult Result, long Ms, long Bytes) Timed(Func<ConfigLoadResult> load)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        var result = load();
        return (result, clock.ElapsedMilliseconds, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void DeepNesting_100000_IsAnErrorAtTheLevelPastTheBound()
    {
        var (result, ms, bytes) = Timed(() => ConfigLoader.LoadText(DeepNesting(100_000), "deep.yaml"));
        Assert.True(result.HasErrors);
        Assert.Null(result.Config);
        // The root mapping is level 0; the 64th '[' (column 10 + 64) would be level 64.
        Assert.Equal("deep.yaml:1:74: error: the configuration nests lists and mappings deeper than 64 levels here; no EdgeShield key needs more than a few", result.Diagnostics[0].ToString());
        Assert.InRange(ms, 0, 5_000);
        Assert.InRange(bytes, 0, 64L * 1024 * 1024);
    }

    [Fact]
    public void DepthAtTheBound_IsNotALimitError()
    {
        var result = ConfigLoader.LoadText(DeepNesting(63), "deep.yaml");
        Assert.DoesNotContain(result.Diagnostics, d => d.Message.Contains("deeper than", StringComparison.Ordinal));
    }

    [Fact]
    public void BillionLaughs_IsAnErrorAtTheAliasThatCrossesTheBound_InLittleTimeAndMemory()
    {
        Assert.InRange(Encoding.UTF8.GetByteCount(BillionLaughs), 300, 512);
        var (result, ms, bytes) = Timed(() => ConfigLoader.LoadText(BillionLaughs, "laughs.yaml"));
        Assert.True(result.HasErrors);
        var error = result.Diagnostics[0].ToString();
        Assert.Matches(@"^laughs\.yaml:7:\d+: error: with its aliases expanded the configuration exceeds 8 Mi nodes and characters", error);
        Assert.InRange(ms, 0, 5_000);
        Assert.InRange(bytes, 0, 64L * 1024 * 1024);
    }

    [Fact]
    public void AliasInsideItsOwnAnchor_IsAnError_NotAnEndlessWalk()
    {
        var result = ConfigLoader.LoadText("policies: &p\n  plc1: *p\n", "cycle.yaml");
        Assert.Equal("cycle.yaml:2:9: error: alias '*p' is inside the node its anchor names: the configuration would contain itself", result.Diagnostics[0].ToString());
    }

    [Fact]
    public void AFewAliases_StillLoad()
    {
        var result = ConfigLoader.LoadText("policies:\n  a: &p { mode: enforce, rules: [ { function: read } ] }\n  b: *p\n", "ok.yaml");
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        Assert.Equal(2, result.Config!.Policies.Count);
    }

    [Fact]
    public void OversizeFile_IsAnErrorAtItsStart_WithoutBeingParsed()
    {
        var path = Path.Combine(Path.GetTempPath(), $"edgeshield-big-{Guid.NewGuid():N}.yaml");
        try
        {
            // Valid YAML all the way: a comment line repeated past 4 MiB.
            var line = "# " + new string('x', 1021) + "\n";
            using (var writer = new StreamWriter(path))
            {
                for (var i = 0; i <= ConfigLoader.MaxFileBytes / line.Length; i++)
                {
                    writer.Write(line);
                }
            }
            var (result, ms, _) = Timed(() => ConfigLoader.Load(path));
            Assert.Equal($"{path}:1:1: error: the file has {new FileInfo(path).Length} bytes or more; a configuration may be at most 4 MiB (4194304 bytes)", result.Diagnostics[0].ToString());
            Assert.InRange(ms, 0, 5_000);
            Assert.True(ConfigLoader.LoadBytes(File.ReadAllBytes(path), path, new MaintenanceState()).HasErrors);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
