/*
 * iec104-station: a small IEC 60870-5-104 controlled station (RTU) written against lib60870
 * (tests/peers/lib60870, GPL v3, a test peer only), for EdgeShield's tests and benchmarks.
 * Built by tests/peers/build-lib60870.sh into artifacts/peers/lib60870/bin/.
 *
 *   iec104-station [--listen HOST:PORT] [--ca N] [--redundancy-groups] [--spontaneous-ms N]
 *                  [--max-connections N] [--direct-operate] [--quiet] [--log FILE]
 *
 * Points (common address --ca, default 1): single points M_SP_NA_1 IOA 100-109, double points
 * M_DP_NA_1 110-119, floats M_ME_NC_1 200-209, scaled M_ME_NB_1 210-219. Every --spontaneous-ms
 * one point changes (round robin over the 40) and is sent with cause 3 (0 = never, the default).
 * Integrated totals M_IT_NA_1 300-309 (an energy meter each): counter i starts at 1000 (i + 1) and
 * counts i + 1 at every spontaneous step; they are not spontaneous and not in the station
 * interrogation (IEC 60870-5-101 7.4.5): only a counter interrogation sends them.
 *
 * What it answers (the same ASDU back, as lib60870 and the standard want):
 *   C_IC_NA_1 QOI 20: actcon, every point with cause 20 (one ASDU per kind), actterm; another QOI:
 *     negative actcon. Cause 8 (deactivation): positive cause 9.
 *   C_CI_NA_1 QCC RQT 5 with FRZ 0 (read): actcon, the ten counters with cause 37 in one ASDU, actterm;
 *     another RQT or a freeze/reset (FRZ 1-3): actcon, actterm only (the counters are not changed).
 *   C_SC_NA_1/C_SC_TA_1, C_DC_NA_1/C_DC_TA_1 at IOA 2000-2099: select (S/E=1) → positive actcon and
 *     the selection is remembered per connection; execute (S/E=0) → positive actcon + actterm only
 *     when the same connection selected the same type, IOA and value less than 10 s before, else
 *     negative actcon (--direct-operate: execute without select is allowed). Cause 8 cancels a
 *     selection (positive cause 9). DCO 0 or 3: negative actcon.
 *   C_SE_NA_1/NB_1/NC_1 and C_SE_TA_1/TB_1/TC_1 at IOA 3000-3009: positive actcon (+ actterm for an
 *     execute); the value is kept and read back by C_RD_NA_1 of that IOA (as M_ME_NC_1).
 *   C_CS_NA_1: positive actcon (lib60870 answers; the time is logged, the clock is not set).
 *   C_RD_NA_1 of a point IOA: the point with cause 5; of another IOA: negative, cause 47.
 *   A command whose IOA is outside its range: negative, cause 47. A cause other than 6/8: negative
 *   cause 45. A CA other than --ca: negative, cause 46 (the global CA 65535 is accepted only for
 *   C_IC_NA_1, C_CI_NA_1 and C_CS_NA_1). Any other type: negative, cause 44 (lib60870 answers).
 *
 * The log (one line per event, key=value, values never contain spaces unless quoted):
 *   ready listen=HOST:PORT ca=N mode=single|redundancy-groups
 *   connect conn=N peer=IP:PORT
 *   startdt conn=N                      (the connection became active: STARTDT act received)
 *   stopdt conn=N
 *   asdu conn=N type=T name=NAME cot=C neg=0|1 test=0|1 oa=O ca=CA sq=0|1 n=N ioa=IOA [se=0|1]
 *        [value=V] [qu=Q|ql=Q] [qoi=Q] [qcc=Q] [time=ISO]
 *                                       (every ASDU received, before it is answered; ioa and the
 *                                        fields after it are of the first object)
 *   reply conn=N type=T cot=C neg=0|1 ca=CA ioa=IOA     (each confirmation/termination sent)
 *   lib conn=N msg="…"                  (what lib60870 reports that means an error: invalid frame,
 *                                        sequence error, timeout, socket error)
 *   close conn=N reason="…"             (the last such report of that connection; "peer closed or reset"
 *                                        when the peer closed it; "closed" when lib60870 said nothing)
 *   spontaneous type=T ioa=IOA value=V
 *   counters conn=N values=V300,V301,…,V309      (the integrated totals a counter interrogation sent)
 *   stop
 * Connection numbers count from 1 in the order connections are opened. --quiet leaves out the asdu,
 * reply and spontaneous lines (for benchmarks, where logging would cost more than answering).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cs104_slave.h"
#include "hal_thread.h"
#include "hal_time.h"

#define MAX_CONNS 256
#define CMD_FIRST 2000
#define CMD_COUNT 100
#define SET_FIRST 3000
#define SET_COUNT 10
#define SELECT_TIMEOUT_MS 10000

static volatile sig_atomic_t running = 1;
static FILE *logf_;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static int station_ca = 1;
static bool direct_operate = false;
static bool quiet = false;

/* The process image. */
static bool single_points[10];
static int double_points[10];
static float float_points[10];
static int scaled_points[10];
static int32_t counters[10];
static float setpoints[SET_COUNT];

