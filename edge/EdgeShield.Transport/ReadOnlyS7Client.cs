using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using EdgeShield.Protocols;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Transport;

/// <summary>
/// One S7 item to read: an area (I, Q, M, DB), a DB number, a byte offset and either one bit
/// (<see cref="ByteLength"/> 0) or 1, 2 or 4 bytes. The only thing a <see cref="ReadOnlyS7Client"/> can be asked for.
/// </summary>
public readonly record struct S7ReadItem(S7Area Area, ushort Db, int ByteOffset, byte Bit, byte ByteLength)
{
    /// <summary>A single bit (transport size BIT, address byte × 8 + bit).</summary>
    public bool IsBit => ByteLength == 0;

    /// <summary>Bytes of data the answer carries for this item (1 for a bit).</summary>
    public int DataLength => IsBit ? 1 : ByteLength;
}

/// <summary>
/// How one item's read ended. <see cref="ReadStatus.Ok"/>: <see cref="Length"/> bytes at <see cref="Offset"/> of the
/// destination (a bit item: one byte, 0 or 1). <see cref="ReadStatus.Exception"/>: <see cref="Code"/> is the item's return
/// code (below 0x100, e.g. 0x0A object does not exist), or the job's header error class × 256 + code (e.g. 0x8104).
/// </summary>
public readonly record struct S7ItemResult(ReadStatus Status, ushort Code, int Offset, int Length);

/// <summary>Why the connection could not be set up in a read (the items are then <see cref="ReadStatus.Unreachable"/>).</summary>
public enum S7ConnectFault : byte
{
    None = 0,
    /// <summary>The PLC answered the COTP connect with a disconnect (DR): usually a wrong rack, slot or connection type.</summary>
    ConnectRefused,
    /// <summary>The PLC refused setup-communication, or answered it with what is not a setup-communication answer.</summary>
    SetupRefused,
}

/// <summary>What a <see cref="ReadOnlyS7Client.ReadAsync"/> did: read-var jobs sent, and why a connection could not be made.</summary>
public readonly record struct S7ReadSummary(int JobsSent, S7ConnectFault Fault);

/// <summary>
/// The read-only S7 face of an <see cref="IUpstream"/> (ISO-on-TCP): it opens the connection with a COTP CR carrying
/// the configured TSAPs, negotiates with setup-communication, and then sends read-var jobs — nothing else. Those are
/// its only request builders (<see cref="WriteSetupCommunication"/>, <see cref="WriteReadVar"/>, and
/// <see cref="CotpWriter.WriteConnectRequest"/>); no item type, function code or data block for a write can be
/// handed to it. The telemetry poller reaches S7 PLCs through this type only.
/// </summary>
/// <remarks>
/// One job at a time (AmQ 1 is asked for): a job unanswered within the response timeout drops the connection, since
/// a second job while one is outstanding would exceed what was negotiated; the next read connects again. A COTP
/// connect or setup-communication the PLC refuses is retried after a backoff (1 s, doubling to 30 s); a TCP connect
/// that fails backs off in the shared <see cref="TcpUpstream"/>.
/// </remarks>
public sealed class ReadOnlyS7Client : IAsyncDisposable
{
    /// <summary>The PDU size asked for: the largest an S7-300/400/1500 offers (the PLC answers with its own, at most this).</summary>
    public const ushort RequestedPduSize = 960;
    /// <summary>TPDU size code asked for in the CR: 2^10 = 1024 bytes, so a 960-byte PDU needs no fragments.</summary>
    public const byte RequestedTpduSizeCode = 0x0A;
    /// <summary>Items per read-var job at most: the S7-300/400 limit (snap7's MaxVars).</summary>
    public const int MaxItemsPerJob = 20;
    /// <summary>setup-communication's parameter: F0, reserved, AmQ calling (2), AmQ called (2), PDU size (2).</summary>
    private const int SetupPduLength = S7Limits.HeaderLength + S7Limits.SetupParameterLength;
    private const int ReadHeaderLength = S7Limits.HeaderLength + 2;
    private static readonly TimeSpan MinRefusalBackoff = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxRefusalBackoff = TimeSpan.FromSeconds(30);

