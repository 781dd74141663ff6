/*
 * A libmodbus client on libmodbus's default response timeout (0.5 s), and a tiny PLC that leaves
 * some requests unanswered or answers them late: issue 10 item 5. Through the gateway, a client
 * whose timeout is shorter than the gateway's must see exactly what it sees direct.
 *
 *   short-timeout-client server PORT silent|late   a process per connection; FC 3 only; holding
 *                                                  register a holds (a * 7 + 3) & 0xFFFF; a read
 *                                                  starting at 30, 80, 130 or 180 is never answered
 *                                                  (silent) or answered after 800 ms (late)
 *   short-timeout-client client HOST PORT          20 reads of 2 registers at 0, 10, ... 190; one
 *                                                  line per read (ok, timeout, or what was wrong),
 *                                                  then "right N"; stays connected 1.5 s more
 *
 * Built by EdgeShield.Integration.Tests (ShortTimeoutClientTests) against artifacts/peers/libmodbus
 * (tests/peers/build-libmodbus.sh): cc -O2 -I…/include/modbus short-timeout-client.c …/lib/libmodbus.a
 */
#include <arpa/inet.h>
#include <errno.h>
#include <modbus.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READS 20

static int value_at(int address) { return (address * 7 + 3) & 0xFFFF; }

static int unanswered(int address) { return address % 50 == 30; }

static int read_all(int fd, unsigned char *buf, int n)
{
    int got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0)
            return -1;
        got += (int)r;
    }
    return 0;
}

static int serve(int port, int late)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 4) != 0) {
        perror("bind");
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        /* One process per connection, as a PLC serves each client on its own. */
        pid_t child = fork();
        if (child != 0) {
            close(fd);
            while (waitpid(-1, NULL, WNOHANG) > 0) {
            }
            continue;
        }
        close(ls);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        unsigned char req[260], rsp[260];
        while (read_all(fd, req, 7) == 0) {
            int len = (req[4] << 8) | req[5];
            if (len < 2 || len > 254 || read_all(fd, req + 7, len - 1) != 0)
                break;
            int address = (req[8] << 8) | req[9];
            int count = (req[10] << 8) | req[11];
            if (req[7] != 3 || count < 1 || count > 125)
                break;
            if (unanswered(address)) {
                if (!late)
                    continue;
                struct timespec wait = {0, 800 * 1000 * 1000};
                nanosleep(&wait, NULL);
            }
            memcpy(rsp, req, 4);
            rsp[4] = 0;
            rsp[5] = (unsigned char)(3 + 2 * count);
            rsp[6] = req[6];
            rsp[7] = 3;
            rsp[8] = (unsigned char)(2 * count);
            for (int i = 0; i < count; i++) {
                int v = value_at(address + i);
                rsp[9 + 2 * i] = (unsigned char)(v >> 8);
                rsp[10 + 2 * i] = (unsigned char)v;
            }
            if (write(fd, rsp, 9 + 2 * count) < 0)
                break;
        }
        close(fd);
        _exit(0);
    }
}

static int client(const char *host, int port)
{
    modbus_t *ctx = modbus_new_tcp(host, port);
    if (ctx == NULL || modbus_set_slave(ctx, 1) != 0) {
        fprintf(stderr, "modbus_new_tcp failed\n");
        return 2;
    }
    modbus_set_response_timeout(ctx, 0, 500000); /* libmodbus's default, said aloud */
    if (modbus_connect(ctx) != 0) {
        fprintf(stderr, "connect: %s\n", modbus_strerror(errno));
        return 2;
    }
    int right = 0;
    for (int i = 0; i < READS; i++) {
        int address = i * 10;
        uint16_t regs[2];
        int rc = modbus_read_registers(ctx, address, 2, regs);
        if (rc == 2 && regs[0] == value_at(address) && regs[1] == value_at(address + 1)) {
            printf("read %d: ok\n", address);
            right++;
        } else if (rc == 2) {
            printf("read %d: wrong values %u %u\n", address, regs[0], regs[1]);
        } else if (errno == ETIMEDOUT) {
            printf("read %d: timeout\n", address);
        } else {
            printf("read %d: error %s\n", address, modbus_strerror(errno));
        }
    }
    printf("right %d\n", right);
    /* Stay connected past a gateway's 1 s response timeout, so what it does with the last unanswered read shows. */
    struct timespec linger = {1, 500 * 1000 * 1000};
    nanosleep(&linger, NULL);
    modbus_close(ctx);
    modbus_free(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[1], "server") == 0)
        return serve(atoi(argv[2]), strcmp(argv[3], "late") == 0);
    if (argc == 4 && strcmp(argv[1], "client") == 0)
        return client(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: %s server PORT silent|late | client HOST PORT\n", argv[0]);
    return 2;
}
