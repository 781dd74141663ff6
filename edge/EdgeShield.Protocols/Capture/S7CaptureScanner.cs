using System.Buffers;
using System.Buffers.Binary;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Protocols.Capture;

/// <summary>Why a stream direction of an S7 capture stopped being read (<see cref="IS7CaptureObserver.OnMalformed"/>).</summary>
public enum S7CaptureFault : byte
{
    None = 0,
    /// <summary>The bytes do not frame as TPKT + COTP class 0 (<see cref="S7FramingError"/> says how).</summary>
    Framing,
    /// <summary>A TPKT packet longer than <see cref="S7CaptureScanner.MaxPacket"/>, the largest the gateway negotiates.</summary>
    PacketTooLarge,
    /// <summary>DT fragments that add up to more than the PDU size in force (960, then the negotiated size).</summary>
    PduTooLarge,
    /// <summary>A COTP TPDU out of place: a second CR, a CC or ER from the client, data from a client before its CR was confirmed.</summary>
    CotpOutOfPlace,
    /// <summary>A client PDU that does not decode as a job, userdata or answer (<see cref="S7RequestError"/> says how).</summary>
    Request,
    /// <summary>A server PDU whose S7 header does not hold together.</summary>
    ResponseHeader,
}

/// <summary>What an <see cref="S7CaptureScanner"/> reports, PDU by PDU, in capture order.</summary>
public interface IS7CaptureObserver
{
    /// <summary>The client's COTP connect (CR). Return false when the gateway would refuse it: the connection is read no further.</summary>
    bool OnConnect(in CaptureContext context, in CotpTpdu request);

    /// <summary>
    /// A whole (reassembled) S7 PDU the client sent: a job, userdata, S7comm-Plus, or an answer to a job the server sent,
    /// decoded by <see cref="S7Pdu.ParseRequest"/> (it may be malformed: the observer judges it as the gateway would).
    /// <paramref name="connection"/> is the connect's (default when the capture holds no CR for it);
    /// <paramref name="plus"/> when the connect asked for an S7comm-Plus TSAP.
    /// Return false to stop reading this direction, as a gateway that closes the connection would.
    /// </summary>
    bool OnRequest(in CaptureContext context, S7Connection connection, bool plus, in S7Request request);

    /// <summary>A whole S7 PDU from the server (Ack, Ack_Data, userdata, a job the server sends, S7comm-Plus).</summary>
    void OnResponse(in CaptureContext context, in S7Header header);

    /// <summary>Bytes that cannot be TPKT/COTP/S7 where the gateway expects them; the direction is read no further.</summary>
    void OnMalformed(in CaptureContext context, bool isRequest, S7CaptureFault fault, S7FramingError framing, S7RequestError request);
}

/// <summary>
/// Turns a capture into the S7 PDUs a gateway on <see cref="ServerPort"/> (102) would have seen: packets decoded
/// (<see cref="TcpPacketDecoder"/>), each connection's directions reassembled (<see cref="TcpStreamAssembler"/>),
/// each byte stream framed by <see cref="TpktFramer"/> and DT fragments joined by <see cref="CotpReassembler"/>,
/// with the live session's limits: a TPKT packet above 2048 bytes, or a PDU above 960 bytes (the negotiated
/// size once the server's setup-communication answer is seen), is malformed. After warm-up a packet allocates nothing.
/// </summary>
/// <remarks>
/// Gaps are handled as <see cref="ModbusCaptureScanner"/> handles them: the partial packet and any held DT
/// fragments are dropped, each later chunk is framed from its start and what does not frame is counted in
/// <see cref="Unsynchronised"/>, until a chunk frames to its very end. A capture that starts after a connection's
/// CR is read from a packet boundary, with the connection type unknown.
/// </remarks>
public sealed class S7CaptureScanner
{
    /// <summary>The largest TPKT packet the gateway accepts: it clamps the negotiated TPDU size to 2048 bytes.</summary>
    public const int MaxPacket = 2048;
    /// <summary>The largest PDU the gateway negotiates (and accepts before negotiation).</summary>
    public const int MaxPduSize = 960;

    private readonly Dictionary<FlowKey, Flow> _flows = [];
    private readonly Stack<Flow> _pool = new();
    private readonly HeldBufferPool _heldBuffers = new();
    private readonly IS7CaptureObserver _observer;
    private long _currentTimestampNs;
    private int _currentFrame;

    /// <summary>Creates a scanner that reports to <paramref name="observer"/>.</summary>
    public S7CaptureScanner(IS7CaptureObserver observer, ushort serverPort = 102)
    {
        ArgumentNullException.ThrowIfNull(observer);
        _observer = observer;
        ServerPort = serverPort;
    }

