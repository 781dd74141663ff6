using System.Buffers;
using System.Buffers.Binary;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Fuzz;

/// <summary>
/// An ISO-on-TCP byte stream as an S7 client sends it: TPKT packets framed by
/// <see cref="TpktFramer.TryReadFrame"/>, COTP DT fragments joined by a <see cref="CotpReassembler"/>
/// over a fixed buffer (max PDU 960, the gateway's), every whole PDU decoded by
/// <see cref="S7Pdu.ParseRequest"/> with its items walked, its written values read and its
/// expectation built, as the gateway's S7 session does.
/// </summary>
internal static class S7StreamTarget
{
    /// <summary>The gateway's largest S7 PDU (DESIGN.md "S7comm"): the reassembler's buffer.</summary>
    public const int MaxPduSize = 960;

    /// <summary>TPDU sizes a job is re-fragmented at: the class 0 minimum, snap7's and STEP 7's, the class 0 maximum.</summary>
    private static readonly int[] TpduSizes = [128, 256, 1024, 8192];

    /// <summary>Setup-communication limits the clamp is tried with (PDU size, AmQ).</summary>
    private static readonly (ushort PduSize, ushort Amq)[] ClampLimits = [(MaxPduSize, 8), (240, 1)];

    // One per thread: the replay tests may run targets on several threads at once.
    [ThreadStatic]
    private static State? t_state;

    /// <summary>The per-connection buffers a session holds for its whole life: allocated once, never per input.</summary>
    private sealed class State
    {
        public readonly CotpReassembler Reassembler = new(new byte[MaxPduSize], MaxPduSize);
        public readonly CotpReassembler Again = new(new byte[MaxPduSize], MaxPduSize);
        /// <summary>The fragments the target itself has seen since the last EOT: what the reassembler must return.</summary>
        public readonly byte[] Mirror = new byte[MaxPduSize];
        public readonly byte[] Fragments = new byte[CotpWriter.DataLength(MaxPduSize, CotpWriter.MinTpduSize)];
        public readonly byte[] Clamped = new byte[MaxPduSize];
        public readonly byte[] Connect = new byte[128];
    }

    public static void Run(byte[] input)
    {
        t_state ??= new State();
        NoAllocation.Check(input, static stream => Frames(stream, t_state!), "TPKT/COTP framing, reassembly and S7 request decoding");
    }

    private static void Frames(ReadOnlySpan<byte> stream, State state)
    {
        state.Reassembler.Reset();
        int held = 0;
        bool partial = false;
        var rest = stream;
        while (true)
        {
            var status = TpktFramer.TryReadFrame(rest, out var tpdu, out int consumed, out var error);
            if (status == OperationStatus.NeedMoreData)
            {
                Invariant.That(consumed == 0 && error == S7FramingError.None, "NeedMoreData consumed bytes or named an error");
                Invariant.That(rest.Length <= S7Limits.TpktHeaderLength || rest.Length < BinaryPrimitives.ReadUInt16BigEndian(rest[2..]), "NeedMoreData with a whole TPKT packet present");
                return;
            }
            if (status == OperationStatus.InvalidData)
            {
                Invariant.That(consumed == 0, "InvalidData consumed bytes");
                Invariant.That(FramingReasonHolds(rest, error), "InvalidData with a reason the packet does not show");
                return;
            }
            Invariant.That(status == OperationStatus.Done && error == S7FramingError.None, "unknown OperationStatus, or Done with an error");
            Invariant.That(rest.Length >= S7Limits.MinTpktLength && consumed == BinaryPrimitives.ReadUInt16BigEndian(rest[2..]) && consumed <= rest.Length,
                "Done's consumed is not the TPKT length, or lies outside the input");
            Invariant.That(Invariant.IsSliceAt(rest, tpdu.Packet, 0) && tpdu.Packet.Length == consumed, "the TPDU is not the consumed prefix of the input");
            CheckTpdu(tpdu, state);

            if (tpdu.Type == CotpTpduType.Data)
            {
                var payload = tpdu.Payload;
                Invariant.That(state.Reassembler.PendingLength == held && state.Reassembler.HasPending == partial, "the reassembler holds other bytes than the fragments it was given");
                bool fits = held + payload.Length <= MaxPduSize;
                if (fits)
                {
                    payload.CopyTo(state.Mirror.AsSpan(held));
                }
                var appended = state.Reassembler.Append(tpdu, out var pdu, out var reassemblyError);
                if (!fits)
                {
                    Invariant.That(appended == OperationStatus.InvalidData && reassemblyError == S7FramingError.PduTooLarge && !state.Reassembler.HasPending && state.Reassembler.PendingLength == 0,
                        "fragments above the maximum PDU size were not refused and dropped");
                    return; // the gateway closes the connection
                }
                if (!tpdu.EndOfTransmission)
                {
                    Invariant.That(appended == OperationStatus.NeedMoreData && reassemblyError == S7FramingError.None && pdu.IsEmpty, "a fragment without EOT did not ask for more");
                    held += payload.Length;
                    partial = true;
                }
                else
                {
                    Invariant.That(appended == OperationStatus.Done && reassemblyError == S7FramingError.None, "a fragment with EOT did not complete the PDU");
                    Invariant.That(pdu.SequenceEqual(state.Mirror.AsSpan(0, held + payload.Length)), "the reassembled PDU is not the fragments joined");
                    Invariant.That(!state.Reassembler.HasPending && state.Reassembler.PendingLength == 0, "the reassembler held on to a completed PDU");
                    held = 0;
                    partial = false;
                    CheckPdu(pdu, state);
                }
            }
            else
            {
                var refused = state.Reassembler.Append(tpdu, out var none, out var notData);
                Invariant.That(refused == OperationStatus.InvalidData && notData == S7FramingError.NotData && none.IsEmpty, "the reassembler took a TPDU that is not DT");
                Invariant.That(state.Reassembler.PendingLength == held, "refusing a TPDU that is not DT changed the held fragments");
            }
            rest = rest[consumed..];
        }
    }

