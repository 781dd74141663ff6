using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using EdgeShield.Policy;
using EdgeShield.Protocols;
using EdgeShield.Protocols.S7comm;
using EdgeShield.Transport;

namespace EdgeShield.Gateway.S7comm;

/// <summary>What the session keeps of a forwarded S7 job: the expectation of its answer (with the gateway's REF) and what to audit.</summary>
internal readonly record struct S7PendingJob(S7Expectation Expectation);

/// <summary>
/// The S7comm side of a client connection on a <c>protocol: s7comm</c> listener (DESIGN.md "S7comm"): the COTP
/// connect is judged by source and connection type and relayed; DT fragments are reassembled before judging;
/// every job is judged as a whole (every item must be allowed) with the listener's policy; allowed jobs go to
/// the PLC with a gateway PDU reference, re-fragmented to the negotiated TPDU size; answers must match an
/// outstanding job; refusals are what a PLC answers (Ack_Data error, item return codes, userdata error, or a
/// COTP DR at connect). setup-communication is clamped to the gateway's PDU size and AmQ. S7comm-Plus is
/// allowed or refused as a whole; a refusal closes.
/// </summary>
internal sealed class S7Session : IProtocolSession
{
    /// <summary>The largest S7 PDU the gateway negotiates (S7-300/400/1500 offer at most 960).</summary>
    public const int MaxPduSize = 960;
    /// <summary>TPDU size code 0x0B = 2048 bytes: the largest TPKT packet either leg may send (both receive buffers hold two).</summary>
    public const byte MaxTpduSizeCode = 0x0B;
    private const int MaxPacket = 1 << MaxTpduSizeCode;
    private const string ProtocolName = "s7comm";

    private readonly ClientConnection _connection;
    private readonly GatewayListener _listener;
    private readonly PendingTable<S7PendingJob> _pending;
    private readonly CotpReassembler _fromClient;
    private readonly CotpReassembler _fromPlc;
    // The receive loop's refusals: a DT header and the refusal PDU (or a DR).
    // 512 bytes: the largest refusal is one return code per item of a job that fills a 960-byte PDU (79 items, 330 bytes).
    private readonly byte[] _requestReply = new byte[512];
    // Answers from other flows (upstream loop, sweeper), written only under the send lock.
    private readonly byte[] _lockedReply = new byte[512];
    // REFs of the jobs the PLC sent the client (a download's download-block) that the client has not answered yet.
    private readonly ushort[] _plcJobs = new ushort[8];
    private int _plcJobCount;
    // Whether the receive loop's last Forward step was a correlated job (a pending slot) or a relay.
    private bool _forwardCorrelated;
    // A judged PDU, fragmented for the PLC (receive loop only).
    private readonly byte[] _toPlc = new byte[CotpWriter.DataLength(MaxPduSize, CotpWriter.MinTpduSize)];
    // A checked answer, fragmented for the client (upstream loop only).
    private readonly byte[] _toClient = new byte[CotpWriter.DataLength(MaxPduSize, CotpWriter.MinTpduSize)];
    private readonly ushort _maxAmq;
    private S7Connection _peer;
    // 0 before the COTP connect, 1 while the CR is at the PLC, 2 once the PLC confirmed it.
    private int _cotpState;
    private ushort _clientReference;
    private int _clientTpduSize = CotpWriter.MinTpduSize;
    private int _plcTpduSize = CotpWriter.MinTpduSize;
    private int _pduSize = MaxPduSize;
    private bool _plus;
    // A PDU the client sent in several DT fragments, as one DT for audit.pcap (only when the listener captures).
    private readonly byte[]? _evidence;

    public S7Session(ClientConnection connection)
    {
        _connection = connection;
        _listener = connection.Listener;
        _pending = new PendingTable<S7PendingJob>(_listener.Config.Limits.PendingPerConnection);
        _maxAmq = (ushort)Math.Min(_listener.Config.Limits.PendingPerConnection, ushort.MaxValue);
        _fromClient = new CotpReassembler(new byte[MaxPduSize], MaxPduSize);
        _fromPlc = new CotpReassembler(new byte[MaxPduSize], MaxPduSize);
        _evidence = connection.Tap is null ? null : new byte[S7Limits.DataTpduOverhead + MaxPduSize];
    }

