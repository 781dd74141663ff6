using System.Buffers.Binary;

namespace EdgeShield.Protocols.S7comm;

/// <summary>The outcome of decoding a job or userdata PDU.</summary>
public enum S7RequestStatus : byte
{
    /// <summary>The structure does not hold together: never forwarded; the connection is closed.</summary>
    Malformed = 0,
    /// <summary>Well formed and within what the codec knows.</summary>
    Ok,
    /// <summary>Well formed, but a function, transport size, area or length is outside the protocol: refused, never forwarded.</summary>
    OutOfSpec,
}

/// <summary>Why a request is <see cref="S7RequestStatus.Malformed"/> or <see cref="S7RequestStatus.OutOfSpec"/>.</summary>
public enum S7RequestError : byte
{
    None = 0,
    // Malformed
    /// <summary>The header does not hold together (<see cref="S7Request.HeaderError"/> says how).</summary>
    HeaderInvalid,
    /// <summary>An Ack or Ack_Data where a job or userdata was expected.</summary>
    NotARequest,
    /// <summary>A job with no parameters (no function byte).</summary>
    ParametersEmpty,
    /// <summary>Setup communication whose parameters are not 8 bytes, or that carries data.</summary>
    SetupLengthInvalid,
    /// <summary>Read/write-var parameters shorter than function and item count.</summary>
    ItemCountMissing,
    /// <summary>An item that does not start with 12, or whose length runs past the parameters, or an S7ANY item not 12 bytes long.</summary>
    ItemSpecificationInvalid,
    /// <summary>Parameter bytes left after the last item.</summary>
    ParametersTrailing,
    /// <summary>Data in a read-var (which carries none).</summary>
    UnexpectedData,
    /// <summary>A write-var data block that runs past the data, or a data block missing.</summary>
    DataBlockInvalid,
    /// <summary>Data bytes left after the last write-var data block.</summary>
    DataTrailing,
    /// <summary>A plc-control or plc-stop whose service name does not fit its parameters exactly.</summary>
    PiServiceInvalid,
    /// <summary>Userdata parameters that are not <c>00 01 12</c>, length 4 or 8, with the length agreeing.</summary>
    UserdataHeadInvalid,
    /// <summary>Userdata data whose return code, transport size and length do not cover it exactly.</summary>
    UserdataDataInvalid,
    // OutOfSpec
    /// <summary>A job function code or userdata group/subfunction the codec does not know.</summary>
    UnknownFunction,
    /// <summary>Read/write-var with item count 0.</summary>
    NoItems,
    /// <summary>An S7ANY item with count 0.</summary>
    ZeroCount,
    /// <summary>An S7ANY item with a transport size the codec does not know.</summary>
    UnknownTransportSize,
    /// <summary>An S7ANY item with an area the codec does not know.</summary>
    UnknownArea,
    /// <summary>A bit item with a count other than 1, or a byte-addressed non-bit item with a bit number.</summary>
    BitAddressInvalid,
    /// <summary>A write-var data block whose length is not the item's byte length, or whose transport size is unknown.</summary>
    WriteLengthMismatch,
    /// <summary>Setup communication asking for PDU size 0 or AmQ 0.</summary>
    SetupValueZero,
}

/// <summary>The userdata type (high nibble of the type/group byte).</summary>
public enum S7UserdataType : byte
{
    /// <summary>0: a push from the PLC (cyclic data, alarms).</summary>
    Push = 0,
    /// <summary>4: request.</summary>
    Request = 4,
    /// <summary>8: response.</summary>
    Response = 8,
    /// <summary>Another nibble.</summary>
    Unknown = 0xFF,
}

