using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using EdgeShield.Policy.Signing;
using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

/// <summary>
/// Signed configs (docs/SIGNING.md): the top-level version:, the FILE.sig format and its canonical signed
/// bytes, and the verifier over exact bytes against a trust directory, with our keys and OpenSSL's.
/// </summary>
public sealed class SignedConfigTests : IDisposable
{
    private const string Config = "version: 7\ngateway: { name: gw }\npolicies:\n  p: { mode: enforce }\n";

    private readonly string _dir = Directory.CreateTempSubdirectory("es-sign-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>A trust directory and its keys as an installer leaves them (0755, 0644), whatever the umask of the test run.</summary>
    private static void AsInstalled(string trust)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        const UnixFileMode read = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        File.SetUnixFileMode(trust, read | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        foreach (var file in Directory.GetFiles(trust))
        {
            File.SetUnixFileMode(file, read);
        }
    }

    /// <summary>A trust directory holding the public keys of <paramref name="keys"/>.</summary>
    private TrustStore Trust(params ECDsa[] keys)
    {
        string trust = Path.Combine(_dir, "trust-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(trust);
        for (int i = 0; i < keys.Length; i++)
        {
            File.WriteAllText(Path.Combine(trust, $"k{i}.pem"), keys[i].ExportSubjectPublicKeyInfoPem());
        }
        AsInstalled(trust);
        Assert.True(TrustStore.TryLoad(trust, out var store, out var problem), problem);
        return store;
    }

    private static SignatureVerdict Check(TrustStore trust, string file, ConfigSignature signature, long? version = 7) =>
        SignatureCheck.Verify(trust, Bytes(file), version, signature.ToText());

    [Fact]
    public void Version_IsReadAsAWholeNumber_AndOptional()
    {
        Assert.Equal(7, Load(Config).Config!.Version);
        Assert.Null(Load("gateway: { name: gw }\n").Config!.Version);
    }

    [Theory]
    [InlineData("version: seven\n", "test.yaml:1:10: error: 'version' must be a whole number from 0 to 9007199254740991, not 'seven'")]
    [InlineData("version: 1.5\n", "test.yaml:1:10: error: 'version' must be a whole number from 0 to 9007199254740991, not '1.5'")]
    [InlineData("version: -1\n", "test.yaml:1:10: error: 'version' must be a whole number from 0 to 9007199254740991, not '-1'")]
    [InlineData("version: \"3\"\n", "test.yaml:1:10: error: 'version' must be a whole number from 0 to 9007199254740991, not '3'")] // quoted: text, not a number
    public void Version_NotAWholeNumber_IsAnErrorWithFileLineCol(string yaml, string expected)
    {
        var result = Load(yaml);
        Assert.Null(result.Config);
        Assert.Equal(expected, Assert.Single(Lines(result)));
    }

    [Fact]
    public void Version_IsNotASection_SoAReloadNeverCallsItNotApplied()
    {
        var before = Load("version: 1\n" + Config[11..]).Config!;
        var after = Load(Config).Config!;
        Assert.Empty(EdgeShieldConfig.ChangedSections(before, after));
    }

    [Fact]
    public void SignedBytes_AreTheDocumentedCanonicalText()
    {
        string id = new('a', 64), sha = new('b', 64);
        Assert.Equal($"edgeshield-config-signature-v1\nkey-id: {id}\nsha256: {sha}\nversion: 42\n", Encoding.ASCII.GetString(ConfigSignature.SignedBytes(id, sha, 42)));
    }

    [Fact]
    public void SignThenVerify_RoundTrips_AndTheSigTextParsesBack()
    {
        using var key = PolicyKeys.Generate();
        var signature = ConfigSignature.Sign(key, Bytes(Config), 7);
        Assert.Equal(PolicyKeys.KeyId(key), signature.KeyId);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Bytes(Config))), signature.Sha256);
        Assert.True(ConfigSignature.TryParse(signature.ToText(), out var parsed, out var problem), problem);
        Assert.Equal((signature.KeyId, signature.Sha256, signature.Version), (parsed.KeyId, parsed.Sha256, parsed.Version));
        Assert.Equal(signature.Signature, parsed.Signature);

