using System.Buffers.Binary;

namespace EdgeShield.Protocols.S7comm;

/// <summary>The outcome of checking an answer against the job it claims to answer.</summary>
public enum S7ResponseStatus : byte
{
    /// <summary>Does not answer the job: dropped, never forwarded.</summary>
    Mismatch = 0,
    /// <summary>A normal answer (items may still carry their own return codes).</summary>
    Normal,
    /// <summary>A well-formed negative answer: header error class/code, or a userdata error code.</summary>
    Error,
}

/// <summary>Why an answer does not answer its job.</summary>
public enum S7ResponseError : byte
{
    None = 0,
    /// <summary>The header does not hold together, or it is not classic S7comm.</summary>
    HeaderInvalid,
    /// <summary>Another PDU reference than the job's.</summary>
    WrongReference,
    /// <summary>A Job where an Ack/Ack_Data was due, a Userdata where a job's answer was due, or the reverse; or an Ack without an error.</summary>
    WrongRosctr,
    /// <summary>Another function (job) or another group/subfunction or type (userdata).</summary>
    WrongFunction,
    /// <summary>Another item count than the job's.</summary>
    WrongItemCount,
    /// <summary>More data than asked for: an item longer than the job's items, or more in total.</summary>
    DataTooLong,
    /// <summary>Parameter or data blocks that do not add up to the lengths in the header.</summary>
    LengthInconsistent,
    /// <summary>Setup communication answered with PDU size or AmQ 0, or larger than asked.</summary>
    SetupNotNegotiable,
}

/// <summary>
/// What the answer to a job or userdata request must look like, taken from the request when it is
/// forwarded, so the request bytes need not be kept. 16 bytes, no references; a session keeps one per
/// outstanding job (AmQ), keyed by <see cref="Reference"/>.
/// </summary>
/// <param name="Reference">The job's PDU reference.</param>
/// <param name="Rosctr">1 (job) or 7 (userdata).</param>
/// <param name="FunctionCode">Job: the function byte. Userdata: the group.</param>
/// <param name="ItemCount">Read/write-var: the item count.</param>
/// <param name="MaxItemBytes">Read-var: the largest item byte length asked (0xFFFF when an item is not S7ANY).</param>
/// <param name="MaxDataLength">The most data the answer may carry.</param>
/// <param name="Subfunction">Userdata: the subfunction.</param>
/// <param name="SequenceNumber">Userdata: the request's sequence number (for a refusal).</param>
/// <param name="PduSize">Setup communication: the PDU size asked for. Otherwise the negotiated PDU size given to <see cref="For"/>.</param>
/// <param name="Amq">Setup communication: the AmQ called asked for.</param>
public readonly record struct S7Expectation(ushort Reference, byte Rosctr, byte FunctionCode, byte ItemCount, ushort MaxItemBytes, ushort MaxDataLength, byte Subfunction, byte SequenceNumber, ushort PduSize, ushort Amq)
{
    /// <summary>The job's function.</summary>
    public S7Function Function => Rosctr == 7 ? S7Functions.FromUserdata(FunctionCode, Subfunction) : S7Functions.FromJobCode(FunctionCode);

    /// <summary>
    /// Takes what the response check needs from a request that is not malformed.
    /// <paramref name="negotiatedPduSize"/> bounds the answer (use the PDU size setup-communication
    /// settled; 65535 before one has).
    /// </summary>
    public static S7Expectation For(in S7Request request, int negotiatedPduSize)
    {
        int pduSize = Math.Clamp(negotiatedPduSize, S7Limits.AckHeaderLength, ushort.MaxValue);
        int maxData = pduSize - S7Limits.AckHeaderLength;
        ushort maxItem = 0;
        if (request.Function == S7Function.ReadVar)
        {
            // Each item answers with | return code | transport size | length (2) | data | fill if odd, not last |:
            // summed when the job was parsed, so the items are not walked again here.
            maxItem = (ushort)Math.Min(request.LargestItemBytes, ushort.MaxValue);
            maxData = Math.Min(maxData, request.ReadAnswerBytes);
        }
        else if (request.Function == S7Function.WriteVar)
        {
            maxData = request.ItemCount;
        }
        return new S7Expectation(
            request.Reference,
            request.Rosctr == S7Rosctr.Userdata ? (byte)7 : (byte)1,
            request.FunctionCode,
            request.ItemCount,
            maxItem,
            (ushort)Math.Max(maxData, 0),
            request.Subfunction,
            request.SequenceNumber,
            request.Function == S7Function.SetupCommunication ? request.PduSize : (ushort)pduSize,
            request.AmqCalled);
    }
}

