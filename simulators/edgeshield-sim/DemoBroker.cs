using System.Net;
using System.Net.Sockets;
using MQTTnet.Server;

namespace EdgeShield.Simulators.Cli;

/// <summary>The demo's MQTT broker: MQTTnet.Server bound to 127.0.0.1 on a port that was free a moment ago.</summary>
internal sealed class DemoBroker : IAsyncDisposable
{
    private readonly MqttServer _server;

    private DemoBroker(MqttServer server, int port)
    {
        _server = server;
        Port = port;
    }

    public int Port { get; }

    public static async Task<DemoBroker> StartAsync()
    {
        for (int attempt = 0; ; attempt++)
        {
            int port;
            using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                port = ((IPEndPoint)probe.LocalEndPoint!).Port;
            }
            var options = new MqttServerOptionsBuilder().WithDefaultEndpoint()
                .WithDefaultEndpointBoundIPAddress(IPAddress.Loopback).WithDefaultEndpointPort(port).Build();
            var server = new MqttServerFactory().CreateMqttServer(options);
            try
            {
                await server.StartAsync();
                return new DemoBroker(server, port);
            }
            catch (SocketException) when (attempt < 5)
            {
                // Someone took the port between the probe and the bind: try another.
                server.Dispose();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _server.StopAsync();
        _server.Dispose();
    }
}
