using System.Diagnostics;

namespace EdgeShield.Policy;

/// <summary>
/// Whether maintenance mode is armed (DESIGN.md "Maintenance mode"). Rules with
/// <c>maintenance: true</c> count only while it is. The physical key switch drives it (a later
/// issue); no network message can. One instance lives as long as the gateway and is shared by
/// every policy loaded, so a reload does not change the armed state. The default is never armed.
/// </summary>
public sealed class MaintenanceState
{
    private const long Disarmed = long.MinValue;
    private long _armedUntil = Disarmed;

    /// <summary>True while armed, measured now.</summary>
    public bool IsArmed => IsArmedAt(Stopwatch.GetTimestamp());

    /// <summary>True while armed at <paramref name="timestamp"/> (a <see cref="Stopwatch.GetTimestamp"/> value).</summary>
    public bool IsArmedAt(long timestamp)
    {
        var until = Volatile.Read(ref _armedUntil);
        return until != Disarmed && timestamp < until;
    }

    /// <summary>Arms until <see cref="Disarm"/>.</summary>
    public void Arm() => Volatile.Write(ref _armedUntil, long.MaxValue);

    /// <summary>Arms until the <see cref="Stopwatch"/> timestamp <paramref name="untilTimestamp"/> (the key's arm time), then disarms by itself.</summary>
    public void ArmUntil(long untilTimestamp) => Volatile.Write(ref _armedUntil, untilTimestamp);

    /// <summary>Disarms at once.</summary>
    public void Disarm() => Volatile.Write(ref _armedUntil, Disarmed);
}