/// <summary>
/// A decoded job (ROSCTR 1) or userdata (ROSCTR 7) PDU, viewed in place; or an S7comm-Plus PDU,
/// classified as <see cref="S7Function.S7commPlus"/>. What the policy sees: the function, the items
/// (area, DB, byte span, written values), the PI service, the setup values and the userdata group.
/// </summary>
public readonly ref struct S7Request
{
    /// <summary>The PDU.</summary>
    public ReadOnlySpan<byte> Pdu { get; init; }

    /// <summary>The header view.</summary>
    public S7Header Header => S7Pdu.ParseHeader(Pdu);

    public S7RequestStatus Status { get; init; }

    /// <summary>Set when <see cref="Status"/> is not <see cref="S7RequestStatus.Ok"/>.</summary>
    public S7RequestError Error { get; init; }

    /// <summary>Set when <see cref="Error"/> is <see cref="S7RequestError.HeaderInvalid"/>.</summary>
    public S7HeaderError HeaderError { get; init; }

    public S7Protocol Protocol { get; init; }

    public S7Rosctr Rosctr { get; init; }

    /// <summary>The PDU reference.</summary>
    public ushort Reference { get; init; }

    public S7Function Function { get; init; }

    /// <summary>Jobs: the function byte. Userdata: the function group (0..F).</summary>
    public byte FunctionCode { get; init; }

    /// <summary>Read/write-var: the item count.</summary>
    public byte ItemCount { get; init; }

    /// <summary>Read/write-var: true when an item has a syntax id other than S7ANY (a policy refuses those by name).</summary>
    public bool HasNonS7AnyItems { get; init; }

    /// <summary>Read/write-var: the total of the S7ANY items' byte lengths.</summary>
    public int TotalItemBytes { get; init; }

    /// <summary>Read/write-var: the largest item's byte length (65535 for an item that is not S7ANY), from the one walk at parse.</summary>
    internal int LargestItemBytes { get; init; }

    /// <summary>Read-var: the most its Ack_Data's data part may hold (each item's header, data and fill byte), from the one walk at parse.</summary>
    internal int ReadAnswerBytes { get; init; }

    /// <summary>Setup communication: max AmQ calling.</summary>
    public ushort AmqCalling { get; init; }

    /// <summary>Setup communication: max AmQ called.</summary>
    public ushort AmqCalled { get; init; }

    /// <summary>Setup communication: the PDU size asked for.</summary>
    public ushort PduSize { get; init; }

    /// <summary>Plc-control and plc-stop: the PI service name as sent (ASCII, e.g. <c>_INSE</c>, <c>P_PROGRAM</c>).</summary>
    public ReadOnlySpan<byte> PiService { get; init; }

    /// <summary>Plc-control: the PI parameter block (e.g. the block list of <c>_INSE</c>).</summary>
    public ReadOnlySpan<byte> PiParameters { get; init; }

    /// <summary>Userdata: request, response or push.</summary>
    public S7UserdataType UserdataType { get; init; }

    /// <summary>Userdata: the function group (0..F).</summary>
    public byte UserdataGroup { get; init; }

    /// <summary>Userdata: the subfunction.</summary>
    public byte Subfunction { get; init; }

    /// <summary>Userdata: the sequence number.</summary>
    public byte SequenceNumber { get; init; }

    /// <summary>Userdata with an 8-byte parameter tail: the data unit reference.</summary>
    public byte DataUnitReference { get; init; }

    /// <summary>Userdata with an 8-byte parameter tail: the last-data-unit byte (00 last, 01 more follow).</summary>
    public byte LastDataUnit { get; init; }

    /// <summary>Userdata with an 8-byte parameter tail: the error code (0 none; D0A1, 8104, 8703…).</summary>
    public ushort UserdataErrorCode { get; init; }

    /// <summary>Userdata: the data after its 4-byte head (return code, transport size, length).</summary>
    public ReadOnlySpan<byte> UserdataPayload { get; init; }

    /// <summary>
    /// Read/write-var: the items in order, with their data blocks for write-var. Empty when the request
    /// is malformed. <c>foreach (var item in request.Items)</c> allocates nothing.
    /// </summary>
    public S7ItemEnumerator Items => Status != S7RequestStatus.Malformed && Function is S7Function.ReadVar or S7Function.WriteVar
        ? new S7ItemEnumerator(ItemParameters, ItemData, ItemCount, Function == S7Function.WriteVar)
        : default;

    /// <summary>Read/write-var: the parameter block (function code, item count, items), kept so that walking the items again does not parse the header again.</summary>
    internal ReadOnlySpan<byte> ItemParameters { get; init; }

    /// <summary>Read/write-var: the data part (write-var's data blocks).</summary>
    internal ReadOnlySpan<byte> ItemData { get; init; }

    /// <summary>Whether <see cref="PiService"/> is <paramref name="name"/> (ASCII), e.g. <c>"P_PROGRAM"u8</c>.</summary>
    public bool PiServiceIs(ReadOnlySpan<byte> name) => PiService.SequenceEqual(name);

    /// <summary>What the answer to this request must look like (see <see cref="S7Expectation.For"/>).</summary>
    public S7Expectation Expectation(int negotiatedPduSize) => S7Expectation.For(this, negotiatedPduSize);
}

