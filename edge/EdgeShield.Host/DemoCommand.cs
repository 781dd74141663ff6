using System.Globalization;
using System.Net;
using EdgeShield.Gateway;
using EdgeShield.Policy;
using EdgeShield.Simulators;

namespace EdgeShield.Host;

/// <summary>
/// <c>edgeshield demo</c>: a simulated PLC, the firewall with the bundled demo policy in front of
/// it, and HMI traffic that includes forbidden writes, a vendor programming request and one
/// malformed frame — all in this process, on loopback, with nothing to set up.
/// </summary>
internal static class DemoCommand
{
    private const string Help = """
        usage: edgeshield demo [--seconds N]

        Starts, on 127.0.0.1, a simulated PLC, the EdgeShield firewall with the bundled demo
        policy, and HMI clients that read, write setpoints, and now and then try forbidden writes,
        a Schneider UMAS (FC 90) request and one malformed frame. Prints live counts each second
        on stdout and the audit events (JSON lines) on stderr; exits after N seconds (default 10).
        The pump coil writes are a maintenance rule: type 'key' and Enter to turn the simulated
        maintenance key (stdin only; nothing from the network can arm it), and again to turn it back.
        Exit 0 when the firewall behaved: forbidden requests refused, the malformed frame dropped,
        and nothing refused or malformed reached the PLC.
        """;

    /// <summary>The bundled demo policy; <c>{PLC_PORT}</c> is the simulated PLC's port.</summary>
    internal const string DemoConfig = """
        # The policy `edgeshield demo` enforces (see docs/POLICY.md).
        gateway: { name: demo-gw, site: demo }
        listeners:
          - name: hmi-plc1
            bind: 127.0.0.1:0
            protocol: modbus-tcp
            upstream: tcp://127.0.0.1:{PLC_PORT}
            policy: plc1
        policies:
          plc1:
            mode: enforce
            on-deny: exception
            rules:
              - name: hmi reads
                from: [127.0.0.0/8, "::1"]
                unit: 1
                function: [read-coils, read-discrete-inputs, read-holding-registers, read-input-registers]
                address: 0-999
              - name: setpoints
                from: [127.0.0.0/8, "::1"]
                unit: 1
                function: [write-single-register, write-multiple-registers]
                address: 100-119
                value: 0-1500
              - name: pump coils
                from: [127.0.0.0/8, "::1"]
                unit: 1
                function: write-single-coil
                address: 0-9
                maintenance: true
        hardware:
          profile: simulated
          maintenance-key: { gpio: 17, active: low, arm-minutes: 5 }
          leds: { run: 22, alarm: 23, maintenance: 24 }
        """;

    public static async Task<int> ExecuteAsync(string[] args)
    {
        var options = Options.Parse("demo", args, ["--seconds", "--broker"], []);
        if (options is null)
        {
            return Cli.ExitUsage;
        }
        if (options.Help)
        {
            Console.Out.Write(Help);
            return Cli.ExitOk;
        }
        if (options.Has("--broker"))
        {
            Console.Error.WriteLine("edgeshield demo: --broker needs the MQTT telemetry, which this build does not have yet");
            return Cli.ExitUsage;
        }
        int seconds = 10;
        if (options.Get("--seconds") is { } text && (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out seconds) || seconds < 1 || seconds > 86_400))
        {
            Console.Error.WriteLine($"edgeshield demo: --seconds must be a whole number of seconds, 1..86400 (got '{text}')");
            return Cli.ExitUsage;
        }

        await using var plc = await PlcSimulator.StartAsync(
            new IPEndPoint(IPAddress.Loopback, 0),
            new PlcOptions { Units = [1], SineStart = 0, SineCount = 10, SinePeriodSeconds = 20 },
            CancellationToken.None);
        var maintenance = new MaintenanceState();
        var loaded = ConfigLoader.LoadText(DemoConfig.Replace("{PLC_PORT}", plc.Port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal), "demo.yaml", maintenance);
        if (loaded.HasErrors || loaded.Config is null)
        {
            foreach (var diagnostic in loaded.Diagnostics)
            {
                Console.Error.WriteLine(diagnostic.ToString());
            }
            return Cli.ExitFault;
        }

        await using var audit = new AuditLog(Console.OpenStandardError(), eventsPerSecond: 5);
        await using var gateway = await EdgeGateway.StartAsync(loaded.Config, audit);
        using var hardware = HardwareRuntime.Start(loaded.Config.Hardware, maintenance, gateway.Counters, audit);
        DemoKey.Start(hardware, loaded.Config.Hardware);
        var listener = gateway.Listeners[0];
        Console.Out.WriteLine($"demo: PLC simulator on 127.0.0.1:{plc.Port}; EdgeShield listener {listener.Config.Name} on {listener.LocalEndPoint}; {seconds} s of HMI traffic");

        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        var traffic = new DemoTraffic(listener.LocalEndPoint, new DemoTrafficOptions { Unit = 1, Clients = 3 });
        var running = traffic.RunAsync(TimeSpan.FromSeconds(seconds), stop.Token);
        var counters = gateway.Counters;
        while (!running.IsCompleted)
        {
            await Task.WhenAny(running, Task.Delay(1000));
            PrintCounts(counters);
        }
        await running;

        long reachedPlcMalformed = plc.MalformedFrames;
        long plcWrites = plc.RequestsReceived(6) + plc.RequestsReceived(16) + plc.RequestsReceived(5);
        Console.Out.WriteLine($"demo: HMI saw {traffic.Responses} responses and {traffic.TotalExceptions} exceptions (01: {traffic.Exceptions(1)}, 02: {traffic.Exceptions(2)}, 03: {traffic.Exceptions(3)}, 0B: {traffic.Exceptions(0x0B)}); {traffic.ClosedConnections} connection closed by the firewall");
        Console.Out.WriteLine($"demo: PLC received {plc.TotalRequests} requests ({plcWrites} allowed writes, {plc.RequestsReceived(90)} FC 90, {reachedPlcMalformed} malformed)");
        bool behaved = counters.Denied > 0 && counters.Malformed == 1 && reachedPlcMalformed == 0 && plc.RequestsReceived(90) == 0
            && counters.Allowed == plc.TotalRequests;
        Console.Out.WriteLine(behaved ? "demo: ok — every forbidden request was refused and nothing malformed reached the PLC" : "demo: FAILED — see the counts above");
        return behaved ? Cli.ExitOk : Cli.ExitFault;
    }

    private static void PrintCounts(GatewayCounters counters) =>
        Console.Out.WriteLine($"allowed {counters.Allowed} denied {counters.Denied} malformed {counters.Malformed} timeouts {counters.Timeouts}");
}
