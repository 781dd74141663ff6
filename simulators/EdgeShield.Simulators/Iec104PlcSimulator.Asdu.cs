using EdgeShield.Protocols.Iec104;

namespace EdgeShield.Simulators;

public sealed partial class Iec104PlcSimulator
{
    /// <summary>
    /// Answers one ASDU as a station does (docs/IEC104.md): unknown or unserved type → 44, other CA → 46 (the global
    /// CA is accepted for C_IC_NA_1, C_CI_NA_1 and C_CS_NA_1, answered with the station's CA), wrong cause → 45,
    /// unknown IOA → 47, bad qualifier or value, execute without a confirmed select → negative 7. Refusals are the
    /// request's ASDU with the cause replaced and P/N = 1.
    /// </summary>
    private void HandleAsdu(Session session, in Iec104Asdu asdu)
    {
        byte type = asdu.Type;
        Interlocked.Increment(ref _asdus[type]);
        byte[] raw = asdu.Bytes.ToArray();
        ushort own = _options.CommonAddress;
        if (asdu.Status != Iec104AsduStatus.WellFormed || !Served(type))
        {
            Refuse(session, raw, Iec104Build.UnknownType);
            return;
        }
        bool global = asdu.IsGlobal;
        if (asdu.CommonAddress != own && !(global && type is 100 or 101 or 103))
        {
            Refuse(session, raw, Iec104Build.UnknownCommonAddress);
            return;
        }
        ushort? answerCa = global ? own : null;
        byte cause = asdu.Cause;
        bool causeOk = type switch
        {
            102 => cause == Iec104Build.Request,
            103 or 105 or 107 => cause == Iec104Build.Activation,
            _ => cause is Iec104Build.Activation or Iec104Build.Deactivation,
        };
        if (!causeOk)
        {
            Refuse(session, raw, Iec104Build.UnknownCause, answerCa);
            return;
        }
        var objects = asdu.GetEnumerator();
        objects.MoveNext();
        uint ioa = objects.Current.Ioa;
        var element = objects.Current.Element;
        switch (type)
        {
            case 100:
            case 101:
            case 103:
            case 105:
            case 107:
                if (ioa != 0)
                {
                    Refuse(session, raw, Iec104Build.UnknownIoa, answerCa);
                    return;
                }
                break;
        }
        switch (type)
        {
            case 100: // C_IC_NA_1
                Interrogate(session, raw, element[0], cause, answerCa);
                return;
            case 101: // C_CI_NA_1
                CounterInterrogate(session, raw, element[0], cause, answerCa);
                return;
            case 102: // C_RD_NA_1
                Read(session, raw, ioa);
                return;
            case 103: // C_CS_NA_1
                ClockSync(session, raw, element, answerCa);
                return;
            case 105: // C_RP_NA_1: QRP 1 general reset (the counters restart), 2 reset of time-tagged events
                if (element[0] is not (1 or 2))
                {
                    Refuse(session, raw, Iec104Build.ActivationCon);
                    return;
                }
                if (element[0] == 1)
                {
                    lock (_sync)
                    {
                        _points.ResetCounters();
                    }
                }
                session.Enqueue(Iec104Build.Mirror(raw, Iec104Build.ActivationCon, negative: false));
                return;
            case 107: // C_TS_TA_1: the test command is mirrored
                session.Enqueue(Iec104Build.Mirror(raw, Iec104Build.ActivationCon, negative: false));
                return;
            default:
                Command(session, asdu, raw, ioa, element);
                return;
        }
    }

    /// <summary>The types the station serves: commands 45-50, 58-63 (no bitstrings), and 100-103, 105, 107.</summary>
    private static bool Served(byte type) => type is >= 45 and <= 50 or >= 58 and <= 63 or 100 or 101 or 102 or 103 or 105 or 107;

    private void Refuse(Session session, byte[] request, byte cause, ushort? commonAddress = null)
    {
        Interlocked.Increment(ref _negatives[cause]);
        session.Enqueue(Iec104Build.Mirror(request, cause, negative: true, commonAddress));
    }

    private void Interrogate(Session session, byte[] request, byte qoi, byte cause, ushort? answerCa)
    {
        if (qoi is < 20 or > 36)
        {
            Refuse(session, request, cause == Iec104Build.Deactivation ? Iec104Build.DeactivationCon : Iec104Build.ActivationCon, answerCa);
            return;
        }
        if (cause == Iec104Build.Deactivation)
        {
            session.Enqueue(Iec104Build.Mirror(request, Iec104Build.DeactivationCon, negative: false, answerCa));
            return;
        }
        Interlocked.Increment(ref _interrogations);
        List<byte[]> data;
        lock (_sync)
        {
            data = _points.Interrogation(_options.CommonAddress, qoi);
        }
        session.Enqueue(Iec104Build.Mirror(request, Iec104Build.ActivationCon, negative: false, answerCa));
        foreach (var asdu in data)
        {
            session.Enqueue(asdu);
        }
        session.Enqueue(Iec104Build.Mirror(request, Iec104Build.ActivationTerm, negative: false, answerCa));
    }

