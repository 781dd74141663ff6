using System.Text;
using EdgeShield.Policy;
using EdgeShield.Policy.Signing;

namespace EdgeShield.Host;

/// <summary>
/// <c>edgeshield policy keygen|sign|verify</c>: signed configs (docs/SIGNING.md). keygen and sign run on the
/// integrator's signing machine, never on the gateway; verify runs anywhere.
/// </summary>
internal static class PolicyCommand
{
    /// <summary>Bad or missing signature, or a signer that is not trusted.</summary>
    private const int ExitBadSignature = 1;

    private const string Help = """
        usage: edgeshield policy keygen --out KEY
               edgeshield policy sign --key KEY FILE
               edgeshield policy verify --trust DIR FILE

        Signed configs (docs/SIGNING.md). ECDSA P-256 / SHA-256 keys in PEM; keys made by OpenSSL work too
        (openssl ecparam -name prime256v1 -genkey -noout, or openssl genpkey -algorithm EC
        -pkeyopt ec_paramgen_curve:P-256).

          keygen --out KEY        write a new private key to KEY (mode 0600) and its public key to
                                  KEY.pub.pem; print its key id (hex SHA-256 of the public key's DER).
                                  Keep KEY on the signing machine; copy KEY.pub.pem to the gateway's
                                  trust directory (/etc/edgeshield/trust).
          sign --key KEY FILE     check FILE as 'check' does, then write FILE.sig: the signer's key id,
                                  the SHA-256 of every byte of FILE, FILE's top-level version: and the
                                  ECDSA signature over them. FILE needs a version:, raised at each release.
          verify --trust DIR FILE check FILE.sig against the public keys (*.pem) of DIR; prints signer,
                                  version and sha256.

        Exit 0 done (verify: valid), 1 bad or missing signature or a signer not in DIR, 2 unreadable
        or invalid input (a key, FILE, DIR), or a file that would be overwritten (keygen).
        """;