struct selection {
    bool active;
    int type;
    int value;
    uint64_t at_ms;
};

struct conn {
    IMasterConnection con;
    int id;
    struct selection selected[CMD_COUNT];
};

static struct conn conns[MAX_CONNS];
static int next_conn_id = 1;

static __thread int tl_conn;
static __thread char tl_reason[200];

static void logline(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logline(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_lock);
    vfprintf(logf_, fmt, ap);
    fputc('\n', logf_);
    fflush(logf_);
    pthread_mutex_unlock(&log_lock);
    va_end(ap);
}

/*
 * lib60870 is built with CONFIG_DEBUG_OUTPUT=1 and this symbol weak in the library
 * (build-lib60870.sh): every DEBUG_PRINT of the library comes here. Those that mean an error are
 * logged (and kept as the connection's close reason); the per-frame chatter is dropped unformatted.
 */
void lib60870_debug_print(const char *format, ...)
{
    static const char *const keys[] = {"rror", "nvalid", "orrupt", "imeout", "too small", "close connection",
                                       "failed", "unexpected", "nknown", "Unexpected", "mismatch", "active close"};
    bool wanted = false;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && !wanted; i++) {
        wanted = strstr(format, keys[i]) != NULL;
    }
    if (!wanted) {
        return;
    }
    char msg[200];
    va_list ap;
    va_start(ap, format);
    vsnprintf(msg, sizeof msg, format, ap);
    va_end(ap);
    for (char *p = msg; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '"') {
            *p = (*p == '"') ? '\'' : ' ';
        }
    }
    size_t len = strlen(msg);
    while (len > 0 && msg[len - 1] == ' ') {
        msg[--len] = '\0';
    }
    if (strstr(msg, "Error reading from socket") != NULL) {
        /* recv failed or returned 0: the peer closed or reset the connection; no line, just the reason */
        snprintf(tl_reason, sizeof tl_reason, "peer closed or reset");
        return;
    }
    if (strstr(msg, "unable to send ASDU") != NULL) {
        /* lib60870 tries to answer on a connection that is not active: worth a line, not a reason */
        logline("lib conn=%d msg=\"%s\"", tl_conn, msg);
        return;
    }
    snprintf(tl_reason, sizeof tl_reason, "%s", msg);
    logline("lib conn=%d msg=\"%s\"", tl_conn, msg);
}

static struct conn *find_conn(IMasterConnection con)
{
    for (int i = 0; i < MAX_CONNS; i++) {
        if (conns[i].con == con) {
            return &conns[i];
        }
    }
    return NULL;
}

static int conn_id(IMasterConnection con)
{
    pthread_mutex_lock(&state_lock);
    struct conn *c = find_conn(con);
    int id = c ? c->id : 0;
    pthread_mutex_unlock(&state_lock);
    return id;
}

static void format_time(CP56Time2a t, char *buf, size_t size)
{
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%s", CP56Time2a_getYear(t) + 2000, CP56Time2a_getMonth(t),
             CP56Time2a_getDayOfMonth(t), CP56Time2a_getHour(t), CP56Time2a_getMinute(t), CP56Time2a_getSecond(t),
             CP56Time2a_getMillisecond(t), CP56Time2a_isInvalid(t) ? "-invalid" : "");
}

