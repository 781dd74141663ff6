using System.Buffers.Binary;
using System.Diagnostics;
using EdgeShield.Policy;
using EdgeShield.Protocols;
using EdgeShield.Protocols.Modbus;
using EdgeShield.Transport;

namespace EdgeShield.Gateway.Modbus;

/// <summary>What the session keeps of a forwarded Modbus request: what to check its answer against, and what to audit.</summary>
internal readonly record struct ModbusPendingRequest(byte Unit, ResponseExpectation Expectation, AddressSpan ReadSpan, AddressSpan WriteSpan, byte MeiType, ushort SubFunction)
{
    public ModbusPendingRequest(byte unit, in ModbusRequest request)
        : this(unit, request.Expectation, request.ReadSpan, request.WriteSpan, request.MeiType, request.SubFunction)
    {
    }
}

/// <summary>
/// The Modbus side of a client connection, on a <c>modbus-tcp</c> or <c>modbus-rtu-over-tcp</c> listener
/// (the <see cref="ModbusClientFraming"/> tells them apart): frames and judges every request with the
/// <see cref="Inspector"/>, forwards the allowed ones with a gateway transaction id, matches each PLC
/// response to its request, and answers refusals, timeouts and failures itself.
/// </summary>
internal sealed class ModbusSession : IProtocolSession
{
    // A request that arrives within this of an outstanding one is pipelining (a burst); one that arrives later
    // on a connection that never pipelined means the client's own timeout fired: it gave up on the old one.
    // No client times out a Modbus TCP request this fast; a pipelining client sends its burst in microseconds.
    private static readonly long PipelineGapTicks = Stopwatch.Frequency / 20;
    private const byte DiagnosticsFunction = 8;

    private readonly ClientConnection _connection;
    private readonly GatewayListener _listener;
    private readonly ModbusClientFraming _framing;
    private readonly PendingTable<ModbusPendingRequest> _pending;
    // The receive loop's refusals (only that loop writes it). Every other answer the gateway makes
    // (0B from the upstream loops of any connection generation, the sweeper, a failed send) is written
    // into _lockedReply only while the send lock is held, or (no transaction id) on the stack and copied into
    // the answer order at once: two flows can never share a reply buffer.
    private readonly byte[] _requestReply = new byte[16];
    private readonly byte[] _lockedReply = new byte[16];
    // A client framing other than MBAP: the upstream ADU of a request, and the client's answer, are built here.
    private readonly byte[]? _forwardBuffer;
    private readonly byte[]? _clientResponse;
    // Without a transaction id (RTU over TCP) answers leave in request order.
    private readonly RtuReplyOrder? _order;
    // Once true, the client pipelines: outstanding requests are never taken as abandoned (guarded by _pending).
    private bool _pipelines;
    // A bus answers some requests itself (0A, 0B); those answers are refusals of its own and are audited.
    private readonly bool _upstreamAnswersItself;

    public ModbusSession(ClientConnection connection, IUpstream upstream, ModbusClientFraming framing)
    {
        _connection = connection;
        _listener = connection.Listener;
        _framing = framing;
        _pending = new PendingTable<ModbusPendingRequest>(_listener.Config.Limits.PendingPerConnection);
        if (!framing.HasTransactionId)
        {
            _forwardBuffer = new byte[ModbusLimits.MaxTcpAduLength];
            _clientResponse = new byte[RtuFramer.MaxAduLength];
            _order = new RtuReplyOrder(2 * _listener.Config.Limits.PendingPerConnection, connection.SendToClientAsync);
        }
        _upstreamAnswersItself = upstream.ResponseWindow > TimeSpan.Zero;
    }

    public IStreamFramer ResponseFramer => MbapStreamFramer.Instance;

