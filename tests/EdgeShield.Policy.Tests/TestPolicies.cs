using System.Net;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Policy.Tests;

internal static class TestPolicies
{
    /// <summary>Compiles one policy named <c>p</c> whose rules are <paramref name="rulesYaml"/> (indented by 6).</summary>
    public static CompiledPolicy Compile(string rulesYaml, MaintenanceState? maintenance = null, string mode = "enforce")
    {
        var yaml = $"policies:\n  p:\n    mode: {mode}\n    rules:\n{rulesYaml}";
        var result = ConfigLoader.LoadText(yaml, "test.yaml", maintenance ?? new MaintenanceState());
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        return result.Config!.Policies["p"];
    }

    public static ConfigLoadResult Load(string yaml) => ConfigLoader.LoadText(yaml, "test.yaml");

    public static string[] Lines(ConfigLoadResult result)
    {
        var lines = new string[result.Diagnostics.Count];
        for (var i = 0; i < lines.Length; i++)
        {
            lines[i] = result.Diagnostics[i].ToString();
        }
        return lines;
    }

    public static SourceAddress Ip(string address) => SourceAddress.From(IPAddress.Parse(address));

    public static Verdict Evaluate(CompiledPolicy policy, string source, byte unit, byte[] pdu, long timestamp = 1_000)
    {
        var request = ModbusPdu.ParseRequest(pdu);
        Assert.Equal(RequestStatus.Valid, request.Status);
        return policy.Evaluate(Ip(source), unit, request, timestamp);
    }

    public static byte[] Read(byte function, ushort start, ushort count) =>
        [function, (byte)(start >> 8), (byte)start, (byte)(count >> 8), (byte)count];

    public static byte[] WriteSingle(ushort address, ushort value) =>
        [6, (byte)(address >> 8), (byte)address, (byte)(value >> 8), (byte)value];

    public static byte[] WriteCoil(ushort address) => [5, (byte)(address >> 8), (byte)address, 0xFF, 0x00];

    public static byte[] WriteMultiple(ushort start, params ushort[] values)
    {
        var pdu = new byte[6 + values.Length * 2];
        pdu[0] = 16;
        pdu[1] = (byte)(start >> 8);
        pdu[2] = (byte)start;
        pdu[4] = (byte)values.Length;
        pdu[5] = (byte)(values.Length * 2);
        for (var i = 0; i < values.Length; i++)
        {
            pdu[6 + i * 2] = (byte)(values[i] >> 8);
            pdu[7 + i * 2] = (byte)values[i];
        }
        return pdu;
    }

    public static byte[] ReadWrite(ushort readStart, ushort readCount, ushort writeStart, params ushort[] values)
    {
        var pdu = new byte[10 + values.Length * 2];
        pdu[0] = 23;
        pdu[1] = (byte)(readStart >> 8);
        pdu[2] = (byte)readStart;
        pdu[4] = (byte)readCount;
        pdu[5] = (byte)(writeStart >> 8);
        pdu[6] = (byte)writeStart;
        pdu[8] = (byte)values.Length;
        pdu[9] = (byte)(values.Length * 2);
        for (var i = 0; i < values.Length; i++)
        {
            pdu[10 + i * 2] = (byte)(values[i] >> 8);
            pdu[11 + i * 2] = (byte)values[i];
        }
        return pdu;
    }

    public static byte[] MaskWrite(ushort address) => [22, (byte)(address >> 8), (byte)address, 0xFF, 0x00, 0x00, 0x0F];

    /// <summary>A valid request PDU for each function code the tests name.</summary>
    public static byte[] PduFor(byte function, byte meiType = 0) => function switch
    {
        1 or 2 or 3 or 4 => Read(function, 0, 1),
        5 => WriteCoil(0),
        6 => WriteSingle(0, 1),
        7 or 11 or 12 or 17 => [function],
        8 => [8, 0, 0, 0x12, 0x34],
        15 => [15, 0, 0, 0, 1, 1, 1],
        16 => WriteMultiple(0, 1),
        20 => [20, 7, 6, 0, 1, 0, 0, 0, 1],
        21 => [21, 9, 6, 0, 1, 0, 0, 0, 1, 0x12, 0x34],
        22 => MaskWrite(0),
        23 => ReadWrite(0, 1, 0, 1),
        24 => [24, 0, 0],
        43 => meiType == 14 ? [43, 14, 1, 0] : [43, meiType, 0, 0],
        _ => [function, 0, 0],
    };
}
