using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Fuzz;

/// <summary>What <see cref="S7Pdu.ParseRequest"/> says about a PDU, checked against the PDU's own bytes (used by both S7 targets).</summary>
internal static class S7RequestTargets
{
    private static readonly S7ValueType[] ValueTypes = [S7ValueType.Int16, S7ValueType.UInt16, S7ValueType.Int32, S7ValueType.UInt32, S7ValueType.Float32];

    /// <summary>
    /// Status and error agree; the views lie inside the parts of the PDU they come from; the item
    /// enumerator gives every item of a job that parses, each inside the parameters (and its data block
    /// inside the data), adding up to the totals the request reports; every written value can be read.
    /// </summary>
    public static void CheckRequest(ReadOnlySpan<byte> pdu, in S7Header header, in S7Request request)
    {
        Invariant.That(Invariant.IsSliceAt(pdu, request.Pdu, 0) && request.Pdu.Length == pdu.Length, "request view is not the PDU it was given");
        Invariant.That((request.Status == S7RequestStatus.Ok) == (request.Error == S7RequestError.None), "Ok and Error disagree");
        Invariant.That((request.Status == S7RequestStatus.Malformed) == (request.Error is >= S7RequestError.HeaderInvalid and <= S7RequestError.UserdataDataInvalid), "Malformed with an out-of-spec reason, or the reverse");
        Invariant.That((request.Status == S7RequestStatus.OutOfSpec) == (request.Error >= S7RequestError.UnknownFunction), "OutOfSpec with a malformed reason, or the reverse");
        Invariant.That((request.Error == S7RequestError.HeaderInvalid) == !header.IsValid && request.HeaderError == header.Error, "HeaderInvalid is not the header's verdict");
        Invariant.That(request.Protocol == header.Protocol, "request and header name other protocols");
        if (request.Status != S7RequestStatus.Malformed && request.Protocol == S7Protocol.S7comm)
        {
            Invariant.That(request.Rosctr is S7Rosctr.Job or S7Rosctr.Userdata && request.Rosctr == header.Rosctr && request.Reference == header.Reference, "a request that parses is not a job or userdata of its header");
            Invariant.That(request.Function != S7Function.S7commPlus, "classic S7comm classified as S7comm-Plus");
        }
        Invariant.That(request.Status == S7RequestStatus.Malformed || request.Protocol != S7Protocol.S7commPlus || request.Function == S7Function.S7commPlus, "S7comm-Plus not classified as such");
        Invariant.That(Invariant.IsInside(header.Parameters, request.PiService) && Invariant.IsInside(header.Parameters, request.PiParameters), "PI service outside the parameters");
        Invariant.That(Invariant.IsInside(header.Data, request.UserdataPayload), "userdata payload outside the data");
        Invariant.That(request.Function != S7Function.PlcControl || request.Status != S7RequestStatus.Ok || !request.PiService.IsEmpty, "plc-control without a service name");

        int count = 0;
        int total = 0;
        bool nonAny = false;
        bool write = request.Function == S7Function.WriteVar;
        foreach (var item in request.Items)
        {
            var specification = item.Specification;
            Invariant.That(item.Index == count, "items out of order");
            Invariant.That(Invariant.IsInside(header.Parameters, specification), "an item outside the parameters");
            Invariant.That(specification.Length >= 3 && specification[0] == S7Items.VariableSpecification && specification.Length == 2 + specification[1], "an item whose length byte does not give its span");
            if (item.Syntax == S7SyntaxId.S7Any)
            {
                Invariant.That(specification.Length == S7Limits.S7AnyItemLength, "an S7ANY item that is not 12 bytes");
                Invariant.That(item.ByteLength >= 0 && item.Start >= 0 && item.Length >= 0 && item.BitOffset < 8, "an S7ANY span below 0");
                total += item.ByteLength;
                if (write && request.Status == S7RequestStatus.Ok)
                {
                    Invariant.That(item.Data.Length == item.ByteLength, "an accepted write whose data is not the item's length");
                }
            }
            else
            {
                nonAny = true;
                Invariant.That(item.ByteLength == 0 && item.Length == 0, "a span for an item that is not S7ANY");
            }
            if (write)
            {
                var block = item.DataBlock;
                Invariant.That(Invariant.IsInside(header.Data, block) && Invariant.IsSliceAt(block, item.Data, S7Limits.DataItemHeaderLength), "a data block outside the data, or its value outside the block");
                Invariant.That(block.Length == S7Limits.DataItemHeaderLength + S7Items.DataByteLength(block[1], (block[2] << 8) | block[3]), "a data block whose length field does not give its span");
                foreach (var type in ValueTypes)
                {
                    int values = item.ValueCount(type);
                    Invariant.That(values * S7Item.ValueSize(type) <= item.Data.Length, "more values than the data holds");
                    for (int v = 0; v < values; v++)
                    {
                        double value = item.ReadValue(type, v);
                        Invariant.That(type == S7ValueType.Float32 || double.IsFinite(value), "an integer value read as something else");
                    }
                }
            }
            else
            {
                Invariant.That(item.DataBlock.IsEmpty && item.Data.IsEmpty, "data for an item of a read");
            }
            count++;
        }
        if (request.Status != S7RequestStatus.Malformed && request.Function is S7Function.ReadVar or S7Function.WriteVar)
        {
            Invariant.That(count == request.ItemCount, "the enumerator does not give every item of a job that parses");
            Invariant.That(total == request.TotalItemBytes && nonAny == request.HasNonS7AnyItems, "the items do not add up to the request's totals");
        }
        else
        {
            Invariant.That(count == 0, "items for a request that is malformed or not read/write-var");
        }
    }
}
