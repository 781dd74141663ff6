using System.Buffers;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Fuzz;

/// <summary>
/// S7comm seeds from a capture (tests/data/s7comm): each TCP connection to port 102 reassembled in
/// both directions (<see cref="TcpStreamAssembler"/>); the client's bytes are an <c>s7stream</c> seed
/// (and, when a PDU is longer than a 128-byte TPDU holds, the same stream re-fragmented to 128-byte
/// TPDUs), and every job or userdata request with the answer to it (same REF, other direction) is an
/// <c>s7response</c> seed <c>| request | answer |</c>.
/// </summary>
internal static class S7Seeds
{
    private const ushort Port = 102;
    private const int MaxStreamSeedBytes = 4096;
    private const int SmallTpdu = CotpWriter.MinTpduSize;

    private sealed class Direction : ITcpStreamSink
    {
        public readonly TcpStreamAssembler Assembler = new();
        public readonly List<byte> Bytes = [];
        public bool Gap;

        public void OnData(ReadOnlySpan<byte> data, int frameNumber)
        {
            if (!Gap)
            {
                Bytes.AddRange(data);
            }
        }

        // After bytes never captured, TPKT boundaries are lost: the seed ends at the hole.
        public void OnGap(int frameNumber, long missingBytes) => Gap = true;
    }

    private sealed class Connection
    {
        public Direction Client { get; } = new();
        public Direction Server { get; } = new();
    }

    public static void Collect(CaptureReader reader, Seeds.SeedSet streams, Seeds.SeedSet pairs)
    {
        var open = new Dictionary<(UInt128, ushort, UInt128, ushort), Connection>();
        var connections = new List<Connection>();
        int lastFrame = 0;
        while (reader.TryReadPacket(out var packet) == OperationStatus.Done)
        {
            lastFrame = packet.FrameNumber;
            if (TcpPacketDecoder.TryDecode(packet.LinkType, packet.Data, out var tcp) != PacketSkip.None || (tcp.SourcePort != Port && tcp.DestinationPort != Port))
            {
                continue;
            }
            bool fromClient = tcp.DestinationPort == Port;
            var key = fromClient ? (tcp.Source, tcp.SourcePort, tcp.Destination, tcp.DestinationPort) : (tcp.Destination, tcp.DestinationPort, tcp.Source, tcp.SourcePort);
            if (!open.TryGetValue(key, out var connection) || (fromClient && (tcp.Flags & TcpControl.Syn) != 0 && connection.Client.Bytes.Count > 0))
            {
                open[key] = connection = new Connection();
                connections.Add(connection);
            }
            var direction = fromClient ? connection.Client : connection.Server;
            var reverse = fromClient ? connection.Server : connection.Client;
            direction.Assembler.Push(tcp.Sequence, tcp.Flags, tcp.Payload, packet.FrameNumber, direction);
            if ((tcp.Flags & TcpControl.Ack) != 0 && reverse.Assembler.Started)
            {
                reverse.Assembler.Acknowledge(tcp.Acknowledgment, packet.FrameNumber, reverse);
            }
        }
        foreach (var connection in connections)
        {
            connection.Client.Assembler.Flush(lastFrame, connection.Client);
            connection.Server.Assembler.Flush(lastFrame, connection.Server);
            var client = connection.Client.Bytes.ToArray();
            if (client.Length == 0)
            {
                continue;
            }
            var clientPdus = Pdus(client, out int whole, out string kind);
            byte[] stream = client[..whole];
            streams.Add(kind, stream);
            if (clientPdus.Any(p => p.Length > SmallTpdu - S7Limits.DataTpduOverhead) && Refragment(stream) is { } fragmented)
            {
                streams.Add("tpdu128-" + kind, fragmented);
            }
            var serverPdus = Pdus(connection.Server.Bytes.ToArray(), out _, out _);
            Pair(clientPdus, serverPdus, pairs);
            Pair(serverPdus, clientPdus, pairs); // jobs the PLC sends (download-block) and the client answers
        }
    }

