namespace EdgeShield.Policy;

/// <summary><c>telemetry:</c> (DESIGN.md): what the poller reads and where the publisher sends it.</summary>
public sealed record TelemetryConfig
{
    public required MqttConfig Mqtt { get; init; }
    public TelemetryFormat Format { get; init; } = TelemetryFormat.Json;
    public BufferConfig Buffer { get; init; } = new();
    public IReadOnlyList<PollConfig> Poll { get; init; } = [];
}

/// <summary>Payload format on the broker.</summary>
public enum TelemetryFormat : byte
{
    Json = 0,
    SparkplugB,
}

/// <summary><c>telemetry.mqtt</c>.</summary>
public sealed record MqttConfig
{
    /// <summary><c>mqtt://HOST:PORT</c> or <c>mqtts://HOST:PORT</c>.</summary>
    public required Uri Broker { get; init; }
    public bool UseTls => Broker.Scheme == "mqtts";
    public string Host => Broker.Host;
    /// <summary>The URL's port, or 1883 / 8883 by scheme.</summary>
    public int Port => Broker.IsDefaultPort || Broker.Port <= 0 ? (UseTls ? 8883 : 1883) : Broker.Port;
    public string ClientId { get; init; } = "";
    public string TopicPrefix { get; init; } = "";
    public string? TlsCaFile { get; init; }
    public string? TlsCertFile { get; init; }
    public string? TlsKeyFile { get; init; }
    public string? Username { get; init; }
    /// <summary>A file holding the password (first line); never the password itself in the config.</summary>
    public string? PasswordFile { get; init; }
}

/// <summary><c>telemetry.buffer</c>: the store-and-forward directory.</summary>
public sealed record BufferConfig
{
    public string Path { get; init; } = "/var/lib/edgeshield/buffer";
    public int MaxMb { get; init; } = 64;
}

/// <summary>One entry of <c>telemetry.poll</c>: a device read on a schedule.</summary>
public sealed record PollConfig
{
    public required string Device { get; init; }
    public required UpstreamAddress Upstream { get; init; }
    public byte Unit { get; init; } = 1;
    public TimeSpan Every { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>
    /// <c>max-gap</c>: how many unused registers (or bits) a read may span to join two tags into one
    /// request. 0 (the default) joins only adjacent or overlapping tags, so nothing the config does
    /// not name is ever read.
    /// </summary>
    public int MaxGap { get; init; }
    public IReadOnlyList<TagConfig> Tags { get; init; } = [];
    /// <summary><c>protocol:</c> how the device is read: Modbus (the default) or S7comm.</summary>
    public PollProtocol Protocol { get; init; }
    /// <summary>The S7 connection of a <c>protocol: s7comm</c> entry; null for Modbus.</summary>
    public S7PollConnection? S7 { get; init; }
    /// <summary><c>ca:</c> the common address (ASDU address) of a <c>protocol: iec104</c> entry's station, 1..65534; 0 otherwise.</summary>
    public ushort CommonAddress { get; init; }

    /// <summary>
    /// <c>station-time:</c> of a <c>protocol: iec104</c> entry. Null (<c>utc</c>, the default): the station's CP56Time2a time
    /// tags are UTC. Otherwise the UTC offset of the station's standard time: it sends local time, one hour later when it
    /// sets SU (summer time), and the poller subtracts both.
    /// </summary>
    public TimeSpan? StationTimeOffset { get; init; }

    /// <summary>
    /// How many <see cref="Every"/> periods lie between two station interrogations of an IEC 104 entry (besides the one
    /// after every (re)connect): 60, so <c>every: 1s</c> interrogates once a minute; spontaneous data is published as it arrives.
    /// </summary>
    public const int Iec104InterrogationPeriods = 60;

    /// <summary>The period of an IEC 104 entry's station interrogations: <see cref="Iec104InterrogationPeriods"/> × <see cref="Every"/>.</summary>
    public TimeSpan InterrogationPeriod => Every * Iec104InterrogationPeriods;
}

/// <summary>The protocol a poll entry reads its device with.</summary>
public enum PollProtocol : byte
{
    /// <summary>Modbus TCP or RTU (the upstream says which): tags by table and address.</summary>
    Modbus = 0,
    /// <summary>Siemens S7comm over ISO-on-TCP: tags by S7 absolute address (<c>DB1.DBW2</c>, <c>M10.0</c>).</summary>
    S7comm,
    /// <summary>IEC 60870-5-104 as a controlling station: tags by information object address of one common address.</summary>
    Iec104,
}

/// <summary>
/// The COTP connect of an S7 poll entry: the calling (local) TSAP and the called (remote) TSAP, whose high
/// byte is the connection type (01 PG, 02 OP, 03 basic) and low byte rack × 32 + slot (docs/S7COMM.md).
/// </summary>
public sealed record S7PollConnection(ushort CallingTsap, ushort CalledTsap)
{
    /// <summary>The calling TSAP every S7 client library sends by default (snap7, Kepware, libnodave): 01.00.</summary>
    public const ushort DefaultCallingTsap = 0x0100;
    /// <summary>The connection type the poller asks for by default: 03, S7 basic (Kepware's "PC" link).</summary>
    public const byte DefaultConnectionType = 0x03;

