using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace EdgeShield.Policy.Signing;

/// <summary>
/// A detached signature of a config file, <c>FILE.sig</c> (docs/SIGNING.md). Text, one <c>key: value</c> a line:
/// <code>
/// # EdgeShield config signature (docs/SIGNING.md)
/// format: edgeshield-config-signature-v1
/// key-id: 3f9c…(64 hex: SHA-256 of the signer's DER SubjectPublicKeyInfo)
/// sha256: 8a41…(64 hex: SHA-256 of every byte of FILE)
/// version: 7
/// signature: MEUCIQ…(base64 of the DER ECDSA P-256 signature over <see cref="SignedBytes"/>)
/// </code>
/// The ECDSA signature (SHA-256) is over the canonical bytes of <see cref="SignedBytes"/>, which bind the
/// file's hash, its version and the signer's key id together.
/// </summary>
public sealed record ConfigSignature(string KeyId, string Sha256, long Version, byte[] Signature)
{
    /// <summary>The <c>format:</c> line's value and the first line of <see cref="SignedBytes"/>.</summary>
    public const string Format = "edgeshield-config-signature-v1";

    /// <summary>Largest <c>FILE.sig</c> read (a real one is ~300 bytes).</summary>
    public const int MaxFileBytes = 4096;

    /// <summary>
    /// The bytes that are signed, ASCII with LF line ends, numbers in decimal without sign or leading zeros,
    /// hex in lowercase:
    /// <code>
    /// edgeshield-config-signature-v1\n
    /// key-id: KEYID\n
    /// sha256: SHA256\n
    /// version: VERSION\n
    /// </code>
    /// </summary>
    public static byte[] SignedBytes(string keyId, string sha256, long version)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        ArgumentNullException.ThrowIfNull(sha256);
        return Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"{Format}\nkey-id: {keyId}\nsha256: {sha256}\nversion: {version}\n"));
    }

    /// <summary>Signs <paramref name="file"/> (every byte of it) at <paramref name="version"/> with <paramref name="key"/>.</summary>
    public static ConfigSignature Sign(ECDsa key, ReadOnlySpan<byte> file, long version)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentOutOfRangeException.ThrowIfNegative(version);
        string keyId = PolicyKeys.KeyId(key);
        string sha256 = Convert.ToHexStringLower(SHA256.HashData(file));
        byte[] signature = key.SignData(SignedBytes(keyId, sha256, version), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        return new ConfigSignature(keyId, sha256, version, signature);
    }

    /// <summary>Whether the signature is <paramref name="key"/>'s over <see cref="SignedBytes"/> of this record.</summary>
    public bool VerifiedBy(ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        try
        {
            return key.VerifyData(SignedBytes(KeyId, Sha256, Version), Signature, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        }
        catch (CryptographicException)
        {
            return false; // a DER blob that is not a signature
        }
    }

    /// <summary>The text of <c>FILE.sig</c>.</summary>
    public string ToText() => string.Create(CultureInfo.InvariantCulture,
        $"# EdgeShield config signature (docs/SIGNING.md)\nformat: {Format}\nkey-id: {KeyId}\nsha256: {Sha256}\nversion: {Version}\nsignature: {Convert.ToBase64String(Signature)}\n");

    private static readonly string[] Keys = ["format", "key-id", "sha256", "version", "signature"];

    /// <summary>Parses the text of <c>FILE.sig</c>; strict: every key once, none other. False with the reason otherwise.</summary>
    public static bool TryParse(string text, out ConfigSignature signature, out string problem)
    {
        ArgumentNullException.ThrowIfNull(text);
        signature = null!;
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        int lineNumber = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            string line = raw.TrimEnd('\r');
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                problem = $"line {lineNumber}: expected 'key: value'";
                return false;
            }
            string key = line[..colon];
            string value = line[(colon + 1)..].Trim();
            if (Array.IndexOf(Keys, key) < 0)
            {
                problem = $"line {lineNumber}: unknown key '{key}' (keys: {string.Join(", ", Keys)})";
                return false;
            }
            if (!values.TryAdd(key, value))
            {
                problem = $"line {lineNumber}: '{key}' given twice";
                return false;
            }
        }
        foreach (var key in Keys)
        {
            if (!values.ContainsKey(key))
            {
                problem = $"no '{key}:' line";
                return false;
            }
        }
        if (values["format"] != Format)
        {
            problem = $"format '{values["format"]}' is not {Format}";
            return false;
        }
        if (!IsHex64(values["key-id"]) || !IsHex64(values["sha256"]))
        {
            problem = "key-id and sha256 must be 64 lowercase hex digits";
            return false;
        }
        string versionText = values["version"];
        if (versionText.Length == 0 || versionText.Length > 16 || (versionText.Length > 1 && versionText[0] == '0')
            || !long.TryParse(versionText, NumberStyles.None, CultureInfo.InvariantCulture, out long version))
        {
            problem = $"version '{versionText}' is not a whole number in decimal";
            return false;
        }
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(values["signature"]);
        }
        catch (FormatException)
        {
            problem = "signature is not base64";
            return false;
        }
        if (bytes.Length is 0 or > 128)
        {
            problem = "signature has the wrong length for ECDSA P-256";
            return false;
        }
        signature = new ConfigSignature(values["key-id"], values["sha256"], version, bytes);
        problem = "";
        return true;
    }

    private static bool IsHex64(string text)
    {
        if (text.Length != 64)
        {
            return false;
        }
        foreach (char c in text)
        {
            if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f')))
            {
                return false;
            }
        }
        return true;
    }
}
