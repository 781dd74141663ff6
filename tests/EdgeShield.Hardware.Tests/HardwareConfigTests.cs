using EdgeShield.Policy;

namespace EdgeShield.Hardware.Tests;

public sealed class HardwareConfigTests
{
    [Fact]
    public void HardwareAndNetwork_AreBuiltIntoTheConfig()
    {
        var loaded = ConfigLoader.LoadText("""
            hardware:
              profile: simulated
              maintenance-key: { gpio: 17, active: high, arm-minutes: 5 }
              leds: { run: 22, alarm: 23 }
            network:
              plant: eth1
              site: eth0
              management: [10.0.0.0/24, "fd00::/64"]
            telemetry:
              mqtt: { broker: mqtt://10.1.2.3:1883 }
            """, "hw.yaml");
        Assert.False(loaded.HasErrors, string.Join("\n", loaded.Diagnostics));
        var hardware = loaded.Config!.Hardware!;
        Assert.Equal("simulated", hardware.Profile);
        Assert.Equal(new MaintenanceKeyConfig { Gpio = 17, ActiveLow = false, ArmDuration = TimeSpan.FromMinutes(5) }, hardware.MaintenanceKey);
        Assert.Equal(new LedPins { Run = 22, Alarm = 23 }, hardware.Leds);
        var network = loaded.Config.Network!;
        Assert.Equal(("eth1", "eth0"), (network.Plant, network.Site));
        Assert.Equal(["10.0.0.0/24", "fd00::/64"], network.Management);
        Assert.Equal(new Uri("mqtt://10.1.2.3:1883"), network.Broker);
    }

    [Fact]
    public void BadInterfaceName_IsAnErrorWithLine()
    {
        var loaded = ConfigLoader.LoadText("network:\n  plant: \"eth 1\"\n", "n.yaml");
        Assert.True(loaded.HasErrors);
        Assert.Contains(loaded.Diagnostics, d => d.ToString().StartsWith("n.yaml:2:", StringComparison.Ordinal) && d.ToString().Contains("interface", StringComparison.Ordinal));
    }

    [Fact]
    public void NoHardwareSection_MeansNoKey()
    {
        var loaded = ConfigLoader.LoadText("gateway: { name: a }\n", "n.yaml");
        Assert.Null(loaded.Config!.Hardware);
        Assert.Null(loaded.Config.Network);
    }
}
