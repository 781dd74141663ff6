using System.Diagnostics;
using EdgeShield.Protocols;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Transport;

/// <summary>Timers and limits of a <see cref="ReadOnlyIec104Client"/>: the standard's defaults (IEC 60870-5-104, 5.5, 9.6).</summary>
public sealed record Iec104ClientOptions
{
    /// <summary>t1: time to STARTDT con, TESTFR con, or the acknowledgement of an interrogation, before the connection is closed.</summary>
    public TimeSpan T1 { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>t2: the longest a received I-frame waits for an S-frame when fewer than <see cref="W"/> arrive.</summary>
    public TimeSpan T2 { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>t3: receive idle time after which a TESTFR act is sent.</summary>
    public TimeSpan T3 { get; init; } = TimeSpan.FromSeconds(20);
    /// <summary>w: received I-frames acknowledged at the latest after this many.</summary>
    public int W { get; init; } = 8;
    /// <summary>Time between station interrogations of one connection (one is sent after every STARTDT con).</summary>
    public TimeSpan InterrogationPeriod { get; init; } = TimeSpan.FromMinutes(1);
    /// <summary>
    /// Also read the station's integrated totals: a counter interrogation (C_CI_NA_1, QCC 5: all counters, read only, no
    /// freeze and no reset) after every station interrogation the station terminated.
    /// </summary>
    public bool CounterInterrogation { get; init; }
    /// <summary>First wait after a failed or closed connection; doubles per failure up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan MinBackoff { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Longest wait between connection attempts.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>How often the timers are looked at.</summary>
    public TimeSpan Tick { get; init; } = TimeSpan.FromMilliseconds(100);
}

/// <summary>What happened to the link of a <see cref="ReadOnlyIec104Client"/>.</summary>
public enum Iec104LinkState : byte
{
    /// <summary>No data transfer: the connection failed, was closed by the station, or was closed by the client (see the reason).</summary>
    Down = 0,
    /// <summary>STARTDT con received: data flows; a station interrogation has just been sent.</summary>
    Active,
    /// <summary>The station terminated an interrogation (ActTerm): every point it holds has been sent.</summary>
    InterrogationDone,
    /// <summary>The station terminated a counter interrogation (ActTerm): every integrated total it holds has been sent.</summary>
    CounterInterrogationDone,
    /// <summary>The station refused a counter interrogation (negative ActCon, the reason names its cause); the connection stays up.</summary>
    CounterInterrogationRefused,
}

/// <summary>
/// A change of the link. <see cref="ProtocolError"/>: the client closed the connection because the station broke the
/// protocol (a sequence error, a malformed APDU or ASDU, t1 expired, a negative interrogation confirmation).
/// </summary>
public readonly record struct Iec104LinkChange(Iec104LinkState State, string Reason, bool ProtocolError);

/// <summary>Where a <see cref="ReadOnlyIec104Client"/> delivers what the station sends.</summary>
public interface IIec104Sink
{
    /// <summary>
    /// A well-formed monitor-direction ASDU (types 1-40) of the client's common address, in the order received. The bytes are
    /// valid until the task completes; the client acknowledges the I-frame that carried it only after that.
    /// </summary>
    ValueTask OnAsduAsync(ReadOnlyMemory<byte> asdu);

    /// <summary>A change of the link (<see cref="Iec104LinkState"/>); <see cref="Iec104LinkState.Down"/> once per outage.</summary>
    ValueTask OnLinkAsync(Iec104LinkChange change);
}

/// <summary>
/// The frames a <see cref="ReadOnlyIec104Client"/> can put on the wire: these six and nothing else. There is no member for a
/// command, a set-point, a clock synchronisation, a reset, a parameter or a file: such bytes cannot be built by this client.
/// </summary>
public enum Iec104ClientFrame : byte
{
    /// <summary>U-frame STARTDT act (68 04 07 00 00 00).</summary>
    StartDtAct = 0,
    /// <summary>U-frame TESTFR act (68 04 43 00 00 00), after t3 without a received frame.</summary>
    TestFrAct,
    /// <summary>U-frame TESTFR con (68 04 83 00 00 00), the answer to the station's TESTFR act.</summary>
    TestFrCon,
    /// <summary>S-frame acknowledging up to N(R) (68 04 01 00 NR NR).</summary>
    Acknowledge,
    /// <summary>I-frame C_IC_NA_1 (100), cause 6 activation, originator 0, the client's CA, IOA 0, QOI 20 station interrogation.</summary>
    StationInterrogation,
    /// <summary>
    /// I-frame C_CI_NA_1 (101), cause 6 activation, originator 0, the client's CA, IOA 0, QCC 5: RQT 5 (general request
    /// counter) with FRZ 0 (read). The freeze and reset qualifiers (FRZ 1-3) change the station's counters for every
    /// controlling station, so this client cannot send them.
    /// </summary>
    CounterInterrogation,
}

/// <summary>
/// A read-only IEC 60870-5-104 controlling station for telemetry: it connects through an <see cref="IUpstream"/>, starts
/// data transfer, interrogates the station (C_IC_NA_1, QOI 20, to its one common address) after every STARTDT con and every
/// <see cref="Iec104ClientOptions.InterrogationPeriod"/>, with <see cref="Iec104ClientOptions.CounterInterrogation"/> reads its
/// counters (C_CI_NA_1, QCC 5) after each station interrogation ends, and hands every monitor ASDU the station sends (interrogated and
/// spontaneous) to its <see cref="IIec104Sink"/>; an end of initialisation (M_EI_NA_1) from the station triggers another
/// interrogation. It keeps N(R), acknowledges after w I-frames or t2, answers TESTFR act and
/// sends TESTFR act after t3 idle; a sequence error, an impossible N(R), a malformed APDU or ASDU, an expired t1 or a lost
/// connection closes the connection, and it connects again after a backoff (1 s doubling to 30 s).
/// </summary>
/// <remarks>
/// Read-only by construction: every byte it writes is built by <see cref="WriteFrame"/>, whose only inputs are an
/// <see cref="Iec104ClientFrame"/> (six values: STARTDT act, TESTFR act, TESTFR con, an S-frame, a station interrogation, a
/// counter interrogation that reads without freezing or resetting), the
/// sequence numbers and the configured common address. Its public surface is the constructor, <see cref="RunAsync"/> and counters.
/// A new upstream session is opened per connection and disposed when the connection ends, so a late frame can never open a
/// connection that did not begin with STARTDT act.
/// </remarks>
public sealed class ReadOnlyIec104Client : IAsyncDisposable
{
    /// <summary>QOI 20: station (global) interrogation.</summary>
    public const byte StationQoi = 20;
    /// <summary>QCC 5: RQT 5 (general request counter), FRZ 0 (read: no freeze, no reset).</summary>
    public const byte ReadAllCountersQcc = 5;
    private const byte InterrogationType = 100;
    private const byte CounterInterrogationType = 101;

    private readonly IUpstream _upstream;
    private readonly string _source;
    private readonly ushort _commonAddress;
    private readonly Iec104ClientOptions _options;
    private readonly IIec104Sink _sink;
    private readonly object _gate = new();
    private readonly SemaphoreSlim _sendGate = new(1, 1);
    private readonly byte[] _send = new byte[Iec104Limits.ApciLength + 10];
    private Link? _link;
    private int _epoch;
    private long _connects;
    private long _interrogations;
    private long _counterInterrogations;
    private long _protocolErrors;
    private long _framesSent;
    private long _ignored;

    /// <summary>One TCP connection's state: sequence numbers, timers, and why it ended.</summary>
    private sealed class Link(IUpstreamSession session, int epoch)
    {
        public IUpstreamSession Session { get; } = session;
        public int Epoch { get; } = epoch;
        public int Generation { get; set; } = -1;
        public ushort SendNext { get; set; }
        public ushort ReceiveNext { get; set; }
        public ushort AckedByPeer { get; set; }
        public int Unacknowledged { get; set; }
        public long FirstUnacknowledgedAt { get; set; }
        public long LastReceiveAt { get; set; }
        public long TestFrSentAt { get; set; }
        public long IFrameSentAt { get; set; }
        public bool StartDtConfirmed { get; set; }
        public bool InterrogationTerminated { get; set; }
        /// <summary>The station reported end of initialisation (M_EI_NA_1): its process image may be new; interrogate again.</summary>
        public bool InterrogateNow { get; set; }
        /// <summary>A station interrogation ended and counters are read: send the counter interrogation.</summary>
        public bool CountersNow { get; set; }
        /// <summary>Why the station refused the last counter interrogation (its cause).</summary>
        public string CounterRefusal { get; set; } = "";
        public bool Closed { get; set; }
        public string CloseReason { get; set; } = "";
        public bool ProtocolError { get; set; }
    }

    /// <summary>
    /// A client for the station behind <paramref name="upstream"/> (a <see cref="TcpUpstream"/>), as client source
    /// <paramref name="source"/>, interrogating common address <paramref name="commonAddress"/> (1..65534). Nothing is sent
    /// before <see cref="RunAsync"/>.
    /// </summary>
    public ReadOnlyIec104Client(IUpstream upstream, string source, ushort commonAddress, Iec104ClientOptions options, IIec104Sink sink)
    {
        ArgumentNullException.ThrowIfNull(upstream);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentOutOfRangeException.ThrowIfEqual(commonAddress, Iec104Limits.GlobalCommonAddress);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.W, 1);
        _upstream = upstream;
        _source = source;
        _commonAddress = commonAddress;
        _options = options;
        _sink = sink;
    }

    /// <summary>Connections that reached STARTDT con.</summary>
    public long Connects => Interlocked.Read(ref _connects);

    /// <summary>Station interrogations sent.</summary>
    public long Interrogations => Interlocked.Read(ref _interrogations);

    /// <summary>Counter interrogations sent (only with <see cref="Iec104ClientOptions.CounterInterrogation"/>).</summary>
    public long CounterInterrogations => Interlocked.Read(ref _counterInterrogations);

    /// <summary>Connections the client closed because the station broke the protocol.</summary>
    public long ProtocolErrors => Interlocked.Read(ref _protocolErrors);

    /// <summary>APDUs written (all of them <see cref="Iec104ClientFrame"/>s).</summary>
    public long FramesSent => Interlocked.Read(ref _framesSent);

    /// <summary>Well-formed ASDUs not handed to the sink: another common address, or not a monitor type (confirmations are used, not counted).</summary>
    public long AsdusIgnored => Interlocked.Read(ref _ignored);

    /// <summary>
    /// Writes one of the client's frames: the only place its bytes are made. <paramref name="sendSequence"/> is used by the
    /// interrogations (I-frames) only, <paramref name="receiveSequence"/> by the S- and I-frames. Returns the length.
    /// </summary>
    public static int WriteFrame(Span<byte> destination, Iec104ClientFrame frame, ushort sendSequence, ushort receiveSequence, ushort commonAddress)
    {
        switch (frame)
        {
            case Iec104ClientFrame.StartDtAct:
                return Iec104Writer.WriteU(destination, Iec104UFunction.StartDtAct);
            case Iec104ClientFrame.TestFrAct:
                return Iec104Writer.WriteU(destination, Iec104UFunction.TestFrAct);
            case Iec104ClientFrame.TestFrCon:
                return Iec104Writer.WriteU(destination, Iec104UFunction.TestFrCon);
            case Iec104ClientFrame.Acknowledge:
                return Iec104Writer.WriteS(destination, receiveSequence);
            case Iec104ClientFrame.StationInterrogation:
                ArgumentOutOfRangeException.ThrowIfEqual(commonAddress, Iec104Limits.GlobalCommonAddress);
                // TYPE 100, VSQ 1, COT 6 (activation), originator 0, CA (LE), IOA 0, QOI 20.
                Span<byte> asdu = [InterrogationType, 0x01, Iec104Causes.Activation, 0x00, (byte)commonAddress, (byte)(commonAddress >> 8), 0, 0, 0, StationQoi];
                return Iec104Writer.WriteI(destination, sendSequence, receiveSequence, asdu);
            case Iec104ClientFrame.CounterInterrogation:
                ArgumentOutOfRangeException.ThrowIfEqual(commonAddress, Iec104Limits.GlobalCommonAddress);
                // TYPE 101, VSQ 1, COT 6 (activation), originator 0, CA (LE), IOA 0, QCC 5 (all counters, FRZ 0: read).
                Span<byte> counters = [CounterInterrogationType, 0x01, Iec104Causes.Activation, 0x00, (byte)commonAddress, (byte)(commonAddress >> 8), 0, 0, 0, ReadAllCountersQcc];
                return Iec104Writer.WriteI(destination, sendSequence, receiveSequence, counters);
            default:
                throw new ArgumentOutOfRangeException(nameof(frame), frame, "not a frame of the read-only client");
        }
    }

    /// <summary>Connects, interrogates and receives until <paramref name="cancellationToken"/> is cancelled; reconnects after a backoff.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var backoff = _options.MinBackoff;
        bool reportedDown = false;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var link = Open();
                bool wasActive = false;
                try
                {
                    wasActive = await RunLinkAsync(link, cancellationToken);
                }
                finally
                {
                    // A link still open here is being stopped: closed gracefully (FIN) by disposing its session, not reset.
                    lock (_gate)
                    {
                        CloseLocked(link, "stopping", protocolError: false, abort: false);
                    }
                    await link.Session.DisposeAsync();
                }
                if (cancellationToken.IsCancellationRequested)
                {
                    break;
                }
                if (link.ProtocolError)
                {
                    Interlocked.Increment(ref _protocolErrors);
                }
                if (wasActive || !reportedDown)
                {
                    reportedDown = true;
                    await _sink.OnLinkAsync(new Iec104LinkChange(Iec104LinkState.Down, link.CloseReason, link.ProtocolError));
                }
                if (wasActive)
                {
                    reportedDown = true;
                }
                // A connection whose interrogation completed was healthy: start the backoff again from its minimum.
                backoff = link.InterrogationTerminated ? _options.MinBackoff : backoff;
                await Task.Delay(backoff, cancellationToken);
                backoff = backoff * 2 > _options.MaxBackoff ? _options.MaxBackoff : backoff * 2;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    private Link Open()
    {
        lock (_gate)
        {
            _epoch++;
            var link = new Link(_upstream.OpenSession(new Receiver(this, _epoch), Iec104Framer.Instance, _source), _epoch);
            _link = link;
            return link;
        }
    }

    /// <summary>One connection: STARTDT, interrogation, then the timers until it closes. True when it reached STARTDT con.</summary>
    private async Task<bool> RunLinkAsync(Link link, CancellationToken cancellationToken)
    {
        long started = Stopwatch.GetTimestamp();
        if (!await SendAsync(link, Iec104ClientFrame.StartDtAct, cancellationToken))
        {
            Close(link, link.Closed ? link.CloseReason : "station unreachable", protocolError: false);
            return false;
        }
        using var timer = new PeriodicTimer(_options.Tick);
        bool active = false;
        long nextInterrogation = 0;
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            long now = Stopwatch.GetTimestamp();
            bool startDt, sendTestFr = false, sendAck = false, interrogateNow, countersNow;
            lock (_gate)
            {
                if (link.Closed)
                {
                    return active;
                }
                startDt = link.StartDtConfirmed;
                interrogateNow = link.InterrogateNow;
                countersNow = link.CountersNow;
                if (!startDt && Stopwatch.GetElapsedTime(started, now) >= _options.T1)
                {
                    CloseLocked(link, $"no STARTDT con within t1 ({_options.T1.TotalSeconds:0.###} s)", protocolError: true);
                    return false;
                }
                if (link.TestFrSentAt != 0 && Stopwatch.GetElapsedTime(link.TestFrSentAt, now) >= _options.T1)
                {
                    CloseLocked(link, $"no TESTFR con within t1 ({_options.T1.TotalSeconds:0.###} s)", protocolError: true);
                    return active;
                }
                if (link.IFrameSentAt != 0 && Stopwatch.GetElapsedTime(link.IFrameSentAt, now) >= _options.T1)
                {
                    CloseLocked(link, $"the interrogation was not acknowledged within t1 ({_options.T1.TotalSeconds:0.###} s)", protocolError: true);
                    return active;
                }
                if (link.Unacknowledged > 0 && Stopwatch.GetElapsedTime(link.FirstUnacknowledgedAt, now) >= _options.T2)
                {
                    sendAck = true;
                }
                if (link.TestFrSentAt == 0 && Stopwatch.GetElapsedTime(link.LastReceiveAt, now) >= _options.T3)
                {
                    sendTestFr = true;
                }
            }
            if (startDt && !active)
            {
                active = true;
                Interlocked.Increment(ref _connects);
                await _sink.OnLinkAsync(new Iec104LinkChange(Iec104LinkState.Active, "STARTDT con", false));
                nextInterrogation = now;
            }
            if (sendAck && !await SendAsync(link, Iec104ClientFrame.Acknowledge, cancellationToken))
            {
                return active;
            }
            if (sendTestFr)
            {
                lock (_gate)
                {
                    link.TestFrSentAt = now;
                }
                if (!await SendAsync(link, Iec104ClientFrame.TestFrAct, cancellationToken))
                {
                    return active;
                }
            }
            if (active && (now >= nextInterrogation || interrogateNow)
                && await SendInterrogationAsync(link, Iec104ClientFrame.StationInterrogation, cancellationToken) is { } interrogationSent)
            {
                if (!interrogationSent)
                {
                    return active;
                }
                Interlocked.Increment(ref _interrogations);
                nextInterrogation = now + (long)(_options.InterrogationPeriod.TotalSeconds * Stopwatch.Frequency);
            }
            if (active && countersNow
                && await SendInterrogationAsync(link, Iec104ClientFrame.CounterInterrogation, cancellationToken) is { } countersSent)
            {
                if (!countersSent)
                {
                    return active;
                }
                Interlocked.Increment(ref _counterInterrogations);
            }
        }
        return active;
    }

