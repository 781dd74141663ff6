using EdgeShield.Protocols.S7comm;
using static EdgeShield.Policy.Tests.S7Requests;

namespace EdgeShield.Policy.Tests;

/// <summary>The S7 refusal ladder (DESIGN.md "S7comm"): function → area/block → address → value → rate, closest rule wins.</summary>
public class S7PolicyTests
{
    private static readonly CompiledPolicy Hmi = Compile("""
              - name: hmi reads
                from: 10.20.0.0/24
                connection: [op, basic]
                function: [setup-communication, read-var, cpu-functions, time-read]
                area: [db, m, i, q]
                db: 1-99
                address: 0-1023
              - name: recipe writes
                from: 10.20.0.5
                function: write-var
                area: db
                db: 100
                address: 0-63
                type: int16
                value: 0-1500

        """);

    private static void Denied(Verdict verdict, DenyReason reason, int rule)
    {
        Assert.False(verdict.IsAllowed);
        Assert.Equal(reason, verdict.Reason);
        Assert.Equal(rule, verdict.RuleIndex);
    }

    private static byte[] Int16s(params short[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (var i = 0; i < values.Length; i++)
        {
            bytes[2 * i] = (byte)(values[i] >> 8);
            bytes[2 * i + 1] = (byte)values[i];
        }
        return bytes;
    }

    [Fact]
    public void Reads_InsideAreaBlockAndSpan_AreAllowed()
    {
        Assert.Equal(Verdict.Allow(0), Evaluate(Hmi, Setup));
        Assert.Equal(Verdict.Allow(0), Evaluate(Hmi, ReadVar(Db(1, 0, 20), M(0, 4), new Item(0x81, 0, 1023))));
        Assert.Equal(Verdict.Allow(0), Evaluate(Hmi, ReadVar(Db(99, 1000, 24))));
        Assert.Equal(Verdict.Allow(0), Evaluate(Hmi, Userdata(4, 1)));  // read SZL
        Assert.Equal(Verdict.Allow(0), Evaluate(Hmi, Userdata(7, 1)));  // read clock
        Assert.Equal(Verdict.Allow(0), Evaluate(Hmi, ReadVar(Db(1, 0, 2)), Basic));
    }

    [Fact]
    public void Ladder_FunctionBeforeAreaBeforeAddressBeforeValue()
    {
        // from 10.20.0.7 only 'hmi reads' is in scope
        Denied(Evaluate(Hmi, WriteVar(Db(1, 0, 2)), source: "10.20.0.7"), DenyReason.Function, 0);
        Denied(Evaluate(Hmi, Userdata(7, 2), source: "10.20.0.7"), DenyReason.Function, 0); // time-set
        Denied(Evaluate(Hmi, ReadVar(new Item(0x80, 0, 0)), source: "10.20.0.7"), DenyReason.AreaOrBlock, 0); // P area
        Denied(Evaluate(Hmi, ReadVar(Db(100, 0, 2)), source: "10.20.0.7"), DenyReason.AreaOrBlock, 0); // DB 100
        Denied(Evaluate(Hmi, ReadVar(Db(1, 1020, 8)), source: "10.20.0.7"), DenyReason.Address, 0); // 1020..1027
        // the worst item decides: an area refusal beats a span refusal in the same job
        Denied(Evaluate(Hmi, ReadVar(Db(1, 1020, 8), Db(100, 0, 2)), source: "10.20.0.7"), DenyReason.AreaOrBlock, 0);
    }

    [Fact]
    public void Writes_ValuesAreReadAsTypeBigEndian_EveryValueOfEveryItem()
    {
        Assert.Equal(Verdict.Allow(1), Evaluate(Hmi, WriteVar(Db(100, 0, 4, Int16s(0, 1500)), Db(100, 62, 2, Int16s(7)))));
        Denied(Evaluate(Hmi, WriteVar(Db(100, 0, 4, Int16s(0, 1501)))), DenyReason.Value, 1);
        Denied(Evaluate(Hmi, WriteVar(Db(100, 0, 2, Int16s(-1)))), DenyReason.Value, 1);
        Denied(Evaluate(Hmi, WriteVar(Db(100, 0, 2, Int16s(5)), Db(100, 2, 2, Int16s(2000)))), DenyReason.Value, 1);
        // 0x05DC = 1500 big-endian; the same bytes little-endian would be 0xDC05
        Assert.True(Evaluate(Hmi, WriteVar(Db(100, 0, 2, [0x05, 0xDC]))).IsAllowed);
        Denied(Evaluate(Hmi, WriteVar(Db(100, 0, 2, [0xDC, 0x05]))), DenyReason.Value, 1);
        // a write off the 2-byte grid of the range, or covering half a value, cannot be checked
        Denied(Evaluate(Hmi, WriteVar(Db(100, 1, 2, Int16s(1)))), DenyReason.Value, 1);
        Denied(Evaluate(Hmi, WriteVar(Db(100, 0, 3, [0, 1, 0]))), DenyReason.Value, 1);
        // outside the span: address beats value
        Denied(Evaluate(Hmi, WriteVar(Db(100, 62, 4, Int16s(1, 99)))), DenyReason.Address, 1);
        Denied(Evaluate(Hmi, WriteVar(Db(101, 0, 2, Int16s(1)))), DenyReason.AreaOrBlock, 1);
    }

    [Fact]
    public void ClosestRuleWins_AndRateComesLast()
    {
        var policy = Compile("""
                  - name: reads
                    function: read-var
                    area: m
                  - name: limited
                    function: write-var
                    area: m
                    address: 0-9
                    rate: 1/h

            """);
        // write to DB: 'reads' refuses the function, 'limited' the area: the area is closer
        Denied(Evaluate(policy, WriteVar(Db(1, 0, 1))), DenyReason.AreaOrBlock, 1);
        Denied(Evaluate(policy, WriteVar(M(8, 4))), DenyReason.Address, 1);
        Assert.Equal(Verdict.Allow(1), Evaluate(policy, WriteVar(M(0, 1))));
        Denied(Evaluate(policy, WriteVar(M(0, 1)), timestamp: 2_000), DenyReason.Rate, 1);
        Assert.Equal(Verdict.Allow(0), Evaluate(policy, ReadVar(M(100, 1)), timestamp: 3_000));
    }

    [Fact]
    public void Maintenance_DisarmedRuleIsSkipped_ArmedAllows()
    {
        var maintenance = new MaintenanceState();
        var policy = Compile("""
                  - name: engineering laptop
                    from: 10.20.0.9
                    connection: pg
                    function: [setup-communication, read, program, control, engineering]
                    maintenance: true

            """, maintenance);
        Denied(Evaluate(policy, Bare(0x1A), Pg, "10.20.0.9"), DenyReason.MaintenanceKey, 0);
        Denied(Evaluate(policy, WriteVar(M(0, 1)), Pg, "10.20.0.9"), DenyReason.Function, 0);
        Denied(Evaluate(policy, Bare(0x1A), Op, "10.20.0.9"), DenyReason.SourceOrUnit, -1);
        maintenance.Arm();
        Assert.Equal(Verdict.Allow(0), Evaluate(policy, Bare(0x1A), Pg, "10.20.0.9"));
        Assert.Equal(Verdict.Allow(0), Evaluate(policy, PlcStop, Pg, "10.20.0.9"));
        Denied(Evaluate(policy, WriteVar(M(0, 1)), Pg, "10.20.0.9"), DenyReason.Function, 0);
    }

    [Fact]
    public void Connection_IsTheScope()
    {
        Denied(Evaluate(Hmi, ReadVar(Db(1, 0, 2)), Pg, "10.20.0.7"), DenyReason.SourceOrUnit, -1);
        Assert.True(Hmi.NamesSourceAndConnection(TestPolicies.Ip("10.20.0.7"), Op));
        Assert.True(Hmi.NamesSourceAndConnection(TestPolicies.Ip("10.20.0.7"), Basic));
        Assert.False(Hmi.NamesSourceAndConnection(TestPolicies.Ip("10.20.0.7"), Pg));
        Assert.True(Hmi.NamesSourceAndConnection(TestPolicies.Ip("10.20.0.5"), Pg)); // 'recipe writes' has no connection key
        Assert.False(Hmi.NamesSourceAndConnection(TestPolicies.Ip("10.21.0.1"), Op));
        Assert.False(Hmi.NamesSourceAndConnection(TestPolicies.Ip("10.20.0.7"), PlusHmi));

        var numbered = Compile("      - { connection: [16, plus-es], function: [read-var, s7comm-plus] }\n");
        Assert.True(numbered.NamesSourceAndConnection(TestPolicies.Ip("10.0.0.1"), S7Connection.FromCalledTsap([0x10, 0x01])));
        Assert.False(numbered.NamesSourceAndConnection(TestPolicies.Ip("10.0.0.1"), Pg));
        Assert.True(numbered.NamesSourceAndConnection(TestPolicies.Ip("10.0.0.1"), PlusEs));
        Assert.False(numbered.NamesSourceAndConnection(TestPolicies.Ip("10.0.0.1"), PlusHmi));
        Assert.False(numbered.NamesSourceAndConnection(TestPolicies.Ip("10.0.0.1"), default)); // unknown TSAP
    }

    [Fact]
    public void NamesSourceAndConnection_CountsDisarmedMaintenanceRules_AndIgnoresModbusPolicies()
    {
        var policy = Compile("      - { from: 10.20.0.9, connection: pg, function: program, maintenance: true }\n");
        Assert.True(policy.NamesSourceAndConnection(TestPolicies.Ip("10.20.0.9"), Pg));
        var modbus = TestPolicies.Compile("      - { function: read }\n");
        Assert.False(modbus.NamesSourceAndConnection(TestPolicies.Ip("10.20.0.9"), Pg));
    }

    [Fact]
    public void BitItems_AreJudgedByTheByteHoldingTheBit()
    {
        var policy = Compile("      - { area: q, address: 4-5 }\n");
        Assert.True(Evaluate(policy, WriteVar(new Item(0x82, 0, 5, Bit: 7, TransportSize: 0x01, Data: [1]))).IsAllowed); // Q5.7
        Assert.True(Evaluate(policy, ReadVar(new Item(0x82, 0, 4, Bit: 0, TransportSize: 0x01))).IsAllowed);            // Q4.0
        Denied(Evaluate(policy, WriteVar(new Item(0x82, 0, 6, Bit: 0, TransportSize: 0x01, Data: [1]))), DenyReason.Address, 0); // Q6.0
        Denied(Evaluate(policy, ReadVar(new Item(0x82, 0, 3, Bit: 7, TransportSize: 0x01))), DenyReason.Address, 0);            // Q3.7
    }

    [Fact]
    public void CountersAndTimers_AreJudgedByElementNumber()
    {
        var policy = Compile("      - { area: [c, t], address: 10-19 }\n");
        Assert.True(Evaluate(policy, ReadVar(new Item(0x1C, 0, 10, TransportSize: 0x1C, Count: 10))).IsAllowed);  // C10..C19
        Denied(Evaluate(policy, ReadVar(new Item(0x1C, 0, 10, TransportSize: 0x1C, Count: 11))), DenyReason.Address, 0); // C10..C20
        Assert.True(Evaluate(policy, WriteVar(new Item(0x1D, 0, 19, TransportSize: 0x1D, Count: 1))).IsAllowed);  // T19 (2 bytes)
        Denied(Evaluate(policy, ReadVar(new Item(0x1D, 0, 9, TransportSize: 0x1D, Count: 1))), DenyReason.Address, 0);
        Denied(Evaluate(policy, ReadVar(M(10, 1))), DenyReason.AreaOrBlock, 0);
    }

    [Fact]
    public void NonS7AnyItems_NeverMatchARuleThatBoundsAreaBlockOrAddress()
    {
        // syntax id B0 (DBREAD of S7-400): 12 07 B0 01 | count | db (2) | start (2)
        var dbRead = new Item(0, 0, 0, RawSpecification: [0x12, 0x07, 0xB0, 0x01, 0x04, 0x00, 0x01, 0x00, 0x00]);
        var request = S7Pdu.ParseRequest(ReadVar(dbRead));
        Assert.Equal(S7RequestStatus.Ok, request.Status);
        Assert.True(request.HasNonS7AnyItems);

        Denied(Evaluate(Compile("      - { function: read-var, area: db }\n"), ReadVar(dbRead)), DenyReason.AreaOrBlock, 0);
        Denied(Evaluate(Compile("      - { function: read-var, address: 0-99 }\n"), ReadVar(dbRead)), DenyReason.AreaOrBlock, 0);
        Assert.True(Evaluate(Compile("      - { function: read-var }\n"), ReadVar(dbRead)).IsAllowed);
        // with an S7ANY item beside it that the rule allows, the job is still refused
        Denied(Evaluate(Compile("      - { function: read-var, area: db }\n"), ReadVar(Db(1, 0, 2), dbRead)), DenyReason.AreaOrBlock, 0);
    }

    [Fact]
    public void PiService_NarrowsPlcControlAndPlcStop()
    {
        var policy = Compile("      - { function: [plc-control, plc-stop], pi-service: [_INSE, _DELE] }\n");
        Assert.True(Evaluate(policy, PlcControl("_INSE")).IsAllowed);
        Assert.True(Evaluate(policy, PlcControl("_DELE")).IsAllowed);
        Denied(Evaluate(policy, PlcControl("_MODU")), DenyReason.Function, 0);
        Denied(Evaluate(policy, PlcControl("P_PROGRAM")), DenyReason.Function, 0);
        Denied(Evaluate(policy, PlcStop), DenyReason.Function, 0); // plc-stop carries P_PROGRAM, not named

        var control = Compile("      - { function: control }\n");
        Assert.True(Evaluate(control, PlcControl("P_PROGRAM")).IsAllowed);
        Assert.True(Evaluate(control, PlcStop).IsAllowed);
        Denied(Evaluate(control, PlcControl("_INSE")), DenyReason.Function, 0);

        var program = Compile("      - { function: program }\n");
        Assert.True(Evaluate(program, PlcControl("_INSE")).IsAllowed);
        Assert.True(Evaluate(program, PlcControl("_GARB")).IsAllowed);
        Denied(Evaluate(program, PlcControl("P_PROGRAM")), DenyReason.Function, 0);
        Denied(Evaluate(program, PlcStop), DenyReason.Function, 0);

        var bare = Compile("      - { function: plc-control }\n");
        Assert.True(Evaluate(bare, PlcControl("P_PROGRAM")).IsAllowed);
        Assert.True(Evaluate(bare, PlcControl("_N_F_DELE")).IsAllowed);
        Denied(Evaluate(bare, PlcStop), DenyReason.Function, 0);
    }

    public static TheoryData<string, byte[]> ProgramControlEngineering() => new()
    {
        { "request-download", Bare(0x1A) }, { "download-block", Bare(0x1B) }, { "download-ended", Bare(0x1C) },
        { "start-upload", Bare(0x1D) }, { "upload", Bare(0x1E) }, { "end-upload", Bare(0x1F) },
        { "plc-control _INSE", PlcControl("_INSE") }, { "plc-control P_PROGRAM", PlcControl("P_PROGRAM") }, { "plc-stop", PlcStop },
        { "programmer-commands", Userdata(1, 1) }, { "security", Userdata(5, 1) }, { "time-set", Userdata(7, 2) },
        { "mode-transition", Userdata(0, 0) }, { "cpu-services", Bare(0x00) }, { "bsend-brecv", Userdata(6, 1) },
        { "nc-programming", Userdata(0xF, 1) }, { "s7comm-plus", Plus },
    };

    [Theory]
    [MemberData(nameof(ProgramControlEngineering))]
    public void GroupsReadAndWrite_NeverImplyProgramControlEngineeringOrUngroupedWords(string what, byte[] pdu)
    {
        var policy = Compile("      - { function: [read, write] }\n");
        var verdict = Evaluate(policy, pdu);
        Assert.False(verdict.IsAllowed, what);
        Assert.Equal(DenyReason.Function, verdict.Reason);
    }

    [Fact]
    public void Groups_HoldTheirWords()
    {
        var read = Compile("      - { function: read }\n");
        foreach (var pdu in new[] { Setup, ReadVar(M(0, 1)), Userdata(2, 1), Userdata(3, 1), Userdata(4, 1), Userdata(7, 3) })
        {
            Assert.True(Evaluate(read, pdu).IsAllowed);
        }
        var engineering = Compile("      - { function: engineering }\n");
        foreach (var pdu in new[] { Userdata(1, 1), Userdata(5, 1), Userdata(5, 2), Userdata(7, 2), Userdata(7, 4), Userdata(0, 0) })
        {
            Assert.True(Evaluate(engineering, pdu).IsAllowed);
        }
        Assert.False(Evaluate(engineering, Userdata(7, 1)).IsAllowed);
        Assert.True(Evaluate(Compile("      - { function: cpu-services }\n"), Bare(0x00)).IsAllowed);
    }

    [Fact]
    public void S7commPlus_OnlyWhenNamed()
    {
        Denied(Evaluate(Compile("      - { from: 10.20.0.0/24 }\n"), Plus, PlusHmi), DenyReason.Function, 0);
        Assert.True(Evaluate(Compile("      - { from: 10.20.0.0/24 }\n"), PlcStop).IsAllowed); // no 'function:' = every classic function
        Assert.Equal(Verdict.Allow(0), Evaluate(Compile("      - { connection: plus-hmi, function: s7comm-plus }\n"), Plus, PlusHmi));
        Denied(Evaluate(Compile("      - { connection: plus-hmi, function: s7comm-plus }\n"), Plus, PlusEs), DenyReason.SourceOrUnit, -1);
    }

    [Fact]
    public void ItemRefusals_SpanGets05_EverythingElse03()
    {
        // job: DB1 ok, DB1 span 1020..1027 out of range, DB100 (block refused), M0 ok
        var pdu = ReadVar(Db(1, 0, 2), Db(1, 1020, 8), Db(100, 0, 2), M(0, 1));
        var verdict = Evaluate(Hmi, pdu, source: "10.20.0.7");
        Denied(verdict, DenyReason.AreaOrBlock, 0);
        Assert.Equal(new byte[] { 0x03, 0x05, 0x03, 0x03 }, Refusals(Hmi, verdict.RuleIndex, pdu));
        Assert.Equal(new byte[] { 0x03, 0x03, 0x03, 0x03 }, Refusals(Hmi, -1, pdu));

        var write = WriteVar(Db(100, 0, 2, Int16s(1)), Db(100, 2, 2, Int16s(9999)), Db(100, 64, 2, Int16s(1)));
        Denied(Evaluate(Hmi, write), DenyReason.Address, 1);
        Assert.Equal(new byte[] { 0x03, 0x03, 0x05 }, Refusals(Hmi, 1, write));
        // against a rule that refuses the function, every item gets 03
        Assert.Equal(new byte[] { 0x03, 0x03, 0x03 }, Refusals(Hmi, 0, write));
        Assert.Empty(Refusals(Hmi, 0, Setup));
        Assert.Throws<ArgumentOutOfRangeException>(() => Refusals(Hmi, 2, write));
    }

    [Fact]
    public void ItemRefusals_NeedsRoomForEveryItem()
    {
        var request = ReadVar(Db(1, 0, 2), Db(1, 2, 2));
        Assert.Throws<ArgumentException>(() =>
        {
            Span<byte> codes = stackalloc byte[1];
            Hmi.S7ItemRefusals(0, new S7Target(Op, S7Pdu.ParseRequest(request)), codes);
        });
    }

    [Fact]
    public void TypedValues_Int32UInt32Float32()
    {
        var policy = Compile("""
                  - { function: write-var, area: m, address: 0-7, type: float32, value: -20.5..80 }
                  - { function: write-var, area: m, address: 100-107, type: uint32, value: 3000000000-4000000000 }
                  - { function: write-var, area: m, address: 200-203, type: int32, value: -100000..-5 }

            """);
        Assert.True(Evaluate(policy, WriteVar(M(0, 8, [0xC1, 0xA4, 0, 0, 0x42, 0xA0, 0, 0]))).IsAllowed); // -20.5, 80
        Denied(Evaluate(policy, WriteVar(M(4, 4, [0x42, 0xA1, 0, 0]))), DenyReason.Value, 0);          // 80.5
        Denied(Evaluate(policy, WriteVar(M(0, 4, [0x7F, 0xC0, 0, 0]))), DenyReason.Value, 0);          // NaN
        Denied(Evaluate(policy, WriteVar(M(2, 4, [0, 0, 0, 0]))), DenyReason.Value, 0);                // off the grid
        Assert.True(Evaluate(policy, WriteVar(M(104, 4, [0xB2, 0xD0, 0x5E, 0x00]))).IsAllowed);        // 3 000 000 000
        Assert.True(Evaluate(policy, WriteVar(M(200, 4, [0xFF, 0xFF, 0xFF, 0xFB]))).IsAllowed);        // -5
        Denied(Evaluate(policy, WriteVar(M(200, 4, [0, 0, 0, 5]))), DenyReason.Value, 2);
    }

    [Fact]
    public void ValueRule_RefusesBitWrites_ButAllowsReads()
    {
        var policy = Compile("      - { area: m, address: 0-1, type: int16, value: 0-10 }\n");
        Denied(Evaluate(policy, WriteVar(new Item(0x83, 0, 0, Bit: 1, TransportSize: 0x01, Data: [1]))), DenyReason.Value, 0);
        Assert.True(Evaluate(policy, ReadVar(new Item(0x83, 0, 0, Bit: 1, TransportSize: 0x01))).IsAllowed);
        Assert.True(Evaluate(policy, ReadVar(M(0, 2))).IsAllowed);
    }

    [Fact]
    public void ModbusRules_NeverMatchS7Jobs()
    {
        var modbus = TestPolicies.Compile("      - { from: 10.20.0.0/24 }\n");
        Denied(Evaluate(modbus, ReadVar(M(0, 1))), DenyReason.SourceOrUnit, -1);
        Assert.Equal(ListenerProtocol.ModbusTcp, modbus.Protocol);
        Assert.Equal(ListenerProtocol.S7comm, Hmi.Protocol);
        Assert.Equal(ListenerProtocol.S7comm, Hmi.AsMonitor().Protocol);
    }
}

public class S7AllocationTests
{
    [Fact]
    public void EvaluateAndItemRefusals_S7Jobs_AllocateNothing()
    {
        var maintenance = new MaintenanceState();
        maintenance.Arm();
        var policy = S7Requests.Compile("""
                  - name: engineering
                    from: 10.9.0.0/16
                    connection: pg
                    function: [setup-communication, read, program, control, engineering]
                    pi-service: [_INSE, P_PROGRAM]
                    maintenance: true
                  - name: hmi reads
                    from: [10.20.0.0/24, "fd00:20::/64"]
                    connection: [op, basic]
                    function: [setup-communication, read-var, cpu-functions, time-read]
                    area: [db, m, i, q, c]
                    db: [1-99, 200]
                    address: [0-1023, 2000-2999]
                  - name: recipe writes
                    from: 10.20.0.5
                    function: write-var
                    area: db
                    db: 100
                    address: [0-63, 100-163]
                    type: float32
                    value: [-20.5..80, 100..200]
                    rate: 1000000/s

            """, maintenance);
        byte[][] pdus =
        [
            S7Requests.Setup, S7Requests.ReadVar(S7Requests.Db(1, 0, 20), S7Requests.M(0, 4)), S7Requests.ReadVar(S7Requests.Db(100, 0, 2), S7Requests.Db(1, 1020, 8)),
            S7Requests.WriteVar(S7Requests.Db(100, 0, 8, [0x42, 0xA0, 0, 0, 0xC1, 0xA4, 0, 0])), S7Requests.WriteVar(S7Requests.Db(100, 4, 4, [0x7F, 0xC0, 0, 0])),
            S7Requests.PlcControl("_INSE"), S7Requests.PlcControl("_DELE"), S7Requests.PlcStop, S7Requests.Userdata(4, 1), S7Requests.Userdata(7, 2), S7Requests.Plus,
            S7Requests.ReadVar(new S7Requests.Item(0x1C, 0, 10, TransportSize: 0x1C, Count: 2)),
        ];
        Protocols.S7comm.S7Connection[] connections = [S7Requests.Op, S7Requests.Pg, S7Requests.Basic];
        SourceAddress[] sources = [TestPolicies.Ip("10.20.0.5"), TestPolicies.Ip("10.9.1.1"), TestPolicies.Ip("fd00:20::1"), TestPolicies.Ip("10.30.0.1")];

        var timestamp = System.Diagnostics.Stopwatch.GetTimestamp();
        var codes = new byte[255];
        var allowed = Run(policy, pdus, connections, sources, codes, timestamp, 100);
        var before = GC.GetAllocatedBytesForCurrentThread();
        allowed += Run(policy, pdus, connections, sources, codes, timestamp, 10_000);
        var after = GC.GetAllocatedBytesForCurrentThread();

        Assert.Equal(0, after - before);
        Assert.True(allowed > 0);
    }

    private static int Run(CompiledPolicy policy, byte[][] pdus, Protocols.S7comm.S7Connection[] connections, SourceAddress[] sources, byte[] codes, long timestamp, int count)
    {
        var allowed = 0;
        var refused = 0;
        for (var i = 0; i < count; i++)
        {
            var request = Protocols.S7comm.S7Pdu.ParseRequest(pdus[i % pdus.Length]);
            var target = new S7Target(connections[i % connections.Length], request);
            var source = sources[i % sources.Length];
            if (!policy.NamesSourceAndConnection(source, target.Connection))
            {
                continue;
            }
            var verdict = policy.Evaluate(source, target, timestamp + i);
            if (verdict.IsAllowed)
            {
                allowed++;
            }
            else
            {
                refused += policy.S7ItemRefusals(verdict.RuleIndex, target, codes);
            }
        }
        Assert.True(refused > 0);
        return allowed;
    }
}