/* The fields of the first object of a received ASDU, for its log line. */
static void describe_object(CS101_ASDU asdu, char *buf, size_t size)
{
    buf[0] = '\0';
    if (CS101_ASDU_getNumberOfElements(asdu) < 1) {
        snprintf(buf, size, " ioa=none");
        return;
    }
    InformationObject io = CS101_ASDU_getElement(asdu, 0);
    if (io == NULL) {
        snprintf(buf, size, " ioa=none bad=1");
        return;
    }
    int n = snprintf(buf, size, " ioa=%d", InformationObject_getObjectAddress(io));
    char t[48] = "";
    switch (CS101_ASDU_getTypeID(asdu)) {
    case C_SC_NA_1:
    case C_SC_TA_1:
        snprintf(buf + n, size - n, " se=%d value=%d qu=%d", SingleCommand_isSelect((SingleCommand) io),
                 SingleCommand_getState((SingleCommand) io), SingleCommand_getQU((SingleCommand) io));
        if (CS101_ASDU_getTypeID(asdu) == C_SC_TA_1) {
            format_time(SingleCommandWithCP56Time2a_getTimestamp((SingleCommandWithCP56Time2a) io), t, sizeof t);
        }
        break;
    case C_DC_NA_1:
    case C_DC_TA_1:
        snprintf(buf + n, size - n, " se=%d value=%d qu=%d", DoubleCommand_isSelect((DoubleCommand) io),
                 DoubleCommand_getState((DoubleCommand) io), DoubleCommand_getQU((DoubleCommand) io));
        if (CS101_ASDU_getTypeID(asdu) == C_DC_TA_1) {
            format_time(DoubleCommandWithCP56Time2a_getTimestamp((DoubleCommandWithCP56Time2a) io), t, sizeof t);
        }
        break;
    case C_SE_NA_1:
        snprintf(buf + n, size - n, " se=%d value=%.6g ql=%d", SetpointCommandNormalized_isSelect((SetpointCommandNormalized) io),
                 (double) SetpointCommandNormalized_getValue((SetpointCommandNormalized) io),
                 SetpointCommandNormalized_getQL((SetpointCommandNormalized) io));
        break;
    case C_SE_TA_1:
        snprintf(buf + n, size - n, " se=%d value=%.6g ql=%d",
                 SetpointCommandNormalizedWithCP56Time2a_isSelect((SetpointCommandNormalizedWithCP56Time2a) io),
                 (double) SetpointCommandNormalizedWithCP56Time2a_getValue((SetpointCommandNormalizedWithCP56Time2a) io),
                 SetpointCommandNormalizedWithCP56Time2a_getQL((SetpointCommandNormalizedWithCP56Time2a) io));
        format_time(SetpointCommandNormalizedWithCP56Time2a_getTimestamp((SetpointCommandNormalizedWithCP56Time2a) io), t, sizeof t);
        break;
    case C_SE_NB_1:
        snprintf(buf + n, size - n, " se=%d value=%d ql=%d", SetpointCommandScaled_isSelect((SetpointCommandScaled) io),
                 SetpointCommandScaled_getValue((SetpointCommandScaled) io), SetpointCommandScaled_getQL((SetpointCommandScaled) io));
        break;
    case C_SE_TB_1:
        snprintf(buf + n, size - n, " se=%d value=%d ql=%d",
                 SetpointCommandScaledWithCP56Time2a_isSelect((SetpointCommandScaledWithCP56Time2a) io),
                 SetpointCommandScaledWithCP56Time2a_getValue((SetpointCommandScaledWithCP56Time2a) io),
                 SetpointCommandScaledWithCP56Time2a_getQL((SetpointCommandScaledWithCP56Time2a) io));
        format_time(SetpointCommandScaledWithCP56Time2a_getTimestamp((SetpointCommandScaledWithCP56Time2a) io), t, sizeof t);
        break;
    case C_SE_NC_1:
        snprintf(buf + n, size - n, " se=%d value=%.6g ql=%d", SetpointCommandShort_isSelect((SetpointCommandShort) io),
                 (double) SetpointCommandShort_getValue((SetpointCommandShort) io), SetpointCommandShort_getQL((SetpointCommandShort) io));
        break;
    case C_SE_TC_1:
        snprintf(buf + n, size - n, " se=%d value=%.6g ql=%d",
                 SetpointCommandShortWithCP56Time2a_isSelect((SetpointCommandShortWithCP56Time2a) io),
                 (double) SetpointCommandShortWithCP56Time2a_getValue((SetpointCommandShortWithCP56Time2a) io),
                 SetpointCommandShortWithCP56Time2a_getQL((SetpointCommandShortWithCP56Time2a) io));
        format_time(SetpointCommandShortWithCP56Time2a_getTimestamp((SetpointCommandShortWithCP56Time2a) io), t, sizeof t);
        break;
    case C_IC_NA_1:
        snprintf(buf + n, size - n, " qoi=%d", InterrogationCommand_getQOI((InterrogationCommand) io));
        break;
    case C_CI_NA_1:
        snprintf(buf + n, size - n, " qcc=%d", CounterInterrogationCommand_getQCC((CounterInterrogationCommand) io));
        break;
    case C_CS_NA_1:
        format_time(ClockSynchronizationCommand_getTime((ClockSynchronizationCommand) io), t, sizeof t);
        break;
    default:
        break;
    }
    if (t[0]) {
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, " time=%s", t);
    }
    InformationObject_destroy(io);
}

static int first_ioa(CS101_ASDU asdu)
{
    if (CS101_ASDU_getNumberOfElements(asdu) < 1) {
        return -1;
    }
    InformationObject io = CS101_ASDU_getElement(asdu, 0);
    if (io == NULL) {
        return -1;
    }
    int ioa = InformationObject_getObjectAddress(io);
    InformationObject_destroy(io);
    return ioa;
}

