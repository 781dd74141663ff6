using System.Buffers.Binary;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Fuzz;

/// <summary>
/// An S7 answer checked against the job it claims to answer, as the gateway checks a PLC's answer
/// (<see cref="S7Pdu.CheckResponse"/>), and the gateway's own refusals of that job
/// (<see cref="S7Pdu.WriteJobError"/>, <see cref="S7Pdu.WriteItemErrors"/>, <see cref="S7Pdu.WriteUserdataError"/>)
/// checked the same way.
/// </summary>
/// <remarks>
/// Input: <c>| request PDU | candidate answer |</c>. The request is as long as its own header says
/// (10 or 12 + parameter length + data length, at most the input), so a captured request/answer pair
/// is a seed as it is and mutations of everything but the two lengths keep the split; an input that
/// does not start with an S7 header is split in half.
/// </remarks>
internal static class S7ResponseTarget
{
    /// <summary>Negotiated PDU sizes the answer is checked at: snap7's smallest, 480 (snap7, STEP 7), the gateway's 960, none yet.</summary>
    private static readonly int[] PduSizes = [240, 480, 960, ushort.MaxValue];

    /// <summary>The largest refusal: item errors for 255 read-var items.</summary>
    private const int MaxRefusalLength = S7Limits.AckHeaderLength + 2 + (255 * S7Limits.DataItemHeaderLength);

    public static void Run(byte[] input) =>
        NoAllocation.Check(input, static bytes =>
        {
            int split = RequestLength(bytes);
            Pair(bytes[..split], bytes[split..]);
        }, "CheckResponse and the refusal writers");

    /// <summary>Where the request ends: the length its header gives, or half the input.</summary>
    public static int RequestLength(ReadOnlySpan<byte> input)
    {
        if (input.Length >= S7Limits.HeaderLength && input[0] == S7Limits.ProtocolId)
        {
            int header = input[1] is 2 or 3 ? S7Limits.AckHeaderLength : S7Limits.HeaderLength;
            return Math.Min(input.Length, header + BinaryPrimitives.ReadUInt16BigEndian(input[6..]) + BinaryPrimitives.ReadUInt16BigEndian(input[8..]));
        }
        return input.Length / 2;
    }

    private static void Pair(ReadOnlySpan<byte> requestPdu, ReadOnlySpan<byte> answer)
    {
        var request = S7Pdu.ParseRequest(requestPdu);
        S7RequestTargets.CheckRequest(requestPdu, S7Pdu.ParseHeader(requestPdu), request);
        if (request.Status == S7RequestStatus.Malformed || request.Protocol != S7Protocol.S7comm)
        {
            return; // the gateway never forwards it, so it never expects an answer to it
        }
        Span<byte> refusal = stackalloc byte[MaxRefusalLength];
        Span<byte> codes = stackalloc byte[byte.MaxValue];
        bool accepted = false;
        var previous = S7ResponseStatus.Mismatch;
        foreach (int pduSize in PduSizes)
        {
            var expectation = request.Expectation(pduSize);
            var status = S7Pdu.CheckResponse(answer, expectation, out var error);
            Invariant.That((status == S7ResponseStatus.Mismatch) == (error != S7ResponseError.None), "Mismatch and S7ResponseError disagree");
            if (status != S7ResponseStatus.Mismatch)
            {
                CheckAccepted(answer, request, expectation, status);
            }
            // A larger negotiated PDU size only ever allows more data.
            Invariant.That(!accepted || status == previous, "an answer accepted at a smaller PDU size is judged otherwise at a larger one");
            accepted |= status != S7ResponseStatus.Mismatch;
            previous = status;
            // The gateway refuses a request larger than the negotiated size before it gets this far.
            if (requestPdu.Length <= pduSize)
            {
                Refusals(request, expectation, answer, refusal, codes);
            }
        }
    }

    /// <summary>An answer CheckResponse accepted, checked again from its bytes against the request.</summary>
    private static void CheckAccepted(ReadOnlySpan<byte> answer, in S7Request request, in S7Expectation expectation, S7ResponseStatus status)
    {
        var header = S7Pdu.ParseHeader(answer);
        Invariant.That(header.IsValid && header.Protocol == S7Protocol.S7comm, "an answer with a broken header accepted");
        Invariant.That(header.Reference == request.Reference, "an answer with another REF accepted");
        if (request.Rosctr == S7Rosctr.Userdata)
        {
            Invariant.That(header.Rosctr == S7Rosctr.Userdata, "a userdata request answered by another ROSCTR");
            var response = S7Pdu.ParseRequest(answer);
            Invariant.That(response.Status != S7RequestStatus.Malformed && response.UserdataType == S7UserdataType.Response
                && response.UserdataGroup == request.UserdataGroup && response.Subfunction == request.Subfunction, "a userdata answer of another group, subfunction or type accepted");
            Invariant.That((status == S7ResponseStatus.Error) == (response.UserdataErrorCode != 0), "Error is not the userdata error code");
            Invariant.That(header.DataLength <= expectation.MaxDataLength, "a userdata answer with more data than the PDU size allows accepted");
            return;
        }
        Invariant.That(header.Rosctr is S7Rosctr.Ack or S7Rosctr.AckData, "a job answered by another ROSCTR");
        var parameters = header.Parameters;
        var data = header.Data;
        bool failed = header.ErrorClass != 0 || header.ErrorCode != 0;
        Invariant.That((status == S7ResponseStatus.Error) == failed, "Error is not the header's error class and code");
        Invariant.That(parameters.IsEmpty || parameters[0] == request.FunctionCode, "an answer of another function accepted");
        Invariant.That(data.Length <= expectation.MaxDataLength, "an answer with more data than the job allows accepted");
        if (status == S7ResponseStatus.Error)
        {
            return;
        }
        Invariant.That(header.Rosctr == S7Rosctr.AckData && !parameters.IsEmpty, "a Normal answer without Ack_Data parameters");
        switch (request.Function)
        {
            case S7Function.SetupCommunication:
                ushort pduSize = BinaryPrimitives.ReadUInt16BigEndian(parameters[6..]);
                Invariant.That(parameters.Length == S7Limits.SetupParameterLength && pduSize != 0 && pduSize <= request.PduSize
                    && BinaryPrimitives.ReadUInt16BigEndian(parameters[2..]) != 0 && BinaryPrimitives.ReadUInt16BigEndian(parameters[4..]) != 0, "a setup answer offering more than asked, or 0, accepted");
                break;
            case S7Function.ReadVar:
                Invariant.That(parameters.Length == 2 && parameters[1] == request.ItemCount, "a read answer with another item count accepted");
                Invariant.That(ReadDataAddsUp(data, request.ItemCount, expectation.MaxItemBytes), "a read answer whose data blocks do not add up, or exceed what was asked, accepted");
                break;
            case S7Function.WriteVar:
                Invariant.That(parameters.Length == 2 && parameters[1] == request.ItemCount && data.Length == request.ItemCount, "a write answer without one return code per item accepted");
                break;
            default:
                break;
        }
    }

