using System.Buffers;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.S7comm;
using ShippedReader = EdgeShield.Protocols.Capture.CaptureReader;

namespace EdgeShield.Protocols.Tests.S7comm;

public class S7AllocationAndFuzzTests
{
    /// <summary>The two byte streams of the snap7 capture (one connection, every job answered in turn).</summary>
    private static (byte[] Client, byte[] Server) Streams()
    {
        var client = new List<byte>();
        var server = new List<byte>();
        ShippedReader.TryOpen(File.ReadAllBytes(TestData.PathOf("s7comm/iti__s7__snap7_s300_everything.pcapng")), out var reader, out _);
        while (reader!.TryReadPacket(out var packet) == OperationStatus.Done)
        {
            if (TcpPacketDecoder.TryDecode(packet.LinkType, packet.Data, out var tcp) == PacketSkip.None)
            {
                (tcp.DestinationPort == 102 ? client : server).AddRange(tcp.Payload.ToArray());
            }
        }
        return (client.ToArray(), server.ToArray());
    }

    private static readonly (byte[] Client, byte[] Server) Captured = Streams();

    private static int Run(int passes, CotpReassembler requests, CotpReassembler responses)
    {
        int answered = 0;
        for (int pass = 0; pass < passes; pass++)
        {
            ReadOnlySpan<byte> client = Captured.Client;
            ReadOnlySpan<byte> server = Captured.Server;
            while (!client.IsEmpty)
            {
                if (TpktFramer.TryReadFrame(client, out var tpdu, out int consumed, out _) != OperationStatus.Done
                    || requests.Append(tpdu, out var pdu, out _) != OperationStatus.Done)
                {
                    return -1;
                }
                client = client[consumed..];
                var request = S7Pdu.ParseRequest(pdu);
                if (request.Status != S7RequestStatus.Ok)
                {
                    return -1;
                }
                int bytes = 0;
                foreach (var item in request.Items)
                {
                    bytes += item.Length + item.Data.Length;
                }
                var expectation = request.Expectation(240);
                if (TpktFramer.TryReadFrame(server, out var answer, out consumed, out _) != OperationStatus.Done
                    || responses.Append(answer, out var response, out _) != OperationStatus.Done)
                {
                    return -1;
                }
                server = server[consumed..];
                if (S7Pdu.CheckResponse(response, expectation, out _) != S7ResponseStatus.Mismatch && bytes >= 0)
                {
                    answered++;
                }
            }
        }
        return answered;
    }

    [Fact]
    public void FrameReassembleParseItemsAndCheck_CapturedStream_AllocatesNothing()
    {
        var requests = new CotpReassembler(new byte[960], 960);
        var responses = new CotpReassembler(new byte[960], 960);
        int perPass = Run(1, requests, responses);
        Assert.Equal(32, perPass); // the capture's 32 jobs, each answered (normally or negatively)

        long before = GC.GetAllocatedBytesForCurrentThread();
        int answered = Run(300, requests, responses);
        long after = GC.GetAllocatedBytesForCurrentThread();

        Assert.Equal(300 * perPass, answered);
        Assert.Equal(0, after - before);
    }

