namespace EdgeShield.Simulators.Cli;

internal static class AttackCommand
{
    public static Task<int> RunAsync(Args args)
    {
        _ = args;
        throw new UsageException("attack: not implemented yet");
    }
}
