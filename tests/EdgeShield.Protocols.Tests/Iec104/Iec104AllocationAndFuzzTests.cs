using System.Buffers;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Iec104;
using ShippedReader = EdgeShield.Protocols.Capture.CaptureReader;

namespace EdgeShield.Protocols.Tests.Iec104;

public class Iec104AllocationAndFuzzTests
{
    /// <summary>Every TCP payload to or from port 2404 of a capture, in capture order (each segment holds whole APDUs).</summary>
    internal static byte[] Stream(string file)
    {
        var bytes = new List<byte>();
        ShippedReader.TryOpen(File.ReadAllBytes(TestData.PathOf($"iec104/{file}")), out var reader, out _);
        while (reader!.TryReadPacket(out var packet) == OperationStatus.Done)
        {
            if (TcpPacketDecoder.TryDecode(packet.LinkType, packet.Data, out var tcp) == PacketSkip.None && (tcp.SourcePort == 2404 || tcp.DestinationPort == 2404))
            {
                bytes.AddRange(tcp.Payload.ToArray());
            }
        }
        return [.. bytes];
    }

    private static readonly byte[] Captured = Stream("iti__IEC60870-5-104__090813_diverse.pcap");

    /// <summary>Frames, reads and walks every APDU of the capture, and writes what the gateway writes; returns a checksum of what it read.</summary>
    private static long Run(int passes, byte[] output)
    {
        long sum = 0;
        for (int pass = 0; pass < passes; pass++)
        {
            ReadOnlySpan<byte> stream = Captured;
            while (!stream.IsEmpty)
            {
                if (Iec104Framer.Instance.TryDelimit(stream, out int consumed, out _) != OperationStatus.Done
                    || !Iec104Apdu.TryParse(stream[..consumed], out var apdu, out _))
                {
                    return -1;
                }
                stream = stream[consumed..];
                sum += apdu.ReceiveSequence + (int)apdu.UFunction;
                if (apdu.Format != Iec104Format.I)
                {
                    sum += Iec104Writer.WriteS(output, apdu.ReceiveSequence) + Iec104Writer.WriteU(output, Iec104UFunction.TestFrCon);
                    continue;
                }
                if (!Iec104Asdu.TryParse(apdu.Asdu, out var asdu, out _))
                {
                    return -1;
                }
                sum += asdu.Type + asdu.Cause + asdu.CommonAddress + asdu.LowestIoa + asdu.HighestIoa;
                foreach (var o in asdu)
                {
                    sum += o.Ioa + o.Element.Length;
                }
                if (asdu.IsCommand)
                {
                    sum += (asdu.IsSelect ? 1 : 0) + (asdu.QualifierValid ? 1 : 0);
                    if (asdu.TryGetValue(out double min, out double max))
                    {
                        sum += (long)(min + max);
                    }
                    if (asdu.TryGetCommandKey(out var key) && key == new Iec104CommandKey(asdu.Type, asdu.CommonAddress, asdu.FirstIoa, key.Value))
                    {
                        sum++;
                    }
                }
                if (Iec104Types.HasTimeTag(asdu.Type) && asdu.ElementSize >= Cp56Time2a.Size)
                {
                    foreach (var o in asdu)
                    {
                        sum += Cp56Time2a.Read(o.Element[^Cp56Time2a.Size..]).IsValid ? 1 : 0;
                    }
                }
                int n = Iec104Writer.WriteI(output, apdu.SendSequence, apdu.ReceiveSequence, apdu.Asdu);
                Iec104Writer.SetControl(output, Iec104Sequence.Next(apdu.SendSequence), apdu.ReceiveSequence);
                n += Iec104Writer.WriteMirror(output, 1, 2, apdu.Asdu, Iec104Causes.UnknownCommonAddress, negative: true);
                sum += n;
            }
        }
        return sum;
    }

    [Fact]
    public void FrameParseWalkAndWrite_CapturedStream_AllocatesNothing()
    {
        var output = new byte[Iec104Limits.MaxFrame];
        long perPass = Run(1, output);
        Assert.True(perPass > 0, "the capture did not read through");

        long before = GC.GetAllocatedBytesForCurrentThread();
        long sum = Run(300, output);
        long after = GC.GetAllocatedBytesForCurrentThread();

        Assert.Equal(300 * perPass, sum);
        Assert.Equal(0, after - before);
    }

    /// <summary>
    /// Random bytes, and captured APDUs with bytes flipped, cut or inserted (fixed seed): nothing throws, the framer
    /// never reports consuming more than it was given, a parsed APDU is its whole frame, and a well-formed ASDU's
    /// objects lie inside it and add up to its length.
    /// </summary>
    [Fact]
    public void EveryParser_RandomAndMutatedInput_NeverThrows()
    {
        var random = new Random(104);
        var seeds = new List<byte[]>();
        foreach (string file in new[] { "iti__IEC60870-5-104__090813_diverse.pcap", "iti__IEC60870-5-104__JavaRMI_and_IEC_Misc.pcap" })
        {
            ReadOnlySpan<byte> all = Stream(file);
            while (Iec104Framer.Instance.TryDelimit(all, out int consumed, out _) == OperationStatus.Done)
            {
                seeds.Add(all[..consumed].ToArray());
                all = all[consumed..];
            }
        }
        int wellFormed = 0;
        for (int i = 0; i < 60_000; i++)
        {
            byte[] input = i % 10 == 0 ? RandomBytes(random) : Mutate(random, seeds[random.Next(seeds.Count)]);
            if (Exercise(input))
            {
                wellFormed++;
            }
        }
        Assert.True(wellFormed > 1000, $"only {wellFormed} inputs were well-formed ASDUs: the mutations are too coarse");
    }

