using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Simulators;

/// <summary>
/// An IEC 60870-5-104 controlled station (an RTU) for tests, benchmarks and the attack suite: the APCI with its own
/// N(S)/N(R) per connection, k/w windows, t1/t2/t3, TESTFR, STARTDT/STOPDT (no I-frame before STARTDT con), and the
/// ASDUs a station answers (docs/IEC104.md; lib60870's client is the interoperability check). Points and commands:
/// <see cref="Iec104Points"/>.
/// </summary>
/// <remarks>
/// Framing and decoding go through the product's codec: <see cref="Iec104Framer"/>, <see cref="Iec104Apdu.TryParse"/>,
/// <see cref="Iec104Asdu.TryParse"/>. A frame that does not frame or parse (LEN out of range, a U-frame with two
/// functions, an ASDU whose length lies about TYPE/SQ/N …), an I-frame whose N(S) is not the expected one, an N(R)
/// acknowledging a frame never sent, an I-frame before STARTDT, or t1 running out closes the connection, counted and
/// said on <see cref="Iec104PlcOptions.Log"/>.
/// </remarks>
public sealed partial class Iec104PlcSimulator : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly Iec104PlcOptions _options;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Session, Task> _sessions = new();
    private readonly long[] _asdus = new long[256];
    private readonly long[] _negatives = new long[64];
    private readonly object _sync = new();
    private readonly Iec104Points _points;
    private Task _acceptLoop = Task.CompletedTask;
    private Task _timerLoop = Task.CompletedTask;
    private CancellationTokenRegistration _callerStop;
    private long _frames, _iFrames, _sFrames, _uFrames, _malformed, _sequenceErrors, _beforeStart, _t1Expired, _connectionsAccepted;
    private long _selects, _executes, _setpoints, _interrogations, _counterInterrogations, _reads, _clockSyncs, _spontaneous;
    private long _clockOffsetTicks;
    private int _connectionNumber;
    private int _disposed;

    private Iec104PlcSimulator(Socket listener, Iec104PlcOptions options)
    {
        _listener = listener;
        _options = options;
        _points = new Iec104Points();
    }

    /// <summary>Binds, starts accepting, and returns once the socket listens.</summary>
    public static Task<Iec104PlcSimulator> StartAsync(IPEndPoint bind, Iec104PlcOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(bind);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfEqual(options.CommonAddress, Iec104Limits.GlobalCommonAddress);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.SpontaneousMs, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.K, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.K, 32767);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.W, 1);
        ct.ThrowIfCancellationRequested();
        var listener = new Socket(bind.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(bind);
            listener.Listen(1024);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        var plc = new Iec104PlcSimulator(listener, options);
        if (ct.CanBeCanceled)
        {
            plc._callerStop = ct.Register(static s => ((Iec104PlcSimulator)s!)._stop.Cancel(), plc);
        }
        plc._acceptLoop = Task.Run(plc.AcceptLoopAsync, CancellationToken.None);
        plc._timerLoop = Task.Run(plc.TimerLoopAsync, CancellationToken.None);
        return Task.FromResult(plc);
    }

    /// <summary>The bound address (port resolved when bound to port 0).</summary>
    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    public int Port => EndPoint.Port;

    public ushort CommonAddress => _options.CommonAddress;

    /// <summary>APDUs that framed, plus framing failures.</summary>
    public long FramesReceived => Interlocked.Read(ref _frames);
    public long IFrames => Interlocked.Read(ref _iFrames);
    public long SFrames => Interlocked.Read(ref _sFrames);
    public long UFrames => Interlocked.Read(ref _uFrames);
    /// <summary>Frames or ASDUs that did not frame or parse (each closed its connection).</summary>
    public long MalformedFrames => Interlocked.Read(ref _malformed);
    /// <summary>I-frames with an unexpected N(S), and N(R)s acknowledging frames never sent (each closed its connection).</summary>
    public long SequenceErrors => Interlocked.Read(ref _sequenceErrors);
    /// <summary>I-frames received before STARTDT (each closed its connection).</summary>
    public long IFramesBeforeStart => Interlocked.Read(ref _beforeStart);
    /// <summary>Connections closed because t1 ran out.</summary>
    public long T1Expired => Interlocked.Read(ref _t1Expired);
    public long ConnectionsAccepted => Interlocked.Read(ref _connectionsAccepted);
    public int ActiveConnections => _sessions.Count;
    /// <summary>Connections that sent STARTDT act and did not stop.</summary>
    public int StartedConnections => _sessions.Keys.Count(static s => s.Started);
    /// <summary>Well-formed ASDUs received of <paramref name="type"/>.</summary>
    public long Asdus(byte type) => Interlocked.Read(ref _asdus[type]);
    /// <summary>Negative confirmations sent with <paramref name="cause"/> (7, 9, 44-47 …).</summary>
    public long Negatives(byte cause) => Interlocked.Read(ref _negatives[cause & 0x3F]);
    public long TotalNegatives => _negatives.Sum();
    public long Selects => Interlocked.Read(ref _selects);
    /// <summary>Commands (C_SC, C_DC, C_RC) executed: the point changed.</summary>
    public long Executes => Interlocked.Read(ref _executes);
    /// <summary>Set-points executed: the value changed.</summary>
    public long Setpoints => Interlocked.Read(ref _setpoints);
    public long Interrogations => Interlocked.Read(ref _interrogations);
    public long CounterInterrogations => Interlocked.Read(ref _counterInterrogations);
    public long Reads => Interlocked.Read(ref _reads);
    public long ClockSyncs => Interlocked.Read(ref _clockSyncs);
    /// <summary>Spontaneous ASDUs queued (to every started connection; counted once per change).</summary>
    public long SpontaneousChanges => Interlocked.Read(ref _spontaneous);

    /// <summary>The station's clock: the host's local time plus what C_CS_NA_1 set.</summary>
    public DateTime Clock => DateTime.Now + TimeSpan.FromTicks(Interlocked.Read(ref _clockOffsetTicks));

    /// <summary>The single-point state of <paramref name="ioa"/> (100-109, or a command object 2000-2099).</summary>
    public bool SinglePoint(uint ioa)
    {
        lock (_sync)
        {
            return _points.Single(ioa);
        }
    }

    /// <summary>The double-point state (1 off, 2 on) of <paramref name="ioa"/> (110-119, or a command object 2000-2099).</summary>
    public int DoublePoint(uint ioa)
    {
        lock (_sync)
        {
            return _points.Double(ioa);
        }
    }

    /// <summary>The step position of command object <paramref name="ioa"/> (2000-2099), moved by C_RC_NA_1.</summary>
    public int StepPosition(uint ioa)
    {
        lock (_sync)
        {
            return _points.Step(ioa);
        }
    }

    /// <summary>The value of set-point <paramref name="ioa"/> (3000-3009) as the station reads it.</summary>
    public float Setpoint(uint ioa)
    {
        lock (_sync)
        {
            return _points.Setpoint(ioa);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _stop.CancelAsync();
        _listener.Dispose();
        await _callerStop.DisposeAsync();
        try
        {
            await Task.WhenAll(_acceptLoop, _timerLoop);
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
        foreach (var session in _sessions.Keys)
        {
            session.Abort();
        }
        try
        {
            await Task.WhenAll(_sessions.Values);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // sessions end as their sockets close
        }
        _stop.Dispose();
    }

    private void Log(string message) => _options.Log?.Invoke(message);

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stop.IsCancellationRequested)
                {
                    return;
                }
                continue;
            }
            socket.NoDelay = true;
            Interlocked.Increment(ref _connectionsAccepted);
            var session = new Session(this, socket, Interlocked.Increment(ref _connectionNumber));
            _sessions[session] = Task.Run(async () =>
            {
                try
                {
                    await session.RunAsync(_stop.Token);
                }
                finally
                {
                    _sessions.TryRemove(session, out _);
                    session.Abort();
                }
            }, CancellationToken.None);
        }
    }

    /// <summary>Spontaneous changes and every connection's t1/t2/t3, ticking every 50 ms.</summary>
    private async Task TimerLoopAsync()
    {
        long nextChange = Stopwatch.GetTimestamp() + Ticks(_options.SpontaneousMs);
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(50));
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                long now = Stopwatch.GetTimestamp();
                if (_options.SpontaneousMs > 0 && now >= nextChange)
                {
                    nextChange = now + Ticks(_options.SpontaneousMs);
                    byte[] asdu;
                    lock (_sync)
                    {
                        asdu = _points.NextChange(_options.CommonAddress, Clock);
                    }
                    Interlocked.Increment(ref _spontaneous);
                    Broadcast(asdu);
                }
                foreach (var session in _sessions.Keys)
                {
                    session.Tick(now);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    private static long Ticks(int milliseconds) => milliseconds * Stopwatch.Frequency / 1000;

    private static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    /// <summary>Queues <paramref name="asdu"/> to every started connection.</summary>
    private void Broadcast(byte[] asdu)
    {
        foreach (var session in _sessions.Keys)
        {
            if (session.Started)
            {
                session.Enqueue(asdu);
            }
        }
    }

    /// <summary>STARTDT on <paramref name="starting"/> in single-group mode: the connection active before is closed.</summary>
    private void CloseOtherActive(Session starting)
    {
        foreach (var session in _sessions.Keys)
        {
            if (session != starting && session.Started)
            {
                Log($"iec104: conn {session.Number}: closed: connection {starting.Number} of the redundancy group sent STARTDT");
                session.Abort();
            }
        }
    }

    /// <summary>One client connection: its sequence numbers, windows, timers and armed selects.</summary>
    private sealed partial class Session
    {
        private readonly Iec104PlcSimulator _plc;
        private readonly Socket _socket;
        private readonly Channel<byte[]> _wire = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
        private readonly object _gate = new();
        private readonly Queue<byte[]> _pending = new();
        private readonly Queue<(ushort Sequence, long SentAt)> _inFlight = new();
        private readonly byte[] _rx = new byte[8 * 1024];
        private ushort _vs, _vr;
        private int _unacknowledgedReceived;
        private long _firstUnacknowledgedAt, _lastReceiveAt, _testSentAt;
        private bool _started, _closed;

        public Session(Iec104PlcSimulator plc, Socket socket, int number)
        {
            _plc = plc;
            _socket = socket;
            Number = number;
            _lastReceiveAt = Stopwatch.GetTimestamp();
        }

        public int Number { get; }

        public bool Started
        {
            get { lock (_gate) { return _started && !_closed; } }
        }

        private IPEndPoint? Peer => _socket.RemoteEndPoint as IPEndPoint;

        public void Abort()
        {
            lock (_gate)
            {
                _closed = true;
            }
            _wire.Writer.TryComplete();
            try
            {
                _socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // already gone
            }
            _socket.Dispose();
        }

        private void Close(string reason)
        {
            _plc.Log($"iec104: conn {Number} ({Peer}): closed: {reason}");
            Abort();
        }

        public async Task RunAsync(CancellationToken ct)
        {
            var writer = Task.Run(() => WriteLoopAsync(ct), CancellationToken.None);
            int buffered = 0;
            try
            {
                while (!ct.IsCancellationRequested)
                {
                    int n = await _socket.ReceiveAsync(_rx.AsMemory(buffered), SocketFlags.None, ct);
                    if (n == 0)
                    {
                        break;
                    }
                    buffered += n;
                    lock (_gate)
                    {
                        _lastReceiveAt = Stopwatch.GetTimestamp();
                        _testSentAt = 0;
                    }
                    int offset = 0;
                    bool close = false;
                    while (!close)
                    {
                        var input = _rx.AsSpan(offset, buffered - offset);
                        var status = Iec104Framer.Instance.TryDelimit(input, out int consumed, out var fault);
                        if (status == OperationStatus.NeedMoreData)
                        {
                            break;
                        }
                        Interlocked.Increment(ref _plc._frames);
                        if (status != OperationStatus.Done)
                        {
                            Interlocked.Increment(ref _plc._malformed);
                            Close("malformed frame: " + Iec104Framer.Instance.Describe(fault));
                            close = true;
                            break;
                        }
                        close = !Handle(input[..consumed]);
                        offset += consumed;
                    }
                    if (close)
                    {
                        break;
                    }
                    Buffer.BlockCopy(_rx, offset, _rx, 0, buffered - offset);
                    buffered -= offset;
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // the client went away or the station stops
            }
            finally
            {
                Abort();
                try
                {
                    await writer;
                }
                catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
                {
                    // closing
                }
            }
        }

        private async Task WriteLoopAsync(CancellationToken ct)
        {
            var batch = new byte[64 * 1024];
            try
            {
                while (await _wire.Reader.WaitToReadAsync(ct))
                {
                    int length = 0;
                    while (length < batch.Length - Iec104Limits.MaxFrame && _wire.Reader.TryRead(out var frame))
                    {
                        frame.CopyTo(batch, length);
                        length += frame.Length;
                    }
                    var data = batch.AsMemory(0, length);
                    while (!data.IsEmpty)
                    {
                        int sent = await _socket.SendAsync(data, SocketFlags.None, ct);
                        data = data[sent..];
                    }
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException or ChannelClosedException)
            {
                // closing
            }
        }

        /// <summary>Handles one delimited APDU; false closes the connection (already logged).</summary>
        private bool Handle(ReadOnlySpan<byte> frame)
        {
            if (!Iec104Apdu.TryParse(frame, out var apdu, out var fault))
            {
                Interlocked.Increment(ref _plc._malformed);
                Close("malformed frame: " + Iec104FrameErrors.Describe(fault));
                return false;
            }
            switch (apdu.Format)
            {
                case Iec104Format.S:
                    Interlocked.Increment(ref _plc._sFrames);
                    return Acknowledge(apdu.ReceiveSequence);
                case Iec104Format.U:
                    Interlocked.Increment(ref _plc._uFrames);
                    return HandleU(apdu.UFunction);
                default:
                    Interlocked.Increment(ref _plc._iFrames);
                    return HandleI(apdu);
            }
        }

        private bool HandleU(Iec104UFunction function)
        {
            switch (function)
            {
                case Iec104UFunction.StartDtAct:
                    if (_plc._options.SingleGroup)
                    {
                        _plc.CloseOtherActive(this);
                    }
                    lock (_gate)
                    {
                        _started = true;
                        Put(Iec104Build.UFrame(Iec104UFunction.StartDtCon));
                        Pump();
                    }
                    return true;
                case Iec104UFunction.StopDtAct:
                    lock (_gate)
                    {
                        _started = false;
                        _pending.Clear();
                        if (_unacknowledgedReceived > 0)
                        {
                            SendAcknowledgement();
                        }
                        Put(Iec104Build.UFrame(Iec104UFunction.StopDtCon));
                    }
                    return true;
                case Iec104UFunction.TestFrAct:
                    lock (_gate)
                    {
                        Put(Iec104Build.UFrame(Iec104UFunction.TestFrCon));
                    }
                    return true;
                case Iec104UFunction.TestFrCon:
                    return true; // the answer to our TESTFR act (the receive already reset t1 for it)
                default:
                    // A confirmation (STARTDT/STOPDT con) from a controlling station: not its part.
                    Interlocked.Increment(ref _plc._malformed);
                    Close("unexpected " + Iec104UFunctions.Name(function) + " from the controlling station");
                    return false;
            }
        }

        private bool HandleI(in Iec104Apdu apdu)
        {
            lock (_gate)
            {
                if (!_started)
                {
                    Interlocked.Increment(ref _plc._beforeStart);
                    Close("I-frame before STARTDT");
                    return false;
                }
                if (apdu.SendSequence != _vr)
                {
                    Interlocked.Increment(ref _plc._sequenceErrors);
                    Close(string.Create(CultureInfo.InvariantCulture, $"sequence error: N(S) {apdu.SendSequence}, expected {_vr}"));
                    return false;
                }
                _vr = Iec104Sequence.Next(_vr);
                if (_unacknowledgedReceived++ == 0)
                {
                    _firstUnacknowledgedAt = Stopwatch.GetTimestamp();
                }
            }
            if (!Acknowledge(apdu.ReceiveSequence))
            {
                return false;
            }
            if (!Iec104Asdu.TryParse(apdu.Asdu, out var asdu, out var fault))
            {
                Interlocked.Increment(ref _plc._malformed);
                Close("malformed ASDU: " + Iec104FrameErrors.Describe(fault));
                return false;
            }
            _plc.HandleAsdu(this, asdu);
            lock (_gate)
            {
                if (_unacknowledgedReceived >= _plc._options.W)
                {
                    SendAcknowledgement();
                }
            }
            return true;
        }

        /// <summary>N(R) from the client: frees the window; an N(R) for a frame never sent is a sequence error.</summary>
        private bool Acknowledge(ushort receiveSequence)
        {
            lock (_gate)
            {
                ushort oldest = _inFlight.Count > 0 ? _inFlight.Peek().Sequence : _vs;
                if (!Iec104Sequence.IsValidAcknowledgement(oldest, receiveSequence, _vs))
                {
                    Interlocked.Increment(ref _plc._sequenceErrors);
                    Close(string.Create(CultureInfo.InvariantCulture, $"sequence error: N(R) {receiveSequence} acknowledges a frame never sent (next N(S) {_vs})"));
                    return false;
                }
                while (_inFlight.Count > 0 && _inFlight.Peek().Sequence != receiveSequence)
                {
                    _inFlight.Dequeue();
                }
                Pump();
                return true;
            }
        }

        /// <summary>Queues an ASDU; it is sent at once while fewer than k frames are unacknowledged.</summary>
        public void Enqueue(byte[] asdu)
        {
            lock (_gate)
            {
                if (_closed || !_started)
                {
                    return;
                }
                if (_pending.Count >= MaxPending)
                {
                    Close(string.Create(CultureInfo.InvariantCulture, $"{MaxPending} ASDUs waiting for the client's acknowledgements"));
                    return;
                }
                _pending.Enqueue(asdu);
                Pump();
            }
        }

        /// <summary>ASDUs held back by the k window before the connection is given up (t1 usually closes it first).</summary>
        private const int MaxPending = 10_000;

        /// <summary>Under <see cref="_gate"/>: moves pending ASDUs to the wire while the k window allows.</summary>
        private void Pump()
        {
            while (_started && _pending.Count > 0 && _inFlight.Count < _plc._options.K)
            {
                var asdu = _pending.Dequeue();
                _inFlight.Enqueue((_vs, Stopwatch.GetTimestamp()));
                Put(Iec104Build.IFrame(_vs, _vr, asdu));
                _vs = Iec104Sequence.Next(_vs);
                _unacknowledgedReceived = 0;
            }
        }

        private void SendAcknowledgement()
        {
            Put(Iec104Build.SFrame(_vr));
            _unacknowledgedReceived = 0;
        }

        private void Put(byte[] frame)
        {
            if (!_closed)
            {
                _wire.Writer.TryWrite(frame);
            }
        }

        /// <summary>t1 (acknowledgement and TESTFR con), t2 (acknowledge what was received) and t3 (TESTFR when idle).</summary>
        public void Tick(long now)
        {
            var o = _plc._options;
            string? reason = null;
            lock (_gate)
            {
                if (_closed)
                {
                    return;
                }
                if (_inFlight.Count > 0 && now - _inFlight.Peek().SentAt > Ticks(o.T1))
                {
                    reason = "t1: I-frames not acknowledged";
                }
                else if (_testSentAt != 0 && now - _testSentAt > Ticks(o.T1))
                {
                    reason = "t1: TESTFR act not confirmed";
                }
                else
                {
                    if (_unacknowledgedReceived > 0 && now - _firstUnacknowledgedAt > Ticks(o.T2))
                    {
                        SendAcknowledgement();
                    }
                    if (_testSentAt == 0 && now - _lastReceiveAt > Ticks(o.T3))
                    {
                        _testSentAt = now;
                        Put(Iec104Build.UFrame(Iec104UFunction.TestFrAct));
                    }
                }
            }
            if (reason is not null)
            {
                Interlocked.Increment(ref _plc._t1Expired);
                Close(reason);
            }
        }

        // ------------------------------------------------------------ armed selects (select-before-operate)

        private readonly Dictionary<uint, (Iec104CommandKey Key, long At)> _selects = [];

        public void Arm(Iec104CommandKey key)
        {
            lock (_gate)
            {
                _selects[key.Ioa] = (key, Stopwatch.GetTimestamp());
            }
        }

        /// <summary>True (and disarms) when a select of the same type, CA, IOA, value and qualifier was confirmed within the select timeout.</summary>
        public bool Disarm(Iec104CommandKey key)
        {
            lock (_gate)
            {
                if (!_selects.Remove(key.Ioa, out var armed))
                {
                    return false;
                }
                return armed.Key == key && Stopwatch.GetTimestamp() - armed.At <= Ticks(_plc._options.SelectTimeout);
            }
        }

        public void Cancel(uint ioa)
        {
            lock (_gate)
            {
                _selects.Remove(ioa);
            }
        }
    }
}
