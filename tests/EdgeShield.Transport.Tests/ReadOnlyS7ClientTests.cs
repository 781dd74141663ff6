using System.Buffers;
using System.Reflection;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Transport.Tests;

/// <summary>
/// The read-only S7 client's request builders, job planning and answer handling: golden bytes (snap7's client sends the
/// same CR, setup-communication and read-var; tshark's cotp/s7comm dissectors decode these exactly: TSAPs 0100/0302,
/// TPDU 1024, AmQ 1/1, items DB 1.DBX 2.0 BYTE 2, M 10.3 BIT 1, Q 8.0 BYTE 4), the PDU-size split, item return codes, no allocation, and a public
/// surface that can express nothing but reads.
/// </summary>
public class ReadOnlyS7ClientTests
{
    private static readonly S7ReadItem Db1Word2 = new(S7Area.DataBlocks, 1, 2, 0, 2);
    private static readonly S7ReadItem M10Bit3 = new(S7Area.Flags, 0, 10, 3, 0);
    private static readonly S7ReadItem Qd8 = new(S7Area.Outputs, 0, 8, 0, 4);

    [Fact]
    public void ConnectRequest_IsSnap7sCr_WithTheConfiguredTsaps()
    {
        var cr = new byte[22];
        Assert.Equal(22, CotpWriter.WriteConnectRequest(cr, 0x0001, 0x0A, 0x0100, 0x0302));
        // snap7 TIsoTcpSocket (ISO CR): src-ref 0001, class 0, C0 TPDU 1024, C1 01.00, C2 03.02.
        Assert.Equal(Convert.FromHexString("0300001611E00000000100C0010AC1020100C2020302"), cr);
        Assert.Equal(OperationStatus.Done, TpktFramer.TryReadFrame(cr, out var tpdu, out int consumed, out _));
        Assert.Equal((CotpTpduType.ConnectionRequest, 22, 1024, S7ConnectionKind.Basic, (byte)0, (byte)2),
            (tpdu.Type, consumed, tpdu.TpduSize, tpdu.Connection.Kind, tpdu.Connection.Rack, tpdu.Connection.Slot));
    }

    [Fact]
    public void SetupCommunication_IsAJobF0_AmQ1_AskingFor960()
    {
        var pdu = new byte[32];
        int length = ReadOnlyS7Client.WriteSetupCommunication(pdu, 0x0400, 960);
        // snap7 S7_PN (with its 480 → 960): 32 01 0000 0400 0008 0000 F0 00 0001 0001 03C0.
        Assert.Equal(Convert.FromHexString("32010000040000080000F0000001000103C0"), pdu[..length]);
        var request = S7Pdu.ParseRequest(pdu.AsSpan(0, length));
        Assert.Equal((S7RequestStatus.Ok, S7Function.SetupCommunication, (ushort)960, (ushort)1, (ushort)1),
            (request.Status, request.Function, request.PduSize, request.AmqCalling, request.AmqCalled));
    }

    [Fact]
    public void ReadVar_ItemsAreS7Any_BitAsBit_WordsAsBytes()
    {
        var pdu = new byte[64];
        int length = ReadOnlyS7Client.WriteReadVar(pdu, 7, [Db1Word2, M10Bit3, Qd8]);
        Assert.Equal(12 + (3 * 12), length);
        // snap7 ReadArea(S7AreaDB, 1, 2, 2, S7WLByte): 12 0A 10 02 0002 0001 84 000010.
        Assert.Equal(Convert.FromHexString("320100000007002600000403" + "120A10020002000184000010"
            + "120A10010001000083000053" + "120A10020004000082000040"), pdu[..length]);
        var request = S7Pdu.ParseRequest(pdu.AsSpan(0, length));
        Assert.Equal((S7RequestStatus.Ok, S7Function.ReadVar, (byte)3), (request.Status, request.Function, request.ItemCount));
        var items = new List<(S7Area, ushort, int, byte, bool, int)>();
        foreach (var item in request.Items)
        {
            items.Add((item.Area, item.DbNumber, item.ByteOffset, item.BitOffset, item.IsBit, item.ByteLength));
        }
        Assert.Equal([(S7Area.DataBlocks, (ushort)1, 2, (byte)0, false, 2), (S7Area.Flags, (ushort)0, 10, (byte)3, true, 1), (S7Area.Outputs, (ushort)0, 8, (byte)0, false, 4)], items);
    }