/// <summary>What <see cref="S7Pdu.ClampSetupCommunication"/> did.</summary>
public enum S7ClampResult : byte
{
    /// <summary>Not a setup-communication job or Ack_Data (or malformed): nothing written.</summary>
    NotSetup = 0,
    /// <summary>Every value was within the limits.</summary>
    Unchanged,
    /// <summary>At least one value was lowered to its limit.</summary>
    Clamped,
}

public static partial class S7Pdu
{
    /// <summary>Userdata error code D0A1: function not permitted in current protection level.</summary>
    public const ushort UserdataErrorNotPermitted = 0xD0A1;
    /// <summary>Header error class 87: access errors.</summary>
    public const byte ErrorClassAccess = 0x87;
    /// <summary>Header error class 83: no resources.</summary>
    public const byte ErrorClassNoResources = 0x83;
    /// <summary>Header error class 84: service processing error.</summary>
    public const byte ErrorClassServiceProcessing = 0x84;

    /// <summary>
    /// Checks that <paramref name="pdu"/> answers the job described by <paramref name="expected"/>: the
    /// job's REF, an Ack/Ack_Data (or a userdata response) of the same function, the same item count,
    /// no more data than asked, and lengths that add up.
    /// </summary>
    public static S7ResponseStatus CheckResponse(ReadOnlySpan<byte> pdu, in S7Expectation expected, out S7ResponseError error)
    {
        var header = ParseHeader(pdu);
        if (!header.IsValid || header.Protocol != S7Protocol.S7comm)
        {
            return Mismatch(S7ResponseError.HeaderInvalid, out error);
        }
        if (header.Reference != expected.Reference)
        {
            return Mismatch(S7ResponseError.WrongReference, out error);
        }
        return expected.Rosctr == 7 ? CheckUserdataResponse(header, expected, out error) : CheckJobResponse(header, expected, out error);
    }

    private static S7ResponseStatus CheckUserdataResponse(S7Header header, in S7Expectation expected, out S7ResponseError error)
    {
        if (header.Rosctr != S7Rosctr.Userdata)
        {
            return Mismatch(S7ResponseError.WrongRosctr, out error);
        }
        var response = ParseRequest(header.Pdu);
        if (response.Status == S7RequestStatus.Malformed)
        {
            return Mismatch(S7ResponseError.LengthInconsistent, out error);
        }
        if (response.UserdataType != S7UserdataType.Response || response.UserdataGroup != expected.FunctionCode || response.Subfunction != expected.Subfunction)
        {
            return Mismatch(S7ResponseError.WrongFunction, out error);
        }
        if (header.DataLength > expected.MaxDataLength)
        {
            return Mismatch(S7ResponseError.DataTooLong, out error);
        }
        error = S7ResponseError.None;
        return response.UserdataErrorCode != 0 ? S7ResponseStatus.Error : S7ResponseStatus.Normal;
    }

    private static S7ResponseStatus CheckJobResponse(S7Header header, in S7Expectation expected, out S7ResponseError error)
    {
        var parameters = header.Parameters;
        var data = header.Data;
        bool failed = header.ErrorClass != 0 || header.ErrorCode != 0;
        if (header.Rosctr == S7Rosctr.Ack)
        {
            // An Ack carries no function: only a negative one, with nothing after the header, answers a job.
            return failed && parameters.IsEmpty && data.IsEmpty ? Ok(S7ResponseStatus.Error, out error) : Mismatch(S7ResponseError.WrongRosctr, out error);
        }
        if (header.Rosctr != S7Rosctr.AckData)
        {
            return Mismatch(S7ResponseError.WrongRosctr, out error);
        }
        if (failed)
        {
            // A negative Ack_Data repeats the function when it has parameters at all.
            if (!parameters.IsEmpty && parameters[0] != expected.FunctionCode)
            {
                return Mismatch(S7ResponseError.WrongFunction, out error);
            }
            return data.Length > expected.MaxDataLength ? Mismatch(S7ResponseError.DataTooLong, out error) : Ok(S7ResponseStatus.Error, out error);
        }
        if (parameters.IsEmpty || parameters[0] != expected.FunctionCode)
        {
            return Mismatch(S7ResponseError.WrongFunction, out error);
        }
        switch (expected.FunctionCode)
        {
            case S7Functions.SetupCommunication:
                if (parameters.Length != S7Limits.SetupParameterLength || !data.IsEmpty)
                {
                    return Mismatch(S7ResponseError.LengthInconsistent, out error);
                }
                ushort pduSize = BinaryPrimitives.ReadUInt16BigEndian(parameters[6..]);
                ushort amqCalling = BinaryPrimitives.ReadUInt16BigEndian(parameters[2..]);
                ushort amqCalled = BinaryPrimitives.ReadUInt16BigEndian(parameters[4..]);
                return pduSize == 0 || pduSize > expected.PduSize || amqCalling == 0 || amqCalled == 0
                    ? Mismatch(S7ResponseError.SetupNotNegotiable, out error)
                    : Ok(S7ResponseStatus.Normal, out error);
            case S7Functions.ReadVar:
                return CheckReadData(parameters, data, expected, out error);
            case S7Functions.WriteVar:
                // | 05 | N | one return code per item |
                if (parameters.Length != 2)
                {
                    return Mismatch(S7ResponseError.LengthInconsistent, out error);
                }
                if (parameters[1] != expected.ItemCount)
                {
                    return Mismatch(S7ResponseError.WrongItemCount, out error);
                }
                return data.Length != expected.ItemCount ? Mismatch(S7ResponseError.LengthInconsistent, out error) : Ok(S7ResponseStatus.Normal, out error);
            default:
                return data.Length > expected.MaxDataLength ? Mismatch(S7ResponseError.DataTooLong, out error) : Ok(S7ResponseStatus.Normal, out error);
        }
    }

