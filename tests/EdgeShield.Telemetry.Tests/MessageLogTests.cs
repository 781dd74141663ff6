using System.Text;

namespace EdgeShield.Telemetry.Tests;

public class MessageLogTests
{
    private static void AppendOne(MessageLog log, string topic, string payload)
    {
        var t = Encoding.UTF8.GetBytes(topic);
        var p = Encoding.UTF8.GetBytes(payload);
        var buffer = new byte[MessageLog.EncodedLength(t.Length, p.Length)];
        MessageLog.Encode(buffer, t, p, retain: false);
        log.Append(buffer, 1);
    }

    private static List<string> ReadAll(MessageLog log)
    {
        var payloads = new List<string>();
        while (log.TryReadNext(out var record))
        {
            payloads.Add(Encoding.UTF8.GetString(record.Payload.Span));
            log.Acknowledge(record.End);
        }
        return payloads;
    }

    [Fact]
    public void Reopen_ReplaysUnacknowledgedInOrder_AndNotTheAcknowledged()
    {
        var dir = TestConfig.TempDir();
        using (var log = new MessageLog(dir, 1 << 20, _ => { }))
        {
            for (int i = 0; i < 100; i++)
            {
                AppendOne(log, "t/x", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            for (int i = 0; i < 40; i++)
            {
                Assert.True(log.TryReadNext(out var record));
                log.Acknowledge(record.End);
            }
            // Read but not acknowledged: must come back after a restart.
            Assert.True(log.TryReadNext(out _));
        }
        using var reopened = new MessageLog(dir, 1 << 20, _ => { });
        Assert.Equal(Enumerable.Range(40, 60).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), ReadAll(reopened));
        Assert.Equal(0, reopened.PendingBytes);
    }

    [Fact]
    public void ReadAhead_RecordsAcrossWindowAndSegmentBoundaries_ComeBackWhole_InOrder_AlsoAfterRewind()
    {
        // 3 MB of records of 1 B to 5 KB over 8 segments of 512 KB: many records straddle the
        // 256 KB read-ahead window and segment ends; appends interleave with reads.
        var dir = TestConfig.TempDir();
        using var log = new MessageLog(dir, 4 << 20, _ => { });
        var random = new Random(7);
        var expected = new List<string>();
        var read = new List<string>();
        long bytes = 0;
        for (int i = 0; bytes < 3 << 20; i++)
        {
            string payload = i.ToString("D6", System.Globalization.CultureInfo.InvariantCulture) + new string((char)('a' + (i % 26)), random.Next(0, 5000));
            AppendOne(log, "t/" + (i % 7), payload);
            expected.Add(payload);
            bytes += payload.Length + 20;
            if (i % 97 == 0)
            {
                // Read part of what is there, acknowledge half of it, then rewind: the unacknowledged rest comes again.
                var batch = new List<(string, LogPosition)>();
                while (batch.Count < 40 && log.TryReadNext(out var record))
                {
                    batch.Add((Encoding.UTF8.GetString(record.Payload.Span), record.End));
                }
                int keep = batch.Count / 2;
                for (int k = 0; k < keep; k++)
                {
                    read.Add(batch[k].Item1);
                }
                if (keep > 0)
                {
                    log.Acknowledge(batch[keep - 1].Item2);
                }
                log.RewindToAcknowledged();
            }
        }
        read.AddRange(ReadAll(log));
        Assert.Equal(0, log.Dropped);
        Assert.Equal(expected.Count, read.Count);
        Assert.Equal(expected, read);
    }

    [Fact]
    public void Full_DropsOldestSegment_CountsAndAnnounces()
    {
        var dir = TestConfig.TempDir();
        var notices = new List<LogNotice>();
        using var log = new MessageLog(dir, 64 * 1024, notices.Add);
        var payload = new string('x', 200);
        for (int i = 0; i < 1000; i++)
        {
            AppendOne(log, "t/x", i.ToString("D4", System.Globalization.CultureInfo.InvariantCulture) + payload);
        }
        Assert.True(log.TotalBytes <= 64 * 1024);
        Assert.True(log.Dropped > 0);
        Assert.Equal(log.Dropped, notices.Where(n => n.Reason == "buffer-full").Sum(n => n.Count));
        var left = ReadAll(log);
        // What is left is the newest, in order, and nothing in between is missing.
        Assert.Equal("0999", left[^1][..4]);
        Assert.Equal(1000 - log.Dropped, left.Count);
        var numbers = left.Select(p => int.Parse(p[..4], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(Enumerable.Range(numbers[0], numbers.Count), numbers);
    }

    [Fact]
    public void CorruptSegment_IsMovedAside_Announced_AndOthersReplay()
    {
        var dir = TestConfig.TempDir();
        using (var log = new MessageLog(dir, 128 * 1024, _ => { }))
        {
            for (int i = 0; i < 400; i++)
            {
                AppendOne(log, "t/x", i.ToString("D4", System.Globalization.CultureInfo.InvariantCulture) + new string('y', 100));
            }
        }
        var segments = Directory.GetFiles(dir, "*.seg").Order(StringComparer.Ordinal).ToArray();
        Assert.True(segments.Length >= 2);
        // Flip a byte inside the first segment's third record.
        var bytes = File.ReadAllBytes(segments[0]);
        bytes[300] ^= 0xFF;
        File.WriteAllBytes(segments[0], bytes);

        var notices = new List<LogNotice>();
        using var reopened = new MessageLog(dir, 128 * 1024, notices.Add);
        var corrupt = Assert.Single(notices, n => n.Reason == "buffer-corrupt");
        Assert.Contains(".corrupt", corrupt.Detail, StringComparison.Ordinal);
        Assert.Single(Directory.GetFiles(dir, "*.corrupt"));
        var left = ReadAll(reopened);
        Assert.NotEmpty(left);
        Assert.Equal("0399", left[^1][..4]);
    }

    [Fact]
    public void TornTail_IsCut_AndEverythingBeforeReplays()
    {
        var dir = TestConfig.TempDir();
        using (var log = new MessageLog(dir, 1 << 20, _ => { }))
        {
            for (int i = 0; i < 10; i++)
            {
                AppendOne(log, "t/x", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        var segment = Directory.GetFiles(dir, "*.seg").Single();
        using (var stream = new FileStream(segment, FileMode.Open))
        {
            stream.SetLength(stream.Length - 3);
        }
        var notices = new List<LogNotice>();
        using var reopened = new MessageLog(dir, 1 << 20, notices.Add);
        Assert.Contains(notices, n => n.Reason == "buffer-torn-tail");
        Assert.Equal(Enumerable.Range(0, 9).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), ReadAll(reopened));
    }
}
