using System.Buffers;

namespace EdgeShield.Protocols;

/// <summary>Why bytes could not be framed, in words common to every protocol.</summary>
public enum FrameFaultKind : byte
{
    None = 0,
    /// <summary>The bytes are not this protocol at all (a protocol id, a version, a magic byte).</summary>
    NotThisProtocol,
    /// <summary>A length field outside what the protocol allows.</summary>
    LengthOutOfRange,
    /// <summary>The frame's own structure says it is longer than its length field allows.</summary>
    Truncated,
    /// <summary>The length field carries bytes the structure does not account for.</summary>
    TrailingBytes,
    /// <summary>Fields of the frame disagree with each other (a byte count, a function, a type).</summary>
    Inconsistent,
    /// <summary>A checksum does not check.</summary>
    Checksum,
}

/// <summary>
/// A framing fault: the protocol-neutral <see cref="Kind"/> and the protocol's own
/// <see cref="Detail"/> code (the value of its framing-error enum), which the protocol's
/// <see cref="IStreamFramer.Describe"/> turns into words for the audit.
/// </summary>
public readonly record struct FrameFault(FrameFaultKind Kind, byte Detail)
{
    public static FrameFault None => default;

    public bool IsFault => Kind != FrameFaultKind.None;
}

/// <summary>
/// Delimits the frames of one protocol in one direction of a TCP byte stream, by the protocol's
/// length fields, never by reads. Stateless and allocation-free; one instance serves every stream.
/// Upstreams take the response framer of the protocol they carry.
/// </summary>
public interface IStreamFramer
{
    /// <summary>The protocol's name in events (<c>Modbus TCP</c>, <c>TPKT</c>…).</summary>
    string Name { get; }

    /// <summary>
    /// Delimits one frame at the start of <paramref name="input"/>: <see cref="OperationStatus.Done"/> with
    /// <paramref name="consumed"/> its length; <see cref="OperationStatus.NeedMoreData"/> (nothing consumed);
    /// <see cref="OperationStatus.InvalidData"/> with <paramref name="fault"/> when the stream cannot be this protocol.
    /// </summary>
    OperationStatus TryDelimit(ReadOnlySpan<byte> input, out int consumed, out FrameFault fault);

    /// <summary>Words for a fault this framer reported.</summary>
    string Describe(FrameFault fault);
}
