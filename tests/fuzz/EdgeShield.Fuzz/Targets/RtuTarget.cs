using System.Buffers;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Fuzz;

/// <summary>
/// A Modbus RTU byte stream. Input: <c>| flags | bytes |</c>; bit 0 of flags picks the direction
/// (0 requests, 1 responses). The stream is framed as it arrives (atSilence false) until the framer
/// needs more, then the rest is framed as if the line went silent (atSilence true).
/// </summary>
internal static class RtuTarget
{
    public static void Run(byte[] input)
    {
        if (input.Length == 0)
        {
            return;
        }
        if ((input[0] & 1) == 0)
        {
            NoAllocation.Check(input, static bytes => Frames(bytes[1..], RtuDirection.Request), "RTU request framing");
        }
        else
        {
            NoAllocation.Check(input, static bytes => Frames(bytes[1..], RtuDirection.Response), "RTU response framing");
        }
    }

    private static void Frames(ReadOnlySpan<byte> stream, RtuDirection direction)
    {
        Span<byte> encoded = stackalloc byte[RtuFramer.MaxAduLength + 8];
        Span<byte> mbap = stackalloc byte[ModbusLimits.MaxTcpAduLength + 8];
        var rest = stream;
        while (true)
        {
            var status = RtuFramer.TryReadFrame(rest, direction, atSilence: false, out var frame, out int consumed, out var error);
            if (status == OperationStatus.NeedMoreData)
            {
                Invariant.That(consumed == 0 && error == FramingError.None, "NeedMoreData consumed bytes or named an error");
                Invariant.That(rest.Length <= RtuFramer.MaxAduLength, "NeedMoreData with more than an ADU's worth of bytes");
                AtSilence(rest, direction, encoded, mbap);
                return;
            }
            if (status == OperationStatus.InvalidData)
            {
                Invariant.That(error != FramingError.None && consumed >= 0 && consumed <= rest.Length, "InvalidData without a reason, or consuming past the input");
                return;
            }
            Invariant.That(status == OperationStatus.Done, "unknown OperationStatus");
            CheckFrame(rest, frame, consumed, direction, encoded, mbap);
            if (direction == RtuDirection.Request)
            {
                // Its length came from the function's rules; the PDU decoder must agree with them.
                var request = ModbusPdu.ParseRequest(frame.Pdu);
                Invariant.That(request.Error is not (FramingError.PduTruncated or FramingError.TrailingBytes), "RTU length rules and the PDU decoder disagree on a request's length");
            }
            // The same frame followed by silence is the same frame.
            var again = RtuFramer.TryReadFrame(rest[..consumed], direction, atSilence: true, out _, out int againConsumed, out _);
            Invariant.That(again == OperationStatus.Done && againConsumed == consumed, "a frame read as it arrived differs from the same bytes read at silence");
            rest = rest[consumed..];
        }
    }

    private static void AtSilence(ReadOnlySpan<byte> rest, RtuDirection direction, Span<byte> encoded, Span<byte> mbap)
    {
        var status = RtuFramer.TryReadFrame(rest, direction, atSilence: true, out var frame, out int consumed, out var error);
        switch (status)
        {
            case OperationStatus.NeedMoreData:
                Invariant.That(rest.IsEmpty, "NeedMoreData at silence: silence ends every frame");
                break;
            case OperationStatus.InvalidData:
                Invariant.That(error != FramingError.None && consumed >= 0 && consumed <= rest.Length, "InvalidData without a reason, or consuming past the input");
                break;
            default:
                Invariant.That(status == OperationStatus.Done, "unknown OperationStatus");
                CheckFrame(rest, frame, consumed, direction, encoded, mbap);
                break;
        }
    }

    private static void CheckFrame(ReadOnlySpan<byte> rest, in RtuFrame frame, int consumed, RtuDirection direction, Span<byte> encoded, Span<byte> mbap)
    {
        Invariant.That(consumed >= RtuFramer.MinAduLength && consumed <= RtuFramer.MaxAduLength && consumed <= rest.Length, "consumed outside the input or the ADU limits");
        Invariant.That(Invariant.IsSliceAt(rest, frame.Adu, 0) && frame.Adu.Length == consumed, "frame is not the consumed prefix of the input");
        Invariant.That(Crc16Modbus.Check(frame.Adu), "Done for a frame whose CRC does not check");

        // Decode → encode with the project's writers: the same bytes.
        int written = RtuFramer.WriteFrame(encoded, frame.Address, frame.Pdu);
        Invariant.That(encoded[..written].SequenceEqual(frame.Adu), "Done for an RTU ADU that does not re-encode to its bytes");
        if (direction == RtuDirection.Response && frame.Adu.Length == 5 && frame.FunctionCode >= ModbusExceptionCode.ExceptionFlag)
        {
            written = RtuFramer.WriteException(encoded, frame.Address, (byte)(frame.FunctionCode & 0x7F), frame.Pdu[1]);
            Invariant.That(encoded[..written].SequenceEqual(frame.Adu), "an RTU exception does not re-encode to its bytes");
        }

        // RTU → MBAP (what the bus hands the gateway) → RTU: the same bytes, and a well-framed MBAP ADU.
        written = RtuFramer.ToMbap(frame, 0x4D42, mbap);
        var tcp = MbapFramer.TryReadFrame(mbap[..written], out var tcpFrame, out int tcpConsumed, out _);
        Invariant.That(tcp == OperationStatus.Done && tcpConsumed == written, "an RTU frame converts to an MBAP ADU that does not frame");
        written = RtuFramer.FromMbap(tcpFrame.Adu, encoded);
        Invariant.That(encoded[..written].SequenceEqual(frame.Adu), "RTU → MBAP → RTU does not give the same ADU");
        if (direction == RtuDirection.Request)
        {
            PduTargets.CheckRequest(frame.Pdu);
        }
    }
}
