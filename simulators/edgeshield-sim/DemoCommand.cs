using System.Globalization;
using System.Net;
using EdgeShield.Gateway;
using EdgeShield.Policy;
using EdgeShield.Service;
using EdgeShield.Telemetry;

namespace EdgeShield.Simulators.Cli;

/// <summary>
/// <c>edgeshield-sim demo</c>: a simulated Modbus PLC, S7 CPU and IEC 104 station, the EdgeShield gateway library with the
/// bundled demo policy in front of them, an embedded MQTT broker, and HMI traffic that includes forbidden
/// writes, a vendor programming request, one malformed frame, S7 CPU stops and forced outputs — all in this process, on
/// loopback, with nothing to set up. The gateway is composed through EdgeShield.Service, as
/// <c>edgeshield run</c> composes it; the firmware binary carries none of the simulators.
/// </summary>
internal static class DemoCommand
{
    private const int ExitOk = 0;
    private const int ExitFault = 1;

    private const string Help = """
        usage: edgeshield-sim demo [--seconds N] [--broker mqtt://HOST:PORT]

        Starts, on 127.0.0.1, a simulated PLC, the EdgeShield firewall with the bundled demo
        policy, and HMI clients that read, write setpoints, and now and then try forbidden writes,
        a Schneider UMAS (FC 90) request and one malformed frame; and a simulated S7 CPU behind an
        s7comm listener whose HMI reads DB1, writes recipe bytes and tries a CPU stop and forced outputs; and a simulated
        IEC 104 station behind an iec104 listener whose SCADA master interrogates, operates breakers with
        select+execute and moves a set-point, and tries an execute without select, a breaker outside its rule, a
        set-point out of bounds and the global common address. The data diode polls the PLC's
        tags every 250 ms and publishes them (JSON, topics edgeshield/demo/demo-gw/plc1/<tag>) to an
        MQTT broker embedded on loopback, or to the broker given with --broker.
        Prints live counts each second on stdout (telemetry = messages the broker acknowledged) and
        the audit events (JSON lines) on stderr; exits after N seconds (default 10).
        The pump coil writes are a maintenance rule: type 'key' and Enter to turn the simulated
        maintenance key (stdin only; nothing from the network can arm it), and again to turn it back.
        Exit 0 when the firewall behaved: forbidden requests refused, the malformed frame dropped,
        nothing refused or malformed reached the PLCs (the S7 CPU still in RUN, its outputs untouched; the IEC 104
        station refused nothing itself, the forbidden breakers and set-point untouched),
        and telemetry reached the broker.
        """;