    [Theory]
    // 240-byte PDU: the request allows (240 - 12) / 12 = 19 items; 20 is the job limit at 960.
    [InlineData(240, 25, 4, 19)]
    [InlineData(960, 25, 4, 20)]
    // A small PDU: the request (12 + 12 n ≤ 64) bounds it before the answer (14 + 8 n ≤ 64) would.
    [InlineData(64, 10, 4, 4)]
    [InlineData(480, 3, 4, 3)]
    public void ItemsThatFit_StaysWithinThePduBothWays_AndTwentyItems(int pduSize, int itemCount, int byteLength, int expected)
    {
        var items = Enumerable.Repeat(new S7ReadItem(S7Area.Flags, 0, 0, 0, (byte)byteLength), itemCount).ToArray();
        int n = ReadOnlyS7Client.ItemsThatFit(items, pduSize);
        Assert.Equal(expected, n);
        Assert.True(12 + (12 * n) <= pduSize);
        Assert.True(14 + (n * (4 + byteLength)) <= pduSize);
    }

    [Fact]
    public void Answer_ItemCodesAndData_GoToResultsAndDestination()
    {
        S7ReadItem[] items = [Db1Word2, M10Bit3, new(S7Area.DataBlocks, 99, 0, 0, 2), Qd8];
        var expectation = ReadOnlyS7Client.ReadExpectation(9, items, 240);
        // Ack_Data: FF 04 0010 FEDC | FF 03 0001 01 00(fill) | 0A 00 0000 | FF 04 0020 11223344
        byte[] answer = Convert.FromHexString("3203000000090002001800000404"
            + "FF040010FEDC" + "FF0300010100" + "0A000000" + "FF04002011223344");
        Assert.Equal(S7ResponseStatus.Normal, S7Pdu.CheckResponse(answer, expectation, out var error));
        Assert.Equal(S7ResponseError.None, error);
        var destination = new byte[ReadOnlyS7Client.DestinationLength(items)];
        var results = new S7ItemResult[items.Length];
        ReadOnlyS7Client.CopyItems(S7Pdu.ParseHeader(answer).Data, items, destination, results, 0);
        Assert.Equal(new S7ItemResult(ReadStatus.Ok, 0, 0, 2), results[0]);
        Assert.Equal(new S7ItemResult(ReadStatus.Ok, 0, 2, 1), results[1]);
        Assert.Equal(new S7ItemResult(ReadStatus.Exception, 0x0A, 0, 0), results[2]);
        Assert.Equal(new S7ItemResult(ReadStatus.Ok, 0, 5, 4), results[3]);
        Assert.Equal(Convert.FromHexString("FEDC01000011223344"), destination);
    }

    [Fact]
    public void Answer_WithMoreDataThanAsked_IsNotNormal()
    {
        S7ReadItem[] items = [Db1Word2];
        var expectation = ReadOnlyS7Client.ReadExpectation(9, items, 240);
        // Four bytes for a two-byte item.
        byte[] answer = Convert.FromHexString("320300000009000200080000" + "0401" + "FF04002011223344");
        Assert.Equal(S7ResponseStatus.Mismatch, S7Pdu.CheckResponse(answer, expectation, out var error));
        Assert.Equal(S7ResponseError.DataTooLong, error);
    }

