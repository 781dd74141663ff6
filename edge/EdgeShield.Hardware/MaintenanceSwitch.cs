using System.Diagnostics;
using EdgeShield.Policy;

namespace EdgeShield.Hardware;

/// <summary>A change of maintenance mode, for the audit log: <c>maintenance-armed</c> or <c>maintenance-disarmed</c>, and why.</summary>
public readonly record struct MaintenanceChange(bool Armed, string Reason, string Detail);

/// <summary>
/// Connects the key switch to <see cref="MaintenanceState"/> (DESIGN.md "Maintenance mode"):
/// turning the key arms for the arm time, after which it disarms itself; turning it back disarms
/// at once. Only the key can arm: nothing here listens to the network.
/// </summary>
/// <remarks>
/// <para>The expiry is enforced by <see cref="MaintenanceState"/> itself (a timestamp compared on
/// every decision); the timer here only reports it, and re-reads the key: a lost release edge
/// cannot leave maintenance armed with the key turned back.</para>
/// <para>A key already in the armed position at start-up does not arm: after a power cut the
/// gateway comes up disarmed, and someone has to turn the key back and again.</para>
/// </remarks>
public sealed class MaintenanceSwitch : IDisposable
{
    private static readonly TimeSpan CheckInterval = TimeSpan.FromMilliseconds(100);

    private readonly IMaintenanceKey _key;
    private readonly MaintenanceState _state;
    private readonly Action<MaintenanceChange> _report;
    private readonly object _gate = new();
    private readonly Timer _timer;
    private bool _armed;

    public MaintenanceSwitch(IMaintenanceKey key, MaintenanceState state, TimeSpan armDuration, Action<MaintenanceChange> report)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(report);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(armDuration, TimeSpan.Zero);
        _key = key;
        _state = state;
        _report = report;
        ArmDuration = armDuration;
        state.Disarm();
        if (key.IsTurned)
        {
            report(new MaintenanceChange(false, "maintenance-key-ignored", "key found in the armed position at start; turn it back and again to arm"));
        }
        key.Turned += OnTurned;
        _timer = new Timer(_ => Check(), null, CheckInterval, CheckInterval);
    }

    public TimeSpan ArmDuration { get; }

    public bool IsArmed => _state.IsArmed;

    private void OnTurned(object? sender, bool turned)
    {
        MaintenanceChange? change = null;
        lock (_gate)
        {
            if (turned && !_armed)
            {
                _state.ArmUntil(Stopwatch.GetTimestamp() + (long)(ArmDuration.TotalSeconds * Stopwatch.Frequency));
                _armed = true;
                change = new MaintenanceChange(true, "maintenance-armed", $"key turned; rules with maintenance: true pass for {Format(ArmDuration)}");
            }
            else if (!turned && _armed)
            {
                _state.Disarm();
                _armed = false;
                change = new MaintenanceChange(false, "maintenance-disarmed", "key turned back");
            }
        }
        if (change is { } c)
        {
            _report(c);
        }
    }

    /// <summary>Reports an elapsed arm time, and disarms if the key reads back in the off position.</summary>
    private void Check()
    {
        MaintenanceChange? change = null;
        lock (_gate)
        {
            if (_armed && !_state.IsArmed)
            {
                _armed = false;
                change = new MaintenanceChange(false, "maintenance-disarmed", $"arm time of {Format(ArmDuration)} elapsed; turn the key back and again to re-arm");
            }
            else if (_armed && !_key.IsTurned)
            {
                _state.Disarm();
                _armed = false;
                change = new MaintenanceChange(false, "maintenance-disarmed", "key reads in the off position");
            }
        }
        if (change is { } c)
        {
            _report(c);
        }
    }

    private static string Format(TimeSpan span) =>
        span.TotalMinutes >= 1 && span.Seconds == 0 ? $"{(int)span.TotalMinutes} min" : $"{span.TotalSeconds:0.###} s";

    public void Dispose()
    {
        _key.Turned -= OnTurned;
        _timer.Dispose();
    }
}
