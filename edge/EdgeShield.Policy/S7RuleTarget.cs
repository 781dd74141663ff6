using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Policy;

/// <summary>
/// An S7 job as a rule sees it: the connection it arrived on (the called TSAP's connection type, from the
/// COTP connect) and the decoded request. <see cref="CompiledPolicy.Evaluate(SourceAddress, in S7Target, long)"/>
/// judges it with the S7 keys of the policy's rules (DESIGN.md "S7comm").
/// </summary>
/// <remarks>
/// <see cref="Request"/> is a field so that rules read it in place (<c>ref readonly</c>) rather than copying
/// the large view once per rule; a ref field cannot refer to a ref struct.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1051", Justification = "Read in place by every rule of a verdict: a property would copy the request each time.")]
public readonly ref struct S7Target(S7Connection connection, in S7Request request)
{
    public readonly S7Connection Connection = connection;
    public readonly S7Request Request = request;
}
