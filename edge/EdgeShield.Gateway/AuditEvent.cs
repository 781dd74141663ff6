using EdgeShield.Policy;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Gateway;

/// <summary>What happened. The names are what integrators read in the journal (<see cref="AuditEvents.Name"/>).</summary>
public enum AuditEventKind : byte
{
    /// <summary>A request refused by the policy.</summary>
    Denied = 0,
    /// <summary>In <c>mode: monitor</c>, a request the policy would have refused; forwarded anyway.</summary>
    WouldDeny,
    /// <summary>A well-framed request outside the spec's limits, answered by the gateway with the spec's exception.</summary>
    OutOfSpec,
    /// <summary>Bytes that are not a Modbus frame; dropped, connection closed.</summary>
    Malformed,
    /// <summary>A PLC response that does not answer its request (function, length, unit); dropped.</summary>
    ResponseMismatch,
    /// <summary>A PLC response to no outstanding request (wrong transaction id, late after a timeout); dropped.</summary>
    UnmatchedResponse,
    /// <summary>The PLC did not answer in time; the client got 0B.</summary>
    ResponseTimeout,
    /// <summary>The PLC could not be reached; the client got 0B.</summary>
    UpstreamUnreachable,
    /// <summary>The PLC connection ended with requests outstanding, or sent bytes that are not Modbus.</summary>
    UpstreamLost,
    /// <summary>A client exceeded <c>connections-per-source</c>; its connection was closed at once.</summary>
    ConnectionLimit,
    /// <summary>A client exceeded <c>pending-per-connection</c>; the request got 06.</summary>
    PendingLimit,
    /// <summary>A client connection was closed after <c>idle-timeout</c>.</summary>
    IdleTimeout,
    /// <summary>A client connection was closed because a frame it began was not complete within <c>frame-timeout</c> (slowloris).</summary>
    FrameTimeout,
    /// <summary>Events of one kind beyond the audit rate in the last interval, counted rather than written.</summary>
    Suppressed,
    /// <summary>The service started or stopped, or its configuration was loaded.</summary>
    Service,
    /// <summary>A PLC response forwarded after the gateway cleared what the spec says must be 0 (FC 1/2 padding bits).</summary>
    ResponseCorrected,
}

/// <summary>
/// One audit event. A struct with no text built on the frame path: strings here are ones that
/// already exist (listener and rule names, constant reasons); the JSON is written off the path.
/// </summary>
public readonly record struct AuditEvent
{
    /// <summary>An event of the service itself (started, reloaded, stopping, hardware, capture), not of a frame.</summary>
    public static AuditEvent Service(string reason, string detail) => new()
    {
        Time = DateTime.UtcNow,
        Kind = AuditEventKind.Service,
        Unit = -1,
        FunctionCode = -1,
        Reason = reason,
        Detail = detail,
        Count = 1,
    };

    public DateTime Time { get; init; }
    public AuditEventKind Kind { get; init; }
    /// <summary>The listener's name; null or empty for events of no listener (service events), then left out of the JSON.</summary>
    public string? Listener { get; init; }
    public SourceAddress Source { get; init; }
    public ushort SourcePort { get; init; }
    /// <summary>Unit id, or -1 when the event concerns no frame.</summary>
    public short Unit { get; init; }
    /// <summary>Function byte as sent, or -1.</summary>
    public short FunctionCode { get; init; }
    public byte MeiType { get; init; }
    /// <summary>FC 8's sub-function, or null for other functions.</summary>
    public ushort? SubFunction { get; init; }
    /// <summary>The client's transaction id of the request (Modbus TCP), or null.</summary>
    public ushort? ClientTid { get; init; }
    /// <summary>The gateway's transaction id the request went to the PLC with, or null: ties a timeout to a later unmatched response.</summary>
    public ushort? GatewayTid { get; init; }
    /// <summary>The gateway closed the client's connection because of this event.</summary>
    public bool ConnectionClosed { get; init; }
    public AddressSpan ReadSpan { get; init; }
    public AddressSpan WriteSpan { get; init; }
    /// <summary>The rule that allowed it, or that came closest to; null for none.</summary>
    public string? Rule { get; init; }
    /// <summary>The listener's protocol when it is not Modbus (<c>s7comm</c>); null for Modbus, whose events keep their shape.</summary>
    public string? Protocol { get; init; }
    /// <summary>The protocol's word for the function (S7: <c>write-var</c>, <c>plc-stop</c>…); null: Modbus names it from <see cref="FunctionCode"/>.</summary>
    public string? FunctionName { get; init; }
    /// <summary>S7: the first item the verdict is about (area, DB, byte span); default for none.</summary>
    public ProtocolItem Item { get; init; }
    /// <summary>IEC 104: the ASDU's common address, first IOA and cause; empty otherwise.</summary>
    public Iec104Fields Iec104 { get; init; }
    /// <summary>A fixed phrase: why.</summary>
    public string Reason { get; init; }
    /// <summary>The Modbus exception code sent to the client, or 0 for none.</summary>
    public byte ExceptionCode { get; init; }
    /// <summary>For <see cref="AuditEventKind.Suppressed"/>: how many (of this kind from this source); otherwise 1.</summary>
    public long Count { get; init; }
    /// <summary>For <see cref="AuditEventKind.Suppressed"/>: the kind that was suppressed.</summary>
    public AuditEventKind SuppressedKind { get; init; }
    /// <summary>Free text for service events only (never on the frame path).</summary>
    public string? Detail { get; init; }
}

