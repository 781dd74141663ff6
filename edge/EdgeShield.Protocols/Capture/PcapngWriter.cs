using System.Buffers.Binary;
using System.Text;

namespace EdgeShield.Protocols.Capture;

/// <summary>
/// Writes Modbus TCP ADUs as a pcapng file that Wireshark opens (the building block of
/// <c>audit: { pcap: { path, max-mb } }</c>): one raw-IP interface (LINKTYPE_RAW, nanosecond
/// timestamps), each ADU in an Enhanced Packet Block with a synthesised IPv4 or IPv6 and TCP header
/// from the connection's endpoints, and the reason as the packet comment (<c>opt_comment</c>).
/// When the file would pass <c>maxBytes</c> it is renamed to <c>PATH.1</c> (replacing the previous
/// one) and a new file is started: at most twice <c>maxBytes</c> on disk.
/// </summary>
/// <remarks>Not thread-safe: one writer behind the audit log's single writer.</remarks>
public sealed class PcapngWriter : IDisposable
{
    private const int LinkTypeRaw = 101;
    /// <summary>
    /// The most payload bytes one packet carries (more are cut): a Modbus TCP ADU (266), or an S7 PDU of the largest
    /// size the gateway negotiates (960) in one TPKT/COTP DT, rounded up.
    /// </summary>
    public const int MaxPayloadBytes = 1024;
    private const int MaxPacket = 40 + 20 + MaxPayloadBytes;
    private const int MaxCommentBytes = 256;
    private readonly string _path;
    private readonly long _maxBytes;
    private readonly byte[] _block = new byte[32 + MaxPacket + 4 + 512];
    private FileStream _file;