static void log_reply(IMasterConnection con, CS101_ASDU asdu)
{
    if (quiet) {
        return;
    }
    logline("reply conn=%d type=%d cot=%d neg=%d ca=%d ioa=%d", conn_id(con), CS101_ASDU_getTypeID(asdu),
            CS101_ASDU_getCOT(asdu), CS101_ASDU_isNegative(asdu) ? 1 : 0, CS101_ASDU_getCA(asdu), first_ioa(asdu));
}

static void send_con(IMasterConnection con, CS101_ASDU asdu, bool negative)
{
    CS101_ASDU_setCOT(asdu, CS101_ASDU_getCOT(asdu) == CS101_COT_DEACTIVATION ? CS101_COT_DEACTIVATION_CON : CS101_COT_ACTIVATION_CON);
    CS101_ASDU_setNegative(asdu, negative);
    log_reply(con, asdu);
    IMasterConnection_sendASDU(con, asdu);
}

static void send_term(IMasterConnection con, CS101_ASDU asdu)
{
    CS101_ASDU_setCOT(asdu, CS101_COT_ACTIVATION_TERMINATION);
    CS101_ASDU_setNegative(asdu, false);
    log_reply(con, asdu);
    IMasterConnection_sendASDU(con, asdu);
}

static void send_negative(IMasterConnection con, CS101_ASDU asdu, CS101_CauseOfTransmission cot)
{
    CS101_ASDU_setCOT(asdu, cot);
    CS101_ASDU_setNegative(asdu, true);
    log_reply(con, asdu);
    IMasterConnection_sendASDU(con, asdu);
}

static bool is_broadcast_ok(int type)
{
    return type == C_IC_NA_1 || type == C_CI_NA_1 || type == C_CS_NA_1;
}

/*
 * A plugin sees every ASDU lib60870 decoded, before lib60870's own dispatch: it logs it and answers
 * a wrong common address (so that the CA refusal is logged too); the rest goes on to the handlers.
 */
static CS101_SlavePlugin_Result plugin_handle_asdu(void *parameter, IMasterConnection con, CS101_ASDU asdu)
{
    char obj[200] = "";
    if (!quiet) {
        describe_object(asdu, obj, sizeof obj);
    }
    int ca = CS101_ASDU_getCA(asdu);
    int type = CS101_ASDU_getTypeID(asdu);
    const char *name = TypeID_toString((TypeID) type);
    if (!quiet) {
        logline("asdu conn=%d type=%d name=%s cot=%d neg=%d test=%d oa=%d ca=%d sq=%d n=%d%s", conn_id(con), type,
                name ? name : "unknown", CS101_ASDU_getCOT(asdu), CS101_ASDU_isNegative(asdu) ? 1 : 0,
                CS101_ASDU_isTest(asdu) ? 1 : 0, CS101_ASDU_getOA(asdu), ca, CS101_ASDU_isSequence(asdu) ? 1 : 0,
                CS101_ASDU_getNumberOfElements(asdu), obj);
    }
    if (ca != station_ca && !(ca == 65535 && is_broadcast_ok(type))) {
        send_negative(con, asdu, CS101_COT_UNKNOWN_CA);
        return CS101_PLUGIN_RESULT_HANDLED;
    }
    return CS101_PLUGIN_RESULT_NOT_HANDLED;
}

static struct sCS101_SlavePlugin plugin = {.handleAsdu = plugin_handle_asdu};

static void add_points(CS101_ASDU asdu, int kind)
{
    for (int i = 0; i < 10; i++) {
        InformationObject io;
        switch (kind) {
        case 0:
            io = (InformationObject) SinglePointInformation_create(NULL, 100 + i, single_points[i], IEC60870_QUALITY_GOOD);
            break;
        case 1:
            io = (InformationObject) DoublePointInformation_create(NULL, 110 + i, (DoublePointValue) double_points[i], IEC60870_QUALITY_GOOD);
            break;
        case 2:
            io = (InformationObject) MeasuredValueShort_create(NULL, 200 + i, float_points[i], IEC60870_QUALITY_GOOD);
            break;
        default:
            io = (InformationObject) MeasuredValueScaled_create(NULL, 210 + i, scaled_points[i], IEC60870_QUALITY_GOOD);
            break;
        }
        CS101_ASDU_addInformationObject(asdu, io);
        InformationObject_destroy(io);
    }
}

