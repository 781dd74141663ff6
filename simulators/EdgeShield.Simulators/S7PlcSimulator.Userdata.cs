using System.Buffers.Binary;
using System.Text;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Simulators;

public sealed partial class S7PlcSimulator
{
    /// <summary>What SZL 0x0011 / 0x001C report (an S7-300 CPU 315-2 PN/DP).</summary>
    public const string OrderNumber = "6ES7 315-2EH14-0AB0 ", ModuleTypeName = "CPU 315-2 PN/DP", SystemName = "EdgeShield S7 simulator",
        SerialNumber = "S C-ES0000000001";

    /// <summary>SZL ids this CPU answers (0x0000 lists them).</summary>
    private static ReadOnlySpan<ushort> SzlIds => [0x0000, 0x0011, 0x0111, 0x001C, 0x011C, 0x0424];

    /// <summary>The CPU clock: the host's local time (CPUs are set to local time) plus what set-clock moved it by.</summary>
    public DateTime Clock => DateTime.Now.AddTicks(Interlocked.Read(ref _clockOffsetTicks));

    private sealed partial class Session
    {
        private const int UserdataParameterLength = 12;
        private const int UserdataPayloadOffset = S7Limits.HeaderLength + UserdataParameterLength + S7Limits.DataItemHeaderLength;

        private bool HandleUserdata(in S7Request request, in S7Expectation expected)
        {
            if (request.UserdataType != S7UserdataType.Request || request.Status != S7RequestStatus.Ok)
            {
                return UserdataError(expected, ErrorServiceNotAvailable);
            }
            var payload = request.UserdataPayload;
            switch (request.UserdataGroup, request.Subfunction)
            {
                case (3, 1):
                    return ListBlocks(request);
                case (3, 2):
                    return ListBlocksOfType(request, expected, payload);
                case (3, 3):
                    return BlockInfo(request, expected, payload);
                case (4, 1):
                    return payload.IsEmpty && _szlRestLength > 0 ? ReadSzlNext(request) : ReadSzl(request, expected, payload);
                case (5, 1):
                    return SetPassword(request, expected, payload);
                case (5, 2):
                    _authorized = _plc._options.Password is null;
                    return Send(UserdataAnswer(request, 0));
                case (7, 1) or (7, 3):
                    return ReadClock(request);
                case (7, 2) or (7, 4):
                    return SetClock(request, expected, payload);
                default:
                    return UserdataError(expected, ErrorServiceNotAvailable);
            }
        }

        private bool UserdataError(in S7Expectation expected, ushort error) => Send(S7Pdu.WriteUserdataError(_out, expected, error));

        /// <summary>
        /// Writes a userdata response header, parameters (<c>00 01 12 08 12 8G SS NN 00 00 0000</c>) and the data
        /// head (<c>FF 09 LLLL</c>) for <paramref name="payloadLength"/> bytes that the caller writes at
        /// <see cref="UserdataPayloadOffset"/>; returns the PDU length.
        /// </summary>
        private int UserdataAnswer(in S7Request request, int payloadLength) => UserdataAnswer(request, payloadLength, request.SequenceNumber, 0, 0);

        /// <summary>As above, with the sequence number, data unit reference and "more data units follow" (1) of a multi-part answer.</summary>
        private int UserdataAnswer(in S7Request request, int payloadLength, byte sequence, byte dataUnit, byte more)
        {
            var o = _out.AsSpan();
            o[0] = S7Limits.ProtocolId;
            o[1] = (byte)S7Rosctr.Userdata;
            o[2] = 0;
            o[3] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(o[4..], request.Reference);
            BinaryPrimitives.WriteUInt16BigEndian(o[6..], UserdataParameterLength);
            BinaryPrimitives.WriteUInt16BigEndian(o[8..], (ushort)(S7Limits.DataItemHeaderLength + payloadLength));
            var p = o[S7Limits.HeaderLength..];
            p[0] = 0x00;
            p[1] = 0x01;
            p[2] = 0x12;
            p[3] = 0x08;
            p[4] = 0x12;
            p[5] = (byte)(0x80 | request.UserdataGroup);
            p[6] = request.Subfunction;
            p[7] = sequence;
            p[8] = dataUnit;
            p[9] = more; // last data unit: 00 yes, 01 more follow
            BinaryPrimitives.WriteUInt16BigEndian(p[10..], 0);
            var d = p[UserdataParameterLength..];
            d[0] = S7Items.ReturnSuccess;
            d[1] = 0x09; // octet string
            BinaryPrimitives.WriteUInt16BigEndian(d[2..], (ushort)payloadLength);
            return UserdataPayloadOffset + payloadLength;
        }

