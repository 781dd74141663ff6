using System.Security.Cryptography;

namespace EdgeShield.Gateway;

/// <summary>
/// The gateway's audit signing key: ECDSA P-256, PEM. Created with mode 0600 at first start when absent;
/// the public key is written beside it (<c>NAME.pub.pem</c>) for whoever verifies. Its key id is the
/// lower-case hex SHA-256 of the DER SubjectPublicKeyInfo (what <c>openssl pkey -pubout -outform DER | sha256sum</c> prints).
/// </summary>
public sealed class AuditKey : IDisposable
{
    private AuditKey(ECDsa key, string path, bool created)
    {
        Key = key;
        Path = path;
        Created = created;
        SubjectPublicKeyInfo = key.ExportSubjectPublicKeyInfo();
        KeyId = KeyIdOf(SubjectPublicKeyInfo);
    }

    public ECDsa Key { get; }
    public string Path { get; }
    /// <summary>The key did not exist and was made by this start.</summary>
    public bool Created { get; }
    public byte[] SubjectPublicKeyInfo { get; }
    public string KeyId { get; }
    public string PublicKeyPath => PublicPathOf(Path);

    /// <summary><c>audit-key.pem</c> → <c>audit-key.pub.pem</c>.</summary>
    public static string PublicPathOf(string privatePath) =>
        privatePath.EndsWith(".pem", StringComparison.Ordinal) ? string.Concat(privatePath.AsSpan(0, privatePath.Length - 4), ".pub.pem") : privatePath + ".pub.pem";

    public static string KeyIdOf(ReadOnlySpan<byte> subjectPublicKeyInfo) => Convert.ToHexStringLower(SHA256.HashData(subjectPublicKeyInfo));

    /// <summary>
    /// Loads the key at <paramref name="path"/>, or creates it (mode 0600, created exclusively so that two starts
    /// never make two keys). Either way writes the public key beside it. Throws <see cref="IOException"/>,
    /// <see cref="UnauthorizedAccessException"/> or <see cref="CryptographicException"/> (not a P-256 key).
    /// </summary>
    public static AuditKey LoadOrCreate(string path)
    {
        bool created = false;
        ECDsa key;
        if (File.Exists(path))
        {
            key = Load(path);
        }
        else
        {
            if (System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) is { } directory)
            {
                Directory.CreateDirectory(directory);
            }
            key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var pem = key.ExportPkcs8PrivateKeyPem();
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }
            using (var file = new FileStream(path, options))
            {
                file.Write(System.Text.Encoding.ASCII.GetBytes(pem));
                file.Flush(flushToDisk: true);
            }
            created = true;
        }
        var audit = new AuditKey(key, path, created);
        var publicPem = key.ExportSubjectPublicKeyInfoPem() + "\n";
        var publicPath = audit.PublicKeyPath;
        if (!File.Exists(publicPath) || File.ReadAllText(publicPath) != publicPem)
        {
            File.WriteAllText(publicPath, publicPem);
        }
        return audit;
    }

    /// <summary>A P-256 key from PEM: PKCS#8 (<c>PRIVATE KEY</c>), SEC1 (<c>EC PRIVATE KEY</c>, what <c>openssl ecparam -genkey</c> makes) or a public key.</summary>
    public static ECDsa Load(string path)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(File.ReadAllText(path));
            if (key.KeySize != 256)
            {
                throw new CryptographicException($"{path}: an ECDSA P-256 key is needed, not a {key.KeySize}-bit curve");
            }
            return key;
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    public void Dispose() => Key.Dispose();
}
