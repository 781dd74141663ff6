using System.Diagnostics;
using System.Net;
using EdgeShield.Simulators;

namespace EdgeShield.Telemetry.Tests;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public class TlsTests
{
    private static void OpenSsl(string dir, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo("openssl", args) { WorkingDirectory = dir, RedirectStandardError = true, RedirectStandardOutput = true })!;
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    /// <summary>mqtts:// to a Mosquitto with a certificate from a test CA: trusted with tls.ca, refused without it.</summary>
    [Fact]
    public async Task Mqtts_WithCaFile_Publishes_WithoutItTheBrokerIsNotTrusted()
    {
        string dir = TestConfig.TempDir();
        OpenSsl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=edgeshield-test-ca");
        OpenSsl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
        File.WriteAllText(Path.Combine(dir, "ext"), "subjectAltName=IP:127.0.0.1\n");
        OpenSsl(dir, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext");
        // Mosquitto started as root drops to the mosquitto user before it reads its key.
        foreach (var file in new[] { "ca.crt", "server.crt", "server.key" })
        {
            File.SetUnixFileMode(Path.Combine(dir, file), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
        await using var broker = new Mosquitto($"cafile {dir}/ca.crt\ncertfile {dir}/server.crt\nkeyfile {dir}/server.key");
        await broker.StartAsync();
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
        string Yaml(string tls) => $$"""
            telemetry:
              mqtt: { broker: mqtts://127.0.0.1:{{broker.Port}}, client-id: tls1, topic-prefix: es/tls{{tls}} }
              buffer: { path: {{TestConfig.TempDir()}} }
              poll:
                - { device: plc1, upstream: "tcp://127.0.0.1:{{plc.Port}}", every: 100ms, tags: [ { name: a, table: holding, address: 0 } ] }
            """;
        await using (var trusted = TestConfig.Service(TestConfig.Load(Yaml($", tls: {{ ca: {dir}/ca.crt }}"))))
        {
            trusted.Start();
            await TestConfig.Until(() => trusted.BrokerConnected && trusted.Published >= 5);
        }
        var notices = new System.Collections.Concurrent.ConcurrentQueue<TelemetryNotice>();
        await using (var untrusted = TestConfig.Service(TestConfig.Load(Yaml("")), notices))
        {
            untrusted.Start();
            await TestConfig.Until(() => notices.Any(n => n.Reason == "broker-unavailable") && untrusted.ValuesPolled >= 5);
            Assert.False(untrusted.BrokerConnected);
            Assert.Equal(0, untrusted.Published);
        }
    }
}
