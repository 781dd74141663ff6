using System.Buffers;
using EdgeShield.Protocols;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Fuzz;

/// <summary>
/// An IEC 60870-5-104 byte stream (either direction): APDUs delimited by <see cref="Iec104Framer"/>, each read by
/// <see cref="Iec104Apdu.TryParse"/>, every I-frame's ASDU by <see cref="Iec104Asdu.TryParse"/> with its objects
/// walked and its command helpers asked, and the gateway's writers (renumbering, mirror) applied to a copy, as
/// the gateway's IEC 104 session does. Stops at the first APDU that does not delimit, as the gateway closes.
/// </summary>
internal static class Iec104StreamTarget
{
    // One per thread: the replay tests may run targets on several threads at once.
    [ThreadStatic]
    private static State? t_state;

    /// <summary>The per-connection buffers a session holds for its whole life: allocated once, never per input.</summary>
    private sealed class State
    {
        public readonly byte[] Output = new byte[Iec104Limits.MaxFrame];
        public readonly byte[] Copy = new byte[Iec104Limits.MaxFrame];
    }

    public static void Run(byte[] input)
    {
        t_state ??= new State();
        NoAllocation.Check(input, static stream => Frames(stream, t_state!), "IEC 104 framing, APCI, ASDU, object walk and writers");
        // The ASDU layer is also fed the input directly: the bytes after an APCI are whatever a peer sends.
        NoAllocation.Check(input, static bytes => CheckAsdu(bytes, t_state!), "IEC 104 ASDU parsing and object walk");
    }

    private static void Frames(ReadOnlySpan<byte> stream, State state)
    {
        var rest = stream;
        while (true)
        {
            var status = Iec104Framer.Instance.TryDelimit(rest, out int consumed, out var fault);
            if (status == OperationStatus.NeedMoreData)
            {
                Invariant.That(consumed == 0 && !fault.IsFault, "NeedMoreData consumed bytes or named a fault");
                Invariant.That(rest.IsEmpty || (rest[0] == Iec104Limits.StartOctet && (rest.Length < 2 || rest.Length < rest[1] + 2)), "NeedMoreData with a whole APDU present");
                return;
            }
            if (status == OperationStatus.InvalidData)
            {
                Invariant.That(consumed == 0, "InvalidData consumed bytes");
                var error = (Iec104FrameError)fault.Detail;
                Invariant.That(fault.Kind == Iec104FrameErrors.Kind(error), "a fault whose kind is not its detail's");
                Invariant.That(error switch
                {
                    Iec104FrameError.StartOctetInvalid => rest[0] != Iec104Limits.StartOctet,
                    Iec104FrameError.LengthTooShort => rest.Length >= 2 && rest[0] == Iec104Limits.StartOctet && rest[1] < Iec104Limits.MinLength,
                    Iec104FrameError.LengthTooLong => rest.Length >= 2 && rest[0] == Iec104Limits.StartOctet && rest[1] > Iec104Limits.MaxLength,
                    _ => false,
                }, "InvalidData with a reason the bytes do not show");
                return;
            }
            Invariant.That(status == OperationStatus.Done && !fault.IsFault, "unknown OperationStatus, or Done with a fault");
            Invariant.That(rest.Length >= 6 && consumed == rest[1] + 2 && consumed <= rest.Length, "Done's consumed is not LEN + 2, or lies outside the input");
            CheckApdu(rest[..consumed], state);
            rest = rest[consumed..];
        }
    }