    /// <summary>
    /// Untrusted answers: 20 000 mutations of a valid one (bytes flipped, cut, extended). Whatever the check lets
    /// through as Normal is copied without throwing, within the destination, and each result is Ok with the item's own
    /// length, an item error, or a bad response; a mismatch is never copied.
    /// </summary>
    [Fact]
    public void MutatedAnswers_CheckedThenCopied_NeverThrow_NorWritePastTheDestination()
    {
        S7ReadItem[] items = [Db1Word2, M10Bit3, new(S7Area.DataBlocks, 99, 0, 0, 2), Qd8];
        byte[] valid = Convert.FromHexString("320300000009000200180000" + "0404" + "FF040010FEDC" + "FF0300010100" + "0A000000" + "FF04002011223344");
        var expectation = ReadOnlyS7Client.ReadExpectation(9, items, 240);
        var random = new Random(7);
        var destination = new byte[ReadOnlyS7Client.DestinationLength(items) + 8];
        var results = new S7ItemResult[items.Length];
        int normal = 0;
        for (int round = 0; round < 20_000; round++)
        {
            var answer = new List<byte>(valid);
            for (int m = random.Next(1, 4); m > 0; m--)
            {
                switch (random.Next(3))
                {
                    case 0: answer[random.Next(answer.Count)] = (byte)random.Next(256); break;
                    case 1: answer.RemoveRange(random.Next(answer.Count), 1); break;
                    default: answer.Insert(random.Next(answer.Count + 1), (byte)random.Next(256)); break;
                }
            }
            var bytes = answer.ToArray();
            Array.Fill(destination, (byte)0xAA);
            if (S7Pdu.CheckResponse(bytes, expectation, out _) != S7ResponseStatus.Normal)
            {
                continue;
            }
            normal++;
            ReadOnlyS7Client.CopyItems(S7Pdu.ParseHeader(bytes).Data, items, destination.AsSpan(0, destination.Length - 8), results, 0);
            Assert.All(destination[^8..], b => Assert.Equal(0xAA, b));
            for (int i = 0; i < items.Length; i++)
            {
                Assert.True(results[i].Status is ReadStatus.Ok or ReadStatus.Exception or ReadStatus.BadResponse, results[i].ToString());
                if (results[i].Status == ReadStatus.Ok)
                {
                    Assert.Equal(items[i].DataLength, results[i].Length);
                }
            }
        }
        Assert.True(normal > 100, $"only {normal} mutated answers passed the check: the copy was hardly exercised");
    }

    [Fact]
    public void BuildingJobs_AndTakingAnswers_AllocatesNothing()
    {
        S7ReadItem[] items = [Db1Word2, M10Bit3, new(S7Area.DataBlocks, 99, 0, 0, 2), Qd8];
        byte[] answer = Convert.FromHexString("320300000009000200180000" + "0404" + "FF040010FEDC" + "FF0300010100" + "0A000000" + "FF04002011223344");
        var pdu = new byte[960];
        var send = new byte[1100];
        var destination = new byte[ReadOnlyS7Client.DestinationLength(items)];
        var results = new S7ItemResult[items.Length];
        void Cycle()
        {
            int length = ReadOnlyS7Client.WriteReadVar(pdu, 9, items);
            CotpWriter.WriteData(send, pdu.AsSpan(0, length), 1024);
            var expectation = ReadOnlyS7Client.ReadExpectation(9, items, 240);
            if (ReadOnlyS7Client.ItemsThatFit(items, 240) == items.Length
                && S7Pdu.CheckResponse(answer, expectation, out _) == S7ResponseStatus.Normal)
            {
                ReadOnlyS7Client.CopyItems(S7Pdu.ParseHeader(answer).Data, items, destination, results, 0);
            }
        }
        for (int i = 0; i < 100; i++)
        {
            Cycle();
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            Cycle();
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(ReadStatus.Ok, results[3].Status);
    }

    /// <summary>
    /// The type's surface: reads, the negotiated PDU size, disposal — nothing that takes a function code, a write item,
    /// raw bytes or a session. Its only request builders are setup-communication and read-var (plus the CR in CotpWriter).
    /// </summary>
    [Fact]
    public void ClientType_CanExpressOnlyReads()
    {
        var type = typeof(ReadOnlyS7Client);
        var publicMethods = type.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
            .Where(m => !m.IsSpecialName).Select(m => m.Name).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["DestinationLength", "DisposeAsync", "ReadAsync"], publicMethods);
        var builders = type.GetMethods(BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.DeclaredOnly)
            .Where(m => m.Name.StartsWith("Write", StringComparison.Ordinal)).Select(m => m.Name).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["WriteJobHeader", "WriteReadVar", "WriteSetupCommunication"], builders);
        var read = type.GetMethod("ReadAsync")!;
        Assert.Equal([typeof(ReadOnlyMemory<S7ReadItem>), typeof(Memory<byte>), typeof(Memory<S7ItemResult>), typeof(CancellationToken)], read.GetParameters().Select(p => p.ParameterType));
        // An item carries an address and a size, never a function or data to write.
        Assert.Equal(["Area", "Bit", "ByteLength", "ByteOffset", "Db"],
            typeof(S7ReadItem).GetProperties().Where(p => p.CanWrite).Select(p => p.Name).Order(StringComparer.Ordinal));
    }
}
