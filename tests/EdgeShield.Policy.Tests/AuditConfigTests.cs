using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

/// <summary><c>audit: { pcap: { path, max-mb } }</c> reaches the configuration model.</summary>
public class AuditConfigTests
{
    [Fact]
    public void Load_AuditPcap_PathAndFractionalMaxMb()
    {
        var result = Load("audit:\n  pcap: { path: /var/lib/edgeshield/denied.pcapng, max-mb: 0.5 }\n");
        Assert.False(result.HasErrors, string.Join("\n", Lines(result)));
        var pcap = result.Config!.AuditPcap!;
        Assert.Equal("/var/lib/edgeshield/denied.pcapng", pcap.Path);
        Assert.Equal(0.5, pcap.MaxMb);
        Assert.Equal(512 * 1024, pcap.MaxBytes);
    }

    [Fact]
    public void Load_AuditPcapWithoutMaxMb_Defaults32MiB()
    {
        var result = Load("audit:\n  pcap: { path: d.pcapng }\n");
        Assert.Equal(32L * 1024 * 1024, result.Config!.AuditPcap!.MaxBytes);
    }

    [Fact]
    public void Load_NoAudit_CapturesNothing() => Assert.Null(Load("gateway: { name: gw }\n").Config!.AuditPcap);

    [Theory]
    [InlineData("0.05")]
    [InlineData("0")]
    [InlineData("-1")]
    public void Load_MaxMbBelowTheMinimum_IsErrorAtTheValue(string value)
    {
        var result = Load($"audit:\n  pcap: {{ path: d.pcapng, max-mb: {value} }}\n");
        Assert.True(result.HasErrors);
        Assert.Equal($"test.yaml:2:35: error: 'max-mb' must be a number of MiB from 0.1 to 1048576 (fractions such as 0.5 allowed), not '{value}'", Lines(result).Single());
    }

    [Fact]
    public void Load_PcapWithoutPath_IsError()
    {
        var result = Load("audit:\n  pcap: { max-mb: 4 }\n");
        Assert.Contains("missing required key 'path'", Lines(result).Single(), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_AuditJournal_AllKeys()
    {
        var result = Load("audit:\n  journal: { path: /data/audit, max-mb: 16, checkpoint-every: 500, checkpoint-seconds: 5 }\n  key: /etc/edgeshield/audit.pem\n");
        Assert.False(result.HasErrors, string.Join("\n", Lines(result)));
        var journal = result.Config!.AuditJournal!;
        Assert.Equal("/data/audit", journal.Path);
        Assert.Equal(16L * 1024 * 1024, journal.MaxBytes);
        Assert.Equal(2L * 1024 * 1024, journal.SegmentBytes);
        Assert.Equal(500, journal.CheckpointEvery);
        Assert.Equal(5, journal.CheckpointSeconds);
        Assert.Equal("/etc/edgeshield/audit.pem", result.Config.AuditKey);
    }

    [Fact]
    public void Load_AuditJournalEmpty_DefaultsToStateDirAnd64MiB_1000Lines_10Seconds()
    {
        var result = Load("audit:\n  journal: {}\n");
        Assert.False(result.HasErrors, string.Join("\n", Lines(result)));
        var journal = result.Config!.AuditJournal!;
        Assert.Null(journal.Path);
        Assert.Equal(64L * 1024 * 1024, journal.MaxBytes);
        Assert.Equal(1000, journal.CheckpointEvery);
        Assert.Equal(10, journal.CheckpointSeconds);
        Assert.Null(result.Config.AuditKey);
    }

    [Fact]
    public void Load_NoAuditJournal_WritesNone() => Assert.Null(Load("audit:\n  pcap: { path: d.pcapng }\n").Config!.AuditJournal);

    [Fact]
    public void Load_AuditJournalBadValues_AreErrorsAtTheValue()
    {
        var result = Load("audit:\n  journal: { max-mb: 0.5, checkpoint-every: 0, checkpoint-seconds: 1h }\n");
        Assert.True(result.HasErrors);
        var lines = Lines(result);
        Assert.Contains("test.yaml:2:22: error: 'max-mb' must be a number of MiB from 1 to 1048576 (the journal keeps 8 segments of max-mb / 8), not '0.5'", lines);
        Assert.Contains(lines, l => l.StartsWith("test.yaml:2:45: error: 'checkpoint-every' must be a whole number from 1 to 1000000", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("test.yaml:2:68: error: 'checkpoint-seconds' must be a whole number from 1 to 3600", StringComparison.Ordinal));
        Assert.Null(result.Config?.AuditJournal);
    }

    [Fact]
    public void Load_AuditJournalUnknownKey_IsError()
    {
        var result = Load("audit:\n  journal: { fsync: always }\n");
        Assert.True(result.HasErrors);
        Assert.Contains("fsync", Lines(result).Single(), StringComparison.Ordinal);
    }
}
