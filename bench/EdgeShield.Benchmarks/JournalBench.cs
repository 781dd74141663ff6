using System.Diagnostics;
using System.Globalization;
using EdgeShield.Gateway;
using EdgeShield.Policy;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Benchmarks;

/// <summary>
/// <c>journal</c>: audit journal throughput (docs/AUDIT.md) — the audit writer's whole path (JSON, SHA-256 chain,
/// ECDSA checkpoints with their fsync, one write(2) per batch) against the same writer without a journal.
/// </summary>
internal static class JournalBench
{
    private const string Usage = """
        usage: EdgeShield.Benchmarks journal [--events N] [--checkpoint-every N] [--rounds N] [--dir DIR]
            writes N denied events (default 200000) through an AuditLog to /dev/null, without and with an
            audit journal in DIR (default a temp dir, removed after), best of --rounds (default 3); prints
            events/s for both, checkpoints written, and the journal's bytes per event
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        int events = 200_000, every = 1000, rounds = 3;
        string? dir = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--events": events = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--checkpoint-every": every = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--dir": dir = args[++i]; break;
                default:
                    Console.Error.WriteLine(Usage);
                    return 2;
            }
        }
        string root = dir ?? Directory.CreateTempSubdirectory("edgeshield-journal-bench-").FullName;
        try
        {
            double best = 0, bestPlain = 0;
            long bytes = 0;
            int checkpoints = 0;
            for (int round = 0; round < rounds; round++)
            {
                bestPlain = Math.Max(bestPlain, await TimeAsync(events, null));
                string journalDir = Path.Combine(root, $"audit-{round}");
                using var key = AuditKey.LoadOrCreate(Path.Combine(root, "audit-key.pem"));
                // max-mb large enough that no segment is removed: the bench measures the chain, not rotation.
                var config = new AuditJournalConfig { MaxMb = 1024, CheckpointEvery = every, CheckpointSeconds = 10 };
                var journal = AuditJournal.Open(journalDir, config, key);
                best = Math.Max(best, await TimeAsync(events, journal));
                checkpoints = journal.CheckpointsWritten;
                bytes = AuditJournal.Segments(journalDir).Sum(s => new FileInfo(s).Length);
                Directory.Delete(journalDir, recursive: true);
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"audit writer without journal: {bestPlain:F0} events/s"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"audit writer with journal:    {best:F0} events/s (SHA-256 chain, checkpoint every {every} lines: {checkpoints} ECDSA P-256 signatures + fsyncs, {(double)bytes / events:F0} bytes/event on disk)"));
            return 0;
        }
        finally
        {
            if (dir is null)
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }

    /// <summary>Events per second from the first Write to the last line written (the writer drained and closed).</summary>
    private static async Task<double> TimeAsync(int events, AuditJournal? journal)
    {
        var sw = Stopwatch.StartNew();
        // A queue as long as the run and no flood limit: every event is a line, none summarised.
        await using (var log = new AuditLog(Stream.Null, eventsPerSecond: int.MaxValue / 8, queueCapacity: events + 16, journal: journal))
        {
            var source = SourceAddress.From(System.Net.IPAddress.Parse("10.20.0.5"));
            var time = DateTime.UtcNow;
            for (int i = 0; i < events; i++)
            {
                log.Write(new AuditEvent
                {
                    Time = time,
                    Kind = AuditEventKind.Denied,
                    Listener = "hmi-plc1",
                    Source = source,
                    SourcePort = (ushort)(40000 + (i & 1023)),
                    Unit = 1,
                    FunctionCode = 6,
                    WriteSpan = new AddressSpan(ModbusTable.HoldingRegisters, (ushort)i, 1),
                    Rule = "setpoints",
                    Reason = "address span not allowed",
                    ExceptionCode = 2,
                    Count = 1,
                });
            }
        }
        return events / sw.Elapsed.TotalSeconds;
    }
}
