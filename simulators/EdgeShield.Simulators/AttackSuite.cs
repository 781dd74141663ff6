using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Simulators;

/// <summary>Bounds of an <see cref="AttackSuite"/> run. Every count and duration is a hard bound.</summary>
public sealed class AttackOptions
{
    public byte Unit { get; init; } = 1;
    /// <summary>How long to wait for an answer before calling it <see cref="ProbeOutcome.NoAnswer"/>.</summary>
    public int AnswerTimeoutMs { get; init; } = 1000;
    public int ConnectTimeoutMs { get; init; } = 2000;
    /// <summary>
    /// Local addresses the attack connects from, round robin (any 127.x.y.z works on Linux loopback).
    /// Several let one attacker look like many sources to a per-source connection limit; null: the system chooses.
    /// </summary>
    public IReadOnlyList<IPAddress>? SourceAddresses { get; init; }
    /// <summary>FC 3 scan: registers per request and the most requests sent.</summary>
    public int ScanBlock { get; init; } = 125;
    public int ScanMaxRequests { get; init; } = 525;
    /// <summary>Most requests of each of the other address sweeps (FC 1, FC 4, FC 6, FC 16 across the whole table).</summary>
    public int SweepMaxRequests { get; init; } = 512;
    /// <summary>A register address the writes of the forbidden-function cases aim at (outside a typical setpoint window).</summary>
    public ushort ForbiddenWriteAddress { get; init; } = 4000;
    /// <summary>The value sweeps write to ValueSweepStart..+ValueSweepCount-1 (a window the policy may allow) …</summary>
    public ushort ValueSweepStart { get; init; } = 100;
    public int ValueSweepCount { get; init; } = 20;
    /// <summary>… values from this one up to 65535 (above the window's allowed bound).</summary>
    public ushort ValueSweepFrom { get; init; } = 1501;
    /// <summary>Most requests of each value sweep.</summary>
    public int ValueSweepMaxRequests { get; init; } = 256;
    /// <summary>Maximal FC 16 frames written at once by the burst case.</summary>
    public int BurstFrames { get; init; } = 256;
    /// <summary>Connections opened by the flood case.</summary>
    public int FloodConnections { get; init; } = 300;
    /// <summary>Connections opened and then left silent (every tenth sends 4 bytes of a header) by the half-open case.</summary>
    public int HalfOpenConnections { get; init; } = 10_000;
    /// <summary>How long the half-open connections are held before they are counted and closed.</summary>
    public int HalfOpenHoldMs { get; init; } = 5000;
    /// <summary>Slowloris: connections, the pause between bytes, and how long they drip.</summary>
    public int SlowlorisConnections { get; init; } = 20;
    public int SlowlorisByteIntervalMs { get; init; } = 1000;
    public TimeSpan SlowlorisDuration { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>Rounds of the transaction-id collision case (8 pipelined reads with one id per round).</summary>
    public int TidCollisionRounds { get; init; } = 64;
    /// <summary>Wall-clock bound of any one case (slowloris and half-open add their own duration to it).</summary>
    public TimeSpan CaseTimeLimit { get; init; } = TimeSpan.FromSeconds(15);

    internal IPAddress? Source(int connection) =>
        SourceAddresses is { Count: > 0 } sources ? sources[connection % sources.Count] : null;
}

/// <summary>What happened to one attack case. Multi-request cases fill the counts; <see cref="Outcome"/> is then the most frequent answer.</summary>
public sealed record AttackCaseResult(string Name, ProbeOutcome Outcome, byte ExceptionCode)
{
    /// <summary>Frames (or, for half-open, partial headers) sent.</summary>
    public int Sent { get; init; } = 1;
    /// <summary>TCP connections the case opened.</summary>
    public int Connections { get; init; } = 1;
    public int Normal { get; init; }
    public int Exceptions { get; init; }
    public int Closed { get; init; }
    public int NoAnswer { get; init; }
    public int ConnectFailed { get; init; }
    /// <summary>Normal answers that did not fit the request they answer (transaction id, byte count).</summary>
    public int Mismatched { get; init; }
    /// <summary>Whether the case stopped at its time or count bound before finishing.</summary>
    public bool Truncated { get; init; }
    /// <summary>What the answer was, in the protocol's words, when the outcome alone does not say (the S7 suite: "Ack_Data error 8703", "COTP DR reason 03"…).</summary>
    public string? Detail { get; init; }