    public ClientStep Inspect(Span<byte> input)
    {
        var status = _framing.TryReadRequest(input, out var frame, out int consumed, out var framingError);
        if (status == System.Buffers.OperationStatus.NeedMoreData)
        {
            return new ClientStep(ClientAction.NeedMoreData, 0);
        }
        int unitAt = _framing.UnitOffset;
        if (status == System.Buffers.OperationStatus.InvalidData)
        {
            AuditMalformed(input, framingError, input.Length > unitAt ? input[unitAt] : (short)-1, input.Length > unitAt + 1 ? input[unitAt + 1] : (short)-1);
            return new ClientStep(ClientAction.Close, 0);
        }
        ushort clientTid = frame.TransactionId;
        byte unit = frame.Unit;
        var pdu = frame.Pdu;
        var request = _framing.ParseRequest(pdu);
        if (request.Status == RequestStatus.Malformed)
        {
            AuditMalformed(input[..consumed], request.Error, unit, request.FunctionCode);
            return new ClientStep(ClientAction.Close, 0);
        }
        _listener.Observer?.OnRequest(_listener, _connection.Source, _connection.SourcePort, unit, request);
        var clientFrame = input[..consumed];

        var policy = _listener.Policy.Current;
        var inspection = Inspector.Inspect(policy, _connection.Source, unit, request, _connection.ReadAt);
        if (!inspection.Forwards)
        {
            var verdict = inspection.Verdict;
            string? rule = verdict.RuleIndex >= 0 && verdict.RuleIndex < policy.RuleNames.Count ? policy.RuleNames[verdict.RuleIndex] : null;
            return inspection.Kind == InspectionKind.OutOfSpec
                ? Refuse(clientFrame, consumed, inspection.OnDeny, AuditEventKind.OutOfSpec, clientTid, unit, request, null, AuditEvents.Reason(request.Violation), inspection.RefusalCode)
                : Refuse(clientFrame, consumed, inspection.OnDeny, AuditEventKind.Denied, clientTid, unit, request, rule, AuditEvents.Reason(verdict.Reason), inspection.RefusalCode);
        }
        if (inspection.Kind == InspectionKind.WouldDeny)
        {
            var verdict = inspection.Verdict;
            string? rule = verdict.RuleIndex >= 0 && verdict.RuleIndex < policy.RuleNames.Count ? policy.RuleNames[verdict.RuleIndex] : null;
            Audit(clientFrame, AuditEventKind.WouldDeny, clientTid, unit, request, rule, AuditEvents.Reason(verdict.Reason), 0);
        }

        bool added;
        ushort gatewayTid;
        // When the request's bytes were read, not now: requests read together (a pipelined burst) are never
        // a client giving up, nor are bytes that waited in the socket while the loop was busy (connecting).
        long now = _connection.ReadAt;
        lock (_pending)
        {
            AbandonOrPipelineLocked(now);
            added = _pending.TryAdd(clientTid, new ModbusPendingRequest(unit, request), now, out gatewayTid);
        }
        if (!added)
        {
            _listener.Counters.CountDenied();
            Audit(clientFrame, AuditEventKind.PendingLimit, clientTid, unit, request, null, "too many outstanding requests on this connection", ModbusExceptionCode.ServerDeviceBusy);
            int length = _framing.WriteException(_requestReply, clientTid, unit, request.FunctionCode, ModbusExceptionCode.ServerDeviceBusy);
            return new ClientStep(ClientAction.Reply, consumed, Length: length);
        }
        _listener.Counters.CountAllowed();
        _connection.MarkAllowed();
        int forwardLength = _framing.WriteUpstreamRequest(clientFrame, unit, pdu, gatewayTid, _forwardBuffer);
        return new ClientStep(ClientAction.Forward, consumed, gatewayTid, forwardLength);
    }

    /// <summary>A refusal as <c>on-deny</c> says: the exception, nothing, or a close; counted and audited.</summary>
    private ClientStep Refuse(ReadOnlySpan<byte> frame, int consumed, OnDeny onDeny, AuditEventKind kind, ushort clientTid, byte unit, in ModbusRequest request, string? rule, string reason, byte exceptionCode)
    {
        _listener.Counters.CountDenied();
        switch (onDeny)
        {
            case OnDeny.Drop:
                Audit(frame, kind, clientTid, unit, request, rule, reason, 0);
                return new ClientStep(ClientAction.Nothing, consumed);
            case OnDeny.Close:
                Audit(frame, kind, clientTid, unit, request, rule, reason, 0, closed: true);
                return new ClientStep(ClientAction.Close, consumed);
            default:
                Audit(frame, kind, clientTid, unit, request, rule, reason, exceptionCode);
                int length = _framing.WriteException(_requestReply, clientTid, unit, request.FunctionCode, exceptionCode);
                return new ClientStep(ClientAction.Reply, consumed, Length: length);
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
        if (!_connection.ReadWaited)
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
            // Without transaction ids: the abandoned requests' places in the answer order are given up, so the
            // answer to the new request does not wait for theirs (which are dropped when they come).
            _order?.SkipWaiting();
        }
    }

