using System.Diagnostics;
using EdgeShield.Policy;
using EdgeShield.Protocols;
using EdgeShield.Protocols.Iec104;
using EdgeShield.Transport;

namespace EdgeShield.Gateway.Iec104;

/// <summary>
/// The IEC 60870-5-104 side of a client connection on a <c>protocol: iec104</c> listener (DESIGN.md "IEC
/// 60870-5-104"): a protocol break. The gateway is a station to the client and a controlling station to the
/// RTU, with its own sequence numbers, k/w windows, t1/t2/t3 and TESTFR on each leg (<see cref="Iec104Leg"/>);
/// ASDUs and STARTDT/STOPDT are carried end to end. Every ASDU of the client is judged; a refused command is
/// answered as a station answers it (the mirrored ASDU, P/N = 1, the cause of the closest rule) and never
/// reaches the RTU, and no leg's numbering notices. From the RTU, a confirmation or termination must match a
/// command outstanding on this connection (<see cref="Iec104Commands"/>); the rest of its well-formed ASDUs
/// (monitor data, interrogated points) are relayed once STARTDT is confirmed.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "As ClientConnection's: a semaphore holds no OS handle unless its wait handle is asked for; flows may still touch it briefly after close.")]
internal sealed class Iec104Session : IProtocolSession
{
    private const string ProtocolName = "iec104";

    private readonly ClientConnection _connection;
    private readonly GatewayListener _listener;
    private readonly Iec104Leg _client;
    private readonly Iec104Leg _station;
    private readonly Iec104Selects _selects = new();
    private readonly Iec104Commands _commands;
    // Sends to the RTU come from the receive loop, the upstream loop and the sweeper; an upstream session's sends must not overlap.
    private readonly SemaphoreSlim _stationSend = new(1, 1);
    private readonly long _t1;
    private readonly long _t2;
    private readonly long _t3;
    private readonly TimeSpan _t1Span;
    private readonly long _terminationWait;
    // The receive loop's own frames (to the client: refusals, U and S; to the RTU: a forwarded ASDU, U and S).
    private readonly byte[] _toClientFromLoop = new byte[Iec104Limits.MaxFrame];
    private readonly byte[] _toStationFromLoop = new byte[Iec104Limits.MaxFrame];
    // The upstream loop's (the RTU's ASDUs for the client; its S, U frames).
    private readonly byte[] _toClientFromStation = new byte[Iec104Limits.MaxFrame];
    private readonly byte[] _toStationFromUpstream = new byte[Iec104Limits.MaxFrame];
    // The frames for the client that one read of the RTU's produced (its I-frames, not yet numbered, and U-frames),
    // sent in one write when the read's frames are all judged (OnReadCompleteAsync). An upstream read is at most
    // 4096 bytes and each frame for the client is as long as the RTU's it comes from, so one write per read unless
    // the client's window (k) is full. Only the upstream loop touches them.
    private const int CollectedCapacity = 16 * Iec104Limits.MaxFrame;
    private readonly byte[] _toClientCollected = new byte[CollectedCapacity];
    private int _collectedLength;
    // A fault of the RTU's found by the upstream loop: the connection closes once what the read collected before it is sent.
    private bool _stationFaulted;
    // The sweeper's.
    private readonly byte[] _toClientFromSweeper = new byte[Iec104Limits.MaxFrame];
    private readonly byte[] _toStationFromSweeper = new byte[Iec104Limits.MaxFrame];
    private readonly byte[] _expiredAsdu = new byte[Iec104Commands.MaxAsdu];
    // Refusals the receive loop could not send at once because the client's window (k) was full: the
    // acknowledgement that frees it may be behind the refused command in the same stream, which only this loop
    // reads, so it must not wait for it. Sent in order as the client's acknowledgements open the window. Only the
    // receive loop touches them.
    private const int DeferredMax = 16;
    private readonly byte[] _deferred = new byte[DeferredMax * Iec104Commands.MaxAsdu];
    private readonly int[] _deferredLength = new int[DeferredMax];
    private int _deferredHead;
    private int _deferredCount;
    // The client's frames held back because the station's window (k) was full when they were judged: the station's
    // acknowledgement that opens it is read by the upstream loop, which may itself wait for the client's window, and the
    // client's acknowledgement that would free it may be behind these frames in the client's stream. Holding them (not
    // waiting) keeps the receive loop reading; they are not acknowledged to the client until they go, so the client's
    // own k bounds them. Sent in order by whichever loop finds room (under the station's send lock). A slot: kind (0 an
    // I-frame's ASDU, 1 a U-frame), length, the client's N(S) from which frames are held, a tracked command (its
    // response-timeout starts when it goes), then the bytes. Allocated at the first hold: a session whose station
    // keeps up never holds anything.
    private const int HeldSlot = HeldHeader + Iec104Limits.MaxFrame;
    private const int HeldHeader = 5;
    private readonly Lock _heldGate = new();
    private readonly int _heldIFramesMax;
    private byte[]? _held;
    private int _heldHead;
    private int _heldCount;
    private int _heldIFrames;
    private readonly byte[] _toStationFromHeld = new byte[Iec104Limits.MaxFrame];
    private readonly byte[] _toClientAckFromUpstream = new byte[Iec104Limits.ApciLength];
    private ushort _loopSequence;
    private bool _loopTracked;
    private volatile DataTransfer _transfer;
    private bool _judgedSource;
    // What the receive loop's last step asks of ReplyAsync / ForwardAsync.
    private PendingSend _loopSend;
    private int _loopLength;

    private enum DataTransfer : byte
    {
        /// <summary>No STARTDT yet, or after STOPDT con: no I-frames.</summary>
        Stopped = 0,
        /// <summary>The client's STARTDT act is at the RTU.</summary>
        Starting,
        /// <summary>The RTU confirmed STARTDT: ASDUs flow.</summary>
        Started,
        /// <summary>The client's STOPDT act is at the RTU.</summary>
        Stopping,
    }

