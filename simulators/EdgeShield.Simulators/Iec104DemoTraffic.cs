using System.Net;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Simulators;

/// <summary>
/// The IEC 104 part of <c>edgeshield-sim demo</c>: a SCADA master on one connection (STARTDT, a station
/// interrogation) that operates breakers with select+execute (C_SC_NA_1 at IOA 2000-2007), moves a float set-point
/// (C_SE_NC_1 at IOA 3000, 0..100), and every tenth command (the fourth first) tries something a firewall must refuse, in turn: an
/// execute without its select (IOA 2008), a breaker outside the allowed ones (IOA 2050), a set-point out of bounds
/// (IOA 3000, 500.0) and a command to the global common address. The counters may be read while it runs.
/// </summary>
public sealed class Iec104DemoTraffic(IPEndPoint target, ushort commonAddress = 1)
{
    /// <summary>What the forbidden commands aim at, for the demo to check that none reached the station.</summary>
    public const uint ForbiddenBreaker = 2050, UnselectedBreaker = 2008, Setpoint = 3000;
    public const float ForbiddenSetpoint = 500f;

    private long _commandsSent, _confirmed, _refusals, _closed, _noAnswers, _forbiddenSent, _spontaneous;

    public long CommandsSent => Interlocked.Read(ref _commandsSent);
    /// <summary>Positive activation confirmations.</summary>
    public long Confirmed => Interlocked.Read(ref _confirmed);
    /// <summary>Negative confirmations (from the station or the firewall answering as one).</summary>
    public long Refusals => Interlocked.Read(ref _refusals);
    public long ForbiddenSent => Interlocked.Read(ref _forbiddenSent);
    /// <summary>ASDUs of spontaneous and interrogated points received (one ASDU may carry several points).</summary>
    public long Reports => Interlocked.Read(ref _spontaneous);
    public long ClosedConnections => Interlocked.Read(ref _closed);
    public long NoAnswers => Interlocked.Read(ref _noAnswers);

    /// <summary>
    /// The demo's SCADA station connects from 127.0.0.3 when the gateway is on IPv4 loopback: a source of its
    /// own, so that its refusals and the HMIs' (127.0.0.1) each get the audit's per-source budget, as
    /// separate stations in a plant would.
    /// </summary>
    private static IPAddress? Source(IPEndPoint target) =>
        IPAddress.IsLoopback(target.Address) && target.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? IPAddress.Parse("127.0.0.3") : null;

    /// <summary>Runs until <paramref name="duration"/> has passed or <paramref name="ct"/> is cancelled.</summary>
    public async Task RunAsync(TimeSpan duration, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stop.CancelAfter(duration);
        Iec104Client? c = null;
        try
        {
            for (int n = 0; !stop.IsCancellationRequested; n++)
            {
                if (c is null)
                {
                    c = await Iec104Client.ConnectAsync(target, 2000, stop.Token, Source(target));
                    if (c is null || !await c.StartAsync(2000, stop.Token))
                    {
                        c?.Dispose();
                        c = null;
                        await Task.Delay(200, stop.Token);
                        continue;
                    }
                    await CommandAsync(c, Iec104Build.Asdu((byte)Iec104TypeId.C_IC_NA_1, 6, commonAddress, 0, [20]), stop.Token);
                }
                bool open;
                if (n % 10 == 3)
                {
                    Interlocked.Increment(ref _forbiddenSent);
                    byte[] asdu = (n / 10 % 4) switch
                    {
                        0 => Sc(UnselectedBreaker, select: false, commonAddress),
                        1 => Sc(ForbiddenBreaker, select: true, commonAddress),
                        2 => Iec104Build.Asdu((byte)Iec104TypeId.C_SE_NC_1, 6, commonAddress, Setpoint, Iec104Build.SetpointFloat(ForbiddenSetpoint, select: false)),
                        _ => Sc(2000, select: true, Iec104Limits.GlobalCommonAddress),
                    };
                    open = await CommandAsync(c, asdu, stop.Token) is not null;
                }
                else if (n % 3 == 2)
                {
                    open = await CommandAsync(c, Iec104Build.Asdu((byte)Iec104TypeId.C_SE_NC_1, 6, commonAddress, Setpoint, Iec104Build.SetpointFloat(n % 100, select: false)), stop.Token) is not null;
                }
                else
                {
                    uint ioa = 2000 + (uint)(n % 8);
                    bool on = n % 2 == 0;
                    var selected = await CommandAsync(c, Iec104Build.Asdu((byte)Iec104TypeId.C_SC_NA_1, 6, commonAddress, ioa, [Iec104Build.Sco(on, select: true)]), stop.Token);
                    open = selected is not null;
                    if (selected == true)
                    {
                        open = await CommandAsync(c, Iec104Build.Asdu((byte)Iec104TypeId.C_SC_NA_1, 6, commonAddress, ioa, [Iec104Build.Sco(on, select: false)]), stop.Token) is not null;
                    }
                }
                if (!open)
                {
                    c.Dispose();
                    c = null;
                }
                await Task.Delay(50, stop.Token);
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // The duration is over.
        }
        finally
        {
            c?.Dispose();
        }
    }

    private static byte[] Sc(uint ioa, bool select, ushort ca) => Iec104Build.Asdu((byte)Iec104TypeId.C_SC_NA_1, 6, ca, ioa, [Iec104Build.Sco(true, select)]);

    /// <summary>Sends a command and waits for its confirmation: true positive, false negative, null when the connection is lost or silent.</summary>
    private async Task<bool?> CommandAsync(Iec104Client c, byte[] asdu, CancellationToken ct)
    {
        Interlocked.Increment(ref _commandsSent);
        if (!await c.SendAsduAsync(asdu, ct))
        {
            Interlocked.Increment(ref _closed);
            return null;
        }
        byte type = asdu[0];
        var answer = await c.WaitAsync(r =>
        {
            if (r.Format == Iec104Format.I && r.Cause is 3 or 20)
            {
                Interlocked.Increment(ref _spontaneous);
            }
            return r.Format == Iec104Format.I && r.Type == type && (r.Cause == 7 || r.Negative);
        }, 2000, ct);
        if (answer is not { } r)
        {
            Interlocked.Increment(ref c.Closed ? ref _closed : ref _noAnswers);
            return null;
        }
        if (r.Negative)
        {
            Interlocked.Increment(ref _refusals);
            return false;
        }
        Interlocked.Increment(ref _confirmed);
        return true;
    }
}
