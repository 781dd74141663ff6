using System.Buffers.Binary;
using EdgeShield.Protocols;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Transport;

/// <summary>The four Modbus tables and their read functions: the only requests a <see cref="ReadOnlyModbusClient"/> can build.</summary>
public enum ReadFunction : byte
{
    ReadCoils = 1,
    ReadDiscreteInputs = 2,
    ReadHoldingRegisters = 3,
    ReadInputRegisters = 4,
}

/// <summary>How a read ended.</summary>
public enum ReadStatus : byte
{
    /// <summary>The PLC could not be reached, or the connection was lost before the answer.</summary>
    Unreachable = 0,
    /// <summary>A normal response; the data is in the destination.</summary>
    Ok,
    /// <summary>The PLC answered with an exception (code in <see cref="ReadResult.ExceptionCode"/>).</summary>
    Exception,
    /// <summary>No answer within the response timeout.</summary>
    Timeout,
    /// <summary>An answer that does not fit the request (length, function, unit); dropped.</summary>
    BadResponse,
}

/// <summary>The outcome of one read; <see cref="Length"/> bytes of data were copied to the destination when <see cref="ReadStatus.Ok"/>.</summary>
public readonly record struct ReadResult(ReadStatus Status, byte ExceptionCode, int Length);

/// <summary>
/// The read-only face of an <see cref="IUpstream"/>: it can express only FC 1, 2, 3 and 4 requests
/// (the type has no way to carry any other function), with its own transaction ids, response
/// timeout and response check. The telemetry poller reaches PLCs through this type only, so the
/// data diode's "no write path" is a property of the types, not a promise.
/// </summary>
public sealed class ReadOnlyModbusClient : IUpstreamReceiver, IAsyncDisposable
{
    private readonly IUpstreamSession _session;
    private readonly TimeSpan _responseTimeout;
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);
    private readonly byte[] _request = new byte[ModbusLimits.MbapHeaderLength + 5];
    private readonly object _gate = new();
    private ushort _transactionId;
    private Pending? _pending;

    private sealed class Pending(ushort transactionId, byte unit, ResponseExpectation expectation, Memory<byte> destination)
    {
        public readonly TaskCompletionSource<ReadResult> Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public ushort TransactionId { get; } = transactionId;
        public byte Unit { get; } = unit;
        public ResponseExpectation Expectation { get; } = expectation;
        public Memory<byte> Destination { get; } = destination;
        public int Generation { get; set; } = -1;
    }

    /// <summary>
    /// Opens a session on <paramref name="upstream"/> as client source <paramref name="source"/> (a serial
    /// bus queues each source fairly against the others). The response timeout is at least the
    /// upstream's own <see cref="IUpstream.ResponseWindow"/>, so a bus that answers a silent device
    /// itself (0B, after its retries) is waited for rather than abandoned.
    /// </summary>
    public ReadOnlyModbusClient(IUpstream upstream, string source, TimeSpan responseTimeout)
    {
        ArgumentNullException.ThrowIfNull(upstream);
        ArgumentNullException.ThrowIfNull(source);
        _responseTimeout = upstream.ResponseWindow > responseTimeout ? upstream.ResponseWindow : responseTimeout;
        _session = upstream.OpenSession(this, source);
    }

    /// <summary>Largest quantity one read may ask for: 2000 bits or 125 registers (Modbus Application Protocol v1.1b3, 6.1–6.4).</summary>
    public static int MaxQuantity(ReadFunction function) =>
        function is ReadFunction.ReadCoils or ReadFunction.ReadDiscreteInputs ? ModbusLimits.MaxReadBits : ModbusLimits.MaxReadRegisters;

    /// <summary>Bytes of data a normal response to this read carries.</summary>
    public static int DataLength(ReadFunction function, int quantity) =>
        function is ReadFunction.ReadCoils or ReadFunction.ReadDiscreteInputs ? (quantity + 7) / 8 : quantity * 2;

    /// <summary>
    /// Reads <paramref name="quantity"/> items from <paramref name="start"/>. One read at a time per client;
    /// the data bytes of the response (after the byte count) go to <paramref name="destination"/>.
    /// </summary>
    public async ValueTask<ReadResult> ReadAsync(byte unit, ReadFunction function, ushort start, ushort quantity, Memory<byte> destination, CancellationToken cancellationToken)
    {
        if (function is not (ReadFunction.ReadCoils or ReadFunction.ReadDiscreteInputs or ReadFunction.ReadHoldingRegisters or ReadFunction.ReadInputRegisters))
        {
            throw new ArgumentOutOfRangeException(nameof(function), function, "only the read functions 1-4 exist here");
        }
        if (quantity == 0 || quantity > MaxQuantity(function) || start + quantity - 1 > ushort.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(quantity), quantity, "outside the spec's limits for this read");
        }
        if (destination.Length < DataLength(function, quantity))
        {
            throw new ArgumentException("destination is too small for the response data", nameof(destination));
        }
        await _oneAtATime.WaitAsync(cancellationToken);
        try
        {
            ushort transactionId = ++_transactionId;
            // | tid | 0000 | length 6 | unit | fc | start | quantity |  (MBAP 4.1 + PDU 6.1–6.4)
            MbapFramer.WriteHeader(_request, transactionId, unit, 5);
            _request[7] = (byte)function;
            BinaryPrimitives.WriteUInt16BigEndian(_request.AsSpan(8), start);
            BinaryPrimitives.WriteUInt16BigEndian(_request.AsSpan(10), quantity);
            var expectation = new ResponseExpectation((byte)function, 0, quantity, 5, 0, 0);
            var pending = new Pending(transactionId, unit, expectation, destination);
            lock (_gate)
            {
                _pending = pending;
            }
            try
            {
                int generation = await _session.SendAsync(_request, cancellationToken);
                if (generation < 0)
                {
                    return new ReadResult(ReadStatus.Unreachable, 0, 0);
                }
                pending.Generation = generation;
                try
                {
                    return await pending.Done.Task.WaitAsync(_responseTimeout, cancellationToken);
                }
                catch (TimeoutException)
                {
                    return new ReadResult(ReadStatus.Timeout, 0, 0);
                }
            }
            finally
            {
                lock (_gate)
                {
                    _pending = null;
                }
            }
        }
        finally
        {
            _oneAtATime.Release();
        }
    }

    ValueTask IUpstreamReceiver.OnResponseAsync(Memory<byte> adu, int generation)
    {
        var span = adu.Span;
        ushort transactionId = BinaryPrimitives.ReadUInt16BigEndian(span);
        Pending? pending;
        lock (_gate)
        {
            pending = _pending;
            if (pending is null || pending.TransactionId != transactionId)
            {
                // Stale (answered after its timeout) or unsolicited: never paired with another read.
                return ValueTask.CompletedTask;
            }
            _pending = null;
        }
        var pdu = span[ModbusLimits.MbapHeaderLength..];
        if (span[6] != pending.Unit)
        {
            pending.Done.TrySetResult(new ReadResult(ReadStatus.BadResponse, 0, 0));
            return ValueTask.CompletedTask;
        }
        switch (ModbusPdu.CheckResponse(pdu, pending.Expectation, out _))
        {
            case ResponseStatus.Normal:
                int length = pdu[1];
                pdu.Slice(2, length).CopyTo(pending.Destination.Span);
                pending.Done.TrySetResult(new ReadResult(ReadStatus.Ok, 0, length));
                break;
            case ResponseStatus.Exception:
                pending.Done.TrySetResult(new ReadResult(ReadStatus.Exception, pdu[1], 0));
                break;
            default:
                pending.Done.TrySetResult(new ReadResult(ReadStatus.BadResponse, 0, 0));
                break;
        }
        return ValueTask.CompletedTask;
    }

    ValueTask IUpstreamReceiver.OnUpstreamLost(int generation, UpstreamLoss loss, FrameFault fault)
    {
        Pending? pending;
        lock (_gate)
        {
            pending = _pending;
        }
        if (pending is not null && (pending.Generation == generation || pending.Generation < 0))
        {
            pending.Done.TrySetResult(new ReadResult(ReadStatus.Unreachable, 0, 0));
        }
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await _session.DisposeAsync();
        _oneAtATime.Dispose();
    }
}