    /// <summary>The server port: segments to it are the client's, segments from it the server's.</summary>
    public ushort ServerPort { get; }

    /// <summary>Packet records read.</summary>
    public long Frames { get; private set; }

    /// <summary>TCP segments to or from <see cref="ServerPort"/>.</summary>
    public long Segments { get; private set; }

    /// <summary>Packets that were not TCP over IP, or IP fragments, or too short for their headers.</summary>
    public long SkippedPackets { get; private set; }

    /// <summary>Retransmitted segments or parts of segments.</summary>
    public long Retransmissions { get; private set; }

    /// <summary>Segments that arrived ahead of a hole.</summary>
    public long OutOfOrder { get; private set; }

    /// <summary>Holes never filled.</summary>
    public long Gaps { get; private set; }

    /// <summary>Chunks (or their rests) after a gap that did not frame and were skipped.</summary>
    public long Unsynchronised { get; private set; }

    /// <summary>DT fragments without EOT (held until the PDU is whole).</summary>
    public long Fragments { get; private set; }

    /// <summary>The first gaps: frame number and bytes missing.</summary>
    public List<(int FrameNumber, long MissingBytes)> FirstGaps { get; } = [];

    /// <summary>How many gaps <see cref="FirstGaps"/> keeps.</summary>
    public int GapListLimit { get; set; } = 20;

    /// <summary>TCP connections seen.</summary>
    public int Connections => _flows.Count;

    /// <summary>Reads every packet of <paramref name="reader"/> and closes every stream at the end.</summary>
    public CaptureError Scan(CaptureReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        while (reader.TryReadPacket(out var packet) == OperationStatus.Done)
        {
            Push(packet);
        }
        Finish();
        return reader.Error;
    }

    /// <summary>Takes one captured packet.</summary>
    public void Push(in CapturedPacket packet)
    {
        Frames++;
        _currentFrame = packet.FrameNumber;
        _currentTimestampNs = packet.TimestampNs;
        if (TcpPacketDecoder.TryDecode(packet.LinkType, packet.Data, out var tcp) != PacketSkip.None)
        {
            SkippedPackets++;
            return;
        }
        bool request = tcp.DestinationPort == ServerPort;
        if (!request && tcp.SourcePort != ServerPort)
        {
            return;
        }
        Segments++;
        var key = request
            ? new FlowKey(tcp.Source, tcp.Destination, tcp.SourcePort, tcp.DestinationPort)
            : new FlowKey(tcp.Destination, tcp.Source, tcp.DestinationPort, tcp.SourcePort);
        if (!_flows.TryGetValue(key, out var flow))
        {
            if (tcp.Payload.IsEmpty && (tcp.Flags & TcpControl.Syn) == 0)
            {
                return;
            }
            flow = _pool.Count > 0 ? _pool.Pop() : new Flow(this);
            flow.Key = key;
            _flows.Add(key, flow);
        }
        var direction = request ? flow.Requests : flow.Responses;
        var sink = request ? flow.RequestSink : flow.ResponseSink;
        if ((tcp.Flags & TcpControl.Syn) != 0 && direction.Ended && direction.InitialSequence != tcp.Sequence)
        {
            flow.Clear();
        }
        direction.Push(tcp.Sequence, tcp.Flags, tcp.Payload, packet.FrameNumber, sink);
        if ((tcp.Flags & TcpControl.Ack) != 0)
        {
            if (request)
            {
                flow.Responses.Acknowledge(tcp.Acknowledgment, packet.FrameNumber, flow.ResponseSink);
            }
            else
            {
                flow.Requests.Acknowledge(tcp.Acknowledgment, packet.FrameNumber, flow.RequestSink);
            }
        }
    }

    /// <summary>Closes every stream and totals reassembly counts.</summary>
    public void Finish()
    {
        foreach (var flow in _flows.Values)
        {
            flow.Requests.Flush(_currentFrame, flow.RequestSink);
            flow.Responses.Flush(_currentFrame, flow.ResponseSink);
            Retransmissions += flow.Requests.Retransmissions + flow.Responses.Retransmissions;
            OutOfOrder += flow.Requests.OutOfOrder + flow.Responses.OutOfOrder;
            flow.Requests.Reset();
            flow.Responses.Reset();
        }
    }

