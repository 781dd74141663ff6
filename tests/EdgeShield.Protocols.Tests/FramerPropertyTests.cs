using System.Buffers;
using System.Buffers.Binary;
using EdgeShield.Protocols.Modbus;
using static EdgeShield.Protocols.Tests.Frames;

namespace EdgeShield.Protocols.Tests;

/// <summary>Random and mutated input, from a fixed seed so that a failure reproduces.</summary>
public class FramerPropertyTests
{
    private const int Iterations = 20_000;

    private static readonly byte[][] Seeds =
    [
        Adu(1, 1, Words(1, 0, 2000)),
        Adu(2, 1, Words(3, 0x006B, 3)),
        Adu(3, 1, Words(5, 0xAC, 0xFF00)),
        Adu(4, 1, Words(6, 1, 3)),
        Adu(5, 1, [7]),
        Adu(6, 1, Words(8, 0, 0xA537)),
        Adu(7, 1, Hex("0F 0013 000A 02 CD01")),
        Adu(8, 1, Hex("10 0001 0002 04 000A 0102")),
        Adu(9, 1, Hex("14 0E 06 0004 0001 0002 06 0003 0009 0002")),
        Adu(10, 1, Hex("15 0D 06 0004 0007 0003 06AF 04BE 100D")),
        Adu(11, 1, Hex("16 0004 00F2 0025")),
        Adu(12, 1, Hex("17 0003 0006 000E 0003 06 00FF 00FF 00FF")),
        Adu(13, 1, Words(24, 0x04DE)),
        Adu(14, 1, Hex("2B 0E 01 00")),
        Adu(15, 1, Hex("2B 0E 01 01 00 00 03 00 04 41424344 01 02 5858 02 05 5632 2E3131")),
        Adu(16, 1, Hex("18 0006 0002 01B8 1284")),
        Adu(17, 0, Hex("5A 00 02")),
        Cat(Adu(18, 1, Words(3, 0, 1)), Adu(19, 1, Words(4, 0, 1))),
    ];

    private static byte[] Mutate(Random random)
    {
        if (random.Next(8) == 0)
        {
            var noise = new byte[random.Next(0, 300)];
            random.NextBytes(noise);
            if (noise.Length >= 4 && random.Next(2) == 0)
            {
                noise[2] = 0;
                noise[3] = 0; // get past the protocol id check most of the time
            }
            return noise;
        }
        var frame = (byte[])Seeds[random.Next(Seeds.Length)].Clone();
        int mutations = random.Next(1, 4);
        for (int m = 0; m < mutations; m++)
        {
            switch (random.Next(5))
            {
                case 0: // bit flip
                    if (frame.Length > 0)
                    {
                        int at = random.Next(frame.Length);
                        frame[at] ^= (byte)(1 << random.Next(8));
                    }
                    break;
                case 1: // truncation
                    frame = frame[..random.Next(frame.Length + 1)];
                    break;
                case 2: // MBAP length tampering, including the limits
                    if (frame.Length >= 6)
                    {
                        ushort[] lengths = [0, 1, 2, 3, 253, 254, 255, 0xFFFF, (ushort)random.Next(0x10000), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(4)) + random.Next(-3, 4))];
                        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(4), lengths[random.Next(lengths.Length)]);
                    }
                    break;
                case 3: // byte count / quantity tampering inside the PDU
                    if (frame.Length > 8)
                    {
                        frame[random.Next(8, frame.Length)] = (byte)random.Next(256);
                    }
                    break;
                default: // extra bytes
                    var extra = new byte[random.Next(1, 20)];
                    random.NextBytes(extra);
                    frame = Cat(frame, extra);
                    break;
            }
        }
        return frame;
    }

    [Fact]
    public void TryReadFrame_RandomAndMutatedFrames_NeverThrowsAndConsumesExactlyOneAdu()
    {
        var random = new Random(20240601);
        var expectations = new List<ResponseExpectation>();
        foreach (var seed in Seeds)
        {
            MbapFramer.TryReadFrame(seed, out var f, out _, out _);
            expectations.Add(ModbusPdu.ParseRequest(f.Pdu).Expectation);
        }
        int done = 0;
        int invalid = 0;

        for (int i = 0; i < Iterations; i++)
        {
            var input = Mutate(random);
            ReadOnlySpan<byte> rest = input;
            while (true)
            {
                var status = MbapFramer.TryReadFrame(rest, out var frame, out int consumed, out var error);
                if (status == OperationStatus.NeedMoreData)
                {
                    Assert.Equal(0, consumed);
                    Assert.Equal(FramingError.None, error);
                    Assert.True(rest.Length < 6 || rest.Length < 6 + BinaryPrimitives.ReadUInt16BigEndian(rest[4..]));
                    break;
                }
                if (status == OperationStatus.InvalidData)
                {
                    invalid++;
                    Assert.Equal(0, consumed);
                    Assert.NotEqual(FramingError.None, error);
                    break;
                }
                Assert.Equal(OperationStatus.Done, status);
                done++;
                Assert.True(consumed <= rest.Length);
                Assert.Equal(6 + frame.Length, consumed);
                Assert.InRange(frame.Length, 2, 254);
                Assert.Equal(consumed, frame.Adu.Length);
                Assert.Equal(consumed - 7, frame.Pdu.Length);

                var request = ModbusPdu.ParseRequest(frame.Pdu);
                Assert.Equal(request.Status == RequestStatus.Malformed, request.Error != FramingError.None);
                Assert.Equal(request.Status == RequestStatus.OutOfSpec, request.Violation != SpecViolation.None);
                Assert.Equal(request.Status == RequestStatus.OutOfSpec, request.SpecExceptionCode != 0);
                Assert.True(request.RegisterValues.Length <= frame.Pdu.Length);
                for (int v = 0; v < request.RegisterValueCount; v++)
                {
                    _ = request.RegisterValue(v);
                }
                var own = request.Expectation;
                ModbusPdu.CheckResponse(frame.Pdu, own, out _);
                var result = ModbusPdu.CheckResponse(frame.Pdu, expectations[i % expectations.Count], out var responseError);
                Assert.Equal(result == ResponseStatus.Mismatch, responseError != ResponseError.None);

                rest = rest[consumed..];
            }
        }

        // The mutations must reach every outcome, or the test proves little.
        Assert.True(done > Iterations / 4, $"only {done} frames were Done");
        Assert.True(invalid > Iterations / 20, $"only {invalid} inputs were InvalidData");
    }

    [Fact]
    public void ParseRequest_EveryPrefixOfEverySeed_NeverThrows()
    {
        foreach (var seed in Seeds)
        {
            for (int length = 7; length <= seed.Length; length++)
            {
                var pdu = seed.AsSpan(7, length - 7);
                var request = ModbusPdu.ParseRequest(pdu);
                Assert.True(request.Status != RequestStatus.Malformed || request.Error != FramingError.None);
                ModbusPdu.CheckResponse(pdu, request.Expectation, out _);
            }
        }
    }
}
