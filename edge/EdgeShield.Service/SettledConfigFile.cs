using System.Security.Cryptography;
using EdgeShield.Policy;

namespace EdgeShield.Service;

/// <summary>
/// Reads a configuration file for a reload only once it has stopped changing, so that a file caught
/// while an editor or a script is still writing it in place is never applied (issue 10 item 1: for
/// 1.5 s a rule had lost <c>maintenance</c>, <c>value</c> and <c>rate</c>). The bytes returned are the
/// ones hashed and the ones parsed: nothing reads the file again in between.
/// </summary>
/// <remarks>
/// Settled means: two whole reads <see cref="SettleTime"/> apart are byte for byte the same. 2 s is
/// longer than the pauses of anything that writes a config in place in one go (an editor's save, a
/// script's echo or cat, config management, scp on a slow link: milliseconds to ~1.5 s, the longest being
/// the partial write the issue saw), yet short enough that a reload is still prompt. A writer that stops
/// for longer between pieces cannot be told from a finished one by any wait; that is why the documented
/// way to change a live config is write-and-rename (docs/TOOLING.md): rename is atomic, so the watcher
/// sees either the old file or the whole new one. A file that keeps changing for
/// <see cref="MaxWait"/> is not loaded at all.
/// </remarks>
internal static class SettledConfigFile
{
    public static readonly TimeSpan SettleTime = TimeSpan.FromSeconds(2);
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(30);

    /// <summary>The settled bytes of <paramref name="path"/> and their SHA-256; false with a reason when unreadable, too big or never still.</summary>
    public static bool TryRead(string path, out byte[] bytes, out string sha256, out string problem)
    {
        sha256 = "";
        var clock = System.Diagnostics.Stopwatch.StartNew();
        if (!ConfigLoader.TryReadFile(path, out bytes, out problem))
        {
            return false;
        }
        while (true)
        {
            Thread.Sleep(SettleTime);
            if (!ConfigLoader.TryReadFile(path, out var again, out problem))
            {
                bytes = [];
                return false;
            }
            if (again.AsSpan().SequenceEqual(bytes))
            {
                sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));
                return true;
            }
            bytes = again;
            if (clock.Elapsed >= MaxWait)
            {
                bytes = [];
                problem = $"the file kept changing for {MaxWait.TotalSeconds:0} s; not loaded (replace it by write-and-rename: docs/TOOLING.md)";
                return false;
            }
        }
    }
}