static bool interrogation_handler(void *parameter, IMasterConnection con, CS101_ASDU asdu, uint8_t qoi)
{
    if (CS101_ASDU_getCOT(asdu) == CS101_COT_DEACTIVATION) {
        send_con(con, asdu, false);
        return true;
    }
    if (qoi != IEC60870_QOI_STATION) {
        send_con(con, asdu, true);
        return true;
    }
    send_con(con, asdu, false);
    CS101_AppLayerParameters al = IMasterConnection_getApplicationLayerParameters(con);
    pthread_mutex_lock(&state_lock);
    for (int kind = 0; kind < 4; kind++) {
        CS101_ASDU points = CS101_ASDU_create(al, false, CS101_COT_INTERROGATED_BY_STATION, CS101_ASDU_getOA(asdu), station_ca, false, false);
        add_points(points, kind);
        IMasterConnection_sendASDU(con, points);
        CS101_ASDU_destroy(points);
    }
    pthread_mutex_unlock(&state_lock);
    send_term(con, asdu);
    return true;
}

static bool counter_interrogation_handler(void *parameter, IMasterConnection con, CS101_ASDU asdu, uint8_t qcc)
{
    bool activation = CS101_ASDU_getCOT(asdu) == CS101_COT_ACTIVATION;
    send_con(con, asdu, false);
    if (!activation) {
        return true;
    }
    if (qcc == (IEC60870_QCC_RQT_GENERAL | IEC60870_QCC_FRZ_READ)) {
        CS101_AppLayerParameters al = IMasterConnection_getApplicationLayerParameters(con);
        CS101_ASDU totals = CS101_ASDU_create(al, false, CS101_COT_REQUESTED_BY_GENERAL_COUNTER, CS101_ASDU_getOA(asdu), station_ca, false, false);
        char values[200] = "";
        size_t used = 0;
        pthread_mutex_lock(&state_lock);
        for (int i = 0; i < 10; i++) {
            struct sBinaryCounterReading bcr;
            BinaryCounterReading_create(&bcr, counters[i], 0, false, false, false);
            InformationObject io = (InformationObject) IntegratedTotals_create(NULL, 300 + i, &bcr);
            CS101_ASDU_addInformationObject(totals, io);
            InformationObject_destroy(io);
            used += (size_t) snprintf(values + used, sizeof values - used, "%s%d", i ? "," : "", (int) counters[i]);
        }
        pthread_mutex_unlock(&state_lock);
        IMasterConnection_sendASDU(con, totals);
        CS101_ASDU_destroy(totals);
        if (!quiet)
            logline("counters conn=%d values=%s", conn_id(con), values);
    }
    send_term(con, asdu);
    return true;
}

static bool clock_sync_handler(void *parameter, IMasterConnection con, CS101_ASDU asdu, CP56Time2a newTime)
{
    /* lib60870 sends the positive actcon when this returns true */
    if (!quiet) {
        logline("reply conn=%d type=%d cot=7 neg=0 ca=%d ioa=0", conn_id(con), C_CS_NA_1, CS101_ASDU_getCA(asdu));
    }
    return true;
}

static bool read_handler(void *parameter, IMasterConnection con, CS101_ASDU asdu, int ioa)
{
    CS101_AppLayerParameters al = IMasterConnection_getApplicationLayerParameters(con);
    InformationObject io = NULL;
    pthread_mutex_lock(&state_lock);
    if (ioa >= 100 && ioa < 110) {
        io = (InformationObject) SinglePointInformation_create(NULL, ioa, single_points[ioa - 100], IEC60870_QUALITY_GOOD);
    } else if (ioa >= 110 && ioa < 120) {
        io = (InformationObject) DoublePointInformation_create(NULL, ioa, (DoublePointValue) double_points[ioa - 110], IEC60870_QUALITY_GOOD);
    } else if (ioa >= 200 && ioa < 210) {
        io = (InformationObject) MeasuredValueShort_create(NULL, ioa, float_points[ioa - 200], IEC60870_QUALITY_GOOD);
    } else if (ioa >= 210 && ioa < 220) {
        io = (InformationObject) MeasuredValueScaled_create(NULL, ioa, scaled_points[ioa - 210], IEC60870_QUALITY_GOOD);
    } else if (ioa >= SET_FIRST && ioa < SET_FIRST + SET_COUNT) {
        io = (InformationObject) MeasuredValueShort_create(NULL, ioa, setpoints[ioa - SET_FIRST], IEC60870_QUALITY_GOOD);
    }
    pthread_mutex_unlock(&state_lock);
    if (io == NULL) {
        send_negative(con, asdu, CS101_COT_UNKNOWN_IOA);
        return true;
    }
    CS101_ASDU answer = CS101_ASDU_create(al, false, CS101_COT_REQUEST, CS101_ASDU_getOA(asdu), station_ca, false, false);
    CS101_ASDU_addInformationObject(answer, io);
    InformationObject_destroy(io);
    if (!quiet) {
        logline("reply conn=%d type=%d cot=5 neg=0 ca=%d ioa=%d", conn_id(con), CS101_ASDU_getTypeID(answer), station_ca, ioa);
    }
    IMasterConnection_sendASDU(con, answer);
    CS101_ASDU_destroy(answer);
    return true;
}

