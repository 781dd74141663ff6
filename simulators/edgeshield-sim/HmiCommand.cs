namespace EdgeShield.Simulators.Cli;

internal static class HmiCommand
{
    public static Task<int> RunAsync(Args args)
    {
        _ = args;
        throw new UsageException("hmi: not implemented yet");
    }
}
