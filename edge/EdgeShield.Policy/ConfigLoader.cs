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

    /// <summary>Loads <paramref name="path"/>; <c>maintenance: true</c> rules follow <paramref name="maintenance"/>.</summary>
    public static ConfigLoadResult Load(string path, MaintenanceState maintenance)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(maintenance);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            var bag = new DiagnosticBag(path);
            bag.Error(1, 1, $"cannot read the file: {e.Message}");
            return new ConfigLoadResult(null, bag.ToSortedList());
        }
        return LoadCore(bytes, path, maintenance);
    }

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
