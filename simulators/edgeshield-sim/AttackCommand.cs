namespace EdgeShield.Simulators.Cli;

internal static class AttackCommand
{
    private const string Help = """
        usage: edgeshield-sim attack --target HOST:PORT [--case NAME] [--unit U] [--timeout-ms N] [--list]
          --target HOST:PORT   the gateway (or PLC) to attack
          --case NAME          run one case (repeatable); default: all
          --unit U             unit id of the Modbus requests (default 1)
          --timeout-ms N       wait this long for an answer before "no answer" (default 1000)
          --list               print the case names
        Prints one line per case: NAME: exception XX | connection closed | no answer | answered normally.
        """;

    public static async Task<int> RunAsync(Args args)
    {
        System.Net.IPEndPoint? target = null;
        var cases = new List<string>();
        int unit = 1, timeoutMs = 1000;
        for (string? option = args.NextOption(); option is not null; option = args.NextOption())
        {
            switch (option)
            {
                case "--help" or "-h":
                    Console.WriteLine(Help);
                    return 0;
                case "--list":
                    foreach (string name in AttackSuite.CaseNames)
                    {
                        Console.WriteLine(name);
                    }
                    return 0;
                case "--target":
                    target = args.EndPoint(option);
                    break;
                case "--case":
                    string value = args.Value(option);
                    if (!AttackSuite.CaseNames.Contains(value))
                    {
                        throw new UsageException($"attack: no case '{value}' (attack --list names them)");
                    }
                    cases.Add(value);
                    break;
                case "--unit":
                    unit = args.Int(option, 0, 255);
                    break;
                case "--timeout-ms":
                    timeoutMs = args.Int(option, 1, 60_000);
                    break;
                default:
                    throw new UsageException($"attack: unknown argument '{option}' (see attack --help)");
            }
        }
        if (target is null)
        {
            throw new UsageException("attack: --target HOST:PORT is required");
        }
        var options = new AttackOptions { Unit = (byte)unit, AnswerTimeoutMs = timeoutMs };
        using var stop = Cli.StopOnSignal(out var signals);
        using (signals)
        {
            foreach (string name in cases.Count > 0 ? cases : AttackSuite.CaseNames)
            {
                var result = await AttackSuite.RunCaseAsync(target, name, options, stop.Token);
                Console.WriteLine(result);
            }
        }
        return 0;
    }
}
