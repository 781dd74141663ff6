using System.Buffers;
using System.Globalization;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.S7comm;
using ShippedReader = EdgeShield.Protocols.Capture.CaptureReader;

namespace EdgeShield.Protocols.Tests.S7comm;

/// <summary>
/// Real S7comm captures (tests/data/s7comm): each TCP direction reassembled by the shipped
/// <see cref="TcpStreamAssembler"/>, framed by <see cref="TpktFramer"/>, DT fragments joined by
/// <see cref="CotpReassembler"/>, decoded by <see cref="S7Pdu"/>, and compared frame by frame with what
/// tshark 4.0 read (tests/data/groundtruth/s7comm, made by make.sh there). Every answer is checked
/// against the job it answers with <see cref="S7Pdu.CheckResponse"/>.
/// </summary>
public class S7GoldenCaptureTests
{
    public static TheoryData<string> Captures() => new()
    {
        "iti__s7__s7comm_downloading_block_db1.pcap",
        "iti__s7__snap7_s300_everything.pcapng",
        "iti__s7__step7_s300_AuthPassword.pcapng",
    };

    /// <summary>Columns compared whenever tshark decoded an S7 PDU (empty on our side must be empty on tshark's).</summary>
    private static readonly string[] AlwaysCompared =
    [
        "tpkt_len", "cotp_type", "cotp_eot", "called_tsap", "tpdu_size", "protid", "rosctr", "pduref", "parlg", "datlg",
        "errcls", "errcod", "func", "itemcount", "item_syntaxid", "item_transp_size", "item_count", "item_db", "item_area",
        "item_address", "maxamq_calling", "maxamq_called", "pdu_length", "ud_type", "ud_funcgroup", "ud_subfunc",
        "ud_seq_num", "ud_errcod", "pi_service",
    ];

    /// <summary>Data-block columns, compared for the PDUs whose data blocks the codec walks.</summary>
    private static readonly string[] DataColumns = ["data_returncode", "data_transportsize", "data_length"];

    private sealed class Direction : ITcpStreamSink
    {
        public readonly TcpStreamAssembler Assembler = new();
        public readonly List<byte> Pending = [];
        public readonly CotpReassembler Reassembler = new(new byte[65536], 65535);
        public readonly List<(int Frame, byte[] Bytes)> Chunks = [];
        /// <summary>Segments held ahead of a capture hole, delivered later (when the peer acknowledges them).</summary>
        public readonly List<(int Frame, byte[] Bytes)> Held = [];
        public bool Gap;

        public void OnData(ReadOnlySpan<byte> data, int frameNumber)
        {
            // tshark shows a segment's PDU in the segment's own frame, not in the frame that ended the hole.
            byte[] bytes = data.ToArray();
            int held = Held.FindIndex(h => h.Bytes.AsSpan().SequenceEqual(bytes));
            if (held >= 0)
            {
                frameNumber = Held[held].Frame;
                Held.RemoveAt(held);
            }
            Chunks.Add((frameNumber, bytes));
        }

        public void OnGap(int frameNumber, long missingBytes) => Gap = true;
    }

    private sealed class Connection
    {
        public Dictionary<ushort, S7Expectation> ClientJobs { get; } = [];
        public Dictionary<ushort, S7Expectation> ServerJobs { get; } = [];
        public int PduSize { get; set; } = 65535;
    }

