using System.Diagnostics;
using EdgeShield.Protocols.Modbus;
using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

public class AllocationTests
{
    [Fact]
    public void Evaluate_RealisticPolicy_AllocatesNothing()
    {
        var maintenance = new MaintenanceState();
        maintenance.Arm();
        var policy = Compile("""
                  - name: engineering
                    from: [10.9.0.0/16, "fd00:9::/48"]
                    function: [program, diagnostics]
                  - name: hmi reads
                    from: [10.20.0.0/24, 10.21.0.0/24, "fd00:20::/64"]
                    unit: [1-5, 9]
                    function: [read-holding-registers, read-input-registers, 1, 2]
                    address: [0-999, 2000-2999, 4000-4099]
                  - name: setpoints
                    from: 10.20.0.5
                    unit: 1
                    function: [write-single-register, write-multiple-registers, read-write-multiple-registers]
                    address: [100-119, 200-219]
                    value: [0-1500, 2000-2100]
                    maintenance: true
                    rate: 1000000/s
                  - name: typed setpoints
                    from: 10.20.0.0/24
                    function: [write-multiple-registers, read-write-multiple-registers]
                    address: [300-319, 400-403]
                    type: float32
                    word-order: cdab
                    value: [-20.5..80, 100..200]
                  - name: signed offsets
                    from: 10.20.0.0/24
                    address: 500-509
                    type: int16
                    value: -40..120

            """, maintenance);
        byte[][] pdus =
        [
            Read(3, 0, 10), Read(3, 990, 20), Read(1, 2000, 100), WriteSingle(100, 5), WriteSingle(100, 1501),
            WriteMultiple(100, 1, 2, 3, 2050), ReadWrite(0, 10, 200, 7, 8), [43, 14, 1, 0], [90, 0, 0], WriteCoil(1),
            WriteMultiple(300, 0x0000, 0x42A0, 0x0000, 0x4348), WriteMultiple(301, 0, 0x42A0), WriteMultiple(402, 0, 0x7FC0),
            ReadWrite(300, 2, 402, 0, 0x4300), WriteSingle(300, 0), WriteSingle(505, 0xFFD8), WriteMultiple(500, 0xFFD7, 7),
        ];
        SourceAddress[] sources = [Ip("10.20.0.5"), Ip("10.20.0.7"), Ip("fd00:20::1"), Ip("10.30.0.1")];

        var timestamp = Stopwatch.GetTimestamp();
        var allowed = Run(policy, pdus, sources, timestamp, 100);
        var before = GC.GetAllocatedBytesForCurrentThread();
        allowed += Run(policy, pdus, sources, timestamp, 10_000);
        var after = GC.GetAllocatedBytesForCurrentThread();

        Assert.Equal(0, after - before);
        Assert.True(allowed > 0);
    }

    private static int Run(CompiledPolicy policy, byte[][] pdus, SourceAddress[] sources, long timestamp, int count)
    {
        var allowed = 0;
        for (var i = 0; i < count; i++)
        {
            var request = ModbusPdu.ParseRequest(pdus[i % pdus.Length]);
            var verdict = policy.Evaluate(sources[i % sources.Length], (byte)(1 + (i & 1)), request, timestamp + i);
            allowed += verdict.IsAllowed ? 1 : 0;
        }
        return allowed;
    }
}
