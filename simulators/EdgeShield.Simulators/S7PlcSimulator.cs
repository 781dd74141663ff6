using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Simulators;

/// <summary>
/// An S7-300/400-like CPU on ISO-on-TCP (TPKT, COTP class 0, S7comm) for tests, benchmarks, the attack
/// suite and the demo. It answers as a CPU does (docs/S7COMM.md; snap7's client is the interoperability
/// check): COTP CR → CC with the TPDU size lowered to <see cref="S7PlcOptions.MaxTpduSizeCode"/>,
/// setup-communication, read-var/write-var over DB, M, I and Q, plc-stop and the PI services, block upload and
/// download, and the userdata groups block functions, CPU functions (SZL), security and clock.
/// </summary>
/// <remarks>
/// Framing and decoding go through <see cref="TpktFramer"/>, <see cref="CotpReassembler"/> and
/// <see cref="S7Pdu.ParseRequest"/>. What cannot be framed or decoded (bad TPKT/COTP, an unknown TPDU code,
/// data before the COTP connect, a PDU above the negotiated size, a malformed S7 PDU) is counted and closes
/// the connection, as a CPU's communication processor drops it. Fragments of a PDU never completed are
/// counted when their connection ends.
/// </remarks>
public sealed partial class S7PlcSimulator : IAsyncDisposable
{
    /// <summary>Header error class/code pairs a CPU answers with (Wireshark <c>s7comm_errcode</c>, snap7's Code7… constants).</summary>
    public const ushort ErrorNeedPassword = 0xD241, ErrorInvalidPassword = 0xD602, ErrorBlockNotFound = 0xD209,
        ErrorServiceNotAvailable = 0x8104, ErrorPduSize = 0x8500, ErrorStateConflict = 0x8404, ErrorSzlNotAvailable = 0xD401;

    private readonly Socket _listener;
    private readonly S7PlcOptions _options;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Socket, Task> _connections = new();
    private readonly long[] _jobs = new long[256]; // indexed by S7Function (a byte enum)
    private readonly object _sync = new();
    private readonly Dictionary<int, byte[]> _dbs = [];
    private readonly byte[] _m, _i, _q;
    private readonly SortedDictionary<(byte Type, int Number), byte[]> _codeBlocks = [];
    private Task _acceptLoop = Task.CompletedTask;
    private CancellationTokenRegistration _callerStop;
    private long _clockOffsetTicks;
    private S7CpuState _state;
    private long _frames, _pdus, _malformed, _incomplete, _connectionsAccepted, _oversize, _dataBeforeConnect;
    private long _itemsRead, _itemsWritten, _outputWrites, _stops, _starts, _uploads, _downloads, _passwordAttempts, _passwordFailures;
    private int _disposed;

    private S7PlcSimulator(Socket listener, S7PlcOptions options)
    {
        _listener = listener;
        _options = options;
        for (int i = 0; i < options.DbCount; i++)
        {
            var db = new byte[options.DbSize];
            if (i == 0)
            {
                for (int b = 0; b < db.Length; b++)
                {
                    db[b] = (byte)b;
                }
            }
            _dbs[options.FirstDb + i] = db;
        }
        _m = new byte[options.AreaSize];
        _i = new byte[options.AreaSize];
        _q = new byte[options.AreaSize];
        for (int b = 0; b < _i.Length; b++)
        {
            _i[b] = (byte)(b % 2 == 0 ? 0x55 : 0xAA);
        }
        // A program to list, inspect and upload: OB1 calls FC1 and FB1 (the MC7 bytes are filler, not real code).
        _codeBlocks[(S7Blocks.TypeOb, 1)] = S7Blocks.Image(S7Blocks.TypeOb, 1, new byte[64]);
        _codeBlocks[(S7Blocks.TypeFc, 1)] = S7Blocks.Image(S7Blocks.TypeFc, 1, new byte[32]);
        _codeBlocks[(S7Blocks.TypeFb, 1)] = S7Blocks.Image(S7Blocks.TypeFb, 1, new byte[48]);
    }

