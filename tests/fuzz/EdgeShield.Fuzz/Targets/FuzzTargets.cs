namespace EdgeShield.Fuzz;

/// <summary>
/// The fuzz targets: one per parser, each checking the parser's promises on arbitrary bytes.
/// A broken promise throws <see cref="InvariantViolationException"/>; any other exception is a
/// parser that threw on data. Both are crashes to AFL and failures in the corpus replay test.
/// </summary>
public static class FuzzTargets
{
    /// <summary>Target names, as given to <c>edgeshield-fuzz</c> and as corpus directory names.</summary>
    public static IReadOnlyList<string> Names { get; } = ["mbap", "pdu-request", "pdu-response", "rtu", "capture", "config", "s7stream", "s7response", "iec104stream"];

    /// <summary>Runs <paramref name="target"/> on <paramref name="input"/>, an array of exactly the input's length.</summary>
    public static void Run(string target, byte[] input)
    {
        ArgumentNullException.ThrowIfNull(input);
        switch (target)
        {
            case "mbap":
                MbapTarget.Run(input);
                break;
            case "pdu-request":
                PduTargets.RunRequest(input);
                break;
            case "pdu-response":
                PduTargets.RunResponse(input);
                break;
            case "rtu":
                RtuTarget.Run(input);
                break;
            case "capture":
                CaptureTarget.Run(input);
                break;
            case "config":
                ConfigTarget.Run(input);
                break;
            case "s7stream":
                S7StreamTarget.Run(input);
                break;
            case "s7response":
                S7ResponseTarget.Run(input);
                break;
            case "iec104stream":
                Iec104StreamTarget.Run(input);
                break;
            default:
                throw new ArgumentException("unknown fuzz target '" + target + "'; targets: " + string.Join(", ", Names), nameof(target));
        }
    }
}