static bool is_command(int type)
{
    return type == C_SC_NA_1 || type == C_SC_TA_1 || type == C_DC_NA_1 || type == C_DC_TA_1;
}

static bool is_setpoint(int type)
{
    return (type >= C_SE_NA_1 && type <= C_SE_NC_1) || (type >= C_SE_TA_1 && type <= C_SE_TC_1);
}

static float setpoint_value(int type, InformationObject io)
{
    switch (type) {
    case C_SE_NA_1: return SetpointCommandNormalized_getValue((SetpointCommandNormalized) io);
    case C_SE_TA_1: return SetpointCommandNormalizedWithCP56Time2a_getValue((SetpointCommandNormalizedWithCP56Time2a) io);
    case C_SE_NB_1: return (float) SetpointCommandScaled_getValue((SetpointCommandScaled) io);
    case C_SE_TB_1: return (float) SetpointCommandScaledWithCP56Time2a_getValue((SetpointCommandScaledWithCP56Time2a) io);
    case C_SE_NC_1: return SetpointCommandShort_getValue((SetpointCommandShort) io);
    default: return SetpointCommandShortWithCP56Time2a_getValue((SetpointCommandShortWithCP56Time2a) io);
    }
}

static bool setpoint_select(int type, InformationObject io)
{
    switch (type) {
    case C_SE_NA_1: return SetpointCommandNormalized_isSelect((SetpointCommandNormalized) io);
    case C_SE_TA_1: return SetpointCommandNormalizedWithCP56Time2a_isSelect((SetpointCommandNormalizedWithCP56Time2a) io);
    case C_SE_NB_1: return SetpointCommandScaled_isSelect((SetpointCommandScaled) io);
    case C_SE_TB_1: return SetpointCommandScaledWithCP56Time2a_isSelect((SetpointCommandScaledWithCP56Time2a) io);
    case C_SE_NC_1: return SetpointCommandShort_isSelect((SetpointCommandShort) io);
    default: return SetpointCommandShortWithCP56Time2a_isSelect((SetpointCommandShortWithCP56Time2a) io);
    }
}

static bool asdu_handler(void *parameter, IMasterConnection con, CS101_ASDU asdu)
{
    int type = CS101_ASDU_getTypeID(asdu);
    if (!is_command(type) && !is_setpoint(type)) {
        /* lib60870 answers: the same ASDU, negative, cause 44 (unknown type) */
        if (!quiet) {
            logline("reply conn=%d type=%d cot=44 neg=1 ca=%d ioa=%d", conn_id(con), type, CS101_ASDU_getCA(asdu), first_ioa(asdu));
        }
        return false;
    }
    int cot = CS101_ASDU_getCOT(asdu);
    if (cot != CS101_COT_ACTIVATION && cot != CS101_COT_DEACTIVATION) {
        send_negative(con, asdu, CS101_COT_UNKNOWN_COT);
        return true;
    }
    InformationObject io = CS101_ASDU_getNumberOfElements(asdu) == 1 ? CS101_ASDU_getElement(asdu, 0) : NULL;
    if (io == NULL) {
        send_con(con, asdu, true);
        return true;
    }
    int ioa = InformationObject_getObjectAddress(io);
    if (is_setpoint(type)) {
        if (ioa < SET_FIRST || ioa >= SET_FIRST + SET_COUNT) {
            send_negative(con, asdu, CS101_COT_UNKNOWN_IOA);
        } else if (cot == CS101_COT_DEACTIVATION) {
            send_con(con, asdu, false);
        } else {
            bool select = setpoint_select(type, io);
            if (!select) {
                pthread_mutex_lock(&state_lock);
                setpoints[ioa - SET_FIRST] = setpoint_value(type, io);
                pthread_mutex_unlock(&state_lock);
            }
            send_con(con, asdu, false);
            if (!select) {
                send_term(con, asdu);
            }
        }
        InformationObject_destroy(io);
        return true;
    }

    if (ioa < CMD_FIRST || ioa >= CMD_FIRST + CMD_COUNT) {
        send_negative(con, asdu, CS101_COT_UNKNOWN_IOA);
        InformationObject_destroy(io);
        return true;
    }
    bool single = type == C_SC_NA_1 || type == C_SC_TA_1;
    bool select = single ? SingleCommand_isSelect((SingleCommand) io) : DoubleCommand_isSelect((DoubleCommand) io);
    int value = single ? (SingleCommand_getState((SingleCommand) io) ? 1 : 0) : DoubleCommand_getState((DoubleCommand) io);
    InformationObject_destroy(io);
    if (!single && (value == 0 || value == 3)) {
        send_con(con, asdu, true);
        return true;
    }
    uint64_t now = Hal_getMonotonicTimeInMs();
    bool ok;
    pthread_mutex_lock(&state_lock);
    struct conn *c = find_conn(con);
    struct selection *s = c ? &c->selected[ioa - CMD_FIRST] : NULL;
    if (s == NULL) {
        ok = false;
    } else if (cot == CS101_COT_DEACTIVATION) {
        s->active = false;
        ok = true;
    } else if (select) {
        *s = (struct selection){.active = true, .type = type, .value = value, .at_ms = now};
        ok = true;
    } else {
        ok = direct_operate ||
             (s->active && s->type == type && s->value == value && now - s->at_ms <= SELECT_TIMEOUT_MS);
        s->active = false;
    }
    pthread_mutex_unlock(&state_lock);
    send_con(con, asdu, !ok);
    if (ok && !select && cot == CS101_COT_ACTIVATION) {
        send_term(con, asdu);
    }
    return true;
}

