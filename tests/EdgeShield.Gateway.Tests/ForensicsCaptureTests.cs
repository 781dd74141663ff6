using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Policy;
using EdgeShield.Simulators;
using Xunit.Abstractions;

namespace EdgeShield.Gateway.Tests;

/// <summary>Counts audit events and keeps nothing: allocation-free, for the allocation test.</summary>
internal sealed class CountingAuditSink : IAuditSink
{
    private long _events;

    public long Events => Interlocked.Read(ref _events);

    public void Write(in AuditEvent auditEvent) => Interlocked.Increment(ref _events);
}

/// <summary>Tests that measure the whole process's allocations: they run alone, after the parallel ones.</summary>
[CollectionDefinition(nameof(ProcessWideAllocation), DisableParallelization = true)]
public sealed class ProcessWideAllocation;

/// <summary>
/// <c>audit.pcap</c> on the live gateway: exactly the refused and malformed client frames reach the
/// pcapng file, with the client's and the listener's real addresses and ports, and tshark (the
/// oracle) decodes their function codes and addresses; the file rotates; the refusal path stays
/// allocation-free with capture on.
/// </summary>
[Collection(nameof(ProcessWideAllocation))]
public sealed class ForensicsCaptureTests(ITestOutputHelper output) : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgeshield-pcap-").FullName;
    private PlcSimulator? _plc;
    private EdgeGateway? _gateway;

    private string PcapPath => Path.Combine(_dir, "denied.pcapng");

    private const string Policy = """
            mode: enforce
            rules:
              - name: hmi reads
                function: [read]
                address: 0-999
              - name: setpoints
                unit: 1
                function: [write-single-register]
                address: 100-119
                value: 0-1500
        """;

    private async Task<EdgeGateway> StartAsync(IAuditSink audit, string maxMb = "32", bool ipv6 = false, bool pcap = true, bool rtu = false)
    {
        _plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new PlcOptions(), CancellationToken.None);
        string second = ipv6 ? $"""
              - name: hmi-v6
                bind: "[::1]:0"
                upstream: tcp://127.0.0.1:{_plc.Port}
                policy: plc1
            """ : rtu ? $"""
              - name: hmi-rtu
                bind: 127.0.0.1:0
                protocol: modbus-rtu-over-tcp
                upstream: tcp://127.0.0.1:{_plc.Port}
                policy: plc1
            """ : "";
        string yaml = $"""
            listeners:
              - name: hmi-plc1
                bind: 127.0.0.1:0
                upstream: tcp://127.0.0.1:{_plc.Port}
                policy: plc1
            {second}
            policies:
              plc1:
            {Policy}
            """ + (pcap ? $"\naudit:\n  pcap: {{ path: {PcapPath}, max-mb: {maxMb} }}\n" : "");
        var loaded = ConfigLoader.LoadText(yaml, "test.yaml");
        Assert.False(loaded.HasErrors, string.Join("\n", loaded.Diagnostics));
        _gateway = await EdgeGateway.StartAsync(loaded.Config!, audit);
        return _gateway;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what, int timeoutMs = 20_000)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.ElapsedMilliseconds < timeoutMs, "timed out waiting for " + what);
            await Task.Delay(20);
        }
    }

    /// <summary>
    /// tshark's fields for the packets matching <paramref name="filter"/>. The listeners are not on
    /// 502, so the Modbus/TCP port is set to theirs, as an integrator would for a listener on another port.
    /// </summary>
    private static async Task<string[]> TsharkAsync(string path, int modbusPort, string filter, params string[] fields)
    {
        var start = new ProcessStartInfo("tshark") { RedirectStandardOutput = true, RedirectStandardError = true };
        // RTU frames inside TCP (a modbus-rtu-over-tcp listener): Wireshark's mbrtu on that port, as an integrator
        // would set it, with its CRC check on (off by default; then every CRC shows as unverified).
        string[] protocol = filter.Contains("mbrtu", StringComparison.Ordinal)
            ? ["-o", $"mbrtu.tcp.port:{modbusPort}", "-o", "mbrtu.crc_verification:TRUE"]
            : ["-o", $"mbtcp.tcp.port:{modbusPort}"];
        foreach (var arg in (string[])["-r", path, .. protocol, "-Y", filter, "-T", "fields", "-E", "separator=;", "-E", "occurrence=f"])
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var field in fields)
        {
            start.ArgumentList.Add("-e");
            start.ArgumentList.Add(field);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(120_000);
        await process.WaitForExitAsync(cts.Token);
        Assert.True(process.ExitCode == 0, "tshark: " + await stderr);
        return (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    private static async Task<ModbusClient> ConnectAsync(IPEndPoint endPoint)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endPoint);
        return new ModbusClient(socket);
    }

    [Fact]
    public async Task LiveGateway_RefusedAndMalformedFrames_AreInThePcapngAsTsharkDecodesThem()
    {
        var audit = new MemoryAuditSink();
        var gateway = await StartAsync(audit, ipv6: Socket.OSSupportsIPv6);
        var v4 = gateway.Listeners[0].LocalEndPoint;
        using var client = await ConnectAsync(v4);
        var local = (IPEndPoint)client.Socket.LocalEndPoint!;

        // allowed, denied (address 02), allowed write, denied (value 03), denied (function 01), out of spec (quantity 0: 03).
        Assert.Equal(0x03, (await client.RoundTripAsync(ModbusClient.ReadHolding(1, 1, 0, 10)))[7]);
        Assert.Equal(0x86, (await client.RoundTripAsync(ModbusClient.WriteRegister(2, 1, 500, 7)))[7]);
        Assert.Equal(0x06, (await client.RoundTripAsync(ModbusClient.WriteRegister(3, 1, 101, 7)))[7]);
        Assert.Equal(0x86, (await client.RoundTripAsync(ModbusClient.WriteRegister(4, 1, 102, 2000)))[7]);
        Assert.Equal(0x88, (await client.RoundTripAsync(ModbusClient.Adu(5, 1, 8, 0, 0, 0x12, 0x34)))[7]);
        Assert.Equal(0x83, (await client.RoundTripAsync(ModbusClient.ReadHolding(6, 1, 40, 0)))[7]);
        Assert.Equal(0x03, (await client.RoundTripAsync(ModbusClient.ReadHolding(7, 1, 20, 2)))[7]);
        // a read holding registers PDU cut short, delimited by the MBAP length: out of spec (03).
        Assert.Equal(0x83, (await client.RoundTripAsync(ModbusClient.Adu(8, 1, 3, 0, 0x2A)))[7]);
        // malformed: MBAP length 255 for a public code (framing lost): dropped, connection closed.
        await client.SendAsync([0, 9, 0, 0, 0, 0xFF, 1, 3, 0, 0x2B]);
        Assert.True(await client.IsClosedByPeerAsync());

        ModbusClient? v6Client = null;
        IPEndPoint? v6Local = null;
        int v6ListenerPort = 0;
        if (gateway.Listeners.Count > 1)
        {
            v6ListenerPort = gateway.Listeners[1].LocalEndPoint.Port;
            v6Client = await ConnectAsync(gateway.Listeners[1].LocalEndPoint);
            v6Local = (IPEndPoint)v6Client.Socket.LocalEndPoint!;
            Assert.Equal(0x86, (await v6Client.RoundTripAsync(ModbusClient.WriteRegister(9, 2, 110, 1)))[7]); // unit 2: only 'hmi reads' covers it (01)
        }
        int expected = v6Client is null ? 6 : 7;
        await WaitUntilAsync(() => gateway.Counters.Captured == expected, $"{expected} captures (have {gateway.Counters.Captured})");
        Assert.Equal(0, gateway.Counters.CapturesDropped);
        await gateway.DisposeAsync();
        _gateway = null;
        v6Client?.Dispose();

        string[] fields = ["ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport", "tcp.seq_raw", "mbtcp.trans_id", "modbus.func_code", "modbus.reference_num", "frame.comment"];
        var rows = (await TsharkAsync(PcapPath, v4.Port, "ip", fields)).ToList();
        if (v6Local is not null)
        {
            rows.AddRange(await TsharkAsync(PcapPath, v6ListenerPort, "ipv6", fields));
        }
        string port = v4.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string src = $"127.0.0.1;;{local.Port};127.0.0.1;;{port}";
        // Sequence numbers: 1 + the frame's offset in the client's byte stream (12 bytes per request here).
        var want = new List<string>
        {
            $"{src};13;2;6;500;denied 02: address span not allowed; rule setpoints; listener hmi-plc1",
            $"{src};37;4;6;102;denied 03: value or quantity not allowed; rule setpoints; listener hmi-plc1",
            $"{src};49;5;8;;denied 01: function not allowed; rule hmi reads; listener hmi-plc1",
            $"{src};61;6;3;40;out-of-spec 03: quantity outside the spec's limits; listener hmi-plc1",
            $"{src};85;8;3;42;out-of-spec 03: PDU length does not fit its function (the MBAP length keeps the stream in step); listener hmi-plc1",
            // tshark waits for the 255 bytes the header announces: no Modbus fields, the comment says why.
            $"{src};95;;;;malformed: MBAP length above 254 (260 for user-defined and vendor codes); listener hmi-plc1",
        };
        if (v6Local is not null)
        {
            want.Add($";::1;{v6Local.Port};;::1;{v6ListenerPort};1;9;6;110;denied 01: function not allowed; rule hmi reads; listener hmi-v6");
        }
        Assert.True(want.SequenceEqual(rows), "tshark rows:\n" + string.Join("\n", rows));
    }

    [Fact]
    public async Task RtuOverTcpListener_RefusedAndMalformedFrames_AreInThePcapngAsTsharksMbrtuDecodesThem()
    {
        var audit = new MemoryAuditSink();
        var gateway = await StartAsync(audit, rtu: true);
        var listener = gateway.Listeners[1].LocalEndPoint;
        using var client = await ConnectAsync(listener);
        var local = (IPEndPoint)client.Socket.LocalEndPoint!;

        // allowed read (8 bytes), denied write at 500 (02), denied value 2000 (03), then a frame with a bad CRC (malformed, closed).
        await client.SendAsync(SerialGatewayTests.Rtu(1, [3, 0, 0, 0, 10]));
        Assert.Equal(3 + 20 + 2, (await SerialGatewayTests.ReceiveRtuAsync(client, 25)).Length);
        await client.SendAsync(SerialGatewayTests.Rtu(1, [6, 0x01, 0xF4, 0, 7]));
        Assert.Equal(SerialGatewayTests.Rtu(1, [0x86, 0x02]), await SerialGatewayTests.ReceiveRtuAsync(client, 5));
        await client.SendAsync(SerialGatewayTests.Rtu(1, [6, 0, 102, 0x07, 0xD0]));
        Assert.Equal(SerialGatewayTests.Rtu(1, [0x86, 0x03]), await SerialGatewayTests.ReceiveRtuAsync(client, 5));
        var badCrc = SerialGatewayTests.Rtu(1, [6, 0, 103, 0, 1]);
        badCrc[^1] ^= 0xFF;
        await client.SendAsync(badCrc);
        Assert.True(await client.IsClosedByPeerAsync());
        await WaitUntilAsync(() => gateway.Counters.Captured == 3, $"3 captures (have {gateway.Counters.Captured})");
        await gateway.DisposeAsync();
        _gateway = null;

        var rows = await TsharkAsync(PcapPath, listener.Port, "mbrtu", "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "mbrtu.unit_id", "modbus.func_code", "modbus.reference_num", "mbrtu.crc16.status", "frame.comment");
        string ports = $"{local.Port};{listener.Port}";
        // Sequence numbers: 1 + the frame's offset in the client's RTU byte stream (8 bytes per frame here);
        // CRC status as Wireshark's checksum check reports it (1 good, 0 bad): tshark confirms the CRC the gateway refused.
        string[] want =
        [
            $"{ports};9;1;6;500;1;denied 02: address span not allowed; rule setpoints; listener hmi-rtu",
            $"{ports};17;1;6;102;1;denied 03: value or quantity not allowed; rule setpoints; listener hmi-rtu",
            $"{ports};25;1;6;103;0;malformed: CRC mismatch; listener hmi-rtu",
        ];
        Assert.True(want.SequenceEqual(rows), "tshark rows:\n" + string.Join("\n", rows));
    }

    [Fact]
    public async Task LiveGateway_CaptureBeyondMaxMb_RotatesToPathDot1WithoutLosingAFrame()
    {
        var audit = new MemoryAuditSink();
        var gateway = await StartAsync(audit, maxMb: "0.1");
        int port = gateway.Listeners[0].LocalEndPoint.Port;
        using var client = await ConnectAsync(gateway.Listeners[0].LocalEndPoint);
        const int Requests = 1000; // ~150 bytes each: one rotation at 100 KiB, and the rest fits the new file
        for (int i = 0; i < Requests; i++)
        {
            var reply = await client.RoundTripAsync(ModbusClient.WriteRegister((ushort)i, 1, 900, 1));
            Assert.Equal(0x86, reply[7]);
        }
        await WaitUntilAsync(() => gateway.Counters.Captured + gateway.Counters.CapturesDropped == Requests, "every refusal captured or counted");
        long captured = gateway.Counters.Captured;
        await gateway.DisposeAsync();
        _gateway = null;

        string rotated = PcapPath + ".1";
        Assert.True(File.Exists(rotated), "no rotation to PATH.1");
        long maxBytes = (long)(0.1 * 1024 * 1024);
        Assert.InRange(new FileInfo(rotated).Length, maxBytes - 1024, maxBytes);
        Assert.InRange(new FileInfo(PcapPath).Length, 1, maxBytes);
        var older = await TsharkAsync(rotated, port, "tcp", "mbtcp.trans_id", "modbus.reference_num");
        var newer = await TsharkAsync(PcapPath, port, "tcp", "mbtcp.trans_id", "modbus.reference_num");
        Assert.True(captured == older.Length + newer.Length, $"{captured} captured; {older.Length} + {newer.Length} in the files; first row '{older[0]}'");
        Assert.All(older.Concat(newer), row => Assert.EndsWith(";900", row, StringComparison.Ordinal));
        Assert.Single(audit.Events, e => e.Kind == AuditEventKind.Service && e.Reason == "pcap-rotated");
        if (captured == Requests)
        {
            // Nothing dropped: the two files hold transactions 0..999 in order, split at the rotation.
            Assert.Equal("0;900", older[0]);
            int last = int.Parse(older[^1].Split(';')[0], System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal($"{last + 1};900", newer[0]);
            Assert.Equal($"{Requests - 1};900", newer[^1]);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task LiveGateway_DeniedRequests_AllocateNothingPerRequestAfterWarmUp(bool pcap)
    {
        var audit = new CountingAuditSink();
        var gateway = await StartAsync(audit, pcap: pcap);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        // Blocking connect: a socket that has done an async operation runs its synchronous calls through
        // the runtime's async engine, which allocates per call on the client side.
        socket.Connect(gateway.Listeners[0].LocalEndPoint);
        var request = ModbusClient.WriteRegister(1, 1, 900, 1);
        var reply = new byte[9];

        // A blocking client on this thread: it allocates nothing itself, so the process-wide count is the gateway's.
        void RoundTrips(int count)
        {
            for (int i = 0; i < count; i++)
            {
                socket.Send(request);
                int got = 0;
                while (got < reply.Length)
                {
                    int read = socket.Receive(reply, got, reply.Length - got, SocketFlags.None);
                    Assert.True(read > 0, "gateway closed the connection");
                    got += read;
                }
                if (reply[7] != 0x86)
                {
                    Assert.Fail("expected exception 02 to a denied write");
                }
            }
        }

        const int Requests = 10_000;
        long capturedBefore = 0;
        long allocated = long.MaxValue;
        // Warm up (JIT tiers, pools, the ring and writer), then measure; up to three tries in case an
        // unrelated runtime allocation (a timer, the thread pool growing) lands in the window.
        await Task.Run(() =>
        {
            RoundTrips(2_000);
            for (int attempt = 0; attempt < 3 && allocated >= Requests; attempt++)
            {
                capturedBefore = gateway.Counters.Captured + gateway.Counters.CapturesDropped;
                long before = GC.GetTotalAllocatedBytes(precise: true);
                RoundTrips(Requests);
                allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
            }
        });
        if (pcap)
        {
            await WaitUntilAsync(() => gateway.Counters.Captured + gateway.Counters.CapturesDropped - capturedBefore >= Requests, "the measured refusals captured");
            Assert.True(gateway.Counters.Captured > 0);
        }

        output.WriteLine($"pcap {(pcap ? "on" : "off")}: {allocated} bytes allocated in the process for {Requests} denied requests");
        // Less than one byte per request: any allocation per refusal (the smallest object is 24 bytes) fails this.
        Assert.True(allocated < Requests, $"{allocated} bytes allocated in the process for {Requests} denied requests, pcap {(pcap ? "on" : "off")}");
    }

    [Fact]
    public async Task Record_FasterThanTheWriter_CountsEveryDropAndAuditsIt()
    {
        var counters = new GatewayCounters();
        var audit = new MemoryAuditSink();
        var refused = new AuditEvent { Time = DateTime.UtcNow, Kind = AuditEventKind.Denied, Listener = "l", Reason = "function not allowed", ExceptionCode = 1, Count = 1 };
        var frame = ModbusClient.WriteRegister(1, 1, 900, 1);
        const int Frames = 10_000;
        using (var capture = ForensicsCapture.Start(new PcapAuditConfig { Path = PcapPath }, counters, audit, ringSlots: 1))
        {
            for (int i = 0; i < Frames; i++)
            {
                capture.Record(frame, refused, 0, 502, (uint)(1 + (12 * i)));
            }
            // A one-slot ring cannot keep up with a tight loop: most frames are dropped, and every one is counted.
            await WaitUntilAsync(() => counters.Captured + counters.CapturesDropped == Frames, "every frame written or counted");
            Assert.True(counters.CapturesDropped > 0);
            await WaitUntilAsync(() => audit.Events.Any(e => e.Reason == "pcap-dropped"), "a pcap-dropped event");
        }
        var dropped = audit.Events.First(e => e.Reason == "pcap-dropped");
        Assert.Matches(@"^\d+ denied or malformed frames not written to .*denied\.pcapng \(capture queue full or write failed\); \d+ in all$", dropped.Detail);
        var rows = await TsharkAsync(PcapPath, 502, "tcp", "mbtcp.trans_id");
        Assert.Equal(counters.Captured, rows.Length);
    }

    public async ValueTask DisposeAsync()
    {
        if (_gateway is not null)
        {
            await _gateway.DisposeAsync();
        }
        if (_plc is not null)
        {
            await _plc.DisposeAsync();
        }
        Directory.Delete(_dir, recursive: true);
    }
}
