/*
 * A multi-connection Modbus TCP server written against libmodbus (tests/peers/libmodbus, LGPL v2.1),
 * the PLC behind bench/e2e.sh with LOAD=libmodbus: one thread, modbus_tcp_listen + select() over
 * every connection, modbus_receive + modbus_reply per ready socket — the shape of libmodbus's own
 * tests/bandwidth-server-many-up.c, with a map the bench's load covers (2000 coils and discrete
 * inputs, 1000 holding and 1000 input registers, every unit id answered as libmodbus does over TCP).
 * libmodbus sets no TCP_NODELAY on accepted sockets and reads each request in 2-3 select+recv steps
 * (header, meta, data); that is part of what it measures.
 *
 *   libmodbus-plc HOST PORT        runs until SIGTERM/SIGINT; at most FD_SETSIZE-1 sockets
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <modbus.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void) sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: libmodbus-plc HOST PORT\n");
        return 2;
    }
    modbus_t *ctx = modbus_new_tcp(argv[1], atoi(argv[2]));
    modbus_mapping_t *map = modbus_mapping_new(2000, 2000, 1000, 1000);
    if (ctx == NULL || map == NULL) {
        fprintf(stderr, "libmodbus-plc: %s\n", modbus_strerror(errno));
        return 1;
    }
    int listener = modbus_tcp_listen(ctx, 1024);
    if (listener == -1) {
        fprintf(stderr, "libmodbus-plc: listen: %s\n", modbus_strerror(errno));
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal; /* no SA_RESTART: select returns EINTR and the loop ends */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    fd_set all, ready;
    FD_ZERO(&all);
    FD_SET(listener, &all);
    int fdmax = listener;
    unsigned long long requests = 0, connections = 0;
    fprintf(stderr, "libmodbus-plc %s listening on %s:%s\n", LIBMODBUS_VERSION_STRING, argv[1], argv[2]);
    while (!stop) {
        ready = all;
        if (select(fdmax + 1, &ready, NULL, NULL, NULL) == -1) {
            if (errno == EINTR) {
                continue;
            }
            perror("libmodbus-plc: select");
            return 1;
        }
        for (int fd = 0; fd <= fdmax; fd++) {
            if (!FD_ISSET(fd, &ready)) {
                continue;
            }
            if (fd == listener) {
                int client = accept(listener, NULL, NULL);
                if (client == -1) {
                    continue;
                }
                if (client >= FD_SETSIZE) {
                    close(client);
                    continue;
                }
                connections++;
                FD_SET(client, &all);
                if (client > fdmax) {
                    fdmax = client;
                }
                continue;
            }
            modbus_set_socket(ctx, fd);
            int rc = modbus_receive(ctx, query);
            if (rc > 0) {
                requests++;
                modbus_reply(ctx, query, rc, map);
            } else if (rc == -1) {
                close(fd);
                FD_CLR(fd, &all);
                while (fdmax > listener && !FD_ISSET(fdmax, &all)) {
                    fdmax--;
                }
            }
        }
    }
    fprintf(stderr, "libmodbus-plc: %llu requests on %llu connections\n", requests, connections);
    close(listener);
    modbus_mapping_free(map);
    modbus_free(ctx);
    return 0;
}