    public override string ToString()
    {
        string outcome = Outcome switch
        {
            ProbeOutcome.Exception => string.Create(CultureInfo.InvariantCulture, $"exception {ExceptionCode:X2}"),
            ProbeOutcome.Normal => "answered normally",
            ProbeOutcome.ConnectionClosed => "connection closed",
            ProbeOutcome.NoAnswer => "no answer",
            ProbeOutcome.Garbage => "non-Modbus answer",
            _ => "connect failed",
        };
        if (Detail is not null)
        {
            outcome += " (" + Detail + ")";
        }
        return Sent == 1 && Connections == 1
            ? $"{Name}: {outcome}"
            : string.Create(CultureInfo.InvariantCulture,
                $"{Name}: {outcome} (sent {Sent} on {Connections} connections: normal {Normal} exception {Exceptions} closed {Closed} no-answer {NoAnswer} connect-failed {ConnectFailed}{(Mismatched > 0 ? $" mismatched {Mismatched}" : "")}{(Truncated ? ", stopped at bound" : "")})");
    }
}

/// <summary>One scenario: its cases' results and their totals.</summary>
public sealed record AttackScenarioResult(string Name, IReadOnlyList<AttackCaseResult> Cases, TimeSpan Elapsed)
{
    public int FramesSent => Sum(static c => c.Sent);
    public int Connections => Sum(static c => c.Connections);
    public int Normal => Sum(static c => c.Normal);
    public int Exceptions => Sum(static c => c.Exceptions);
    public int Closed => Sum(static c => c.Closed);
    public int NoAnswer => Sum(static c => c.NoAnswer);
    public int ConnectFailed => Sum(static c => c.ConnectFailed);
    public int Mismatched => Sum(static c => c.Mismatched);

    private int Sum(Func<AttackCaseResult, int> field)
    {
        int sum = 0;
        foreach (var c in Cases)
        {
            sum += field(c);
        }
        return sum;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"scenario {Name}: frames sent {FramesSent} on {Connections} connections in {Elapsed.TotalSeconds:F1} s: normal {Normal} exception {Exceptions} closed {Closed} no-answer {NoAnswer} connect-failed {ConnectFailed} mismatched {Mismatched}");
}

/// <summary>
/// Named attacks against a Modbus TCP target, grouped into scenarios: malformed framing, forbidden
/// functions, address and value sweeps, transaction-id collisions, response injection, slowloris,
/// connection floods, half-open connections and oversize bursts. Every loop is bounded in count
/// (<see cref="AttackOptions"/>) and in time (<see cref="AttackOptions.CaseTimeLimit"/>).
/// </summary>
/// <remarks>
/// Half-open connections are TCP connections that complete the handshake and then send nothing
/// (every tenth sends the first 4 bytes of an MBAP header and stops): a SYN-only flood needs raw
/// sockets, and what it would test (the kernel's SYN backlog and syncookies) is not EdgeShield's code.
/// </remarks>
public static partial class AttackSuite
{
    private static readonly (string Name, string[] Cases)[] ScenarioTable =
    [
        ("malformed",
        [
            "protocol-id-nonzero", "mbap-length-0", "mbap-length-1", "mbap-length-255", "mbap-length-65535",
            "length-longer-than-pdu", "length-shorter-than-pdu", "fc16-byte-count-beyond-pdu", "fc15-byte-count-beyond-pdu",
            "truncated-header", "truncated-pdu", "http-get", "tls-client-hello", "garbage",
        ]),
        ("forbidden-functions",
        [
            "fc5-write-coil", "fc6-write-register", "fc15-write-coils", "fc16-write-registers", "fc8-force-listen-only",
            "fc90-umas", "fc65-user-defined", "fc100-user-defined", "fc43-13-canopen", "forbidden-sweep",
        ]),
        ("address-sweep", ["scan-fc3", "sweep-fc1", "sweep-fc4", "sweep-fc6", "sweep-fc16"]),
        ("value-sweep", ["value-sweep-fc6", "value-sweep-fc16", "value-sweep-fc23", "value-sweep-fc5"]),
        ("tid-collision", ["tid-collision"]),
        ("response-injection", ["inject-fc3-response", "inject-fc1-response", "inject-fc16-response", "inject-exception-response", "inject-after-request"]),
        ("slowloris", ["slowloris"]),
        ("conn-flood", ["conn-flood"]),
        ("half-open", ["half-open"]),
        ("oversize-burst", ["oversize-burst"]),
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
        throw new ArgumentException($"no attack scenario '{scenario}'", nameof(scenario));
    }

