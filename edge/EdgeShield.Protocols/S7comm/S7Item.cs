using System.Buffers.Binary;

namespace EdgeShield.Protocols.S7comm;

/// <summary>Memory areas of S7ANY addresses (Wireshark <c>item_areanames</c>).</summary>
public enum S7Area : byte
{
    Unknown = 0,
    /// <summary>S7-200 system info, 03.</summary>
    SystemInfo200 = 0x03,
    /// <summary>S7-200 system flags, 05.</summary>
    SystemFlags200 = 0x05,
    /// <summary>S7-200 analog inputs, 06.</summary>
    AnalogInputs200 = 0x06,
    /// <summary>S7-200 analog outputs, 07.</summary>
    AnalogOutputs200 = 0x07,
    /// <summary>S7 counters (C), 1C.</summary>
    Counters = 0x1C,
    /// <summary>S7 timers (T), 1D.</summary>
    Timers = 0x1D,
    /// <summary>IEC counters (S7-200), 1E.</summary>
    IecCounters = 0x1E,
    /// <summary>IEC timers (S7-200), 1F.</summary>
    IecTimers = 0x1F,
    /// <summary>Direct peripheral I/O (P), 80.</summary>
    Peripheral = 0x80,
    /// <summary>Inputs (I), 81.</summary>
    Inputs = 0x81,
    /// <summary>Outputs (Q), 82.</summary>
    Outputs = 0x82,
    /// <summary>Flags / markers (M), 83.</summary>
    Flags = 0x83,
    /// <summary>Data blocks (DB), 84.</summary>
    DataBlocks = 0x84,
    /// <summary>Instance data blocks (DI), 85.</summary>
    InstanceDataBlocks = 0x85,
    /// <summary>Local data (L), 86.</summary>
    Local = 0x86,
    /// <summary>Previous local data (V), 87.</summary>
    PreviousLocal = 0x87,
}

/// <summary>The syntax id of a read-var/write-var item (Wireshark <c>item_syntaxid_names</c>).</summary>
public enum S7SyntaxId : byte
{
    /// <summary>A syntax id the codec does not name.</summary>
    Other = 0,
    /// <summary>10: S7ANY, the only one the codec decodes (area, DB, address, count).</summary>
    S7Any,
    /// <summary>B0: DB read of S7-400 (DBREAD).</summary>
    DbRead,
    /// <summary>82: NCK (Sinumerik) address.</summary>
    Nck,
    /// <summary>A2: DRIVEESANY (drive parameters).</summary>
    DriveEsAny,
    /// <summary>B2: S7-1200 symbolic addressing (1200SYM).</summary>
    Symbolic1200,
    /// <summary>13: SHORT-PDU request (some S7-200/LOGO).</summary>
    ShortPdu,
}

/// <summary>How written bytes are read as values (DESIGN.md <c>type:</c>); S7 stores big-endian.</summary>
#pragma warning disable CA1720 // the names are the policy's type words
public enum S7ValueType : byte
{
    Int16 = 0,
    UInt16,
    Int32,
    UInt32,
    Float32,
}
#pragma warning restore CA1720

