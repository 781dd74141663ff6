using System.Buffers;
using System.Diagnostics;
using System.IO.Ports;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Simulators;

/// <summary>Start-up settings of an <see cref="RtuPlcSimulator"/>.</summary>
public sealed class RtuPlcOptions
{
    public required string Device { get; init; }
    public int Baud { get; init; } = 19200;
    /// <summary>"even" (the spec's default), "none" or "odd".</summary>
    public string Parity { get; init; } = "even";
    public int StopBits { get; init; } = 1;
    /// <summary>The device's address.</summary>
    public byte Unit { get; init; } = 1;
    /// <summary>A second device on the same line (0 = none).</summary>
    public byte SecondUnit { get; init; }
    /// <summary>Bits per character on the line.</summary>
    public int BitsPerCharacter => 1 + 8 + (Parity == "none" ? 0 : 1) + StopBits;
}

/// <summary>Misbehaviour on the line; settable while the simulator runs, read for each reply.</summary>
public sealed class RtuFaults
{
    private volatile bool _badCrc;
    private volatile bool _noReply;
    private volatile int _lateMs;
    private volatile int _splitGapMs;
    private volatile bool _garbage;
    private volatile bool _wrongUnit;
    private volatile bool _wrongFunction;
    private volatile bool _truncated;
    private volatile bool _twice;
    private volatile int _remaining = int.MaxValue;

    /// <summary>Replies carry a CRC that does not check.</summary>
    public bool BadCrc { get => _badCrc; set => _badCrc = value; }
    /// <summary>Requests are executed but never answered.</summary>
    public bool NoReply { get => _noReply; set => _noReply = value; }
    /// <summary>Replies start this much later than the line allows.</summary>
    public int LateMs { get => _lateMs; set => _lateMs = value; }
    /// <summary>Replies are sent in two halves with this gap between them (0 = whole).</summary>
    public int SplitGapMs { get => _splitGapMs; set => _splitGapMs = value; }
    /// <summary>Random bytes go on the line before each reply.</summary>
    public bool Garbage { get => _garbage; set => _garbage = value; }
    /// <summary>Replies carry another address.</summary>
    public bool WrongUnit { get => _wrongUnit; set => _wrongUnit = value; }
    /// <summary>Replies carry another function code (valid CRC).</summary>
    public bool WrongFunction { get => _wrongFunction; set => _wrongFunction = value; }
    /// <summary>Replies lose their last 3 bytes.</summary>
    public bool Truncated { get => _truncated; set => _truncated = value; }
    /// <summary>Each reply is sent twice.</summary>
    public bool Twice { get => _twice; set => _twice = value; }
    /// <summary>How many more replies the faults apply to; then they clear themselves.</summary>
    public int Remaining { get => _remaining; set => _remaining = value; }

    internal bool Any => _badCrc || _noReply || _lateMs > 0 || _splitGapMs > 0 || _garbage || _wrongUnit || _wrongFunction || _truncated || _twice;

    /// <summary>Clears every fault.</summary>
    public void Reset()
    {
        BadCrc = NoReply = Garbage = WrongUnit = WrongFunction = Truncated = Twice = false;
        LateMs = SplitGapMs = 0;
        Remaining = int.MaxValue;
    }
}

/// <summary>
/// A Modbus RTU device (or two) on a serial line, with every table and function of the TCP
/// simulator. A pty does not enforce the baud rate, so the simulator paces itself: a reply
/// is written when its last byte would have arrived on a real line — the request's own time
/// on the wire, t3.5 of silence, then the reply's time on the wire, from the moment the request arrived.
/// </summary>
public sealed class RtuPlcSimulator : IDisposable
{
    private readonly RtuPlcOptions _options;
    private readonly PlcSimulator _engine;
    private readonly SerialPort _port;
    private readonly FileStream _stream;
    private readonly Thread _thread;
    private readonly RtuTiming _timing;
    private long _framesReceived;
    private long _crcErrors;
    private long _repliesSent;
    private long _broadcasts;
    private long _latenessTicks;
    // The line as this device sees it: a pty delivers a write at once, so the reply is on the line
    // until the moment it is written (stamped just before the write: a lower bound), and a request
    // begins when it arrives (stamped after the read returns: an upper bound). Both bounds favour
    // the master, so a gap below t3.5 here is a gap below t3.5 on the line.
    private long _lastReplyAt;
    private long _gapsMeasured;
    private long _gapViolations;
    private long _minGapTicks = long.MaxValue;
    private volatile bool _stopping;

    private RtuPlcSimulator(RtuPlcOptions options, SerialPort port, FileStream stream)
    {
        _options = options;
        _engine = PlcSimulator.CreateEngine(new PlcOptions());
        _port = port;
        _stream = stream;
        _timing = new RtuTiming(options.Baud, options.BitsPerCharacter);
        _thread = new Thread(Run) { IsBackground = true, Name = "rtu plc " + options.Device };
    }