/// <summary>Walks read-var/write-var items and, for write-var, their data blocks, without allocating.</summary>
public ref struct S7ItemEnumerator
{
    private ReadOnlySpan<byte> _items;
    private ReadOnlySpan<byte> _data;
    private readonly int _count;
    private readonly bool _write;
    private int _index;
    private S7Item _current;

    internal S7ItemEnumerator(ReadOnlySpan<byte> parameters, ReadOnlySpan<byte> data, int count, bool write)
    {
        _items = parameters.Length >= 2 ? parameters[2..] : default;
        _data = data;
        _count = count;
        _write = write;
        _index = 0;
        _current = default;
    }

    /// <summary>The item the last <see cref="MoveNext"/> reached.</summary>
    public readonly S7Item Current => _current;

    /// <summary>Enables <c>foreach</c>.</summary>
    public readonly S7ItemEnumerator GetEnumerator() => this;

    /// <summary>Moves to the next item; false after the last, or at the first that does not hold together.</summary>
    public bool MoveNext()
    {
        if (_index >= _count)
        {
            return false;
        }
        var items = _items;
        var data = _data;
        if (S7Pdu.ReadItem(ref items, ref data, _write, _index, _index == _count - 1, out var item) != S7RequestError.None)
        {
            _index = _count;
            return false;
        }
        _items = items;
        _data = data;
        _current = item;
        _index++;
        return true;
    }
}

public static partial class S7Pdu
{
    /// <summary>
    /// Decodes a job or userdata PDU (a whole, reassembled S7 PDU). Never throws: bytes that do not hold
    /// together give <see cref="S7RequestStatus.Malformed"/> with a reason. An S7comm-Plus PDU gives
    /// <see cref="S7Function.S7commPlus"/> (Ok when its header holds together).
    /// </summary>
    public static S7Request ParseRequest(ReadOnlySpan<byte> pdu)
    {
        var header = ParseHeader(pdu);
        if (!header.IsValid)
        {
            return new S7Request { Pdu = pdu, Protocol = header.Protocol, Error = S7RequestError.HeaderInvalid, HeaderError = header.Error };
        }
        if (header.Protocol == S7Protocol.S7commPlus)
        {
            return new S7Request { Pdu = pdu, Protocol = S7Protocol.S7commPlus, Status = S7RequestStatus.Ok, Function = S7Function.S7commPlus };
        }
        var rosctr = header.Rosctr;
        if (rosctr is not (S7Rosctr.Job or S7Rosctr.Userdata))
        {
            return new S7Request { Pdu = pdu, Protocol = S7Protocol.S7comm, Rosctr = rosctr, Reference = header.Reference, Error = S7RequestError.NotARequest };
        }
        return rosctr == S7Rosctr.Job ? ParseJob(header) : ParseUserdata(header);
    }