    /// <summary>
    /// What the forensics capture records for a judged PDU: the packet that completed it, or, for a PDU the client
    /// sent in several DT fragments, one DT carrying the whole PDU (so that Wireshark decodes the job).
    /// </summary>
    private ReadOnlySpan<byte> Evidence(ReadOnlySpan<byte> packet, ReadOnlySpan<byte> pdu)
    {
        if (_evidence is null || packet.Overlaps(pdu))
        {
            return packet;
        }
        CotpWriter.WriteDataHeader(_evidence, pdu.Length, endOfTransmission: true);
        pdu.CopyTo(_evidence.AsSpan(S7Limits.DataTpduOverhead));
        return _evidence.AsSpan(0, S7Limits.DataTpduOverhead + pdu.Length);
    }

    public IStreamFramer ResponseFramer => TpktStreamFramer.Instance;

    public ClientStep Inspect(Span<byte> input)
    {
        if (input.Length >= 4 && BinaryPrimitives.ReadUInt16BigEndian(input[2..]) > MaxPacket && input[0] == S7Limits.TpktVersion)
        {
            Malformed(input, $"TPKT packet above {MaxPacket} bytes (the TPDU size the gateway negotiates)");
            return new ClientStep(ClientAction.Close, 0);
        }
        var status = TpktFramer.TryReadFrame(input, out var tpdu, out int consumed, out var framingError);
        if (status == OperationStatus.NeedMoreData)
        {
            return new ClientStep(ClientAction.NeedMoreData, 0);
        }
        if (status == OperationStatus.InvalidData)
        {
            Malformed(input, "TPKT/COTP: " + Describe(framingError));
            return new ClientStep(ClientAction.Close, 0);
        }
        var packet = input[..consumed];
        switch (tpdu.Type)
        {
            case CotpTpduType.ConnectionRequest when _cotpState == 0:
                return Connect(packet, tpdu, consumed);
            case CotpTpduType.Data when _cotpState == 2:
                break;
            case CotpTpduType.DisconnectRequest:
                return new ClientStep(ClientAction.Close, consumed);
            default:
                Malformed(packet, _cotpState == 2 ? "COTP: a TPDU other than DT or DR after the connect" : "COTP: data before the connect was confirmed");
                return new ClientStep(ClientAction.Close, 0);
        }
        var reassembly = _fromClient.Append(tpdu, out var pdu, out var reassemblyError);
        if (reassembly == OperationStatus.InvalidData)
        {
            Malformed(packet, "COTP reassembly: " + Describe(reassemblyError));
            return new ClientStep(ClientAction.Close, 0);
        }
        if (reassembly == OperationStatus.NeedMoreData)
        {
            // A fragment: held (copied) until the one with EOT; nothing is forwarded before the PDU is judged.
            return new ClientStep(ClientAction.Nothing, consumed);
        }
        return InspectPdu(packet, pdu, consumed);
    }

    private ClientStep Connect(ReadOnlySpan<byte> packet, in CotpTpdu cr, int consumed)
    {
        _peer = cr.Connection;
        _clientReference = cr.SourceReference;
        _listener.Observer?.OnS7Connect(_listener, _connection.Source, _connection.SourcePort, _peer);
        var policy = _listener.Policy.Current;
        if (!Inspector.InspectConnect(policy, _connection.Source, _peer).Forwards)
        {
            _listener.Counters.CountDenied();
            var onDeny = policy.OnDeny;
            var refused = Event(AuditEventKind.Denied, -1, "cotp-connect", "no rule for this source and connection type") with { ConnectionClosed = true };
            _listener.Audit.Write(refused);
            _connection.Tap?.Record(packet, refused, _connection.StreamOffset);
            if (onDeny != OnDeny.Exception)
            {
                return new ClientStep(ClientAction.Close, consumed);
            }
            int length = CotpWriter.WriteDisconnectRequest(_requestReply, _clientReference, 0, CotpWriter.DisconnectReasonAddressUnknown);
            return new ClientStep(ClientAction.ReplyAndClose, consumed, Length: length);
        }
        _plus = _peer.Kind is S7ConnectionKind.PlusHmi or S7ConnectionKind.PlusEs;
        // The TPDU size the PLC may choose is bounded by what the CR offers: never above what the gateway's buffers hold.
        int forwardLength = packet.Length;
        packet.CopyTo(_toPlc);
        ClampTpduSize(_toPlc.AsSpan(0, forwardLength));
        _cotpState = 1;
        _forwardCorrelated = false;
        _connection.MarkAllowed();
        _listener.Counters.CountAllowed();
        return new ClientStep(ClientAction.Forward, consumed, 0, forwardLength);
    }

