namespace EdgeShield.Host;

/// <summary>The command line of DESIGN.md: <c>edgeshield COMMAND [options]</c>.</summary>
internal static class Cli
{
    public const int ExitOk = 0;
    public const int ExitFault = 1;
    public const int ExitUsage = 2;

    private const string Usage = """
        edgeshield — inspecting firewall and data diode for Modbus PLC networks

        usage: edgeshield COMMAND [options]

        commands:
          run --config FILE [--trust DIR] [--state DIR]   run the gateway (stops cleanly on SIGTERM/SIGINT,
                                 reloads on SIGHUP); --trust: signed configs only, no rollback
          check --config FILE [--trust DIR]   validate a configuration; errors as FILE:LINE:COL: error: …
          replay --config FILE --pcap CAPTURE   a capture through a listener's policy, offline (--json)
          learn --pcap CAPTURE… --out FILE      a draft allow-list from captures, for review
          learn --listen --config FILE --seconds N --out FILE   … or from live traffic (monitor mode)
          nft --config FILE      print the nftables ruleset for the config's network, listeners and broker
          audit verify FILE|DIR… [--key PUB] [--checkpoints FILE]   check an audit journal's chain and signatures
          policy keygen --out KEY | sign --key KEY FILE | verify --trust DIR FILE   signed configs

        The demo (simulated PLCs, HMI traffic, a broker) is 'edgeshield-sim demo': this firmware
        binary carries only the gateway.

        Run 'edgeshield COMMAND --help' for a command's options.
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.Out.Write(Usage);
            return args.Length == 0 ? ExitUsage : ExitOk;
        }
        if (args[0] == "--version")
        {
            Console.Out.WriteLine(typeof(Cli).Assembly.GetName().Version?.ToString(3) ?? "0.0.0");
            return ExitOk;
        }
        var rest = args.AsSpan(1).ToArray();
        return args[0] switch
        {
            "run" => await RunCommand.ExecuteAsync(rest),
            "check" => CheckCommand.Execute(rest),
            "replay" => ReplayCommand.Execute(rest),
            "learn" => await LearnCommand.ExecuteAsync(rest),
            "nft" => NftCommand.Execute(rest),
            "audit" => AuditCommand.Execute(rest),
            "policy" => PolicyCommand.Execute(rest),
            _ => UnknownCommand(args[0]),
        };
    }

    private static int UnknownCommand(string command)
    {
        Console.Error.WriteLine($"edgeshield: unknown command '{command}'; commands are run, check, replay, learn, nft, audit, policy (see 'edgeshield --help')");
        return ExitUsage;
    }
}

/// <summary>A small, reflection-free option reader: <c>--name value</c> and <c>--flag</c>.</summary>
internal sealed class Options
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);

    private Options()
    {
    }

    public bool Help { get; private set; }

    /// <summary>Parses <paramref name="args"/> against the known options; prints an error and returns null on anything else.</summary>
    public static Options? Parse(string command, string[] args, string[] valueOptions, string[] flagOptions)
    {
        var options = new Options();
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            if (arg is "-h" or "--help")
            {
                options.Help = true;
            }
            else if (Array.IndexOf(valueOptions, arg) >= 0)
            {
                if (i + 1 >= args.Length)
                {
                    Console.Error.WriteLine($"edgeshield {command}: option {arg} needs a value");
                    return null;
                }
                options._values[arg] = args[++i];
            }
            else if (Array.IndexOf(flagOptions, arg) >= 0)
            {
                options._values[arg] = null;
            }
            else
            {
                Console.Error.WriteLine($"edgeshield {command}: unknown argument '{arg}'; options are {string.Join(", ", valueOptions.Concat(flagOptions).Append("--help"))}");
                return null;
            }
        }
        return options;
    }

    public string? Get(string name) => _values.TryGetValue(name, out var value) ? value : null;

    public bool Has(string name) => _values.ContainsKey(name);
}
