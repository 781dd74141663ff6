using EdgeShield.Policy;
using static EdgeShield.Policy.Tests.TestPolicies;

namespace EdgeShield.Policy.Tests;

/// <summary>What a reload compares: each top-level section's content, not its layout.</summary>
public class SectionHashTests
{
    private const string Base = """
        gateway: { name: gw1, site: lab }
        listeners:
          - { name: a, bind: 127.0.0.1:1502, upstream: tcp://127.0.0.1:502, policy: p }
        policies:
          p: { mode: enforce }
        """;

    private static EdgeShieldConfig Config(string yaml)
    {
        var result = Load(yaml);
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        return result.Config!;
    }

    [Fact]
    public void SameContent_OtherLayoutAndComments_NothingChanged()
    {
        var flow = Config(Base);
        var block = Config("""
            # the line 3 gateway
            gateway:
              name: gw1     # as on the label
              site: lab
            listeners:
              - name: a
                bind: 127.0.0.1:1502
                upstream: tcp://127.0.0.1:502
                policy: p
            policies:
              p:
                mode: enforce
            """);

        Assert.Equal(["gateway", "listeners", "policies"], flow.SectionHashes.Keys.Order());
        Assert.Empty(EdgeShieldConfig.ChangedSections(flow, block));
        Assert.NotEqual(flow.Hash, block.Hash); // the file's own hash sees the difference; the sections do not
    }

    [Fact]
    public void ChangedListenerLimit_OnlyListenersDiffer()
    {
        var before = Config(Base);
        var after = Config(Base.Replace("policy: p }", "policy: p, limits: { idle-timeout: 1m } }", StringComparison.Ordinal));

        Assert.Equal(["listeners"], EdgeShieldConfig.ChangedSections(before, after));
    }

    [Fact]
    public void QuotingMatters_AddedAndRemovedSectionsCount()
    {
        var before = Config(Base);
        // "enforce" quoted is the same mode, but a quoted scalar is a different YAML value: counted as changed.
        var quoted = Config(Base.Replace("mode: enforce", "mode: \"enforce\"", StringComparison.Ordinal));
        var withAudit = Config(Base + "\naudit:\n  pcap: { path: /tmp/d.pcapng }\n");
        var withoutGateway = Config(Base.Replace("gateway: { name: gw1, site: lab }\n", "", StringComparison.Ordinal));

        Assert.Equal(["policies"], EdgeShieldConfig.ChangedSections(before, quoted));
        Assert.Equal(["audit"], EdgeShieldConfig.ChangedSections(before, withAudit));
        Assert.Equal(["audit"], EdgeShieldConfig.ChangedSections(withAudit, before));
        Assert.Equal(["gateway"], EdgeShieldConfig.ChangedSections(before, withoutGateway));
    }
}
