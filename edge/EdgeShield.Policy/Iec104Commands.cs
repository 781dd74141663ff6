using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Policy;

/// <summary>
/// The commands of one connection that the station has not finished answering (DESIGN.md "IEC 60870-5-104":
/// a confirmation or termination must match a command outstanding on that connection). A command is keyed by
/// type, common address and first IOA; it is <em>confirmed</em> by the station's activation (or deactivation)
/// confirmation and finished by its termination, a negative confirmation, or, once confirmed, the end of
/// its wait for a termination (not every command is terminated). Fixed capacity; each slot keeps a copy of
/// the command's ASDU so that a command the station never confirmed is answered to the client as the station
/// would refuse it. Thread-safe (the receive loop adds, the upstream loop and the sweeper take). The live session
/// (EdgeShield.Gateway) and <c>replay</c> (<see cref="Replay.Iec104PolicyReplay"/>) both keep their commands in it.
/// </summary>
public sealed class Iec104Commands
{
    /// <summary>The longest ASDU an APDU carries (253 - 4 control octets).</summary>
    public const int MaxAsdu = 249;

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1051", Justification = "A plain record of one table slot, copied out under the table's lock (the session's and replay's view).")]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1034", Justification = "It belongs to the table.")]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1815", Justification = "Never compared.")]
    public struct Slot
    {
        public bool InUse;
        public bool Confirmed;
        /// <summary>A select (S/E = 1) of a rule with select-before-operate: its positive confirmation arms the execute.</summary>
        public bool IsSelect;
        /// <summary>An activation the station terminates (cause 10) after confirming it: an execute of a command or set-point, an interrogation.</summary>
        public bool ExpectsTermination;
        public byte Type;
        public byte Cause;
        public ushort CommonAddress;
        public uint Ioa;
        public ulong CommandKey;
        /// <summary>Unconfirmed: when the gateway answers it as lost. Confirmed: when it stops waiting for a termination.</summary>
        public long Deadline;
        public long Sequence;
        public int AsduLength;
    }

    private readonly Slot[] _slots;
    private readonly byte[] _asdus;
    private long _sequence;

    public Iec104Commands(int capacity)
    {
        _slots = new Slot[capacity];
        _asdus = new byte[capacity * MaxAsdu];
    }

    public int Count { get; private set; }

    /// <summary>
    /// A request the station answers with a confirmation, so kept until answered: a well-formed activation or
    /// deactivation (cause 6 or 8) of a type that is not a monitor type, or a read (C_RD_NA_1, cause 5).
    /// </summary>
    public static bool Tracks(in Iec104Asdu asdu) =>
        asdu.Status == Iec104AsduStatus.WellFormed
        && (asdu.Type == 102 ? asdu.Cause == Iec104Refusals.CauseRequest : asdu.Cause is Iec104Refusals.CauseActivation or Iec104Refusals.CauseDeactivation)
        && Iec104Types.Group(asdu.Type) is not Iec104TypeGroup.Monitor;

    /// <summary>
    /// A command the station also terminates (actterm) after confirming it: an activation that is not a select of
    /// a control type (45-51, 58-64) or an interrogation (100, 101). Others end with their confirmation.
    /// </summary>
    public static bool ExpectsTermination(in Iec104Asdu asdu) =>
        asdu.Cause == Iec104Refusals.CauseActivation && !asdu.IsSelect
        && asdu.Type is (>= 45 and <= 51) or (>= 58 and <= 64) or 100 or 101;

    /// <summary>
    /// The deadline of a command added before it goes to the station (the gateway may hold it back while the station's
    /// window is full): it never expires until <see cref="Sent"/> starts its clock.
    /// </summary>
    public const long NotSent = long.MaxValue - 1;

    /// <summary>
    /// The oldest command added with <see cref="NotSent"/> is going to the station now: its deadline is <paramref name="deadline"/>.
    /// Commands go in the order they were added, so the oldest is the one.
    /// </summary>
    public void Sent(long deadline)
    {
        lock (_slots)
        {
            int oldest = -1;
            for (int i = 0; i < _slots.Length; i++)
            {
                if (_slots[i].InUse && _slots[i].Deadline == NotSent && (oldest < 0 || _slots[i].Sequence < _slots[oldest].Sequence))
                {
                    oldest = i;
                }
            }
            if (oldest >= 0)
            {
                _slots[oldest].Deadline = deadline;
            }
        }
    }

    /// <summary>Adds a request of <see cref="Tracks"/> that is forwarded; false when the table is full.</summary>
    public bool TryAdd(in Iec104Asdu asdu, bool isSelect, long deadline) =>
        TryAdd(asdu.Type, asdu.Cause, asdu.CommonAddress, asdu.FirstIoa, Iec104Command.KeyOf(asdu), isSelect, ExpectsTermination(asdu), asdu.Bytes, deadline);

