/*
 * The S7 PLC of the S7 end-to-end bench: snap7's server (node-snap7 1.0.9's bundled snap7, LGPL v3,
 * built by tests/peers/build-snap7.sh) with DB1 of 1024 bytes and M, I, Q areas of 256 bytes,
 * serving every connection on a worker thread of its own (snap7's design). The job event queue and
 * log are switched off: the bench measures the wire, not snap7's logging. Runs until SIGTERM/SIGINT.
 *
 *   snap7-plc HOST PORT
 *
 * Built by bench/snap7-build.sh.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap7_libmain.h"

static volatile sig_atomic_t stopping = 0;

static void on_signal(int sig)
{
    (void) sig;
    stopping = 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: snap7-plc HOST PORT\n");
        return 2;
    }
    int port = atoi(argv[2]);
    if (port < 1 || port > 65535) {
        fprintf(stderr, "snap7-plc: port out of range\n");
        return 2;
    }
    static uint8_t db1[1024], mk[256], pe[256], pa[256];
    for (size_t i = 0; i < sizeof db1; i++) db1[i] = (uint8_t) i;

    S7Object server = Srv_Create();
    uint16_t local = (uint16_t) port;
    int32_t max_clients = 1024;
    Srv_SetParam(server, p_u16_LocalPort, &local);
    Srv_SetParam(server, p_i32_MaxClients, &max_clients);
    Srv_SetMask(server, mkEvent, 0);
    Srv_SetMask(server, mkLog, 0);
    if (Srv_RegisterArea(server, srvAreaDB, 1, db1, sizeof db1) != 0 ||
        Srv_RegisterArea(server, srvAreaMK, 0, mk, sizeof mk) != 0 ||
        Srv_RegisterArea(server, srvAreaPE, 0, pe, sizeof pe) != 0 ||
        Srv_RegisterArea(server, srvAreaPA, 0, pa, sizeof pa) != 0) {
        fprintf(stderr, "snap7-plc: RegisterArea failed\n");
        return 1;
    }
    int rc = Srv_StartTo(server, argv[1]);
    if (rc != 0) {
        fprintf(stderr, "snap7-plc: cannot listen on %s:%d (snap7 error 0x%08x)\n", argv[1], port, (unsigned) rc);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("snap7-plc: listening on %s:%d\n", argv[1], port);
    fflush(stdout);
    while (!stopping) {
        pause();
    }
    Srv_Stop(server);
    Srv_Destroy(server);
    return 0;
}