    /// <summary>Worked out again from the bytes: the framer's reason must be one the packet shows.</summary>
    private static bool FramingReasonHolds(ReadOnlySpan<byte> rest, S7FramingError error)
    {
        int length = rest.Length >= 4 ? BinaryPrimitives.ReadUInt16BigEndian(rest[2..]) : -1;
        int li = rest.Length >= 5 ? rest[4] : -1;
        bool whole = length >= S7Limits.MinTpktLength && rest.Length >= length && li >= 2 && 5 + li <= length;
        byte type = whole ? rest[5] : (byte)0;
        bool connect = whole && (type & 0xF0) is 0xE0 or 0xD0;
        bool disconnect = whole && type == 0x80;
        return error switch
        {
            S7FramingError.TpktVersionInvalid => rest.Length >= 1 && rest[0] != S7Limits.TpktVersion,
            S7FramingError.TpktReservedNotZero => rest.Length >= 2 && rest[1] != 0,
            S7FramingError.TpktLengthTooShort => length is >= 0 and < S7Limits.MinTpktLength,
            S7FramingError.CotpLengthIndicatorInvalid => li is 0 or 1 or 255,
            S7FramingError.CotpHeaderBeyondTpkt => li >= 0 && 5 + li > length,
            S7FramingError.CotpTypeUnsupported => whole && type is not (0xF0 or 0x80 or 0x70) && !connect,
            S7FramingError.CotpDataHeaderInvalid => whole && type == 0xF0 && li != S7Limits.DtLengthIndicator,
            S7FramingError.CotpFixedPartTooShort => ((connect || disconnect) && li < S7Limits.ConnectFixedLength) || (whole && type == 0x70 && li < S7Limits.ErrorFixedLength),
            S7FramingError.CotpClassNotZero => connect && li >= S7Limits.ConnectFixedLength && rest[10] != 0,
            S7FramingError.CotpParameterBeyondHeader => (connect || disconnect) && li > S7Limits.ConnectFixedLength,
            S7FramingError.CotpConnectMalformed => connect && (length != 5 + li || li > S7Limits.ConnectFixedLength + 3),
            S7FramingError.CotpTpduSizeInvalid => connect && li > S7Limits.ConnectFixedLength,
            _ => false,
        };
    }

