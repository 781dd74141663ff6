using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using EdgeShield.Policy;
using EdgeShield.Simulators;
using EdgeShield.Telemetry;
using EdgeShield.Transport;

// usage: dotnet run -c Release --project bench/EdgeShield.Telemetry.Bench -- [--seconds N] [--tags N] [--replay N]
//        dotnet run -c Release --project bench/EdgeShield.Telemetry.Bench -- --outage SECONDS [--tags N] [--every-ms N] [--warm N]
//        (the second form is what bench/telemetry-outage.sh runs: a real broker outage, see Outage.cs)
// Starts its own Mosquitto (Debian package) on a free loopback port.
if (Array.IndexOf(args, "--outage") >= 0)
{
    return await Outage.RunAsync(Arg("--outage", 60), Arg("--tags", 500), Arg("--every-ms", 100), Arg("--warm", 10));
}
int seconds = Arg("--seconds", 10);
int tagCount = Arg("--tags", 1000);
int replayCount = Arg("--replay", 200_000);

int port;
using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
{
    probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
    port = ((IPEndPoint)probe.LocalEndPoint!).Port;
}
string dir = Path.Combine(Path.GetTempPath(), "es-telemetry-bench-" + Environment.ProcessId);
Directory.CreateDirectory(dir);
File.WriteAllText(Path.Combine(dir, "mosquitto.conf"), $"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n");
using var mosquitto = Process.Start(new ProcessStartInfo("mosquitto", ["-c", Path.Combine(dir, "mosquitto.conf")]) { RedirectStandardError = true })!;
await Task.Delay(500);
try
{
    // 1. Sustained: one device, tagCount holding registers in blocks of 125, polled every 50 ms.
    await using var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions { Units = [1] }, CancellationToken.None);
    var tags = Enumerable.Range(0, tagCount).Select(i => new TagConfig { Name = "t" + i, Table = TagTable.Holding, Address = (ushort)i, Type = TagType.UInt16 }).ToArray();
    var config = new TelemetryConfig
    {
        Mqtt = new MqttConfig { Broker = new Uri($"mqtt://127.0.0.1:{port}"), ClientId = "bench", TopicPrefix = "bench" },
        Buffer = new BufferConfig { Path = Path.Combine(dir, "buffer1"), MaxMb = 512 },
        Poll = [new PollConfig { Device = "plc1", Upstream = new UpstreamAddress("tcp", "127.0.0.1", plc.Port), Every = TimeSpan.FromMilliseconds(50), Tags = tags }],
    };
    long published, polled;
    await using (var service = new TelemetryService(config, "bench", "lab", a => new TcpUpstream(a.Host, a.Port, TimeSpan.FromSeconds(3)), _ => { }, TimeSpan.FromSeconds(1)))
    {
        service.Start();
        await Task.Delay(1000);
        long p0 = service.Published, v0 = service.ValuesPolled;
        var sw = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        published = service.Published - p0;
        polled = service.ValuesPolled - v0;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"sustained: {tagCount} tags every 50 ms for {sw.Elapsed.TotalSeconds:F1} s: {polled / sw.Elapsed.TotalSeconds:F0} values/s polled, {published / sw.Elapsed.TotalSeconds:F0} messages/s acknowledged by Mosquitto (QoS 1), backlog {service.PendingBytes} bytes"));
    }

    // 2. Replay: replayCount messages already in the disk buffer (an outage's worth), then the broker is there.
    string replayDir = Path.Combine(dir, "buffer2");
    using (var log = new MessageLog(replayDir, 1L << 30, _ => { }))
    {
        var topic = "bench/plc1/t0"u8.ToArray();
        var payload = Encoding.UTF8.GetBytes("{\"ts\":\"2026-01-01T00:00:00.000Z\",\"v\":12345,\"q\":\"good\",\"seq\":123456}");
        var batch = new byte[MessageLog.EncodedLength(topic.Length, payload.Length) * 1000];
        for (int done = 0; done < replayCount; done += 1000)
        {
            int at = 0;
            for (int i = 0; i < 1000; i++)
            {
                at += MessageLog.Encode(batch.AsSpan(at), topic, payload, retain: false);
            }
            log.Append(batch.AsSpan(0, at), 1000);
        }
    }
    var replayConfig = config with { Buffer = new BufferConfig { Path = replayDir, MaxMb = 1024 }, Poll = [] };
    await using (var service = new TelemetryService(replayConfig, "bench", "lab", _ => null, _ => { }, TimeSpan.FromSeconds(1)))
    {
        var sw = Stopwatch.StartNew();
        service.Start();
        while (service.PendingBytes > 0 && sw.Elapsed < TimeSpan.FromMinutes(5))
        {
            await Task.Delay(20);
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"replay: {replayCount} buffered messages drained to Mosquitto in {sw.Elapsed.TotalSeconds:F2} s: {replayCount / sw.Elapsed.TotalSeconds:F0} messages/s (QoS 1, in order)"));
    }
}
finally
{
    mosquitto.Kill();
    mosquitto.WaitForExit();
    Directory.Delete(dir, recursive: true);
}
return 0;

int Arg(string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}
