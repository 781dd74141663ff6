using System.Buffers;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Fuzz;

/// <summary>
/// IEC 104 seeds (<c>iec104stream</c>): from each capture in tests/data/iec104, every TCP connection on port 2404
/// reassembled (<see cref="TcpStreamAssembler"/>) and each direction's bytes up to the first that do not delimit
/// (at most 4 KB); and a few APDUs written here for the checks of docs/IEC104.md that the captures do not show.
/// </summary>
internal static class Iec104Seeds
{
    private const ushort Port = 2404;
    private const int MaxStreamSeedBytes = 4096;

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

        public void OnGap(int frameNumber, long missingBytes) => Gap = true;
    }

    public static void Collect(string name, CaptureReader reader, Seeds.SeedSet streams)
    {
        var open = new Dictionary<(UInt128, ushort, UInt128, ushort), (Direction Client, Direction Server)>();
        var connections = new List<(Direction Client, Direction Server)>();
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
            if (!open.TryGetValue(key, out var connection))
            {
                open[key] = connection = (new Direction(), new Direction());
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
        for (int i = 0; i < connections.Count; i++)
        {
            var (client, server) = connections[i];
            client.Assembler.Flush(lastFrame, client);
            server.Assembler.Flush(lastFrame, server);
            Add(streams, $"{name}-{i:D2}-client", client.Bytes);
            Add(streams, $"{name}-{i:D2}-server", server.Bytes);
        }
    }

    /// <summary>The delimited prefix of a stream, at most <see cref="MaxStreamSeedBytes"/>.</summary>
    private static void Add(Seeds.SeedSet streams, string kind, List<byte> bytes)
    {
        ReadOnlySpan<byte> all = bytes.ToArray();
        int end = 0;
        while (Iec104Framer.Instance.TryDelimit(all[end..], out int consumed, out _) == OperationStatus.Done && end + consumed <= MaxStreamSeedBytes)
        {
            end += consumed;
        }
        if (end > 0)
        {
            streams.Add(kind, all[..end].ToArray());
        }
    }

    /// <summary>APDUs for the checks the captures do not show: each a STARTDT act and then the case.</summary>
    public static void Crafted(Seeds.SeedSet streams)
    {
        byte[] startDt = [0x68, 0x04, 0x07, 0x00, 0x00, 0x00];
        (string Kind, byte[] Apdu)[] cases =
        [
            // lib60870 issue 200: SQ = 1, N = 5, no base IOA.
            ("sq1-without-ioa", [0x68, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x01, 0x85, 0x03, 0x00, 0x01, 0x00]),
            // CVE-2026-1773: a U-frame with STARTDT act and TESTFR act at once.
            ("u-two-functions", [0x68, 0x04, 0x47, 0x00, 0x00, 0x00]),
            // F_SG_NA_1 whose LOS says 200 and carries 2.
            ("segment-length-lie", [0x68, 0x13, 0x02, 0x00, 0x02, 0x00, 0x7D, 0x01, 0x0D, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x00, 0x01, 0xC8, 0xAA, 0xBB]),
            // A double command select to the global address, time-tagged, and a float set-point.
            ("dc-ta-global-select", [0x68, 0x15, 0x02, 0x00, 0x02, 0x00, 0x3B, 0x01, 0x06, 0x00, 0xFF, 0xFF, 0xD0, 0x07, 0x00, 0x82, 0x08, 0x00, 0x17, 0x13, 0x0D, 0x08, 0x09]),
            ("se-nc-execute", [0x68, 0x12, 0x02, 0x00, 0x02, 0x00, 0x32, 0x01, 0x06, 0x00, 0x01, 0x00, 0xB8, 0x0B, 0x00, 0x00, 0x00, 0x48, 0x42, 0x00]),
            // A security-extension type (unsized: header checks only).
            ("s-it-tc", [0x68, 0x0E, 0x02, 0x00, 0x02, 0x00, 0x29, 0x01, 0x03, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00]),
        ];
        foreach (var (kind, apdu) in cases)
        {
            streams.Add("crafted-" + kind, [.. startDt, .. apdu]);
        }
        var longest = new byte[Iec104Limits.MaxFrame];
        Iec104Writer.WriteI(longest, 1, 1, Longest());
        streams.Add("crafted-len253", [.. startDt, .. longest]);
    }

    /// <summary>An ASDU of the largest size, 249 octets: 48 floats (M_ME_NC_1) with SQ = 1, 6 + 3 + 48 × 5.</summary>
    private static byte[] Longest()
    {
        var asdu = new byte[Iec104Limits.MaxAsduLength];
        asdu[0] = 13;
        asdu[1] = 0x80 | 48;
        asdu[2] = 3;
        asdu[4] = 1;
        asdu[6] = 0x10;
        return asdu;
    }
}
