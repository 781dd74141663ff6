using System.Net;

namespace EdgeShield.Simulators.Tests;

internal static class Plc
{
    public static Task<PlcSimulator> StartAsync(PlcOptions? options = null) =>
        PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), options ?? new PlcOptions(), CancellationToken.None);
}
