using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Policy;
using EdgeShield.Protocols.Modbus;
using EdgeShield.Transport;

namespace EdgeShield.Gateway;

/// <summary>
/// One client connection on a Modbus TCP listener: frames the client's byte stream, inspects
/// every request, forwards the allowed ones on its own upstream session, matches each PLC
/// response to its request, and answers refusals, timeouts and failures itself.
/// </summary>
/// <remarks>
/// Memory per connection is fixed: one receive buffer, one small reply buffer per flow, and the
/// pending table. A client that does not read its responses stalls its own send, then its own
/// receive loop, and TCP pushes back on it; nothing queues in the gateway.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The semaphore and token source hold no OS handle unless their wait handles are asked for, which they are not; other flows may still touch them briefly after close, so they are left to the GC.")]
internal sealed class ModbusTcpClientSession : IUpstreamReceiver
{
    // Holds ~15 maximum-size ADUs; the framer needs at most one (260 bytes) to make progress.
    private const int ReceiveBufferSize = 4096;
    // A request that arrives within this of an outstanding one is pipelining (a burst); one that arrives later
    // on a connection that never pipelined means the client's own timeout fired: it gave up on the old one.
    // No client times out a Modbus TCP request this fast; a pipelining client sends its burst in microseconds.
    private static readonly long PipelineGapTicks = Stopwatch.Frequency / 20;
    // A read that returns later than this after it was started waited for the client's bytes.
    private static readonly long ReadWaitedTicks = Stopwatch.Frequency / 100;

    private readonly ModbusListener _listener;
    private readonly Socket _client;
    private readonly EpollSocketReader _clientReader;
    private readonly SourceAddress _source;
    private readonly ushort _sourcePort;
    private readonly IUpstreamSession _upstream;
    private readonly PendingTable _pending;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _closed = new();
    private readonly byte[] _receiveBuffer;
    // The receive loop's refusals (only that loop writes it). Every other answer the gateway makes
    // (0B from the upstream loops of any connection generation, the sweeper, a failed send) is written
    // into _lockedReply only while _sendLock is held, or (RTU over TCP) on the stack and copied into the
    // answer order at once: two flows can never share a reply buffer.
    private readonly byte[] _requestReply = new byte[16];
    private readonly byte[] _lockedReply = new byte[16];
    // When the send of a request to the PLC began, while it has not finished (0: none): a PLC that
    // stops reading stalls it, and the sweeper aborts that connection after response-timeout.
    private long _upstreamSendStarted;
    // When the receive loop's last read returned, and whether that read waited for the client's bytes
    // (they arrived then) or found them already queued (they arrived while the loop was busy, e.g.
    // connecting to the PLC: when is unknown). Only the receive loop uses them.
    private long _readAt;
    private bool _readWaited;
    // RTU over TCP: the client speaks address + PDU + CRC; the upstream always speaks MBAP.
    private readonly bool _rtu;
    private readonly byte[]? _forwardBuffer;
    private readonly byte[]? _rtuResponse;
    // RTU over TCP has no transaction id: answers leave in request order (RtuReplyOrder).
    private readonly RtuReplyOrder? _order;
    private int _forwardLength;
    // audit.pcap: null when off. The stream offset of the frame being inspected gives its TCP sequence number there.
    private readonly ForensicsTap? _tap;
    private long _streamOffset;
    private readonly long _acceptedAt = Stopwatch.GetTimestamp();
    private long _lastActivity;
    // When the first byte of a frame not yet complete arrived (0: none pending): frame-timeout.
    private long _frameStarted;
    private int _sweeping;
    private int _closing;
    // 1 once a request of this connection was allowed (forwarded): a listener at max-connections never closes it for a newcomer.
    private int _hadAllowed;
    // Once true, the client pipelines: outstanding requests are never taken as abandoned (guarded by _pending).
    private bool _pipelines;
    // A bus answers some requests itself (0A, 0B); those answers are refusals of its own and are audited.
    private readonly bool _upstreamAnswersItself;