    /// <summary>A framed TPDU: its parts add up to the packet, and a connect or disconnect written back by <see cref="CotpWriter"/> reads the same.</summary>
    private static void CheckTpdu(in CotpTpdu tpdu, State state)
    {
        var packet = tpdu.Packet;
        Invariant.That(tpdu.Type != CotpTpduType.Unknown, "Done for a TPDU type the framer does not know");
        Invariant.That(Invariant.IsSliceAt(packet, tpdu.Header, S7Limits.TpktHeaderLength) && tpdu.Header.Length == 1 + tpdu.LengthIndicator, "COTP header is not LI + 1 bytes after TPKT");
        Invariant.That(S7Limits.TpktHeaderLength + tpdu.Header.Length + tpdu.Payload.Length == packet.Length && Invariant.IsInside(packet, tpdu.Payload), "COTP header and payload do not add up to the packet");
        switch (tpdu.Type)
        {
            case CotpTpduType.Data:
                Invariant.That(tpdu.LengthIndicator == S7Limits.DtLengthIndicator && tpdu.TpduNumber <= 0x7F, "a DT that is not class 0");
                break;
            case CotpTpduType.ConnectionRequest:
            case CotpTpduType.ConnectionConfirm:
                Invariant.That(tpdu.Payload.IsEmpty && tpdu.ClassOptions == 0, "a connect with user data or another class");
                Invariant.That(tpdu.TpduSize == 0 || (tpdu.TpduSize >= CotpWriter.MinTpduSize && tpdu.TpduSize <= 8192), "TPDU size outside 128..8192");
                Invariant.That(Invariant.IsInside(tpdu.Header, tpdu.CallingTsap) && Invariant.IsInside(tpdu.Header, tpdu.CalledTsap), "a TSAP outside the COTP header");
                var connection = tpdu.Connection;
                Invariant.That(tpdu.CalledTsap.Length != 2 || (connection.TypeCode == tpdu.CalledTsap[0] && connection.Kind is not (S7ConnectionKind.Unknown or S7ConnectionKind.PlusEs or S7ConnectionKind.PlusHmi)),
                    "a two-byte called TSAP classified as something else");
                if (tpdu.CallingTsap.Length <= 32 && tpdu.CalledTsap.Length <= 32)
                {
                    // The gateway answers a CR with a CC written from it: the CC must frame with the same values.
                    int written = CotpWriter.WriteConnectConfirm(state.Connect, tpdu.SourceReference, tpdu.DestinationReference, tpdu.TpduSizeCode, tpdu.CallingTsap, tpdu.CalledTsap);
                    Invariant.That(written > 0, "WriteConnectConfirm refused TSAPs of at most 32 bytes");
                    var status = TpktFramer.TryReadFrame(state.Connect.AsSpan(0, written), out var confirm, out int consumed, out _);
                    Invariant.That(status == OperationStatus.Done && consumed == written && confirm.Type == CotpTpduType.ConnectionConfirm, "a written CC does not frame");
                    Invariant.That(confirm.DestinationReference == tpdu.SourceReference && confirm.SourceReference == tpdu.DestinationReference && confirm.TpduSizeCode == tpdu.TpduSizeCode
                        && confirm.CallingTsap.SequenceEqual(tpdu.CallingTsap) && confirm.CalledTsap.SequenceEqual(tpdu.CalledTsap), "a written CC reads back other values");
                }
                break;
            case CotpTpduType.DisconnectRequest:
            {
                int written = CotpWriter.WriteDisconnectRequest(state.Connect, tpdu.SourceReference, tpdu.DestinationReference, tpdu.Reason);
                var status = TpktFramer.TryReadFrame(state.Connect.AsSpan(0, written), out var disconnect, out int consumed, out _);
                Invariant.That(status == OperationStatus.Done && consumed == written && disconnect.Type == CotpTpduType.DisconnectRequest
                    && disconnect.DestinationReference == tpdu.SourceReference && disconnect.Reason == tpdu.Reason, "a written DR reads back other values");
                break;
            }
            default:
                Invariant.That(tpdu.LengthIndicator >= S7Limits.ErrorFixedLength, "an ER shorter than its fixed part");
                break;
        }
    }

