using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Gateway;

/// <summary>
/// The transactions a client has outstanding at the PLC, at most <c>pending-per-connection</c>.
/// Each gets a gateway transaction id, unique among those outstanding, so that a client reusing
/// its own ids (or a PLC echoing a stale one) can never pair a response with the wrong request.
/// Guarded by the caller's lock; no allocation after construction.
/// </summary>
internal sealed class PendingTable
{
    internal struct Slot
    {
        public bool InUse;
        public ushort GatewayTid;
        public ushort ClientTid;
        public byte Unit;
        public ResponseExpectation Expectation;
        public long Deadline;
        /// <summary>Upstream connection generation; 0 while the request is still being sent.</summary>
        public int Generation;
        public AddressSpan ReadSpan;
        public AddressSpan WriteSpan;
        public byte MeiType;
    }

    private readonly Slot[] _slots;
    private ushort _nextTid;
    private int _count;

    public PendingTable(int capacity) => _slots = new Slot[capacity];

    public int Count => _count;
    public int Capacity => _slots.Length;

    /// <summary>Takes a free slot; false when all are in use.</summary>
    public bool TryAdd(ushort clientTid, byte unit, in ModbusRequest request, out ushort gatewayTid)
    {
        gatewayTid = 0;
        int free = -1;
        for (int i = 0; i < _slots.Length; i++)
        {
            if (!_slots[i].InUse)
            {
                free = i;
                break;
            }
        }
        if (free < 0)
        {
            return false;
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
            Unit = unit,
            Expectation = request.Expectation,
            Deadline = long.MaxValue,
            ReadSpan = request.ReadSpan,
            WriteSpan = request.WriteSpan,
            MeiType = request.MeiType,
        };
        _count++;
        return true;
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
