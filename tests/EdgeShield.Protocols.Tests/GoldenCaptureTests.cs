using System.Buffers;
using System.Globalization;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Protocols.Tests;

/// <summary>
/// Real captures (tests/data/modbus) framed and decoded by the codec, frame by frame against
/// what tshark 4.0 read from them (tests/data/groundtruth/modbus).
/// </summary>
public class GoldenCaptureTests
{
    public static TheoryData<string, int> Captures() => new()
    {
        { "zeek__modbus__modbus-eit.pcap", 502 },
        { "zeek__modbus__4SICS-GeekLounge-151022-min.pcap", 502 },
        { "zeek__modbus__fuzz-72.pcap", 502 },
        { "zeek__modbus__modbus-and-non-modbus-p502.pcap", 502 },
        { "sv__modbus__modbus.pcap", 502 },
        { "iti__ModbusTCP__modbus_test_data_part1.pcap", 502 },
        { "zeek__modbus__modbusSmall.pcap", 502 },
        { "iti__ModbusTCP__modbus_test_data_part2.pcap", 502 },
        { "iti__modicon__modicon_test.pcap", 502 },
        { "iti__ModbusTCP__Modbus__modbus_test.pcap", 502 },
        { "pymodbus_socket_over_tcp_port502.pcapng", 502 },
        { "libmodbus-3.1.12-unit-tests-tcp-port1502.pcapng", 1502 },
    };

    /// <summary>
    /// Frames where we disagree with tshark on purpose, with the reason. Each must still
    /// disagree: a listed frame that starts agreeing fails the test, so the list stays true.
    /// </summary>
    private static readonly Dictionary<(string File, int Frame), string> Disagreements = new()
    {
        // A PDU longer than its own structure is Malformed here (never forwarded); tshark reads
        // the fields it knows and ignores the rest.
        [("libmodbus-3.1.12-unit-tests-tcp-port1502.pcapng", 175)] = "FC16 quantity 0, byte count 0, yet 6 more bytes (libmodbus invalid-request test)",
        [("libmodbus-3.1.12-unit-tests-tcp-port1502.pcapng", 181)] = "FC15 quantity 0, byte count 0, yet 6 more bytes",
        [("libmodbus-3.1.12-unit-tests-tcp-port1502.pcapng", 187)] = "FC16 quantity 0, byte count 0, yet 6 more bytes",
        [("libmodbus-3.1.12-unit-tests-tcp-port1502.pcapng", 193)] = "FC15 quantity 0, byte count 0, yet 6 more bytes",
        [("sv__modbus__modbus.pcap", 32)] = "FC43/14 request with a byte after the object id",
        [("sv__modbus__modbus.pcap", 34)] = "FC43/14 request with a byte after the object id",
        [("iti__ModbusTCP__modbus_test_data_part1.pcap", 32)] = "FC43/14 request with a byte after the object id",
        [("iti__ModbusTCP__modbus_test_data_part1.pcap", 34)] = "FC43/14 request with a byte after the object id",
        [("zeek__modbus__4SICS-GeekLounge-151022-min.pcap", 1)] = "FC23 byte count 0x21 but 243 value bytes follow (write quantity 223)",
        [("iti__ModbusTCP__modbus_test_data_part2.pcap", 22)] = "FC6 with 2 bytes after the value (function-code sweep pads every request)",
        [("iti__ModbusTCP__modbus_test_data_part2.pcap", 35)] = "FC11 takes no data; 4 bytes follow",
        [("iti__ModbusTCP__modbus_test_data_part2.pcap", 37)] = "FC12 takes no data; 4 bytes follow",
        [("iti__ModbusTCP__modbus_test_data_part2.pcap", 50)] = "FC17 takes no data; 4 bytes follow",
        [("iti__ModbusTCP__modbus_test_data_part2.pcap", 57)] = "FC20 byte count 0, yet 3 more bytes",
        [("iti__ModbusTCP__modbus_test_data_part2.pcap", 60)] = "FC21 byte count 0, yet 3 more bytes",
        [("iti__ModbusTCP__modbus_test_data_part2.pcap", 66)] = "FC24 takes a 2-byte pointer; 2 more bytes follow",
        [("zeek__modbus__modbus-eit.pcap", 2)] = "FC43/14 response: object count 0, yet 4 bytes after the header (conformity level 0 too)",
        // (modicon frames 19/20, UMAS with MBAP length 255, were listed here until vendor codes were
        // allowed MBAP lengths up to 260: they now agree.)
        // A response must answer an outstanding request of its function.
        [("zeek__modbus__fuzz-72.pcap", 5)] = "exception of FC32 (0xA0) while the outstanding request with transaction id 0 is FC29 (frame 3); tshark pairs nothing",
    };

