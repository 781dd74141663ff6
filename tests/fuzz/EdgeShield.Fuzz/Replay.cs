namespace EdgeShield.Fuzz;

/// <summary>Runs inputs once each outside AFL: to reproduce a crash and read its stack trace.</summary>
internal static class Replay
{
    public static int Run(string target, string[] paths)
    {
        int inputs = 0;
        int failures = 0;
        foreach (string path in paths)
        {
            var files = Directory.Exists(path) ? Directory.GetFiles(path) : [path];
            Array.Sort(files, StringComparer.Ordinal);
            foreach (string file in files)
            {
                inputs++;
                try
                {
                    FuzzTargets.Run(target, File.ReadAllBytes(file));
                }
#pragma warning disable CA1031 // every exception is a finding to report, not to handle
                catch (Exception e)
#pragma warning restore CA1031
                {
                    failures++;
                    Console.WriteLine($"{file}: {e.GetType().Name}: {e.Message}");
                    Console.WriteLine(e.StackTrace);
                }
            }
        }
        Console.WriteLine($"{target}: {inputs} inputs, {failures} failures");
        return failures == 0 ? 0 : 1;
    }
}
