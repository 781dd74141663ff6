using System.Buffers;
using System.Buffers.Binary;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Modbus;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Fuzz;

/// <summary>
/// Writes small seed corpora from the real captures in tests/data: Modbus TCP ADUs and their PDUs,
/// request/response pairs, RTU frames (RTU over TCP, and the TCP ADUs as an RS-485 bus would carry
/// them), and trimmed capture files; S7comm client streams and job/answer pairs (tests/data/s7comm); IEC 104
/// streams of each direction (tests/data/iec104) and crafted APDUs.
/// One input per distinct function code and length, so the corpus stays small and AFL's calibration quick.
/// </summary>
internal static class Seeds
{
    private const int MaxPerTarget = 64;
    private const int MaxCaptureSeedBytes = 3072;

    public static int Write(string repository, string corpus)
    {
        var modbus = Path.Combine(repository, "tests", "data", "modbus");
        var captures = Directory.GetFiles(modbus).Where(f => f.EndsWith(".pcap", StringComparison.Ordinal) || f.EndsWith(".pcapng", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();
        var sets = FuzzTargets.Names.Where(n => n != "config").ToDictionary(n => n, _ => new SeedSet(), StringComparer.Ordinal);

        // RTU over TCP first: real RTU frames before the ones converted from Modbus TCP.
        foreach (string file in captures)
        {
            if (CaptureReader.TryOpen(File.ReadAllBytes(file), out var rtuReader, out _) && rtuReader is not null)
            {
                CollectRtuOverTcp(rtuReader, sets["rtu"]);
            }
        }
        foreach (string file in captures)
        {
            var bytes = File.ReadAllBytes(file);
            if (!CaptureReader.TryOpen(bytes, out var reader, out _) || reader is null)
            {
                continue;
            }
            var collector = new Collector(sets);
            new ModbusCaptureScanner(collector, 502).Scan(reader);
            if (bytes.Length <= MaxCaptureSeedBytes)
            {
                sets["capture"].Add(Path.GetFileNameWithoutExtension(file), bytes);
            }
            else if (Trim(bytes) is { } trimmed)
            {
                sets["capture"].Add(Path.GetFileNameWithoutExtension(file) + "-head", trimmed);
            }
        }
        foreach (string file in Directory.GetFiles(Path.Combine(repository, "tests", "data", "s7comm")).Order(StringComparer.Ordinal))
        {
            if (CaptureReader.TryOpen(File.ReadAllBytes(file), out var s7Reader, out _) && s7Reader is not null)
            {
                S7Seeds.Collect(s7Reader, sets["s7stream"], sets["s7response"]);
            }
        }
        foreach (string file in Directory.GetFiles(Path.Combine(repository, "tests", "data", "iec104")).Order(StringComparer.Ordinal))
        {
            if (CaptureReader.TryOpen(File.ReadAllBytes(file), out var iecReader, out _) && iecReader is not null)
            {
                string name = Path.GetFileNameWithoutExtension(file).Replace("iti__IEC60870-5-104__", "", StringComparison.Ordinal);
                Iec104Seeds.Collect(name, iecReader, sets["iec104stream"]);
            }
        }
        Iec104Seeds.Crafted(sets["iec104stream"]);
        var config = sets["config"] = new SeedSet();
        foreach (string file in Directory.GetFiles(Path.Combine(repository, "firmware-config", "examples"), "*.yaml").Order(StringComparer.Ordinal))
        {
            config.Add(Path.GetFileNameWithoutExtension(file), File.ReadAllBytes(file));
        }
        // The contract's full example (docs/DESIGN.md, "Configuration"): every section and key.
        string design = File.ReadAllText(Path.Combine(repository, "docs", "DESIGN.md"));
        int start = design.IndexOf("```yaml\ngateway:", StringComparison.Ordinal);
        if (start >= 0)
        {
            start += "```yaml\n".Length;
            int end = design.IndexOf("```", start, StringComparison.Ordinal);
            config.Add("design-example", System.Text.Encoding.UTF8.GetBytes(design[start..end]));
        }
        foreach (var (target, set) in sets)
        {
            var dir = Path.Combine(corpus, target);
            Directory.CreateDirectory(dir);
            foreach (var (name, data) in set.Items)
            {
                File.WriteAllBytes(Path.Combine(dir, name), data);
            }
            Console.WriteLine($"{target}: {set.Items.Count} seeds");
        }
        return 0;
    }

    internal sealed class SeedSet
    {
        private readonly HashSet<string> _kinds = new(StringComparer.Ordinal);

        public List<(string Name, byte[] Data)> Items { get; } = [];

        /// <summary>Adds <paramref name="data"/> unless one of the same kind is already there.</summary>
        public void Add(string kind, byte[] data)
        {
            if (Items.Count < MaxPerTarget && _kinds.Add(kind))
            {
                Items.Add(("seed-" + kind, data));
            }
        }
    }

    private sealed class Collector(Dictionary<string, SeedSet> sets) : IModbusCaptureObserver
    {
        private readonly Dictionary<(UInt128, ushort, ushort), byte[]> _requests = [];

        /// <summary>One seed per function code and length; exception responses are one kind whatever their function.</summary>
        private static string Kind(in ModbusTcpFrame frame) => frame.FunctionCode >= ModbusExceptionCode.ExceptionFlag
            ? $"exception-len{frame.Pdu.Length:D3}"
            : $"fc{frame.FunctionCode:D3}-len{frame.Pdu.Length:D3}";

        public bool OnRequest(in CaptureContext context, in ModbusTcpFrame frame, in ModbusRequest request)
        {
            string kind = Kind(frame);
            sets["mbap"].Add(kind, frame.Adu.ToArray());
            sets["pdu-request"].Add(kind, frame.Pdu.ToArray());
            _requests[(context.Client, context.ClientPort, frame.TransactionId)] = frame.Pdu.ToArray();
            // A vendor PDU above 253 bytes does not fit an RTU ADU: no bus carries it.
            if (frame.Pdu.Length <= ModbusLimits.MaxPduLength)
            {
                var rtu = new byte[RtuFramer.MaxAduLength];
                int length = RtuFramer.FromMbap(frame.Adu, rtu);
                sets["rtu"].Add("req-" + kind, [0, .. rtu.AsSpan(0, length)]);
            }
            return true;
        }

        public void OnResponse(in CaptureContext context, in ModbusTcpFrame frame)
        {
            string kind = Kind(frame);
            sets["mbap"].Add("resp-" + kind, frame.Adu.ToArray());
            if (frame.Pdu.Length <= ModbusLimits.MaxPduLength)
            {
                var rtu = new byte[RtuFramer.MaxAduLength];
                int length = RtuFramer.FromMbap(frame.Adu, rtu);
                sets["rtu"].Add("resp-" + kind, [1, .. rtu.AsSpan(0, length)]);
            }
            if (_requests.Remove((context.Client, context.ClientPort, frame.TransactionId), out var request) && request.Length <= byte.MaxValue)
            {
                sets["pdu-response"].Add(kind, [(byte)request.Length, .. request, .. frame.Pdu]);
            }
        }

        public void OnMalformed(in CaptureContext context, bool isRequest, FramingError reason, short unitId, short functionCode)
        {
        }
    }

    /// <summary>RTU over TCP (pymodbus on port 5020): each segment's payload, requests to the port, responses from it.</summary>
    private static void CollectRtuOverTcp(CaptureReader reader, SeedSet set)
    {
        const ushort RtuPort = 5020;
        while (reader.TryReadPacket(out var packet) == OperationStatus.Done)
        {
            if (TcpPacketDecoder.TryDecode(packet.LinkType, packet.Data, out var tcp) != PacketSkip.None || tcp.Payload.Length < RtuFramer.MinAduLength)
            {
                continue;
            }
            bool request = tcp.DestinationPort == RtuPort;
            if (!request && tcp.SourcePort != RtuPort)
            {
                continue;
            }
            string kind = $"{(request ? "req" : "resp")}-tcp-fc{tcp.Payload[1]:D3}-len{tcp.Payload.Length:D3}";
            set.Add(kind, [request ? (byte)0 : (byte)1, .. tcp.Payload]);
        }
    }

    /// <summary>A pcapng's first blocks (section header, interfaces, the first packets), at most <see cref="MaxCaptureSeedBytes"/>.</summary>
    private static byte[]? Trim(byte[] file)
    {
        if (file.Length < 12 || BinaryPrimitives.ReadUInt32LittleEndian(file) != 0x0A0D0D0A || BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(8)) != 0x1A2B3C4D)
        {
            return null; // classic pcap or big-endian pcapng: the small files already cover those
        }
        int offset = 0;
        int packets = 0;
        while (offset + 12 <= file.Length && packets < 6)
        {
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(offset));
            int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(offset + 4));
            if (length < 12 || offset + length > file.Length || offset + length > MaxCaptureSeedBytes)
            {
                break;
            }
            offset += length;
            packets += type is 6 or 3 or 2 ? 1 : 0;
        }
        return packets == 0 ? null : file[..offset];
    }
}
