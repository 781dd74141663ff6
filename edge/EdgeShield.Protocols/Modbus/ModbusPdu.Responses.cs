using System.Buffers.Binary;

namespace EdgeShield.Protocols.Modbus;

/// <summary>The outcome of checking a response PDU against the request it claims to answer.</summary>
public enum ResponseStatus : byte
{
    /// <summary>Does not answer the request: it must be dropped, never forwarded.</summary>
    Mismatch = 0,
    /// <summary>A normal response of the right function and length.</summary>
    Normal,
    /// <summary>An exception response (<c>function | 0x80</c>, one code) to the request's function.</summary>
    Exception,
}

/// <summary>Why a response does not answer its request.</summary>
public enum ResponseError : byte
{
    None = 0,
    /// <summary>Empty PDU.</summary>
    Empty,
    /// <summary>The function code is neither the request's nor its exception form.</summary>
    WrongFunction,
    /// <summary>An exception response that is not exactly two bytes.</summary>
    ExceptionLength,
    /// <summary>Length or byte count disagrees with what the request asked for.</summary>
    WrongLength,
    /// <summary>An echo response (FC 5, 6, 8, 15, 16, 22) whose echoed fields differ from the request.</summary>
    WrongEcho,
    /// <summary>An exception response with code 0, which no server sends (spec section 7).</summary>
    ExceptionCodeInvalid,
    /// <summary>FC 20: more or other sub-responses or records than the request asked for.</summary>
    WrongRecords,
    /// <summary>FC 43/14: another read device id code, or another object, than the request asked for.</summary>
    WrongDeviceIdObject,
}

/// <summary>
/// What a response must look like, taken from its request when the request is forwarded, so that
/// the request bytes need not be kept. 20 bytes, no references: where a response must repeat more of
/// its request than fits (FC 8/00 echoes any data; FC 20 answers one sub-response per sub-request),
/// <see cref="Digest"/> holds a hash of what it must repeat.
/// </summary>
public readonly record struct ResponseExpectation(byte FunctionCode, byte MeiType, ushort Quantity, ushort RequestLength, uint Echo, ushort Echo2)
{
    /// <summary>
    /// FC 8/00: FNV-1a of the request's data, which the echo must repeat byte for byte. FC 20: FNV-1a
    /// of the record lengths asked for, in order (with <see cref="Quantity"/> the sub-request count).
    /// </summary>
    public uint Digest { get; init; }

    /// <summary>Takes what the response check needs from a request.</summary>
    public static ResponseExpectation For(in ModbusRequest request)
    {
        var pdu = request.Pdu;
        // A diagnostics request may carry a sub-function and no data (N = 0 words, 6.8): its
        // echo must still hold the sub-function.
        uint echo = pdu.Length >= 5 ? BinaryPrimitives.ReadUInt32BigEndian(pdu[1..])
            : pdu.Length >= 3 ? (uint)BinaryPrimitives.ReadUInt16BigEndian(pdu[1..]) << 16
            : 0;
        ushort echo2 = pdu.Length >= 7 ? BinaryPrimitives.ReadUInt16BigEndian(pdu[5..]) : (ushort)0;
        ushort quantity = request.FunctionCode switch
        {
            1 or 2 or 3 or 4 => request.ReadSpan.Count,
            23 => request.ReadSpan.Count,
            _ => 0,
        };
        uint digest = 0;
        if (request.FunctionCode == 8 && request.SubFunction == 0 && pdu.Length >= 3)
        {
            digest = ModbusPdu.Fnv1a(ModbusPdu.FnvOffset, pdu[3..]);
        }
        else if (request.FunctionCode == 20 && pdu.Length >= 2)
        {
            // | 14 | byte count | 7-byte sub-requests: ref type, file (2), record (2), record length (2) |
            digest = ModbusPdu.FnvOffset;
            for (var sub = pdu[2..]; sub.Length >= 7; sub = sub[7..])
            {
                digest = ModbusPdu.Fnv1a(digest, sub.Slice(5, 2));
                quantity++;
            }
        }
        else if (request.FunctionCode == ModbusFunctions.EncapsulatedInterface && request.MeiType == ModbusFunctions.MeiDeviceIdentification && pdu.Length >= 4)
        {
            // Read device id code and object id (6.21): the answer must be to the same.
            echo2 = (ushort)((pdu[2] << 8) | pdu[3]);
        }
        return new ResponseExpectation(request.FunctionCode, request.MeiType, quantity, (ushort)pdu.Length, echo, echo2) { Digest = digest };
    }
}

