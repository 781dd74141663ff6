using System.Buffers;
using BenchmarkDotNet.Attributes;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Benchmarks;

/// <summary>
/// The RTU frame path of a serial bus per transaction: CRC of a request and a reply, MBAP → RTU
/// of the request, framing (length rules + CRC check) of the reply and RTU → MBAP back.
/// </summary>
[MemoryDiagnoser]
public class RtuBenchmarks
{
    private readonly byte[] _mbapRead = Frames.ReadHolding();
    private readonly byte[] _rtuReply = new byte[5 + 20];
    private readonly byte[] _rtuMax = new byte[256];
    private readonly byte[] _output = new byte[300];

    [GlobalSetup]
    public void Setup()
    {
        var pdu = new byte[1 + 1 + 20];
        pdu[0] = 3;
        pdu[1] = 20;
        RtuFramer.WriteFrame(_rtuReply, 1, pdu);
        var big = new byte[253];
        big[0] = 0x5A;
        RtuFramer.WriteFrame(_rtuMax, 1, big);
    }

    [Benchmark(Description = "CRC-16/MODBUS 8 bytes (request)")]
    public ushort Crc8() => Crc16Modbus.Compute(_rtuReply.AsSpan(0, 8));

    [Benchmark(Description = "CRC-16/MODBUS 256 bytes (largest ADU)")]
    public ushort Crc256() => Crc16Modbus.Compute(_rtuMax);

    [Benchmark(Description = "MBAP→RTU request (FC3 read 10)")]
    public int ToRtu() => RtuFramer.FromMbap(_mbapRead, _output);

    [Benchmark(Description = "RTU reply framed + CRC checked + →MBAP (FC3, 10 registers)")]
    public int ReplyToMbap()
    {
        if (RtuFramer.TryReadFrame(_rtuReply, RtuDirection.Response, false, out var frame, out int consumed, out _) != OperationStatus.Done)
        {
            throw new InvalidOperationException("not a frame");
        }
        return consumed + RtuFramer.ToMbap(frame, 7, _output);
    }
}
