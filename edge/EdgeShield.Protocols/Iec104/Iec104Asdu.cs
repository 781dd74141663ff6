namespace EdgeShield.Protocols.Iec104;

/// <summary>How far an ASDU could be checked. The default is the safe one: nothing checked.</summary>
public enum Iec104AsduStatus : byte
{
    /// <summary>Not parsed, or malformed (the parser's fault says how).</summary>
    Malformed = 0,
    /// <summary>Header and exact length checked against the type table; objects can be walked.</summary>
    WellFormed,
    /// <summary>
    /// A type the codec does not size (absent from the table, or 41 and 81-95 of the security extensions): the
    /// header is checked (N ≠ 0, cause ≠ 0) but the length cannot be. A station answers cause 44 to such a type;
    /// a rule that names 41 or 81-95 forwards it with only these header checks. No object is walked.
    /// </summary>
    UnknownType,
}

/// <summary>One information object: its address and its element (the octets after the IOA, time tag included).</summary>
public readonly ref struct Iec104InformationObject
{
    internal Iec104InformationObject(uint ioa, ReadOnlySpan<byte> element)
    {
        Ioa = ioa;
        Element = element;
    }

    /// <summary>The information object address (24 bits).</summary>
    public uint Ioa { get; }

    /// <summary>The information element, time tag included (for F_SG_NA_1: NOF, NOS, LOS and the segment).</summary>
    public ReadOnlySpan<byte> Element { get; }
}

