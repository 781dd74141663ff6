using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Policy;

/// <summary>
/// An S7 job as a rule sees it: the connection it arrived on (the called TSAP's connection type, from the
/// COTP connect) and the decoded request. <see cref="CompiledPolicy.Evaluate(SourceAddress, in S7Target, long)"/>
/// judges it with the S7 keys of the policy's rules (DESIGN.md "S7comm").
/// </summary>
public readonly ref struct S7Target(S7Connection connection, in S7Request request)
{
    public S7Connection Connection { get; } = connection;
    public S7Request Request { get; } = request;
}
