using System.Diagnostics;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Gateway.Iec104;

/// <summary>
/// One leg of the IEC 104 protocol break (docs/IEC104.md "APCI"): the gateway's own sequence numbers,
/// k/w windows and t1/t2/t3 state toward one peer — the client (the gateway is its station) or the
/// station (the gateway is its controlling station). Numbers sent are assigned only under the leg's send
/// lock, in send order; acknowledgements received are applied by the leg's receive flow.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "As ClientConnection's: a semaphore holds no OS handle unless its wait handle is asked for; flows may still touch it briefly after close.")]
internal sealed class Iec104Leg
{
    private readonly int _k;
    private readonly int _w;
    // One credit per I-frame the peer has not acknowledged yet: at most k in flight.
    private readonly SemaphoreSlim _window;
    private int _sendNext;
    private int _receiveNext;
    private int _ackedByPeer;
    private int _ackSent;
    private long _oldestUnackedSentAt;
    private long _lastReceiveAt;
    private long _lastAckSentAt;
    private long _testSentAt;
    // Received I-frames the gateway has not passed on yet are not acknowledged to the peer (so the peer's own k bounds
    // what the gateway holds): the N(S) of the frame being judged, and of the oldest one held back in a queue; -1: none.
    private int _judging = -1;
    private int _heldFrom = -1;

    public Iec104Leg(string name, int k, int w)
    {
        Name = name;
        _k = k;
        _w = w;
        _window = new SemaphoreSlim(k);
        _lastReceiveAt = Stopwatch.GetTimestamp();
        _lastAckSentAt = _lastReceiveAt;
    }

    /// <summary>"client" or "station", for events.</summary>
    public string Name { get; }

    /// <summary>V(R): the N(S) the next I-frame from the peer must carry.</summary>
    public ushort ReceiveNext => (ushort)Volatile.Read(ref _receiveNext);

    /// <summary>I-frames sent and not yet acknowledged by the peer.</summary>
    public int InFlight => Iec104Sequence.Distance((ushort)Volatile.Read(ref _ackedByPeer), (ushort)Volatile.Read(ref _sendNext));

    /// <summary>
    /// The N(R) the gateway may give: V(R), less the frames it has received but not passed on (the one being judged,
    /// and from the oldest one held back on). Read in this order (V(R), judged, held): the receive flow marks a frame
    /// before it counts it, and holds it back before it ends its judging.
    /// </summary>
    private ushort AcknowledgeableNext
    {
        get
        {
            var next = ReceiveNext;
            int judging = Volatile.Read(ref _judging);
            int held = Volatile.Read(ref _heldFrom);
            return held >= 0 ? (ushort)held : judging >= 0 ? (ushort)judging : next;
        }
    }

    /// <summary>I-frames received and not yet acknowledged to the peer (those passed on: held ones wait).</summary>
    public int Unacknowledged => Iec104Sequence.Distance((ushort)Volatile.Read(ref _ackSent), AcknowledgeableNext);

    /// <summary>w I-frames are unacknowledged: acknowledge now.</summary>
    public bool MustAcknowledge => Unacknowledged >= _w;

    /// <summary>When the last frame of any format arrived from the peer (t3).</summary>
    public long LastReceiveAt => Volatile.Read(ref _lastReceiveAt);

