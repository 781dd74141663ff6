using System.Buffers;
using BenchmarkDotNet.Attributes;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Benchmarks;

/// <summary>
/// What the gateway's IEC 104 session does per APDU before the policy: delimit, read the APCI, read the ASDU at its
/// exact length, walk its objects (and for a command read its qualifier, value and select key), and renumber a
/// forwarded I-frame for the other leg.
/// </summary>
[MemoryDiagnoser]
public class Iec104CodecBenchmarks
{
    // 090813_diverse frame 1: M_ME_NC_1, 2 floats, spontaneous.
    private readonly byte[] _measurements = Convert.FromHexString("681A9A0028000D02010003001405000000F041001505000000314400");
    // C_SE_NC_1 select: CA 1, IOA 3000, 50.0, QOS S/E = 1.
    private readonly byte[] _setPoint = Convert.FromHexString("681202000200320106000100B80B000000484280");
    private readonly byte[] _forward = new byte[Iec104Limits.MaxFrame];

    [GlobalSetup]
    public void Setup()
    {
        if (Measurements() <= 0 || SetPoint() <= 0)
        {
            throw new InvalidOperationException("the frames do not read");
        }
    }

    [Benchmark(Description = "IEC 104 frame+APCI+ASDU+walk M_ME_NC_1 2 objects")]
    public long Measurements()
    {
        var asdu = Read(_measurements, out _);
        long sum = 0;
        foreach (var o in asdu)
        {
            sum += o.Ioa + o.Element.Length;
        }
        return sum;
    }

    [Benchmark(Description = "IEC 104 frame+APCI+ASDU+command C_SE_NC_1 select")]
    public long SetPoint()
    {
        var asdu = Read(_setPoint, out _);
        if (!asdu.IsCommand || !asdu.QualifierValid || !asdu.TryGetValue(out double min, out _) || !asdu.TryGetCommandKey(out var key))
        {
            return -1;
        }
        return (asdu.IsSelect ? 1 : 0) + (long)min + key.Ioa;
    }

    [Benchmark(Description = "IEC 104 renumber forwarded I-frame")]
    public int Renumber()
    {
        _setPoint.CopyTo(_forward, 0);
        Iec104Writer.SetControl(_forward, 12345, 32767);
        return _forward[2];
    }

    private static Iec104Asdu Read(ReadOnlySpan<byte> stream, out int consumed)
    {
        if (Iec104Framer.Instance.TryDelimit(stream, out consumed, out _) != OperationStatus.Done
            || !Iec104Apdu.TryParse(stream[..consumed], out var apdu, out _)
            || !Iec104Asdu.TryParse(apdu.Asdu, out var asdu, out _))
        {
            throw new InvalidOperationException("not a well-formed APDU");
        }
        return asdu;
    }
}
