using System.Buffers.Binary;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Fuzz;

/// <summary>Request decoding (<see cref="ModbusPdu.ParseRequest"/>) and response checks (<see cref="ModbusPdu.CheckResponse"/>).</summary>
internal static class PduTargets
{
    /// <summary>Input: one request PDU (function code and data).</summary>
    public static void RunRequest(byte[] input) =>
        NoAllocation.Check(input, static pdu => CheckRequest(pdu), "ParseRequest");

    /// <summary>
    /// Input: <c>| L | request PDU (L bytes, or what is left) | response PDU |</c>. The response is
    /// checked against the expectation the request gives, as the gateway checks a PLC's answer.
    /// </summary>
    public static void RunResponse(byte[] input)
    {
        if (input.Length == 0)
        {
            return;
        }
        NoAllocation.Check(input, static bytes =>
        {
            int requestLength = Math.Min(bytes[0], bytes.Length - 1);
            CheckResponse(bytes.Slice(1, requestLength), bytes[(1 + requestLength)..]);
        }, "CheckResponse");
    }

    /// <summary>Decodes a request PDU and checks what the view says against the bytes it came from.</summary>
    public static void CheckRequest(ReadOnlySpan<byte> pdu)
    {
        var request = ModbusPdu.ParseRequest(pdu);
        Invariant.That(Invariant.IsSliceAt(pdu, request.Pdu, 0) && request.Pdu.Length == pdu.Length, "request view is not the PDU it was given");
        Invariant.That((request.Status == RequestStatus.Malformed) == (request.Error != FramingError.None), "Malformed and Error disagree");
        Invariant.That((request.Status == RequestStatus.OutOfSpec) == (request.Violation != SpecViolation.None), "OutOfSpec and Violation disagree");
        Invariant.That((request.Status == RequestStatus.OutOfSpec) == (request.SpecExceptionCode != 0), "OutOfSpec without an exception code");
        Invariant.That(pdu.IsEmpty || request.FunctionCode == pdu[0], "function code is not the PDU's first byte");
        Invariant.That(Invariant.IsInside(pdu, request.RegisterValues), "register values outside the PDU");
        for (int i = 0; i < request.RegisterValueCount; i++)
        {
            _ = request.RegisterValue(i);
        }
        // Re-encoding is checked on what a framer can deliver (MBAP and RTU both bound a PDU to 253
        // bytes); longer inputs still go through every other check.
        if (request.Status == RequestStatus.Valid && pdu.Length <= ModbusLimits.MaxPduLength)
        {
            Reencode(pdu, request);
        }

        // The expectation is taken from every forwarded request; it must be safe on any of them,
        // and the request's own bytes, read as a response, must get a consistent answer.
        var expectation = request.Expectation;
        var status = ModbusPdu.CheckResponse(pdu, expectation, out var error);
        Invariant.That((status == ResponseStatus.Mismatch) == (error != ResponseError.None), "Mismatch and ResponseError disagree");
    }

    /// <summary>
    /// Decode → encode: a valid request re-encoded from the decoded view (function, spans, values)
    /// must give the bytes it was decoded from. Functions whose view does not carry every field
    /// (coil value, masks, diagnostics data, MEI data) are compared on the fields it carries.
    /// </summary>
    private static void Reencode(ReadOnlySpan<byte> pdu, in ModbusRequest request)
    {
        Span<byte> encoded = stackalloc byte[ModbusLimits.MaxPduLength + 16];
        encoded[0] = request.FunctionCode;
        int length;
        switch (request.FunctionCode)
        {
            case 1:
            case 2:
            case 3:
            case 4:
                Invariant.That(request.ReadSpan.Table == TableOf(request.FunctionCode), "read span names the wrong table");
                length = Span(encoded, 1, request.ReadSpan);
                CheckSpan(request.ReadSpan, request.FunctionCode <= 2 ? ModbusLimits.MaxReadBits : ModbusLimits.MaxReadRegisters);
                break;
            case 5:
                BinaryPrimitives.WriteUInt16BigEndian(encoded[1..], request.WriteSpan.Start);
                pdu.Slice(3, 2).CopyTo(encoded[3..]);
                length = 5;
                Invariant.That(request.WriteSpan is { Table: ModbusTable.Coils, Count: 1 }, "write single coil span");
                break;
            case 6:
                BinaryPrimitives.WriteUInt16BigEndian(encoded[1..], request.WriteSpan.Start);
                request.RegisterValues.CopyTo(encoded[3..]);
                length = 3 + request.RegisterValues.Length;
                Invariant.That(request.WriteSpan is { Table: ModbusTable.HoldingRegisters, Count: 1 }, "write single register span");
                break;
            case 7:
            case 11:
            case 12:
            case 17:
                length = 1;
                break;
            case 8:
                BinaryPrimitives.WriteUInt16BigEndian(encoded[1..], request.SubFunction);
                pdu[3..].CopyTo(encoded[3..]);
                length = pdu.Length;
                Invariant.That((pdu.Length - 3) % 2 == 0, "valid diagnostics data is whole words");
                break;
            case 15:
                length = Span(encoded, 1, request.WriteSpan);
                encoded[length++] = (byte)((request.WriteSpan.Count + 7) / 8);
                pdu[6..].CopyTo(encoded[length..]);
                length += pdu.Length - 6;
                CheckSpan(request.WriteSpan, ModbusLimits.MaxWriteBits);
                break;
            case 16:
                length = Span(encoded, 1, request.WriteSpan);
                encoded[length++] = (byte)(request.WriteSpan.Count * 2);
                request.RegisterValues.CopyTo(encoded[length..]);
                length += request.RegisterValues.Length;
                Invariant.That(request.RegisterValueCount == request.WriteSpan.Count, "register values and quantity disagree");
                CheckSpan(request.WriteSpan, ModbusLimits.MaxWriteRegisters);
                break;
            case 22:
                BinaryPrimitives.WriteUInt16BigEndian(encoded[1..], request.WriteSpan.Start);
                pdu[3..].CopyTo(encoded[3..]);
                length = pdu.Length;
                break;
            case 23:
                length = Span(encoded, 1, request.ReadSpan);
                length = Span(encoded, length, request.WriteSpan);
                encoded[length++] = (byte)(request.WriteSpan.Count * 2);
                request.RegisterValues.CopyTo(encoded[length..]);
                length += request.RegisterValues.Length;
                Invariant.That(request.RegisterValueCount == request.WriteSpan.Count, "register values and write quantity disagree");
                CheckSpan(request.ReadSpan, ModbusLimits.MaxReadWriteReadRegisters);
                CheckSpan(request.WriteSpan, ModbusLimits.MaxReadWriteWriteRegisters);
                break;
            case 24:
                BinaryPrimitives.WriteUInt16BigEndian(encoded[1..], request.ReadSpan.Start);
                length = 3;
                break;
            case ModbusFunctions.EncapsulatedInterface:
                encoded[1] = request.MeiType;
                pdu[2..].CopyTo(encoded[2..]);
                length = pdu.Length;
                Invariant.That(request.Function == ModbusFunctions.Classify(request.FunctionCode, request.MeiType), "MEI function classified wrongly");
                break;
            default:
                // Opaque (user-defined, vendor, unassigned) functions: the view is the function code.
                pdu[1..].CopyTo(encoded[1..]);
                length = pdu.Length;
                Invariant.That(request.Function == ModbusFunctions.Classify(request.FunctionCode, 0), "function classified wrongly");
                break;
        }
        Invariant.That(encoded[..length].SequenceEqual(pdu), "a valid request does not re-encode to its bytes");
    }