    /// <summary>One input through framer, APCI, ASDU, objects and helpers, with the invariants asserted; true for a well-formed ASDU.</summary>
    internal static bool Exercise(ReadOnlySpan<byte> input)
    {
        var status = Iec104Framer.Instance.TryDelimit(input, out int consumed, out var fault);
        Assert.True(consumed <= input.Length);
        Assert.Equal(status == OperationStatus.InvalidData, fault.IsFault);
        var frame = status == OperationStatus.Done ? input[..consumed] : input;
        bool wellFormed = false;
        if (Iec104Apdu.TryParse(frame, out var apdu, out fault))
        {
            Assert.Equal(OperationStatus.Done, status);
            Assert.Equal(frame.Length, frame[1] + 2);
            _ = (apdu.SendSequence, apdu.ReceiveSequence, apdu.UFunction);
            if (apdu.Format == Iec104Format.I)
            {
                wellFormed = CheckAsdu(apdu.Asdu);
            }
            else
            {
                Assert.Equal(6, frame.Length);
            }
        }
        else
        {
            Assert.True(fault.IsFault);
            _ = Iec104FrameErrors.Describe(fault);
        }
        // The ASDU layer is also fed the bytes after the APCI directly, mutated or not.
        if (input.Length > 6)
        {
            CheckAsdu(input[6..]);
        }
        return wellFormed;
    }

    private static bool CheckAsdu(ReadOnlySpan<byte> bytes)
    {
        if (!Iec104Asdu.TryParse(bytes, out var asdu, out var fault))
        {
            Assert.True(fault.IsFault);
            Assert.Equal(Iec104AsduStatus.Malformed, asdu.Status);
            return false;
        }
        _ = (asdu.Type, asdu.Cause, asdu.CommonAddress, asdu.FirstIoa, asdu.Negative, asdu.Test, asdu.Originator);
        int objects = 0, octets = 0;
        foreach (var o in asdu)
        {
            Assert.True(o.Ioa >= asdu.LowestIoa && o.Ioa <= asdu.HighestIoa && o.Ioa <= Iec104Limits.MaxIoa);
            Assert.True(Unsafe.IsInside(bytes, o.Element));
            objects++;
            octets += o.Element.Length + (asdu.Sequence && objects > 1 ? 0 : 3);
        }
        if (asdu.Status == Iec104AsduStatus.UnknownType)
        {
            Assert.Equal(0, objects);
            return false;
        }
        Assert.Equal(asdu.Count, objects);
        Assert.Equal(bytes.Length - 6, octets);
        _ = (asdu.IsSelect, asdu.QualifierValid, asdu.TryGetValue(out _, out _), asdu.TryGetCommandKey(out _));
        return true;
    }

    private static class Unsafe
    {
        public static bool IsInside(ReadOnlySpan<byte> outer, ReadOnlySpan<byte> inner) =>
            inner.IsEmpty || outer.Overlaps(inner, out int offset) && offset >= 0 && offset + inner.Length <= outer.Length;
    }

    private static byte[] RandomBytes(Random random)
    {
        var bytes = new byte[random.Next(0, 60)];
        random.NextBytes(bytes);
        if (bytes.Length >= 6 && random.Next(2) == 0)
        {
            // Often a plausible APCI, so the ASDU layer is reached.
            bytes[0] = 0x68;
            bytes[1] = (byte)(bytes.Length - 2);
            bytes[2] &= 0xFE;
        }
        return bytes;
    }

    private static byte[] Mutate(Random random, byte[] seed)
    {
        var bytes = seed.ToList();
        int edits = random.Next(1, 3);
        for (int e = 0; e < edits && bytes.Count > 0; e++)
        {
            int at = random.Next(bytes.Count);
            switch (random.Next(5))
            {
                case 0:
                    bytes[at] = (byte)random.Next(256);
                    break;
                case 1:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 2:
                    bytes.RemoveAt(at);
                    break;
                case 3:
                    bytes.Insert(at, (byte)random.Next(256));
                    break;
                default:
                    // Flip only a bit of the ASDU, keeping LEN true, so well-formed inputs stay frequent.
                    if (bytes.Count > 7)
                    {
                        bytes[6 + random.Next(bytes.Count - 6)] ^= (byte)(1 << random.Next(8));
                    }
                    break;
            }
        }
        if (bytes.Count >= 2 && random.Next(2) == 0)
        {
            bytes[1] = (byte)Math.Min(255, bytes.Count - 2);
        }
        return [.. bytes];
    }
}
