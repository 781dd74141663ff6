using EdgeShield.Protocols.Iec104;
using static EdgeShield.Protocols.Tests.Iec104.Iec104Frames;

namespace EdgeShield.Protocols.Tests.Iec104;

public class Iec104AsduTests
{
    /// <summary>Every type of the table whose element size is fixed.</summary>
    public static TheoryData<byte> SizedTypes()
    {
        var data = new TheoryData<byte>();
        for (int t = 0; t < 256; t++)
        {
            if (Iec104Types.ElementSize((byte)t) >= 0)
            {
                data.Add((byte)t);
            }
        }
        return data;
    }

    private static Iec104FrameError Malformed(byte[] asdu)
    {
        Assert.False(Iec104Asdu.TryParse(asdu, out var view, out var fault));
        Assert.Equal(Iec104AsduStatus.Malformed, view.Status);
        return (Iec104FrameError)fault.Detail;
    }

    [Fact]
    public void TryParse_CaptureMeasurements_GiveHeaderAndObjects()
    {
        // 090813_diverse frame 1: M_ME_NC_1, SQ 0, N 2, spontaneous, CA 3, IOA 1300 and 1301.
        var asdu = Hex("0D02010003001405000000F041001505000000314400");
        Assert.True(Iec104Asdu.TryParse(asdu, out var view, out var fault));
        Assert.False(fault.IsFault);
        Assert.Equal(Iec104AsduStatus.WellFormed, view.Status);
        Assert.Equal((byte)Iec104TypeId.M_ME_NC_1, view.Type);
        Assert.False(view.Sequence);
        Assert.Equal(2, view.Count);
        Assert.Equal(Iec104Causes.Periodic, view.Cause);
        Assert.False(view.Negative);
        Assert.False(view.Test);
        Assert.Equal(0, view.Originator);
        Assert.Equal(3, view.CommonAddress);
        Assert.Equal(1300u, view.FirstIoa);
        Assert.Equal(1300u, view.LowestIoa);
        Assert.Equal(1301u, view.HighestIoa);
        var ioas = new List<uint>();
        var values = new List<float>();
        foreach (var o in view)
        {
            ioas.Add(o.Ioa);
            values.Add(Iec104Values.Float(o.Element));
            Assert.Equal(5, o.Element.Length);
        }
        Assert.Equal([1300u, 1301u], ioas);
        Assert.Equal([30f, 708f], values);
    }

    [Fact]
    public void TryParse_CotBits_AreReadApart()
    {
        var asdu = Asdu(45, false, 1, 7, 0x1234, [1, 0, 0, 0x81], originator: 9, negative: true, test: true);
        Assert.True(Iec104Asdu.TryParse(asdu, out var view, out _));
        Assert.Equal(7, view.Cause);
        Assert.True(view.Negative);
        Assert.True(view.Test);
        Assert.Equal(9, view.Originator);
        Assert.Equal(0x1234, view.CommonAddress);
        Assert.False(view.IsGlobal);
    }

