using System.Buffers;
using System.Diagnostics;
using System.Net;
using BenchmarkDotNet.Attributes;
using EdgeShield.Policy;
using EdgeShield.Protocols.Modbus;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Benchmarks;

/// <summary>MBAP framing plus request decoding, as the gateway's receive loop does it per frame.</summary>
[MemoryDiagnoser]
public class FrameParseBenchmarks
{
    private readonly byte[] _fc3 = Frames.ReadHolding();
    private readonly byte[] _fc16 = Frames.WriteMultiple();
    private readonly byte[] _fc23 = Frames.ReadWriteMultiple();

    [Benchmark(Description = "frame+parse FC3 read 10")]
    public int Fc3() => FrameAndParse(_fc3);

    [Benchmark(Description = "frame+parse FC16 write 10")]
    public int Fc16() => FrameAndParse(_fc16);

    [Benchmark(Description = "frame+parse FC23 read 10/write 4")]
    public int Fc23() => FrameAndParse(_fc23);

    private static int FrameAndParse(ReadOnlySpan<byte> input)
    {
        if (MbapFramer.TryReadFrame(input, out var frame, out int consumed, out _) != OperationStatus.Done)
        {
            throw new InvalidOperationException("not a frame");
        }
        var request = ModbusPdu.ParseRequest(frame.Pdu);
        if (request.Status != RequestStatus.Valid)
        {
            throw new InvalidOperationException("not valid");
        }
        return consumed + request.ReadSpan.Count + request.WriteSpan.Count + request.RegisterValueCount;
    }
}

/// <summary>
/// <see cref="CompiledPolicy.Evaluate"/> alone. The request is decoded once per invocation (a ref
/// struct cannot live in a field) and judged <see cref="Judgements"/> times.
/// </summary>
[MemoryDiagnoser]
public class PolicyBenchmarks
{
    private const int Judgements = 64;

    private readonly byte[] _read = Frames.ReadHolding();
    private readonly byte[] _deniedWrite = Frames.WriteSingle(2000);
    private readonly byte[] _slowUnitRead = Frames.Adu(5, 2, [3, 0, 100, 0, 10]);
    private readonly CompiledPolicy _policy = Frames.LoadPolicy();
    private readonly SourceAddress _source = SourceAddress.From(IPAddress.Loopback);

    [GlobalSetup]
    public void Setup()
    {
        // Each judged request must get the verdict the benchmark is named after.
        Expect(_read, 1, DenyReason.None);
        Expect(_deniedWrite, 1, DenyReason.Value);
        Expect(_slowUnitRead, 2, DenyReason.None); // the rate bucket's one token
        Expect(_slowUnitRead, 2, DenyReason.Rate);
    }

    [Benchmark(Description = "Evaluate allowed FC3 read", OperationsPerInvoke = Judgements)]
    public int AllowedRead() => Judge(_read, 1);

    [Benchmark(Description = "Evaluate denied FC6 write (value out of range)", OperationsPerInvoke = Judgements)]
    public int DeniedWrite() => Judge(_deniedWrite, 1);

    [Benchmark(Description = "Evaluate rate-limited rule (bucket empty)", OperationsPerInvoke = Judgements)]
    public int RateLimited() => Judge(_slowUnitRead, 2);

    private int Judge(byte[] adu, byte unit)
    {
        var request = ModbusPdu.ParseRequest(adu.AsSpan(ModbusLimits.MbapHeaderLength));
        int sum = 0;
        for (int i = 0; i < Judgements; i++)
        {
            sum += (int)_policy.Evaluate(_source, unit, request, Stopwatch.GetTimestamp()).Reason;
        }
        return sum;
    }

    private void Expect(byte[] adu, byte unit, DenyReason reason)
    {
        var request = ModbusPdu.ParseRequest(adu.AsSpan(ModbusLimits.MbapHeaderLength));
        var verdict = _policy.Evaluate(_source, unit, request, Stopwatch.GetTimestamp());
        if (verdict.Reason != reason)
        {
            throw new InvalidOperationException($"expected {reason}, got {verdict.Reason}");
        }
    }
}

/// <summary>What the gateway does per frame: frame, decode, judge, and (for the answer) check the response.</summary>
[MemoryDiagnoser]
public class InspectionBenchmarks
{
    private readonly byte[] _fc3 = Frames.ReadHolding();
    private readonly byte[] _fc16 = Frames.WriteMultiple();
    private readonly byte[] _fc3Response = Frames.ReadHoldingResponse();
    private readonly CompiledPolicy _policy = Frames.LoadPolicy();
    private readonly SourceAddress _source = SourceAddress.From(IPAddress.Loopback);
    private ResponseExpectation _fc3Expectation;

    [GlobalSetup]
    public void Setup()
    {
        _fc3Expectation = ModbusPdu.ParseRequest(_fc3.AsSpan(ModbusLimits.MbapHeaderLength)).Expectation;
        if (FrameParseVerdict(_fc3) != (int)DenyReason.None || FrameParseVerdict(_fc16) != (int)DenyReason.None || CheckFc3Response() != ResponseStatus.Normal)
        {
            throw new InvalidOperationException("bench frames are not allowed / not answered as expected");
        }
    }

    [Benchmark(Description = "frame→parse→verdict FC3 read 10 (allowed)")]
    public int ReadVerdict() => FrameParseVerdict(_fc3);

    [Benchmark(Description = "frame→parse→verdict FC16 write 10 (allowed)")]
    public int WriteVerdict() => FrameParseVerdict(_fc16);

