using EdgeShield.Fuzz;
using SharpFuzz;

// edgeshield-fuzz TARGET                     run under afl-fuzz (tests/fuzz/run.sh); one input per execution
// edgeshield-fuzz replay TARGET PATH...      run files (or every file of directories) once each, outside AFL
// edgeshield-fuzz seed REPO CORPUS           write the seed corpora from REPO's captures (tests/data) and configs
if (args.Length == 1 && FuzzTargets.Names.Contains(args[0]))
{
    string target = args[0];
    Fuzzer.OutOfProcess.Run(stream =>
    {
        // An array of exactly the input's length: a read past the input is an IndexOutOfRangeException.
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        FuzzTargets.Run(target, copy.ToArray());
    });
    return 0;
}
if (args.Length >= 3 && args[0] == "replay")
{
    return Replay.Run(args[1], args[2..]);
}
if (args.Length == 3 && args[0] == "seed")
{
    return Seeds.Write(args[1], args[2]);
}
Console.Error.WriteLine("usage: edgeshield-fuzz TARGET | replay TARGET PATH... | seed REPO CORPUS");
Console.Error.WriteLine("targets: " + string.Join(", ", FuzzTargets.Names));
return 2;