/// <summary>
/// One ASDU read in place (docs/IEC104.md "ASDU"; IEC 60870-5-101, 7.2 and IEC 60870-5-104, 9).
/// </summary>
/// <remarks>
/// <code>
///  0      1     2      3       4   5    6 …
///  +------+-----+------+-------+---+---+------------------------------------------+
///  | TYPE | VSQ | COT  | ORIG  |  CA   | objects                                  |
///  +------+-----+------+-------+---+---+------------------------------------------+
///  VSQ: bit 7 SQ, bits 0-6 N.   COT: bits 0-5 cause, bit 6 P/N, bit 7 T.   CA: little-endian, FFFF global.
///  SQ = 0: N × (IOA(3, LE) + element).   SQ = 1: IOA(3) + N × element, at IOA, IOA+1, …
///  The element size is fixed by the type (Iec104Types.ElementSize); 125 F_SG_NA_1:
///  NOF(2) NOS(1) LOS(1) segment(LOS).
/// </code>
/// </remarks>
public readonly ref partial struct Iec104Asdu
{
    private Iec104Asdu(ReadOnlySpan<byte> bytes, Iec104AsduStatus status, uint lowest, uint highest)
    {
        Bytes = bytes;
        Status = status;
        LowestIoa = lowest;
        HighestIoa = highest;
    }

    /// <summary>The whole ASDU.</summary>
    public ReadOnlySpan<byte> Bytes { get; }

    /// <summary>Well-formed, or of a type whose length cannot be checked.</summary>
    public Iec104AsduStatus Status { get; }

    /// <summary>The type identification octet (<see cref="Iec104Types"/> names it); 0 on a view that was not parsed.</summary>
    public byte Type => Octet(0);

    /// <summary>The policy group of <see cref="Type"/>.</summary>
    public Iec104TypeGroup Group => Iec104Types.Group(Type);

    /// <summary>SQ: one base IOA, then N elements at consecutive addresses.</summary>
    public bool Sequence => (Octet(1) & 0x80) != 0;

    /// <summary>N, the number of objects (or of elements when <see cref="Sequence"/>), 1..127.</summary>
    public int Count => Octet(1) & 0x7F;

    /// <summary>The cause of transmission, 1..63 (<see cref="Iec104Causes.Name"/>).</summary>
    public byte Cause => (byte)(Octet(2) & 0x3F);

    /// <summary>P/N: a negative confirmation.</summary>
    public bool Negative => (Octet(2) & 0x40) != 0;

    /// <summary>T: test, not to be acted upon.</summary>
    public bool Test => (Octet(2) & 0x80) != 0;

    /// <summary>The originator address (second COT octet; 0 when not used).</summary>
    public byte Originator => Octet(3);

    /// <summary>The common address (little-endian); 0xFFFF is global.</summary>
    public ushort CommonAddress => (ushort)(Octet(4) | Octet(5) << 8);

    /// <summary>True for the global common address 0xFFFF.</summary>
    public bool IsGlobal => CommonAddress == Iec104Limits.GlobalCommonAddress;

    /// <summary>The octets after the header: the information objects.</summary>
    public ReadOnlySpan<byte> Objects => Bytes.Length >= Iec104Limits.AsduHeaderLength ? Bytes[Iec104Limits.AsduHeaderLength..] : default;

    /// <summary>The element size of <see cref="Type"/> (<see cref="Iec104Types.ElementSize"/>).</summary>
    public int ElementSize => Iec104Types.ElementSize(Type);

    /// <summary>The first object's address (for an unknown type: the first three octets after the header, 0 if absent).</summary>
    public uint FirstIoa => Objects.Length >= Iec104Limits.IoaLength ? ReadIoa(Objects) : 0;

    /// <summary>The lowest address of any object (for an unknown type: <see cref="FirstIoa"/>).</summary>
    public uint LowestIoa { get; }

    /// <summary>The highest address of any object (SQ = 1: base + N - 1; for an unknown type: <see cref="FirstIoa"/>).</summary>
    public uint HighestIoa { get; }

    /// <summary>The objects, in order (nothing for <see cref="Iec104AsduStatus.UnknownType"/>). Allocation-free.</summary>
    public Iec104ObjectEnumerator GetEnumerator() => Status == Iec104AsduStatus.WellFormed ? new(Objects, Sequence, Count, ElementSize) : default;

    /// <summary>
    /// Reads an ASDU (an I-frame's <see cref="Iec104Apdu.Asdu"/>): a 6-octet header, N ≠ 0, cause ≠ 0, and for a
    /// type of the table exactly the length TYPE, SQ and N imply (SQ = 1: the base IOA then N elements; SQ = 0:
    /// N × (IOA + element); F_SG_NA_1: one object whose LOS is the octets that follow it). Returns true for
    /// <see cref="Iec104AsduStatus.WellFormed"/> and <see cref="Iec104AsduStatus.UnknownType"/>; false with
    /// <paramref name="fault"/> (detail <see cref="Iec104FrameError"/>) for a malformed ASDU.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> asdu, out Iec104Asdu view, out FrameFault fault)
    {
        view = default;
        if (asdu.Length < Iec104Limits.AsduHeaderLength)
        {
            return Fail(Iec104FrameError.AsduHeaderTruncated, out fault);
        }
        int count = asdu[1] & 0x7F;
        bool sequence = (asdu[1] & 0x80) != 0;
        if (count == 0)
        {
            return Fail(Iec104FrameError.ObjectCountZero, out fault);
        }
        if ((asdu[2] & 0x3F) == 0)
        {
            return Fail(Iec104FrameError.CauseZero, out fault);
        }
        var objects = asdu[Iec104Limits.AsduHeaderLength..];
        int size = Iec104Types.ElementSize(asdu[0]);
        if (size == Iec104Types.Unsized)
        {
            uint first = objects.Length >= Iec104Limits.IoaLength ? ReadIoa(objects) : 0;
            view = new Iec104Asdu(asdu, Iec104AsduStatus.UnknownType, first, first);
            fault = FrameFault.None;
            return true;
        }
        if (size == Iec104Types.VariableSize)
        {
            // F_SG_NA_1: IOA(3) NOF(2) NOS(1) LOS(1) segment(LOS), one object.
            if (sequence || count != 1)
            {
                return Fail(Iec104FrameError.SegmentNotSingle, out fault);
            }
            const int fixedPart = Iec104Limits.IoaLength + 4;
            if (objects.Length < fixedPart)
            {
                return Fail(Iec104FrameError.ObjectsTruncated, out fault);
            }
            if (objects.Length != fixedPart + objects[fixedPart - 1])
            {
                return Fail(Iec104FrameError.SegmentLengthMismatch, out fault);
            }
            uint ioa = ReadIoa(objects);
            view = new Iec104Asdu(asdu, Iec104AsduStatus.WellFormed, ioa, ioa);
            fault = FrameFault.None;
            return true;
        }
        if (sequence)
        {
            if (objects.Length < Iec104Limits.IoaLength)
            {
                return Fail(Iec104FrameError.SequenceWithoutBaseIoa, out fault);
            }
            int expected = Iec104Limits.IoaLength + count * size;
            if (objects.Length != expected)
            {
                return Fail(objects.Length < expected ? Iec104FrameError.ObjectsTruncated : Iec104FrameError.ObjectsTrailingBytes, out fault);
            }
            uint baseIoa = ReadIoa(objects);
            uint last = baseIoa + (uint)count - 1;
            if (last > Iec104Limits.MaxIoa)
            {
                return Fail(Iec104FrameError.IoaSequenceOverflow, out fault);
            }
            view = new Iec104Asdu(asdu, Iec104AsduStatus.WellFormed, baseIoa, last);
            fault = FrameFault.None;
            return true;
        }
        int stride = Iec104Limits.IoaLength + size;
        int total = count * stride;
        if (objects.Length != total)
        {
            return Fail(objects.Length < total ? Iec104FrameError.ObjectsTruncated : Iec104FrameError.ObjectsTrailingBytes, out fault);
        }
        uint lowest = uint.MaxValue, highest = 0;
        for (int offset = 0; offset < total; offset += stride)
        {
            uint ioa = ReadIoa(objects[offset..]);
            lowest = Math.Min(lowest, ioa);
            highest = Math.Max(highest, ioa);
        }
        view = new Iec104Asdu(asdu, Iec104AsduStatus.WellFormed, lowest, highest);
        fault = FrameFault.None;
        return true;
    }

    /// <summary>A header octet; 0 on a view that was not parsed (default), so that reading one never throws.</summary>
    private byte Octet(int index) => Bytes.Length >= Iec104Limits.AsduHeaderLength ? Bytes[index] : (byte)0;

    internal static uint ReadIoa(ReadOnlySpan<byte> bytes) => (uint)(bytes[0] | bytes[1] << 8 | bytes[2] << 16);

    private static bool Fail(Iec104FrameError error, out FrameFault fault)
    {
        fault = Iec104FrameErrors.Fault(error);
        return false;
    }
}

