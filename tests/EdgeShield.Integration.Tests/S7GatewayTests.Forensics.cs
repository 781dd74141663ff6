using System.Diagnostics;

namespace EdgeShield.Integration.Tests;

/// <summary>audit.pcap on an S7 listener: the refused jobs, whole, as tshark's s7comm dissector reads them.</summary>
public partial class S7GatewayTests
{
    [Fact]
    public async Task AuditPcap_RefusedS7Jobs_AreWrittenWholeAndTsharkDecodesThem()
    {
        string pcap = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"edgeshield-s7-{Guid.NewGuid():N}.pcapng");
        try
        {
            await using var plc = await Snap7Peer.StartServerAsync();
            int port;
            await using (var gateway = await Gateway.StartAsync(plc.Port, sections: $"audit:\n  pcap: {{ path: {pcap}, max-mb: 1 }}"))
            {
                port = gateway.S7Port;
                var allowed = await Client(gateway, "op", "db-read", "1", "0", "4");
                // 300 bytes to DB 3 (no rule): a 328-byte PDU, longer than a Modbus ADU.
                var write = await Client(gateway, "op", "db-write", "3", "0", new string('A', 600));
                var stop = await Client(gateway, "op", "plc-stop");
                await plc.WaitForDisconnectsAsync();
                output.WriteLine(allowed + "\n" + write + "\n" + stop);
                Assert.True(allowed.Ok, allowed.ToString());
                Assert.False(write.Ok, write.ToString());
                Assert.False(stop.Ok, stop.ToString());
                Assert.True(await gateway.Process.WaitForStdoutAsync("\"function_name\":\"plc-stop\""), gateway.Process.Stdout);
                // The writer thread flushes after each batch: wait (bounded) for both refusals before the gateway is killed.
                await WaitForRowsAsync(pcap, port, 2);
            }

            // The listener's port is not 102: tell tshark it carries TPKT.
            var rows = await TsharkAsync(pcap, port);
            output.WriteLine(string.Join("\n", rows));
            Assert.Equal(2, rows.Count);
            var write5 = rows[0].Split('\t');
            var stop29 = rows[1].Split('\t');
            // rosctr, function, item area, item db, data length, malformed, comment
            Assert.Equal(["1", "0x05", "0x84", "3", "300", ""], write5[..6]);
            Assert.StartsWith("denied", write5[6], StringComparison.Ordinal);
            Assert.Contains("area or data block not allowed", write5[6], StringComparison.Ordinal);
            Assert.Equal(["1", "0x29"], stop29[..2]);
            Assert.Equal("", stop29[5]);
            Assert.Contains("function not allowed", stop29[6], StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(pcap);
        }
    }

    /// <summary>Polls the file (at most 30 s) until tshark reads <paramref name="count"/> S7 rows; a half-written last block is retried.</summary>
    private static async Task WaitForRowsAsync(string pcap, int port, int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (File.Exists(pcap) && (await TsharkAsync(pcap, port, requireSuccess: false)).Count >= count)
            {
                return;
            }
            await Task.Delay(200);
        }
    }

    private static async Task<List<string>> TsharkAsync(string pcap, int port, bool requireSuccess = true)
    {
        var start = new ProcessStartInfo("tshark") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[]
        {
            "-n", "-r", pcap, "-d", $"tcp.port=={port},tpkt", "-Y", "s7comm", "-T", "fields",
            "-e", "s7comm.header.rosctr", "-e", "s7comm.param.func", "-e", "s7comm.param.item.area", "-e", "s7comm.param.item.db",
            "-e", "s7comm.data.length", "-e", "_ws.malformed", "-e", "frame.comment",
        })
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        if (!requireSuccess && process.ExitCode != 0)
        {
            return [];
        }
        Assert.True(process.ExitCode == 0, "tshark: " + await stderr);
        return [.. (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries)];
    }

    [Fact]
    public async Task AuditPcap_RefusedJobSentInTwoDtFragments_IsWrittenAsOneDtTsharkDecodes()
    {
        string pcap = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"edgeshield-s7-{Guid.NewGuid():N}.pcapng");
        try
        {
            await using var plc = await Snap7Peer.StartServerAsync();
            int port;
            await using (var gateway = await Gateway.StartAsync(plc.Port, sections: $"audit:\n  pcap: {{ path: {pcap}, max-mb: 1 }}"))
            {
                port = gateway.S7Port;
                using var client = new System.Net.Sockets.TcpClient();
                await client.ConnectAsync(System.Net.IPAddress.Loopback, port);
                var stream = client.GetStream();
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                await stream.WriteAsync(Convert.FromHexString("0300001611E00000000100C0010AC1020100C2020202"), timeout.Token); // CR, OP
                Assert.Equal(0xD0, (await ReadPacketAsync(stream, timeout.Token))[5]);
                await stream.WriteAsync(Convert.FromHexString("0300001902F080" + "32010000000100080000F0000001000101E0"), timeout.Token);
                Assert.Equal(0x03, (await ReadPacketAsync(stream, timeout.Token))[8]);
                // write-var DB3.DBB0, 4 bytes (no rule allows DB 3), its 32-byte PDU in two DTs: 20 bytes without EOT, 12 with.
                string pdu = "320100000003000E0008" + "0501120A10020004000384000000" + "0004002001020304";
                await stream.WriteAsync(Convert.FromHexString("0300001B02F000" + pdu[..40]), timeout.Token);
                await stream.WriteAsync(Convert.FromHexString("0300001302F080" + pdu[40..]), timeout.Token);
                var refusal = await ReadPacketAsync(stream, timeout.Token);
                Assert.Equal(0x03, refusal[8]);
                Assert.True(await gateway.Process.WaitForStdoutAsync("\"function_name\":\"write-var\""), gateway.Process.Stdout);
                await WaitForRowsAsync(pcap, port, 1);
            }

            var rows = await TsharkAsync(pcap, port);
            output.WriteLine(string.Join("\n", rows));
            var row = Assert.Single(rows).Split('\t');
            Assert.Equal(["1", "0x05", "0x84", "3"], row[..4]);
            Assert.Equal("", row[5]);
            Assert.Contains("area or data block not allowed", row[6], StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(pcap);
        }
    }
}