    public ValueTask ReplyAsync(ClientStep step) =>
        _order is null ? _connection.SendToClientAsync(_requestReply.AsMemory(0, step.Length)) : _order.ReplyAsync(_requestReply.AsMemory(0, step.Length), _connection.Closed);

    public ValueTask ForwardAsync(ReadOnlyMemory<byte> frame, ClientStep step)
    {
        if (_order is null)
        {
            var sending = _connection.SendUpstreamAsync(step.Length > 0 ? _forwardBuffer.AsMemory(0, step.Length) : frame);
            if (sending.IsCompletedSuccessfully)
            {
                // Sent at once (no connect, no full window): the deadline runs from the read that brought the
                // request, microseconds ago, without another clock read.
                int generation = sending.Result;
                if (generation > 0)
                {
                    lock (_pending)
                    {
                        _pending.MarkSent(step.Correlation, generation, _connection.ReadAt + _listener.ResponseTimeoutTicks);
                    }
                    return ValueTask.CompletedTask;
                }
                return AfterSendAsync(step.Correlation, generation);
            }
            return AwaitSendAsync(step.Correlation, sending);
        }
        return ForwardInOrderAsync(frame, step);
    }

    private async ValueTask AwaitSendAsync(ushort gatewayTid, ValueTask<int> sending) => await AfterSendAsync(gatewayTid, await sending);

    /// <summary>Without transaction ids: the request takes its place in the answer order before it is sent.</summary>
    private async ValueTask ForwardInOrderAsync(ReadOnlyMemory<byte> frame, ClientStep step)
    {
        ushort gatewayTid = step.Correlation;
        await _order!.ReserveAsync(gatewayTid, _connection.Closed);
        int generation = await _connection.SendUpstreamAsync(step.Length > 0 ? _forwardBuffer.AsMemory(0, step.Length) : frame);
        await AfterSendAsync(gatewayTid, generation);
    }

    /// <summary>After the send returned (it may have connected first): the deadline starts now, or the request failed.</summary>
    private async ValueTask AfterSendAsync(ushort gatewayTid, int generation)
    {
        bool failed;
        PendingTable<ModbusPendingRequest>.Slot slot;
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
        else if (failed && !_connection.Closed.IsCancellationRequested)
        {
            // (A client that closed while its PLC connection was being made: nothing failed, nobody to answer.)
            _listener.Counters.CountTimeout();
            AuditSlot(AuditEventKind.UpstreamUnreachable, slot, "PLC unreachable", ModbusExceptionCode.GatewayTargetFailedToRespond);
            await SendRefusalAsync(slot, ModbusExceptionCode.GatewayTargetFailedToRespond);
        }
    }

    /// <summary>The answer to a forwarded request; without transaction ids it waits for the answers of earlier requests.</summary>
    private ValueTask AnswerForwardedAsync(ushort gatewayTid, ReadOnlyMemory<byte> reply) =>
        _order is null ? _connection.SendToClientAsync(reply) : _order.CompleteAsync(gatewayTid, reply.Span);

    /// <summary>A response from the PLC: matched, checked, put in the client's framing with its transaction id, delivered.</summary>
    public ValueTask OnResponseAsync(Memory<byte> adu, int generation)
    {
        ushort gatewayTid = BinaryPrimitives.ReadUInt16BigEndian(adu.Span);
        var result = MatchResponse(adu.Span, out var refused, out int rewritten);
        if (result == ClientAction.Forward)
        {
            _listener.Counters.CountResponse();
            return AnswerForwardedAsync(gatewayTid, rewritten > 0 ? _clientResponse.AsMemory(0, rewritten) : adu);
        }
        return result == ClientAction.Reply ? SendRefusalAsync(refused, ModbusExceptionCode.GatewayTargetFailedToRespond) : ValueTask.CompletedTask;
    }

