using System.Globalization;
using System.Text.Json;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Policy.Replay;

public static partial class ReplayReport
{
    /// <summary>
    /// The JSON object of DESIGN.md for an S7 replay: the same keys as for Modbus; <c>by_function</c> is keyed by
    /// the S7 function words (<c>read-var</c>, <c>cpu-functions</c>, <c>s7comm-plus</c>…) and <c>cotp-connect</c>
    /// for COTP connects, in a fixed order.
    /// </summary>
    public static void WriteJson(Utf8JsonWriter writer, S7PolicyReplay replay)
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
        writer.WriteStartObject("by_function");
        for (int slot = 0; slot < replay.ByFunction.Length; slot++)
        {
            if (replay.ByFunction[slot] > 0)
            {
                writer.WriteNumber(S7PolicyReplay.FunctionWord(slot), replay.ByFunction[slot]);
            }
        }
        writer.WriteEndObject();
        writer.WriteStartObject("by_rule");
        var names = UniqueRuleNames(replay.Policy);
        for (int i = 0; i < names.Length; i++)
        {
            writer.WriteNumber(names[i], replay.AllowedByRule[i]);
        }
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    /// <summary>The human-readable report of an S7 replay.</summary>
    public static void WriteText(TextWriter output, S7PolicyReplay replay, string listenerName)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(replay);
        var inv = CultureInfo.InvariantCulture;
        var scanner = replay.Scanner;
        var policy = replay.Policy;
        output.WriteLine(string.Create(inv, $"listener {listenerName}, policy {policy.Name} (s7comm, {(policy.Mode == PolicyMode.Monitor ? "monitor: denied = would deny" : "enforce")}, on-deny {OnDenyName(policy.OnDeny)}), server port {scanner.ServerPort}"));
        output.WriteLine(string.Create(inv, $"frames {scanner.Frames}  s7 segments {scanner.Segments}  connections {scanner.Connections}  retransmissions {scanner.Retransmissions}  out-of-order {scanner.OutOfOrder}  gaps {scanner.Gaps}  unsynchronised {scanner.Unsynchronised}  cotp fragments {scanner.Fragments}"));
        output.WriteLine(string.Create(inv, $"requests {replay.Requests} (connects {replay.Connects})  allowed {replay.Allowed}  denied {replay.Denied}  malformed {replay.Malformed}  responses {replay.Responses}  client answers {replay.ClientAnswers}"));

        output.WriteLine();
        output.WriteLine("by verdict:");
        output.WriteLine(string.Create(inv, $"  allowed                         {replay.Allowed,8}"));
        for (int r = 0; r < replay.DeniedByReason.Length; r++)
        {
            if (replay.DeniedByReason[r] > 0)
            {
                output.WriteLine(string.Create(inv, $"  denied {S7ReasonName(r),-24} {replay.DeniedByReason[r],8}"));
            }
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
            output.WriteLine(string.Create(inv, $"  {"(no rule / out of spec)",-30} {0,8} {replay.ClosestRuleOfDenied[^1],8}"));
        }

        output.WriteLine();
        output.WriteLine("by function:");
        for (int slot = 0; slot < replay.ByFunction.Length; slot++)
        {
            if (replay.ByFunction[slot] > 0)
            {
                output.WriteLine(string.Create(inv, $"  {S7PolicyReplay.FunctionWord(slot),-30} {replay.ByFunction[slot],8}"));
            }
        }

        output.WriteLine();
        output.WriteLine("responses from the server by type:");
        for (int rosctr = 0; rosctr < replay.ResponsesByRosctr.Length; rosctr++)
        {
            if (replay.ResponsesByRosctr[rosctr] > 0)
            {
                output.WriteLine(string.Create(inv, $"  {RosctrName(rosctr),-30} {replay.ResponsesByRosctr[rosctr],8}"));
            }
        }
        for (int errorClass = 1; errorClass < 256; errorClass++)
        {
            if (replay.ErrorsByClass[errorClass] > 0)
            {
                output.WriteLine(string.Create(inv, $"  error class {errorClass:X2}                 {replay.ErrorsByClass[errorClass],8}"));
            }
        }

        if (replay.FirstDenied.Count > 0)
        {
            output.WriteLine();
            output.WriteLine(string.Create(inv, $"first denied frames ({replay.FirstDenied.Count} of {replay.Denied}):"));
            foreach (var d in replay.FirstDenied)
            {
                string why = d.Reason == DenyReason.None
                    ? "out of spec: " + d.Violation
                    : $"{S7ReasonName((int)d.Reason)}, closest rule {(d.RuleIndex >= 0 ? names[d.RuleIndex] : "none")}";
                output.WriteLine(string.Create(inv, $"  frame {d.FrameNumber,-7} {Address(d.Source)} connection {ConnectionWord(d.Connection)} {S7PolicyReplay.FunctionWord(d.FunctionSlot)} ({why})"));
            }
        }

        if (replay.Malformed > 0)
        {
            output.WriteLine();
            output.WriteLine(string.Create(inv, $"malformed frames ({replay.FirstMalformed.Count} of {replay.Malformed}; each ends its stream direction):"));
            foreach (var m in replay.FirstMalformed)
            {
                string detail = m.Fault switch
                {
                    S7CaptureFault.Framing or S7CaptureFault.PduTooLarge => $"{m.Fault}: {m.Framing}",
                    S7CaptureFault.Request or S7CaptureFault.ResponseHeader => $"{m.Fault}: {m.Request}",
                    _ => m.Fault.ToString(),
                };
                output.WriteLine(string.Create(inv, $"  frame {m.FrameNumber,-7} {(m.IsRequest ? "request " : "response")} {detail}"));
            }
        }

        if (scanner.FirstGaps.Count > 0)
        {
            output.WriteLine();
            output.WriteLine(string.Create(inv, $"gaps (bytes never captured; the stream resynchronises on the next TPKT packet) ({scanner.FirstGaps.Count} of {scanner.Gaps}):"));
            foreach (var (frame, missing) in scanner.FirstGaps)
            {
                output.WriteLine(string.Create(inv, $"  frame {frame,-7} {missing} bytes missing"));
            }
        }
    }

    /// <summary>The <c>connection:</c> word of a connection type (<c>pg</c>, <c>op</c>, <c>basic</c>, a number, <c>plus-hmi</c>, <c>plus-es</c>; <c>unknown</c> without a connect).</summary>
    public static string ConnectionWord(S7Connection connection) => connection.Kind switch
    {
        S7ConnectionKind.Pg => "pg",
        S7ConnectionKind.Op => "op",
        S7ConnectionKind.Basic => "basic",
        S7ConnectionKind.Other => connection.TypeCode.ToString(CultureInfo.InvariantCulture),
        S7ConnectionKind.PlusHmi => "plus-hmi",
        S7ConnectionKind.PlusEs => "plus-es",
        _ => "unknown",
    };

    private static string RosctrName(int rosctr) => rosctr switch
    {
        0 => "s7comm-plus",
        1 => "job (server-initiated)",
        2 => "ack",
        3 => "ack-data",
        7 => "userdata",
        _ => rosctr.ToString(CultureInfo.InvariantCulture),
    };

    private static string S7ReasonName(int reason) => reason switch
    {
        (int)DenyReason.SourceOrUnit => "source/connection type",
        (int)DenyReason.Function => "function",
        (int)DenyReason.MaintenanceKey => "maintenance key not armed",
        (int)DenyReason.AreaOrBlock => "area or data block",
        (int)DenyReason.Address => "address span",
        (int)DenyReason.Value => "value",
        (int)DenyReason.Rate => "rate",
        _ => "out of spec",
    };
}