    /// <summary>What the receive loop sends for its last step.</summary>
    private enum PendingSend : byte
    {
        None = 0,
        /// <summary>To the client: the refusal I-frame in <see cref="_toClientFromLoop"/> (numbered when sent).</summary>
        ClientIFrame,
        /// <summary>To the client: an S-frame acknowledging what it sent.</summary>
        ClientS,
        /// <summary>To the client: a U-frame in <see cref="_toClientFromLoop"/>.</summary>
        ClientU,
        /// <summary>To the client: the deferred refusals its acknowledgement made room for.</summary>
        ClientDeferred,
        /// <summary>To the RTU: the allowed ASDU (numbered when sent).</summary>
        StationIFrame,
        /// <summary>To the RTU: a U-frame (STARTDT or STOPDT act).</summary>
        StationU,
    }

    public Iec104Session(ClientConnection connection)
    {
        _connection = connection;
        _listener = connection.Listener;
        var limits = _listener.Config.Limits;
        _client = new Iec104Leg("client", limits.K, limits.W);
        _station = new Iec104Leg("station", limits.K, limits.W);
        _commands = new Iec104Commands(limits.PendingPerConnection);
        // Every I-frame the client may send unacknowledged (k), and a STOPDT act behind them.
        _heldIFramesMax = limits.K;
        _t1Span = limits.T1;
        _t1 = Ticks(limits.T1);
        _t2 = Ticks(limits.T2);
        _t3 = Ticks(limits.T3);
        _terminationWait = _t1;
    }

    private static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    public IStreamFramer ResponseFramer => Iec104Framer.Instance;

    public ClientStep Inspect(Span<byte> input)
    {
        var status = Iec104Framer.Instance.TryDelimit(input, out int consumed, out var fault);
        if (status == System.Buffers.OperationStatus.NeedMoreData)
        {
            return new ClientStep(ClientAction.NeedMoreData, 0);
        }
        if (status == System.Buffers.OperationStatus.InvalidData)
        {
            Malformed(input[..Math.Min(input.Length, Iec104Limits.MaxFrame)], Iec104Framer.Instance.Describe(fault));
            return new ClientStep(ClientAction.Close, 0);
        }
        var frame = input[..consumed];
        long now = _connection.ReadAt;
        _client.Received(now);
        if (!_judgedSource)
        {
            _judgedSource = true;
            var connect = Inspector.InspectIec104Connect(_listener.Policy.Current, _connection.Source);
            if (connect.Kind == InspectionKind.Denied)
            {
                _listener.Counters.CountDenied();
                Audit(frame, AuditEventKind.Denied, null, "no rule for this source: closed before STARTDT", closed: true);
                return new ClientStep(ClientAction.Close, consumed);
            }
            if (connect.Kind == InspectionKind.WouldDeny)
            {
                Audit(frame, AuditEventKind.WouldDeny, null, "no rule for this source");
            }
        }
        if (!Iec104Apdu.TryParse(frame, out var apdu, out fault))
        {
            Malformed(frame, "IEC 104: " + Iec104FrameErrors.Describe(fault));
            return new ClientStep(ClientAction.Close, 0);
        }
        if (apdu.Format != Iec104Format.U && !_client.ApplyAcknowledgement(apdu.ReceiveSequence, now))
        {
            Malformed(frame, $"IEC 104: the client's N(R) {apdu.ReceiveSequence} acknowledges an I-frame the gateway never sent");
            return new ClientStep(ClientAction.Close, 0);
        }
        return apdu.Format switch
        {
            Iec104Format.S => _deferredCount > 0 ? LoopSend(PendingSend.ClientDeferred, 0, consumed, ClientAction.Reply) : new ClientStep(ClientAction.Nothing, consumed),
            Iec104Format.U => ClientU(frame, apdu.UFunction, consumed),
            _ => Judged(ClientI(frame, apdu, consumed, now)),
        };
    }

    /// <summary>The client's I-frame is answered, dropped or refused here: it counts as passed on (acknowledgeable); a forwarded one once it is sent or held back.</summary>
    private ClientStep Judged(ClientStep step)
    {
        if (_loopSend != PendingSend.StationIFrame)
        {
            _client.Judged();
        }
        return step;
    }

    private ClientStep ClientU(ReadOnlySpan<byte> frame, Iec104UFunction function, int consumed)
    {
        switch (function)
        {
            case Iec104UFunction.TestFrAct:
                // Each leg answers its own TESTFR: the RTU never sees the client's.
                return LoopSend(PendingSend.ClientU, Iec104Writer.WriteU(_toClientFromLoop, Iec104UFunction.TestFrCon), consumed, ClientAction.Reply);
            case Iec104UFunction.TestFrCon:
                _client.TestConfirmed();
                return new ClientStep(ClientAction.Nothing, consumed);
            case Iec104UFunction.StartDtAct when _transfer is DataTransfer.Stopped:
                _transfer = DataTransfer.Starting;
                _connection.MarkAllowed();
                return LoopSend(PendingSend.StationU, Iec104Writer.WriteU(_toStationFromLoop, Iec104UFunction.StartDtAct), consumed, ClientAction.Forward);
            case Iec104UFunction.StopDtAct when _transfer is DataTransfer.Started or DataTransfer.Starting:
                _transfer = DataTransfer.Stopping;
                return LoopSend(PendingSend.StationU, Iec104Writer.WriteU(_toStationFromLoop, Iec104UFunction.StopDtAct), consumed, ClientAction.Forward);
            case Iec104UFunction.StartDtAct or Iec104UFunction.StopDtAct:
                // A repeated STARTDT while started (or STOPDT while stopped): confirmed as a station does, nothing changes.
                var con = function == Iec104UFunction.StartDtAct ? Iec104UFunction.StartDtCon : Iec104UFunction.StopDtCon;
                return LoopSend(PendingSend.ClientU, Iec104Writer.WriteU(_toClientFromLoop, con), consumed, ClientAction.Reply);
            default:
                Malformed(frame, $"IEC 104: the client sent {Iec104UFunctions.Name(function)}, which only a station sends");
                return new ClientStep(ClientAction.Close, 0);
        }
    }

