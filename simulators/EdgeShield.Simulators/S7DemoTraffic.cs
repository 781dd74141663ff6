using System.Net;

namespace EdgeShield.Simulators;

/// <summary>
/// The S7 part of <c>edgeshield-sim demo</c>: an HMI on an OP connection that reads DB1, writes recipe bytes
/// (DB1 64..127), and every tenth job tries something a firewall must refuse, alternately a CPU stop and a
/// forced output (write-var to Q0). The counters may be read while it runs.
/// </summary>
public sealed class S7DemoTraffic(IPEndPoint target)
{
    private readonly S7AttackOptions _options = new() { ConnectionType = 2, AnswerTimeoutMs = 1000 };
    private long _jobsSent, _responses, _refusals, _closed, _noAnswers, _forbiddenSent;

    public long JobsSent => Interlocked.Read(ref _jobsSent);
    /// <summary>Normal answers.</summary>
    public long Responses => Interlocked.Read(ref _responses);
    /// <summary>Answers that refused the job (negative Ack_Data, item return codes other than FF).</summary>
    public long Refusals => Interlocked.Read(ref _refusals);
    public long ForbiddenSent => Interlocked.Read(ref _forbiddenSent);
    public long ClosedConnections => Interlocked.Read(ref _closed);
    public long NoAnswers => Interlocked.Read(ref _noAnswers);

    /// <summary>Runs until <paramref name="duration"/> has passed or <paramref name="ct"/> is cancelled.</summary>
    public async Task RunAsync(TimeSpan duration, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stop.CancelAfter(duration);
        S7AttackSuite.Connection? c = null;
        try
        {
            for (int n = 0; !stop.IsCancellationRequested; n++)
            {
                if (c is null)
                {
                    (c, _) = await S7AttackSuite.PrepareAsync(target, "demo", _options, connect: true, 480, stop.Token);
                    if (c is null)
                    {
                        await Task.Delay(200, stop.Token);
                        continue;
                    }
                }
                ushort reference = (ushort)(n + 1);
                byte[] job;
                if (n % 10 == 9)
                {
                    Interlocked.Increment(ref _forbiddenSent);
                    job = (n / 10) % 2 == 0 ? S7AttackSuite.PlcStop() : S7AttackSuite.Write(reference, (0x02, 1, 0, 0x82, 0, 0, [0xFF]));
                }
                else if (n % 3 == 2)
                {
                    job = S7AttackSuite.Write(reference, (0x02, 2, 1, 0x84, 64 + (n % 32), 0, [(byte)(n >> 8), (byte)n]));
                }
                else
                {
                    job = S7AttackSuite.Read(reference, 0x02, 20, 1, 0x84, 0);
                }
                await c.SendAsync(S7AttackSuite.Dt(job), stop.Token);
                Interlocked.Increment(ref _jobsSent);
                var (outcome, _, _) = await c.ReadAnswerAsync(_options.AnswerTimeoutMs, stop.Token);
                switch (outcome)
                {
                    case ProbeOutcome.Normal:
                        Interlocked.Increment(ref _responses);
                        break;
                    case ProbeOutcome.Exception:
                        Interlocked.Increment(ref _refusals);
                        break;
                    case ProbeOutcome.NoAnswer:
                        Interlocked.Increment(ref _noAnswers);
                        break;
                    default:
                        Interlocked.Increment(ref _closed);
                        c.Dispose();
                        c = null;
                        break;
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
}
