namespace EdgeShield.Policy;

public sealed partial class EdgeShieldConfig
{
    /// <summary><c>audit.pcap</c>: the forensics capture of refused and malformed frames; null when absent (nothing captured).</summary>
    public PcapAuditConfig? AuditPcap { get; init; }
}

/// <summary><c>audit: { pcap: { path, max-mb } }</c>: where denied, out-of-spec and malformed client frames are written as pcapng.</summary>
public sealed record PcapAuditConfig
{
    /// <summary>The smallest <c>max-mb</c> the loader accepts (100 KiB of captures, some 500 frames).</summary>
    public const double MinMaxMb = 0.1;

    /// <summary>The pcapng file; the previous one is kept as <c>PATH.1</c> on rotation.</summary>
    public required string Path { get; init; }

    /// <summary>Size in MiB at which the file rotates to <c>PATH.1</c>; a fraction (e.g. 0.5) is allowed for small flash.</summary>
    public double MaxMb { get; init; } = 32;

    /// <summary><see cref="MaxMb"/> in bytes.</summary>
    public long MaxBytes => (long)(MaxMb * 1024 * 1024);
}