    /// <summary>
    /// Sends a station or counter interrogation unless an I-frame of the client is still unacknowledged: null then (the next
    /// tick tries again), else whether the link is still up.
    /// </summary>
    private async ValueTask<bool?> SendInterrogationAsync(Link link, Iec104ClientFrame frame, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            // One interrogation in flight at most: the next waits for the station to acknowledge this one.
            if (link.IFrameSentAt != 0)
            {
                return null;
            }
            if (frame == Iec104ClientFrame.StationInterrogation)
            {
                link.InterrogateNow = false;
            }
            else
            {
                link.CountersNow = false;
            }
        }
        return await SendAsync(link, frame, cancellationToken);
    }

    /// <summary>Sends one frame on <paramref name="link"/>; false when the link is (or just got) closed.</summary>
    private async ValueTask<bool> SendAsync(Link link, Iec104ClientFrame frame, CancellationToken cancellationToken)
    {
        await _sendGate.WaitAsync(cancellationToken);
        try
        {
            int length;
            lock (_gate)
            {
                if (link.Closed)
                {
                    return false;
                }
                length = WriteFrame(_send, frame, link.SendNext, link.ReceiveNext, _commonAddress);
                bool iFrame = frame is Iec104ClientFrame.StationInterrogation or Iec104ClientFrame.CounterInterrogation;
                if (iFrame || frame == Iec104ClientFrame.Acknowledge)
                {
                    // Both carry N(R): every I-frame received so far is acknowledged.
                    link.Unacknowledged = 0;
                }
                if (iFrame)
                {
                    link.SendNext = Iec104Sequence.Next(link.SendNext);
                    link.IFrameSentAt = Stopwatch.GetTimestamp();
                }
            }
            int generation = await link.Session.SendAsync(_send.AsMemory(0, length), cancellationToken);
            Interlocked.Increment(ref _framesSent);
            lock (_gate)
            {
                if (generation < 0)
                {
                    CloseLocked(link, link.Closed ? link.CloseReason : "station unreachable", protocolError: false);
                    return false;
                }
                if (link.Generation < 0)
                {
                    link.Generation = generation;
                    link.LastReceiveAt = Stopwatch.GetTimestamp();
                }
                else if (generation != link.Generation)
                {
                    CloseLocked(link, "connection lost", protocolError: false);
                    return false;
                }
                return !link.Closed;
            }
        }
        finally
        {
            _sendGate.Release();
        }
    }

    private void Close(Link link, string reason, bool protocolError)
    {
        lock (_gate)
        {
            CloseLocked(link, reason, protocolError);
        }
    }

    private static void CloseLocked(Link link, string reason, bool protocolError, bool abort = true)
    {
        if (link.Closed)
        {
            return;
        }
        link.Closed = true;
        link.CloseReason = reason;
        link.ProtocolError = protocolError;
        // Abort drops the socket at once (a reset); the session is disposed by RunAsync, so nothing reopens it.
        if (abort)
        {
            link.Session.Abort();
        }
    }

    /// <summary>What the receive side decided about one frame (decided under the lock, acted on after it).</summary>
    private enum Action : byte
    {
        /// <summary>An S- or U-frame handled, or the link closed.</summary>
        None = 0,
        /// <summary>An I-frame whose ASDU goes to the sink.</summary>
        Deliver,
        /// <summary>An I-frame whose ASDU is not delivered (a confirmation, another CA): acknowledged all the same.</summary>
        Counted,
        AnswerTestFr,
        InterrogationDone,
        CounterInterrogationDone,
        CounterInterrogationRefused,
    }

    private async ValueTask OnFrameAsync(int epoch, Memory<byte> frame, int generation)
    {
        Link? link;
        Action action;
        lock (_gate)
        {
            link = _link;
            if (link is null || link.Epoch != epoch || link.Closed || (link.Generation >= 0 && generation != link.Generation))
            {
                return;
            }
            action = Judge(link, frame.Span);
            if (link.Closed)
            {
                return;
            }
        }
        switch (action)
        {
            case Action.AnswerTestFr:
                await SendAsync(link, Iec104ClientFrame.TestFrCon, CancellationToken.None);
                return;
            case Action.InterrogationDone:
                await _sink.OnLinkAsync(new Iec104LinkChange(Iec104LinkState.InterrogationDone, "ActTerm", false));
                break;
            case Action.CounterInterrogationDone:
                await _sink.OnLinkAsync(new Iec104LinkChange(Iec104LinkState.CounterInterrogationDone, "ActTerm", false));
                break;
            case Action.CounterInterrogationRefused:
                await _sink.OnLinkAsync(new Iec104LinkChange(Iec104LinkState.CounterInterrogationRefused, link.CounterRefusal, false));
                break;
            case Action.Deliver:
                // Into the sink (the disk log) first, acknowledged after: an acknowledged point is never only in memory.
                await _sink.OnAsduAsync(frame[Iec104Limits.ApciLength..]);
                break;
            case Action.Counted:
                break;
            default:
                return; // S- and U-frames are not counted for w.
        }
        bool ack;
        lock (_gate)
        {
            if (link.Closed)
            {
                return;
            }
            if (link.Unacknowledged == 0)
            {
                link.FirstUnacknowledgedAt = Stopwatch.GetTimestamp();
            }
            link.Unacknowledged++;
            ack = link.Unacknowledged >= _options.W;
        }
        if (ack)
        {
            await SendAsync(link, Iec104ClientFrame.Acknowledge, CancellationToken.None);
        }
    }

    /// <summary>Checks one frame against the link's state and updates it; closes the link on a protocol error.</summary>
    private Action Judge(Link link, ReadOnlySpan<byte> frame)
    {
        link.LastReceiveAt = Stopwatch.GetTimestamp();
        if (!Iec104Apdu.TryParse(frame, out var apdu, out var fault))
        {
            CloseLocked(link, "malformed APDU: " + Iec104FrameErrors.Describe(fault), protocolError: true);
            return Action.None;
        }
        switch (apdu.Format)
        {
            case Iec104Format.U:
                switch (apdu.UFunction)
                {
                    case Iec104UFunction.StartDtCon:
                        link.StartDtConfirmed = true;
                        return Action.None;
                    case Iec104UFunction.TestFrAct:
                        return Action.AnswerTestFr;
                    case Iec104UFunction.TestFrCon:
                        link.TestFrSentAt = 0;
                        return Action.None;
                    default:
                        // STARTDT/STOPDT act or STOPDT con: nothing a station sends to its controlling station.
                        CloseLocked(link, $"unexpected U-frame 0x{(byte)apdu.UFunction | 0x03:X2} from the station", protocolError: true);
                        return Action.None;
                }
            case Iec104Format.S:
                Acknowledged(link, apdu.ReceiveSequence);
                return Action.None;
        }
        if (apdu.SendSequence != link.ReceiveNext)
        {
            CloseLocked(link, $"sequence error: N(S) {apdu.SendSequence}, expected {link.ReceiveNext}", protocolError: true);
            return Action.None;
        }
        link.ReceiveNext = Iec104Sequence.Next(link.ReceiveNext);
        if (!Acknowledged(link, apdu.ReceiveSequence))
        {
            return Action.None;
        }
        if (!link.StartDtConfirmed)
        {
            CloseLocked(link, "I-frame before STARTDT con", protocolError: true);
            return Action.None;
        }
        if (!Iec104Asdu.TryParse(apdu.Asdu, out var asdu, out fault) || asdu.Status != Iec104AsduStatus.WellFormed)
        {
            CloseLocked(link, "malformed ASDU: " + (asdu.Status == Iec104AsduStatus.UnknownType ? $"type {asdu.Type} unknown" : Iec104FrameErrors.Describe(fault)), protocolError: true);
            return Action.None;
        }
        if (asdu.CommonAddress != _commonAddress)
        {
            Interlocked.Increment(ref _ignored);
            return Action.Counted;
        }
        if (asdu.Type == InterrogationType)
        {
            if (asdu.Negative)
            {
                CloseLocked(link, $"the station refused the station interrogation (cause {asdu.Cause} {Iec104Causes.Name(asdu.Cause)})", protocolError: true);
                return Action.None;
            }
            if (asdu.Cause == Iec104Causes.ActivationTermination)
            {
                link.InterrogationTerminated = true;
                link.CountersNow |= _options.CounterInterrogation;
                return Action.InterrogationDone;
            }
            return Action.Counted;
        }
        if (asdu.Type == CounterInterrogationType)
        {
            // A station without counters (or without C_CI_NA_1) may refuse: the integrated totals are not read, nothing is broken.
            if (asdu.Negative)
            {
                link.CounterRefusal = $"the station refused the counter interrogation (cause {asdu.Cause} {Iec104Causes.Name(asdu.Cause)})";
                return Action.CounterInterrogationRefused;
            }
            return asdu.Cause == Iec104Causes.ActivationTermination ? Action.CounterInterrogationDone : Action.Counted;
        }
        if (asdu.Type == (byte)Iec104TypeId.M_EI_NA_1)
        {
            // End of initialisation: the station (re)started behind a connection that stayed up.
            link.InterrogateNow = true;
            return Action.Counted;
        }
        if (Iec104Types.Group(asdu.Type) != Iec104TypeGroup.Monitor || asdu.Type > 40)
        {
            Interlocked.Increment(ref _ignored);
            return Action.Counted;
        }
        return Action.Deliver;
    }

    /// <summary>An N(R) from the station: valid only between the oldest unacknowledged N(S) and the next one.</summary>
    private static bool Acknowledged(Link link, ushort receiveSequence)
    {
        if (!Iec104Sequence.IsValidAcknowledgement(link.AckedByPeer, receiveSequence, link.SendNext))
        {
            CloseLocked(link, $"N(R) {receiveSequence} acknowledges a frame never sent (next N(S) {link.SendNext})", protocolError: true);
            return false;
        }
        link.AckedByPeer = receiveSequence;
        if (receiveSequence == link.SendNext)
        {
            link.IFrameSentAt = 0;
        }
        return true;
    }

    private ValueTask OnLost(int epoch, UpstreamLoss loss, FrameFault fault)
    {
        Link? lost = null;
        lock (_gate)
        {
            if (_link is { } link && link.Epoch == epoch)
            {
                CloseLocked(link, loss switch
                {
                    UpstreamLoss.InvalidFraming => "malformed APDU: " + Iec104Framer.Instance.Describe(fault),
                    UpstreamLoss.Closed => "connection closed by the station",
                    _ => "connection lost",
                }, protocolError: loss == UpstreamLoss.InvalidFraming);
                lost = link;
            }
        }
        // The connection is gone: dispose its session now, so that no send can make it connect again (a connection the
        // station would see begin with something other than STARTDT act). RunAsync opens a new session for the next one.
        return lost is null ? ValueTask.CompletedTask : lost.Session.DisposeAsync();
    }

    /// <summary>The receive side of one connection's session.</summary>
    private sealed class Receiver(ReadOnlyIec104Client owner, int epoch) : IUpstreamReceiver
    {
        public ValueTask OnResponseAsync(Memory<byte> adu, int generation) => owner.OnFrameAsync(epoch, adu, generation);

        public ValueTask OnUpstreamLost(int generation, UpstreamLoss loss, FrameFault fault) => owner.OnLost(epoch, loss, fault);
    }

    public async ValueTask DisposeAsync()
    {
        Link? link;
        lock (_gate)
        {
            link = _link;
            if (link is not null)
            {
                CloseLocked(link, "stopping", protocolError: false, abort: false);
            }
        }
        if (link is not null)
        {
            await link.Session.DisposeAsync();
        }
        _sendGate.Dispose();
    }
}
