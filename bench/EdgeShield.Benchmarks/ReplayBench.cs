using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using EdgeShield.Policy;
using EdgeShield.Policy.Replay;
using EdgeShield.Protocols.Capture;

namespace EdgeShield.Benchmarks;

/// <summary>
/// <c>replay</c> throughput against tshark's Modbus dissection on one large capture built at bench
/// time from tests/data/modbus (port-502 captures) repeated with distinct IPv4 addresses per copy
/// (identical repeated flows would be taken for retransmissions). Nothing large is committed.
/// </summary>
internal static class ReplayBench
{
    private const string Usage = """
        usage: EdgeShield.Benchmarks replay [--frames N] [--rounds N] [--keep DIR] [--no-tshark]
            builds a capture of at least N frames (default 300000) in a temp dir, replays it through a
            policy in process (best of --rounds, default 5), times tshark -T fields -e modbus.func_code
            on the same file, and prints frames/s for both and bytes allocated per frame
        """;

    private const string Policy = """
        policies:
          p:
            mode: enforce
            rules:
              - name: reads
                function: [read]
                address: 0-9999
              - name: writes
                function: [write]
                value: 0-60000
                rate: 1000/s
              - name: diagnostics
                function: [diagnostics]
        """;

    public static int Run(string[] args)
    {
        int frames = 300_000, rounds = 5;
        string? keep = null;
        bool tshark = true;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--frames" when i + 1 < args.Length: frames = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rounds" when i + 1 < args.Length: rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--keep" when i + 1 < args.Length: keep = args[++i]; break;
                case "--no-tshark": tshark = false; break;
                default: Console.Error.WriteLine(Usage); return 2;
            }
        }
        string dir = keep ?? Path.Combine(Path.GetTempPath(), $"edgeshield-replay-bench-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "large.pcapng");
        try
        {
            int written = BuildCapture(FindData(), path, frames);
            var bytes = File.ReadAllBytes(path);
            Console.WriteLine($"capture: {path}, {written} frames, {bytes.Length / 1e6:F1} MB");

            var policy = ConfigLoader.LoadText(Policy, "bench.yaml").Config!.Policies["p"];
            if (!CaptureReader.TryOpen(bytes, out var reader, out _) || reader is null)
            {
                throw new InvalidDataException("bench capture unreadable");
            }
            var replay = new PolicyReplay(policy);
            replay.Run(reader); // warm-up: JIT, flow pool, tables
            double best = double.MaxValue;
            long allocated = 0;
            for (int r = 0; r < rounds; r++)
            {
                replay.Clear();
                reader.Reset();
                long before = GC.GetAllocatedBytesForCurrentThread();
                long start = Stopwatch.GetTimestamp();
                replay.Run(reader);
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                best = Math.Min(best, seconds);
            }
            long total = replay.Scanner.Frames;
            Console.WriteLine($"replay: {total} frames, {replay.Requests} requests ({replay.Allowed} allowed, {replay.Denied} denied, {replay.Malformed} malformed), {replay.Scanner.Connections} connections");
            Console.WriteLine($"replay: best of {rounds}: {best * 1000:F1} ms = {total / best:N0} frames/s; allocated in the last round {allocated} B = {(double)allocated / total:F3} B/frame");
            if (tshark)
            {
                double t = TimeTshark(path, out long lines);
                Console.WriteLine($"tshark -T fields -e modbus.func_code: {t:F2} s = {total / t:N0} frames/s ({lines} lines)");
                Console.WriteLine($"ratio: replay is {t / best:F0}x tshark's Modbus dissection rate");
            }
            return 0;
        }
        finally
        {
            if (keep is null)
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    private static double TimeTshark(string path, out long lines)
    {
        var start = new ProcessStartInfo("tshark", ["-r", path, "-T", "fields", "-e", "modbus.func_code"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        lines = 0;
        while (process.StandardOutput.ReadLine() is not null)
        {
            lines++;
        }
        process.WaitForExit();
        watch.Stop();
        return watch.Elapsed.TotalSeconds;
    }

    private static string FindData()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "data", "modbus");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException("tests/data/modbus not found");
    }

    /// <summary>
    /// Writes a pcapng with one interface per link type, repeating every port-502 capture until
    /// <paramref name="minFrames"/> frames, each copy with IPv4 octets 2-3 of both addresses set to the
    /// copy number and its time shifted after the previous copy.
    /// </summary>
    internal static int BuildCapture(string dataDir, string path, int minFrames)
    {
        var sources = Directory.GetFiles(dataDir)
            .Where(f => !f.Contains("1502", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(File.ReadAllBytes)
            .ToArray();
        using var output = new BufferedStream(File.Create(path), 1 << 20);
        var linkTypes = new List<int>();
        var block = new ArrayBufferWriter<byte>();
        WriteBlock(output, 0x0A0D0D0A, [0x4D, 0x3C, 0x2B, 0x1A, 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        int frames = 0;
        long clock = 1_700_000_000_000_000_000;
        for (int copy = 0; frames < minFrames; copy++)
        {
            foreach (var source in sources)
            {
                if (!CaptureReader.TryOpen(source, out var reader, out _) || reader is null)
                {
                    continue;
                }
                long first = -1, last = 0;
                while (reader.TryReadPacket(out var packet) == OperationStatus.Done)
                {
                    int ifc = linkTypes.IndexOf(packet.LinkType);
                    if (ifc < 0)
                    {
                        linkTypes.Add(packet.LinkType);
                        ifc = linkTypes.Count - 1;
                        var idb = new byte[8];
                        BinaryPrimitives.WriteUInt16LittleEndian(idb, (ushort)packet.LinkType);
                        BinaryPrimitives.WriteUInt32LittleEndian(idb.AsSpan(4), 262144);
                        WriteBlock(output, 1, idb); // microsecond resolution by default
                    }
                    if (first < 0)
                    {
                        first = packet.TimestampNs;
                    }
                    last = packet.TimestampNs;
                    long ts = (clock + (packet.TimestampNs - first)) / 1000;
                    var data = packet.Data.ToArray();
                    Readdress(packet.LinkType, data, copy);
                    var epb = new byte[20 + ((data.Length + 3) & ~3)];
                    BinaryPrimitives.WriteUInt32LittleEndian(epb, (uint)ifc);
                    BinaryPrimitives.WriteUInt32LittleEndian(epb.AsSpan(4), (uint)(ts >> 32));
                    BinaryPrimitives.WriteUInt32LittleEndian(epb.AsSpan(8), (uint)ts);
                    BinaryPrimitives.WriteUInt32LittleEndian(epb.AsSpan(12), (uint)data.Length);
                    BinaryPrimitives.WriteUInt32LittleEndian(epb.AsSpan(16), (uint)packet.OriginalLength);
                    data.CopyTo(epb, 20);
                    WriteBlock(output, 6, epb);
                    frames++;
                }
                clock += Math.Max(0, last - first) + 1_000_000;
            }
        }
        return frames;
    }

    private static void Readdress(int linkType, byte[] data, int copy)
    {
        int ip = linkType switch
        {
            1 when data.Length > 14 && data[12] == 0x08 && data[13] == 0x00 => 14,
            113 when data.Length > 16 => 16,
            276 when data.Length > 20 => 20,
            0 or 108 => 4,
            101 or 12 or 14 or 228 => 0,
            _ => -1,
        };
        if (ip < 0 || data.Length < ip + 20 || (data[ip] >> 4) != 4)
        {
            return;
        }
        foreach (int address in (ReadOnlySpan<int>)[ip + 12, ip + 16])
        {
            data[address + 1] = (byte)(copy >> 8);
            data[address + 2] = (byte)copy;
        }
    }

    private static void WriteBlock(Stream output, uint type, byte[] body)
    {
        Span<byte> header = stackalloc byte[8];
        int length = 12 + body.Length;
        BinaryPrimitives.WriteUInt32LittleEndian(header, type);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], (uint)length);
        output.Write(header);
        output.Write(body);
        output.Write(header[4..]);
    }
}

/// <summary>The replay frame loop over one real capture (BenchmarkDotNet, per capture).</summary>
[MemoryDiagnoser]
public class ReplayBenchmarks
{
    private CaptureReader _reader = null!;
    private PolicyReplay _replay = null!;

    [GlobalSetup]
    public void Setup()
    {
        var bytes = File.ReadAllBytes(Path.Combine(FindModbus(), "iti__ModbusTCP__Modbus__modbus_test.pcap"));
        CaptureReader.TryOpen(bytes, out var reader, out _);
        _reader = reader!;
        var policy = ConfigLoader.LoadText("policies:\n  p:\n    mode: enforce\n    rules:\n      - function: [read]\n        address: 0-999\n", "b.yaml").Config!.Policies["p"];
        _replay = new PolicyReplay(policy);
    }

    [Benchmark(Description = "replay modbus_test.pcap (2257 frames)")]
    public long Replay()
    {
        _replay.Clear();
        _reader.Reset();
        _replay.Run(_reader);
        return _replay.Requests;
    }

    private static string FindModbus()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "data", "modbus");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException("tests/data/modbus not found");
    }
}
