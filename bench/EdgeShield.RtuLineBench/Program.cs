using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using EdgeShield.Gateway;
using EdgeShield.Policy;
using EdgeShield.Protocols.Modbus;
using EdgeShield.Simulators;

// Line utilisation of a serial bus behind the gateway: C Modbus TCP clients read 10 holding
// registers in a loop through EdgeShield to the paced RTU simulator on a socat pty pair.
//   utilisation = transactions × T_ideal / elapsed
//   T_ideal     = (request bytes + reply bytes) × bits per character / baud + 2 × t3.5
// usage: dotnet run -c Release --project bench/EdgeShield.RtuLineBench -- --baud 19200 --seconds 10 --clients 4
int baud = 19200, seconds = 10, clients = 4;
for (int i = 0; i + 1 < args.Length; i += 2)
{
    int value = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
    switch (args[i])
    {
        case "--baud": baud = value; break;
        case "--seconds": seconds = Math.Clamp(value, 1, 600); break;
        case "--clients": clients = Math.Clamp(value, 1, 64); break;
        default: throw new ArgumentException($"unknown argument {args[i]}");
    }
}

string dir = Directory.CreateTempSubdirectory("es-linebench-").FullName;
string master = Path.Combine(dir, "master"), device = Path.Combine(dir, "device");
var socatInfo = new ProcessStartInfo("socat") { UseShellExecute = false, RedirectStandardError = true };
socatInfo.ArgumentList.Add($"pty,raw,echo=0,link={master}");
socatInfo.ArgumentList.Add($"pty,raw,echo=0,link={device}");
using var socat = Process.Start(socatInfo)!;
for (int i = 0; i < 500 && !(File.Exists(master) && File.Exists(device)); i++)
{
    Thread.Sleep(10);
}
try
{
    using var plc = RtuPlcSimulator.Start(new RtuPlcOptions { Device = device, Baud = baud, Unit = 1 });
    var yaml = $"""
        serial:
          - name: bus
            device: {master}
            baud: {baud}
            response-timeout-ms: 500
            queue-depth: 256
        listeners:
          - name: hmi
            bind: 127.0.0.1:0
            protocol: modbus-tcp
            upstream: serial://bus
            policy: p
        policies:
          p:
            mode: enforce
            rules:
              - name: reads
                function: [read]
        """;
    var loaded = ConfigLoader.LoadText(yaml, "bench.yaml");
    if (loaded.HasErrors)
    {
        throw new InvalidOperationException(string.Join("\n", loaded.Diagnostics));
    }
    await using var gateway = await EdgeGateway.StartAsync(loaded.Config!, NullAudit.Instance);
    var bus = gateway.SerialBuses["bus"];
    for (int i = 0; i < 300 && !bus.IsAvailable; i++)
    {
        await Task.Delay(10);
    }
    var endPoint = gateway.Listeners[0].LocalEndPoint;

    var timing = new RtuTiming(baud, 11);
    const int requestBytes = 8, replyBytes = 5 + 20;
    double idealMicros = timing.FrameMicros(requestBytes + replyBytes) + (2 * timing.InterFrameMicros);

    using var stop = new CancellationTokenSource();
    long transactions = 0, errors = 0, latencyTicks = 0;
    var warmup = TimeSpan.FromSeconds(1);
    var startedAt = Stopwatch.GetTimestamp() + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
    var tasks = Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endPoint);
        var request = new byte[12];
        var reply = new byte[64];
        for (ushort tid = 0; !stop.IsCancellationRequested; tid++)
        {
            MbapFramer.WriteHeader(request, tid, 1, 5);
            request[7] = 3; request[8] = 0; request[9] = (byte)(c * 10); request[10] = 0; request[11] = 10;
            long t0 = Stopwatch.GetTimestamp();
            await socket.SendAsync(request, SocketFlags.None);
            int got = 0;
            while (got < 6 || got < 6 + ((reply[4] << 8) | reply[5]))
            {
                int n = await socket.ReceiveAsync(reply.AsMemory(got), SocketFlags.None);
                if (n == 0)
                {
                    return;
                }
                got += n;
            }
            if (t0 >= startedAt)
            {
                Interlocked.Increment(ref (reply[7] == 3 ? ref transactions : ref errors));
                Interlocked.Add(ref latencyTicks, Stopwatch.GetTimestamp() - t0);
            }
        }
    })).ToList();
    await Task.Delay(warmup + TimeSpan.FromSeconds(seconds));
    long endedAt = Stopwatch.GetTimestamp();
    long done = Interlocked.Read(ref transactions);
    stop.Cancel();
    await Task.WhenAny(Task.WhenAll(tasks), Task.Delay(2000));
    double elapsedMicros = (endedAt - startedAt) * 1e6 / Stopwatch.Frequency;
    double utilisation = done * idealMicros / elapsedMicros;
    double busMicros = bus.Counters.TransactionTicks * 1e6 / Stopwatch.Frequency / Math.Max(1, bus.Counters.Transactions);
    double clientMicros = latencyTicks * 1e6 / Stopwatch.Frequency / Math.Max(1, done + errors);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"baud {baud} clients {clients} seconds {seconds}: transactions {done} errors {errors} rate {done / (elapsedMicros / 1e6):F1}/s ideal {idealMicros:F0} us/transaction utilisation {utilisation:F3} bus write-to-reply {busMicros:F0} us (ideal {idealMicros - timing.InterFrameMicros:F0}) client round trip {clientMicros:F0} us (with queueing behind {clients - 1} others)"));
}
finally
{
    socat.Kill();
    socat.WaitForExit(5000);
    Directory.Delete(dir, recursive: true);
}

internal sealed class NullAudit : IAuditSink
{
    public static readonly NullAudit Instance = new();
    public void Write(in AuditEvent auditEvent)
    {
    }
}
