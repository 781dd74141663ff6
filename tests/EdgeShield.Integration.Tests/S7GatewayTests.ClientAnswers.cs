using System.Buffers.Binary;
using System.Net.Sockets;

namespace EdgeShield.Integration.Tests;

/// <summary>The client's Ack/Ack_Data (answers to jobs the PLC sends, as in a block download) through the live session.</summary>
public partial class S7GatewayTests
{
    [Fact]
    public async Task ClientAckDataToNoPlcJob_IsDroppedAndAudited_TheConnectionStaysOpen()
    {
        await using var plc = await Snap7Peer.StartServerAsync();
        await using var gateway = await Gateway.StartAsync(plc.Port);
        using var client = new TcpClient();
        await client.ConnectAsync(System.Net.IPAddress.Loopback, gateway.S7Port);
        var stream = client.GetStream();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        await stream.WriteAsync(Convert.FromHexString("0300001611E00000000100C0010AC1020100C2020202"), timeout.Token); // CR, OP
        Assert.Equal(0xD0, (await ReadPacketAsync(stream, timeout.Token))[5]);
        await stream.WriteAsync(Convert.FromHexString("0300001902F080" + "32010000000100080000F0000001000101E0"), timeout.Token); // setup-communication
        Assert.Equal(0x03, (await ReadPacketAsync(stream, timeout.Token))[8]);
        // An Ack_Data (REF 1234) answering no job the PLC sent: dropped and audited, not malformed.
        await stream.WriteAsync(Convert.FromHexString("0300001502F080" + "320300001234000200000000" + "1B00"), timeout.Token);
        await stream.WriteAsync(Convert.FromHexString("0300001F02F080" + "32010000000200" + "0E0000" + "0401120A10020004000184000000"), timeout.Token); // read DB1.DBB0, 4 bytes
        var answer = await ReadPacketAsync(stream, timeout.Token);

        output.WriteLine(gateway.Process.Stdout);
        Assert.Equal(0x03, answer[8]);                                            // Ack_Data
        Assert.Equal(0x0002, BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(11)));  // the client's REF of the read
        Assert.True(await gateway.Process.WaitForStdoutAsync("\"event\":\"unmatched-response\""), gateway.Process.Stdout);
        Assert.DoesNotContain("\"event\":\"malformed\"", gateway.Process.Stdout, StringComparison.Ordinal);
    }

    private static async Task<byte[]> ReadPacketAsync(NetworkStream stream, CancellationToken cancel)
    {
        var head = new byte[4];
        await stream.ReadExactlyAsync(head, cancel);
        var packet = new byte[BinaryPrimitives.ReadUInt16BigEndian(head.AsSpan(2))];
        head.CopyTo(packet, 0);
        await stream.ReadExactlyAsync(packet.AsMemory(4), cancel);
        return packet;
    }
}
