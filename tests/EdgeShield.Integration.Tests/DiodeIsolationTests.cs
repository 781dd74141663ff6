using System.Globalization;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// The diode with real network parts (issue 7, item 4): three namespaces joined by veth pairs,
/// <code>
///  plant 10.10.0.11 ──eth0══plant0── gateway 10.10.0.1 | 10.30.0.1 ──site0══eth0── site 10.30.0.2
///        fd00:10::11                         fd00:10::1 | fd00:30::1                     fd00:30::2
///  edgeshield-sim plc :502           edgeshield run, nft -f (generated)          mosquitto :1883, attacker
///  decoys tcp 22,80,102,…            decoys tcp 22,80,1883,…
/// </code>
/// Both outer namespaces route everything through the gateway, so only the gateway keeps them apart.
/// Decoy listeners (IPv4 and IPv6) make every blocked port a port that would answer if a packet got
/// through. Every probe from the site is made over IPv4 and over IPv6: a dual-stack plant network must
/// not have a second, unguarded path.
/// </summary>
public partial class DiodeIsolationTests(ITestOutputHelper output)
{
    private const string PlantPlc = "10.10.0.11";
    private const string GatewayPlant = "10.10.0.1";
    private const string GatewaySite = "10.30.0.1";
    private const string Broker = "10.30.0.2";
    private const string SiteSubnet = "10.30.0.0/24";
    private const string PlantPlc6 = "fd00:10::11";
    private const string GatewayPlant6 = "fd00:10::1";
    private const string GatewaySite6 = "fd00:30::1";
    private const string Broker6 = "fd00:30::2";
    private const string SiteSubnet6 = "fd00:30::/64";
    /// <summary>Every privileged port plus the industrial, broker and proxy ports above 1024.</summary>
    private const string SweepPorts = "1-1024,1502,1883,2222,2404,4840,5020,5683,8080,8883,20000,44818,47808";
    /// <summary>SSH, HTTP, S7, IEC 60870-5-104, DNP3, EtherNet/IP (the PLC itself is on 502).</summary>
    private const string PlantDecoysTcp = "22,80,102,2404,20000,44818";
    /// <summary>SNMP, Modbus/UDP, EtherNet/IP I/O, BACnet: echo whatever arrives.</summary>
    private const string PlantDecoysUdp = "161,502,2222,47808";
    private const string UdpProbePorts = "53,69,123,161,502,623,2222,5683,20000,44818,47808";
    /// <summary>Listening in the gateway namespace beside EdgeShield, reachable only if the ruleset let them be.</summary>
    private const string GatewayDecoysTcp = "22,80,1883,5020,8080";

    private static string Config(string bufferDir) => $$"""
        gateway: { name: gw1, site: lab }
        listeners:
          - name: hmi-plc1
            bind: 0.0.0.0:502
            upstream: tcp://{{PlantPlc}}:502
            policy: plc1
        policies:
          plc1:
            mode: enforce
            rules:
              - { name: plant hmi reads, from: [10.10.0.0/24], unit: 1, function: [read], address: 0-999 }
        telemetry:
          mqtt: { broker: mqtt://{{Broker}}:1883, topic-prefix: lab/gw1 }
          buffer: { path: {{bufferDir}} }
          poll:
            - device: plc1
              upstream: tcp://{{PlantPlc}}:502
              unit: 1
              every: 200ms
              tags:
                - { name: level, table: holding, address: 0 }
                - { name: flow, table: input, address: 0 }
        network: { plant: plant0, site: site0, management: [10.99.0.0/24] }
        """;