    /// <summary>
    /// Worked out again from the bytes (S7COMM.md, read-var answer): one data block per item, each
    /// | return code | transport size | length (bits for 03/04/05) | data | fill if odd and not last | (no data
    /// after a return code other than FF),
    /// none longer than the longest item asked, ending exactly at the end of the data.
    /// </summary>
    private static bool ReadDataAddsUp(ReadOnlySpan<byte> data, int items, int maxItemBytes)
    {
        for (int i = 0; i < items; i++)
        {
            if (data.Length < S7Limits.DataItemHeaderLength)
            {
                return false;
            }
            int length = BinaryPrimitives.ReadUInt16BigEndian(data[2..]);
            if (data[1] is 3 or 4 or 5)
            {
                length = (length + 7) / 8;
            }
            if (data[0] != 0xFF)
            {
                length = 0; // a failed item carries no data, whatever its length field says (snap7's 0A 00 0004)
            }
            int fill = i < items - 1 && (length & 1) != 0 ? 1 : 0;
            if (length > maxItemBytes || S7Limits.DataItemHeaderLength + length + fill > data.Length)
            {
                return false;
            }
            data = data[(S7Limits.DataItemHeaderLength + length + fill)..];
        }
        return data.IsEmpty;
    }

    /// <summary>Every refusal the gateway can write for this request answers it (CheckResponse: Error, or Normal for item errors) and fits the PDU size.</summary>
    private static void Refusals(in S7Request request, in S7Expectation expectation, ReadOnlySpan<byte> answer, Span<byte> refusal, Span<byte> codes)
    {
        if (request.Rosctr == S7Rosctr.Userdata)
        {
            int written = S7Pdu.WriteUserdataError(refusal, expectation, S7Pdu.UserdataErrorNotPermitted);
            Invariant.That(written > 0 && written <= expectation.PduSize, "WriteUserdataError wrote nothing, or more than the PDU size");
            var status = S7Pdu.CheckResponse(refusal[..written], expectation, out _);
            Invariant.That(status == S7ResponseStatus.Error, "the gateway's userdata refusal does not answer the request");
            return;
        }
        // 87/03: access refused (the policy); 83/02: no resources (rate, AmQ).
        int jobError = S7Pdu.WriteJobError(refusal, expectation, S7Pdu.ErrorClassAccess, 0x03);
        Invariant.That(jobError > 0 && S7Pdu.CheckResponse(refusal[..jobError], expectation, out _) == S7ResponseStatus.Error, "the gateway's job refusal (87/03) does not answer the job");
        jobError = S7Pdu.WriteJobError(refusal, expectation, S7Pdu.ErrorClassNoResources, 0x02);
        Invariant.That(jobError > 0 && S7Pdu.CheckResponse(refusal[..jobError], expectation, out _) == S7ResponseStatus.Error, "the gateway's job refusal (83/02) does not answer the job");
        if (request.Function is S7Function.ReadVar or S7Function.WriteVar)
        {
            // Item return codes from the candidate answer's bytes, so the fuzzer varies them too.
            var itemCodes = codes[..request.ItemCount];
            for (int i = 0; i < itemCodes.Length; i++)
            {
                itemCodes[i] = i < answer.Length ? answer[i] : S7Items.ReturnAccessNotAllowed;
            }
            int written = S7Pdu.WriteItemErrors(refusal, expectation, itemCodes);
            Invariant.That(written > 0, "WriteItemErrors wrote nothing");
            var status = S7Pdu.CheckResponse(refusal[..written], expectation, out _);
            // Known limitation (corpus/s7response/regression-item-errors-beyond-pdu-size, reported): item
            // errors take 4 bytes per item, a non-S7ANY item only 3 in the job, so a read-var of many such
            // items that fits the negotiated PDU size gets item errors that do not; WriteItemErrors does not
            // bound its answer by the PDU size. Such a job has to be refused with WriteJobError (checked above).
            if (written <= expectation.PduSize)
            {
                Invariant.That(status == S7ResponseStatus.Normal, "the gateway's item refusal does not answer the job");
            }
            else
            {
                Invariant.That(request.HasNonS7AnyItems, "item errors for S7ANY items larger than the PDU size the job fits");
            }
        }
    }
}