    /// <summary>
    /// Waits for room in the peer's window (k) for one I-frame; false when none opened within
    /// <paramref name="timeout"/> (t1: the peer stopped acknowledging) or the connection closed.
    /// </summary>
    public async ValueTask<bool> TakeWindowAsync(TimeSpan timeout, CancellationToken closed)
    {
        if (_window.Wait(0, CancellationToken.None))
        {
            return true;
        }
        try
        {
            return await _window.WaitAsync(timeout, closed);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Takes room in the peer's window (k) for one I-frame if there is some now; never waits.</summary>
    public bool TryTakeWindow() => _window.Wait(0, CancellationToken.None);

    /// <summary>Gives back a window credit taken for an I-frame that was not sent after all.</summary>
    public void ReturnWindow() => _window.Release();

    /// <summary>
    /// Under the send lock: the N(S) and N(R) of the next I-frame, which also acknowledges every I-frame received.
    /// </summary>
    public (ushort SendSequence, ushort ReceiveSequence) NextIFrame(long now)
    {
        var ns = (ushort)_sendNext;
        if (InFlight == 0)
        {
            Volatile.Write(ref _oldestUnackedSentAt, now);
        }
        Volatile.Write(ref _sendNext, Iec104Sequence.Next(ns));
        return (ns, Acknowledge(now));
    }

    /// <summary>Under the send lock: the N(R) of an S-frame (or an I-frame), acknowledging every I-frame received.</summary>
    public ushort Acknowledge(long now)
    {
        var nr = AcknowledgeableNext;
        Volatile.Write(ref _ackSent, nr);
        Volatile.Write(ref _lastAckSentAt, now);
        return nr;
    }

    /// <summary>Any frame arrived from the peer (t3 restarts).</summary>
    public void Received(long now) => Volatile.Write(ref _lastReceiveAt, now);

    /// <summary>
    /// Checks an I-frame's N(S) against V(R) and counts it received. False on a sequence error (the peer
    /// skipped or repeated a frame): the leg cannot go on.
    /// </summary>
    /// <param name="sendSequence">The frame's N(S).</param>
    /// <param name="untilJudged">Not acknowledged until <see cref="Judged"/> (the client's frames, which may be held back).</param>
    public bool ReceiveIFrame(ushort sendSequence, bool untilJudged = false)
    {
        if (sendSequence != ReceiveNext)
        {
            return false;
        }
        if (untilJudged)
        {
            // Marked before it is counted: no acknowledgement covers it until it is passed on or held back.
            Volatile.Write(ref _judging, sendSequence);
        }
        Volatile.Write(ref _receiveNext, Iec104Sequence.Next(sendSequence));
        return true;
    }

    /// <summary>The receive flow is done with the frame it last received: passed on (sent or answered) or held back.</summary>
    public void Judged() => Volatile.Write(ref _judging, -1);

    /// <summary>
    /// Frames from <paramref name="sendSequence"/> on are held back (queued, not passed on yet): not acknowledged;
    /// -1 when none is any more. Set before <see cref="Judged"/> for a frame held back.
    /// </summary>
    public void HoldFrom(int sendSequence) => Volatile.Write(ref _heldFrom, sendSequence);

    /// <summary>
    /// Applies the peer's N(R): frees the window credits of the I-frames it acknowledges. False when it
    /// acknowledges a frame never sent or goes backwards (a protocol error).
    /// </summary>
    public bool ApplyAcknowledgement(ushort receiveSequence, long now)
    {
        var acked = (ushort)Volatile.Read(ref _ackedByPeer);
        var sent = (ushort)Volatile.Read(ref _sendNext);
        int newly = Iec104Sequence.Distance(acked, receiveSequence);
        if (newly > Iec104Sequence.Distance(acked, sent))
        {
            return false;
        }
        if (newly == 0)
        {
            return true;
        }
        Volatile.Write(ref _ackedByPeer, receiveSequence);
        // t1 runs from the oldest frame still unacknowledged; progress restarts it (a slight relaxation: the
        // send time of each frame is not kept).
        Volatile.Write(ref _oldestUnackedSentAt, receiveSequence == sent ? 0 : now);
        _window.Release(newly);
        return true;
    }

    /// <summary>A TESTFR act went out (t1 runs until its con).</summary>
    public void TestSent(long now) => Volatile.Write(ref _testSentAt, now);

    /// <summary>The peer's TESTFR con arrived.</summary>
    public void TestConfirmed() => Volatile.Write(ref _testSentAt, 0);

    /// <summary>t1 expired: an I-frame or a TESTFR act unacknowledged for longer than <paramref name="t1"/>.</summary>
    public bool T1Expired(long now, long t1)
    {
        long oldest = Volatile.Read(ref _oldestUnackedSentAt);
        long test = Volatile.Read(ref _testSentAt);
        return (oldest != 0 && InFlight > 0 && now - oldest > t1) || (test != 0 && now - test > t1);
    }

    /// <summary>t2: I-frames received and unacknowledged while none was acknowledged for <paramref name="t2"/>.</summary>
    public bool T2Due(long now, long t2) => Unacknowledged > 0 && now - Volatile.Read(ref _lastAckSentAt) >= t2;

    /// <summary>t3: the peer has been silent for <paramref name="t3"/> and no TESTFR is outstanding.</summary>
    public bool T3Due(long now, long t3) => Volatile.Read(ref _testSentAt) == 0 && now - LastReceiveAt >= t3;

    /// <summary>Frees every credit (the connection closes: nothing waits for the window any more).</summary>
    public void Close()
    {
        _window.Release(_k);
    }
}