    [Theory]
    [MemberData(nameof(Captures))]
    public void Capture_EveryFrame_AgreesWithTshark(string file)
    {
        var rows = TestData.ReadCsv(TestData.PathOf($"groundtruth/s7comm/{file}.csv"))
            .ToDictionary(r => int.Parse(r["frame"], CultureInfo.InvariantCulture));
        var ours = new Dictionary<int, Dictionary<string, List<string>>>();
        var problems = new List<string>();
        var directions = new Dictionary<(UInt128, ushort, UInt128, ushort), Direction>();
        var connections = new Dictionary<(UInt128, ushort, UInt128, ushort), Connection>();
        int pdus = 0, responsesChecked = 0;

        ShippedReader.TryOpen(File.ReadAllBytes(TestData.PathOf($"s7comm/{file}")), out var reader, out _);
        Assert.NotNull(reader);
        while (reader!.TryReadPacket(out var packet) == OperationStatus.Done)
        {
            if (TcpPacketDecoder.TryDecode(packet.LinkType, packet.Data, out var tcp) != PacketSkip.None || (tcp.SourcePort != 102 && tcp.DestinationPort != 102))
            {
                continue;
            }
            var key = (tcp.Source, tcp.SourcePort, tcp.Destination, tcp.DestinationPort);
            if (!directions.TryGetValue(key, out var direction))
            {
                directions[key] = direction = new Direction();
            }
            bool fromClient = tcp.DestinationPort == 102;
            var connectionKey = fromClient ? key : (tcp.Destination, tcp.DestinationPort, tcp.Source, tcp.SourcePort);
            if (!connections.TryGetValue(connectionKey, out var connection))
            {
                connections[connectionKey] = connection = new Connection();
            }
            if ((tcp.Flags & TcpControl.Syn) != 0)
            {
                direction.Assembler.Reset();
                direction.Pending.Clear();
                direction.Reassembler.Reset();
            }
            direction.Assembler.Push(tcp.Sequence, tcp.Flags, tcp.Payload, packet.FrameNumber, direction);
            if (!tcp.Payload.IsEmpty && direction.Chunks.Count == 0 && direction.Assembler.OutOfOrder > 0)
            {
                direction.Held.Add((packet.FrameNumber, tcp.Payload.ToArray()));
            }
            var reverseKey = (tcp.Destination, tcp.DestinationPort, tcp.Source, tcp.SourcePort);
            if ((tcp.Flags & TcpControl.Ack) != 0 && directions.TryGetValue(reverseKey, out var reverse))
            {
                reverse.Assembler.Acknowledge(tcp.Acknowledgment, packet.FrameNumber, reverse);
                Consume(reverse, !fromClient, connection, ours, problems, ref pdus, ref responsesChecked);
            }
            Consume(direction, fromClient, connection, ours, problems, ref pdus, ref responsesChecked);
        }

        foreach (var (frame, tshark) in rows)
        {
            ours.TryGetValue(frame, out var mine);
            mine ??= [];
            bool decodesData = mine.ContainsKey("data_returncode");
            foreach (var column in decodesData ? [.. AlwaysCompared, .. DataColumns] : AlwaysCompared)
            {
                string theirs = tshark[column];
                string our = mine.TryGetValue(column, out var values) ? string.Join('|', values) : "";
                if (theirs != our)
                {
                    problems.Add($"frame {frame} {column}: tshark '{theirs}', ours '{our}'");
                }
            }
            if (tshark["malformed"] == "1")
            {
                problems.Add($"frame {frame}: tshark flags it malformed");
            }
        }
        foreach (var frame in ours.Keys)
        {
            if (!rows.ContainsKey(frame))
            {
                problems.Add($"frame {frame}: we framed TPKT where tshark saw none");
            }
        }
        Assert.True(pdus > 0 && responsesChecked > 0, $"no PDU ({pdus}) or response ({responsesChecked}) was checked");
        Assert.True(problems.Count == 0, $"{file}: {pdus} PDUs, {responsesChecked} responses checked\n" + string.Join("\n", problems));
    }


    private static void Consume(Direction d, bool fromClient, Connection connection, Dictionary<int, Dictionary<string, List<string>>> ours, List<string> problems, ref int pdus, ref int responsesChecked)
    {
        if (d.Gap)
        {
            // After bytes never captured a TPKT boundary is not known: start over at the next chunk.
            d.Gap = false;
            d.Pending.Clear();
            d.Reassembler.Reset();
        }
        foreach (var (frame, bytes) in d.Chunks)
        {
            d.Pending.AddRange(bytes);
            var buffer = d.Pending.ToArray();
            int offset = 0;
            while (true)
            {
                var status = TpktFramer.TryReadFrame(buffer.AsSpan(offset), out var tpdu, out int consumed, out var framingError);
                if (status == OperationStatus.NeedMoreData)
                {
                    break;
                }
                if (status == OperationStatus.InvalidData)
                {
                    problems.Add($"frame {frame}: framing {framingError}");
                    offset = buffer.Length;
                    break;
                }
                offset += consumed;
                var row = Row(ours, frame);
                Add(row, "tpkt_len", tpdu.Packet.Length.ToString(CultureInfo.InvariantCulture));
                Add(row, "cotp_type", Hex((byte)((byte)tpdu.Type >> 4)));
                if (tpdu.Type is CotpTpduType.ConnectionRequest or CotpTpduType.ConnectionConfirm)
                {
                    Add(row, "called_tsap", Convert.ToHexStringLower(tpdu.CalledTsap));
                    Add(row, "tpdu_size", tpdu.TpduSize.ToString(CultureInfo.InvariantCulture));
                    Assert.Equal(S7ConnectionKind.Pg, tpdu.Connection.Kind); // 0102: PG, rack 0, slot 2
                    Assert.Equal(2, tpdu.Connection.Slot);
                    continue;
                }
                if (tpdu.Type != CotpTpduType.Data)
                {
                    continue;
                }
                Add(row, "cotp_eot", tpdu.EndOfTransmission ? "1" : "0");
                Add(row, "cotp_tpdu_number", Hex(tpdu.TpduNumber));
                var reassembled = d.Reassembler.Append(tpdu, out var pdu, out var reassemblyError);
                if (reassembled == OperationStatus.InvalidData)
                {
                    problems.Add($"frame {frame}: reassembly {reassemblyError}");
                    continue;
                }
                if (reassembled == OperationStatus.Done)
                {
                    pdus++;
                    responsesChecked += Decode(pdu, row, fromClient, connection, frame, problems);
                }
            }
            d.Pending.RemoveRange(0, offset);
        }
        d.Chunks.Clear();
    }

