using EdgeShield.Policy;

namespace EdgeShield.Hardware.Tests;

public sealed class StatusLedTests
{
    private sealed class Leds : IStatusLeds
    {
        private readonly bool[] _lit = new bool[3];
        public int RunChanges { get; private set; }

        public void Light(StatusLed led, bool lit)
        {
            if (led == StatusLed.Run && _lit[0] != lit)
            {
                RunChanges++;
            }
            _lit[(int)led] = lit;
        }

        public bool IsOn(StatusLed led) => _lit[(int)led];

        public void Dispose()
        {
        }
    }

    [Fact]
    public void Leds_FollowTrafficDenialsAndMaintenance()
    {
        long traffic = 0, faults = 0;
        var maintenance = new MaintenanceState();
        var leds = new Leds();
        using var controller = new StatusLedController(leds, () => traffic, () => faults, maintenance);

        controller.Update();
        Assert.True(leds.IsOn(StatusLed.Run));
        Assert.False(leds.IsOn(StatusLed.Alarm));
        Assert.False(leds.IsOn(StatusLed.Maintenance));
        int steady = leds.RunChanges;
        controller.Update();
        Assert.Equal(steady, leds.RunChanges);

        // Traffic: run blinks.
        for (int i = 0; i < 4; i++)
        {
            traffic += 10;
            controller.Update();
        }
        Assert.True(leds.RunChanges >= steady + 3);

        faults++;
        controller.Update();
        Assert.True(leds.IsOn(StatusLed.Alarm));

        maintenance.Arm();
        controller.Update();
        Assert.True(leds.IsOn(StatusLed.Maintenance));
        maintenance.Disarm();
        controller.Update();
        Assert.False(leds.IsOn(StatusLed.Maintenance));
    }

    [Fact]
    public void GpioLeds_DriveTheSimulatedLines()
    {
        var driver = new SimulatedGpioDriver();
        using var gpio = new System.Device.Gpio.GpioController(driver);
        using var leds = new GpioStatusLeds(gpio, run: 22, alarm: 23, maintenance: null);
        leds.Light(StatusLed.Alarm, true);
        Assert.Equal(System.Device.Gpio.PinValue.High, driver.Level(23));
        Assert.Equal(System.Device.Gpio.PinValue.Low, driver.Level(22));
        leds.Light(StatusLed.Maintenance, true); // no such LED: nothing happens
        Assert.True(leds.IsOn(StatusLed.Maintenance));
    }
}