    private static ModbusTable TableOf(byte functionCode) => functionCode switch
    {
        1 => ModbusTable.Coils,
        2 => ModbusTable.DiscreteInputs,
        3 => ModbusTable.HoldingRegisters,
        _ => ModbusTable.InputRegisters,
    };

    private static int Span(Span<byte> destination, int offset, AddressSpan span)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination[offset..], span.Start);
        BinaryPrimitives.WriteUInt16BigEndian(destination[(offset + 2)..], span.Count);
        return offset + 4;
    }

    private static void CheckSpan(AddressSpan span, int maxQuantity)
    {
        Invariant.That(span.Count >= 1 && span.Count <= maxQuantity, "a valid request's quantity is outside the spec");
        Invariant.That(span.Last <= ushort.MaxValue, "a valid request's span runs past 65535");
    }

    /// <summary>Checks <paramref name="response"/> against the request's expectation, and what a Normal or Exception answer implies.</summary>
    public static void CheckResponse(ReadOnlySpan<byte> requestPdu, ReadOnlySpan<byte> response)
    {
        var request = ModbusPdu.ParseRequest(requestPdu);
        var expected = request.Expectation;
        var status = ModbusPdu.CheckResponse(response, expected, out var error);
        Invariant.That((status == ResponseStatus.Mismatch) == (error != ResponseError.None), "Mismatch and ResponseError disagree");
        if (status == ResponseStatus.Exception)
        {
            Invariant.That(response.Length == 2 && response[0] == (expected.FunctionCode | ModbusExceptionCode.ExceptionFlag), "an Exception answer is not function|0x80 and one code");
            return;
        }
        if (status != ResponseStatus.Normal)
        {
            return;
        }
        byte fc = expected.FunctionCode;
        Invariant.That(response[0] == fc && fc is > 0 and < ModbusExceptionCode.ExceptionFlag, "a Normal answer of another function");
        if (request.Status != RequestStatus.Valid)
        {
            return;
        }
        // What a normal response must be, worked out again from the request bytes (spec section 6).
        switch (fc)
        {
            case 1:
            case 2:
                Invariant.That(response.Length == 2 + ((request.ReadSpan.Count + 7) / 8), "read-bits answer of the wrong length");
                break;
            case 3:
            case 4:
            case 23:
                Invariant.That(response.Length == 2 + (request.ReadSpan.Count * 2) && response[1] == request.ReadSpan.Count * 2, "read-registers answer of the wrong length");
                break;
            case 5:
            case 6:
            case 15:
            case 16:
                Invariant.That(response.Length == 5 && response.Slice(1, 4).SequenceEqual(requestPdu.Slice(1, 4)), "write answer is not the echo");
                break;
            case 22:
                Invariant.That(response.SequenceEqual(requestPdu), "mask write answer is not the echo");
                break;
            case 7:
                Invariant.That(response.Length == 2, "exception status answer length");
                break;
            case 8:
                Invariant.That(response.Length == requestPdu.Length && response.Slice(1, 2).SequenceEqual(requestPdu.Slice(1, 2)), "diagnostics answer is not the echo");
                break;
            case 11:
                Invariant.That(response.Length == 5, "comm event counter answer length");
                break;
            default:
                break;
        }
    }
}