/// <summary>
/// One read-var or write-var item, viewed in place: its address specification and, for write-var,
/// the data block written to it.
/// </summary>
/// <remarks>
/// <code>
///  12 | 0A | 10 | TS | count (2) | DB (2) | area | address (3)       S7ANY (syntax id 10)
///  12 | LL | syntax id | LL - 1 bytes                                other syntax ids
///  write data: return code | TS | length (2, bits for TS 03/04/05, else bytes) | data | fill if odd and not last
/// </code>
/// </remarks>
public readonly ref struct S7Item
{
    // The S7ANY fields, decoded once here: the parser, the policy and the answer's expectation each ask
    // them several times per item (issue 12: frame + parse + verdict within 100 ns).
    private readonly S7SyntaxId _syntax;
    private readonly byte _transportSize;
    private readonly byte _areaCode;
    private readonly ushort _count;
    private readonly ushort _dbNumber;
    private readonly int _address;

    internal S7Item(int index, ReadOnlySpan<byte> specification, ReadOnlySpan<byte> dataBlock, ReadOnlySpan<byte> data)
    {
        Index = index;
        Specification = specification;
        DataBlock = dataBlock;
        Data = data;
        _syntax = S7Items.Syntax(specification[2]);
        if (_syntax == S7SyntaxId.S7Any)
        {
            // The parser admits an S7ANY item only when it is exactly 12 bytes long.
            _transportSize = specification[3];
            _count = BinaryPrimitives.ReadUInt16BigEndian(specification[4..]);
            _dbNumber = BinaryPrimitives.ReadUInt16BigEndian(specification[6..]);
            _areaCode = specification[8];
            _address = (specification[9] << 16) | (specification[10] << 8) | specification[11];
        }
    }

    /// <summary>0-based position in the job.</summary>
    public int Index { get; }

    /// <summary>The item's bytes in the parameters, from 12 on.</summary>
    public ReadOnlySpan<byte> Specification { get; }

    /// <summary>Write-var: the item's data block from the return code on (without fill byte); empty otherwise.</summary>
    public ReadOnlySpan<byte> DataBlock { get; }

    /// <summary>Write-var: the bytes written; empty otherwise.</summary>
    public ReadOnlySpan<byte> Data { get; }

    /// <summary>The syntax id byte.</summary>
    public byte SyntaxIdCode => Specification[2];

    /// <summary>The syntax id by name.</summary>
    public S7SyntaxId Syntax => _syntax;

    private bool IsAny => _syntax == S7SyntaxId.S7Any;

    /// <summary>S7ANY: the item transport size (01 bit, 02 byte, 03 char, 04 word, 05 int, 06 dword, 07 dint, 08 real, 1C counter, 1D timer…).</summary>
    public byte TransportSize => _transportSize;

    /// <summary>S7ANY: the number of elements of <see cref="TransportSize"/>.</summary>
    public ushort Count => _count;

    /// <summary>S7ANY: the DB number (meaningful for areas DB and DI).</summary>
    public ushort DbNumber => _dbNumber;

    /// <summary>S7ANY: the area byte.</summary>
    public byte AreaCode => _areaCode;

    /// <summary>S7ANY: the area.</summary>
    public S7Area Area => S7Items.Area(AreaCode);

    /// <summary>S7ANY: the 24-bit address as sent (byte × 8 + bit; element number for counters and timers).</summary>
    public int Address => _address;

    /// <summary>S7ANY: true for counters and timers, whose address is an element number.</summary>
    public bool IsElementAddressed => IsAny && S7Items.IsElementArea(AreaCode);

    /// <summary>S7ANY: the byte offset (address / 8); the element number for counters and timers.</summary>
    public int ByteOffset => IsElementAddressed ? Address : Address >> 3;

    /// <summary>S7ANY: the bit number (address mod 8); 0 for counters and timers.</summary>
    public byte BitOffset => IsElementAddressed ? (byte)0 : (byte)(Address & 7);

    /// <summary>S7ANY: a bit item (transport size 01).</summary>
    public bool IsBit => IsAny && TransportSize == S7Items.TransportSizeBit;

    /// <summary>S7ANY: the bytes of one element (1 for bits, 2 for counters and timers); 0 when the transport size is unknown.</summary>
    public int ElementSize => IsAny ? S7Items.ElementSize(TransportSize, AreaCode) : 0;

    /// <summary>
    /// S7ANY: where the item's span starts: the byte offset, or the element number for counters and timers.
    /// This and <see cref="Length"/> are what a policy's <c>address</c> range must cover.
    /// </summary>
    public int Start => ByteOffset;

    /// <summary>
    /// S7ANY: the span's length: count × element size in bytes (a bit item covers the 1 byte that holds
    /// it); for counters and timers the count of elements.
    /// </summary>
    public int Length => !IsAny ? 0 : IsElementAddressed ? Count : IsBit ? 1 : Count * ElementSize;

    /// <summary>S7ANY: the bytes the item reads or writes on the wire (count × element size; 1 for a bit).</summary>
    public int ByteLength => !IsAny ? 0 : IsBit ? 1 : Count * ElementSize;

    /// <summary>Write-var: the data block's return code (00 in a request).</summary>
    public byte DataReturnCode => DataBlock.IsEmpty ? (byte)0 : DataBlock[0];

    /// <summary>Write-var: the data transport size (03 bit, 04 byte/word/dword, 05 integer, 06 dinteger, 07 real, 09 octet string).</summary>
    public byte DataTransportSize => DataBlock.IsEmpty ? (byte)0 : DataBlock[1];

    /// <summary>The bytes of one value of <paramref name="type"/>.</summary>
    public static int ValueSize(S7ValueType type) => type is S7ValueType.Int16 or S7ValueType.UInt16 ? 2 : 4;

    /// <summary>Write-var: how many whole values of <paramref name="type"/> the data holds.</summary>
    public int ValueCount(S7ValueType type) => Data.Length / ValueSize(type);

    /// <summary>Write-var: the written value at <paramref name="index"/>, read big-endian as <paramref name="type"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The index is not below <see cref="ValueCount"/> (a programming fault).</exception>
    public double ReadValue(S7ValueType type, int index)
    {
        int size = ValueSize(type);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, ValueCount(type));
        var bytes = Data.Slice(index * size, size);
        // Every arm is double: a switch expression's common type would otherwise be float and round int32/uint32.
        return type switch
        {
            S7ValueType.Int16 => (double)BinaryPrimitives.ReadInt16BigEndian(bytes),
            S7ValueType.UInt16 => (double)BinaryPrimitives.ReadUInt16BigEndian(bytes),
            S7ValueType.Int32 => (double)BinaryPrimitives.ReadInt32BigEndian(bytes),
            S7ValueType.UInt32 => (double)BinaryPrimitives.ReadUInt32BigEndian(bytes),
            _ => (double)BinaryPrimitives.ReadSingleBigEndian(bytes),
        };
    }
}

