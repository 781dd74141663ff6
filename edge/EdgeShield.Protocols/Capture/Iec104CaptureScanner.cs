using System.Buffers;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Protocols.Capture;

/// <summary>What an <see cref="Iec104CaptureScanner"/> reports, APDU by APDU, in capture order.</summary>
public interface IIec104CaptureObserver
{
    /// <summary>
    /// An APDU from the controlling station (the client): its APCI well-formed and, for an I-frame, its ASDU
    /// <see cref="Iec104AsduStatus.WellFormed"/> or <see cref="Iec104AsduStatus.UnknownType"/> (default for S and U).
    /// Return false to stop reading this direction, as a gateway that closes the connection would.
    /// </summary>
    bool OnRequest(in CaptureContext context, in Iec104Apdu apdu, in Iec104Asdu asdu);

    /// <summary>An APDU from the controlled station (the server), read as <see cref="OnRequest"/> reads the client's.</summary>
    void OnResponse(in CaptureContext context, in Iec104Apdu apdu, in Iec104Asdu asdu);

    /// <summary>
    /// Bytes that are not a well-formed APDU where the gateway expects one (a bad start octet or LEN, a malformed
    /// APCI or ASDU: <paramref name="fault"/>'s detail is an <see cref="Iec104FrameError"/>); the direction is read no further.
    /// </summary>
    void OnMalformed(in CaptureContext context, bool isRequest, FrameFault fault);
}

/// <summary>
/// Turns a capture into the IEC 104 APDUs a gateway on <see cref="ServerPort"/> (2404) would have seen: packets decoded
/// (<see cref="TcpPacketDecoder"/>), each connection's directions reassembled (<see cref="TcpStreamAssembler"/>), each
/// byte stream delimited by <see cref="Iec104Framer"/> and read by <see cref="Iec104Apdu"/> and <see cref="Iec104Asdu"/>.
/// A malformed APDU stops its direction, as the gateway closes the connection. After warm-up a packet allocates nothing.
/// </summary>
/// <remarks>
/// Gaps are handled as <see cref="S7CaptureScanner"/> handles them: the partial APDU is dropped, each later chunk is
/// framed from its start and what does not frame is counted in <see cref="Unsynchronised"/>, until a chunk frames to
/// its very end. The two directions are told apart by the port only: the side on <see cref="ServerPort"/> is the station.
/// </remarks>
public sealed class Iec104CaptureScanner
{
    private readonly Dictionary<FlowKey, Flow> _flows = [];
    private readonly Stack<Flow> _pool = new();
    private readonly HeldBufferPool _heldBuffers = new();
    private readonly IIec104CaptureObserver _observer;
    private long _currentTimestampNs;
    private int _currentFrame;

    /// <summary>Creates a scanner that reports to <paramref name="observer"/>.</summary>
    public Iec104CaptureScanner(IIec104CaptureObserver observer, ushort serverPort = 2404)
    {
        ArgumentNullException.ThrowIfNull(observer);
        _observer = observer;
        ServerPort = serverPort;
    }

    /// <summary>The server port: segments to it are the client's, segments from it the station's.</summary>
    public ushort ServerPort { get; }

    /// <summary>Packet records read.</summary>
    public long Frames { get; private set; }

    /// <summary>TCP segments to or from <see cref="ServerPort"/>.</summary>
    public long Segments { get; private set; }

    /// <summary>Packets that were not TCP over IP, or IP fragments, or too short for their headers.</summary>
    public long SkippedPackets { get; private set; }

    /// <summary>APDUs read (well-formed or not).</summary>
    public long Apdus { get; private set; }

    /// <summary>Retransmitted segments or parts of segments.</summary>
    public long Retransmissions { get; private set; }

    /// <summary>Segments that arrived ahead of a hole.</summary>
    public long OutOfOrder { get; private set; }

    /// <summary>Holes never filled.</summary>
    public long Gaps { get; private set; }

    /// <summary>Chunks (or their rests) after a gap that did not frame and were skipped.</summary>
    public long Unsynchronised { get; private set; }

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
        Frames = Segments = SkippedPackets = Apdus = Retransmissions = OutOfOrder = Gaps = Unsynchronised = 0;
        FirstGaps.Clear();
    }

    private readonly record struct FlowKey(UInt128 Client, UInt128 Server, ushort ClientPort, ushort ServerPort);

    private sealed class Flow(Iec104CaptureScanner owner)
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

    /// <summary>Frames one direction's byte stream into APDUs; only an APDU split across deliveries is copied.</summary>
    private sealed class StreamFramer(Iec104CaptureScanner owner, bool isRequest) : ITcpStreamSink
    {
        private readonly byte[] _carry = new byte[2 * Iec104Limits.MaxFrame];
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

        private void Stop(in CaptureContext context, FrameFault fault)
        {
            _stopped = true;
            _malformedStop = true;
            owner._observer.OnMalformed(context, isRequest, fault);
        }

        /// <summary>Frames every complete APDU at the start of <paramref name="input"/>; returns the bytes used.</summary>
        private int FrameAll(ReadOnlySpan<byte> input, int frameNumber)
        {
            int offset = 0;
            var key = Flow!.Key;
            var context = new CaptureContext(frameNumber, owner._currentTimestampNs, key.Client, key.ClientPort, key.Server, key.ServerPort);
            while (offset < input.Length)
            {
                var rest = input[offset..];
                var status = Iec104Framer.Instance.TryDelimit(rest, out int consumed, out var fault);
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
                    Stop(context, fault);
                    return input.Length;
                }
                offset += consumed;
                if (offset == input.Length)
                {
                    _resync = false;
                }
                owner.Apdus++;
                if (!Apdu(context, rest[..consumed]))
                {
                    return input.Length;
                }
            }
            return offset;
        }

        /// <summary>One delimited APDU; false when the direction stops.</summary>
        private bool Apdu(in CaptureContext context, ReadOnlySpan<byte> frame)
        {
            if (!Iec104Apdu.TryParse(frame, out var apdu, out var fault))
            {
                Stop(context, fault);
                return false;
            }
            Iec104Asdu asdu = default;
            if (apdu.Format == Iec104Format.I && !Iec104Asdu.TryParse(apdu.Asdu, out asdu, out fault))
            {
                Stop(context, fault);
                return false;
            }
            if (isRequest)
            {
                if (!owner._observer.OnRequest(context, apdu, asdu))
                {
                    _stopped = true;
                    return false;
                }
                return true;
            }
            owner._observer.OnResponse(context, apdu, asdu);
            return true;
        }
    }
}
