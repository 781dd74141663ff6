using System.Buffers;
using System.Buffers.Binary;

namespace EdgeShield.Protocols.Capture;

/// <summary>Why a capture file could not be read further.</summary>
public enum CaptureError : byte
{
    None = 0,
    /// <summary>Neither a classic pcap magic number nor a pcapng section header.</summary>
    NotACapture,
    /// <summary>A record or block header says it is longer than the bytes left in the file.</summary>
    Truncated,
    /// <summary>A pcapng block length below 12, not a multiple of 4, or a body too short for its type.</summary>
    BadBlock,
    /// <summary>A pcapng packet names an interface no IDB has described.</summary>
    UnknownInterface,
}

/// <summary>One packet record of a capture, viewed in place over the file's bytes.</summary>
public readonly ref struct CapturedPacket
{
    internal CapturedPacket(int frameNumber, long timestampNs, int linkType, int originalLength, ReadOnlySpan<byte> data)
    {
        FrameNumber = frameNumber;
        TimestampNs = timestampNs;
        LinkType = linkType;
        OriginalLength = originalLength;
        Data = data;
    }

    /// <summary>1-based packet number, as Wireshark numbers frames.</summary>
    public int FrameNumber { get; }

    /// <summary>Capture time in nanoseconds since the Unix epoch (pcapng SPBs carry none: the previous packet's).</summary>
    public long TimestampNs { get; }

    /// <summary>The LINKTYPE_ value of the interface (1 Ethernet, 113 SLL, 276 SLL2, 101 raw IP, …).</summary>
    public int LinkType { get; }

    /// <summary>The packet's length on the wire; above <see cref="Data"/>'s length when the snapshot length cut it.</summary>
    public int OriginalLength { get; }

    /// <summary>The captured bytes.</summary>
    public ReadOnlySpan<byte> Data { get; }
}

/// <summary>
/// Reads packet records from a classic pcap file (both byte orders; microsecond and nanosecond
/// variants) or a pcapng file (SHB, IDB with <c>if_tsresol</c>, EPB, SPB and the obsolete PB;
/// several sections of either byte order), in place over the file's bytes: no copy and no
/// allocation per packet.
/// </summary>
/// <remarks>
/// <code>
/// classic pcap (pcap-savefile(5)):          pcapng (draft-ietf-opsawg-pcapng), every block:
///  24-byte header: magic | vmaj | vmin |     +------+-------+--------------------+-------+
///    zone | sigfigs | snaplen | linktype    | type | total | body (padded to 4) | total |
///  per record: sec | usec/nsec | incl |     +------+-------+--------------------+-------+
///    orig | incl bytes of packet              EPB body: if | ts hi | ts lo | cap | orig | data
/// </code>
/// A reader stops at the first record it cannot trust and reports why (<see cref="Error"/>):
/// every byte count is checked against what is left before it is sliced.
/// </remarks>
public sealed class CaptureReader
{
    private const uint PcapMagicMicro = 0xA1B2C3D4;
    private const uint PcapMagicNano = 0xA1B23C4D;
    private const uint PcapngSectionHeader = 0x0A0D0D0A;
    private const uint PcapngByteOrderMagic = 0x1A2B3C4D;
    private const int PcapHeaderLength = 24;
    private const int PcapRecordHeaderLength = 16;
    private const int MaxInterfaces = 256;

    private readonly ReadOnlyMemory<byte> _file;
    private readonly bool _pcapng;
    private readonly int[] _interfaceLinkTypes = new int[MaxInterfaces];
    private readonly long[] _interfaceUnitsPerSecond = new long[MaxInterfaces];
    private bool _littleEndian;
    private bool _nanoseconds;
    private int _pcapLinkType;
    private int _interfaceCount;
    private int _offset;
    private int _frame;
    private long _lastTimestampNs;

    private CaptureReader(ReadOnlyMemory<byte> file, bool pcapng)
    {
        _file = file;
        _pcapng = pcapng;
    }

    /// <summary>Where reading stopped early, if it did; <see cref="CaptureError.None"/> at a clean end.</summary>
    public CaptureError Error { get; private set; }

    /// <summary>Byte offset of the record that could not be read, when <see cref="Error"/> is set.</summary>
    public int ErrorOffset { get; private set; }

    /// <summary>Packets returned so far.</summary>
    public int FrameCount => _frame;

    /// <summary>True for pcapng, false for classic pcap.</summary>
    public bool IsPcapng => _pcapng;