/// <summary>Item facts shared by the request parser and the response check.</summary>
public static class S7Items
{
    public const byte VariableSpecification = 0x12;
    public const byte SyntaxIdS7Any = 0x10;
    public const byte TransportSizeBit = 0x01;

    /// <summary>Write-var / read response item return code: success.</summary>
    public const byte ReturnSuccess = 0xFF;
    /// <summary>Item return code 01: hardware fault.</summary>
    public const byte ReturnHardwareFault = 0x01;
    /// <summary>Item return code 03: object access not allowed.</summary>
    public const byte ReturnAccessNotAllowed = 0x03;
    /// <summary>Item return code 05: address out of range.</summary>
    public const byte ReturnAddressOutOfRange = 0x05;
    /// <summary>Item return code 06: data type not supported.</summary>
    public const byte ReturnTypeNotSupported = 0x06;
    /// <summary>Item return code 07: data type inconsistent.</summary>
    public const byte ReturnTypeInconsistent = 0x07;
    /// <summary>Item return code 0A: object does not exist.</summary>
    public const byte ReturnObjectDoesNotExist = 0x0A;

    /// <summary>The syntax id by name.</summary>
    public static S7SyntaxId Syntax(byte code) => code switch
    {
        0x10 => S7SyntaxId.S7Any,
        0xB0 => S7SyntaxId.DbRead,
        0x82 => S7SyntaxId.Nck,
        0xA2 => S7SyntaxId.DriveEsAny,
        0xB2 => S7SyntaxId.Symbolic1200,
        0x13 => S7SyntaxId.ShortPdu,
        _ => S7SyntaxId.Other,
    };

    /// <summary>The area of an area byte.</summary>
    public static S7Area Area(byte code) => code switch
    {
        0x03 => S7Area.SystemInfo200,
        0x05 => S7Area.SystemFlags200,
        0x06 => S7Area.AnalogInputs200,
        0x07 => S7Area.AnalogOutputs200,
        0x1C => S7Area.Counters,
        0x1D => S7Area.Timers,
        0x1E => S7Area.IecCounters,
        0x1F => S7Area.IecTimers,
        0x80 => S7Area.Peripheral,
        0x81 => S7Area.Inputs,
        0x82 => S7Area.Outputs,
        0x83 => S7Area.Flags,
        0x84 => S7Area.DataBlocks,
        0x85 => S7Area.InstanceDataBlocks,
        0x86 => S7Area.Local,
        0x87 => S7Area.PreviousLocal,
        _ => S7Area.Unknown,
    };

    /// <summary>Counters and timers are addressed by element number, not byte × 8 + bit.</summary>
    public static bool IsElementArea(byte area) => area is 0x1C or 0x1D or 0x1E or 0x1F;

    /// <summary>
    /// Bytes per element of an item transport size (Wireshark <c>item_transportsizenames</c>, snap7
    /// <c>DataSizeByte</c>); counters and timers are 2 bytes; 0 when unknown.
    /// </summary>
    public static int ElementSize(byte transportSize, byte area)
    {
        if (IsElementArea(area))
        {
            return 2;
        }
        return transportSize switch
        {
            0x01 or 0x02 or 0x03 => 1,            // BIT, BYTE, CHAR
            0x04 or 0x05 or 0x09 or 0x0C => 2,    // WORD, INT, DATE, S5TIME
            0x06 or 0x07 or 0x08 or 0x0A or 0x0B => 4, // DWORD, DINT, REAL, TOD, TIME
            0x0F => 8,                            // DATE_AND_TIME
            0x1C or 0x1D => 2,                    // COUNTER, TIMER
            _ => 0,
        };
    }

    /// <summary>
    /// The bytes of a data block whose header says <paramref name="length"/> in the unit of data
    /// transport size <paramref name="dataTransportSize"/>: bits for 03, 04 and 05 (rounded up), bytes otherwise.
    /// </summary>
    public static int DataByteLength(byte dataTransportSize, int length) =>
        dataTransportSize is 0x03 or 0x04 or 0x05 ? (length + 7) / 8 : length;

    /// <summary>Whether a data transport size is one Wireshark names (00 null, 03, 04, 05, 06, 07, 09, 11, 12).</summary>
    public static bool IsKnownDataTransportSize(byte dataTransportSize) =>
        dataTransportSize is 0x00 or 0x03 or 0x04 or 0x05 or 0x06 or 0x07 or 0x09 or 0x11 or 0x12;
}
