using System.Globalization;
using System.Text.Json;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Policy.Replay;

public static partial class ReplayReport
{
    /// <summary>
    /// The JSON object of DESIGN.md for an IEC 104 replay: the Modbus keys, <c>by_function</c> keyed by type name
    /// (<c>C_SC_NA_1</c>…), and <c>by_cause</c> (cause number), <c>by_ca</c> (common address, <c>global</c>),
    /// <c>denied_by_cause</c> (the cause of the gateway's negative confirmation), the same three of the station's
    /// ASDUs (<c>responses_by_function</c>, <c>responses_by_cause</c>, <c>responses_by_ca</c>), <c>connections</c>,
    /// <c>connections_denied</c>, <c>matched_responses</c>, <c>unmatched_responses</c> and <c>response_timeouts</c>.
    /// </summary>
    public static void WriteJson(Utf8JsonWriter writer, Iec104PolicyReplay replay)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(replay);
        writer.WriteStartObject();
        writer.WriteNumber("frames", replay.Scanner.Frames);
        writer.WriteNumber("requests", replay.Requests);
        writer.WriteNumber("responses", replay.Responses);
        writer.WriteNumber("malformed", replay.Malformed);
        writer.WriteNumber("unsynchronised", replay.Scanner.Unsynchronised);
        writer.WriteNumber("allowed", replay.Allowed);
        writer.WriteNumber("denied", replay.Denied);
        writer.WriteNumber("connections", replay.Connections);
        writer.WriteNumber("connections_denied", replay.ConnectionsDenied);
        writer.WriteNumber("matched_responses", replay.MatchedResponses);
        writer.WriteNumber("unmatched_responses", replay.UnmatchedResponses);
        writer.WriteNumber("response_timeouts", replay.ResponseTimeouts);
        WriteCounts(writer, "by_function", replay.ByType, t => Iec104Types.Name((byte)t));
        WriteCounts(writer, "by_cause", replay.ByCause, Number);
        WriteCounts(writer, "by_ca", replay.ByCommonAddress, Iec104PolicyReplay.CommonAddressWord);
        writer.WriteStartObject("by_rule");
        var names = UniqueRuleNames(replay.Policy);
        for (int i = 0; i < names.Length; i++)
        {
            writer.WriteNumber(names[i], replay.AllowedByRule[i]);
        }
        writer.WriteEndObject();
        WriteCounts(writer, "denied_by_cause", replay.DeniedByRefusalCause, Number);
        WriteCounts(writer, "responses_by_function", replay.ResponsesByType, t => Iec104Types.Name((byte)t));
        WriteCounts(writer, "responses_by_cause", replay.ResponsesByCause, Number);
        WriteCounts(writer, "responses_by_ca", replay.ResponsesByCommonAddress, Iec104PolicyReplay.CommonAddressWord);
        writer.WriteEndObject();
    }

    private static string Number(int n) => n.ToString(CultureInfo.InvariantCulture);

    private static void WriteCounts(Utf8JsonWriter writer, string name, long[] counts, Func<int, string> key)
    {
        writer.WriteStartObject(name);
        for (int i = 0; i < counts.Length; i++)
        {
            if (counts[i] > 0)
            {
                writer.WriteNumber(key(i), counts[i]);
            }
        }
        writer.WriteEndObject();
    }

    /// <summary>The human-readable report of an IEC 104 replay.</summary>
    public static void WriteText(TextWriter output, Iec104PolicyReplay replay, string listenerName)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(replay);
        var inv = CultureInfo.InvariantCulture;
        var scanner = replay.Scanner;
        var policy = replay.Policy;
        output.WriteLine(string.Create(inv, $"listener {listenerName}, policy {policy.Name} (iec104, {(policy.Mode == PolicyMode.Monitor ? "monitor: denied = would deny" : "enforce")}, on-deny {OnDenyName(policy.OnDeny)}), server port {scanner.ServerPort}"));
        output.WriteLine(string.Create(inv, $"frames {scanner.Frames}  iec104 segments {scanner.Segments}  connections {scanner.Connections}  retransmissions {scanner.Retransmissions}  out-of-order {scanner.OutOfOrder}  gaps {scanner.Gaps}  unsynchronised {scanner.Unsynchronised}  apdus {scanner.Apdus}"));
        output.WriteLine(string.Create(inv, $"connections judged {replay.Connections} (denied {replay.ConnectionsDenied})  requests {replay.Requests}  allowed {replay.Allowed}  denied {replay.Denied}  malformed {replay.Malformed}  not read (after a close) {replay.NotRead}"));
        output.WriteLine(string.Create(inv, $"responses {replay.Responses}  answers matched {replay.MatchedResponses}  unmatched (dropped) {replay.UnmatchedResponses}  uncheckable (dropped) {replay.UncheckableResponses}  response timeouts {replay.ResponseTimeouts}  selects confirmed {replay.SelectsConfirmed}"));
        output.WriteLine(string.Create(inv, $"S/U frames: client {replay.ClientControlFrames}  station {replay.StationControlFrames}"));

        output.WriteLine();
        output.WriteLine("by verdict:");
        output.WriteLine(string.Create(inv, $"  allowed                         {replay.Allowed,8}"));
        for (int r = 0; r < replay.DeniedByReason.Length; r++)
        {
            if (replay.DeniedByReason[r] > 0)
            {
                output.WriteLine(string.Create(inv, $"  denied {Iec104ReasonName(r),-24} {replay.DeniedByReason[r],8}"));
            }
        }
        if (replay.Denied > 0)
        {
            output.WriteLine("denied by the cause of the negative confirmation:");
            WriteTable(output, replay.DeniedByRefusalCause, c => string.Create(inv, $"{c} {Iec104Causes.Name((byte)c)}"));
        }

        output.WriteLine();
        output.WriteLine("by rule:                          allowed   denied (closest)");
        var names = UniqueRuleNames(policy);
        for (int i = 0; i < names.Length; i++)
        {
            output.WriteLine(string.Create(inv, $"  {Clip(names[i], 30),-30} {replay.AllowedByRule[i],8} {replay.ClosestRuleOfDenied[i],8}"));
        }
        if (replay.ClosestRuleOfDenied[^1] > 0)
        {
            output.WriteLine(string.Create(inv, $"  {"(no rule / pending limit)",-30} {0,8} {replay.ClosestRuleOfDenied[^1],8}"));
        }

        output.WriteLine();
        output.WriteLine("requests (client ASDUs) by type:");
        WriteTable(output, replay.ByType, t => Iec104Types.Name((byte)t));
        output.WriteLine("by cause:");
        WriteTable(output, replay.ByCause, c => string.Create(inv, $"{c} {Iec104Causes.Name((byte)c)}"));
        output.WriteLine("by common address:");
        WriteTable(output, replay.ByCommonAddress, Iec104PolicyReplay.CommonAddressWord);

        output.WriteLine();
        output.WriteLine("responses (station ASDUs) by type:");
        WriteTable(output, replay.ResponsesByType, t => Iec104Types.Name((byte)t));
        output.WriteLine("by cause:");
        WriteTable(output, replay.ResponsesByCause, c => string.Create(inv, $"{c} {Iec104Causes.Name((byte)c)}{(replay.NegativeResponsesByCause[c] > 0 ? $" ({replay.NegativeResponsesByCause[c]} negative)" : "")}"));
        output.WriteLine("by common address:");
        WriteTable(output, replay.ResponsesByCommonAddress, Iec104PolicyReplay.CommonAddressWord);

        if (replay.FirstDenied.Count > 0)
        {
            output.WriteLine();
            output.WriteLine(string.Create(inv, $"first denied frames ({replay.FirstDenied.Count} of {replay.Denied + replay.ConnectionsDenied}):"));
            foreach (var d in replay.FirstDenied)
            {
                output.WriteLine(string.Create(inv, $"  frame {d.FrameNumber,-7} {DescribeDenied(d, names)}"));
            }
        }

        if (replay.Malformed > 0)
        {
            output.WriteLine();
            output.WriteLine(string.Create(inv, $"malformed frames ({replay.FirstMalformed.Count} of {replay.Malformed}; each ends its stream direction):"));
            foreach (var m in replay.FirstMalformed)
            {
                output.WriteLine(string.Create(inv, $"  frame {m.FrameNumber,-7} {(m.IsRequest ? "request " : "response")} {m.Detail ?? Iec104FrameErrors.Describe(m.Error)}"));
            }
        }

        if (scanner.FirstGaps.Count > 0)
        {
            output.WriteLine();
            output.WriteLine(string.Create(inv, $"gaps (bytes never captured; the stream resynchronises on the next APDU) ({scanner.FirstGaps.Count} of {scanner.Gaps}):"));
            foreach (var (frame, missing) in scanner.FirstGaps)
            {
                output.WriteLine(string.Create(inv, $"  frame {frame,-7} {missing} bytes missing"));
            }
        }
    }

    /// <summary>One denial in words: source, type, cause, CA, IOA, why and the negative confirmation's cause.</summary>
    public static string DescribeDenied(Iec104DeniedFrame d, string[] ruleNames)
    {
        ArgumentNullException.ThrowIfNull(ruleNames);
        var inv = CultureInfo.InvariantCulture;
        if (d.Kind == Iec104DenialKind.Connection)
        {
            return $"{Address(d.Source)} connection (no rule for this source: closed before STARTDT)";
        }
        string what = string.Create(inv, $"{Address(d.Source)} {Iec104Types.Name((byte)d.Type)} cause {d.RequestCause} ca {Iec104PolicyReplay.CommonAddressWord(d.CommonAddress)} ioa {d.Ioa}");
        string why = d.Kind == Iec104DenialKind.PendingLimit
            ? "pending-per-connection commands outstanding"
            : $"{Iec104ReasonName((int)d.Reason)}, closest rule {(d.RuleIndex >= 0 && d.RuleIndex < ruleNames.Length ? ruleNames[d.RuleIndex] : "none")}";
        return string.Create(inv, $"{what} ({why}) → negative confirmation, cause {d.Cause} {Iec104Causes.Name(d.Cause)}");
    }

    private static void WriteTable(TextWriter output, long[] counts, Func<int, string> key)
    {
        for (int i = 0; i < counts.Length; i++)
        {
            if (counts[i] > 0)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {Clip(key(i), 30),-30} {counts[i],8}"));
            }
        }
    }

    private static string Iec104ReasonName(int reason) => reason switch
    {
        (int)DenyReason.SourceOrUnit => "source/common address",
        (int)DenyReason.Function => "type",
        (int)DenyReason.MaintenanceKey => "maintenance key not armed",
        (int)DenyReason.Address => "ioa span",
        (int)DenyReason.Value => "value/qualifier/select",
        (int)DenyReason.Rate => "rate",
        Iec104PolicyReplay.PendingLimitReason => "pending limit",
        _ => ((DenyReason)reason).ToString(),
    };
}
