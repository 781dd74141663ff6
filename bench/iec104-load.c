/*
 * An IEC 60870-5-104 SCADA load generator written against lib60870's client (tests/peers/lib60870,
 * GPL v3, a test peer only, built by tests/peers/build-lib60870.sh), independent of the project's own
 * code: N connections, one command outstanding per connection, for a fixed duration. Each connection
 * connects, sends STARTDT and waits for its con, then repeats: send a command, wait for its
 * confirmation (actcon, positive or negative), record the latency. Prints one JSON line with the keys
 * bench/e2e.sh reads: requests/s and p50/p90/p99/max latency in µs.
 *
 *   iec104-load HOST PORT CONNS SECONDS [MODE [CA]]
 *
 * MODE: setpoint (default) C_SE_NC_1 to IOA 3000-3009 with a value in 0-150, execute (positive actcon,
 * then an actterm the generator does not wait for); sbo: C_SC_NA_1 select then execute of the same
 * value at IOA 2000-2099, each a request; read: C_RD_NA_1 of a point (IOA 100-119, 200-219), answered
 * by the point with cause 5; interrogation: C_IC_NA_1 QOI 20, counted when its actterm arrives.
 * CA defaults to 1. All connections are opened and started before the SECONDS begin. The station is tests/peers/iec104/iec104-station, run with --redundancy-groups so
 * that every connection is active (bench/iec104-build.sh copies it beside this program).
 * "exceptions" counts negative confirmations; "errors" counts timeouts (2 s, as the other generators)
 * and dropped connections. Every loop is bounded by the deadline; a connection that fails is reopened
 * at most 1000 times, then its thread gives up. Built by bench/iec104-build.sh.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cs104_connection.h"
#include "hal_time.h"

#include "load-histogram.h"

#define MAX_CONNS 1024
#define MAX_RECONNECTS 1000
#define TIMEOUT_MS 2000

enum mode { MODE_SETPOINT, MODE_SBO, MODE_READ, MODE_INTERROGATION };

struct worker {
    pthread_t thread;
    int index;
    uint64_t requests, ok, negative, errors, reconnects;
    uint32_t *latency_us;
    /* what the receive thread (lib60870's, one per connection) saw; guarded by lock */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int want_type, want_ioa;
    bool want_term, answered, was_negative, startdt, closed;
};

static const char *host;
static int port, seconds, ca = 1;
static enum mode mode = MODE_SETPOINT;
static struct timespec deadline;
/* Every connection is opened (and STARTDT confirmed) before the clock starts: lib60870's station
 * accepts in one thread that starves while busy connections keep both cores, so a ramp-up under
 * load would measure its accept loop, not the command round trips. */
static pthread_barrier_t connected, go;
/* lib60870's HAL listens with a backlog of 2 and its accept loop sleeps 10 ms when idle: a burst of
 * connects loses SYNs that come back only after the kernel's 1 s retransmission. The first connects
 * are therefore made one at a time. */
static pthread_mutex_t connect_lock = PTHREAD_MUTEX_INITIALIZER;

/* lib60870 is built with its debug output on and this function weak (build-lib60870.sh): silence it. */
void lib60870_debug_print(const char *format, ...)
{
    (void) format;
}

static int64_t ns_between(const struct timespec *a, const struct timespec *b)
{
    return (int64_t) (b->tv_sec - a->tv_sec) * 1000000000 + (b->tv_nsec - a->tv_nsec);
}