    /// <summary>One whole S7 PDU, as the session judges it.</summary>
    private static void CheckPdu(ReadOnlySpan<byte> pdu, State state)
    {
        Invariant.That(pdu.Length <= MaxPduSize, "a reassembled PDU above the maximum");
        var header = S7Pdu.ParseHeader(pdu);
        CheckHeader(pdu, header);
        var request = S7Pdu.ParseRequest(pdu);
        S7RequestTargets.CheckRequest(pdu, header, request);
        if (request.Status != S7RequestStatus.Malformed)
        {
            var expectation = request.Expectation(MaxPduSize);
            Invariant.That(expectation.Reference == request.Reference && expectation.ItemCount == request.ItemCount && expectation.MaxDataLength <= MaxPduSize - S7Limits.AckHeaderLength,
                "the expectation does not describe its request");
            Refragment(pdu, state);
        }
        foreach (var (pduSize, amq) in ClampLimits)
        {
            Clamp(pdu, header, request, state, pduSize, amq);
        }
    }

    /// <summary>Worked out again from the bytes: a valid header's lengths add up to the PDU, and an error is one the bytes show.</summary>
    private static void CheckHeader(ReadOnlySpan<byte> pdu, in S7Header header)
    {
        Invariant.That(Invariant.IsSliceAt(pdu, header.Pdu, 0) && header.Pdu.Length == pdu.Length, "header view is not the PDU");
        int headerLength = pdu.Length > 1 && pdu[1] is 2 or 3 ? S7Limits.AckHeaderLength : S7Limits.HeaderLength;
        bool classic = pdu.Length > 0 && pdu[0] == S7Limits.ProtocolId;
        bool plus = pdu.Length > 0 && pdu[0] == S7Limits.PlusProtocolId;
        switch (header.Error)
        {
            case S7HeaderError.None when header.Protocol == S7Protocol.S7comm:
                Invariant.That(classic && header.Rosctr != S7Rosctr.Unknown && header.HeaderLength == headerLength, "a valid header of an unknown type");
                Invariant.That(header.HeaderLength + header.ParameterLength + header.DataLength == pdu.Length, "a valid header whose lengths do not add up to the PDU");
                Invariant.That(Invariant.IsSliceAt(pdu, header.Parameters, header.HeaderLength) && header.Parameters.Length == header.ParameterLength, "parameters are not PL bytes after the header");
                Invariant.That(Invariant.IsSliceAt(pdu, header.Data, header.HeaderLength + header.ParameterLength) && header.Data.Length == header.DataLength, "data is not DL bytes after the parameters");
                break;
            case S7HeaderError.None:
                Invariant.That(plus && header.Protocol == S7Protocol.S7commPlus && S7Limits.PlusHeaderLength + BinaryPrimitives.ReadUInt16BigEndian(pdu[2..]) <= pdu.Length, "a valid S7comm-Plus header that does not hold");
                Invariant.That(header.Parameters.IsEmpty && header.Data.IsEmpty, "S7comm-Plus given classic parameters or data");
                break;
            case S7HeaderError.TooShort:
                Invariant.That(pdu.Length < (plus ? S7Limits.PlusHeaderLength : headerLength), "TooShort for a PDU that holds its header");
                break;
            case S7HeaderError.ProtocolIdUnknown:
                Invariant.That(!classic && !plus && !pdu.IsEmpty, "ProtocolIdUnknown for a known protocol id");
                break;
            case S7HeaderError.RosctrUnknown:
                Invariant.That(classic && pdu.Length > 1 && pdu[1] is not (1 or 2 or 3 or 7), "RosctrUnknown for a known ROSCTR");
                break;
            case S7HeaderError.LengthMismatch:
                Invariant.That(classic && pdu.Length >= headerLength
                    && headerLength + BinaryPrimitives.ReadUInt16BigEndian(pdu[6..]) + BinaryPrimitives.ReadUInt16BigEndian(pdu[8..]) != pdu.Length, "LengthMismatch for lengths that add up");
                break;
            case S7HeaderError.PlusLengthBeyondPdu:
                Invariant.That(plus && pdu.Length >= S7Limits.PlusHeaderLength && S7Limits.PlusHeaderLength + BinaryPrimitives.ReadUInt16BigEndian(pdu[2..]) > pdu.Length, "PlusLengthBeyondPdu for a length inside the PDU");
                break;
            default:
                Invariant.That(false, "unknown S7HeaderError");
                break;
        }
    }

