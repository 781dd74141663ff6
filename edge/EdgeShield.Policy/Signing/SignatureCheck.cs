using System.Security.Cryptography;
using System.Text;

namespace EdgeShield.Policy.Signing;

/// <summary>What the check of a config's signature found. The default is the safe one: not valid.</summary>
public enum SignatureStatus : byte
{
    /// <summary>No <c>FILE.sig</c>.</summary>
    Missing = 0,
    /// <summary><c>FILE.sig</c> is not a signature file (<see cref="ConfigSignature.TryParse"/>).</summary>
    Malformed,
    /// <summary><c>FILE.sig</c> is for other bytes: the file changed since it was signed (or the signature is for another file).</summary>
    HashMismatch,
    /// <summary>Signed by a key that is not in the trust directory.</summary>
    UnknownSigner,
    /// <summary>The ECDSA signature does not verify with the key it names.</summary>
    BadSignature,
    /// <summary>The signed version is not the file's <c>version:</c>.</summary>
    VersionMismatch,
    /// <summary>Valid: a trusted key signed exactly these bytes at this version.</summary>
    Valid,
}

/// <summary>The outcome of <see cref="SignatureCheck.Verify"/>: status, what the signature claims, and a sentence for people.</summary>
public sealed record SignatureVerdict(SignatureStatus Status, string Sha256, string? KeyId, long? Version, string? KeyFile, string Message)
{
    public bool IsValid => Status == SignatureStatus.Valid;

    /// <summary>The word of the status for audit events: unsigned, malformed-signature, other-bytes, unknown-signer, bad-signature, version-mismatch, valid.</summary>
    public string Word => Status switch
    {
        SignatureStatus.Valid => "valid",
        SignatureStatus.Malformed => "malformed-signature",
        SignatureStatus.HashMismatch => "other-bytes",
        SignatureStatus.UnknownSigner => "unknown-signer",
        SignatureStatus.BadSignature => "bad-signature",
        SignatureStatus.VersionMismatch => "version-mismatch",
        _ => "unsigned",
    };
}

/// <summary>Checks a config's detached signature (<c>FILE.sig</c>) against a <see cref="TrustStore"/>.</summary>
public static class SignatureCheck
{
    /// <summary>The signature file of <paramref name="configPath"/>: the same path with <c>.sig</c> appended.</summary>
    public static string SignaturePath(string configPath) => configPath + ".sig";

    /// <summary>
    /// Reads <c>FILE.sig</c>: true with <paramref name="text"/> null when there is none, true with its text,
    /// or false with the reason when it exists but cannot be read or is larger than any signature (<see cref="ConfigSignature.MaxFileBytes"/>).
    /// </summary>
    public static bool TryReadSignatureFile(string signaturePath, out string? text, out string problem)
    {
        ArgumentNullException.ThrowIfNull(signaturePath);
        text = null;
        problem = "";
        try
        {
            using var stream = new FileStream(signaturePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var buffer = new byte[ConfigSignature.MaxFileBytes + 1];
            int read = 0, n;
            while (read < buffer.Length && (n = stream.Read(buffer, read, buffer.Length - read)) > 0)
            {
                read += n;
            }
            if (read > ConfigSignature.MaxFileBytes)
            {
                problem = $"{signaturePath} is larger than any signature file ({ConfigSignature.MaxFileBytes} bytes at most)";
                return false;
            }
            text = Encoding.UTF8.GetString(buffer, 0, read);
            return true;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            problem = $"cannot read {signaturePath}: {e.Message}";
            return false;
        }
    }

    /// <summary>
    /// Judges <paramref name="signatureText"/> (null: no <c>FILE.sig</c>) for exactly <paramref name="file"/>,
    /// whose parsed <c>version:</c> is <paramref name="fileVersion"/>: the hash of every byte must be the signed
    /// one, the signer a key of <paramref name="trust"/>, the ECDSA signature valid, and the signed version the file's.
    /// </summary>
    public static SignatureVerdict Verify(TrustStore trust, ReadOnlySpan<byte> file, long? fileVersion, string? signatureText)
    {
        ArgumentNullException.ThrowIfNull(trust);
        string sha256 = Convert.ToHexStringLower(SHA256.HashData(file));
        if (signatureText is null)
        {
            return new(SignatureStatus.Missing, sha256, null, null, null, "unsigned: there is no FILE.sig (sign it with 'edgeshield policy sign --key KEY FILE' on the signing machine)");
        }
        if (!ConfigSignature.TryParse(signatureText, out var signature, out var problem))
        {
            return new(SignatureStatus.Malformed, sha256, null, null, null, $"malformed signature file: {problem}");
        }
        if (signature.Sha256 != sha256)
        {
            return new(SignatureStatus.HashMismatch, sha256, signature.KeyId, signature.Version, null,
                $"the signature is for other bytes (signed sha256 {signature.Sha256}, the file's is {sha256}): the file changed since it was signed");
        }
        if (!trust.TryGet(signature.KeyId, out var key, out var keyFile))
        {
            return new(SignatureStatus.UnknownSigner, sha256, signature.KeyId, signature.Version, null,
                $"unknown signer: key {signature.KeyId} is not among the {trust.Count} trusted key{(trust.Count == 1 ? "" : "s")} of {trust.Directory}");
        }
        if (!signature.VerifiedBy(key))
        {
            return new(SignatureStatus.BadSignature, sha256, signature.KeyId, signature.Version, keyFile,
                $"bad signature: the signature does not verify with key {signature.KeyId} ({keyFile})");
        }
        if (fileVersion != signature.Version)
        {
            string found = fileVersion is { } v ? v.ToString(System.Globalization.CultureInfo.InvariantCulture) : "none";
            return new(SignatureStatus.VersionMismatch, sha256, signature.KeyId, signature.Version, keyFile,
                $"version mismatch: signed as version {signature.Version}, the file's version: is {found}");
        }
        return new(SignatureStatus.Valid, sha256, signature.KeyId, signature.Version, keyFile,
            $"valid signature by key {signature.KeyId} ({keyFile}), version {signature.Version}, sha256 {sha256}");
    }
}
