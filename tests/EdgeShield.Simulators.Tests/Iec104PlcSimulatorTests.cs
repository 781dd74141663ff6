using System.Net;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Simulators.Tests;

public sealed class Iec104PlcSimulatorTests
{
    private const int TimeoutMs = 15_000; // for frames that must come: generous, for a loaded CI machine
    private const byte SC = 45, DC = 46, RC = 47, SE_NC = 50, SE_NA = 48, SC_TA = 58, IC = 100, CI = 101, RD = 102, CS = 103;

    internal static Task<Iec104PlcSimulator> StartAsync(Iec104PlcOptions? options = null) =>
        Iec104PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), options ?? new Iec104PlcOptions { SpontaneousMs = 0 }, CancellationToken.None);

    internal static async Task<Iec104Client> ConnectAsync(Iec104PlcSimulator plc, bool start = true)
    {
        var client = await Iec104Client.ConnectAsync(plc.EndPoint, TimeoutMs, CancellationToken.None) ?? throw new InvalidOperationException("connect failed");
        if (start)
        {
            Assert.True(await client.StartAsync(TimeoutMs, CancellationToken.None), "no STARTDT con");
        }
        return client;
    }

    private static Task<Iec104Received?> NextAsduAsync(Iec104Client client, int timeoutMs = TimeoutMs) =>
        client.WaitAsync(static r => r.Format == Iec104Format.I, timeoutMs, CancellationToken.None);

    private static async Task<Iec104Received> ExpectAsync(Iec104Client client, byte type, byte cause, bool negative = false)
    {
        var r = await NextAsduAsync(client);
        Assert.True(r is not null, $"nothing while waiting for {Iec104Types.Name(type)} cause {cause}");
        string seen = Iec104Build.Describe(r.Value.Asdu);
        Assert.True(r.Value.Type == type && r.Value.Cause == cause && r.Value.Negative == negative, $"expected {Iec104Types.Name(type)} cause {cause}{(negative ? " negative" : "")}, got {seen}");
        return r.Value;
    }

    private static async Task<bool> IsClosedAsync(Iec104Client client)
    {
        var r = await client.WaitAsync(static _ => false, TimeoutMs, CancellationToken.None);
        return r is null && client.Closed;
    }

    [Fact]
    public async Task Iec104_StationInterrogation_ActconPointsActterm()
    {
        await using var plc = await StartAsync();
        using var c = await ConnectAsync(plc);
        await c.SendAsduAsync(Iec104Build.Asdu(IC, 6, 1, 0, [20]), CancellationToken.None);
        await ExpectAsync(c, IC, 7);
        var types = new List<byte>();
        int points = 0;
        while (true)
        {
            var r = await NextAsduAsync(c);
            Assert.NotNull(r);
            if (r.Value.Type == IC)
            {
                Assert.Equal(10, r.Value.Cause);
                break;
            }
            Assert.Equal(20, r.Value.Cause);
            Assert.True(Iec104Asdu.TryParse(r.Value.Asdu, out var asdu, out _));
            types.Add(asdu.Type);
            points += asdu.Count;
        }
        Assert.Equal([1, 3, 13, 11, 9, 13], types);
        Assert.Equal(60, points);
        Assert.Equal(1, plc.Interrogations);
        Assert.Equal(0, c.SequenceErrors);

        // A group (21: single points) and a global-CA interrogation answered with the station's CA.
        await c.SendAsduAsync(Iec104Build.Asdu(IC, 6, 0xFFFF, 0, [21]), CancellationToken.None);
        var con = await ExpectAsync(c, IC, 7);
        Assert.Equal(1, con.CommonAddress);
        var group = await ExpectAsync(c, 1, 21);
        Assert.Equal(100u, group.Ioa);
        await ExpectAsync(c, IC, 10);
    }

    [Fact]
    public async Task Iec104_CounterInterrogation_ReadAndClock()
    {
        await using var plc = await StartAsync();
        using var c = await ConnectAsync(plc);
        await c.SendAsduAsync(Iec104Build.Asdu(CI, 6, 1, 0, [5]), CancellationToken.None);
        await ExpectAsync(c, CI, 7);
        for (int i = 0; i < 10; i++)
        {
            var counter = await ExpectAsync(c, 15, 37);
            Assert.Equal(300u + (uint)i, counter.Ioa);
        }
        await ExpectAsync(c, CI, 10);

        await c.SendAsduAsync(Iec104Build.Asdu(RD, 5, 1, 200, []), CancellationToken.None);
        var read = await ExpectAsync(c, 13, 5);
        Assert.Equal(200u, read.Ioa);
        Assert.Equal(20f, Iec104Values.Float(read.Asdu[9..]));
        await c.SendAsduAsync(Iec104Build.Asdu(RD, 5, 1, 4242, []), CancellationToken.None);
        await ExpectAsync(c, RD, 47, negative: true);

        var set = new DateTime(2030, 6, 1, 12, 0, 0, DateTimeKind.Unspecified);
        await c.SendAsduAsync(Iec104Build.Asdu(CS, 6, 1, 0, Iec104Build.Time(set)), CancellationToken.None);
        await ExpectAsync(c, CS, 7);
        Assert.InRange(plc.Clock, set, set.AddMinutes(1));
    }

    [Fact]
    public async Task Iec104_SelectBeforeOperate_ExecuteWithoutSelectRefused_PairAccepted()
    {
        await using var plc = await StartAsync();
        using var c = await ConnectAsync(plc);
        // Execute without select: negative actcon, the point does not change.
        await c.SendAsduAsync(Iec104Build.Asdu(SC, 6, 1, 2000, [Iec104Build.Sco(true, select: false)]), CancellationToken.None);
        await ExpectAsync(c, SC, 7, negative: true);
        Assert.False(plc.SinglePoint(2000));

        // Select then an execute of another value: refused.
        await c.SendAsduAsync(Iec104Build.Asdu(SC, 6, 1, 2000, [Iec104Build.Sco(true, select: true)]), CancellationToken.None);
        await ExpectAsync(c, SC, 7);
        await c.SendAsduAsync(Iec104Build.Asdu(SC, 6, 1, 2000, [Iec104Build.Sco(false, select: false)]), CancellationToken.None);
        await ExpectAsync(c, SC, 7, negative: true);

        // Select + execute: actcon, the point reported spontaneously (M_SP_TB_1), actterm.
        await c.SendAsduAsync(Iec104Build.Asdu(SC, 6, 1, 2000, [Iec104Build.Sco(true, select: true)]), CancellationToken.None);
        await ExpectAsync(c, SC, 7);
        await c.SendAsduAsync(Iec104Build.Asdu(SC, 6, 1, 2000, [Iec104Build.Sco(true, select: false)]), CancellationToken.None);
        await ExpectAsync(c, SC, 7);
        var feedback = await ExpectAsync(c, 30, 3);
        Assert.Equal(2000u, feedback.Ioa);
        Assert.Equal(1, feedback.Asdu[9] & 1);
        await ExpectAsync(c, SC, 10);
        Assert.True(plc.SinglePoint(2000));

        // Double command with a time tag, and a regulating step.
        var now = Iec104Build.Time(new DateTime(2026, 12, 3, 8, 0, 0, DateTimeKind.Unspecified));
        await c.SendAsduAsync(Iec104Build.Asdu(59, 6, 1, 2001, [Iec104Build.Dco(2, select: true), .. now]), CancellationToken.None);
        await ExpectAsync(c, 59, 7);
        await c.SendAsduAsync(Iec104Build.Asdu(59, 6, 1, 2001, [Iec104Build.Dco(2, select: false), .. now]), CancellationToken.None);
        await ExpectAsync(c, 59, 7);
        await ExpectAsync(c, 31, 3);
        await ExpectAsync(c, 59, 10);
        Assert.Equal(2, plc.DoublePoint(2001));
        await c.SendAsduAsync(Iec104Build.Asdu(RC, 6, 1, 2002, [Iec104Build.Dco(2, select: true)]), CancellationToken.None);
        await ExpectAsync(c, RC, 7);
        await c.SendAsduAsync(Iec104Build.Asdu(RC, 6, 1, 2002, [Iec104Build.Dco(2, select: false)]), CancellationToken.None);
        await ExpectAsync(c, RC, 7);
        await ExpectAsync(c, 32, 3);
        await ExpectAsync(c, RC, 10);
        Assert.Equal(1, plc.StepPosition(2002));
        Assert.Equal(3, plc.Executes);
    }

    [Fact]
    public async Task Iec104_Setpoints_DirectExecuteAndReadBack()
    {
        await using var plc = await StartAsync();
        using var c = await ConnectAsync(plc);
        await c.SendAsduAsync(Iec104Build.Asdu(SE_NC, 6, 1, 3001, Iec104Build.SetpointFloat(42.5f, select: false)), CancellationToken.None);
        await ExpectAsync(c, SE_NC, 7);
        await ExpectAsync(c, 36, 3);
        await ExpectAsync(c, SE_NC, 10);
        Assert.Equal(42.5f, plc.Setpoint(3001));
        await c.SendAsduAsync(Iec104Build.Asdu(SE_NA, 6, 1, 3002, Iec104Build.SetpointInt16(16384, select: false)), CancellationToken.None);
        await ExpectAsync(c, SE_NA, 7);
        await ExpectAsync(c, 36, 3);
        await ExpectAsync(c, SE_NA, 10);
        Assert.Equal(0.5f, plc.Setpoint(3002));
        await c.SendAsduAsync(Iec104Build.Asdu(RD, 5, 1, 3001, []), CancellationToken.None);
        var read = await ExpectAsync(c, 13, 5);
        Assert.Equal(42.5f, Iec104Values.Float(read.Asdu[9..]));
    }

    [Fact]
    public async Task Iec104_Refusals_UnknownTypeCaIoaCauseQualifier()
    {
        await using var plc = await StartAsync();
        using var c = await ConnectAsync(plc);
        // Unknown type, a monitor type from a client, a type the station does not serve (bitstring).
        await c.SendAsduAsync([99, 1, 6, 0, 1, 0, 0, 0, 0, 1], CancellationToken.None);
        await ExpectAsync(c, 99, 44, negative: true);
        await c.SendAsduAsync(Iec104Build.Asdu(1, 3, 1, 100, [1]), CancellationToken.None);
        await ExpectAsync(c, 1, 44, negative: true);
        await c.SendAsduAsync(Iec104Build.Asdu(51, 6, 1, 2000, [0, 0, 0, 0]), CancellationToken.None);
        await ExpectAsync(c, 51, 44, negative: true);
        // Unknown CA, and the global CA for a command.
        await c.SendAsduAsync(Iec104Build.Asdu(SC, 6, 7, 2000, [Iec104Build.Sco(true, true)]), CancellationToken.None);
        await ExpectAsync(c, SC, 46, negative: true);
        await c.SendAsduAsync(Iec104Build.Asdu(SC, 6, 0xFFFF, 2000, [Iec104Build.Sco(true, true)]), CancellationToken.None);
        await ExpectAsync(c, SC, 46, negative: true);
        // Unknown IOA, wrong cause, DCO 3 (not permitted), interrogation QOI 5.
        await c.SendAsduAsync(Iec104Build.Asdu(SC, 6, 1, 5000, [Iec104Build.Sco(true, true)]), CancellationToken.None);
        await ExpectAsync(c, SC, 47, negative: true);
        await c.SendAsduAsync(Iec104Build.Asdu(SC, 3, 1, 2000, [Iec104Build.Sco(true, true)]), CancellationToken.None);
        await ExpectAsync(c, SC, 45, negative: true);
        await c.SendAsduAsync(Iec104Build.Asdu(DC, 6, 1, 2000, [Iec104Build.Dco(3, true)]), CancellationToken.None);
        await ExpectAsync(c, DC, 7, negative: true);
        await c.SendAsduAsync(Iec104Build.Asdu(IC, 6, 1, 0, [5]), CancellationToken.None);
        await ExpectAsync(c, IC, 7, negative: true);
        // A forged confirmation from the client (cause 7): unknown cause for the station.
        await c.SendAsduAsync(Iec104Build.Asdu(SC, 7, 1, 2000, [Iec104Build.Sco(true, false)]), CancellationToken.None);
        await ExpectAsync(c, SC, 45, negative: true);
        Assert.Equal(3, plc.Negatives(44));
        Assert.Equal(2, plc.Negatives(46));
        Assert.Equal(0, plc.Executes);
        Assert.False(c.Closed);
    }

    [Fact]
    public async Task Iec104_TestFrame_AnsweredBeforeAndAfterStart_AndNoIFrameBeforeStartDtCon()
    {
        await using var plc = await StartAsync(new Iec104PlcOptions { SpontaneousMs = 50 });
        using var c = await ConnectAsync(plc, start: false);
        await c.SendUAsync(Iec104UFunction.TestFrAct, CancellationToken.None);
        var con = await c.WaitAsync(static r => r.Format != Iec104Format.S, TimeoutMs, CancellationToken.None);
        Assert.Equal(Iec104UFunction.TestFrCon, con?.Function);
        await Task.Delay(300); // spontaneous changes happen, none may reach a connection not started
        Assert.True(await c.StartAsync(TimeoutMs, CancellationToken.None));
        Assert.Equal(0, c.IFramesBeforeStart);
        var spontaneous = await NextAsduAsync(c);
        Assert.Equal((byte)3, spontaneous?.Cause);
        await c.SendUAsync(Iec104UFunction.StopDtAct, CancellationToken.None);
        Assert.NotNull(await c.WaitAsync(static r => r.Function == Iec104UFunction.StopDtCon, TimeoutMs, CancellationToken.None));
        await c.SendUAsync(Iec104UFunction.TestFrAct, CancellationToken.None);
        Assert.NotNull(await c.WaitAsync(static r => r.Function == Iec104UFunction.TestFrCon, TimeoutMs, CancellationToken.None));
    }

    [Fact]
    public async Task Iec104_SequenceError_ClosesAndIsLogged()
    {
        var log = new List<string>();
        await using var plc = await StartAsync(new Iec104PlcOptions { SpontaneousMs = 0, Log = m => { lock (log) { log.Add(m); } } });
        using var c = await ConnectAsync(plc);
        await c.SendAsduAsync(Iec104Build.Asdu(RD, 5, 1, 100, []), CancellationToken.None);
        await ExpectAsync(c, 1, 5);
        c.SendSequence = 5; // skips 1..4
        await c.SendAsduAsync(Iec104Build.Asdu(RD, 5, 1, 100, []), CancellationToken.None);
        Assert.True(await IsClosedAsync(c));
        Assert.Equal(1, plc.SequenceErrors);
        lock (log)
        {
            Assert.Contains(log, m => m.Contains("sequence error: N(S) 5, expected 1", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData(new byte[] { 0x68, 0x04, 0x47, 0x00, 0x00, 0x00 }, "more than one function")] // STARTDT act + TESTFR act
    [InlineData(new byte[] { 0x68, 0xFE, 0x00 }, "above 253")]
    [InlineData(new byte[] { 0x68, 0x0E, 0x00, 0x00, 0x00, 0x00, 45, 0x01, 6, 0, 1, 0, 0xD0, 0x07, 0x00, 0x81 }, "")] // I-frame before STARTDT
    public async Task Iec104_BadFrames_Close(byte[] frame, string logged)
    {
        var log = new List<string>();
        await using var plc = await StartAsync(new Iec104PlcOptions { SpontaneousMs = 0, Log = m => { lock (log) { log.Add(m); } } });
        using var c = await ConnectAsync(plc, start: false);
        await c.SendRawAsync(frame, CancellationToken.None);
        Assert.True(await IsClosedAsync(c));
        lock (log)
        {
            Assert.Contains(log, m => m.Contains(logged.Length > 0 ? logged : "before STARTDT", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Iec104_LengthLies_Close()
    {
        await using var plc = await StartAsync();
        using var c = await ConnectAsync(plc);
        // C_SC_NA_1 with N = 3 but one object.
        await c.SendAsduAsync([SC, 3, 6, 0, 1, 0, 0xD0, 0x07, 0x00, 0x81], CancellationToken.None);
        Assert.True(await IsClosedAsync(c));
        Assert.Equal(1, plc.MalformedFrames);
    }

    [Fact]
    public async Task Iec104_TwoClients_OwnSequenceNumbers_BothGetSpontaneousAndFeedback()
    {
        await using var plc = await StartAsync();
        using var a = await ConnectAsync(plc);
        using var b = await ConnectAsync(plc);
        for (int i = 0; i < 3; i++)
        {
            await a.SendAsduAsync(Iec104Build.Asdu(RD, 5, 1, 100, []), CancellationToken.None);
            await ExpectAsync(a, 1, 5);
        }
        await b.SendAsduAsync(Iec104Build.Asdu(SC_TA, 6, 1, 2005, [Iec104Build.Sco(true, true), .. Iec104Build.Time(DateTime.Now)]), CancellationToken.None);
        await ExpectAsync(b, SC_TA, 7);
        await b.SendAsduAsync(Iec104Build.Asdu(SC_TA, 6, 1, 2005, [Iec104Build.Sco(true, false), .. Iec104Build.Time(DateTime.Now)]), CancellationToken.None);
        await ExpectAsync(b, SC_TA, 7);
        await ExpectAsync(b, 30, 3);
        await ExpectAsync(b, SC_TA, 10);
        // The other client sees the change spontaneously, numbered in its own sequence.
        var seen = await ExpectAsync(a, 30, 3);
        Assert.Equal(2005u, seen.Ioa);
        Assert.Equal(4, a.ReceiveSequence);
        Assert.Equal(4, b.ReceiveSequence);
        Assert.Equal(0, a.SequenceErrors + b.SequenceErrors);
        Assert.Equal(2, plc.StartedConnections);
    }

    [Fact]
    public async Task Iec104_SingleGroup_StartDtOnSecondClosesFirst()
    {
        await using var plc = await StartAsync(new Iec104PlcOptions { SpontaneousMs = 0, SingleGroup = true });
        using var a = await ConnectAsync(plc);
        using var b = await ConnectAsync(plc);
        Assert.True(await IsClosedAsync(a));
        await b.SendAsduAsync(Iec104Build.Asdu(RD, 5, 1, 100, []), CancellationToken.None);
        await ExpectAsync(b, 1, 5);
    }

    [Fact]
    public async Task Iec104_T1_UnacknowledgedFramesClose_T3_SendsTestFrame()
    {
        var log = new List<string>();
        // t1 1.5 s (not 400 ms): the idle client, in this same busy process, has that long to answer each TESTFR act.
        await using var plc = await StartAsync(new Iec104PlcOptions { SpontaneousMs = 0, T1 = TimeSpan.FromMilliseconds(1500), T3 = TimeSpan.FromMilliseconds(300), Log = m => { lock (log) { log.Add(m); } } });
        using var idle = await ConnectAsync(plc);
        // Idle: the station tests the link (t3) and the client's TESTFR con keeps it open.
        Assert.NotNull(await idle.WaitAsync(static r => r.Function == Iec104UFunction.TestFrAct, TimeoutMs, CancellationToken.None));
        var silent = await Iec104Client.ConnectAsync(plc.EndPoint, TimeoutMs, CancellationToken.None);
        using (silent)
        {
            // A client that stops reading (so never acknowledges) after asking for 8 ASDUs: t1 closes it.
            Assert.True(await silent!.StartAsync(TimeoutMs, CancellationToken.None));
            await silent.SendAsduAsync(Iec104Build.Asdu(IC, 6, 1, 0, [20]), CancellationToken.None);
            // Meanwhile the idle client keeps reading, so it answers every TESTFR act and stays: until t1 has closed the
            // silent one (bounded, 20 s: a loaded machine runs the timer late), then for more than t3 + t1.
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (plc.T1Expired == 0 && clock.ElapsedMilliseconds < 20_000)
            {
                Assert.Null(await idle.WaitAsync(static _ => false, 100, CancellationToken.None));
            }
            Assert.Null(await idle.WaitAsync(static _ => false, 2500, CancellationToken.None));
            Assert.Equal(1, plc.T1Expired);
        }
        lock (log)
        {
            Assert.Contains(log, m => m.Contains("t1:", StringComparison.Ordinal));
        }
        Assert.False(idle.Closed);
    }

    [Fact]
    public async Task Iec104_Window_StationStopsAtK_UntilAcknowledged()
    {
        await using var plc = await StartAsync(new Iec104PlcOptions { SpontaneousMs = 0, K = 4, W = 100 });
        using var c = await ConnectAsync(plc);
        // An interrogation answers 8 ASDUs; with k = 4 and no acknowledgement only 4 come. Each expected frame is
        // waited for (TimeoutMs: a loaded machine may leave more than 500 ms between two), then 500 ms of nothing.
        await c.SendAsduAsync(Iec104Build.Asdu(IC, 6, 1, 0, [20]), CancellationToken.None);
        int received = 0;
        while (received < 4 && await c.WaitAsync(static r => r.Format == Iec104Format.I, TimeoutMs, CancellationToken.None) is not null)
        {
            received++;
        }
        while (await c.WaitAsync(static r => r.Format == Iec104Format.I, 500, CancellationToken.None) is not null)
        {
            received++;
        }
        Assert.Equal(4, received);
        await c.AcknowledgeAsync(CancellationToken.None);
        while (received < 8 && await c.WaitAsync(static r => r.Format == Iec104Format.I, TimeoutMs, CancellationToken.None) is not null)
        {
            received++;
        }
        while (await c.WaitAsync(static r => r.Format == Iec104Format.I, 500, CancellationToken.None) is not null)
        {
            received++;
        }
        Assert.Equal(8, received);
    }
}

public sealed class Iec104LoadAndAttackTests
{
    [Fact]
    public async Task Iec104Hmi_AgainstSimulator_CommandsWithoutErrors()
    {
        await using var plc = await Iec104PlcSimulatorTests.StartAsync(new Iec104PlcOptions { SpontaneousMs = 20 });
        var result = await Iec104HmiLoad.RunAsync(plc.EndPoint, new Iec104HmiOptions { Connections = 3, Duration = TimeSpan.FromSeconds(1) }, CancellationToken.None);
        Assert.True(result.ResponsesOk > 50, $"only {result.ResponsesOk} commands confirmed");
        Assert.Equal(0, result.Errors);
        Assert.Equal(0, result.TotalExceptions);
        Assert.True(result.RequestsPerSecond > 0);
        Assert.True(result.P50Us > 0 && result.P50Us <= result.P99Us);
        Assert.True(plc.Selects > 0 && plc.Executes > 0 && plc.Setpoints > 0);
        Assert.Equal(0, plc.MalformedFrames + plc.SequenceErrors + plc.TotalNegatives);
    }

    [Fact]
    public async Task Iec104Hmi_WrongCommonAddress_CountsNegativeConfirmations()
    {
        await using var plc = await Iec104PlcSimulatorTests.StartAsync();
        var result = await Iec104HmiLoad.RunAsync(plc.EndPoint, new Iec104HmiOptions { CommonAddress = 9, Duration = TimeSpan.FromSeconds(1) }, CancellationToken.None);
        Assert.Equal(0, result.Errors);
        Assert.True(result.Exceptions(46) > 0);
        Assert.Equal(0, result.ResponsesOk);
    }

    [Fact]
    public async Task Iec104DemoTraffic_AgainstSimulator_ConfirmedAndRefused()
    {
        // Without a firewall the station itself refuses what it can: the execute without select (7) and the global CA (46).
        await using var plc = await Iec104PlcSimulatorTests.StartAsync(new Iec104PlcOptions { SpontaneousMs = 100 });
        var traffic = new Iec104DemoTraffic(plc.EndPoint);
        await traffic.RunAsync(TimeSpan.FromMilliseconds(1500), CancellationToken.None);
        Assert.True(traffic.Confirmed > 5 && traffic.Refusals > 0 && traffic.ForbiddenSent > 0, $"sent {traffic.CommandsSent} confirmed {traffic.Confirmed} refusals {traffic.Refusals} forbidden {traffic.ForbiddenSent} closed {traffic.ClosedConnections} no-answer {traffic.NoAnswers} reports {traffic.Reports} negatives {plc.TotalNegatives}");
        Assert.True(traffic.Reports >= 6, $"reports {traffic.Reports}"); // the interrogation alone answers 6 ASDUs
        Assert.Equal(0, traffic.ClosedConnections + traffic.NoAnswers);
        Assert.Equal(1, plc.Interrogations);
        Assert.True(plc.Executes > 0 && plc.Setpoints > 0);
    }

    [Fact]
    public async Task Iec104Attack_AgainstSimulator_EveryCaseReportsWhatCameBack()
    {
        await using var plc = await Iec104PlcSimulatorTests.StartAsync(new Iec104PlcOptions { SpontaneousMs = 100 });
        var options = new Iec104AttackOptions { AnswerTimeoutMs = 500, FloodCommands = 100, FloodInterrogations = 20 };
        var cases = new Dictionary<string, AttackCaseResult>();
        foreach (string scenario in Iec104AttackSuite.ScenarioNames)
        {
            var result = await Iec104AttackSuite.RunScenarioAsync(plc.EndPoint, scenario, options, CancellationToken.None);
            Assert.Equal(Iec104AttackSuite.CasesOf(scenario).Count, result.Cases.Count);
            foreach (var c in result.Cases)
            {
                cases[c.Name] = c;
            }
        }
        Assert.Equal(Iec104AttackSuite.CaseNames.Count, cases.Count);
        Assert.All(cases.Values, c => Assert.True(c.Sent > 0 && c.ConnectFailed == 0 && !c.Truncated, c.ToString()));

        void Expect(string name, ProbeOutcome outcome, byte cause = 0)
        {
            var c = cases[name];
            Assert.True(c.Outcome == outcome && c.ExceptionCode == cause, $"{name}: expected {outcome} {cause}, got {c}");
        }
        Expect("command-flood", ProbeOutcome.Exception, 7);
        Assert.Equal(100, cases["command-flood"].Exceptions);
        Expect("setpoint-flood", ProbeOutcome.Normal);
        Assert.Equal(20, cases["interrogation-flood"].Normal);
        Expect("global-ca-single-command", ProbeOutcome.Exception, 46);
        Expect("global-ca-setpoint", ProbeOutcome.Exception, 46);
        Expect("global-ca-interrogation", ProbeOutcome.Normal);
        foreach (string name in Iec104AttackSuite.CasesOf("forged-confirmations"))
        {
            Expect(name, ProbeOutcome.Exception, 45);
        }
        foreach (string name in Iec104AttackSuite.CasesOf("bad-lengths").Concat(Iec104AttackSuite.CasesOf("sequence-gaps")).Concat(Iec104AttackSuite.CasesOf("before-startdt")))
        {
            Expect(name, ProbeOutcome.ConnectionClosed);
        }
        Expect("u-two-functions", ProbeOutcome.ConnectionClosed);
        Expect("testfr-con-unasked", ProbeOutcome.NoAnswer);
        Expect("n-zero", ProbeOutcome.ConnectionClosed);
        Expect("sq1-without-base-ioa", ProbeOutcome.ConnectionClosed);
        Expect("sq1-command-three", ProbeOutcome.Exception, 7);
        foreach (string name in Iec104AttackSuite.CasesOf("unknown-types").Concat(Iec104AttackSuite.CasesOf("monitor-types")))
        {
            Expect(name, ProbeOutcome.Exception, 44);
        }
        foreach (string name in Iec104AttackSuite.CasesOf("select-before-operate"))
        {
            Expect(name, ProbeOutcome.Exception, 7);
        }
        // What the attacks did to the station: no command executed; it closed what it could not read.
        Assert.Equal(0, plc.Executes);
        Assert.True(plc.MalformedFrames >= 20, $"malformed {plc.MalformedFrames}");
        Assert.Equal(4, plc.SequenceErrors);
        Assert.Equal(3, plc.IFramesBeforeStart);
    }
}
