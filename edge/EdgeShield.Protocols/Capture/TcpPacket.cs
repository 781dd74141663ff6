using System.Buffers.Binary;

namespace EdgeShield.Protocols.Capture;

/// <summary>TCP control bits (flags) that reassembly needs.</summary>
[Flags]
public enum TcpControl : byte
{
    None = 0,
    Fin = 0x01,
    Syn = 0x02,
    Rst = 0x04,
    Psh = 0x08,
    Ack = 0x10,
}

/// <summary>Why a captured packet carries no TCP segment we can use.</summary>
public enum PacketSkip : byte
{
    None = 0,
    /// <summary>A link type this reader does not decode.</summary>
    UnsupportedLinkType,
    /// <summary>Not IPv4 or IPv6 (ARP, LLDP, …).</summary>
    NotIp,
    /// <summary>IP, but not TCP.</summary>
    NotTcp,
    /// <summary>An IP fragment: fragments are not reassembled (Modbus requests fit one segment).</summary>
    IpFragment,
    /// <summary>A header that is shorter than it says or than the capture holds.</summary>
    Truncated,
}

/// <summary>
/// A TCP segment decoded from one captured packet, viewed in place. Addresses are 128-bit values,
/// IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), so that flows compare integers.
/// </summary>
public readonly ref struct TcpPacket
{
    public UInt128 Source { get; init; }
    public UInt128 Destination { get; init; }
    public ushort SourcePort { get; init; }
    public ushort DestinationPort { get; init; }
    public uint Sequence { get; init; }
    /// <summary>The acknowledgment number (meaningful when <see cref="TcpControl.Ack"/> is set).</summary>
    public uint Acknowledgment { get; init; }
    public TcpControl Flags { get; init; }
    /// <summary>The TCP payload, bounded by the IP length (not Ethernet padding) and by what was captured.</summary>
    public ReadOnlySpan<byte> Payload { get; init; }
}

/// <summary>
/// Decodes link, IP and TCP headers of a captured packet: Ethernet (with 802.1Q/802.1ad tags),
/// Linux cooked SLL and SLL2, BSD null/loopback, raw IP; IPv4 (no fragments) and IPv6 (with
/// extension headers). Allocation-free.
/// </summary>
public static class TcpPacketDecoder
{
    private const int LinkNull = 0;
    private const int LinkEthernet = 1;
    private const int LinkRawAlt = 12;
    private const int LinkRawAlt2 = 14;
    private const int LinkRaw = 101;
    private const int LinkLoop = 108;
    private const int LinkSll = 113;
    private const int LinkIPv4 = 228;
    private const int LinkIPv6 = 229;
    private const int LinkSll2 = 276;
    private const ushort EtherIPv4 = 0x0800;
    private const ushort EtherIPv6 = 0x86DD;
    private const byte ProtocolTcp = 6;