    [Theory]
    [MemberData(nameof(SizedTypes))]
    public void TryParse_EveryTypeAtItsExactSize_RoundTripsWithSq0AndSq1(byte type)
    {
        int size = Iec104Types.ElementSize(type);
        foreach (bool sequence in new[] { false, true })
        {
            foreach (int count in new[] { 1, 3 })
            {
                var objects = Objects(count, size, 1000, sequence);
                var asdu = Asdu(type, sequence, count, 3, 7, objects);
                Assert.True(Iec104Asdu.TryParse(asdu, out var view, out var fault), $"{Iec104Types.Name(type)} SQ={sequence} N={count}: {Iec104FrameErrors.Describe(fault)}");
                Assert.Equal(Iec104AsduStatus.WellFormed, view.Status);
                Assert.Equal(type, view.Type);
                Assert.Equal(count, view.Count);
                Assert.Equal(sequence, view.Sequence);
                int i = 0;
                foreach (var o in view)
                {
                    Assert.Equal(1000u + (uint)(sequence ? i : 7 * i), o.Ioa);
                    Assert.Equal(size, o.Element.Length);
                    if (size > 0)
                    {
                        Assert.Equal((byte)(i * 16), o.Element[0]);
                    }
                    i++;
                }
                Assert.Equal(count, i);
                Assert.Equal(1000u, view.LowestIoa);
                Assert.Equal(sequence ? 999u + (uint)count : 1000u + 7u * (uint)(count - 1), view.HighestIoa);

                // One octet more or less is refused, both ways, and so is the frame around it.
                Assert.Equal(Iec104FrameError.ObjectsTrailingBytes, Malformed([.. asdu, 0]));
                if (size > 0 || !sequence)
                {
                    Assert.Equal(Iec104FrameError.ObjectsTruncated, Malformed(asdu[..^1]));
                }
                var frame = IFrame(5, 6, asdu);
                Assert.True(Iec104Apdu.TryParse(frame, out var apdu, out _));
                Assert.True(Iec104Asdu.TryParse(apdu.Asdu, out var again, out _));
                Assert.Equal(view.HighestIoa, again.HighestIoa);
            }
        }
    }

    [Theory]
    [InlineData(1, 1, 2)]   // N says 2 single points, 1 carried
    [InlineData(13, 3, 2)]  // N says 2 floats, 3 carried
    [InlineData(45, 2, 1)]  // a command with a second object the count does not admit
    [InlineData(100, 1, 3)]
    public void TryParse_LengthDisagreesWithN_IsRefusedBothWays(byte type, int carried, int declared)
    {
        int size = Iec104Types.ElementSize(type);
        var asdu = Asdu(type, false, declared, 6, 1, Objects(carried, size, 1, false));
        Assert.Equal(carried < declared ? Iec104FrameError.ObjectsTruncated : Iec104FrameError.ObjectsTrailingBytes, Malformed(asdu));
        var sq = Asdu(type, true, declared, 6, 1, Objects(carried, size, 1, true));
        Assert.Equal(carried < declared ? Iec104FrameError.ObjectsTruncated : Iec104FrameError.ObjectsTrailingBytes, Malformed(sq));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(13)]
    [InlineData(102)]
    public void TryParse_Sq1WithoutBaseIoa_IsRefused(byte type)
    {
        // lib60870 issue 200: SQ = 1, N > 0 and nothing after the header was read out of bounds.
        Assert.Equal(Iec104FrameError.SequenceWithoutBaseIoa, Malformed(Asdu(type, true, 5, 3, 1, [])));
        Assert.Equal(Iec104FrameError.SequenceWithoutBaseIoa, Malformed(Asdu(type, true, 1, 3, 1, [1, 2])));
    }

    [Fact]
    public void TryParse_Sq1PastTheLastAddress_IsRefused()
    {
        Assert.True(Iec104Asdu.TryParse(Asdu(1, true, 2, 3, 1, [0xFE, 0xFF, 0xFF, 1, 1]), out var view, out _));
        Assert.Equal(0xFFFFFFu, view.HighestIoa);
        Assert.Equal(Iec104FrameError.IoaSequenceOverflow, Malformed(Asdu(1, true, 3, 3, 1, [0xFE, 0xFF, 0xFF, 1, 1, 1])));
    }

    [Fact]
    public void TryParse_NZero_IsRefused()
    {
        Assert.Equal(Iec104FrameError.ObjectCountZero, Malformed(Asdu(100, false, 0, 6, 1, [])));
        Assert.Equal(Iec104FrameError.ObjectCountZero, Malformed(Asdu(100, true, 0, 6, 1, [])));
        Assert.Equal(Iec104FrameError.ObjectCountZero, Malformed(Asdu(200, false, 0, 6, 1, [1, 2, 3])));
    }