    private ClientStep ClientI(ReadOnlySpan<byte> frame, in Iec104Apdu apdu, int consumed, long now)
    {
        if (!_client.ReceiveIFrame(apdu.SendSequence, untilJudged: true))
        {
            Malformed(frame, $"IEC 104: sequence error: the client's N(S) is {apdu.SendSequence}, expected {_client.ReceiveNext}");
            return new ClientStep(ClientAction.Close, 0);
        }
        if (_transfer != DataTransfer.Started)
        {
            Malformed(frame, "IEC 104: an I-frame before the station confirmed STARTDT");
            return new ClientStep(ClientAction.Close, 0);
        }
        if (!Iec104Asdu.TryParse(apdu.Asdu, out var asdu, out var fault))
        {
            Malformed(frame, "IEC 104 ASDU: " + Iec104FrameErrors.Describe(fault));
            return new ClientStep(ClientAction.Close, 0);
        }
        _listener.Observer?.OnIec104Request(_listener, _connection.Source, _connection.SourcePort, asdu, now);
        var policy = _listener.Policy.Current;
        // The order of judgement is Inspector.InspectIec104's, which replay asks too.
        var inspection = Inspector.InspectIec104(policy, _connection.Source, asdu, _selects, now);
        var verdict = inspection.Verdict;
        ulong point = asdu.IsCommand ? Iec104Command.PointOf(asdu) : Iec104Command.NoKey;
        if (asdu.IsCommand && !asdu.IsSelect)
        {
            // Judged: this execute, allowed or refused, ends the object's selection (one execute per select), as the
            // station's own does. A client refused here must select again, as it would after the station's refusal.
            _selects.EndSelection(point);
        }
        switch (inspection.Kind)
        {
            case InspectionKind.Malformed:
                Malformed(frame, "IEC 104 ASDU: malformed");
                return new ClientStep(ClientAction.Close, 0);
            case InspectionKind.Denied:
                return Refuse(frame, asdu, policy, verdict, inspection.RefusalCode, consumed);
            case InspectionKind.WouldDeny:
                Audit(frame, AuditEventKind.WouldDeny, RuleName(policy, verdict), Reason(verdict, inspection.RefusalCode), asdu: asdu);
                break;
        }
        bool tracked = Iec104Commands.Tracks(asdu);
        bool select = tracked && asdu.IsSelect && policy.RequiresSelect(verdict.RuleIndex);
        // Its response-timeout starts when it goes to the station (at once, or when it is no longer held back).
        if (tracked && !_commands.TryAdd(asdu, select, Iec104Commands.NotSent))
        {
            _listener.Counters.CountDenied();
            Audit(frame, AuditEventKind.PendingLimit, null, "too many commands outstanding on this connection", asdu: asdu);
            return WriteRefusal(asdu, Iec104Refusals.ConfirmationCause(asdu.Cause), OnDeny.Exception, consumed);
        }
        if (verdict.IsAllowed && asdu.IsSelect && policy.RequiresSelect(verdict.RuleIndex))
        {
            _selects.Selected(Iec104Command.KeyOf(asdu), point, now);
        }
        _listener.Counters.CountAllowed();
        _connection.MarkAllowed();
        apdu.Asdu.CopyTo(_toStationFromLoop.AsSpan(Iec104Limits.ApciLength));
        _loopSequence = apdu.SendSequence;
        _loopTracked = tracked;
        return LoopSend(PendingSend.StationIFrame, apdu.Asdu.Length, consumed, ClientAction.Forward);
    }

    private ClientStep Refuse(ReadOnlySpan<byte> frame, in Iec104Asdu asdu, CompiledPolicy policy, Verdict verdict, byte cause, int consumed)
    {
        _listener.Counters.CountDenied();
        var onDeny = policy.OnDeny;
        Audit(frame, AuditEventKind.Denied, RuleName(policy, verdict), Reason(verdict, cause), closed: onDeny == OnDeny.Close, asdu: asdu, refusalCause: cause);
        return WriteRefusal(asdu, cause, onDeny, consumed);
    }

    private ClientStep WriteRefusal(in Iec104Asdu asdu, byte cause, OnDeny onDeny, int consumed)
    {
        switch (onDeny)
        {
            case OnDeny.Drop:
                // Nothing is answered, but the client's I-frame still counts: it is acknowledged in time.
                return _client.MustAcknowledge ? LoopSend(PendingSend.ClientS, 0, consumed, ClientAction.Reply) : new ClientStep(ClientAction.Nothing, consumed);
            case OnDeny.Close:
                return new ClientStep(ClientAction.Close, consumed);
        }
        // The station's answer: the same ASDU, P/N = 1 and the cause; numbered when it is sent.
        Iec104Writer.WriteMirror(_toClientFromLoop, 0, 0, asdu.Bytes, cause, negative: true);
        return LoopSend(PendingSend.ClientIFrame, asdu.Bytes.Length, consumed, ClientAction.Reply);
    }

    private ClientStep LoopSend(PendingSend send, int length, int consumed, ClientAction action)
    {
        _loopSend = send;
        _loopLength = length;
        return new ClientStep(action, consumed, 0, length);
    }

