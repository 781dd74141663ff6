using System.Device.Gpio;
using EdgeShield.Policy;
using EdgeShield.Service;

namespace EdgeShield.Simulators.Cli;

/// <summary>
/// Turns the demo's simulated maintenance key from the keyboard: each line "key" (or "k") on
/// stdin turns it (armed ↔ off). Local only by construction — stdin of this process; nothing
/// that arrives over the network reaches it.
/// </summary>
internal static class DemoKey
{
    public static void Start(HardwareRuntime hardware, HardwareConfig? config)
    {
        if (hardware.Simulated is not { } chip || config?.MaintenanceKey is not { } key)
        {
            return;
        }
        var turnedLevel = key.ActiveLow ? PinValue.Low : PinValue.High;
        var offLevel = key.ActiveLow ? PinValue.High : PinValue.Low;
        var thread = new Thread(() =>
        {
            bool turned = false;
            // Bounded by stdin: ends at end of input (a closed or redirected-empty stdin ends it at once).
            while (Console.In.ReadLine() is { } line)
            {
                if (line.Trim() is "key" or "k")
                {
                    turned = !turned;
                    chip.SetInputLevel(key.Gpio, turned ? turnedLevel : offLevel);
                    Console.Out.WriteLine(turned ? "demo: maintenance key turned (armed after debounce)" : "demo: maintenance key turned back");
                }
            }
        })
        { IsBackground = true, Name = "demo key (stdin)" };
        thread.Start();
        Console.Out.WriteLine("demo: type 'key' and Enter to turn the maintenance key; writes to the pump coils pass only while it is armed");
    }
}