    private ClientStep InspectPdu(ReadOnlySpan<byte> packetIn, ReadOnlySpan<byte> pdu, int consumed)
    {
        var request = S7Pdu.ParseRequest(pdu);
        var policy = _listener.Policy.Current;
        // The order of judgement is Inspector.InspectS7's, which replay asks too.
        var inspection = Inspector.InspectS7(policy, _connection.Source, _peer, _plus, request, _connection.ReadAt);
        var verdict = inspection.Verdict;
        if (inspection.Kind is not (InspectionKind.Malformed or InspectionKind.Answer))
        {
            _listener.Observer?.OnS7Request(_listener, _connection.Source, _connection.SourcePort, _peer, _plus, request);
        }
        // What audit.pcap records of a refusal: the whole PDU, also when it came in several DT fragments.
        var packet = inspection.Kind == InspectionKind.Allowed ? packetIn : Evidence(packetIn, pdu);
        string word = S7Functions.PolicyWord(request.Function);
        switch (inspection.Kind)
        {
            case InspectionKind.Malformed:
                Malformed(packet, "S7 PDU: " + request.Error.ToString());
                return new ClientStep(ClientAction.Close, 0);
            case InspectionKind.Answer:
                // The client answering a job the PLC sent it (a download's download-block): forwarded; an answer to
                // no job of the PLC's is dropped, as the PLC would have nothing to pair it with.
                if (!TakePlcJob(request.Reference))
                {
                    _listener.Counters.CountResponseMismatch();
                    Audit(packet, AuditEventKind.UnmatchedResponse, request.FunctionCode, word, null, "client answered no job the PLC sent it (PDU reference): dropped");
                    return new ClientStep(ClientAction.Nothing, consumed);
                }
                return ForwardPdu(pdu, consumed, correlated: false, default);
            case InspectionKind.OutOfSpec:
                _listener.Counters.CountDenied();
                Audit(packet, AuditEventKind.OutOfSpec, request.FunctionCode, word, null, "S7: " + request.Error.ToString());
                return WriteRefusal(request, S7Pdu.ErrorClassServiceProcessing, 0x04, S7Items.ReturnTypeInconsistent, consumed, inspection.OnDeny);
            case InspectionKind.Denied when request.Protocol == S7Protocol.S7commPlus || _plus:
                // S7comm-Plus cannot be answered by a third party (integrity protection): allowed as a whole, or closed.
                _listener.Counters.CountDenied();
                Audit(packet, AuditEventKind.Denied, request.FunctionCode, "s7comm-plus", RuleName(policy, verdict), AuditEvents.Reason(verdict.Reason), closed: true);
                return new ClientStep(ClientAction.Close, consumed);
            case InspectionKind.Denied:
                return Refuse(packet, consumed, request, policy, verdict, AuditEventKind.Denied, word);
            case InspectionKind.WouldDeny:
                Audit(packet, AuditEventKind.WouldDeny, request.FunctionCode, word, RuleName(policy, verdict), AuditEvents.Reason(verdict.Reason));
                break;
        }
        if (request.Protocol == S7Protocol.S7commPlus || _plus)
        {
            return ForwardPdu(pdu, consumed, correlated: false, default);
        }
        var expectation = request.Expectation(_pduSize);
        ushort gatewayRef;
        bool added;
        lock (_pending)
        {
            added = _pending.TryAdd(request.Reference, new S7PendingJob(expectation), _connection.ReadAt, out gatewayRef);
        }
        if (!added)
        {
            _listener.Counters.CountDenied();
            Audit(packet, AuditEventKind.PendingLimit, request.FunctionCode, word, null, "too many outstanding jobs on this connection (AmQ)");
            return WriteRefusal(request, S7Pdu.ErrorClassNoResources, 0x02, S7Items.ReturnHardwareFault, consumed, OnDeny.Exception);
        }
        lock (_pending)
        {
            // The expectation checks the answer by the REF the PLC sees.
            _pending.SetRequest(gatewayRef, new S7PendingJob(expectation with { Reference = gatewayRef }));
        }
        _listener.Counters.CountAllowed();
        _connection.MarkAllowed();
        return ForwardPdu(pdu, consumed, correlated: true, gatewayRef);
    }

