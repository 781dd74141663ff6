using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Simulators;

/// <summary>
/// A Modbus TCP server with the four data tables per unit id and every public function of the
/// spec, for tests, benchmarks and the demo. Requests are framed and decoded by
/// <see cref="MbapFramer"/> and <see cref="ModbusPdu"/>; a frame either fails to frame or decode
/// (counted in <see cref="MalformedFrames"/>, connection closed) or is counted under its function
/// code in <see cref="RequestsReceived"/>, so <c>FramesReceived == TotalRequests + MalformedFrames</c>.
/// </summary>
/// <remarks>
/// Per connection: one receive and one send buffer for its life, socket calls on
/// <see cref="Memory{T}"/>, and the responses to every complete request in a receive batched into
/// one send. The per-request path allocates nothing.
/// </remarks>
public sealed partial class PlcSimulator : IAsyncDisposable
{
    private const int SendBufferSize = 16 * 1024;

    private readonly Socket? _listener;
    private readonly PlcOptions _options;
    private readonly bool[]? _served;
    private readonly PlcUnit?[] _units = new PlcUnit?[256];
    private readonly long[] _requestsByFunction = new long[256];
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Socket, Task> _connections = new();
    private readonly long _startTimestamp = Stopwatch.GetTimestamp();
    private Task _acceptLoop = Task.CompletedTask;
    private CancellationTokenRegistration _callerStop;
    private long _framesReceived;
    private long _malformedFrames;
    private long _truncatedFrames;
    private long _connectionsAccepted;
    private long _responsesSent;
    private long _exceptionsSent;
    private int _disposed;

    private PlcSimulator(Socket? listener, PlcOptions options)
    {
        _listener = listener;
        _options = options;
        Faults = new PlcFaults { ResponseDelayMs = options.ResponseDelayMs };
        if (options.Units is { } units)
        {
            _served = new bool[256];
            foreach (byte unit in units)
            {
                _served[unit] = true;
            }
        }
    }

