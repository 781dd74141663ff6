namespace EdgeShield.Policy;

/// <summary>
/// How the gateway answers a refused IEC 104 command under <c>on-deny: exception</c> (DESIGN.md "IEC 60870-5-104"):
/// as a station does, with the same ASDU mirrored, P/N = 1 and the cause of transmission <see cref="Cause"/> gives.
/// </summary>
public static class Iec104Refusals
{
    /// <summary>Cause 5: request (C_RD_NA_1 is sent and refused with it).</summary>
    public const byte CauseRequest = 5;
    /// <summary>Cause 6: activation.</summary>
    public const byte CauseActivation = 6;
    /// <summary>Cause 7: activation confirmation.</summary>
    public const byte CauseActivationConfirmation = 7;
    /// <summary>Cause 8: deactivation.</summary>
    public const byte CauseDeactivation = 8;
    /// <summary>Cause 9: deactivation confirmation.</summary>
    public const byte CauseDeactivationConfirmation = 9;
    /// <summary>Cause 44: unknown type identification.</summary>
    public const byte CauseUnknownType = 44;
    /// <summary>Cause 46: unknown common address of ASDU.</summary>
    public const byte CauseUnknownCommonAddress = 46;
    /// <summary>Cause 47: unknown information object address.</summary>
    public const byte CauseUnknownIoa = 47;

    /// <summary>102 C_RD_NA_1: a read, whose refusal for its values, rate or maintenance keeps cause 5.</summary>
    private const byte ReadCommand = 102;

    /// <summary>The cause of a station's confirmation of a request of cause <paramref name="requestCause"/>: 9 for a deactivation, else 7.</summary>
    public static byte ConfirmationCause(byte requestCause) =>
        requestCause == CauseDeactivation ? CauseDeactivationConfirmation : CauseActivationConfirmation;

    /// <summary>
    /// The cause (bits 0-5 of the COT; P/N = 1 is the session's) a refused request is answered with: no rule for
    /// its common address (<see cref="DenyReason.SourceOrUnit"/>) → 46; its type → 44; its IOA span → 47; anything
    /// else (qualifier, value, select-before-operate, rate, disarmed maintenance rule) → 7, or 9 when the request
    /// was a deactivation (cause 8), except that a refused read (102 C_RD_NA_1) keeps its cause 5. 0 when allowed.
    /// </summary>
    public static byte Cause(in Verdict verdict, byte requestType, byte requestCause)
    {
        if (verdict.IsAllowed)
        {
            return 0;
        }
        return verdict.Reason switch
        {
            DenyReason.SourceOrUnit => CauseUnknownCommonAddress,
            DenyReason.Function => CauseUnknownType,
            DenyReason.Address => CauseUnknownIoa,
            _ when requestType == ReadCommand => CauseRequest,
            _ when requestCause == CauseDeactivation => CauseDeactivationConfirmation,
            _ => CauseActivationConfirmation,
        };
    }
}
