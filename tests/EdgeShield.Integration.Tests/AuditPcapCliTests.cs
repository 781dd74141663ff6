namespace EdgeShield.Integration.Tests;

/// <summary><c>run</c> with <c>audit.pcap</c>: a file that cannot be created is a fault, as an address that cannot be bound.</summary>
public class AuditPcapCliTests
{
    [Fact]
    public async Task Run_PcapInAMissingDirectory_ExitsOneNamingThePath()
    {
        string path = Path.Combine(Path.GetTempPath(), $"edgeshield-pcap-{Guid.NewGuid():N}.yaml");
        string pcap = $"/nonexistent-{Guid.NewGuid():N}/denied.pcapng";
        await File.WriteAllTextAsync(path, GatewayProcess.Config(1502, GatewayProcess.Policy) + $"\naudit:\n  pcap: {{ path: {pcap}, max-mb: 1 }}\n");
        try
        {
            var result = await Processes.RunAsync(Processes.EdgeShield("run", "--config", path));
            Assert.True(result.ExitCode == 1, result.Stderr);
            Assert.Contains($"edgeshield run: audit pcap {pcap}: ", result.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
