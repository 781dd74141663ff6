using EdgeShield.Protocols;
using EdgeShield.Transport;

namespace EdgeShield.Gateway;

/// <summary>What the receive loop does after a protocol session judged the bytes at the start of its buffer.</summary>
internal enum ClientAction : byte
{
    /// <summary>No complete frame yet: read more.</summary>
    NeedMoreData = 0,
    /// <summary>Nothing to send (a refusal with <c>on-deny: drop</c>); go on with the next frame.</summary>
    Nothing,
    /// <summary>Answer the client with the reply the session wrote (a refusal).</summary>
    Reply,
    /// <summary>Answer the client with the reply the session wrote, then close (a refused connect).</summary>
    ReplyAndClose,
    /// <summary>Forward the request to the PLC.</summary>
    Forward,
    /// <summary>Close the connection (malformed, or <c>on-deny: close</c>).</summary>
    Close,
}

/// <summary>The outcome of <see cref="IProtocolSession.Inspect"/> for one frame.</summary>
/// <param name="Action">What the receive loop does.</param>
/// <param name="Consumed">Bytes of the client's stream the frame took (0 with <see cref="ClientAction.NeedMoreData"/>).</param>
/// <param name="Correlation">For <see cref="ClientAction.Forward"/>, the gateway's correlation id of the request.</param>
/// <param name="Length">For <see cref="ClientAction.Reply"/>, the reply's length; for a forward from the session's own buffer, its length.</param>
internal readonly record struct ClientStep(ClientAction Action, int Consumed, ushort Correlation = 0, int Length = 0);

/// <summary>
/// One protocol's side of a client connection (chosen by the listener's <c>protocol:</c>): it frames and
/// judges the client's requests, matches the PLC's answers, and answers for the PLC when it cannot.
/// The <see cref="ClientConnection"/> that hosts it owns the sockets, the receive loop, the send lock,
/// the sweep and the close; everything protocol-specific is here.
/// </summary>
internal interface IProtocolSession : IUpstreamReceiver
{
    /// <summary>How the PLC's answers are delimited; the upstream session reads with it.</summary>
    IStreamFramer ResponseFramer { get; }

    /// <summary>
    /// Frames and judges one request at the start of <paramref name="input"/>, which it may rewrite in place
    /// (a correlation id). Synchronous, so frame views never outlive the buffer; allocation-free.
    /// </summary>
    ClientStep Inspect(Span<byte> input);

    /// <summary>Sends the reply <see cref="Inspect"/> wrote for <paramref name="step"/>.</summary>
    ValueTask ReplyAsync(ClientStep step);

    /// <summary>Forwards the request <see cref="Inspect"/> allowed; <paramref name="frame"/> is its frame in the receive buffer.</summary>
    ValueTask ForwardAsync(ReadOnlyMemory<byte> frame, ClientStep step);

    /// <summary>Requests are outstanding at the PLC (the sweeper then asks <see cref="AnswerExpiredAsync"/>).</summary>
    bool HasPending { get; }

    /// <summary>Answers the requests outstanding past their deadline at <paramref name="now"/> as the protocol answers a lost one; audited.</summary>
    ValueTask AnswerExpiredAsync(long now);
}