    /// <summary>Binds, starts accepting, and returns once the socket listens.</summary>
    public static Task<S7PlcSimulator> StartAsync(IPEndPoint bind, S7PlcOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(bind);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.DbCount, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.FirstDb, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.FirstDb + options.DbCount - 1, 65535);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.DbSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.DbSize, 65536);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.AreaSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.AreaSize, 65536);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxPduSize, 240);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.MaxPduSize, MaxPduBuffer);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxAmq, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxTpduSizeCode, S7Limits.MinTpduSizeCode);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.MaxTpduSizeCode, S7Limits.MaxTpduSizeCode);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ReceiveBufferSize, 1 << S7Limits.MaxTpduSizeCode);
        if (options.Password is { Length: > 8 })
        {
            throw new ArgumentException("an S7 password has at most 8 characters", nameof(options));
        }
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
        var plc = new S7PlcSimulator(listener, options);
        if (ct.CanBeCanceled)
        {
            plc._callerStop = ct.Register(static s => ((S7PlcSimulator)s!)._stop.Cancel(), plc);
        }
        plc._acceptLoop = Task.Run(plc.AcceptLoopAsync, CancellationToken.None);
        return Task.FromResult(plc);
    }

    /// <summary>The largest PDU size the simulator can negotiate (its PDU buffers).</summary>
    public const int MaxPduBuffer = 960;

    /// <summary>The smallest PDU size it settles on, whatever the client asks.</summary>
    public const int MinPduSize = 64;

    /// <summary>The bound address (port resolved when bound to port 0).</summary>
    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    public int Port => EndPoint.Port;

    /// <summary>RUN or STOP.</summary>
    public S7CpuState State
    {
        get { lock (_sync) { return _state; } }
        set { lock (_sync) { _state = value; } }
    }

    /// <summary>TPKT packets that framed (any TPDU type) plus framing failures.</summary>
    public long FramesReceived => Interlocked.Read(ref _frames);
    /// <summary>Whole S7 PDUs (reassembled DT payloads) received.</summary>
    public long PdusReceived => Interlocked.Read(ref _pdus);
    /// <summary>Packets or PDUs that could not be framed or decoded (each closed its connection).</summary>
    public long MalformedFrames => Interlocked.Read(ref _malformed);
    /// <summary>PDUs (reassembled or on their way) larger than the negotiated PDU size (each closed its connection).</summary>
    public long OversizePdus => Interlocked.Read(ref _oversize);
    /// <summary>DT packets sent before a COTP connect (each closed its connection).</summary>
    public long DataBeforeConnect => Interlocked.Read(ref _dataBeforeConnect);
    /// <summary>Connections that ended holding DT fragments of a PDU whose last fragment (EOT) never came.</summary>
    public long IncompletePdus => Interlocked.Read(ref _incomplete);
    public long ConnectionsAccepted => Interlocked.Read(ref _connectionsAccepted);
    public int ActiveConnections => _connections.Count;
    /// <summary>Read-var items served (any return code).</summary>
    public long ItemsRead => Interlocked.Read(ref _itemsRead);
    /// <summary>Write-var items that changed memory.</summary>
    public long ItemsWritten => Interlocked.Read(ref _itemsWritten);
    /// <summary>Write-var items that changed the Q area (forced outputs).</summary>
    public long OutputWrites => Interlocked.Read(ref _outputWrites);
    /// <summary>plc-stop jobs that put the CPU in STOP.</summary>
    public long Stops => Interlocked.Read(ref _stops);
    /// <summary>PI P_PROGRAM (hot or cold start) that put the CPU in RUN.</summary>
    public long Starts => Interlocked.Read(ref _starts);
    /// <summary>Block uploads completed (end-upload answered).</summary>
    public long Uploads => Interlocked.Read(ref _uploads);
    /// <summary>Block downloads completed (download-ended acknowledged by the client).</summary>
    public long Downloads => Interlocked.Read(ref _downloads);
    /// <summary>Userdata security (set password) requests, and those with a wrong password.</summary>
    public long PasswordAttempts => Interlocked.Read(ref _passwordAttempts);
    public long PasswordFailures => Interlocked.Read(ref _passwordFailures);

    /// <summary>Decodable jobs and userdata requests received of <paramref name="function"/>.</summary>
    public long Requests(S7Function function) => Interlocked.Read(ref _jobs[(int)function]);

    /// <summary>Sum of <see cref="Requests"/> over all functions.</summary>
    public long TotalRequests
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < _jobs.Length; i++)
            {
                sum += Interlocked.Read(ref _jobs[i]);
            }
            return sum;
        }
    }

    /// <summary>A copy of <paramref name="length"/> bytes of DB <paramref name="db"/> from <paramref name="start"/>.</summary>
    public byte[] ReadDb(int db, int start, int length)
    {
        lock (_sync)
        {
            return _dbs[db].AsSpan(start, length).ToArray();
        }
    }

    public void WriteDb(int db, int start, ReadOnlySpan<byte> data)
    {
        lock (_sync)
        {
            data.CopyTo(_dbs[db].AsSpan(start));
        }
    }

    /// <summary>A copy of bytes of area M (0x83), I (0x81) or Q (0x82).</summary>
    public byte[] ReadArea(S7Area area, int start, int length)
    {
        lock (_sync)
        {
            return Area(area).AsSpan(start, length).ToArray();
        }
    }

    public void WriteArea(S7Area area, int start, ReadOnlySpan<byte> data)
    {
        lock (_sync)
        {
            data.CopyTo(Area(area).AsSpan(start));
        }
    }

    /// <summary>Whether a block of type <paramref name="type"/> (ASCII code: 0x38 OB, 0x41 DB, 0x43 FC, 0x45 FB…) exists.</summary>
    public bool HasBlock(byte type, int number)
    {
        lock (_sync)
        {
            return type == S7Blocks.TypeDb ? _dbs.ContainsKey(number) : _codeBlocks.ContainsKey((type, number));
        }
    }

    private byte[] Area(S7Area area) => area switch
    {
        S7Area.Flags => _m,
        S7Area.Inputs => _i,
        S7Area.Outputs => _q,
        _ => throw new ArgumentOutOfRangeException(nameof(area), area, "M, I or Q"),
    };

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
            await _acceptLoop;
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
        foreach (var socket in _connections.Keys)
        {
            socket.Dispose();
        }
        try
        {
            await Task.WhenAll(_connections.Values);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // connections end as their sockets close
        }
        _stop.Dispose();
    }

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
            var session = new Session(this, socket);
            _connections[socket] = Task.Run(async () =>
            {
                try
                {
                    await session.RunAsync(_stop.Token);
                }
                finally
                {
                    _connections.TryRemove(socket, out _);
                    socket.Dispose();
                }
            }, CancellationToken.None);
        }
    }

    private void Count(S7Function function) => Interlocked.Increment(ref _jobs[(int)function]);

    /// <summary>One client connection: its buffers, COTP and S7 negotiation state, and a block transfer in progress.</summary>
    private sealed partial class Session
    {
        private readonly S7PlcSimulator _plc;
        private readonly Socket _socket;
        private readonly byte[] _rx;
        private readonly byte[] _tx = new byte[64 * 1024];
        private readonly byte[] _out = new byte[MaxPduBuffer];
        private readonly CotpReassembler _reassembler;
        private int _txLength;
        private bool _connected;
        private int _tpduSize = CotpWriter.MinTpduSize;
        private int _pduSize;
        private bool _authorized;
        private ushort _plcReference = 0x0100;

        public Session(S7PlcSimulator plc, Socket socket)
        {
            _plc = plc;
            _socket = socket;
            _rx = new byte[plc._options.ReceiveBufferSize];
            _reassembler = new CotpReassembler(new byte[MaxPduBuffer], plc._options.MaxPduSize);
            _pduSize = plc._options.MaxPduSize;
            _authorized = plc._options.Password is null;
        }

        public async Task RunAsync(CancellationToken ct)
        {
            int buffered = 0;
            try
            {
                while (true)
                {
                    int n = await _socket.ReceiveAsync(_rx.AsMemory(buffered), SocketFlags.None, ct);
                    if (n == 0)
                    {
                        break;
                    }
                    buffered += n;
                    int offset = 0;
                    bool close = false;
                    while (!close)
                    {
                        if (_txLength > _tx.Length / 2)
                        {
                            await SendAsync(ct); // a client pipelining many jobs: answer as we go
                        }
                        var status = TpktFramer.TryReadFrame(_rx.AsSpan(offset, buffered - offset), out var tpdu, out int used, out _);
                        if (status == OperationStatus.NeedMoreData)
                        {
                            if (buffered - offset == _rx.Length)
                            {
                                Interlocked.Increment(ref _plc._malformed); // a TPKT length beyond the receive buffer
                                close = true;
                            }
                            break;
                        }
                        Interlocked.Increment(ref _plc._frames);
                        if (status != OperationStatus.Done)
                        {
                            Interlocked.Increment(ref _plc._malformed);
                            close = true;
                            break;
                        }
                        close = !Handle(tpdu);
                        offset += used;
                    }
                    if (_txLength > 0)
                    {
                        await SendAsync(ct);
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
                // the client went away or the simulator stops
            }
            finally
            {
                if (_reassembler.HasPending)
                {
                    Interlocked.Increment(ref _plc._incomplete);
                }
            }
        }

        private async Task SendAsync(CancellationToken ct)
        {
            var data = _tx.AsMemory(0, _txLength);
            _txLength = 0;
            while (!data.IsEmpty)
            {
                int sent = await _socket.SendAsync(data, SocketFlags.None, ct);
                data = data[sent..];
            }
        }

        /// <summary>Handles one TPDU; false closes the connection.</summary>
        private bool Handle(in CotpTpdu tpdu)
        {
            switch (tpdu.Type)
            {
                case CotpTpduType.ConnectionRequest:
                    if (_connected)
                    {
                        Interlocked.Increment(ref _plc._malformed);
                        return false;
                    }
                    byte code = tpdu.TpduSizeCode == 0 ? S7Limits.MinTpduSizeCode : Math.Min(tpdu.TpduSizeCode, _plc._options.MaxTpduSizeCode);
                    _tpduSize = 1 << code;
                    int cc = CotpWriter.WriteConnectConfirm(_tx.AsSpan(_txLength), tpdu.SourceReference, 0x0044, code, tpdu.CallingTsap, tpdu.CalledTsap);
                    if (cc < 0)
                    {
                        Interlocked.Increment(ref _plc._malformed);
                        return false;
                    }
                    _txLength += cc;
                    _connected = true;
                    return true;
                case CotpTpduType.Data:
                    if (!_connected)
                    {
                        Interlocked.Increment(ref _plc._dataBeforeConnect);
                        return false;
                    }
                    var status = _reassembler.Append(tpdu, out var pdu, out var error);
                    if (status == OperationStatus.NeedMoreData)
                    {
                        return true;
                    }
                    if (status != OperationStatus.Done)
                    {
                        Interlocked.Increment(ref error == S7FramingError.PduTooLarge ? ref _plc._oversize : ref _plc._malformed);
                        return false;
                    }
                    Interlocked.Increment(ref _plc._pdus);
                    return HandlePdu(pdu);
                default:
                    // DR and ER end the connection; a CC from a client is nonsense.
                    if (tpdu.Type == CotpTpduType.ConnectionConfirm)
                    {
                        Interlocked.Increment(ref _plc._malformed);
                    }
                    return false;
            }
        }

        /// <summary>Writes an S7 PDU from <see cref="_out"/> as DT TPDUs of the connection's TPDU size.</summary>
        private bool Send(int pduLength)
        {
            if (pduLength < 0 || pduLength > _pduSize || CotpWriter.DataLength(pduLength, _tpduSize) > _tx.Length - _txLength)
            {
                return false; // an answer that cannot be sent (it would not fit the PDU size): the connection is closed
            }
            _txLength += CotpWriter.WriteData(_tx.AsSpan(_txLength), _out.AsSpan(0, pduLength), _tpduSize);
            return true;
        }

        private bool HandlePdu(ReadOnlySpan<byte> pdu)
        {
            var header = S7Pdu.ParseHeader(pdu);
            if (header.IsValid && header.Protocol == S7Protocol.S7comm && header.Rosctr is S7Rosctr.Ack or S7Rosctr.AckData)
            {
                return HandleClientAnswer(header);
            }
            var request = S7Pdu.ParseRequest(pdu);
            if (request.Status == S7RequestStatus.Malformed || request.Protocol != S7Protocol.S7comm)
            {
                Interlocked.Increment(ref _plc._malformed);
                return false;
            }
            _plc.Count(request.Function);
            var expected = request.Expectation(_pduSize);
            if (request.Rosctr == S7Rosctr.Userdata)
            {
                return HandleUserdata(request, expected);
            }
            switch (request.Function)
            {
                case S7Function.SetupCommunication:
                    return Setup(request);
                case S7Function.ReadVar:
                    return ReadVar(request, expected);
                case S7Function.WriteVar:
                    return WriteVar(request, expected);
                case S7Function.PlcStop:
                    return PlcStop(request, expected);
                case S7Function.PlcControl:
                    return PlcControl(request, expected);
                case S7Function.StartUpload:
                case S7Function.Upload:
                case S7Function.EndUpload:
                    return UploadJob(request, expected);
                case S7Function.RequestDownload:
                    return RequestDownload(request, expected);
                default:
                    // cpu-services, download-block/ended sent by a client, unknown function codes.
                    return Send(S7Pdu.WriteJobError(_out, expected, ErrorServiceNotAvailable >> 8, ErrorServiceNotAvailable & 0xFF));
            }
        }

        private bool Setup(in S7Request request)
        {
            if (request.Status != S7RequestStatus.Ok)
            {
                var refusal = request.Expectation(_pduSize);
                return Send(S7Pdu.WriteJobError(_out, refusal, 0x84, 0x04));
            }
            // The smaller of the two wins, as on a CPU; below 64 bytes no answer with data would fit, so 64 is the floor.
            _pduSize = Math.Max(MinPduSize, Math.Min((int)request.PduSize, _plc._options.MaxPduSize));
            ushort amq = (ushort)Math.Min(Math.Min(request.AmqCalling, request.AmqCalled), _plc._options.MaxAmq);
            _reassembler.MaxPduSize = _pduSize;
            // | F0 | 00 | AmQ calling (2) | AmQ called (2) | PDU size (2) |
            int length = AckDataHeader(request.Reference, S7Limits.SetupParameterLength, 0);
            var p = _out.AsSpan(S7Limits.AckHeaderLength);
            p[0] = S7Functions.SetupCommunication;
            p[1] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(p[2..], amq);
            BinaryPrimitives.WriteUInt16BigEndian(p[4..], amq);
            BinaryPrimitives.WriteUInt16BigEndian(p[6..], (ushort)_pduSize);
            return Send(length);
        }

        /// <summary>Writes an Ack_Data header (error 0000) into <see cref="_out"/>; returns the PDU length.</summary>
        private int AckDataHeader(ushort reference, int parameterLength, int dataLength, ushort error = 0)
        {
            var o = _out.AsSpan();
            o[0] = S7Limits.ProtocolId;
            o[1] = (byte)S7Rosctr.AckData;
            o[2] = 0;
            o[3] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(o[4..], reference);
            BinaryPrimitives.WriteUInt16BigEndian(o[6..], (ushort)parameterLength);
            BinaryPrimitives.WriteUInt16BigEndian(o[8..], (ushort)dataLength);
            BinaryPrimitives.WriteUInt16BigEndian(o[10..], error);
            return S7Limits.AckHeaderLength + parameterLength + dataLength;
        }

        private bool JobError(in S7Expectation expected, ushort error) =>
            Send(S7Pdu.WriteJobError(_out, expected, (byte)(error >> 8), (byte)error));
    }
}