        using var trust = Trust(key);
        var verdict = Check(trust, Config, signature);
        Assert.True(verdict.IsValid, verdict.Message);
        Assert.Equal((signature.KeyId, 7L), (verdict.KeyId!, verdict.Version!.Value));
    }

    [Theory]
    [InlineData("version: 7\ngateway: { name: gw }\npolicies:\n  p: { mode: enforce } \n")] // a trailing space
    [InlineData("version: 7\ngateway: { name: gw }\npolicies:\n  p: { mode: enforce }\n\n")] // a blank line
    [InlineData("version: 7\r\ngateway: { name: gw }\npolicies:\n  p: { mode: enforce }\n")] // CRLF on one line
    [InlineData("version: 7\ngateway: { name: gx }\npolicies:\n  p: { mode: enforce }\n")] // one byte
    [InlineData("version: 8\ngateway: { name: gw }\npolicies:\n  p: { mode: enforce }\n")] // the version itself
    public void AnyChangedByte_OrWhitespace_IsRefusedAsOtherBytes(string changed)
    {
        using var key = PolicyKeys.Generate();
        using var trust = Trust(key);
        var verdict = Check(trust, changed, ConfigSignature.Sign(key, Bytes(Config), 7));
        Assert.Equal(SignatureStatus.HashMismatch, verdict.Status);
        Assert.Contains("the file changed since it was signed", verdict.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ASignatureByAKeyNotInTheTrustDirectory_IsAnUnknownSigner()
    {
        using var trusted = PolicyKeys.Generate();
        using var other = PolicyKeys.Generate();
        using var trust = Trust(trusted);
        var verdict = Check(trust, Config, ConfigSignature.Sign(other, Bytes(Config), 7));
        Assert.Equal(SignatureStatus.UnknownSigner, verdict.Status);
        Assert.StartsWith($"unknown signer: key {PolicyKeys.KeyId(other)} is not among the 1 trusted key of ", verdict.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ASignatureMadeWithTheWrongKey_ButNamingATrustedOne_IsABadSignature()
    {
        using var trusted = PolicyKeys.Generate();
        using var forger = PolicyKeys.Generate();
        using var trust = Trust(trusted);
        var honest = ConfigSignature.Sign(forger, Bytes(Config), 7);
        var forged = honest with { KeyId = PolicyKeys.KeyId(trusted) };
        Assert.Equal(SignatureStatus.BadSignature, Check(trust, Config, forged).Status);
    }

    [Fact]
    public void TheVersion_IsCoveredByTheSignature_AndMustBeTheFilesOwn()
    {
        using var key = PolicyKeys.Generate();
        using var trust = Trust(key);
        var signature = ConfigSignature.Sign(key, Bytes(Config), 7);
        // Raising the version in FILE.sig (to pass a rollback check) breaks the signature.
        Assert.Equal(SignatureStatus.BadSignature, Check(trust, Config, signature with { Version = 9 }, version: 7).Status);
        // A signer that signed another version than the file's: refused.
        var mismatched = ConfigSignature.Sign(key, Bytes(Config), 6);
        Assert.Equal(SignatureStatus.VersionMismatch, Check(trust, Config, mismatched, version: 7).Status);
    }

    [Fact]
    public void NoSigFile_IsUnsigned_AndGarbage_IsMalformed()
    {
        using var key = PolicyKeys.Generate();
        using var trust = Trust(key);
        Assert.Equal(SignatureStatus.Missing, SignatureCheck.Verify(trust, Bytes(Config), 7, null).Status);
        Assert.StartsWith("unsigned:", SignatureCheck.Verify(trust, Bytes(Config), 7, null).Message, StringComparison.Ordinal);
        var text = ConfigSignature.Sign(key, Bytes(Config), 7).ToText();
        foreach (var bad in new[] { "", "hello", text.Replace("version: 7", "version: 07", StringComparison.Ordinal), text + "key-id: " + new string('0', 64) + "\n", text.Replace("format: ", "formt: ", StringComparison.Ordinal), text.Replace("signature: ", "signature: !", StringComparison.Ordinal) })
        {
            Assert.Equal(SignatureStatus.Malformed, SignatureCheck.Verify(trust, Bytes(Config), 7, bad).Status);
        }
    }

    [Fact]
    public void SignatureFile_MissingIsNull_OversizeIsRefusedUnread()
    {
        string sig = Path.Combine(_dir, "c.yaml.sig");
        Assert.True(SignatureCheck.TryReadSignatureFile(sig, out var text, out _));
        Assert.Null(text);
        File.WriteAllText(sig, new string('#', ConfigSignature.MaxFileBytes + 1));
        Assert.False(SignatureCheck.TryReadSignatureFile(sig, out _, out var problem));
        Assert.Contains("larger than any signature file", problem, StringComparison.Ordinal);
        Assert.Equal(Path.Combine(_dir, "c.yaml") + ".sig", SignatureCheck.SignaturePath(Path.Combine(_dir, "c.yaml")));
    }

    [Fact]
    public void TrustDirectory_SkipsPrivateKeysAndOtherCurves_WithAWarning()
    {
        string trust = Path.Combine(_dir, "mixed");
        Directory.CreateDirectory(trust);
        using var key = PolicyKeys.Generate();
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        File.WriteAllText(Path.Combine(trust, "a-private.pem"), key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(Path.Combine(trust, "b-p384.pem"), p384.ExportSubjectPublicKeyInfoPem());
        File.WriteAllText(Path.Combine(trust, "c-good.pem"), key.ExportSubjectPublicKeyInfoPem());
        File.WriteAllText(Path.Combine(trust, "notes.txt"), "not a key, not *.pem");
        AsInstalled(trust);
        Assert.True(TrustStore.TryLoad(trust, out var store, out _));
        using (store)
        {
            Assert.Equal(1, store.Count);
            Assert.True(store.TryGet(PolicyKeys.KeyId(key), out _, out var file));
            Assert.EndsWith("c-good.pem", file, StringComparison.Ordinal);
            Assert.Equal(2, store.Warnings.Count);
            Assert.Contains("holds a private key", store.Warnings[0], StringComparison.Ordinal);
            Assert.Contains("not P-256", store.Warnings[1], StringComparison.Ordinal);
        }
        Assert.False(TrustStore.TryLoad(Path.Combine(_dir, "missing"), out _, out var problem));
        Assert.StartsWith("cannot read the trust directory ", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void TrustDirectory_WritableByOthers_IsRefused_AndAWritableKeyFileSkipped()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        using var key = PolicyKeys.Generate();
        string trust = Path.Combine(_dir, "loose");
        Directory.CreateDirectory(trust);
        string pem = Path.Combine(trust, "k.pem");
        File.WriteAllText(pem, key.ExportSubjectPublicKeyInfoPem());
        AsInstalled(trust);
        File.SetUnixFileMode(pem, File.GetUnixFileMode(pem) | UnixFileMode.OtherWrite);
        Assert.True(TrustStore.TryLoad(trust, out var store, out _));
        using (store)
        {
            Assert.Equal(0, store.Count);
            Assert.Contains("writable by its group or by others", Assert.Single(store.Warnings), StringComparison.Ordinal);
        }
        File.SetUnixFileMode(trust, File.GetUnixFileMode(trust) | UnixFileMode.GroupWrite);
        Assert.False(TrustStore.TryLoad(trust, out _, out var problem));
        Assert.Contains("is writable by its group or by others", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void KeyId_IsTheSha256OfTheDerSubjectPublicKeyInfo()
    {
        using var key = PolicyKeys.Generate();
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo())), PolicyKeys.KeyId(key));
        Assert.Matches("^[0-9a-f]{64}$", PolicyKeys.KeyId(key));
    }

    /// <summary>Keys made by OpenSSL, SEC1 (ecparam -genkey) and PKCS#8 (genpkey): they sign, and OpenSSL's public key and key id agree with ours.</summary>
    [Theory]
    [InlineData("ecparam -name prime256v1 -genkey -noout -out {0}")]
    [InlineData("ecparam -name prime256v1 -genkey -out {0}")] // with an EC PARAMETERS block first
    [InlineData("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {0}")]
    public void OpenSslMadeKeys_SignAndVerify(string command)
    {
        string keyPath = Path.Combine(_dir, "openssl-key.pem");
        string pubPath = Path.Combine(_dir, "openssl-pub.pem");
        OpenSsl(string.Format(System.Globalization.CultureInfo.InvariantCulture, command, keyPath));
        OpenSsl($"pkey -in {keyPath} -pubout -out {pubPath}");
        Assert.True(PolicyKeys.TryImportPrivate(File.ReadAllText(keyPath), out var key, out var problem), problem);
        using (key)
        {
            Assert.True(PolicyKeys.TryImportPublic(File.ReadAllText(pubPath), out var pub, out problem), problem);
            using (pub)
            {
                Assert.Equal(PolicyKeys.KeyId(key), PolicyKeys.KeyId(pub));
            }
            string trust = Path.Combine(_dir, "trust-openssl");
            Directory.CreateDirectory(trust);
            File.Copy(pubPath, Path.Combine(trust, "integrator.pem"), overwrite: true);
            AsInstalled(trust);
            Assert.True(TrustStore.TryLoad(trust, out var store, out _));
            using (store)
            {
                var verdict = Check(store, Config, ConfigSignature.Sign(key, Bytes(Config), 7));
                Assert.True(verdict.IsValid, verdict.Message);
            }
        }
    }

    /// <summary>And the other way: OpenSSL checks our signature over the documented bytes (docs/SIGNING.md's recipe).</summary>
    [Fact]
    public void OurSignature_VerifiesWithOpenSslDgst()
    {
        using var key = PolicyKeys.Generate();
        var signature = ConfigSignature.Sign(key, Bytes(Config), 7);
        string pub = Path.Combine(_dir, "pub.pem"), data = Path.Combine(_dir, "signed.bin"), sig = Path.Combine(_dir, "sig.der");
        File.WriteAllText(pub, key.ExportSubjectPublicKeyInfoPem());
        File.WriteAllBytes(data, ConfigSignature.SignedBytes(signature.KeyId, signature.Sha256, signature.Version));
        File.WriteAllBytes(sig, signature.Signature);
        Assert.Contains("Verified OK", OpenSsl($"dgst -sha256 -verify {pub} -signature {sig} {data}"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out {0}", "not an ECDSA P-256 key")]
    [InlineData("ecparam -name secp384r1 -genkey -noout -out {0}", "not P-256")]
    public void OtherKeys_AreRefusedWithAReason(string command, string why)
    {
        string keyPath = Path.Combine(_dir, "other.pem");
        OpenSsl(string.Format(System.Globalization.CultureInfo.InvariantCulture, command, keyPath));
        Assert.False(PolicyKeys.TryImportPrivate(File.ReadAllText(keyPath), out _, out var problem));
        Assert.Contains(why, problem, StringComparison.Ordinal);
    }

    private static string OpenSsl(string arguments)
    {
        var start = new ProcessStartInfo("openssl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in arguments.Split(' '))
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(30_000), "openssl hung");
        Assert.True(process.ExitCode == 0, $"openssl {arguments}: {output}");
        return output;
    }
}
