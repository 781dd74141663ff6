using System.Security.Cryptography;

namespace EdgeShield.Policy.Signing;

/// <summary>
/// The signing keys of configs (docs/SIGNING.md): ECDSA on NIST P-256 with SHA-256, in PEM. A key is
/// named by its key id, the lowercase hex SHA-256 of its DER SubjectPublicKeyInfo, which is what
/// <c>openssl pkey -pubin -in KEY.pub.pem -outform DER | sha256sum</c> prints too.
/// </summary>
public static class PolicyKeys
{
    /// <summary>The OID of the only curve accepted: NIST P-256 (prime256v1, secp256r1).</summary>
    public const string P256Oid = "1.2.840.10045.3.1.7";

    /// <summary>A new P-256 key pair.</summary>
    public static ECDsa Generate() => ECDsa.Create(ECCurve.NamedCurves.nistP256);

    /// <summary>The key id: lowercase hex SHA-256 of the DER SubjectPublicKeyInfo.</summary>
    public static string KeyId(ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo()));
    }

    /// <summary>
    /// Reads a private key: PKCS#8 (<c>PRIVATE KEY</c>, what <c>policy keygen</c> and <c>openssl genpkey</c>
    /// write) or SEC1 (<c>EC PRIVATE KEY</c>, what <c>openssl ecparam -genkey</c> writes; an
    /// <c>EC PARAMETERS</c> block before it is ignored). False with the reason otherwise.
    /// </summary>
    public static bool TryImportPrivate(string pem, out ECDsa key, out string problem)
    {
        ArgumentNullException.ThrowIfNull(pem);
        if (pem.Contains("-----BEGIN ENCRYPTED PRIVATE KEY-----", StringComparison.Ordinal))
        {
            return Fail(out key, out problem, "the key is encrypted; give an unencrypted PEM (openssl pkcs8 -in KEY -out PLAIN, on the signing machine only)");
        }
        if (!HasLabel(pem, "PRIVATE KEY") && !HasLabel(pem, "EC PRIVATE KEY"))
        {
            return Fail(out key, out problem, HasLabel(pem, "PUBLIC KEY")
                ? "this is a public key; signing needs the private key (the file given to policy keygen --out)"
                : "no PEM private key found (expected -----BEGIN PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)");
        }
        return TryImport(pem, out key, out problem);
    }

    /// <summary>Reads a public key (<c>PUBLIC KEY</c>, SubjectPublicKeyInfo). Private keys are refused: a trust directory holds public keys only.</summary>
    public static bool TryImportPublic(string pem, out ECDsa key, out string problem)
    {
        ArgumentNullException.ThrowIfNull(pem);
        if (HasLabel(pem, "PRIVATE KEY") || HasLabel(pem, "EC PRIVATE KEY") || HasLabel(pem, "ENCRYPTED PRIVATE KEY"))
        {
            return Fail(out key, out problem, "it holds a private key; a trust directory takes public keys only (KEY.pub.pem), and a signing key never belongs on the gateway");
        }
        if (!HasLabel(pem, "PUBLIC KEY"))
        {
            return Fail(out key, out problem, "no PEM public key found (expected -----BEGIN PUBLIC KEY-----)");
        }
        return TryImport(pem, out key, out problem);
    }

    private static bool TryImport(string pem, out ECDsa key, out string problem)
    {
        var candidate = ECDsa.Create();
        try
        {
            candidate.ImportFromPem(pem);
            var curve = candidate.ExportParameters(includePrivateParameters: false).Curve;
            if (candidate.KeySize != 256 || !curve.IsNamed || curve.Oid.Value != P256Oid)
            {
                candidate.Dispose();
                return Fail(out key, out problem, $"the key is on {CurveName(curve)}, not P-256 (prime256v1)");
            }
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            candidate.Dispose();
            return Fail(out key, out problem, $"not an ECDSA P-256 key: {e.Message}");
        }
        key = candidate;
        problem = "";
        return true;
    }

    private static string CurveName(ECCurve curve) =>
        curve.IsNamed ? curve.Oid.FriendlyName ?? curve.Oid.Value ?? "an unnamed curve" : "explicit curve parameters";

    private static bool HasLabel(string pem, string label) =>
        pem.Contains($"-----BEGIN {label}-----", StringComparison.Ordinal);

    private static bool Fail(out ECDsa key, out string problem, string why)
    {
        key = null!;
        problem = why;
        return false;
    }
}
