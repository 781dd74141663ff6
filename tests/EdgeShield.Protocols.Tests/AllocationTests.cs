using System.Buffers;
using EdgeShield.Protocols.Modbus;
using static EdgeShield.Protocols.Tests.Frames;

namespace EdgeShield.Protocols.Tests;

public class AllocationTests
{
    // Typical traffic: requests and the responses that answer them.
    private static readonly byte[][] Requests =
    [
        Adu(1, 1, Words(3, 0, 10)),
        Adu(2, 1, Hex("10 0064 0003 06 0001 0002 0003")),
        Adu(3, 1, Hex("17 0003 0006 000E 0003 06 00FF 00FF 00FF")),
        Adu(4, 1, Hex("2B 0E 01 00")),
    ];

    private static readonly byte[][] Responses =
    [
        Adu(1, 1, Cat([3, 20], new byte[20])),
        Adu(2, 1, Words(16, 100, 3)),
        Adu(3, 1, Hex("17 0C 00FE 0ACD 0001 0003 000D 00FF")),
        Adu(4, 1, Hex("2B 0E 01 01 00 00 03 00 04 41424344 01 02 5858 02 05 5632 2E3131")),
    ];

    private static int Run(int frames)
    {
        int normal = 0;
        for (int i = 0; i < frames; i++)
        {
            int k = i % Requests.Length;
            if (MbapFramer.TryReadFrame(Requests[k], out var requestFrame, out _, out _) != OperationStatus.Done)
            {
                return -1;
            }
            var request = ModbusPdu.ParseRequest(requestFrame.Pdu);
            var expectation = request.Expectation;
            if (MbapFramer.TryReadFrame(Responses[k], out var responseFrame, out _, out _) != OperationStatus.Done)
            {
                return -1;
            }
            if (request.Status == RequestStatus.Valid && ModbusPdu.CheckResponse(responseFrame.Pdu, expectation, out _) == ResponseStatus.Normal)
            {
                normal++;
            }
        }
        return normal;
    }

    [Fact]
    public void FramingParsingAndResponseChecks_TenThousandFrames_AllocateNothing()
    {
        Assert.Equal(1000, Run(1000)); // warm up, and every pair must be a valid request with its normal response

        long before = GC.GetAllocatedBytesForCurrentThread();
        int normal = Run(10_000);
        long after = GC.GetAllocatedBytesForCurrentThread();

        Assert.Equal(10_000, normal);
        Assert.Equal(0, after - before);
    }
}
