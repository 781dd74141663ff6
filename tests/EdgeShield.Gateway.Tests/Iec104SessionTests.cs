using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using EdgeShield.Policy;

namespace EdgeShield.Gateway.Tests;

/// <summary>
/// The IEC 104 session in process, between a raw client and a scripted station on real loopback sockets,
/// both written byte by byte here so that every N(S), N(R), S- and U-frame is ours to choose and to check:
/// renumbering across refusals, the k and w windows, t1, TESTFR per leg, dropped confirmations, STARTDT/STOPDT.
/// One of them measures the whole process's allocations, so the class runs alone, after the parallel ones.
/// </summary>
[Collection(nameof(ProcessWideAllocation))]
public sealed class Iec104SessionTests : IAsyncLifetime, IDisposable
{
    private const string Policy = """
            protocol: iec104
            mode: enforce
            rules:
              - name: breakers
                type: [C_SC_NA_1]
                ca: 1
                ioa: 2000-2049
        """;

    private TcpListener _station = null!;
    private EdgeGateway? _gateway;
    private readonly MemoryAuditSink _audit = new();
    private readonly List<Apci> _sockets = [];

    public Task InitializeAsync()
    {
        _station = new TcpListener(IPAddress.Loopback, 0);
        _station.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var socket in _sockets)
        {
            socket.Dispose();
        }
        if (_gateway is not null)
        {
            await _gateway.DisposeAsync();
        }
        _station.Stop();
    }

    public void Dispose() => _station.Dispose();

    private async Task<Apci> StartGatewayAsync(string limits = "")
    {
        await StartListenerAsync(limits);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var client = new Apci(socket);
        _sockets.Add(client);
        await socket.ConnectAsync(_gateway!.Listeners[0].LocalEndPoint);
        return client;
    }

    private async Task StartListenerAsync(string limits = "")
    {
        int port = ((IPEndPoint)_station.LocalEndpoint).Port;
        string yaml = $$"""
            gateway: { name: test-gw, site: lab }
            listeners:
              - name: rtu7
                bind: 127.0.0.1:0
                protocol: iec104
                upstream: tcp://127.0.0.1:{{port}}
                policy: rtu7
            {{(limits.Length > 0 ? "    limits: " + limits : "")}}
            policies:
              rtu7:
            {{Policy}}
            """;
        var loaded = ConfigLoader.LoadText(yaml, "test.yaml", new MaintenanceState());
        Assert.False(loaded.HasErrors, string.Join("\n", loaded.Diagnostics));
        _gateway = await EdgeGateway.StartAsync(loaded.Config!, _audit);
    }

    /// <summary>The client sends STARTDT act; the station (accepted here) gets it and confirms; the client gets the con.</summary>
    private async Task<(Apci Client, Apci Station)> StartedAsync(string limits = "")
    {
        var client = await StartGatewayAsync(limits);
        await client.SendAsync(Apci.U(0x07));
        var station = await AcceptStationAsync();
        Assert.Equal(Apci.U(0x07), await station.ReadAsync());
        await station.SendAsync(Apci.U(0x0B));
        Assert.Equal(Apci.U(0x0B), await client.ReadAsync());
        return (client, station);
    }

    private async Task<Apci> AcceptStationAsync()
    {
        using var cts = new CancellationTokenSource(15_000);
        var socket = await _station.AcceptSocketAsync(cts.Token);
        socket.NoDelay = true;
        var station = new Apci(socket);
        _sockets.Add(station);
        return station;
    }

    private static byte[] SingleCommand(int ioa, int cause = 6, bool negative = false, bool select = false) =>
        [45, 1, (byte)(cause | (negative ? 0x40 : 0)), 0, 1, 0, (byte)ioa, (byte)(ioa >> 8), (byte)(ioa >> 16), (byte)(select ? 0x81 : 0x01)];

    private static byte[] SinglePoint(int ioa, byte value) => [1, 1, 3, 0, 1, 0, (byte)ioa, (byte)(ioa >> 8), (byte)(ioa >> 16), value];

    [Fact]
    public async Task RefusedCommands_AreAnsweredByTheGateway_AndNeitherLegsNumberingSkipsAnything()
    {
        var (client, station) = await StartedAsync();
        int[] ioas = [2000, 2100, 2001, 2200, 2300, 2002, 2003]; // 2100, 2200, 2300: outside 2000-2049, refused with 47
        var forwarded = new List<int>();
        var clientSeen = new List<(ushort Ns, byte[] Asdu)>();
        for (ushort i = 0; i < ioas.Length; i++)
        {
            await client.SendAsync(Apci.I(i, 0, SingleCommand(ioas[i])));
            if (ioas[i] < 2050)
            {
                var f = await station.ReadIAsync();
                Assert.Equal((ushort)forwarded.Count, Apci.SendSequence(f)); // the station's numbering: 0, 1, 2… with no gap
                Assert.Equal(SingleCommand(ioas[i]), f[6..]);
                forwarded.Add(ioas[i]);
                // The station confirms it; the client gets the con in its own numbering.
                await station.SendAsync(Apci.I((ushort)(forwarded.Count - 1), (ushort)forwarded.Count, SingleCommand(ioas[i], cause: 7)));
            }
            var answer = await client.ReadIAsync();
            clientSeen.Add((Apci.SendSequence(answer), answer[6..]));
            Assert.Equal(SingleCommand(ioas[i], cause: ioas[i] < 2050 ? 7 : 47, negative: ioas[i] >= 2050), answer[6..]);
        }
        Assert.Equal([0, 1, 2, 3, 4, 5, 6], clientSeen.Select(s => (int)s.Ns));
        Assert.Equal([2000, 2001, 2002, 2003], forwarded);

        // Both legs go on: the client's N(R) acknowledges all 7, the station's I-frame 4 and the client's N(S) 7 are accepted.
        await client.SendAsync(Apci.S(7));
        await client.SendAsync(Apci.I(7, 7, SingleCommand(2004)));
        var next = await station.ReadIAsync();
        Assert.Equal((4, 4), (Apci.SendSequence(next), Apci.ReceiveSequence(next)));
        Assert.Equal(3, _audit.OfKind(AuditEventKind.Denied).Length);
        Assert.Empty(_audit.OfKind(AuditEventKind.Malformed));
    }

    [Fact]
    public async Task ARefusalWhileTheClientsWindowIsFull_IsSentOnceTheClientsAcknowledgementBehindItIsRead()
    {
        // t1 20 s: were the receive loop to wait for the acknowledgement behind the refusal, nothing would come
        // before t1 closes the connection, and the read below (10 s) fails; a loaded machine may be slow, not that.
        var (client, station) = await StartedAsync("{ k: 2, w: 2, t1: 20s, t2: 1s }");
        // The station fills the client's window (k = 2): two spontaneous points the client has not acknowledged yet.
        await station.SendAsync(Apci.I(0, 0, SinglePoint(100, 1)));
        await station.SendAsync(Apci.I(1, 0, SinglePoint(101, 1)));
        Assert.Equal(0, Apci.SendSequence(await client.ReadIAsync()));
        Assert.Equal(1, Apci.SendSequence(await client.ReadIAsync()));

        // A refused command and, in the same segment, the S-frame that opens the window again.
        var clock = Stopwatch.StartNew();
        await client.SendAsync([.. Apci.I(0, 0, SingleCommand(2100)), .. Apci.S(2)]);
        var refusal = await client.ReadIAsync(10_000);
        Assert.Equal(2, Apci.SendSequence(refusal));
        Assert.Equal(SingleCommand(2100, cause: 47, negative: true), refusal[6..]);
        Assert.True(clock.ElapsedMilliseconds < 10_000, $"the refusal came after {clock.ElapsedMilliseconds} ms: the receive loop waited for an acknowledgement it had not read");
        Assert.DoesNotContain(_audit.Events, e => e.ConnectionClosed);
    }

    /// <summary>
    /// Both windows full at once, each peer's acknowledgement behind a frame that waits for the other's window: the
    /// client's S-frame behind a command for the station's full window, the station's behind a point for the client's
    /// full window. Were the receive loop to wait for the station's window, neither acknowledgement would ever be read
    /// and t1 would close a session in which both peers kept to k and w.
    /// </summary>
    [Fact]
    public async Task BothWindowsFullAtOnce_EachAcknowledgementBehindAWaitingFrame_NeitherWaitsForT1()
    {
        // t1 20 s and t2 10 s: the bounds below (8 s) are then no timer's doing.
        var (client, station) = await StartedAsync("{ k: 2, w: 2, t1: 20s, t2: 10s }");
        // The station fills the client's window: two points, which the gateway acknowledges to it (w = 2).
        await station.SendAsync([.. Apci.I(0, 0, SinglePoint(100, 1)), .. Apci.I(1, 0, SinglePoint(101, 1))]);
        Assert.Equal(0, Apci.SendSequence(await client.ReadIAsync()));
        Assert.Equal(1, Apci.SendSequence(await client.ReadIAsync()));
        var stationAck = await station.ReadAsync(8000);
        Assert.True(Apci.IsS(stationAck) && Apci.ReceiveSequence(stationAck) == 2, Convert.ToHexString(stationAck));
        // A third point: the upstream loop now waits for the client's window.
        await station.SendAsync(Apci.I(2, 0, SinglePoint(102, 1)));
        Assert.Null(await client.ReadOrTimeoutAsync(300));

        // The client fills the station's window: two commands, which reach the station (and the gateway acknowledges, w = 2).
        await client.SendAsync([.. Apci.I(0, 0, SingleCommand(2000)), .. Apci.I(1, 0, SingleCommand(2001))]);
        Assert.Equal(0, Apci.SendSequence(await station.ReadIAsync()));
        Assert.Equal(1, Apci.SendSequence(await station.ReadIAsync()));
        var clientAck = await client.ReadAsync(8000);
        Assert.True(Apci.IsS(clientAck) && Apci.ReceiveSequence(clientAck) == 2, Convert.ToHexString(clientAck));

        // Now each acknowledgement behind a frame that cannot go yet: the client's behind a third command, the station's
        // behind the third point it already sent.
        var clock = Stopwatch.StartNew();
        await client.SendAsync([.. Apci.I(2, 0, SingleCommand(2002)), .. Apci.S(2)]);
        await station.SendAsync(Apci.S(2));

        var third = await station.ReadIAsync(10_000);
        Assert.Equal(2, Apci.SendSequence(third));
        Assert.Equal(SingleCommand(2002), third[6..]);
        var point = await client.ReadIAsync(10_000);
        Assert.Equal(2, Apci.SendSequence(point));
        Assert.Equal(SinglePoint(102, 1), point[6..]);
        Assert.True(clock.ElapsedMilliseconds < 8000, $"the frames came after {clock.ElapsedMilliseconds} ms: a loop waited for an acknowledgement it had not read");
        // The command the gateway held is acknowledged to the client only once it went to the station: never before.
        Assert.True(Apci.ReceiveSequence(point) <= 3, Convert.ToHexString(point));
        Assert.DoesNotContain(_audit.Events, e => e.ConnectionClosed);
    }

    [Fact]
    public async Task ACommandHeldForTheStationsWindow_IsAcknowledgedToTheClientOnlyOnceItWent_AndMoreThanKHeldCloses()
    {
        var (client, station) = await StartedAsync("{ k: 2, w: 1, t1: 20s, t2: 10s }");
        // Two commands fill the station's window; each is acknowledged to the client (w = 1) as it goes.
        await client.SendAsync([.. Apci.I(0, 0, SingleCommand(2000)), .. Apci.I(1, 0, SingleCommand(2001))]);
        Assert.Equal(0, Apci.SendSequence(await station.ReadIAsync()));
        Assert.Equal(1, Apci.SendSequence(await station.ReadIAsync()));
        ushort acked = 0;
        while (acked < 2)
        {
            acked = Apci.ReceiveSequence(await client.ReadAsync(8000));
        }

        // A third is held back: not acknowledged, so the client's own k bounds what the gateway holds.
        await client.SendAsync(Apci.I(2, 0, SingleCommand(2002)));
        Assert.Null(await client.ReadOrTimeoutAsync(500));
        Assert.Null(await station.ReadOrTimeoutAsync(200));

        // The station's acknowledgement opens its window: the command goes, and only then is it acknowledged to the client.
        await station.SendAsync(Apci.S(2));
        var third = await station.ReadIAsync(8000);
        Assert.Equal(2, Apci.SendSequence(third));
        Assert.Equal(SingleCommand(2002), third[6..]);
        var ack = await client.ReadAsync(8000);
        Assert.True(Apci.IsS(ack) && Apci.ReceiveSequence(ack) == 3, Convert.ToHexString(ack));

        // The station does not acknowledge again: one more command fits its window, the next ones are held. Two held
        // (unacknowledged) are within the client's k = 2; a third breaks k, and the gateway closes, audited.
        await client.SendAsync([.. Apci.I(3, 0, SingleCommand(2003)), .. Apci.I(4, 0, SingleCommand(2004))]);
        Assert.Equal(3, Apci.SendSequence(await station.ReadIAsync(8000))); // the window had room for one
        await client.SendAsync([.. Apci.I(5, 0, SingleCommand(2005)), .. Apci.I(6, 0, SingleCommand(2006))]);
        Assert.True(await client.ClosedAsync(8000), "the client broke k and the connection stayed open");
        Assert.Contains(_audit.Events, e => e.Kind == AuditEventKind.Malformed && e.ConnectionClosed && e.Reason.Contains("more than k = 2", StringComparison.Ordinal));
    }

    /// <summary>
    /// A command held back has not reached the station: its response-timeout starts when it goes. Were it counted from
    /// when it was judged, the client would get the gateway's negative confirmation and the station the command after
    /// it, and execute what the client was told failed.
    /// </summary>
    [Fact]
    public async Task ACommandHeldBack_GetsItsWholeResponseTimeoutFromWhenItGoes_NeverANegativeConfirmationBefore()
    {
        var (client, station) = await StartedAsync("{ k: 1, w: 1, t1: 20s, t2: 10s, response-timeout: 1s }");
        await client.SendAsync(Apci.I(0, 0, SingleCommand(2000)));
        Assert.Equal(0, Apci.SendSequence(await station.ReadIAsync()));
        // The station confirms and terminates it without acknowledging it (N(R) 0): its window (k = 1) stays full.
        await station.SendAsync([.. Apci.I(0, 0, SingleCommand(2000, cause: 7)), .. Apci.I(1, 0, SingleCommand(2000, cause: 10))]);
        Assert.Equal(SingleCommand(2000, cause: 7), (await client.ReadIAsync())[6..]);
        await client.SendAsync(Apci.S(1)); // the client's window is k = 1 too
        Assert.Equal(SingleCommand(2000, cause: 10), (await client.ReadIAsync())[6..]);

        // The next command is held back for 2.5 s, longer than response-timeout (1 s): no answer to the client meanwhile.
        await client.SendAsync(Apci.I(1, 2, SingleCommand(2001)));
        var clock = Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < 2500)
        {
            var f = await client.ReadOrTimeoutAsync(200);
            Assert.True(f is null || !Apci.IsI(f), "the client got an answer to a command still held back: " + (f is null ? "" : Convert.ToHexString(f)));
        }
        await station.SendAsync(Apci.S(1));
        var second = await station.ReadIAsync(8000);
        Assert.Equal(SingleCommand(2001), second[6..]);
        await station.SendAsync(Apci.I(2, 2, SingleCommand(2001, cause: 7)));
        Assert.Equal(SingleCommand(2001, cause: 7), (await client.ReadIAsync(8000))[6..]);
        Assert.Empty(_audit.OfKind(AuditEventKind.ResponseTimeout));
        Assert.Empty(_audit.OfKind(AuditEventKind.UnmatchedResponse));
    }

    [Fact]
    public async Task AStopDtActBehindAHeldCommand_ReachesTheStationAfterIt_InTheClientsOrder()
    {
        var (client, station) = await StartedAsync("{ k: 1, w: 1, t1: 20s, t2: 10s }");
        await client.SendAsync(Apci.I(0, 0, SingleCommand(2000)));
        Assert.Equal(0, Apci.SendSequence(await station.ReadIAsync()));
        // The station's window (k = 1) is full: the next command is held, and the STOPDT act after it waits behind it.
        await client.SendAsync([.. Apci.I(1, 0, SingleCommand(2001)), .. Apci.U(0x13)]);
        Assert.Null(await station.ReadOrTimeoutAsync(500));

        await station.SendAsync(Apci.S(1));
        var next = await station.ReadIAsync(8000);
        Assert.Equal(SingleCommand(2001), next[6..]);
        Assert.Equal(Apci.U(0x13), await station.ReadAsync(8000));
        await station.SendAsync(Apci.U(0x23));
        var clientFrame = await client.ReadAsync(8000);
        while (Apci.IsS(clientFrame))
        {
            clientFrame = await client.ReadAsync(8000); // the acknowledgements of its two commands (w = 1)
        }
        Assert.Equal(Apci.U(0x23), clientFrame);
        Assert.DoesNotContain(_audit.Events, e => e.ConnectionClosed);
    }

    [Fact]
    public async Task KWindow_TheStationNotAcknowledging_GetsAtMostKIFrames_AndTheGatewayClosesAfterT1()
    {
        var (client, station) = await StartedAsync("{ k: 3, w: 2, t1: 2s, t2: 1s }");
        var clock = Stopwatch.StartNew();
        for (ushort i = 0; i < 6; i++)
        {
            await client.SendAsync(Apci.I(i, 0, SingleCommand(2000 + i)));
        }

        var received = new List<byte[]>();
        while (await station.ReadOrNullAsync(20_000) is { } f)
        {
            if (Apci.IsI(f))
            {
                received.Add(f);
            }
        }
        long closedAfter = clock.ElapsedMilliseconds;
        Assert.Equal([0, 1, 2], received.Select(f => (int)Apci.SendSequence(f)));
        Assert.InRange(closedAfter, 1800, 20_000); // not before t1; the upper bound is CI headroom for a late sweep
        Assert.True(await client.ClosedAsync(15_000), "the client's connection stayed open");
        Assert.Contains(_audit.Events, e => e.ConnectionClosed && e.Reason.Contains("t1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WWindow_TheGatewayAcknowledgesAfterWIFrames_OnBothLegs()
    {
        var (client, station) = await StartedAsync("{ k: 12, w: 4 }"); // t2 10 s: an S-frame before that is the w rule

        // Station → gateway: 3 I-frames are not yet acknowledged; the 4th is, at once.
        for (ushort i = 0; i < 3; i++)
        {
            await station.SendAsync(Apci.I(i, 0, SinglePoint(100 + i, 1)));
        }
        Assert.Null(await station.ReadOrTimeoutAsync(500));
        await station.SendAsync(Apci.I(3, 0, SinglePoint(103, 1)));
        var ack = await station.ReadAsync(8000); // well before t2 (10 s), so it is the w rule's; headroom for CI
        Assert.True(Apci.IsS(ack) && Apci.ReceiveSequence(ack) == 4, Convert.ToHexString(ack));
        for (int i = 0; i < 4; i++)
        {
            var f = await client.ReadIAsync();
            Assert.Equal(i, Apci.SendSequence(f));
        }

        // Client → gateway: the same on the client leg (the 4 spontaneous frames it got are acknowledged with them).
        await client.SendAsync(Apci.S(4));
        for (ushort i = 0; i < 3; i++)
        {
            await client.SendAsync(Apci.I(i, 4, SingleCommand(2000 + i)));
        }
        Assert.Null(await client.ReadOrTimeoutAsync(500));
        await client.SendAsync(Apci.I(3, 4, SingleCommand(2003)));
        var clientAck = await client.ReadAsync(8000); // before t2, as above
        Assert.True(Apci.IsS(clientAck) && Apci.ReceiveSequence(clientAck) == 4, Convert.ToHexString(clientAck));
    }

    [Fact]
    public async Task TheStationsConfirmationAndTerminationInOneSegment_ReachTheClientInOneSegment_NumberedInOrder()
    {
        var (client, station) = await StartedAsync();
        for (ushort i = 0; i < 3; i++)
        {
            await client.SendAsync(Apci.I(i, (ushort)(2 * i), SingleCommand(2000 + i)));
            var command = await station.ReadIAsync();
            Assert.Equal((i, (ushort)(2 * i)), (Apci.SendSequence(command), Apci.ReceiveSequence(command)));
            uint segments = client.DataSegmentsIn();
            // The station answers as lib60870's does under load: actcon and actterm in one segment.
            await station.SendAsync([.. Apci.I((ushort)(2 * i), (ushort)(i + 1), SingleCommand(2000 + i, cause: 7)),
                .. Apci.I((ushort)(2 * i + 1), (ushort)(i + 1), SingleCommand(2000 + i, cause: 10))]);

            var con = await client.ReadAsync();
            var term = await client.ReadAsync();
            Assert.Equal(SingleCommand(2000 + i, cause: 7), con[6..]);
            Assert.Equal(SingleCommand(2000 + i, cause: 10), term[6..]);
            // The client leg's own numbering, in order, each acknowledging the client's command.
            Assert.Equal(((ushort)(2 * i), (ushort)(i + 1)), (Apci.SendSequence(con), Apci.ReceiveSequence(con)));
            Assert.Equal(((ushort)(2 * i + 1), (ushort)(i + 1)), (Apci.SendSequence(term), Apci.ReceiveSequence(term)));
            Assert.Equal(1u, client.DataSegmentsIn() - segments); // one write for both, as the station sent them
        }
        Assert.Empty(_audit.OfKind(AuditEventKind.UnmatchedResponse));
        Assert.DoesNotContain(_audit.Events, e => e.ConnectionClosed);
    }

    [Fact]
    public async Task MoreIFramesInOneSegmentThanTheClientsWindow_TheFirstKGoAtOnce_TheRestAfterTheClientsAcknowledgement()
    {
        // t1 and t2 long (20 s, 10 s): the time bound below (8 s) is then no timer's doing, and has CI headroom.
        var (client, station) = await StartedAsync("{ k: 2, w: 2, t1: 20s, t2: 10s }");
        uint segments = client.DataSegmentsIn();
        await station.SendAsync([.. Apci.I(0, 0, SinglePoint(100, 1)), .. Apci.I(1, 0, SinglePoint(101, 1)), .. Apci.I(2, 0, SinglePoint(102, 1))]);

        // What was collected before the window filled is sent before the gateway waits for it: the client can acknowledge it.
        var clock = Stopwatch.StartNew();
        Assert.Equal(0, Apci.SendSequence(await client.ReadIAsync()));
        Assert.Equal(1, Apci.SendSequence(await client.ReadIAsync()));
        Assert.True(clock.ElapsedMilliseconds < 8000, $"the first two frames came after {clock.ElapsedMilliseconds} ms");
        Assert.Equal(1u, client.DataSegmentsIn() - segments);
        Assert.Null(await client.ReadOrTimeoutAsync(300)); // the third waits for room in the window

        await client.SendAsync(Apci.S(2));
        var third = await client.ReadIAsync();
        Assert.Equal(2, Apci.SendSequence(third));
        Assert.Equal(SinglePoint(102, 1), third[6..]);
        // The station's three I-frames were acknowledged (w = 2) before the gateway waited for the client's window.
        var ack = await station.ReadAsync(8000); // before t2 (10 s): the w rule's
        Assert.True(Apci.IsS(ack) && Apci.ReceiveSequence(ack) >= 2, Convert.ToHexString(ack));
        Assert.DoesNotContain(_audit.Events, e => e.ConnectionClosed);
    }

    [Fact]
    public async Task WIFramesOfTheStationInOneSegment_AreAcknowledgedOnceAtTheEndOfTheRead()
    {
        var (client, station) = await StartedAsync("{ k: 12, w: 4 }"); // t2 10 s
        byte[] segment = [];
        for (ushort i = 0; i < 6; i++)
        {
            segment = [.. segment, .. Apci.I(i, 0, SinglePoint(100 + i, 1))];
        }
        await station.SendAsync(segment);

        var ack = await station.ReadAsync(8000); // before t2 (10 s): the w rule's; headroom for CI
        Assert.True(Apci.IsS(ack) && Apci.ReceiveSequence(ack) == 6, Convert.ToHexString(ack)); // all six, in one S-frame
        Assert.Null(await station.ReadOrTimeoutAsync(500));
        for (ushort i = 0; i < 6; i++)
        {
            var f = await client.ReadIAsync();
            Assert.Equal(i, Apci.SendSequence(f));
            Assert.Equal(SinglePoint(100 + i, 1), f[6..]);
        }
    }

    /// <summary>
    /// The frame path allocates nothing in steady state (optimised build, as shipped): a command judged and renumbered to the
    /// station, its confirmation and termination collected from one read, numbered and written to the client in one write.
    /// Whole process, peers driven here with blocking socket calls on preallocated buffers (they allocate nothing).
    /// </summary>
    [Fact]
    public async Task CommandAndItsConfirmationAndTermination_SteadyState_AllocateNothingOptimized()
    {
        // Blocking calls only, from the connect on: a socket once used asynchronously makes each blocking call allocate.
        await StartListenerAsync();
        var c = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 10_000 };
        _sockets.Add(new Apci(c));
        c.Connect(_gateway!.Listeners[0].LocalEndPoint);
        SendAll(c, Apci.U(0x07));
        var s = _station.AcceptSocket();
        _sockets.Add(new Apci(s));
        s.NoDelay = true;
        s.ReceiveTimeout = 10_000;
        var u = new byte[6];
        ReceiveExactly(s, u);
        Assert.Equal(Apci.U(0x07), u);
        SendAll(s, Apci.U(0x0B));
        ReceiveExactly(c, u);
        Assert.Equal(Apci.U(0x0B), u);
        var command = new byte[16];
        var atStation = new byte[16];
        var answers = new byte[32];
        var atClient = new byte[32];
        void Round(int i)
        {
            Apci.I((ushort)i, (ushort)(2 * i), SingleCommand(2000 + (i % 50))).CopyTo(command, 0);
            SendAll(c, command);
            ReceiveExactly(s, atStation);
            Apci.I((ushort)(2 * i), (ushort)(i + 1), SingleCommand(2000 + (i % 50), cause: 7)).CopyTo(answers, 0);
            Apci.I((ushort)(2 * i + 1), (ushort)(i + 1), SingleCommand(2000 + (i % 50), cause: 10)).CopyTo(answers, 16);
            SendAll(s, answers);
            ReceiveExactly(c, atClient);
        }
        // The frames are built before the measurement (the helpers allocate), then only renumbered in place.
        void RoundInPlace(int i)
        {
            SetControl(command, (ushort)i, (ushort)(2 * i));
            SendAll(c, command);
            ReceiveExactly(s, atStation);
            SetControl(answers.AsSpan(0, 16), (ushort)(2 * i), (ushort)(i + 1));
            SetControl(answers.AsSpan(16), (ushort)(2 * i + 1), (ushort)(i + 1));
            SendAll(s, answers);
            ReceiveExactly(c, atClient);
        }
        const int Warmup = 500, Commands = 2000, Windows = 5;
        for (int i = 0; i < Warmup; i++)
        {
            Round(i);
        }
        // The fewest whole bytes per command over five windows of 2000: the test host allocates on its own now and then
        // (it reports results while this test runs); an allocation on the frame path would show in every window.
        long perCommand = long.MaxValue;
        for (int w = 0; w < Windows; w++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            for (int i = Warmup + w * Commands; i < Warmup + (w + 1) * Commands; i++)
            {
                RoundInPlace(i);
            }
            perCommand = Math.Min(perCommand, (GC.GetTotalAllocatedBytes(precise: true) - before) / Commands);
        }
        int last = Warmup + Windows * Commands - 1;
        // The last answers as the client got them: its own numbering, in order, the con then the term.
        Assert.Equal(((ushort)(2 * last), (ushort)(last + 1)), (Apci.SendSequence(atClient), Apci.ReceiveSequence(atClient)));
        Assert.Equal(((ushort)(2 * last + 1), (ushort)(last + 1)), (Apci.SendSequence(atClient[16..]), Apci.ReceiveSequence(atClient[16..])));
        Assert.Equal(SingleCommand(2000 + ((Warmup - 1) % 50), cause: 10), atClient[22..]); // the warm-up's last frames, renumbered since
        Assert.DoesNotContain(_audit.Events, e => e.ConnectionClosed);
        bool optimized = typeof(EdgeGateway).Assembly.GetCustomAttribute<DebuggableAttribute>()?.IsJITOptimizerDisabled != true;
        if (optimized)
        {
            Assert.Equal(0, perCommand);
        }
    }

    private static void SetControl(Span<byte> frame, ushort ns, ushort nr)
    {
        frame[2] = (byte)(ns << 1);
        frame[3] = (byte)(ns >> 7);
        frame[4] = (byte)(nr << 1);
        frame[5] = (byte)(nr >> 7);
    }

    private static void SendAll(Socket socket, ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            data = data[socket.Send(data)..];
        }
    }

    private static void ReceiveExactly(Socket socket, Span<byte> into)
    {
        while (!into.IsEmpty)
        {
            int n = socket.Receive(into);
            Assert.True(n > 0, "closed");
            into = into[n..];
        }
    }

    [Fact]
    public async Task TestFrAct_FromEitherPeer_IsAnsweredByTheGateway_AndNeverForwarded()
    {
        var (client, station) = await StartedAsync();

        await client.SendAsync(Apci.U(0x43));
        Assert.Equal(Apci.U(0x83), await client.ReadAsync());
        await station.SendAsync(Apci.U(0x43));
        Assert.Equal(Apci.U(0x83), await station.ReadAsync());

        Assert.Null(await station.ReadOrTimeoutAsync(500)); // the client's TESTFR never reached the station
        Assert.Null(await client.ReadOrTimeoutAsync(100)); // nor the station's the client

        // Data still flows both ways after.
        await client.SendAsync(Apci.I(0, 0, SingleCommand(2000)));
        Assert.Equal(SingleCommand(2000), (await station.ReadIAsync())[6..]);
    }

    [Fact]
    public async Task AConfirmationThatAnswersNoOutstandingCommand_IsDroppedAndAudited_TheStationsNumberingIntact()
    {
        var (client, station) = await StartedAsync();

        await station.SendAsync(Apci.I(0, 0, SingleCommand(2005, cause: 7))); // nothing was sent to 2005
        await station.SendAsync(Apci.I(1, 0, SingleCommand(2006, cause: 10)));
        Assert.Null(await client.ReadOrTimeoutAsync(500));

        await client.SendAsync(Apci.I(0, 0, SingleCommand(2007)));
        var forwarded = await station.ReadIAsync();
        Assert.Equal((0, 2), (Apci.SendSequence(forwarded), Apci.ReceiveSequence(forwarded))); // both dropped frames acknowledged
        await station.SendAsync(Apci.I(2, 1, SingleCommand(2007, cause: 7)));
        var con = await client.ReadIAsync();
        Assert.Equal(0, Apci.SendSequence(con));
        Assert.Equal(SingleCommand(2007, cause: 7), con[6..]);

        var unmatched = _audit.OfKind(AuditEventKind.UnmatchedResponse);
        Assert.Equal([2005u, 2006u], unmatched.Select(e => e.Iec104.Ioa));
        Assert.All(unmatched, e => Assert.Contains("answers no command outstanding", e.Reason, StringComparison.Ordinal));
    }

    [Fact]
    public async Task AnIFrameFromTheStationBeforeStartDtCon_IsNotForwarded()
    {
        var client = await StartGatewayAsync();
        await client.SendAsync(Apci.U(0x07));
        var station = await AcceptStationAsync();
        Assert.Equal(Apci.U(0x07), await station.ReadAsync());

        await station.SendAsync(Apci.I(0, 0, SinglePoint(100, 1)));
        await Task.Delay(200);
        await station.SendAsync(Apci.U(0x0B));
        Assert.Equal(Apci.U(0x0B), await client.ReadAsync()); // the con, and nothing before it
        await station.SendAsync(Apci.I(1, 0, SinglePoint(101, 0)));
        var f = await client.ReadIAsync();
        Assert.Equal(0, Apci.SendSequence(f));
        Assert.Equal(SinglePoint(101, 0), f[6..]);

        var dropped = Assert.Single(_audit.OfKind(AuditEventKind.UnmatchedResponse));
        Assert.Contains("before STARTDT", dropped.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BetweenStopDtActAndCon_TheStationsConfirmationOfAnOutstandingCommand_StillReachesTheClient()
    {
        var (client, station) = await StartedAsync();
        await client.SendAsync(Apci.I(0, 0, SingleCommand(2000)));
        Assert.Equal(SingleCommand(2000), (await station.ReadIAsync())[6..]);

        await client.SendAsync(Apci.U(0x13));
        Assert.Equal(Apci.U(0x13), await station.ReadAsync());
        // The station finishes the command, then confirms STOPDT (IEC 60870-5-104 5.3).
        await station.SendAsync(Apci.I(0, 1, SingleCommand(2000, cause: 7)));
        await station.SendAsync(Apci.I(1, 1, SingleCommand(2000, cause: 10)));
        await station.SendAsync(Apci.U(0x23));

        Assert.Equal(SingleCommand(2000, cause: 7), (await client.ReadIAsync())[6..]);
        Assert.Equal(SingleCommand(2000, cause: 10), (await client.ReadIAsync())[6..]);
        Assert.Equal(Apci.U(0x23), (await client.ReadAsync()) is var f && Apci.IsS(f) ? await client.ReadAsync() : f);
        Assert.Empty(_audit.OfKind(AuditEventKind.UnmatchedResponse));
    }

    [Fact]
    public async Task AStationThatConfirmsAfterASecondAndAHalf_IsWaitedFor_NotAnsweredNegativelyByTheGateway()
    {
        // No response-timeout: an IEC 104 listener waits t1 (10 s, so that a loaded machine stretching the 1.5 s
        // below is still well within it).
        var (client, station) = await StartedAsync("{ t1: 10s, t2: 1s }");
        await client.SendAsync(Apci.I(0, 0, SingleCommand(2000)));
        Assert.Equal(SingleCommand(2000), (await station.ReadIAsync())[6..]);
        await Task.Delay(1500);
        await station.SendAsync(Apci.I(0, 1, SingleCommand(2000, cause: 7)));

        Assert.Equal(SingleCommand(2000, cause: 7), (await client.ReadIAsync())[6..]);
        Assert.Empty(_audit.OfKind(AuditEventKind.ResponseTimeout));
        Assert.Empty(_audit.OfKind(AuditEventKind.UnmatchedResponse));
    }

    [Fact]
    public async Task StopDtActBeforeTheStationsStartDtCon_BothConsAreRelayed_TheConnectionStays()
    {
        var client = await StartGatewayAsync();
        await client.SendAsync([.. Apci.U(0x07), .. Apci.U(0x13)]);
        var station = await AcceptStationAsync();
        Assert.Equal(Apci.U(0x07), await station.ReadAsync());
        Assert.Equal(Apci.U(0x13), await station.ReadAsync());
        await station.SendAsync([.. Apci.U(0x0B), .. Apci.U(0x23)]);

        Assert.Equal(Apci.U(0x0B), await client.ReadAsync());
        Assert.Equal(Apci.U(0x23), await client.ReadAsync());
        Assert.DoesNotContain(_audit.Events, e => e.ConnectionClosed);
        // Stopped: STARTDT again works.
        await client.SendAsync(Apci.U(0x07));
        Assert.Equal(Apci.U(0x07), await station.ReadAsync());
        await station.SendAsync(Apci.U(0x0B));
        Assert.Equal(Apci.U(0x0B), await client.ReadAsync());
    }

    [Fact]
    public async Task StopDt_ActAndCon_AreCarriedEndToEnd_AndStartDtAgainAfter()
    {
        var (client, station) = await StartedAsync();

        await client.SendAsync(Apci.U(0x13));
        Assert.Equal(Apci.U(0x13), await station.ReadAsync());
        Assert.Null(await client.ReadOrTimeoutAsync(300)); // no con before the station's
        await station.SendAsync(Apci.U(0x23));
        Assert.Equal(Apci.U(0x23), await client.ReadAsync());

        await client.SendAsync(Apci.U(0x07));
        Assert.Equal(Apci.U(0x07), await station.ReadAsync());
        await station.SendAsync(Apci.U(0x0B));
        Assert.Equal(Apci.U(0x0B), await client.ReadAsync());
        await client.SendAsync(Apci.I(0, 0, SingleCommand(2000)));
        Assert.Equal(SingleCommand(2000), (await station.ReadIAsync())[6..]);
    }
}

/// <summary>One side of an IEC 104 TCP connection, frame by frame (APCI only: no numbering kept here).</summary>
internal sealed class Apci(Socket socket) : IDisposable
{
    private readonly byte[] _buffer = new byte[8192];
    private int _filled;

    public static byte[] U(byte function) => [0x68, 4, function, 0, 0, 0];

    public static byte[] S(ushort nr) => [0x68, 4, 1, 0, (byte)(nr << 1), (byte)(nr >> 7)];

    public static byte[] I(ushort ns, ushort nr, byte[] asdu) =>
        [0x68, (byte)(4 + asdu.Length), (byte)(ns << 1), (byte)(ns >> 7), (byte)(nr << 1), (byte)(nr >> 7), .. asdu];

    public static bool IsI(byte[] f) => (f[2] & 1) == 0;

    public static bool IsS(byte[] f) => (f[2] & 3) == 1;

    public static ushort SendSequence(byte[] f) => (ushort)((f[2] >> 1) | (f[3] << 7));

    public static ushort ReceiveSequence(byte[] f) => (ushort)((f[4] >> 1) | (f[5] << 7));

    public Task SendAsync(byte[] frame) => socket.SendAsync(frame, SocketFlags.None);

    /// <summary>
    /// TCP segments carrying data that this socket has received so far (Linux <c>tcp_info.tcpi_data_segs_in</c>):
    /// how many writes of the peer's its frames came in, when each write is one segment (loopback, TCP_NODELAY, small frames).
    /// </summary>
    public uint DataSegmentsIn()
    {
        const int IpProtoTcp = 6, TcpInfo = 11, DataSegsInOffset = 152;
        Span<byte> info = stackalloc byte[256];
        int length = socket.GetRawSocketOption(IpProtoTcp, TcpInfo, info);
        Assert.True(length >= DataSegsInOffset + 4, $"tcp_info is {length} bytes: no tcpi_data_segs_in on this kernel");
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(info[DataSegsInOffset..]);
    }

    /// <summary>The next frame; fails on close or after <paramref name="timeoutMs"/> (by default generous, for a loaded CI machine).</summary>
    public async Task<byte[]> ReadAsync(int timeoutMs = 15_000) =>
        await ReadOrNullAsync(timeoutMs) ?? throw new InvalidOperationException("the gateway closed the connection");

    /// <summary>The next I-frame, skipping S-frames.</summary>
    public async Task<byte[]> ReadIAsync(int timeoutMs = 15_000)
    {
        while (true)
        {
            var f = await ReadAsync(timeoutMs);
            if (IsI(f))
            {
                return f;
            }
            Assert.True(IsS(f), "a U-frame where an I-frame was expected: " + Convert.ToHexString(f));
        }
    }

    /// <summary>The next frame, or null when none comes within <paramref name="timeoutMs"/>; fails on close.</summary>
    public async Task<byte[]?> ReadOrTimeoutAsync(int timeoutMs)
    {
        try
        {
            return await ReadAsync(timeoutMs);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>The next frame, or null when the peer closed; throws <see cref="OperationCanceledException"/> on timeout.</summary>
    public async Task<byte[]?> ReadOrNullAsync(int timeoutMs)
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        while (true)
        {
            if (_filled >= 2 && _filled >= 2 + _buffer[1])
            {
                int length = 2 + _buffer[1];
                var frame = _buffer[..length];
                _buffer.AsSpan(length, _filled - length).CopyTo(_buffer);
                _filled -= length;
                return frame;
            }
            int read;
            try
            {
                read = await socket.ReceiveAsync(_buffer.AsMemory(_filled), SocketFlags.None, cts.Token);
            }
            catch (SocketException)
            {
                return null;
            }
            if (read == 0)
            {
                return null;
            }
            _filled += read;
        }
    }

    /// <summary>True when the peer closes within <paramref name="timeoutMs"/> (frames before are skipped).</summary>
    public async Task<bool> ClosedAsync(int timeoutMs)
    {
        try
        {
            while (await ReadOrNullAsync(timeoutMs) is not null)
            {
            }
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Dispose() => socket.Dispose();
}
