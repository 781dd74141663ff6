using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

public class FunctionTests
{
    public static TheoryData<string, byte, byte> Names => new()
    {
        { "read-coils", 1, 0 },
        { "read-discrete-inputs", 2, 0 },
        { "read-holding-registers", 3, 0 },
        { "read-input-registers", 4, 0 },
        { "write-single-coil", 5, 0 },
        { "write-single-register", 6, 0 },
        { "read-exception-status", 7, 0 },
        { "get-comm-event-counter", 11, 0 },
        { "get-comm-event-log", 12, 0 },
        { "write-multiple-coils", 15, 0 },
        { "write-multiple-registers", 16, 0 },
        { "report-server-id", 17, 0 },
        { "read-file-record", 20, 0 },
        { "write-file-record", 21, 0 },
        { "mask-write-register", 22, 0 },
        { "read-write-multiple-registers", 23, 0 },
        { "read-fifo-queue", 24, 0 },
        { "read-device-identification", 43, 14 },
        { "canopen-general-reference", 43, 13 },
    };

    private static readonly (byte Code, byte Mei)[] AllFunctions =
    [
        (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0), (8, 0), (11, 0), (12, 0), (15, 0), (16, 0), (17, 0),
        (20, 0), (21, 0), (22, 0), (23, 0), (24, 0), (43, 13), (43, 14), (65, 0), (72, 0), (90, 0), (100, 0), (110, 0), (127, 0),
    ];

    private static List<(byte, byte)> AllowedBy(string function)
    {
        var policy = Compile($"      - function: {function}\n");
        var allowed = new List<(byte, byte)>();
        foreach (var (code, mei) in AllFunctions)
        {
            var verdict = Evaluate(policy, "10.0.0.1", 1, PduFor(code, mei));
            if (verdict.IsAllowed)
            {
                allowed.Add((code, mei));
            }
            else
            {
                Assert.Equal(DenyReason.Function, verdict.Reason);
            }
        }
        return allowed;
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Function_Name_AllowsExactlyItsFunction(string name, byte code, byte mei)
    {
        Assert.Equal([(code, mei)], AllowedBy(name));
    }

    [Fact]
    public void Function_Bare43_MeansReadDeviceIdentificationOnly()
    {
        Assert.Equal([(43, 14)], AllowedBy("43"));
    }

    [Fact]
    public void Function_Number_AllowsThatCode()
    {
        Assert.Equal([(90, 0)], AllowedBy("90"));
        Assert.Equal([(8, 0)], AllowedBy("8"));
    }

    [Fact]
    public void Function_ReadGroup_IsReadFunctionsAnd43Slash14()
    {
        Assert.Equal([(1, 0), (2, 0), (3, 0), (4, 0), (20, 0), (24, 0), (43, 14)], AllowedBy("read"));
    }

    [Fact]
    public void Function_WriteGroup_IsWriteFunctions()
    {
        Assert.Equal([(5, 0), (6, 0), (15, 0), (16, 0), (21, 0), (22, 0), (23, 0)], AllowedBy("write"));
    }

    [Fact]
    public void Function_DiagnosticsGroup_IsSerialDiagnostics()
    {
        Assert.Equal([(7, 0), (8, 0), (11, 0), (12, 0), (17, 0)], AllowedBy("diagnostics"));
    }

    [Fact]
    public void Function_ProgramGroup_IsUserCodesAnd90()
    {
        Assert.Equal([(65, 0), (72, 0), (90, 0), (100, 0), (110, 0)], AllowedBy("program"));
        var policy = Compile("      - function: program\n");
        for (var code = 1; code < 128; code++)
        {
            var expected = code is (>= 65 and <= 72) or 90 or (>= 100 and <= 110);
            Assert.Equal(expected, Evaluate(policy, "10.0.0.1", 1, PduFor((byte)code, 14)).IsAllowed);
        }
    }

    [Fact]
    public void Function_AllGroupsTogether_NeverImplyCanOpen()
    {
        Assert.DoesNotContain(((byte)43, (byte)13), AllowedBy("[read, write, diagnostics, program, 43]"));
    }

    [Fact]
    public void Function_Mei43WithOtherType_IsFunctionDenied()
    {
        var policy = Compile("      - function: [read, canopen-general-reference]\n");
        Assert.Equal(DenyReason.Function, Evaluate(policy, "10.0.0.1", 1, [43, 0x0F, 0, 0]).Reason);
    }

    [Fact]
    public void Function_NumbersAndNamesMix_AllowsUnion()
    {
        Assert.Equal([(1, 0), (3, 0), (127, 0)], AllowedBy("[1, read-holding-registers, 127]"));
    }
}
