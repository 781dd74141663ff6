/*
 * iec104-client: a small IEC 60870-5-104 controlling station (SCADA master) written against lib60870
 * (tests/peers/lib60870, GPL v3, a test peer only), for EdgeShield's tests and benchmarks.
 * Built by tests/peers/build-lib60870.sh into artifacts/peers/lib60870/bin/.
 *
 *   iec104-client --connect HOST:PORT [--ca N] [--interrogate] [--commands FILE] [--listen-ms N]
 *                 [--timeout-ms N] [--max-reconnects N] [--oa N]
 *
 * Connects, sends STARTDT act and waits for its con, then in this order:
 *   --interrogate  C_IC_NA_1 QOI 20 to --ca; waits for actcon and actterm
 *   --commands F   one command per line (blank lines and # comments skipped), one at a time, each
 *                  waiting for its confirmation (see below) up to --timeout-ms (default 5000):
 *                    C_SC_NA_1 ca=1 ioa=2000 value=1 [select|execute] [qu=0] [cot=6]
 *                    C_DC_NA_1 ca=1 ioa=2001 value=2 select          (also C_SC_TA_1, C_DC_TA_1)
 *                    C_SE_NA_1 ca=1 ioa=3000 value=0.5 [select|execute] [ql=0]
 *                    C_SE_NB_1 … value=-123    C_SE_NC_1 … value=42.5    (also C_SE_TA_1/TB_1/TC_1)
 *                    C_RC_NA_1 ca=1 ioa=2000 value=2   C_BO_NA_1 ca=1 ioa=2000 value=0xFF
 *                    C_IC_NA_1 ca=1 qoi=20   C_CI_NA_1 ca=1 qcc=5   C_CS_NA_1 ca=1   C_RD_NA_1 ca=1 ioa=100
 *                  cot= sends another cause (8 = deactivation, or anything, as a test).
 *   --listen-ms N  stays connected N ms more, printing what arrives (spontaneous data)
 *
 * The confirmation of a command is the first ASDU from the station with the command's type, CA and
 * first IOA and a cause of 7 or 9 (activation/deactivation con) or a negative one (P/N = 1: 44-47 or
 * any other); for C_RD_NA_1 it is the point read (cause 5, same IOA) or a negative C_RD_NA_1. After
 * a positive confirmation of an execute (and of C_IC_NA_1/C_CI_NA_1) the client also waits for the
 * actterm (cause 10) the station sends (counted in terms=, a missing one in missing_terms=).
 *
 * Output on stdout, one line per event:
 *   connected peer=HOST:PORT              startdt-con
 *   sent type=T name=NAME ca=CA ioa=IOA cot=C [se=0|1] [value=V]   (printed before it is sent)
 *   confirm type=T name=NAME ca=CA ioa=IOA cot=C negative=0|1 ms=LATENCY   (CA and IOA: the command's)
 *   timeout type=T ca=CA ioa=IOA         (no confirmation within --timeout-ms)
 *   term type=T ca=CA ioa=IOA
 *   point type=T name=NAME ca=CA ioa=IOA value=V cot=C     (every monitor-direction object)
 *   asdu type=T name=NAME ca=CA cot=C negative=0|1 n=N ioa=IOA   (any other ASDU from the station)
 *   drop reason=…                         (the connection closed or failed while in use)
 *   lib msg="…"                           (an error lib60870 reported: invalid frame, sequence error)
 *   interrogation points=N
 *   sent=N confirmed=N positive=N negative=N timeouts=N reconnects=N terms=N missing_terms=N points=N
 * Exit 0 only when every command was confirmed, no connection dropped, and a wanted interrogation
 * ended; 1 otherwise; 2 for bad arguments; 3 when the first connect failed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cs104_connection.h"
#include "hal_thread.h"
#include "hal_time.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

/* What the main thread waits for, and what the receive thread saw. Guarded by lock. */
static struct {
    bool waiting;       /* a command is outstanding */
    int type, ca, ioa;  /* of the outstanding command */
    bool is_read;
    bool confirmed, negative;
    int cot;
    bool want_term, got_term;
    bool startdt_con;
    bool closed;        /* the connection closed or failed */
    int points;
    int generation;     /* bumps on every change */
    uint64_t sent_at;   /* of the outstanding command, ms */
} st;