    /// <summary>Decodes one S7 PDU into tshark's columns; returns 1 when it was an answer checked against its job.</summary>
    private static int Decode(ReadOnlySpan<byte> pdu, Dictionary<string, List<string>> row, bool fromClient, Connection connection, int frame, List<string> problems)
    {
        var header = S7Pdu.ParseHeader(pdu);
        if (!header.IsValid)
        {
            problems.Add($"frame {frame}: header {header.Error}");
            return 0;
        }
        Add(row, "protid", Hex(pdu[0]));
        Add(row, "rosctr", header.RosctrCode.ToString(CultureInfo.InvariantCulture));
        Add(row, "pduref", header.Reference.ToString(CultureInfo.InvariantCulture));
        Add(row, "parlg", header.ParameterLength.ToString(CultureInfo.InvariantCulture));
        Add(row, "datlg", header.DataLength.ToString(CultureInfo.InvariantCulture));
        var jobs = fromClient ? connection.ClientJobs : connection.ServerJobs;
        var answered = fromClient ? connection.ServerJobs : connection.ClientJobs;

        if (header.Rosctr is S7Rosctr.Ack or S7Rosctr.AckData)
        {
            Add(row, "errcls", Hex(header.ErrorClass));
            Add(row, "errcod", Hex(header.ErrorCode));
            if (header.Rosctr == S7Rosctr.Ack)
            {
                // Wireshark shows an Ack's error also as the 16-bit parameter error code.
                Add(row, "ud_errcod", "0x" + ((header.ErrorClass << 8) | header.ErrorCode).ToString("x4", CultureInfo.InvariantCulture));
            }
            if (!header.Parameters.IsEmpty)
            {
                Add(row, "func", Hex(header.Parameters[0]));
            }
            if (header.Parameters.Length == 2 && header.Parameters[0] is S7Functions.ReadVar or S7Functions.WriteVar)
            {
                Add(row, "itemcount", header.Parameters[1].ToString(CultureInfo.InvariantCulture));
                AddResponseData(row, header.Parameters[0], header.Parameters[1], header.Data);
            }
            if (header.Parameters.Length == 8 && header.Parameters[0] == S7Functions.SetupCommunication)
            {
                AddSetup(row, header.Parameters);
            }
            return CheckAnswer(pdu, header.Reference, answered, connection, frame, problems, header.ErrorClass != 0 || header.ErrorCode != 0);
        }

        var request = S7Pdu.ParseRequest(pdu);
        if (request.Status != S7RequestStatus.Ok)
        {
            problems.Add($"frame {frame}: request {request.Status} {request.Error}");
            return 0;
        }
        if (request.Rosctr == S7Rosctr.Job)
        {
            Add(row, "func", Hex(request.FunctionCode));
            if (request.Function is S7Function.ReadVar or S7Function.WriteVar)
            {
                Add(row, "itemcount", request.ItemCount.ToString(CultureInfo.InvariantCulture));
                int n = 0;
                foreach (var item in request.Items)
                {
                    n++;
                    Add(row, "item_syntaxid", Hex(item.SyntaxIdCode));
                    Add(row, "item_transp_size", item.TransportSize.ToString(CultureInfo.InvariantCulture));
                    Add(row, "item_count", item.Count.ToString(CultureInfo.InvariantCulture));
                    Add(row, "item_db", item.DbNumber.ToString(CultureInfo.InvariantCulture));
                    Add(row, "item_area", Hex(item.AreaCode));
                    Add(row, "item_address", "0x" + item.Address.ToString("x6", CultureInfo.InvariantCulture));
                    Assert.Equal(item.Address >> 3, item.IsElementAddressed ? item.Address >> 3 : item.Start);
                    if (request.Function == S7Function.WriteVar)
                    {
                        Add(row, "data_returncode", Hex(item.DataReturnCode));
                        Add(row, "data_transportsize", Hex(item.DataTransportSize));
                        Add(row, "data_length", item.Data.Length.ToString(CultureInfo.InvariantCulture));
                        Assert.Equal(item.ByteLength, item.Data.Length);
                    }
                }
                Assert.Equal(request.ItemCount, n);
            }
            if (request.Function == S7Function.SetupCommunication)
            {
                AddSetup(row, request.Header.Parameters);
            }
            if (request.Function is S7Function.PlcControl or S7Function.PlcStop)
            {
                Add(row, "pi_service", System.Text.Encoding.ASCII.GetString(request.PiService));
            }
        }
        else
        {
            Add(row, "ud_type", ((int)request.UserdataType).ToString(CultureInfo.InvariantCulture));
            Add(row, "ud_funcgroup", request.UserdataGroup.ToString(CultureInfo.InvariantCulture));
            Add(row, "ud_subfunc", request.Subfunction.ToString(CultureInfo.InvariantCulture));
            Add(row, "ud_seq_num", request.SequenceNumber.ToString(CultureInfo.InvariantCulture));
            var parameters = request.Header.Parameters;
            if (parameters[3] == 8)
            {
                Add(row, "ud_errcod", "0x" + request.UserdataErrorCode.ToString("x4", CultureInfo.InvariantCulture));
            }
            var data = request.Header.Data;
            if (data.Length >= 4)
            {
                Add(row, "data_returncode", Hex(data[0]));
                Add(row, "data_transportsize", Hex(data[1]));
                Add(row, "data_length", request.UserdataPayload.Length.ToString(CultureInfo.InvariantCulture));
            }
            if (request.UserdataType == S7UserdataType.Response)
            {
                return CheckAnswer(pdu, request.Reference, answered, connection, frame, problems, request.UserdataErrorCode != 0);
            }
        }
        jobs[request.Reference] = request.Expectation(connection.PduSize);
        return 0;
    }