    private static S7ResponseStatus CheckReadData(ReadOnlySpan<byte> parameters, ReadOnlySpan<byte> data, in S7Expectation expected, out S7ResponseError error)
    {
        // | 04 | N |, data: per item | return code | transport size | length (2) | data | fill if odd, not last |
        if (parameters.Length != 2)
        {
            return Mismatch(S7ResponseError.LengthInconsistent, out error);
        }
        if (parameters[1] != expected.ItemCount)
        {
            return Mismatch(S7ResponseError.WrongItemCount, out error);
        }
        if (data.Length > expected.MaxDataLength)
        {
            return Mismatch(S7ResponseError.DataTooLong, out error);
        }
        for (int i = 0; i < expected.ItemCount; i++)
        {
            if (data.Length < S7Limits.DataItemHeaderLength)
            {
                return Mismatch(S7ResponseError.LengthInconsistent, out error);
            }
            // An item that failed (return code other than FF) carries no data, whatever its length field says:
            // snap7 answers a read of a DB that does not exist with 0A 00 0004 and nothing after (tshark agrees).
            int length = data[0] == S7Items.ReturnSuccess ? S7Items.DataByteLength(data[1], BinaryPrimitives.ReadUInt16BigEndian(data[2..])) : 0;
            if (length > expected.MaxItemBytes)
            {
                return Mismatch(S7ResponseError.DataTooLong, out error);
            }
            int consumed = S7Limits.DataItemHeaderLength + length + (i < expected.ItemCount - 1 ? length & 1 : 0);
            if (consumed > data.Length)
            {
                return Mismatch(S7ResponseError.LengthInconsistent, out error);
            }
            data = data[consumed..];
        }
        return data.IsEmpty ? Ok(S7ResponseStatus.Normal, out error) : Mismatch(S7ResponseError.LengthInconsistent, out error);
    }

    /// <summary>
    /// Writes an Ack_Data refusing a job: header error class and code (e.g. 87/03 function refused, 83/02
    /// rate), the job's REF, and the job's function as the one parameter byte.
    /// </summary>
    /// <returns>The PDU length (13), or -1 when <paramref name="destination"/> is too small.</returns>
    public static int WriteJobError(Span<byte> destination, in S7Expectation job, byte errorClass, byte errorCode)
    {
        const int length = S7Limits.AckHeaderLength + 1;
        if (destination.Length < length)
        {
            return -1;
        }
        WriteHeader(destination, 3, job.Reference, 1, 0);
        destination[10] = errorClass;
        destination[11] = errorCode;
        destination[12] = job.FunctionCode;
        return length;
    }