    /// <summary>Opens a capture held in memory; false (with <paramref name="error"/>) when it is neither pcap nor pcapng.</summary>
    public static bool TryOpen(ReadOnlyMemory<byte> file, out CaptureReader? reader, out CaptureError error)
    {
        reader = null;
        error = CaptureError.NotACapture;
        var span = file.Span;
        if (span.Length < 12)
        {
            return false;
        }
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(span);
        if (magic == PcapngSectionHeader)
        {
            reader = new CaptureReader(file, pcapng: true);
            error = CaptureError.None;
            return true;
        }
        bool? littleEndian = magic switch
        {
            PcapMagicMicro or PcapMagicNano => true,
            _ when BinaryPrimitives.ReverseEndianness(magic) is PcapMagicMicro or PcapMagicNano => false,
            _ => null,
        };
        if (littleEndian is not { } le || span.Length < PcapHeaderLength)
        {
            return false;
        }
        uint native = le ? magic : BinaryPrimitives.ReverseEndianness(magic);
        reader = new CaptureReader(file, pcapng: false)
        {
            _littleEndian = le,
            _nanoseconds = native == PcapMagicNano,
            // The upper bits of the link-type field carry FCS flags (pcap-linktype(7)).
            _pcapLinkType = (int)(U32(span[20..], le) & 0x0FFFFFFF),
            _offset = PcapHeaderLength,
        };
        error = CaptureError.None;
        return true;
    }

    /// <summary>Rewinds to the first packet.</summary>
    public void Reset()
    {
        _offset = _pcapng ? 0 : PcapHeaderLength;
        _frame = 0;
        _interfaceCount = 0;
        _lastTimestampNs = 0;
        Error = CaptureError.None;
        ErrorOffset = 0;
    }

    /// <summary>
    /// Reads the next packet. <see cref="OperationStatus.Done"/> with <paramref name="packet"/>;
    /// <see cref="OperationStatus.NeedMoreData"/> at the end of the file;
    /// <see cref="OperationStatus.InvalidData"/> when a record cannot be trusted (<see cref="Error"/>).
    /// </summary>
    public OperationStatus TryReadPacket(out CapturedPacket packet)
    {
        packet = default;
        if (Error != CaptureError.None)
        {
            return OperationStatus.InvalidData;
        }
        return _pcapng ? ReadPcapngPacket(out packet) : ReadPcapPacket(out packet);
    }

    private static uint U32(ReadOnlySpan<byte> b, bool le) =>
        le ? BinaryPrimitives.ReadUInt32LittleEndian(b) : BinaryPrimitives.ReadUInt32BigEndian(b);

    private static ushort U16(ReadOnlySpan<byte> b, bool le) =>
        le ? BinaryPrimitives.ReadUInt16LittleEndian(b) : BinaryPrimitives.ReadUInt16BigEndian(b);

    private OperationStatus Fail(CaptureError error)
    {
        Error = error;
        ErrorOffset = _offset;
        return OperationStatus.InvalidData;
    }

    private OperationStatus ReadPcapPacket(out CapturedPacket packet)
    {
        packet = default;
        var file = _file.Span;
        int left = file.Length - _offset;
        if (left == 0)
        {
            return OperationStatus.NeedMoreData;
        }
        if (left < PcapRecordHeaderLength)
        {
            return Fail(CaptureError.Truncated);
        }
        var header = file.Slice(_offset, PcapRecordHeaderLength);
        uint seconds = U32(header, _littleEndian);
        uint fraction = U32(header[4..], _littleEndian);
        uint captured = U32(header[8..], _littleEndian);
        uint original = U32(header[12..], _littleEndian);
        if (captured > (uint)(left - PcapRecordHeaderLength))
        {
            return Fail(CaptureError.Truncated);
        }
        long ns = seconds * 1_000_000_000L + (_nanoseconds ? fraction : fraction * 1000L);
        var data = file.Slice(_offset + PcapRecordHeaderLength, (int)captured);
        _offset += PcapRecordHeaderLength + (int)captured;
        packet = new CapturedPacket(++_frame, ns, _pcapLinkType, (int)Math.Min(original, int.MaxValue), data);
        return OperationStatus.Done;
    }

