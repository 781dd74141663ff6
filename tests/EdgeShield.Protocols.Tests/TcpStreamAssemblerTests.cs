using EdgeShield.Protocols.Capture;

namespace EdgeShield.Protocols.Tests;

public class TcpStreamAssemblerTests
{
    private sealed class Recorder : ITcpStreamSink
    {
        public List<byte> Bytes { get; } = [];
        public List<int> Frames { get; } = [];
        public List<(int Frame, long Missing)> Gaps { get; } = [];

        public void OnData(ReadOnlySpan<byte> data, int frameNumber)
        {
            Bytes.AddRange(data.ToArray());
            Frames.Add(frameNumber);
        }

        public void OnGap(int frameNumber, long missingBytes) => Gaps.Add((frameNumber, missingBytes));
    }

    private static byte[] Range(int start, int count) => Enumerable.Range(start, count).Select(i => (byte)i).ToArray();

    [Fact]
    public void Push_InOrderAfterSyn_DeliversEveryByteOnce()
    {
        var a = new TcpStreamAssembler();
        var sink = new Recorder();
        a.Push(999, TcpControl.Syn, [], 1, sink);
        a.Push(1000, TcpControl.Ack, Range(0, 10), 2, sink);
        a.Push(1010, TcpControl.Ack, Range(10, 5), 3, sink);

        Assert.Equal(Range(0, 15), sink.Bytes);
        Assert.Equal([2, 3], sink.Frames);
        Assert.Equal(0, a.Retransmissions);
    }

    [Fact]
    public void Push_OutOfOrder_HeldUntilTheHoleFills()
    {
        var a = new TcpStreamAssembler();
        var sink = new Recorder();
        a.Push(100, TcpControl.Ack, Range(0, 4), 1, sink);
        a.Push(108, TcpControl.Ack, Range(8, 4), 2, sink);
        a.Push(112, TcpControl.Ack, Range(12, 4), 3, sink);
        Assert.Equal(4, sink.Bytes.Count);

        a.Push(104, TcpControl.Ack, Range(4, 4), 4, sink);

        Assert.Equal(Range(0, 16), sink.Bytes);
        Assert.Equal([1, 4, 4, 4], sink.Frames); // held bytes become available with the segment that filled the hole
        Assert.Equal(2, a.OutOfOrder);
        Assert.Empty(sink.Gaps);
    }

    [Fact]
    public void Push_RetransmissionsWholeAndOverlapping_AreDeliveredOnce()
    {
        var a = new TcpStreamAssembler();
        var sink = new Recorder();
        a.Push(0, TcpControl.Ack, Range(0, 8), 1, sink);
        a.Push(0, TcpControl.Ack, Range(0, 8), 2, sink);        // whole
        a.Push(4, TcpControl.Ack, Range(4, 8), 3, sink);        // overlaps 4 old, 4 new

        Assert.Equal(Range(0, 12), sink.Bytes);
        Assert.Equal(2, a.Retransmissions);
    }

    [Fact]
    public void Push_HoleNeverFilled_ReportedAsGapAtFin()
    {
        var a = new TcpStreamAssembler();
        var sink = new Recorder();
        a.Push(0, TcpControl.Ack, Range(0, 4), 1, sink);
        a.Push(10, TcpControl.Ack, Range(10, 4), 2, sink);
        a.Push(14, TcpControl.Fin | TcpControl.Ack, [], 3, sink);

        Assert.Equal([(3, 6L)], sink.Gaps);
        Assert.Equal([.. Range(0, 4), .. Range(10, 4)], sink.Bytes);
        Assert.True(a.Ended);
    }

    [Fact]
    public void Push_TooManySegmentsAhead_GivesUpOnTheHole()
    {
        var a = new TcpStreamAssembler();
        var sink = new Recorder();
        a.Push(0, TcpControl.Ack, [1], 1, sink);
        for (int i = 0; i <= TcpStreamAssembler.MaxHeldSegments; i++)
        {
            a.Push((uint)(10 + i), TcpControl.Ack, [(byte)i], 2 + i, sink);
        }

        Assert.Single(sink.Gaps);
        Assert.Equal(9, sink.Gaps[0].Missing);
        Assert.Equal(2 + TcpStreamAssembler.MaxHeldSegments, sink.Bytes.Count);
    }

    [Fact]
    public void Push_SequenceNumbersWrap_StillInOrder()
    {
        var a = new TcpStreamAssembler();
        var sink = new Recorder();
        a.Push(uint.MaxValue - 3, TcpControl.Ack, Range(0, 4), 1, sink);
        a.Push(4, TcpControl.Ack, Range(8, 4), 2, sink);
        a.Push(0, TcpControl.Ack, Range(4, 4), 3, sink);

        Assert.Equal(Range(0, 12), sink.Bytes);
        Assert.Empty(sink.Gaps);
    }

    [Fact]
    public void Acknowledge_PeerAckedBeyondTheHole_GapReportedAtOnce()
    {
        var a = new TcpStreamAssembler();
        var sink = new Recorder();
        a.Push(0, TcpControl.Ack, Range(0, 4), 1, sink);
        a.Push(8, TcpControl.Ack, Range(8, 4), 2, sink);
        a.Acknowledge(6, 3, sink); // not beyond the held segment: keep waiting
        Assert.Empty(sink.Gaps);

        a.Acknowledge(12, 4, sink);

        Assert.Equal([(4, 4L)], sink.Gaps);
        Assert.Equal([.. Range(0, 4), .. Range(8, 4)], sink.Bytes);
    }
}