        private Span<byte> Payload => _out.AsSpan(UserdataPayloadOffset);

        private int MaxPayload => _pduSize - UserdataPayloadOffset;

        private bool ListBlocks(in S7Request request)
        {
            // 7 × | 30 | type | count (2) |, in the order a CPU lists them.
            var d = Payload;
            ReadOnlySpan<byte> types = [S7Blocks.TypeOb, S7Blocks.TypeFb, S7Blocks.TypeFc, S7Blocks.TypeDb, S7Blocks.TypeSdb, S7Blocks.TypeSfc, S7Blocks.TypeSfb];
            lock (_plc._sync)
            {
                for (int i = 0; i < types.Length; i++)
                {
                    d[i * 4] = 0x30;
                    d[(i * 4) + 1] = types[i];
                    BinaryPrimitives.WriteUInt16BigEndian(d[((i * 4) + 2)..], (ushort)_plc.BlockCount(types[i]));
                }
            }
            return Send(UserdataAnswer(request, types.Length * 4));
        }

        private bool ListBlocksOfType(in S7Request request, in S7Expectation expected, ReadOnlySpan<byte> payload)
        {
            // Request: | 30 | type |. Answer: per block | number (2) | 22 | language |, as many as fit this PDU.
            if (payload.Length < 2)
            {
                return UserdataError(expected, ErrorServiceNotAvailable);
            }
            byte type = payload[1];
            var d = Payload;
            int count = 0;
            int max = MaxPayload / 4;
            lock (_plc._sync)
            {
                if (type == S7Blocks.TypeDb)
                {
                    foreach (int number in _plc._dbs.Keys.Order())
                    {
                        if (count == max)
                        {
                            break;
                        }
                        WriteListEntry(d[(count++ * 4)..], number, 0x05);
                    }
                }
                else
                {
                    foreach (var key in _plc._codeBlocks.Keys)
                    {
                        if (key.Type == type && count < max)
                        {
                            WriteListEntry(d[(count++ * 4)..], key.Number, 0x01);
                        }
                    }
                }
            }
            return Send(UserdataAnswer(request, count * 4));
        }

        private static void WriteListEntry(Span<byte> d, int number, byte language)
        {
            BinaryPrimitives.WriteUInt16BigEndian(d, (ushort)number);
            d[2] = 0x22;
            d[3] = language;
        }

        private bool BlockInfo(in S7Request request, in S7Expectation expected, ReadOnlySpan<byte> payload)
        {
            // Request: | 30 | type | five ASCII digits | 41 |.
            if (payload.Length < 7 || !S7Blocks.TryParseName(payload, out byte type, out int number))
            {
                return UserdataError(expected, ErrorServiceNotAvailable);
            }
            byte[]? image;
            lock (_plc._sync)
            {
                image = _plc.BlockImage(type, number);
            }
            if (image is null)
            {
                return UserdataError(expected, ErrorBlockNotFound);
            }
            // | 01 | 00 | 4A00 | 0022 | then the block header's 36 bytes | author | family | name (8 each) | version | 00 | checksum (2) | 8 reserved |
            const int length = 78;
            if (length > MaxPayload)
            {
                return UserdataError(expected, ErrorPduSize);
            }
            var d = Payload[..length];
            d.Clear();
            d[0] = 0x01;
            d[1] = 0x00;
            BinaryPrimitives.WriteUInt16BigEndian(d[2..], 0x4A00);
            BinaryPrimitives.WriteUInt16BigEndian(d[4..], 0x0022);
            image.AsSpan(0, S7Blocks.HeaderLength).CopyTo(d[6..]);
            Encoding.ASCII.GetBytes("EDGESHLD", d.Slice(42, 8));
            Encoding.ASCII.GetBytes("SIM     ", d.Slice(50, 8));
            Encoding.ASCII.GetBytes("BLOCK   ", d.Slice(58, 8));
            d[66] = 0x01; // version
            return Send(UserdataAnswer(request, length));
        }

