using System.Diagnostics;

namespace EdgeShield.Simulators.Tests;

public class LoadAndAttackTests
{
    [Fact]
    public async Task HmiLoad_AgainstSimulator_AnswersEverythingWithoutErrors()
    {
        await using var plc = await Plc.StartAsync();
        var result = await HmiLoad.RunAsync(plc.EndPoint, new HmiOptions { Connections = 4, Duration = TimeSpan.FromSeconds(1), Pipeline = 2 }, CancellationToken.None);

        Assert.True(result.RequestsPerSecond > 0);
        Assert.Equal(0, result.Errors);
        Assert.Equal(0, result.TotalExceptions);
        Assert.True(result.ResponsesOk > 100, $"only {result.ResponsesOk} responses");
        Assert.True(result.P50Us > 0 && result.P50Us <= result.P99Us && result.P99Us <= result.P999Us);
        // Every answered request reached the PLC; the ones in flight at the end may have too.
        Assert.InRange(plc.TotalRequests, result.ResponsesOk, result.Requests);
        Assert.True(plc.RequestsReceived(1) > 0 && plc.RequestsReceived(3) > 0 && plc.RequestsReceived(4) > 0 && plc.RequestsReceived(6) > 0 && plc.RequestsReceived(16) > 0);
        Assert.Equal(0, plc.MalformedFrames);
    }

    [Fact]
    public async Task HmiLoad_WithInterval_ReportsEveryIntervalOnce_SummingToTheRun()
    {
        await using var plc = await Plc.StartAsync();
        var reported = new List<HmiInterval>();
        var result = await HmiLoad.RunAsync(plc.EndPoint, new HmiOptions
        {
            Connections = 3,
            Duration = TimeSpan.FromMilliseconds(1500),
            Interval = TimeSpan.FromMilliseconds(500),
            OnInterval = i => { lock (reported) { reported.Add(i); } },
        }, CancellationToken.None);

        Assert.Equal([0, 1, 2], reported.Select(i => i.Index));
        Assert.Equal(reported, result.Intervals);
        Assert.Equal(result.ResponsesOk, reported.Sum(i => i.Answered));
        Assert.All(reported, i => Assert.True(i.Errors == 0 && i.P50Us <= i.P99Us && i.P99Us <= i.MaxUs, i.ToString()));
        Assert.Equal(0.5, reported[1].StartSeconds, 3);
    }

    [Fact]
    public async Task HmiLoad_SilentPlc_CountsTimeouts()
    {
        await using var plc = await Plc.StartAsync();
        plc.Faults.Silent = true;
        // 1.5 s (not 0.7 s): a loaded machine's late timers must still fit two 200 ms timeouts in.
        var result = await HmiLoad.RunAsync(plc.EndPoint, new HmiOptions { Duration = TimeSpan.FromMilliseconds(1500), TimeoutMs = 200 }, CancellationToken.None);
        Assert.True(result.Timeouts >= 2, $"timeouts {result.Timeouts}");
        Assert.Equal(0, result.ResponsesOk);
    }

    [Fact]
    public async Task HmiLoad_WrongTransactionId_CountsMismatches()
    {
        await using var plc = await Plc.StartAsync();
        plc.Faults.WrongTransactionId = true;
        // 1 s (not 300 ms): a worker started late on a loaded machine finds its deadline passed and sends nothing.
        var result = await HmiLoad.RunAsync(plc.EndPoint, new HmiOptions { Duration = TimeSpan.FromSeconds(1) }, CancellationToken.None);
        Assert.True(result.Mismatched > 0);
        Assert.Equal(0, result.ResponsesOk);
    }

    [Fact]
    public void LatencyHistogram_PercentilesWithinBucketPrecision()
    {
        var h = new LatencyHistogram();
        for (int i = 1; i <= 1000; i++)
        {
            h.Record(i);
        }
        Assert.InRange(h.Percentile(50), 500, 516);
        Assert.InRange(h.Percentile(99), 990, 1000);
        Assert.Equal(1000, h.Percentile(100));
        Assert.Equal(1000, h.Count);
    }

    /// <summary>Small enough for CI: every case runs, with the connection cases scaled down.</summary>
    internal static AttackOptions SmallAttack => new()
    {
        AnswerTimeoutMs = 2000,
        FloodConnections = 100,
        HalfOpenConnections = 100,
        HalfOpenHoldMs = 200,
        SlowlorisConnections = 2,
        SlowlorisByteIntervalMs = 50,
        SlowlorisDuration = TimeSpan.FromMilliseconds(1500),
        TidCollisionRounds = 8,
        CaseTimeLimit = TimeSpan.FromSeconds(30),
    };