    [NetnsFact]
    public async Task ThreeNamespaces_TelemetryReachesTheSite_NothingFromTheSiteReachesThePlant()
    {
        string dir = Directory.CreateTempSubdirectory("es-netns-").FullName;
        await using var lab = new NetnsLab();
        var running = new List<Processes.Running>();
        try
        {
            string plant = await lab.AddAsync("plant"), gw = await lab.AddAsync("gw"), site = await lab.AddAsync("site");
            await NetnsLab.LinkAsync(gw, "plant0", GatewayPlant + "/24", plant, "eth0", PlantPlc + "/24");
            await NetnsLab.LinkAsync(gw, "site0", GatewaySite + "/24", site, "eth0", Broker + "/24");
            await NetnsLab.RunCheckedAsync("ip", "-n", plant, "route", "add", "default", "via", GatewayPlant);
            await NetnsLab.RunCheckedAsync("ip", "-n", site, "route", "add", "default", "via", GatewaySite);
            await NetnsLab.AddAddressAsync(gw, "plant0", GatewayPlant6 + "/64");
            await NetnsLab.AddAddressAsync(plant, "eth0", PlantPlc6 + "/64");
            await NetnsLab.AddAddressAsync(gw, "site0", GatewaySite6 + "/64");
            await NetnsLab.AddAddressAsync(site, "eth0", Broker6 + "/64");
            await NetnsLab.RunCheckedAsync("ip", "-n", plant, "-6", "route", "add", "default", "via", GatewayPlant6);
            await NetnsLab.RunCheckedAsync("ip", "-n", site, "-6", "route", "add", "default", "via", GatewaySite6);

            // The measuring point: every packet entering the plant namespace from the site subnet, counted by the kernel.
            string probeRules = Path.Combine(dir, "plant-probe.nft");
            await File.WriteAllTextAsync(probeRules, $$"""
                table inet probe
                delete table inet probe
                table inet probe {
                    chain ingress {
                        type filter hook prerouting priority raw; policy accept;
                        ip saddr {{SiteSubnet}} counter comment "from-site"
                        ip6 saddr {{SiteSubnet6}} counter comment "v6-from-site"
                        ip saddr {{GatewayPlant}} counter comment "from-gateway"
                    }
                }
                """);
            await NetnsLab.ExecCheckedAsync(plant, "/usr/sbin/nft", "-f", probeRules);

            string config = Path.Combine(dir, "edgeshield.yaml");
            await File.WriteAllTextAsync(config, Config(Path.Combine(dir, "buffer")));

            var plc = Start(running, NetnsLab.Sim(plant, "plc", "--listen", PlantPlc + ":502", "--units", "1"));
            Assert.True(await plc.WaitForStdoutAsync("listening on", 60_000), "PLC did not start:\n" + plc.Stderr);
            running.Add(await NetnsLab.DecoysAsync(plant, PlantDecoysTcp, PlantDecoysUdp));
            running.Add(await NetnsLab.DecoysAsync(gw, GatewayDecoysTcp, ""));
            string mosquittoConf = Path.Combine(dir, "mosquitto.conf");
            await File.WriteAllTextAsync(mosquittoConf, "listener 1883 0.0.0.0\nallow_anonymous true\nlog_dest stderr\n");
            var mosquitto = Start(running, NetnsLab.Exec(site, "/usr/sbin/mosquitto", "-c", mosquittoConf));
            Assert.True(await mosquitto.WaitForStderrAsync(" running", 30_000), "mosquitto did not start:\n" + mosquitto.Stderr);
            var sub = Start(running, NetnsLab.Exec(site, "/usr/bin/stdbuf", "-oL", "/usr/bin/mosquitto_sub", "-h", Broker, "-t", "#", "-v", "-q", "1"));

            // Control: no ruleset and forwarding on. The site reaches the plant's PLC, decoys and UDP echo,
            // and the counter sees it: the probes below can see a leak when there is one.
            await SetForwardingAsync(gw, on: true);
            var controlTcp = await NetnsLab.TcpSweepAsync(site, PlantPlc, "22,502,20000", timeoutSeconds: 5);
            var controlUdp = await NetnsLab.UdpSweepAsync(site, PlantPlc, "502", timeoutSeconds: 5);
            Assert.True(controlTcp.Open.SequenceEqual([22, 502, 20000]), "control sweep: " + controlTcp);
            Assert.True(controlUdp.Answered.SequenceEqual([502]), "control UDP: " + controlUdp);
            var (controlPackets, _) = await CounterAsync(plant, "inet probe", "from-site");
            Assert.True(controlPackets > 0, "the plant counter saw no packet from the site while forwarding was open");
            var controlTcp6 = await NetnsLab.TcpSweepAsync(site, PlantPlc6, "22,20000", timeoutSeconds: 5);
            var controlUdp6 = await NetnsLab.UdpSweepAsync(site, PlantPlc6, "502", timeoutSeconds: 5);
            Assert.True(controlTcp6.Open.SequenceEqual([22, 20000]), "IPv6 control sweep: " + controlTcp6);
            Assert.True(controlUdp6.Answered.SequenceEqual([502]), "IPv6 control UDP: " + controlUdp6);
            var (controlPackets6, _) = await CounterAsync(plant, "inet probe", "v6-from-site");
            Assert.True(controlPackets6 > 0, "the plant counter saw no IPv6 packet from the site while forwarding was open");

            // The generated ruleset, loaded in the gateway namespace; the plant counter starts again from 0.
            var nft = await Processes.RunAsync(Processes.EdgeShield("nft", "--config", config));
            Assert.True(nft.ExitCode == 0, nft.Stderr);
            string ruleset = Path.Combine(dir, "edgeshield.nft");
            await File.WriteAllTextAsync(ruleset, nft.Stdout);
            await NetnsLab.ExecCheckedAsync(gw, "/usr/sbin/nft", "-f", ruleset);
            await NetnsLab.ExecCheckedAsync(plant, "/usr/sbin/nft", "-f", probeRules);
            output.WriteLine(nft.Stdout);

            // Phase 1, forwarding still on (a misconfigured gateway): the ruleset's forward chain alone stops everything.
            var forwardedTcp = await NetnsLab.TcpSweepAsync(site, PlantPlc, SweepPorts);
            var forwardedUdp = await NetnsLab.UdpSweepAsync(site, PlantPlc, UdpProbePorts);
            AssertNothingAnswers(forwardedTcp, "site -> plant, forwarding on, ruleset loaded");
            AssertNothingAnswers(forwardedUdp, "site -> plant UDP, forwarding on, ruleset loaded");
            var forwardedTcp6 = await NetnsLab.TcpSweepAsync(site, PlantPlc6, SweepPorts);
            var forwardedUdp6 = await NetnsLab.UdpSweepAsync(site, PlantPlc6, UdpProbePorts);
            AssertNothingAnswers(forwardedTcp6, "site -> plant over IPv6, forwarding on, ruleset loaded");
            AssertNothingAnswers(forwardedUdp6, "site -> plant UDP over IPv6, forwarding on, ruleset loaded");
            var (forwardDropped, _) = await CounterAsync(gw, "inet edgeshield", "routed packets");
            Assert.True(forwardDropped >= 1000, $"the forward chain counted {forwardDropped} routed packets; the sweep sent over 1000");
            output.WriteLine($"control (no ruleset, forwarding on): {controlTcp}, UDP {controlUdp}, {controlPackets} packets counted in the plant");
            output.WriteLine($"IPv6 control: {controlTcp6}, UDP {controlUdp6}, {controlPackets6} packets counted in the plant");
            output.WriteLine($"ruleset, forwarding on: TCP {forwardedTcp}; UDP {forwardedUdp}; IPv6 TCP {forwardedTcp6}; IPv6 UDP {forwardedUdp6}; forward chain dropped {forwardDropped} packets");

            // Phase 2, as shipped: forwarding off, the ruleset loaded, EdgeShield running.
            await SetForwardingAsync(gw, on: false);
            var gateway = Start(running, NetnsLab.EdgeShield(gw, "run", "--config", config));
            Assert.True(await gateway.WaitForStderrAsync("listener hmi-plc1 on ", 60_000), "gateway did not start:\n" + gateway.Stderr);
            await Until(() => Telemetry(sub.Stdout).Count >= 5, 60_000, () => "no telemetry at the site broker:\n" + sub.Stdout + "\ngateway:\n" + gateway.Stderr);

            foreach (var (plcAddress, gatewaySite, gatewayPlant, family) in ((string, string, string, string)[])[
                (PlantPlc, GatewaySite, GatewayPlant, "IPv4"), (PlantPlc6, GatewaySite6, GatewayPlant6, "IPv6")])
            {
                var sweeps = await Task.WhenAll(
                    NetnsLab.TcpSweepAsync(site, plcAddress, SweepPorts),
                    NetnsLab.TcpSweepAsync(site, gatewaySite, SweepPorts),
                    NetnsLab.TcpSweepAsync(site, gatewayPlant, SweepPorts));
                AssertNothingAnswers(sweeps[0], $"site -> plant PLC address over {family}");
                AssertNothingAnswers(sweeps[1], $"site -> gateway site address over {family}");
                AssertNothingAnswers(sweeps[2], $"site -> gateway plant address over {family}");
                var udpSweeps = await Task.WhenAll(
                    NetnsLab.UdpSweepAsync(site, plcAddress, UdpProbePorts),
                    NetnsLab.UdpSweepAsync(site, gatewaySite, UdpProbePorts));
                AssertNothingAnswers(udpSweeps[0], $"site -> plant UDP over {family}");
                AssertNothingAnswers(udpSweeps[1], $"site -> gateway UDP over {family}");
                output.WriteLine($"as shipped, {family}: site -> PLC {sweeps[0]}; -> gateway site address {sweeps[1]}; -> gateway plant address {sweeps[2]}; UDP -> PLC {udpSweeps[0]}; UDP -> gateway {udpSweeps[1]}");
            }

            // Commands from the site: every command-like topic, retained and not, JSON and Modbus bytes.
            string modbusWrite = Path.Combine(dir, "fc6.bin");
            await File.WriteAllBytesAsync(modbusWrite, [0, 1, 0, 0, 0, 6, 1, 6, 0, 0, 0, 42]);
            string attack = Path.Combine(dir, "attack.sh");
            await File.WriteAllTextAsync(attack, $$$"""
                set -u
                pub() { /usr/bin/mosquitto_pub -h {{{Broker}}} -q 1 "$@"; }
                n=0
                for t in spBv1.0/lab/NCMD/gw1 spBv1.0/lab/DCMD/gw1/plc1 spBv1.0/STATE/scada spBv1.0/lab/NBIRTH/gw1 \
                         lab/gw1/plc1/level/set lab/gw1/plc1/level/write lab/gw1/plc1/level/cmd lab/gw1/plc1/flow/set \
                         lab/gw1/plc1/set lab/gw1/plc1/cmd lab/gw1/set lab/gw1/cmd lab/gw1/write lab/gw1/status \
                         lab/gw1/events lab/gw1/plc1/level lab/gw1/plc1 modbus/plc1/write edgeshield/lab/gw1/cmd \
                         cmd set write '$SYS/cmd'; do
                  pub -t "$t" -m '{"v":42,"value":42,"write":{"unit":1,"function":6,"address":0,"value":42}}' && n=$((n+1))
                  pub -t "$t" -r -m 'Node Control/Rebirth=true' && n=$((n+1))
                  pub -t "$t" -f {{{modbusWrite}}} && n=$((n+1))
                done
                for i in $(seq 1 100); do
                  pub -t "lab/gw1/plc1/r$i/set" -m "$i" && n=$((n+1))
                done
                echo "published $n"
                """);
            string published = await NetnsLab.ExecCheckedAsync(site, "/bin/bash", attack);
            output.WriteLine(published);
            Assert.Contains("published 169", published, StringComparison.Ordinal);
            await Until(() => CountLines(sub.Stdout, "lab/gw1/plc1/r") >= 100, 30_000, () => "the broker did not pass the attacker's messages on:\n" + sub.Stdout);
            // Time for anything the commands could have caused to reach the PLC before it is counted.
            await Task.Delay(2000);

            // The plant side: the listener and nothing else (decoys listen on 22, 80, 1883, 5020, 8080 in the gateway).
            var fromPlant = await NetnsLab.TcpSweepAsync(plant, GatewayPlant, SweepPorts, timeoutSeconds: 5);
            Assert.True(fromPlant.Open.SequenceEqual([502]) && fromPlant.Refused.Length == 0, "plant -> gateway: " + fromPlant);
            output.WriteLine($"plant -> gateway: {fromPlant}");
            var insideGateway = await NetnsLab.TcpSweepAsync(gw, "127.0.0.1", GatewayDecoysTcp + ",502", timeoutSeconds: 5);
            Assert.True(insideGateway.Open.SequenceEqual([22, 80, 502, 1883, 5020, 8080]), "the decoys must listen for the sweep to mean anything: " + insideGateway);
            var read = await Processes.RunAsync(NetnsLab.Exec(plant, "/usr/bin/mbpoll", "-m", "tcp", "-p", "502", "-a", "1", "-r", "1", "-c", "2", "-t", "4", "-1", "-o", "5", GatewayPlant), 60_000);
            Assert.True(read.ExitCode == 0, "plant HMI read through the listener: " + read.Stdout + read.Stderr);
            // The write counter works: one write straight to the PLC from the plant side is counted.
            var direct = await Processes.RunAsync(NetnsLab.Exec(plant, "/usr/bin/mbpoll", "-m", "tcp", "-p", "502", "-a", "1", "-r", "10", "-t", "4", "-1", "-o", "5", PlantPlc, "7"), 60_000);
            Assert.True(direct.ExitCode == 0, "control write: " + direct.Stdout + direct.Stderr);

            var (sitePackets, siteBytes) = await CounterAsync(plant, "inet probe", "from-site");
            var (sitePackets6, siteBytes6) = await CounterAsync(plant, "inet probe", "v6-from-site");
            var (gatewayPackets, _) = await CounterAsync(plant, "inet probe", "from-gateway");
            plc.Signal(Processes.SIGTERM);
            Assert.Equal(0, await plc.WaitForExitAsync(30_000));
            var functions = FunctionCounts(plc.Stdout);
            output.WriteLine($"bytes from site to plant: {siteBytes} ({sitePackets} packets), over IPv6 {siteBytes6} ({sitePackets6} packets); from the gateway: {gatewayPackets} packets; PLC: {plc.Stdout}");

            Assert.Equal(0, sitePackets);
            Assert.Equal(0, siteBytes);
            Assert.Equal(0, sitePackets6);
            Assert.Equal(0, siteBytes6);
            Assert.True(gatewayPackets > 0, "the plant counter saw nothing from the gateway either: it does not count");
            Assert.Equal(1, functions.GetValueOrDefault(6));
            foreach (byte write in (byte[])[5, 15, 16, 21, 22, 23, 8])
            {
                Assert.True(functions.GetValueOrDefault(write) == 0, $"fc {write} reached the PLC: {plc.Stdout}");
            }
            Assert.True(functions.GetValueOrDefault(3) > 0 && functions.GetValueOrDefault(4) > 0, "the poller's reads reached the PLC: " + plc.Stdout);
        }
        finally
        {
            foreach (var process in running)
            {
                await process.DisposeAsync();
            }
            Directory.Delete(dir, recursive: true);
        }
    }