    /// <summary>The bundled demo policy; <c>{PLC_PORT}</c> is the simulated PLC's port.</summary>
    internal const string DemoConfig = """
        # The policy `edgeshield-sim demo` enforces (see docs/POLICY.md).
        gateway: { name: demo-gw, site: demo }
        listeners:
          - name: hmi-plc1
            bind: 127.0.0.1:0
            protocol: modbus-tcp
            upstream: tcp://127.0.0.1:{PLC_PORT}
            policy: plc1
          - name: hmi-s7
            bind: 127.0.0.1:0
            protocol: s7comm
            upstream: tcp://127.0.0.1:{S7_PLC_PORT}
            policy: press1
          - name: scada-rtu1
            bind: 127.0.0.1:0
            protocol: iec104
            upstream: tcp://127.0.0.1:{IEC104_PORT}
            policy: rtu1
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
          press1:
            protocol: s7comm
            mode: enforce
            on-deny: exception
            rules:
              - name: hmi reads
                from: [127.0.0.0/8, "::1"]
                connection: op
                function: read
                area: [db, m, i, q]
                db: 1-3
                address: 0-255
              - name: recipe writes
                from: [127.0.0.0/8, "::1"]
                connection: op
                function: write-var
                area: db
                db: 1
                address: 64-127
          rtu1:
            protocol: iec104
            mode: enforce
            on-deny: exception
            rules:
              - name: scada monitoring
                from: [127.0.0.0/8, "::1"]
                type: [C_IC_NA_1, C_CI_NA_1, C_RD_NA_1]
                ca: 1
              - name: breaker commands
                from: [127.0.0.0/8, "::1"]
                type: C_SC_NA_1
                ca: 1
                ioa: 2000-2019
                select-before-operate: true
              - name: set-points
                from: [127.0.0.0/8, "::1"]
                type: C_SE_NC_1
                ca: 1
                ioa: 3000-3009
                value: 0-100.0
        hardware:
          profile: simulated
          maintenance-key: { gpio: 17, active: low, arm-minutes: 5 }
          leds: { run: 22, alarm: 23, maintenance: 24 }
        telemetry:
          mqtt: { broker: "{BROKER}", client-id: demo-gw }
          buffer: { path: "{BUFFER}", max-mb: 16 }
          poll:
            - device: plc1
              upstream: tcp://127.0.0.1:{PLC_PORT}
              unit: 1
              every: 250ms
              tags:
                - { name: wave0, table: holding, address: 0, type: int16 }
                - { name: wave1, table: holding, address: 1, type: int16, scale: 0.01, unit: "%" }
                - { name: setpoint, table: holding, address: 100 }
                - { name: pump, table: coil, address: 0 }
            - device: feeder7
              protocol: iec104
              upstream: tcp://127.0.0.1:{IEC104_PORT}
              ca: 1
              tags:
                - { name: breaker, ioa: 100, type: M_SP_NA_1 }
                - { name: feeder-mw, ioa: 200, unit: MW }
                - { name: energy, ioa: 300, type: M_IT_NA_1, unit: kWh }
        """;