    [Fact]
    public async Task AttackSuite_EveryScenarioAgainstBarePlc_BoundedWithExpectedOutcomes()
    {
        // Against the bare PLC simulator (no gateway): what an unprotected PLC lets through.
        await using var plc = await Plc.StartAsync();
        var watch = Stopwatch.StartNew();
        var scenarios = new List<AttackScenarioResult>();
        foreach (var name in AttackSuite.ScenarioNames)
        {
            scenarios.Add(await AttackSuite.RunScenarioAsync(plc.EndPoint, name, SmallAttack, CancellationToken.None));
        }
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), $"took {watch.Elapsed}");

        var byName = scenarios.SelectMany(s => s.Cases).ToDictionary(r => r.Name);
        Assert.Equal(AttackSuite.CaseNames.Count, byName.Count);
        foreach (var name in AttackSuite.CasesOf("malformed").Append("inject-fc3-response").Append("inject-fc1-response").Append("inject-fc16-response"))
        {
            Assert.True(byName[name].Closed == byName[name].Connections && byName[name].ConnectFailed == 0, $"{name}: {byName[name]}");
        }
        foreach (var name in new[] { "fc90-umas", "fc65-user-defined", "fc100-user-defined", "fc43-13-canopen", "inject-exception-response" })
        {
            Assert.Equal(ProbeOutcome.Exception, byName[name].Outcome);
            Assert.Equal(0x01, byName[name].ExceptionCode);
        }
        // The bare PLC executes what a firewall must refuse.
        Assert.Equal(ProbeOutcome.Normal, byName["fc6-write-register"].Outcome);
        Assert.Equal(ProbeOutcome.NoAnswer, byName["fc8-force-listen-only"].Outcome);
        Assert.Equal(256, byName["value-sweep-fc6"].Normal);
        Assert.Equal(65535, plc.RegisterValuesWritten.Last);
        Assert.Equal(525, byName["scan-fc3"].Normal);
        Assert.Equal(256, byName["oversize-burst"].Normal);
        Assert.Equal(100, byName["conn-flood"].Normal);
        Assert.Equal(64, byName["tid-collision"].Normal);
        Assert.Equal(0, byName["tid-collision"].Mismatched);
        Assert.Equal(100, byName["half-open"].NoAnswer);
        Assert.Equal(10, byName["half-open"].Sent);
        Assert.True(byName["slowloris"].Sent >= 2 && byName["slowloris"].Normal == byName["slowloris"].Sent, byName["slowloris"].ToString());
        Assert.Equal("fc90-umas: exception 01", byName["fc90-umas"].ToString());
        var malformed = scenarios.Single(s => s.Name == "malformed");
        Assert.Equal(29, malformed.FramesSent);
        Assert.Contains("scenario malformed: frames sent 29 on 29 connections", malformed.ToString(), StringComparison.Ordinal);

        // 11 framing attacks + 16 garbage streams + 4 response-shaped frames reach the PLC's framer as
        // malformed; the truncated header and PDU, the slowloris hang-ups and the half-open partial headers end streams.
        Assert.Equal(31, plc.MalformedFrames);
        Assert.True(plc.TruncatedFrames >= 2 + 10, $"truncated {plc.TruncatedFrames}");
        Assert.True(plc.RequestsReceived(90) >= 9);
        Assert.True(plc.OutOfSpecRequests >= 256, $"out of spec {plc.OutOfSpecRequests}"); // the coil value sweep
        Assert.Equal(new TouchedRange(0, 65535), plc.ReadRange(EdgeShield.Protocols.Modbus.ModbusTable.HoldingRegisters));
        await ConnectionTests.WaitForAsync(() => plc.ActiveConnections == 0, 10_000);
    }

    [Fact]
    public void AttackSuite_Scenarios_CoverEveryCaseOnce()
    {
        var all = AttackSuite.ScenarioNames.SelectMany(AttackSuite.CasesOf).ToList();
        Assert.Equal(AttackSuite.CaseNames, all);
        Assert.Equal(all.Count, all.Distinct().Count());
        Assert.Equal(["malformed", "forbidden-functions", "address-sweep", "value-sweep", "tid-collision", "response-injection", "slowloris", "conn-flood", "half-open", "oversize-burst"], AttackSuite.ScenarioNames);
        Assert.Throws<ArgumentException>(() => AttackSuite.CasesOf("nope"));
    }

    [Fact]
    public async Task PlcWatch_RecordsTouchedRangesAndValues_ResetClears()
    {
        await using var plc = await Plc.StartAsync();
        var result = await HmiLoad.RunAsync(plc.EndPoint, new HmiOptions { Connections = 2, Duration = TimeSpan.FromSeconds(1) }, CancellationToken.None); // not 300 ms: see above
        Assert.True(result.ResponsesOk > 0);
        Assert.True(plc.WriteRange(EdgeShield.Protocols.Modbus.ModbusTable.HoldingRegisters).Within(100, 119));
        Assert.True(plc.ReadRange(EdgeShield.Protocols.Modbus.ModbusTable.HoldingRegisters).Within(0, 999));
        Assert.True(plc.RegisterValuesWritten.Within(0, 1000));
        Assert.True(plc.WriteRange(EdgeShield.Protocols.Modbus.ModbusTable.Coils).IsEmpty);
        Assert.Equal(0, plc.OutOfSpecRequests);
        plc.ResetCounters();
        Assert.True(plc.RegisterValuesWritten.IsEmpty);
        Assert.Equal("none", plc.ReadRange(EdgeShield.Protocols.Modbus.ModbusTable.InputRegisters).ToString());
    }

    [Fact]
    public async Task AttackSuite_UnknownCase_Throws()
    {
        await using var plc = await Plc.StartAsync();
        await Assert.ThrowsAsync<ArgumentException>(() => AttackSuite.RunCaseAsync(plc.EndPoint, "nope", new AttackOptions(), CancellationToken.None));
    }

    [Fact]
    public async Task DemoTraffic_SendsOneMalformedFrameAndOneFc90()
    {
        await using var plc = await Plc.StartAsync();
        var demo = new DemoTraffic(plc.EndPoint, new DemoTrafficOptions { IntervalMs = 5, ForbiddenEvery = 5 });
        await demo.RunAsync(TimeSpan.FromSeconds(2), CancellationToken.None);

        Assert.True(demo.Fc90Sent && demo.MalformedSent);
        Assert.True(demo.Responses > 0, $"responses {demo.Responses}");
        Assert.Equal(1, demo.Exceptions(0x01));
        Assert.Equal(1, demo.ClosedConnections);
        Assert.Equal(1, plc.MalformedFrames);
        Assert.Equal(1, plc.RequestsReceived(90));
        Assert.True(plc.RequestsReceived(5) > 0 && plc.RequestsReceived(6) > 0);
        Assert.True(plc.GetCoil(1, 10));
    }
}