    [Fact]
    public void TryParse_CauseZero_IsRefused()
    {
        Assert.Equal(Iec104FrameError.CauseZero, Malformed(Asdu(100, false, 1, 0, 1, [0, 0, 0, 20])));
        Assert.Equal(Iec104FrameError.CauseZero, Malformed(Asdu(100, false, 1, 0, 1, [0, 0, 0, 20], negative: true, test: true)));
        Assert.Equal(Iec104FrameError.CauseZero, Malformed(Asdu(85, false, 1, 0, 1, [0, 0, 0, 20])));
    }

    [Fact]
    public void TryParse_ShorterThanHeader_IsRefused()
    {
        Assert.Equal(Iec104FrameError.AsduHeaderTruncated, Malformed([]));
        Assert.Equal(Iec104FrameError.AsduHeaderTruncated, Malformed([100, 1, 6, 0, 1]));
    }

    [Fact]
    public void TryParse_FileSegment_IsSizedByItsOwnLength()
    {
        // F_SG_NA_1: IOA, NOF 2, NOS 1, LOS, segment.
        byte[] segment = [0xAA, 0xBB, 0xCC];
        byte[] objects = [.. Ioa(77), 2, 0, 1, (byte)segment.Length, .. segment];
        Assert.True(Iec104Asdu.TryParse(Asdu(125, false, 1, 13, 1, objects), out var view, out _));
        Assert.Equal(Iec104AsduStatus.WellFormed, view.Status);
        int n = 0;
        foreach (var o in view)
        {
            Assert.Equal(77u, o.Ioa);
            Assert.Equal(4 + segment.Length, o.Element.Length);
            Assert.Equal(segment, o.Element[4..].ToArray());
            n++;
        }
        Assert.Equal(1, n);

        // An empty segment is well-formed.
        Assert.True(Iec104Asdu.TryParse(Asdu(125, false, 1, 13, 1, [.. Ioa(77), 2, 0, 1, 0]), out _, out _));
    }

    [Fact]
    public void TryParse_FileSegmentLengthLies_AreRefused()
    {
        Assert.Equal(Iec104FrameError.SegmentLengthMismatch, Malformed(Asdu(125, false, 1, 13, 1, [.. Ioa(77), 2, 0, 1, 4, 0xAA, 0xBB, 0xCC])));
        Assert.Equal(Iec104FrameError.SegmentLengthMismatch, Malformed(Asdu(125, false, 1, 13, 1, [.. Ioa(77), 2, 0, 1, 2, 0xAA, 0xBB, 0xCC])));
        Assert.Equal(Iec104FrameError.SegmentLengthMismatch, Malformed(Asdu(125, false, 1, 13, 1, [.. Ioa(77), 2, 0, 1, 255])));
        Assert.Equal(Iec104FrameError.ObjectsTruncated, Malformed(Asdu(125, false, 1, 13, 1, [.. Ioa(77), 2, 0, 1])));
        Assert.Equal(Iec104FrameError.SegmentNotSingle, Malformed(Asdu(125, false, 2, 13, 1, [.. Ioa(77), 2, 0, 1, 0, .. Ioa(78), 2, 0, 1, 0])));
        Assert.Equal(Iec104FrameError.SegmentNotSingle, Malformed(Asdu(125, true, 1, 13, 1, [.. Ioa(77), 2, 0, 1, 0])));
    }

    [Theory]
    [InlineData(41)]
    [InlineData(81)]
    [InlineData(95)]
    [InlineData(104)]
    [InlineData(106)]
    [InlineData(0)]
    [InlineData(255)]
    public void TryParse_UnsizedType_IsUnknownTypeWithItsHeader(byte type)
    {
        Assert.True(Iec104Asdu.TryParse(Asdu(type, false, 4, 6, 9, [0x10, 0x27, 0, 1, 2, 3, 4, 5, 6, 7]), out var view, out var fault));
        Assert.False(fault.IsFault);
        Assert.Equal(Iec104AsduStatus.UnknownType, view.Status);
        Assert.Equal(type, view.Type);
        Assert.Equal(9, view.CommonAddress);
        Assert.Equal(4, view.Count);
        Assert.Equal(10000u, view.FirstIoa);
        Assert.Equal(10000u, view.LowestIoa);
        Assert.Equal(10000u, view.HighestIoa);
        foreach (var o in view)
        {
            Assert.Fail("an unknown type has no objects to walk");
        }
        Assert.True(Iec104Asdu.TryParse(Asdu(type, false, 1, 6, 9, []), out var bare, out _));
        Assert.Equal(0u, bare.FirstIoa);
    }

