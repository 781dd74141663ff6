using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using EdgeShield.Policy;
using EdgeShield.Telemetry;
using EdgeShield.Transport;
using MQTTnet;
using MQTTnet.Server;

namespace EdgeShield.Telemetry.Tests;

internal static class Ports
{
    /// <summary>A loopback port that was free a moment ago (for brokers that must be restarted on the same port).</summary>
    public static int Free()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }
}

/// <summary>MQTTnet's broker on loopback; records every message it receives from clients.</summary>
internal sealed class EmbeddedBroker : IAsyncDisposable
{
    private readonly MqttServer _server;
    public ConcurrentQueue<(string Topic, byte[] Payload, bool Retain)> Received { get; } = new();
    public ConcurrentQueue<string> Connections { get; } = new();
    public int Port { get; }

    private EmbeddedBroker(MqttServer server, int port)
    {
        _server = server;
        Port = port;
    }

    public static async Task<EmbeddedBroker> StartAsync(int? port = null, string? requiredPassword = null)
    {
        int p = port ?? Ports.Free();
        var options = new MqttServerOptionsBuilder().WithDefaultEndpoint()
            .WithDefaultEndpointBoundIPAddress(IPAddress.Loopback).WithDefaultEndpointPort(p).Build();
        var server = new MqttServerFactory().CreateMqttServer(options);
        var broker = new EmbeddedBroker(server, p);
        server.ValidatingConnectionAsync += e =>
        {
            if (requiredPassword is not null && e.Password != requiredPassword)
            {
                e.ReasonCode = MQTTnet.Protocol.MqttConnectReasonCode.BadUserNameOrPassword;
            }
            broker.Connections.Enqueue(e.ClientId);
            return Task.CompletedTask;
        };
        server.InterceptingPublishAsync += e =>
        {
            if (e.ClientId is not null && e.ClientId.Length > 0)
            {
                broker.Received.Enqueue((e.ApplicationMessage.Topic, e.ApplicationMessage.Payload.ToArray(), e.ApplicationMessage.Retain));
            }
            return Task.CompletedTask;
        };
        await server.StartAsync();
        return broker;
    }

    public async ValueTask DisposeAsync()
    {
        await _server.StopAsync();
        _server.Dispose();
    }
}

internal static class TestConfig
{
    public static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "es-telemetry-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    public static TelemetryConfig Load(string yaml)
    {
        var loaded = ConfigLoader.LoadText(yaml, "t.yaml");
        Assert.False(loaded.HasErrors, string.Join("\n", loaded.Diagnostics));
        return loaded.Config!.Telemetry!;
    }

    public static TelemetryService Service(TelemetryConfig config, ConcurrentQueue<TelemetryNotice>? notices = null) =>
        new(config, "gw1", "site1", a => a.Scheme == "tcp" ? new TcpUpstream(a.Host, a.Port, TimeSpan.FromSeconds(1)) : null,
            n => notices?.Enqueue(n), TimeSpan.FromSeconds(1));

    public static async Task Until(Func<bool> condition, int seconds = 20, Func<string>? state = null)
    {
        // The condition is judged once per round: a second look could see a state that has moved on since.
        bool reached = false;
        for (int i = 0; i < seconds * 20 && !(reached = condition()); i++)
        {
            await Task.Delay(50);
        }
        Assert.True(reached || condition(), "condition not reached in time" + (state is null ? "" : ": " + state()));
    }

    public static JsonElement Json(byte[] payload) => JsonDocument.Parse(payload).RootElement;
}