    /// <summary>Writes <paramref name="pdu"/> as DT fragments for the PLC (setup-communication clamped, REF replaced).</summary>
    private ClientStep ForwardPdu(ReadOnlySpan<byte> pdu, int consumed, bool correlated, ushort gatewayRef)
    {
        _forwardCorrelated = correlated;
        int length = CotpWriter.WriteData(_toPlc, pdu, _plcTpduSize);
        var first = _toPlc.AsSpan(S7Limits.DataTpduOverhead);
        if (correlated)
        {
            BinaryPrimitives.WriteUInt16BigEndian(first[4..], gatewayRef);
            if (pdu.Length <= first.Length)
            {
                S7Pdu.ClampSetupCommunication(first[..Math.Min(pdu.Length, length - S7Limits.DataTpduOverhead)], MaxPduSize, _maxAmq);
            }
        }
        return new ClientStep(ClientAction.Forward, consumed, gatewayRef, length);
    }

    private ClientStep Refuse(ReadOnlySpan<byte> packet, int consumed, in S7Request request, CompiledPolicy policy, Verdict verdict, AuditEventKind kind, string word)
    {
        _listener.Counters.CountDenied();
        var onDeny = policy.OnDeny;
        var item = FirstItem(request);
        Audit(packet, kind, request.FunctionCode, word, RuleName(policy, verdict), AuditEvents.Reason(verdict.Reason), closed: onDeny == OnDeny.Close, item: item);
        if (NotAnswered(onDeny, consumed) is { } unanswered)
        {
            return unanswered;
        }
        var expectation = request.Expectation(_pduSize);
        Span<byte> pdu = _requestReply.AsSpan(S7Limits.DataTpduOverhead);
        int length;
        if (request.Rosctr == S7Rosctr.Userdata)
        {
            length = S7Pdu.WriteUserdataError(pdu, expectation, S7Pdu.UserdataErrorNotPermitted);
        }
        else if (request.Function is S7Function.ReadVar or S7Function.WriteVar && verdict.Reason is not (DenyReason.Function or DenyReason.SourceOrUnit))
        {
            Span<byte> codes = stackalloc byte[byte.MaxValue];
            int count = policy.S7ItemRefusals(verdict.RuleIndex, new S7Target(_peer, request), codes);
            length = S7Pdu.WriteItemErrors(pdu, expectation, codes[..count]);
            if (length < 0 || length > _pduSize)
            {
                // One return code per item takes 4 bytes, more than a 3-byte non-S7ANY item of the job: an answer
                // that would exceed the negotiated PDU size refuses the job as a whole instead.
                length = S7Pdu.WriteJobError(pdu, expectation, S7Pdu.ErrorClassAccess, 0x03);
            }
        }
        else if (verdict.Reason == DenyReason.Rate)
        {
            length = S7Pdu.WriteJobError(pdu, expectation, S7Pdu.ErrorClassNoResources, 0x02);
        }
        else
        {
            length = S7Pdu.WriteJobError(pdu, expectation, S7Pdu.ErrorClassAccess, 0x03);
        }
        return Reply(length, consumed);
    }