    private static void CheckApdu(ReadOnlySpan<byte> frame, State state)
    {
        byte c1 = frame[2];
        int length = frame[1];
        int functions = c1 & 0xFC;
        if (!Iec104Apdu.TryParse(frame, out var apdu, out var fault))
        {
            var error = (Iec104FrameError)fault.Detail;
            Invariant.That(error switch
            {
                Iec104FrameError.AsduHeaderTruncated => (c1 & 1) == 0 && length < 10,
                Iec104FrameError.SFrameControlInvalid => (c1 & 3) == 1 && (c1 != 1 || frame[3] != 0),
                Iec104FrameError.SFrameNotFourOctets => c1 == 1 && frame[3] == 0 && length != 4,
                Iec104FrameError.UFrameNoFunction => (c1 & 3) == 3 && functions == 0,
                Iec104FrameError.UFrameSeveralFunctions => (c1 & 3) == 3 && (functions & (functions - 1)) != 0,
                Iec104FrameError.UFrameControlNotZero => (c1 & 3) == 3 && (frame[3] | frame[4] | frame[5]) != 0,
                Iec104FrameError.UFrameNotFourOctets => (c1 & 3) == 3 && length != 4,
                _ => false,
            }, "an APCI refused for a reason the bytes do not show");
            return;
        }
        Invariant.That(Invariant.IsSliceAt(frame, apdu.Frame, 0) && apdu.Frame.Length == frame.Length, "the APDU view is not the frame");
        Invariant.That(apdu.SendSequence < Iec104Limits.SequenceModulus && apdu.ReceiveSequence < Iec104Limits.SequenceModulus, "a sequence number above 15 bits");
        if (apdu.Format == Iec104Format.S)
        {
            Invariant.That(c1 == 1 && frame[3] == 0 && length == 4 && apdu.Asdu.IsEmpty, "an S-frame that is not 01 00 and 4 octets");
            int n = Iec104Writer.WriteS(state.Output, apdu.ReceiveSequence);
            Invariant.That(Iec104Apdu.TryParse(state.Output.AsSpan(0, n), out var again, out _) && again.Format == Iec104Format.S && again.ReceiveSequence == apdu.ReceiveSequence, "a written S-frame reads back otherwise");
            return;
        }
        if (apdu.Format == Iec104Format.U)
        {
            Invariant.That((c1 & 3) == 3 && length == 4 && functions != 0 && (functions & (functions - 1)) == 0 && (int)apdu.UFunction == functions, "a U-frame without exactly one function");
            int n = Iec104Writer.WriteU(state.Output, apdu.UFunction);
            Invariant.That(state.Output.AsSpan(0, n).SequenceEqual(frame), "a written U-frame is not the frame");
            return;
        }
        Invariant.That((c1 & 1) == 0 && Invariant.IsSliceAt(frame, apdu.Asdu, 6) && apdu.Asdu.Length == length - 4 && apdu.Asdu.Length >= 6, "an I-frame's ASDU is not the octets after the APCI");
        var asdu = apdu.Asdu;
        // Renumbered for the other leg: only the control octets change.
        int written = Iec104Writer.WriteI(state.Copy, apdu.SendSequence, apdu.ReceiveSequence, asdu);
        Iec104Writer.SetControl(state.Copy, Iec104Sequence.Next(apdu.SendSequence), Iec104Sequence.Add(apdu.ReceiveSequence, 12345));
        Invariant.That(Iec104Apdu.TryParse(state.Copy.AsSpan(0, written), out var renumbered, out _) && renumbered.Format == Iec104Format.I
            && renumbered.SendSequence == Iec104Sequence.Next(apdu.SendSequence) && renumbered.ReceiveSequence == Iec104Sequence.Add(apdu.ReceiveSequence, 12345)
            && renumbered.Asdu.SequenceEqual(asdu), "a renumbered I-frame reads back otherwise");
        CheckAsdu(asdu, state);
    }