    /// <summary>
    /// The whole S7 PDUs of one direction; <paramref name="whole"/> is where the last whole TPKT packet
    /// within <see cref="MaxStreamSeedBytes"/> ends, <paramref name="kind"/> names the connection type
    /// and the functions the client asks for, in order.
    /// </summary>
    private static List<byte[]> Pdus(byte[] stream, out int whole, out string kind)
    {
        var pdus = new List<byte[]>();
        var words = new List<string>();
        var reassembler = new CotpReassembler(new byte[ushort.MaxValue], ushort.MaxValue);
        string connection = "none";
        whole = 0;
        int offset = 0;
        while (TpktFramer.TryReadFrame(stream.AsSpan(offset), out var tpdu, out int consumed, out _) == OperationStatus.Done)
        {
            offset += consumed;
            if (offset <= MaxStreamSeedBytes)
            {
                whole = offset;
            }
            if (tpdu.Type == CotpTpduType.ConnectionRequest)
            {
                connection = tpdu.Connection.Kind.ToString().ToLowerInvariant();
            }
            if (reassembler.Append(tpdu, out var pdu, out _) != OperationStatus.Done)
            {
                continue;
            }
            pdus.Add(pdu.ToArray());
            var request = S7Pdu.ParseRequest(pdu);
            string word = request.Status == S7RequestStatus.Malformed ? "ack" : S7Functions.PolicyWord(request.Function);
            if (offset <= MaxStreamSeedBytes && (words.Count == 0 || words[^1] != word))
            {
                words.Add(word);
            }
        }
        kind = connection + "-" + string.Join('-', words.Take(8)) + (words.Count > 8 ? $"-and-{words.Count - 8}-more" : "");
        return pdus;
    }

    /// <summary>The stream with every DT's PDU rewritten to TPDUs of 128 bytes (CR and other TPDUs as they were).</summary>
    private static byte[]? Refragment(byte[] stream)
    {
        var output = new List<byte>();
        var reassembler = new CotpReassembler(new byte[ushort.MaxValue], ushort.MaxValue);
        var buffer = new byte[CotpWriter.DataLength(ushort.MaxValue, SmallTpdu)];
        int offset = 0;
        while (TpktFramer.TryReadFrame(stream.AsSpan(offset), out var tpdu, out int consumed, out _) == OperationStatus.Done)
        {
            if (tpdu.Type != CotpTpduType.Data)
            {
                output.AddRange(tpdu.Packet);
            }
            else if (reassembler.Append(tpdu, out var pdu, out _) == OperationStatus.Done)
            {
                int written = CotpWriter.WriteData(buffer, pdu, SmallTpdu);
                output.AddRange(buffer.AsSpan(0, written));
            }
            offset += consumed;
        }
        return output.Count > MaxStreamSeedBytes ? null : [.. output];
    }

    /// <summary>Each job or userdata request of <paramref name="requests"/> with the first answer of <paramref name="answers"/> carrying its REF.</summary>
    private static void Pair(List<byte[]> requests, List<byte[]> answers, Seeds.SeedSet pairs)
    {
        var waiting = new Dictionary<ushort, Queue<byte[]>>();
        foreach (var pdu in requests)
        {
            var request = S7Pdu.ParseRequest(pdu);
            if (request.Status != S7RequestStatus.Malformed && request.Protocol == S7Protocol.S7comm
                && (request.Rosctr == S7Rosctr.Job || request.UserdataType == S7UserdataType.Request))
            {
                if (!waiting.TryGetValue(request.Reference, out var queue))
                {
                    waiting[request.Reference] = queue = new Queue<byte[]>();
                }
                queue.Enqueue(pdu);
            }
        }
        foreach (var answer in answers)
        {
            var header = S7Pdu.ParseHeader(answer);
            bool isAnswer = header.IsValid && header.Protocol == S7Protocol.S7comm
                && (header.Rosctr is S7Rosctr.Ack or S7Rosctr.AckData || (header.Rosctr == S7Rosctr.Userdata && S7Pdu.ParseRequest(answer).UserdataType == S7UserdataType.Response));
            if (!isAnswer || !waiting.TryGetValue(header.Reference, out var queue) || queue.Count == 0)
            {
                continue;
            }
            var requestPdu = queue.Dequeue();
            var request = S7Pdu.ParseRequest(requestPdu);
            var status = S7Pdu.CheckResponse(answer, request.Expectation(ushort.MaxValue), out _);
            string function = S7Functions.PolicyWord(request.Function) + (request.Rosctr == S7Rosctr.Userdata ? $"-{request.Subfunction:x2}" : "");
            string kind = $"{function}-{status.ToString().ToLowerInvariant()}-len{answer.Length:D4}";
            pairs.Add(kind, [.. requestPdu, .. answer]);
        }
    }
}
