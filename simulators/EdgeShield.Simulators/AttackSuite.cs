using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Text;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Simulators;

/// <summary>Bounds of an <see cref="AttackSuite"/> run.</summary>
public sealed class AttackOptions
{
    public byte Unit { get; init; } = 1;
    /// <summary>How long to wait for an answer before calling it <see cref="ProbeOutcome.NoAnswer"/>.</summary>
    public int AnswerTimeoutMs { get; init; } = 1000;
    public int ConnectTimeoutMs { get; init; } = 2000;
    /// <summary>FC 3 scan: registers per request and the most requests sent.</summary>
    public int ScanBlock { get; init; } = 125;
    public int ScanMaxRequests { get; init; } = 525;
    /// <summary>Maximal FC 16 frames written at once by the burst case.</summary>
    public int BurstFrames { get; init; } = 256;
    /// <summary>Connections opened by the flood case.</summary>
    public int FloodConnections { get; init; } = 300;
    /// <summary>Wall-clock bound of any one case.</summary>
    public TimeSpan CaseTimeLimit { get; init; } = TimeSpan.FromSeconds(15);
}

/// <summary>What happened to one attack case. Multi-request cases fill the counts; <see cref="Outcome"/> is then the most frequent answer.</summary>
public sealed record AttackCaseResult(string Name, ProbeOutcome Outcome, byte ExceptionCode)
{
    public int Sent { get; init; } = 1;
    public int Normal { get; init; }
    public int Exceptions { get; init; }
    public int Closed { get; init; }
    public int NoAnswer { get; init; }
    public int ConnectFailed { get; init; }
    /// <summary>Whether the case stopped at its time or count bound before finishing.</summary>
    public bool Truncated { get; init; }

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
        return Sent == 1
            ? $"{Name}: {outcome}"
            : string.Create(CultureInfo.InvariantCulture,
                $"{Name}: {outcome} (sent {Sent}: normal {Normal} exception {Exceptions} closed {Closed} no-answer {NoAnswer} connect-failed {ConnectFailed}{(Truncated ? ", stopped at bound" : "")})");
    }
}

/// <summary>
/// Named attacks against a Modbus TCP target: malformed framing, non-Modbus bytes, forbidden
/// functions, an address scan, an oversize burst and a connection flood. Every loop is bounded
/// in count (<see cref="AttackOptions"/>) and in time (<see cref="AttackOptions.CaseTimeLimit"/>).
/// </summary>
public static class AttackSuite
{
    private static readonly string[] Names =
    [
        "protocol-id-nonzero",
        "mbap-length-0",
        "mbap-length-1",
        "mbap-length-255",
        "mbap-length-65535",
        "length-longer-than-pdu",
        "length-shorter-than-pdu",
        "truncated-header",
        "http-get",
        "tls-client-hello",
        "fc5-write-coil",
        "fc6-write-register",
        "fc15-write-coils",
        "fc16-write-registers",
        "fc8-force-listen-only",
        "fc90-umas",
        "fc65-user-defined",
        "fc100-user-defined",
        "fc43-13-canopen",
        "scan-fc3",
        "oversize-burst",
        "conn-flood",
    ];

    public static IReadOnlyList<string> CaseNames => Names;

    public static async Task<IReadOnlyList<AttackCaseResult>> RunAllAsync(IPEndPoint target, AttackOptions options, CancellationToken ct)
    {
        var results = new List<AttackCaseResult>(Names.Length);
        foreach (string name in Names)
        {
            results.Add(await RunCaseAsync(target, name, options, ct));
        }
        return results;
    }