    public async ValueTask ReplyAsync(ClientStep step)
    {
        var send = _loopSend;
        _loopSend = PendingSend.None;
        int length = _loopLength;
        if (send == PendingSend.ClientIFrame && _deferredCount > 0)
        {
            // Behind the refusals still waiting: _toClientFromLoop is about to be reused for them.
            Defer(length);
            send = PendingSend.None;
        }
        await SendDeferredAsync();
        switch (send)
        {
            case PendingSend.ClientIFrame:
                await SendRefusalAsync(length);
                break;
            case PendingSend.ClientU:
                await _connection.SendToClientAsync(_toClientFromLoop.AsMemory(0, Iec104Limits.ApciLength));
                break;
            case PendingSend.ClientS:
                await _connection.SendToClientAsync(new SFrame(_client), _toClientFromLoop);
                break;
        }
        if (_client.MustAcknowledge)
        {
            await _connection.SendToClientAsync(new SFrame(_client), _toClientFromLoop);
        }
    }

    public async ValueTask ForwardAsync(ReadOnlyMemory<byte> frame, ClientStep step)
    {
        var send = _loopSend;
        _loopSend = PendingSend.None;
        await SendDeferredAsync();
        bool sent = send switch
        {
            PendingSend.StationIFrame => await ForwardIFrameToStationAsync(frame, _loopLength),
            PendingSend.StationU => await ForwardUToStationAsync(frame),
            _ => true,
        };
        if (!sent && !_connection.Closed.IsCancellationRequested)
        {
            _listener.Audit.Write(Event(AuditEventKind.UpstreamUnreachable, null, "station unreachable or not acknowledging (t1)") with { ConnectionClosed = true });
            _ = CloseAsync();
            return;
        }
        if (_client.MustAcknowledge)
        {
            await _connection.SendToClientAsync(new SFrame(_client), _toClientFromLoop);
        }
    }

    /// <summary>
    /// The receive loop's refusal in <see cref="_toClientFromLoop"/>: sent now when the client's window (k) has room,
    /// else deferred until the client's acknowledgement, which this loop has yet to read, opens it.
    /// </summary>
    private async ValueTask SendRefusalAsync(int asduLength)
    {
        if (_client.TryTakeWindow())
        {
            await _connection.SendToClientAsync(new IFrame(_client, asduLength), _toClientFromLoop);
            return;
        }
        Defer(asduLength);
    }

    private void Defer(int asduLength)
    {
        if (_deferredCount == DeferredMax)
        {
            if (!_connection.Closed.IsCancellationRequested)
            {
                _listener.Audit.Write(Event(AuditEventKind.IdleTimeout, null, $"the client sent {DeferredMax} refused commands more while not acknowledging the gateway's answers (k)") with { ConnectionClosed = true });
                _ = CloseAsync();
            }
            return;
        }
        int slot = (_deferredHead + _deferredCount) % DeferredMax;
        _toClientFromLoop.AsSpan(Iec104Limits.ApciLength, asduLength).CopyTo(_deferred.AsSpan(slot * Iec104Commands.MaxAsdu));
        _deferredLength[slot] = asduLength;
        _deferredCount++;
    }

    /// <summary>Sends the deferred refusals, oldest first, while the client's window has room (its t1 runs meanwhile).</summary>
    private async ValueTask SendDeferredAsync()
    {
        while (_deferredCount > 0 && !_connection.Closed.IsCancellationRequested && _client.TryTakeWindow())
        {
            int length = _deferredLength[_deferredHead];
            _deferred.AsSpan(_deferredHead * Iec104Commands.MaxAsdu, length).CopyTo(_toClientFromLoop.AsSpan(Iec104Limits.ApciLength));
            _deferredHead = (_deferredHead + 1) % DeferredMax;
            _deferredCount--;
            await _connection.SendToClientAsync(new IFrame(_client, length), _toClientFromLoop);
        }
    }

    /// <summary>Sends the ASDU at <paramref name="buffer"/>[6..] to the client as the next I-frame of the client leg, waiting for its window (k) up to t1.</summary>
    private async ValueTask SendIFrameToClientAsync(byte[] buffer, int asduLength)
    {
        if (!await _client.TakeWindowAsync(_t1Span, _connection.Closed))
        {
            ClientWindowExpired();
            return;
        }
        await _connection.SendToClientAsync(new IFrame(_client, asduLength), buffer);
    }

    /// <summary>No room opened in the client's window (k) within t1: closed, unless it already was.</summary>
    private void ClientWindowExpired()
    {
        if (!_connection.Closed.IsCancellationRequested)
        {
            _listener.Audit.Write(Event(AuditEventKind.IdleTimeout, null, "t1: the client did not acknowledge within t1 (k frames unacknowledged)") with { ConnectionClosed = true });
            _ = CloseAsync();
        }
    }

    /// <summary>
    /// The client's allowed ASDU at <see cref="_toStationFromLoop"/>[6..] to the RTU as the next I-frame of the station leg:
    /// at once when the station's window (k) has room and nothing is held back, else held back (never waited for: see
    /// <see cref="_held"/>). False when it cannot be sent, or the client broke k (then closed).
    /// </summary>
    private async ValueTask<bool> ForwardIFrameToStationAsync(ReadOnlyMemory<byte> frame, int asduLength)
    {
        if (Volatile.Read(ref _heldCount) == 0 && _station.TryTakeWindow())
        {
            _client.Judged();
            if (_loopTracked)
            {
                StartResponseClock();
            }
            return await SendToStationAsync(new IFrame(_station, asduLength), _toStationFromLoop);
        }
        if (!Hold(frame.Span, isIFrame: true, _toStationFromLoop.AsSpan(Iec104Limits.ApciLength, asduLength), _loopSequence, _loopTracked))
        {
            return false;
        }
        _client.Judged();
        return await SendHeldAsync();
    }

    /// <summary>The client's STARTDT/STOPDT act at <see cref="_toStationFromLoop"/>[..6] to the RTU, behind any frame held back.</summary>
    private async ValueTask<bool> ForwardUToStationAsync(ReadOnlyMemory<byte> frame)
    {
        if (Volatile.Read(ref _heldCount) == 0)
        {
            return await SendToStationAsync(_toStationFromLoop.AsMemory(0, Iec104Limits.ApciLength));
        }
        return Hold(frame.Span, isIFrame: false, _toStationFromLoop.AsSpan(0, Iec104Limits.ApciLength), _client.ReceiveNext, tracked: false) && await SendHeldAsync();
    }