    public ModbusTcpClientSession(ModbusListener listener, Socket client, IPEndPoint remote, IUpstream upstream)
    {
        _listener = listener;
        _client = client;
        _source = SourceAddress.From(remote.Address);
        _sourcePort = (ushort)remote.Port;
        _pending = new PendingTable(listener.Config.Limits.PendingPerConnection);
        _rtu = listener.Config.Protocol == ListenerProtocol.ModbusRtuOverTcp;
        if (_rtu)
        {
            _forwardBuffer = new byte[ModbusLimits.MaxTcpAduLength];
            _rtuResponse = new byte[RtuFramer.MaxAduLength];
            _order = new RtuReplyOrder(2 * listener.Config.Limits.PendingPerConnection, SendToClientAsync);
        }
        _tap = ForensicsTap.For(listener, client);
        _upstreamAnswersItself = upstream.ResponseWindow > TimeSpan.Zero;
        _upstream = upstream.OpenSession(this, _source.ToString());
        _clientReader = new EpollSocketReader(client);
        _receiveBuffer = ArrayPool<byte>.Shared.Rent(ReceiveBufferSize);
        _lastActivity = Stopwatch.GetTimestamp();
    }

    public SourceAddress Source => _source;

    /// <summary>When the connection was accepted (<see cref="Stopwatch"/> ticks).</summary>
    public long AcceptedAt => _acceptedAt;

    /// <summary>
    /// No request of this connection has been allowed since it connected (it is silent, half-open, or
    /// every request was refused) and it is not already closing: what a listener at
    /// <c>max-connections</c> may close to admit a new client.
    /// </summary>
    public bool NeverAllowed => Volatile.Read(ref _hadAllowed) == 0 && !IsClosing;

    /// <summary>Closing or closed: no longer counted against <c>max-connections</c>.</summary>
    public bool IsClosing => Volatile.Read(ref _closing) != 0;

    /// <summary>Closes this connection, which never had a request allowed, to make room for <paramref name="newcomer"/>, and audits it.</summary>
    public void Evict(SourceAddress newcomer)
    {
        _listener.Audit.Write(Event(AuditEventKind.ConnectionLimit, -1, -1, $"max-connections reached: closed, no request allowed since it connected, to admit {newcomer}") with { ConnectionClosed = true });
        _ = CloseAsync();
    }

    private enum RequestAction : byte
    {
        Forward,
        Reply,
        Nothing,
        Close,
    }