    private ClientAction MatchResponse(Span<byte> adu, out PendingTable<ModbusPendingRequest>.Slot slot, out int rewritten)
    {
        rewritten = 0;
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
            _listener.Audit.Write(_connection.Event(AuditEventKind.UnmatchedResponse, unit, pdu.IsEmpty ? (short)-1 : pdu[0],
                retired ? "late response to a request already answered 0B or given up by the client" : "response to no outstanding request (transaction id)") with
            {
                GatewayTid = gatewayTid,
                ClientTid = retired && _framing.HasTransactionId ? clientTid : null,
            });
            return ClientAction.Nothing;
        }
        if (slot.Abandoned)
        {
            // The client gave up on it and is waiting for a later answer: delivered now, this one would be taken
            // for that one (and RTU over TCP has no transaction id to tell them apart). Direct, a PLC that never
            // answered would have sent nothing.
            _listener.Counters.CountResponseMismatch();
            AuditSlot(AuditEventKind.UnmatchedResponse, slot, "late response to a request the client gave up on (it sent a new one): dropped", 0);
            return ClientAction.Nothing;
        }
        var expected = slot.Request;
        if (_upstreamAnswersItself && pdu.Length == 2 && (pdu[0] & 0x80) != 0 && pdu[1] is ModbusExceptionCode.GatewayPathUnavailable or ModbusExceptionCode.GatewayTargetFailedToRespond)
        {
            // A serial bus's own refusal (a device on the line never answers 0A or 0B): audited like the gateway's own.
            AuditBusRefusal(slot, pdu[1]);
        }
        var status = ModbusPdu.CheckResponse(pdu, expected.Expectation, out var error);
        // A vendor code's PDU above 253 bytes (allowed over TCP) cannot be put in an RTU ADU.
        bool tooLong = pdu.Length > _framing.MaxResponsePduLength;
        if (status == ResponseStatus.Mismatch || unit != expected.Unit || tooLong)
        {
            _listener.Counters.CountResponseMismatch();
            _listener.Counters.CountTimeout();
            AuditSlot(AuditEventKind.ResponseMismatch, slot, unit != expected.Unit ? "response unit id differs from the request"
                : tooLong ? "response PDU above 253 bytes does not fit an RTU frame" : AuditEvents.Reason(error), ModbusExceptionCode.GatewayTargetFailedToRespond);
            return ClientAction.Reply;
        }
        if (status == ResponseStatus.Normal && ModbusPdu.ClearPaddingBits(pdu, expected.Expectation))
        {
            // The bits asked for are intact; the padding the spec says is 0 is cleared, not passed on.
            AuditSlot(AuditEventKind.ResponseCorrected, slot, "padding bits after the last coil or input were set; cleared", 0);
        }
        rewritten = _framing.WriteClientResponse(adu, slot.ClientTid, _clientResponse);
        return ClientAction.Forward;
    }

    public async ValueTask OnUpstreamLost(int generation, UpstreamLoss loss, FrameFault fault)
    {
        if (loss == UpstreamLoss.InvalidFraming)
        {
            _listener.Audit.Write(_connection.Event(AuditEventKind.UpstreamLost, -1, -1, "PLC sent bytes that are not Modbus TCP: " + ResponseFramer.Describe(fault)));
        }
        await AnswerExpiredAsync(long.MinValue, generation);
    }

    public bool HasPending
    {
        get
        {
            lock (_pending)
            {
                return _pending.Count > 0;
            }
        }
    }

    public ValueTask AnswerExpiredAsync(long now) => AnswerExpiredAsync(now, 0);

    private async ValueTask AnswerExpiredAsync(long now, int lostGeneration)
    {
        while (true)
        {
            PendingTable<ModbusPendingRequest>.Slot slot;
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
    /// With transaction ids: written only while the send lock is held. Without (RTU over TCP): written on the
    /// stack and copied into the answer order at once, which sends it after the answers of earlier requests.
    /// </summary>
    private ValueTask SendRefusalAsync(in PendingTable<ModbusPendingRequest>.Slot slot, byte exceptionCode)
    {
        if (_order is not null)
        {
            Span<byte> reply = stackalloc byte[16];
            int length = _framing.WriteException(reply, slot.ClientTid, slot.Request.Unit, slot.Request.Expectation.FunctionCode, exceptionCode);
            return _order.CompleteAsync(slot.GatewayTid, reply[..length]);
        }
        return _connection.SendToClientAsync(new ExceptionReply(_framing, slot.ClientTid, slot.Request.Unit, slot.Request.Expectation.FunctionCode, exceptionCode), _lockedReply);
    }

    private readonly record struct ExceptionReply(ModbusClientFraming Framing, ushort ClientTid, byte Unit, byte FunctionCode, byte ExceptionCode) : IClientReply
    {
        public int Write(Span<byte> destination) => Framing.WriteException(destination, ClientTid, Unit, FunctionCode, ExceptionCode);
    }

    private void AuditMalformed(ReadOnlySpan<byte> frame, FramingError error, short unit, short functionCode)
    {
        _listener.Counters.CountMalformed();
        _listener.Observer?.OnMalformed(_listener, _connection.Source, _connection.SourcePort, error, unit, functionCode);
        var malformed = _connection.Event(AuditEventKind.Malformed, unit, functionCode, ModbusFaults.Describe(error)) with { ConnectionClosed = true };
        _listener.Audit.Write(malformed);
        _connection.Tap?.Record(frame, malformed, _connection.StreamOffset);
    }

    /// <summary>Audits a refused (or, in monitor mode, would-be refused) request and captures its frame.</summary>
    private void Audit(ReadOnlySpan<byte> frame, AuditEventKind kind, ushort clientTid, byte unit, in ModbusRequest request, string? rule, string reason, byte exceptionCode, bool closed = false)
    {
        var refused = _connection.Event(kind, unit, request.FunctionCode, reason) with
        {
            MeiType = request.MeiType,
            SubFunction = request.FunctionCode == DiagnosticsFunction ? request.SubFunction : null,
            ClientTid = _framing.HasTransactionId ? clientTid : null,
            ConnectionClosed = closed,
            ReadSpan = request.ReadSpan,
            WriteSpan = request.WriteSpan,
            Rule = rule,
            ExceptionCode = exceptionCode,
        };
        _listener.Audit.Write(refused);
        _connection.Tap?.Record(frame, refused, _connection.StreamOffset);
    }

    private void AuditBusRefusal(in PendingTable<ModbusPendingRequest>.Slot slot, byte exceptionCode)
    {
        byte unit = slot.Request.Unit;
        string reason = exceptionCode == ModbusExceptionCode.GatewayTargetFailedToRespond
            ? "serial bus: no answer (device timeout, open circuit breaker or queue-timeout)"
            : unit > RtuFramer.MaxDeviceAddress ? "serial bus: unit 248..255 is reserved on a serial line"
            : unit == RtuFramer.BroadcastAddress ? "serial bus: only writes may be broadcast (unit 0)"
            : "serial bus: port unavailable";
        AuditSlot(exceptionCode == ModbusExceptionCode.GatewayTargetFailedToRespond ? AuditEventKind.ResponseTimeout : AuditEventKind.Denied, slot, reason, exceptionCode);
    }

    private void AuditSlot(AuditEventKind kind, in PendingTable<ModbusPendingRequest>.Slot slot, string reason, byte exceptionCode)
    {
        var request = slot.Request;
        _listener.Audit.Write(_connection.Event(kind, request.Unit, request.Expectation.FunctionCode, reason) with
        {
            MeiType = request.MeiType,
            SubFunction = request.Expectation.FunctionCode == DiagnosticsFunction ? request.SubFunction : null,
            ClientTid = _framing.HasTransactionId ? slot.ClientTid : null,
            GatewayTid = slot.GatewayTid,
            ReadSpan = request.ReadSpan,
            WriteSpan = request.WriteSpan,
            ExceptionCode = exceptionCode,
        });
    }
}