    private static S7Request ParseJob(S7Header header)
    {
        var parameters = header.Parameters;
        var data = header.Data;
        if (parameters.IsEmpty)
        {
            return new S7Request
            {
                Pdu = header.Pdu, Protocol = S7Protocol.S7comm, Rosctr = S7Rosctr.Job, Reference = header.Reference,
                Error = S7RequestError.ParametersEmpty,
            };
        }
        byte code = parameters[0];
        var function = S7Functions.FromJobCode(code);
        if (function is S7Function.ReadVar or S7Function.WriteVar)
        {
            // The hot path (every HMI poll): the request is built once, not copied field by field.
            return ParseItems(header, function, code);
        }
        var request = new S7Request
        {
            Pdu = header.Pdu, Protocol = S7Protocol.S7comm, Rosctr = S7Rosctr.Job, Reference = header.Reference,
            Function = function, FunctionCode = code,
        };
        switch (function)
        {
            case S7Function.SetupCommunication:
                // | F0 | reserved | AmQ calling (2) | AmQ called (2) | PDU size (2) |
                if (parameters.Length != S7Limits.SetupParameterLength || !data.IsEmpty)
                {
                    return request with { Error = S7RequestError.SetupLengthInvalid };
                }
                request = request with
                {
                    AmqCalling = BinaryPrimitives.ReadUInt16BigEndian(parameters[2..]),
                    AmqCalled = BinaryPrimitives.ReadUInt16BigEndian(parameters[4..]),
                    PduSize = BinaryPrimitives.ReadUInt16BigEndian(parameters[6..]),
                };
                return request.AmqCalling == 0 || request.AmqCalled == 0 || request.PduSize == 0
                    ? request with { Status = S7RequestStatus.OutOfSpec, Error = S7RequestError.SetupValueZero }
                    : request with { Status = S7RequestStatus.Ok };
            case S7Function.PlcControl:
                return ParsePiService(header, request);
            case S7Function.PlcStop:
                return ParsePlcStop(header, request);
            case S7Function.Unknown:
                return request with { Status = S7RequestStatus.OutOfSpec, Error = S7RequestError.UnknownFunction };
            default:
                // cpu-services and the download/upload family: the function byte is what the policy judges.
                return request with { Status = S7RequestStatus.Ok };
        }
    }

    private static S7Request ParseItems(S7Header header, S7Function function, byte code)
    {
        bool write = function == S7Function.WriteVar;
        var (status, error, count, nonAny, total, largest, answer) = ReadItems(header, write);
        return new S7Request
        {
            Pdu = header.Pdu,
            Protocol = S7Protocol.S7comm,
            Rosctr = S7Rosctr.Job,
            Reference = header.Reference,
            Function = function,
            FunctionCode = code,
            ItemCount = (byte)count,
            HasNonS7AnyItems = nonAny,
            TotalItemBytes = total,
            LargestItemBytes = largest,
            ReadAnswerBytes = answer,
            Status = status,
            Error = error,
            ItemParameters = header.Parameters,
            ItemData = header.Data,
        };
    }