    /// <summary>
    /// Writes an Ack_Data answering a read-var or write-var with one return code per item (no data):
    /// read-var items as <c>code 00 0000</c>, write-var items as one byte each. The job's REF and item count.
    /// </summary>
    /// <returns>The PDU length, or -1 when <paramref name="destination"/> is too small.</returns>
    /// <exception cref="ArgumentException">Not a read/write-var expectation, or <paramref name="returnCodes"/> does not hold one code per item (programming faults).</exception>
    public static int WriteItemErrors(Span<byte> destination, in S7Expectation job, ReadOnlySpan<byte> returnCodes)
    {
        if (job.Rosctr != 1 || job.FunctionCode is not (S7Functions.ReadVar or S7Functions.WriteVar) || returnCodes.Length != job.ItemCount)
        {
            throw new ArgumentException("one return code per item of a read-var or write-var job", nameof(returnCodes));
        }
        bool read = job.FunctionCode == S7Functions.ReadVar;
        int dataLength = read ? returnCodes.Length * S7Limits.DataItemHeaderLength : returnCodes.Length;
        int length = S7Limits.AckHeaderLength + 2 + dataLength;
        if (destination.Length < length)
        {
            return -1;
        }
        WriteHeader(destination, 3, job.Reference, 2, dataLength);
        destination[10] = 0;
        destination[11] = 0;
        destination[12] = job.FunctionCode;
        destination[13] = job.ItemCount;
        var data = destination.Slice(14, dataLength);
        for (int i = 0; i < returnCodes.Length; i++)
        {
            if (read)
            {
                data[i * 4] = returnCodes[i];
                data[(i * 4) + 1] = 0;
                data[(i * 4) + 2] = 0;
                data[(i * 4) + 3] = 0;
            }
            else
            {
                data[i] = returnCodes[i];
            }
        }
        return length;
    }

    /// <summary>
    /// Writes a userdata response with an error code (e.g. <see cref="UserdataErrorNotPermitted"/>) to a
    /// userdata request: its REF, group, subfunction and sequence number; data <c>0A 00 0000</c>.
    /// </summary>
    /// <returns>The PDU length (26), or -1 when <paramref name="destination"/> is too small.</returns>
    public static int WriteUserdataError(Span<byte> destination, in S7Expectation request, ushort errorCode)
    {
        const int length = S7Limits.HeaderLength + 12 + 4;
        if (destination.Length < length)
        {
            return -1;
        }
        WriteHeader(destination, 7, request.Reference, 12, 4);
        var p = destination[10..];
        p[0] = 0x00;
        p[1] = 0x01;
        p[2] = 0x12;
        p[3] = 8;
        p[4] = 0x12; // response method
        p[5] = (byte)(0x80 | (request.FunctionCode & 0x0F));
        p[6] = request.Subfunction;
        p[7] = request.SequenceNumber;
        p[8] = 0; // data unit reference
        p[9] = 0; // last data unit
        BinaryPrimitives.WriteUInt16BigEndian(p[10..], errorCode);
        p[12] = 0x0A; // return code: object does not exist (what a PLC answers with an error code)
        p[13] = 0x00;
        p[14] = 0x00;
        p[15] = 0x00;
        return length;
    }

    /// <summary>
    /// Lowers the PDU size and both AmQ values of a setup-communication job or its Ack_Data to at most
    /// <paramref name="maxPduSize"/> and <paramref name="maxAmq"/>, in place.
    /// </summary>
    public static S7ClampResult ClampSetupCommunication(Span<byte> pdu, ushort maxPduSize, ushort maxAmq)
    {
        var header = ParseHeader(pdu);
        if (!header.IsValid || header.Protocol != S7Protocol.S7comm || header.Rosctr is not (S7Rosctr.Job or S7Rosctr.AckData)
            || header.ParameterLength != S7Limits.SetupParameterLength || header.DataLength != 0
            || pdu[header.HeaderLength] != S7Functions.SetupCommunication)
        {
            return S7ClampResult.NotSetup;
        }
        var parameters = pdu.Slice(header.HeaderLength, S7Limits.SetupParameterLength);
        bool changed = Clamp(parameters[2..], maxAmq) | Clamp(parameters[4..], maxAmq) | Clamp(parameters[6..], maxPduSize);
        return changed ? S7ClampResult.Clamped : S7ClampResult.Unchanged;
    }

    private static bool Clamp(Span<byte> field, ushort max)
    {
        if (BinaryPrimitives.ReadUInt16BigEndian(field) <= max)
        {
            return false;
        }
        BinaryPrimitives.WriteUInt16BigEndian(field, max);
        return true;
    }

    private static void WriteHeader(Span<byte> destination, byte rosctr, ushort reference, int parameterLength, int dataLength)
    {
        destination[0] = S7Limits.ProtocolId;
        destination[1] = rosctr;
        destination[2] = 0;
        destination[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], reference);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)parameterLength);
        BinaryPrimitives.WriteUInt16BigEndian(destination[8..], (ushort)dataLength);
    }

    private static S7ResponseStatus Mismatch(S7ResponseError reason, out S7ResponseError error)
    {
        error = reason;
        return S7ResponseStatus.Mismatch;
    }

    private static S7ResponseStatus Ok(S7ResponseStatus status, out S7ResponseError error)
    {
        error = S7ResponseError.None;
        return status;
    }
}
