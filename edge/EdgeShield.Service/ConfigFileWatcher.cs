namespace EdgeShield.Service;

/// <summary>
/// Reloads the configuration when its file changes (as SIGHUP does): inotify through
/// <see cref="FileSystemWatcher"/> on the file's directory, so that editors that save by writing a
/// temporary file and renaming it over the original are seen too. Events are debounced (a save is
/// often several writes); the reload then waits until the file has settled (<see cref="SettledConfigFile"/>)
/// and does nothing when its SHA-256 equals the running policy's (a touch, or an editor rewriting the same bytes).
/// </summary>
internal sealed class ConfigFileWatcher : IDisposable
{
    /// <summary>Quiet time after the last file event before the file is read.</summary>
    public static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(300);

    private readonly FileSystemWatcher _watcher;
    private readonly Timer _quiet;
    private readonly string _path;
    private readonly string? _signaturePath;
    private readonly Action _reload;

    /// <param name="path">The config file.</param>
    /// <param name="reload">What a change does.</param>
    /// <param name="signatureToo">Also watch <c>FILE.sig</c> (under <c>--trust</c>): a signature copied after
    /// its file, later than a reload waits for it, still gets the file loaded.</param>
    public ConfigFileWatcher(string path, Action reload, bool signatureToo = false)
    {
        _path = Path.GetFullPath(path);
        _signaturePath = signatureToo ? _path + ".sig" : null;
        _reload = reload;
        _quiet = new Timer(_ => OnQuiet(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _watcher = new FileSystemWatcher(Path.GetDirectoryName(_path)!, Path.GetFileName(_path))
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        if (_signaturePath is not null)
        {
            _watcher.Filters.Add(Path.GetFileName(_signaturePath));
        }
        _watcher.Changed += (_, _) => Poke();
        _watcher.Created += (_, _) => Poke();
        _watcher.Renamed += (_, e) =>
        {
            if (string.Equals(e.FullPath, _path, StringComparison.Ordinal) || string.Equals(e.FullPath, _signaturePath, StringComparison.Ordinal))
            {
                Poke();
            }
        };
        _watcher.EnableRaisingEvents = true;
    }

    private void Poke() => _quiet.Change(Debounce, Timeout.InfiniteTimeSpan);

    private void OnQuiet() => _reload();

    public void Dispose()
    {
        _watcher.Dispose();
        _quiet.Dispose();
    }
}
