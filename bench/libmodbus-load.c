/*
 * An HMI load generator written against libmodbus (tests/peers/libmodbus, LGPL v2.1), independent of
 * the project's own simulator: N connections, one thread each, one request outstanding per
 * connection, a mix of FC 3/4 reads with FC 6/16 writes, for a fixed duration. Prints one JSON line
 * (the keys bench/e2e.sh reads): requests/s and p50/p90/p99/max latency in microseconds.
 *
 *   libmodbus-load HOST PORT CONNS SECONDS [WRITE_PERCENT [READ_QTY [WRITE_QTY]]]
 *
 * Defaults match `edgeshield-sim hmi` so that only the client differs: 80 % reads (FC 3 and FC 4
 * 1:1; the simulator also sends FC 1, libmodbus-load does not) of 10 registers anywhere in 0-999,
 * 20 % writes (FC 6 and FC 16 1:1; FC 16 of 4 registers) to 100-119 with values 0-1000, unit 1.
 * Built by bench/libmodbus-build.sh against the static libmodbus. Every loop is bounded by the
 * deadline; a connection that fails is reopened at most 1000 times, then its thread gives up.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <modbus.h>

#include "load-histogram.h"

#define MAX_CONNS 4096
#define MAX_RECONNECTS 1000

struct worker {
    pthread_t thread;
    int index;
    uint64_t requests, ok, exceptions, errors, reconnects;
    uint64_t by_fc[17];
    uint32_t *latency_us; /* histogram, BUCKETS entries */
};

static const char *host;
static int port, seconds, write_percent = 20, read_qty = 10, write_qty = 4;
static struct timespec deadline;

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

static modbus_t *open_connection(void)
{
    modbus_t *ctx = modbus_new_tcp(host, port);
    if (ctx == NULL) {
        return NULL;
    }
    modbus_set_slave(ctx, 1);
    modbus_set_response_timeout(ctx, 2, 0); /* as the simulator's --timeout-ms default */
    if (modbus_connect(ctx) == -1) {
        modbus_free(ctx);
        return NULL;
    }
    return ctx;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    uint32_t state = 0x9e3779b9u ^ (uint32_t) (w->index * 2654435761u + 1);
    uint16_t regs[MODBUS_MAX_READ_REGISTERS];
    uint16_t values[MODBUS_MAX_WRITE_REGISTERS];
    modbus_t *ctx = open_connection();
    struct timespec now, start;

    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (ns_between(&now, &deadline) <= 0) {
            break;
        }
        if (ctx == NULL) {
            if (w->reconnects++ >= MAX_RECONNECTS) {
                break;
            }
            w->errors++;
            ctx = open_connection();
            continue;
        }
        uint32_t pick = next_random(&state) % 100;
        int fc, rc;
        start = now;
        if (pick >= (uint32_t) write_percent) { /* read: FC 3 and FC 4 alike */
            int addr = (int) (next_random(&state) % (uint32_t) (1000 - read_qty + 1));
            fc = (pick & 1) ? 3 : 4;
            rc = fc == 3 ? modbus_read_registers(ctx, addr, read_qty, regs)
                         : modbus_read_input_registers(ctx, addr, read_qty, regs);
        } else if (pick & 1) {
            fc = 6;
            rc = modbus_write_register(ctx, 100 + (int) (next_random(&state) % 20),
                                       (uint16_t) (next_random(&state) % 1001));
        } else {
            fc = 16;
            for (int i = 0; i < write_qty; i++) {
                values[i] = (uint16_t) (next_random(&state) % 1001);
            }
            rc = modbus_write_registers(ctx, 100 + (int) (next_random(&state) % (uint32_t) (20 - write_qty + 1)),
                                        write_qty, values);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        w->requests++;
        w->by_fc[fc]++;
        if (rc == -1) {
            if (errno > MODBUS_ENOBASE && errno < MODBUS_ENOBASE + 0x20) {
                w->exceptions++; /* an exception response: the connection stays in step */
            } else {
                w->errors++; /* timeout, reset, bad data: reopen so the next answer is ours */
                modbus_close(ctx);
                modbus_free(ctx);
                ctx = NULL;
                continue;
            }
        } else {
            w->ok++;
        }
        int64_t us = ns_between(&start, &now) / 1000;
        w->latency_us[latency_bucket(us)]++;
    }
    if (ctx != NULL) {
        modbus_close(ctx);
        modbus_free(ctx);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 8) {
        fprintf(stderr, "usage: libmodbus-load HOST PORT CONNS SECONDS [WRITE_PERCENT [READ_QTY [WRITE_QTY]]]\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    int conns = atoi(argv[3]);
    seconds = atoi(argv[4]);
    if (argc > 5) write_percent = atoi(argv[5]);
    if (argc > 6) read_qty = atoi(argv[6]);
    if (argc > 7) write_qty = atoi(argv[7]);
    if (port < 1 || port > 65535 || conns < 1 || conns > MAX_CONNS || seconds < 1 || seconds > 3600 ||
        write_percent < 0 || write_percent > 100 || read_qty < 1 || read_qty > MODBUS_MAX_READ_REGISTERS ||
        write_qty < 1 || write_qty > 20) {
        fprintf(stderr, "libmodbus-load: arguments out of range\n");
        return 2;
    }

    struct worker *workers = calloc((size_t) conns, sizeof *workers);
    struct timespec begin, end;
    clock_gettime(CLOCK_MONOTONIC, &begin);
    deadline = begin;
    deadline.tv_sec += seconds;
    for (int i = 0; i < conns; i++) {
        workers[i].index = i;
        workers[i].latency_us = calloc(BUCKETS, sizeof(uint32_t));
        if (workers[i].latency_us == NULL || pthread_create(&workers[i].thread, NULL, run, &workers[i]) != 0) {
            fprintf(stderr, "libmodbus-load: cannot start thread %d\n", i);
            return 1;
        }
    }
    uint64_t requests = 0, ok = 0, exceptions = 0, errors = 0, fcs[17] = {0};
    uint64_t *hist = calloc(BUCKETS, sizeof(uint64_t));
    for (int i = 0; i < conns; i++) {
        pthread_join(workers[i].thread, NULL);
        requests += workers[i].requests;
        ok += workers[i].ok;
        exceptions += workers[i].exceptions;
        errors += workers[i].errors;
        for (int f = 0; f < 17; f++) fcs[f] += workers[i].by_fc[f];
        for (int b = 0; b < BUCKETS; b++) hist[b] += workers[i].latency_us[b];
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double elapsed = (double) ns_between(&begin, &end) / 1e9;
    uint64_t answered = ok + exceptions;
    int max = max_us(hist);
    printf("{\"client\":\"libmodbus %s\",\"conns\":%d,\"requests\":%llu,\"ok\":%llu,\"exceptions\":%llu,"
           "\"errors\":%llu,\"fc3\":%llu,\"fc4\":%llu,\"fc6\":%llu,\"fc16\":%llu,\"seconds\":%.3f,"
           "\"requests_per_second\":%.1f,\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d}\n",
           LIBMODBUS_VERSION_STRING, conns, (unsigned long long) requests, (unsigned long long) ok,
           (unsigned long long) exceptions, (unsigned long long) errors, (unsigned long long) fcs[3],
           (unsigned long long) fcs[4], (unsigned long long) fcs[6], (unsigned long long) fcs[16],
           elapsed, (double) answered / elapsed, percentile(hist, answered, 0.50),
           percentile(hist, answered, 0.90), percentile(hist, answered, 0.99), max);
    return errors == 0 ? 0 : 1;
}