static char last_lib_msg[200];

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&out_lock);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
    va_end(ap);
}

/* lib60870's debug output (weak in the library, see build-lib60870.sh): errors only. */
void lib60870_debug_print(const char *format, ...)
{
    static const char *const keys[] = {"rror", "nvalid", "orrupt", "imeout", "too small", "close connection", "failed", "nexpected", "mismatch", "active close"};
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
            *p = *p == '"' ? '\'' : ' ';
        }
    }
    size_t len = strlen(msg);
    while (len > 0 && msg[len - 1] == ' ') {
        msg[--len] = '\0';
    }
    pthread_mutex_lock(&lock);
    snprintf(last_lib_msg, sizeof last_lib_msg, "%s", msg);
    pthread_mutex_unlock(&lock);
    out("lib msg=\"%s\"", msg);
}

static uint64_t now_ms(void)
{
    return Hal_getMonotonicTimeInMs();
}

static const char *type_name(int type)
{
    const char *n = TypeID_toString((TypeID) type);
    return n ? n : "unknown";
}

/* Prints a monitor-direction object; false when the type is not one. */
static bool print_point(CS101_ASDU asdu, InformationObject io, int type)
{
    char value[64];
    switch (type) {
    case M_SP_NA_1:
    case M_SP_TB_1:
        snprintf(value, sizeof value, "%d", SinglePointInformation_getValue((SinglePointInformation) io) ? 1 : 0);
        break;
    case M_DP_NA_1:
    case M_DP_TB_1:
        snprintf(value, sizeof value, "%d", (int) DoublePointInformation_getValue((DoublePointInformation) io));
        break;
    case M_ME_NA_1:
    case M_ME_TD_1:
        snprintf(value, sizeof value, "%.6g", (double) MeasuredValueNormalized_getValue((MeasuredValueNormalized) io));
        break;
    case M_ME_NB_1:
    case M_ME_TE_1:
        snprintf(value, sizeof value, "%d", MeasuredValueScaled_getValue((MeasuredValueScaled) io));
        break;
    case M_ME_NC_1:
    case M_ME_TF_1:
        snprintf(value, sizeof value, "%.6g", (double) MeasuredValueShort_getValue((MeasuredValueShort) io));
        break;
    case M_IT_NA_1:
    case M_IT_TB_1:
        snprintf(value, sizeof value, "%d", BinaryCounterReading_getValue(IntegratedTotals_getBCR((IntegratedTotals) io)));
        break;
    case M_ST_NA_1:
    case M_ST_TB_1:
        snprintf(value, sizeof value, "%d", StepPositionInformation_getValue((StepPositionInformation) io));
        break;
    case M_BO_NA_1:
    case M_BO_TB_1:
        snprintf(value, sizeof value, "%u", (unsigned) BitString32_getValue((BitString32) io));
        break;
    default:
        return false;
    }
    out("point type=%d name=%s ca=%d ioa=%d value=%s cot=%d", type, type_name(type), CS101_ASDU_getCA(asdu),
        InformationObject_getObjectAddress(io), value, CS101_ASDU_getCOT(asdu));
    return true;
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

static bool asdu_received(void *parameter, int address, CS101_ASDU asdu)
{
    int type = CS101_ASDU_getTypeID(asdu);
    int cot = CS101_ASDU_getCOT(asdu);
    int ca = CS101_ASDU_getCA(asdu);
    bool negative = CS101_ASDU_isNegative(asdu);
    int n = CS101_ASDU_getNumberOfElements(asdu);
    int ioa = first_ioa(asdu);
    bool handled = false;

    pthread_mutex_lock(&lock);
    if (st.waiting && !st.confirmed) {
        bool same = type == st.type && ca == st.ca && (ioa == st.ioa || st.ioa < 0);
        bool is_con = negative || cot == CS101_COT_ACTIVATION_CON || cot == CS101_COT_DEACTIVATION_CON;
        bool read_answer = st.is_read && !negative && cot == CS101_COT_REQUEST && ioa == st.ioa;
        if ((same && is_con) || read_answer) {
            st.confirmed = true;
            st.negative = negative;
            st.cot = cot;
            st.generation++;
            pthread_cond_broadcast(&changed);
            handled = !read_answer; /* a read's answer is also printed as a point */
            /* printed here, so that it comes before the actterm and the points that follow it */
            out("confirm type=%d name=%s ca=%d ioa=%d cot=%d negative=%d ms=%llu", st.type, type_name(st.type), st.ca, st.ioa,
                cot, negative ? 1 : 0, (unsigned long long) (now_ms() - st.sent_at));
        }
    } else if (st.waiting && st.want_term && !st.got_term && type == st.type && cot == CS101_COT_ACTIVATION_TERMINATION &&
               (ioa == st.ioa || st.ioa < 0)) {
        st.got_term = true;
        st.generation++;
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&lock);
        out("term type=%d ca=%d ioa=%d", type, ca, ioa);
        return true;
    }
    pthread_mutex_unlock(&lock);

    if (handled) {
        return true;
    }
    bool any_point = false;
    if (type < C_SC_NA_1) {
        for (int i = 0; i < n; i++) {
            InformationObject io = CS101_ASDU_getElement(asdu, i);
            if (io == NULL) {
                break;
            }
            if (print_point(asdu, io, type)) {
                any_point = true;
                pthread_mutex_lock(&lock);
                st.points++;
                pthread_mutex_unlock(&lock);
            }
            InformationObject_destroy(io);
        }
    }
    if (!any_point) {
        out("asdu type=%d name=%s ca=%d cot=%d negative=%d n=%d ioa=%d", type, type_name(type), ca, cot, negative ? 1 : 0, n, ioa);
    }
    return true;
}