    /// <summary>Forgets all connections and counts, keeping pooled memory.</summary>
    public void Clear()
    {
        foreach (var flow in _flows.Values)
        {
            flow.Clear();
            _pool.Push(flow);
        }
        _flows.Clear();
        Frames = Segments = SkippedPackets = Retransmissions = OutOfOrder = Gaps = Unsynchronised = Fragments = 0;
        FirstGaps.Clear();
    }

    private readonly record struct FlowKey(UInt128 Client, UInt128 Server, ushort ClientPort, ushort ServerPort);

    private sealed class Flow(S7CaptureScanner owner)
    {
        public readonly TcpStreamAssembler Requests = new(owner._heldBuffers);
        public readonly TcpStreamAssembler Responses = new(owner._heldBuffers);
        public readonly StreamFramer RequestSink = new(owner, isRequest: true);
        public readonly StreamFramer ResponseSink = new(owner, isRequest: false);
        private FlowKey _key;

        /// <summary>The connect's connection type (default until a CR is seen).</summary>
        public S7Connection Connection;
        /// <summary>The connect asked for an S7comm-Plus TSAP.</summary>
        public bool Plus;
        /// <summary>A CR was seen (a second one is malformed, as the gateway reads it).</summary>
        public bool Connected;

        public FlowKey Key
        {
            get => _key;
            set
            {
                _key = value;
                RequestSink.Flow = this;
                ResponseSink.Flow = this;
            }
        }

        /// <summary>The negotiated PDU size bounds both directions.</summary>
        public void Negotiated(int pduSize)
        {
            RequestSink.Reassembler.MaxPduSize = pduSize;
            ResponseSink.Reassembler.MaxPduSize = pduSize;
        }

        public void Clear()
        {
            owner.Retransmissions += Requests.Retransmissions + Responses.Retransmissions;
            owner.OutOfOrder += Requests.OutOfOrder + Responses.OutOfOrder;
            Requests.Reset();
            Responses.Reset();
            RequestSink.Clear();
            ResponseSink.Clear();
            Connection = default;
            Plus = false;
            Connected = false;
        }
    }

    /// <summary>Frames one direction's byte stream into TPKT packets and reassembled PDUs; only a packet split across deliveries is copied.</summary>
    private sealed class StreamFramer(S7CaptureScanner owner, bool isRequest) : ITcpStreamSink
    {
        private readonly byte[] _carry = new byte[2 * MaxPacket];
        public readonly CotpReassembler Reassembler = new(new byte[MaxPduSize], MaxPduSize);
        private int _carried;
        private bool _stopped;
        private bool _resync;
        private bool _malformedStop;

        public Flow? Flow { get; set; }

        public void Clear()
        {
            _carried = 0;
            _stopped = false;
            _resync = false;
            _malformedStop = false;
            Reassembler.Reset();
            Reassembler.MaxPduSize = MaxPduSize;
        }

        public void OnGap(int frameNumber, long missingBytes)
        {
            owner.Gaps++;
            if (owner.FirstGaps.Count < owner.GapListLimit)
            {
                owner.FirstGaps.Add((frameNumber, missingBytes));
            }
            _carried = 0;
            _resync = true;
            Reassembler.Reset();
            if (_malformedStop)
            {
                _stopped = false;
                _malformedStop = false;
            }
        }

        public void OnData(ReadOnlySpan<byte> data, int frameNumber)
        {
            while (!data.IsEmpty && !_stopped)
            {
                if (_carried == 0)
                {
                    int consumed = FrameAll(data, frameNumber);
                    data = data[consumed..];
                    if (!data.IsEmpty && !_stopped)
                    {
                        data.CopyTo(_carry);
                        _carried = data.Length;
                    }
                    return;
                }
                int take = Math.Min(data.Length, _carry.Length - _carried);
                data[..take].CopyTo(_carry.AsSpan(_carried));
                data = data[take..];
                _carried += take;
                int used = FrameAll(_carry.AsSpan(0, _carried), frameNumber);
                if (_stopped)
                {
                    return;
                }
                if (used == _carried)
                {
                    _carried = 0;
                }
                else if (used > 0)
                {
                    _carry.AsSpan(used, _carried - used).CopyTo(_carry);
                    _carried -= used;
                }
            }
        }

        private void Stop(in CaptureContext context, S7CaptureFault fault, S7FramingError framing, S7RequestError request)
        {
            _stopped = true;
            _malformedStop = true;
            owner._observer.OnMalformed(context, isRequest, fault, framing, request);
        }

