using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Protocols;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Transport.Tests;

/// <summary>
/// The TCP upstream's read loop tells its receiver when the frames of one read are all delivered
/// (<see cref="IUpstreamReceiver.OnReadCompleteAsync"/>), so that a receiver can send what they produced in one write.
/// </summary>
public sealed class TcpUpstreamTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    /// <summary>Records frames ("F" + transaction id) and ends of read ("end"), in order.</summary>
    private sealed class ReadRecorder : IUpstreamReceiver, IDisposable
    {
        private readonly SemaphoreSlim _ended = new(0);

        public ConcurrentQueue<string> Seen { get; } = new();

        public ValueTask OnResponseAsync(Memory<byte> adu, int generation)
        {
            Seen.Enqueue("F" + adu.Span[1]);
            return ValueTask.CompletedTask;
        }

        public ValueTask OnReadCompleteAsync(int generation)
        {
            Seen.Enqueue("end");
            _ended.Release();
            return ValueTask.CompletedTask;
        }

        public ValueTask OnUpstreamLost(int generation, UpstreamLoss loss, FrameFault fault) => ValueTask.CompletedTask;

        public async Task EndedAsync() => Assert.True(await _ended.WaitAsync(Bound), "no end of read within 10 s");

        public void Dispose() => _ended.Dispose();
    }

    /// <summary>An MBAP ADU (read holding registers response, 1 register) with transaction id <paramref name="id"/>.</summary>
    private static byte[] Adu(byte id) => [0, id, 0, 0, 0, 5, 1, 3, 2, 0, 42];

    [Fact]
    public async Task TwoFramesAndHalfAThirdInOneSegment_TheReceiverHearsBothFramesThenEndOfRead_ThenTheThirdAndEndOfRead()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var upstream = new TcpUpstream("127.0.0.1", ((IPEndPoint)listener.LocalEndpoint).Port, TimeSpan.FromSeconds(5));
        using var recorder = new ReadRecorder();
        var session = upstream.OpenSession(recorder, MbapStreamFramer.Instance, "test");
        await using (session)
        {
            Assert.True(await session.SendAsync(new byte[] { 0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1 }, CancellationToken.None) > 0);
            using var plc = await listener.AcceptSocketAsync().WaitAsync(Bound);
            plc.NoDelay = true;
            var third = Adu(3);
            await plc.SendAsync((byte[])[.. Adu(1), .. Adu(2), .. third[..4]]);
            await recorder.EndedAsync();
            Assert.Equal(["F1", "F2", "end"], recorder.Seen);

            await plc.SendAsync(third[4..]);
            await recorder.EndedAsync();
            Assert.Equal(["F1", "F2", "end", "F3", "end"], recorder.Seen);
        }
    }
}