static void connection_event(void *parameter, CS104_Connection con, CS104_ConnectionEvent event)
{
    pthread_mutex_lock(&lock);
    if (event == CS104_CONNECTION_STARTDT_CON_RECEIVED) {
        st.startdt_con = true;
    } else if (event == CS104_CONNECTION_CLOSED || event == CS104_CONNECTION_FAILED) {
        st.closed = true;
    }
    st.generation++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

/* Waits until pred() holds or the connection closed or deadline passed. Called with lock held. */
static bool wait_until(bool (*pred)(void), uint64_t deadline)
{
    while (!pred() && !st.closed) {
        uint64_t now = now_ms();
        if (now >= deadline) {
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t left = deadline - now;
        if (left > 100) {
            left = 100; /* re-check the clock: the condition variable waits on the wall clock */
        }
        ts.tv_sec += (time_t) (left / 1000);
        ts.tv_nsec += (long) (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&changed, &lock, &ts);
    }
    return pred();
}

static bool pred_startdt(void) { return st.startdt_con; }
static bool pred_confirmed(void) { return st.confirmed; }
static bool pred_term(void) { return st.got_term; }
static bool pred_never(void) { return false; }

static const char *host;
static int port, timeout_ms = 5000, oa = 0;
static CS104_Connection con;

static bool open_connection(bool first)
{
    if (con) {
        CS104_Connection_destroy(con);
        con = NULL;
    }
    pthread_mutex_lock(&lock);
    st.closed = false;
    st.startdt_con = false;
    pthread_mutex_unlock(&lock);
    con = CS104_Connection_create(host, port);
    CS104_Connection_setConnectTimeout(con, timeout_ms);
    CS101_AppLayerParameters al = CS104_Connection_getAppLayerParameters(con);
    al->originatorAddress = oa;
    CS104_Connection_setConnectionHandler(con, connection_event, NULL);
    CS104_Connection_setASDUReceivedHandler(con, asdu_received, NULL);
    if (!CS104_Connection_connect(con)) {
        out("%s peer=%s:%d", first ? "connect-failed" : "reconnect-failed", host, port);
        return false;
    }
    out("connected peer=%s:%d", host, port);
    CS104_Connection_sendStartDT(con);
    pthread_mutex_lock(&lock);
    bool ok = wait_until(pred_startdt, now_ms() + (uint64_t) timeout_ms);
    pthread_mutex_unlock(&lock);
    if (!ok) {
        out("drop reason=\"no STARTDT con within %d ms\"", timeout_ms);
        return false;
    }
    out("startdt-con");
    return true;
}

struct command {
    int type;
    int ca, ioa;
    int cot;
    bool select;
    double value;
    int qualifier;  /* qu / ql */
    int qoi, qcc;
};

static const struct {
    const char *name;
    int type;
} names[] = {
    {"C_SC_NA_1", C_SC_NA_1}, {"C_DC_NA_1", C_DC_NA_1}, {"C_RC_NA_1", C_RC_NA_1}, {"C_SE_NA_1", C_SE_NA_1},
    {"C_SE_NB_1", C_SE_NB_1}, {"C_SE_NC_1", C_SE_NC_1}, {"C_BO_NA_1", C_BO_NA_1}, {"C_SC_TA_1", C_SC_TA_1},
    {"C_DC_TA_1", C_DC_TA_1}, {"C_SE_TA_1", C_SE_TA_1}, {"C_SE_TB_1", C_SE_TB_1}, {"C_SE_TC_1", C_SE_TC_1},
    {"C_IC_NA_1", C_IC_NA_1}, {"C_CI_NA_1", C_CI_NA_1}, {"C_RD_NA_1", C_RD_NA_1}, {"C_CS_NA_1", C_CS_NA_1},
};

/* Parses one line of a --commands file; false (with a message) when it is not one. */
static bool parse_command(char *line, int lineno, int default_ca, struct command *c)
{
    memset(c, 0, sizeof *c);
    c->ca = default_ca;
    c->ioa = -1;
    c->cot = -1;
    c->qoi = IEC60870_QOI_STATION;
    c->type = -1;
    char *save = NULL;
    for (char *tok = strtok_r(line, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
        if (c->type < 0) {
            for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
                if (!strcasecmp(tok, names[i].name)) {
                    c->type = names[i].type;
                }
            }
            if (c->type < 0) {
                fprintf(stderr, "iec104-client: line %d: unknown command type %s\n", lineno, tok);
                return false;
            }
        } else if (!strcmp(tok, "select")) {
            c->select = true;
        } else if (!strcmp(tok, "execute")) {
            c->select = false;
        } else if (!strncmp(tok, "ca=", 3)) {
            c->ca = (int) strtol(tok + 3, NULL, 0);
        } else if (!strncmp(tok, "ioa=", 4)) {
            c->ioa = (int) strtol(tok + 4, NULL, 0);
        } else if (!strncmp(tok, "value=", 6)) {
            c->value = strtod(tok + 6, NULL);
            if (!strncmp(tok + 6, "0x", 2)) {
                c->value = (double) strtoul(tok + 6, NULL, 16);
            }
        } else if (!strncmp(tok, "qu=", 3) || !strncmp(tok, "ql=", 3)) {
            c->qualifier = atoi(tok + 3);
        } else if (!strncmp(tok, "qoi=", 4)) {
            c->qoi = atoi(tok + 4);
        } else if (!strncmp(tok, "qcc=", 4)) {
            c->qcc = atoi(tok + 4);
        } else if (!strncmp(tok, "cot=", 4)) {
            c->cot = atoi(tok + 4);
        } else {
            fprintf(stderr, "iec104-client: line %d: unknown field %s\n", lineno, tok);
            return false;
        }
    }
    if (c->type < 0) {
        return false;
    }
    bool needs_ioa = c->type != C_IC_NA_1 && c->type != C_CI_NA_1 && c->type != C_CS_NA_1;
    if (needs_ioa && c->ioa < 0) {
        fprintf(stderr, "iec104-client: line %d: ioa= is missing\n", lineno);
        return false;
    }
    if (!needs_ioa) {
        c->ioa = 0;
    }
    if (c->cot < 0) {
        c->cot = c->type == C_RD_NA_1 ? CS101_COT_REQUEST : CS101_COT_ACTIVATION;
    }
    return true;
}

static InformationObject make_object(const struct command *c)
{
    struct sCP56Time2a t;
    CP56Time2a_createFromMsTimestamp(&t, Hal_getTimeInMs());
    switch (c->type) {
    case C_SC_NA_1: return (InformationObject) SingleCommand_create(NULL, c->ioa, c->value != 0, c->select, c->qualifier);
    case C_SC_TA_1: return (InformationObject) SingleCommandWithCP56Time2a_create(NULL, c->ioa, c->value != 0, c->select, c->qualifier, &t);
    case C_DC_NA_1: return (InformationObject) DoubleCommand_create(NULL, c->ioa, (int) c->value, c->select, c->qualifier);
    case C_DC_TA_1: return (InformationObject) DoubleCommandWithCP56Time2a_create(NULL, c->ioa, (int) c->value, c->select, c->qualifier, &t);
    case C_RC_NA_1: return (InformationObject) StepCommand_create(NULL, c->ioa, (StepCommandValue) (int) c->value, c->select, c->qualifier);
    case C_SE_NA_1: return (InformationObject) SetpointCommandNormalized_create(NULL, c->ioa, (float) c->value, c->select, c->qualifier);
    case C_SE_TA_1: return (InformationObject) SetpointCommandNormalizedWithCP56Time2a_create(NULL, c->ioa, (float) c->value, c->select, c->qualifier, &t);
    case C_SE_NB_1: return (InformationObject) SetpointCommandScaled_create(NULL, c->ioa, (int) c->value, c->select, c->qualifier);
    case C_SE_TB_1: return (InformationObject) SetpointCommandScaledWithCP56Time2a_create(NULL, c->ioa, (int) c->value, c->select, c->qualifier, &t);
    case C_SE_NC_1: return (InformationObject) SetpointCommandShort_create(NULL, c->ioa, (float) c->value, c->select, c->qualifier);
    case C_SE_TC_1: return (InformationObject) SetpointCommandShortWithCP56Time2a_create(NULL, c->ioa, (float) c->value, c->select, c->qualifier, &t);
    case C_BO_NA_1: return (InformationObject) Bitstring32Command_create(NULL, c->ioa, (uint32_t) c->value);
    case C_IC_NA_1: return (InformationObject) InterrogationCommand_create(NULL, 0, (uint8_t) c->qoi);
    case C_CI_NA_1: return (InformationObject) CounterInterrogationCommand_create(NULL, 0, (uint8_t) c->qcc);
    case C_RD_NA_1: return (InformationObject) ReadCommand_create(NULL, c->ioa);
    case C_CS_NA_1: return (InformationObject) ClockSynchronizationCommand_create(NULL, 0, &t);
    default: return NULL;
    }
}

static bool has_select(int type)
{
    return (type >= C_SC_NA_1 && type <= C_SE_NC_1) || (type >= C_SC_TA_1 && type <= C_SE_TC_1);
}

static struct {
    long sent, confirmed, positive, negative, timeouts, reconnects, terms, missing_terms;
} count;

/* Sends one command and waits for its confirmation (and actterm). False when the connection is gone. */
static bool run_command(const struct command *c)
{
    InformationObject io = make_object(c);
    if (io == NULL) {
        return true;
    }
    CS101_AppLayerParameters al = CS104_Connection_getAppLayerParameters(con);
    CS101_ASDU asdu = CS101_ASDU_create(al, false, (CS101_CauseOfTransmission) c->cot, oa, c->ca, false, false);
    CS101_ASDU_setTypeID(asdu, (TypeID) c->type);
    CS101_ASDU_addInformationObject(asdu, io);
    InformationObject_destroy(io);

    bool expects_term = c->cot == CS101_COT_ACTIVATION &&
                        (c->type == C_IC_NA_1 || c->type == C_CI_NA_1 || (has_select(c->type) && !c->select && c->type != C_BO_NA_1));
    pthread_mutex_lock(&lock);
    st.waiting = true;
    st.type = c->type;
    st.ca = c->ca;
    st.ioa = c->ioa;
    st.is_read = c->type == C_RD_NA_1;
    st.confirmed = st.negative = st.got_term = false;
    st.want_term = expects_term;
    uint64_t start = now_ms();
    st.sent_at = start;
    pthread_mutex_unlock(&lock);

    if (has_select(c->type) && c->type != C_BO_NA_1) {
        out("sent type=%d name=%s ca=%d ioa=%d cot=%d se=%d value=%.6g", c->type, type_name(c->type), c->ca, c->ioa, c->cot,
            c->select ? 1 : 0, c->value);
    } else {
        out("sent type=%d name=%s ca=%d ioa=%d cot=%d", c->type, type_name(c->type), c->ca, c->ioa, c->cot);
    }
    if (!CS104_Connection_sendASDU(con, asdu)) {
        out("send-failed type=%d ca=%d ioa=%d", c->type, c->ca, c->ioa); /* lib60870's k window is full or not connected */
    }
    CS101_ASDU_destroy(asdu);
    count.sent++;

    pthread_mutex_lock(&lock);
    bool ok = wait_until(pred_confirmed, start + (uint64_t) timeout_ms);
    bool negative = st.negative;
    bool term = false;
    if (ok && !negative && expects_term) {
        term = wait_until(pred_term, now_ms() + (uint64_t) timeout_ms);
    }
    bool closed = st.closed;
    st.waiting = false;
    pthread_mutex_unlock(&lock);

    if (ok) {
        count.confirmed++;
        if (negative) {
            count.negative++;
        } else {
            count.positive++;
        }
        if (!negative && expects_term) {
            if (term) {
                count.terms++;
            } else {
                count.missing_terms++;
                out("missing-term type=%d ca=%d ioa=%d", c->type, c->ca, c->ioa);
            }
        }
    } else {
        count.timeouts++;
        out("timeout type=%d ca=%d ioa=%d%s", c->type, c->ca, c->ioa, closed ? " closed=1" : "");
    }
    return !closed;
}

static void report_drop(void)
{
    pthread_mutex_lock(&lock);
    char reason[220];
    snprintf(reason, sizeof reason, "%s", last_lib_msg[0] ? last_lib_msg : "closed");
    pthread_mutex_unlock(&lock);
    out("drop reason=\"%s\"", reason);
}

static void usage(void)
{
    fprintf(stderr, "usage: iec104-client --connect HOST:PORT [--ca N] [--interrogate] [--commands FILE] [--listen-ms N]\n"
                    "                     [--timeout-ms N] [--max-reconnects N] [--oa N]\n");
}

int main(int argc, char **argv)
{
    static char hostbuf[128];
    int ca = 1, listen_ms = 0, max_reconnects = 3;
    bool interrogate = false;
    const char *commands = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--connect") && v) {
            const char *colon = strrchr(v, ':');
            if (colon == NULL || colon == v || (size_t) (colon - v) >= sizeof hostbuf) {
                fprintf(stderr, "iec104-client: --connect wants HOST:PORT\n");
                return 2;
            }
            memcpy(hostbuf, v, colon - v);
            hostbuf[colon - v] = '\0';
            host = hostbuf;
            port = atoi(colon + 1);
            i++;
        } else if (!strcmp(a, "--ca") && v) {
            ca = atoi(v);
            i++;
        } else if (!strcmp(a, "--commands") && v) {
            commands = v;
            i++;
        } else if (!strcmp(a, "--timeout-ms") && v) {
            timeout_ms = atoi(v);
            i++;
        } else if (!strcmp(a, "--listen-ms") && v) {
            listen_ms = atoi(v);
            i++;
        } else if (!strcmp(a, "--max-reconnects") && v) {
            max_reconnects = atoi(v);
            i++;
        } else if (!strcmp(a, "--oa") && v) {
            oa = atoi(v);
            i++;
        } else if (!strcmp(a, "--interrogate")) {
            interrogate = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        } else {
            fprintf(stderr, "iec104-client: unknown or incomplete argument %s\n", a);
            usage();
            return 2;
        }
    }
    if (host == NULL || port < 1 || port > 65535 || timeout_ms < 1 || listen_ms < 0 || max_reconnects < 0 || oa < 0 || oa > 255) {
        usage();
        return 2;
    }
    FILE *file = NULL;
    if (commands) {
        file = strcmp(commands, "-") ? fopen(commands, "r") : stdin;
        if (file == NULL) {
            fprintf(stderr, "iec104-client: cannot open %s: %s\n", commands, strerror(errno));
            return 2;
        }
    }

    if (!open_connection(true)) {
        report_drop();
        printf("sent=0 confirmed=0 positive=0 negative=0 timeouts=0 reconnects=0 terms=0 missing_terms=0 points=0\n");
        return 3;
    }
    bool dropped = false, interrogation_ok = true;

    if (interrogate) {
        struct command c = {.type = C_IC_NA_1, .ca = ca, .ioa = 0, .cot = CS101_COT_ACTIVATION, .qoi = IEC60870_QOI_STATION};
        pthread_mutex_lock(&lock);
        int before = st.points;
        pthread_mutex_unlock(&lock);
        long terms = count.terms;
        if (!run_command(&c)) {
            dropped = true;
        }
        interrogation_ok = count.terms == terms + 1;
        pthread_mutex_lock(&lock);
        int got = st.points - before;
        pthread_mutex_unlock(&lock);
        out("interrogation points=%d", got);
    }

    if (file && !dropped) {
        char line[512];
        int lineno = 0;
        while (fgets(line, sizeof line, file)) {
            lineno++;
            char *p = line;
            while (*p == ' ' || *p == '\t') {
                p++;
            }
            if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0') {
                continue;
            }
            struct command c;
            if (!parse_command(p, lineno, ca, &c)) {
                return 2;
            }
            if (!run_command(&c)) {
                dropped = true;
                report_drop();
                if (count.reconnects >= max_reconnects) {
                    break;
                }
                count.reconnects++;
                if (!open_connection(false)) {
                    break;
                }
            }
        }
    }

    if (listen_ms > 0 && !dropped) {
        pthread_mutex_lock(&lock);
        wait_until(pred_never, now_ms() + (uint64_t) listen_ms);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    if (st.closed && !dropped) {
        dropped = true;
        pthread_mutex_unlock(&lock);
        report_drop();
    } else {
        pthread_mutex_unlock(&lock);
    }
    CS104_Connection_destroy(con);
    pthread_mutex_lock(&lock);
    int points = st.points;
    pthread_mutex_unlock(&lock);
    out("sent=%ld confirmed=%ld positive=%ld negative=%ld timeouts=%ld reconnects=%ld terms=%ld missing_terms=%ld points=%d", count.sent,
        count.confirmed, count.positive, count.negative, count.timeouts, count.reconnects, count.terms, count.missing_terms, points);
    bool ok = !dropped && count.reconnects == 0 && count.timeouts == 0 && count.confirmed == count.sent && count.missing_terms == 0 &&
              interrogation_ok;
    return ok ? 0 : 1;
}