    /// <summary>Binds, starts accepting, and returns once the socket listens.</summary>
    public static Task<PlcSimulator> StartAsync(IPEndPoint bind, PlcOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(bind);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.TableSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.TableSize, 65536);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ReceiveBufferSize, 1024);
        ArgumentOutOfRangeException.ThrowIfNegative(options.FileCount);
        ArgumentOutOfRangeException.ThrowIfNegative(options.RecordsPerFile);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.RecordsPerFile, ModbusLimits.MaxFileRecordNumber + 1);
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
        var plc = new PlcSimulator(listener, options);
        if (ct.CanBeCanceled)
        {
            plc._callerStop = ct.Register(static s => ((PlcSimulator)s!)._stop.Cancel(), plc);
        }
        plc._acceptLoop = Task.Run(plc.AcceptLoopAsync, CancellationToken.None);
        return Task.FromResult(plc);
    }

    /// <summary>The bound address (port resolved when bound to port 0).</summary>
    public IPEndPoint EndPoint => (IPEndPoint)(_listener ?? throw new InvalidOperationException("an RTU engine has no TCP endpoint")).LocalEndPoint!;

    public int Port => EndPoint.Port;

    /// <summary>Runtime misbehaviour knobs.</summary>
    public PlcFaults Faults { get; }

    /// <summary>Well-framed ADUs plus framing failures: every frame the PLC saw.</summary>
    public long FramesReceived => Interlocked.Read(ref _framesReceived);

    /// <summary>Frames that failed MBAP framing or PDU decoding (each closed its connection).</summary>
    public long MalformedFrames => Interlocked.Read(ref _malformedFrames);

    /// <summary>Connections that ended with part of an ADU still buffered (a truncated frame).</summary>
    public long TruncatedFrames => Interlocked.Read(ref _truncatedFrames);

    public long ConnectionsAccepted => Interlocked.Read(ref _connectionsAccepted);

    public int ActiveConnections => _connections.Count;

    /// <summary>Responses written (normal and exception), whether or not faults mangled them.</summary>
    public long ResponsesSent => Interlocked.Read(ref _responsesSent);

    public long ExceptionsSent => Interlocked.Read(ref _exceptionsSent);

    /// <summary>Decodable requests received with this function byte (out-of-spec ones included; malformed ones not).</summary>
    public long RequestsReceived(byte functionCode) => Interlocked.Read(ref _requestsByFunction[functionCode]);

    /// <summary>Sum of <see cref="RequestsReceived"/> over all function codes.</summary>
    public long TotalRequests
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < _requestsByFunction.Length; i++)
            {
                sum += Interlocked.Read(ref _requestsByFunction[i]);
            }
            return sum;
        }
    }

    /// <summary>Zeroes every counter above and the touched ranges (not the diagnostics counters of FC 8).</summary>
    public void ResetCounters()
    {
        for (int i = 0; i < _requestsByFunction.Length; i++)
        {
            Interlocked.Exchange(ref _requestsByFunction[i], 0);
        }
        Interlocked.Exchange(ref _framesReceived, 0);
        Interlocked.Exchange(ref _malformedFrames, 0);
        Interlocked.Exchange(ref _truncatedFrames, 0);
        Interlocked.Exchange(ref _connectionsAccepted, 0);
        Interlocked.Exchange(ref _responsesSent, 0);
        Interlocked.Exchange(ref _exceptionsSent, 0);
        ResetWatch();
    }

    public bool GetCoil(byte unit, ushort address) => Read(unit, address, static (u, a) => u.GetCoil(a));

    public bool GetDiscreteInput(byte unit, ushort address) => Read(unit, address, static (u, a) => u.GetDiscreteInput(a));

    public ushort GetHoldingRegister(byte unit, ushort address) => Read(unit, address, static (u, a) => u.GetHolding(a));

    /// <summary>The stored input register (the sine block, if any, is computed on the wire only).</summary>
    public ushort GetInputRegister(byte unit, ushort address) => Read(unit, address, static (u, a) => u.GetInput(a));

    public void SetCoil(byte unit, ushort address, bool value) => Write(unit, address, value, static (u, a, v) => u.SetCoil(a, v));

    public void SetDiscreteInput(byte unit, ushort address, bool value) => Write(unit, address, value, static (u, a, v) => u.SetDiscreteInput(a, v));

    public void SetHoldingRegister(byte unit, ushort address, ushort value) => Write(unit, address, value, static (u, a, v) => u.SetHolding(a, v));

    public void SetInputRegister(byte unit, ushort address, ushort value) => Write(unit, address, value, static (u, a, v) => u.SetInput(a, v));

    /// <summary>Replaces the FIFO queue that FC 24 returns (at most 31 values).</summary>
    public void SetFifo(byte unit, ReadOnlySpan<ushort> values)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(values.Length, PlcUnit.MaxFifo, nameof(values));
        var u = Unit(unit);
        lock (u.Sync)
        {
            values.CopyTo(u.Fifo);
            u.FifoCount = values.Length;
        }
    }

    /// <summary>One word of the FC 20/21 file store.</summary>
    public ushort GetFileRecord(byte unit, ushort file, ushort record)
    {
        int index = FileIndex(file, record);
        var u = Unit(unit);
        lock (u.Sync)
        {
            return u.GetFileWord(index);
        }
    }

    public void SetFileRecord(byte unit, ushort file, ushort record, ushort value)
    {
        int index = FileIndex(file, record);
        var u = Unit(unit);
        lock (u.Sync)
        {
            u.SetFileWord(index, value);
        }
    }

    private int FileIndex(ushort file, ushort record)
    {
        if (file < 1 || file > _options.FileCount || record >= _options.RecordsPerFile)
        {
            throw new ArgumentOutOfRangeException(nameof(file), "no such file record");
        }
        return ((file - 1) * _options.RecordsPerFile) + record;
    }

    private T Read<T>(byte unit, ushort address, Func<PlcUnit, int, T> read)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(address, _options.TableSize);
        var u = Unit(unit);
        lock (u.Sync)
        {
            return read(u, address);
        }
    }

    private void Write<T>(byte unit, ushort address, T value, Action<PlcUnit, int, T> write)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(address, _options.TableSize);
        var u = Unit(unit);
        lock (u.Sync)
        {
            write(u, address, value);
        }
    }

    private PlcUnit Unit(byte unit)
    {
        var u = Volatile.Read(ref _units[unit]);
        if (u is not null)
        {
            return u;
        }
        var created = new PlcUnit(_options.TableSize, _options.FileCount * _options.RecordsPerFile);
        return Interlocked.CompareExchange(ref _units[unit], created, null) ?? created;
    }

    private async Task AcceptLoopAsync()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener!.AcceptAsync(ct);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (ct.IsCancellationRequested)
                {
                    return;
                }
                continue;
            }
            socket.NoDelay = true;
            Interlocked.Increment(ref _connectionsAccepted);
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var task = RunConnectionAsync(socket, gate.Task);
            _connections[socket] = task;
            gate.SetResult();
        }
    }

    private async Task RunConnectionAsync(Socket socket, Task registered)
    {
        // Wait until the accept loop has registered this connection, so that removing it at the
        // end cannot race ahead of adding it.
        await registered.ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        var ct = _stop.Token;
        byte[] rx = ArrayPool<byte>.Shared.Rent(_options.ReceiveBufferSize);
        byte[] tx = ArrayPool<byte>.Shared.Rent(SendBufferSize);
        int buffered = 0;
        try
        {
            while (true)
            {
                int n = await socket.ReceiveAsync(rx.AsMemory(buffered), SocketFlags.None, ct);
                if (n == 0)
                {
                    if (buffered > 0)
                    {
                        Interlocked.Increment(ref _truncatedFrames);
                    }
                    return;
                }
                buffered += n;
                int offset = 0;
                while (true)
                {
                    var outcome = ProcessFrames(rx.AsSpan(offset, buffered - offset), tx, out int consumed, out int txLength);
                    offset += consumed;
                    if (txLength > 0)
                    {
                        int delay = Faults.ResponseDelayMs;
                        if (delay > 0)
                        {
                            await Task.Delay(delay, ct);
                        }
                        await SendAllAsync(socket, tx.AsMemory(0, txLength), ct);
                    }
                    if (outcome == BatchOutcome.Close)
                    {
                        return;
                    }
                    if (outcome == BatchOutcome.NeedMoreData)
                    {
                        break;
                    }
                }
                if (offset > 0)
                {
                    Buffer.BlockCopy(rx, offset, rx, 0, buffered - offset);
                    buffered -= offset;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Peer reset, or the PLC is stopping: either way the connection is over.
        }
        finally
        {
            _connections.TryRemove(socket, out _);
            CloseQuietly(socket);
            ArrayPool<byte>.Shared.Return(rx);
            ArrayPool<byte>.Shared.Return(tx);
        }
    }

    private static async ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        while (!data.IsEmpty)
        {
            int sent = await socket.SendAsync(data, SocketFlags.None, ct);
            data = data[sent..];
        }
    }

    private static void CloseQuietly(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already reset by the peer.
        }
        socket.Dispose();
    }

    internal enum BatchOutcome : byte
    {
        NeedMoreData,
        SendBufferFull,
        Close,
    }

    /// <summary>
    /// Answers every complete request at the start of <paramref name="input"/> into
    /// <paramref name="tx"/>, in order, until the input runs out of whole frames, the send buffer
    /// could not take a maximal response, or the connection must close.
    /// </summary>
    internal BatchOutcome ProcessFrames(ReadOnlySpan<byte> input, Span<byte> tx, out int consumed, out int txLength)
    {
        consumed = 0;
        txLength = 0;
        var faults = Faults;
        while (true)
        {
            if (tx.Length - txLength < ModbusLimits.MaxTcpAduLength)
            {
                return BatchOutcome.SendBufferFull;
            }
            var status = MbapFramer.TryReadFrame(input[consumed..], out var frame, out int used, out _);
            if (status == OperationStatus.NeedMoreData)
            {
                return BatchOutcome.NeedMoreData;
            }
            Interlocked.Increment(ref _framesReceived);
            if (status != OperationStatus.Done)
            {
                Interlocked.Increment(ref _malformedFrames);
                Interlocked.Increment(ref _diagnostics[DiagBusCommError]);
                return BatchOutcome.Close;
            }
            consumed += used;
            var request = ModbusPdu.ParseRequest(frame.Pdu);
            if (request.Status == RequestStatus.Malformed)
            {
                Interlocked.Increment(ref _malformedFrames);
                Interlocked.Increment(ref _diagnostics[DiagBusCommError]);
                return BatchOutcome.Close;
            }
            Interlocked.Increment(ref _requestsByFunction[frame.FunctionCode]);
            Watch(request);
            if (faults.Silent)
            {
                continue;
            }
            var slot = tx[txLength..];
            int length = Execute(frame.TransactionId, frame.UnitId, request, slot);
            if (length == 0)
            {
                continue;
            }
            Interlocked.Increment(ref _responsesSent);
            if ((slot[7] & ModbusExceptionCode.ExceptionFlag) != 0)
            {
                Interlocked.Increment(ref _exceptionsSent);
            }
            else if (faults.WrongByteCount)
            {
                slot[8] += 2;
            }
            if (faults.WrongTransactionId)
            {
                MbapFramer.SetTransactionId(slot, (ushort)(frame.TransactionId + 1));
            }
            if (faults.CloseMidFrame)
            {
                txLength += length / 2;
                return BatchOutcome.Close;
            }
            txLength += length;
        }
    }

    /// <summary>Stops listening, closes every connection and waits for them to end.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _callerStop.DisposeAsync();
        await _stop.CancelAsync();
        _listener?.Dispose();
        await _acceptLoop;
        foreach (var socket in _connections.Keys)
        {
            socket.Dispose();
        }
        await Task.WhenAll(_connections.Values);
        _stop.Dispose();
    }
}
