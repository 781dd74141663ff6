using System.Globalization;
using System.Runtime.InteropServices;

namespace EdgeShield.Service;

/// <summary>
/// Whether stdout is connected to the journal: systemd sets <c>JOURNAL_STREAM</c> to the
/// <c>device:inode</c> of the stream it gives the service, and only when stdout's fstat(2) has
/// the same pair is it the journal (a shell redirection or a pipe inherits the variable but not the
/// stream). Only then are priority prefixes (<c>&lt;4&gt;</c> …) written: elsewhere they would be noise.
/// </summary>
public static partial class Journal
{
    /// <summary>True when <c>JOURNAL_STREAM</c> names the stream that file descriptor 1 is.</summary>
    public static bool IsStdout() => Matches(Environment.GetEnvironmentVariable("JOURNAL_STREAM"), 1);

    /// <summary>True when <paramref name="journalStream"/> (<c>device:inode</c>, decimal) is <paramref name="fd"/>'s.</summary>
    public static bool Matches(string? journalStream, int fd)
    {
        if (string.IsNullOrEmpty(journalStream) || !OperatingSystem.IsLinux())
        {
            return false;
        }
        int colon = journalStream.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0
            || !ulong.TryParse(journalStream.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out ulong device)
            || !ulong.TryParse(journalStream.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out ulong inode))
        {
            return false;
        }
        // struct stat begins with st_dev and st_ino (two 64-bit fields) on x86_64 and on aarch64 (the
        // generic layout) alike; the buffer is larger than either whole struct (144 and 128 bytes).
        Span<ulong> stat = stackalloc ulong[32];
        if (FStat(fd, ref MemoryMarshal.GetReference(stat)) != 0)
        {
            return false;
        }
        return stat[0] == device && stat[1] == inode;
    }

    [LibraryImport("libc", EntryPoint = "fstat")]
    private static partial int FStat(int fd, ref ulong stat);
}
