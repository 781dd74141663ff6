using System.Globalization;
using System.Net;
using System.Text.Json;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Policy.Replay;

/// <summary>
/// Writes a <see cref="PolicyReplay"/>'s counts: the JSON object of DESIGN.md (<c>replay --json</c>)
/// and the text report. Every list is in a fixed order (keys ascending, rules in policy order), so
/// the same capture and policy always print the same bytes.
/// </summary>
public static partial class ReplayReport
{
    /// <summary>
    /// <c>{"frames","requests","responses","malformed","unsynchronised","allowed","denied","by_function":{"3":n,…},"by_rule":{…}}</c>:
    /// frames are packet records; by_function counts every request (allowed or denied, out-of-spec
    /// included) by the function byte as sent; by_rule counts the requests each rule allowed, every
    /// rule listed in policy order.
    /// </summary>
    public static void WriteJson(Utf8JsonWriter writer, PolicyReplay replay)
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
        for (int fc = 0; fc < 256; fc++)
        {
            if (replay.ByFunction[fc] > 0)
            {
                writer.WriteNumber(fc.ToString(CultureInfo.InvariantCulture), replay.ByFunction[fc]);
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

    /// <summary>The human-readable report.</summary>
    public static void WriteText(TextWriter output, PolicyReplay replay, string listenerName)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(replay);
        var inv = CultureInfo.InvariantCulture;
        var scanner = replay.Scanner;
        var policy = replay.Policy;
        output.WriteLine(string.Create(inv, $"listener {listenerName}, policy {policy.Name} ({(policy.Mode == PolicyMode.Monitor ? "monitor: denied = would deny" : "enforce")}, on-deny {OnDenyName(policy.OnDeny)}), server port {scanner.ServerPort}"));
        output.WriteLine(string.Create(inv, $"frames {scanner.Frames}  modbus segments {scanner.ModbusSegments}  connections {scanner.Connections}  retransmissions {scanner.Retransmissions}  out-of-order {scanner.OutOfOrder}  gaps {scanner.Gaps}  unsynchronised {scanner.Unsynchronised}"));
        output.WriteLine(string.Create(inv, $"requests {replay.Requests}  allowed {replay.Allowed}  denied {replay.Denied}  malformed {replay.Malformed}  responses {replay.Responses}  exceptions {replay.ExceptionResponses}"));

        output.WriteLine();
        output.WriteLine("by verdict:");
        output.WriteLine(string.Create(inv, $"  allowed                         {replay.Allowed,8}"));
        for (int r = 0; r < replay.DeniedByReason.Length; r++)
        {
            if (replay.DeniedByReason[r] > 0)
            {
                output.WriteLine(string.Create(inv, $"  denied {ReasonName(r),-24} {replay.DeniedByReason[r],8}"));
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
        output.WriteLine("by unit:");
        for (int u = 0; u < 256; u++)
        {
            if (replay.ByUnit[u] > 0)
            {
                output.WriteLine(string.Create(inv, $"  {u,-5} {replay.ByUnit[u],8}"));
            }
        }

        output.WriteLine();
        output.WriteLine("by function:");
        for (int fc = 0; fc < 256; fc++)
        {
            if (replay.ByFunction[fc] > 0)
            {
                output.WriteLine(string.Create(inv, $"  {fc,3} {FunctionName((byte)fc),-34} {replay.ByFunction[fc],8}"));
            }
        }

        if (replay.ExceptionResponses > 0)
        {
            output.WriteLine();
            output.WriteLine("exception responses from the server:");
            for (int code = 0; code < 256; code++)
            {
                if (replay.ExceptionsByCode[code] > 0)
                {
                    output.WriteLine(string.Create(inv, $"  {code:X2}  {replay.ExceptionsByCode[code],8}"));
                }
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
                    : $"{ReasonName((int)d.Reason)}, closest rule {(d.RuleIndex >= 0 ? names[d.RuleIndex] : "none")}";
                output.WriteLine(string.Create(inv, $"  frame {d.FrameNumber,-7} {Address(d.Source)} unit {d.UnitId} function {d.FunctionCode} → exception {d.ExceptionCode:X2} ({why})"));
            }
        }

        if (replay.Malformed > 0)
        {
            output.WriteLine();
            output.WriteLine(string.Create(inv, $"malformed frames ({replay.FirstMalformed.Count} of {replay.Malformed}; each ends its stream direction):"));
            foreach (var m in replay.FirstMalformed)
            {
                output.WriteLine(string.Create(inv, $"  frame {m.FrameNumber,-7} {(m.IsRequest ? "request " : "response")} unit {(m.UnitId < 0 ? "-" : m.UnitId.ToString(inv))} function {(m.FunctionCode < 0 ? "-" : m.FunctionCode.ToString(inv))}: {ModbusFaults.Describe(m.Reason)}"));
            }
        }

        if (scanner.FirstGaps.Count > 0)
        {
            output.WriteLine();
            output.WriteLine(string.Create(inv, $"gaps (bytes never captured; the stream resynchronises on the next ADU) ({scanner.FirstGaps.Count} of {scanner.Gaps}):"));
            foreach (var (frame, missing) in scanner.FirstGaps)
            {
                output.WriteLine(string.Create(inv, $"  frame {frame,-7} {missing} bytes missing"));
            }
        }
    }

    /// <summary>Rule names made unique for use as JSON keys: a repeated name gets " (rule N)".</summary>
    public static string[] UniqueRuleNames(CompiledPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var names = new string[policy.RuleNames.Count];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < names.Length; i++)
        {
            string name = policy.RuleNames[i];
            names[i] = seen.Add(name) ? name : $"{name} (rule {i + 1})";
        }
        return names;
    }

    internal static string Clip(string s, int width) => s.Length <= width ? s : s[..(width - 1)] + "…";

    internal static string Address(UInt128 value)
    {
        Span<byte> bytes = stackalloc byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(bytes, value);
        var address = new IPAddress(bytes);
        return (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString();
    }

    internal static string OnDenyName(OnDeny onDeny) => onDeny switch
    {
        OnDeny.Drop => "drop",
        OnDeny.Close => "close",
        _ => "exception",
    };

    private static string ReasonName(int reason) => reason switch
    {
        (int)DenyReason.SourceOrUnit => "source/unit (0A)",
        (int)DenyReason.Function => "function (01)",
        (int)DenyReason.MaintenanceKey => "maintenance key not armed (01)",
        (int)DenyReason.AreaOrBlock => "area or data block",
        (int)DenyReason.Address => "address (02)",
        (int)DenyReason.Value => "value/quantity (03)",
        (int)DenyReason.Rate => "rate (06)",
        _ => "out of spec (01/02/03)",
    };

    private static string FunctionName(byte fc)
    {
        var function = ModbusFunctions.Classify(fc, fc == ModbusFunctions.EncapsulatedInterface ? ModbusFunctions.MeiDeviceIdentification : (byte)0);
        return fc == ModbusFunctions.EncapsulatedInterface ? "encapsulated-interface (43/*)" : ModbusFunctions.Name(function) ?? (ModbusFunctions.IsProgramCode(fc) ? "(program)" : "(unknown)");
    }
}
