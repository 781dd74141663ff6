using System.Security.Cryptography;
using System.Text;
using EdgeShield.Policy.Yaml;

namespace EdgeShield.Policy;

/// <summary>
/// Loads an EdgeShield configuration (DESIGN.md "Configuration"): parses the YAML, checks every key
/// and value, compiles the policies, and reports every problem found in one pass. AOT-safe: it walks
/// YamlDotNet's event stream; nothing is bound by reflection.
/// </summary>
public static class ConfigLoader
{
    /// <summary>Loads <paramref name="path"/>. Maintenance rules follow a state that is never armed.</summary>
    public static ConfigLoadResult Load(string path) => Load(path, new MaintenanceState());

    /// <summary>
    /// Largest configuration file accepted (4 MiB): the biggest real policies are tens of KiB. The bound
    /// is checked before the file is read, so a huge file (or a device such as /dev/zero) costs nothing.
    /// </summary>
    public const int MaxFileBytes = 4 * 1024 * 1024;

    /// <summary>Loads <paramref name="path"/>; <c>maintenance: true</c> rules follow <paramref name="maintenance"/>.</summary>
    public static ConfigLoadResult Load(string path, MaintenanceState maintenance)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(maintenance);
        if (!TryReadFile(path, out var bytes, out var problem))
        {
            var bag = new DiagnosticBag(path);
            bag.Error(1, 1, problem);
            return new ConfigLoadResult(null, bag.ToSortedList());
        }
        return LoadCore(bytes, path, maintenance);
    }

    /// <summary>
    /// Loads the exact <paramref name="bytes"/> read from <paramref name="path"/> (a reload parses what it
    /// hashed, not the file as it may be a moment later); <paramref name="path"/> names it in diagnostics.
    /// </summary>
    public static ConfigLoadResult LoadBytes(ReadOnlySpan<byte> bytes, string path, MaintenanceState maintenance)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(maintenance);
        if (bytes.Length > MaxFileBytes)
        {
            var bag = new DiagnosticBag(path);
            bag.Error(1, 1, TooBig(bytes.Length));
            return new ConfigLoadResult(null, bag.ToSortedList());
        }
        return LoadCore(bytes.ToArray(), path, maintenance);
    }

    /// <summary>
    /// Reads the whole file once, refusing one over <see cref="MaxFileBytes"/> without reading it (and one
    /// that grows past it while being read). <paramref name="problem"/> says why when false.
    /// </summary>
    public static bool TryReadFile(string path, out byte[] bytes, out string problem)
    {
        ArgumentNullException.ThrowIfNull(path);
        bytes = [];
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
            if (stream.CanSeek && stream.Length > MaxFileBytes)
            {
                problem = TooBig(stream.Length);
                return false;
            }
            var buffer = new byte[stream.CanSeek ? (int)stream.Length + 1 : 64 * 1024];
            var read = 0;
            while (true)
            {
                if (read == buffer.Length)
                {
                    if (buffer.Length > MaxFileBytes)
                    {
                        problem = TooBig(read);
                        return false;
                    }
                    Array.Resize(ref buffer, Math.Min(MaxFileBytes + 1, buffer.Length * 2));
                }
                var n = stream.Read(buffer, read, buffer.Length - read);
                if (n == 0)
                {
                    break;
                }
                read += n;
            }
            if (read > MaxFileBytes)
            {
                problem = TooBig(read);
                return false;
            }
            bytes = buffer.AsSpan(0, read).ToArray();
            problem = "";
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            problem = $"cannot read the file: {e.Message}";
            return false;
        }
    }

    private static string TooBig(long length) =>
        $"the file has {length.ToString(System.Globalization.CultureInfo.InvariantCulture)} bytes or more; a configuration may be at most {MaxFileBytes / (1024 * 1024)} MiB ({MaxFileBytes.ToString(System.Globalization.CultureInfo.InvariantCulture)} bytes)";

    /// <summary>Loads configuration text; <paramref name="fileName"/> names it in diagnostics. Maintenance rules follow a state that is never armed.</summary>
    public static ConfigLoadResult LoadText(string yaml, string fileName) => LoadText(yaml, fileName, new MaintenanceState());

    /// <summary>Loads configuration text; <paramref name="fileName"/> names it in diagnostics.</summary>
    public static ConfigLoadResult LoadText(string yaml, string fileName, MaintenanceState maintenance)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        ArgumentNullException.ThrowIfNull(fileName);
        ArgumentNullException.ThrowIfNull(maintenance);
        return LoadCore(Encoding.UTF8.GetBytes(yaml), fileName, maintenance);
    }

    private static ConfigLoadResult LoadCore(byte[] bytes, string file, MaintenanceState maintenance)
    {
        var diagnostics = new DiagnosticBag(file);
        string text;
        try
        {
            text = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            diagnostics.Error(1, 1, "the file is not UTF-8 text");
            return new ConfigLoadResult(null, diagnostics.ToSortedList());
        }
        if (text.Length > 0 && text[0] == '\uFEFF')
        {
            text = text[1..];
        }

        var root = YamlTreeReader.Read(text, diagnostics);
        var reader = new ConfigReader(diagnostics, maintenance);
        var config = reader.Read(root, file, Convert.ToHexStringLower(SHA256.HashData(bytes)));
        return new ConfigLoadResult(diagnostics.HasErrors ? null : config, diagnostics.ToSortedList());
    }
}
