namespace EdgeShield.Protocols.Capture;

/// <summary>Receives one direction of a TCP stream in order from a <see cref="TcpStreamAssembler"/>.</summary>
public interface ITcpStreamSink
{
    /// <summary>The next bytes of the stream; <paramref name="frameNumber"/> is the packet that completed them.</summary>
    void OnData(ReadOnlySpan<byte> data, int frameNumber);

    /// <summary>Bytes were never captured: what follows does not continue what came before.</summary>
    void OnGap(int frameNumber, long missingBytes);
}

/// <summary>
/// Reassembles one direction of a TCP connection from captured segments: delivers bytes in
/// sequence order exactly once, drops retransmitted bytes (whole or overlapping), holds segments
/// that arrive ahead of a hole until the hole fills, and reports a gap when it cannot (more than
/// <see cref="MaxHeldSegments"/> segments or <see cref="HeldBytesCapacity"/> bytes waiting, a FIN or
/// the end of the capture with a hole still open). Allocation-free once warm: held bytes live in a
/// buffer from a <see cref="HeldBufferPool"/> (grown by doubling up to <see cref="HeldBytesCapacity"/>)
/// while any are held.
/// </summary>
/// <remarks>
/// Sequence numbers compare modulo 2^32 (RFC 793 3.3), so streams that wrap are handled. When the
/// capture starts mid-connection (no SYN), the first segment seen fixes the start.
/// </remarks>
public sealed class TcpStreamAssembler
{
    /// <summary>Segments that may wait ahead of a hole.</summary>
    public const int MaxHeldSegments = 32;

    /// <summary>Bytes that may wait ahead of a hole.</summary>
    public const int HeldBytesCapacity = 256 * 1024;

    private readonly uint[] _heldSequence = new uint[MaxHeldSegments];
    private readonly int[] _heldOffset = new int[MaxHeldSegments];
    private readonly int[] _heldLength = new int[MaxHeldSegments];
    private readonly int[] _heldFrame = new int[MaxHeldSegments];
    private readonly HeldBufferPool _pool;
    private byte[]? _heldBytes;
    private int _heldCount;
    private int _heldUsed;
    private uint _next;

    /// <summary>Creates an assembler whose held bytes come from <paramref name="pool"/> (its own when null).</summary>
    public TcpStreamAssembler(HeldBufferPool? pool = null) => _pool = pool ?? new HeldBufferPool();

    /// <summary>True once the start of the stream is known (SYN or first data).</summary>
    public bool Started { get; private set; }

    /// <summary>True after a FIN or RST was seen in this direction.</summary>
    public bool Ended { get; private set; }

    /// <summary>The initial sequence number seen in a SYN, if any.</summary>
    public uint? InitialSequence { get; private set; }

    /// <summary>Segments (or parts) whose bytes had already been delivered.</summary>
    public long Retransmissions { get; private set; }

    /// <summary>Segments that arrived ahead of a hole and were held.</summary>
    public long OutOfOrder { get; private set; }

    /// <summary>Holes that were never filled.</summary>
    public long Gaps { get; private set; }

    /// <summary>Forgets everything, returning held memory; ready for a new connection.</summary>
    public void Reset()
    {
        ReturnHeld();
        _heldCount = 0;
        _heldUsed = 0;
        _next = 0;
        Started = false;
        Ended = false;
        InitialSequence = null;
        Retransmissions = 0;
        OutOfOrder = 0;
        Gaps = 0;
    }

    /// <summary>Takes one captured segment of this direction.</summary>
    public void Push(uint sequence, TcpControl flags, ReadOnlySpan<byte> payload, int frameNumber, ITcpStreamSink sink)
    {
        ArgumentNullException.ThrowIfNull(sink);
        if ((flags & TcpControl.Syn) != 0)
        {
            if (!Started || InitialSequence != sequence)
            {
                InitialSequence = sequence;
                _next = sequence + 1;
                Started = true;
            }
            sequence++; // data on a SYN (TCP Fast Open) follows the SYN's sequence number
        }
        if (!payload.IsEmpty)
        {
            if (!Started)
            {
                _next = sequence;
                Started = true;
            }
            Accept(sequence, payload, frameNumber, sink);
        }
        if ((flags & (TcpControl.Fin | TcpControl.Rst)) != 0 && !Ended)
        {
            Ended = true;
            Flush(frameNumber, sink);
        }
    }

    /// <summary>
    /// The peer acknowledged bytes up to <paramref name="acknowledgment"/>: a hole below it was
    /// received but never captured (capture loss), so held segments up to it are delivered after a gap
    /// now rather than at the end of the stream.
    /// </summary>
    public void Acknowledge(uint acknowledgment, int frameNumber, ITcpStreamSink sink)
    {
        ArgumentNullException.ThrowIfNull(sink);
        while (_heldCount > 0 && (int)(acknowledgment - _next) > 0 && (int)(_heldSequence[Earliest()] - acknowledgment) < 0)
        {
            SkipToEarliestHeld(frameNumber, sink);
        }
    }

