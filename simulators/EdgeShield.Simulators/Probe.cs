using System.Buffers;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Simulators;

/// <summary>What came back for one thing sent.</summary>
public enum ProbeOutcome : byte
{
    /// <summary>Nothing within the timeout, and the connection stayed open.</summary>
    NoAnswer = 0,
    /// <summary>The target closed or reset the connection without answering.</summary>
    ConnectionClosed,
    /// <summary>A Modbus exception response (<c>function | 0x80</c>, code).</summary>
    Exception,
    /// <summary>A normal Modbus response.</summary>
    Normal,
    /// <summary>Bytes that do not frame as a Modbus TCP response.</summary>
    Garbage,
    /// <summary>The TCP connection could not be opened.</summary>
    ConnectFailed,
}

/// <summary>A connection of the attacker and demo clients: send raw bytes, read one answer, notice a close. Not a hot path.</summary>
internal sealed class Probe : IDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _rx = new byte[ModbusLimits.MaxTcpAduLength * 2];
    private int _buffered;

    private Probe(Socket socket) => _socket = socket;

    public bool Closed { get; private set; }

    /// <summary>Transaction id of the last answer <see cref="ReadAnswerAsync"/> framed.</summary>
    public ushort LastTransactionId { get; private set; }

    /// <summary>Second PDU byte of the last answer (the byte count of a read response); -1 when it had none.</summary>
    public int LastSecondByte { get; private set; } = -1;

    /// <param name="source">The local address to connect from (any loopback address works on Linux); null lets the system choose.</param>
    public static async Task<Probe?> ConnectAsync(IPEndPoint target, int timeoutMs, CancellationToken ct, IPAddress? source = null)
    {
        var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(timeoutMs);
        try
        {
            if (source is not null)
            {
                socket.Bind(new IPEndPoint(source, 0));
            }
            await socket.ConnectAsync(target, timeout.Token);
            return new Probe(socket);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            socket.Dispose();
            ct.ThrowIfCancellationRequested();
            return null;
        }
    }

    public async Task<bool> SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct)
    {
        try
        {
            while (!bytes.IsEmpty)
            {
                int sent = await _socket.SendAsync(bytes, SocketFlags.None, ct);
                bytes = bytes[sent..];
            }
            return true;
        }
        catch (SocketException)
        {
            Closed = true;
            return false;
        }
    }

    public void ShutdownSend()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
            Closed = true;
        }
    }

    /// <summary>Reads the next answer: one response ADU, a close, or nothing within the timeout.</summary>
    public async Task<(ProbeOutcome Outcome, byte Code)> ReadAnswerAsync(int timeoutMs, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(timeoutMs);
        while (true)
        {
            var status = MbapFramer.TryReadFrame(_rx.AsSpan(0, _buffered), out var frame, out int used, out _);
            if (status == OperationStatus.Done)
            {
                bool exception = frame.Pdu.Length == 2 && (frame.FunctionCode & ModbusExceptionCode.ExceptionFlag) != 0;
                byte code = exception ? frame.Pdu[1] : (byte)0;
                LastTransactionId = frame.TransactionId;
                LastSecondByte = frame.Pdu.Length > 1 ? frame.Pdu[1] : -1;
                Buffer.BlockCopy(_rx, used, _rx, 0, _buffered - used);
                _buffered -= used;
                return (exception ? ProbeOutcome.Exception : ProbeOutcome.Normal, code);
            }
            if (status == OperationStatus.InvalidData)
            {
                _buffered = 0;
                return (ProbeOutcome.Garbage, 0);
            }
            if (Closed)
            {
                return (ProbeOutcome.ConnectionClosed, 0);
            }
            try
            {
                int n = await _socket.ReceiveAsync(_rx.AsMemory(_buffered), SocketFlags.None, timeout.Token);
                if (n == 0)
                {
                    Closed = true;
                    return (_buffered > 0 ? ProbeOutcome.Garbage : ProbeOutcome.ConnectionClosed, 0);
                }
                _buffered += n;
            }
            catch (SocketException)
            {
                Closed = true;
                return (ProbeOutcome.ConnectionClosed, 0);
            }
            catch (OperationCanceledException)
            {
                ct.ThrowIfCancellationRequested();
                return (ProbeOutcome.NoAnswer, 0);
            }
        }
    }

    /// <summary>Without waiting: whether the target has closed or reset the connection (unread answers count as open).</summary>
    public bool PeerClosed()
    {
        if (Closed)
        {
            return true;
        }
        try
        {
            Closed = _socket.Poll(0, SelectMode.SelectRead) && _socket.Available == 0;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            Closed = true;
        }
        return Closed;
    }

    public void Dispose() => _socket.Dispose();
}
