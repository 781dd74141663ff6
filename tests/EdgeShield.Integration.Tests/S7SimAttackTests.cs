using System.Text.Json;

namespace EdgeShield.Integration.Tests;

/// <summary>
/// <c>edgeshield-sim attack --protocol s7comm</c> through <c>edgeshield run</c> with a restrictive S7 policy in front of
/// snap7's server: the server's event log is the judge of what reached the PLC.
/// </summary>
public sealed class S7SimAttackTests
{
    [Fact]
    public async Task EveryS7Scenario_ThroughTheGateway_NoForbiddenJobReachesSnap7Server()
    {
        await using var server = await Snap7Peer.StartServerAsync();
        await using var gateway = await S7SimGateway.StartAsync(server.Port);

        var run = await Processes.RunAsync(Processes.EdgeShieldSim("attack", "--protocol", "s7comm", "--target", $"127.0.0.1:{gateway.Port}",
            "--timeout-ms", "3000", "--partial", "16", "--json"), 300_000);
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        using var json = JsonDocument.Parse(run.Stdout);
        var cases = new Dictionary<string, JsonElement>();
        foreach (var scenario in json.RootElement.GetProperty("scenarios").EnumerateArray())
        {
            foreach (var c in scenario.GetProperty("cases").EnumerateArray())
            {
                cases[c.GetProperty("name").GetString()!] = c.Clone();
            }
        }
        string all = string.Join('\n', cases.Values.Select(c => c.GetProperty("outcome").GetString()));
        Assert.True(cases.Count == EdgeShield.Simulators.S7AttackSuite.CaseNames.Count, all);
        Assert.True(json.RootElement.GetProperty("frames_sent").GetInt32() > 100, all);

        // Refused as a PLC refuses: functions with Ack_Data 87 03, items with 03, userdata with D0A1.
        foreach (string name in (string[])["plc-stop", "pi-hot-start", "pi-cold-start", "pi-delete-block", "pi-copy-ram-to-rom", "pi-compress",
            "request-download", "download-block", "download-ended", "pi-insert-block", "start-upload", "upload", "end-upload"])
        {
            Assert.True(Outcome(cases[name]) == "exception 87 (Ack_Data error 8703)", all);
        }
        foreach (string name in (string[])["clear-password", "force-userdata", "set-clock"])
        {
            Assert.True(Outcome(cases[name]) == "exception D0 (userdata error D0A1)", all);
        }
        foreach (string name in (string[])["write-q-byte", "write-q-bit", "write-q-word-and-allowed-db", "write-peripheral"])
        {
            Assert.True(Outcome(cases[name]) == "exception 03 (item return code 03)", all);
        }
        var guesses = cases["password-guess"];
        Assert.True(guesses.GetProperty("exceptions").GetInt32() == 32 && guesses.GetProperty("normal").GetInt32() == 0, all);
        // A legitimate read in fragments is reassembled and answered; a stop in fragments is refused like a whole one.
        Assert.True(Outcome(cases["fragmented-read"]).StartsWith("answered normally", StringComparison.Ordinal), all);
        Assert.True(Outcome(cases["fragmented-stop"]).StartsWith("exception 87", StringComparison.Ordinal), all);
        // Never completed: never answered (the gateway holds or drops the fragments, never forwards them).
        Assert.True(cases["never-completed"].GetProperty("normal").GetInt32() == 0 && cases["never-completed-many"].GetProperty("normal").GetInt32() == 0, all);
        // Oversize PDUs and bad COTP: the connection is closed, nothing answered normally.
        foreach (string name in (string[])["oversize-single-dt", "oversize-fragments", "data-before-connect", "unknown-tpdu", "dt-li-3", "tpkt-length-5",
            "li-beyond-tpkt", "cr-class-4", "cr-tpdu-size-14", "cr-twice", "tpkt-version-2", "http-get"])
        {
            Assert.True(cases[name].GetProperty("normal").GetInt32() == 0 && cases[name].GetProperty("closed").GetInt32() >= 1, name + "\n" + all);
        }

        // The gateway still serves, and then the server's log is complete.
        var read = await Snap7Peer.RunClientAsync("127.0.0.1", gateway.Port, "op", "db-read", "1", "0", "4");
        Assert.True(read.Ok, read.ToString());
        await server.WaitForDisconnectsAsync(60_000);
        var events = server.Events;
        string log = string.Join('\n', events);
        Assert.DoesNotContain(events, e => e.Code is Snap7Event.Control or Snap7Event.Upload or Snap7Event.Download or Snap7Event.Security or Snap7Event.Clock);
        Assert.DoesNotContain(events, e => e.Code == Snap7Event.DataWrite);
        // What did reach it: reads inside the policy only (DB1 bytes 0..127: the fragmented read and the final one).
        Assert.All(events.Where(e => e.Code == Snap7Event.DataRead), e => Assert.True(e.Param1 == Snap7Event.AreaDb && e.Param2 == 1 && e.Param3 + e.Param4 <= 128, log));
        Assert.Contains(events, e => e.Code == Snap7Event.DataRead && e.Param3 == 0 && e.Param4 == 20);
        // Every job that reached the server is one of those reads, a block list, or the PDU negotiation of a connect.
        Assert.All(events.Where(e => e.IsJob), e => Assert.True(e.Code is Snap7Event.DataRead or Snap7Event.Directory, log));
    }

    private static string Outcome(JsonElement c) => c.GetProperty("outcome").GetString()!.Split(": ", 2)[1];
}
