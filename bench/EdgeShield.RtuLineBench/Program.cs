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
// usage: dotnet run -c Release --project bench/EdgeShield.RtuLineBench -- --baud 19200 --seconds 10 --clients 4 [--mode gateway|raw]
// --mode raw: no gateway, one minimal synchronous master on the pty (write, blocking read, spin t3.5):
// the ceiling of the rig itself (socat relay + paced simulator) on this machine at this moment.
int baud = 19200, seconds = 10, clients = 4;
string mode = "gateway";
for (int i = 0; i + 1 < args.Length; i += 2)
{
    if (args[i] == "--mode")
    {
        mode = args[i + 1];
        continue;
    }
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
    if (mode == "raw")
    {
        RawMaster.Run(master, baud, seconds);
        return;
    }
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
    double ownMicros = bus.Counters.IdleBeyondSilenceTicks * 1e6 / Stopwatch.Frequency / Math.Max(1, bus.Counters.RequestsSent);
    double clientMicros = latencyTicks * 1e6 / Stopwatch.Frequency / Math.Max(1, done + errors);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"baud {baud} clients {clients} seconds {seconds}: transactions {done} errors {errors} rate {done / (elapsedMicros / 1e6):F1}/s ideal {idealMicros:F0} us/transaction utilisation {utilisation:F3} bus write-to-reply {busMicros:F0} us (ideal {idealMicros - timing.InterFrameMicros:F0}) client round trip {clientMicros:F0} us (with queueing behind {clients - 1} others) simulator reply lateness {plc.MeanReplyLatenessMicros:F0} us; EdgeShield's own idle line time beyond t3.5 {ownMicros:F0} us/transaction → gateway-attributable utilisation {idealMicros / (idealMicros + ownMicros):F3}"));
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

internal static class RawMaster
{
    public static void Run(string device, int baud, int seconds)
    {
        using var port = new System.IO.Ports.SerialPort(device, baud, System.IO.Ports.Parity.Even, 8, System.IO.Ports.StopBits.One);
        port.Open();
        using var stream = new FileStream(device, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 0);
        var timing = new RtuTiming(baud, 11);
        double idealMicros = timing.FrameMicros(8 + 25) + (2 * timing.InterFrameMicros);
        long t35 = (long)(timing.InterFrameMicros * Stopwatch.Frequency / 1e6);
        byte[] request = [1, 3, 0, 0, 0, 10, 0xC5, 0xCD];
        var reply = new byte[64];
        long start = 0, end = Stopwatch.GetTimestamp() + ((seconds + 1) * Stopwatch.Frequency);
        long count = 0;
        for (long i = 0; Stopwatch.GetTimestamp() < end; i++)
        {
            if (i == 20)
            {
                start = Stopwatch.GetTimestamp();
                count = 0;
            }
            stream.Write(request);
            int got = 0;
            while (got < 25)
            {
                got += stream.Read(reply, got, reply.Length - got);
            }
            long quietAt = Stopwatch.GetTimestamp() + t35;
            while (Stopwatch.GetTimestamp() < quietAt)
            {
                Thread.SpinWait(20);
            }
            count++;
        }
        double elapsed = (Stopwatch.GetTimestamp() - start) * 1e6 / Stopwatch.Frequency;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"raw master (no gateway) baud {baud} seconds {seconds}: transactions {count} rate {count / (elapsed / 1e6):F1}/s ideal {idealMicros:F0} us/transaction utilisation {count * idealMicros / elapsed:F3}"));
    }
}