    private static void CheckAsdu(ReadOnlySpan<byte> bytes, State state)
    {
        if (!Iec104Asdu.TryParse(bytes, out var asdu, out var fault))
        {
            var error = (Iec104FrameError)fault.Detail;
            Invariant.That(asdu.Status == Iec104AsduStatus.Malformed && fault.IsFault, "a refused ASDU without a fault");
            Invariant.That(error switch
            {
                Iec104FrameError.AsduHeaderTruncated => bytes.Length < 6,
                Iec104FrameError.ObjectCountZero => bytes.Length >= 6 && (bytes[1] & 0x7F) == 0,
                Iec104FrameError.CauseZero => bytes.Length >= 6 && (bytes[2] & 0x3F) == 0,
                Iec104FrameError.SequenceWithoutBaseIoa => bytes.Length < 9 && (bytes[1] & 0x80) != 0,
                Iec104FrameError.ObjectsTruncated or Iec104FrameError.ObjectsTrailingBytes or Iec104FrameError.IoaSequenceOverflow => Iec104Types.ElementSize(bytes[0]) >= 0 || bytes[0] == 125,
                Iec104FrameError.SegmentNotSingle or Iec104FrameError.SegmentLengthMismatch => bytes[0] == 125,
                _ => false,
            }, "an ASDU refused for a reason the bytes do not show");
            return;
        }
        Invariant.That(Invariant.IsSliceAt(bytes, asdu.Bytes, 0) && asdu.Bytes.Length == bytes.Length, "the ASDU view is not the ASDU");
        Invariant.That(asdu.Count is >= 1 and <= 127 && asdu.Cause is >= 1 and <= 63, "N or the cause out of range");
        int objects = 0, octets = 0;
        uint previous = 0;
        foreach (var o in asdu)
        {
            Invariant.That(Invariant.IsInside(bytes, o.Element), "an element outside the ASDU");
            Invariant.That(o.Ioa <= Iec104Limits.MaxIoa && o.Ioa >= asdu.LowestIoa && o.Ioa <= asdu.HighestIoa, "an IOA outside the lowest and highest");
            Invariant.That(!asdu.Sequence || objects == 0 || o.Ioa == previous + 1, "SQ=1 addresses that are not consecutive");
            Invariant.That(asdu.ElementSize < 0 || o.Element.Length == asdu.ElementSize, "an element of another size than its type's");
            octets += o.Element.Length + (asdu.Sequence && objects > 0 ? 0 : Iec104Limits.IoaLength);
            previous = o.Ioa;
            objects++;
        }
        if (asdu.Status == Iec104AsduStatus.UnknownType)
        {
            Invariant.That(objects == 0 && Iec104Types.ElementSize(asdu.Type) == Iec104Types.Unsized, "an unknown type walked, or a sized type unknown");
            return;
        }
        Invariant.That(asdu.Status == Iec104AsduStatus.WellFormed && objects == asdu.Count && octets == bytes.Length - 6, "a well-formed ASDU whose objects do not add up to it");
        Invariant.That(asdu.FirstIoa >= asdu.LowestIoa && asdu.LowestIoa <= asdu.HighestIoa, "lowest, first and highest IOA out of order");

        bool select = asdu.IsSelect;
        bool valid = asdu.QualifierValid;
        bool hasValue = asdu.TryGetValue(out double min, out double max);
        Invariant.That(!hasValue || (min <= max && asdu.IsCommand), "a value range upside down, or a value of a type that is not a command");
        bool keyed = asdu.TryGetCommandKey(out var key);
        Invariant.That(keyed == (asdu.IsCommand && asdu.Count == 1) && (!select || asdu.IsCommand) && (valid || asdu.IsCommand || asdu.Type is 100 or 101 or 105), "command helpers disagree with IsCommand");

        if (bytes.Length > Iec104Limits.MaxAsduLength)
        {
            return; // no APDU carries it: nothing to write
        }
        // The station's mirror: only the cause octet differs, and it is the same command.
        int n = Iec104Writer.WriteMirror(state.Output, 0, 0, bytes, Iec104Causes.ActivationConfirmation, negative: true);
        var mirror = state.Output.AsSpan(Iec104Limits.ApciLength, n - Iec104Limits.ApciLength);
        Invariant.That(mirror[..2].SequenceEqual(bytes[..2]) && mirror[3..].SequenceEqual(bytes[3..]) && mirror[2] == ((bytes[2] & 0x80) | 0x40 | 7), "a mirror changed more than the cause");
        Invariant.That(Iec104Asdu.TryParse(mirror, out var answer, out _) && answer.Cause == 7 && answer.Negative, "a mirror does not read back");
        Invariant.That(!keyed || (answer.TryGetCommandKey(out var answerKey) && answerKey == key), "a mirror is another command");
        if (keyed)
        {
            // The execute of a select (S/E cleared) is the same command.
            var copy = state.Copy.AsSpan(0, bytes.Length);
            bytes.CopyTo(copy);
            int qualifier = 6 + Iec104Limits.IoaLength + (asdu.Type is 48 or 49 or 61 or 62 ? 2 : asdu.Type is 50 or 63 ? 4 : 0);
            copy[qualifier] ^= 0x80;
            Invariant.That(Iec104Asdu.TryParse(copy, out var toggled, out _) && toggled.IsSelect != select && toggled.TryGetCommandKey(out var toggledKey) && toggledKey == key,
                "the S/E bit changed the select-before-operate key");
        }
    }
}