public static partial class ModbusPdu
{
    /// <summary>
    /// Checks that <paramref name="pdu"/> answers the request described by <paramref name="expected"/>:
    /// same function (or its exception form), and a length and byte count that fit the request.
    /// </summary>
    public static ResponseStatus CheckResponse(ReadOnlySpan<byte> pdu, in ResponseExpectation expected, out ResponseError error)
    {
        error = ResponseError.None;
        if (pdu.IsEmpty)
        {
            error = ResponseError.Empty;
            return ResponseStatus.Mismatch;
        }
        byte fc = pdu[0];
        // Codes 128-255 are exception responses only (spec section 5): a server answers a request
        // in that range (or code 0) with its exception form or not at all, never with a normal response.
        if (fc == (expected.FunctionCode | ModbusExceptionCode.ExceptionFlag))
        {
            if (pdu.Length != 2)
            {
                error = ResponseError.ExceptionLength;
                return ResponseStatus.Mismatch;
            }
            if (pdu[1] == 0)
            {
                error = ResponseError.ExceptionCodeInvalid;
                return ResponseStatus.Mismatch;
            }
            return ResponseStatus.Exception;
        }
        if (fc != expected.FunctionCode || expected.FunctionCode is 0 or >= ModbusExceptionCode.ExceptionFlag)
        {
            error = ResponseError.WrongFunction;
            return ResponseStatus.Mismatch;
        }
        error = CheckNormal(pdu, expected);
        return error == ResponseError.None ? ResponseStatus.Normal : ResponseStatus.Mismatch;
    }

    private static ResponseError CheckNormal(ReadOnlySpan<byte> pdu, in ResponseExpectation expected)
    {
        switch (expected.FunctionCode)
        {
            case 1:
            case 2:
                // | fc | N = ceil(qty / 8) | N bytes |
                return Exact(pdu, 2 + ((expected.Quantity + 7) / 8)) && pdu[1] == (expected.Quantity + 7) / 8 ? ResponseError.None : ResponseError.WrongLength;
            case 3:
            case 4:
            case 23:
                // | fc | N = 2·qty | values |
                return Exact(pdu, 2 + (expected.Quantity * 2)) && pdu[1] == expected.Quantity * 2 ? ResponseError.None : ResponseError.WrongLength;
            case 5:
            case 6:
            case 15:
            case 16:
                // Echo of address and value, or of start and quantity.
                if (pdu.Length != 5)
                {
                    return ResponseError.WrongLength;
                }
                return BinaryPrimitives.ReadUInt32BigEndian(pdu[1..]) == expected.Echo ? ResponseError.None : ResponseError.WrongEcho;
            case 22:
                if (pdu.Length != 7)
                {
                    return ResponseError.WrongLength;
                }
                return BinaryPrimitives.ReadUInt32BigEndian(pdu[1..]) == expected.Echo && BinaryPrimitives.ReadUInt16BigEndian(pdu[5..]) == expected.Echo2
                    ? ResponseError.None : ResponseError.WrongEcho;
            case 7:
                return Exact(pdu, 2) ? ResponseError.None : ResponseError.WrongLength;
            case 8:
                // Same sub-function and length; counters sub-functions return data in place of the request's 0000.
                // An expectation taken from a truncated request may have a length below 3: no
                // response can answer it, and the sub-function must not be read past the PDU.
                if (pdu.Length != expected.RequestLength || pdu.Length < 3)
                {
                    return ResponseError.WrongLength;
                }
                if (BinaryPrimitives.ReadUInt16BigEndian(pdu[1..]) != (ushort)(expected.Echo >> 16))
                {
                    return ResponseError.WrongEcho;
                }
                // 8/00 return query data: the echo is the request, byte for byte.
                return expected.Echo >> 16 != 0 || Fnv1a(FnvOffset, pdu[3..]) == expected.Digest ? ResponseError.None : ResponseError.WrongEcho;
            case 11:
                return Exact(pdu, 5) ? ResponseError.None : ResponseError.WrongLength;
            case 12:
                // | fc | N (6..70) | status (2) | event count (2) | message count (2) | 0..64 events |
                return Counted(pdu) && pdu[1] is >= 6 and <= 70 ? ResponseError.None : ResponseError.WrongLength;
            case 17:
                return Counted(pdu) ? ResponseError.None : ResponseError.WrongLength;
            case 20:
                if (!Counted(pdu) || pdu[1] > 0xF5 || !FileSubResponsesHoldTogether(pdu[2..]))
                {
                    return ResponseError.WrongLength;
                }
                return FileSubResponsesAnswer(pdu[2..], expected) ? ResponseError.None : ResponseError.WrongRecords;
            case 21:
                return pdu.Length == expected.RequestLength ? ResponseError.None : ResponseError.WrongLength;
            case 24:
                // | fc | byte count (2) | FIFO count (2, ≤ 31) | values |
                if (pdu.Length < 5)
                {
                    return ResponseError.WrongLength;
                }
                int byteCount = BinaryPrimitives.ReadUInt16BigEndian(pdu[1..]);
                int fifoCount = BinaryPrimitives.ReadUInt16BigEndian(pdu[3..]);
                return fifoCount <= ModbusLimits.MaxFifoCount && byteCount == 2 + (fifoCount * 2) && pdu.Length == 3 + byteCount
                    ? ResponseError.None : ResponseError.WrongLength;
            case ModbusFunctions.EncapsulatedInterface:
                if (pdu.Length < 2 || pdu[1] != expected.MeiType)
                {
                    return ResponseError.WrongEcho;
                }
                return expected.MeiType == ModbusFunctions.MeiDeviceIdentification ? CheckDeviceIdentification(pdu, expected) : ResponseError.None;
            default:
                // Opaque (user-defined, vendor) functions: the function code is all we can check.
                return ResponseError.None;
        }
    }

