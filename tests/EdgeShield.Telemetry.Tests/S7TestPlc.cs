using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Telemetry.Tests;

/// <summary>
/// A minimal S7 PLC on loopback for the poller's tests: it answers a COTP CR with CC (or DR when told to refuse),
/// setup-communication with its PDU size, and read-var from its memory (return code 0A for a DB or area it does not
/// have, 05 past its end). It records every TPKT packet it receives, per connection, so a test can judge every byte
/// the poller ever sent. Anything else it receives is recorded and not answered.
/// </summary>
internal sealed class S7TestPlc : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<(byte Area, ushort Db), byte[]> _memory = [];
    private readonly ConcurrentQueue<(int Connection, byte[] Packet)> _received = new();
    private readonly List<Socket> _sockets = [];
    private readonly Task _accept;
    private int _connections;
    private int _readJobs;

    private S7TestPlc(TcpListener listener, ushort pduSize)
    {
        _listener = listener;
        PduSize = pduSize;
        _accept = Task.Run(AcceptAsync);
    }

    public static S7TestPlc Start(ushort pduSize = 240)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return new S7TestPlc(listener, pduSize);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public ushort PduSize { get; }
    /// <summary>Answer every CR with a DR (reason 03: address unknown), as a CPU does for a TSAP it does not serve.</summary>
    public bool RefuseConnect { get; set; }
    /// <summary>Close the connection instead of answering the read-var job with this 1-based number (0: never).</summary>
    public int DropAtReadJob { get; set; }
    /// <summary>Leave the read-var job with this 1-based number unanswered, the connection open (0: never).</summary>
    public int SilentAtReadJob { get; set; }
    /// <summary>Every TPKT packet received, with the 1-based number of its connection.</summary>
    public IReadOnlyList<(int Connection, byte[] Packet)> Received => [.. _received];
    public int Connections => Volatile.Read(ref _connections);
    public int ReadJobs => Volatile.Read(ref _readJobs);

    public void Set(S7Area area, ushort db, byte[] bytes)
    {
        lock (_memory)
        {
            _memory[((byte)area, db)] = bytes;
        }
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                lock (_sockets)
                {
                    _sockets.Add(socket);
                }
                int connection = Interlocked.Increment(ref _connections);
                _ = Task.Run(() => ServeAsync(socket, connection));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopping.
        }
    }

    private async Task ServeAsync(Socket socket, int connection)
    {
        var buffer = new byte[8192];
        var reply = new byte[4096];
        var reassembler = new CotpReassembler(new byte[4096], 4096);
        int filled = 0;
        try
        {
            while (true)
            {
                int read = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, _stop.Token);
                if (read == 0)
                {
                    return;
                }
                filled += read;
                while (true)
                {
                    int replyLength;
                    int consumed;
                    bool close;
                    {
                        var status = TpktFramer.TryReadFrame(buffer.AsSpan(0, filled), out var tpdu, out consumed, out _);
                        if (status == OperationStatus.NeedMoreData)
                        {
                            break;
                        }
                        if (status == OperationStatus.InvalidData)
                        {
                            _received.Enqueue((connection, buffer[..filled]));
                            return;
                        }
                        _received.Enqueue((connection, tpdu.Packet.ToArray()));
                        (replyLength, close) = Answer(tpdu, reassembler, reply);
                    }
                    if (replyLength > 0)
                    {
                        await socket.SendAsync(reply.AsMemory(0, replyLength), SocketFlags.None, _stop.Token);
                    }
                    if (close)
                    {
                        return;
                    }
                    buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                    filled -= consumed;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopping, or the poller closed.
        }
        finally
        {
            socket.Dispose();
        }
    }

    private (int Length, bool Close) Answer(CotpTpdu tpdu, CotpReassembler reassembler, byte[] reply)
    {
        switch (tpdu.Type)
        {
            case CotpTpduType.ConnectionRequest:
                if (RefuseConnect)
                {
                    return (CotpWriter.WriteDisconnectRequest(reply, tpdu.SourceReference, 0x0044, CotpWriter.DisconnectReasonAddressUnknown), true);
                }
                return (CotpWriter.WriteConnectConfirm(reply, tpdu.SourceReference, 0x0044, tpdu.TpduSizeCode == 0 ? (byte)0 : Math.Min(tpdu.TpduSizeCode, (byte)0x0A), tpdu.CallingTsap, tpdu.CalledTsap), false);
            case CotpTpduType.Data:
                if (reassembler.Append(tpdu, out var pdu, out _) != OperationStatus.Done)
                {
                    return (0, false);
                }
                var request = S7Pdu.ParseRequest(pdu);
                Span<byte> answer = stackalloc byte[2048];
                int length;
                if (request.Function == S7Function.SetupCommunication)
                {
                    length = SetupAnswer(answer, request.Reference, Math.Min(request.PduSize, PduSize));
                }
                else if (request.Function == S7Function.ReadVar)
                {
                    int job = Interlocked.Increment(ref _readJobs);
                    if (job == DropAtReadJob)
                    {
                        return (0, true);
                    }
                    if (job == SilentAtReadJob)
                    {
                        return (0, false);
                    }
                    length = ReadAnswer(answer, request);
                }
                else
                {
                    return (0, false);
                }
                return (CotpWriter.WriteData(reply, answer[..length], 1024), false);
            default:
                return (0, true);
        }
    }

    private static int SetupAnswer(Span<byte> pdu, ushort reference, ushort pduSize)
    {
        // 32 03 0000 REF 0008 0000 00 00 | F0 00 0001 0001 PDU
        ReadOnlySpan<byte> head = [0x32, 0x03, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0xF0, 0, 0, 1, 0, 1, 0, 0];
        head.CopyTo(pdu);
        BinaryPrimitives.WriteUInt16BigEndian(pdu[4..], reference);
        BinaryPrimitives.WriteUInt16BigEndian(pdu[18..], pduSize);
        return head.Length;
    }

    private int ReadAnswer(Span<byte> pdu, in S7Request request)
    {
        pdu[0] = 0x32;
        pdu[1] = 0x03;
        pdu[2] = 0;
        pdu[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(pdu[4..], request.Reference);
        BinaryPrimitives.WriteUInt16BigEndian(pdu[6..], 2);
        pdu[10] = 0;
        pdu[11] = 0;
        pdu[12] = 0x04;
        pdu[13] = request.ItemCount;
        int at = 14;
        int index = 0;
        foreach (var item in request.Items)
        {
            bool last = index++ == request.ItemCount - 1;
            byte[]? memory;
            lock (_memory)
            {
                _memory.TryGetValue((item.AreaCode, item.Area == S7Area.DataBlocks ? item.DbNumber : (ushort)0), out memory);
            }
            int length = item.ByteLength;
            byte code = memory is null ? (byte)0x0A : item.ByteOffset + length > memory.Length ? (byte)0x05 : (byte)0xFF;
            if (code != 0xFF)
            {
                // A failed item: its code, transport size 00, length 0, no data (as snap7 answers).
                pdu[at] = code;
                pdu[at + 1] = 0;
                BinaryPrimitives.WriteUInt16BigEndian(pdu[(at + 2)..], 0);
                at += 4;
                continue;
            }
            pdu[at] = 0xFF;
            if (item.IsBit)
            {
                pdu[at + 1] = 0x03;
                BinaryPrimitives.WriteUInt16BigEndian(pdu[(at + 2)..], 1);
                pdu[at + 4] = (byte)((memory![item.ByteOffset] >> item.BitOffset) & 1);
            }
            else
            {
                pdu[at + 1] = 0x04;
                BinaryPrimitives.WriteUInt16BigEndian(pdu[(at + 2)..], (ushort)(length * 8));
                memory.AsSpan(item.ByteOffset, length).CopyTo(pdu[(at + 4)..]);
            }
            at += 4 + length;
            if (!last && (length & 1) != 0)
            {
                pdu[at++] = 0;
            }
        }
        BinaryPrimitives.WriteUInt16BigEndian(pdu[8..], (ushort)(at - 14));
        return at;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        lock (_sockets)
        {
            foreach (var socket in _sockets)
            {
                socket.Dispose();
            }
        }
        await _accept;
        _stop.Dispose();
    }
}