    [Benchmark(Description = "response check FC3 10 registers")]
    public ResponseStatus CheckFc3Response()
    {
        if (MbapFramer.TryReadFrame(_fc3Response, out var frame, out _, out _) != OperationStatus.Done)
        {
            throw new InvalidOperationException("not a frame");
        }
        return ModbusPdu.CheckResponse(frame.Pdu, _fc3Expectation, out _);
    }

    private int FrameParseVerdict(ReadOnlySpan<byte> input)
    {
        if (MbapFramer.TryReadFrame(input, out var frame, out _, out _) != OperationStatus.Done)
        {
            throw new InvalidOperationException("not a frame");
        }
        var request = ModbusPdu.ParseRequest(frame.Pdu);
        var verdict = _policy.Evaluate(_source, frame.UnitId, request, Stopwatch.GetTimestamp());
        var expectation = request.Expectation;
        return (int)verdict.Reason + expectation.RequestLength - request.Pdu.Length;
    }
}

/// <summary>
/// What the gateway does per S7 job (issue 12 Figures: ≤ 100 ns): frame the TPKT/COTP DT, reassemble (a whole
/// PDU in one DT: in place), parse the job, judge it with the S7 policy, and check the PLC's answer.
/// </summary>
[MemoryDiagnoser]
public class S7InspectionBenchmarks
{
    // read-var, 1 item: DB1, bytes 0..19 (S7ANY, transport size BYTE, count 20).
    private readonly byte[] _readVar = Convert.FromHexString("0300001F02F080" + "32010000000100 0E0000".Replace(" ", "", StringComparison.Ordinal) + "0401120A10020014000184000000");
    // Its Ack_Data: one item, return code FF, transport size 04 (bits), 160 bits, 20 bytes.
    private readonly byte[] _answer = Convert.FromHexString("32030000000100020018000004 01".Replace(" ", "", StringComparison.Ordinal) + "FF0400A0" + "000102030405060708090A0B0C0D0E0F10111213");
    private readonly CotpReassembler _reassembler = new(new byte[960], 960);
    private readonly CompiledPolicy _policy = S7Policy();
    private readonly SourceAddress _source = SourceAddress.From(IPAddress.Loopback);
    private readonly S7Connection _op = new(S7ConnectionKind.Op, 2, 0, 2);
    private S7Expectation _expectation;
    // The live session judges at the timestamp of the read that brought the frame (ClientConnection.ReadAt), taken once per read.
    private readonly long _readAt = Stopwatch.GetTimestamp();

    private static CompiledPolicy S7Policy()
    {
        var loaded = ConfigLoader.LoadText("""
            policies:
              press1:
                protocol: s7comm
                mode: enforce
                rules:
                  - name: hmi reads
                    from: 127.0.0.0/8
                    connection: [op, pg]
                    function: read
                    area: [db, m]
                    db: 1-99
                    address: 0-1023
            """, "bench-s7.yaml");
        if (loaded.HasErrors || loaded.Config is null)
        {
            throw new InvalidOperationException(string.Join('\n', loaded.Diagnostics));
        }
        return loaded.Config.Policies["press1"];
    }

    [GlobalSetup]
    public void Setup()
    {
        if (FrameParseVerdict() != (int)DenyReason.None)
        {
            throw new InvalidOperationException("the bench job is not allowed");
        }
        if (CheckAnswer() != S7ResponseStatus.Normal)
        {
            throw new InvalidOperationException("the bench answer does not check");
        }
    }

    [Benchmark(Description = "S7 frame→reassemble→parse→verdict read-var 1 item 20 bytes (allowed)")]
    public int FrameParseVerdict()
    {
        if (TpktFramer.TryReadFrame(_readVar, out var tpdu, out _, out _) != OperationStatus.Done
            || _reassembler.Append(tpdu, out var pdu, out _) != OperationStatus.Done)
        {
            throw new InvalidOperationException("not a whole PDU");
        }
        var request = S7Pdu.ParseRequest(pdu);
        var verdict = _policy.Evaluate(_source, new S7Target(_op, request), _readAt);
        _expectation = request.Expectation(960);
        return (int)verdict.Reason;
    }

    [Benchmark(Description = "S7 breakdown: frame→reassemble→parse")]
    public int FrameParse()
    {
        if (TpktFramer.TryReadFrame(_readVar, out var tpdu, out _, out _) != OperationStatus.Done
            || _reassembler.Append(tpdu, out var pdu, out _) != OperationStatus.Done)
        {
            throw new InvalidOperationException("not a whole PDU");
        }
        var request = S7Pdu.ParseRequest(pdu);
        return request.ItemCount;
    }

    [Benchmark(Description = "S7 breakdown: frame→reassemble→parse→verdict (no expectation)")]
    public int FrameParseVerdictOnly()
    {
        if (TpktFramer.TryReadFrame(_readVar, out var tpdu, out _, out _) != OperationStatus.Done
            || _reassembler.Append(tpdu, out var pdu, out _) != OperationStatus.Done)
        {
            throw new InvalidOperationException("not a whole PDU");
        }
        var request = S7Pdu.ParseRequest(pdu);
        return (int)_policy.Evaluate(_source, new S7Target(_op, request), _readAt).Reason;
    }

    [Benchmark(Description = "S7 answer check read-var 1 item 20 bytes")]
    public S7ResponseStatus CheckAnswer() => S7Pdu.CheckResponse(_answer, _expectation, out _);
}