    /// <summary>
    /// Holds back a frame for the station; from <paramref name="sendSequence"/> on the client's frames are not acknowledged
    /// while it is the oldest held. False when the client sent more than k I-frames that the gateway had not
    /// acknowledged (it holds back only frames it has not acknowledged): a protocol violation, closed.
    /// </summary>
    private bool Hold(ReadOnlySpan<byte> frame, bool isIFrame, ReadOnlySpan<byte> bytes, ushort sendSequence, bool tracked)
    {
        lock (_heldGate)
        {
            if (isIFrame ? _heldIFrames == _heldIFramesMax : _heldCount == _heldIFramesMax + 1)
            {
                Malformed(frame, $"IEC 104: the client sent more than k = {_heldIFramesMax} I-frames the gateway had not acknowledged");
                _ = CloseAsync();
                return false;
            }
            int slots = _held is null ? 0 : _held.Length / HeldSlot;
            if (_heldCount == slots)
            {
                // Grow in order (oldest first), doubling up to what k allows.
                var grown = new byte[Math.Min(_heldIFramesMax + 1, Math.Max(4, slots * 2)) * HeldSlot];
                for (int i = 0; i < _heldCount; i++)
                {
                    _held.AsSpan(((_heldHead + i) % slots) * HeldSlot, HeldSlot).CopyTo(grown.AsSpan(i * HeldSlot));
                }
                _held = grown;
                _heldHead = 0;
                slots = grown.Length / HeldSlot;
            }
            var slot = _held.AsSpan(((_heldHead + _heldCount) % slots) * HeldSlot, HeldSlot);
            slot[0] = isIFrame ? (byte)0 : (byte)1;
            slot[1] = (byte)bytes.Length;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(slot[2..], sendSequence);
            slot[4] = tracked ? (byte)1 : (byte)0;
            bytes.CopyTo(slot[HeldHeader..]);
            if (_heldCount == 0)
            {
                _client.HoldFrom(sendSequence);
            }
            _heldIFrames += isIFrame ? 1 : 0;
            Volatile.Write(ref _heldCount, _heldCount + 1);
            return true;
        }
    }

    /// <summary>
    /// Sends what is held back for the station, oldest first, while its window (k) has room; called by the receive loop
    /// after holding a frame and by the upstream loop after the station's acknowledgement. The client's frames become
    /// acknowledgeable as they go. False when the station cannot be written.
    /// </summary>
    private async ValueTask<bool> SendHeldAsync()
    {
        if (Volatile.Read(ref _heldCount) == 0)
        {
            return true;
        }
        if (!await EnterStationSendAsync())
        {
            return false;
        }
        try
        {
            while (true)
            {
                int length;
                lock (_heldGate)
                {
                    if (_heldCount == 0)
                    {
                        break;
                    }
                    int slots = _held!.Length / HeldSlot;
                    var slot = _held.AsSpan(_heldHead * HeldSlot, HeldSlot);
                    bool isIFrame = slot[0] == 0;
                    if (isIFrame && !_station.TryTakeWindow())
                    {
                        break;
                    }
                    int size = slot[1];
                    if (slot[4] != 0)
                    {
                        StartResponseClock();
                    }
                    slot.Slice(HeldHeader, size).CopyTo(_toStationFromHeld.AsSpan(isIFrame ? Iec104Limits.ApciLength : 0));
                    length = isIFrame ? new IFrame(_station, size).Write(_toStationFromHeld) : size;
                    _heldHead = (_heldHead + 1) % slots;
                    _heldIFrames -= isIFrame ? 1 : 0;
                    Volatile.Write(ref _heldCount, _heldCount - 1);
                    _client.HoldFrom(_heldCount == 0 ? -1 : System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(_held.AsSpan(_heldHead * HeldSlot + 2)));
                }
                if (await _connection.SendUpstreamAsync(_toStationFromHeld.AsMemory(0, length)) <= 0)
                {
                    return false;
                }
            }
        }
        finally
        {
            _stationSend.Release();
        }
        return true;
    }

    /// <summary>The oldest tracked command not sent yet is going to the station: its response-timeout starts now.</summary>
    private void StartResponseClock() => _commands.Sent(Stopwatch.GetTimestamp() + _listener.ResponseTimeoutTicks);