    /// <summary>A refusal that is not the protocol's answer: nothing (<c>drop</c>) or a close; null for <c>exception</c>.</summary>
    private static ClientStep? NotAnswered(OnDeny onDeny, int consumed) => onDeny switch
    {
        OnDeny.Drop => new ClientStep(ClientAction.Nothing, consumed),
        OnDeny.Close => new ClientStep(ClientAction.Close, consumed),
        _ => null,
    };

    private ClientStep WriteRefusal(in S7Request request, byte errorClass, byte errorCode, byte itemCode, int consumed, OnDeny onDeny)
    {
        if (NotAnswered(onDeny, consumed) is { } unanswered)
        {
            return unanswered;
        }
        var expectation = request.Expectation(_pduSize);
        Span<byte> pdu = _requestReply.AsSpan(S7Limits.DataTpduOverhead);
        int length = WriteFailure(pdu, expectation, errorClass, errorCode, itemCode);
        return Reply(length, consumed);
    }

    private ClientStep Reply(int pduLength, int consumed)
    {
        if (pduLength < 0)
        {
            // The job's answer does not fit the refusal buffer (a job of more items than a PDU holds): closed instead.
            return new ClientStep(ClientAction.Close, consumed);
        }
        CotpWriter.WriteDataHeader(_requestReply, pduLength, endOfTransmission: true);
        return new ClientStep(ClientAction.Reply, consumed, Length: S7Limits.DataTpduOverhead + pduLength);
    }

    /// <summary>The answer a PLC gives to a job that failed (lost, timed out, refused as a whole).</summary>
    private static int WriteFailure(Span<byte> pdu, in S7Expectation job, byte errorClass, byte errorCode, byte itemCode)
    {
        if (job.Rosctr == 7)
        {
            return S7Pdu.WriteUserdataError(pdu, job, S7Pdu.UserdataErrorNotPermitted);
        }
        if (job.FunctionCode is S7Functions.ReadVar or S7Functions.WriteVar && job.ItemCount > 0)
        {
            Span<byte> codes = stackalloc byte[byte.MaxValue];
            codes = codes[..job.ItemCount];
            codes.Fill(itemCode);
            return S7Pdu.WriteItemErrors(pdu, job, codes);
        }
        return S7Pdu.WriteJobError(pdu, job, errorClass, errorCode);
    }

    public ValueTask ReplyAsync(ClientStep step) => _connection.SendToClientAsync(_requestReply.AsMemory(0, step.Length));

    public async ValueTask ForwardAsync(ReadOnlyMemory<byte> frame, ClientStep step)
    {
        int generation = await _connection.SendUpstreamAsync(_toPlc.AsMemory(0, step.Length));
        if (_cotpState == 1 && generation < 0)
        {
            // The PLC cannot be reached for the connect: the client's connect fails as it would direct.
            _listener.Audit.Write(Event(AuditEventKind.UpstreamUnreachable, -1, "cotp-connect", "PLC unreachable") with { ConnectionClosed = true });
            _ = _connection.CloseAsync();
            return;
        }
        if (!_forwardCorrelated)
        {
            return;
        }
        PendingTable<S7PendingJob>.Slot slot;
        bool failed;
        lock (_pending)
        {
            if (generation > 0)
            {
                _pending.MarkSent(step.Correlation, generation, Stopwatch.GetTimestamp() + _listener.ResponseTimeoutTicks);
                return;
            }
            failed = _pending.TryTake(step.Correlation, out slot);
        }
        if (failed && !_connection.Closed.IsCancellationRequested)
        {
            _listener.Counters.CountTimeout();
            AuditSlot(AuditEventKind.UpstreamUnreachable, slot, "PLC unreachable");
            await SendFailureAsync(slot);
        }
    }

