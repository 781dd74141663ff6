/*
 * An S7 HMI load generator written against snap7's client (node-snap7 1.0.9's bundled snap7, LGPL v3,
 * built by tests/peers/build-snap7.sh), independent of the project's own simulator: N connections,
 * one thread each, one job outstanding per connection, for a fixed duration. The headline request
 * is the issue's: read-var of one item, 20 bytes of DB1 (snap7's Cli_DBRead), at a random offset in
 * 0-999; WRITE_PERCENT of the jobs are write-var of 4 bytes to DB1 100-119 instead (default 0).
 * Prints one JSON line with the keys bench/e2e.sh reads: requests/s and p50/p90/p99/max latency in µs.
 *
 *   snap7-load HOST PORT CONNS SECONDS [WRITE_PERCENT [CONNECTION_TYPE]]
 *
 * CONNECTION_TYPE is snap7's: 1 PG, 2 OP (default: an HMI), 3 basic. Every loop is bounded by the
 * deadline; a connection that fails is reopened at most 1000 times, then its thread gives up.
 * Built by bench/snap7-build.sh.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snap7_libmain.h"

#include "load-histogram.h"

#define MAX_CONNS 4096
#define MAX_RECONNECTS 1000
#define READ_BYTES 20

struct worker {
    pthread_t thread;
    int index;
    uint64_t requests, ok, refused, errors, reconnects, reads, writes;
    uint32_t *latency_us;
};

static const char *host;
static int port, seconds, write_percent = 0, connection_type = 2;
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

static S7Object open_connection(void)
{
    S7Object client = Cli_Create();
    uint16_t remote = (uint16_t) port;
    int32_t timeout_ms = 2000;
    Cli_SetParam(client, p_u16_RemotePort, &remote);
    Cli_SetParam(client, p_i32_RecvTimeout, &timeout_ms);
    Cli_SetConnectionType(client, (word) connection_type);
    if (Cli_ConnectTo(client, host, 0, 2) != 0) {
        Cli_Destroy(client);
        return 0;
    }
    return client;
}

static void close_connection(S7Object *client)
{
    Cli_Disconnect(*client);
    Cli_Destroy(*client);
    *client = 0;
}

static void *run(void *arg)
{
    struct worker *w = (struct worker *) arg;
    uint32_t state = 0x9e3779b9u ^ (uint32_t) (w->index * 2654435761u + 1);
    uint8_t buffer[READ_BYTES];
    S7Object client = open_connection();
    struct timespec now, start;

    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (ns_between(&now, &deadline) <= 0) {
            break;
        }
        if (client == 0) {
            if (w->reconnects++ >= MAX_RECONNECTS) {
                break;
            }
            w->errors++;
            client = open_connection();
            continue;
        }
        uint32_t pick = next_random(&state) % 100;
        int rc;
        start = now;
        if (pick >= (uint32_t) write_percent) {
            rc = Cli_DBRead(client, 1, (int) (next_random(&state) % (1000 - READ_BYTES + 1)), READ_BYTES, buffer);
            w->reads++;
        } else {
            for (int i = 0; i < 4; i++) {
                buffer[i] = (uint8_t) next_random(&state);
            }
            rc = Cli_DBWrite(client, 1, 100 + (int) (next_random(&state) % 17), 4, buffer);
            w->writes++;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        w->requests++;
        if (rc != 0) {
            /* A refusal a PLC (or the gateway speaking as one) gives for the job: the item or job error
             * codes; the connection stays in step. Anything else (TCP, ISO, timeout) reopens it. */
            long kind = (long) ((unsigned) rc & errCliMask);
            if (kind == (long) errCliAddressOutOfRange || kind == (long) errCliItemNotAvailable ||
                kind == (long) errCliFunctionRefused || kind == (long) errCliNeedPassword ||
                kind == (long) errCliInvalidValue) {
                w->refused++;
            } else {
                w->errors++;
                close_connection(&client);
                continue;
            }
        } else {
            w->ok++;
        }
        int64_t us = ns_between(&start, &now) / 1000;
        w->latency_us[latency_bucket(us)]++;
    }
    if (client != 0) {
        close_connection(&client);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 7) {
        fprintf(stderr, "usage: snap7-load HOST PORT CONNS SECONDS [WRITE_PERCENT [CONNECTION_TYPE]]\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    int conns = atoi(argv[3]);
    seconds = atoi(argv[4]);
    if (argc > 5) write_percent = atoi(argv[5]);
    if (argc > 6) connection_type = atoi(argv[6]);
    if (port < 1 || port > 65535 || conns < 1 || conns > MAX_CONNS || seconds < 1 || seconds > 3600 ||
        write_percent < 0 || write_percent > 100 || connection_type < 1 || connection_type > 255) {
        fprintf(stderr, "snap7-load: arguments out of range\n");
        return 2;
    }

    struct worker *workers = (struct worker *) calloc((size_t) conns, sizeof *workers);
    struct timespec begin, end;
    clock_gettime(CLOCK_MONOTONIC, &begin);
    deadline = begin;
    deadline.tv_sec += seconds;
    for (int i = 0; i < conns; i++) {
        workers[i].index = i;
        workers[i].latency_us = (uint32_t *) calloc(BUCKETS, sizeof(uint32_t));
        if (workers[i].latency_us == NULL || pthread_create(&workers[i].thread, NULL, run, &workers[i]) != 0) {
            fprintf(stderr, "snap7-load: cannot start thread %d\n", i);
            return 1;
        }
    }
    uint64_t requests = 0, ok = 0, refused = 0, errors = 0, reads = 0, writes = 0;
    uint64_t *hist = (uint64_t *) calloc(BUCKETS, sizeof(uint64_t));
    for (int i = 0; i < conns; i++) {
        pthread_join(workers[i].thread, NULL);
        requests += workers[i].requests;
        ok += workers[i].ok;
        refused += workers[i].refused;
        errors += workers[i].errors;
        reads += workers[i].reads;
        writes += workers[i].writes;
        for (int b = 0; b < BUCKETS; b++) hist[b] += workers[i].latency_us[b];
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double elapsed = (double) ns_between(&begin, &end) / 1e9;
    uint64_t answered = ok + refused;
    int max = max_us(hist);
    /* "exceptions": refused jobs, the key e2e.sh reads for Modbus exception answers. */
    printf("{\"client\":\"snap7 (node-snap7 1.0.9)\",\"conns\":%d,\"requests\":%llu,\"ok\":%llu,\"exceptions\":%llu,"
           "\"errors\":%llu,\"reads\":%llu,\"writes\":%llu,\"seconds\":%.3f,"
           "\"requests_per_second\":%.1f,\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d}\n",
           conns, (unsigned long long) requests, (unsigned long long) ok, (unsigned long long) refused,
           (unsigned long long) errors, (unsigned long long) reads, (unsigned long long) writes,
           elapsed, (double) answered / elapsed, percentile(hist, answered, 0.50),
           percentile(hist, answered, 0.90), percentile(hist, answered, 0.99), max);
    return errors == 0 ? 0 : 1;
}
