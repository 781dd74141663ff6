using System.Buffers;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Protocols.Capture;

/// <summary>Where and when a Modbus ADU was seen in a capture.</summary>
public readonly record struct CaptureContext(int FrameNumber, long TimestampNs, UInt128 Client, ushort ClientPort, UInt128 Server, ushort ServerPort);

/// <summary>What a <see cref="ModbusCaptureScanner"/> reports, ADU by ADU, in capture order.</summary>
public interface IModbusCaptureObserver
{
    /// <summary>A well-framed request that is not malformed (it may be out of spec). Return false to stop reading this stream direction, as a gateway that closes the connection would.</summary>
    bool OnRequest(in CaptureContext context, in ModbusTcpFrame frame, in ModbusRequest request);

    /// <summary>A well-framed response (or exception) from the server.</summary>
    void OnResponse(in CaptureContext context, in ModbusTcpFrame frame);

    /// <summary>
    /// Bytes that cannot be Modbus: the framing failed, or (requests only) the PDU is malformed. The
    /// direction is read no further, as the live gateway closes such a connection.
    /// <paramref name="unitId"/> and <paramref name="functionCode"/> are -1 when not received.
    /// </summary>
    void OnMalformed(in CaptureContext context, bool isRequest, FramingError reason, short unitId, short functionCode);
}

/// <summary>
/// Turns a capture into the Modbus TCP ADUs a gateway on <see cref="ServerPort"/> would have seen:
/// packets are decoded (<see cref="TcpPacketDecoder"/>), each connection's two directions are
/// reassembled (<see cref="TcpStreamAssembler"/>), and the byte streams are framed by
/// <see cref="MbapFramer"/> exactly as the gateway frames its receive buffer. After warm-up
/// (connections pooled, tables grown) a packet allocates nothing.
/// </summary>
/// <remarks>
/// After a gap (bytes never captured) the framer cannot know where the next ADU starts: the partial
/// ADU is dropped and each delivered chunk (a segment, or what is carried into it) is framed from its
/// start; a chunk, or the rest of one, that does not frame is skipped and counted in
/// <see cref="Unsynchronised"/>, not as malformed. The stream is in step again once a chunk frames to
/// its very end (its last ADU ends where the chunk ends); only then is a framing error malformed. A
/// malformed ADU ends its direction as the gateway closes the connection, unless the capture then
/// loses bytes of that direction (a gap): after it, reading resumes, resynchronising. A capture that starts
/// mid-connection is taken to start on an ADU boundary, as a gateway's new connection would.
/// </remarks>
public sealed class ModbusCaptureScanner
{
    private readonly Dictionary<FlowKey, Flow> _flows = [];
    private readonly Stack<Flow> _pool = new();
    private readonly HeldBufferPool _heldBuffers = new();
    private readonly IModbusCaptureObserver _observer;
    private long _currentTimestampNs;
    private int _currentFrame;

    /// <summary>Creates a scanner that reports to <paramref name="observer"/>.</summary>
    public ModbusCaptureScanner(IModbusCaptureObserver observer, ushort serverPort)
    {
        ArgumentNullException.ThrowIfNull(observer);
        _observer = observer;
        ServerPort = serverPort;
    }

    /// <summary>The server port: segments to it are requests, segments from it responses.</summary>
    public ushort ServerPort { get; }

    /// <summary>Packet records read.</summary>
    public long Frames { get; private set; }

    /// <summary>TCP segments to or from <see cref="ServerPort"/>.</summary>
    public long ModbusSegments { get; private set; }

    /// <summary>Packets that were not TCP over IP, or IP fragments, or too short for their headers.</summary>
    public long SkippedPackets { get; private set; }

    /// <summary>Retransmitted segments or parts of segments (bytes already delivered).</summary>
    public long Retransmissions { get; private set; }

    /// <summary>Segments that arrived ahead of a hole.</summary>
    public long OutOfOrder { get; private set; }

    /// <summary>Holes never filled.</summary>
    public long Gaps { get; private set; }

    /// <summary>Chunks (or their rests) after a gap, before the stream was in step again, that did not frame and were skipped.</summary>
    public long Unsynchronised { get; private set; }

    /// <summary>The first gaps: frame number and bytes missing.</summary>
    public List<(int FrameNumber, long MissingBytes)> FirstGaps { get; } = [];

    /// <summary>How many gaps <see cref="FirstGaps"/> keeps.</summary>
    public int GapListLimit { get; set; } = 20;

    /// <summary>TCP connections seen.</summary>
    public int Connections => _flows.Count;