    public async ValueTask OnResponseAsync(Memory<byte> packet, int generation)
    {
        var status = TpktFramer.TryReadFrame(packet.Span, out var tpdu, out _, out var error);
        if (status != OperationStatus.Done)
        {
            PlcFault("PLC sent a TPKT/COTP packet that does not frame: " + Describe(error));
            return;
        }
        if (_cotpState == 1)
        {
            await ConfirmAsync(packet);
            return;
        }
        if (tpdu.Type == CotpTpduType.DisconnectRequest)
        {
            await _connection.SendToClientAsync(packet);
            _ = _connection.CloseAsync();
            return;
        }
        if (tpdu.Type != CotpTpduType.Data)
        {
            PlcFault("PLC sent a COTP TPDU other than DT or DR after the connect");
            return;
        }
        int length = ReassembleAnswer(tpdu, out var verdict);
        if (verdict == ClientAction.Forward)
        {
            _listener.Counters.CountResponse();
            await _connection.SendToClientAsync(_toClient.AsMemory(0, length));
        }
        else if (verdict == ClientAction.Reply && _failed is { } slot)
        {
            _failed = null;
            await SendFailureAsync(slot);
        }
    }

    // The job whose answer failed its check (upstream loop only).
    private PendingTable<S7PendingJob>.Slot? _failed;

    /// <summary>Reassembles and checks one DT of the PLC; writes the client's fragments into _toClient. Synchronous (spans).</summary>
    private int ReassembleAnswer(in CotpTpdu tpdu, out ClientAction action)
    {
        action = ClientAction.Nothing;
        var reassembly = _fromPlc.Append(tpdu, out var pdu, out var error);
        if (reassembly == OperationStatus.NeedMoreData)
        {
            return 0;
        }
        if (reassembly == OperationStatus.InvalidData)
        {
            PlcFault("PLC's COTP reassembly: " + Describe(error));
            return 0;
        }
        var header = S7Pdu.ParseHeader(pdu);
        if (!header.IsValid)
        {
            PlcFault("PLC sent an S7 PDU whose header is invalid");
            return 0;
        }
        if (header.Rosctr == S7Rosctr.Job && !_plus && header.Protocol == S7Protocol.S7comm)
        {
            RememberPlcJob(header.Reference);
        }
        if (_plus || header.Protocol == S7Protocol.S7commPlus || header.Rosctr == S7Rosctr.Job
            || (header.Rosctr == S7Rosctr.Userdata && pdu.Length > header.HeaderLength + 5 && (pdu[header.HeaderLength + 5] & 0xF0) == 0))
        {
            // S7comm-Plus (allowed as a whole), a job the PLC sends its peer (a download's download-block), a
            // userdata push (cyclic data, alarms): relayed as they are.
            action = ClientAction.Forward;
            return CotpWriter.WriteData(_toClient, pdu, _clientTpduSize);
        }
        ushort gatewayRef = header.Reference;
        bool found;
        PendingTable<S7PendingJob>.Slot slot;
        lock (_pending)
        {
            found = _pending.TryTake(gatewayRef, out slot);
        }
        if (!found)
        {
            _listener.Counters.CountResponseMismatch();
            _listener.Audit.Write(Event(AuditEventKind.UnmatchedResponse, pdu.Length > header.HeaderLength ? pdu[header.HeaderLength] : (short)-1, null,
                "answer to no outstanding job (PDU reference)") with { GatewayTid = gatewayRef });
            return 0;
        }
        var expected = slot.Request.Expectation;
        var check = S7Pdu.CheckResponse(pdu, expected, out var mismatch);
        if (check == S7ResponseStatus.Mismatch || pdu.Length > _pduSize)
        {
            _listener.Counters.CountResponseMismatch();
            _listener.Counters.CountTimeout();
            AuditSlot(AuditEventKind.ResponseMismatch, slot, pdu.Length > _pduSize ? "answer longer than the negotiated PDU size" : "answer does not match its job: " + mismatch.ToString());
            _failed = slot;
            action = ClientAction.Reply;
            return 0;
        }
        int length = CotpWriter.WriteData(_toClient, pdu, _clientTpduSize);
        var first = _toClient.AsSpan(S7Limits.DataTpduOverhead);
        BinaryPrimitives.WriteUInt16BigEndian(first[4..], slot.ClientTid);
        if (expected.FunctionCode == S7Functions.SetupCommunication && expected.Rosctr == 1 && pdu.Length <= first.Length)
        {
            var answer = first[..pdu.Length];
            S7Pdu.ClampSetupCommunication(answer, MaxPduSize, _maxAmq);
            int negotiated = BinaryPrimitives.ReadUInt16BigEndian(answer[(header.HeaderLength + 6)..]);
            if (negotiated >= 240 && negotiated <= MaxPduSize)
            {
                // The negotiated PDU size bounds every later PDU, in both directions.
                _pduSize = negotiated;
                _fromClient.MaxPduSize = negotiated;
                _fromPlc.MaxPduSize = negotiated;
            }
        }
        action = ClientAction.Forward;
        return length;
    }

