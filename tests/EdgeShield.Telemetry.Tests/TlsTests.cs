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

    /// <summary>A test CA, a server certificate for 127.0.0.1 and client certificates, made by openssl in <paramref name="dir"/>.</summary>
    private static void MakeCertificates(string dir)
    {
        OpenSsl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=edgeshield-test-ca");
        OpenSsl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
        File.WriteAllText(Path.Combine(dir, "server.ext"), "subjectAltName=IP:127.0.0.1\n");
        OpenSsl(dir, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext");
        File.WriteAllText(Path.Combine(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
        OpenSsl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=edgeshield-gw");
        OpenSsl(dir, "x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.crt", "-days", "2", "-extfile", "client.ext");
        // A client certificate from another CA, with the same name: the broker must not take it.
        OpenSsl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-ca.key", "-out", "other-ca.crt", "-days", "2", "-subj", "/CN=some-other-ca");
        OpenSsl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.csr", "-subj", "/CN=edgeshield-gw");
        OpenSsl(dir, "x509", "-req", "-in", "other.csr", "-CA", "other-ca.crt", "-CAkey", "other-ca.key", "-CAcreateserial", "-out", "other.crt", "-days", "2", "-extfile", "client.ext");
        // Mosquitto started as root drops to the mosquitto user before it reads its files.
        foreach (var file in Directory.GetFiles(dir))
        {
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
    }

    /// <summary>
    /// A TLS listener with <c>require_certificate true</c>: without a client certificate, or with one from
    /// another CA, the broker refuses the connection; that is reported (<c>broker-unavailable</c>), the
    /// service keeps polling into its buffer, and with the right certificate the buffered messages arrive
    /// (at mosquitto_sub, itself authenticated by a client certificate) from seq 0, in order.
    /// </summary>
    [Fact]
    public async Task Mqtts_ClientCertificateRequired_WithoutOrFromAnotherCa_Refused_Kept_ThenDeliveredWithIt()
    {
        string dir = TestConfig.TempDir();
        MakeCertificates(dir);
        await using var broker = new Mosquitto($"cafile {dir}/ca.crt\ncertfile {dir}/server.crt\nkeyfile {dir}/server.key\nrequire_certificate true");
        await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
        await broker.StartAsync();
        var lines = new System.Collections.Concurrent.ConcurrentQueue<(string Topic, string Payload)>();
        string[] consumerTls = ["--cafile", $"{dir}/ca.crt", "--cert", $"{dir}/client.crt", "--key", $"{dir}/client.key"];
        await using var consumer = MosquittoSub.Start(broker.Port, "es/cc/#", "cc-consumer", lines, consumerTls);
        // The consumer is subscribed once a probe published through the TLS listener reaches it.
        await TestConfig.Until(() =>
        {
            using var probe = Process.Start(new ProcessStartInfo("mosquitto_pub", ["-h", "127.0.0.1", "-p", broker.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-t", "es/cc/probe", "-m", "x", .. consumerTls]) { RedirectStandardError = true })!;
            probe.WaitForExit();
            return lines.Any(l => l.Topic == "es/cc/probe");
        });

        string buffer = Path.Combine(dir, "buffer");
        string Yaml(string tls) => $$"""
            telemetry:
              mqtt: { broker: mqtts://127.0.0.1:{{broker.Port}}, client-id: cc1, topic-prefix: es/cc, tls: { ca: {{dir}}/ca.crt{{tls}} } }
              buffer: { path: {{buffer}} }
              poll:
                - { device: plc1, upstream: "tcp://127.0.0.1:{{plc.Port}}", every: 50ms, tags: [ { name: a, table: holding, address: 0 } ] }
            """;
        long polledWhileRefused = 0;
        foreach (string wrong in new[] { "", $", cert: {dir}/other.crt, key: {dir}/other.key" })
        {
            var notices = new System.Collections.Concurrent.ConcurrentQueue<TelemetryNotice>();
            await using (var refused = TestConfig.Service(TestConfig.Load(Yaml(wrong)), notices))
            {
                refused.Start();
                await TestConfig.Until(() => notices.Any(n => n.Reason == "broker-unavailable") && refused.ValuesPolled >= 5);
                Assert.False(refused.BrokerConnected);
                Assert.Equal(0, refused.Published);
                Assert.True(refused.PendingBytes > 0);
                await refused.StopPollingAsync();
                polledWhileRefused += refused.ValuesPolled;
            }
            Assert.DoesNotContain(lines, l => l.Topic.StartsWith("es/cc/plc1/", StringComparison.Ordinal));
        }

        await using (var accepted = TestConfig.Service(TestConfig.Load(Yaml($", cert: {dir}/client.crt, key: {dir}/client.key"))))
        {
            accepted.Start();
            await TestConfig.Until(() => lines.Count(l => l.Topic == "es/cc/plc1/a") >= polledWhileRefused + 5);
            Assert.True(accepted.BrokerConnected);
        }
        var seqs = lines.Where(l => l.Topic == "es/cc/plc1/a").Select(l => TestConfig.Json(System.Text.Encoding.UTF8.GetBytes(l.Payload)).GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => (long)i), seqs);
    }
}