    private static Processes.Running Start(List<Processes.Running> running, System.Diagnostics.ProcessStartInfo start)
    {
        var process = new Processes.Running(start);
        running.Add(process);
        return process;
    }

    private static async Task SetForwardingAsync(string ns, bool on)
    {
        string value = on ? "1" : "0";
        await NetnsLab.ExecCheckedAsync(ns, "/usr/sbin/sysctl", "-qw", $"net.ipv4.ip_forward={value}", $"net.ipv6.conf.all.forwarding={value}");
        Assert.Equal(value, (await NetnsLab.ExecCheckedAsync(ns, "/bin/cat", "/proc/sys/net/ipv4/ip_forward")).Trim());
    }

    private static void AssertNothingAnswers(TcpSweep sweep, string what) =>
        Assert.True(sweep.Open.Length == 0 && sweep.Refused.Length == 0 && sweep.Errors == "{}", $"{what}: {sweep}");

    private static void AssertNothingAnswers(UdpSweep sweep, string what) =>
        Assert.True(sweep.Answered.Length == 0 && sweep.Refused.Length == 0, $"{what}: {sweep}");

    /// <summary>The packets and bytes of the counter rule whose comment starts with <paramref name="comment"/>.</summary>
    private static async Task<(long Packets, long Bytes)> CounterAsync(string ns, string table, string comment)
    {
        string listing = await NetnsLab.ExecCheckedAsync(ns, "/usr/sbin/nft", ["list", "table", .. table.Split(' ')]);
        foreach (var line in listing.Split('\n'))
        {
            if (line.Contains($"comment \"{comment}", StringComparison.Ordinal) && CounterText().Match(line) is { Success: true } m)
            {
                return (long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
            }
        }
        throw new Xunit.Sdk.XunitException($"no counter '{comment}' in {table}:\n{listing}");
    }

    [GeneratedRegex(@"counter packets (\d+) bytes (\d+)")]
    private static partial Regex CounterText();

    private static List<string> Telemetry(string lines) =>
        [.. lines.Split('\n').Where(l => l.StartsWith("lab/gw1/plc1/level {", StringComparison.Ordinal) && l.Contains("\"q\":\"good\"", StringComparison.Ordinal))];

    private static int CountLines(string lines, string prefix) => lines.Split('\n').Count(l => l.StartsWith(prefix, StringComparison.Ordinal));

    /// <summary>The simulator's "  fc N: COUNT" lines, printed when it stops.</summary>
    private static Dictionary<int, long> FunctionCounts(string stdout)
    {
        var counts = new Dictionary<int, long>();
        foreach (Match m in FunctionLine().Matches(stdout))
        {
            counts[int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)] = long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        }
        return counts;
    }

    [GeneratedRegex(@"^\s*fc (\d+): (\d+)", RegexOptions.Multiline)]
    private static partial Regex FunctionLine();

    private static async Task Until(Func<bool> condition, int timeoutMs, Func<string> why)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        bool reached;
        while (!(reached = condition()) && sw.ElapsedMilliseconds < timeoutMs)
        {
            await Task.Delay(100);
        }
        Assert.True(reached, why());
    }
}