        private bool ReadSzl(in S7Request request, in S7Expectation expected, ReadOnlySpan<byte> payload)
        {
            // Request: | SZL id (2) | index (2) |. Answer: | id | index | record length (2) | record count (2) | records |
            if (payload.Length < 4)
            {
                return UserdataError(expected, ErrorServiceNotAvailable);
            }
            ushort id = BinaryPrimitives.ReadUInt16BigEndian(payload);
            ushort index = BinaryPrimitives.ReadUInt16BigEndian(payload[2..]);
            var d = Payload;
            BinaryPrimitives.WriteUInt16BigEndian(d, id);
            BinaryPrimitives.WriteUInt16BigEndian(d[2..], index);
            var records = d[8..];
            int recordLength, count;
            switch (id)
            {
                case 0x0000:
                    recordLength = 2;
                    count = SzlIds.Length;
                    for (int i = 0; i < count; i++)
                    {
                        BinaryPrimitives.WriteUInt16BigEndian(records[(i * 2)..], SzlIds[i]);
                    }
                    break;
                case 0x0011:
                case 0x0111:
                    recordLength = 28;
                    count = 0;
                    foreach (ushort idx in (ReadOnlySpan<ushort>)[0x0001, 0x0006, 0x0007])
                    {
                        if (id == 0x0011 || idx == index)
                        {
                            WriteIdentification(records[(count++ * recordLength)..], idx);
                        }
                    }
                    break;
                case 0x001C:
                case 0x011C:
                    recordLength = 34;
                    count = 0;
                    foreach (ushort idx in (ReadOnlySpan<ushort>)[0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0007, 0x0008])
                    {
                        if (id == 0x001C || idx == index)
                        {
                            WriteComponent(records[(count++ * recordLength)..], idx);
                        }
                    }
                    break;
                case 0x0424:
                    recordLength = 20;
                    count = 1;
                    WriteModeRecord(records, _plc.State, _plc.Clock);
                    break;
                default:
                    return UserdataError(expected, ErrorSzlNotAvailable);
            }
            if (count == 0)
            {
                return UserdataError(expected, ErrorSzlNotAvailable);
            }
            BinaryPrimitives.WriteUInt16BigEndian(d[4..], (ushort)recordLength);
            BinaryPrimitives.WriteUInt16BigEndian(d[6..], (ushort)count);
            int total = 8 + (count * recordLength);
            if (total <= MaxPayload)
            {
                _szlRestLength = 0;
                return Send(UserdataAnswer(request, total));
            }
            // Longer than this PDU (0x001C on a 240-byte PDU): the first part now, marked "more follow" under a
            // sequence number; the client asks for the rest with empty requests carrying that number.
            _szlRestLength = total - MaxPayload;
            d.Slice(MaxPayload, _szlRestLength).CopyTo(_szlRest);
            _szlRestOffset = 0;
            _szlSequence = (byte)(_szlSequence == 0xFF ? 1 : _szlSequence + 1);
            return Send(UserdataAnswer(request, MaxPayload, _szlSequence, _szlSequence, 1));
        }

        private readonly byte[] _szlRest = new byte[MaxPduBuffer];
        private int _szlRestLength;
        private int _szlRestOffset;
        private byte _szlSequence;

        private bool ReadSzlNext(in S7Request request)
        {
            int take = Math.Min(_szlRestLength, MaxPayload);
            _szlRest.AsSpan(_szlRestOffset, take).CopyTo(Payload);
            _szlRestOffset += take;
            _szlRestLength -= take;
            return Send(UserdataAnswer(request, take, _szlSequence, _szlSequence, _szlRestLength > 0 ? (byte)1 : (byte)0));
        }

        private static void WriteIdentification(Span<byte> r, ushort index)
        {
            // | index (2) | MLFB (20) | BGTyp (2) | Ausbg (2) | Ausbe (2) |
            BinaryPrimitives.WriteUInt16BigEndian(r, index);
            Encoding.ASCII.GetBytes(index == 0x0007 ? "                    " : OrderNumber, r.Slice(2, 20));
            BinaryPrimitives.WriteUInt16BigEndian(r[22..], 0x00C0);
            BinaryPrimitives.WriteUInt16BigEndian(r[24..], index == 0x0007 ? (ushort)0x5603 : (ushort)0x0004); // 'V' 3
            BinaryPrimitives.WriteUInt16BigEndian(r[26..], index == 0x0007 ? (ushort)0x020C : (ushort)0x0001); // .2.12
        }

        private static void WriteComponent(Span<byte> r, ushort index)
        {
            // | index (2) | text, zero-padded (32) |
            BinaryPrimitives.WriteUInt16BigEndian(r, index);
            var text = r.Slice(2, 32);
            text.Clear();
            string value = index switch
            {
                0x0001 => SystemName,
                0x0002 => ModuleTypeName,
                0x0003 => "",
                0x0004 => "Original Siemens Equipment",
                0x0005 => SerialNumber,
                0x0007 => ModuleTypeName,
                _ => "MMC 267FF11F",
            };
            Encoding.ASCII.GetBytes(value, text);
        }

