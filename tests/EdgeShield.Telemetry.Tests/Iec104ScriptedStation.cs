using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace EdgeShield.Telemetry.Tests;

/// <summary>
/// A scripted IEC 104 controlled station on loopback, in raw bytes (no codec of the project): it answers STARTDT act with
/// STARTDT con, TESTFR act with TESTFR con, a station interrogation with actcon, the ASDUs of <see cref="Points"/>
/// and actterm, and a counter interrogation with actcon, the ASDUs of <see cref="Counters"/> and actterm (or, with
/// <see cref="RefuseCounterInterrogation"/>, a negative actcon with cause 44 unknown type), numbering its I-frames itself. A test can send any raw bytes on the current connection (spontaneous
/// ASDUs, a wrong N(S), garbage). Every APDU it receives is recorded with the number of its connection, so a test can
/// judge every byte the client ever wrote.
/// </summary>
internal sealed class Iec104ScriptedStation : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<(int Connection, byte[] Frame)> _received = new();
    private readonly Task _accept;
    private readonly object _gate = new();
    private Socket? _current;
    private int _connections;
    private ushort _sendNext;
    private ushort _receiveNext;

    private Iec104ScriptedStation(TcpListener listener)
    {
        _listener = listener;
        _accept = Task.Run(AcceptAsync);
    }

    public static Iec104ScriptedStation Start()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return new Iec104ScriptedStation(listener);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>The ASDUs sent (cause 20 is the caller's business) between actcon and actterm of every interrogation.</summary>
    public List<byte[]> Points { get; } = [];

    /// <summary>The ASDUs sent (cause 37 is the caller's business) between actcon and actterm of every counter interrogation.</summary>
    public List<byte[]> Counters { get; } = [];

    /// <summary>Answer a counter interrogation with a negative actcon, cause 44 (a station without C_CI_NA_1).</summary>
    public bool RefuseCounterInterrogation { get; set; }

    /// <summary>The common address the station answers interrogations with.</summary>
    public ushort CommonAddress { get; set; } = 7;

    /// <summary>Do not answer TESTFR act (to test t1).</summary>
    public bool IgnoreTestFr { get; set; }

    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Every APDU received, with the 1-based number of its connection.</summary>
    public IReadOnlyList<(int Connection, byte[] Frame)> Received => [.. _received];

    public int Interrogations => Received.Count(r => r.Frame.Length > 6 && r.Frame[6] == 100);

    public int CounterInterrogations => Received.Count(r => r.Frame.Length > 6 && r.Frame[6] == 101);

    /// <summary>An ASDU: TYPE, VSQ = N (SQ = 0), cause, originator 0, the CA, then the objects (IOA 3 octets LE + element each).</summary>
    public static byte[] Asdu(byte type, byte cause, ushort ca, params (uint Ioa, byte[] Element)[] objects)
    {
        var bytes = new List<byte> { type, (byte)objects.Length, cause, 0, (byte)ca, (byte)(ca >> 8) };
        foreach (var (ioa, element) in objects)
        {
            bytes.Add((byte)ioa);
            bytes.Add((byte)(ioa >> 8));
            bytes.Add((byte)(ioa >> 16));
            bytes.AddRange(element);
        }
        return [.. bytes];
    }

    public static byte[] Float(float value, byte qds = 0)
    {
        var e = new byte[5];
        BinaryPrimitives.WriteSingleLittleEndian(e, value);
        e[4] = qds;
        return e;
    }

    public static byte[] Scaled(short value, byte qds = 0)
    {
        var e = new byte[3];
        BinaryPrimitives.WriteInt16LittleEndian(e, value);
        e[2] = qds;
        return e;
    }

    /// <summary>CP56Time2a of <paramref name="time"/> (no day of week), as a station writes it.</summary>
    public static byte[] Cp56(DateTime time)
    {
        var e = new byte[7];
        BinaryPrimitives.WriteUInt16LittleEndian(e, (ushort)((time.Second * 1000) + time.Millisecond));
        e[2] = (byte)time.Minute;
        e[3] = (byte)time.Hour;
        e[4] = (byte)time.Day;
        e[5] = (byte)time.Month;
        e[6] = (byte)(time.Year - 2000);
        return e;
    }

    /// <summary>Sends <paramref name="asdu"/> in an I-frame with the station's next N(S) on the current connection.</summary>
    public Task SendAsduAsync(byte[] asdu)
    {
        lock (_gate)
        {
            return SendIFrameLocked(asdu, _sendNext);
        }
    }

    /// <summary>Sends <paramref name="asdu"/> in an I-frame with N(S) <paramref name="sendSequence"/> (a wrong one: a sequence error).</summary>
    public Task SendAsduWithSequenceAsync(byte[] asdu, ushort sendSequence)
    {
        lock (_gate)
        {
            return SendIFrameLocked(asdu, sendSequence);
        }
    }

    public Task SendRawAsync(byte[] bytes)
    {
        lock (_gate)
        {
            return _current is { } s ? s.SendAsync(bytes.AsMemory(), SocketFlags.None).AsTask() : Task.CompletedTask;
        }
    }

    private Task SendIFrameLocked(byte[] asdu, ushort sendSequence)
    {
        var frame = BuildIFrameLocked(asdu, sendSequence);
        return _current is { } s ? s.SendAsync(frame.AsMemory(), SocketFlags.None).AsTask() : Task.CompletedTask;
    }

    private byte[] BuildIFrameLocked(byte[] asdu, ushort sendSequence)
    {
        var frame = new byte[6 + asdu.Length];
        frame[0] = 0x68;
        frame[1] = (byte)(4 + asdu.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(frame.AsSpan(2), (ushort)(sendSequence << 1));
        BinaryPrimitives.WriteUInt16LittleEndian(frame.AsSpan(4), (ushort)(_receiveNext << 1));
        asdu.CopyTo(frame, 6);
        _sendNext = (ushort)((sendSequence + 1) & 0x7FFF);
        return frame;
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                int connection = Interlocked.Increment(ref _connections);
                lock (_gate)
                {
                    _current?.Dispose();
                    _current = socket;
                    _sendNext = 0;
                    _receiveNext = 0;
                }
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
        var buffer = new byte[4096];
        int filled = 0;
        try
        {
            while (true)
            {
                int read = await socket.ReceiveAsync(buffer.AsMemory(filled), _stop.Token);
                if (read == 0)
                {
                    return;
                }
                filled += read;
                int offset = 0;
                while (filled - offset >= 2 && filled - offset >= buffer[offset + 1] + 2)
                {
                    int length = buffer[offset + 1] + 2;
                    var frame = buffer.AsSpan(offset, length).ToArray();
                    offset += length;
                    _received.Enqueue((connection, frame));
                    await AnswerAsync(socket, frame);
                }
                buffer.AsSpan(offset, filled - offset).CopyTo(buffer);
                filled -= offset;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Closed.
        }
    }

    private async Task AnswerAsync(Socket socket, byte[] frame)
    {
        if (frame[0] != 0x68 || frame.Length < 6)
        {
            return;
        }
        byte c1 = frame[2];
        if ((c1 & 0x03) == 0x03)
        {
            if (c1 == 0x07)
            {
                await socket.SendAsync(new byte[] { 0x68, 4, 0x0B, 0, 0, 0 });
            }
            else if (c1 == 0x43 && !IgnoreTestFr)
            {
                await socket.SendAsync(new byte[] { 0x68, 4, 0x83, 0, 0, 0 });
            }
            return;
        }
        if ((c1 & 0x01) == 0)
        {
            Task send;
            lock (_gate)
            {
                if (!ReferenceEquals(_current, socket))
                {
                    return;
                }
                _receiveNext = (ushort)((_receiveNext + 1) & 0x7FFF);
                if (frame.Length != 16 || frame[6] is not (100 or 101))
                {
                    return;
                }
                // actcon, the points or counters, actterm: the same ASDU back with cause 7 and 10 (or 44 and P/N = 1, alone).
                var con = frame.AsSpan(6).ToArray();
                con[2] = 7;
                var term = frame.AsSpan(6).ToArray();
                term[2] = 10;
                byte[][] answer = frame[6] == 100 ? [con, .. Points, term] : RefuseCounterInterrogation ? [[.. con[..2], 0x40 | 44, .. con[3..]]] : [con, .. Counters, term];
                var all = answer.SelectMany(a => BuildIFrameLocked(a, _sendNext)).ToArray();
                send = socket.SendAsync(all.AsMemory(), SocketFlags.None).AsTask();
            }
            await send;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        lock (_gate)
        {
            _current?.Dispose();
        }
        try
        {
            await _accept;
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
