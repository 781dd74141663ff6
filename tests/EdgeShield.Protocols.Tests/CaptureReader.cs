using System.Buffers.Binary;
using System.Net;

namespace EdgeShield.Protocols.Tests;

/// <summary>A TCP segment with payload, taken from one captured packet.</summary>
/// <param name="Frame">1-based packet number, as Wireshark numbers frames.</param>
internal sealed record TcpSegment(int Frame, IPAddress Source, ushort SourcePort, IPAddress Destination, ushort DestinationPort, uint Sequence, byte[] Payload);

/// <summary>
/// A small test-only reader for classic pcap (both byte orders, µs and ns) and pcapng
/// (EPB, SPB, obsolete PB), over Ethernet (with 802.1Q tags), Linux cooked SLL/SLL2, BSD
/// loopback and raw IP, IPv4 and IPv6, yielding TCP payloads. Not a replay reader: no
/// reassembly, no IP fragments, and anything that does not parse is skipped.
/// </summary>
internal static class CaptureReader
{
    private const int LinkNull = 0;
    private const int LinkEthernet = 1;
    private const int LinkRaw = 101;
    private const int LinkRawAlt = 12;
    private const int LinkSll = 113;
    private const int LinkIPv4 = 228;
    private const int LinkIPv6 = 229;
    private const int LinkSll2 = 276;

    public static List<TcpSegment> ReadTcp(byte[] capture)
    {
        var segments = new List<TcpSegment>();
        foreach (var (frame, linkType, data) in ReadPackets(capture))
        {
            if (TryTcp(linkType, data, frame) is { } segment)
            {
                segments.Add(segment);
            }
        }
        return segments;
    }

    /// <summary>Every packet record with its 1-based number and link type.</summary>
    public static List<(int Frame, int LinkType, byte[] Data)> ReadPackets(byte[] capture)
    {
        if (capture.Length < 4)
        {
            throw new InvalidDataException("not a capture file");
        }
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(capture);
        return magic switch
        {
            0xA1B2C3D4 or 0xA1B23C4D => ReadPcap(capture, littleEndian: true),
            0xD4C3B2A1 or 0x4D3CB2A1 => ReadPcap(capture, littleEndian: false),
            0x0A0D0D0A => ReadPcapNg(capture),
            _ => throw new InvalidDataException("not a pcap or pcapng file"),
        };
    }

    private static uint U32(ReadOnlySpan<byte> b, bool littleEndian) =>
        littleEndian ? BinaryPrimitives.ReadUInt32LittleEndian(b) : BinaryPrimitives.ReadUInt32BigEndian(b);

    private static ushort U16(ReadOnlySpan<byte> b, bool littleEndian) =>
        littleEndian ? BinaryPrimitives.ReadUInt16LittleEndian(b) : BinaryPrimitives.ReadUInt16BigEndian(b);

    private static List<(int, int, byte[])> ReadPcap(byte[] file, bool littleEndian)
    {
        var packets = new List<(int, int, byte[])>();
        int linkType = (int)(U32(file.AsSpan(20), littleEndian) & 0x0FFFFFFF);
        int offset = 24;
        int frame = 0;
        while (offset + 16 <= file.Length)
        {
            int captured = (int)U32(file.AsSpan(offset + 8), littleEndian);
            offset += 16;
            if (captured < 0 || offset + captured > file.Length)
            {
                break;
            }
            packets.Add((++frame, linkType, file.AsSpan(offset, captured).ToArray()));
            offset += captured;
        }
        return packets;
    }

    private static List<(int, int, byte[])> ReadPcapNg(byte[] file)
    {
        var packets = new List<(int, int, byte[])>();
        var interfaces = new List<int>();
        bool le = true;
        int offset = 0;
        int frame = 0;
        while (offset + 12 <= file.Length)
        {
            var span = file.AsSpan(offset);
            uint type = U32(span, le);
            if (type == 0x0A0D0D0A)
            {
                // Section header: the byte-order magic decides the section's endianness.
                le = BinaryPrimitives.ReadUInt32LittleEndian(span[8..]) == 0x1A2B3C4D;
                interfaces.Clear();
            }
            int length = (int)U32(span[4..], le);
            if (length < 12 || length > span.Length)
            {
                break;
            }
            var body = span[8..(length - 4)];
            switch (type)
            {
                case 1: // Interface description
                    interfaces.Add(U16(body, le));
                    break;
                case 6: // Enhanced packet
                {
                    int ifc = (int)U32(body, le);
                    int captured = (int)U32(body[12..], le);
                    if (captured >= 0 && 20 + captured <= body.Length && ifc < interfaces.Count)
                    {
                        packets.Add((++frame, interfaces[ifc], body.Slice(20, captured).ToArray()));
                    }
                    break;
                }
                case 3: // Simple packet: interface 0, captured length bounded by the block
                {
                    int original = (int)U32(body, le);
                    int captured = Math.Min(original, body.Length - 4);
                    if (interfaces.Count > 0 && captured >= 0)
                    {
                        packets.Add((++frame, interfaces[0], body.Slice(4, captured).ToArray()));
                    }
                    break;
                }
                case 2: // Obsolete packet block
                {
                    int ifc = U16(body, le);
                    int captured = (int)U32(body[12..], le);
                    if (captured >= 0 && 20 + captured <= body.Length && ifc < interfaces.Count)
                    {
                        packets.Add((++frame, interfaces[ifc], body.Slice(20, captured).ToArray()));
                    }
                    break;
                }
                default:
                    break;
            }
            offset += length;
        }
        return packets;
    }

