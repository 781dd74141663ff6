using System.Buffers.Binary;
using System.Net;
using static EdgeShield.Protocols.Tests.Frames;

namespace EdgeShield.Protocols.Tests;

/// <summary>The test-only capture reader, over link types and file formats the real captures do not exercise.</summary>
public class CaptureReaderTests
{
    private static readonly byte[] Payload = Adu(0x0102, 1, Words(3, 0, 10));

    private static byte[] Tcp(ushort sourcePort, ushort destinationPort)
    {
        var tcp = new byte[20];
        BinaryPrimitives.WriteUInt16BigEndian(tcp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(tcp.AsSpan(2), destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(tcp.AsSpan(4), 1000);
        tcp[12] = 5 << 4;
        return Cat(tcp, Payload);
    }

    private static byte[] IPv4(byte[] tcp)
    {
        var ip = new byte[20];
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(2), (ushort)(20 + tcp.Length));
        ip[8] = 64;
        ip[9] = 6;
        byte[] source = [10, 0, 0, 1];
        byte[] destination = [10, 0, 0, 2];
        source.CopyTo(ip, 12);
        destination.CopyTo(ip, 16);
        return Cat(ip, tcp);
    }

    private static byte[] IPv6(byte[] tcp)
    {
        var ip = new byte[40];
        ip[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(4), (ushort)(8 + tcp.Length));
        ip[6] = 0; // hop-by-hop options header first
        ip[7] = 64;
        IPAddress.Parse("fd00::1").GetAddressBytes().CopyTo(ip, 8);
        IPAddress.Parse("fd00::2").GetAddressBytes().CopyTo(ip, 24);
        byte[] hopByHop = [6, 0, 1, 4, 0, 0, 0, 0];
        return Cat(ip, hopByHop, tcp);
    }

    private static byte[] Ethernet(byte[] ip, ushort etherType)
    {
        var header = new byte[14];
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(12), etherType);
        // Padding after the IP packet, as short Ethernet frames carry.
        return Cat(header, ip, new byte[6]);
    }

