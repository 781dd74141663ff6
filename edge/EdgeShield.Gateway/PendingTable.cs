namespace EdgeShield.Gateway;

/// <summary>
/// The requests a client has outstanding at the PLC, at most <c>pending-per-connection</c>, whatever the
/// protocol. Each gets a gateway correlation id (a Modbus transaction id, an S7 PDU reference), unique
/// among those outstanding, so that a client reusing its own ids (or a PLC echoing a stale one) can never
/// pair a response with the wrong request. <typeparamref name="TRequest"/> is the protocol's opaque
/// expectation of the answer (what to check it against, what to audit). Guarded by the caller's lock; no
/// allocation after construction.
/// </summary>
internal sealed class PendingTable<TRequest>
    where TRequest : struct
{
    internal struct Slot
    {
        public bool InUse;
        /// <summary>The id the request carries to the PLC.</summary>
        public ushort GatewayTid;
        /// <summary>The client's own id, written back into the answer.</summary>
        public ushort ClientTid;
        /// <summary>The protocol's expectation of the answer.</summary>
        public TRequest Request;
        public long Deadline;
        /// <summary>Upstream connection generation; 0 while the request is still being sent.</summary>
        public int Generation;
        /// <summary>When the request arrived from the client (<see cref="System.Diagnostics.Stopwatch"/> ticks).</summary>
        public long ArrivedAt;
        /// <summary>The client has given up on it (it sent a new request and never pipelines): no 0B, its answer is dropped.</summary>
        public bool Abandoned;
    }

    private readonly Slot[] _slots;
    // The last requests that left the table without their PLC answer (0B sent, or abandoned and replaced):
    // gateway id → client id, so a late answer's event names both ids, as the timeout's event did.
    private readonly (ushort GatewayTid, ushort ClientTid)[] _retired;
    private int _retiredNext;
    private int _retiredCount;
    private ushort _nextTid;
    private int _count;

    public PendingTable(int capacity)
    {
        _slots = new Slot[capacity];
        _retired = new (ushort, ushort)[Math.Max(capacity, 4)];
    }

    public int Count => _count;
    public int Capacity => _slots.Length;

    /// <summary>
    /// Takes a free slot, or when all are in use the oldest abandoned one (its late answer is then
    /// unmatched: dropped all the same); false when every slot holds a request the client still awaits.
    /// </summary>
    public bool TryAdd(ushort clientTid, in TRequest request, long arrivedAt, out ushort gatewayTid)
    {
        gatewayTid = 0;
        int free = -1;
        int oldestAbandoned = -1;
        for (int i = 0; i < _slots.Length; i++)
        {
            if (!_slots[i].InUse)
            {
                free = i;
                break;
            }
            if (_slots[i].Abandoned && (oldestAbandoned < 0 || _slots[i].ArrivedAt < _slots[oldestAbandoned].ArrivedAt))
            {
                oldestAbandoned = i;
            }
        }
        if (free < 0)
        {
            if (oldestAbandoned < 0)
            {
                return false;
            }
            free = oldestAbandoned;
            Retire(_slots[free]);
            _slots[free] = default;
            _count--;
        }
        do
        {
            gatewayTid = _nextTid++;
        }
        while (IndexOf(gatewayTid) >= 0);

        _slots[free] = new Slot
        {
            InUse = true,
            GatewayTid = gatewayTid,
            ClientTid = clientTid,
            Request = request,
            Deadline = long.MaxValue,
            ArrivedAt = arrivedAt,
        };
        _count++;
        return true;
    }

    /// <summary>True when a request not given up on arrived less than <paramref name="gapTicks"/> before <paramref name="now"/>.</summary>
    public bool AnyOutstandingWithin(long now, long gapTicks)
    {
        for (int i = 0; i < _slots.Length; i++)
        {
            if (_slots[i].InUse && !_slots[i].Abandoned && now - _slots[i].ArrivedAt < gapTicks)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// A new request arrived on a connection that has never pipelined: the client has given up on every
    /// request still outstanding, unless one arrived less than <paramref name="pipelineGapTicks"/> ago —
    /// then the client pipelines, nothing is abandoned, and the result is false.
    /// </summary>
    public bool TryAbandonOutstanding(long now, long pipelineGapTicks)
    {
        if (AnyOutstandingWithin(now, pipelineGapTicks))
        {
            return false;
        }
        for (int i = 0; i < _slots.Length; i++)
        {
            if (_slots[i].InUse)
            {
                _slots[i].Abandoned = true;
            }
        }
        return true;
    }

    /// <summary>Remembers a request that left without its answer (see the ring above).</summary>
    public void Retire(in Slot slot)
    {
        _retired[_retiredNext] = (slot.GatewayTid, slot.ClientTid);
        _retiredNext = (_retiredNext + 1) % _retired.Length;
        _retiredCount = Math.Min(_retiredCount + 1, _retired.Length);
    }

    /// <summary>The client id of a recently retired gateway id, for the event of its late answer.</summary>
    public bool TryFindRetired(ushort gatewayTid, out ushort clientTid)
    {
        for (int n = 1; n <= _retiredCount; n++)
        {
            var (g, c) = _retired[(_retiredNext - n + _retired.Length) % _retired.Length];
            if (g == gatewayTid)
            {
                clientTid = c;
                return true;
            }
        }
        clientTid = 0;
        return false;
    }

    /// <summary>Removes and returns the slot of <paramref name="gatewayTid"/>.</summary>
    public bool TryTake(ushort gatewayTid, out Slot slot)
    {
        int i = IndexOf(gatewayTid);
        if (i < 0)
        {
            slot = default;
            return false;
        }
        slot = _slots[i];
        _slots[i] = default;
        _count--;
        return true;
    }

    /// <summary>Replaces what is kept of <paramref name="gatewayTid"/>'s request (once its gateway id is known).</summary>
    public void SetRequest(ushort gatewayTid, in TRequest request)
    {
        int i = IndexOf(gatewayTid);
        if (i >= 0)
        {
            _slots[i].Request = request;
        }
    }

    /// <summary>
    /// Records the connection a request went out on, and starts its response timeout: the clock
    /// runs from the moment the PLC has the request, not while the connection was being opened,
    /// so a request is never answered 0B and then still delivered (a write the client thinks failed).
    /// </summary>
    public void MarkSent(ushort gatewayTid, int generation, long deadline)
    {
        int i = IndexOf(gatewayTid);
        if (i >= 0)
        {
            _slots[i].Generation = generation;
            _slots[i].Deadline = deadline;
        }
    }

    /// <summary>Removes the first slot that matches: expired at <paramref name="now"/>, or sent on <paramref name="lostGeneration"/>.</summary>
    public bool TryTakeExpiredOrLost(long now, int lostGeneration, out Slot slot)
    {
        for (int i = 0; i < _slots.Length; i++)
        {
            ref var s = ref _slots[i];
            if (s.InUse && (s.Deadline <= now || (lostGeneration > 0 && s.Generation == lostGeneration)))
            {
                slot = s;
                s = default;
                _count--;
                return true;
            }
        }
        slot = default;
        return false;
    }

    private int IndexOf(ushort gatewayTid)
    {
        for (int i = 0; i < _slots.Length; i++)
        {
            if (_slots[i].InUse && _slots[i].GatewayTid == gatewayTid)
            {
                return i;
            }
        }
        return -1;
    }
}
