#!/usr/bin/python3
"""Network probes for the namespace tests (DiodeIsolationTests), run with `ip netns exec NS`.

  tcp HOST PORTS TIMEOUT_S   connect to every port; prints one JSON object
                             {"open": [...], "refused": [...], "timeout": [...], "error": {...}}
  udp HOST PORTS TIMEOUT_S   send a datagram to every port, collect answers until the timeout;
                             {"answered": [...], "refused": [...], "silent": [...]}
  decoy TCP_PORTS UDP_PORTS  listen on every port, IPv4 and IPv6 (TCP: accept, write "decoy\n",
                             close; UDP: echo); prints "decoys up" once all are bound

HOST is an IPv4 or an IPv6 address.

PORTS is a comma list of ports and ranges: "1-1024,1883,5020".
Plain sockets and poll(2) only, so it runs on Debian's python3 without packages.
"""
import errno
import json
import resource
import select
import socket
import sys
import threading
import time


def ports(text):
    out = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return sorted(set(out))


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def tcp(host, plist, timeout):
    result = {"open": [], "refused": [], "timeout": [], "error": {}}
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    size = max(100, min(2000, hard - 50))
    for start in range(0, len(plist), size):
        batch = plist[start:start + size]
        pending = {}
        poller = select.poll()
        for port in batch:
            s = socket.socket(family(host), socket.SOCK_STREAM)
            s.setblocking(False)
            code = s.connect_ex((host, port))
            if code in (0, errno.EINPROGRESS):
                pending[s.fileno()] = (s, port)
                poller.register(s.fileno(), select.POLLOUT | select.POLLERR | select.POLLHUP)
            else:
                (result["refused"] if code == errno.ECONNREFUSED else result["error"].setdefault(errno.errorcode.get(code, str(code)), [])).append(port)
                s.close()
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for fd, _ in poller.poll(max(1, int((deadline - time.monotonic()) * 1000))):
                s, port = pending.pop(fd)
                poller.unregister(fd)
                code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code == 0:
                    result["open"].append(port)
                elif code == errno.ECONNREFUSED:
                    result["refused"].append(port)
                else:
                    result["error"].setdefault(errno.errorcode.get(code, str(code)), []).append(port)
                s.close()
        for s, port in pending.values():
            result["timeout"].append(port)
            s.close()
    for key in ("open", "refused", "timeout"):
        result[key].sort()
    return result


def udp(host, plist, timeout):
    result = {"answered": [], "refused": [], "silent": []}
    socks = {}
    poller = select.poll()
    # A Modbus read request as the payload: what a UDP Modbus device would answer.
    payload = bytes([0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1])
    for port in plist:
        s = socket.socket(family(host), socket.SOCK_DGRAM)
        s.setblocking(False)
        s.connect((host, port))
        try:
            s.send(payload)
        except OSError:
            pass
        socks[s.fileno()] = (s, port)
        poller.register(s.fileno(), select.POLLIN | select.POLLERR)
    deadline = time.monotonic() + timeout
    while socks and time.monotonic() < deadline:
        for fd, _ in poller.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            s, port = socks.pop(fd)
            poller.unregister(fd)
            try:
                s.recv(2048)
                result["answered"].append(port)
            except ConnectionRefusedError:
                result["refused"].append(port)
            except OSError:
                result["refused"].append(port)
            s.close()
    for s, port in socks.values():
        result["silent"].append(port)
        s.close()
    for key in result:
        result[key].sort()
    return result


def decoy(tcp_ports, udp_ports):
    def serve_tcp(listener):
        while True:
            conn, _ = listener.accept()
            try:
                conn.sendall(b"decoy\n")
            finally:
                conn.close()

    def serve_udp(sock):
        while True:
            data, peer = sock.recvfrom(2048)
            sock.sendto(data, peer)

    threads = []
    def dual_stack(kind):
        s = socket.socket(socket.AF_INET6, kind)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        return s

    for port in tcp_ports:
        s = dual_stack(socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", port))
        s.listen(64)
        threads.append(threading.Thread(target=serve_tcp, args=(s,), daemon=True))
    for port in udp_ports:
        s = dual_stack(socket.SOCK_DGRAM)
        s.bind(("::", port))
        threads.append(threading.Thread(target=serve_udp, args=(s,), daemon=True))
    for t in threads:
        t.start()
    print("decoys up", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "tcp":
        print(json.dumps(tcp(sys.argv[2], ports(sys.argv[3]), float(sys.argv[4]))))
    elif mode == "udp":
        print(json.dumps(udp(sys.argv[2], ports(sys.argv[3]), float(sys.argv[4]))))
    elif mode == "decoy":
        decoy(ports(sys.argv[2]), ports(sys.argv[3]))
    else:
        sys.exit("unknown mode " + mode)
