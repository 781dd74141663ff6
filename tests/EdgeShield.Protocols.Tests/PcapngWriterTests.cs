using System.Buffers;
using System.Diagnostics;
using System.Net;
using EdgeShield.Protocols.Capture;
using static EdgeShield.Protocols.Tests.Frames;
using ShippedReader = EdgeShield.Protocols.Capture.CaptureReader;

namespace EdgeShield.Protocols.Tests;

/// <summary>The forensics pcapng writer: Wireshark (tshark) reads what it writes, comments included; it rotates.</summary>
public class PcapngWriterTests
{
    private static UInt128 Address(string text)
    {
        var bytes = IPAddress.Parse(text).MapToIPv6().GetAddressBytes();
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    private static (int Exit, string Output) Tshark(string path, params string[] fields)
    {
        var start = new ProcessStartInfo("tshark") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])["-r", path, "-T", "fields", "-E", "separator=;"])
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var field in fields)
        {
            start.ArgumentList.Add("-e");
            start.ArgumentList.Add(field);
        }
        using var process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(60_000), "tshark did not finish");
        return (process.ExitCode, output);
    }

    [Fact]
    public void Write_Ipv4AndIpv6Adus_TsharkDissectsThemWithTheirComments()
    {
        string path = Path.Combine(Path.GetTempPath(), $"forensics-{Guid.NewGuid():N}.pcapng");
        try
        {
            using (var writer = new PcapngWriter(path, 1 << 20))
            {
                writer.Write(1_700_000_000_123_456_789, Address("10.0.0.5"), 49152, Address("10.0.0.1"), 502, 1000, Adu(7, 1, Words(6, 500, 1)), "denied: address (02), rule setpoints");
                writer.Write(1_700_000_001_000_000_000, Address("fd00::5"), 49153, Address("fd00::1"), 502, 2000, Adu(8, 2, [90, 0, 1]), "malformed: bytes after the PDU's structure");
            }

            var (exit, output) = Tshark(path, "frame.number", "ip.src", "ipv6.src", "modbus.func_code", "mbtcp.trans_id", "frame.comment");
            Assert.Equal(0, exit);
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(2, lines.Length);
            Assert.Equal("1;10.0.0.5;;6;7;denied: address (02), rule setpoints", lines[0]);
            Assert.Equal("2;;fd00::5;90;8;malformed: bytes after the PDU's structure", lines[1]);

            // Our own reader agrees, timestamps to the nanosecond.
            Assert.True(ShippedReader.TryOpen(File.ReadAllBytes(path), out var reader, out _));
            Assert.Equal(OperationStatus.Done, reader!.TryReadPacket(out var first));
            Assert.Equal(1_700_000_000_123_456_789, first.TimestampNs);
            Assert.Equal(PacketSkip.None, TcpPacketDecoder.TryDecode(first.LinkType, first.Data, out var tcp));
            Assert.Equal(Adu(7, 1, Words(6, 500, 1)), tcp.Payload.ToArray());
            Assert.Equal(1000u, tcp.Sequence);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Write_PastMaxBytes_RotatesToPathDot1_BothFilesReadable()
    {
        string path = Path.Combine(Path.GetTempPath(), $"forensics-{Guid.NewGuid():N}.pcapng");
        try
        {
            int rotations;
            using (var writer = new PcapngWriter(path, 1024))
            {
                for (uint i = 0; i < 20; i++)
                {
                    writer.Write(1_700_000_000_000_000_000 + i, Address("10.0.0.5"), 49152, Address("10.0.0.1"), 502, i * 12, Adu((ushort)i, 1, Words(3, 0, 10)), $"denied {i}");
                }
                rotations = writer.Rotations;
            }

            Assert.True(rotations >= 2, $"{rotations} rotations");
            Assert.True(new FileInfo(path).Length <= 1024);
            Assert.True(new FileInfo(path + ".1").Length <= 1024);
            var (exit, current) = Tshark(path, "mbtcp.trans_id");
            var (exitOld, old) = Tshark(path + ".1", "mbtcp.trans_id");
            Assert.Equal(0, exit);
            Assert.Equal(0, exitOld);
            var ids = old.Split('\n', StringSplitOptions.RemoveEmptyEntries).Concat(current.Split('\n', StringSplitOptions.RemoveEmptyEntries)).Select(int.Parse).ToArray();
            Assert.Equal(Enumerable.Range(20 - ids.Length, ids.Length), ids); // the newest frames, in order
        }
        finally
        {
            File.Delete(path);
            File.Delete(path + ".1");
        }
    }
}