    public static async Task<int> RunAsync(Args args)
    {
        string? brokerUrl = null;
        int seconds = 10;
        for (string? option = args.NextOption(); option is not null; option = args.NextOption())
        {
            switch (option)
            {
                case "--help" or "-h":
                    Console.Out.Write(Help);
                    return ExitOk;
                case "--seconds":
                    seconds = args.Int(option, 1, 86_400);
                    break;
                case "--broker":
                    brokerUrl = args.Value(option);
                    if (!(Uri.TryCreate(brokerUrl, UriKind.Absolute, out var brokerUri) && brokerUri.Scheme is "mqtt" or "mqtts" && brokerUri.Host.Length > 0))
                    {
                        throw new UsageException($"demo: --broker must be mqtt://HOST:PORT (got '{brokerUrl}')");
                    }
                    break;
                default:
                    throw new UsageException($"demo: unknown option '{option}' (valid: --seconds, --broker, --help)");
            }
        }

        await using var plc = await PlcSimulator.StartAsync(
            new IPEndPoint(IPAddress.Loopback, 0),
            new PlcOptions { Units = [1], SineStart = 0, SineCount = 10, SinePeriodSeconds = 20 },
            CancellationToken.None);
        await using var s7Plc = await S7PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new S7PlcOptions(), CancellationToken.None);
        await using var rtu = await Iec104PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new Iec104PlcOptions { SpontaneousMs = 500 }, CancellationToken.None);
        await using var embeddedBroker = brokerUrl is null ? await DemoBroker.StartAsync() : null;
        brokerUrl ??= $"mqtt://127.0.0.1:{embeddedBroker!.Port}";
        string buffer = Path.Combine(Path.GetTempPath(), $"edgeshield-demo-{Environment.ProcessId}");
        var maintenance = new MaintenanceState();
        var loaded = ConfigLoader.LoadText(DemoConfig
            .Replace("{PLC_PORT}", plc.Port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("{S7_PLC_PORT}", s7Plc.Port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("{IEC104_PORT}", rtu.Port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("{BROKER}", brokerUrl, StringComparison.Ordinal)
            .Replace("{BUFFER}", buffer, StringComparison.Ordinal), "demo.yaml", maintenance);
        if (loaded.HasErrors || loaded.Config is null)
        {
            foreach (var diagnostic in loaded.Diagnostics)
            {
                Console.Error.WriteLine(diagnostic.ToString());
            }
            return ExitFault;
        }

        await using var audit = new AuditLog(Console.OpenStandardError(), eventsPerSecond: 5);
        await using var upstreams = await UpstreamRegistry.StartAsync(loaded.Config);
        var telemetry = TelemetryWiring.Create(loaded.Config, loaded.Config.Telemetry!, audit, upstreams);
        await using var eventsTopic = new AuditLog(new EventsTopicStream(telemetry), eventsPerSecond: 5);
        long published;
        bool behaved;
        await using (telemetry)
        {
            var sink = new FanOutAuditSink(audit, eventsTopic);
            await using var gateway = await EdgeGateway.StartAsync(loaded.Config, sink, upstreams);
            using var hardware = HardwareRuntime.Start(loaded.Config.Hardware, maintenance, gateway.Counters, sink);
            DemoKey.Start(hardware, loaded.Config.Hardware);
            telemetry.Start();
            var listener = gateway.Listeners[0];
            var s7Listener = gateway.Listeners[1];
            var iecListener = gateway.Listeners[2];
            Console.Out.WriteLine($"demo: PLC simulator on 127.0.0.1:{plc.Port}; EdgeShield listener {listener.Config.Name} on {listener.LocalEndPoint}; telemetry to {brokerUrl}{(embeddedBroker is null ? "" : " (embedded)")} under {telemetry.TopicPrefix}/; {seconds} s of HMI traffic");
            Console.Out.WriteLine($"demo: S7 PLC simulator on 127.0.0.1:{s7Plc.Port}; EdgeShield listener {s7Listener.Config.Name} (s7comm) on {s7Listener.LocalEndPoint}; an S7 HMI reads DB1, writes recipe bytes and tries a CPU stop and forced outputs");
            Console.Out.WriteLine($"demo: IEC 104 station simulator on 127.0.0.1:{rtu.Port}; EdgeShield listener {iecListener.Config.Name} (iec104) on {iecListener.LocalEndPoint}; a SCADA master interrogates, operates breakers (select+execute) and set-points, and tries an execute without select, a breaker it may not touch, a set-point out of bounds and the global address");

            using var stop = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                stop.Cancel();
            };
            var traffic = new DemoTraffic(listener.LocalEndPoint, new DemoTrafficOptions { Unit = 1, Clients = 3 });
            var s7Traffic = new S7DemoTraffic(s7Listener.LocalEndPoint);
            var iecTraffic = new Iec104DemoTraffic(iecListener.LocalEndPoint);
            var running = Task.WhenAll(traffic.RunAsync(TimeSpan.FromSeconds(seconds), stop.Token), s7Traffic.RunAsync(TimeSpan.FromSeconds(seconds), stop.Token), iecTraffic.RunAsync(TimeSpan.FromSeconds(seconds), stop.Token));
            var counters = gateway.Counters;
            while (!running.IsCompleted)
            {
                await Task.WhenAny(running, Task.Delay(1000));
                PrintCounts(counters, telemetry);
            }
            await running;
            // Polling stops first, so that the poller's read count is final when it is compared
            // with what the PLC received (a read in flight would otherwise be counted by one side only).
            await telemetry.StopPollingAsync();
            // Give the publisher a moment to hand the last poll to the broker.
            for (int i = 0; i < 20 && telemetry.PendingBytes > 0 && telemetry.BrokerConnected; i++)
            {
                await Task.Delay(50);
            }
            published = telemetry.Published;

            long reachedPlcMalformed = plc.MalformedFrames;
            long plcWrites = plc.RequestsReceived(6) + plc.RequestsReceived(16) + plc.RequestsReceived(5);
            Console.Out.WriteLine($"demo: HMI saw {traffic.Responses} responses and {traffic.TotalExceptions} exceptions (01: {traffic.Exceptions(1)}, 02: {traffic.Exceptions(2)}, 03: {traffic.Exceptions(3)}, 0B: {traffic.Exceptions(0x0B)}); {traffic.ClosedConnections} connection closed by the firewall");
            Console.Out.WriteLine($"demo: PLC received {plc.TotalRequests} requests ({plcWrites} allowed writes, {plc.RequestsReceived(90)} FC 90, {reachedPlcMalformed} malformed)");
            Console.Out.WriteLine($"demo: S7 HMI sent {s7Traffic.JobsSent} jobs ({s7Traffic.ForbiddenSent} forbidden: CPU stop and forced outputs) and saw {s7Traffic.Responses} answers and {s7Traffic.Refusals} refusals; S7 PLC received {s7Plc.TotalRequests} jobs ({s7Plc.ItemsWritten} items written, {s7Plc.Stops} stops, {s7Plc.OutputWrites} output writes, {s7Plc.MalformedFrames} malformed), CPU in {s7Plc.State}");
            Console.Out.WriteLine($"demo: IEC 104 master sent {iecTraffic.CommandsSent} commands ({iecTraffic.ForbiddenSent} forbidden) and saw {iecTraffic.Confirmed} confirmations, {iecTraffic.Refusals} refusals and {iecTraffic.Reports} reports; station executed {rtu.Executes} commands and {rtu.Setpoints} set-points, refused {rtu.TotalNegatives}, {rtu.MalformedFrames} malformed, {rtu.SequenceErrors} sequence errors; the telemetry poller read the station's counters with {rtu.CounterInterrogations} counter interrogation(s) (QCC 5: read, no freeze)");
            // The poller reads through the same upstream as the listener (its own connection, outside
            // the policy's counts), so the PLC's upstream counter holds the HMI's forwarded requests and the polls.
            long pollReads = telemetry.ReadsSent;
            long upstreamRequests = upstreams.TcpUpstreams.Values.Sum(u => u.Counters.RequestsSent);
            Console.Out.WriteLine($"demo: telemetry: {telemetry.ValuesPolled} tag values polled in {pollReads} reads, {published} messages acknowledged by the broker, {telemetry.Dropped} dropped; upstream tcp://127.0.0.1:{plc.Port}: {upstreamRequests} requests sent (HMI and poller)");
            // What was refused must not have reached the PLC: its state is the proof (the forbidden
            // register and coil keep their initial values), not request counts, which a request cut
            // off at the end of the run can make differ by one on either side.
            var forbidden = new DemoTrafficOptions();
            bool forbiddenWritesReached = plc.GetHoldingRegister(1, forbidden.ForbiddenRegister) != 0 || plc.GetCoil(1, forbidden.ForbiddenCoil);
            behaved = counters.Denied > 0 && counters.Malformed == 1 && reachedPlcMalformed == 0 && plc.RequestsReceived(90) == 0
                && !forbiddenWritesReached && counters.Allowed > 0 && published > 0
                && s7Traffic.Responses > 0 && s7Traffic.Refusals > 0 && s7Plc.Stops == 0 && s7Plc.OutputWrites == 0 && s7Plc.State == S7CpuState.Run && s7Plc.MalformedFrames == 0
                && iecTraffic.Confirmed > 0 && iecTraffic.Refusals > 0 && rtu.TotalNegatives == 0 && rtu.MalformedFrames == 0 && rtu.SequenceErrors == 0
                && !rtu.SinglePoint(Iec104DemoTraffic.ForbiddenBreaker) && !rtu.SinglePoint(Iec104DemoTraffic.UnselectedBreaker) && rtu.Setpoint(Iec104DemoTraffic.Setpoint) != Iec104DemoTraffic.ForbiddenSetpoint;
        }
        Console.Out.WriteLine(behaved ? "demo: ok — every forbidden request was refused, nothing malformed reached the PLC, and telemetry reached the broker" : "demo: FAILED — see the counts above");
        try
        {
            Directory.Delete(buffer, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temporary directory is harmless.
        }
        return behaved ? ExitOk : ExitFault;
    }

    private static void PrintCounts(GatewayCounters counters, TelemetryService telemetry) =>
        Console.Out.WriteLine($"allowed {counters.Allowed} denied {counters.Denied} malformed {counters.Malformed} timeouts {counters.Timeouts} telemetry {telemetry.Published}");
}