    public async Task RunAsync()
    {
        int filled = 0;
        try
        {
            while (!_closed.IsCancellationRequested)
            {
                long readStart = Stopwatch.GetTimestamp();
                int read = await _clientReader.ReceiveAsync(_receiveBuffer.AsMemory(filled));
                if (read == 0)
                {
                    return;
                }
                long readAt = Stopwatch.GetTimestamp();
                _readAt = readAt;
                _readWaited = readAt - readStart > ReadWaitedTicks;
                Volatile.Write(ref _lastActivity, readAt);
                filled += read;
                int offset = 0;
                while (offset < filled)
                {
                    var action = InspectRequest(_receiveBuffer.AsSpan(offset, filled - offset), out int consumed, out ushort gatewayTid, out int replyLength);
                    if (consumed == 0 && action == RequestAction.Nothing)
                    {
                        break; // need more data
                    }
                    switch (action)
                    {
                        case RequestAction.Close:
                            return;
                        case RequestAction.Reply:
                            await (_order is null ? SendToClientAsync(_requestReply.AsMemory(0, replyLength)) : _order.ReplyAsync(_requestReply.AsMemory(0, replyLength), _closed.Token));
                            break;
                        case RequestAction.Forward:
                            if (_order is not null)
                            {
                                await _order.ReserveAsync(gatewayTid, _closed.Token);
                            }
                            await ForwardAsync(_rtu ? _forwardBuffer.AsMemory(0, _forwardLength) : _receiveBuffer.AsMemory(offset, consumed), gatewayTid);
                            break;
                    }
                    offset += consumed;
                    _streamOffset += consumed;
                }
                if (offset > 0)
                {
                    _receiveBuffer.AsSpan(offset, filled - offset).CopyTo(_receiveBuffer);
                    filled -= offset;
                }
                // A remainder after a complete frame is a new frame, begun in this read.
                if (filled == 0)
                {
                    Volatile.Write(ref _frameStarted, 0);
                }
                else if (offset > 0 || Volatile.Read(ref _frameStarted) == 0)
                {
                    Volatile.Write(ref _frameStarted, readAt);
                }
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away or we closed it.
        }
        finally
        {
            await CloseAsync();
            ArrayPool<byte>.Shared.Return(_receiveBuffer);
        }
    }

    /// <summary>
    /// Frames and judges one request at the start of <paramref name="input"/>. Synchronous, so the
    /// frame views never outlive the buffer; allocation-free.
    /// </summary>
    private RequestAction InspectRequest(Span<byte> input, out int consumed, out ushort gatewayTid, out int replyLength)
    {
        gatewayTid = 0;
        replyLength = 0;
        var status = ReadFrame(input, out consumed, out ushort clientTid, out byte unit, out var pdu, out var framingError);
        if (status == OperationStatus.NeedMoreData)
        {
            consumed = 0;
            return RequestAction.Nothing;
        }
        if (status == OperationStatus.InvalidData)
        {
            int unitAt = _rtu ? 0 : 6;
            AuditMalformed(input, framingError, input.Length > unitAt ? input[unitAt] : (short)-1, input.Length > unitAt + 1 ? input[unitAt + 1] : (short)-1);
            return RequestAction.Close;
        }

        // MBAP: the length keeps the stream in step, so a PDU of the wrong size is answered 03 (as a
        // PLC answers it) and the connection goes on. RTU over TCP: the PDU's structure is the framing.
        var request = _rtu ? ModbusPdu.ParseRequest(pdu) : ModbusPdu.ParseFramedRequest(pdu);
        if (request.Status == RequestStatus.Malformed)
        {
            AuditMalformed(input[..consumed], request.Error, unit, request.FunctionCode);
            return RequestAction.Close;
        }
        _listener.Observer?.OnRequest(_listener, _source, _sourcePort, unit, request);
        var frame = input[..consumed];

        // The decision order (DESIGN.md "Which refusal a request gets"): source and unit before the request's
        // values, so a source no rule names gets exactly what the policy gives it (0A, nothing, or a close),
        // never an answer about its bytes; then out-of-spec values; then the rules. A well-formed request needs
        // no separate look: Evaluate itself answers a source no rule names with 0A.
        var policy = _listener.Policy.Current;
        bool monitor = policy.Mode == PolicyMode.Monitor;
        if (request.Status == RequestStatus.OutOfSpec)
        {
            if (!monitor && !policy.NamesSourceAndUnit(_source, unit))
            {
                var unnamed = new Verdict(VerdictKind.Deny, DenyReason.SourceOrUnit, -1);
                return Refuse(frame, policy.OnDeny, AuditEventKind.Denied, clientTid, unit, request, null, AuditEvents.Reason(unnamed.Reason), unnamed.ExceptionCode, out replyLength);
            }
            // Never forwarded, in any mode: monitor lets policy denials through, not invalid requests
            // (function 0, codes in the exception range, out-of-spec values). Answered as on-deny says;
            // in monitor mode with the spec's exception, so that learning does not change the plant's traffic.
            return Refuse(frame, monitor ? OnDeny.Exception : policy.OnDeny, AuditEventKind.OutOfSpec, clientTid, unit, request, null, AuditEvents.Reason(request.Violation), request.SpecExceptionCode, out replyLength);
        }
        else
        {
            var verdict = policy.Evaluate(_source, unit, request, Stopwatch.GetTimestamp());
            if (!verdict.IsAllowed)
            {
                string? rule = verdict.RuleIndex >= 0 && verdict.RuleIndex < policy.RuleNames.Count ? policy.RuleNames[verdict.RuleIndex] : null;
                if (monitor)
                {
                    Audit(frame, AuditEventKind.WouldDeny, clientTid, unit, request, rule, AuditEvents.Reason(verdict.Reason), 0);
                }
                else
                {
                    return Refuse(frame, policy.OnDeny, AuditEventKind.Denied, clientTid, unit, request, rule, AuditEvents.Reason(verdict.Reason), verdict.ExceptionCode, out replyLength);
                }
            }
        }

        bool added;
        // When the request's bytes were read, not now: requests read together (a pipelined burst) are never
        // a client giving up, nor are bytes that waited in the socket while the loop was busy (connecting).
        long now = _readAt;
        lock (_pending)
        {
            AbandonOrPipelineLocked(now);
            added = _pending.TryAdd(clientTid, unit, request, now, out gatewayTid);
        }
        if (!added)
        {
            _listener.Counters.CountDenied();
            Audit(frame, AuditEventKind.PendingLimit, clientTid, unit, request, null, "too many outstanding requests on this connection", ModbusExceptionCode.ServerDeviceBusy);
            replyLength = WriteRefusal(_requestReply, clientTid, unit, request.FunctionCode, ModbusExceptionCode.ServerDeviceBusy);
            return RequestAction.Reply;
        }
        _listener.Counters.CountAllowed();
        Volatile.Write(ref _hadAllowed, 1);
        if (_rtu)
        {
            MbapFramer.WriteHeader(_forwardBuffer, gatewayTid, unit, pdu.Length);
            pdu.CopyTo(_forwardBuffer.AsSpan(ModbusLimits.MbapHeaderLength));
            _forwardLength = ModbusLimits.MbapHeaderLength + pdu.Length;
        }
        else
        {
            MbapFramer.SetTransactionId(input, gatewayTid);
        }
        return RequestAction.Forward;
    }

    /// <summary>A refusal as <c>on-deny</c> says: the exception, nothing, or a close; counted and audited.</summary>
    private RequestAction Refuse(ReadOnlySpan<byte> frame, OnDeny onDeny, AuditEventKind kind, ushort clientTid, byte unit, in ModbusRequest request, string? rule, string reason, byte exceptionCode, out int replyLength)
    {
        replyLength = 0;
        _listener.Counters.CountDenied();
        switch (onDeny)
        {
            case OnDeny.Drop:
                Audit(frame, kind, clientTid, unit, request, rule, reason, 0);
                return RequestAction.Nothing;
            case OnDeny.Close:
                Audit(frame, kind, clientTid, unit, request, rule, reason, 0, closed: true);
                return RequestAction.Close;
            default:
                Audit(frame, kind, clientTid, unit, request, rule, reason, exceptionCode);
                replyLength = WriteRefusal(_requestReply, clientTid, unit, request.FunctionCode, exceptionCode);
                return RequestAction.Reply;
        }
    }

    /// <summary>
    /// A client that never pipelined and sends a new request while an older one is outstanding has given
    /// up on the older one (its own timeout, shorter than the gateway's, fired): it gets no 0B for it and
    /// its late answer is dropped, so the client's next transaction is what it would be direct. A request
    /// that arrives close behind an outstanding one marks the connection as pipelining, for good, and
    /// nothing is abandoned (DESIGN.md "Timeouts"). Under the pending table's lock.
    /// </summary>
    private void AbandonOrPipelineLocked(long now)
    {
        if (_pipelines || _pending.Count == 0)
        {
            return;
        }
        if (!_readWaited)
        {
            // The bytes were already queued when the loop came to read them (it was busy, e.g. connecting
            // to the PLC): when they arrived is unknown, so nothing is taken as given up. In doubt every
            // request is answered, as before; a request close behind another still marks pipelining.
            _pipelines = _pending.AnyOutstandingWithin(now, PipelineGapTicks);
            return;
        }
        _pipelines = !_pending.TryAbandonOutstanding(now, PipelineGapTicks);
        if (!_pipelines)
        {
            // RTU over TCP: the abandoned requests' places in the answer order are given up, so the answer
            // to the new request does not wait for theirs (which are dropped when they come).
            _order?.SkipWaiting();
        }
    }

    /// <summary>
    /// One client frame: MBAP on a modbus-tcp listener; address + PDU + CRC on a modbus-rtu-over-tcp
    /// one, framed by the function's length rules and, for functions that do not say their length,
    /// by a CRC that checks over everything received so far.
    /// </summary>
    private OperationStatus ReadFrame(Span<byte> input, out int consumed, out ushort clientTid, out byte unit, out ReadOnlySpan<byte> pdu, out FramingError error)
    {
        clientTid = 0;
        unit = 0;
        pdu = default;
        if (!_rtu)
        {
            var status = MbapFramer.TryReadFrame(input, out var frame, out consumed, out error);
            if (status == OperationStatus.Done)
            {
                clientTid = frame.TransactionId;
                unit = frame.UnitId;
                pdu = frame.Pdu;
            }
            return status;
        }
        var rtuStatus = RtuFramer.TryReadFrame(input, RtuDirection.Request, atSilence: false, out var rtuFrame, out consumed, out error);
        if (rtuStatus == OperationStatus.NeedMoreData && input.Length >= RtuFramer.MinAduLength
            && RtuFramer.TryReadFrame(input, RtuDirection.Request, atSilence: true, out var whole, out int wholeLength, out _) == OperationStatus.Done)
        {
            rtuStatus = OperationStatus.Done;
            rtuFrame = whole;
            consumed = wholeLength;
        }
        if (rtuStatus == OperationStatus.Done)
        {
            unit = rtuFrame.Address;
            pdu = rtuFrame.Pdu;
        }
        return rtuStatus;
    }

    /// <summary>An exception response in the client's framing.</summary>
    private int WriteRefusal(Span<byte> destination, ushort clientTid, byte unit, byte functionCode, byte exceptionCode) =>
        _rtu ? RtuFramer.WriteException(destination, unit, functionCode, exceptionCode)
            : MbapFramer.WriteException(destination, clientTid, unit, functionCode, exceptionCode);

    private async ValueTask ForwardAsync(ReadOnlyMemory<byte> adu, ushort gatewayTid)
    {
        Volatile.Write(ref _upstreamSendStarted, Stopwatch.GetTimestamp());
        int generation;
        try
        {
            generation = await _upstream.SendAsync(adu, _closed.Token);
        }
        finally
        {
            Volatile.Write(ref _upstreamSendStarted, 0);
        }
        bool failed;
        PendingTable.Slot slot;
        lock (_pending)
        {
            if (generation > 0)
            {
                _pending.MarkSent(gatewayTid, generation, Stopwatch.GetTimestamp() + _listener.ResponseTimeoutTicks);
                return;
            }
            failed = _pending.TryTake(gatewayTid, out slot);
        }
        if (generation == 0)
        {
            // Sent, and no answer will ever come (an RTU broadcast): nothing to tell the client.
            await AnswerForwardedAsync(gatewayTid, ReadOnlyMemory<byte>.Empty);
            return;
        }
        if (failed && slot.Abandoned)
        {
            _listener.Counters.CountTimeout();
            AuditSlot(AuditEventKind.UpstreamUnreachable, slot, "PLC unreachable; the client had given up on the request (it sent a new one): no 0B", 0);
        }
        else if (failed && !_closed.IsCancellationRequested)
        {
            // (A client that closed while its PLC connection was being made: nothing failed, nobody to answer.)
            _listener.Counters.CountTimeout();
            AuditSlot(AuditEventKind.UpstreamUnreachable, slot, "PLC unreachable", ModbusExceptionCode.GatewayTargetFailedToRespond);
            await SendRefusalAsync(slot, ModbusExceptionCode.GatewayTargetFailedToRespond);
        }
    }

    /// <summary>The answer to a forwarded request; on RTU over TCP it waits for the answers of earlier requests.</summary>
    private ValueTask AnswerForwardedAsync(ushort gatewayTid, ReadOnlyMemory<byte> reply) =>
        _order is null ? SendToClientAsync(reply) : _order.CompleteAsync(gatewayTid, reply.Span);

    /// <summary>A response from the PLC: matched, checked, given back the client's transaction id, delivered.</summary>
    public async ValueTask OnResponseAsync(Memory<byte> adu, int generation)
    {
        ushort gatewayTid = BinaryPrimitives.ReadUInt16BigEndian(adu.Span);
        var result = MatchResponse(adu.Span, out var refused);
        if (result == RequestAction.Forward)
        {
            _listener.Counters.CountResponse();
            if (_rtu)
            {
                var span = adu.Span;
                int length = RtuFramer.WriteFrame(_rtuResponse, span[6], span[ModbusLimits.MbapHeaderLength..]);
                await AnswerForwardedAsync(gatewayTid, _rtuResponse.AsMemory(0, length));
                return;
            }
            await SendToClientAsync(adu);
        }
        else if (result == RequestAction.Reply)
        {
            await SendRefusalAsync(refused, ModbusExceptionCode.GatewayTargetFailedToRespond);
        }
    }

    private RequestAction MatchResponse(Span<byte> adu, out PendingTable.Slot slot)
    {
        ushort gatewayTid = BinaryPrimitives.ReadUInt16BigEndian(adu);
        byte unit = adu[6];
        var pdu = adu[ModbusLimits.MbapHeaderLength..];
        bool found;
        lock (_pending)
        {
            found = _pending.TryTake(gatewayTid, out slot);
        }
        if (!found)
        {
            bool retired;
            ushort clientTid;
            lock (_pending)
            {
                retired = _pending.TryFindRetired(gatewayTid, out clientTid);
            }
            _listener.Counters.CountResponseMismatch();
            _listener.Audit.Write(Event(AuditEventKind.UnmatchedResponse, unit, pdu.IsEmpty ? (short)-1 : pdu[0],
                retired ? "late response to a request already answered 0B or given up by the client" : "response to no outstanding request (transaction id)") with
            {
                GatewayTid = gatewayTid,
                ClientTid = retired && !_rtu ? clientTid : null,
            });
            return RequestAction.Nothing;
        }
        if (slot.Abandoned)
        {
            // The client gave up on it and is waiting for a later answer: delivered now, this one would be taken
            // for that one (and RTU over TCP has no transaction id to tell them apart). Direct, a PLC that never
            // answered would have sent nothing.
            _listener.Counters.CountResponseMismatch();
            AuditSlot(AuditEventKind.UnmatchedResponse, slot, "late response to a request the client gave up on (it sent a new one): dropped", 0);
            return RequestAction.Nothing;
        }
        if (_upstreamAnswersItself && pdu.Length == 2 && (pdu[0] & 0x80) != 0 && pdu[1] is ModbusExceptionCode.GatewayPathUnavailable or ModbusExceptionCode.GatewayTargetFailedToRespond)
        {
            // A serial bus's own refusal (a device on the line never answers 0A or 0B): audited like the gateway's own.
            AuditBusRefusal(slot, pdu[1]);
        }
        var status = ModbusPdu.CheckResponse(pdu, slot.Expectation, out var error);
        // A vendor code's PDU above 253 bytes (allowed over TCP) cannot be put in an RTU ADU.
        bool tooLongForRtu = _rtu && pdu.Length > ModbusLimits.MaxPduLength;
        if (status == ResponseStatus.Mismatch || unit != slot.Unit || tooLongForRtu)
        {
            _listener.Counters.CountResponseMismatch();
            _listener.Counters.CountTimeout();
            AuditSlot(AuditEventKind.ResponseMismatch, slot, unit != slot.Unit ? "response unit id differs from the request"
                : tooLongForRtu ? "response PDU above 253 bytes does not fit an RTU frame" : AuditEvents.Reason(error), ModbusExceptionCode.GatewayTargetFailedToRespond);
            return RequestAction.Reply;
        }
        if (status == ResponseStatus.Normal && ModbusPdu.ClearPaddingBits(pdu, slot.Expectation))
        {
            // The bits asked for are intact; the padding the spec says is 0 is cleared, not passed on.
            AuditSlot(AuditEventKind.ResponseCorrected, slot, "padding bits after the last coil or input were set; cleared", 0);
        }
        MbapFramer.SetTransactionId(adu, slot.ClientTid);
        return RequestAction.Forward;
    }

    public async ValueTask OnUpstreamLost(int generation, UpstreamLoss loss, FramingError framingError)
    {
        if (loss == UpstreamLoss.InvalidFraming)
        {
            Audit(AuditEventKind.UpstreamLost, -1, -1, "PLC sent bytes that are not Modbus TCP: " + AuditEvents.Reason(framingError));
        }
        await AnswerExpiredAsync(long.MinValue, generation);
    }

    /// <summary>
    /// Called by the listener's sweeper: answers timed-out requests with 0B, closes idle connections and
    /// those that began a frame and did not finish it within frame-timeout.
    /// </summary>
    public void Sweep(long now, long idleTicks, long frameTicks)
    {
        long frameStarted = Volatile.Read(ref _frameStarted);
        if (frameStarted != 0 && now - frameStarted > frameTicks)
        {
            _listener.Audit.Write(Event(AuditEventKind.FrameTimeout, -1, -1, "frame not complete within frame-timeout") with { ConnectionClosed = true });
            _ = CloseAsync();
            return;
        }
        long sendStarted = Volatile.Read(ref _upstreamSendStarted);
        if (sendStarted != 0 && ClientHungUp())
        {
            // The receive loop waits on the PLC (a connect, a stalled send) and cannot see the client
            // leave: close now, which cancels that wait; a connect given up this way is no PLC failure.
            _ = CloseAsync();
            return;
        }
        if (sendStarted != 0 && now - sendStarted > _listener.ResponseTimeoutTicks)
        {
            // The PLC stopped reading (its window is closed): its connection is dropped with what it
            // has not read, the stalled send returns and its client gets 0B; the next request reconnects.
            Audit(AuditEventKind.UpstreamLost, -1, -1, "PLC did not take a request within response-timeout (not reading): connection dropped");
            Volatile.Write(ref _upstreamSendStarted, 0);
            _upstream.Abort();
        }
        if (now - Volatile.Read(ref _lastActivity) > idleTicks)
        {
            _listener.Audit.Write(Event(AuditEventKind.IdleTimeout, -1, -1, "no traffic for idle-timeout") with { ConnectionClosed = true });
            _ = CloseAsync();
            return;
        }
        bool any;
        lock (_pending)
        {
            any = _pending.Count > 0;
        }
        if (any && Interlocked.Exchange(ref _sweeping, 1) == 0)
        {
            _ = SweepAsync(now);
        }
    }

    /// <summary>The client's end of stream (or an error) is waiting with nothing before it.</summary>
    private bool ClientHungUp()
    {
        try
        {
            return _client.Poll(0, SelectMode.SelectRead) && _client.Available == 0;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }

    private async Task SweepAsync(long now)
    {
        try
        {
            await AnswerExpiredAsync(now, 0);
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }

    private async ValueTask AnswerExpiredAsync(long now, int lostGeneration)
    {
        while (true)
        {
            PendingTable.Slot slot;
            lock (_pending)
            {
                if (!_pending.TryTakeExpiredOrLost(now, lostGeneration, out slot))
                {
                    return;
                }
            }
            _listener.Counters.CountTimeout();
            lock (_pending)
            {
                _pending.Retire(slot);
            }
            if (slot.Abandoned)
            {
                // The client gave up on it before the gateway would have: a 0B now would be read as the answer to its next request.
                AuditSlot(lostGeneration > 0 ? AuditEventKind.UpstreamLost : AuditEventKind.ResponseTimeout, slot,
                    lostGeneration > 0 ? "PLC connection lost with the request outstanding; the client had given up on it (it sent a new one): no 0B"
                        : "PLC did not answer within response-timeout; the client had given up on it (it sent a new one): no 0B", 0);
                continue;
            }
            AuditSlot(lostGeneration > 0 ? AuditEventKind.UpstreamLost : AuditEventKind.ResponseTimeout, slot,
                lostGeneration > 0 ? "PLC connection lost with the request outstanding" : "PLC did not answer within response-timeout",
                ModbusExceptionCode.GatewayTargetFailedToRespond);
            await SendRefusalAsync(slot, ModbusExceptionCode.GatewayTargetFailedToRespond);
        }
    }

    /// <summary>
    /// An exception answer to <paramref name="slot"/>'s request from a flow other than the receive loop.
    /// Modbus TCP: written only while the send lock is held. RTU over TCP: written on the stack and
    /// copied into the answer order at once, which sends it after the answers of earlier requests.
    /// </summary>
    private ValueTask SendRefusalAsync(PendingTable.Slot slot, byte exceptionCode)
    {
        if (_order is not null)
        {
            Span<byte> reply = stackalloc byte[16];
            int length = WriteRefusal(reply, slot.ClientTid, slot.Unit, slot.Expectation.FunctionCode, exceptionCode);
            return _order.CompleteAsync(slot.GatewayTid, reply[..length]);
        }
        return SendRefusalLockedAsync(slot, exceptionCode);
    }

    private async ValueTask SendRefusalLockedAsync(PendingTable.Slot slot, byte exceptionCode)
    {
        if (_closed.IsCancellationRequested)
        {
            return;
        }
        try
        {
            await _sendLock.WaitAsync(_closed.Token);
            try
            {
                int length = WriteRefusal(_lockedReply, slot.ClientTid, slot.Unit, slot.Expectation.FunctionCode, exceptionCode);
                await SendLockedAsync(_lockedReply.AsMemory(0, length));
            }
            finally
            {
                _sendLock.Release();
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            _ = CloseAsync();
        }
    }

    private async ValueTask SendToClientAsync(ReadOnlyMemory<byte> data)
    {
        if (_closed.IsCancellationRequested)
        {
            return;
        }
        try
        {
            await _sendLock.WaitAsync(_closed.Token);
            try
            {
                await SendLockedAsync(data);
            }
            finally
            {
                _sendLock.Release();
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            _ = CloseAsync();
        }
    }

    /// <summary>Sends while holding the send lock: whole at once in the common case; the runtime waits for the client's window otherwise.</summary>
    private async ValueTask SendLockedAsync(ReadOnlyMemory<byte> data)
    {
        data = data[NonBlockingSend.Send(_client, data.Span)..];
        while (!data.IsEmpty)
        {
            int sent = await _client.SendAsync(data, SocketFlags.None, _closed.Token);
            data = data[sent..];
        }
        Volatile.Write(ref _lastActivity, Stopwatch.GetTimestamp());
    }

    public async Task CloseAsync()
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }
        _closed.Cancel();
        _clientReader.Dispose();
        try
        {
            _client.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        _client.Dispose();
        await _upstream.DisposeAsync();
        _listener.SessionClosed(this);
    }

    private void AuditMalformed(ReadOnlySpan<byte> frame, FramingError error, short unit, short functionCode)
    {
        _listener.Counters.CountMalformed();
        _listener.Observer?.OnMalformed(_listener, _source, _sourcePort, error, unit, functionCode);
        var malformed = Event(AuditEventKind.Malformed, unit, functionCode, AuditEvents.Reason(error)) with { ConnectionClosed = true };
        _listener.Audit.Write(malformed);
        _tap?.Record(frame, malformed, _streamOffset);
    }

    /// <summary>Audits a refused (or, in monitor mode, would-be refused) request and captures its frame.</summary>
    private void Audit(ReadOnlySpan<byte> frame, AuditEventKind kind, ushort clientTid, byte unit, in ModbusRequest request, string? rule, string reason, byte exceptionCode, bool closed = false)
    {
        var refused = Event(kind, unit, request.FunctionCode, reason) with
        {
            MeiType = request.MeiType,
            SubFunction = request.FunctionCode == DiagnosticsFunction ? request.SubFunction : null,
            ClientTid = _rtu ? null : clientTid,
            ConnectionClosed = closed,
            ReadSpan = request.ReadSpan,
            WriteSpan = request.WriteSpan,
            Rule = rule,
            ExceptionCode = exceptionCode,
        };
        _listener.Audit.Write(refused);
        _tap?.Record(frame, refused, _streamOffset);
    }

    private const byte DiagnosticsFunction = 8;

    private void AuditBusRefusal(in PendingTable.Slot slot, byte exceptionCode)
    {
        string reason = exceptionCode == ModbusExceptionCode.GatewayTargetFailedToRespond
            ? "serial bus: no answer (device timeout, open circuit breaker or queue-timeout)"
            : slot.Unit > RtuFramer.MaxDeviceAddress ? "serial bus: unit 248..255 is reserved on a serial line"
            : slot.Unit == RtuFramer.BroadcastAddress ? "serial bus: only writes may be broadcast (unit 0)"
            : "serial bus: port unavailable";
        AuditSlot(exceptionCode == ModbusExceptionCode.GatewayTargetFailedToRespond ? AuditEventKind.ResponseTimeout : AuditEventKind.Denied, slot, reason, exceptionCode);
    }

    private void AuditSlot(AuditEventKind kind, in PendingTable.Slot slot, string reason, byte exceptionCode) =>
        _listener.Audit.Write(Event(kind, slot.Unit, slot.Expectation.FunctionCode, reason) with
        {
            MeiType = slot.MeiType,
            SubFunction = slot.Expectation.FunctionCode == DiagnosticsFunction ? slot.SubFunction : null,
            ClientTid = _rtu ? null : slot.ClientTid,
            GatewayTid = slot.GatewayTid,
            ReadSpan = slot.ReadSpan,
            WriteSpan = slot.WriteSpan,
            ExceptionCode = exceptionCode,
        });

    private void Audit(AuditEventKind kind, short unit, short functionCode, string reason) =>
        _listener.Audit.Write(Event(kind, unit, functionCode, reason));

    /// <summary>The fields every event of this connection carries.</summary>
    private AuditEvent Event(AuditEventKind kind, short unit, short functionCode, string reason) => new()
    {
        Time = DateTime.UtcNow,
        Kind = kind,
        Listener = _listener.Config.Name,
        Source = _source,
        SourcePort = _sourcePort,
        Unit = unit,
        FunctionCode = functionCode,
        Reason = reason,
        Count = 1,
    };
}