    public static int Execute(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.Out.Write(Help);
            return args.Length == 0 ? Cli.ExitUsage : Cli.ExitOk;
        }
        var rest = args.AsSpan(1).ToArray();
        return args[0] switch
        {
            "keygen" => Keygen(rest),
            "sign" => Sign(rest),
            "verify" => Verify(rest),
            _ => Unknown(args[0]),
        };
    }

    private static int Unknown(string sub)
    {
        Console.Error.WriteLine($"edgeshield policy: unknown subcommand '{sub}'; subcommands are keygen, sign, verify (see 'edgeshield policy --help')");
        return Cli.ExitUsage;
    }

    /// <summary>Options and the one FILE argument; null (after saying why) on a usage error, or when help was asked (then <paramref name="help"/>).</summary>
    private static Options? Parse(string command, string[] args, string[] valueOptions, bool wantsFile, out string? file, out bool help)
    {
        file = null;
        help = false;
        var optionArgs = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (Array.IndexOf(valueOptions, args[i]) >= 0 && i + 1 < args.Length)
            {
                optionArgs.Add(args[i]);
                optionArgs.Add(args[++i]);
            }
            else if (wantsFile && file is null && !args[i].StartsWith('-'))
            {
                file = args[i];
            }
            else
            {
                optionArgs.Add(args[i]);
            }
        }
        var options = Options.Parse(command, [.. optionArgs], valueOptions, []);
        if (options is null)
        {
            return null;
        }
        if (options.Help)
        {
            Console.Out.Write(Help);
            help = true;
            return null;
        }
        foreach (var option in valueOptions)
        {
            if (options.Get(option) is null)
            {
                Console.Error.WriteLine($"edgeshield {command}: {option} is required (see 'edgeshield policy --help')");
                return null;
            }
        }
        if (wantsFile && file is null)
        {
            Console.Error.WriteLine($"edgeshield {command}: FILE is required (see 'edgeshield policy --help')");
            return null;
        }
        return options;
    }

    private static int Keygen(string[] args)
    {
        var options = Parse("policy keygen", args, ["--out"], wantsFile: false, out _, out bool help);
        if (options is null)
        {
            return help ? Cli.ExitOk : Cli.ExitUsage;
        }
        string keyPath = options.Get("--out")!;
        string publicPath = keyPath + ".pub.pem";
        using var key = PolicyKeys.Generate();
        try
        {
            foreach (var existing in new[] { keyPath, publicPath })
            {
                if (File.Exists(existing))
                {
                    Console.Error.WriteLine($"edgeshield policy keygen: {existing} exists; not overwritten (a signing key is not replaced by accident)");
                    return Cli.ExitUsage;
                }
            }
            WriteNew(keyPath, key.ExportPkcs8PrivateKeyPem(), UnixFileMode.UserRead | UnixFileMode.UserWrite);
            WriteNew(publicPath, key.ExportSubjectPublicKeyInfoPem(), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            Console.Error.WriteLine($"edgeshield policy keygen: cannot write {keyPath}: {e.Message}");
            return Cli.ExitUsage;
        }
        Console.Out.WriteLine($"key-id: {PolicyKeys.KeyId(key)}");
        Console.Error.WriteLine($"edgeshield policy keygen: wrote {keyPath} (private, mode 0600: keep it on the signing machine, never on a gateway) and {publicPath} (public: copy it to each gateway's /etc/edgeshield/trust/)");
        return Cli.ExitOk;
    }

    private static void WriteNew(string path, string text, UnixFileMode mode)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new NotSupportedException("keygen sets Unix file modes; run it on Linux");
        }
        using var stream = new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = mode });
        stream.Write(Encoding.ASCII.GetBytes(text.EndsWith('\n') ? text : text + "\n"));
        stream.Flush(flushToDisk: true);
    }

    private static int Sign(string[] args)
    {
        var options = Parse("policy sign", args, ["--key"], wantsFile: true, out var file, out bool help);
        if (options is null)
        {
            return help ? Cli.ExitOk : Cli.ExitUsage;
        }
        string keyPath = options.Get("--key")!;
        string pem;
        try
        {
            pem = new FileInfo(keyPath).Length > 64 * 1024 ? "" : File.ReadAllText(keyPath, Encoding.ASCII);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            Console.Error.WriteLine($"edgeshield policy sign: cannot read the key {keyPath}: {e.Message}");
            return Cli.ExitUsage;
        }
        if (!PolicyKeys.TryImportPrivate(pem, out var key, out var problem))
        {
            Console.Error.WriteLine($"edgeshield policy sign: {keyPath}: {problem}");
            return Cli.ExitUsage;
        }
        using var keyLifetime = key;
        if (!TryLoad("policy sign", file!, out var bytes, out var config))
        {
            Console.Error.WriteLine($"edgeshield policy sign: {file} not signed");
            return Cli.ExitUsage;
        }
        if (config.Version is not { } version)
        {
            Console.Error.WriteLine($"{file}:1:1: error: a signed config needs a top-level 'version:' (a whole number, raised at each release: a gateway refuses a lower one than it last accepted); not signed");
            return Cli.ExitUsage;
        }
        var signature = ConfigSignature.Sign(key, bytes, version);
        string signaturePath = SignatureCheck.SignaturePath(file!);
        string temporary = signaturePath + ".tmp";
        try
        {
            // Whole or not at all: a gateway watching FILE.sig never reads half a signature.
            File.WriteAllText(temporary, signature.ToText(), Encoding.ASCII);
            File.Move(temporary, signaturePath, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            Console.Error.WriteLine($"edgeshield policy sign: cannot write {signaturePath}: {e.Message}");
            return Cli.ExitUsage;
        }
        Console.Out.WriteLine($"{signaturePath}: signer {signature.KeyId}, version {signature.Version}, sha256 {signature.Sha256}");
        return Cli.ExitOk;
    }

    private static int Verify(string[] args)
    {
        var options = Parse("policy verify", args, ["--trust"], wantsFile: true, out var file, out bool help);
        if (options is null)
        {
            return help ? Cli.ExitOk : Cli.ExitUsage;
        }
        return VerifyFile("policy verify", options.Get("--trust")!, file!, printValid: true);
    }

    /// <summary>
    /// <c>policy verify</c> and <c>check --trust</c>: 0 valid, 1 bad or missing signature or untrusted signer,
    /// 2 unreadable FILE, FILE.sig or DIR, or an invalid FILE.
    /// </summary>
    public static int VerifyFile(string command, string trustDirectory, string file, bool printValid)
    {
        if (!TryLoad(command, file, out var bytes, out var config))
        {
            return Cli.ExitUsage;
        }
        if (!TrustStore.TryLoad(trustDirectory, out var trust, out var problem))
        {
            Console.Error.WriteLine($"edgeshield {command}: {problem}");
            return Cli.ExitUsage;
        }
        using var trustLifetime = trust;
        foreach (var warning in trust.Warnings)
        {
            Console.Error.WriteLine($"edgeshield {command}: trust: {warning}");
        }
        if (!SignatureCheck.TryReadSignatureFile(SignatureCheck.SignaturePath(file), out var text, out problem))
        {
            Console.Error.WriteLine($"edgeshield {command}: {problem}");
            return Cli.ExitUsage;
        }
        var verdict = SignatureCheck.Verify(trust, bytes, config.Version, text);
        if (!verdict.IsValid)
        {
            Console.Error.WriteLine($"{file}: {verdict.Message}");
            return ExitBadSignature;
        }
        if (printValid)
        {
            Console.Out.WriteLine($"{file}: valid: signer {verdict.KeyId} ({verdict.KeyFile}), version {verdict.Version}, sha256 {verdict.Sha256}");
        }
        return Cli.ExitOk;
    }

    /// <summary>Reads FILE once and parses exactly those bytes; prints its diagnostics.</summary>
    private static bool TryLoad(string command, string file, out byte[] bytes, out EdgeShieldConfig config)
    {
        config = null!;
        if (!ConfigLoader.TryReadFile(file, out bytes, out var problem))
        {
            Console.Error.WriteLine($"{file}:1:1: error: {problem}");
            return false;
        }
        var loaded = ConfigLoader.LoadBytes(bytes, file, new MaintenanceState());
        foreach (var diagnostic in loaded.Diagnostics)
        {
            Console.Error.WriteLine(diagnostic.ToString());
        }
        if (loaded.HasErrors || loaded.Config is null)
        {
            Console.Error.WriteLine($"edgeshield {command}: {file} is not a valid configuration");
            return false;
        }
        config = loaded.Config;
        return true;
    }
}