    private static int CheckAnswer(ReadOnlySpan<byte> pdu, ushort reference, Dictionary<ushort, S7Expectation> outstanding, Connection connection, int frame, List<string> problems, bool negative)
    {
        if (!outstanding.Remove(reference, out var expected))
        {
            problems.Add($"frame {frame}: an answer with REF {reference} and no outstanding job");
            return 0;
        }
        var status = S7Pdu.CheckResponse(pdu, expected, out var error);
        var want = negative ? S7ResponseStatus.Error : S7ResponseStatus.Normal;
        if (status != want)
        {
            problems.Add($"frame {frame}: CheckResponse {status} ({error}), expected {want}");
        }
        // The wrong REF must never pass.
        Assert.Equal(S7ResponseStatus.Mismatch, S7Pdu.CheckResponse(pdu, expected with { Reference = (ushort)(reference + 1) }, out var refError));
        Assert.Equal(S7ResponseError.WrongReference, refError);
        var header = S7Pdu.ParseHeader(pdu);
        if (expected.FunctionCode == S7Functions.SetupCommunication && header.Rosctr == S7Rosctr.AckData && status == S7ResponseStatus.Normal)
        {
            connection.PduSize = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(header.Parameters[6..]);
        }
        return 1;
    }

    private static void AddResponseData(Dictionary<string, List<string>> row, byte function, int count, ReadOnlySpan<byte> data)
    {
        if (function == S7Functions.WriteVar)
        {
            foreach (byte code in data)
            {
                Add(row, "data_returncode", Hex(code));
            }
            return;
        }
        for (int i = 0; i < count && data.Length >= 4; i++)
        {
            int length = S7Items.DataByteLength(data[1], System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(data[2..]));
            Add(row, "data_returncode", Hex(data[0]));
            Add(row, "data_transportsize", Hex(data[1]));
            Add(row, "data_length", length.ToString(CultureInfo.InvariantCulture));
            data = data[Math.Min(data.Length, 4 + length + (i < count - 1 ? length & 1 : 0))..];
        }
    }

    private static void AddSetup(Dictionary<string, List<string>> row, ReadOnlySpan<byte> parameters)
    {
        Add(row, "maxamq_calling", System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(parameters[2..]).ToString(CultureInfo.InvariantCulture));
        Add(row, "maxamq_called", System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(parameters[4..]).ToString(CultureInfo.InvariantCulture));
        Add(row, "pdu_length", System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(parameters[6..]).ToString(CultureInfo.InvariantCulture));
    }

    private static Dictionary<string, List<string>> Row(Dictionary<int, Dictionary<string, List<string>>> ours, int frame)
    {
        if (!ours.TryGetValue(frame, out var row))
        {
            ours[frame] = row = [];
        }
        return row;
    }

    private static void Add(Dictionary<string, List<string>> row, string column, string value)
    {
        if (!row.TryGetValue(column, out var list))
        {
            row[column] = list = [];
        }
        list.Add(value);
    }

    private static string Hex(byte value) => "0x" + value.ToString("x2", CultureInfo.InvariantCulture);
}