    /// <summary>The called TSAP of a connection type and a CPU's rack and slot.</summary>
    public static ushort Tsap(byte connectionType, int rack, int slot) => (ushort)((connectionType << 8) | (rack << 5) | slot);
}

/// <summary>Where an S7 tag is: an area, a DB number (for DB), a byte offset, and for a bit tag the bit.</summary>
/// <param name="Area">The S7ANY area (I, Q, M, DB).</param>
/// <param name="Db">The data block number; 0 outside DBs.</param>
/// <param name="ByteOffset">The byte offset in the area.</param>
/// <param name="Bit">The bit 0..7 of a bit tag (<see cref="Size"/> 0).</param>
/// <param name="Size">Bytes the address names: 0 for a bit (X, or I0.1), 2 for W, 4 for D.</param>
public readonly record struct S7TagAddress(EdgeShield.Protocols.S7comm.S7Area Area, ushort Db, int ByteOffset, byte Bit, byte Size)
{
    public bool IsBit => Size == 0;
}

/// <summary>A Modbus table a tag can be read from. Every one of them has a read function (1, 2, 3, 4) and only that is used.</summary>
public enum TagTable : byte
{
    Coil = 1,
    DiscreteInput = 2,
    Holding = 3,
    Input = 4,
}

/// <summary>A tag's value type on the wire.</summary>
// CA1720: the members are the config's own words for wire types (type: int16, …), not identifiers that hide .NET types.
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "The config's wire type names")]
public enum TagType : byte
{
    Bool = 0,
    Int16,
    UInt16,
    Int32,
    UInt32,
    Float32,
    Int64,
    UInt64,
    Float64,
    /// <summary>One byte, 0..255: an S7 byte address (DBB, MB, IB, QB); Modbus has no 8-bit tag.</summary>
    UInt8,
    /// <summary>One byte, -128..127 (S7 SINT).</summary>
    Int8,
}

/// <summary>
/// Order of the 16-bit words of a multi-word value, named by the bytes of the big-endian value
/// <c>ABCD</c> (or <c>ABCDEFGH</c>) as they arrive. <c>abcd</c>: big-endian (the Modbus default);
/// <c>cdab</c>: words swapped (low word first); <c>badc</c>: bytes swapped within each word;
/// <c>dcba</c>: fully little-endian.
/// </summary>
public enum WordOrder : byte
{
    Abcd = 0,
    Cdab,
    Badc,
    Dcba,
}

/// <summary>Decoding of multi-word values, shared by telemetry tags and typed rule values (<c>type:</c>, <c>word-order:</c>).</summary>
public static class WordOrdering
{
    /// <summary>
    /// Puts the received bytes into big-endian (abcd) order. Names follow the bytes of the value
    /// as they arrive: cdab = words swapped, badc = bytes swapped in each word, dcba = reversed.
    /// For 64-bit values the same rule applies to four words (cdab: the word order is reversed).
    /// Allocates nothing; <paramref name="destination"/> must be as long as <paramref name="source"/>.
    /// </summary>
    public static void ToBigEndian(ReadOnlySpan<byte> source, Span<byte> destination, WordOrder order)
    {
        int n = source.Length;
        int wordCount = n / 2;
        for (int w = 0; w < wordCount; w++)
        {
            int from = order is WordOrder.Cdab or WordOrder.Dcba ? wordCount - 1 - w : w;
            bool swapBytes = order is WordOrder.Badc or WordOrder.Dcba;
            destination[(w * 2) + 0] = swapBytes ? source[(from * 2) + 1] : source[from * 2];
            destination[(w * 2) + 1] = swapBytes ? source[from * 2] : source[(from * 2) + 1];
        }
    }
}

/// <summary>One tag of a poll entry. The value published is <c>raw × scale + offset</c>.</summary>
public sealed record TagConfig
{
    public required string Name { get; init; }
    /// <summary>The Modbus table; 0 for an S7 tag (<see cref="S7"/> says where it is).</summary>
    public TagTable Table { get; init; }
    /// <summary>The Modbus wire address; 0 for an S7 tag.</summary>
    public ushort Address { get; init; }
    /// <summary>An S7 tag's address; null for a Modbus tag.</summary>
    public S7TagAddress? S7 { get; init; }
    /// <summary>An IEC 104 tag's information object address (0..16777215); null for other protocols.</summary>
    public uint? Ioa { get; init; }
    /// <summary>
    /// An IEC 104 tag's expected monitor type, as its untimed form (1 M_SP_NA_1, 3 M_DP_NA_1, 13 M_ME_NC_1 …; the
    /// time-tagged form 30-37 of the same kind is accepted too); 0 = any type the station sends at <see cref="Ioa"/>.
    /// </summary>
    public byte Iec104Type { get; init; }
    public TagType Type { get; init; }
    public WordOrder WordOrder { get; init; }
    public double Scale { get; init; } = 1;
    public double Offset { get; init; }
    public string? Unit { get; init; }

    /// <summary>Registers (or bits, for bit tables) the tag occupies.</summary>
    public int Width => Type switch
    {
        TagType.Bool => 1,
        TagType.Int16 or TagType.UInt16 => 1,
        TagType.Int32 or TagType.UInt32 or TagType.Float32 => 2,
        _ => 4,
    };

    public bool IsBitTable => Table is TagTable.Coil or TagTable.DiscreteInput;
}
