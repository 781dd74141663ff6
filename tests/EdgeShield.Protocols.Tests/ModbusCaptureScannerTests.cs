using System.Buffers.Binary;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Modbus;
using static EdgeShield.Protocols.Tests.Frames;
using ShippedReader = EdgeShield.Protocols.Capture.CaptureReader;

namespace EdgeShield.Protocols.Tests;

/// <summary>The scanner over synthetic captures: splits, coalesced ADUs, malformed streams, gaps.</summary>
public class ModbusCaptureScannerTests
{
    private sealed class Recorder : IModbusCaptureObserver
    {
        public List<(int Frame, byte Function, ushort Tid)> Requests { get; } = [];
        public List<(int Frame, byte Function)> Responses { get; } = [];
        public List<(int Frame, FramingError Reason)> Malformed { get; } = [];

        public bool OnRequest(in CaptureContext context, in ModbusTcpFrame frame, in ModbusRequest request)
        {
            Requests.Add((context.FrameNumber, request.FunctionCode, frame.TransactionId));
            return true;
        }

        public void OnResponse(in CaptureContext context, in ModbusTcpFrame frame) => Responses.Add((context.FrameNumber, frame.FunctionCode));

        public void OnMalformed(in CaptureContext context, bool isRequest, FramingError reason, short unitId, short functionCode) => Malformed.Add((context.FrameNumber, reason));
    }

