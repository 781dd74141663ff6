using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Simulators.Tests;

public sealed class S7PlcSimulatorTests
{
    private const int TimeoutMs = 10_000;

    private static Task<S7PlcSimulator> StartAsync(S7PlcOptions? options = null) =>
        S7PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), options ?? new S7PlcOptions(), CancellationToken.None);

    /// <summary>A bare ISO-on-TCP client: raw TPKT packets in, S7 PDUs out.</summary>
    private sealed class RawS7 : IAsyncDisposable
    {
        private readonly byte[] _rx = new byte[64 * 1024];
        private int _buffered;

        private RawS7(Socket socket) => Socket = socket;

        public Socket Socket { get; }

        public static async Task<RawS7> ConnectAsync(S7PlcSimulator plc)
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(plc.EndPoint);
            return new RawS7(socket);
        }

        /// <summary>CR with TPDU size code <paramref name="sizeCode"/>, calling TSAP 0100, called TSAP 0202 (OP, rack 0, slot 2); returns the CC.</summary>
        public async Task<byte[]> CotpConnectAsync(byte sizeCode = 0x0A)
        {
            await SendAsync([0x03, 0x00, 0x00, 0x16, 0x11, 0xE0, 0x00, 0x00, 0x12, 0x34, 0x00, 0xC0, 0x01, sizeCode, 0xC1, 0x02, 0x01, 0x00, 0xC2, 0x02, 0x02, 0x02]);
            return await ReceivePacketAsync() ?? throw new InvalidOperationException("no CC");
        }

        /// <summary>COTP connect and setup-communication (AmQ 1, <paramref name="pduSize"/>); returns the setup answer PDU.</summary>
        public async Task<byte[]> ConnectAsync(ushort pduSize = 480)
        {
            await CotpConnectAsync();
            byte[] setup = [0x32, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00, 0x00, 0xF0, 0x00, 0x00, 0x01, 0x00, 0x01, (byte)(pduSize >> 8), (byte)pduSize];
            return await RequestAsync(setup);
        }

        public Task SendAsync(byte[] bytes) => Socket.SendAsync(bytes, SocketFlags.None);

        /// <summary>Sends a PDU in one DT with EOT.</summary>
        public Task SendPduAsync(byte[] pdu) => SendAsync(Dt(pdu, eot: true));

        public async Task<byte[]> RequestAsync(byte[] pdu)
        {
            await SendPduAsync(pdu);
            return await ReceivePduAsync() ?? throw new InvalidOperationException("the connection closed before an answer");
        }

        public static byte[] Dt(ReadOnlySpan<byte> payload, bool eot)
        {
            var packet = new byte[7 + payload.Length];
            packet[0] = 3;
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)packet.Length);
            packet[4] = 2;
            packet[5] = 0xF0;
            packet[6] = eot ? (byte)0x80 : (byte)0;
            payload.CopyTo(packet.AsSpan(7));
            return packet;
        }

        /// <summary>One TPKT packet; null when the connection closed.</summary>
        public async Task<byte[]?> ReceivePacketAsync()
        {
            using var timeout = new CancellationTokenSource(TimeoutMs);
            while (true)
            {
                if (_buffered >= 4)
                {
                    int length = BinaryPrimitives.ReadUInt16BigEndian(_rx.AsSpan(2));
                    if (_buffered >= length)
                    {
                        var packet = _rx.AsSpan(0, length).ToArray();
                        Buffer.BlockCopy(_rx, length, _rx, 0, _buffered - length);
                        _buffered -= length;
                        return packet;
                    }
                }
                int n;
                try
                {
                    n = await Socket.ReceiveAsync(_rx.AsMemory(_buffered), SocketFlags.None, timeout.Token);
                }
                catch (SocketException)
                {
                    return null;
                }
                if (n == 0)
                {
                    return null;
                }
                _buffered += n;
            }
        }

        /// <summary>The payloads of DTs up to EOT; null when the connection closed.</summary>
        public async Task<byte[]?> ReceivePduAsync()
        {
            var pdu = new List<byte>();
            while (true)
            {
                var packet = await ReceivePacketAsync();
                if (packet is null)
                {
                    return null;
                }
                Assert.Equal(0xF0, packet[5]);
                pdu.AddRange(packet.AsSpan(7).ToArray());
                if ((packet[6] & 0x80) != 0)
                {
                    return [.. pdu];
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            Socket.Dispose();
            await Task.CompletedTask;
        }
    }

    private static byte[] ReadJob(ushort reference, params byte[][] items)
    {
        var pdu = new List<byte> { 0x32, 0x01, 0x00, 0x00, (byte)(reference >> 8), (byte)reference, 0, (byte)(2 + (12 * items.Length)), 0x00, 0x00, 0x04, (byte)items.Length };
        foreach (var item in items)
        {
            pdu.AddRange(item);
        }
        return [.. pdu];
    }

    /// <summary>An S7ANY item: transport size, count, DB, area, byte offset and bit.</summary>
    private static byte[] Item(byte transportSize, ushort count, ushort db, byte area, int byteOffset, int bit = 0)
    {
        int address = (byteOffset * 8) + bit;
        return [0x12, 0x0A, 0x10, transportSize, (byte)(count >> 8), (byte)count, (byte)(db >> 8), (byte)db, area, (byte)(address >> 16), (byte)(address >> 8), (byte)address];
    }

    [Fact]
    public async Task CotpConnect_ConfirmsTheSmallerTpduSize_AndAnswersTheCallersReference()
    {
        await using var plc = await StartAsync();
        await using var client = await RawS7.ConnectAsync(plc);
        var cc = await client.CotpConnectAsync(sizeCode: 0x0D);

        Assert.Equal(0xD0, cc[5]);
        Assert.Equal(0x1234, BinaryPrimitives.ReadUInt16BigEndian(cc.AsSpan(6))); // destination reference = the CR's source reference
        var (tpduSize, calling, called) = FrameParts(cc);
        Assert.Equal(1024, tpduSize);              // 8192 asked, 1024 is the CPU's
        Assert.Equal([0x01, 0x00], calling);       // both TSAPs echoed, as CPUs do
        Assert.Equal([0x02, 0x02], called);
    }

    private static (int TpduSize, byte[] CallingTsap, byte[] CalledTsap) FrameParts(byte[] packet)
    {
        Assert.Equal(OperationStatus.Done, TpktFramer.TryReadFrame(packet, out var tpdu, out _, out _));
        return (tpdu.TpduSize, tpdu.CallingTsap.ToArray(), tpdu.CalledTsap.ToArray());
    }

    [Theory]
    [InlineData(960, 480)]
    [InlineData(240, 240)]
    public async Task Setup_SettlesOnTheSmallerPduSize(int asked, int settled)
    {
        await using var plc = await StartAsync();
        await using var client = await RawS7.ConnectAsync(plc);
        var answer = await client.ConnectAsync((ushort)asked);

        // 32 03 0000 REF 0008 0000 0000 | F0 00 AmQ AmQ PDU
        Assert.Equal(new byte[] { 0x32, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0xF0, 0x00, 0x00, 0x01, 0x00, 0x01, (byte)(settled >> 8), (byte)settled }, answer);
        Assert.Equal(1, plc.Requests(S7Function.SetupCommunication));
    }

    [Fact]
    public async Task ReadVar_AnswersEveryItem_WithDataOrItsReturnCode()
    {
        await using var plc = await StartAsync();
        plc.WriteArea(S7Area.Flags, 0, [0x02]);
        await using var client = await RawS7.ConnectAsync(plc);
        await client.ConnectAsync();

        var answer = await client.RequestAsync(ReadJob(0x0102,
            Item(0x02, 3, 1, 0x84, 4),           // DB1.DBB4, 3 bytes: 04 05 06 and a fill byte
            Item(0x01, 1, 0, 0x83, 0, 1),        // M0.1 = 1
            Item(0x02, 1, 99, 0x84, 0),          // DB99 does not exist: 0A
            Item(0x04, 2, 1, 0x84, 254),         // DB1.DBW254 × 2 runs past 256 bytes: 05
            Item(0x08, 1, 0, 0x82, 0)));         // QD0 as REAL: 4 bytes, length in bytes

        byte[] expected =
        [
            0x32, 0x03, 0x00, 0x00, 0x01, 0x02, 0x00, 0x02, 0x00, 0x1E, 0x00, 0x00, 0x04, 0x05,
            0xFF, 0x04, 0x00, 0x18, 0x04, 0x05, 0x06, 0x00,
            0xFF, 0x03, 0x00, 0x01, 0x01, 0x00,
            0x0A, 0x00, 0x00, 0x00,
            0x05, 0x00, 0x00, 0x00,
            0xFF, 0x07, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
        ];
        Assert.Equal(expected, answer);
        Assert.Equal(5, plc.ItemsRead);
    }

    [Fact]
    public async Task WriteVar_BitsAndBytes_ChangeMemory_AndAnswerOneCodePerItem()
    {
        await using var plc = await StartAsync();
        await using var client = await RawS7.ConnectAsync(plc);
        await client.ConnectAsync();
        // Two items: Q0.3 := 1 (bit, data transport size 03, 1 bit) and DB2.DBB10..12 (3 bytes, size 04 in bits);
        // a fill byte follows the odd bit block, not the last one.
        byte[] job =
        [
            0x32, 0x01, 0x00, 0x00, 0x00, 0x07, 0x00, 0x1A, 0x00, 0x0D, 0x05, 0x02,
            .. Item(0x01, 1, 0, 0x82, 0, 3), .. Item(0x02, 3, 2, 0x84, 10),
            0x00, 0x03, 0x00, 0x01, 0x01, 0x00,
            0x00, 0x04, 0x00, 0x18, 0xAA, 0xBB, 0xCC,
        ];
        var answer = await client.RequestAsync(job);

        Assert.Equal(new byte[] { 0x32, 0x03, 0x00, 0x00, 0x00, 0x07, 0x00, 0x02, 0x00, 0x02, 0x00, 0x00, 0x05, 0x02, 0xFF, 0xFF }, answer);
        Assert.Equal([0x08], plc.ReadArea(S7Area.Outputs, 0, 1));
        Assert.Equal([0xAA, 0xBB, 0xCC], plc.ReadDb(2, 10, 3));
        Assert.Equal(2, plc.ItemsWritten);
        Assert.Equal(1, plc.OutputWrites);
    }

    [Fact]
    public async Task PlcStop_ThenStopAgain_ThenHotStart_AsACpuAnswers()
    {
        await using var plc = await StartAsync();
        await using var client = await RawS7.ConnectAsync(plc);
        await client.ConnectAsync();
        byte[] stop = [0x32, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x10, 0x00, 0x00, 0x29, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, .. "P_PROGRAM"u8];
        byte[] hotStart = [0x32, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x14, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFD, 0x00, 0x00, 0x09, .. "P_PROGRAM"u8];

        Assert.Equal(new byte[] { 0x32, 0x03, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x29 }, await client.RequestAsync(stop));
        Assert.Equal(S7CpuState.Stop, plc.State);
        // Already in STOP: error 84 04 and the reason 07 after the function.
        Assert.Equal(new byte[] { 0x32, 0x03, 0x00, 0x00, 0x00, 0x02, 0x00, 0x02, 0x00, 0x00, 0x84, 0x04, 0x29, 0x07 }, await client.RequestAsync(stop));
        Assert.Equal(new byte[] { 0x32, 0x03, 0x00, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x28 }, await client.RequestAsync(hotStart));
        Assert.Equal(S7CpuState.Run, plc.State);
        Assert.Equal((1, 1), (plc.Stops, plc.Starts));
    }

    [Fact]
    public async Task DataBeforeConnect_ClosesTheConnection()
    {
        await using var plc = await StartAsync();
        await using var client = await RawS7.ConnectAsync(plc);
        await client.SendPduAsync(ReadJob(1, Item(0x02, 1, 1, 0x84, 0)));

        Assert.Null(await client.ReceivePacketAsync());
        Assert.Equal(1, plc.DataBeforeConnect);
        Assert.Equal(0, plc.TotalRequests);
    }

    [Theory]
    [InlineData(new byte[] { 0x03, 0x00, 0x00, 0x07, 0x02, 0x60, 0x80 })]                       // unknown TPDU code 6x
    [InlineData(new byte[] { 0x03, 0x00, 0x00, 0x08, 0x03, 0xF0, 0x80, 0x32 })]                 // DT with LI 3
    [InlineData(new byte[] { 0x03, 0x00, 0x00, 0x05, 0x02, 0xF0, 0x80 })]                       // TPKT length below 7
    [InlineData(new byte[] { 0x03, 0x00, 0x00, 0x09, 0x09, 0xF0, 0x80, 0x32, 0x01 })]           // LI past the TPKT length
    [InlineData(new byte[] { 0x47, 0x45, 0x54, 0x20, 0x2F, 0x20, 0x48 })]                       // not TPKT at all
    public async Task BadCotp_AfterConnect_ClosesAndIsCountedMalformed(byte[] packet)
    {
        await using var plc = await StartAsync();
        await using var client = await RawS7.ConnectAsync(plc);
        await client.ConnectAsync();
        await client.SendAsync(packet);

        Assert.Null(await client.ReceivePacketAsync());
        Assert.Equal(1, plc.MalformedFrames);
        Assert.Equal(1, plc.TotalRequests); // the setup only
    }

    [Fact]
    public async Task FragmentedPdu_IsReassembledAndAnswered_AndAnUnfinishedOneIsCounted()
    {
        await using var plc = await StartAsync();
        await using (var client = await RawS7.ConnectAsync(plc))
        {
            await client.ConnectAsync();
            var job = ReadJob(9, Item(0x02, 2, 1, 0x84, 0));
            await client.SendAsync([.. RawS7.Dt(job.AsSpan(0, 5), eot: false), .. RawS7.Dt(job.AsSpan(5, 10), eot: false), .. RawS7.Dt(job.AsSpan(15), eot: true)]);
            var answer = await client.ReceivePduAsync();
            Assert.NotNull(answer);
            Assert.Equal(new byte[] { 0xFF, 0x04, 0x00, 0x10, 0x00, 0x01 }, answer.AsSpan(14).ToArray());

            // A PDU whose last fragment never comes: held, never answered, counted when the connection ends.
            await client.SendAsync(RawS7.Dt(job.AsSpan(0, 12), eot: false));
        }
        await WaitUntilAsync(() => plc.ActiveConnections == 0 && plc.IncompletePdus == 1);
        Assert.Equal(2, plc.TotalRequests); // setup and the one read
    }

    [Fact]
    public async Task PduAboveTheNegotiatedSize_ClosesTheConnection()
    {
        await using var plc = await StartAsync();
        await using var client = await RawS7.ConnectAsync(plc);
        await client.ConnectAsync(pduSize: 240);
        // 20 items (252 bytes) in a 240-byte PDU, sent in two fragments: refused when the total passes 240.
        var job = ReadJob(3, [.. Enumerable.Range(0, 20).Select(i => Item(0x02, 1, 1, 0x84, i))]);
        await client.SendAsync([.. RawS7.Dt(job.AsSpan(0, 200), eot: false), .. RawS7.Dt(job.AsSpan(200), eot: true)]);

        Assert.Null(await client.ReceivePacketAsync());
        Assert.Equal(1, plc.OversizePdus);
        Assert.Equal(0, plc.ItemsRead);
    }

    [Fact]
    public async Task ManyJobsInOneSend_AreAllAnsweredInOrder()
    {
        await using var plc = await StartAsync();
        await using var client = await RawS7.ConnectAsync(plc);
        await client.ConnectAsync();
        // 300 reads of 200 bytes: about 70 KB of answers to one send, more than the simulator's send buffer holds at once.
        var batch = new List<byte>();
        for (int i = 0; i < 300; i++)
        {
            batch.AddRange(RawS7.Dt(ReadJob((ushort)(1000 + i), Item(0x02, 200, 1, 0x84, 0)), eot: true));
        }
        await client.SendAsync([.. batch]);
        for (int i = 0; i < 300; i++)
        {
            var answer = await client.ReceivePduAsync();
            Assert.NotNull(answer);
            Assert.Equal(1000 + i, BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(4)));
            Assert.Equal(0xFF, answer[14]);
        }
    }

    [Fact]
    public async Task ReadSzl0424_ReportsRunThenStop()
    {
        await using var plc = await StartAsync();
        await using var client = await RawS7.ConnectAsync(plc);
        await client.ConnectAsync();
        byte[] szl = [0x32, 0x07, 0x00, 0x00, 0x00, 0x05, 0x00, 0x08, 0x00, 0x08, 0x00, 0x01, 0x12, 0x04, 0x11, 0x44, 0x01, 0x00, 0xFF, 0x09, 0x00, 0x04, 0x04, 0x24, 0x00, 0x00];

        var run = await client.RequestAsync(szl);
        plc.State = S7CpuState.Stop;
        var stop = await client.RequestAsync(szl);

        // Parameters: 00 01 12 08 12 84 01 00 00 00 0000; data FF 09 len, 0424 0000, record length 20, 1 record.
        Assert.Equal(new byte[] { 0x00, 0x01, 0x12, 0x08, 0x12, 0x84, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0x09, 0x00, 0x1C, 0x04, 0x24, 0x00, 0x00, 0x00, 0x14, 0x00, 0x01 }, run.AsSpan(10, 24).ToArray());
        Assert.Equal(0x08, run[37]);
        Assert.Equal(0x04, stop[37]);
    }

    [Fact]
    public async Task ReadSzl001C_OnA240BytePdu_ComesInTwoParts_ThatJoinToTheWholeList()
    {
        await using var plc = await StartAsync();
        await using var client = await RawS7.ConnectAsync(plc);
        await client.ConnectAsync(pduSize: 240);
        byte[] first = [0x32, 0x07, 0x00, 0x00, 0x00, 0x05, 0x00, 0x08, 0x00, 0x08, 0x00, 0x01, 0x12, 0x04, 0x11, 0x44, 0x01, 0x00, 0xFF, 0x09, 0x00, 0x04, 0x00, 0x1C, 0x00, 0x00];

        var part1 = await client.RequestAsync(first);
        Assert.Equal(240, part1.Length);
        byte sequence = part1[17];
        Assert.NotEqual(0, sequence);
        Assert.Equal(0x01, part1[19]);        // more data units follow
        // The follow-up: parameters of length 8 with the CPU's sequence number, data 0A 00 0000.
        byte[] next = [0x32, 0x07, 0x00, 0x00, 0x00, 0x06, 0x00, 0x0C, 0x00, 0x04, 0x00, 0x01, 0x12, 0x08, 0x12, 0x44, 0x01, sequence, 0x00, 0x00, 0x00, 0x00, 0x0A, 0x00, 0x00, 0x00];
        var part2 = await client.RequestAsync(next);
        Assert.Equal(0x00, part2[19]);        // the last one

        byte[] list = [.. part1.AsSpan(26), .. part2.AsSpan(26)];
        Assert.Equal(new byte[] { 0x00, 0x1C, 0x00, 0x00, 0x00, 0x22, 0x00, 0x07 }, list.AsSpan(0, 8).ToArray());
        Assert.Equal(8 + (7 * 34), list.Length);
        Assert.Equal(S7PlcSimulator.SerialNumber, System.Text.Encoding.ASCII.GetString(list, 8 + (4 * 34) + 2, S7PlcSimulator.SerialNumber.Length));
    }

    [Fact]
    public void PasswordEncoding_IsWhatS7ClientsSend()
    {
        // snap7's client encodes "secret" padded to 8 with spaces: bytes 0 and 1 XOR 0x55, then XOR 0x55 XOR the byte two before.
        Span<byte> encoded = stackalloc byte[8];
        S7PlcSimulator.EncodePassword("secret", encoded);
        byte[] plain = "secret  "u8.ToArray();
        byte[] expected = new byte[8];
        expected[0] = (byte)(plain[0] ^ 0x55);
        expected[1] = (byte)(plain[1] ^ 0x55);
        for (int i = 2; i < 8; i++)
        {
            expected[i] = (byte)(plain[i] ^ 0x55 ^ expected[i - 2]);
        }
        Assert.Equal(expected, encoded.ToArray());
        Assert.True(S7PlcSimulator.PasswordMatches(expected, "secret"));
        Assert.False(S7PlcSimulator.PasswordMatches(expected, "secreT"));
    }

    [Fact]
    public async Task S7HmiLoad_AgainstSimulator_AnswersEveryJob_AndReadsAndWritesReachIt()
    {
        await using var plc = await StartAsync();
        var result = await S7HmiLoad.RunAsync(plc.EndPoint, new S7HmiOptions { Connections = 3, Duration = TimeSpan.FromSeconds(1), TimeoutMs = 5000 }, CancellationToken.None);

        Assert.Equal(0, result.Errors);
        Assert.Equal(0, result.TotalExceptions);
        Assert.True(result.ResponsesOk > 50, $"only {result.ResponsesOk} answers");
        Assert.True(result.P50Us > 0 && result.P50Us <= result.P99Us);
        Assert.Equal(3, plc.Requests(S7Function.SetupCommunication));
        Assert.True(plc.Requests(S7Function.ReadVar) > 0 && plc.Requests(S7Function.WriteVar) > 0);
        Assert.InRange(plc.Requests(S7Function.ReadVar) + plc.Requests(S7Function.WriteVar), result.ResponsesOk, result.Requests);
        Assert.Equal(0, plc.MalformedFrames);
    }

    [Fact]
    public async Task S7HmiLoad_ReadsOutsideTheDb_CountItemReturnCode05()
    {
        await using var plc = await StartAsync(new S7PlcOptions { DbSize = 16 });
        var result = await S7HmiLoad.RunAsync(plc.EndPoint, new S7HmiOptions { Duration = TimeSpan.FromSeconds(1), ReadWeight = 1, WriteWeight = 0, ReadStart = 100, ReadRange = 20, TimeoutMs = 5000 }, CancellationToken.None);

        Assert.Equal(0, result.Errors);
        Assert.True(result.Exceptions(0x05) > 0);
        Assert.Equal(0, result.ResponsesOk);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var until = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, "condition not met within 10 s");
            await Task.Delay(20);
        }
    }
}

