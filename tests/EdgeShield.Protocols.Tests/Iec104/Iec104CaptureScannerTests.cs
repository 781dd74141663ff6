using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Iec104;
using ShippedReader = EdgeShield.Protocols.Capture.CaptureReader;

namespace EdgeShield.Protocols.Tests.Iec104;

public class Iec104CaptureScannerTests
{
    /// <summary>Counts what the scanner reports, without allocating.</summary>
    private sealed class Counter : IIec104CaptureObserver
    {
        public int Requests;
        public int Responses;
        public int IFrames;
        public int Commands;
        public int Selects;
        public int UnknownTypes;
        public readonly int[] Types = new int[256];
        public readonly List<(int Frame, bool IsRequest, Iec104FrameError Error)> Malformed = [];
        public bool AllocateOnMalformed = true;

        public bool OnRequest(in CaptureContext context, in Iec104Apdu apdu, in Iec104Asdu asdu)
        {
            Requests++;
            Count(apdu, asdu);
            return true;
        }

        public void OnResponse(in CaptureContext context, in Iec104Apdu apdu, in Iec104Asdu asdu)
        {
            Responses++;
            Count(apdu, asdu);
        }

        public void OnMalformed(in CaptureContext context, bool isRequest, FrameFault fault)
        {
            if (AllocateOnMalformed)
            {
                Malformed.Add((context.FrameNumber, isRequest, (Iec104FrameError)fault.Detail));
            }
        }

        private void Count(in Iec104Apdu apdu, in Iec104Asdu asdu)
        {
            if (apdu.Format != Iec104Format.I)
            {
                return;
            }
            IFrames++;
            Types[asdu.Type]++;
            UnknownTypes += asdu.Status == Iec104AsduStatus.UnknownType ? 1 : 0;
            if (asdu.IsCommand)
            {
                Commands++;
                Selects += asdu.IsSelect ? 1 : 0;
            }
        }
    }

    private static ShippedReader Open(string file)
    {
        ShippedReader.TryOpen(File.ReadAllBytes(TestData.PathOf($"iec104/{file}")), out var reader, out _);
        Assert.NotNull(reader);
        return reader!;
    }

    /// <summary>APDUs tshark read to and from port 2404.</summary>
    private static (int Requests, int Responses) TsharkApdus(string file)
    {
        int requests = 0, responses = 0;
        foreach (var row in TestData.ReadCsv(TestData.PathOf($"groundtruth/iec104/{file}.csv")))
        {
            if (row["apci_type"].Length == 0)
            {
                continue;
            }
            int n = row["apci_type"].Split('|').Length;
            if (row["dport"] == "2404")
            {
                requests += n;
            }
            else
            {
                responses += n;
            }
        }
        return (requests, responses);
    }

    [Theory]
    [InlineData("iti__IEC60870-5-104__090813_diverse.pcap", 1)]
    [InlineData("iti__IEC60870-5-104__JavaRMI_and_IEC_Misc.pcap", 2)]
    public void Scan_WellFormedCapture_ReportsEveryApduTsharkReads(string file, int connections)
    {
        var counter = new Counter();
        var scanner = new Iec104CaptureScanner(counter);
        Assert.Equal(CaptureError.None, scanner.Scan(Open(file)));
        Assert.Empty(counter.Malformed);
        var (requests, responses) = TsharkApdus(file);
        Assert.Equal(requests, counter.Requests);
        Assert.Equal(responses, counter.Responses);
        Assert.Equal(requests + responses, scanner.Apdus);
        Assert.Equal(connections, scanner.Connections);
        Assert.Equal(0, scanner.Gaps);
        Assert.Equal(0, counter.UnknownTypes);
    }

    [Fact]
    public void Scan_DiverseCapture_SeesItsCommandsAndSelects()
    {
        var counter = new Counter();
        new Iec104CaptureScanner(counter).Scan(Open("iti__IEC60870-5-104__090813_diverse.pcap"));
        // tshark: C_SC_NA_1 5, C_DC_NA_1 6, C_SE_NC_1 10, C_SC_TA_1 5, C_DC_TA_1 10, C_SE_TA_1 5, C_SE_TC_1 5.
        Assert.Equal(5, counter.Types[45]);
        Assert.Equal(10, counter.Types[59]);
        Assert.Equal(14, counter.Types[13]);
        Assert.Equal(46, counter.Commands);
        Assert.InRange(counter.Selects, 1, counter.Commands - 1);
    }

    [Fact]
    public void Scan_DissectorTestCapture_StopsEachDirectionAtItsFirstMalformedApdu()
    {
        var counter = new Counter();
        var scanner = new Iec104CaptureScanner(counter);
        scanner.Scan(Open("iti__IEC60870-5-104__TestDissectIec104.pcap"));
        // Each connection's client sends STARTDT act, then bytes that are not an APDU (frame 7: 00; frame 36: seven 07s…).
        Assert.Contains((7, true, Iec104FrameError.StartOctetInvalid), counter.Malformed);
        Assert.Contains((36, true, Iec104FrameError.StartOctetInvalid), counter.Malformed);
        Assert.True(counter.Requests > 0 && counter.Responses > 0);
        Assert.Equal(counter.Malformed.Select(m => m.Frame).Distinct().Count(), counter.Malformed.Count);
    }

    [Fact]
    public void Scan_SecondTime_AllocatesNothing()
    {
        var counter = new Counter { AllocateOnMalformed = false };
        var scanner = new Iec104CaptureScanner(counter);
        var reader = Open("iti__IEC60870-5-104__JavaRMI_and_IEC_Misc.pcap");
        scanner.Scan(reader);
        int first = counter.Requests + counter.Responses;
        for (int warm = 0; warm < 3; warm++)
        {
            scanner.Clear();
            reader.Reset();
            scanner.Scan(reader);
        }
        scanner.Clear();
        reader.Reset();
        counter.Requests = counter.Responses = 0;

        long before = GC.GetAllocatedBytesForCurrentThread();
        scanner.Scan(reader);
        long after = GC.GetAllocatedBytesForCurrentThread();

        Assert.Equal(first, counter.Requests + counter.Responses);
        Assert.Equal(0, after - before);
    }
}