    private void CounterInterrogate(Session session, byte[] request, byte qcc, byte cause, ushort? answerCa)
    {
        int rqt = qcc & 0x3F, frz = qcc >> 6;
        if (rqt is < 1 or > 5)
        {
            Refuse(session, request, cause == Iec104Build.Deactivation ? Iec104Build.DeactivationCon : Iec104Build.ActivationCon, answerCa);
            return;
        }
        if (cause == Iec104Build.Deactivation)
        {
            session.Enqueue(Iec104Build.Mirror(request, Iec104Build.DeactivationCon, negative: false, answerCa));
            return;
        }
        Interlocked.Increment(ref _counterInterrogations);
        List<byte[]> data = [];
        lock (_sync)
        {
            if (frz == 0)
            {
                data = _points.Counters(_options.CommonAddress, rqt);
            }
            else if (frz >= 2)
            {
                _points.ResetCounters(); // 2 freeze with reset, 3 reset
            }
        }
        session.Enqueue(Iec104Build.Mirror(request, Iec104Build.ActivationCon, negative: false, answerCa));
        foreach (var asdu in data)
        {
            session.Enqueue(asdu);
        }
        session.Enqueue(Iec104Build.Mirror(request, Iec104Build.ActivationTerm, negative: false, answerCa));
    }

    private void Read(Session session, byte[] request, uint ioa)
    {
        byte type;
        byte[] element;
        bool found;
        lock (_sync)
        {
            found = _points.TryRead(ioa, out type, out element);
        }
        if (!found)
        {
            Refuse(session, request, Iec104Build.UnknownIoa);
            return;
        }
        Interlocked.Increment(ref _reads);
        session.Enqueue(Iec104Build.Asdu(type, Iec104Build.Request, _options.CommonAddress, ioa, element));
    }

    private void ClockSync(Session session, byte[] request, ReadOnlySpan<byte> element, ushort? answerCa)
    {
        if (!Cp56Time2a.Read(element).TryToDateTime(out var time))
        {
            Refuse(session, request, Iec104Build.ActivationCon, answerCa);
            return;
        }
        Interlocked.Exchange(ref _clockOffsetTicks, (time - DateTime.Now).Ticks);
        Interlocked.Increment(ref _clockSyncs);
        session.Enqueue(Iec104Build.Mirror(request, Iec104Build.ActivationCon, negative: false, answerCa));
    }

    /// <summary>C_SC, C_DC, C_RC (select-before-operate unless <see cref="Iec104PlcOptions.DirectOperate"/>) and set-points.</summary>
    private void Command(Session session, in Iec104Asdu asdu, byte[] raw, uint ioa, ReadOnlySpan<byte> element)
    {
        byte type = asdu.Type;
        byte baseType = type >= 58 ? (byte)(type - 13) : type;
        bool setpoint = baseType is >= 48 and <= 50;
        if (setpoint ? !Iec104Points.IsSetpoint(ioa) : !Iec104Points.IsCommandObject(ioa))
        {
            Refuse(session, raw, Iec104Build.UnknownIoa);
            return;
        }
        bool deactivate = asdu.Cause == Iec104Build.Deactivation;
        byte confirmation = deactivate ? Iec104Build.DeactivationCon : Iec104Build.ActivationCon;
        if (asdu.Count != 1 || !asdu.QualifierValid || !asdu.TryGetCommandKey(out var key)
            || (Iec104Types.HasTimeTag(type) && !Cp56Time2a.Read(element[^Cp56Time2a.Size..]).IsValid))
        {
            Refuse(session, raw, confirmation);
            return;
        }
        if (deactivate)
        {
            session.Cancel(ioa); // a select is withdrawn
            session.Enqueue(Iec104Build.Mirror(raw, Iec104Build.DeactivationCon, negative: false));
            return;
        }
        if (!asdu.TryGetValue(out double value, out _))
        {
            Refuse(session, raw, Iec104Build.ActivationCon); // a float set-point that is not a number
            return;
        }
        if (asdu.IsSelect)
        {
            session.Arm(key);
            Interlocked.Increment(ref _selects);
            session.Enqueue(Iec104Build.Mirror(raw, Iec104Build.ActivationCon, negative: false));
            return;
        }
        bool selected = session.Disarm(key);
        if (!setpoint && !selected && !_options.DirectOperate)
        {
            Refuse(session, raw, Iec104Build.ActivationCon);
            return;
        }
        byte[] feedback;
        lock (_sync)
        {
            switch (baseType)
            {
                case 45:
                    _points.SetCommandSingle(ioa, value != 0);
                    break;
                case 46:
                    _points.SetCommandDouble(ioa, (int)value);
                    break;
                case 47:
                    _points.StepCommand(ioa, (int)value);
                    break;
                default:
                    _points.SetSetpoint(ioa, (float)value);
                    break;
            }
            feedback = setpoint ? _points.SetpointFeedback(_options.CommonAddress, ioa, Clock) : _points.CommandFeedback(_options.CommonAddress, ioa, baseType, Clock);
        }
        Interlocked.Increment(ref setpoint ? ref _setpoints : ref _executes);
        session.Enqueue(Iec104Build.Mirror(raw, Iec104Build.ActivationCon, negative: false));
        Broadcast(feedback);
        session.Enqueue(Iec104Build.Mirror(raw, Iec104Build.ActivationTerm, negative: false));
    }
}
