using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Modbus;
using EdgeShield.Protocols.Tests;

namespace EdgeShield.Gateway.Tests;

/// <summary>
/// What the MBAP length frames: a vendor code's longer ADUs (Schneider UMAS) pass, and a
/// well-delimited ADU whose PDU has the wrong size is answered 03 as a PLC answers it, the
/// connection going on; only lost framing closes a connection.
/// </summary>
public class FramingTests
{
    private const string AllowAll = """
            mode: enforce
            rules:
              - name: any
        """;

    /// <summary>Every request and response ADU of a capture, in order.</summary>
    private sealed class AduRecorder : IModbusCaptureObserver
    {
        public List<byte[]> Requests { get; } = [];
        public List<byte[]> Responses { get; } = [];

        public bool OnRequest(in CaptureContext context, in ModbusTcpFrame frame, in ModbusRequest request)
        {
            Requests.Add(frame.Adu.ToArray());
            return true;
        }

        public void OnResponse(in CaptureContext context, in ModbusTcpFrame frame) => Responses.Add(frame.Adu.ToArray());

        public void OnMalformed(in CaptureContext context, bool isRequest, FramingError reason, short unitId, short functionCode) =>
            throw new Xunit.Sdk.XunitException($"frame {context.FrameNumber}: malformed {reason}");
    }

    [Fact]
    public async Task SchneiderUmas_MbapLength255BothWays_PassesThroughARuleThatAllowsProgram()
    {
        // The real Modicon engineering session (tests/data/modbus/iti__modicon__modicon_test.pcap):
        // its client's requests through the gateway, a PLC that answers each with the captured answer.
        var recorder = new AduRecorder();
        var scanner = new ModbusCaptureScanner(recorder, 502);
        Assert.True(CaptureReader.TryOpen(File.ReadAllBytes(TestData.PathOf("modbus/iti__modicon__modicon_test.pcap")), out var reader, out _));
        scanner.Scan(reader!);
        Assert.Equal(recorder.Requests.Count, recorder.Responses.Count);
        Assert.Contains(recorder.Requests, a => a.Length == 6 + 255);
        Assert.Contains(recorder.Responses, a => a.Length == 6 + 255);

        int next = 0;
        await using var plc = new ScriptedPlc(_ => recorder.Responses[Interlocked.Increment(ref next) - 1][6..]);
        await using var h = await GatewayHarness.StartAsync("""
                mode: enforce
                rules:
                  - name: engineering
                    unit: [0]
                    function: program
            """, upstreamPort: plc.Port);
        using var client = await h.ConnectAsync();

        for (int i = 0; i < recorder.Requests.Count; i++)
        {
            var response = await client.RoundTripAsync(recorder.Requests[i]);
            Assert.Equal(recorder.Responses[i], response);
        }
        Assert.Equal(recorder.Requests.Count, h.Gateway.Counters.Allowed);
        Assert.Equal(0, h.Gateway.Counters.Malformed);
        Assert.Empty(h.Audit.OfKind(AuditEventKind.ResponseMismatch));
    }

    [Fact]
    public async Task PublicCode_MbapLength255_IsStillMalformed_AndAVendorCodeAbove260Too()
    {
        await using var h = await GatewayHarness.StartAsync(AllowAll);
        using var read = await h.ConnectAsync();
        await read.SendAsync([0, 1, 0, 0, 0, 255, 1, 3]);
        Assert.True(await read.IsClosedByPeerAsync());

        using var umas = await h.ConnectAsync();
        await umas.SendAsync([0, 1, 0, 0, 1, 5, 0, 90]);
        Assert.True(await umas.IsClosedByPeerAsync());
        Assert.Equal(2, h.Gateway.Counters.Malformed);
        Assert.Equal(0, h.Plc.FramesReceived);
    }

    public static TheoryData<string, byte[]> WrongSizePdus => new()
    {
        // iti modbus_test_data_part2's 7th request: FC6 with 2 bytes after the value.
        { "FC6 + 2 bytes", [6, 0, 1, 0, 3, 0, 0] },
        // libmodbus unit-test-client: FC16 quantity 0, byte count 0, then 6 bytes.
        { "FC16 qty 0 + 6 bytes", [16, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6] },
        { "FC15 qty 0 + 2 bytes", [15, 0, 0, 0, 0, 0, 1, 2] },
        { "FC3 short", [3, 0, 0] },
        { "FC16 byte count disagrees with the PDU length", [16, 0, 100, 0, 2, 9, 0, 1, 0, 2] },
    };

    [Theory]
    [MemberData(nameof(WrongSizePdus))]
    public async Task WrongSizePdu_InAWellDelimitedAdu_IsAnswered03_NotForwarded_AndTheConnectionGoesOn(string name, byte[] pdu)
    {
        await using var h = await GatewayHarness.StartAsync(AllowAll);
        using var client = await h.ConnectAsync();

        var refusal = await client.RoundTripAsync(ModbusClient.Adu(0x0707, 1, pdu));
        var read = await client.RoundTripAsync(ModbusClient.ReadHolding(0x0808, 1, 0, 1));

        Assert.Equal(ModbusClient.Adu(0x0707, 1, (byte)(pdu[0] | 0x80), 0x03), refusal);
        Assert.Equal(0x0808, ForwardingTests.Tid(read));
        Assert.Equal(3, read[7]);
        Assert.Equal(1, h.Plc.FramesReceived);
        Assert.Equal(0, h.Gateway.Counters.Malformed);
        var audited = Assert.Single(h.Audit.OfKind(AuditEventKind.OutOfSpec));
        Assert.Contains("PDU length", audited.Reason, StringComparison.Ordinal);
        Assert.Equal(0x03, audited.ExceptionCode);
        Assert.False(await client.IsClosedByPeerAsync(200), name);
    }

    [Fact]
    public async Task WrongSizePdu_InMonitorMode_IsStillAnswered03_NeverForwarded()
    {
        await using var h = await GatewayHarness.StartAsync(AllowAll.Replace("enforce", "monitor", StringComparison.Ordinal));
        using var client = await h.ConnectAsync();

        var refusal = await client.RoundTripAsync(ModbusClient.Adu(1, 1, 6, 0, 1, 0, 3, 0, 0));

        Assert.Equal(ModbusClient.Adu(1, 1, 0x86, 0x03), refusal);
        Assert.Equal(0, h.Plc.FramesReceived);
    }
}