    private void RememberPlcJob(ushort reference)
    {
        lock (_plcJobs)
        {
            if (_plcJobCount == _plcJobs.Length)
            {
                // The oldest unanswered one is forgotten (its late answer is then dropped).
                Array.Copy(_plcJobs, 1, _plcJobs, 0, _plcJobs.Length - 1);
                _plcJobCount--;
            }
            _plcJobs[_plcJobCount++] = reference;
        }
    }

    private bool TakePlcJob(ushort reference)
    {
        lock (_plcJobs)
        {
            for (int i = 0; i < _plcJobCount; i++)
            {
                if (_plcJobs[i] == reference)
                {
                    Array.Copy(_plcJobs, i + 1, _plcJobs, i, _plcJobCount - i - 1);
                    _plcJobCount--;
                    return true;
                }
            }
            return false;
        }
    }

    /// <summary>The PLC's answer to the COTP connect: a CC (TPDU size clamped) or a DR; relayed.</summary>
    private async ValueTask ConfirmAsync(Memory<byte> packet)
    {
        int length = ConfirmLength(packet.Span);
        if (length < 0)
        {
            return;
        }
        await _connection.SendToClientAsync(_toClient.AsMemory(0, length));
        if (_cotpState != 2)
        {
            _ = _connection.CloseAsync();
        }
    }

    private int ConfirmLength(Span<byte> packet)
    {
        TpktFramer.TryReadFrame(packet, out var tpdu, out _, out _);
        if (tpdu.Type == CotpTpduType.ConnectionConfirm)
        {
            packet.CopyTo(_toClient);
            var cc = _toClient.AsSpan(0, packet.Length);
            ClampTpduSize(cc);
            TpktFramer.TryReadFrame(cc, out var clamped, out _, out _);
            int size = clamped.TpduSize == 0 ? CotpWriter.MinTpduSize : clamped.TpduSize;
            _clientTpduSize = size;
            _plcTpduSize = size;
            _cotpState = 2;
            return packet.Length;
        }
        if (tpdu.Type == CotpTpduType.DisconnectRequest)
        {
            packet.CopyTo(_toClient);
            _listener.Audit.Write(Event(AuditEventKind.UpstreamLost, -1, "cotp-connect", "PLC refused the COTP connect (DR)") with { ConnectionClosed = true });
            return packet.Length;
        }
        PlcFault("PLC answered the COTP connect with neither CC nor DR");
        return -1;
    }

    /// <summary>Lowers a CR's or CC's TPDU size parameter (C0) to at most <see cref="MaxTpduSizeCode"/>, in place.</summary>
    private static void ClampTpduSize(Span<byte> packet)
    {
        int end = S7Limits.TpktHeaderLength + 1 + packet[S7Limits.TpktHeaderLength];
        for (int at = S7Limits.TpktHeaderLength + 7; at + 2 <= end && at + 2 <= packet.Length;)
        {
            byte code = packet[at];
            int length = packet[at + 1];
            if (code == TpktFramer.ParameterTpduSize && length == 1 && at + 2 < packet.Length && packet[at + 2] > MaxTpduSizeCode)
            {
                packet[at + 2] = MaxTpduSizeCode;
            }
            at += 2 + length;
        }
    }

    private void PlcFault(string reason)
    {
        _listener.Counters.CountResponseMismatch();
        _listener.Audit.Write(Event(AuditEventKind.UpstreamLost, -1, null, reason) with { ConnectionClosed = true });
        _ = _connection.CloseAsync();
    }

