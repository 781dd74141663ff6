namespace EdgeShield.Integration.Tests;

/// <summary>
/// The config the serial process tests share: bus rs485-1 on <c>master</c> at 38400 baud, listener
/// hmi-rtu on a free loopback port in front of it, reads 0-99 of unit 3 allowed.
/// </summary>
internal static class SerialGatewayConfig
{
    public static string Yaml(string master) => $"""
        serial:
          - name: rs485-1
            device: {master}
            baud: 38400
            response-timeout-ms: 300
        listeners:
          - name: hmi-rtu
            bind: 127.0.0.1:0
            upstream: serial://rs485-1
            policy: plc
        policies:
          plc:
            mode: enforce
            rules:
              - name: reads
                unit: 3
                function: [read]
                address: 0-99

        """;
}
