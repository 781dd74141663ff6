using System.Security.Cryptography;
using System.Text;
using EdgeShield.Policy;

namespace EdgeShield.Gateway.Tests;

/// <summary>The audit journal on disk and <c>audit verify</c>: every way of changing it is named at its place; a torn tail is not.</summary>
public sealed class AuditJournalTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("edgeshield-journal-").FullName;

    private string Dir => Path.Combine(_root, "audit");
    private string KeyPath => Path.Combine(_root, "audit-key.pem");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static AuditEvent Denied(int i) => new()
    {
        Time = new DateTime(2026, 12, 3, 8, 0, 0, DateTimeKind.Utc).AddMilliseconds(i),
        Kind = AuditEventKind.Denied,
        Listener = "hmi-plc1",
        Source = SourceAddress.From(System.Net.IPAddress.Parse("10.20.0.5")),
        SourcePort = 40000,
        Unit = 1,
        FunctionCode = 6,
        WriteSpan = new EdgeShield.Protocols.Modbus.AddressSpan(EdgeShield.Protocols.Modbus.ModbusTable.HoldingRegisters, (ushort)i, 1),
        Rule = "setpoints",
        Reason = "address span not allowed",
        ExceptionCode = 2,
        Count = 1,
    };

    /// <summary>Writes <paramref name="events"/> events through an AuditLog with the journal, as the service does; returns the lines copied for the events topic.</summary>
    private async Task<List<string>> WriteAsync(int events, AuditJournalConfig? config = null, string? keyPath = null, string? dir = null)
    {
        var copies = new LineStream();
        using var key = AuditKey.LoadOrCreate(keyPath ?? KeyPath);
        var journal = AuditJournal.Open(dir ?? Dir, config ?? new AuditJournalConfig { CheckpointEvery = 100 }, key);
        await using (var log = new AuditLog(Stream.Null, eventsPerSecond: 1_000_000, queueCapacity: 1_000_000, journal: journal))
        {
            log.CopyJournalLinesTo(copies);
            for (int i = 0; i < events; i++)
            {
                log.Write(Denied(i));
            }
        }
        return copies.Lines;
    }

    private AuditVerifyReport Verify(string? checkpoints = null, string? dir = null)
    {
        using var key = AuditKey.Load(AuditKey.PublicPathOf(KeyPath));
        return AuditJournalVerifier.Verify(AuditJournalVerifier.Expand([dir ?? Dir], out _)!, key, checkpoints);
    }

    private string Segment(int number) => Path.Combine(Dir, AuditJournal.SegmentName(number));

    private static void EditLines(string path, Func<List<string>, List<string>> edit)
    {
        var lines = File.ReadAllText(path).Split('\n').ToList();
        Assert.Equal("", lines[^1]);
        lines.RemoveAt(lines.Count - 1);
        File.WriteAllText(path, string.Join('\n', edit(lines)) + "\n");
    }

    private static void AssertBroken(AuditVerifyReport report, string kind, string file, int line)
    {
        Assert.Equal(AuditVerdict.Broken, report.Verdict);
        Assert.NotNull(report.Problem);
        Assert.True(report.Problem!.Kind == kind && Path.GetFileName(report.Problem.File) == file && report.Problem.Line == line,
            $"expected {file}:{line}: {kind}, got {report.Problem}");
    }

    [Fact]
    public async Task Journal_ChainsEveryLine_AndSignsCheckpoints_VerifyIntact()
    {
        await WriteAsync(250);

        var report = Verify();
        Assert.True(report.Verdict == AuditVerdict.Intact, report.Problem?.ToString());
        // 1 journal-created + 250 events + a checkpoint per 100 lines + the last one at the close.
        Assert.Equal(1, report.FirstSeq);
        Assert.Equal(report.Lines, report.LastSeq);
        Assert.Equal(3, report.Checkpoints);
        Assert.Equal(3, report.SignaturesChecked);
        Assert.Equal(report.LastSeq, report.LastCheckpointSeq);
        var first = File.ReadLines(Segment(1)).First();
        Assert.StartsWith("{\"seq\":1,\"prev\":\"" + new string('0', 64) + "\",\"time\":", first, StringComparison.Ordinal);
        var second = File.ReadLines(Segment(1)).ElementAt(1);
        Assert.Contains($"\"prev\":\"{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(first)))}\"", second, StringComparison.Ordinal);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task KeyFile_IsCreated0600_WithThePublicKeyBeside()
    {
        await WriteAsync(1);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(KeyPath));
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", File.ReadAllText(KeyPath), StringComparison.Ordinal);
        var pub = Path.Combine(_root, "audit-key.pub.pem");
        Assert.StartsWith("-----BEGIN PUBLIC KEY-----", File.ReadAllText(pub), StringComparison.Ordinal);
        using var key = AuditKey.LoadOrCreate(KeyPath);
        Assert.False(key.Created);
        using var publicKey = AuditKey.Load(pub);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(publicKey.ExportSubjectPublicKeyInfo())), key.KeyId);
        Assert.Contains($"\"key_id\":\"{key.KeyId}\"", File.ReadAllText(Segment(1)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task EditOneByte_IsEdited_AtThatLine()
    {
        await WriteAsync(250);
        var bytes = File.ReadAllBytes(Segment(1));
        int line = 0, at = 0;
        while (line < 119)
        {
            at = Array.IndexOf(bytes, (byte)'\n', at) + 1;
            line++;
        }
        // Line 120: "address span not allowed" → "address span nOt allowed".
        int reason = bytes.AsSpan(at).IndexOf("not allowed"u8) + at;
        bytes[reason + 1] = (byte)'O';
        File.WriteAllBytes(Segment(1), bytes);

        AssertBroken(Verify(), "edited", "audit-000001.jsonl", 120);
    }

    [Fact]
    public async Task DeleteALine_IsRemoved_AtTheLineAfterTheGap()
    {
        await WriteAsync(250);
        EditLines(Segment(1), lines => { lines.RemoveAt(49); return lines; });

        var report = Verify();
        AssertBroken(report, "removed", "audit-000001.jsonl", 50);
        Assert.Contains("seq 50 is missing", report.Problem!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SwapTwoLines_IsReordered()
    {
        await WriteAsync(250);
        EditLines(Segment(1), lines => { (lines[29], lines[30]) = (lines[30], lines[29]); return lines; });

        AssertBroken(Verify(), "reordered", "audit-000001.jsonl", 30);
    }

    [Fact]
    public async Task InsertALine_WithAPlausibleSeqAndPrev_IsInserted()
    {
        await WriteAsync(250);
        EditLines(Segment(1), lines =>
        {
            // What an insider would write: the next seq and the right prev, an event that never happened.
            var prev = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(lines[59])));
            lines.Insert(60, $"{{\"seq\":61,\"prev\":\"{prev}\",\"time\":\"2026-12-03T08:00:00.060Z\",\"event\":\"service\",\"reason\":\"maintenance\",\"detail\":\"all fine\"}}");
            return lines;
        });

        AssertBroken(Verify(), "inserted", "audit-000001.jsonl", 61);
    }

    [Fact]
    public async Task InsertALineWithoutChainFields_IsInserted()
    {
        await WriteAsync(250);
        EditLines(Segment(1), lines => { lines.Insert(10, "{\"time\":\"2026-12-03T08:00:00.010Z\",\"event\":\"service\",\"reason\":\"x\"}"); return lines; });

        AssertBroken(Verify(), "inserted", "audit-000001.jsonl", 11);
    }

    [Fact]
    public async Task CutTail_PassesAlone_ButNotAgainstTheCheckpointsSeenOffTheBox()
    {
        var published = await WriteAsync(250);
        var checkpoints = Path.Combine(_root, "mqtt-events.log");
        File.WriteAllLines(checkpoints, published.Select(l => "edgeshield/gw/events " + l));
        Assert.Equal(3, published.Count(l => l.Contains("\"event\":\"checkpoint\"", StringComparison.Ordinal)));
        Assert.True(Verify(checkpoints).Verdict == AuditVerdict.Intact, Verify(checkpoints).Problem?.ToString());
        // Cut everything after line 150: the last two checkpoints go with it.
        EditLines(Segment(1), lines => lines.Take(150).ToList());

        var alone = Verify();
        Assert.Equal(AuditVerdict.Intact, alone.Verdict);
        var report = Verify(checkpoints);
        AssertBroken(report, "cut-tail", "audit-000001.jsonl", 150);
        Assert.Contains("seen off the box", report.Problem!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RewrittenChain_ConsistentButDifferentFromTheCheckpointsSeenOffTheBox_IsRewritten()
    {
        var published = await WriteAsync(250);
        var checkpoints = Path.Combine(_root, "checkpoints.jsonl");
        File.WriteAllLines(checkpoints, published);
        // Root on the box has the key: a whole new, consistent journal with the same seqs and good signatures.
        Directory.Delete(Dir, recursive: true);
        await WriteAsync(249);

        AssertBroken(Verify(checkpoints), "rewritten", "audit-000001.jsonl", 102);
    }

    [Fact]
    public async Task ForgedCheckpoint_ByAnotherKey_IsOtherKey_AndABadSignatureIsBadSignature()
    {
        await WriteAsync(250);
        var original = File.ReadAllText(Segment(1));
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        string otherId = AuditKey.KeyIdOf(other.ExportSubjectPublicKeyInfo());
        EditLines(Segment(1), lines =>
        {
            // The last line is the closing checkpoint: re-signed with another key, its chain fields untouched.
            var line = AuditJournalLine.TryParse(Encoding.UTF8.GetBytes(lines[^1]))!;
            var sig = Convert.ToBase64String(other.SignData(AuditJournalLine.CheckpointSignedBytes(line.Seq, line.Head!, line.Time!, otherId), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
            lines[^1] = lines[^1].Replace(line.KeyId!, otherId, StringComparison.Ordinal).Replace(line.Sig!, sig, StringComparison.Ordinal);
            return lines;
        });
        int last = File.ReadAllLines(Segment(1)).Length;
        AssertBroken(Verify(), "other-key", "audit-000001.jsonl", last);

        File.WriteAllText(Segment(1), original);
        EditLines(Segment(1), lines =>
        {
            var line = AuditJournalLine.TryParse(Encoding.UTF8.GetBytes(lines[^1]))!;
            lines[^1] = lines[^1].Replace(line.Time!, "2026-12-03T09:00:00.000Z", StringComparison.Ordinal);
            return lines;
        });
        AssertBroken(Verify(), "bad-signature", "audit-000001.jsonl", last);
    }

    [Fact]
    public async Task TornLastLine_IsAWarning_AndTheNextStartCutsItAndSaysSo()
    {
        await WriteAsync(50);
        File.AppendAllText(Segment(1), "{\"seq\":54,\"prev\":\"ab12");

        var torn = Verify();
        Assert.Equal(AuditVerdict.Intact, torn.Verdict);
        var warning = Assert.Single(torn.Warnings);
        Assert.Equal("torn-line", warning.Kind);
        Assert.Equal(File.ReadAllLines(Segment(1)).Length, warning.Line);

        await WriteAsync(5);
        var after = Verify();
        Assert.True(after.Verdict == AuditVerdict.Intact, after.Problem?.ToString());
        Assert.Empty(after.Warnings);
        Assert.Contains("\"reason\":\"audit-journal-torn-tail\"", File.ReadAllText(Segment(1)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Restart_ContinuesTheChain()
    {
        await WriteAsync(30);
        var lastBefore = File.ReadAllLines(Segment(1))[^1];
        int linesBefore = File.ReadAllLines(Segment(1)).Length;

        await WriteAsync(30);

        var lines = File.ReadAllLines(Segment(1));
        var next = AuditJournalLine.TryParse(Encoding.UTF8.GetBytes(lines[linesBefore]))!;
        Assert.Equal(linesBefore + 1, next.Seq);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(lastBefore))), next.Prev);
        var report = Verify();
        Assert.True(report.Verdict == AuditVerdict.Intact, report.Problem?.ToString());
        Assert.Equal(lines.Length, report.LastSeq);
    }

    [Fact]
    public async Task Rotation_RemovesTheOldestSegment_RecordsIt_AndVerifyAccepts()
    {
        // 8 segments of 8 KiB: some 28 lines each.
        var config = new AuditJournalConfig { MaxMb = 64.0 / 1024, CheckpointEvery = 100 };
        await WriteAsync(600, config);

        var segments = AuditJournal.Segments(Dir);
        Assert.Equal(AuditJournalConfig.Segments, segments.Count);
        Assert.NotEqual(Segment(1), segments[0]);
        Assert.True(segments.Sum(s => new FileInfo(s).Length) <= config.MaxBytes + 8192);
        var report = Verify();
        Assert.True(report.Verdict == AuditVerdict.Intact, report.Problem?.ToString());
        Assert.True(report.SegmentsRemoved > 0);
        Assert.True(report.FirstSeq > 1);
        Assert.Contains(report.Notes, n => n.Contains("removed by rotation", StringComparison.Ordinal));

        // Deleting the oldest segment that is left is no rotation: nothing in the chain accounts for it.
        File.Delete(segments[0]);
        AssertBroken(Verify(), "removed", Path.GetFileName(segments[1]), 1);
    }

    [Fact]
    public async Task DeleteAMiddleSegment_IsRemoved_AtTheNextSegment()
    {
        await WriteAsync(150, new AuditJournalConfig { MaxMb = 64.0 / 1024, CheckpointEvery = 50 });
        var segments = AuditJournal.Segments(Dir);
        Assert.True(segments.Count >= 4);
        File.Delete(segments[2]);

        AssertBroken(Verify(), "removed", Path.GetFileName(segments[3]), 1);
    }

    [Fact]
    public async Task ReplaceASegment_WithAnotherConsistentOne_IsReplaced()
    {
        var config = new AuditJournalConfig { MaxMb = 64.0 / 1024, CheckpointEvery = 50 };
        await WriteAsync(150, config);
        // Another journal with the same layout (and even the same key): its second segment put in place of ours.
        var forged = Path.Combine(_root, "forged");
        await WriteAsync(151, config, dir: forged);
        var segments = AuditJournal.Segments(Dir);
        File.Copy(Path.Combine(forged, AuditJournal.SegmentName(2)), segments[1], overwrite: true);

        AssertBroken(Verify(), "replaced", "audit-000002.jsonl", 1);
    }

    [Fact]
    public async Task Checkpoints_AreCopiedForTheEventsTopic_ByteForByteAsInTheChain()
    {
        var published = await WriteAsync(250);

        var chain = File.ReadAllLines(Segment(1));
        var checkpoints = published.Where(l => l.Contains("\"event\":\"checkpoint\"", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, checkpoints.Count);
        Assert.All(checkpoints, c => Assert.Contains(c, chain));
        Assert.Contains(published, l => l.Contains("audit-journal-created", StringComparison.Ordinal));
    }

    [Fact]
    public async Task OpeningLines_ReachTheEventsTopic_WhenItIsAttachedAfterTheWriterWroteThem()
    {
        // The service's order: the log (and its writer) starts, the telemetry is built with it, and only then are
        // the copies for the events topic attached. The writer has written audit-journal-created by then.
        var output = new LineStream();
        var copies = new LineStream();
        using var key = AuditKey.LoadOrCreate(KeyPath);
        var journal = AuditJournal.Open(Dir, new AuditJournalConfig { CheckpointEvery = 100 }, key);
        await using (var log = new AuditLog(output, journal: journal, journalPriorities: true))
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!Snapshot(output).Any(l => l.Contains("audit-journal-created", StringComparison.Ordinal)) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }
            Assert.Contains(Snapshot(output), l => l.Contains("audit-journal-created", StringComparison.Ordinal));
            log.CopyJournalLinesTo(copies);
            log.Write(Denied(1));
        }
        var created = Assert.Single(Snapshot(copies), l => l.Contains("audit-journal-created", StringComparison.Ordinal));
        Assert.StartsWith("{", created, StringComparison.Ordinal); // whole, as in the chain: no priority prefix
        Assert.Contains(created, File.ReadAllLines(Segment(1)));
        // On the output the journal priority is there from the first line on.
        Assert.StartsWith("<", string.Concat(Snapshot(output)), StringComparison.Ordinal);
    }

    private static List<string> Snapshot(LineStream stream)
    {
        lock (stream.Lines)
        {
            return [.. stream.Lines];
        }
    }

    [Fact]
    public async Task CheckpointSeconds_SignsAQuietTail()
    {
        using var key = AuditKey.LoadOrCreate(KeyPath);
        var journal = AuditJournal.Open(Dir, new AuditJournalConfig { CheckpointEvery = 1000, CheckpointSeconds = 1 }, key);
        await using var log = new AuditLog(Stream.Null, journal: journal);
        log.Write(Denied(1));
        var deadline = DateTime.UtcNow.AddSeconds(20); // generous: a loaded CI machine may run the timer late
        while (!File.ReadAllText(Segment(1)).Contains("\"event\":\"checkpoint\"", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
        Assert.Contains("\"event\":\"checkpoint\"", File.ReadAllText(Segment(1)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckpointSeconds_SignsUnderASteadyTrickleToo()
    {
        using var key = AuditKey.LoadOrCreate(KeyPath);
        var journal = AuditJournal.Open(Dir, new AuditJournalConfig { CheckpointEvery = 1000, CheckpointSeconds = 1 }, key);
        await using var log = new AuditLog(Stream.Null, journal: journal);
        // An event every 200 ms: the writer is never idle for a whole second. Bounded by 20 s, not by a count of
        // events: a loaded CI machine may run the checkpoint timer late.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; clock.ElapsedMilliseconds < 20_000 && !File.ReadAllText(Segment(1)).Contains("\"event\":\"checkpoint\"", StringComparison.Ordinal); i++)
        {
            log.Write(Denied(i));
            await Task.Delay(200);
        }
        Assert.Contains("\"event\":\"checkpoint\"", File.ReadAllText(Segment(1)), StringComparison.Ordinal);
    }

    [Fact]
    public void Verify_NoSuchFile_IsUnreadable()
    {
        Assert.Null(AuditJournalVerifier.Expand([Path.Combine(_root, "nope")], out var why));
        Assert.Contains("no such file", why, StringComparison.Ordinal);
    }

    /// <summary>The events topic's end of the seam: whole lines, as EventsTopicStream hands them to the publisher.</summary>
    private sealed class LineStream : Stream
    {
        public List<string> Lines { get; } = [];
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => 0;
        public override long Position { get => 0; set { } }
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            lock (Lines)
            {
                Lines.Add(Encoding.UTF8.GetString(buffer));
            }
        }
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
