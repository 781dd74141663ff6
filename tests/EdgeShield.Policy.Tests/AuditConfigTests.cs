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
}
