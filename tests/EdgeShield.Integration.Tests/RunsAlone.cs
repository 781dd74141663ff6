namespace EdgeShield.Integration.Tests;

/// <summary>
/// The attack and soak tests saturate both cores for a while: they run alone, after the parallel
/// tests, so that neither they nor the others' bounded waits measure each other.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RunsAlone
{
    public const string Name = "load (runs alone)";
}