    /// <summary>Decodes <paramref name="data"/> of link type <paramref name="linkType"/> down to a TCP segment.</summary>
    public static PacketSkip TryDecode(int linkType, ReadOnlySpan<byte> data, out TcpPacket packet)
    {
        packet = default;
        var p = data;
        ushort etherType;
        switch (linkType)
        {
            case LinkEthernet:
                if (p.Length < 14)
                {
                    return PacketSkip.Truncated;
                }
                etherType = BinaryPrimitives.ReadUInt16BigEndian(p[12..]);
                p = p[14..];
                for (int tags = 0; tags < 4 && etherType is 0x8100 or 0x88A8 or 0x9100 && p.Length >= 4; tags++)
                {
                    etherType = BinaryPrimitives.ReadUInt16BigEndian(p[2..]);
                    p = p[4..];
                }
                break;
            case LinkSll:
                if (p.Length < 16)
                {
                    return PacketSkip.Truncated;
                }
                etherType = BinaryPrimitives.ReadUInt16BigEndian(p[14..]);
                p = p[16..];
                break;
            case LinkSll2:
                if (p.Length < 20)
                {
                    return PacketSkip.Truncated;
                }
                etherType = BinaryPrimitives.ReadUInt16BigEndian(p);
                p = p[20..];
                break;
            case LinkNull:
            case LinkLoop:
                if (p.Length < 4)
                {
                    return PacketSkip.Truncated;
                }
                // The address family is in the capturing host's byte order (LOOP: network order);
                // 2 is AF_INET everywhere, IPv6 differs per OS (10, 24, 28, 30): read the version nibble instead.
                p = p[4..];
                etherType = p.Length > 0 && (p[0] >> 4) == 6 ? EtherIPv6 : EtherIPv4;
                break;
            case LinkRaw:
            case LinkRawAlt:
            case LinkRawAlt2:
                etherType = p.Length > 0 && (p[0] >> 4) == 6 ? EtherIPv6 : EtherIPv4;
                break;
            case LinkIPv4:
                etherType = EtherIPv4;
                break;
            case LinkIPv6:
                etherType = EtherIPv6;
                break;
            default:
                return PacketSkip.UnsupportedLinkType;
        }

        UInt128 source, destination;
        ReadOnlySpan<byte> tcp;
        if (etherType == EtherIPv4)
        {
            if (p.Length < 20 || (p[0] >> 4) != 4)
            {
                return p.Length < 20 ? PacketSkip.Truncated : PacketSkip.NotIp;
            }
            int headerLength = (p[0] & 0x0F) * 4;
            int totalLength = BinaryPrimitives.ReadUInt16BigEndian(p[2..]);
            if (headerLength < 20 || headerLength > p.Length || totalLength < headerLength)
            {
                return PacketSkip.Truncated;
            }
            if (p[9] != ProtocolTcp)
            {
                return PacketSkip.NotTcp;
            }
            if ((BinaryPrimitives.ReadUInt16BigEndian(p[6..]) & 0x3FFF) != 0)
            {
                return PacketSkip.IpFragment;
            }
            source = Mapped(BinaryPrimitives.ReadUInt32BigEndian(p[12..]));
            destination = Mapped(BinaryPrimitives.ReadUInt32BigEndian(p[16..]));
            // The IP total length, not the captured length: Ethernet pads short frames. A total
            // length beyond the capture (snapped or fuzzed packets) is cut to it, as Wireshark does.
            tcp = p[headerLength..Math.Min(totalLength, p.Length)];
        }
        else if (etherType == EtherIPv6)
        {
            if (p.Length < 40 || (p[0] >> 4) != 6)
            {
                return p.Length < 40 ? PacketSkip.Truncated : PacketSkip.NotIp;
            }
            int payloadLength = BinaryPrimitives.ReadUInt16BigEndian(p[4..]);
            byte next = p[6];
            source = BinaryPrimitives.ReadUInt128BigEndian(p[8..]);
            destination = BinaryPrimitives.ReadUInt128BigEndian(p[24..]);
            // A payload length of 0 is a jumbogram (hop-by-hop option): take what was captured.
            var rest = payloadLength == 0 ? p[40..] : p[40..Math.Min(p.Length, 40 + payloadLength)];
            for (int hops = 0; hops < 8 && next != ProtocolTcp; hops++)
            {
                switch (next)
                {
                    case 0: // hop-by-hop
                    case 43: // routing
                    case 60: // destination options
                        if (rest.Length < 8 || 8 + rest[1] * 8 > rest.Length)
                        {
                            return PacketSkip.Truncated;
                        }
                        next = rest[0];
                        rest = rest[(8 + rest[1] * 8)..];
                        break;
                    case 51: // authentication header: length in 4-byte units, minus 2
                        if (rest.Length < 8 || (rest[1] + 2) * 4 > rest.Length)
                        {
                            return PacketSkip.Truncated;
                        }
                        next = rest[0];
                        rest = rest[((rest[1] + 2) * 4)..];
                        break;
                    case 44: // fragment
                        if (rest.Length < 8)
                        {
                            return PacketSkip.Truncated;
                        }
                        if ((BinaryPrimitives.ReadUInt16BigEndian(rest[2..]) & 0xFFF9) != 0)
                        {
                            return PacketSkip.IpFragment;
                        }
                        next = rest[0];
                        rest = rest[8..];
                        break;
                    default:
                        return PacketSkip.NotTcp;
                }
            }
            if (next != ProtocolTcp)
            {
                return PacketSkip.NotTcp;
            }
            tcp = rest;
        }
        else
        {
            return PacketSkip.NotIp;
        }

        if (tcp.Length < 20)
        {
            return PacketSkip.Truncated;
        }
        int dataOffset = (tcp[12] >> 4) * 4;
        if (dataOffset < 20 || dataOffset > tcp.Length)
        {
            return PacketSkip.Truncated;
        }
        packet = new TcpPacket
        {
            Source = source,
            Destination = destination,
            SourcePort = BinaryPrimitives.ReadUInt16BigEndian(tcp),
            DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(tcp[2..]),
            Sequence = BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]),
            Acknowledgment = BinaryPrimitives.ReadUInt32BigEndian(tcp[8..]),
            Flags = (TcpControl)(tcp[13] & 0x1F),
            Payload = tcp[dataOffset..],
        };
        return PacketSkip.None;
    }

    private static UInt128 Mapped(uint ipv4) => new(0, 0x0000_FFFF_0000_0000UL | ipv4);
}
