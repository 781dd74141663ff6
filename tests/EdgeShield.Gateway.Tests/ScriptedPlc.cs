using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Gateway.Tests;

/// <summary>
/// A PLC on 127.0.0.1:0 whose answers a test writes: for each request ADU it calls <see cref="Answer"/>
/// (unit id and PDU of the response, or null for no answer) and sends it under the request's
/// transaction id. <see cref="StopReading"/> makes it stop reading its sockets (its TCP window fills).
/// </summary>
internal sealed class ScriptedPlc : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<Socket> _sockets = [];
    private readonly Task _accept;
    private volatile bool _stopReading;

    public ScriptedPlc(Func<byte[], byte[]?> answer)
    {
        Answer = answer;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        // Small, so that a PLC that stops reading closes its window soon (accepted sockets inherit it).
        _listener.Server.ReceiveBufferSize = 4096;
        _listener.Start();
        _accept = AcceptAsync();
    }

    public Func<byte[], byte[]?> Answer { get; set; }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Request ADUs received, in order (the gateway's transaction ids).</summary>
    public ConcurrentQueue<byte[]> Requests { get; } = new();

    public int Connections => _sockets.Count;

    /// <summary>From now on, read nothing more: the gateway's sends to this PLC stall once the window is full.</summary>
    public bool StopReading { get => _stopReading; set => _stopReading = value; }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                _sockets.Add(socket);
                _ = ServeAsync(socket);
            }
        }
        // InvalidOperationException ("Not listening"): DisposeAsync stopped the listener between two
        // accepts, before this loop saw the cancellation (a CI run met that race once).
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException
                                  || (e is InvalidOperationException && _stop.IsCancellationRequested))
        {
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        var buffer = new byte[8192];
        int filled = 0;
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                while (_stopReading)
                {
                    await Task.Delay(20, _stop.Token);
                }
                int read = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, _stop.Token);
                if (read == 0)
                {
                    return;
                }
                filled += read;
                int offset = 0;
                while (MbapFramer.TryReadFrame(buffer.AsSpan(offset, filled - offset), out var frame, out int consumed, out _) == OperationStatus.Done)
                {
                    var request = frame.Adu.ToArray();
                    ushort tid = frame.TransactionId;
                    offset += consumed;
                    Requests.Enqueue(request);
                    if (Answer(request) is { } unitAndPdu)
                    {
                        var response = new byte[6 + unitAndPdu.Length];
                        MbapFramer.WriteHeader(response, tid, unitAndPdu[0], unitAndPdu.Length - 1);
                        unitAndPdu.AsSpan(1).CopyTo(response.AsSpan(7));
                        await socket.SendAsync(response, SocketFlags.None, _stop.Token);
                    }
                }
                buffer.AsSpan(offset, filled - offset).CopyTo(buffer);
                filled -= offset;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        foreach (var socket in _sockets)
        {
            socket.Dispose();
        }
        await _accept;
        _stop.Dispose();
    }
}