    /// <summary>Every case of every scenario, in order.</summary>
    public static async Task<IReadOnlyList<AttackCaseResult>> RunAllAsync(IPEndPoint target, AttackOptions options, CancellationToken ct)
    {
        var results = new List<AttackCaseResult>(Names.Length);
        foreach (string name in Names)
        {
            results.Add(await RunCaseAsync(target, name, options, ct));
        }
        return results;
    }

    /// <summary>The cases of one scenario, one after another.</summary>
    public static async Task<AttackScenarioResult> RunScenarioAsync(IPEndPoint target, string scenario, AttackOptions options, CancellationToken ct)
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
    public static async Task<AttackCaseResult> RunCaseAsync(IPEndPoint target, string name, AttackOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(name switch
        {
            "slowloris" => options.CaseTimeLimit + options.SlowlorisDuration,
            "half-open" => options.CaseTimeLimit + TimeSpan.FromMilliseconds(options.HalfOpenHoldMs),
            _ => options.CaseTimeLimit,
        });
        var bt = bound.Token;
        byte u = options.Unit;
        byte wh = (byte)(options.ForbiddenWriteAddress >> 8), wl = (byte)options.ForbiddenWriteAddress;
        return name switch
        {
            // ---- malformed framing: each must be dropped and its connection closed, never forwarded ----
            "protocol-id-nonzero" => await OneShotAsync(target, name, [0, 1, 0, 1, 0, 6, u, 3, 0, 0, 0, 1], options, bt),
            "mbap-length-0" => await OneShotAsync(target, name, [0, 1, 0, 0, 0, 0], options, bt),
            "mbap-length-1" => await OneShotAsync(target, name, [0, 1, 0, 0, 0, 1, u], options, bt),
            "mbap-length-255" => await OneShotAsync(target, name, WithLength(255, 255), options, bt),
            "mbap-length-65535" => await OneShotAsync(target, name, WithLength(65535, 64), options, bt),
            // FC 3 with one byte more than its PDU has, and with its quantity cut off.
            "length-longer-than-pdu" => await OneShotAsync(target, name, [0, 1, 0, 0, 0, 7, u, 3, 0, 0, 0, 1, 0], options, bt),
            "length-shorter-than-pdu" => await OneShotAsync(target, name, [0, 1, 0, 0, 0, 4, u, 3, 0, 0], options, bt),
            // Byte counts that promise more data than the MBAP length carries.
            "fc16-byte-count-beyond-pdu" => await OneShotAsync(target, name, Adu(u, 16, 0, 100, 0, 4, 8, 0, 1, 0, 2), options, bt),
            "fc15-byte-count-beyond-pdu" => await OneShotAsync(target, name, Adu(u, 15, 0, 0, 0, 16, 2, 0xFF), options, bt),
            "truncated-header" => await OneShotAsync(target, name, [0, 1, 0, 0], options, bt, shutdownAfterSend: true),
            // A header that announces 6 bytes, then 3 of them, then the close.
            "truncated-pdu" => await OneShotAsync(target, name, [0, 1, 0, 0, 0, 6, u, 3, 0], options, bt, shutdownAfterSend: true),
            "http-get" => await OneShotAsync(target, name, Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: plc\r\nUser-Agent: edgeshield-sim\r\n\r\n"), options, bt),
            "tls-client-hello" => await OneShotAsync(target, name, TlsClientHelloPrefix(), options, bt),
            "garbage" => await GarbageAsync(target, name, options, bt),
            // ---- functions a typical policy denies ----
            "fc5-write-coil" => await OneShotAsync(target, name, Adu(u, 5, 0x00, 0x10, 0xFF, 0x00), options, bt),
            "fc6-write-register" => await OneShotAsync(target, name, Adu(u, 6, wh, wl, 0x00, 0x2A), options, bt),
            "fc15-write-coils" => await OneShotAsync(target, name, Adu(u, 15, 0x00, 0x00, 0x00, 0x08, 0x01, 0xFF), options, bt),
            "fc16-write-registers" => await OneShotAsync(target, name, Adu(u, 16, wh, wl, 0x00, 0x02, 0x04, 0x00, 0x01, 0x00, 0x02), options, bt),
            "fc8-force-listen-only" => await OneShotAsync(target, name, Adu(u, 8, 0x00, 0x04, 0x00, 0x00), options, bt),
            "fc90-umas" => await OneShotAsync(target, name, Adu(u, 0x5A, 0x00, 0x02), options, bt),
            "fc65-user-defined" => await OneShotAsync(target, name, Adu(u, 65, 0x00, 0x00), options, bt),
            "fc100-user-defined" => await OneShotAsync(target, name, Adu(u, 100, 0x00, 0x00), options, bt),
            "fc43-13-canopen" => await OneShotAsync(target, name, Adu(u, 43, 13, 0x00, 0x00, 0x00, 0x00), options, bt),
            "forbidden-sweep" => await SequenceAsync(target, name, ForbiddenFrames(options), options, bt),
            // ---- sweeps ----
            "scan-fc3" => await SequenceAsync(target, name, Sweep(options, 3, Math.Clamp(options.ScanBlock, 1, ModbusLimits.MaxReadRegisters), options.ScanBlock, options.ScanMaxRequests), options, bt),
            "sweep-fc1" => await SequenceAsync(target, name, Sweep(options, 1, ModbusLimits.MaxReadBits, ModbusLimits.MaxReadBits, options.SweepMaxRequests), options, bt),
            "sweep-fc4" => await SequenceAsync(target, name, Sweep(options, 4, ModbusLimits.MaxReadRegisters, ModbusLimits.MaxReadRegisters, options.SweepMaxRequests), options, bt),
            "sweep-fc6" => await SequenceAsync(target, name, Sweep(options, 6, 1, 128, options.SweepMaxRequests), options, bt),
            "sweep-fc16" => await SequenceAsync(target, name, Sweep(options, 16, 4, 256, options.SweepMaxRequests), options, bt),
            "value-sweep-fc6" => await SequenceAsync(target, name, ValueSweep(options, 6), options, bt),
            "value-sweep-fc16" => await SequenceAsync(target, name, ValueSweep(options, 16), options, bt),
            "value-sweep-fc23" => await SequenceAsync(target, name, ValueSweep(options, 23), options, bt),
            "value-sweep-fc5" => await SequenceAsync(target, name, ValueSweep(options, 5), options, bt),
            // ---- transaction ids and responses sent as requests ----
            "tid-collision" => await TidCollisionAsync(target, name, options, bt),
            "inject-fc3-response" => await OneShotAsync(target, name, Adu(u, 3, 2, 0x00, 0x2A), options, bt),
            "inject-fc1-response" => await OneShotAsync(target, name, Adu(u, 1, 1, 0x05), options, bt),
            "inject-fc16-response" => await OneShotAsync(target, name, Adu(u, 16, 0x00, 0x64, 0x00, 0x02), options, bt),
            "inject-exception-response" => await OneShotAsync(target, name, Adu(u, 0x83, 0x02), options, bt),
            "inject-after-request" => await InjectAfterRequestAsync(target, name, options, bt),
            // ---- connections ----
            "slowloris" => await SlowlorisAsync(target, name, options, bt),
            "conn-flood" => await FloodAsync(target, name, options, bt),
            "half-open" => await HalfOpenAsync(target, name, options, bt),
            "oversize-burst" => await BurstAsync(target, name, options, bt),
            _ => throw new ArgumentException($"no attack case '{name}'", nameof(name)),
        };
    }

    private static byte[] Adu(byte unit, params byte[] pdu) => AduWithTid(1, unit, pdu);

    private static byte[] AduWithTid(ushort transactionId, byte unit, params byte[] pdu)
    {
        var adu = new byte[ModbusLimits.MbapHeaderLength + pdu.Length];
        MbapFramer.WriteHeader(adu, transactionId, unit, pdu.Length);
        pdu.CopyTo(adu, ModbusLimits.MbapHeaderLength);
        return adu;
    }

    /// <summary>A header declaring <paramref name="length"/>, followed by <paramref name="body"/> bytes of an FC 3 request and padding.</summary>
    private static byte[] WithLength(int length, int body)
    {
        var bytes = new byte[6 + body];
        BinaryPrimitives.WriteUInt16BigEndian(bytes, 1);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(4), (ushort)length);
        bytes[6] = 1;
        bytes[7] = 3;
        return bytes;
    }