    private sealed record Pending(int Frame, ResponseExpectation Expectation);

    [Theory]
    [MemberData(nameof(Captures))]
    public void Capture_EveryDissectedFrame_AgreesWithTshark(string file, int port)
    {
        var rows = TestData.ReadCsv(TestData.PathOf($"groundtruth/modbus/{file}.csv"))
            .ToDictionary(r => int.Parse(r["frame"], CultureInfo.InvariantCulture));
        var segments = CaptureReader.ReadTcp(File.ReadAllBytes(TestData.PathOf($"modbus/{file}")));
        var problems = new Dictionary<int, List<string>>();
        // Outstanding requests per connection and transaction id, oldest first: some clients reuse
        // a transaction id while earlier requests are outstanding (modbus_test.pcap frames 68-72), and
        // tshark then pairs every response with the latest request; the server answers in order.
        var pending = new Dictionary<(string Connection, ushort Tid), Queue<Pending>>();
        int compared = 0;
        int responsesChecked = 0;

        foreach (var segment in segments)
        {
            bool query = segment.DestinationPort == port;
            if (segment.Payload.Length == 0 || (!query && segment.SourcePort != port))
            {
                continue;
            }
            if (!rows.TryGetValue(segment.Frame, out var row) || row["trans_id"].Length == 0)
            {
                continue; // tshark did not dissect it (non-Modbus bytes, retransmission, a piece of a frame)
            }
            void Problem(string text)
            {
                if (!problems.TryGetValue(segment.Frame, out var list))
                {
                    problems[segment.Frame] = list = [];
                }
                list.Add(text);
            }
            compared++;
            Assert.Equal(query ? "query" : "response", row["direction"]);
            string connection = query
                ? $"{segment.Source}:{segment.SourcePort}>{segment.Destination}:{segment.DestinationPort}"
                : $"{segment.Destination}:{segment.DestinationPort}>{segment.Source}:{segment.SourcePort}";

            string[] tids = row["trans_id"].Split('|');
            string[] units = row["unit_id"].Split('|');
            string[] fcs = row["func_code"].Split('|');
            var exceptionCodes = new Queue<string>(Split(row["exception_code"]));
            var requestFrames = new Queue<string>(Split(row["request_frame"]));
            bool tsharkMalformed = row["malformed"] == "1";
            bool weRefuse = false;

            ReadOnlySpan<byte> input = segment.Payload;
            int index = 0;
            while (!input.IsEmpty)
            {
                var status = MbapFramer.TryReadFrame(input, out var frame, out int consumed, out var framingError);
                if (status == OperationStatus.InvalidData)
                {
                    weRefuse = true;
                    if (!tsharkMalformed)
                    {
                        Problem($"framing {framingError} where tshark dissected frame {index}");
                    }
                    break;
                }
                if (status == OperationStatus.NeedMoreData)
                {
                    break; // the rest of a frame continues in a later segment; per-packet framing stops here
                }
                input = input[consumed..];
                if (index >= tids.Length)
                {
                    Problem($"we framed more ADUs than tshark's {tids.Length}");
                    break;
                }
                Assert.True(consumed <= segment.Payload.Length);
                Compare(Problem, "trans_id", tids[index], frame.TransactionId);
                Compare(Problem, "unit_id", units[index], frame.UnitId);
                Compare(Problem, "func_code", fcs[index], query ? frame.FunctionCode : frame.FunctionCode & 0x7F);

                if (query)
                {
                    var request = ModbusPdu.ParseRequest(frame.Pdu);
                    if (request.Status == RequestStatus.Malformed)
                    {
                        weRefuse = true;
                        if (!tsharkMalformed)
                        {
                            Problem($"request Malformed ({request.Error}), tshark did not flag it");
                        }
                    }
                    else
                    {
                        if (!pending.TryGetValue((connection, frame.TransactionId), out var queue))
                        {
                            pending[(connection, frame.TransactionId)] = queue = new Queue<Pending>();
                        }
                        queue.Enqueue(new Pending(segment.Frame, request.Expectation));
                    }
                }
                else
                {
                    bool isException = (frame.FunctionCode & 0x80) != 0;
                    string? tsharkException = isException && exceptionCodes.Count > 0 ? exceptionCodes.Dequeue() : null;
                    string? tsharkRequest = requestFrames.Count > 0 ? requestFrames.Dequeue() : null;
                    ResponseExpectation? expectation = null;
                    if (pending.TryGetValue((connection, frame.TransactionId), out var queue) && queue.Count > 0)
                    {
                        if (tsharkRequest is not null && !queue.Any(q => q.Frame == int.Parse(tsharkRequest, CultureInfo.InvariantCulture)))
                        {
                            Problem($"tshark pairs it with request frame {tsharkRequest}, which we do not hold");
                        }
                        expectation = queue.Dequeue().Expectation;
                    }
                    else if (tsharkRequest is not null)
                    {
                        Problem($"tshark pairs it with request frame {tsharkRequest}, we hold no request");
                    }

                    if (expectation is { } expected)
                    {
                        responsesChecked++;
                        var result = ModbusPdu.CheckResponse(frame.Pdu, expected, out var responseError);
                        if (tsharkException is not null)
                        {
                            if (result != ResponseStatus.Exception)
                            {
                                Problem($"tshark exception {tsharkException}, we say {result} ({responseError})");
                            }
                            else
                            {
                                Compare(Problem, "exception_code", tsharkException, frame.Pdu[1]);
                            }
                        }
                        else if (tsharkMalformed)
                        {
                            weRefuse |= result == ResponseStatus.Mismatch;
                        }
                        else if (result != ResponseStatus.Normal)
                        {
                            Problem($"response {result} ({responseError}), tshark read a normal response");
                        }
                    }
                }
                index++;
            }
            if (!tsharkMalformed && index < tids.Length && !weRefuse)
            {
                Problem($"we framed {index} ADUs, tshark {tids.Length}");
            }
            if (tsharkMalformed && !weRefuse)
            {
                Problem("tshark flags it malformed, we accept it");
            }
        }

        Assert.True(compared > 0, "no frame was compared: wrong port or reader");
        var unexpected = new List<string>();
        foreach (var (frameNumber, list) in problems)
        {
            if (!Disagreements.ContainsKey((file, frameNumber)))
            {
                unexpected.Add($"frame {frameNumber}: {string.Join("; ", list)}");
            }
        }
        foreach (var ((listedFile, listedFrame), _) in Disagreements)
        {
            if (listedFile == file && !problems.ContainsKey(listedFrame))
            {
                unexpected.Add($"frame {listedFrame}: listed as a disagreement but now agrees");
            }
        }
        Assert.True(unexpected.Count == 0, $"{file}: compared {compared}, responses checked {responsesChecked}\n" + string.Join("\n", unexpected));
    }

    private static string[] Split(string field) => field.Length == 0 ? [] : field.Split('|');

    private static void Compare(Action<string> problem, string name, string tshark, int ours)
    {
        if (tshark.Length > 0 && int.Parse(tshark, CultureInfo.InvariantCulture) != ours)
        {
            problem($"{name}: tshark {tshark}, ours {ours}");
        }
    }
}