    private OperationStatus ReadPcapngPacket(out CapturedPacket packet)
    {
        packet = default;
        var file = _file.Span;
        while (true)
        {
            int left = file.Length - _offset;
            if (left == 0)
            {
                return OperationStatus.NeedMoreData;
            }
            if (left < 12)
            {
                return Fail(CaptureError.Truncated);
            }
            var block = file[_offset..];
            uint type = U32(block, _littleEndian);
            if (type == PcapngSectionHeader)
            {
                // The byte-order magic decides this section's endianness (and the length's).
                uint bom = BinaryPrimitives.ReadUInt32LittleEndian(block[8..]);
                if (bom == PcapngByteOrderMagic)
                {
                    _littleEndian = true;
                }
                else if (bom == BinaryPrimitives.ReverseEndianness(PcapngByteOrderMagic))
                {
                    _littleEndian = false;
                }
                else
                {
                    return Fail(CaptureError.BadBlock);
                }
                _interfaceCount = 0;
            }
            uint length = U32(block[4..], _littleEndian);
            if (length < 12 || (length & 3) != 0)
            {
                return Fail(CaptureError.BadBlock);
            }
            if (length > (uint)left)
            {
                return Fail(CaptureError.Truncated);
            }
            var body = block[8..((int)length - 4)];
            switch (type)
            {
                case 1: // Interface Description Block
                    if (body.Length < 8)
                    {
                        return Fail(CaptureError.BadBlock);
                    }
                    if (_interfaceCount < MaxInterfaces)
                    {
                        _interfaceLinkTypes[_interfaceCount] = U16(body, _littleEndian);
                        _interfaceUnitsPerSecond[_interfaceCount] = ReadTsResolution(body[8..]);
                        _interfaceCount++;
                    }
                    break;
                case 6: // Enhanced Packet Block
                {
                    if (body.Length < 20)
                    {
                        return Fail(CaptureError.BadBlock);
                    }
                    uint ifc = U32(body, _littleEndian);
                    ulong ts = ((ulong)U32(body[4..], _littleEndian) << 32) | U32(body[8..], _littleEndian);
                    uint captured = U32(body[12..], _littleEndian);
                    uint original = U32(body[16..], _littleEndian);
                    if (captured > (uint)(body.Length - 20))
                    {
                        return Fail(CaptureError.BadBlock);
                    }
                    if (ifc >= (uint)_interfaceCount)
                    {
                        return Fail(CaptureError.UnknownInterface);
                    }
                    _lastTimestampNs = ToNanoseconds(ts, _interfaceUnitsPerSecond[ifc]);
                    _offset += (int)length;
                    packet = new CapturedPacket(++_frame, _lastTimestampNs, _interfaceLinkTypes[ifc], (int)Math.Min(original, int.MaxValue), body.Slice(20, (int)captured));
                    return OperationStatus.Done;
                }
                case 3: // Simple Packet Block: interface 0, captured length bounded by the block
                {
                    if (body.Length < 4)
                    {
                        return Fail(CaptureError.BadBlock);
                    }
                    if (_interfaceCount == 0)
                    {
                        return Fail(CaptureError.UnknownInterface);
                    }
                    uint original = U32(body, _littleEndian);
                    int captured = (int)Math.Min(original, (uint)(body.Length - 4));
                    _offset += (int)length;
                    packet = new CapturedPacket(++_frame, _lastTimestampNs, _interfaceLinkTypes[0], (int)Math.Min(original, int.MaxValue), body.Slice(4, captured));
                    return OperationStatus.Done;
                }
                case 2: // Packet Block (obsolete)
                {
                    if (body.Length < 20)
                    {
                        return Fail(CaptureError.BadBlock);
                    }
                    int ifc = U16(body, _littleEndian);
                    ulong ts = ((ulong)U32(body[4..], _littleEndian) << 32) | U32(body[8..], _littleEndian);
                    uint captured = U32(body[12..], _littleEndian);
                    uint original = U32(body[16..], _littleEndian);
                    if (captured > (uint)(body.Length - 20))
                    {
                        return Fail(CaptureError.BadBlock);
                    }
                    if (ifc >= _interfaceCount)
                    {
                        return Fail(CaptureError.UnknownInterface);
                    }
                    _lastTimestampNs = ToNanoseconds(ts, _interfaceUnitsPerSecond[ifc]);
                    _offset += (int)length;
                    packet = new CapturedPacket(++_frame, _lastTimestampNs, _interfaceLinkTypes[ifc], (int)Math.Min(original, int.MaxValue), body.Slice(20, (int)captured));
                    return OperationStatus.Done;
                }
                default:
                    break; // name resolution, statistics, custom and unknown blocks carry no packets
            }
            _offset += (int)length;
        }
    }

    /// <summary>Units per second from an IDB's options (<c>if_tsresol</c>, code 9); 10^6 by default.</summary>
    private long ReadTsResolution(ReadOnlySpan<byte> options)
    {
        while (options.Length >= 4)
        {
            int code = U16(options, _littleEndian);
            int length = U16(options[2..], _littleEndian);
            if (code == 0 || 4 + length > options.Length)
            {
                break;
            }
            if (code == 9 && length >= 1)
            {
                byte value = options[4];
                int exponent = value & 0x7F;
                if ((value & 0x80) != 0)
                {
                    return exponent < 63 ? 1L << exponent : 1_000_000;
                }
                long units = 1;
                for (int i = 0; i < exponent && units <= long.MaxValue / 10; i++)
                {
                    units *= 10;
                }
                return units;
            }
            options = options[Math.Min(options.Length, 4 + ((length + 3) & ~3))..];
        }
        return 1_000_000;
    }

    private static long ToNanoseconds(ulong ticks, long unitsPerSecond) => unitsPerSecond switch
    {
        1_000_000 => (long)(ticks * 1000),
        1_000_000_000 => (long)ticks,
        _ => (long)((UInt128)ticks * 1_000_000_000 / (ulong)unitsPerSecond),
    };
}
