using BenchmarkDotNet.Running;

namespace EdgeShield.Benchmarks;

internal static class Program
{
    private const string Usage = """
        usage: EdgeShield.Benchmarks [BenchmarkDotNet arguments]    e.g. --filter '*' --job short
               EdgeShield.Benchmarks alloc [--conns N] [--requests N] [--warmup N]
                   in-process PLC simulator + gateway + allocation-free clients; prints bytes allocated per proxied request
               EdgeShield.Benchmarks replay [--frames N] [--rounds N] [--keep DIR] [--no-tshark]
                   builds a large capture from tests/data/modbus, replays it, and times tshark on it
               EdgeShield.Benchmarks journal [--events N] [--checkpoint-every N] [--rounds N] [--dir DIR]
                   audit writer events/s without and with the hash-chained, signed audit journal
        """;

    public static async Task<int> Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "alloc")
        {
            return await AllocationProbe.RunAsync(args.AsSpan(1).ToArray());
        }
        if (args.Length > 0 && args[0] == "replay")
        {
            return ReplayBench.Run(args.AsSpan(1).ToArray());
        }
        if (args.Length > 0 && args[0] == "journal")
        {
            return await JournalBench.RunAsync(args.AsSpan(1).ToArray());
        }
        if (args.Length > 0 && args[0] is "help" or "--usage")
        {
            Console.WriteLine(Usage);
            return 0;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
