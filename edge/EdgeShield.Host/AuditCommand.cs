using System.Security.Cryptography;
using System.Text.Json;
using EdgeShield.Gateway;

namespace EdgeShield.Host;

/// <summary><c>edgeshield audit verify</c>: checks the hash chain and the signed checkpoints of audit journal segments.</summary>
internal static class AuditCommand
{
    private const string Help = """
        usage: edgeshield audit verify FILE|DIR … [--key PUBKEY] [--checkpoints FILE] [--json]

        Checks audit journal segments (audit.journal; docs/AUDIT.md): seq and the SHA-256 chain of 'prev'
        across the segments in order (a directory gives its audit-NNNNNN.jsonl files), every checkpoint's head,
        and that the first line is either the start of the journal or follows a segment whose removal by
        rotation the chain itself recorded. Prints the first problem as FILE:LINE: KIND: what, KIND one of
        edited, removed, reordered, inserted, replaced, other-key, bad-signature, cut-tail, rewritten.

          --key PUBKEY        the gateway's audit public key (audit-key.pub.pem, PEM; a private key works too):
                              every checkpoint must carry its key id and verify with it. Without --key the
                              signatures are not checked (a root user on the box has the key anyway: keep
                              audit-key.pub.pem and the checkpoints off the box)
          --checkpoints FILE  checkpoint events collected off the box (lines of the MQTT events topic; anything
                              before the first '{' of a line is ignored): each must be in the journal unchanged;
                              one past the journal's end means its tail was cut
          --json              one JSON object on stdout instead of text

        A last line cut short (a power cut during a write) is a warning, not a break.
        Exit 0 intact, 1 broken (tampered), 2 unreadable (a file, the key or the checkpoints cannot be read).
        """;

