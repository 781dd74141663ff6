using System.Buffers;
using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using EdgeShield.Policy;
using MQTTnet;
using MQTTnet.Adapter;
using MQTTnet.Exceptions;
using MQTTnet.Protocol;

namespace EdgeShield.Telemetry;

/// <summary>Something the telemetry side reports as an event (journal and the MQTT events topic).</summary>
public readonly record struct TelemetryNotice(string Reason, string Detail, long Count);

/// <summary>Messages sent when a broker session begins (Sparkplug births), before replay.</summary>
public interface ISessionStart
{
    /// <summary>The will (NDEATH or "offline") for the next connection.</summary>
    (string Topic, byte[] Payload, bool Retain) NextWill();

    /// <summary>What to publish right after connecting, in order; the seq these used is returned in <paramref name="nextSeq"/>.</summary>
    IReadOnlyList<(string Topic, byte[] Payload, bool Retain)> Births(out ulong nextSeq);
}

/// <summary>
/// The one MQTT session of the gateway. It only ever connects and publishes: there is no subscribe
/// call anywhere in EdgeShield (a test scans the assembly for it), so nothing on the IT side can
/// send it anything to act on. Everything it publishes comes from the <see cref="MessageLog"/>
/// (written ahead), with QoS 1; the log position advances only on PUBACK, so an outage or a
/// refused connection loses nothing: the log keeps it, bounded, and it is replayed in order.
/// </summary>
public sealed class TelemetryPublisher : IAsyncDisposable
{
    private const int Window = 1024;
    private static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);

    private readonly MqttConfig _config;
    private readonly MessageLog _log;
    private readonly ISessionStart _session;
    private readonly Action<TelemetryNotice> _notify;
    private readonly IMqttClient _client;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;
    private long _published;
    private long _connects;
    private ulong _sparkplugSeq;
    // The log's end when this broker session began: Sparkplug data written before it is history, sent with is_historical.
    private LogPosition _sessionStart = new(-1, 0);
    private string? _lastRefusal;
    private long _lastBirth;

    /// <summary>
    /// Births are sent again this often on a live session. A Sparkplug host asks for a rebirth with
    /// NCMD, which a diode cannot receive; periodic rebirth (and rebirth on every reconnect) is how a
    /// host that joined late learns the metrics.
    /// </summary>
    public TimeSpan RebirthInterval { get; init; } = TimeSpan.FromMinutes(10);

    public TelemetryPublisher(MqttConfig config, MessageLog log, ISessionStart session, Action<TelemetryNotice> notify)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _log = log;
        _session = session;
        _notify = notify;
        _client = new MqttClientFactory().CreateMqttClient();
    }

    /// <summary>Messages acknowledged by the broker (PUBACK), births and status included.</summary>
    public long Published => Interlocked.Read(ref _published);

    /// <summary>Successful connections so far.</summary>
    public long Connects => Interlocked.Read(ref _connects);

    public bool IsConnected => _client.IsConnected;

    public void Start() => _loop = Task.Run(() => RunAsync(_stop.Token));

    /// <summary>New records were appended to the log.</summary>
    public void Wake()
    {
        if (_wake.CurrentCount == 0)
        {
            try
            {
                _wake.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already signalled.
            }
        }
    }

    private async Task RunAsync(CancellationToken ct)
    {
        var backoff = MinBackoff;
        var inFlight = new Queue<(Task<bool> Task, LogPosition End)>(Window);
        while (!ct.IsCancellationRequested)
        {
            if (!_client.IsConnected)
            {
                if (!await TryConnectAsync(ct))
                {
                    await DelayAsync(backoff, ct);
                    backoff = backoff * 2 > MaxBackoff ? MaxBackoff : backoff * 2;
                    continue;
                }
                backoff = MinBackoff;
                _log.RewindToAcknowledged();
            }
            // A sliding window of QoS 1 publishes: up to Window in flight, acknowledged in log order.
            bool failed = false;
            LogPosition? acked = null;
            int sinceAck = 0;
            while (!failed && !ct.IsCancellationRequested)
            {
                while (inFlight.Count < Window && _log.TryReadNext(out var record))
                {
                    inFlight.Enqueue((StartPublish(record, ct), record.End));
                }
                if (inFlight.Count == 0)
                {
                    break;
                }
                var (task, end) = inFlight.Dequeue();
                bool success;
                try
                {
                    success = await task;
                }
                catch (Exception e) when (e is MqttCommunicationException or OperationCanceledException or InvalidOperationException or ObjectDisposedException)
                {
                    success = false;
                }
                if (!success)
                {
                    failed = true;
                    break;
                }
                Interlocked.Increment(ref _published);
                acked = end;
                if (++sinceAck >= 512 || inFlight.Count == 0)
                {
                    _log.Acknowledge(end);
                    sinceAck = 0;
                    acked = null;
                }
            }
            if (acked is { } position)
            {
                _log.Acknowledge(position);
            }
            if (!failed && Stopwatch.GetElapsedTime(_lastBirth) >= RebirthInterval)
            {
                failed = !await PublishBirthsAsync(ct);
            }
            if (failed)
            {
                // What was in flight behind the failure is sent again after the reconnect (at least once).
                while (inFlight.Count > 0)
                {
                    var (task, _) = inFlight.Dequeue();
                    try
                    {
                        await task;
                    }
                    catch (Exception e) when (e is MqttCommunicationException or OperationCanceledException or InvalidOperationException or ObjectDisposedException)
                    {
                        // Counted as not sent.
                    }
                }
                _log.RewindToAcknowledged();
                if (_client.IsConnected)
                {
                    await DelayAsync(MinBackoff, ct);
                }
                continue;
            }
            await WaitForDataAsync(ct);
        }
    }

    private Task<bool> StartPublish(in LogRecord record, CancellationToken ct)
    {
        if (record.IsState)
        {
            // The writer's own bookkeeping (a device's next seq): nothing to send.
            return Task.FromResult(true);
        }
        var payload = record.Payload;
        bool sparkplugData = record.Topic.StartsWith("spBv1.0/", StringComparison.Ordinal) && record.Topic.Contains("/DDATA/", StringComparison.Ordinal);
        // Data buffered before this session's births is history: its metrics are marked is_historical, so that a host
        // stores them without setting its tags back in time (the births carry the current values).
        bool historical = sparkplugData && record.End.IsAtOrBefore(_sessionStart);
        // Copy out of the log's read buffer: the next read reuses it while this publish is in flight.
        var owned = ArrayPool<byte>.Shared.Rent((historical ? SparkplugEncoder.HistoricalLength(payload.Length) : payload.Length) + 11);
        int length = historical ? SparkplugEncoder.MarkHistorical(payload.Span, owned) : -1;
        if (length < 0)
        {
            // Live data, or (never from this encoder) a payload MarkHistorical cannot read: sent as it was stored.
            payload.Span.CopyTo(owned);
            length = payload.Length;
        }
        if (sparkplugData)
        {
            // Sparkplug data gets the seq of the session it is sent in.
            length += SparkplugEncoder.AppendSeq(owned.AsSpan(length), _sparkplugSeq);
            _sparkplugSeq = (_sparkplugSeq + 1) & 0xFF;
        }
        return PublishCopyAsync(record.Topic, owned, length, record.Retain, ct);
    }

    private async Task<bool> PublishCopyAsync(string topic, byte[] rented, int length, bool retain, CancellationToken ct)
    {
        try
        {
            var message = new MqttApplicationMessageBuilder()
                .WithTopic(topic)
                .WithPayload(new ReadOnlySequence<byte>(rented, 0, length))
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                .WithRetainFlag(retain)
                .Build();
            return (await _client.PublishAsync(message, ct)).IsSuccess;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private async Task<bool> TryConnectAsync(CancellationToken ct)
    {
        var will = _session.NextWill();
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(_config.Host, _config.Port)
            .WithClientId(_config.ClientId)
            .WithCleanSession(true)
            .WithTimeout(TimeSpan.FromSeconds(5))
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(15))
            .WithWillTopic(will.Topic)
            .WithWillPayload(will.Payload)
            .WithWillRetain(will.Retain)
            .WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce);
        if (_config.Username is { } user)
        {
            string? password = _config.PasswordFile is { } file ? ReadPassword(file) : null;
            builder.WithCredentials(user, password);
        }
        if (_config.UseTls)
        {
            builder.WithTlsOptions(tls =>
            {
                tls.UseTls();
                if (_config.TlsCaFile is { } ca)
                {
                    var chain = new X509Certificate2Collection();
                    chain.ImportFromPemFile(ca);
                    tls.WithTrustChain(chain);
                }
                if (_config.TlsCertFile is { } cert && _config.TlsKeyFile is { } key)
                {
                    tls.WithClientCertificates([X509Certificate2.CreateFromPemFile(cert, key)]);
                }
            });
        }
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            var result = await _client.ConnectAsync(builder.Build(), timeout.Token);
            if (result.ResultCode != MqttClientConnectResultCode.Success)
            {
                Refused(result.ResultCode.ToString());
                return false;
            }
        }
        catch (MqttConnectingFailedException e)
        {
            Refused(e.Message);
            return false;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Our own stop, not the broker: nothing to report.
            return false;
        }
        catch (Exception e) when (e is MqttCommunicationException or OperationCanceledException or IOException or System.Net.Sockets.SocketException or InvalidOperationException or System.Security.Authentication.AuthenticationException)
        {
            Refused("unreachable: " + e.GetType().Name);
            return false;
        }
        _lastRefusal = null;
        Interlocked.Increment(ref _connects);
        // Status and births go out directly, before any replay, so a consumer knows the session first.
        _sessionStart = _log.WriteEnd;
        if (!await PublishBirthsAsync(ct))
        {
            return false;
        }
        _notify(new TelemetryNotice("broker-connected", $"connected to {_config.Broker} as {_config.ClientId}; replaying {_log.PendingBytes} buffered bytes", 1));
        return true;
    }

    private async Task<bool> PublishBirthsAsync(CancellationToken ct)
    {
        try
        {
            var births = _session.Births(out var nextSeq);
            foreach (var (topic, payload, retain) in births)
            {
                var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload)
                    .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithRetainFlag(retain).Build();
                await _client.PublishAsync(message, ct);
                Interlocked.Increment(ref _published);
            }
            _sparkplugSeq = nextSeq;
            _lastBirth = Stopwatch.GetTimestamp();
            return true;
        }
        catch (Exception e) when (e is MqttCommunicationException or OperationCanceledException or InvalidOperationException)
        {
            return false;
        }
    }

    private void Refused(string why)
    {
        if (_lastRefusal != why)
        {
            _lastRefusal = why;
            _notify(new TelemetryNotice("broker-unavailable", $"{_config.Broker}: {why}; telemetry is kept in the disk buffer until it comes back", 1));
        }
    }

    private static string ReadPassword(string file)
    {
        using var reader = new StreamReader(file);
        return reader.ReadLine() ?? "";
    }

    private async Task WaitForDataAsync(CancellationToken ct)
    {
        try
        {
            await _wake.WaitAsync(TimeSpan.FromMilliseconds(250), ct);
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private static async Task DelayAsync(TimeSpan delay, CancellationToken ct)
    {
        try
        {
            await Task.Delay(delay, ct);
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    /// <summary>Publishes what is left (up to <paramref name="drain"/>), then disconnects cleanly (the broker then does not send the will).</summary>
    public async Task StopAsync(TimeSpan drain)
    {
        // Monotonic: a wall-clock step during shutdown must neither cut the drain short nor stretch it.
        long started = Stopwatch.GetTimestamp();
        while (_client.IsConnected && !_log.IsDrained && Stopwatch.GetElapsedTime(started) < drain)
        {
            Wake();
            await Task.Delay(20);
        }
        await _stop.CancelAsync();
        if (_loop is not null)
        {
            try
            {
                await _loop;
            }
            catch (OperationCanceledException)
            {
                // Stopping.
            }
        }
        if (_client.IsConnected)
        {
            try
            {
                await _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), CancellationToken.None);
            }
            catch (MqttCommunicationException)
            {
                // Already gone.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await StopAsync(TimeSpan.Zero);
        }
        _client.Dispose();
        _stop.Dispose();
        _wake.Dispose();
    }
}
