using System.Globalization;
using EdgeShield.Policy;
using EdgeShield.Policy.Signing;

namespace EdgeShield.Service;

/// <summary><c>run --trust DIR --state DIR</c>: where the trusted public keys are, and where the last accepted version is kept.</summary>
/// <param name="TrustDirectory">Every <c>*.pem</c> public key there may sign the config (read anew at each load).</param>
/// <param name="StateDirectory">Holds <c>config-version</c> (<see cref="ConfigVersionFile"/>); created when missing.</param>
public sealed record ConfigTrustOptions(string TrustDirectory, string StateDirectory);

/// <summary>What the audit events of a load say about where the config came from.</summary>
/// <param name="Version">Its <c>version:</c>, or null.</param>
/// <param name="SignerKeyId">The key id of the trusted key that signed it, or null when it was not checked (no <c>--trust</c>).</param>
public sealed record ConfigProvenance(long? Version, string? SignerKeyId)
{
    /// <summary><c>version 7, signer 3f9c…</c> or <c>version none, unsigned</c>.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"version {(Version is { } v ? v.ToString(CultureInfo.InvariantCulture) : "none")}, {(SignerKeyId is { } k ? "signer " + k : "unsigned")}");

    /// <summary>A config loaded without <c>--trust</c>.</summary>
    public static ConfigProvenance Unchecked(EdgeShieldConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new(config.Version, null);
    }
}

/// <summary>
/// The gate a config passes under <c>run --trust</c>, at start and at every reload (docs/SIGNING.md): its
/// <c>FILE.sig</c> verifies with a key of the trust directory over exactly the bytes that were parsed, and
/// its version is not lower than the last one accepted (kept in the state directory, so a rollback is
/// refused across restarts too). An accepted config's version is recorded before it is applied.
/// </summary>
public static class ConfigAdmission
{
    /// <summary>How long a reload waits for a <c>FILE.sig</c> that matches the settled file (the signature is often copied just after the file).</summary>
    public static readonly TimeSpan SignatureWait = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan SignaturePoll = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Admits <paramref name="config"/>, parsed from exactly <paramref name="bytes"/> of <paramref name="path"/>;
    /// false with why (<paramref name="refusal"/> begins with unsigned, bad signature, unknown signer, rollback…)
    /// otherwise. Waits up to <paramref name="waitForSignature"/> for a <c>FILE.sig</c> whose hash is the file's.
    /// <paramref name="warnings"/> gets the trust directory's skipped files.
    /// </summary>
    public static bool TryAdmit(ConfigTrustOptions trust, string path, ReadOnlySpan<byte> bytes, EdgeShieldConfig config, TimeSpan waitForSignature,
        Action<string> warnings, out ConfigProvenance provenance, out string refusal)
    {
        ArgumentNullException.ThrowIfNull(trust);
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(warnings);
        provenance = ConfigProvenance.Unchecked(config);
        if (!TrustStore.TryLoad(trust.TrustDirectory, out var store, out var problem))
        {
            refusal = $"no trust: {problem}";
            return false;
        }
        using var trusted = store;
        foreach (var warning in store.Warnings)
        {
            warnings(warning);
        }
        string signaturePath = SignatureCheck.SignaturePath(path);
        string sha256 = config.Hash;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        string? text;
        while (true)
        {
            if (!SignatureCheck.TryReadSignatureFile(signaturePath, out text, out problem))
            {
                refusal = $"unreadable signature: {problem}";
                return false;
            }
            // The signer writes FILE.sig after FILE: wait (bounded) until it is the signature of these bytes.
            bool matches = text is not null && ConfigSignature.TryParse(text, out var parsed, out _) && parsed.Sha256 == sha256;
            if (matches || clock.Elapsed >= waitForSignature)
            {
                break;
            }
            Thread.Sleep(SignaturePoll);
        }
        var verdict = SignatureCheck.Verify(store, bytes, config.Version, text);
        if (!verdict.IsValid)
        {
            refusal = $"{verdict.Message} ({signaturePath})";
            return false;
        }
        long version = verdict.Version!.Value;
        if (!ConfigVersionFile.TryRead(trust.StateDirectory, out var last, out problem))
        {
            refusal = problem;
            return false;
        }
        if (last is { } floor && version < floor.Version)
        {
            refusal = string.Create(CultureInfo.InvariantCulture,
                $"rollback from version {floor.Version} to {version} refused: {ConfigVersionFile.PathIn(trust.StateDirectory)} says version {floor.Version} (sha256 {floor.Sha256}) was accepted; sign the config with a version of at least {floor.Version}");
            return false;
        }
        if (!ConfigVersionFile.TryWrite(trust.StateDirectory, new AcceptedVersion(version, verdict.Sha256, verdict.KeyId!), out problem))
        {
            refusal = $"cannot record the accepted version, so rollback could not be refused later: {problem}";
            return false;
        }
        provenance = new ConfigProvenance(version, verdict.KeyId);
        refusal = "";
        return true;
    }
}