    private static byte[] Sll(byte[] ip, ushort protocol)
    {
        var header = new byte[16];
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(14), protocol);
        return Cat(header, ip);
    }

    private static byte[] Pcap(bool littleEndian, uint magic, int linkType, params byte[][] packets)
    {
        var parts = new List<byte[]>();
        var header = new byte[24];
        Write32(header, 0, magic, littleEndian);
        Write32(header, 16, 65535, littleEndian);
        Write32(header, 20, (uint)linkType, littleEndian);
        parts.Add(header);
        foreach (var packet in packets)
        {
            var record = new byte[16];
            Write32(record, 8, (uint)packet.Length, littleEndian);
            Write32(record, 12, (uint)packet.Length, littleEndian);
            parts.Add(record);
            parts.Add(packet);
        }
        return Cat([.. parts]);
    }

    private static void Write32(byte[] buffer, int offset, uint value, bool littleEndian)
    {
        if (littleEndian)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(offset), value);
        }
        else
        {
            BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(offset), value);
        }
    }

    private static byte[] Block(uint type, byte[] body, bool littleEndian)
    {
        int padded = (body.Length + 3) & ~3;
        var block = new byte[12 + padded];
        Write32(block, 0, type, littleEndian);
        Write32(block, 4, (uint)block.Length, littleEndian);
        body.CopyTo(block, 8);
        Write32(block, block.Length - 4, (uint)block.Length, littleEndian);
        return block;
    }

    private static byte[] PcapNg(bool littleEndian, int linkType, byte[] enhanced, byte[] simple)
    {
        var shb = new byte[16];
        Write32(shb, 0, 0x1A2B3C4D, littleEndian);
        shb[4] = littleEndian ? (byte)1 : (byte)0;
        shb[5] = littleEndian ? (byte)0 : (byte)1;
        BinaryPrimitives.WriteInt64LittleEndian(shb.AsSpan(8), -1);
        var idb = new byte[8];
        if (littleEndian)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(idb, (ushort)linkType);
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(idb, (ushort)linkType);
        }
        Write32(idb, 4, 65535, littleEndian);
        var epb = new byte[20];
        Write32(epb, 12, (uint)enhanced.Length, littleEndian);
        Write32(epb, 16, (uint)enhanced.Length, littleEndian);
        var spb = new byte[4];
        Write32(spb, 0, (uint)simple.Length, littleEndian);
        return Cat(
            Block(0x0A0D0D0A, shb, littleEndian),
            Block(1, idb, littleEndian),
            Block(0x0BAD, [1, 2, 3], littleEndian),
            Block(6, Cat(epb, enhanced), littleEndian),
            Block(3, Cat(spb, simple), littleEndian));
    }

    private static void AssertSegments(List<TcpSegment> segments, int count, string destination)
    {
        Assert.Equal(count, segments.Count);
        for (int i = 0; i < count; i++)
        {
            Assert.Equal(i + 1, segments[i].Frame);
            Assert.Equal(49152, segments[i].SourcePort);
            Assert.Equal(502, segments[i].DestinationPort);
            Assert.Equal(IPAddress.Parse(destination), segments[i].Destination);
            Assert.Equal(1000u, segments[i].Sequence);
            Assert.Equal(Payload, segments[i].Payload);
        }
    }

    [Theory]
    [InlineData(true, 0xA1B2C3D4u)]
    [InlineData(false, 0xA1B2C3D4u)]
    [InlineData(true, 0xA1B23C4Du)]
    [InlineData(false, 0xA1B23C4Du)]
    public void ReadTcp_ClassicPcapEitherByteOrder_ExtractsPayload(bool littleEndian, uint magic)
    {
        var ethernet = Ethernet(IPv4(Tcp(49152, 502)), 0x0800);
        var file = Pcap(littleEndian, magic, 1, ethernet, ethernet);

        AssertSegments(CaptureReader.ReadTcp(file), 2, "10.0.0.2");
    }

    [Fact]
    public void ReadTcp_LinuxCookedAndRawIp_ExtractPayload()
    {
        AssertSegments(CaptureReader.ReadTcp(Pcap(true, 0xA1B2C3D4, 113, Sll(IPv4(Tcp(49152, 502)), 0x0800))), 1, "10.0.0.2");
        AssertSegments(CaptureReader.ReadTcp(Pcap(true, 0xA1B2C3D4, 113, Sll(IPv6(Tcp(49152, 502)), 0x86DD))), 1, "fd00::2");
        AssertSegments(CaptureReader.ReadTcp(Pcap(false, 0xA1B2C3D4, 101, IPv4(Tcp(49152, 502)))), 1, "10.0.0.2");
        AssertSegments(CaptureReader.ReadTcp(Pcap(false, 0xA1B2C3D4, 101, IPv6(Tcp(49152, 502)))), 1, "fd00::2");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ReadTcp_PcapNgEnhancedAndSimpleBlocks_ExtractPayload(bool littleEndian)
    {
        var v4 = Ethernet(IPv4(Tcp(49152, 502)), 0x0800);
        var v6 = Ethernet(IPv6(Tcp(49152, 502)), 0x86DD);

        var segments = CaptureReader.ReadTcp(PcapNg(littleEndian, 1, v4, v6));

        Assert.Equal(2, segments.Count);
        Assert.Equal(IPAddress.Parse("10.0.0.2"), segments[0].Destination);
        Assert.Equal(IPAddress.Parse("fd00::2"), segments[1].Destination);
        Assert.All(segments, s => Assert.Equal(Payload, s.Payload));
        Assert.Equal([1, 2], segments.Select(s => s.Frame));
    }

    [Fact]
    public void ReadTcp_NonTcpAndTruncatedPackets_AreSkippedButCounted()
    {
        var udp = IPv4(Tcp(49152, 502));
        udp[9] = 17;
        var arp = Ethernet(new byte[28], 0x0806);
        var good = Ethernet(IPv4(Tcp(49152, 502)), 0x0800);

        var segments = CaptureReader.ReadTcp(Pcap(true, 0xA1B2C3D4, 1, Ethernet(udp, 0x0800), arp, good[..20], good));

        Assert.Single(segments);
        Assert.Equal(4, segments[0].Frame);
    }

    [Fact]
    public void ReadPackets_NotACapture_Throws() =>
        Assert.Throws<InvalidDataException>(() => CaptureReader.ReadPackets("GET / HTTP/1.1"u8.ToArray()));
}
