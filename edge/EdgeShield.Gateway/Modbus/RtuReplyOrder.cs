using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Gateway.Modbus;

/// <summary>
/// Keeps the answers of one RTU-over-TCP connection in request order. RTU has no transaction id: a
/// client pairs each answer with its oldest unanswered request, so a refusal made at once for
/// request n+1 must wait until request n has its answer (the PLC's, or the gateway's 0B).
/// </summary>
/// <remarks>
/// A ring of places in request order, each holding one answer of at most one RTU ADU. A forwarded
/// request reserves its place before it is sent; a refusal takes a place already filled, or goes out
/// at once when nothing is waiting ahead of it (the common case, with no copy). Whoever fills the
/// place at the head sends, in order, every filled place from there; one sender at a time. A full
/// ring makes the receive loop wait, and TCP pushes back on the client. Memory is fixed per connection.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "As in ClientConnection: the semaphore holds no OS handle unless its wait handle is asked for, which it is not, and flows of a closing connection may still touch it.")]
internal sealed class RtuReplyOrder
{
    private const byte Empty = 0;
    private const byte Waiting = 1;
    private const byte Filled = 2;

    private readonly object _gate = new();
    private readonly Func<ReadOnlyMemory<byte>, ValueTask> _send;
    private readonly SemaphoreSlim _room;
    private readonly ushort[] _gatewayTids;
    private readonly byte[] _states;
    private readonly int[] _lengths;
    private readonly byte[] _data;
    private int _head;
    private int _count;
    private bool _sending;

    /// <param name="capacity">Answers that may wait for an earlier one: the pending limit plus the refusals behind it.</param>
    /// <param name="send">Sends bytes to the client; called by one flow at a time, in request order.</param>
    public RtuReplyOrder(int capacity, Func<ReadOnlyMemory<byte>, ValueTask> send)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _send = send;
        _room = new SemaphoreSlim(capacity, capacity);
        _gatewayTids = new ushort[capacity];
        _states = new byte[capacity];
        _lengths = new int[capacity];
        _data = new byte[capacity * RtuFramer.MaxAduLength];
    }

    /// <summary>Takes the next place for the answer to a request about to be forwarded with <paramref name="gatewayTid"/>.</summary>
    public async ValueTask ReserveAsync(ushort gatewayTid, CancellationToken cancellationToken)
    {
        await _room.WaitAsync(cancellationToken);
        lock (_gate)
        {
            int index = (_head + _count) % _states.Length;
            _gatewayTids[index] = gatewayTid;
            _lengths[index] = 0;
            _states[index] = Waiting;
            _count++;
        }
    }

    /// <summary>An answer made by the gateway for a request it did not forward: sent after every earlier request's answer.</summary>
    public async ValueTask ReplyAsync(ReadOnlyMemory<byte> reply, CancellationToken cancellationToken)
    {
        bool direct;
        lock (_gate)
        {
            direct = _count == 0 && !_sending;
            _sending |= direct;
        }
        if (direct)
        {
            try
            {
                await _send(reply);
            }
            finally
            {
                lock (_gate)
                {
                    _sending = false;
                }
            }
            // Answers may have been queued behind this one meanwhile (never ahead: nothing was waiting).
            await FlushAsync();
            return;
        }
        await _room.WaitAsync(cancellationToken);
        lock (_gate)
        {
            int index = (_head + _count) % _states.Length;
            _gatewayTids[index] = 0;
            Store(index, reply.Span);
            _count++;
        }
        await FlushAsync();
    }

    /// <summary>The answer to the forwarded request <paramref name="gatewayTid"/> (PLC reply or the gateway's 0B); empty when none will come (broadcast).</summary>
    public ValueTask CompleteAsync(ushort gatewayTid, ReadOnlySpan<byte> reply)
    {
        lock (_gate)
        {
            int index = -1;
            for (int i = 0; i < _count; i++)
            {
                int at = (_head + i) % _states.Length;
                if (_states[at] == Waiting && _gatewayTids[at] == gatewayTid)
                {
                    index = at;
                    break;
                }
            }
            if (index < 0)
            {
                return ValueTask.CompletedTask; // not reserved: the connection is closing
            }
            Store(index, reply);
        }
        return FlushAsync();
    }

    /// <summary>
    /// Gives up the places of every request still waiting for its answer: the client abandoned them
    /// (it sent a new request after its own timeout), so nothing will be sent for them and the answers
    /// behind them must not wait. A late answer for one of them finds no place and is not sent.
    /// </summary>
    public void SkipWaiting()
    {
        lock (_gate)
        {
            for (int i = 0; i < _count; i++)
            {
                int at = (_head + i) % _states.Length;
                if (_states[at] == Waiting)
                {
                    _lengths[at] = 0;
                    _states[at] = Filled;
                }
            }
        }
    }

    private void Store(int index, ReadOnlySpan<byte> reply)
    {
        int length = Math.Min(reply.Length, RtuFramer.MaxAduLength);
        reply[..length].CopyTo(_data.AsSpan(index * RtuFramer.MaxAduLength, RtuFramer.MaxAduLength));
        _lengths[index] = length;
        _states[index] = Filled;
    }

    /// <summary>Sends every filled answer from the head, in order; returns at once when another flow is sending.</summary>
    private async ValueTask FlushAsync()
    {
        lock (_gate)
        {
            if (_sending)
            {
                return;
            }
            _sending = true;
        }
        while (true)
        {
            int index;
            int length;
            lock (_gate)
            {
                if (_count == 0 || _states[_head] != Filled)
                {
                    _sending = false;
                    return;
                }
                index = _head;
                length = _lengths[index];
            }
            try
            {
                if (length > 0)
                {
                    await _send(_data.AsMemory(index * RtuFramer.MaxAduLength, length));
                }
            }
            finally
            {
                lock (_gate)
                {
                    _states[index] = Empty;
                    _head = (_head + 1) % _states.Length;
                    _count--;
                }
                _room.Release();
            }
        }
    }
}
