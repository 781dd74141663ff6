namespace EdgeShield.Policy;

public sealed partial class EdgeShieldConfig
{
    /// <summary><c>audit.pcap</c>: the forensics capture of refused and malformed frames; null when absent (nothing captured).</summary>
    public PcapAuditConfig? AuditPcap { get; init; }

    /// <summary><c>audit.journal</c>: the hash-chained, signed audit journal on disk; null when absent (no journal).</summary>
    public AuditJournalConfig? AuditJournal { get; init; }

    /// <summary><c>audit.key</c>: the ECDSA P-256 key that signs the journal's checkpoints; null: <c>STATE/audit-key.pem</c> (<c>run --state</c>).</summary>
    public string? AuditKey { get; init; }
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

/// <summary>
/// <c>audit: { journal: { path, max-mb, checkpoint-every, checkpoint-seconds } }</c>: every audit event also
/// appended to hash-chained segment files, with a signed checkpoint every N events or T seconds (docs/AUDIT.md).
/// </summary>
public sealed record AuditJournalConfig
{
    /// <summary>The smallest <c>max-mb</c>: 8 segments of 128 KiB, some 4 000 events.</summary>
    public const double MinMaxMb = 1;

    /// <summary>The journal is split into this many segments of <c>max-mb / 8</c>; the oldest is removed (and that recorded) beyond it.</summary>
    public const int Segments = 8;

    /// <summary>The directory of <c>audit-NNNNNN.jsonl</c> segments; null: <c>STATE/audit</c> (<c>run --state</c>).</summary>
    public string? Path { get; init; }

    /// <summary>MiB all segments together may take (fractions allowed).</summary>
    public double MaxMb { get; init; } = 64;

    /// <summary>A signed checkpoint after this many lines…</summary>
    public int CheckpointEvery { get; init; } = 1000;

    /// <summary>…or this many seconds after the first line it does not cover yet, whichever comes first.</summary>
    public int CheckpointSeconds { get; init; } = 10;

    /// <summary><see cref="MaxMb"/> in bytes.</summary>
    public long MaxBytes => (long)(MaxMb * 1024 * 1024);

    /// <summary>Size at which a segment is closed and the next one begun.</summary>
    public long SegmentBytes => MaxBytes / Segments;
}
