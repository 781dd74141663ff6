using System.Buffers.Binary;
using EdgeShield.Policy;

namespace EdgeShield.Benchmarks;

/// <summary>Request and response ADUs of a typical HMI, and the policy they are judged by.</summary>
internal static class Frames
{
    /// <summary>FC 3, unit 1, read 10 holding registers from 100.</summary>
    public static byte[] ReadHolding() => Adu(0x0001, 1, [3, 0, 100, 0, 10]);

    /// <summary>FC 16, unit 1, write 10 registers from 100, values 100..109 (inside 0-1500).</summary>
    public static byte[] WriteMultiple(ushort firstValue = 100)
    {
        var pdu = new byte[6 + 20];
        pdu[0] = 16;
        BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(1), 100);
        BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(3), 10);
        pdu[5] = 20;
        for (int i = 0; i < 10; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(6 + (i * 2)), (ushort)(firstValue + i));
        }
        return Adu(0x0002, 1, pdu);
    }

    /// <summary>FC 23, unit 1: read 10 from 0, write 4 to 100.</summary>
    public static byte[] ReadWriteMultiple()
    {
        var pdu = new byte[10 + 8];
        pdu[0] = 23;
        BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(1), 0);
        BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(3), 10);
        BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(5), 100);
        BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(7), 4);
        pdu[9] = 8;
        for (int i = 0; i < 4; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(10 + (i * 2)), (ushort)(500 + i));
        }
        return Adu(0x0003, 1, pdu);
    }

    /// <summary>FC 6, unit 1, register 110.</summary>
    public static byte[] WriteSingle(ushort value) => Adu(0x0004, 1, [6, 0, 110, (byte)(value >> 8), (byte)value]);

    /// <summary>The normal response to <see cref="ReadHolding"/>: byte count 20 and 10 registers.</summary>
    public static byte[] ReadHoldingResponse()
    {
        var pdu = new byte[2 + 20];
        pdu[0] = 3;
        pdu[1] = 20;
        return Adu(0x0001, 1, pdu);
    }

    public static byte[] Adu(ushort tid, byte unit, byte[] pdu)
    {
        var adu = new byte[7 + pdu.Length];
        BinaryPrimitives.WriteUInt16BigEndian(adu, tid);
        BinaryPrimitives.WriteUInt16BigEndian(adu.AsSpan(4), (ushort)(pdu.Length + 1));
        adu[6] = unit;
        pdu.CopyTo(adu, 7);
        return adu;
    }

    /// <summary>
    /// The policy of the end-to-end bench (it allows everything <c>edgeshield-sim hmi</c> sends:
    /// FC 1/3/4 reads in 0-999, FC 6/16 writes in 100-119 with values 0-1000), plus a rate-limited
    /// rule on unit 2 for the rate benchmark.
    /// </summary>
    public const string Policy = """
            mode: enforce
            rules:
              - name: hmi reads
                unit: 1
                function: [read]
                address: 0-999
              - name: setpoints
                unit: 1
                function: [write-single-register, write-multiple-registers, read-write-multiple-registers]
                address: 0-999
                value: 0-1500
              - name: slow unit
                unit: 2
                function: [read]
                address: 0-999
                rate: 1/h
        """;

    public static string Config(string bind, int upstreamPort) => $$"""
        gateway: { name: bench-gw, site: lab }
        listeners:
          - name: bench
            bind: {{bind}}
            protocol: modbus-tcp
            upstream: tcp://127.0.0.1:{{upstreamPort}}
            policy: plc1
            limits: { connections-per-source: 1024 }
        policies:
          plc1:
        {{Policy}}
        """;

    public static CompiledPolicy LoadPolicy()
    {
        var loaded = ConfigLoader.LoadText(Config("127.0.0.1:0", 502), "bench.yaml");
        if (loaded.HasErrors || loaded.Config is null)
        {
            throw new InvalidOperationException(string.Join('\n', loaded.Diagnostics));
        }
        return loaded.Config.Policies["plc1"];
    }
}