    /// <summary>Walks the items of a read-var or write-var job once: their structure, their S7ANY fields, their byte total.</summary>
    private static (S7RequestStatus Status, S7RequestError Error, int Count, bool NonAny, int Total, int Largest, int Answer) ReadItems(S7Header header, bool write)
    {
        var parameters = header.Parameters;
        if (parameters.Length < 2)
        {
            return (S7RequestStatus.Malformed, S7RequestError.ItemCountMissing, 0, false, 0, 0, 0);
        }
        if (!write && !header.Data.IsEmpty)
        {
            return (S7RequestStatus.Malformed, S7RequestError.UnexpectedData, 0, false, 0, 0, 0);
        }
        int count = parameters[1];
        var items = parameters[2..];
        var data = header.Data;
        var outOfSpec = S7RequestError.None;
        bool nonAny = false;
        int total = 0;
        // What a read-var's Ack_Data may hold: its largest item and all of them with their headers and fill bytes.
        int largest = 0;
        int answer = 0;
        for (int i = 0; i < count; i++)
        {
            var error = ReadItem(ref items, ref data, write, i, i == count - 1, out var item);
            if (error != S7RequestError.None)
            {
                return (S7RequestStatus.Malformed, error, count, false, 0, 0, 0);
            }
            int bytes = item.Syntax == S7SyntaxId.S7Any ? item.ByteLength : ushort.MaxValue;
            largest = Math.Max(largest, bytes);
            answer += S7Limits.DataItemHeaderLength + bytes + (bytes & 1);
            if (item.Syntax != S7SyntaxId.S7Any)
            {
                nonAny = true;
            }
            else
            {
                total += item.ByteLength;
                if (outOfSpec == S7RequestError.None)
                {
                    outOfSpec = CheckAnyItem(item, write);
                }
            }
        }
        if (!items.IsEmpty)
        {
            return (S7RequestStatus.Malformed, S7RequestError.ParametersTrailing, count, false, 0, 0, 0);
        }
        if (!data.IsEmpty)
        {
            return (S7RequestStatus.Malformed, S7RequestError.DataTrailing, count, false, 0, 0, 0);
        }
        if (count == 0)
        {
            outOfSpec = S7RequestError.NoItems;
        }
        return (outOfSpec == S7RequestError.None ? S7RequestStatus.Ok : S7RequestStatus.OutOfSpec, outOfSpec, count, nonAny, total, largest, answer);
    }

    private static S7RequestError CheckAnyItem(in S7Item item, bool write)
    {
        if (item.Area == S7Area.Unknown)
        {
            return S7RequestError.UnknownArea;
        }
        if (item.ElementSize == 0)
        {
            return S7RequestError.UnknownTransportSize;
        }
        if (item.Count == 0)
        {
            return S7RequestError.ZeroCount;
        }
        if ((item.IsBit && item.Count != 1) || (!item.IsBit && !item.IsElementAddressed && item.BitOffset != 0))
        {
            return S7RequestError.BitAddressInvalid;
        }
        if (write && (item.Data.Length != item.ByteLength || !S7Items.IsKnownDataTransportSize(item.DataTransportSize)))
        {
            return S7RequestError.WriteLengthMismatch;
        }
        return S7RequestError.None;
    }

    /// <summary>
    /// Reads one item from <paramref name="items"/> and, for write-var, its data block from
    /// <paramref name="data"/>; advances both. Structure only: the values are judged by the caller.
    /// </summary>
    internal static S7RequestError ReadItem(scoped ref ReadOnlySpan<byte> items, scoped ref ReadOnlySpan<byte> data, bool write, int index, bool last, out S7Item item)
    {
        item = default;
        // | 12 | L | syntax id | L - 1 bytes |
        if (items.Length < 3 || items[0] != S7Items.VariableSpecification || items[1] < 1 || 2 + items[1] > items.Length)
        {
            return S7RequestError.ItemSpecificationInvalid;
        }
        var specification = items[..(2 + items[1])];
        if (specification[2] == S7Items.SyntaxIdS7Any && specification.Length != S7Limits.S7AnyItemLength)
        {
            return S7RequestError.ItemSpecificationInvalid;
        }
        items = items[specification.Length..];
        ReadOnlySpan<byte> block = default;
        ReadOnlySpan<byte> value = default;
        if (write)
        {
            // | return code | transport size | length (2) | data | fill byte after an odd length, except the last |
            if (data.Length < S7Limits.DataItemHeaderLength)
            {
                return S7RequestError.DataBlockInvalid;
            }
            int length = S7Items.DataByteLength(data[1], BinaryPrimitives.ReadUInt16BigEndian(data[2..]));
            if (S7Limits.DataItemHeaderLength + length > data.Length)
            {
                return S7RequestError.DataBlockInvalid;
            }
            block = data[..(S7Limits.DataItemHeaderLength + length)];
            value = block[S7Limits.DataItemHeaderLength..];
            int consumed = block.Length;
            if (!last && (length & 1) != 0)
            {
                if (consumed >= data.Length)
                {
                    return S7RequestError.DataBlockInvalid;
                }
                consumed++;
            }
            data = data[consumed..];
        }
        item = new S7Item(index, specification, block, value);
        return S7RequestError.None;
    }