/// <summary>One item of a request in protocol-neutral words: an area (S7 area code), a block (S7 DB number), a span of bytes or elements.</summary>
public readonly record struct ProtocolItem(byte Index, byte Area, ushort Block, int Start, int Length)
{
    public bool IsEmpty => Length == 0;
}

/// <summary>Where audit events go.</summary>
/// <summary>
/// What an IEC 104 event names of its ASDU: common address, first information object address and cause of
/// transmission; for a refusal, the cause of the negative confirmation the client was answered (0: none).
/// </summary>
public readonly record struct Iec104Fields(ushort CommonAddress, uint Ioa, byte Cause, byte RefusalCause = 0)
{
    public bool IsEmpty => Cause == 0;
}

public interface IAuditSink
{
    /// <summary>Records an event; must not block and must not allocate.</summary>
    void Write(in AuditEvent auditEvent);
}

public static class AuditEvents
{
    public static string Name(AuditEventKind kind) => kind switch
    {
        AuditEventKind.Denied => "denied",
        AuditEventKind.WouldDeny => "would-deny",
        AuditEventKind.OutOfSpec => "out-of-spec",
        AuditEventKind.Malformed => "malformed",
        AuditEventKind.ResponseMismatch => "response-mismatch",
        AuditEventKind.UnmatchedResponse => "unmatched-response",
        AuditEventKind.ResponseTimeout => "response-timeout",
        AuditEventKind.UpstreamUnreachable => "upstream-unreachable",
        AuditEventKind.UpstreamLost => "upstream-lost",
        AuditEventKind.ConnectionLimit => "connection-limit",
        AuditEventKind.PendingLimit => "pending-limit",
        AuditEventKind.IdleTimeout => "idle-timeout",
        AuditEventKind.FrameTimeout => "frame-timeout",
        AuditEventKind.Suppressed => "suppressed",
        AuditEventKind.Service => "service",
        AuditEventKind.ResponseCorrected => "response-corrected",
        _ => "unknown",
    };

    public static string TableName(ModbusTable table) => table switch
    {
        ModbusTable.Coils => "coils",
        ModbusTable.DiscreteInputs => "discrete-inputs",
        ModbusTable.HoldingRegisters => "holding-registers",
        ModbusTable.InputRegisters => "input-registers",
        _ => "none",
    };

    public static string Reason(DenyReason reason) => reason switch
    {
        DenyReason.SourceOrUnit => "no rule for this source and unit",
        DenyReason.Function => "function not allowed",
        DenyReason.MaintenanceKey => "maintenance key not armed",
        DenyReason.AreaOrBlock => "area or data block not allowed",
        DenyReason.Address => "address span not allowed",
        DenyReason.Value => "value or quantity not allowed",
        DenyReason.Rate => "rate limit exceeded",
        _ => "allowed",
    };

    public static string Reason(SpecViolation violation) => violation switch
    {
        SpecViolation.IllegalFunctionCode => "function code 0 or in the exception range",
        SpecViolation.QuantityOutOfRange => "quantity outside the spec's limits",
        SpecViolation.AddressOverflow => "start address plus quantity beyond 65535",
        SpecViolation.ByteCountNotQuantity => "byte count does not match the quantity",
        SpecViolation.CoilValueInvalid => "coil value other than 0x0000 or 0xFF00",
        SpecViolation.DiagnosticsDataOdd => "diagnostics data not a whole number of registers",
        SpecViolation.FileRecordInvalid => "invalid file record sub-request",
        SpecViolation.ReadDeviceIdCodeInvalid => "read device id code outside 1..4",
        SpecViolation.PduLengthInvalid => "PDU length does not fit its function (the MBAP length keeps the stream in step)",
        _ => "out of spec",
    };

    public static string Reason(ResponseError error) => error switch
    {
        ResponseError.Empty => "empty response",
        ResponseError.WrongFunction => "response function does not match the request",
        ResponseError.ExceptionLength => "exception response of wrong length",
        ResponseError.WrongLength => "response length or byte count does not match the request",
        ResponseError.WrongEcho => "echoed fields differ from the request",
        ResponseError.ExceptionCodeInvalid => "exception code 0",
        ResponseError.WrongRecords => "file record sub-responses or record lengths differ from the request",
        ResponseError.WrongDeviceIdObject => "device identification answers another read code or object than asked",
        _ => "response mismatch",
    };
}