    private readonly IUpstream _upstream;
    private readonly string _source;
    private readonly ushort _callingTsap;
    private readonly ushort _calledTsap;
    private readonly TimeSpan _responseTimeout;
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);
    private readonly object _gate = new();
    private readonly byte[] _pdu = new byte[RequestedPduSize];
    private readonly byte[] _send = new byte[CotpWriter.DataLength(RequestedPduSize, CotpWriter.MinTpduSize)];
    private readonly CotpReassembler _reassembler = new(new byte[RequestedPduSize], RequestedPduSize);
    private IUpstreamSession? _session;
    // Which session the receive side listens to: a session replaced by a new connection may still report, late.
    private int _epoch;
    private int _established = -1;
    private int _pduSize;
    private int _tpduSize = CotpWriter.MinTpduSize;
    private ushort _reference;
    private Pending? _pending;
    // One exchange at a time: its state and awaitable are reused, as is the timeout's source.
    private readonly Pending _exchange;
    private CancellationTokenSource _timeout = new();
    private long _retryNotBefore;
    private TimeSpan _refusalBackoff = MinRefusalBackoff;

    private enum Expect : byte
    {
        ConnectConfirm,
        Setup,
        ReadVar,
    }

    private enum Outcome : byte
    {
        Lost = 0,
        Timeout,
        Ok,
        Refused,
        BadResponse,
        JobError,
        Cancelled,
    }

    /// <summary>
    /// The exchange in flight: what its answer must be, where its data goes, and its outcome as a reusable awaitable
    /// (completed once, under the client's lock, by the answer, a loss, the timeout or cancellation).
    /// </summary>
    private sealed class Pending(object gate) : IValueTaskSource<Outcome>
    {
        private ManualResetValueTaskSourceCore<Outcome> _core = new() { RunContinuationsAsynchronously = true };
        private bool _completed;

        public Expect Expect { get; private set; }
        public S7Expectation Expectation { get; private set; }
        public ReadOnlyMemory<S7ReadItem> Items { get; private set; }
        public Memory<byte> Destination { get; private set; }
        public Memory<S7ItemResult> Results { get; private set; }
        public int BaseOffset { get; private set; }
        public int Generation { get; set; } = -1;
        public int TpduSize { get; set; }
        public int PduSize { get; set; }
        public ushort ErrorCode { get; set; }
        public short Version => _core.Version;

        public void Start(Expect expect, S7Expectation expectation, ReadOnlyMemory<S7ReadItem> items, Memory<byte> destination, Memory<S7ItemResult> results, int baseOffset)
        {
            lock (gate)
            {
                _core.Reset();
                _completed = false;
                Expect = expect;
                Expectation = expectation;
                Items = items;
                Destination = destination;
                Results = results;
                BaseOffset = baseOffset;
                Generation = -1;
                TpduSize = 0;
                PduSize = 0;
                ErrorCode = 0;
            }
        }

        public void TrySetResult(Outcome outcome)
        {
            lock (gate)
            {
                if (!_completed)
                {
                    _completed = true;
                    _core.SetResult(outcome);
                }
            }
        }

        public Outcome GetResult(short token) => _core.GetResult(token);

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }

    /// <summary>
    /// A client for the PLC behind <paramref name="upstream"/> (a <see cref="TcpUpstream"/>; a serial bus carries no S7),
    /// as client source <paramref name="source"/>, connecting with the given TSAPs (high byte of the called TSAP: 01 PG,
    /// 02 OP, 03 basic; low byte rack × 32 + slot). Nothing is sent until the first read.
    /// </summary>
    public ReadOnlyS7Client(IUpstream upstream, string source, ushort callingTsap, ushort calledTsap, TimeSpan responseTimeout)
    {
        ArgumentNullException.ThrowIfNull(upstream);
        ArgumentNullException.ThrowIfNull(source);
        _upstream = upstream;
        _source = source;
        _callingTsap = callingTsap;
        _calledTsap = calledTsap;
        _responseTimeout = upstream.ResponseWindow > responseTimeout ? upstream.ResponseWindow : responseTimeout;
        _exchange = new Pending(_gate);
    }

    /// <summary>The PDU size the PLC negotiated on the current connection; 0 when there is none.</summary>
    public int PduSize => Volatile.Read(ref _established) > 0 ? _pduSize : 0;

    /// <summary>Bytes a destination needs for <paramref name="items"/> (each item's data, one after the other).</summary>
    public static int DestinationLength(ReadOnlySpan<S7ReadItem> items)
    {
        int total = 0;
        foreach (var item in items)
        {
            total += item.DataLength;
        }
        return total;
    }

    /// <summary>
    /// Reads every item, in as few read-var jobs as the negotiated PDU size allows (at most <see cref="MaxItemsPerJob"/>
    /// items each), connecting first when needed. Item <c>i</c>'s outcome goes to <paramref name="results"/>[i] and its
    /// data into <paramref name="destination"/> (see <see cref="S7ItemResult"/>). One read at a time per client.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<S7ReadSummary> ReadAsync(ReadOnlyMemory<S7ReadItem> items, Memory<byte> destination, Memory<S7ItemResult> results, CancellationToken cancellationToken)
    {
        if (results.Length < items.Length)
        {
            throw new ArgumentException("results must hold one entry per item", nameof(results));
        }
        if (destination.Length < DestinationLength(items.Span))
        {
            throw new ArgumentException("destination is too small for the items' data", nameof(destination));
        }
        foreach (var item in items.Span)
        {
            if (item.ByteLength is not (0 or 1 or 2 or 4) || item.Bit > 7 || item.ByteOffset is < 0 or > 0xFFFF)
            {
                throw new ArgumentOutOfRangeException(nameof(items), item, "an item is a bit, a byte, a word or a double word at byte 0..65535");
            }
        }
        await _oneAtATime.WaitAsync(cancellationToken);
        try
        {
            var fault = S7ConnectFault.None;
            int sent = 0;
            int done = 0;
            int offset = 0;
            while (done < items.Length)
            {
                if (Volatile.Read(ref _established) < 0)
                {
                    (bool connected, fault) = await ConnectAsync(cancellationToken);
                    if (!connected)
                    {
                        Fill(results.Span[done..items.Length], ReadStatus.Unreachable, 0);
                        break;
                    }
                }
                int count = ItemsThatFit(items.Span[done..], _pduSize);
                int length = 0;
                foreach (var item in items.Span.Slice(done, count))
                {
                    length += item.DataLength;
                }
                var status = await ReadJobAsync(items.Slice(done, count), destination.Slice(offset, length), results.Slice(done, count), offset, cancellationToken);
                if (status != ReadStatus.Unreachable)
                {
                    sent++;
                }
                if (status is ReadStatus.Timeout or ReadStatus.Unreachable)
                {
                    // The connection is gone or dropped: the rest of this cycle gets the same answer, without trying again.
                    Fill(results.Span[(done + count)..items.Length], status, 0);
                    break;
                }
                done += count;
                offset += length;
            }
            return new S7ReadSummary(sent, fault);
        }
        finally
        {
            _oneAtATime.Release();
        }
    }

    private static void Fill(Span<S7ItemResult> results, ReadStatus status, ushort code)
    {
        for (int i = 0; i < results.Length; i++)
        {
            results[i] = new S7ItemResult(status, code, 0, 0);
        }
    }

    /// <summary>
    /// How many of <paramref name="items"/>, from the first, fit one read-var job: the request
    /// (10 + 2 + 12 per item) and its answer (12 + 2 + per item 4 + data + a fill byte after odd data) within
    /// <paramref name="pduSize"/>, and at most <see cref="MaxItemsPerJob"/>. At least 1.
    /// </summary>
    internal static int ItemsThatFit(ReadOnlySpan<S7ReadItem> items, int pduSize)
    {
        int request = ReadHeaderLength;
        int response = S7Limits.AckHeaderLength + 2;
        int n = 0;
        while (n < items.Length && n < MaxItemsPerJob)
        {
            int data = items[n].DataLength;
            int nextRequest = request + S7Limits.S7AnyItemLength;
            int nextResponse = response + S7Limits.DataItemHeaderLength + data + (data & 1);
            if (n > 0 && (nextRequest > pduSize || nextResponse > pduSize))
            {
                break;
            }
            request = nextRequest;
            response = nextResponse;
            n++;
        }
        return n;
    }

    /// <summary>
    /// Writes setup-communication (ROSCTR 1, function F0): AmQ calling and called 1, PDU size <paramref name="pduSize"/>.
    /// </summary>
    /// <remarks>
    /// <code>
    /// 32 01 0000 REF(2) 0008 0000 | F0 00 0001 0001 PDU(2)        (Wireshark packet-s7comm.c, snap7 TSnap7MicroClient::NegotiatePDULength)
    /// </code>
    /// </remarks>
    /// <returns>The PDU length (18).</returns>
    internal static int WriteSetupCommunication(Span<byte> pdu, ushort reference, ushort pduSize)
    {
        WriteJobHeader(pdu, reference, S7Limits.SetupParameterLength);
        var parameters = pdu[S7Limits.HeaderLength..];
        parameters[0] = S7Functions.SetupCommunication;
        parameters[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(parameters[2..], 1);
        BinaryPrimitives.WriteUInt16BigEndian(parameters[4..], 1);
        BinaryPrimitives.WriteUInt16BigEndian(parameters[6..], pduSize);
        return SetupPduLength;
    }

    /// <summary>
    /// Writes read-var (ROSCTR 1, function 04) for <paramref name="items"/>: one S7ANY item each, a bit as transport size
    /// BIT (address byte × 8 + bit), a word or double word as BYTE × 2 or × 4.
    /// </summary>
    /// <remarks>
    /// <code>
    /// 32 01 0000 REF(2) PL(2) 0000 | 04 N | per item: 12 0A 10 TS count(2) DB(2) area address(3)
    /// </code>
    /// </remarks>
    /// <returns>The PDU length (12 + 12 per item).</returns>
    internal static int WriteReadVar(Span<byte> pdu, ushort reference, ReadOnlySpan<S7ReadItem> items)
    {
        int parameterLength = 2 + (S7Limits.S7AnyItemLength * items.Length);
        WriteJobHeader(pdu, reference, parameterLength);
        var parameters = pdu[S7Limits.HeaderLength..];
        parameters[0] = S7Functions.ReadVar;
        parameters[1] = (byte)items.Length;
        var at = parameters[2..];
        foreach (var item in items)
        {
            at[0] = S7Items.VariableSpecification;
            at[1] = S7Limits.S7AnyItemLength - 2;
            at[2] = S7Items.SyntaxIdS7Any;
            at[3] = item.IsBit ? S7Items.TransportSizeBit : (byte)0x02;
            BinaryPrimitives.WriteUInt16BigEndian(at[4..], (ushort)item.DataLength);
            BinaryPrimitives.WriteUInt16BigEndian(at[6..], item.Area == S7Area.DataBlocks ? item.Db : (ushort)0);
            at[8] = (byte)item.Area;
            int address = (item.ByteOffset * 8) + (item.IsBit ? item.Bit : 0);
            at[9] = (byte)(address >> 16);
            at[10] = (byte)(address >> 8);
            at[11] = (byte)address;
            at = at[S7Limits.S7AnyItemLength..];
        }
        return S7Limits.HeaderLength + parameterLength;
    }

    private static void WriteJobHeader(Span<byte> pdu, ushort reference, int parameterLength)
    {
        pdu[0] = S7Limits.ProtocolId;
        pdu[1] = (byte)S7Rosctr.Job;
        pdu[2] = 0;
        pdu[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(pdu[4..], reference);
        BinaryPrimitives.WriteUInt16BigEndian(pdu[6..], (ushort)parameterLength);
        BinaryPrimitives.WriteUInt16BigEndian(pdu[8..], 0);
    }

    /// <summary>The expectation of a read-var job's answer: its REF, item count, and no more data than its items.</summary>
    internal static S7Expectation ReadExpectation(ushort reference, ReadOnlySpan<S7ReadItem> items, int pduSize)
    {
        int largest = 0, total = 0;
        foreach (var item in items)
        {
            largest = Math.Max(largest, item.DataLength);
            total += S7Limits.DataItemHeaderLength + item.DataLength + (item.DataLength & 1);
        }
        return new S7Expectation(reference, 1, S7Functions.ReadVar, (byte)items.Length, (ushort)largest, (ushort)total, 0, 0, (ushort)pduSize, 0);
    }

    /// <summary>
    /// Copies each item of a checked read-var answer (<see cref="S7Pdu.CheckResponse"/> said Normal) to
    /// <paramref name="destination"/> and its outcome to <paramref name="results"/>. A success whose length is not the
    /// item's is a bad response for that item. <paramref name="baseOffset"/> is where destination starts in the caller's buffer.
    /// </summary>
    internal static void CopyItems(ReadOnlySpan<byte> data, ReadOnlySpan<S7ReadItem> items, Span<byte> destination, Span<S7ItemResult> results, int baseOffset)
    {
        int offset = 0;
        for (int i = 0; i < items.Length; i++)
        {
            // | return code | transport size | length (2) | data | fill if odd, not last |
            byte code = data[0];
            int length = code == S7Items.ReturnSuccess ? S7Items.DataByteLength(data[1], BinaryPrimitives.ReadUInt16BigEndian(data[2..])) : 0;
            int want = items[i].DataLength;
            if (code != S7Items.ReturnSuccess)
            {
                results[i] = new S7ItemResult(ReadStatus.Exception, code, 0, 0);
            }
            else if (length != want)
            {
                results[i] = new S7ItemResult(ReadStatus.BadResponse, 0, 0, 0);
            }
            else
            {
                data.Slice(S7Limits.DataItemHeaderLength, length).CopyTo(destination[offset..]);
                results[i] = new S7ItemResult(ReadStatus.Ok, 0, baseOffset + offset, length);
            }
            offset += want;
            int consumed = S7Limits.DataItemHeaderLength + length + (i < items.Length - 1 ? length & 1 : 0);
            data = data[consumed..];
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(bool Connected, S7ConnectFault Fault)> ConnectAsync(CancellationToken cancellationToken)
    {
        if (Environment.TickCount64 < Interlocked.Read(ref _retryNotBefore))
        {
            return (false, S7ConnectFault.None);
        }
        // A new session per connection: its first bytes on the wire are always this CR.
        if (_session is { } old)
        {
            await old.DisposeAsync();
        }
        lock (_gate)
        {
            _epoch++;
            _reassembler.Reset();
        }
        Volatile.Write(ref _established, -1);
        var session = _upstream.OpenSession(new Receiver(this, _epoch), TpktStreamFramer.Instance, _source);
        _session = session;
        int length = CotpWriter.WriteConnectRequest(_send, 0x0001, RequestedTpduSizeCode, _callingTsap, _calledTsap);
        var (outcome, pending, generation) = await ExchangeAsync(Expect.ConnectConfirm, default, length, default, default, default, cancellationToken);
        if (outcome != Outcome.Ok)
        {
            return Failed(outcome, S7ConnectFault.ConnectRefused);
        }
        _tpduSize = pending!.TpduSize;
        ushort reference = NextReference();
        int pduLength = WriteSetupCommunication(_pdu, reference, RequestedPduSize);
        length = CotpWriter.WriteData(_send, _pdu.AsSpan(0, pduLength), _tpduSize);
        var setup = new S7Expectation(reference, 1, S7Functions.SetupCommunication, 0, 0, 0, 0, 0, RequestedPduSize, 1);
        (outcome, pending, int setupGeneration) = await ExchangeAsync(Expect.Setup, setup, length, default, default, default, cancellationToken);
        if (outcome != Outcome.Ok || setupGeneration != generation)
        {
            return Failed(outcome == Outcome.Ok ? Outcome.Lost : outcome, S7ConnectFault.SetupRefused);
        }
        _pduSize = pending!.PduSize;
        _refusalBackoff = MinRefusalBackoff;
        Volatile.Write(ref _established, generation);
        return (true, S7ConnectFault.None);

        (bool, S7ConnectFault) Failed(Outcome outcome, S7ConnectFault refusal)
        {
            _session?.Abort();
            if (outcome == Outcome.Lost)
            {
                // No TCP connection: the shared TcpUpstream backs off.
                return (false, S7ConnectFault.None);
            }
            // The PLC accepted TCP but refused, garbled or ignored the connect: wait before the next try.
            Interlocked.Exchange(ref _retryNotBefore, Environment.TickCount64 + (long)_refusalBackoff.TotalMilliseconds);
            _refusalBackoff = _refusalBackoff * 2 > MaxRefusalBackoff ? MaxRefusalBackoff : _refusalBackoff * 2;
            return (false, outcome == Outcome.Timeout ? S7ConnectFault.None : refusal);
        }
    }

    private ushort NextReference()
    {
        // 0 is left out: some tools treat REF 0 as "none".
        _reference = _reference == ushort.MaxValue ? (ushort)1 : (ushort)(_reference + 1);
        return _reference;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ReadStatus> ReadJobAsync(ReadOnlyMemory<S7ReadItem> items, Memory<byte> destination, Memory<S7ItemResult> results, int baseOffset, CancellationToken cancellationToken)
    {
        int generation = Volatile.Read(ref _established);
        ushort reference = NextReference();
        int pduLength = WriteReadVar(_pdu, reference, items.Span);
        int length = CotpWriter.WriteData(_send, _pdu.AsSpan(0, pduLength), _tpduSize);
        var expectation = ReadExpectation(reference, items.Span, _pduSize);
        var (outcome, pending, sentOn) = await ExchangeAsync(Expect.ReadVar, expectation, length, items, destination, results, cancellationToken, baseOffset);
        if (sentOn != generation && sentOn > 0)
        {
            // The connection was lost and the session made a new one for this job: that one never saw a CR. Drop it;
            // the next read connects properly.
            Drop();
            Fill(results.Span, ReadStatus.Unreachable, 0);
            return ReadStatus.Unreachable;
        }
        switch (outcome)
        {
            case Outcome.Ok:
                return ReadStatus.Ok;
            case Outcome.JobError:
                Fill(results.Span, ReadStatus.Exception, pending!.ErrorCode);
                return ReadStatus.Exception;
            case Outcome.BadResponse:
                Fill(results.Span, ReadStatus.BadResponse, 0);
                return ReadStatus.BadResponse;
            case Outcome.Refused:
                // A DR in the middle of a connection: the PLC closes it.
                Drop();
                Fill(results.Span, ReadStatus.Unreachable, 0);
                return ReadStatus.Unreachable;
            default:
                var status = outcome == Outcome.Timeout ? ReadStatus.Timeout : ReadStatus.Unreachable;
                Drop();
                Fill(results.Span, status, 0);
                return status;
        }
    }

    private void Drop()
    {
        Volatile.Write(ref _established, -1);
        _session?.Abort();
    }

    /// <summary>Sends <paramref name="length"/> bytes of <see cref="_send"/> and waits (bounded) for the answer the receive side matches to it.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(Outcome Outcome, Pending? Pending, int Generation)> ExchangeAsync(Expect expect, S7Expectation expectation, int length,
        ReadOnlyMemory<S7ReadItem> items, Memory<byte> destination, Memory<S7ItemResult> results, CancellationToken cancellationToken, int baseOffset = 0)
    {
        var pending = _exchange;
        pending.Start(expect, expectation, items, destination, results, baseOffset);
        lock (_gate)
        {
            _pending = pending;
        }
        try
        {
            int generation = await _session!.SendAsync(_send.AsMemory(0, length), cancellationToken);
            if (generation < 0)
            {
                return (Outcome.Lost, null, -1);
            }
            pending.Generation = generation;
            if (!_timeout.TryReset())
            {
                _timeout.Dispose();
                _timeout = new CancellationTokenSource();
            }
            _timeout.CancelAfter(_responseTimeout);
            Outcome outcome;
            using (_timeout.Token.UnsafeRegister(static p => ((Pending)p!).TrySetResult(Outcome.Timeout), pending))
            using (cancellationToken.UnsafeRegister(static p => ((Pending)p!).TrySetResult(Outcome.Cancelled), pending))
            {
                outcome = await new ValueTask<Outcome>(pending, pending.Version);
            }
            cancellationToken.ThrowIfCancellationRequested();
            return (outcome, pending, generation);
        }
        finally
        {
            lock (_gate)
            {
                _pending = null;
            }
        }
    }

    /// <summary>The receive side of one session: what it reports counts only while that session is the current one.</summary>
    private sealed class Receiver(ReadOnlyS7Client owner, int epoch) : IUpstreamReceiver
    {
        public ValueTask OnResponseAsync(Memory<byte> adu, int generation) => owner.OnResponse(epoch, adu, generation);

        public ValueTask OnUpstreamLost(int generation, UpstreamLoss loss, FrameFault fault) => owner.OnLost(epoch, generation);
    }

    private ValueTask OnResponse(int epoch, Memory<byte> adu, int generation)
    {
        lock (_gate)
        {
            if (epoch != _epoch)
            {
                return ValueTask.CompletedTask;
            }
            var pending = _pending;
            if (pending is null || (pending.Generation >= 0 && pending.Generation != generation))
            {
                // Unsolicited, late (after its timeout) or of a connection that is gone: never paired with another job.
                return ValueTask.CompletedTask;
            }
            if (TpktFramer.TryReadFrame(adu.Span, out var tpdu, out _, out _) != OperationStatus.Done)
            {
                pending.TrySetResult(Outcome.BadResponse);
                return ValueTask.CompletedTask;
            }
            if (tpdu.Type == CotpTpduType.DisconnectRequest)
            {
                pending.TrySetResult(Outcome.Refused);
                return ValueTask.CompletedTask;
            }
            if (pending.Expect == Expect.ConnectConfirm)
            {
                if (tpdu.Type != CotpTpduType.ConnectionConfirm)
                {
                    pending.TrySetResult(Outcome.BadResponse);
                    return ValueTask.CompletedTask;
                }
                // No C0 in the CC: class 0's default, 128 bytes.
                pending.TpduSize = tpdu.TpduSize == 0 ? CotpWriter.MinTpduSize : Math.Min(tpdu.TpduSize, 1 << RequestedTpduSizeCode);
                pending.TrySetResult(Outcome.Ok);
                return ValueTask.CompletedTask;
            }
            if (tpdu.Type != CotpTpduType.Data)
            {
                pending.TrySetResult(Outcome.BadResponse);
                return ValueTask.CompletedTask;
            }
            var appended = _reassembler.Append(tpdu, out var pdu, out _);
            if (appended == OperationStatus.NeedMoreData)
            {
                return ValueTask.CompletedTask;
            }
            if (appended != OperationStatus.Done)
            {
                pending.TrySetResult(Outcome.BadResponse);
                return ValueTask.CompletedTask;
            }
            var status = S7Pdu.CheckResponse(pdu, pending.Expectation, out var error);
            if (status == S7ResponseStatus.Mismatch)
            {
                if (error != S7ResponseError.WrongReference)
                {
                    pending.TrySetResult(Outcome.BadResponse);
                }
                // Another REF: the answer to a job that timed out. Dropped; this job may still be answered.
                return ValueTask.CompletedTask;
            }
            var header = S7Pdu.ParseHeader(pdu);
            if (status == S7ResponseStatus.Error)
            {
                pending.ErrorCode = (ushort)((header.ErrorClass << 8) | header.ErrorCode);
                pending.TrySetResult(pending.Expect == Expect.Setup ? Outcome.Refused : Outcome.JobError);
                return ValueTask.CompletedTask;
            }
            if (pending.Expect == Expect.Setup)
            {
                pending.PduSize = BinaryPrimitives.ReadUInt16BigEndian(header.Parameters[6..]);
            }
            else
            {
                CopyItems(header.Data, pending.Items.Span, pending.Destination.Span, pending.Results.Span, pending.BaseOffset);
            }
            pending.TrySetResult(Outcome.Ok);
        }
        return ValueTask.CompletedTask;
    }

    private ValueTask OnLost(int epoch, int generation)
    {
        lock (_gate)
        {
            if (epoch != _epoch)
            {
                return ValueTask.CompletedTask;
            }
            Interlocked.CompareExchange(ref _established, -1, generation);
            if (_pending is { } pending && (pending.Generation == generation || pending.Generation < 0))
            {
                pending.TrySetResult(Outcome.Lost);
            }
        }
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        if (_session is { } session)
        {
            await session.DisposeAsync();
        }
        _oneAtATime.Dispose();
        _timeout.Dispose();
    }
}
