using EdgeShield.Policy;

namespace EdgeShield.Host;

internal static class NftCommand
{
    private const string Help = """
        usage: edgeshield nft --config FILE

        Prints the nftables ruleset that fits FILE's network: section (plant and site interfaces,
        management ranges), its listeners, PLC upstreams and MQTT broker: default drop; on the
        plant side only the listeners in and the PLCs out; on the site side only MQTT out; SSH only
        from the management ranges; nothing forwarded. Load it with: edgeshield nft --config FILE | nft -f -
        Exit 0, or 2 when FILE is invalid or has no network.plant / network.site.
        """;

    public static int Execute(string[] args)
    {
        var options = Options.Parse("nft", args, ["--config"], []);
        if (options is null)
        {
            return Cli.ExitUsage;
        }
        if (options.Help)
        {
            Console.Out.Write(Help);
            return Cli.ExitOk;
        }
        if (options.Get("--config") is not { } path)
        {
            Console.Error.WriteLine("edgeshield nft: --config FILE is required");
            return Cli.ExitUsage;
        }
        var loaded = ConfigLoader.Load(path);
        foreach (var diagnostic in loaded.Diagnostics)
        {
            Console.Error.WriteLine(diagnostic.ToString());
        }
        if (loaded.HasErrors || loaded.Config is null)
        {
            Console.Error.WriteLine($"edgeshield nft: {path} is invalid");
            return Cli.ExitUsage;
        }
        var ruleset = NftRuleset.Generate(loaded.Config, out var problem);
        if (ruleset is null)
        {
            Console.Error.WriteLine($"{path}: error: {problem}");
            return Cli.ExitUsage;
        }
        Console.Out.Write(ruleset);
        return Cli.ExitOk;
    }
}