    /// <summary>The first bytes of a TLS 1.2 ClientHello record (content type 22, version 3.1).</summary>
    private static byte[] TlsClientHelloPrefix()
    {
        var hello = new byte[48];
        byte[] head = [0x16, 0x03, 0x01, 0x00, 0xA5, 0x01, 0x00, 0x00, 0xA1, 0x03, 0x03];
        head.CopyTo(hello, 0);
        for (int i = head.Length; i < hello.Length; i++)
        {
            hello[i] = (byte)(i * 37);
        }
        return hello;
    }

    /// <summary>
    /// Well-framed requests for every function a read-and-setpoint policy denies: writes to
    /// <see cref="AttackOptions.ForbiddenWriteAddress"/>, diagnostics (FC 8 sub-functions 00, 01, 04, 0A),
    /// serial-line functions, file writes, mask write, read/write, CANopen (43/13), the user-defined
    /// ranges 65–72 and 100–110 with Schneider UMAS (90 = 0x5A) sub-codes, every unassigned public
    /// code, and function 0.
    /// </summary>
    private static List<byte[]> ForbiddenFrames(AttackOptions options)
    {
        byte u = options.Unit;
        byte wh = (byte)(options.ForbiddenWriteAddress >> 8), wl = (byte)options.ForbiddenWriteAddress;
        var frames = new List<byte[]>
        {
            Adu(u, 5, wh, wl, 0xFF, 0x00),
            Adu(u, 6, wh, wl, 0x00, 0x01),
            Adu(u, 7),
            Adu(u, 8, 0x00, 0x00, 0x12, 0x34),
            Adu(u, 8, 0x00, 0x01, 0x00, 0x00),
            Adu(u, 8, 0x00, 0x04, 0x00, 0x00),
            Adu(u, 8, 0x00, 0x0A, 0x00, 0x00),
            Adu(u, 11),
            Adu(u, 12),
            Adu(u, 15, wh, wl, 0x00, 0x08, 0x01, 0xFF),
            Adu(u, 16, wh, wl, 0x00, 0x01, 0x02, 0x00, 0x01),
            Adu(u, 17),
            // Write file record: file 1, record 0, one word.
            Adu(u, 21, 9, 6, 0, 1, 0, 0, 0, 1, 0x12, 0x34),
            Adu(u, 22, wh, wl, 0x00, 0xF2, 0x00, 0x25),
            // Read/write: read 1 at 0, write 1 at the setpoint window (a policy that allows 6/16 there may still deny 23).
            Adu(u, 23, 0, 0, 0, 1, (byte)(options.ValueSweepStart >> 8), (byte)options.ValueSweepStart, 0, 1, 2, 0, 1),
            Adu(u, 43, 13, 0, 0, 0, 0),
        };
        // UMAS: read id, take reservation, start/stop PLC, download block, init download.
        foreach (byte umas in (ReadOnlySpan<byte>)[0x02, 0x10, 0x40, 0x41, 0x28, 0x30, 0x31, 0x58])
        {
            frames.Add(Adu(u, 0x5A, 0x00, umas));
        }
        for (int fc = 0; fc < 128; fc++)
        {
            bool publicAssigned = fc is (>= 1 and <= 8) or 11 or 12 or (>= 15 and <= 17) or (>= 20 and <= 24) or 43;
            if (!publicAssigned && fc != 90)
            {
                frames.Add(Adu(u, (byte)fc, 0x00, 0x00, 0x00, 0x01));
            }
        }
        return frames;
    }

