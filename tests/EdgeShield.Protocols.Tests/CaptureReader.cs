using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using EdgeShield.Protocols.Capture;
using ShippedReader = EdgeShield.Protocols.Capture.CaptureReader;

namespace EdgeShield.Protocols.Tests;

/// <summary>A TCP segment with payload, taken from one captured packet.</summary>
/// <param name="Frame">1-based packet number, as Wireshark numbers frames.</param>
internal sealed record TcpSegment(int Frame, IPAddress Source, ushort SourcePort, IPAddress Destination, ushort DestinationPort, uint Sequence, byte[] Payload);

/// <summary>
/// The tests' view of a capture, per packet and without reassembly, built on the shipped reader
/// (<see cref="ShippedReader"/> and <see cref="TcpPacketDecoder"/>), so that every test over a
/// capture also tests the reader <c>edgeshield replay</c> uses.
/// </summary>
internal static class CaptureReader
{
    public static List<TcpSegment> ReadTcp(byte[] capture)
    {
        var segments = new List<TcpSegment>();
        var reader = Open(capture);
        while (reader.TryReadPacket(out var packet) == OperationStatus.Done)
        {
            if (TcpPacketDecoder.TryDecode(packet.LinkType, packet.Data, out var tcp) == PacketSkip.None)
            {
                segments.Add(new TcpSegment(packet.FrameNumber, Address(tcp.Source), tcp.SourcePort, Address(tcp.Destination), tcp.DestinationPort, tcp.Sequence, tcp.Payload.ToArray()));
            }
        }
        return segments;
    }

    /// <summary>Every packet record with its 1-based number and link type.</summary>
    public static List<(int Frame, int LinkType, byte[] Data)> ReadPackets(byte[] capture)
    {
        var packets = new List<(int, int, byte[])>();
        var reader = Open(capture);
        while (reader.TryReadPacket(out var packet) == OperationStatus.Done)
        {
            packets.Add((packet.FrameNumber, packet.LinkType, packet.Data.ToArray()));
        }
        return packets;
    }

    private static ShippedReader Open(byte[] capture) =>
        ShippedReader.TryOpen(capture, out var reader, out var error) && reader is not null
            ? reader
            : throw new InvalidDataException($"not a capture file: {error}");

    public static IPAddress Address(UInt128 value)
    {
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(bytes, value);
        var address = new IPAddress(bytes);
        return address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
    }
}