    /// <summary>
    /// FC 43/14 response (6.21):
    /// <code>
    /// | 2B | 0E | read code | conformity | more follows | next id | count | count × (id, length L, L bytes) |
    /// </code>
    /// </summary>
    private static ResponseError CheckDeviceIdentification(ReadOnlySpan<byte> pdu, in ResponseExpectation expected)
    {
        if (pdu.Length < 7)
        {
            return ResponseError.WrongLength;
        }
        byte readCode = (byte)(expected.Echo2 >> 8);
        // Same read code; an individual access (code 4) answers exactly the object asked for. A stream
        // access (1-3) may start elsewhere: a server restarts at 0 for an object id it does not know.
        if (pdu[2] != readCode || (readCode == 4 && (pdu[6] != 1 || pdu.Length < 8 || pdu[7] != (byte)expected.Echo2)))
        {
            return ResponseError.WrongDeviceIdObject;
        }
        int count = pdu[6];
        var objects = pdu[7..];
        for (int i = 0; i < count; i++)
        {
            if (objects.Length < 2 || objects.Length < 2 + objects[1])
            {
                return ResponseError.WrongLength;
            }
            objects = objects[(2 + objects[1])..];
        }
        return objects.IsEmpty ? ResponseError.None : ResponseError.WrongLength;
    }

    /// <summary>
    /// FC 20 sub-responses (6.14): <c>| length L | reference type 6 | L - 1 bytes of records |</c>, repeated
    /// to the end. The spec's table gives 0x07 as the smallest response data length, yet a single
    /// one-record sub-response is 4 bytes and real devices send it; the walk is what must hold.
    /// </summary>
    private static bool FileSubResponsesHoldTogether(ReadOnlySpan<byte> subResponses)
    {
        if (subResponses.IsEmpty)
        {
            return false;
        }
        while (!subResponses.IsEmpty)
        {
            int length = subResponses[0];
            if (length < 3 || length % 2 == 0 || subResponses.Length < 1 + length || subResponses[1] != ModbusLimits.FileRecordReferenceType)
            {
                return false;
            }
            subResponses = subResponses[(1 + length)..];
        }
        return true;
    }

    /// <summary>FC 20: one sub-response per sub-request, each with the record length asked for (the walk already held).</summary>
    private static bool FileSubResponsesAnswer(ReadOnlySpan<byte> subResponses, in ResponseExpectation expected)
    {
        uint digest = FnvOffset;
        int count = 0;
        Span<byte> records = stackalloc byte[2];
        while (!subResponses.IsEmpty)
        {
            int length = subResponses[0];
            BinaryPrimitives.WriteUInt16BigEndian(records, (ushort)((length - 1) / 2));
            digest = Fnv1a(digest, records);
            count++;
            subResponses = subResponses[(1 + length)..];
        }
        return count == expected.Quantity && digest == expected.Digest;
    }

    /// <summary>
    /// FC 1 and 2: the bits after the last coil or input asked for in the last byte must be 0 (6.1);
    /// clears them if not.
    /// </summary>
    /// <returns>True when a padding bit was set (and is now cleared). The response must already have
    /// checked <see cref="ResponseStatus.Normal"/> against <paramref name="expected"/>.</returns>
    public static bool ClearPaddingBits(Span<byte> pdu, in ResponseExpectation expected)
    {
        int used = expected.Quantity % 8;
        if (expected.FunctionCode is not (1 or 2) || used == 0 || pdu.Length != 2 + ((expected.Quantity + 7) / 8))
        {
            return false;
        }
        byte mask = (byte)((1 << used) - 1);
        ref byte last = ref pdu[^1];
        if ((last & ~mask) == 0)
        {
            return false;
        }
        last &= mask;
        return true;
    }

    internal const uint FnvOffset = 2166136261;

    internal static uint Fnv1a(uint hash, ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            hash = (hash ^ b) * 16777619;
        }
        return hash;
    }

    private static bool Exact(ReadOnlySpan<byte> pdu, int length) => pdu.Length == length;

    private static bool Counted(ReadOnlySpan<byte> pdu) => pdu.Length >= 2 && pdu.Length == 2 + pdu[1];
}