    /// <summary>Adds a command the gateway forwards; false when the table is full.</summary>
    public bool TryAdd(byte type, byte cause, ushort commonAddress, uint ioa, ulong commandKey, bool isSelect, bool expectsTermination, ReadOnlySpan<byte> asdu, long deadline)
    {
        lock (_slots)
        {
            for (int i = 0; i < _slots.Length; i++)
            {
                if (_slots[i].InUse)
                {
                    continue;
                }
                _slots[i] = new Slot
                {
                    InUse = true, Type = type, Cause = cause, CommonAddress = commonAddress, Ioa = ioa, CommandKey = commandKey,
                    IsSelect = isSelect, ExpectsTermination = expectsTermination, Deadline = deadline, Sequence = ++_sequence, AsduLength = asdu.Length,
                };
                asdu.CopyTo(_asdus.AsSpan(i * MaxAsdu, MaxAsdu));
                Count++;
                return true;
            }
            return false;
        }
    }

    /// <summary>
    /// Matches a confirmation or termination from the station to the oldest command it can answer: cause 7 or 9
    /// an unconfirmed activation or deactivation; cause 10 a confirmed command; a negative confirmation
    /// (P/N = 1) an unconfirmed command first. Updates or finishes that command.
    /// </summary>
    /// <returns>False when no outstanding command matches (the answer is dropped).</returns>
    public bool TryMatch(byte type, byte cause, bool negative, ushort commonAddress, uint ioa, long now, long terminationWait, out Slot matched)
    {
        lock (_slots)
        {
            int best = -1;
            for (int pass = 0; pass < 2 && best < 0; pass++)
            {
                // Pass 0: the commands this answer is for first; pass 1: what a negative answer may also close.
                for (int i = 0; i < _slots.Length; i++)
                {
                    ref var slot = ref _slots[i];
                    if (!slot.InUse || slot.Type != type || slot.CommonAddress != commonAddress || slot.Ioa != ioa)
                    {
                        continue;
                    }
                    bool fits = cause switch
                    {
                        7 => !slot.Confirmed && slot.Cause == 6,
                        9 => !slot.Confirmed && slot.Cause == 8,
                        10 => slot.Confirmed || pass == 1,
                        _ => negative && (pass == 1 || !slot.Confirmed),
                    };
                    if (fits && (best < 0 || slot.Sequence < _slots[best].Sequence))
                    {
                        best = i;
                    }
                }
            }
            if (best < 0)
            {
                matched = default;
                return false;
            }
            ref var found = ref _slots[best];
            matched = found;
            if (!negative && cause == 7 && found.ExpectsTermination)
            {
                // Confirmed: it now waits for its termination, which some stations never send. A select, a clock
                // synchronisation, a reset, a test command, a parameter or a deactivation is finished by its
                // confirmation: kept waiting for a termination that never comes, each would hold a slot for t1
                // and a client that sends more than pending-per-connection of them within t1 would be refused.
                found.Confirmed = true;
                found.Deadline = now + terminationWait;
            }
            else
            {
                found = default;
                Count--;
            }
            return true;
        }
    }

    /// <summary>A read (C_RD_NA_1) is answered by the point's data with cause 5: finishes the oldest read of that address.</summary>
    public void ReadAnswered(ushort commonAddress, uint ioa)
    {
        lock (_slots)
        {
            int best = -1;
            for (int i = 0; i < _slots.Length; i++)
            {
                ref var slot = ref _slots[i];
                if (slot.InUse && slot.Type == 102 && slot.CommonAddress == commonAddress && slot.Ioa == ioa && (best < 0 || slot.Sequence < _slots[best].Sequence))
                {
                    best = i;
                }
            }
            if (best >= 0)
            {
                _slots[best] = default;
                Count--;
            }
        }
    }

    /// <summary>
    /// Takes a command past its deadline at <paramref name="now"/> (every command with <see cref="long.MaxValue"/>):
    /// an unconfirmed one is copied out with its ASDU (to be answered as lost); a confirmed one simply ends.
    /// </summary>
    /// <returns>False when none is due.</returns>
    public bool TryTakeExpired(long now, out Slot expired, Span<byte> asdu)
    {
        lock (_slots)
        {
            for (int i = 0; i < _slots.Length; i++)
            {
                ref var slot = ref _slots[i];
                if (!slot.InUse || (now != long.MaxValue && slot.Deadline > now))
                {
                    continue;
                }
                expired = slot;
                _asdus.AsSpan(i * MaxAsdu, slot.AsduLength).CopyTo(asdu);
                slot = default;
                Count--;
                return true;
            }
            expired = default;
            return false;
        }
    }
}
