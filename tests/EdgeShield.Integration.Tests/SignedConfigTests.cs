using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeShield.Simulators;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// Signed configs through the binaries (docs/SIGNING.md): <c>policy keygen/sign/verify</c> and <c>check --trust</c>
/// with their exit codes, and <c>run --trust --state</c>: an unsigned or foreign-signed config never starts
/// (exit 2); unsigned, wrongly signed and rolled-back reloads are refused while Modbus traffic keeps flowing
/// under the old policy; a valid higher version applies; the version floor survives a restart; without
/// <c>--trust</c> every load is audited as <c>unsigned-config</c>.
/// </summary>
public sealed partial class SignedConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("es-signed-it-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string TrustDir => Path.Combine(_dir, "trust");
    private string StateDir => Path.Combine(_dir, "state");
    private string ConfigPath => Path.Combine(_dir, "edgeshield.yaml");

    private static async Task<ProcessResult> EdgeShield(params string[] args) => await Processes.RunAsync(Processes.EdgeShield(args), 60_000);

    /// <summary>A key pair from <c>policy keygen</c>; its public key copied into the trust directory when <paramref name="trusted"/>. Returns (private key path, key id).</summary>
    private async Task<(string Key, string KeyId)> KeyAsync(string name, bool trusted)
    {
        string key = Path.Combine(_dir, name + ".pem");
        var keygen = await EdgeShield("policy", "keygen", "--out", key);
        Assert.True(keygen.ExitCode == 0, keygen.Stdout + keygen.Stderr);
        var id = KeyIdLine().Match(keygen.Stdout);
        Assert.True(id.Success, keygen.Stdout);
        if (trusted)
        {
            Directory.CreateDirectory(TrustDir);
            File.Copy(key + ".pub.pem", Path.Combine(TrustDir, name + ".pem"));
            AsInstalled(TrustDir);
        }
        return (key, id.Groups[1].Value);
    }

    /// <summary>The trust directory and its keys as an installer leaves them (0755, 0644), whatever the umask of the test run.</summary>
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

    private static async Task SignAsync(string key, string file)
    {
        var sign = await EdgeShield("policy", "sign", "--key", key, file);
        Assert.True(sign.ExitCode == 0, sign.Stdout + sign.Stderr);
    }

    private static string Config(int plcPort, int version, string writable = "100-119") =>
        $"version: {version}\n" + GatewayProcess.Config(plcPort, GatewayProcess.Policy.Replace("address: 100-119", $"address: {writable}", StringComparison.Ordinal));

    private static string[] Details(string stdout, string reason) => stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        .Select(l => JsonDocument.Parse(l).RootElement)
        .Where(e => e.GetProperty("reason").GetString() == reason)
        .Select(e => e.GetProperty("detail").GetString()!)
        .ToArray();

    private Processes.Running Run(params string[] extra) =>
        new(Processes.EdgeShield(["run", "--config", ConfigPath, .. extra]));

    private Processes.Running Run(ReadySignal ready, params string[] extra) =>
        new(ready.Apply(Processes.EdgeShield(["run", "--config", ConfigPath, .. extra])));

    private static int ListenPort(Processes.Running gateway) =>
        int.Parse(ListenLine().Match(gateway.Stderr).Groups[1].Value, CultureInfo.InvariantCulture);

    [Fact]
    public async Task PolicyCli_KeygenSignVerify_AndCheckTrust_ExitCodes()
    {
        var (key, keyId) = await KeyAsync("integrator", trusted: true);
        if (OperatingSystem.IsLinux())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
        }
        Assert.Contains("-----BEGIN PUBLIC KEY-----", await File.ReadAllTextAsync(key + ".pub.pem"), StringComparison.Ordinal);
        // keygen never overwrites a key.
        Assert.Equal(2, (await EdgeShield("policy", "keygen", "--out", key)).ExitCode);

        await File.WriteAllTextAsync(ConfigPath, Config(1502, 4));
        await SignAsync(key, ConfigPath);
        var sig = await File.ReadAllTextAsync(ConfigPath + ".sig");
        Assert.Contains($"key-id: {keyId}\n", sig, StringComparison.Ordinal);
        Assert.Contains("version: 4\n", sig, StringComparison.Ordinal);

        var verify = await EdgeShield("policy", "verify", "--trust", TrustDir, ConfigPath);
        Assert.True(verify.ExitCode == 0, verify.Stdout + verify.Stderr);
        Assert.Matches($"^{Regex.Escape(ConfigPath)}: valid: signer {keyId} \\([^)]+\\), version 4, sha256 [0-9a-f]{{64}}\\n$", verify.Stdout);
        Assert.Equal(0, (await EdgeShield("check", "--config", ConfigPath, "--trust", TrustDir)).ExitCode);

        // One whitespace more: refused (1), and check --trust says run would not start it (2).
        await File.AppendAllTextAsync(ConfigPath, " ");
        var changed = await EdgeShield("policy", "verify", "--trust", TrustDir, ConfigPath);
        Assert.Equal(1, changed.ExitCode);
        Assert.Contains("the file changed since it was signed", changed.Stderr, StringComparison.Ordinal);
        Assert.Equal(2, (await EdgeShield("check", "--config", ConfigPath, "--trust", TrustDir)).ExitCode);

        // Signed by a key that is not in the trust directory: 1.
        var (stranger, strangerId) = await KeyAsync("stranger", trusted: false);
        await SignAsync(stranger, ConfigPath);
        var unknown = await EdgeShield("policy", "verify", "--trust", TrustDir, ConfigPath);
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains($"unknown signer: key {strangerId}", unknown.Stderr, StringComparison.Ordinal);

        // An OpenSSL-made key (SEC1 PEM), its public key trusted: signs through our CLI, verifies.
        string openSslKey = Path.Combine(_dir, "openssl.pem");
        Assert.Equal(0, (await Processes.RunAsync(Processes.Tool("/usr/bin/openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", openSslKey))).ExitCode);
        Assert.Equal(0, (await Processes.RunAsync(Processes.Tool("/usr/bin/openssl", "ec", "-in", openSslKey, "-pubout", "-out", Path.Combine(TrustDir, "openssl.pem")))).ExitCode);
        AsInstalled(TrustDir);
        await SignAsync(openSslKey, ConfigPath);
        Assert.Equal(0, (await EdgeShield("policy", "verify", "--trust", TrustDir, ConfigPath)).ExitCode);

        // No FILE.sig: 1. A config without version: cannot be signed. An unreadable FILE or DIR: 2.
        File.Delete(ConfigPath + ".sig");
        var missing = await EdgeShield("policy", "verify", "--trust", TrustDir, ConfigPath);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("unsigned: there is no FILE.sig", missing.Stderr, StringComparison.Ordinal);
        string noVersion = Path.Combine(_dir, "no-version.yaml");
        await File.WriteAllTextAsync(noVersion, GatewayProcess.Config(1502, GatewayProcess.Policy));
        var unsignable = await EdgeShield("policy", "sign", "--key", key, noVersion);
        Assert.Equal(2, unsignable.ExitCode);
        Assert.Contains("a signed config needs a top-level 'version:'", unsignable.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(noVersion + ".sig"));
        Assert.Equal(2, (await EdgeShield("policy", "verify", "--trust", TrustDir, Path.Combine(_dir, "absent.yaml"))).ExitCode);
        Assert.Equal(2, (await EdgeShield("policy", "verify", "--trust", Path.Combine(_dir, "no-such-dir"), ConfigPath)).ExitCode);
    }

    [Fact]
    public async Task Run_WithTrust_NeverStartsAnUnsignedOrForeignSignedConfig_Exit2()
    {
        var (trusted, _) = await KeyAsync("integrator", trusted: true);
        var (stranger, strangerId) = await KeyAsync("stranger", trusted: false);
        await File.WriteAllTextAsync(ConfigPath, Config(1502, 1));

        await using (var unsigned = Run("--trust", TrustDir, "--state", StateDir))
        {
            Assert.Equal(2, await unsigned.WaitForExitAsync(60_000));
            Assert.Contains($"edgeshield run: {ConfigPath} refused: unsigned: there is no FILE.sig", unsigned.Stderr, StringComparison.Ordinal);
            Assert.Contains("nothing started (fail closed)", unsigned.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("listener hmi-plc1 on", unsigned.Stderr, StringComparison.Ordinal);
        }
        await SignAsync(stranger, ConfigPath);
        await using (var foreign = Run("--trust", TrustDir, "--state", StateDir))
        {
            Assert.Equal(2, await foreign.WaitForExitAsync(60_000));
            Assert.Contains($"refused: unknown signer: key {strangerId}", foreign.Stderr, StringComparison.Ordinal);
        }
        // Signed with the trusted key, then edited by one byte: refused too.
        await SignAsync(trusted, ConfigPath);
        await File.WriteAllTextAsync(ConfigPath, Config(1502, 1, "100-120"));
        await using (var edited = Run("--trust", TrustDir, "--state", StateDir))
        {
            Assert.Equal(2, await edited.WaitForExitAsync(60_000));
            Assert.Contains("the file changed since it was signed", edited.Stderr, StringComparison.Ordinal);
        }
        Assert.False(File.Exists(Path.Combine(StateDir, "config-version")), "a refused config must not move the version floor");

        // Validly signed, but the trust directory is missing, or the version floor is damaged: still nothing starts.
        await SignAsync(trusted, ConfigPath);
        Assert.Equal(0, (await EdgeShield("policy", "verify", "--trust", TrustDir, ConfigPath)).ExitCode);
        await using (var noTrust = Run("--trust", Path.Combine(_dir, "no-such-dir"), "--state", StateDir))
        {
            Assert.Equal(2, await noTrust.WaitForExitAsync(60_000));
            Assert.Contains("refused: no trust: cannot read the trust directory", noTrust.Stderr, StringComparison.Ordinal);
        }
        Directory.CreateDirectory(StateDir);
        await File.WriteAllTextAsync(Path.Combine(StateDir, "config-version"), "garbage\n");
        await using (var damaged = Run("--trust", TrustDir, "--state", StateDir))
        {
            Assert.Equal(2, await damaged.WaitForExitAsync(60_000));
            Assert.Contains("config-version is damaged", damaged.Stderr, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// The whole life of a signed gateway, with a Modbus client reading all along that must never see a failure:
    /// unsigned, wrong-key and rollback reloads refused, versions 3 and 4 applied (4 in the usual order, file
    /// then signature), and after a restart the rolled-back file still refused.
    /// </summary>
    [Fact]
    public async Task Run_WithTrust_RefusesUnsignedWrongKeyAndRollbackReloads_WhileTrafficFlows_AppliesAHigherVersion_AndRemembersItAcrossARestart()
    {
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions(), CancellationToken.None);
        var (key, keyId) = await KeyAsync("integrator", trusted: true);
        var (stranger, _) = await KeyAsync("stranger", trusted: false);
        await File.WriteAllTextAsync(ConfigPath, Config(plc.Port, 2));
        await SignAsync(key, ConfigPath);
        byte[] v2 = await File.ReadAllBytesAsync(ConfigPath), v2Sig = await File.ReadAllBytesAsync(ConfigPath + ".sig");

        using var ready = new ReadySignal();
        var gateway = Run(ready, "--trust", TrustDir, "--state", StateDir);
        try
        {
            Assert.True(await gateway.WaitForStderrAsync("listener hmi-plc1 on ", 60_000), gateway.Stderr);
            Assert.True(await gateway.WaitForStdoutAsync("\"started\""), gateway.Stdout + gateway.Stderr);
            Assert.Matches($"^config {Regex.Escape(ConfigPath)} sha256 [0-9a-f]{{64}}; version 2, signer {keyId}$", Assert.Single(Details(gateway.Stdout, "started")));
            Assert.Empty(Details(gateway.Stdout, "unsigned-config"));
            Assert.Contains("version: 2\n", await File.ReadAllTextAsync(Path.Combine(StateDir, "config-version")), StringComparison.Ordinal);
            // The watcher and SIGHUP handler are set up just after 'started': READY=1 says they are up.
            Assert.True(await ready.WaitAsync(), "no READY=1\n" + gateway.Stderr);

            using var client = await RawClient.ConnectAsync(ListenPort(gateway));
            using var stop = new CancellationTokenSource();
            int reads = 0;
            var failures = new List<string>();
            // A read every 50 ms for the whole test, on one connection: the old policy must keep answering.
            var traffic = Task.Run(async () =>
            {
                ushort tid = 1000;
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        var response = await client.RoundTripAsync([(byte)(tid >> 8), (byte)tid++, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1]);
                        if (response[7] == 3)
                        {
                            Interlocked.Increment(ref reads);
                        }
                        else
                        {
                            lock (failures)
                            {
                                failures.Add(Convert.ToHexString(response));
                            }
                        }
                    }
                    catch (Exception e) when (e is IOException or TimeoutException or System.Net.Sockets.SocketException or OperationCanceledException)
                    {
                        lock (failures)
                        {
                            failures.Add(e.Message);
                        }
                        return;
                    }
                    await Task.Delay(50);
                }
            });
            // Writes of 1000 to register 500 go on a second connection: refused (02) until version 3 allows 100-599.
            using var writer = await RawClient.ConnectAsync(ListenPort(gateway));
            ushort writes = 1;
            async Task<byte> Write500() => (await writer.RoundTripAsync([0, (byte)writes++, 0, 0, 0, 6, 1, 6, 0x01, 0xF4, 0x03, 0xE8]))[7];

            // 1. Unsigned: FILE.sig removed, version 3 written. Refused after the bounded wait for a signature.
            File.Delete(ConfigPath + ".sig");
            await File.WriteAllTextAsync(ConfigPath, Config(plc.Port, 3, "100-599"));
            Assert.True(await gateway.WaitForStdoutAsync("\"reload-failed\"", 60_000), gateway.Stdout + gateway.Stderr);
            Assert.Matches(@"^file changed: kept policy sha256 [0-9a-f]{64}; .+ sha256 [0-9a-f]{64} refused: unsigned: ", Details(gateway.Stdout, "reload-failed")[0]);
            Assert.Equal(0x86, await Write500());

            // 2. Signed by a key the gateway does not trust: refused (the new FILE.sig alone triggers the reload).
            await SignAsync(stranger, ConfigPath);
            Assert.True(await WaitForCountAsync(gateway, "reload-failed", 2), gateway.Stdout + gateway.Stderr);
            Assert.Contains("refused: unknown signer: key ", Details(gateway.Stdout, "reload-failed")[1], StringComparison.Ordinal);
            Assert.Equal(0x86, await Write500());

            // 3. Signed with the trusted key: version 3 applies, and the event names its version and signer.
            await SignAsync(key, ConfigPath);
            Assert.True(await gateway.WaitForStdoutAsync("\"reloaded\"", 60_000), gateway.Stdout + gateway.Stderr);
            Assert.Matches($"^file changed: policy sha256 [0-9a-f]{{64}} -> [0-9a-f]{{64}} \\([^)]+, [0-9]+ bytes\\); version 3, signer {keyId}$", Assert.Single(Details(gateway.Stdout, "reloaded")));
            Assert.Equal(6, await Write500());
            Assert.Contains("version: 3\n", await File.ReadAllTextAsync(Path.Combine(StateDir, "config-version")), StringComparison.Ordinal);

            // 3b. The usual order, file then signature a moment later: the reload waits for the signature, so one
            // reload and no refusal in between.
            await File.WriteAllTextAsync(ConfigPath, "# release 4\n" + Config(plc.Port, 4, "100-599"));
            await SignAsync(key, ConfigPath);
            Assert.True(await WaitForCountAsync(gateway, "reloaded", 2), gateway.Stdout + gateway.Stderr);
            Assert.EndsWith($"; version 4, signer {keyId}", Details(gateway.Stdout, "reloaded")[1], StringComparison.Ordinal);
            Assert.Equal(2, Details(gateway.Stdout, "reload-failed").Length);

            // 4. Rollback: the old, validly signed version 2 put back (signature first, then the file). Refused.
            await ReplaceAsync(ConfigPath + ".sig", v2Sig);
            await ReplaceAsync(ConfigPath, v2);
            Assert.True(await WaitForCountAsync(gateway, "reload-failed", 3), gateway.Stdout + gateway.Stderr);
            Assert.Contains("refused: rollback from version 4 to 2 refused", Details(gateway.Stdout, "reload-failed")[2], StringComparison.Ordinal);
            Assert.Equal(6, await Write500()); // version 4 still in force

            await stop.CancelAsync();
            await traffic;
            Assert.True(failures.Count == 0, "traffic failed during the refused reloads: " + string.Join("; ", failures));
            Assert.True(reads >= 100, $"only {reads} reads were answered");
            Assert.Equal(2, Details(gateway.Stdout, "reloaded").Length);
            Assert.Empty(Details(gateway.Stdout, "unsigned-config"));

            gateway.Signal(Processes.SIGTERM);
            Assert.Equal(0, await gateway.WaitForExitAsync());
        }
        finally
        {
            await gateway.DisposeAsync();
        }

        // 5. Restart on the rolled-back (validly signed) version 2: the floor was kept in --state, so nothing starts.
        await using (var restarted = Run("--trust", TrustDir, "--state", StateDir))
        {
            Assert.Equal(2, await restarted.WaitForExitAsync(60_000));
            Assert.Contains("refused: rollback from version 4 to 2 refused", restarted.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Run_WithoutTrust_AuditsUnsignedConfig_AtStartAndAtEachReload_AsAWarning()
    {
        using var ready = new ReadySignal();
        await using var gw = await GatewayProcess.StartAsync(ready: ready);
        Assert.True(await gw.Gateway.WaitForStdoutAsync("\"unsigned-config\""), gw.Gateway.Stdout + gw.Gateway.Stderr);
        Assert.Matches("^config .+ sha256 [0-9a-f]{64}; version none, unsigned$", Assert.Single(Details(gw.Gateway.Stdout, "started")));
        Assert.Matches("^config .+ sha256 [0-9a-f]{64} was loaded without a signature check: run has no --trust DIR", Assert.Single(Details(gw.Gateway.Stdout, "unsigned-config")));
        Assert.Contains("is not signature-checked (no --trust DIR)", gw.Gateway.Stderr, StringComparison.Ordinal);
        Assert.True(await ready.WaitAsync(), "no READY=1 (the watcher is set up just after 'started')\n" + gw.Gateway.Stderr);
        await File.WriteAllTextAsync(gw.ConfigPath, "version: 5\n" + GatewayProcess.Config(gw.Plc.Port, GatewayProcess.Policy));
        Assert.True(await gw.Gateway.WaitForStdoutAsync("\"reloaded\"", 30_000), gw.Gateway.Stdout + gw.Gateway.Stderr);
        Assert.EndsWith("; version 5, unsigned", Assert.Single(Details(gw.Gateway.Stdout, "reloaded")), StringComparison.Ordinal);
        Assert.True(await WaitForCountAsync(gw.Gateway, "unsigned-config", 2), gw.Gateway.Stdout);
    }

    private static async Task ReplaceAsync(string path, byte[] bytes)
    {
        string temporary = path + ".new";
        await File.WriteAllBytesAsync(temporary, bytes);
        File.Move(temporary, path, overwrite: true);
    }

    private static async Task<bool> WaitForCountAsync(Processes.Running gateway, string reason, int count, int timeoutMs = 60_000)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < timeoutMs && !gateway.Process.HasExited)
        {
            if (Details(gateway.Stdout, reason).Length >= count)
            {
                return true;
            }
            await Task.Delay(100);
        }
        return Details(gateway.Stdout, reason).Length >= count;
    }

    [GeneratedRegex(@"listener hmi-plc1 on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenLine();

    [GeneratedRegex(@"^key-id: ([0-9a-f]{64})$", RegexOptions.Multiline)]
    private static partial Regex KeyIdLine();
}
