using EdgeShield.Gateway;

namespace EdgeShield.Service;

/// <summary>Audit events of the service itself (started, reloaded, stopping, hardware), not of a frame.</summary>
public static class ServiceEvents
{
    public static AuditEvent Create(string reason, string detail) => new()
    {
        Time = DateTime.UtcNow,
        Kind = AuditEventKind.Service,
        Listener = "",
        Unit = -1,
        FunctionCode = -1,
        Reason = reason,
        Detail = detail,
        Count = 1,
    };
}