    /// <summary>Opens the device and starts answering.</summary>
    public static RtuPlcSimulator Start(RtuPlcOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var parity = options.Parity switch
        {
            "none" => System.IO.Ports.Parity.None,
            "odd" => System.IO.Ports.Parity.Odd,
            _ => System.IO.Ports.Parity.Even,
        };
        var port = new SerialPort(options.Device, options.Baud, parity, 8, options.StopBits == 2 ? StopBits.Two : StopBits.One);
        try
        {
            port.Open();
            // SerialPort sets up the line; bytes go through a plain stream (see EdgeShield.Transport.SerialLine for why).
            var stream = new FileStream(options.Device, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 0);
            var sim = new RtuPlcSimulator(options, port, stream);
            sim._thread.Start();
            return sim;
        }
        catch
        {
            port.Dispose();
            throw;
        }
    }

    public RtuFaults Faults { get; } = new();
    public RtuTiming Timing => _timing;
    public long FramesReceived => Interlocked.Read(ref _framesReceived);
    public long CrcErrors => Interlocked.Read(ref _crcErrors);
    public long RepliesSent => Interlocked.Read(ref _repliesSent);
    public long Broadcasts => Interlocked.Read(ref _broadcasts);
    /// <summary>Mean time by which replies went out after the moment the line allowed (scheduling on this machine), in µs.</summary>
    public double MeanReplyLatenessMicros => Interlocked.Read(ref _latenessTicks) * 1e6 / Stopwatch.Frequency / Math.Max(1, RepliesSent);
    /// <summary>Requests that followed one of this device's replies (their gap was measured).</summary>
    public long InterFrameGapsMeasured => Interlocked.Read(ref _gapsMeasured);
    /// <summary>Requests that began less than t3.5 after this device's last reply ended.</summary>
    public long InterFrameGapViolations => Interlocked.Read(ref _gapViolations);
    /// <summary>Shortest silence measured between a reply of this device and the next request, in µs (∞ before any).</summary>
    public double MinInterFrameGapMicros
    {
        get
        {
            long min = Interlocked.Read(ref _minGapTicks);
            return min == long.MaxValue ? double.PositiveInfinity : min * 1e6 / Stopwatch.Frequency;
        }
    }

    /// <summary>Requests of <paramref name="functionCode"/> executed.</summary>
    public long RequestsReceived(byte functionCode) => _engine.RequestsReceived(functionCode);

    public ushort GetHoldingRegister(byte unit, ushort address) => _engine.GetHoldingRegister(unit, address);
    public void SetHoldingRegister(byte unit, ushort address, ushort value) => _engine.SetHoldingRegister(unit, address, value);
    public bool GetCoil(byte unit, ushort address) => _engine.GetCoil(unit, address);

