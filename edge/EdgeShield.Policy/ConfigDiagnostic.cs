namespace EdgeShield.Policy;

/// <summary>How bad a configuration problem is. Errors make the whole file unusable (fail closed); warnings do not.</summary>
public enum DiagnosticSeverity : byte
{
    Error = 0,
    Warning,
}

/// <summary>
/// One problem in a configuration file, at a 1-based line and column. <see cref="ToString"/> gives the
/// <c>FILE:LINE:COL: error: message</c> form that <c>edgeshield check</c> prints.
/// </summary>
public readonly record struct ConfigDiagnostic(string File, int Line, int Column, DiagnosticSeverity Severity, string Message)
{
    public override string ToString() =>
        $"{File}:{Line}:{Column}: {(Severity == DiagnosticSeverity.Error ? "error" : "warning")}: {Message}";
}

/// <summary>The outcome of loading a configuration: the config when it is valid, and every problem found.</summary>
public sealed class ConfigLoadResult
{
    internal ConfigLoadResult(EdgeShieldConfig? config, IReadOnlyList<ConfigDiagnostic> diagnostics)
    {
        Config = config;
        Diagnostics = diagnostics;
        var hasErrors = false;
        foreach (var d in diagnostics)
        {
            hasErrors |= d.Severity == DiagnosticSeverity.Error;
        }
        HasErrors = hasErrors;
    }

    /// <summary>The loaded configuration; null when there is any error (fail closed: never half a policy).</summary>
    public EdgeShieldConfig? Config { get; }

    /// <summary>Errors and warnings, ordered by position in the file.</summary>
    public IReadOnlyList<ConfigDiagnostic> Diagnostics { get; }

    /// <summary>True when at least one diagnostic is an error.</summary>
    public bool HasErrors { get; }
}

/// <summary>Collects diagnostics for one file while it is loaded.</summary>
internal sealed class DiagnosticBag(string file)
{
    private readonly List<ConfigDiagnostic> _items = [];

    public string File { get; } = file;

    public bool HasErrors => ErrorCount > 0;

    public int ErrorCount { get; private set; }

    public void Error(int line, int column, string message)
    {
        ErrorCount++;
        _items.Add(new ConfigDiagnostic(File, line, column, DiagnosticSeverity.Error, message));
    }

    public void Warning(int line, int column, string message) =>
        _items.Add(new ConfigDiagnostic(File, line, column, DiagnosticSeverity.Warning, message));

    public void Error(Yaml.YamlNode at, string message) => Error(at.Line, at.Column, message);

    public void Warning(Yaml.YamlNode at, string message) => Warning(at.Line, at.Column, message);

    /// <summary>In file order; problems at the same place keep the order they were found in.</summary>
    public IReadOnlyList<ConfigDiagnostic> ToSortedList()
    {
        var indexed = new List<(ConfigDiagnostic D, int I)>(_items.Count);
        for (var i = 0; i < _items.Count; i++)
        {
            indexed.Add((_items[i], i));
        }
        indexed.Sort(static (a, b) =>
        {
            var c = a.D.Line.CompareTo(b.D.Line);
            if (c == 0) c = a.D.Column.CompareTo(b.D.Column);
            return c != 0 ? c : a.I.CompareTo(b.I);
        });
        var result = new ConfigDiagnostic[indexed.Count];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = indexed[i].D;
        }
        return result;
    }
}