static void connection_event(void *parameter, IMasterConnection con, CS104_PeerConnectionEvent event)
{
    if (event == CS104_CON_EVENT_CONNECTION_OPENED) {
        char peer[80] = "";
        IMasterConnection_getPeerAddress(con, peer, sizeof peer);
        pthread_mutex_lock(&state_lock);
        struct conn *c = find_conn(NULL);
        int id = next_conn_id++;
        if (c) {
            memset(c, 0, sizeof *c);
            c->con = con;
            c->id = id;
        }
        pthread_mutex_unlock(&state_lock);
        tl_conn = id; /* lib60870 runs each connection in its own thread, which reports the open */
        tl_reason[0] = '\0';
        logline("connect conn=%d peer=%s%s", id, peer, c ? "" : " untracked=1");
    } else if (event == CS104_CON_EVENT_CONNECTION_CLOSED) {
        pthread_mutex_lock(&state_lock);
        struct conn *c = find_conn(con);
        int id = c ? c->id : 0;
        if (c) {
            c->con = NULL;
        }
        pthread_mutex_unlock(&state_lock);
        logline("close conn=%d reason=\"%s\"", id, (tl_conn == id && tl_reason[0]) ? tl_reason : "closed");
    } else if (event == CS104_CON_EVENT_ACTIVATED) {
        logline("startdt conn=%d", conn_id(con));
    } else if (event == CS104_CON_EVENT_DEACTIVATED) {
        logline("stopdt conn=%d", conn_id(con));
    }
}

static void spontaneous(CS104_Slave slave, int step)
{
    CS101_AppLayerParameters al = CS104_Slave_getAppLayerParameters(slave);
    CS101_ASDU asdu = CS101_ASDU_create(al, false, CS101_COT_SPONTANEOUS, 0, station_ca, false, false);
    int kind = (step / 10) % 4, i = step % 10;
    InformationObject io;
    char value[32];
    pthread_mutex_lock(&state_lock);
    for (int c = 0; c < 10; c++)
        counters[c] += c + 1;
    switch (kind) {
    case 0:
        single_points[i] = !single_points[i];
        io = (InformationObject) SinglePointInformation_create(NULL, 100 + i, single_points[i], IEC60870_QUALITY_GOOD);
        snprintf(value, sizeof value, "%d", single_points[i]);
        break;
    case 1:
        double_points[i] = double_points[i] == IEC60870_DOUBLE_POINT_ON ? IEC60870_DOUBLE_POINT_OFF : IEC60870_DOUBLE_POINT_ON;
        io = (InformationObject) DoublePointInformation_create(NULL, 110 + i, (DoublePointValue) double_points[i], IEC60870_QUALITY_GOOD);
        snprintf(value, sizeof value, "%d", double_points[i]);
        break;
    case 2:
        float_points[i] += 0.5f;
        io = (InformationObject) MeasuredValueShort_create(NULL, 200 + i, float_points[i], IEC60870_QUALITY_GOOD);
        snprintf(value, sizeof value, "%.6g", (double) float_points[i]);
        break;
    default:
        scaled_points[i] += 1;
        io = (InformationObject) MeasuredValueScaled_create(NULL, 210 + i, scaled_points[i], IEC60870_QUALITY_GOOD);
        snprintf(value, sizeof value, "%d", scaled_points[i]);
        break;
    }
    pthread_mutex_unlock(&state_lock);
    CS101_ASDU_addInformationObject(asdu, io);
    if (!quiet)
        logline("spontaneous type=%d ioa=%d value=%s", InformationObject_getType(io), InformationObject_getObjectAddress(io), value);
    InformationObject_destroy(io);
    CS104_Slave_enqueueASDU(slave, asdu);
    CS101_ASDU_destroy(asdu);
}