    /// <summary>Reads every packet of <paramref name="reader"/> and closes every stream at the end.</summary>
    /// <returns>The reader's error if it stopped early, else <see cref="CaptureError.None"/>.</returns>
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
        ModbusSegments++;
        var key = request
            ? new FlowKey(tcp.Source, tcp.Destination, tcp.SourcePort, tcp.DestinationPort)
            : new FlowKey(tcp.Destination, tcp.Source, tcp.DestinationPort, tcp.SourcePort);
        if (!_flows.TryGetValue(key, out var flow))
        {
            if (tcp.Payload.IsEmpty && (tcp.Flags & TcpControl.Syn) == 0)
            {
                return; // a bare ACK, FIN or RST of a connection we never saw carry anything
            }
            flow = _pool.Count > 0 ? _pool.Pop() : new Flow(this);
            flow.Key = key;
            _flows.Add(key, flow);
        }
        var direction = request ? flow.Requests : flow.Responses;
        var sink = request ? flow.RequestSink : flow.ResponseSink;
        if ((tcp.Flags & TcpControl.Syn) != 0 && direction.Ended && direction.InitialSequence != tcp.Sequence)
        {
            // The same four-tuple reused by a new connection after the old one ended.
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

    /// <summary>Closes every stream (held segments beyond holes are delivered after a gap) and totals reassembly counts.</summary>
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

    /// <summary>Forgets all connections and counts, keeping pooled memory for the next capture.</summary>
    public void Clear()
    {
        foreach (var flow in _flows.Values)
        {
            flow.Clear();
            _pool.Push(flow);
        }
        _flows.Clear();
        Frames = ModbusSegments = SkippedPackets = Retransmissions = OutOfOrder = Gaps = Unsynchronised = 0;
        FirstGaps.Clear();
    }

    private readonly record struct FlowKey(UInt128 Client, UInt128 Server, ushort ClientPort, ushort ServerPort);

    private sealed class Flow(ModbusCaptureScanner owner)
    {
        public readonly TcpStreamAssembler Requests = new(owner._heldBuffers);
        public readonly TcpStreamAssembler Responses = new(owner._heldBuffers);
        public readonly StreamFramer RequestSink = new(owner, isRequest: true);
        public readonly StreamFramer ResponseSink = new(owner, isRequest: false);
        private FlowKey _key;

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

        public void Clear()
        {
            owner.Retransmissions += Requests.Retransmissions + Responses.Retransmissions;
            owner.OutOfOrder += Requests.OutOfOrder + Responses.OutOfOrder;
            Requests.Reset();
            Responses.Reset();
            RequestSink.Clear();
            ResponseSink.Clear();
        }
    }

    /// <summary>
    /// Frames one direction's byte stream. A complete ADU is framed in place where it can be; only an
    /// ADU split across deliveries is copied, into a carry buffer of two maximum ADUs.
    /// </summary>
    private sealed class StreamFramer(ModbusCaptureScanner owner, bool isRequest) : ITcpStreamSink
    {
        private readonly byte[] _carry = new byte[2 * ModbusLimits.MaxVendorTcpAduLength];
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
            // A framing error just before bytes the capture lost may itself be an artefact of the
            // capture (a fuzzed or damaged trace): what follows the gap is read again, resynchronising.
            // A stop the policy chose (on-deny: close) stays.
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
                        // An ADU continues in a later segment; the remainder is under one maximum ADU.
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

        /// <summary>Frames every complete ADU at the start of <paramref name="input"/>; returns the bytes used.</summary>
        private int FrameAll(ReadOnlySpan<byte> input, int frameNumber)
        {
            int offset = 0;
            var key = Flow!.Key;
            var context = new CaptureContext(frameNumber, owner._currentTimestampNs, key.Client, key.ClientPort, key.Server, key.ServerPort);
            while (offset < input.Length)
            {
                var status = MbapFramer.TryReadFrame(input[offset..], out var frame, out int consumed, out var error);
                if (status == OperationStatus.NeedMoreData)
                {
                    break;
                }
                if (status == OperationStatus.InvalidData)
                {
                    if (_resync)
                    {
                        // Mid-ADU after a gap: skip the chunk and try the next one.
                        owner.Unsynchronised++;
                        return input.Length;
                    }
                    var rest = input[offset..];
                    _stopped = true;
                    _malformedStop = true;
                    owner._observer.OnMalformed(context, isRequest, error, rest.Length > 6 ? rest[6] : (short)-1, rest.Length > 7 ? rest[7] : (short)-1);
                    return input.Length;
                }
                offset += consumed;
                // After a gap, one ADU that frames may still be a chance alignment of bytes from the
                // middle of a lost one: the stream counts as in step again only once a chunk frames
                // to its very end. Until then what does not frame is skipped, never malformed.
                if (offset == input.Length)
                {
                    _resync = false;
                }
                if (isRequest)
                {
                    var request = ModbusPdu.ParseFramedRequest(frame.Pdu);
                    if (request.Status == RequestStatus.Malformed)
                    {
                        _stopped = true;
                        _malformedStop = true;
                        owner._observer.OnMalformed(context, isRequest: true, request.Error, frame.UnitId, frame.FunctionCode);
                        return input.Length;
                    }
                    if (!owner._observer.OnRequest(context, frame, request))
                    {
                        _stopped = true;
                        return input.Length;
                    }
                }
                else
                {
                    owner._observer.OnResponse(context, frame);
                }
            }
            return offset;
        }
    }
}