    /// <summary>
    /// Random bytes, and captured packets and PDUs with bytes flipped, cut or inserted (fixed seed):
    /// nothing throws, the framer never reports consuming more than it was given, and a Done frame
    /// re-frames identically.
    /// </summary>
    [Fact]
    public void EveryParser_RandomAndMutatedInput_NeverThrows()
    {
        var random = new Random(12);
        var seeds = new List<byte[]>();
        ReadOnlySpan<byte> all = [.. Captured.Client, .. Captured.Server];
        while (TpktFramer.TryReadFrame(all, out _, out int consumed, out _) == OperationStatus.Done)
        {
            seeds.Add(all[..consumed].ToArray());
            all = all[consumed..];
        }
        seeds.Add(TpktFramerTests.ConnectRequest);
        seeds.Add(TpktFramerTests.ConnectConfirm);
        var reassembler = new CotpReassembler(new byte[1024], 1024);
        var destination = new byte[2048];
        int done = 0;
        for (int i = 0; i < 60_000; i++)
        {
            byte[] input = i % 10 == 0 ? RandomBytes(random) : Mutate(random, seeds[random.Next(seeds.Count)]);
            var status = TpktFramer.TryReadFrame(input, out var tpdu, out int consumed, out var error);
            Assert.True(consumed <= input.Length);
            Assert.Equal(status == OperationStatus.InvalidData, error != S7FramingError.None);
            if (status == OperationStatus.Done)
            {
                done++;
                _ = tpdu.Connection;
                _ = (tpdu.DestinationReference, tpdu.SourceReference, tpdu.Reason, tpdu.EndOfTransmission);
                Assert.Equal(OperationStatus.Done, TpktFramer.TryReadFrame(input.AsSpan(0, consumed), out _, out int again, out _));
                Assert.Equal(consumed, again);
                if (reassembler.Append(tpdu, out var pdu, out _) == OperationStatus.Done)
                {
                    Exercise(pdu, destination);
                }
            }
            // The S7 layer is also fed the bytes after a DT header directly, mutated or not.
            if (input.Length > 7)
            {
                Exercise(input.AsSpan(7), destination);
            }
        }
        Assert.True(done > 1000, $"only {done} inputs framed: the mutations are too coarse to reach the S7 layer");
    }

    private static void Exercise(ReadOnlySpan<byte> pdu, byte[] destination)
    {
        var header = S7Pdu.ParseHeader(pdu);
        _ = (header.Rosctr, header.Reference, header.ErrorClass, header.Parameters.Length, header.Data.Length, header.PlusFunction, header.PlusOpcode);
        var request = S7Pdu.ParseRequest(pdu);
        foreach (var item in request.Items)
        {
            _ = (item.Area, item.Start, item.Length, item.DbNumber, item.Syntax, item.DataReturnCode);
            for (int v = 0; v < item.ValueCount(S7ValueType.Float32); v++)
            {
                _ = item.ReadValue(S7ValueType.Float32, v);
            }
        }
        if (request.Status != S7RequestStatus.Malformed)
        {
            var expectation = request.Expectation(480);
            _ = S7Pdu.CheckResponse(pdu, expectation, out _);
            if (request.Function is S7Function.ReadVar or S7Function.WriteVar && request.Rosctr == S7Rosctr.Job)
            {
                var codes = new byte[request.ItemCount];
                Array.Fill(codes, S7Items.ReturnAccessNotAllowed);
                int n = S7Pdu.WriteItemErrors(destination, expectation, codes);
                Assert.Equal(S7ResponseStatus.Normal, S7Pdu.CheckResponse(destination.AsSpan(0, n), expectation, out _));
            }
        }
        _ = S7Pdu.CheckResponse(pdu, new S7Expectation(header.Reference, 1, 4, 1, 4, 8, 0, 0, 480, 1), out _);
        _ = S7Pdu.CheckResponse(pdu, new S7Expectation(header.Reference, 7, 4, 0, 0, 200, 1, 0, 480, 1), out _);
        var copy = pdu.ToArray();
        _ = S7Pdu.ClampSetupCommunication(copy, 240, 1);
    }

    private static byte[] RandomBytes(Random random)
    {
        var bytes = new byte[random.Next(0, 80)];
        random.NextBytes(bytes);
        if (bytes.Length > 4 && random.Next(2) == 0)
        {
            // Often a plausible TPKT start, so the COTP and S7 layers are reached.
            bytes[0] = 3;
            bytes[1] = 0;
            bytes[2] = 0;
            bytes[3] = (byte)bytes.Length;
        }
        return bytes;
    }

    private static byte[] Mutate(Random random, byte[] seed)
    {
        var bytes = seed.ToList();
        int edits = random.Next(1, 4);
        for (int e = 0; e < edits && bytes.Count > 0; e++)
        {
            int at = random.Next(bytes.Count);
            switch (random.Next(4))
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
                default:
                    bytes.Insert(at, (byte)random.Next(256));
                    break;
            }
        }
        return bytes.ToArray();
    }
}
