using System.Net;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Simulators;

/// <summary>What <see cref="DemoTraffic"/> sends; the defaults fit the bundled demo policy (reads 0-999, setpoints 100-119).</summary>
public sealed class DemoTrafficOptions
{
    public byte Unit { get; init; } = 1;
    public int Clients { get; init; } = 2;
    public ushort ReadStart { get; init; }
    public int ReadQuantity { get; init; } = 10;
    public ushort WriteStart { get; init; } = 100;
    public int WriteRange { get; init; } = 20;
    /// <summary>Target of the forbidden FC 6 (outside the allowed write range).</summary>
    public ushort ForbiddenRegister { get; init; } = 500;
    /// <summary>Target of the forbidden FC 5.</summary>
    public ushort ForbiddenCoil { get; init; } = 10;
    /// <summary>Pause between one client's requests.</summary>
    public int IntervalMs { get; init; } = 50;
    /// <summary>Every Nth request of a client is a forbidden write (alternately FC 6 and FC 5).</summary>
    public int ForbiddenEvery { get; init; } = 10;
    public int AnswerTimeoutMs { get; init; } = 1000;
    public int ConnectTimeoutMs { get; init; } = 2000;
}

/// <summary>
/// The traffic of <c>edgeshield demo</c>: a few HMI-like clients doing allowed reads and writes
/// and, now and then, forbidden writes; one FC 90 request; and exactly one malformed frame on a
/// connection of its own. The counters may be read while it runs.
/// </summary>
public sealed class DemoTraffic
{
    private readonly IPEndPoint _target;
    private readonly DemoTrafficOptions _options;
    private readonly long[] _exceptions = new long[256];
    private long _requestsSent;
    private long _responses;
    private long _closedConnections;
    private long _noAnswers;
    private long _connectFailures;
    private int _fc90Sent;
    private int _malformedSent;