static uint32_t next_random(uint32_t *state)
{ /* xorshift32 */
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

static bool on_asdu(void *parameter, int address, CS101_ASDU asdu)
{
    struct worker *w = parameter;
    int type = CS101_ASDU_getTypeID(asdu);
    int cot = CS101_ASDU_getCOT(asdu);
    bool negative = CS101_ASDU_isNegative(asdu);
    pthread_mutex_lock(&w->lock);
    if (!w->answered) {
        bool match;
        if (w->want_term) { /* interrogation: done at its actterm, or at a negative actcon */
            match = type == w->want_type && (cot == CS101_COT_ACTIVATION_TERMINATION || negative);
        } else if (w->want_type == C_RD_NA_1) {
            match = (cot == CS101_COT_REQUEST && !negative) || (type == C_RD_NA_1 && negative);
        } else {
            match = type == w->want_type && (cot == CS101_COT_ACTIVATION_CON || negative);
        }
        if (match) {
            w->answered = true;
            w->was_negative = negative;
            pthread_cond_signal(&w->changed);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return true;
}

static void on_event(void *parameter, CS104_Connection con, CS104_ConnectionEvent event)
{
    struct worker *w = parameter;
    pthread_mutex_lock(&w->lock);
    if (event == CS104_CONNECTION_STARTDT_CON_RECEIVED) {
        w->startdt = true;
    } else if (event == CS104_CONNECTION_CLOSED || event == CS104_CONNECTION_FAILED) {
        w->closed = true;
    }
    pthread_cond_signal(&w->changed);
    pthread_mutex_unlock(&w->lock);
}

/* Waits (lock held) until *flag, the connection closed, or timeout_ms passed. */
static bool wait_flag(struct worker *w, bool *flag, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!*flag && !w->closed) {
        if (pthread_cond_timedwait(&w->changed, &w->lock, &until) != 0) {
            break;
        }
    }
    return *flag;
}

static CS104_Connection open_connection(struct worker *w)
{
    CS104_Connection con = CS104_Connection_create(host, port);
    CS104_Connection_setConnectTimeout(con, TIMEOUT_MS);
    CS104_Connection_setConnectionHandler(con, on_event, w);
    CS104_Connection_setASDUReceivedHandler(con, on_asdu, w);
    pthread_mutex_lock(&w->lock);
    w->startdt = w->closed = false;
    pthread_mutex_unlock(&w->lock);
    if (!CS104_Connection_connect(con)) {
        CS104_Connection_destroy(con);
        return NULL;
    }
    CS104_Connection_sendStartDT(con);
    pthread_mutex_lock(&w->lock);
    bool ok = wait_flag(w, &w->startdt, TIMEOUT_MS);
    pthread_mutex_unlock(&w->lock);
    if (!ok) {
        CS104_Connection_destroy(con);
        return NULL;
    }
    return con;
}

static const int points[] = {100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113,
                             114, 115, 116, 117, 118, 119, 200, 201, 202, 203, 204, 205, 206, 207,
                             208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219};

static void *run(void *arg)
{
    struct worker *w = arg;
    uint32_t state = 0x9e3779b9u ^ (uint32_t) (w->index * 2654435761u + 1);
    CS104_Connection con = NULL;
    pthread_mutex_lock(&connect_lock);
    for (int attempt = 0; attempt < 5 && con == NULL; attempt++) { /* at most ~20 s */
        con = open_connection(w);
    }
    pthread_mutex_unlock(&connect_lock);
    if (con == NULL) {
        w->errors++;
    }
    pthread_barrier_wait(&connected);
    pthread_barrier_wait(&go);
    struct timespec now, start;
    bool select_next = true;
    int sbo_ioa = 2000;
    bool sbo_value = false;

    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (ns_between(&now, &deadline) <= 0) {
            break;
        }
        if (con == NULL) {
            if (w->reconnects++ >= MAX_RECONNECTS) {
                break;
            }
            w->errors++;
            con = open_connection(w);
            select_next = true;
            continue;
        }
        InformationObject io;
        int type;
        if (mode == MODE_SETPOINT) {
            type = C_SE_NC_1;
            io = (InformationObject) SetpointCommandShort_create(NULL, 3000 + (int) (next_random(&state) % 10),
                                                                 (float) (next_random(&state) % 1501) / 10.0f, false, 0);
        } else if (mode == MODE_SBO) {
            type = C_SC_NA_1;
            if (select_next) {
                sbo_ioa = 2000 + (int) (next_random(&state) % 100);
                sbo_value = next_random(&state) & 1;
            }
            io = (InformationObject) SingleCommand_create(NULL, sbo_ioa, sbo_value, select_next, 0);
        } else if (mode == MODE_READ) {
            type = C_RD_NA_1;
            io = (InformationObject) ReadCommand_create(NULL, points[next_random(&state) % (sizeof points / sizeof points[0])]);
        } else {
            type = C_IC_NA_1;
            io = (InformationObject) InterrogationCommand_create(NULL, 0, IEC60870_QOI_STATION);
        }
        pthread_mutex_lock(&w->lock);
        w->want_type = type;
        w->want_term = type == C_IC_NA_1;
        w->answered = w->was_negative = false;
        pthread_mutex_unlock(&w->lock);

        start = now;
        CS101_CauseOfTransmission cot = type == C_RD_NA_1 ? CS101_COT_REQUEST : CS101_COT_ACTIVATION;
        bool sent = CS104_Connection_sendProcessCommandEx(con, cot, ca, io);
        InformationObject_destroy(io);
        pthread_mutex_lock(&w->lock);
        bool answered = sent && wait_flag(w, &w->answered, TIMEOUT_MS);
        bool negative = w->was_negative;
        pthread_mutex_unlock(&w->lock);
        clock_gettime(CLOCK_MONOTONIC, &now);
        w->requests++;
        if (!answered) {
            /* a timeout or a dropped connection: reopen, so that the next answer is ours */
            w->errors++;
            CS104_Connection_destroy(con);
            con = NULL;
            continue;
        }
        if (negative) {
            w->negative++;
        } else {
            w->ok++;
        }
        if (mode == MODE_SBO) {
            select_next = !select_next || negative;
        }
        int64_t us = ns_between(&start, &now) / 1000;
        w->latency_us[latency_bucket(us)]++;
    }
    if (con != NULL) {
        CS104_Connection_destroy(con);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 7) {
        fprintf(stderr, "usage: iec104-load HOST PORT CONNS SECONDS [setpoint|sbo|read|interrogation [CA]]\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    int conns = atoi(argv[3]);
    seconds = atoi(argv[4]);
    const char *mode_name = argc > 5 ? argv[5] : "setpoint";
    if (!strcmp(mode_name, "setpoint")) mode = MODE_SETPOINT;
    else if (!strcmp(mode_name, "sbo")) mode = MODE_SBO;
    else if (!strcmp(mode_name, "read")) mode = MODE_READ;
    else if (!strcmp(mode_name, "interrogation")) mode = MODE_INTERROGATION;
    else {
        fprintf(stderr, "iec104-load: MODE is setpoint, sbo, read or interrogation\n");
        return 2;
    }
    if (argc > 6) ca = atoi(argv[6]);
    if (port < 1 || port > 65535 || conns < 1 || conns > MAX_CONNS || seconds < 1 || seconds > 3600 || ca < 1 || ca > 65535) {
        fprintf(stderr, "iec104-load: arguments out of range\n");
        return 2;
    }

    struct worker *workers = calloc((size_t) conns, sizeof *workers);
    struct timespec begin, end;
    pthread_barrier_init(&connected, NULL, (unsigned) conns + 1);
    pthread_barrier_init(&go, NULL, (unsigned) conns + 1);
    for (int i = 0; i < conns; i++) {
        workers[i].index = i;
        pthread_mutex_init(&workers[i].lock, NULL);
        pthread_cond_init(&workers[i].changed, NULL);
        workers[i].latency_us = calloc(BUCKETS, sizeof(uint32_t));
        if (workers[i].latency_us == NULL || pthread_create(&workers[i].thread, NULL, run, &workers[i]) != 0) {
            fprintf(stderr, "iec104-load: cannot start thread %d\n", i);
            return 1;
        }
    }
    /* every worker has its connection open (or gave up); the deadline is set, then they go */
    struct timespec ramp;
    clock_gettime(CLOCK_MONOTONIC, &ramp);
    pthread_barrier_wait(&connected);
    clock_gettime(CLOCK_MONOTONIC, &begin);
    if (getenv("IEC104_LOAD_DEBUG")) {
        fprintf(stderr, "connected in %.3f s\n", (double) ns_between(&ramp, &begin) / 1e9);
    }
    deadline = begin;
    deadline.tv_sec += seconds;
    pthread_barrier_wait(&go);
    uint64_t requests = 0, ok = 0, negative = 0, errors = 0;
    uint64_t *hist = calloc(BUCKETS, sizeof(uint64_t));
    for (int i = 0; i < conns; i++) {
        pthread_join(workers[i].thread, NULL);
        if (getenv("IEC104_LOAD_DEBUG")) {
            fprintf(stderr, "worker %d requests=%llu errors=%llu reconnects=%llu\n", i, (unsigned long long) workers[i].requests,
                    (unsigned long long) workers[i].errors, (unsigned long long) workers[i].reconnects);
        }
        requests += workers[i].requests;
        ok += workers[i].ok;
        negative += workers[i].negative;
        errors += workers[i].errors;
        for (int b = 0; b < BUCKETS; b++) hist[b] += workers[i].latency_us[b];
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double elapsed = (double) ns_between(&begin, &end) / 1e9;
    uint64_t answered = ok + negative;
    int max = max_us(hist);
    /* "exceptions": negative confirmations, the key e2e.sh reads for Modbus exception answers. */
    printf("{\"client\":\"lib60870 %d.%d.%d\",\"mode\":\"%s\",\"conns\":%d,\"requests\":%llu,\"ok\":%llu,\"exceptions\":%llu,"
           "\"errors\":%llu,\"seconds\":%.3f,\"requests_per_second\":%.1f,\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d}\n",
           LIB60870_VERSION_MAJOR, LIB60870_VERSION_MINOR, LIB60870_VERSION_PATCH, mode_name, conns, (unsigned long long) requests, (unsigned long long) ok, (unsigned long long) negative,
           (unsigned long long) errors, elapsed, (double) answered / elapsed, percentile(hist, answered, 0.50),
           percentile(hist, answered, 0.90), percentile(hist, answered, 0.99), max);
    return errors == 0 ? 0 : 1;
}
