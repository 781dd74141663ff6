#!/usr/bin/env python3
"""Footprint of the shipped binary (issue 5): size, time from exec to READY=1, RSS idle and with
100 client connections (each with one read answered through the gateway).

usage: bench/footprint.py [BINARY] [--runs N]     (default artifacts/linux-x64/edgeshield, 5 runs)
Needs the PLC simulator built (dotnet build simulators/edgeshield-sim -c Release). Loopback only.
"""
import os, re, socket, statistics, struct, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
argv = sys.argv[1:]
args = [a for i, a in enumerate(argv) if not a.startswith("--") and (i == 0 or argv[i - 1] != "--runs")]
binary = args[0] if args else os.path.join(root, "artifacts", "linux-x64", "edgeshield")
runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 5
sim = os.path.join(root, "simulators", "edgeshield-sim", "bin", "Release", "net10.0", "edgeshield-sim.dll")

def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

def wait_line(path, pattern, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        with open(path) as f:
            m = re.search(pattern, f.read())
        if m:
            return m
        time.sleep(0.02)
    raise SystemExit(f"timeout waiting for {pattern} in {path}")

work = tempfile.mkdtemp()
plc_out = os.path.join(work, "plc.out")
plc = subprocess.Popen(["dotnet", sim, "plc", "--listen", "127.0.0.1:0"], stdout=open(plc_out, "w"), stderr=subprocess.STDOUT)
try:
    plc_port = int(wait_line(plc_out, r"listening on 127\.0\.0\.1:(\d+)").group(1))
    config = os.path.join(work, "fp.yaml")
    with open(config, "w") as f:
        f.write(f"""gateway: {{ name: footprint, site: bench }}
listeners:
  - {{ name: fp, bind: "127.0.0.1:0", upstream: "tcp://127.0.0.1:{plc_port}", policy: p }}
policies:
  p: {{ mode: enforce, rules: [{{ name: reads, function: read, address: 0-999 }}] }}
""")
    ready_ms, idle, loaded = [], [], []
    for run in range(runs):
        notify_path = os.path.join(work, f"notify{run}.sock")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        notify.settimeout(30)
        err = os.path.join(work, f"gw{run}.err")
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        t0 = time.perf_counter()
        gw = subprocess.Popen([binary, "run", "--config", config], env=env, stdout=subprocess.DEVNULL, stderr=open(err, "w"))
        while b"READY=1" not in notify.recv(4096):
            pass
        ready_ms.append((time.perf_counter() - t0) * 1000)
        port = int(wait_line(err, r"listener fp on 127\.0\.0\.1:(\d+)").group(1))
        time.sleep(2)
        idle.append(rss_kb(gw.pid))
        clients = []
        for i in range(100):
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            c.sendall(struct.pack(">HHHBBHH", i, 0, 6, 1, 3, 0, 10))
            clients.append(c)
        for c in clients:
            got = b""
            while len(got) < 29:
                chunk = c.recv(64)
                if not chunk:
                    raise SystemExit("connection closed")
                got += chunk
        time.sleep(1)
        loaded.append(rss_kb(gw.pid))
        for c in clients:
            c.close()
        gw.terminate()
        gw.wait(timeout=15)
        notify.close()
    size = os.path.getsize(binary)
    print(f"binary: {binary} {size} bytes ({size / 1048576:.2f} MiB)")
    print(f"exec -> READY=1 ms: median {statistics.median(ready_ms):.1f} (runs: {', '.join(f'{v:.1f}' for v in ready_ms)})")
    print(f"RSS idle MiB: median {statistics.median(idle) / 1024:.1f} (runs: {', '.join(f'{v / 1024:.1f}' for v in idle)})")
    print(f"RSS with 100 connections MiB: median {statistics.median(loaded) / 1024:.1f} (runs: {', '.join(f'{v / 1024:.1f}' for v in loaded)})")
finally:
    plc.terminate()
    plc.wait()
