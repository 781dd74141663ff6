using System.Buffers.Binary;
using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Simulators;

/// <summary>
/// The station's data (common address <see cref="Iec104PlcOptions.CommonAddress"/>); not thread-safe, the
/// simulator locks around it.
/// </summary>
/// <remarks>
/// <code>
///  IOA        type (interrogation / read)   initial value                  spontaneous (cause 3)
///  100-109    M_SP_NA_1 single points       i % 2 == 1 on                  M_SP_TB_1 (time tag)
///  110-119    M_DP_NA_1 double points       1 off / 2 on alternating       M_DP_TB_1
///  200-209    M_ME_NC_1 float               20.0 + i                       M_ME_TF_1
///  210-219    M_ME_NB_1 scaled              100 × i                        M_ME_NB_1
///  220-229    M_ME_NA_1 normalised          i / 10                         M_ME_NA_1
///  300-309    M_IT_NA_1 integrated totals   1000 × i, counting             M_IT_TB_1 (and on counter interrogation)
///  2000-2099  command objects: C_SC_NA_1/TA_1, C_DC_NA_1/TA_1, C_RC_NA_1/TA_1 (select-before-operate);
///             an executed command changes the object's state, reported as M_SP_TB_1 / M_DP_TB_1 / M_ST_TB_1
///  3000-3009  set-points: C_SE_NA_1/NB_1/NC_1 and their _TA variants (direct execute or select+execute); the value
///             as the station reads it (normalised -1..1, scaled, float) is read back as M_ME_NC_1 and reported as M_ME_TF_1
/// </code>
/// Interrogation groups: 21 single points, 22 double points, 23 measured values, 24 set-points; groups 25-36 hold
/// nothing (actcon, actterm). Counter interrogation groups 1-4: counters i with i % 4 == group - 1.
/// </remarks>
internal sealed class Iec104Points
{
    public const uint SingleBase = 100, DoubleBase = 110, FloatBase = 200, ScaledBase = 210, NormalisedBase = 220, CounterBase = 300;
    public const uint CommandBase = 2000, CommandCount = 100, SetpointBase = 3000, SetpointCount = 10;
    public const int Count = 10;

    private readonly bool[] _single = new bool[Count];
    private readonly byte[] _double = new byte[Count];
    private readonly float[] _float = new float[Count];
    private readonly short[] _scaled = new short[Count];
    private readonly short[] _normalised = new short[Count];
    private readonly int[] _counters = new int[Count];
    private readonly bool[] _commandSingle = new bool[CommandCount];
    private readonly byte[] _commandDouble = new byte[CommandCount];
    private readonly sbyte[] _commandStep = new sbyte[CommandCount];
    private readonly float[] _setpoints = new float[SetpointCount];
    private int _round;
    private byte _counterSequence;

    public Iec104Points()
    {
        for (int i = 0; i < Count; i++)
        {
            _single[i] = i % 2 == 1;
            _double[i] = (byte)(i % 2 == 0 ? 1 : 2);
            _float[i] = 20f + i;
            _scaled[i] = (short)(100 * i);
            _normalised[i] = (short)(i * 3276);
            _counters[i] = 1000 * i;
        }
        Array.Fill(_commandDouble, (byte)1);
    }

    public static bool IsCommandObject(uint ioa) => ioa - CommandBase < CommandCount;

    public static bool IsSetpoint(uint ioa) => ioa - SetpointBase < SetpointCount;

    public bool Single(uint ioa) => IsCommandObject(ioa) ? _commandSingle[ioa - CommandBase] : _single[ioa - SingleBase];

    public int Double(uint ioa) => IsCommandObject(ioa) ? _commandDouble[ioa - CommandBase] : _double[ioa - DoubleBase];

    public int Step(uint ioa) => _commandStep[ioa - CommandBase];

    public float Setpoint(uint ioa) => _setpoints[ioa - SetpointBase];

    public void SetSetpoint(uint ioa, float value) => _setpoints[ioa - SetpointBase] = value;

    public void SetCommandSingle(uint ioa, bool on) => _commandSingle[ioa - CommandBase] = on;

    public void SetCommandDouble(uint ioa, int state) => _commandDouble[ioa - CommandBase] = (byte)state;