static void on_signal(int sig)
{
    running = 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: iec104-station [--listen HOST:PORT] [--ca N] [--redundancy-groups] [--spontaneous-ms N]\n"
                    "                      [--max-connections N] [--direct-operate] [--quiet] [--log FILE]\n");
}

int main(int argc, char **argv)
{
    char host[128] = "127.0.0.1";
    int port = 2404, spontaneous_ms = 0, max_connections = 100;
    bool groups = false;
    const char *log_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--listen") && v) {
            const char *colon = strrchr(v, ':');
            if (colon == NULL || colon == v || (size_t) (colon - v) >= sizeof host) {
                fprintf(stderr, "iec104-station: --listen wants HOST:PORT\n");
                return 2;
            }
            memcpy(host, v, colon - v);
            host[colon - v] = '\0';
            port = atoi(colon + 1);
            i++;
        } else if (!strcmp(a, "--ca") && v) {
            station_ca = atoi(v);
            i++;
        } else if (!strcmp(a, "--spontaneous-ms") && v) {
            spontaneous_ms = atoi(v);
            i++;
        } else if (!strcmp(a, "--max-connections") && v) {
            max_connections = atoi(v);
            i++;
        } else if (!strcmp(a, "--log") && v) {
            log_path = v;
            i++;
        } else if (!strcmp(a, "--redundancy-groups")) {
            groups = true;
        } else if (!strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "--direct-operate")) {
            direct_operate = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        } else {
            fprintf(stderr, "iec104-station: unknown or incomplete argument %s\n", a);
            usage();
            return 2;
        }
    }
    if (port < 1 || port > 65535 || station_ca < 1 || station_ca > 65534 || spontaneous_ms < 0 || max_connections < 1 ||
        max_connections > MAX_CONNS) {
        fprintf(stderr, "iec104-station: argument out of range\n");
        return 2;
    }
    if (log_path && strcmp(log_path, "-") != 0) {
        logf_ = fopen(log_path, "a");
        if (logf_ == NULL) {
            fprintf(stderr, "iec104-station: cannot open %s: %s\n", log_path, strerror(errno));
            return 2;
        }
    } else {
        logf_ = stdout;
    }
    for (int i = 0; i < 10; i++) {
        single_points[i] = i % 2;
        double_points[i] = i % 2 ? IEC60870_DOUBLE_POINT_ON : IEC60870_DOUBLE_POINT_OFF;
        float_points[i] = 10.0f * (float) i + 0.5f;
        scaled_points[i] = 100 * i;
        counters[i] = 1000 * (i + 1);
    }

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    CS104_Slave slave = CS104_Slave_create(1000, 1000);
    CS104_Slave_setLocalAddress(slave, host);
    CS104_Slave_setLocalPort(slave, port);
    CS104_Slave_setServerMode(slave, groups ? CS104_MODE_CONNECTION_IS_REDUNDANCY_GROUP : CS104_MODE_SINGLE_REDUNDANCY_GROUP);
    CS104_Slave_setMaxOpenConnections(slave, max_connections);
    CS104_Slave_addPlugin(slave, &plugin);
    CS104_Slave_setConnectionEventHandler(slave, connection_event, NULL);
    CS104_Slave_setInterrogationHandler(slave, interrogation_handler, NULL);
    CS104_Slave_setCounterInterrogationHandler(slave, counter_interrogation_handler, NULL);
    CS104_Slave_setClockSyncHandler(slave, clock_sync_handler, NULL);
    CS104_Slave_setReadHandler(slave, read_handler, NULL);
    CS104_Slave_setASDUHandler(slave, asdu_handler, NULL);

    CS104_Slave_start(slave);
    if (!CS104_Slave_isRunning(slave)) {
        fprintf(stderr, "iec104-station: cannot listen on %s:%d\n", host, port);
        CS104_Slave_destroy(slave);
        return 3;
    }
    logline("ready listen=%s:%d ca=%d mode=%s", host, port, station_ca, groups ? "redundancy-groups" : "single");
    if (logf_ != stdout) {
        printf("ready listen=%s:%d\n", host, port);
        fflush(stdout);
    }

    uint64_t next = Hal_getMonotonicTimeInMs() + (uint64_t) spontaneous_ms;
    int step = 0;
    while (running && CS104_Slave_isRunning(slave)) {
        Thread_sleep(10);
        if (spontaneous_ms > 0 && Hal_getMonotonicTimeInMs() >= next) {
            spontaneous(slave, step++);
            next += (uint64_t) spontaneous_ms;
        }
    }
    CS104_Slave_stop(slave);
    CS104_Slave_destroy(slave);
    logline("stop");
    return 0;
}