        /// <summary>Frames every complete TPKT packet at the start of <paramref name="input"/>; returns the bytes used.</summary>
        private int FrameAll(ReadOnlySpan<byte> input, int frameNumber)
        {
            int offset = 0;
            var flow = Flow!;
            var key = flow.Key;
            var context = new CaptureContext(frameNumber, owner._currentTimestampNs, key.Client, key.ClientPort, key.Server, key.ServerPort);
            while (offset < input.Length)
            {
                var rest = input[offset..];
                bool tooLarge = rest.Length >= 4 && rest[0] == S7Limits.TpktVersion && BinaryPrimitives.ReadUInt16BigEndian(rest[2..]) > MaxPacket;
                var status = tooLarge ? OperationStatus.InvalidData : TpktFramer.TryReadFrame(rest, out _, out _, out _);
                if (status == OperationStatus.NeedMoreData)
                {
                    break;
                }
                if (status == OperationStatus.InvalidData)
                {
                    if (_resync)
                    {
                        owner.Unsynchronised++;
                        return input.Length;
                    }
                    TpktFramer.TryReadFrame(rest, out _, out _, out var framingError);
                    Stop(context, tooLarge ? S7CaptureFault.PacketTooLarge : S7CaptureFault.Framing, framingError, S7RequestError.None);
                    return input.Length;
                }
                TpktFramer.TryReadFrame(rest, out var tpdu, out int consumed, out _);
                offset += consumed;
                if (offset == input.Length)
                {
                    _resync = false;
                }
                if (!Packet(context, flow, tpdu))
                {
                    return input.Length;
                }
            }
            return offset;
        }

        /// <summary>One framed TPKT packet; false when the direction stops.</summary>
        private bool Packet(in CaptureContext context, Flow flow, in CotpTpdu tpdu)
        {
            switch (tpdu.Type)
            {
                case CotpTpduType.ConnectionRequest when isRequest:
                    if (flow.Connected)
                    {
                        Stop(context, S7CaptureFault.CotpOutOfPlace, S7FramingError.None, S7RequestError.None);
                        return false;
                    }
                    flow.Connected = true;
                    flow.Connection = tpdu.Connection;
                    flow.Plus = flow.Connection.Kind is S7ConnectionKind.PlusHmi or S7ConnectionKind.PlusEs;
                    if (!owner._observer.OnConnect(context, tpdu))
                    {
                        _stopped = true;
                        return false;
                    }
                    return true;
                case CotpTpduType.Data:
                    break;
                case CotpTpduType.DisconnectRequest:
                    // The sender ends the ISO connection; nothing after it is read.
                    _stopped = true;
                    return false;
                case CotpTpduType.ConnectionConfirm when !isRequest:
                case CotpTpduType.Error when !isRequest:
                    return true;
                default:
                    Stop(context, S7CaptureFault.CotpOutOfPlace, S7FramingError.None, S7RequestError.None);
                    return false;
            }
            var reassembly = Reassembler.Append(tpdu, out var pdu, out var reassemblyError);
            if (reassembly == OperationStatus.InvalidData)
            {
                Stop(context, S7CaptureFault.PduTooLarge, reassemblyError, S7RequestError.None);
                return false;
            }
            if (reassembly == OperationStatus.NeedMoreData)
            {
                owner.Fragments++;
                return true;
            }
            if (isRequest)
            {
                var request = S7Pdu.ParseRequest(pdu);
                if (!owner._observer.OnRequest(context, flow.Connection, flow.Plus, request))
                {
                    _stopped = true;
                    _malformedStop = request.Status == S7RequestStatus.Malformed && !(request.Rosctr is S7Rosctr.Ack or S7Rosctr.AckData);
                    return false;
                }
                return true;
            }
            var header = S7Pdu.ParseHeader(pdu);
            if (!header.IsValid)
            {
                Stop(context, S7CaptureFault.ResponseHeader, S7FramingError.None, S7RequestError.HeaderInvalid);
                return false;
            }
            owner._observer.OnResponse(context, header);
            if (header.Protocol == S7Protocol.S7comm && header.Rosctr == S7Rosctr.AckData && header.ErrorClass == 0)
            {
                // The server's answer to setup-communication: the PDU size (clamped to the gateway's) bounds every later PDU.
                var parameters = header.Parameters;
                if (parameters.Length == S7Limits.SetupParameterLength && parameters[0] == S7Functions.SetupCommunication)
                {
                    int negotiated = Math.Min((int)BinaryPrimitives.ReadUInt16BigEndian(parameters[6..]), MaxPduSize);
                    if (negotiated >= 240)
                    {
                        flow.Negotiated(negotiated);
                    }
                }
            }
            return true;
        }
    }
}