    [Fact]
    public void Types_Table_MatchesIec104Md()
    {
        // Spot checks of docs/IEC104.md "Types" against the table, including the derived time-tagged sizes.
        Assert.Equal(1, Iec104Types.ElementSize(1));
        Assert.Equal(8, Iec104Types.ElementSize(30));
        Assert.Equal(12, Iec104Types.ElementSize(37));
        Assert.Equal(10, Iec104Types.ElementSize(38));
        Assert.Equal(11, Iec104Types.ElementSize(39));
        Assert.Equal(11, Iec104Types.ElementSize(40));
        Assert.Equal(12, Iec104Types.ElementSize(63));
        Assert.Equal(11, Iec104Types.ElementSize(64));
        Assert.Equal(0, Iec104Types.ElementSize(102));
        Assert.Equal(9, Iec104Types.ElementSize(107));
        Assert.Equal(13, Iec104Types.ElementSize(126));
        Assert.Equal(16, Iec104Types.ElementSize(127));
        Assert.Equal(Iec104Types.VariableSize, Iec104Types.ElementSize(125));
        Assert.Equal(Iec104Types.Unsized, Iec104Types.ElementSize(41));
        Assert.Equal(Iec104Types.Unsized, Iec104Types.ElementSize(104));
    }

    [Fact]
    public void CauseNames_AreTheAuditWords()
    {
        Assert.Equal("activation", Iec104Causes.Name(6));
        Assert.Equal("unknown common address", Iec104Causes.Name(46));
        Assert.Equal("group interrogation 16", Iec104Causes.Name(36));
        Assert.Equal("counter group interrogation 4", Iec104Causes.Name(41));
        Assert.Equal("reserved", Iec104Causes.Name(15));
        Assert.Equal("reserved", Iec104Causes.Name(63));
    }

    [Fact]
    public void DefaultViews_ReadAsNothing_WithoutThrowing()
    {
        Iec104Asdu asdu = default;
        Assert.Equal(Iec104AsduStatus.Malformed, asdu.Status);
        Assert.Equal(0, asdu.Type);
        Assert.Equal(0, asdu.Count);
        Assert.Equal(0, asdu.CommonAddress);
        Assert.Equal(0u, asdu.FirstIoa);
        Assert.False(asdu.IsCommand);
        Assert.False(asdu.IsSelect);
        Assert.False(asdu.QualifierValid);
        Assert.False(asdu.TryGetValue(out _, out _));
        Assert.False(asdu.TryGetCommandKey(out _));
        foreach (var o in asdu)
        {
            Assert.Fail("a default view has no objects");
        }
        Iec104Apdu apdu = default;
        Assert.False(apdu.IsParsed);
        Assert.Equal(0, apdu.SendSequence);
        Assert.Equal(0, apdu.ReceiveSequence);
        Assert.True(apdu.Asdu.IsEmpty);
        Assert.False(Iec104Apdu.TryParse([0x68, 4, 0x47, 0, 0, 0], out apdu, out _));
        Assert.False(apdu.IsParsed);
        Assert.False(Iec104Asdu.TryParse([100, 0, 6, 0, 1, 0], out asdu, out _));
        Assert.Equal(0, asdu.Type);
        Assert.Equal(Iec104TypeGroup.Unknown, asdu.Group);
    }
}
