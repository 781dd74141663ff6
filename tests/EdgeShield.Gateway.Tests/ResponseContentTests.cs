using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace EdgeShield.Gateway.Tests;

/// <summary>
/// PLC responses are checked by content, not only by shape; and the gateway answers on time whatever
/// the PLC does with its socket.
/// </summary>
public class ResponseContentTests
{
    private const string AllowAll = """
            mode: enforce
            rules:
              - name: any
        """;

    public static TheoryData<string, byte[], byte[]> WrongContent => new()
    {
        // request PDU → the PLC's answer (unit id first).
        { "FC8/00 echo with other data", [8, 0, 0, 0x12, 0x34], [1, 8, 0, 0, 0x12, 0x35] },
        { "FC20 two sub-responses to one sub-request", [20, 7, 6, 0, 4, 0, 1, 0, 1], [1, 20, 8, 3, 6, 0, 1, 3, 6, 0, 2] },
        { "FC20 more records than asked", [20, 7, 6, 0, 4, 0, 1, 0, 1], [1, 20, 6, 5, 6, 0, 1, 0, 2] },
        { "exception code 0", [3, 0, 0, 0, 1], [1, 0x83, 0] },
        { "FC43/14 another read code", [43, 14, 1, 0], [1, 43, 14, 2, 1, 0, 0, 1, 0, 1, 0x41] },
        { "FC43/14 another object", [43, 14, 4, 1], [1, 43, 14, 4, 1, 0, 0, 1, 2, 1, 0x41] },
    };

    [Theory]
    [MemberData(nameof(WrongContent))]
    public async Task ResponseThatDoesNotAnswerItsRequest_ClientGets0B_AndAnEvent(string name, byte[] request, byte[] answer)
    {
        await using var plc = new ScriptedPlc(_ => answer);
        await using var h = await GatewayHarness.StartAsync(AllowAll, upstreamPort: plc.Port);
        using var client = await h.ConnectAsync();

        var response = await client.RoundTripAsync(ModbusClient.Adu(0x0101, 1, request));

        Assert.Equal(ModbusClient.Adu(0x0101, 1, (byte)(request[0] | 0x80), 0x0B), response);
        var mismatch = Assert.Single(h.Audit.OfKind(AuditEventKind.ResponseMismatch));
        Assert.Equal(request[0], mismatch.FunctionCode);
        Assert.Single(plc.Requests);
        _ = name;
    }

    [Fact]
    public async Task Fc1PaddingBitsSet_AreClearedAndForwarded_WithAnEvent()
    {
        // Decision: the 10 coils asked for are intact, so the answer is not thrown away (0B); the 6 bits
        // after them, which the spec says are 0, are cleared so the HMI never sees coils it did not read.
        await using var plc = new ScriptedPlc(_ => [1, 1, 2, 0xFF, 0xFF]);
        await using var h = await GatewayHarness.StartAsync(AllowAll, upstreamPort: plc.Port);
        using var client = await h.ConnectAsync();

        var response = await client.RoundTripAsync(ModbusClient.Adu(7, 1, 1, 0, 0, 0, 10));

        Assert.Equal(ModbusClient.Adu(7, 1, 1, 2, 0xFF, 0x03), response);
        var corrected = Assert.Single(h.Audit.OfKind(AuditEventKind.ResponseCorrected));
        Assert.Contains("padding", corrected.Reason, StringComparison.Ordinal);
        Assert.Empty(h.Audit.OfKind(AuditEventKind.ResponseMismatch));
    }

    [Fact]
    public async Task PlcThatStopsReading_EveryRequestStillGets0BOnTime_NoneIsDeliveredLate()
    {
        // A PLC whose receive window is closed: the gateway's send of a request stalls. Every request
        // must still be answered 0B within about response-timeout of being sent; the stalled connection
        // is dropped with its unsent bytes, so the PLC never executes a write its client saw fail.
        await using var plc = new ScriptedPlc(_ => null) { StopReading = true };
        await using var h = await GatewayHarness.StartAsync(AllowAll, limits: "{ response-timeout: 300ms, pending-per-connection: 65535 }", upstreamPort: plc.Port);
        using var client = await h.ConnectAsync();

        // 20 000 writes of 123 registers (259 bytes each, 5 MiB): more than a closed window and the largest
        // send buffer Linux grows to (tcp_wmem 4 MiB) hold.
        const int Count = 20_000;
        var burst = new List<byte>();
        var values = new byte[1 + 4 + 1 + 246];
        values[0] = 16;
        values[4] = 123;
        values[5] = 246;
        for (int i = 0; i < Count; i++)
        {
            burst.AddRange(ModbusClient.Adu((ushort)(i + 1), 1, values));
        }
        var clock = Stopwatch.StartNew();
        var send = client.Socket.SendAsync(burst.ToArray(), SocketFlags.None);

        var answered = new HashSet<int>();
        while (answered.Count < Count && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            var response = await client.ReceiveAsync(10_000);
            if (response is null)
            {
                break;
            }
            Assert.Equal([0x90, 0x0B], response[7..]);
            Assert.True(answered.Add(ForwardingTests.Tid(response)));
        }
        await send;

        Assert.Equal(Count, answered.Count);
        Assert.Contains(h.Audit.OfKind(AuditEventKind.UpstreamLost), e => e.Reason.Contains("not reading", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ClientClosingWhileThePlcConnectRuns_IsNotAConnectFailure()
    {
        // A PLC whose accept queue is full: SYNs are dropped, so the gateway's connect hangs until
        // connect-timeout. The client gives up and closes meanwhile.
        using var plc = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        plc.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        plc.Listen(0);
        int port = ((IPEndPoint)plc.LocalEndPoint!).Port;
        var fillers = new List<Socket>();
        for (int i = 0; i < 3; i++)
        {
            var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            fillers.Add(filler);
            using var cts = new CancellationTokenSource(300);
            try
            {
                await filler.ConnectAsync(plc.LocalEndPoint!, cts.Token);
            }
            catch (OperationCanceledException)
            {
                break; // the queue is full
            }
        }
        try
        {
            await using var h = await GatewayHarness.StartAsync(AllowAll, limits: "{ connect-timeout: 5s }", upstreamPort: port);
            var upstream = h.Gateway.Upstreams.TcpUpstreams.Values.Single();
            using (var client = await h.ConnectAsync())
            {
                await client.SendAsync(ModbusClient.ReadHolding(1, 1, 0, 1));
                await Task.Delay(400);
            }
            Assert.Equal(0, await h.SessionCountAsync(0));
            await Task.Delay(200);

            Assert.Equal(0, upstream.Counters.ConnectFailures);
            Assert.Equal(0, upstream.Counters.Unreachable);
            Assert.Empty(h.Audit.OfKind(AuditEventKind.UpstreamUnreachable));
            Assert.Equal(0, h.Gateway.Counters.Timeouts);
        }
        finally
        {
            foreach (var filler in fillers)
            {
                filler.Dispose();
            }
        }
    }
}