    private static TcpSegment? TryTcp(int linkType, byte[] data, int frame)
    {
        ReadOnlySpan<byte> p = data;
        int etherType;
        switch (linkType)
        {
            case LinkEthernet:
                if (p.Length < 14)
                {
                    return null;
                }
                etherType = BinaryPrimitives.ReadUInt16BigEndian(p[12..]);
                p = p[14..];
                while (etherType is 0x8100 or 0x88A8 && p.Length >= 4)
                {
                    etherType = BinaryPrimitives.ReadUInt16BigEndian(p[2..]);
                    p = p[4..];
                }
                break;
            case LinkSll:
                if (p.Length < 16)
                {
                    return null;
                }
                etherType = BinaryPrimitives.ReadUInt16BigEndian(p[14..]);
                p = p[16..];
                break;
            case LinkSll2:
                if (p.Length < 20)
                {
                    return null;
                }
                etherType = BinaryPrimitives.ReadUInt16BigEndian(p);
                p = p[20..];
                break;
            case LinkNull:
                if (p.Length < 4)
                {
                    return null;
                }
                // The address family is in the capturing host's byte order; 2 is AF_INET everywhere.
                uint family = BinaryPrimitives.ReadUInt32LittleEndian(p);
                etherType = family is 2 or 0x02000000 ? 0x0800 : 0x86DD;
                p = p[4..];
                break;
            case LinkRaw:
            case LinkRawAlt:
                if (p.IsEmpty)
                {
                    return null;
                }
                etherType = (p[0] >> 4) == 6 ? 0x86DD : 0x0800;
                break;
            case LinkIPv4:
                etherType = 0x0800;
                break;
            case LinkIPv6:
                etherType = 0x86DD;
                break;
            default:
                return null;
        }

        IPAddress source, destination;
        ReadOnlySpan<byte> tcp;
        if (etherType == 0x0800)
        {
            if (p.Length < 20 || (p[0] >> 4) != 4)
            {
                return null;
            }
            int headerLength = (p[0] & 0x0F) * 4;
            int totalLength = BinaryPrimitives.ReadUInt16BigEndian(p[2..]);
            bool fragment = (BinaryPrimitives.ReadUInt16BigEndian(p[6..]) & 0x3FFF) != 0;
            if (p[9] != 6 || fragment || headerLength < 20 || totalLength < headerLength || headerLength > p.Length)
            {
                return null;
            }
            source = new IPAddress(p.Slice(12, 4));
            destination = new IPAddress(p.Slice(16, 4));
            // Total length, not the captured length: Ethernet pads short frames. A total length
            // beyond the capture (fuzzed or truncated packets) is cut to it, as Wireshark does.
            tcp = p[headerLength..Math.Min(totalLength, p.Length)];
        }
        else if (etherType == 0x86DD)
        {
            if (p.Length < 40 || (p[0] >> 4) != 6)
            {
                return null;
            }
            int payloadLength = BinaryPrimitives.ReadUInt16BigEndian(p[4..]);
            if (40 + payloadLength > p.Length)
            {
                return null;
            }
            source = new IPAddress(p.Slice(8, 16));
            destination = new IPAddress(p.Slice(24, 16));
            int next = p[6];
            var rest = p.Slice(40, payloadLength);
            // Hop-by-hop, routing and destination options share one layout: next header, length in 8-byte units.
            while (next is 0 or 43 or 60)
            {
                if (rest.Length < 8 || rest.Length < (rest[1] + 1) * 8)
                {
                    return null;
                }
                next = rest[0];
                rest = rest[((rest[1] + 1) * 8)..];
            }
            if (next != 6)
            {
                return null;
            }
            tcp = rest;
        }
        else
        {
            return null;
        }

        if (tcp.Length < 20)
        {
            return null;
        }
        int dataOffset = (tcp[12] >> 4) * 4;
        if (dataOffset < 20 || dataOffset > tcp.Length)
        {
            return null;
        }
        return new TcpSegment(
            frame,
            source,
            BinaryPrimitives.ReadUInt16BigEndian(tcp),
            destination,
            BinaryPrimitives.ReadUInt16BigEndian(tcp[2..]),
            BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]),
            tcp[dataOffset..].ToArray());
    }
}