    /// <summary>Moves the step position one step (RCO 1 lower, 2 higher), within -64..63.</summary>
    public void StepCommand(uint ioa, int rco) =>
        _commandStep[ioa - CommandBase] = (sbyte)Math.Clamp(_commandStep[ioa - CommandBase] + (rco == 2 ? 1 : -1), -64, 63);

    /// <summary>The untimed monitor type and element of a point C_RD_NA_1 can read; false for any other IOA.</summary>
    public bool TryRead(uint ioa, out byte type, out byte[] element)
    {
        int i = (int)(ioa % 10);
        (type, element) = ioa switch
        {
            >= SingleBase and < SingleBase + Count => ((byte)Iec104TypeId.M_SP_NA_1, [(byte)(_single[i] ? 1 : 0)]),
            >= DoubleBase and < DoubleBase + Count => ((byte)Iec104TypeId.M_DP_NA_1, [_double[i]]),
            >= FloatBase and < FloatBase + Count => ((byte)Iec104TypeId.M_ME_NC_1, FloatElement(_float[i])),
            >= ScaledBase and < ScaledBase + Count => ((byte)Iec104TypeId.M_ME_NB_1, Int16Element(_scaled[i])),
            >= NormalisedBase and < NormalisedBase + Count => ((byte)Iec104TypeId.M_ME_NA_1, Int16Element(_normalised[i])),
            >= CounterBase and < CounterBase + Count => ((byte)Iec104TypeId.M_IT_NA_1, CounterElement(_counters[i], _counterSequence)),
            >= SetpointBase and < SetpointBase + SetpointCount => ((byte)Iec104TypeId.M_ME_NC_1, FloatElement(_setpoints[ioa - SetpointBase])),
            _ => ((byte)0, []),
        };
        return type != 0;
    }

    /// <summary>The ASDUs (SQ = 1, one per kind) a station interrogation (QOI 20) or group (21-24) answers with <paramref name="cause"/>.</summary>
    public List<byte[]> Interrogation(ushort ca, byte qoi)
    {
        var asdus = new List<byte[]>();
        byte cause = qoi;
        if (qoi is 20 or 21)
        {
            asdus.Add(Iec104Build.Sequence((byte)Iec104TypeId.M_SP_NA_1, cause, ca, SingleBase, _single.Select(static s => (byte)(s ? 1 : 0)).ToArray(), Count));
        }
        if (qoi is 20 or 22)
        {
            asdus.Add(Iec104Build.Sequence((byte)Iec104TypeId.M_DP_NA_1, cause, ca, DoubleBase, _double, Count));
        }
        if (qoi is 20 or 23)
        {
            asdus.Add(Iec104Build.Sequence((byte)Iec104TypeId.M_ME_NC_1, cause, ca, FloatBase, _float.SelectMany(FloatElement).ToArray(), Count));
            asdus.Add(Iec104Build.Sequence((byte)Iec104TypeId.M_ME_NB_1, cause, ca, ScaledBase, _scaled.SelectMany(Int16Element).ToArray(), Count));
            asdus.Add(Iec104Build.Sequence((byte)Iec104TypeId.M_ME_NA_1, cause, ca, NormalisedBase, _normalised.SelectMany(Int16Element).ToArray(), Count));
        }
        if (qoi is 20 or 24)
        {
            asdus.Add(Iec104Build.Sequence((byte)Iec104TypeId.M_ME_NC_1, cause, ca, SetpointBase, _setpoints.SelectMany(FloatElement).ToArray(), (int)SetpointCount));
        }
        return asdus;
    }

    /// <summary>The counters of counter interrogation group <paramref name="rqt"/> (5 = general, 1-4 groups), cause 37 or 37 + group.</summary>
    public List<byte[]> Counters(ushort ca, int rqt)
    {
        var asdus = new List<byte[]>();
        byte cause = (byte)(rqt == 5 ? 37 : 37 + rqt);
        for (int i = 0; i < Count; i++)
        {
            if (rqt == 5 || i % 4 == rqt - 1)
            {
                asdus.Add(Iec104Build.Asdu((byte)Iec104TypeId.M_IT_NA_1, cause, ca, CounterBase + (uint)i, CounterElement(_counters[i], _counterSequence)));
            }
        }
        _counterSequence = (byte)((_counterSequence + 1) & 0x1F);
        return asdus;
    }

    public void ResetCounters() => Array.Clear(_counters);