    /// <summary>Creates (or truncates) <paramref name="path"/>.</summary>
    public PcapngWriter(string path, long maxBytes)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1024);
        _path = path;
        _maxBytes = maxBytes;
        _file = Start(path);
    }

    /// <summary>Files rotated so far.</summary>
    public int Rotations { get; private set; }

    /// <summary>
    /// Appends one ADU as a TCP segment from <paramref name="source"/> to <paramref name="destination"/>
    /// (128-bit addresses, IPv4 as IPv4-mapped IPv6), with <paramref name="comment"/> (UTF-8, cut at 256 bytes).
    /// </summary>
    public void Write(long timestampNs, UInt128 source, ushort sourcePort, UInt128 destination, ushort destinationPort, uint sequence, ReadOnlySpan<byte> adu, string comment)
    {
        ArgumentNullException.ThrowIfNull(comment);
        if (comment.Length > MaxCommentBytes)
        {
            comment = comment[..MaxCommentBytes];
        }
        Span<byte> text = stackalloc byte[Encoding.UTF8.GetMaxByteCount(comment.Length)];
        int length = Encoding.UTF8.GetBytes(comment, text);
        Write(timestampNs, source, sourcePort, destination, destinationPort, sequence, adu, text[..length]);
    }

    /// <summary>
    /// As <see cref="Write(long, UInt128, ushort, UInt128, ushort, uint, ReadOnlySpan{byte}, string)"/>, with the
    /// comment already in UTF-8 (cut at 256 bytes); allocates nothing.
    /// </summary>
    public void Write(long timestampNs, UInt128 source, ushort sourcePort, UInt128 destination, ushort destinationPort, uint sequence, ReadOnlySpan<byte> adu, ReadOnlySpan<byte> commentUtf8)
    {
        adu = adu[..Math.Min(adu.Length, MaxPayloadBytes)];
        var block = _block.AsSpan();
        bool v4 = IsMapped(source) && IsMapped(destination);
        int ipLength = v4 ? 20 : 40;
        int packetLength = ipLength + 20 + adu.Length;
        var packet = block.Slice(28, packetLength);
        packet.Clear();
        if (v4)
        {
            packet[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(packet[2..], (ushort)packetLength);
            packet[8] = 64;
            packet[9] = 6;
            BinaryPrimitives.WriteUInt32BigEndian(packet[12..], (uint)source);
            BinaryPrimitives.WriteUInt32BigEndian(packet[16..], (uint)destination);
            BinaryPrimitives.WriteUInt16BigEndian(packet[10..], Ipv4Checksum(packet[..20]));
        }
        else
        {
            packet[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(packet[4..], (ushort)(20 + adu.Length));
            packet[6] = 6;
            packet[7] = 64;
            BinaryPrimitives.WriteUInt128BigEndian(packet[8..], source);
            BinaryPrimitives.WriteUInt128BigEndian(packet[24..], destination);
        }
        var tcp = packet[ipLength..];
        BinaryPrimitives.WriteUInt16BigEndian(tcp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], sequence);
        tcp[12] = 5 << 4;
        tcp[13] = (byte)(TcpControl.Psh | TcpControl.Ack);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], 65535);
        adu.CopyTo(tcp[20..]);

        int padded = (packetLength + 3) & ~3;
        int offset = 28 + padded;
        block[(28 + packetLength)..offset].Clear();
        // opt_comment (1), then opt_endofopt.
        int commentLength = Math.Min(commentUtf8.Length, MaxCommentBytes);
        BinaryPrimitives.WriteUInt16LittleEndian(block[offset..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(block[(offset + 2)..], (ushort)commentLength);
        commentUtf8[..commentLength].CopyTo(block[(offset + 4)..]);
        int commentPadded = (commentLength + 3) & ~3;
        block.Slice(offset + 4 + commentLength, commentPadded - commentLength).Clear();
        offset += 4 + commentPadded;
        block.Slice(offset, 4).Clear();
        offset += 4;
        int total = offset + 4;

        BinaryPrimitives.WriteUInt32LittleEndian(block, 6);
        BinaryPrimitives.WriteUInt32LittleEndian(block[4..], (uint)total);
        BinaryPrimitives.WriteUInt32LittleEndian(block[8..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(block[12..], (uint)((ulong)timestampNs >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(block[16..], (uint)timestampNs);
        BinaryPrimitives.WriteUInt32LittleEndian(block[20..], (uint)packetLength);
        BinaryPrimitives.WriteUInt32LittleEndian(block[24..], (uint)packetLength);
        BinaryPrimitives.WriteUInt32LittleEndian(block[offset..], (uint)total);

        if (_file.Length + total > _maxBytes)
        {
            Rotate();
        }
        _file.Write(block[..total]);
    }

    /// <summary>Pushes written blocks to the file.</summary>
    public void Flush() => _file.Flush();

    public void Dispose() => _file.Dispose();

    private void Rotate()
    {
        _file.Dispose();
        File.Move(_path, _path + ".1", overwrite: true);
        _file = Start(_path);
        Rotations++;
    }

    private static FileStream Start(string path)
    {
        var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read);
        Span<byte> header = stackalloc byte[28 + 32];
        header.Clear();
        // Section Header Block: byte-order magic, version 1.0, section length unknown.
        BinaryPrimitives.WriteUInt32LittleEndian(header, 0x0A0D0D0A);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], 28);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], 0x1A2B3C4D);
        BinaryPrimitives.WriteUInt16LittleEndian(header[12..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(header[14..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(header[16..], -1);
        BinaryPrimitives.WriteUInt32LittleEndian(header[24..], 28);
        // Interface Description Block: raw IP, snaplen 65535, if_tsresol = 9 (nanoseconds).
        var idb = header[28..];
        BinaryPrimitives.WriteUInt32LittleEndian(idb, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(idb[4..], 32);
        BinaryPrimitives.WriteUInt16LittleEndian(idb[8..], LinkTypeRaw);
        BinaryPrimitives.WriteUInt32LittleEndian(idb[12..], 65535);
        BinaryPrimitives.WriteUInt16LittleEndian(idb[16..], 9);
        BinaryPrimitives.WriteUInt16LittleEndian(idb[18..], 1);
        idb[20] = 9;
        BinaryPrimitives.WriteUInt32LittleEndian(idb[28..], 32);
        file.Write(header);
        return file;
    }

    private static bool IsMapped(UInt128 address) => (address >> 32) == 0xFFFF;

    private static ushort Ipv4Checksum(ReadOnlySpan<byte> header)
    {
        uint sum = 0;
        for (int i = 0; i < header.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(header[i..]);
        }
        while (sum > 0xFFFF)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        return (ushort)~sum;
    }
}