    /// <exception cref="ArgumentException">When <paramref name="name"/> is not one of <see cref="CaseNames"/>.</exception>
    public static async Task<AttackCaseResult> RunCaseAsync(IPEndPoint target, string name, AttackOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(options.CaseTimeLimit);
        byte u = options.Unit;
        return name switch
        {
            "protocol-id-nonzero" => await OneShotAsync(target, name, [0, 1, 0, 1, 0, 6, u, 3, 0, 0, 0, 1], options, bound.Token),
            "mbap-length-0" => await OneShotAsync(target, name, [0, 1, 0, 0, 0, 0], options, bound.Token),
            "mbap-length-1" => await OneShotAsync(target, name, [0, 1, 0, 0, 0, 1, u], options, bound.Token),
            "mbap-length-255" => await OneShotAsync(target, name, WithLength(255, 255), options, bound.Token),
            "mbap-length-65535" => await OneShotAsync(target, name, WithLength(65535, 64), options, bound.Token),
            // FC 3 with one byte more than its PDU has, and with its quantity cut off.
            "length-longer-than-pdu" => await OneShotAsync(target, name, [0, 1, 0, 0, 0, 7, u, 3, 0, 0, 0, 1, 0], options, bound.Token),
            "length-shorter-than-pdu" => await OneShotAsync(target, name, [0, 1, 0, 0, 0, 4, u, 3, 0, 0], options, bound.Token),
            "truncated-header" => await OneShotAsync(target, name, [0, 1, 0, 0], options, bound.Token, shutdownAfterSend: true),
            "http-get" => await OneShotAsync(target, name, Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: plc\r\nUser-Agent: edgeshield-sim\r\n\r\n"), options, bound.Token),
            "tls-client-hello" => await OneShotAsync(target, name, TlsClientHelloPrefix(), options, bound.Token),
            "fc5-write-coil" => await OneShotAsync(target, name, Adu(u, 5, 0x00, 0x10, 0xFF, 0x00), options, bound.Token),
            "fc6-write-register" => await OneShotAsync(target, name, Adu(u, 6, 0x0F, 0xA0, 0x00, 0x2A), options, bound.Token),
            "fc15-write-coils" => await OneShotAsync(target, name, Adu(u, 15, 0x00, 0x00, 0x00, 0x08, 0x01, 0xFF), options, bound.Token),
            "fc16-write-registers" => await OneShotAsync(target, name, Adu(u, 16, 0x0F, 0xA0, 0x00, 0x02, 0x04, 0x00, 0x01, 0x00, 0x02), options, bound.Token),
            "fc8-force-listen-only" => await OneShotAsync(target, name, Adu(u, 8, 0x00, 0x04, 0x00, 0x00), options, bound.Token),
            "fc90-umas" => await OneShotAsync(target, name, Adu(u, 0x5A, 0x00, 0x02), options, bound.Token),
            "fc65-user-defined" => await OneShotAsync(target, name, Adu(u, 65, 0x00, 0x00), options, bound.Token),
            "fc100-user-defined" => await OneShotAsync(target, name, Adu(u, 100, 0x00, 0x00), options, bound.Token),
            "fc43-13-canopen" => await OneShotAsync(target, name, Adu(u, 43, 13, 0x00, 0x00, 0x00, 0x00), options, bound.Token),
            "scan-fc3" => await ScanAsync(target, name, options, bound.Token),
            "oversize-burst" => await BurstAsync(target, name, options, bound.Token),
            "conn-flood" => await FloodAsync(target, name, options, bound.Token),
            _ => throw new ArgumentException($"no attack case '{name}'", nameof(name)),
        };
    }

    private static byte[] Adu(byte unit, params byte[] pdu)
    {
        var adu = new byte[ModbusLimits.MbapHeaderLength + pdu.Length];
        MbapFramer.WriteHeader(adu, 1, unit, pdu.Length);
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

    private static async Task<AttackCaseResult> OneShotAsync(IPEndPoint target, string name, byte[] bytes, AttackOptions options, CancellationToken ct, bool shutdownAfterSend = false)
    {
        using var probe = await Probe.ConnectAsync(target, options.ConnectTimeoutMs, ct);
        if (probe is null)
        {
            return new AttackCaseResult(name, ProbeOutcome.ConnectFailed, 0) { ConnectFailed = 1 };
        }
        await probe.SendAsync(bytes, ct);
        if (shutdownAfterSend)
        {
            probe.ShutdownSend();
        }
        var (outcome, code) = await probe.ReadAnswerAsync(options.AnswerTimeoutMs, ct);
        return Tally(new AttackCaseResult(name, outcome, code), outcome);
    }

    private static AttackCaseResult Tally(AttackCaseResult result, ProbeOutcome outcome) => outcome switch
    {
        ProbeOutcome.Normal => result with { Normal = result.Normal + 1 },
        ProbeOutcome.Exception => result with { Exceptions = result.Exceptions + 1 },
        ProbeOutcome.ConnectionClosed or ProbeOutcome.Garbage => result with { Closed = result.Closed + 1 },
        ProbeOutcome.NoAnswer => result with { NoAnswer = result.NoAnswer + 1 },
        _ => result with { ConnectFailed = result.ConnectFailed + 1 },
    };

    /// <summary>Reads every block of the holding registers with FC 3, reconnecting when the target hangs up.</summary>
    private static async Task<AttackCaseResult> ScanAsync(IPEndPoint target, string name, AttackOptions options, CancellationToken ct)
    {
        var counts = new Counts();
        int block = Math.Clamp(options.ScanBlock, 1, ModbusLimits.MaxReadRegisters);
        Probe? probe = null;
        bool truncated = false;
        try
        {
            for (int start = 0; start < 65536; start += block)
            {
                if (counts.Sent >= options.ScanMaxRequests || ct.IsCancellationRequested || counts.ConnectFailed > 3)
                {
                    truncated = true;
                    break;
                }
                probe ??= await Probe.ConnectAsync(target, options.ConnectTimeoutMs, ct);
                if (probe is null)
                {
                    counts.Add(ProbeOutcome.ConnectFailed, 0);
                    continue;
                }
                int quantity = Math.Min(block, 65536 - start);
                await probe.SendAsync(Adu(options.Unit, 3, (byte)(start >> 8), (byte)start, (byte)(quantity >> 8), (byte)quantity), ct);
                counts.Sent++;
                var (outcome, code) = await probe.ReadAnswerAsync(options.AnswerTimeoutMs, ct);
                counts.Add(outcome, code);
                if (outcome is not (ProbeOutcome.Normal or ProbeOutcome.Exception))
                {
                    probe.Dispose();
                    probe = null;
                }
            }
        }
        catch (OperationCanceledException)
        {
            truncated = true;
        }
        finally
        {
            probe?.Dispose();
        }
        return counts.Result(name, truncated);
    }

    /// <summary>Writes <see cref="AttackOptions.BurstFrames"/> maximal FC 16 requests in one go, then reads what comes back.</summary>
    private static async Task<AttackCaseResult> BurstAsync(IPEndPoint target, string name, AttackOptions options, CancellationToken ct)
    {
        var counts = new Counts();
        bool truncated = false;
        using var probe = await Probe.ConnectAsync(target, options.ConnectTimeoutMs, ct);
        if (probe is null)
        {
            counts.Add(ProbeOutcome.ConnectFailed, 0);
            return counts.Result(name, false);
        }
        int frames = Math.Max(1, options.BurstFrames);
        int pduLength = 6 + (ModbusLimits.MaxWriteRegisters * 2);
        int aduLength = ModbusLimits.MbapHeaderLength + pduLength;
        var burst = new byte[frames * aduLength];
        for (int i = 0; i < frames; i++)
        {
            var adu = burst.AsSpan(i * aduLength, aduLength);
            MbapFramer.WriteHeader(adu, (ushort)(i + 1), options.Unit, pduLength);
            adu[7] = 16;
            BinaryPrimitives.WriteUInt16BigEndian(adu[8..], 0);
            BinaryPrimitives.WriteUInt16BigEndian(adu[10..], ModbusLimits.MaxWriteRegisters);
            adu[12] = ModbusLimits.MaxWriteRegisters * 2;
        }
        counts.Sent = frames;
        try
        {
            var send = probe.SendAsync(burst, ct);
            for (int i = 0; i < frames; i++)
            {
                var (outcome, code) = await probe.ReadAnswerAsync(options.AnswerTimeoutMs, ct);
                counts.Add(outcome, code);
                if (outcome is not (ProbeOutcome.Normal or ProbeOutcome.Exception))
                {
                    break;
                }
            }
            probe.Dispose();
            await send;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            truncated = e is OperationCanceledException;
        }
        return counts.Result(name, truncated);
    }

    /// <summary>Opens <see cref="AttackOptions.FloodConnections"/> connections at once, sends one FC 3 on each, then closes them all.</summary>
    private static async Task<AttackCaseResult> FloodAsync(IPEndPoint target, string name, AttackOptions options, CancellationToken ct)
    {
        int total = Math.Max(1, options.FloodConnections);
        var probes = new Probe?[total];
        var counts = new Counts { Sent = total };
        bool truncated = false;
        try
        {
            const int Batch = 50;
            for (int first = 0; first < total; first += Batch)
            {
                var connects = new Task<Probe?>[Math.Min(Batch, total - first)];
                for (int i = 0; i < connects.Length; i++)
                {
                    connects[i] = Probe.ConnectAsync(target, options.ConnectTimeoutMs, ct);
                }
                var opened = await Task.WhenAll(connects);
                opened.CopyTo(probes, first);
            }
            byte[] read = Adu(options.Unit, 3, 0, 0, 0, 1);
            var answers = new Task<(ProbeOutcome, byte)>[total];
            for (int i = 0; i < total; i++)
            {
                answers[i] = probes[i] is { } p ? AskAsync(p, read, options.AnswerTimeoutMs, ct) : Task.FromResult((ProbeOutcome.ConnectFailed, (byte)0));
            }
            foreach (var (outcome, code) in await Task.WhenAll(answers))
            {
                counts.Add(outcome, code);
            }
        }
        catch (OperationCanceledException)
        {
            truncated = true;
        }
        finally
        {
            foreach (var probe in probes)
            {
                probe?.Dispose();
            }
        }
        return counts.Result(name, truncated);

        static async Task<(ProbeOutcome, byte)> AskAsync(Probe probe, byte[] request, int timeoutMs, CancellationToken ct)
        {
            await probe.SendAsync(request, ct);
            return await probe.ReadAnswerAsync(timeoutMs, ct);
        }
    }

    private sealed class Counts
    {
        public int Sent;
        private readonly int[] _byOutcome = new int[6];
        private readonly int[] _byCode = new int[256];

        public int ConnectFailed => _byOutcome[(int)ProbeOutcome.ConnectFailed];

        public void Add(ProbeOutcome outcome, byte code)
        {
            _byOutcome[(int)outcome]++;
            if (outcome == ProbeOutcome.Exception)
            {
                _byCode[code]++;
            }
        }

        public AttackCaseResult Result(string name, bool truncated)
        {
            int best = 0;
            for (int i = 1; i < _byOutcome.Length; i++)
            {
                if (_byOutcome[i] > _byOutcome[best])
                {
                    best = i;
                }
            }
            int code = 0;
            for (int i = 1; i < 256; i++)
            {
                if (_byCode[i] > _byCode[code])
                {
                    code = i;
                }
            }
            var outcome = (ProbeOutcome)best;
            return new AttackCaseResult(name, outcome, outcome == ProbeOutcome.Exception ? (byte)code : (byte)0)
            {
                Sent = Sent,
                Normal = _byOutcome[(int)ProbeOutcome.Normal],
                Exceptions = _byOutcome[(int)ProbeOutcome.Exception],
                Closed = _byOutcome[(int)ProbeOutcome.ConnectionClosed] + _byOutcome[(int)ProbeOutcome.Garbage],
                NoAnswer = _byOutcome[(int)ProbeOutcome.NoAnswer],
                ConnectFailed = _byOutcome[(int)ProbeOutcome.ConnectFailed],
                Truncated = truncated,
            };
        }
    }
}