        private static void WriteModeRecord(Span<byte> r, S7CpuState state, DateTime now)
        {
            // | event id (2) | ae FF | mode: 08 RUN, 04 STOP | 8 reserved | time stamp (8, BCD) |
            r[..20].Clear();
            BinaryPrimitives.WriteUInt16BigEndian(r, state == S7CpuState.Run ? (ushort)0x4433 : (ushort)0x4404);
            r[2] = 0xFF;
            r[3] = state == S7CpuState.Run ? (byte)0x08 : (byte)0x04;
            WriteBcdTime(r.Slice(12, 8), now);
        }

        private static byte Bcd(int value) => (byte)(((value / 10) << 4) | (value % 10));

        private static int FromBcd(byte b) => ((b >> 4) * 10) + (b & 0x0F);

        /// <summary>DATE_AND_TIME: YY MM DD hh mm ss (BCD), milliseconds (3 BCD digits) and the weekday (1 = Sunday).</summary>
        private static void WriteBcdTime(Span<byte> t, DateTime now)
        {
            t[0] = Bcd(now.Year % 100);
            t[1] = Bcd(now.Month);
            t[2] = Bcd(now.Day);
            t[3] = Bcd(now.Hour);
            t[4] = Bcd(now.Minute);
            t[5] = Bcd(now.Second);
            t[6] = Bcd(now.Millisecond / 10);
            t[7] = (byte)(((now.Millisecond % 10) << 4) | ((int)now.DayOfWeek + 1));
        }

        private bool ReadClock(in S7Request request)
        {
            // | 00 | year high (BCD) | DATE_AND_TIME (8) |
            var d = Payload;
            var now = _plc.Clock;
            d[0] = 0x00;
            d[1] = Bcd(now.Year / 100);
            WriteBcdTime(d.Slice(2, 8), now);
            return Send(UserdataAnswer(request, 10));
        }

        private bool SetClock(in S7Request request, in S7Expectation expected, ReadOnlySpan<byte> payload)
        {
            if (payload.Length < 10)
            {
                return UserdataError(expected, ErrorServiceNotAvailable);
            }
            var t = payload[2..];
            int year = FromBcd(t[0]) + (payload[1] == 0 ? (FromBcd(t[0]) < 90 ? 2000 : 1900) : FromBcd(payload[1]) * 100);
            int ms = (FromBcd(t[6]) * 10) + (t[7] >> 4);
            try
            {
                var when = new DateTime(year, FromBcd(t[1]), FromBcd(t[2]), FromBcd(t[3]), FromBcd(t[4]), FromBcd(t[5]), Math.Min(ms, 999), DateTimeKind.Local);
                Interlocked.Exchange(ref _plc._clockOffsetTicks, (when - DateTime.Now).Ticks);
            }
            catch (ArgumentOutOfRangeException)
            {
                return UserdataError(expected, 0xDC01); // invalid value
            }
            return Send(UserdataAnswer(request, 0));
        }

        private bool SetPassword(in S7Request request, in S7Expectation expected, ReadOnlySpan<byte> payload)
        {
            Interlocked.Increment(ref _plc._passwordAttempts);
            if (payload.Length != 8)
            {
                Interlocked.Increment(ref _plc._passwordFailures);
                return UserdataError(expected, ErrorInvalidPassword);
            }
            if (_plc._options.Password is { } password && !PasswordMatches(payload, password))
            {
                Interlocked.Increment(ref _plc._passwordFailures);
                return UserdataError(expected, ErrorInvalidPassword);
            }
            _authorized = true;
            return Send(UserdataAnswer(request, 0));
        }
    }

    /// <summary>
    /// Whether an encoded password (8 bytes, as S7 clients send it) is <paramref name="password"/>: the plain
    /// text padded with spaces, bytes 0 and 1 XOR 0x55, each later byte XOR 0x55 XOR the encoded byte two before.
    /// </summary>
    public static bool PasswordMatches(ReadOnlySpan<byte> encoded, string password)
    {
        ArgumentNullException.ThrowIfNull(password);
        Span<byte> expected = stackalloc byte[8];
        EncodePassword(password, expected);
        return encoded.SequenceEqual(expected);
    }

    /// <summary>Encodes a password (at most 8 ASCII characters) as S7 clients send it.</summary>
    public static void EncodePassword(string password, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(password);
        destination[..8].Fill((byte)' ');
        Encoding.ASCII.GetBytes(password.AsSpan(0, Math.Min(8, password.Length)), destination);
        destination[0] ^= 0x55;
        destination[1] ^= 0x55;
        for (int i = 2; i < 8; i++)
        {
            destination[i] = (byte)(destination[i] ^ 0x55 ^ destination[i - 2]);
        }
    }
}
