using System.Buffers;
using System.Diagnostics;
using System.Net;
using BenchmarkDotNet.Attributes;
using EdgeShield.Policy;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Benchmarks;

/// <summary>
/// IEC 104 as the gateway's receive loop does it per client frame: delimit the APDU, read the APCI and the
/// ASDU (exact length against the type table), judge it with the policy (Inspector.InspectIec104, the order
/// the live session and replay share). Target: ≤ 100 ns, 0 B (issue 13).
/// </summary>
[MemoryDiagnoser]
public class Iec104InspectionBenchmarks
{
    // I-frame N(S)=5 N(R)=7: C_SC_NA_1 (45), SQ=0 N=1, cause 6 activation, OA 0, CA 1, IOA 2000, SCO select + ON.
    private readonly byte[] _select = Convert.FromHexString("680E0A000E00" + "2D01060001" + "00" + "D00700" + "81");
    // C_SE_NC_1 (50) set-point float 42.5 at IOA 3000, QOS 0 (execute).
    private readonly byte[] _setPoint = Convert.FromHexString("681210000E00" + "3201060001" + "00" + "B80B00" + "00002A42" + "00");
    private readonly CompiledPolicy _policy = Policy();
    private readonly SourceAddress _source = SourceAddress.From(IPAddress.Loopback);
    private readonly Iec104Selects _selects = new();
    // The live session judges at the timestamp of the read that brought the frame (ClientConnection.ReadAt), taken once per read.
    private readonly long _readAt = Stopwatch.GetTimestamp();

    private static CompiledPolicy Policy()
    {
        var loaded = ConfigLoader.LoadText("""
            policies:
              rtu7:
                protocol: iec104
                mode: enforce
                rules:
                  - name: scada monitoring
                    from: 127.0.0.0/8
                    type: [C_IC_NA_1, C_CI_NA_1, C_RD_NA_1, C_TS_TA_1]
                    ca: 1
                  - name: breaker commands
                    from: 127.0.0.0/8
                    type: [C_SC_NA_1, C_DC_NA_1, C_SC_TA_1, C_DC_TA_1]
                    ca: 1
                    ioa: 2000-2099
                    select-before-operate: true
                  - name: set-points
                    from: 127.0.0.0/8
                    type: C_SE_NC_1
                    ca: 1
                    ioa: 3000-3009
                    value: 0-150.0
            """, "bench-iec104.yaml");
        if (loaded.HasErrors || loaded.Config is null)
        {
            throw new InvalidOperationException(string.Join('\n', loaded.Diagnostics));
        }
        return loaded.Config.Policies["rtu7"];
    }

    [GlobalSetup]
    public void Setup()
    {
        if (FrameParseVerdictSelect() != (int)InspectionKind.Allowed || FrameParseVerdictSetPoint() != (int)InspectionKind.Allowed)
        {
            throw new InvalidOperationException("the bench commands are not allowed");
        }
    }

    [Benchmark(Description = "IEC 104 frame→APCI→ASDU→verdict C_SC_NA_1 select (allowed, SBO rule)")]
    public int FrameParseVerdictSelect() => Inspect(_select);

    [Benchmark(Description = "IEC 104 frame→APCI→ASDU→verdict C_SE_NC_1 float set-point (allowed, value bound)")]
    public int FrameParseVerdictSetPoint() => Inspect(_setPoint);

    private int Inspect(ReadOnlySpan<byte> input)
    {
        if (Iec104Framer.Instance.TryDelimit(input, out int consumed, out _) != OperationStatus.Done
            || !Iec104Apdu.TryParse(input[..consumed], out var apdu, out _)
            || !Iec104Asdu.TryParse(apdu.Asdu, out var asdu, out _))
        {
            throw new InvalidOperationException("not a well-formed I-frame");
        }
        return (int)Inspector.InspectIec104(_policy, _source, asdu, _selects, _readAt).Kind;
    }
}