    /// <summary>A raw-IPv4 classic pcap of TCP segments (source port, destination port, sequence, flags, payload).</summary>
    internal static byte[] RawCapture(params (ushort From, ushort To, uint Seq, byte Flags, byte[] Payload)[] segments)
    {
        var file = new List<byte>();
        var header = new byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(header, 0xA1B2C3D4);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(16), 65535);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(20), 101);
        file.AddRange(header);
        int i = 0;
        foreach (var (from, to, seq, flags, payload) in segments)
        {
            var ip = new byte[40 + payload.Length];
            ip[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(2), (ushort)ip.Length);
            ip[9] = 6;
            ip[12] = 10; ip[15] = from == 502 ? (byte)2 : (byte)1;
            ip[16] = 10; ip[19] = from == 502 ? (byte)1 : (byte)2;
            BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(20), from);
            BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(22), to);
            BinaryPrimitives.WriteUInt32BigEndian(ip.AsSpan(24), seq);
            ip[32] = 5 << 4;
            ip[33] = flags;
            payload.CopyTo(ip, 40);
            var record = new byte[16];
            BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)(1_700_000_000 + i++));
            BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(8), (uint)ip.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(12), (uint)ip.Length);
            file.AddRange(record);
            file.AddRange(ip);
        }
        return [.. file];
    }

    private static Recorder Scan(byte[] capture, out ModbusCaptureScanner scanner)
    {
        var recorder = new Recorder();
        scanner = new ModbusCaptureScanner(recorder, 502);
        Assert.True(CaptureReader_TryOpen(capture, out var reader));
        Assert.Equal(CaptureError.None, scanner.Scan(reader));
        return recorder;
    }

    private static bool CaptureReader_TryOpen(byte[] capture, out ShippedReader reader)
    {
        bool ok = ShippedReader.TryOpen(capture, out var r, out _);
        reader = r!;
        return ok;
    }

    [Fact]
    public void Scan_AduSplitAcrossSegmentsAndTwoInOne_FramesEachOnceAtItsLastByte()
    {
        var read = Adu(1, 1, Words(3, 0, 10));
        var write = Adu(2, 1, Words(6, 5, 7));
        var both = Cat(read, write);
        var capture = RawCapture(
            (49152, 502, 0, 0x18, both[..5]),
            (49152, 502, 5, 0x18, both[5..14]),
            (49152, 502, 14, 0x18, both[14..]),
            (502, 49152, 0, 0x18, Adu(1, 1, [3, 2, 0, 0])));

        var seen = Scan(capture, out var scanner);

        Assert.Equal([(2, (byte)3, (ushort)1), (3, (byte)6, (ushort)2)], seen.Requests);
        Assert.Equal([(4, (byte)3)], seen.Responses);
        Assert.Equal(4, scanner.Frames);
    }

    [Fact]
    public void Scan_OutOfOrderAndRetransmitted_CountsEachRequestOnce()
    {
        var a = Adu(1, 1, Words(3, 0, 1));
        var b = Adu(2, 1, Words(3, 0, 2));
        // b arrives ahead of a, then again (retransmitted); the SYN fixes where the stream starts.
        var withSyn = RawCapture(
            (49152, 502, 99 - (uint)a.Length, 0x02, []),
            (49152, 502, 100, 0x18, b),
            (49152, 502, 100 - (uint)a.Length, 0x18, a),
            (49152, 502, 100, 0x18, b));

        var seen = Scan(withSyn, out var scanner);

        Assert.Equal([1, 2], seen.Requests.Select(r => (int)r.Tid));
        Assert.Equal([3, 3], seen.Requests.Select(r => r.Frame));
        Assert.Equal(1, scanner.Retransmissions);
        Assert.Equal(1, scanner.OutOfOrder);
    }

    [Fact]
    public void Scan_WrongSizePduInAWellDelimitedAdu_IsARequest_TheDirectionGoesOn()
    {
        var bad = Adu(1, 1, [6, 0, 1, 0, 2, 0xAA, 0xBB]); // FC6 with two trailing bytes: a PLC answers 03
        var good = Adu(2, 1, Words(3, 0, 1));
        var capture = RawCapture(
            (49152, 502, 0, 0x18, bad),
            (49152, 502, (uint)bad.Length, 0x18, good));

        var seen = Scan(capture, out _);

        Assert.Empty(seen.Malformed);
        Assert.Equal([1, 2], seen.Requests.Select(r => (int)r.Tid));
    }

    [Fact]
    public void Scan_MalformedRequest_EndsThatDirectionOnly()
    {
        var bad = Adu(1, 1, [6, 0, 1, 0, 2]);
        bad[2] = 0xAA; // protocol id not 0: framing itself is lost
        var good = Adu(2, 1, Words(3, 0, 1));
        var capture = RawCapture(
            (49152, 502, 0, 0x18, bad),
            (49152, 502, (uint)bad.Length, 0x18, good),
            (502, 49152, 0, 0x18, Adu(9, 1, [3, 2, 0, 0])));

        var seen = Scan(capture, out _);

        Assert.Single(seen.Malformed);
        Assert.Equal(1, seen.Malformed[0].Frame);
        Assert.Empty(seen.Requests);
        Assert.Single(seen.Responses);
    }

    [Fact]
    public void Scan_GapMidStream_ResynchronisesOnTheNextAduWithoutCallingItMalformed()
    {
        var a = Adu(1, 1, Words(3, 0, 1));
        var lost = Adu(2, 1, Words(3, 0, 2));
        var c = Adu(3, 1, Words(3, 0, 3));
        uint s = 0;
        var capture = RawCapture(
            (49152, 502, s, 0x18, Cat(a, lost[..4])),
            // lost[4..] never captured
            (49152, 502, s + (uint)a.Length + (uint)lost.Length, 0x18, c),
            (49152, 502, s + (uint)(a.Length + lost.Length + c.Length), 0x11, []));

        var seen = Scan(capture, out var scanner);

        Assert.Equal([1, 3], seen.Requests.Select(r => (int)r.Tid));
        Assert.Empty(seen.Malformed);
        Assert.Equal(1, scanner.Gaps);
        Assert.Equal(lost.Length - 4, scanner.FirstGaps[0].MissingBytes);
    }

    [Fact]
    public void Scan_AfterAGap_AnAduThatLeavesBytesOver_IsNotYetInStep_WhatDoesNotFrameIsUnsynchronised()
    {
        // fuzz-72's shape: after lost bytes a segment frames one ADU (MBAP length 4) and leaves 2 bytes
        // over; with the next segment they make an MBAP length of 0. The stream is not in step yet, so
        // that is skipped as unsynchronised, never malformed; the next segment that frames whole is read.
        var a = Adu(1, 1, Words(3, 0, 1));
        var lost = Adu(2, 1, Words(3, 0, 2));
        byte[] odd = [0, 9, 0, 0, 0, 4, 1, 0x21, 0, 0, 0, 0];
        byte[] zero = [0, 0, 0, 0, 0, 6, 1, 0x22, 0, 0, 0, 0];
        var c = Adu(3, 1, Words(3, 0, 3));
        byte[] garbage = [0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA];
        uint s0 = 0;
        uint at = (uint)(a.Length + lost.Length);
        var capture = RawCapture(
            (49152, 502, s0, 0x18, a),
            // lost never captured
            (49152, 502, at, 0x18, odd),
            (49152, 502, at + 12, 0x18, zero),
            (49152, 502, at + 24, 0x18, c),
            (49152, 502, at + 24 + (uint)c.Length, 0x18, garbage),
            (49152, 502, at + 32 + (uint)c.Length, 0x11, []));

        var seen = Scan(capture, out var scanner);

        Assert.Equal([1, 9, 3], seen.Requests.Select(r => (int)r.Tid));
        Assert.Equal(1, scanner.Gaps);
        Assert.Equal(1, scanner.Unsynchronised);
        // In step again after c: bytes that do not frame there are malformed, as they always were.
        var malformed = Assert.Single(seen.Malformed);
        Assert.Equal(FramingError.ProtocolIdNotModbus, malformed.Reason);
    }

    [Fact]
    public void Scan_MalformedThenAGap_ReadsOnAfterTheGap()
    {
        var a = Adu(1, 1, Words(3, 0, 1));
        byte[] garbage = [0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA];
        var c = Adu(3, 1, Words(3, 0, 3));
        uint afterGarbage = (uint)(a.Length + garbage.Length);
        var capture = RawCapture(
            (49152, 502, 0, 0x18, Cat(a, garbage)),
            // 12 bytes never captured
            (49152, 502, afterGarbage + 12, 0x18, c),
            (49152, 502, afterGarbage + 12 + (uint)c.Length, 0x11, []));

        var seen = Scan(capture, out _);

        Assert.Single(seen.Malformed);
        Assert.Equal([1, 3], seen.Requests.Select(r => (int)r.Tid));
    }
}
