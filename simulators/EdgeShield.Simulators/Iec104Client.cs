using System.Buffers;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Simulators;

/// <summary>One APDU received by an <see cref="Iec104Client"/>: its format, the whole frame and (I-format) the ASDU.</summary>
internal readonly record struct Iec104Received(Iec104Format Format, byte[] Frame, Iec104UFunction Function)
{
    public ReadOnlySpan<byte> Asdu => Format == Iec104Format.I ? Frame.AsSpan(Iec104Limits.ApciLength) : default;
    public byte Type => Frame[Iec104Limits.ApciLength];
    public byte Cause => (byte)(Frame[Iec104Limits.ApciLength + 2] & 0x3F);
    public bool Negative => (Frame[Iec104Limits.ApciLength + 2] & 0x40) != 0;
    public ushort CommonAddress => (ushort)(Frame[Iec104Limits.ApciLength + 4] | Frame[Iec104Limits.ApciLength + 5] << 8);
    public uint Ioa => Frame.Length >= Iec104Limits.ApciLength + 9 ? (uint)(Frame[12] | Frame[13] << 8 | Frame[14] << 16) : 0;
}

/// <summary>
/// A controlling station's connection (the HMI load, the attack suite, tests): its own N(S)/N(R), S-frames
/// after w = 8 received I-frames, TESTFR act answered. Frames are delimited by <see cref="Iec104Framer"/> and
/// read by <see cref="Iec104Apdu.TryParse"/>. Not thread-safe: one caller at a time.
/// </summary>
internal sealed class Iec104Client : IDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _rx = new byte[16 * 1024];
    private int _buffered;
    private int _unacknowledged;

    private Iec104Client(Socket socket) => _socket = socket;

    /// <summary>V(S): the N(S) of the next I-frame sent.</summary>
    public ushort SendSequence { get; set; }

    /// <summary>V(R): the N(S) expected of the next I-frame received.</summary>
    public ushort ReceiveSequence { get; private set; }

    /// <summary>The station's I-frames whose N(S) was not the one expected (a sequence error seen by this client).</summary>
    public int SequenceErrors { get; private set; }

    /// <summary>Bytes from the station that did not frame as IEC 104.</summary>
    public int Garbage { get; private set; }

    public bool Closed { get; private set; }

    /// <summary>I-frames received before STARTDT con (the station must not send any).</summary>
    public int IFramesBeforeStart { get; private set; }

    private bool _started;

    /// <summary>Acknowledge after this many I-frames (w).</summary>
    public int W { get; init; } = 8;

    public static async Task<Iec104Client?> ConnectAsync(IPEndPoint target, int timeoutMs, CancellationToken ct, IPAddress? localAddress = null)
    {
        var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (localAddress is not null)
        {
            // A source address of its own (the demo's SCADA station), as a plant's SCADA has.
            socket.Bind(new IPEndPoint(localAddress, 0));
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(timeoutMs);
        try
        {
            await socket.ConnectAsync(target, timeout.Token);
            return new Iec104Client(socket);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            socket.Dispose();
            ct.ThrowIfCancellationRequested();
            return null;
        }
    }

    public async Task<bool> SendRawAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct)
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
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            Closed = true;
            return false;
        }
    }

    /// <summary>Sends <paramref name="asdu"/> in an I-frame numbered V(S), acknowledging V(R); V(S) steps.</summary>
    public Task<bool> SendAsduAsync(ReadOnlySpan<byte> asdu, CancellationToken ct)
    {
        var frame = Iec104Build.IFrame(SendSequence, ReceiveSequence, asdu);
        SendSequence = Iec104Sequence.Next(SendSequence);
        _unacknowledged = 0;
        return SendRawAsync(frame, ct);
    }

    public Task<bool> SendUAsync(Iec104UFunction function, CancellationToken ct) => SendRawAsync(Iec104Build.UFrame(function), ct);

    /// <summary>STARTDT act, then waits for its con; false when the station closed or did not confirm in time.</summary>
    public async Task<bool> StartAsync(int timeoutMs, CancellationToken ct)
    {
        if (!await SendUAsync(Iec104UFunction.StartDtAct, ct))
        {
            return false;
        }
        var con = await WaitAsync(static r => r.Format == Iec104Format.U && r.Function == Iec104UFunction.StartDtCon, timeoutMs, ct);
        _started = con is not null;
        return _started;
    }

    /// <summary>Receives until <paramref name="match"/> accepts a frame; null on timeout or close (<see cref="Closed"/>).</summary>
    public async Task<Iec104Received?> WaitAsync(Func<Iec104Received, bool> match, int timeoutMs, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(timeoutMs);
        try
        {
            while (true)
            {
                var frame = await ReceiveAsync(timeout.Token);
                if (frame is null)
                {
                    return null;
                }
                if (match(frame.Value))
                {
                    return frame;
                }
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>The next APDU (I, S or U), or null when the connection closed or sent garbage. Acknowledges and answers TESTFR on the way.</summary>
    public async Task<Iec104Received?> ReceiveAsync(CancellationToken ct)
    {
        while (true)
        {
            if (TryTake(out var received))
            {
                if (received.Format == Iec104Format.I)
                {
                    if (!_started)
                    {
                        IFramesBeforeStart++;
                    }
                    ushort ns = (ushort)((received.Frame[2] | received.Frame[3] << 8) >> 1);
                    if (ns != ReceiveSequence)
                    {
                        SequenceErrors++;
                    }
                    ReceiveSequence = Iec104Sequence.Next(ns);
                    if (++_unacknowledged >= W)
                    {
                        await AcknowledgeAsync(ct);
                    }
                }
                else if (received.Format == Iec104Format.U && received.Function == Iec104UFunction.TestFrAct)
                {
                    await SendUAsync(Iec104UFunction.TestFrCon, ct);
                }
                return received;
            }
            if (Closed)
            {
                return null;
            }
            int n;
            try
            {
                n = await _socket.ReceiveAsync(_rx.AsMemory(_buffered), SocketFlags.None, ct);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                n = 0;
            }
            if (n == 0)
            {
                Closed = true;
                return null;
            }
            _buffered += n;
        }
    }

    /// <summary>An S-frame acknowledging everything received.</summary>
    public async Task AcknowledgeAsync(CancellationToken ct)
    {
        _unacknowledged = 0;
        await SendRawAsync(Iec104Build.SFrame(ReceiveSequence), ct);
    }

    private bool TryTake(out Iec104Received received)
    {
        received = default;
        var status = Iec104Framer.Instance.TryDelimit(_rx.AsSpan(0, _buffered), out int consumed, out _);
        if (status == OperationStatus.NeedMoreData)
        {
            return false;
        }
        if (status != OperationStatus.Done || !Iec104Apdu.TryParse(_rx.AsSpan(0, consumed), out var apdu, out _))
        {
            Garbage++;
            Closed = true;
            _buffered = 0;
            return false;
        }
        received = new Iec104Received(apdu.Format, _rx.AsSpan(0, consumed).ToArray(), apdu.UFunction);
        Buffer.BlockCopy(_rx, consumed, _rx, 0, _buffered - consumed);
        _buffered -= consumed;
        return true;
    }

    public void Dispose() => _socket.Dispose();
}