/// <summary>The last config accepted under <c>--trust</c>.</summary>
public sealed record AcceptedVersion(long Version, string Sha256, string KeyId);

/// <summary>
/// <c>STATE/config-version</c>: the last config accepted under <c>--trust</c>, as <c>key: value</c> lines
/// (<c>version:</c>, <c>sha256:</c>, <c>key-id:</c>). Written atomically (a temporary file, fsync, rename), so a
/// power cut leaves the old or the new one. A file that is there but unreadable or damaged refuses every
/// load: it is what stops a rollback, so nothing guesses past it.
/// </summary>
public static class ConfigVersionFile
{
    public const string FileName = "config-version";

    public static string PathIn(string stateDirectory) => Path.Combine(stateDirectory, FileName);

    /// <summary>True with null when there is none yet; false with why when it is there but cannot be trusted.</summary>
    public static bool TryRead(string stateDirectory, out AcceptedVersion? accepted, out string problem)
    {
        string path = PathIn(stateDirectory);
        accepted = null;
        problem = "";
        string text;
        try
        {
            if (!File.Exists(path))
            {
                return true;
            }
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problem = $"cannot read {path}: {e.Message}; it holds the last accepted config version, so nothing is loaded without it";
            return false;
        }
        long? version = null;
        string sha256 = "", keyId = "";
        foreach (var raw in text.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line.StartsWith("version: ", StringComparison.Ordinal)
                && long.TryParse(line.AsSpan(9), NumberStyles.None, CultureInfo.InvariantCulture, out var v))
            {
                version = v;
            }
            else if (line.StartsWith("sha256: ", StringComparison.Ordinal))
            {
                sha256 = line[8..];
            }
            else if (line.StartsWith("key-id: ", StringComparison.Ordinal))
            {
                keyId = line[8..];
            }
        }
        if (version is null)
        {
            problem = $"{path} is damaged (no 'version: N' line); it holds the last accepted config version, so nothing is loaded: restore it, or remove it knowing that rollback protection starts again from the next config";
            return false;
        }
        accepted = new AcceptedVersion(version.Value, sha256, keyId);
        return true;
    }

    /// <summary>Records <paramref name="accepted"/>, creating the directory (0750) when missing.</summary>
    public static bool TryWrite(string stateDirectory, AcceptedVersion accepted, out string problem)
    {
        ArgumentNullException.ThrowIfNull(accepted);
        string path = PathIn(stateDirectory);
        string temporary = path + ".tmp";
        if (OperatingSystem.IsWindows())
        {
            problem = "the gateway runs on Linux only";
            return false;
        }
        try
        {
            if (!Directory.Exists(stateDirectory))
            {
                Directory.CreateDirectory(stateDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
            }
            string text = string.Create(CultureInfo.InvariantCulture,
                $"# the last config accepted under --trust; a lower version is refused (docs/SIGNING.md)\nversion: {accepted.Version}\nsha256: {accepted.Sha256}\nkey-id: {accepted.KeyId}\n");
            using (var stream = new FileStream(temporary, new FileStreamOptions
            {
                Mode = FileMode.Create,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead,
            }))
            {
                stream.Write(System.Text.Encoding.ASCII.GetBytes(text));
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
            problem = "";
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            problem = $"cannot write {path}: {e.Message}";
            try
            {
                File.Delete(temporary);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
                // the temporary file is overwritten by the next attempt
            }
            return false;
        }
    }
}