public sealed class S7AttackSuiteTests
{
    [Fact]
    public async Task AgainstTheSimulator_StopDownloadAndForcedOutputs_AreCarriedOut_AndBadFramingCloses()
    {
        await using var plc = await S7PlcSimulator.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), new S7PlcOptions(), CancellationToken.None);
        var options = new S7AttackOptions { AnswerTimeoutMs = 5000, PartialConnections = 4, HoldMs = 200 };

        // With no firewall in front, the CPU does what it is told: that is what the suite shows a gateway must prevent.
        var stop = await S7AttackSuite.RunCaseAsync(plc.EndPoint, "plc-stop", options, CancellationToken.None);
        Assert.Equal(ProbeOutcome.Normal, stop.Outcome);
        Assert.Equal(S7CpuState.Stop, plc.State);
        var forced = await S7AttackSuite.RunCaseAsync(plc.EndPoint, "write-q-byte", options, CancellationToken.None);
        Assert.Equal(ProbeOutcome.Normal, forced.Outcome);
        Assert.Equal([0xFF], plc.ReadArea(S7Area.Outputs, 0, 1));
        var guesses = await S7AttackSuite.RunCaseAsync(plc.EndPoint, "password-guess", options, CancellationToken.None);
        Assert.Equal(32, guesses.Sent);
        Assert.Equal(32, plc.PasswordAttempts);

        var scenario = await S7AttackSuite.RunScenarioAsync(plc.EndPoint, "bad-cotp", options, CancellationToken.None);
        Assert.Equal(S7AttackSuite.CasesOf("bad-cotp").Count, scenario.Cases.Count);
        Assert.All(scenario.Cases, c => Assert.True(c.Outcome == ProbeOutcome.ConnectionClosed, c.ToString()));
        Assert.Equal(1, plc.DataBeforeConnect);

        var partial = await S7AttackSuite.RunCaseAsync(plc.EndPoint, "never-completed-many", options, CancellationToken.None);
        Assert.Equal(4, partial.NoAnswer);
        var oversize = await S7AttackSuite.RunCaseAsync(plc.EndPoint, "oversize-fragments", options, CancellationToken.None);
        Assert.Equal(ProbeOutcome.ConnectionClosed, oversize.Outcome);
        Assert.Equal(1, plc.OversizePdus);
        await WaitUntilAsync(() => plc.ActiveConnections == 0);
        Assert.Equal(4, plc.IncompletePdus);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var until = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, "condition not met within 10 s");
            await Task.Delay(20);
        }
    }
}