    private static S7Request ParsePiService(S7Header header, S7Request request)
    {
        // | 28 | 7 bytes (unknown, ends FD) | parameter block length (2) | parameter block | name length | name |
        var parameters = header.Parameters;
        if (parameters.Length < 11)
        {
            return request with { Error = S7RequestError.PiServiceInvalid };
        }
        int blockLength = BinaryPrimitives.ReadUInt16BigEndian(parameters[8..]);
        if (10 + blockLength + 1 > parameters.Length)
        {
            return request with { Error = S7RequestError.PiServiceInvalid };
        }
        var block = parameters.Slice(10, blockLength);
        int nameLength = parameters[10 + blockLength];
        if (10 + blockLength + 1 + nameLength != parameters.Length || nameLength == 0)
        {
            return request with { Error = S7RequestError.PiServiceInvalid };
        }
        return request with { Status = S7RequestStatus.Ok, PiParameters = block, PiService = parameters.Slice(11 + blockLength, nameLength) };
    }

    private static S7Request ParsePlcStop(S7Header header, S7Request request)
    {
        // | 29 | 5 bytes (unknown) | name length | name (P_PROGRAM) |
        var parameters = header.Parameters;
        if (parameters.Length < 7 || 7 + parameters[6] != parameters.Length)
        {
            return request with { Error = S7RequestError.PiServiceInvalid };
        }
        return request with { Status = S7RequestStatus.Ok, PiService = parameters[7..] };
    }

    private static S7Request ParseUserdata(S7Header header)
    {
        // | 00 01 12 | L (4 or 8) | method (11 request, 12 response) | type (high) / group (low) | subfunction | sequence |
        //   [ data unit ref | last data unit | error code (2) ]   (when L = 8)
        // data: | return code | transport size | length (2) | … |
        var parameters = header.Parameters;
        var request = new S7Request { Pdu = header.Pdu, Protocol = S7Protocol.S7comm, Rosctr = S7Rosctr.Userdata, Reference = header.Reference };
        if (parameters.Length < 8 || parameters[0] != 0x00 || parameters[1] != 0x01 || parameters[2] != 0x12
            || parameters[3] is not (4 or 8) || parameters.Length != 4 + parameters[3])
        {
            return request with { Error = S7RequestError.UserdataHeadInvalid };
        }
        byte typeGroup = parameters[5];
        var type = (typeGroup >> 4) switch
        {
            0 => S7UserdataType.Push,
            4 => S7UserdataType.Request,
            8 => S7UserdataType.Response,
            _ => S7UserdataType.Unknown,
        };
        byte group = (byte)(typeGroup & 0x0F);
        byte subfunction = parameters[6];
        var function = S7Functions.FromUserdata(group, subfunction);
        request = request with
        {
            Function = function,
            FunctionCode = group,
            UserdataType = type,
            UserdataGroup = group,
            Subfunction = subfunction,
            SequenceNumber = parameters[7],
        };
        if (parameters[3] == 8)
        {
            request = request with
            {
                DataUnitReference = parameters[8],
                LastDataUnit = parameters[9],
                UserdataErrorCode = BinaryPrimitives.ReadUInt16BigEndian(parameters[10..]),
            };
        }
        var data = header.Data;
        if (!data.IsEmpty)
        {
            if (data.Length < S7Limits.DataItemHeaderLength
                || S7Limits.DataItemHeaderLength + S7Items.DataByteLength(data[1], BinaryPrimitives.ReadUInt16BigEndian(data[2..])) != data.Length)
            {
                return request with { Error = S7RequestError.UserdataDataInvalid };
            }
            request = request with { UserdataPayload = data[S7Limits.DataItemHeaderLength..] };
        }
        return function == S7Function.Unknown || type == S7UserdataType.Unknown
            ? request with { Status = S7RequestStatus.OutOfSpec, Error = S7RequestError.UnknownFunction }
            : request with { Status = S7RequestStatus.Ok };
    }
}
