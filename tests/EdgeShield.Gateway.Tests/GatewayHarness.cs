using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Gateway;
using EdgeShield.Policy;
using EdgeShield.Simulators;

namespace EdgeShield.Gateway.Tests;

/// <summary>Keeps every audit event in memory.</summary>
internal sealed class MemoryAuditSink : IAuditSink
{
    public ConcurrentQueue<AuditEvent> Events { get; } = new();

    public void Write(in AuditEvent auditEvent) => Events.Enqueue(auditEvent);

    public AuditEvent[] OfKind(AuditEventKind kind) => Events.Where(e => e.Kind == kind).ToArray();
}

/// <summary>A PLC simulator on 127.0.0.1:0 and a gateway in front of it, configured from YAML.</summary>
internal sealed class GatewayHarness : IAsyncDisposable
{
    public const string DefaultPolicy = """
            mode: enforce
            rules:
              - name: hmi reads
                function: [read]
                address: 0-999
              - name: setpoints
                unit: 1
                function: [write-single-register, write-multiple-registers]
                address: 100-119
                value: 0-1500
              - name: pump coils
                unit: 1
                function: write-single-coil
                address: 0-9
        """;

    private GatewayHarness(PlcSimulator plc, EdgeGateway gateway, MemoryAuditSink audit)
    {
        Plc = plc;
        Gateway = gateway;
        Audit = audit;
    }

    public PlcSimulator Plc { get; }
    public EdgeGateway Gateway { get; }
    public MemoryAuditSink Audit { get; }
    public GatewayListener Listener => Gateway.Listeners[0];

    /// <summary>
    /// The listener's session count once it reaches <paramref name="expected"/>, or what it is after
    /// <paramref name="timeoutMs"/>: a session leaves the listener just after it closed its socket, so a
    /// client that saw the close may look a moment before the count drops.
    /// </summary>
    public async Task<int> SessionCountAsync(int expected, int timeoutMs = 20_000)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (Listener.SessionCount != expected && clock.ElapsedMilliseconds < timeoutMs)
        {
            await Task.Delay(10);
        }
        return Listener.SessionCount;
    }
    public IPEndPoint EndPoint => Listener.LocalEndPoint;

    public static async Task<GatewayHarness> StartAsync(string? policy = null, string limits = "", PlcOptions? plcOptions = null, int? upstreamPort = null, MaintenanceState? maintenance = null)
    {
        var plc = await PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), plcOptions ?? new PlcOptions(), CancellationToken.None);
        var yaml = BuildConfig(upstreamPort ?? plc.Port, policy ?? DefaultPolicy, limits);
        var loaded = ConfigLoader.LoadText(yaml, "test.yaml", maintenance ?? new MaintenanceState());
        Assert.False(loaded.HasErrors, string.Join("\n", loaded.Diagnostics));
        var audit = new MemoryAuditSink();
        var gateway = await EdgeGateway.StartAsync(loaded.Config!, audit);
        return new GatewayHarness(plc, gateway, audit);
    }

    public static string BuildConfig(int upstreamPort, string policy, string limits) => $$"""
        gateway: { name: test-gw, site: lab }
        listeners:
          - name: hmi-plc1
            bind: 127.0.0.1:0
            protocol: modbus-tcp
            upstream: tcp://127.0.0.1:{{upstreamPort}}
            policy: plc1
        {{(limits.Length > 0 ? "    limits: " + limits : "")}}
        policies:
          plc1:
        {{policy}}
        """;

    public async Task<ModbusClient> ConnectAsync(int receiveBufferSize = 0)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (receiveBufferSize > 0)
        {
            socket.ReceiveBufferSize = receiveBufferSize;
        }
        await socket.ConnectAsync(EndPoint);
        return new ModbusClient(socket);
    }

    public async ValueTask DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Plc.DisposeAsync();
    }
}

/// <summary>A raw Modbus TCP client: sends bytes, reads whole ADUs by the MBAP length.</summary>
internal sealed class ModbusClient(Socket socket) : IDisposable
{
    public Socket Socket { get; } = socket;

    public static byte[] Adu(ushort tid, byte unit, params byte[] pdu)
    {
        var adu = new byte[7 + pdu.Length];
        adu[0] = (byte)(tid >> 8);
        adu[1] = (byte)tid;
        adu[4] = (byte)((pdu.Length + 1) >> 8);
        adu[5] = (byte)(pdu.Length + 1);
        adu[6] = unit;
        pdu.CopyTo(adu, 7);
        return adu;
    }

    public static byte[] ReadHolding(ushort tid, byte unit, ushort start, ushort count) =>
        Adu(tid, unit, 3, (byte)(start >> 8), (byte)start, (byte)(count >> 8), (byte)count);

    public static byte[] WriteRegister(ushort tid, byte unit, ushort address, ushort value) =>
        Adu(tid, unit, 6, (byte)(address >> 8), (byte)address, (byte)(value >> 8), (byte)value);

    public async Task SendAsync(byte[] bytes) => await Socket.SendAsync(bytes, SocketFlags.None);

    /// <summary>
    /// Reads one ADU, or null when the connection closed (or nothing came within the timeout). The default bound
    /// is for answers that must come: generous, as a loaded CI machine may starve the gateway for seconds; a test
    /// that checks that nothing comes passes its own short window.
    /// </summary>
    public async Task<byte[]?> ReceiveAsync(int timeoutMs = 15_000)
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        var header = new byte[6];
        try
        {
            if (!await ReadExactlyAsync(header, cts.Token))
            {
                return null;
            }
            int length = (header[4] << 8) | header[5];
            var adu = new byte[6 + length];
            header.CopyTo(adu, 0);
            return await ReadExactlyAsync(adu.AsMemory(6), cts.Token) ? adu : null;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        catch (SocketException)
        {
            return null;
        }
    }

    /// <summary>
    /// True when the peer closed the connection within the timeout (reads EOF or reset). The default bound is for
    /// closes that must come (generous, for a loaded CI machine); a test that checks the connection stays open
    /// passes its own short window.
    /// </summary>
    public async Task<bool> IsClosedByPeerAsync(int timeoutMs = 15_000)
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        var buffer = new byte[512];
        try
        {
            while (true)
            {
                int read = await Socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (read == 0)
                {
                    return true;
                }
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (SocketException)
        {
            return true;
        }
    }

    public async Task<byte[]> RoundTripAsync(byte[] request)
    {
        await SendAsync(request);
        return await ReceiveAsync() ?? throw new InvalidOperationException("no response");
    }

    private async Task<bool> ReadExactlyAsync(Memory<byte> buffer, CancellationToken ct)
    {
        while (!buffer.IsEmpty)
        {
            int read = await Socket.ReceiveAsync(buffer, SocketFlags.None, ct);
            if (read == 0)
            {
                return false;
            }
            buffer = buffer[read..];
        }
        return true;
    }

    public void Dispose() => Socket.Dispose();
}
