using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Policy.Tests;

/// <summary>IEC 104 commands as the gateway session builds them, and policies of <c>protocol: iec104</c>.</summary>
internal static class Iec104Requests
{
    public const long T0 = 1_000_000_000;

    /// <summary>Compiles one <c>protocol: iec104</c> policy named <c>p</c> whose rules are <paramref name="rulesYaml"/> (indented by 6).</summary>
    public static CompiledPolicy Compile(string rulesYaml, MaintenanceState? maintenance = null)
    {
        var yaml = $"policies:\n  p:\n    protocol: iec104\n    mode: enforce\n    rules:\n{rulesYaml}";
        var result = ConfigLoader.LoadText(yaml, "test.yaml", maintenance ?? new MaintenanceState());
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        return result.Config!.Policies["p"];
    }

    /// <summary>A command in the fields a session fills; the element is the octets after the IOA.</summary>
    public readonly record struct Cmd(Iec104TypeId Type, ushort Ca, uint Ioa, byte[] Element, byte Cause = 6, uint? HighestIoa = null, bool QualifierValid = true)
    {
        public byte TypeOctet => (byte)Type;

        public bool IsSelect => Iec104Command.CarriesSelect(TypeOctet) && QualifierIndex < Element.Length && (Element[QualifierIndex] & 0x80) != 0;

        private int QualifierIndex => Iec104Command.IsSetPoint(TypeOctet) ? SetPointQualifier : 0;

        private int SetPointQualifier => Type is Iec104TypeId.C_SE_NC_1 or Iec104TypeId.C_SE_TC_1 ? 4 : 2;

        public ulong Key => Iec104Command.Key(TypeOctet, Ca, Ioa, Element);

        /// <summary>The object (CA, IOA) as the session reads it from the ASDU (<see cref="Iec104Command.PointOf"/>).</summary>
        public ulong Point
        {
            get
            {
                byte[] bytes = [TypeOctet, 1, Cause, 0, (byte)Ca, (byte)(Ca >> 8), (byte)Ioa, (byte)(Ioa >> 8), (byte)(Ioa >> 16), .. Element];
                Xunit.Assert.True(Iec104Asdu.TryParse(bytes, out var asdu, out _));
                return Iec104Command.PointOf(asdu);
            }
        }

        public Iec104Command Build(Iec104Selects? selects = null, long now = T0)
        {
            var hasValue = Iec104Command.TryReadSetPoint(TypeOctet, Element, out var value);
            return new Iec104Command
            {
                Type = TypeOctet,
                Cause = Cause,
                CommonAddress = Ca,
                LowestIoa = Ioa,
                HighestIoa = HighestIoa ?? Ioa,
                HasValue = hasValue,
                ValueMin = value,
                ValueMax = value,
                IsSelect = IsSelect,
                QualifierValid = QualifierValid,
                CommandKey = Key,
                Selects = selects,
                Now = now,
            };
        }
    }

    /// <summary>SCO: state on/off, S/E.</summary>
    public static Cmd Single(ushort ca, uint ioa, bool on = true, bool select = false, byte cause = 6) =>
        new(Iec104TypeId.C_SC_NA_1, ca, ioa, [(byte)((on ? 1 : 0) | (select ? 0x80 : 0))], cause);

    /// <summary>DCO: 1 off, 2 on (0 and 3 are not permitted).</summary>
    public static Cmd Double(ushort ca, uint ioa, byte state = 2, bool select = false) =>
        new(Iec104TypeId.C_DC_NA_1, ca, ioa, [(byte)(state | (select ? 0x80 : 0))], QualifierValid: state is 1 or 2);

    /// <summary>C_SE_NC_1: float set-point + QOS.</summary>
    public static Cmd Float(ushort ca, uint ioa, float value, bool select = false)
    {
        var element = new byte[5];
        BitConverter.TryWriteBytes(element, value);
        element[4] = (byte)(select ? 0x80 : 0);
        return new(Iec104TypeId.C_SE_NC_1, ca, ioa, element);
    }

    /// <summary>C_SE_NA_1: normalised set-point (raw int16) + QOS.</summary>
    public static Cmd Normalised(ushort ca, uint ioa, short raw) =>
        new(Iec104TypeId.C_SE_NA_1, ca, ioa, [(byte)raw, (byte)(raw >> 8), 0]);

    /// <summary>C_SE_NB_1: scaled set-point + QOS.</summary>
    public static Cmd Scaled(ushort ca, uint ioa, short value) =>
        new(Iec104TypeId.C_SE_NB_1, ca, ioa, [(byte)value, (byte)(value >> 8), 0]);

    public static Cmd Interrogation(ushort ca) => new(Iec104TypeId.C_IC_NA_1, ca, 0, [20]);

    public static Cmd Read(ushort ca, uint ioa) => new(Iec104TypeId.C_RD_NA_1, ca, ioa, [], Cause: 5);

    public static Cmd ClockSync(ushort ca) => new(Iec104TypeId.C_CS_NA_1, ca, 0, new byte[7]);

    public static Verdict Evaluate(CompiledPolicy policy, Cmd command, string source = "10.30.0.10", Iec104Selects? selects = null, long now = T0) =>
        policy.Evaluate(TestPolicies.Ip(source), command.Build(selects, now), now);
}
