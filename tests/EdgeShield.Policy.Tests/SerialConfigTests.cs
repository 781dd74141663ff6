using EdgeShield.Policy;

namespace EdgeShield.Policy.Tests;

public class SerialConfigTests
{
    [Fact]
    public void SerialSection_IsModelled_WithDefaults()
    {
        var loaded = ConfigLoader.LoadText("""
            serial:
              - name: rs485-1
                device: /dev/ttyS1
                baud: 9600
                parity: none
                stop-bits: 2
                response-timeout-ms: 250
                turnaround-ms: 150
                late-reply-guard-ms: 600
                read-retries: 2
                queue-depth: 8
                queue-timeout-ms: 700
                breaker-failures: 4
                breaker-open-ms: 2500
              - name: rs485-2
                device: /dev/ttyUSB0
            """, "serial.yaml");
        Assert.False(loaded.HasErrors, string.Join("\n", loaded.Diagnostics));
        var buses = loaded.Config!.SerialBuses;
        Assert.Equal(2, buses.Count);
        Assert.Equal(new SerialBusConfig
        {
            Name = "rs485-1",
            Device = "/dev/ttyS1",
            Baud = 9600,
            Parity = LineParity.None,
            StopBits = 2,
            ResponseTimeoutMs = 250,
            TurnaroundMs = 150,
            LateReplyGuardMs = 600,
            ReadRetries = 2,
            QueueDepth = 8,
            QueueTimeoutMs = 700,
            BreakerFailures = 4,
            BreakerOpenMs = 2500,
        }, buses[0]);
        Assert.Equal(new SerialBusConfig { Name = "rs485-2", Device = "/dev/ttyUSB0" }, buses[1]);
        Assert.Equal(19200, buses[1].Baud);
        Assert.Equal(LineParity.Even, buses[1].Parity);
    }

    [Theory]
    [InlineData("read-retries: 9", "read-retries")]
    [InlineData("queue-depth: 0", "queue-depth")]
    [InlineData("turnaround-ms: -1", "turnaround-ms")]
    [InlineData("late-reply-guard-ms: 0", "late-reply-guard-ms")]
    [InlineData("breaker-failures: 0", "breaker-failures")]
    [InlineData("retries: 1", "retries")]
    public void SerialSection_BadValue_IsAnErrorNamingTheKey(string line, string key)
    {
        var loaded = ConfigLoader.LoadText($"""
            serial:
              - name: rs485-1
                device: /dev/ttyS1
                {line}
            """, "serial.yaml");
        Assert.True(loaded.HasErrors);
        Assert.Contains(loaded.Diagnostics, d => d.ToString().Contains(key, StringComparison.Ordinal) && d.Line == 4);
    }
}