    /// <summary>Changes the next point of the round (singles, doubles, floats, scaled, normalised, counters) and returns its spontaneous ASDU.</summary>
    public byte[] NextChange(ushort ca, DateTime now)
    {
        int kind = _round % 6;
        int i = _round / 6 % Count;
        _round++;
        for (int c = 0; c < Count; c++)
        {
            _counters[c] += 1 + c;
        }
        byte[] time = TimeTag(now);
        switch (kind)
        {
            case 0:
                _single[i] = !_single[i];
                return Iec104Build.Asdu((byte)Iec104TypeId.M_SP_TB_1, Iec104Build.Spontaneous, ca, SingleBase + (uint)i, [(byte)(_single[i] ? 1 : 0), .. time]);
            case 1:
                _double[i] = (byte)(_double[i] == 1 ? 2 : 1);
                return Iec104Build.Asdu((byte)Iec104TypeId.M_DP_TB_1, Iec104Build.Spontaneous, ca, DoubleBase + (uint)i, [_double[i], .. time]);
            case 2:
                _float[i] = 20f + i + (float)Math.Round(Math.Sin(_round / 10.0) * 5, 2);
                return Iec104Build.Asdu((byte)Iec104TypeId.M_ME_TF_1, Iec104Build.Spontaneous, ca, FloatBase + (uint)i, [.. FloatElement(_float[i]), .. time]);
            case 3:
                _scaled[i] = (short)(100 * i + _round % 50);
                return Iec104Build.Asdu((byte)Iec104TypeId.M_ME_NB_1, Iec104Build.Spontaneous, ca, ScaledBase + (uint)i, Int16Element(_scaled[i]));
            case 4:
                _normalised[i] = (short)(i * 3276 + _round % 100);
                return Iec104Build.Asdu((byte)Iec104TypeId.M_ME_NA_1, Iec104Build.Spontaneous, ca, NormalisedBase + (uint)i, Int16Element(_normalised[i]));
            default:
                return Iec104Build.Asdu((byte)Iec104TypeId.M_IT_TB_1, Iec104Build.Spontaneous, ca, CounterBase + (uint)i, [.. CounterElement(_counters[i], _counterSequence), .. time]);
        }
    }

    /// <summary>The spontaneous report of command object <paramref name="ioa"/> after a command of <paramref name="baseType"/> (45, 46, 47).</summary>
    public byte[] CommandFeedback(ushort ca, uint ioa, byte baseType, DateTime now)
    {
        byte[] time = TimeTag(now);
        return baseType switch
        {
            45 => Iec104Build.Asdu((byte)Iec104TypeId.M_SP_TB_1, Iec104Build.Spontaneous, ca, ioa, [(byte)(Single(ioa) ? 1 : 0), .. time]),
            46 => Iec104Build.Asdu((byte)Iec104TypeId.M_DP_TB_1, Iec104Build.Spontaneous, ca, ioa, [(byte)Double(ioa), .. time]),
            _ => Iec104Build.Asdu((byte)Iec104TypeId.M_ST_TB_1, Iec104Build.Spontaneous, ca, ioa, [(byte)(Step(ioa) & 0x7F), 0, .. time]),
        };
    }

    /// <summary>The spontaneous report of set-point <paramref name="ioa"/>.</summary>
    public byte[] SetpointFeedback(ushort ca, uint ioa, DateTime now) =>
        Iec104Build.Asdu((byte)Iec104TypeId.M_ME_TF_1, Iec104Build.Spontaneous, ca, ioa, [.. FloatElement(Setpoint(ioa)), .. TimeTag(now)]);

    private static byte[] TimeTag(DateTime now) => Iec104Build.Time(now.Year is >= 2000 and <= 2099 ? now : new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Unspecified));

    /// <summary>Value + QDS 0.</summary>
    private static byte[] FloatElement(float value)
    {
        var e = new byte[5];
        BinaryPrimitives.WriteSingleLittleEndian(e, value);
        return e;
    }

    private static byte[] Int16Element(short value)
    {
        var e = new byte[3];
        BinaryPrimitives.WriteInt16LittleEndian(e, value);
        return e;
    }

    /// <summary>BCR: int32 counter, then sequence number (bits 0-4), CY, CA, IV.</summary>
    private static byte[] CounterElement(int value, byte sequence)
    {
        var e = new byte[5];
        BinaryPrimitives.WriteInt32LittleEndian(e, value);
        e[4] = (byte)(sequence & 0x1F);
        return e;
    }
}
