using System.Security.Cryptography;
using System.Text;

namespace EdgeShield.Policy.Signing;

/// <summary>
/// The public keys a gateway trusts to sign its configs: every <c>*.pem</c> of one directory
/// (<c>run --trust DIR</c>, /etc/edgeshield/trust on a gateway), which lives outside the config: a config
/// never names its own trusted keys. Read anew at every load, so that adding or removing a key file
/// and a reload rotates trust without a restart.
/// </summary>
public sealed class TrustStore : IDisposable
{
    private readonly Dictionary<string, (ECDsa Key, string File)> _keys;

    private TrustStore(string directory, Dictionary<string, (ECDsa, string)> keys, List<string> warnings)
    {
        Directory = directory;
        _keys = keys;
        Warnings = warnings;
    }

    private const UnixFileMode WritableByOthers = UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;

    /// <summary>The directory, as given.</summary>
    public string Directory { get; }

    /// <summary>Files skipped, each with why (not a P-256 public key, a private key, unreadable).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>How many keys are trusted.</summary>
    public int Count => _keys.Count;

    /// <summary>The trusted key of <paramref name="keyId"/> and the file it came from.</summary>
    public bool TryGet(string keyId, out ECDsa key, out string file)
    {
        if (_keys.TryGetValue(keyId, out var entry))
        {
            (key, file) = entry;
            return true;
        }
        key = null!;
        file = "";
        return false;
    }

    /// <summary>
    /// Reads every <c>*.pem</c> of <paramref name="directory"/> (not its subdirectories). False when the
    /// directory itself cannot be read or is writable by its group or others; a file that is not a P-256
    /// public key, or that its group or others may write, is skipped with a warning.
    /// </summary>
    public static bool TryLoad(string directory, out TrustStore store, out string problem)
    {
        ArgumentNullException.ThrowIfNull(directory);
        store = null!;
        string[] files;
        try
        {
            // As ssh's StrictModes: a directory anyone but its owner may write to trusts whoever wrote last.
            if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(directory) & WritableByOthers) != 0)
            {
                problem = $"the trust directory {directory} is writable by its group or by others; make it the owner's alone (chmod 0755, root's)";
                return false;
            }
            files = System.IO.Directory.GetFiles(directory, "*.pem", SearchOption.TopDirectoryOnly);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            problem = $"cannot read the trust directory {directory}: {e.Message}";
            return false;
        }
        Array.Sort(files, StringComparer.Ordinal);
        var keys = new Dictionary<string, (ECDsa, string)>(StringComparer.Ordinal);
        var warnings = new List<string>();
        foreach (var file in files)
        {
            string text;
            try
            {
                var info = new FileInfo(file);
                if (!OperatingSystem.IsWindows() && (info.UnixFileMode & WritableByOthers) != 0)
                {
                    warnings.Add($"{file}: skipped: writable by its group or by others (chmod 0644)");
                    continue;
                }
                if (info.Length > 16 * 1024)
                {
                    warnings.Add($"{file}: skipped: {info.Length} bytes is too big for a public key");
                    continue;
                }
                text = File.ReadAllText(file, Encoding.ASCII);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                warnings.Add($"{file}: skipped: {e.Message}");
                continue;
            }
            if (!PolicyKeys.TryImportPublic(text, out var key, out var why))
            {
                warnings.Add($"{file}: skipped: {why}");
                continue;
            }
            string id = PolicyKeys.KeyId(key);
            if (!keys.TryAdd(id, (key, file)))
            {
                key.Dispose(); // the same key in two files: the first (by name) names it
            }
        }
        store = new TrustStore(directory, keys, warnings);
        problem = "";
        return true;
    }

    public void Dispose()
    {
        foreach (var (key, _) in _keys.Values)
        {
            key.Dispose();
        }
        _keys.Clear();
    }
}
