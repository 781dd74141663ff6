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
    public async Task HmiLoad_SilentPlc_CountsTimeouts()
    {
        await using var plc = await Plc.StartAsync();
        plc.Faults.Silent = true;
        var result = await HmiLoad.RunAsync(plc.EndPoint, new HmiOptions { Duration = TimeSpan.FromMilliseconds(700), TimeoutMs = 200 }, CancellationToken.None);
        Assert.True(result.Timeouts >= 2, $"timeouts {result.Timeouts}");
        Assert.Equal(0, result.ResponsesOk);
    }

    [Fact]
    public async Task HmiLoad_WrongTransactionId_CountsMismatches()
    {
        await using var plc = await Plc.StartAsync();
        plc.Faults.WrongTransactionId = true;
        var result = await HmiLoad.RunAsync(plc.EndPoint, new HmiOptions { Duration = TimeSpan.FromMilliseconds(300) }, CancellationToken.None);
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

    [Fact]
    public async Task AttackSuite_EveryCase_BoundedWithExpectedOutcomes()
    {
        await using var plc = await Plc.StartAsync();
        var watch = Stopwatch.StartNew();
        var options = new AttackOptions { AnswerTimeoutMs = 300, FloodConnections = 300 };
        var results = await AttackSuite.RunAllAsync(plc.EndPoint, options, CancellationToken.None);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"took {watch.Elapsed}");

        Assert.Equal(AttackSuite.CaseNames.Count, results.Count);
        var byName = results.ToDictionary(r => r.Name);
        foreach (var name in new[] { "protocol-id-nonzero", "mbap-length-0", "mbap-length-1", "mbap-length-255", "mbap-length-65535", "length-longer-than-pdu", "length-shorter-than-pdu", "truncated-header", "http-get", "tls-client-hello" })
        {
            Assert.True(byName[name].Outcome == ProbeOutcome.ConnectionClosed, $"{name}: {byName[name]}");
        }
        foreach (var name in new[] { "fc90-umas", "fc65-user-defined", "fc100-user-defined", "fc43-13-canopen" })
        {
            Assert.Equal(ProbeOutcome.Exception, byName[name].Outcome);
            Assert.Equal(0x01, byName[name].ExceptionCode);
        }
        Assert.Equal(ProbeOutcome.Normal, byName["fc6-write-register"].Outcome);
        Assert.Equal(ProbeOutcome.NoAnswer, byName["fc8-force-listen-only"].Outcome);
        Assert.Equal(525, byName["scan-fc3"].Normal);
        Assert.Equal(256, byName["oversize-burst"].Normal);
        Assert.Equal(300, byName["conn-flood"].Normal);
        Assert.Equal("fc90-umas: exception 01", byName["fc90-umas"].ToString());

        // Nine framing attacks reach the PLC's framer as malformed; the truncated header ends a stream.
        Assert.Equal(9, plc.MalformedFrames);
        Assert.Equal(1, plc.TruncatedFrames);
        Assert.Equal(1, plc.RequestsReceived(90));
        await ConnectionTests.WaitForAsync(() => plc.ActiveConnections == 0);
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
        await demo.RunAsync(TimeSpan.FromSeconds(1), CancellationToken.None);

        Assert.True(demo.Fc90Sent && demo.MalformedSent);
        Assert.True(demo.Responses > 20, $"responses {demo.Responses}");
        Assert.Equal(1, demo.Exceptions(0x01));
        Assert.Equal(1, demo.ClosedConnections);
        Assert.Equal(1, plc.MalformedFrames);
        Assert.Equal(1, plc.RequestsReceived(90));
        Assert.True(plc.RequestsReceived(5) > 0 && plc.RequestsReceived(6) > 0);
        Assert.True(plc.GetCoil(1, 10));
    }
}
