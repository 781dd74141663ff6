using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace EdgeShield.Telemetry;

/// <summary>
/// DESIGN.md's JSON telemetry payload, <c>{"ts":"…","v":…,"q":"good","seq":N}</c> (plus <c>"u"</c>
/// when the tag has a unit and <c>"reason"</c> when the quality is not good), written with a reused
/// <see cref="Utf8JsonWriter"/> into a reused buffer: no allocation per value.
/// </summary>
public sealed class JsonTelemetryEncoder : IDisposable
{
    private readonly ArrayBufferWriter<byte> _buffer = new(256);
    private readonly Utf8JsonWriter _json;

    public JsonTelemetryEncoder()
    {
        _json = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true });
    }

    /// <summary>Encodes one value; the span is valid until the next call.</summary>
    public ReadOnlySpan<byte> Encode(DateTime timestamp, in TagValue value, TagQuality quality, string? reason, string? unit, long seq)
    {
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
        _json.WriteStartObject();
        Span<byte> ts = stackalloc byte[32];
        WriteTimestamp(timestamp, ts, out int tsLength);
        _json.WriteString("ts"u8, ts[..tsLength]);
        switch (value.Kind)
        {
            case TagValueKind.Boolean: _json.WriteBoolean("v"u8, value.Boolean); break;
            case TagValueKind.Whole: _json.WriteNumber("v"u8, value.SignedValue); break;
            case TagValueKind.UnsignedLong: _json.WriteNumber("v"u8, value.UnsignedValue); break;
            case TagValueKind.Real when double.IsFinite(value.Real): _json.WriteNumber("v"u8, value.Real); break;
            default: _json.WriteNull("v"u8); break;
        }
        _json.WriteString("q"u8, quality switch
        {
            TagQuality.Good => "good"u8,
            TagQuality.Stale => "stale"u8,
            _ => "bad"u8,
        });
        if (quality != TagQuality.Good && reason is not null)
        {
            _json.WriteString("reason"u8, reason);
        }
        if (unit is not null)
        {
            _json.WriteString("u"u8, unit);
        }
        _json.WriteNumber("seq"u8, seq);
        _json.WriteEndObject();
        _json.Flush();
        return _buffer.WrittenSpan;
    }

    public void Dispose() => _json.Dispose();

    /// <summary>RFC 3339 UTC with milliseconds, e.g. <c>2026-01-02T03:04:05.678Z</c>.</summary>
    public static void WriteTimestamp(DateTime timestamp, Span<byte> destination, out int written) =>
        timestamp.ToUniversalTime().TryFormat(destination, out written, "yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
}
