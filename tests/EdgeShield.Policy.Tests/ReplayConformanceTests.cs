using System.Globalization;
using System.Net;
using EdgeShield.Policy.Replay;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Modbus;
using EdgeShield.Protocols.Tests;

namespace EdgeShield.Policy.Tests;

/// <summary>
/// <c>replay</c> against Wireshark: every Modbus capture of tests/data/modbus through
/// <see cref="PolicyReplay"/> (reassembled streams), compared ADU by ADU with tshark 4.0's dissection
/// (tests/data/groundtruth/modbus): requests per function code, exception responses per code, and
/// malformed frames. Where we disagree on purpose the frame is listed with the reason; a listed frame
/// that starts agreeing fails the test.
/// </summary>
/// <remarks>
/// One rule of the contract, not a tolerance, explains ADUs tshark reads that replay does not: a
/// malformed ADU (or a framing error) ends its stream direction, as the live gateway closes that
/// connection (DESIGN.md, <c>replay</c>). Those ADUs are counted apart and must all come after a frame
/// that is itself listed here or flagged malformed by tshark too.
/// </remarks>
public class ReplayConformanceTests
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

    /// <summary>Frames where replay and tshark disagree on purpose, with the reason.</summary>
    private static readonly Dictionary<(string File, int Frame), string> Disagreements = Listed();

    private static Dictionary<(string File, int Frame), string> Listed()
    {
        const string Lib = "libmodbus-3.1.12-unit-tests-tcp-port1502.pcapng";
        const string Mixed = "zeek__modbus__modbus-and-non-modbus-p502.pcap";
        var list = new Dictionary<(string File, int Frame), string>
        {
            // A PDU whose size does not fit its function, inside a well-delimited ADU, is a request
            // answered 03 (the MBAP length keeps the stream in step), as tshark counts it. Earlier lists
            // here held 4SICS 1, sv 32, part1 32, part2 22, libmodbus 175 and modicon 19/20 (UMAS, MBAP
            // length 255): all now agree. tshark's dissector reads past these two short PDUs and flags them:
            [("iti__ModbusTCP__modbus_test_data_part2.pcap", 62)] = "FC22 with a 5-byte PDU (needs 7): tshark flags it malformed; replay counts the request (03)",
            [("iti__ModbusTCP__modbus_test_data_part2.pcap", 64)] = "FC23 with a 5-byte PDU: tshark flags it malformed; replay counts the request (03)",
            // Bytes on the Modbus port that are not Modbus: tshark leaves them undissected (no row
            // values, no malformed flag); the gateway refuses them on the header and closes.
            [("sv__modbus__modbus.pcap", 76)] = "451 bytes of repeated garbage, MBAP length 0x8804",
            [("iti__ModbusTCP__modbus_test_data_part1.pcap", 76)] = "451 bytes of repeated garbage, MBAP length 0x8804",
            [("iti__ModbusTCP__modbus_test_data_part1.pcap", 113)] = "non-MBAP bytes on 502 (protocol id not 0)",
            [("zeek__modbus__fuzz-72.pcap", 1)] = "6 zero bytes in a SYN+FIN+URG segment from the server: MBAP length 0",
            // fuzz-72's sequence numbers leave holes (lost segments): replay holds a segment behind a hole
            // until the peer's ACK shows the bytes before it were sent but never captured (a gap), then
            // reads it at that frame; tshark dissects every packet on its own. The counts agree (16
            // requests each); these frames differ only in where the held requests are read.
            [("zeek__modbus__fuzz-72.pcap", 6)] = "FC33 read at frame 8, after the gap the server's ACK reveals",
            [("zeek__modbus__fuzz-72.pcap", 8)] = "FC33 of frame 6 read here; the 2 bytes after its MBAP length 4 and frame 7 do not frame: unsynchronised",
            [("zeek__modbus__fuzz-72.pcap", 16)] = "FC43 held behind a hole, read at frame 21",
            [("zeek__modbus__fuzz-72.pcap", 17)] = "FC46 held behind a hole, read at frame 21",
            [("zeek__modbus__fuzz-72.pcap", 18)] = "FC47 held behind a hole, read at frame 21",
            [("zeek__modbus__fuzz-72.pcap", 20)] = "FC50 held behind a hole, read at frame 21",
            [("zeek__modbus__fuzz-72.pcap", 21)] = "FC43, 46, 47, 50 of frames 16-20 read here",
            [("zeek__modbus__fuzz-72.pcap", 22)] = "FC52 held, read at frame 25; exceptions of FC47 and FC51 held in the response direction, read here",
            [("zeek__modbus__fuzz-72.pcap", 24)] = "FC54 held behind a hole, read at frame 25",
            [("zeek__modbus__fuzz-72.pcap", 25)] = "FC52 and FC54 of frames 22 and 24 read here",
            [("zeek__modbus__fuzz-72.pcap", 28)] = "FC71 held behind a hole, read at frame 32",
            [("zeek__modbus__fuzz-72.pcap", 29)] = "FC63 held behind a hole, read at frame 32",
            [("zeek__modbus__fuzz-72.pcap", 31)] = "FC65 held behind a hole, read at frame 32",
            [("zeek__modbus__fuzz-72.pcap", 32)] = "FC71, 63, 65 of frames 28-31 read here",
            [("zeek__modbus__fuzz-72.pcap", 33)] = "FC71 held behind a hole, read at frame 34",
            [("zeek__modbus__fuzz-72.pcap", 34)] = "FC71 of frame 33 read here",
            // 0xAA bytes where the next ADU belongs, then a gap: malformed (tshark leaves them
            // undissected); after the gap the direction is read again and frame 36's FC70 counts.
            [("zeek__modbus__fuzz-72.pcap", 35)] = "12 bytes of 0xAA overlapping frame 33: protocol id 0xAAAA, malformed",
        };
        foreach (int frame in new[] { 29, 31, 39, 41, 49, 51, 65, 70, 72, 80, 82 })
        {
            list[(Mixed, frame)] = "non-Modbus payload on tcp/502 (protocol id not 0), the point of this capture";
        }
        // libmodbus's byte-by-byte response (frames 127-135) leaves tshark's reassembly of this
        // connection out of step: it dissects no later response (rows without trans_id). Replay frames
        // each of these exception ADUs whole.
        foreach (int frame in new[] { 141, 147, 150, 153, 156, 159, 162, 165, 168, 171, 174, 177, 180, 183, 186, 189, 192, 195, 198, 201 })
        {
            list[(Lib, frame)] = "exception response tshark does not dissect after the byte-by-byte response of frames 127-135";
        }
        return list;
    }

    /// <summary>Forwards to the real <see cref="PolicyReplay"/> and keeps every ADU with its frame for the comparison.</summary>
    private sealed class Recording(PolicyReplay replay) : IModbusCaptureObserver
    {
        public List<(int Frame, string Direction, int Function)> Requests { get; } = [];
        public List<(int Frame, string Direction, int Function, int Exception)> Responses { get; } = [];
        public List<(int Frame, string Direction, FramingError Reason)> Malformed { get; } = [];

        public bool OnRequest(in CaptureContext context, in ModbusTcpFrame frame, in ModbusRequest request)
        {
            Requests.Add((context.FrameNumber, Key(context, true), request.FunctionCode));
            return replay.OnRequest(context, frame, request);
        }

        public void OnResponse(in CaptureContext context, in ModbusTcpFrame frame)
        {
            bool exception = (frame.FunctionCode & 0x80) != 0 && frame.Pdu.Length >= 2;
            Responses.Add((context.FrameNumber, Key(context, false), frame.FunctionCode & 0x7F, exception ? frame.Pdu[1] : -1));
            replay.OnResponse(context, frame);
        }

        public void OnMalformed(in CaptureContext context, bool isRequest, FramingError reason, short unitId, short functionCode)
        {
            Malformed.Add((context.FrameNumber, Key(context, isRequest), reason));
            replay.OnMalformed(context, isRequest, reason, unitId, functionCode);
        }

        private static string Key(in CaptureContext c, bool request) => request
            ? $"{Ip(c.Client)}:{c.ClientPort}>{Ip(c.Server)}:{c.ServerPort}"
            : $"{Ip(c.Server)}:{c.ServerPort}>{Ip(c.Client)}:{c.ClientPort}";

        private static string Ip(UInt128 value) => EdgeShield.Protocols.Tests.CaptureAddress.Format(value);
    }

    [Theory]
    [MemberData(nameof(Captures))]
    public void Replay_EveryCapture_AgreesWithTsharkPerFunctionExceptionAndMalformed(string file, int port)
    {
        // Allow everything: the comparison is about what replay reads, not what a policy decides.
        var policy = TestPolicies.Compile("      - name: any\n");
        var replay = new PolicyReplay(policy, (ushort)port);
        var recording = new Recording(replay);
        var scanner = new ModbusCaptureScanner(recording, (ushort)port);
        Assert.True(CaptureReader.TryOpen(File.ReadAllBytes(TestData.PathOf($"modbus/{file}")), out var reader, out _));
        Assert.Equal(CaptureError.None, scanner.Scan(reader!));

        var rows = TestData.ReadCsv(TestData.PathOf($"groundtruth/modbus/{file}.csv"));
        var tsharkRequests = new List<(int Frame, string Direction, int Function)>();
        var tsharkExceptions = new List<(int Frame, string Direction, int Function, int Exception)>();
        var tsharkMalformed = new HashSet<int>();
        foreach (var row in rows)
        {
            int frame = int.Parse(row["frame"], CultureInfo.InvariantCulture);
            if (row["malformed"] == "1")
            {
                tsharkMalformed.Add(frame);
            }
            if (row["trans_id"].Length == 0)
            {
                continue;
            }
            string direction = $"{Normalise(row["src"])}:{row["sport"]}>{Normalise(row["dst"])}:{row["dport"]}";
            var functions = row["func_code"].Split('|');
            if (row["direction"] == "query")
            {
                foreach (var fc in functions)
                {
                    if (fc.Length > 0)
                    {
                        tsharkRequests.Add((frame, direction, int.Parse(fc, CultureInfo.InvariantCulture)));
                    }
                }
            }
            else
            {
                var exceptions = row["exception_code"].Split('|', StringSplitOptions.RemoveEmptyEntries);
                // tshark lists exception codes only for the exception ADUs of the frame, in order; the
                // function codes it lists have the top bit cleared, so pair them by position among exceptions.
                for (int i = 0; i < exceptions.Length; i++)
                {
                    int fc = i < functions.Length && functions[i].Length > 0 ? int.Parse(functions[i], CultureInfo.InvariantCulture) : -1;
                    tsharkExceptions.Add((frame, direction, fc, int.Parse(exceptions[i], CultureInfo.InvariantCulture)));
                }
            }
        }

        var problems = new SortedDictionary<int, List<string>>();
        void Problem(int frame, string text)
        {
            if (!problems.TryGetValue(frame, out var list))
            {
                problems[frame] = list = [];
            }
            list.Add(text);
        }

        // Where a direction ended (first malformed ADU in it).
        var ended = new Dictionary<string, int>();
        foreach (var (frame, direction, _) in recording.Malformed)
        {
            ended.TryAdd(direction, frame);
        }
        bool AfterEnd(int frame, string direction) => ended.TryGetValue(direction, out int end) && frame > end;

        // Requests, ADU by ADU.
        var ours = recording.Requests.GroupBy(r => r).ToDictionary(g => g.Key, g => g.Count());
        int afterEnd = 0;
        foreach (var t in tsharkRequests)
        {
            if (ours.TryGetValue(t, out int n) && n > 0)
            {
                ours[t] = n - 1;
            }
            else if (AfterEnd(t.Frame, t.Direction))
            {
                afterEnd++;
            }
            else if (!recording.Malformed.Any(m => m.Frame == t.Frame))
            {
                Problem(t.Frame, $"tshark reads request FC{t.Function} ({t.Direction}), replay does not");
            }
        }
        foreach (var ((frame, direction, function), left) in ours)
        {
            if (left > 0)
            {
                Problem(frame, $"replay reads {left} request(s) FC{function} ({direction}) tshark does not");
            }
        }

        // Exception responses, by function and code.
        var ourExceptions = recording.Responses.Where(r => r.Exception >= 0).GroupBy(r => r).ToDictionary(g => g.Key, g => g.Count());
        foreach (var t in tsharkExceptions)
        {
            if (ourExceptions.TryGetValue(t, out int n) && n > 0)
            {
                ourExceptions[t] = n - 1;
            }
            else if (AfterEnd(t.Frame, t.Direction))
            {
                afterEnd++;
            }
            else
            {
                Problem(t.Frame, $"tshark reads exception {t.Exception:X2} of FC{t.Function}, replay does not");
            }
        }
        foreach (var ((frame, _, function, exception), left) in ourExceptions)
        {
            if (left > 0)
            {
                Problem(frame, $"replay reads exception {exception:X2} of FC{function} tshark does not");
            }
        }

        // Malformed frames.
        var ourMalformed = recording.Malformed.Select(m => m.Frame).ToHashSet();
        foreach (var m in recording.Malformed)
        {
            if (!tsharkMalformed.Contains(m.Frame))
            {
                Problem(m.Frame, $"replay: malformed ({m.Reason}), tshark does not flag it");
            }
        }
        foreach (int frame in tsharkMalformed)
        {
            if (!ourMalformed.Contains(frame) && !recording.Malformed.Any(m => m.Frame < frame))
            {
                Problem(frame, "tshark flags it malformed, replay accepts it");
            }
        }

        // The counts replay reports are the ADUs compared above.
        Assert.Equal(recording.Requests.Count, replay.Requests);
        Assert.Equal(recording.Malformed.Count, replay.Malformed);
        Assert.Equal(recording.Responses.Count(r => r.Exception >= 0), replay.ExceptionResponses);
        for (int fc = 0; fc < 256; fc++)
        {
            Assert.Equal(recording.Requests.Count(r => r.Function == fc), replay.ByFunction[fc]);
        }
        Assert.True(tsharkRequests.Count > 0, "tshark read no request: wrong port or file");

        var unexpected = new List<string>();
        foreach (var (frame, list) in problems)
        {
            if (!Disagreements.ContainsKey((file, frame)))
            {
                unexpected.Add($"[(\"{file}\", {frame})] = \"{string.Join("; ", list)}\",");
            }
        }
        foreach (var ((listedFile, listedFrame), _) in Disagreements)
        {
            if (listedFile == file && !problems.ContainsKey(listedFrame))
            {
                unexpected.Add($"frame {listedFrame}: listed as a disagreement but now agrees");
            }
        }
        Assert.True(unexpected.Count == 0, $"{file}: tshark requests {tsharkRequests.Count}, replay {replay.Requests}, after a direction ended {afterEnd}\n" + string.Join("\n", unexpected));
    }

    private static string Normalise(string address) => IPAddress.TryParse(address, out var ip) ? ip.ToString() : address;
}
