namespace EdgeShield.Policy;

/// <summary>
/// The selects of one client connection, for <c>select-before-operate</c> (DESIGN.md "IEC 60870-5-104"): a
/// fixed table of command keys (<see cref="Iec104Command.CommandKey"/>), each selected at a time and then
/// confirmed positively by the station, or not. Allocation-free after construction.
/// </summary>
/// <remarks>
/// The session's part: <see cref="Selected"/> when it forwards an allowed select (S/E = 1, cause 6) of a rule that
/// <see cref="CompiledPolicy.RequiresSelect"/>; <see cref="Confirmed"/> when the station's activation confirmation
/// of it arrives (the mirrored ASDU with S/E = 1, cause 7; P/N = 1 removes it; never for an execute's confirmation); <see cref="EndSelection"/> after it judged any execute for the same object (one
/// execute per select, allowed or refused, as the station's own selection ends). Rules only ask <see cref="HasConfirmedSelect"/>,
/// which changes nothing: several rules may be asked about one request. <c>select-timeout</c> runs from the select,
/// as the station's own timer does. When the table is full, a new select takes the oldest entry's place.
/// Key 0 is no key (<see cref="Iec104Command.NoKey"/>, e.g. a multi-object command): it is never recorded and
/// never confirmed, so select-before-operate never allows an execute without a key.
/// Thread-safe: the connection's receive loop (selects, executes) and upstream loop (confirmations) share it
/// under a per-table lock.
/// </remarks>
public sealed class Iec104Selects
{
    /// <summary>Entries of a table made without a capacity: more selects outstanding at once than any operator makes.</summary>
    public const int DefaultCapacity = 16;

    private const byte Free = 0;
    private const byte Pending = 1;
    private const byte Positive = 2;

    private readonly ulong[] _keys;
    // The point each select is for (Iec104Command.PointOf: common address and IOA): any execute for it ends it.
    private readonly ulong[] _points;
    private readonly long[] _selectedAt;
    private readonly byte[] _states;
    private readonly Lock _lock = new();

    /// <param name="capacity">Selects held at once (1..1024).</param>
    public Iec104Selects(int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacity, 1024);
        _keys = new ulong[capacity];
        _points = new ulong[capacity];
        _selectedAt = new long[capacity];
        _states = new byte[capacity];
    }

    /// <summary>Selects held at most; a further one evicts the oldest.</summary>
    public int Capacity => _keys.Length;

    /// <summary>Selects held now (confirmed or not).</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                var count = 0;
                foreach (var state in _states)
                {
                    count += state != Free ? 1 : 0;
                }
                return count;
            }
        }
    }

    /// <summary>
    /// The gateway forwarded an allowed select of <paramref name="commandKey"/> for the object at <paramref name="point"/>
    /// (<see cref="Iec104Command.PointOf"/>) at <paramref name="now"/> (Stopwatch ticks). A repeated select starts over:
    /// it waits for its own confirmation. An execute for that point ends it (<see cref="EndSelection"/>), whatever its value.
    /// </summary>
    public void Selected(ulong commandKey, ulong point, long now)
    {
        if (commandKey == Iec104Command.NoKey)
        {
            return;
        }
        lock (_lock)
        {
            var slot = Find(commandKey);
            if (slot < 0)
            {
                slot = 0;
                for (var i = 0; i < _states.Length; i++)
                {
                    if (_states[i] == Free)
                    {
                        slot = i;
                        break;
                    }
                    if (_selectedAt[i] < _selectedAt[slot])
                    {
                        slot = i;
                    }
                }
            }
            _keys[slot] = commandKey;
            _points[slot] = point;
            _selectedAt[slot] = now;
            _states[slot] = Pending;
        }
    }

    /// <summary>
    /// The station's activation confirmation of the select <paramref name="commandKey"/> arrived: positive
    /// (P/N = 0) makes it confirmed, negative (P/N = 1) removes it. <paramref name="now"/> is for the record:
    /// the timeout runs from the select. False when no such select is held (ended, evicted, or never selected).
    /// </summary>
    public bool Confirmed(ulong commandKey, bool positive, long now)
    {
        _ = now;
        lock (_lock)
        {
            var slot = Find(commandKey);
            if (slot < 0)
            {
                return false;
            }
            _states[slot] = positive ? Positive : Free;
            return true;
        }
    }

    /// <summary>
    /// True when <paramref name="commandKey"/> was selected at most <paramref name="timeoutTicks"/> before
    /// <paramref name="now"/> and the station confirmed it positively. Pure: changes nothing.
    /// </summary>
    public bool HasConfirmedSelect(ulong commandKey, long timeoutTicks, long now)
    {
        lock (_lock)
        {
            var slot = Find(commandKey);
            if (slot < 0 || _states[slot] != Positive)
            {
                return false;
            }
            var age = now - _selectedAt[slot];
            return age >= 0 && age <= timeoutTicks;
        }
    }

    /// <summary>
    /// An execute for <paramref name="point"/> was judged (allowed or refused, whatever its value): every select of
    /// that object ends, as a station ends its selection on any execute for the object (a refused one never reaches
    /// the station, but the client was answered negatively and must select again). The number of selects ended.
    /// </summary>
    public int EndSelection(ulong point)
    {
        if (point == Iec104Command.NoKey)
        {
            return 0;
        }
        lock (_lock)
        {
            var ended = 0;
            for (var i = 0; i < _states.Length; i++)
            {
                if (_states[i] != Free && _points[i] == point)
                {
                    _states[i] = Free;
                    ended++;
                }
            }
            return ended;
        }
    }

    /// <summary>Forgets every select (the connection to the station was lost or STOPDT).</summary>
    public void Clear()
    {
        lock (_lock)
        {
            Array.Clear(_states);
        }
    }

    private int Find(ulong commandKey)
    {
        if (commandKey == Iec104Command.NoKey)
        {
            return -1;
        }
        for (var i = 0; i < _keys.Length; i++)
        {
            if (_states[i] != Free && _keys[i] == commandKey)
            {
                return i;
            }
        }
        return -1;
    }
}