    private void Run()
    {
        var rx = new byte[1024];
        var mbap = new byte[ModbusLimits.MaxTcpAduLength + 16];
        var tx = new byte[RtuFramer.MaxAduLength * 2 + 64];
        int filled = 0;
        try
        {
            while (!_stopping)
            {
                int read = _stream.Read(rx, filled, rx.Length - filled);
                if (read == 0)
                {
                    return;
                }
                long arrived = Stopwatch.GetTimestamp();
                if (filled == 0)
                {
                    MeasureGap(arrived);
                }
                filled += read;
                int offset = 0;
                while (offset < filled)
                {
                    var input = rx.AsSpan(offset, filled - offset);
                    var status = RtuFramer.TryReadFrame(input, RtuDirection.Request, atSilence: false, out var frame, out int consumed, out _);
                    if (status == OperationStatus.NeedMoreData)
                    {
                        // A function whose length only silence tells: bytes come whole from the master, so the CRC over all of them decides.
                        status = RtuFramer.TryReadFrame(input, RtuDirection.Request, atSilence: true, out frame, out consumed, out _);
                        if (status != OperationStatus.Done)
                        {
                            break;
                        }
                    }
                    if (status == OperationStatus.InvalidData)
                    {
                        // A device discards what it cannot frame (bad CRC, noise) and waits for silence.
                        Interlocked.Increment(ref _crcErrors);
                        offset = filled;
                        break;
                    }
                    Interlocked.Increment(ref _framesReceived);
                    Answer(frame, arrived, mbap, tx);
                    offset += consumed;
                }
                rx.AsSpan(offset, filled - offset).CopyTo(rx);
                filled -= offset;
                if (filled == rx.Length)
                {
                    filled = 0;
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or UnauthorizedAccessException)
        {
            // The line went away.
        }
    }

    /// <summary>The silence between this device's last reply and the request beginning at <paramref name="arrived"/>.</summary>
    private void MeasureGap(long arrived)
    {
        long replyAt = _lastReplyAt;
        if (replyAt == 0)
        {
            return;
        }
        _lastReplyAt = 0;
        long gap = arrived - replyAt;
        Interlocked.Increment(ref _gapsMeasured);
        if (gap < (long)(_timing.InterFrameMicros * Stopwatch.Frequency / 1_000_000))
        {
            Interlocked.Increment(ref _gapViolations);
        }
        if (gap < Interlocked.Read(ref _minGapTicks))
        {
            Interlocked.Exchange(ref _minGapTicks, gap);
        }
    }

    private void Answer(in RtuFrame frame, long arrived, byte[] mbap, byte[] tx)
    {
        byte address = frame.Address;
        bool broadcast = address == RtuFramer.BroadcastAddress;
        if (!broadcast && address != _options.Unit && (address != _options.SecondUnit || _options.SecondUnit == 0))
        {
            return; // another device's request
        }
        var request = ModbusPdu.ParseRequest(frame.Pdu);
        if (request.Status == RequestStatus.Malformed)
        {
            return;
        }
        int length = _engine.ExecuteRequest(broadcast ? _options.Unit : address, request, mbap);
        if (broadcast)
        {
            if (_options.SecondUnit != 0)
            {
                _engine.ExecuteRequest(_options.SecondUnit, request, mbap);
            }
            Interlocked.Increment(ref _broadcasts);
            return;
        }
        if (length == 0)
        {
            return;
        }
        var faults = Faults;
        bool faulty = faults.Any && faults.Remaining > 0;
        if (faulty)
        {
            faults.Remaining--;
        }
        if (faulty && faults.NoReply)
        {
            return;
        }
        var pdu = mbap.AsSpan(ModbusLimits.MbapHeaderLength, length - ModbusLimits.MbapHeaderLength);
        int garbage = faulty && faults.Garbage ? 7 : 0;
        if (garbage > 0)
        {
            Random.Shared.NextBytes(tx.AsSpan(0, garbage));
        }
        if (faulty && faults.WrongFunction)
        {
            pdu[0] = (byte)(pdu[0] == 3 ? 4 : 3);
        }
        int replyLength = RtuFramer.WriteFrame(tx.AsSpan(garbage), faulty && faults.WrongUnit ? (byte)(address + 1) : address, pdu);
        if (faulty && faults.BadCrc)
        {
            tx[garbage + replyLength - 1] ^= 0x5A;
        }
        if (faulty && faults.Truncated)
        {
            replyLength -= 3;
        }
        int total = garbage + replyLength;
        if (faulty && faults.Twice)
        {
            tx.AsSpan(garbage, replyLength).CopyTo(tx.AsSpan(total));
            total += replyLength;
        }

        // When the last byte of the reply would arrive on a real line.
        double micros = _timing.FrameMicros(frame.Adu.Length) + _timing.InterFrameMicros + _timing.FrameMicros(total);
        long due = arrived + (long)(micros * Stopwatch.Frequency / 1_000_000);
        if (faulty && faults.LateMs > 0)
        {
            due += (long)faults.LateMs * Stopwatch.Frequency / 1000;
        }
        int split = faulty && faults.SplitGapMs > 0 ? total / 2 : 0;
        if (split > 0)
        {
            WaitUntil(due - (long)(_timing.FrameMicros(total - split) * Stopwatch.Frequency / 1_000_000));
            _stream.Write(tx, 0, split);
            WaitUntil(Stopwatch.GetTimestamp() + ((long)faults.SplitGapMs * Stopwatch.Frequency / 1000));
            _lastReplyAt = Stopwatch.GetTimestamp();
            _stream.Write(tx, split, total - split);
        }
        else
        {
            WaitUntil(due);
            long writing = Stopwatch.GetTimestamp();
            Interlocked.Add(ref _latenessTicks, writing - due);
            _lastReplyAt = writing;
            _stream.Write(tx, 0, total);
        }
        Interlocked.Increment(ref _repliesSent);
    }

    /// <summary>Sleeps while far off, then spins: sleeps here are only good to about a millisecond.</summary>
    private static void WaitUntil(long timestamp)
    {
        for (int guard = 0; guard < 1_000_000; guard++)
        {
            long remaining = timestamp - Stopwatch.GetTimestamp();
            if (remaining <= 0)
            {
                return;
            }
            if (remaining > Stopwatch.Frequency / 250)
            {
                Thread.Sleep(TimeSpan.FromTicks(TimeSpan.TicksPerSecond * (remaining - (Stopwatch.Frequency * 3 / 1000)) / Stopwatch.Frequency));
            }
            else
            {
                Thread.SpinWait(20);
            }
        }
    }

    public void Dispose()
    {
        _stopping = true;
        try
        {
            _port.Dispose();
        }
        catch (IOException)
        {
        }
        _stream.Dispose();
        _engine.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
