namespace EdgeShield.Policy;

public sealed partial class EdgeShieldConfig
{
    /// <summary><c>hardware:</c> (maintenance key, LEDs); null when the section is absent: no key, no LEDs, never armed.</summary>
    public HardwareConfig? Hardware { get; init; }

    /// <summary><c>network:</c> for <c>edgeshield nft</c>; null when the section is absent.</summary>
    public NetworkConfig? Network { get; init; }
}

/// <summary><c>hardware:</c> of DESIGN.md.</summary>
public sealed record HardwareConfig
{
    /// <summary>The name of the profile used for this config file: <c>simulated</c> (in-memory GPIO) or a name from <c>firmware-config/profiles</c>.</summary>
    public string Profile { get; init; } = HardwareProfiles.Simulated;
    /// <summary>The key switch; null when the gateway has none (maintenance can then never be armed).</summary>
    public MaintenanceKeyConfig? MaintenanceKey { get; init; }
    /// <summary>LED lines; null entries are LEDs the gateway does not have.</summary>
    public LedPins Leds { get; init; } = new();
}

/// <summary>Profile names known to the loader without a file.</summary>
public static class HardwareProfiles
{
    /// <summary>An in-memory GPIO chip: for the demo, tests and a desk.</summary>
    public const string Simulated = "simulated";
}

/// <summary><c>hardware.maintenance-key</c>.</summary>
public sealed record MaintenanceKeyConfig
{
    /// <summary>GPIO line of the key switch input.</summary>
    public required int Gpio { get; init; }
    /// <summary>True when the armed position pulls the line low (<c>active: low</c>, the default).</summary>
    public bool ActiveLow { get; init; } = true;
    /// <summary>How long one turn of the key arms maintenance (<c>arm-minutes</c>, default 30).</summary>
    public TimeSpan ArmDuration { get; init; } = TimeSpan.FromMinutes(30);
}

/// <summary><c>hardware.leds</c>: GPIO lines, each optional.</summary>
public sealed record LedPins
{
    public int? Run { get; init; }
    public int? Alarm { get; init; }
    public int? Maintenance { get; init; }
}

/// <summary><c>network:</c> of DESIGN.md, plus the telemetry broker it must let out.</summary>
public sealed record NetworkConfig
{
    /// <summary>The PLC-side interface (<c>plant</c>); null when not given.</summary>
    public string? Plant { get; init; }
    /// <summary>The IT-side interface (<c>site</c>); null when not given.</summary>
    public string? Site { get; init; }
    /// <summary><c>management</c>: addresses or CIDRs allowed to reach SSH, as written (validated).</summary>
    public IReadOnlyList<string> Management { get; init; } = [];
    /// <summary><c>telemetry.mqtt.broker</c> when one is configured: the only egress on the site side.</summary>
    public Uri? Broker { get; init; }
    /// <summary><c>telemetry.poll[].upstream</c> that are <c>tcp://</c>: plant-side egress of the poller.</summary>
    public IReadOnlyList<UpstreamAddress> PollUpstreams { get; init; } = [];
}
