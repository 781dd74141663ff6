using System.Buffers;

namespace EdgeShield.Protocols.S7comm;

/// <summary>
/// Joins the payloads of COTP DT fragments up to the one with EOT into one S7 PDU (ISO 8073, 13.7:
/// a TSDU is the concatenation of the DTs up to EOT). Fragments are copied into a buffer the caller
/// gives once (one per connection direction); nothing is allocated per PDU. A PDU that arrives whole
/// in one DT is returned in place, without a copy.
/// </summary>
/// <remarks>Not thread-safe: one instance per direction of one connection.</remarks>
public sealed class CotpReassembler
{
    private readonly byte[] _buffer;
    private int _maxPduSize;
    private int _length;
    private bool _partial;

    /// <summary>Creates a reassembler over <paramref name="buffer"/> that accepts PDUs up to <paramref name="maxPduSize"/> bytes.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The maximum is below 1 or larger than the buffer (a programming fault).</exception>
    public CotpReassembler(byte[] buffer, int maxPduSize)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        _buffer = buffer;
        MaxPduSize = maxPduSize;
    }

    /// <summary>
    /// The largest PDU accepted; lower it to the PDU size negotiated by setup-communication. It never
    /// exceeds the buffer's length.
    /// </summary>
    public int MaxPduSize
    {
        get => _maxPduSize;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, _buffer.Length);
            _maxPduSize = value;
        }
    }

    /// <summary>Bytes of a PDU held so far (fragments without EOT).</summary>
    public int PendingLength => _length;

    /// <summary>True while fragments of an unfinished PDU are held (even empty ones).</summary>
    public bool HasPending => _partial;

    /// <summary>Takes one DT.</summary>
    /// <returns>
    /// <see cref="OperationStatus.Done"/> with the whole PDU in <paramref name="pdu"/> (valid until the next
    /// call); <see cref="OperationStatus.NeedMoreData"/> when the DT was a fragment without EOT (held);
    /// <see cref="OperationStatus.InvalidData"/> with <paramref name="error"/> when the TPDU is not DT
    /// (<see cref="S7FramingError.NotData"/>) or the PDU would exceed <see cref="MaxPduSize"/>
    /// (<see cref="S7FramingError.PduTooLarge"/>; what was held is dropped).
    /// </returns>
    public OperationStatus Append(in CotpTpdu tpdu, out ReadOnlySpan<byte> pdu, out S7FramingError error)
    {
        pdu = default;
        error = S7FramingError.None;
        if (tpdu.Type != CotpTpduType.Data)
        {
            error = S7FramingError.NotData;
            return OperationStatus.InvalidData;
        }
        var payload = tpdu.Payload;
        if (_length + payload.Length > _maxPduSize)
        {
            Reset();
            error = S7FramingError.PduTooLarge;
            return OperationStatus.InvalidData;
        }
        if (!_partial && tpdu.EndOfTransmission)
        {
            pdu = payload;
            return OperationStatus.Done;
        }
        payload.CopyTo(_buffer.AsSpan(_length));
        _length += payload.Length;
        if (!tpdu.EndOfTransmission)
        {
            _partial = true;
            return OperationStatus.NeedMoreData;
        }
        pdu = _buffer.AsSpan(0, _length);
        _length = 0;
        _partial = false;
        return OperationStatus.Done;
    }

    /// <summary>Drops any held fragments.</summary>
    public void Reset()
    {
        _length = 0;
        _partial = false;
    }
}
