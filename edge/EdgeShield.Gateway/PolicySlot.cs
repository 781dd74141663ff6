using EdgeShield.Policy;

namespace EdgeShield.Gateway;

/// <summary>
/// The policy a listener enforces now. A reload swaps the reference; sessions read it per
/// request, so connections and in-flight transactions survive a reload.
/// </summary>
public sealed class PolicySlot(CompiledPolicy policy)
{
    private CompiledPolicy _current = policy;

    public CompiledPolicy Current
    {
        get => Volatile.Read(ref _current);
        set => Volatile.Write(ref _current, value);
    }
}
