using System.Text;

namespace EdgeShield.Gateway.Tests;

/// <summary>
/// `journalctl -p warning -u edgeshield` lists refusals and faults and nothing routine: a service event that says
/// something failed is a fault, not routine (issue 11).
/// </summary>
public class JournalPriorityTests
{
    [Theory]
    [InlineData("started", "<5>")]
    [InlineData("reloaded", "<5>")]
    [InlineData("stopping", "<5>")]
    [InlineData("broker-connected", "<5>")]
    [InlineData("reload-failed", "<3>")]
    [InlineData("hardware-unavailable", "<3>")]
    [InlineData("pcap-failed", "<3>")]
    [InlineData("buffer-full", "<3>")]
    [InlineData("buffer-corrupt", "<3>")]
    [InlineData("pcap-dropped", "<4>")]
    [InlineData("broker-unavailable", "<4>")]
    [InlineData("buffer-torn-tail", "<4>")]
    [InlineData("unsigned-config", "<4>")]
    public void ServiceEvents_ThatSaySomethingFailed_AreWarningsOrErrors(string reason, string priority)
    {
        var e = AuditEvent.Service(reason, "detail");
        Assert.Equal(priority, Encoding.ASCII.GetString(AuditLog.JournalPriority(e)));
    }

    [Fact]
    public void ASuppressedSummary_HasItsKindsPriority()
    {
        var e = new AuditEvent { Kind = AuditEventKind.Suppressed, SuppressedKind = AuditEventKind.Malformed, Reason = "x", Unit = -1, FunctionCode = -1 };
        Assert.Equal("<3>", Encoding.ASCII.GetString(AuditLog.JournalPriority(e)));
    }
}