    /// <summary>
    /// Requests of function <paramref name="fc"/> across the whole table, <paramref name="step"/>
    /// addresses apart, <paramref name="quantity"/> items each (writes write the value 1).
    /// </summary>
    private static List<byte[]> Sweep(AttackOptions options, byte fc, int quantity, int step, int maxRequests)
    {
        var frames = new List<byte[]>();
        step = Math.Max(1, step);
        for (int start = 0; start < 65536 && frames.Count < maxRequests; start += step)
        {
            int q = Math.Min(quantity, 65536 - start);
            byte sh = (byte)(start >> 8), sl = (byte)start;
            frames.Add(fc switch
            {
                6 => Adu(options.Unit, 6, sh, sl, 0, 1),
                16 => Adu(options.Unit, RegisterWrite(16, start, Enumerable.Repeat((ushort)1, q).ToArray())),
                _ => Adu(options.Unit, fc, sh, sl, (byte)(q >> 8), (byte)q),
            });
        }
        return frames;
    }

    /// <summary>
    /// Writes into the setpoint window with values from <see cref="AttackOptions.ValueSweepFrom"/> to
    /// 65535; for FC 5, coil values that are neither 0x0000 nor 0xFF00 (out of spec).
    /// </summary>
    private static List<byte[]> ValueSweep(AttackOptions options, byte fc)
    {
        var frames = new List<byte[]>();
        int count = Math.Max(1, options.ValueSweepCount);
        int max = Math.Max(1, options.ValueSweepMaxRequests);
        int from = options.ValueSweepFrom;
        int step = Math.Max(1, (65535 - from) / Math.Max(1, max - 1));
        for (int i = 0; i < max; i++)
        {
            int address = options.ValueSweepStart + (i % count);
            ushort value = (ushort)Math.Min(65535, from + (i * step));
            if (i == max - 1)
            {
                value = 65535;
            }
            byte ah = (byte)(address >> 8), al = (byte)address;
            frames.Add(fc switch
            {
                6 => Adu(options.Unit, 6, ah, al, (byte)(value >> 8), (byte)value),
                // One allowed value beside the bad one: a policy must judge every value written, not the first.
                16 => Adu(options.Unit, RegisterWrite(16, Math.Min(address, 65534), [1, value])),
                23 => Adu(options.Unit, [23, 0, 0, 0, 1, ah, al, 0, 1, 2, (byte)(value >> 8), (byte)value]),
                _ => Adu(options.Unit, 5, ah, al, (byte)(value >> 8), (byte)value),
            });
        }
        return frames;
    }

    private static byte[] RegisterWrite(byte fc, int start, ushort[] values)
    {
        var pdu = new byte[6 + (values.Length * 2)];
        pdu[0] = fc;
        BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(1), (ushort)start);
        BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(3), (ushort)values.Length);
        pdu[5] = (byte)(values.Length * 2);
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(6 + (i * 2)), values[i]);
        }
        return pdu;
    }
}
