using System.Buffers.Binary;
using System.Collections.Concurrent;
using EdgeShield.Protocols.Modbus;
using EdgeShield.Simulators;

namespace EdgeShield.Transport.Tests;

/// <summary>Collects what a bus delivers to one session.</summary>
internal sealed class Receiver(string name = "", ConcurrentQueue<string>? order = null) : IUpstreamReceiver, IDisposable
{
    private readonly SemaphoreSlim _arrived = new(0);

    public void Dispose() => _arrived.Dispose();

    public ConcurrentQueue<byte[]> Responses { get; } = new();

    public ValueTask OnResponseAsync(Memory<byte> adu, int generation)
    {
        Responses.Enqueue(adu.ToArray());
        order?.Enqueue(name);
        _arrived.Release();
        return ValueTask.CompletedTask;
    }

    public ValueTask OnUpstreamLost(int generation, UpstreamLoss loss, EdgeShield.Protocols.FrameFault fault) => ValueTask.CompletedTask;

    /// <summary>The next response, or a failed test after 10 s.</summary>
    public async Task<byte[]> NextAsync()
    {
        Assert.True(await _arrived.WaitAsync(TimeSpan.FromSeconds(10)), "no response within 10 s");
        Assert.True(Responses.TryDequeue(out var adu));
        return adu;
    }

    public async Task<bool> AnyWithinAsync(TimeSpan wait)
    {
        if (await _arrived.WaitAsync(wait))
        {
            _arrived.Release();
            return true;
        }
        return false;
    }
}

/// <summary>A pty pair, an RTU PLC on one end and a serial bus on the other.</summary>
internal sealed class BusHarness : IAsyncDisposable
{
    private BusHarness(PtyPair pty, RtuPlcSimulator plc, SerialBus bus)
    {
        Pty = pty;
        Plc = plc;
        Bus = bus;
    }

    public PtyPair Pty { get; }
    public RtuPlcSimulator Plc { get; private set; }
    public SerialBus Bus { get; }

    public static async Task<BusHarness> StartAsync(int baud = 115200, Func<SerialBusOptions, SerialBusOptions>? configure = null, byte secondUnit = 0)
    {
        var pty = new PtyPair();
        var plc = RtuPlcSimulator.Start(new RtuPlcOptions { Device = pty.Device, Baud = baud, Unit = 1, SecondUnit = secondUnit });
        var options = new SerialBusOptions
        {
            Name = "rs485-test",
            Device = pty.Master,
            Baud = baud,
            // Generous: a loaded CI machine (parallel test assemblies, an AOT publish) can stall the
            // simulated device's pty reads for hundreds of ms. Tests about timeouts set their own.
            ResponseTimeout = TimeSpan.FromSeconds(1),
            TurnaroundDelay = TimeSpan.FromMilliseconds(20),
        };
        var bus = SerialBus.Start(configure is null ? options : configure(options));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!bus.IsAvailable && clock.ElapsedMilliseconds < 20_000) // bounded generously, for a loaded CI machine
        {
            await Task.Delay(10);
        }
        Assert.True(bus.IsAvailable, "bus did not open the pty");
        return new BusHarness(pty, plc, bus);
    }

    /// <summary>After the line was lost: a new socat on the same links and a new PLC on it.</summary>
    public void RestartLine()
    {
        Plc.Dispose();
        Pty.Start();
        Plc = RtuPlcSimulator.Start(new RtuPlcOptions { Device = Pty.Device, Baud = Plc.Timing.Baud, Unit = 1 });
    }

    public static byte[] ReadHolding(ushort tid, byte unit, ushort start, ushort count) =>
        Mbap(tid, unit, [3, (byte)(start >> 8), (byte)start, (byte)(count >> 8), (byte)count]);

    public static byte[] WriteRegister(ushort tid, byte unit, ushort address, ushort value) =>
        Mbap(tid, unit, [6, (byte)(address >> 8), (byte)address, (byte)(value >> 8), (byte)value]);

    public static byte[] Mbap(ushort tid, byte unit, byte[] pdu)
    {
        var adu = new byte[7 + pdu.Length];
        MbapFramer.WriteHeader(adu, tid, unit, pdu.Length);
        pdu.CopyTo(adu, 7);
        return adu;
    }

    public static ushort Tid(byte[] adu) => BinaryPrimitives.ReadUInt16BigEndian(adu);

    /// <summary>The exception code of an exception response, or 0 for a normal one.</summary>
    public static byte ExceptionCode(byte[] adu) => (adu[7] & 0x80) != 0 ? adu[8] : (byte)0;

    public async ValueTask DisposeAsync()
    {
        await Bus.DisposeAsync();
        Plc.Dispose();
        Pty.Dispose();
    }
}