    /// <summary>Takes the station leg's send lock, under which its frames are numbered and written; false when the connection closed first.</summary>
    private async ValueTask<bool> EnterStationSendAsync()
    {
        try
        {
            await _stationSend.WaitAsync(_connection.Closed);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// Writes <paramref name="frame"/> (an I-frame whose window slot is taken, or an S-frame) into <paramref name="buffer"/>
    /// under the station's send lock, numbered there, and sends it; false when it cannot be sent.
    /// </summary>
    private async ValueTask<bool> SendToStationAsync<TFrame>(TFrame frame, byte[] buffer)
        where TFrame : struct, IClientReply
    {
        if (!await EnterStationSendAsync())
        {
            return false;
        }
        try
        {
            int length = frame.Write(buffer);
            return await _connection.SendUpstreamAsync(buffer.AsMemory(0, length)) > 0;
        }
        finally
        {
            _stationSend.Release();
        }
    }

    /// <summary>Sends an unnumbered frame (a U-frame) to the station under its send lock; false when it cannot be sent.</summary>
    private async ValueTask<bool> SendToStationAsync(ReadOnlyMemory<byte> frame)
    {
        if (!await EnterStationSendAsync())
        {
            return false;
        }
        try
        {
            return await _connection.SendUpstreamAsync(frame) > 0;
        }
        finally
        {
            _stationSend.Release();
        }
    }

    public async ValueTask OnResponseAsync(Memory<byte> packet, int generation)
    {
        long now = Stopwatch.GetTimestamp();
        _station.Received(now);
        var action = StationFrame(packet.Span, now, out int asduLength);
        if (Volatile.Read(ref _heldCount) > 0)
        {
            // The station's acknowledgement may have opened its window for the client's frames held back.
            await SendHeldAsync();
            if (_client.MustAcknowledge)
            {
                await _connection.SendToClientAsync(new SFrame(_client), _toClientAckFromUpstream);
            }
        }
        switch (action)
        {
            case StationAction.ForwardAsdu:
                _listener.Counters.CountResponse();
                await CollectIFrameForClientAsync(asduLength);
                break;
            case StationAction.TestFrCon:
                await SendToStationAsync(_toStationFromUpstream.AsMemory(0, Iec104Limits.ApciLength));
                break;
            case StationAction.ClientU:
                await CollectForClientAsync(Iec104Limits.ApciLength);
                break;
        }
        if (_stationFaulted)
        {
            // What the read carried before the fault still reaches the client, as it did frame by frame; then both close.
            _stationFaulted = false;
            await FlushToClientAsync();
            _ = CloseAsync();
        }
        // The S-frame that w I-frames of the RTU call for goes at the end of the read (OnReadCompleteAsync), or
        // before the upstream loop waits for the client's window.
    }

    /// <summary>
    /// The end of one read of the RTU's: the frames it produced for the client go in one write, numbered in order under the
    /// client's send lock, then the RTU gets its S-frame if w of its I-frames are unacknowledged.
    /// </summary>
    public ValueTask OnReadCompleteAsync(int generation) => SendCollectedAsync();

    /// <summary>The collected frames to the client in one write, then the RTU's S-frame if one is due (w).</summary>
    private async ValueTask SendCollectedAsync()
    {
        await FlushToClientAsync();
        if (_station.MustAcknowledge)
        {
            await SendToStationAsync(new SFrame(_station), _toStationFromUpstream);
        }
    }

    /// <summary>
    /// The RTU's ASDU at <see cref="_toClientFromStation"/>[6..] joins the frames collected for the client, with its slot of
    /// the client's window (k) taken now and its numbers given when it is sent. When the window is full, what is collected
    /// goes first (the client can only acknowledge frames it has) with the RTU's due S-frame, then this waits for room up
    /// to t1, as a single frame did.
    /// </summary>
    private async ValueTask CollectIFrameForClientAsync(int asduLength)
    {
        if (!_client.TryTakeWindow())
        {
            await SendCollectedAsync();
            if (!await _client.TakeWindowAsync(_t1Span, _connection.Closed))
            {
                ClientWindowExpired();
                return;
            }
        }
        int length = Iec104Limits.ApciLength + asduLength;
        if (_collectedLength + length > CollectedCapacity)
        {
            await FlushToClientAsync();
        }
        var frame = _toClientCollected.AsSpan(_collectedLength, length);
        frame[0] = Iec104Limits.StartOctet;
        frame[1] = (byte)(Iec104Limits.MinLength + asduLength);
        // Control field 0: an I-frame (bit 0 clear), numbered by CollectedFrames under the send lock.
        frame[2..Iec104Limits.ApciLength].Clear();
        _toClientFromStation.AsSpan(Iec104Limits.ApciLength, asduLength).CopyTo(frame[Iec104Limits.ApciLength..]);
        _collectedLength += length;
    }

    /// <summary>The U-frame at <see cref="_toClientFromStation"/>[..6] (STARTDT or STOPDT con) joins the frames collected for the client, in order.</summary>
    private async ValueTask CollectForClientAsync(int length)
    {
        if (_collectedLength + length > CollectedCapacity)
        {
            await FlushToClientAsync();
        }
        _toClientFromStation.AsSpan(0, length).CopyTo(_toClientCollected.AsSpan(_collectedLength));
        _collectedLength += length;
    }

    /// <summary>Sends the frames collected for the client in one write (nothing when none are).</summary>
    private ValueTask FlushToClientAsync()
    {
        int length = _collectedLength;
        if (length == 0)
        {
            return ValueTask.CompletedTask;
        }
        _collectedLength = 0;
        return _connection.SendToClientAsync(new CollectedFrames(_client, length), _toClientCollected);
    }

    private enum StationAction : byte
    {
        Nothing = 0,
        /// <summary>The ASDU in _toClientFromStation[6..] goes to the client.</summary>
        ForwardAsdu,
        /// <summary>Answer the RTU's TESTFR act (in _toStationFromUpstream).</summary>
        TestFrCon,
        /// <summary>A STARTDT/STOPDT con for the client (in _toClientFromStation).</summary>
        ClientU,
    }

    /// <summary>Judges one APDU of the RTU; synchronous (spans).</summary>
    private StationAction StationFrame(ReadOnlySpan<byte> frame, long now, out int asduLength)
    {
        asduLength = 0;
        if (!Iec104Apdu.TryParse(frame, out var apdu, out var fault))
        {
            StationFault("the station sent a malformed APDU: " + Iec104FrameErrors.Describe(fault));
            return StationAction.Nothing;
        }
        if (apdu.Format != Iec104Format.U && !_station.ApplyAcknowledgement(apdu.ReceiveSequence, now))
        {
            StationFault($"the station's N(R) {apdu.ReceiveSequence} acknowledges an I-frame the gateway never sent");
            return StationAction.Nothing;
        }
        if (apdu.Format == Iec104Format.S)
        {
            return StationAction.Nothing;
        }
        if (apdu.Format == Iec104Format.U)
        {
            return StationU(apdu.UFunction);
        }
        if (!_station.ReceiveIFrame(apdu.SendSequence))
        {
            StationFault($"sequence error: the station's N(S) is {apdu.SendSequence}, expected {_station.ReceiveNext}");
            return StationAction.Nothing;
        }
        if (!Iec104Asdu.TryParse(apdu.Asdu, out var asdu, out fault) || asdu.Status != Iec104AsduStatus.WellFormed)
        {
            // Acknowledged on the station leg (its numbering stays intact) but never carried to the client.
            _listener.Counters.CountResponseMismatch();
            _listener.Audit.Write(Event(AuditEventKind.ResponseMismatch, null,
                asdu.Status == Iec104AsduStatus.UnknownType ? $"the station sent type {asdu.Type}, which the gateway cannot check: dropped"
                : "the station sent a malformed ASDU: dropped (" + Iec104FrameErrors.Describe(fault) + ")"));
            return StationAction.Nothing;
        }
        // Between STOPDT act and con the station still finishes what it had to send (the confirmations and
        // terminations of commands outstanding: IEC 60870-5-104 5.3); only before STARTDT con, and after STOPDT con, is an ASDU dropped.
        if (_transfer is not (DataTransfer.Started or DataTransfer.Stopping))
        {
            _listener.Counters.CountResponseMismatch();
            _listener.Audit.Write(Event(AuditEventKind.UnmatchedResponse, null, "the station sent an ASDU before STARTDT was confirmed: dropped") with { Iec104 = Fields(asdu) });
            return StationAction.Nothing;
        }
        byte cause = asdu.Cause;
        bool answer = cause is 7 or 9 or 10 || (asdu.Negative && cause is >= 44 and <= 47);
        if (answer)
        {
            if (!_commands.TryMatch(asdu.Type, cause, asdu.Negative, asdu.CommonAddress, asdu.FirstIoa, now, _terminationWait, out var command))
            {
                _listener.Counters.CountResponseMismatch();
                _listener.Audit.Write(Event(AuditEventKind.UnmatchedResponse, Iec104Types.Name(asdu.Type),
                    $"the station's {Iec104Causes.Name(cause)}{(asdu.Negative ? " (negative)" : "")} answers no command outstanding on this connection: dropped") with { Iec104 = Fields(asdu) });
                return StationAction.Nothing;
            }
            if (command.IsSelect && cause == 7)
            {
                _selects.Confirmed(command.CommandKey, positive: !asdu.Negative, now);
            }
        }
        else if (cause == Iec104Refusals.CauseRequest)
        {
            _commands.ReadAnswered(asdu.CommonAddress, asdu.FirstIoa);
        }
        asdu.Bytes.CopyTo(_toClientFromStation.AsSpan(Iec104Limits.ApciLength));
        asduLength = asdu.Bytes.Length;
        return StationAction.ForwardAsdu;
    }

    private StationAction StationU(Iec104UFunction function)
    {
        switch (function)
        {
            case Iec104UFunction.TestFrAct:
                Iec104Writer.WriteU(_toStationFromUpstream, Iec104UFunction.TestFrCon);
                return StationAction.TestFrCon;
            case Iec104UFunction.TestFrCon:
                _station.TestConfirmed();
                return StationAction.Nothing;
            case Iec104UFunction.StartDtCon when _transfer is DataTransfer.Starting or DataTransfer.Stopping:
                // Stopping: the client sent STOPDT act before this con arrived; it still waits for this con, and the
                // STOPDT con follows (the station answers in order). Relayed, and the transfer stays stopping.
                if (_transfer == DataTransfer.Starting)
                {
                    _transfer = DataTransfer.Started;
                }
                Iec104Writer.WriteU(_toClientFromStation, Iec104UFunction.StartDtCon);
                return StationAction.ClientU;
            case Iec104UFunction.StopDtCon when _transfer == DataTransfer.Stopping:
                _transfer = DataTransfer.Stopped;
                // A select does not outlive the data transfer it was confirmed in (a station drops it too).
                _selects.Clear();
                Iec104Writer.WriteU(_toClientFromStation, Iec104UFunction.StopDtCon);
                return StationAction.ClientU;
            default:
                StationFault($"the station sent {Iec104UFunctions.Name(function)}, which it has no reason to send now");
                return StationAction.Nothing;
        }
    }

    /// <summary>Audits a fault of the RTU's; <see cref="OnResponseAsync"/> closes the connection once the read's collected frames are sent.</summary>
    private void StationFault(string reason)
    {
        _listener.Counters.CountResponseMismatch();
        _listener.Audit.Write(Event(AuditEventKind.UpstreamLost, null, reason) with { ConnectionClosed = true });
        _stationFaulted = true;
    }

    public async ValueTask OnUpstreamLost(int generation, UpstreamLoss loss, FrameFault fault)
    {
        // Bytes that are not IEC 104 end a read early: the frames before them still reach the client first.
        await FlushToClientAsync();
        _listener.Audit.Write(Event(AuditEventKind.UpstreamLost, null, loss == UpstreamLoss.InvalidFraming
            ? "the station sent bytes that are not IEC 104: " + ResponseFramer.Describe(fault)
            : "station connection lost: the client's connection is closed (its sequence numbers went with it)") with { ConnectionClosed = true });
        // The RTU's numbering went with its TCP connection: the client reconnects and starts again, as it would direct.
        _ = CloseAsync();
    }

    private Task CloseAsync()
    {
        _client.Close();
        _station.Close();
        return _connection.CloseAsync();
    }

    /// <summary>Always: the timers of both legs run for the whole connection (the sweeper asks every 50 ms).</summary>
    public bool HasPending => true;

    public async ValueTask AnswerExpiredAsync(long now)
    {
        if (_connection.Closed.IsCancellationRequested)
        {
            return;
        }
        if (_client.T1Expired(now, _t1) || _station.T1Expired(now, _t1))
        {
            var leg = _client.T1Expired(now, _t1) ? _client : _station;
            _listener.Audit.Write(Event(AuditEventKind.IdleTimeout, null, $"t1: the {leg.Name} did not acknowledge within t1") with { ConnectionClosed = true });
            _ = CloseAsync();
            return;
        }
        // Commands the station never confirmed: the client gets the negative confirmation a station gives.
        while (_commands.TryTakeExpired(now, out var expired, _expiredAsdu))
        {
            if (expired.Confirmed)
            {
                continue;
            }
            _listener.Counters.CountTimeout();
            _listener.Audit.Write(Event(AuditEventKind.ResponseTimeout, Iec104Types.Name(expired.Type), "the station did not confirm within response-timeout: negative confirmation sent")
                with { Iec104 = new Iec104Fields(expired.CommonAddress, expired.Ioa, expired.Cause) });
            byte cause = expired.Type == 102 ? Iec104Refusals.CauseRequest
                : Iec104Refusals.ConfirmationCause(expired.Cause);
            Iec104Writer.WriteMirror(_toClientFromSweeper, 0, 0, _expiredAsdu.AsSpan(0, expired.AsduLength), cause, negative: true);
            await SendIFrameToClientAsync(_toClientFromSweeper, expired.AsduLength);
        }
        if (_client.T2Due(now, _t2))
        {
            await _connection.SendToClientAsync(new SFrame(_client), _toClientFromSweeper);
        }
        if (_station.T2Due(now, _t2))
        {
            await SendToStationAsync(new SFrame(_station), _toStationFromSweeper);
        }
        if (_client.T3Due(now, _t3))
        {
            _client.TestSent(now);
            Iec104Writer.WriteU(_toClientFromSweeper, Iec104UFunction.TestFrAct);
            await _connection.SendToClientAsync(_toClientFromSweeper.AsMemory(0, Iec104Limits.ApciLength));
        }
        if (_transfer != DataTransfer.Stopped && _station.T3Due(now, _t3))
        {
            _station.TestSent(now);
            Iec104Writer.WriteU(_toStationFromSweeper, Iec104UFunction.TestFrAct);
            await SendToStationAsync(_toStationFromSweeper.AsMemory(0, Iec104Limits.ApciLength));
        }
    }

    /// <summary>An I-frame numbered for its leg when it is written, under that leg's send lock: numbers go out in order.</summary>
    private readonly struct IFrame(Iec104Leg leg, int asduLength) : IClientReply
    {
        public int Write(Span<byte> destination)
        {
            var (ns, nr) = leg.NextIFrame(Stopwatch.GetTimestamp());
            destination[0] = Iec104Limits.StartOctet;
            destination[1] = (byte)(4 + asduLength);
            destination[2..Iec104Limits.ApciLength].Clear();
            Iec104Writer.SetControl(destination[..(Iec104Limits.ApciLength + asduLength)], ns, nr);
            return Iec104Limits.ApciLength + asduLength;
        }
    }

    /// <summary>
    /// The frames collected from one read of the RTU's, in order, written under the client's send lock: each I-frame
    /// (control field still 0) gets the next N(S) and the current N(R) there, so numbers go out in send order whichever
    /// flow sends; U-frames are left as they are.
    /// </summary>
    private readonly struct CollectedFrames(Iec104Leg leg, int length) : IClientReply
    {
        public int Write(Span<byte> destination)
        {
            long now = Stopwatch.GetTimestamp();
            for (int offset = 0; offset < length; offset += Iec104Limits.PrefixLength + destination[offset + 1])
            {
                if ((destination[offset + 2] & 0x01) == 0)
                {
                    var (ns, nr) = leg.NextIFrame(now);
                    Iec104Writer.SetControl(destination.Slice(offset, Iec104Limits.ApciLength), ns, nr);
                }
            }
            return length;
        }
    }

    /// <summary>An S-frame acknowledging every I-frame received on its leg, written under that leg's send lock.</summary>
    private readonly struct SFrame(Iec104Leg leg) : IClientReply
    {
        public int Write(Span<byte> destination)
        {
            return Iec104Writer.WriteS(destination, leg.Acknowledge(Stopwatch.GetTimestamp()));
        }
    }

    private static string? RuleName(CompiledPolicy policy, Verdict verdict) =>
        verdict.RuleIndex >= 0 && verdict.RuleIndex < policy.RuleNames.Count ? policy.RuleNames[verdict.RuleIndex] : null;

    private static string Reason(Verdict verdict, byte cause) =>
        $"{(verdict.Reason == DenyReason.SourceOrUnit ? "no rule for this source and common address" : AuditEvents.Reason(verdict.Reason))} (cause {cause}: {Iec104Causes.Name(cause)})";

    private static Iec104Fields Fields(in Iec104Asdu asdu) => new(asdu.CommonAddress, asdu.FirstIoa, asdu.Cause);

    private void Malformed(ReadOnlySpan<byte> frame, string reason)
    {
        _listener.Counters.CountMalformed();
        var malformed = Event(AuditEventKind.Malformed, null, reason) with { ConnectionClosed = true };
        _listener.Audit.Write(malformed);
        _connection.Tap?.Record(frame, malformed, _connection.StreamOffset);
    }

    private void Audit(ReadOnlySpan<byte> frame, AuditEventKind kind, string? rule, string reason, bool closed = false, in Iec104Asdu asdu = default, byte refusalCause = 0)
    {
        var e = Event(kind, asdu.Bytes.IsEmpty ? null : Iec104Types.Name(asdu.Type), reason) with
        {
            Rule = rule,
            ConnectionClosed = closed,
            FunctionCode = asdu.Bytes.IsEmpty ? (short)-1 : asdu.Type,
            Iec104 = asdu.Bytes.IsEmpty ? default : Fields(asdu) with { RefusalCause = refusalCause },
        };
        _listener.Audit.Write(e);
        _connection.Tap?.Record(frame, e, _connection.StreamOffset);
    }

    private AuditEvent Event(AuditEventKind kind, string? typeName, string reason) =>
        _connection.Event(kind, -1, -1, reason) with { Protocol = ProtocolName, FunctionName = typeName };
}