/// <summary>Walks the objects of a well-formed ASDU (<c>foreach (var o in asdu)</c>); allocation-free.</summary>
public ref struct Iec104ObjectEnumerator
{
    private readonly ReadOnlySpan<byte> _objects;
    private readonly bool _sequence;
    private readonly int _count;
    private readonly int _size;
    private int _index;
    private int _offset;
    private uint _ioa;
    private ReadOnlySpan<byte> _element;

    internal Iec104ObjectEnumerator(ReadOnlySpan<byte> objects, bool sequence, int count, int size)
    {
        _objects = objects;
        _sequence = sequence;
        _count = objects.IsEmpty ? 0 : count;
        _size = size;
        _index = -1;
        _offset = 0;
        _ioa = 0;
        _element = default;
    }

    /// <summary>The object at the enumerator's position.</summary>
    public readonly Iec104InformationObject Current => new(_ioa, _element);

    /// <summary>Moves to the next object.</summary>
    public bool MoveNext()
    {
        if (_index + 1 >= _count)
        {
            return false;
        }
        _index++;
        if (_size == Iec104Types.VariableSize)
        {
            // F_SG_NA_1: one object, its element is NOF NOS LOS and the LOS octets that follow (checked by TryParse).
            _ioa = Iec104Asdu.ReadIoa(_objects);
            _element = _objects[Iec104Limits.IoaLength..];
            return true;
        }
        if (_sequence)
        {
            if (_index == 0)
            {
                _ioa = Iec104Asdu.ReadIoa(_objects);
                _offset = Iec104Limits.IoaLength;
            }
            else
            {
                _ioa++;
            }
            _element = _objects.Slice(_offset, _size);
            _offset += _size;
            return true;
        }
        _ioa = Iec104Asdu.ReadIoa(_objects[_offset..]);
        _element = _objects.Slice(_offset + Iec104Limits.IoaLength, _size);
        _offset += Iec104Limits.IoaLength + _size;
        return true;
    }
}