    /// <summary>Closes the direction at the end of the capture: held segments beyond a hole are delivered after a gap.</summary>
    public void Flush(int frameNumber, ITcpStreamSink sink)
    {
        ArgumentNullException.ThrowIfNull(sink);
        while (_heldCount > 0)
        {
            SkipToEarliestHeld(frameNumber, sink);
        }
    }

    private void Accept(uint sequence, ReadOnlySpan<byte> payload, int frameNumber, ITcpStreamSink sink)
    {
        int ahead = (int)(sequence - _next);
        if (ahead <= 0)
        {
            if ((long)ahead + payload.Length <= 0)
            {
                Retransmissions++;
                return;
            }
            if (ahead < 0)
            {
                Retransmissions++;
                payload = payload[(-ahead)..];
            }
            _next += (uint)payload.Length;
            sink.OnData(payload, frameNumber);
            DeliverHeld(frameNumber, sink);
            return;
        }

        OutOfOrder++;
        if (payload.Length > HeldBytesCapacity)
        {
            // Cannot be held at all: give up on the hole now.
            while (_heldCount > 0 && (int)(_heldSequence[Earliest()] - sequence) < 0)
            {
                SkipToEarliestHeld(frameNumber, sink);
            }
            Gaps++;
            sink.OnGap(frameNumber, (int)(sequence - _next));
            _next = sequence + (uint)payload.Length;
            sink.OnData(payload, frameNumber);
            DeliverHeld(frameNumber, sink);
            return;
        }
        while (_heldCount == MaxHeldSegments || _heldUsed + payload.Length > HeldBytesCapacity)
        {
            SkipToEarliestHeld(frameNumber, sink);
            if ((int)(sequence - _next) <= 0)
            {
                Accept(sequence, payload, frameNumber, sink);
                return;
            }
        }
        EnsureHeldCapacity(_heldUsed + payload.Length);
        payload.CopyTo(_heldBytes.AsSpan(_heldUsed));
        _heldSequence[_heldCount] = sequence;
        _heldOffset[_heldCount] = _heldUsed;
        _heldLength[_heldCount] = payload.Length;
        _heldFrame[_heldCount] = frameNumber;
        _heldCount++;
        _heldUsed += payload.Length;
    }

    /// <summary>Delivers held segments that now continue the stream (in the order of their sequence numbers).</summary>
    private void DeliverHeld(int frameNumber, ITcpStreamSink sink)
    {
        while (_heldCount > 0)
        {
            int i = Earliest();
            int ahead = (int)(_heldSequence[i] - _next);
            if (ahead > 0)
            {
                return;
            }
            var bytes = _heldBytes.AsSpan(_heldOffset[i], _heldLength[i]);
            if (-(long)ahead < bytes.Length)
            {
                bytes = bytes[(-ahead)..];
                _next += (uint)bytes.Length;
                // The bytes became available when the segment that filled the hole arrived.
                sink.OnData(bytes, Math.Max(frameNumber, _heldFrame[i]));
            }
            else
            {
                Retransmissions++;
            }
            RemoveHeld(i);
        }
    }

    private void SkipToEarliestHeld(int frameNumber, ITcpStreamSink sink)
    {
        int i = Earliest();
        long missing = (int)(_heldSequence[i] - _next);
        if (missing > 0)
        {
            Gaps++;
            sink.OnGap(frameNumber, missing);
            _next = _heldSequence[i];
        }
        DeliverHeld(frameNumber, sink);
    }

    private int Earliest()
    {
        int best = 0;
        for (int i = 1; i < _heldCount; i++)
        {
            if ((int)(_heldSequence[i] - _heldSequence[best]) < 0)
            {
                best = i;
            }
        }
        return best;
    }

    private void RemoveHeld(int index)
    {
        _heldCount--;
        _heldSequence[index] = _heldSequence[_heldCount];
        _heldOffset[index] = _heldOffset[_heldCount];
        _heldLength[index] = _heldLength[_heldCount];
        _heldFrame[index] = _heldFrame[_heldCount];
        if (_heldCount == 0)
        {
            // Bump allocation inside the rented buffer: reclaimed when nothing waits.
            _heldUsed = 0;
            ReturnHeld();
        }
    }

    private void EnsureHeldCapacity(int needed)
    {
        if (_heldBytes is null || _heldBytes.Length < needed)
        {
            var bigger = _pool.Rent(Math.Max(needed, Math.Min((_heldBytes?.Length ?? 0) * 2, HeldBytesCapacity)));
            if (_heldBytes is not null)
            {
                _heldBytes.AsSpan(0, _heldUsed).CopyTo(bigger);
                _pool.Return(_heldBytes);
            }
            _heldBytes = bigger;
        }
    }

    private void ReturnHeld()
    {
        if (_heldBytes is not null)
        {
            _pool.Return(_heldBytes);
            _heldBytes = null;
        }
    }
}