    public DemoTraffic(IPEndPoint target, DemoTrafficOptions options)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        _target = target;
        _options = options;
    }

    public long RequestsSent => Interlocked.Read(ref _requestsSent);
    /// <summary>Normal responses.</summary>
    public long Responses => Interlocked.Read(ref _responses);
    /// <summary>Connections the target closed (after a deny with on-deny: close, or the malformed frame).</summary>
    public long ClosedConnections => Interlocked.Read(ref _closedConnections);
    public long NoAnswers => Interlocked.Read(ref _noAnswers);
    public long ConnectFailures => Interlocked.Read(ref _connectFailures);
    public bool Fc90Sent => Volatile.Read(ref _fc90Sent) != 0;
    public bool MalformedSent => Volatile.Read(ref _malformedSent) != 0;

    public long Exceptions(byte code) => Interlocked.Read(ref _exceptions[code]);

    public long TotalExceptions
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < _exceptions.Length; i++)
            {
                sum += Interlocked.Read(ref _exceptions[i]);
            }
            return sum;
        }
    }

    /// <summary>Runs until <paramref name="duration"/> has passed or <paramref name="ct"/> is cancelled. Call once.</summary>
    public async Task RunAsync(TimeSpan duration, CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _malformedSent, 1) != 0)
        {
            throw new InvalidOperationException("DemoTraffic runs once");
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stop.CancelAfter(duration);
        var tasks = new Task[_options.Clients + 1];
        tasks[0] = MalformedOnceAsync(stop.Token);
        for (int i = 0; i < _options.Clients; i++)
        {
            tasks[i + 1] = ClientAsync(i, stop.Token);
        }
        try
        {
            await Task.WhenAll(tasks);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // The duration is over.
        }
    }

    private async Task MalformedOnceAsync(CancellationToken ct)
    {
        using var probe = await Probe.ConnectAsync(_target, _options.ConnectTimeoutMs, ct);
        if (probe is null)
        {
            Interlocked.Increment(ref _connectFailures);
            return;
        }
        // A web scanner's request on the Modbus port: its first bytes read as an MBAP header whose protocol
        // id is not 0, so the framing itself is lost (a PDU of the wrong size inside a valid MBAP header would
        // be answered 03 instead, as a PLC answers it).
        await probe.SendAsync("GET / HTTP/1.0\r\n\r\n"u8.ToArray(), ct);
        Record(await probe.ReadAnswerAsync(_options.AnswerTimeoutMs, ct));
    }

    private async Task ClientAsync(int index, CancellationToken ct)
    {
        Probe? probe = null;
        var request = new byte[ModbusLimits.MbapHeaderLength + 5];
        ushort tid = 0;
        try
        {
            for (int n = 0; !ct.IsCancellationRequested; n++)
            {
                probe ??= await Probe.ConnectAsync(_target, _options.ConnectTimeoutMs, ct);
                if (probe is null)
                {
                    Interlocked.Increment(ref _connectFailures);
                    await Task.Delay(200, ct);
                    continue;
                }
                int pduLength = BuildRequest(index, n, request.AsSpan(ModbusLimits.MbapHeaderLength));
                MbapFramer.WriteHeader(request, ++tid, _options.Unit, pduLength);
                await probe.SendAsync(request.AsMemory(0, ModbusLimits.MbapHeaderLength + pduLength), ct);
                Interlocked.Increment(ref _requestsSent);
                var answer = await probe.ReadAnswerAsync(_options.AnswerTimeoutMs, ct);
                Record(answer);
                if (answer.Outcome is not (ProbeOutcome.Normal or ProbeOutcome.Exception))
                {
                    probe.Dispose();
                    probe = null;
                }
                await Task.Delay(_options.IntervalMs, ct);
            }
        }
        finally
        {
            probe?.Dispose();
        }
    }

    /// <summary>Request n of client <paramref name="index"/>: FC 90 once (first client, first request), forbidden writes every Nth, else reads and writes.</summary>
    private int BuildRequest(int index, int n, Span<byte> pdu)
    {
        if (index == 0 && n == 0 && Interlocked.Exchange(ref _fc90Sent, 1) == 0)
        {
            // Schneider UMAS "read PLC id".
            pdu[0] = 0x5A;
            pdu[1] = 0x00;
            pdu[2] = 0x02;
            return 3;
        }
        int every = Math.Max(2, _options.ForbiddenEvery);
        if (n % every == every - 1)
        {
            bool coil = (n / every) % 2 == 1;
            ushort address = coil ? _options.ForbiddenCoil : _options.ForbiddenRegister;
            pdu[0] = coil ? (byte)5 : (byte)6;
            pdu[1] = (byte)(address >> 8);
            pdu[2] = (byte)address;
            pdu[3] = coil ? (byte)0xFF : (byte)0x00;
            pdu[4] = coil ? (byte)0x00 : (byte)0x2A;
            return 5;
        }
        if (n % 3 == 2)
        {
            ushort address = (ushort)(_options.WriteStart + ((n + index) % Math.Max(1, _options.WriteRange)));
            ushort value = (ushort)((n * 7) % 1000);
            pdu[0] = 6;
            pdu[1] = (byte)(address >> 8);
            pdu[2] = (byte)address;
            pdu[3] = (byte)(value >> 8);
            pdu[4] = (byte)value;
            return 5;
        }
        pdu[0] = 3;
        pdu[1] = (byte)(_options.ReadStart >> 8);
        pdu[2] = (byte)_options.ReadStart;
        pdu[3] = 0;
        pdu[4] = (byte)Math.Clamp(_options.ReadQuantity, 1, ModbusLimits.MaxReadRegisters);
        return 5;
    }

    private void Record((ProbeOutcome Outcome, byte Code) answer)
    {
        switch (answer.Outcome)
        {
            case ProbeOutcome.Normal:
                Interlocked.Increment(ref _responses);
                break;
            case ProbeOutcome.Exception:
                Interlocked.Increment(ref _exceptions[answer.Code]);
                break;
            case ProbeOutcome.ConnectionClosed:
            case ProbeOutcome.Garbage:
                Interlocked.Increment(ref _closedConnections);
                break;
            case ProbeOutcome.NoAnswer:
                Interlocked.Increment(ref _noAnswers);
                break;
            default:
                Interlocked.Increment(ref _connectFailures);
                break;
        }
    }
}