    public static int Execute(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            Console.Out.Write(Help);
            return args.Length == 0 ? Cli.ExitUsage : Cli.ExitOk;
        }
        if (args[0] != "verify")
        {
            Console.Error.WriteLine($"edgeshield audit: unknown subcommand '{args[0]}'; the subcommand is verify (see 'edgeshield audit --help')");
            return Cli.ExitUsage;
        }
        return Verify(args.AsSpan(1).ToArray());
    }

    private static int Verify(string[] args)
    {
        var inputs = new List<string>();
        string? keyPath = null, checkpoints = null;
        bool json = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "-h" or "--help":
                    Console.Out.Write(Help);
                    return Cli.ExitOk;
                case "--json":
                    json = true;
                    break;
                case "--key" or "--checkpoints":
                    if (i + 1 >= args.Length)
                    {
                        Console.Error.WriteLine($"edgeshield audit verify: option {args[i]} needs a value");
                        return Cli.ExitUsage;
                    }
                    if (args[i] == "--key")
                    {
                        keyPath = args[++i];
                    }
                    else
                    {
                        checkpoints = args[++i];
                    }
                    break;
                default:
                    if (args[i].StartsWith("--", StringComparison.Ordinal))
                    {
                        Console.Error.WriteLine($"edgeshield audit verify: unknown argument '{args[i]}'; options are --key, --checkpoints, --json, --help");
                        return Cli.ExitUsage;
                    }
                    inputs.Add(args[i]);
                    break;
            }
        }
        if (inputs.Count == 0)
        {
            Console.Error.WriteLine("edgeshield audit verify: name the journal's segment files or its directory (audit.journal path)");
            return Cli.ExitUsage;
        }
        ECDsa? key = null;
        try
        {
            if (keyPath is not null)
            {
                try
                {
                    key = AuditKey.Load(keyPath);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
                {
                    return Print(json, Unreadable(keyPath, $"not a readable ECDSA P-256 PEM key: {e.Message}"));
                }
            }
            if (checkpoints is not null && !File.Exists(checkpoints))
            {
                return Print(json, Unreadable(checkpoints, "no such file"));
            }
            var files = AuditJournalVerifier.Expand(inputs, out var unreadable);
            if (files is null)
            {
                return Print(json, Unreadable(unreadable!, null));
            }
            return Print(json, AuditJournalVerifier.Verify(files, key, checkpoints));
        }
        finally
        {
            key?.Dispose();
        }
    }

    private static AuditVerifyReport Unreadable(string what, string? message) =>
        AuditJournalVerifier.UnreadableReport(what, message ?? "cannot be read");

    private static int Print(bool json, AuditVerifyReport report)
    {
        if (json)
        {
            PrintJson(report);
        }
        else
        {
            PrintText(report);
        }
        return (int)report.Verdict;
    }

    private static void PrintText(AuditVerifyReport report)
    {
        foreach (var warning in report.Warnings)
        {
            Console.Error.WriteLine($"{Where(warning)}: warning: {warning.Kind}: {warning.Message}");
        }
        switch (report.Verdict)
        {
            case AuditVerdict.Unreadable:
                Console.Error.WriteLine($"{Where(report.Problem!)}: error: {report.Problem!.Message}");
                Console.Out.WriteLine("unreadable");
                return;
            case AuditVerdict.Broken:
                Console.Out.WriteLine($"{Where(report.Problem!)}: error: {report.Problem!.Kind}: {report.Problem.Message}");
                Console.Out.WriteLine("broken");
                return;
        }
        foreach (var note in report.Notes)
        {
            Console.Out.WriteLine($"note: {note}");
        }
        string signatures = report.SignaturesChecked > 0
            ? $"{report.SignaturesChecked} signatures good (key id {string.Join(", ", report.KeyIds)})"
            : $"signatures not checked (no --key; key id {(report.KeyIds.Count == 0 ? "none" : string.Join(", ", report.KeyIds))})";
        Console.Out.WriteLine($"intact: {report.Lines} lines, seq {report.FirstSeq}..{report.LastSeq} in {report.Files} segment(s); {report.Checkpoints} checkpoints, {signatures}");
        if (report.LastSeq > report.LastCheckpointSeq)
        {
            Console.Out.WriteLine($"note: {report.LastSeq - Math.Max(report.LastCheckpointSeq, report.FirstSeq - 1)} line(s) after the last checkpoint (seq {report.LastCheckpointSeq}) are not signed yet: a cut there shows only against checkpoints kept off the box");
        }
        if (report.OffBoxCheckpoints > 0)
        {
            Console.Out.WriteLine($"checkpoints seen off the box: {report.OffBoxCheckpoints}, {report.OffBoxMatched} found in the journal unchanged (the rest were rotated away or not signed by the key)");
        }
    }

    private static string Where(AuditFinding finding) => finding.Line > 0 ? $"{finding.File}:{finding.Line}" : finding.File;

    private static void PrintJson(AuditVerifyReport report)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var w = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = false, Encoder = AuditLog.JsonOptions.Encoder }))
        {
            w.WriteStartObject();
            w.WriteString("status", report.Verdict switch { AuditVerdict.Intact => "intact", AuditVerdict.Broken => "broken", _ => "unreadable" });
            w.WriteNumber("files", report.Files);
            w.WriteNumber("lines", report.Lines);
            w.WriteNumber("first_seq", report.FirstSeq);
            w.WriteNumber("last_seq", report.LastSeq);
            w.WriteNumber("checkpoints", report.Checkpoints);
            w.WriteNumber("last_checkpoint_seq", report.LastCheckpointSeq);
            w.WriteNumber("signatures_checked", report.SignaturesChecked);
            w.WriteStartArray("key_ids");
            foreach (var id in report.KeyIds)
            {
                w.WriteStringValue(id);
            }
            w.WriteEndArray();
            w.WriteNumber("segments_removed", report.SegmentsRemoved);
            w.WriteNumber("offbox_checkpoints", report.OffBoxCheckpoints);
            w.WriteNumber("offbox_matched", report.OffBoxMatched);
            if (report.Problem is { } problem)
            {
                w.WritePropertyName("problem");
                WriteFinding(w, problem);
            }
            w.WriteStartArray("warnings");
            foreach (var warning in report.Warnings)
            {
                WriteFinding(w, warning);
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        stdout.Write("\n"u8);
    }

    private static void WriteFinding(Utf8JsonWriter w, AuditFinding finding)
    {
        w.WriteStartObject();
        w.WriteString("file", finding.File);
        w.WriteNumber("line", finding.Line);
        w.WriteString("kind", finding.Kind);
        w.WriteString("message", finding.Message);
        w.WriteEndObject();
    }
}
