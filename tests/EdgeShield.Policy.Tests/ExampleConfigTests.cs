namespace EdgeShield.Policy.Tests;

public class ExampleConfigTests
{
    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "EdgeShield.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("EdgeShield.slnx not found above " + AppContext.BaseDirectory);
    }

    public static TheoryData<string> Examples()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(Path.Combine(RepositoryRoot(), "firmware-config", "examples"), "*.yaml"))
        {
            data.Add(Path.GetFileName(file));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public void Example_Loads_WithoutDiagnostics(string name)
    {
        var result = ConfigLoader.Load(Path.Combine(RepositoryRoot(), "firmware-config", "examples", name));
        Assert.Empty(result.Diagnostics);
        Assert.NotNull(result.Config);
        Assert.NotEmpty(result.Config.Policies);
    }

    [Fact]
    public void Examples_Exist()
    {
        var dir = Path.Combine(RepositoryRoot(), "firmware-config", "examples");
        Assert.True(File.Exists(Path.Combine(dir, "plc-basic.yaml")));
        Assert.True(File.Exists(Path.Combine(dir, "monitor-mode.yaml")));
    }
}