    /// <summary>
    /// The gateway forwards a PDU re-fragmented to the TPDU size the PLC accepted: written by
    /// <see cref="CotpWriter.WriteData"/> at each size, it must frame as DTs no larger than the size,
    /// EOT on the last only, and reassemble to the same bytes.
    /// </summary>
    private static void Refragment(ReadOnlySpan<byte> pdu, State state)
    {
        foreach (int tpduSize in TpduSizes)
        {
            int written = CotpWriter.WriteData(state.Fragments, pdu, tpduSize);
            Invariant.That(written == CotpWriter.DataLength(pdu.Length, tpduSize), "WriteData wrote another length than DataLength");
            state.Again.Reset();
            var rest = state.Fragments.AsSpan(0, written);
            bool done = false;
            while (!rest.IsEmpty)
            {
                Invariant.That(!done, "bytes after the fragment with EOT");
                var status = TpktFramer.TryReadFrame(rest, out var tpdu, out int consumed, out _);
                Invariant.That(status == OperationStatus.Done && tpdu.Type == CotpTpduType.Data && consumed <= tpduSize, "a written DT does not frame, or is larger than the TPDU size");
                Invariant.That(tpdu.EndOfTransmission == (consumed == rest.Length), "EOT on another fragment than the last");
                var appended = state.Again.Append(tpdu, out var joined, out _);
                if (appended == OperationStatus.Done)
                {
                    Invariant.That(joined.SequenceEqual(pdu), "a re-fragmented PDU reassembles to other bytes");
                    done = true;
                }
                else
                {
                    Invariant.That(appended == OperationStatus.NeedMoreData, "a written fragment was refused");
                }
                rest = rest[consumed..];
            }
            Invariant.That(done, "a re-fragmented PDU never completed");
        }
    }

    /// <summary>
    /// <see cref="S7Pdu.ClampSetupCommunication"/> on a copy: a value is only ever lowered to the limit,
    /// nothing else changes, and the PDU decodes as before.
    /// </summary>
    private static void Clamp(ReadOnlySpan<byte> pdu, in S7Header header, in S7Request request, State state, ushort maxPduSize, ushort maxAmq)
    {
        var copy = state.Clamped.AsSpan(0, pdu.Length);
        pdu.CopyTo(copy);
        var result = S7Pdu.ClampSetupCommunication(copy, maxPduSize, maxAmq);
        bool setup = header.IsValid && header.Protocol == S7Protocol.S7comm && header.Rosctr is S7Rosctr.Job or S7Rosctr.AckData
            && header.ParameterLength == S7Limits.SetupParameterLength && header.DataLength == 0 && header.Parameters[0] == S7Functions.SetupCommunication;
        if (!setup)
        {
            Invariant.That(result == S7ClampResult.NotSetup && copy.SequenceEqual(pdu), "ClampSetupCommunication touched a PDU that is not setup-communication");
            return;
        }
        Invariant.That(result != S7ClampResult.NotSetup, "ClampSetupCommunication missed a setup-communication PDU");
        int at = header.HeaderLength;
        bool changed = false;
        for (int field = 2; field <= 6; field += 2)
        {
            ushort before = BinaryPrimitives.ReadUInt16BigEndian(pdu[(at + field)..]);
            ushort after = BinaryPrimitives.ReadUInt16BigEndian(copy[(at + field)..]);
            ushort max = field == 6 ? maxPduSize : maxAmq;
            Invariant.That(after <= before, "ClampSetupCommunication raised a value");
            Invariant.That(after == Math.Min(before, max), "ClampSetupCommunication did not lower a value to exactly its limit");
            changed |= after != before;
        }
        Invariant.That(changed == (result == S7ClampResult.Clamped), "ClampSetupCommunication's result does not say what it did");
        Invariant.That(copy[..(at + 2)].SequenceEqual(pdu[..(at + 2)]), "ClampSetupCommunication changed bytes outside the three values");
        var again = S7Pdu.ParseRequest(copy);
        Invariant.That(again.Status == request.Status && again.Error == request.Error && S7Pdu.ParseHeader(copy).IsValid, "a clamped PDU no longer decodes as it did");
        if (again.Function == S7Function.SetupCommunication && again.Status == S7RequestStatus.Ok)
        {
            Invariant.That(again.PduSize <= maxPduSize && again.AmqCalling <= maxAmq && again.AmqCalled <= maxAmq, "a clamped request still asks for more than the limits");
        }
    }
}