    public async ValueTask OnUpstreamLost(int generation, UpstreamLoss loss, FrameFault fault)
    {
        if (loss == UpstreamLoss.InvalidFraming)
        {
            _listener.Audit.Write(Event(AuditEventKind.UpstreamLost, -1, null, "PLC sent bytes that are not TPKT/COTP: " + ResponseFramer.Describe(fault)));
        }
        await AnswerExpiredAsync(long.MinValue, generation);
        // The ISO connection went with the TCP one: the client connects again (a new COTP connect), as it would direct.
        _ = _connection.CloseAsync();
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
            PendingTable<S7PendingJob>.Slot slot;
            lock (_pending)
            {
                if (!_pending.TryTakeExpiredOrLost(now, lostGeneration, out slot))
                {
                    return;
                }
                _pending.Retire(slot);
            }
            _listener.Counters.CountTimeout();
            AuditSlot(lostGeneration > 0 ? AuditEventKind.UpstreamLost : AuditEventKind.ResponseTimeout, slot,
                lostGeneration > 0 ? "PLC connection lost with the job outstanding" : "PLC did not answer within response-timeout");
            await SendFailureAsync(slot);
        }
    }

    /// <summary>A lost job's answer, as a PLC reports a job it could not serve (item code 01, header 84/04, userdata D0A1).</summary>
    private ValueTask SendFailureAsync(PendingTable<S7PendingJob>.Slot slot) =>
        _connection.SendToClientAsync(new FailureReply(slot.Request.Expectation with { Reference = slot.ClientTid }), _lockedReply);

    private readonly record struct FailureReply(S7Expectation Job) : IClientReply
    {
        public int Write(Span<byte> destination)
        {
            int length = WriteFailure(destination[S7Limits.DataTpduOverhead..], Job, S7Pdu.ErrorClassServiceProcessing, 0x04, S7Items.ReturnHardwareFault);
            if (length < 0)
            {
                return 0;
            }
            CotpWriter.WriteDataHeader(destination, length, endOfTransmission: true);
            return S7Limits.DataTpduOverhead + length;
        }
    }

    private static ProtocolItem FirstItem(in S7Request request)
    {
        if (request.Function is not (S7Function.ReadVar or S7Function.WriteVar))
        {
            return default;
        }
        foreach (var item in request.Items)
        {
            return new ProtocolItem((byte)item.Index, item.AreaCode, item.DbNumber, item.Start, Math.Max(1, item.Length));
        }
        return default;
    }

    private static string? RuleName(CompiledPolicy policy, Verdict verdict) =>
        verdict.RuleIndex >= 0 && verdict.RuleIndex < policy.RuleNames.Count ? policy.RuleNames[verdict.RuleIndex] : null;

    private void Malformed(ReadOnlySpan<byte> frame, string reason)
    {
        _listener.Counters.CountMalformed();
        var malformed = Event(AuditEventKind.Malformed, -1, null, reason) with { ConnectionClosed = true };
        _listener.Audit.Write(malformed);
        _connection.Tap?.Record(frame, malformed, _connection.StreamOffset);
    }

    private void Audit(ReadOnlySpan<byte> frame, AuditEventKind kind, short functionCode, string word, string? rule, string reason, bool closed = false, ProtocolItem item = default)
    {
        var e = Event(kind, functionCode, word, reason) with { Rule = rule, ConnectionClosed = closed, Item = item };
        _listener.Audit.Write(e);
        _connection.Tap?.Record(frame, e, _connection.StreamOffset);
    }

    private void AuditSlot(AuditEventKind kind, in PendingTable<S7PendingJob>.Slot slot, string reason)
    {
        var job = slot.Request.Expectation;
        _listener.Audit.Write(Event(kind, job.FunctionCode, S7Functions.PolicyWord(job.Function), reason) with
        {
            ClientTid = slot.ClientTid,
            GatewayTid = slot.GatewayTid,
        });
    }

    private AuditEvent Event(AuditEventKind kind, short functionCode, string? word, string reason) =>
        _connection.Event(kind, -1, functionCode, reason) with { Protocol = ProtocolName, FunctionName = word };

    private static string Describe(S7FramingError error) => error.ToString();
}
