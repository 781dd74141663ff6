using EdgeShield.Gateway;
using EdgeShield.Policy;
using EdgeShield.Telemetry;
using EdgeShield.Transport;

namespace EdgeShield.Service;

/// <summary>Sends every audit event to several sinks (the journal and the MQTT events topic).</summary>
public sealed class FanOutAuditSink(params IAuditSink[] sinks) : IAuditSink
{
    public void Write(in AuditEvent auditEvent)
    {
        foreach (var sink in sinks)
        {
            sink.Write(auditEvent);
        }
    }
}

/// <summary>
/// The write end of an <see cref="AuditLog"/> whose lines go to the telemetry events topic. The
/// AuditLog in front of it gives the MQTT copy the journal's flood control and exact JSON, off the
/// frame path; this stream only splits lines and queues them (never blocking) for the publisher.
/// </summary>
public sealed class EventsTopicStream(TelemetryService telemetry) : Stream
{
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            int end = buffer.IndexOf((byte)'\n');
            var line = end < 0 ? buffer : buffer[..end];
            if (!line.IsEmpty)
            {
                telemetry.TryEnqueueEvent(line);
            }
            buffer = end < 0 ? [] : buffer[(end + 1)..];
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}

public static class TelemetryWiring
{
    /// <summary>
    /// The diode on the gateway's own upstreams: a poll entry reads through the very
    /// <see cref="TcpUpstream"/> or <see cref="SerialBus"/> the listeners use (one registry, built
    /// before either starts), so its reads share the per-PLC backoff, the bus's fair queue and counters.
    /// </summary>
    public static TelemetryService Create(EdgeShieldConfig config, TelemetryConfig telemetry, AuditLog journal, UpstreamRegistry upstreams) =>
        new(telemetry,
            config.GatewayName,
            config.Site,
            upstreams.Find,
            notice => journal.Write(AuditEvent.Service(notice.Reason, notice.Detail)),
            TimeSpan.FromSeconds(1));
}
