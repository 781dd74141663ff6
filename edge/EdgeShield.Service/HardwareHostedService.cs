using Microsoft.Extensions.Hosting;

namespace EdgeShield.Service;

/// <summary>The front panel (maintenance key, LEDs) as a hosted service: after the gateway, whose counters the LEDs show; stopped before it.</summary>
public sealed class HardwareHostedService(GatewayHostedService gateway) : IHostedService, IDisposable
{
    private HardwareRuntime? _hardware;

    /// <summary>The running hardware (after <see cref="StartAsync"/>).</summary>
    public HardwareRuntime? Hardware => _hardware;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var options = gateway.Options;
        _hardware = HardwareRuntime.Start(options.Config.Hardware, options.Maintenance, gateway.Gateway.Counters, gateway.Sink);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        Interlocked.Exchange(ref _hardware, null)?.Dispose();
    }
}

/// <summary>
/// The data diode as a hosted service: starts the pollers and the publisher once the listeners are
/// up. The gateway service owns (and disposes) the telemetry service, because the events topic
/// carries audit events until the listeners are closed.
/// </summary>
public sealed class TelemetryHostedService(GatewayHostedService gateway) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (gateway.Telemetry is { } telemetry && gateway.Options.Config.Telemetry is { } config)
        {
            telemetry.Start();
            Console.Error.WriteLine($"edgeshield: telemetry to {config.Mqtt.Broker} as {telemetry.ClientId}, topics {telemetry.TopicPrefix}/…, {config.Poll.Count} devices, buffer {config.Buffer.Path}");
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
