using System.Buffers;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Fuzz;

/// <summary>
/// A capture file (pcap or pcapng) as <c>replay</c>, <c>learn</c> and <c>check --against</c> read it:
/// packet records (<see cref="CaptureReader"/>), their TCP segments (<see cref="TcpPacketDecoder"/>),
/// then the whole scan (reassembly and MBAP framing, <see cref="ModbusCaptureScanner"/>).
/// </summary>
internal static class CaptureTarget
{
    public static void Run(byte[] input)
    {
        if (!CaptureReader.TryOpen(input, out var reader, out var openError))
        {
            Invariant.That(reader is null && openError != CaptureError.None, "TryOpen failed without a reason");
            return;
        }
        Invariant.That(reader is not null && openError == CaptureError.None, "TryOpen succeeded without a reader");
        NoAllocation.CheckState(new Walk(reader, input), static walk => walk.ReadAll(), "capture packet reading");

        reader.Reset();
        var observer = new Observer();
        var scanner = new ModbusCaptureScanner(observer, 502);
        var error = scanner.Scan(reader);
        Invariant.That(error == reader.Error, "the scanner's error is not the reader's");
        Invariant.That(scanner.Frames == reader.FrameCount, "the scanner counted other packets than the reader read");
    }

    private sealed class Walk(CaptureReader reader, byte[] file)
    {
        public void ReadAll()
        {
            reader.Reset();
            // Every record is at least 12 bytes (a pcapng block) or 16 (a pcap record header).
            int limit = (file.Length / 12) + 2;
            for (int n = 1; n <= limit; n++)
            {
                var status = reader.TryReadPacket(out var packet);
                if (status == OperationStatus.NeedMoreData)
                {
                    Invariant.That(reader.Error == CaptureError.None, "a clean end with an error set");
                    return;
                }
                if (status == OperationStatus.InvalidData)
                {
                    Invariant.That(reader.Error != CaptureError.None, "InvalidData without an error");
                    Invariant.That(reader.ErrorOffset >= 0 && reader.ErrorOffset <= file.Length, "error offset outside the file");
                    Invariant.That(reader.TryReadPacket(out _) == OperationStatus.InvalidData, "a reader read on past an error");
                    return;
                }
                Invariant.That(status == OperationStatus.Done, "unknown OperationStatus");
                Invariant.That(packet.FrameNumber == n && reader.FrameCount == n, "frame numbers are not 1, 2, 3, …");
                Invariant.That(Invariant.IsInside(file, packet.Data), "packet data outside the file");
                Invariant.That(packet.OriginalLength >= 0, "negative original length");
                if (TcpPacketDecoder.TryDecode(packet.LinkType, packet.Data, out var tcp) == PacketSkip.None)
                {
                    Invariant.That(Invariant.IsInside(packet.Data, tcp.Payload), "TCP payload outside its packet");
                }
            }
            Invariant.That(false, "the reader returned more packets than the file can hold");
        }
    }

    private sealed class Observer : IModbusCaptureObserver
    {
        public bool OnRequest(in CaptureContext context, in ModbusTcpFrame frame, in ModbusRequest request)
        {
            Invariant.That(request.Status != RequestStatus.Malformed, "a malformed request reported as a request");
            Invariant.That(frame.Adu.Length == frame.Length + ModbusLimits.MbapPrefixLength, "a reported ADU that does not hold");
            return true;
        }

        public void OnResponse(in CaptureContext context, in ModbusTcpFrame frame) =>
            Invariant.That(frame.Adu.Length == frame.Length + ModbusLimits.MbapPrefixLength, "a reported ADU that does not hold");

        public void OnMalformed(in CaptureContext context, bool isRequest, FramingError reason, short unitId, short functionCode) =>
            Invariant.That(reason != FramingError.None, "malformed without a reason");
    }
}
