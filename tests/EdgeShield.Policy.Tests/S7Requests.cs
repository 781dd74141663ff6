using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Policy.Tests;

/// <summary>Hand-written S7 PDUs (layouts of S7COMM.md) and their evaluation against a compiled policy.</summary>
internal static class S7Requests
{
    public static readonly S7Connection Pg = S7Connection.FromCalledTsap([0x01, 0x02]);
    public static readonly S7Connection Op = S7Connection.FromCalledTsap([0x02, 0x02]);
    public static readonly S7Connection Basic = S7Connection.FromCalledTsap([0x03, 0x02]);
    public static readonly S7Connection PlusHmi = S7Connection.FromCalledTsap("SIMATIC-ROOT-HMI"u8);
    public static readonly S7Connection PlusEs = S7Connection.FromCalledTsap("SIMATIC-ROOT-ES"u8);

    /// <summary>An S7ANY item: area code, DB, byte offset and bit (or element number for C/T), transport size, count.</summary>
    public readonly record struct Item(byte Area, ushort Db, int Byte, int Bit = 0, byte TransportSize = 0x02, ushort Count = 1, byte[]? Data = null, byte[]? RawSpecification = null)
    {
        public byte[] Specification()
        {
            if (RawSpecification is not null)
            {
                return RawSpecification;
            }
            var address = Area is 0x1C or 0x1D ? Byte : Byte * 8 + Bit;
            return [0x12, 0x0A, 0x10, TransportSize, (byte)(Count >> 8), (byte)Count, (byte)(Db >> 8), (byte)Db, Area, (byte)(address >> 16), (byte)(address >> 8), (byte)address];
        }
    }

    public static Item Db(ushort db, int offset, int bytes, byte[]? data = null) => new(0x84, db, offset, Count: (ushort)bytes, Data: data);

    public static Item M(int offset, int bytes, byte[]? data = null) => new(0x83, 0, offset, Count: (ushort)bytes, Data: data);

    public static Item Q(int offset, int bytes, byte[]? data = null) => new(0x82, 0, offset, Count: (ushort)bytes, Data: data);

    public static byte[] Job(byte[] parameters, byte[]? data = null, ushort reference = 0x0100)
    {
        data ??= [];
        byte[] header = [0x32, 0x01, 0, 0, (byte)(reference >> 8), (byte)reference, (byte)(parameters.Length >> 8), (byte)parameters.Length, (byte)(data.Length >> 8), (byte)data.Length];
        return [.. header, .. parameters, .. data];
    }

    public static byte[] ReadVar(params Item[] items)
    {
        var parameters = new List<byte> { 0x04, (byte)items.Length };
        foreach (var item in items)
        {
            parameters.AddRange(item.Specification());
        }
        return Job([.. parameters]);
    }

    /// <summary>Write-var; each item's data block uses transport size 04 (length in bits), or 03 for a bit item.</summary>
    public static byte[] WriteVar(params Item[] items)
    {
        var parameters = new List<byte> { 0x05, (byte)items.Length };
        var data = new List<byte>();
        for (var i = 0; i < items.Length; i++)
        {
            var item = items[i];
            parameters.AddRange(item.Specification());
            var bytes = item.Data ?? new byte[item.TransportSize == 0x01 ? 1 : item.Count * (item.Area is 0x1C or 0x1D ? 2 : 1)];
            var bit = item.TransportSize == 0x01;
            var length = bit ? 1 : bytes.Length * 8;
            data.AddRange([0x00, bit ? (byte)0x03 : (byte)0x04, (byte)(length >> 8), (byte)length]);
            data.AddRange(bytes);
            if (i < items.Length - 1 && (bytes.Length & 1) != 0)
            {
                data.Add(0);
            }
        }
        return Job([.. parameters], [.. data]);
    }

    public static readonly byte[] Setup = Job([0xF0, 0x00, 0x00, 0x01, 0x00, 0x01, 0x01, 0xE0]);

    /// <summary>Plc-control (28) with a PI service and an empty parameter block.</summary>
    public static byte[] PlcControl(string service)
    {
        var name = System.Text.Encoding.ASCII.GetBytes(service);
        return Job([0x28, 0, 0, 0, 0, 0, 0, 0xFD, 0, 0, (byte)name.Length, .. name]);
    }

    /// <summary>Plc-stop (29) with P_PROGRAM.</summary>
    public static readonly byte[] PlcStop = Job([0x29, 0, 0, 0, 0, 0, 9, .. "P_PROGRAM"u8]);

    /// <summary>A job whose parameters are only its function byte (download/upload family, cpu-services).</summary>
    public static byte[] Bare(byte function) => Job([function, 0, 0, 0, 0, 0, 0, 0]);

    /// <summary>A userdata request of a group and subfunction, no data.</summary>
    public static byte[] Userdata(byte group, byte subfunction)
    {
        byte[] parameters = [0x00, 0x01, 0x12, 0x04, 0x11, (byte)(0x40 | group), subfunction, 0x00];
        return [0x32, 0x07, 0, 0, 0x02, 0x00, 0, (byte)parameters.Length, 0, 0, .. parameters];
    }

    /// <summary>S7comm-Plus get-multiple-variables (as in the codec's tests).</summary>
    public static readonly byte[] Plus = Convert.FromHexString("7201000C310000054C0000000100000072010000");

    public static Verdict Evaluate(CompiledPolicy policy, byte[] pdu, S7Connection? connection = null, string source = "10.20.0.5", long timestamp = 1_000)
    {
        var request = S7Pdu.ParseRequest(pdu);
        Assert.NotEqual(S7RequestStatus.Malformed, request.Status);
        return policy.Evaluate(TestPolicies.Ip(source), new S7Target(connection ?? Op, request), timestamp);
    }

    public static byte[] Refusals(CompiledPolicy policy, int ruleIndex, byte[] pdu, S7Connection? connection = null)
    {
        var request = S7Pdu.ParseRequest(pdu);
        Span<byte> codes = stackalloc byte[255];
        var count = policy.S7ItemRefusals(ruleIndex, new S7Target(connection ?? Op, request), codes);
        return codes[..count].ToArray();
    }

    /// <summary>Compiles one <c>protocol: s7comm</c> policy named <c>p</c> whose rules are <paramref name="rulesYaml"/> (indented by 6).</summary>
    public static CompiledPolicy Compile(string rulesYaml, MaintenanceState? maintenance = null)
    {
        var yaml = $"policies:\n  p:\n    protocol: s7comm\n    mode: enforce\n    rules:\n{rulesYaml}";
        var result = ConfigLoader.LoadText(yaml, "test.yaml", maintenance ?? new MaintenanceState());
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        return result.Config!.Policies["p"];
    }
}
