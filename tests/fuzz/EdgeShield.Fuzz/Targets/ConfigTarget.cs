using System.Text;
using EdgeShield.Policy;

namespace EdgeShield.Fuzz;

/// <summary>
/// Configuration text through <see cref="ConfigLoader.LoadText(string, string)"/>: whatever the text, the
/// loader returns diagnostics (with a position) and never throws; a config comes back only without errors.
/// </summary>
internal static class ConfigTarget
{
    private const string FileName = "fuzz.yaml";

    public static void Run(byte[] input)
    {
        var result = ConfigLoader.LoadText(Encoding.UTF8.GetString(input), FileName);
        Invariant.That(result.HasErrors == (result.Config is null), "a config with errors, or no config and no error");
        foreach (var diagnostic in result.Diagnostics)
        {
            Invariant.That(diagnostic.File == FileName, "a diagnostic for another file");
            Invariant.That(diagnostic.Line >= 1 && diagnostic.Column >= 1, "a diagnostic without a position");
            Invariant.That(!string.IsNullOrWhiteSpace(diagnostic.Message), "a diagnostic without a message");
        }
    }
}
