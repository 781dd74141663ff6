#!/usr/bin/env python3
"""Footprint of the shipped binary (issue 5): size, time from exec to READY=1, RSS idle and with
100 client connections (each with one read answered through the gateway).

usage: bench/footprint.py [BINARY] [--runs N]     (default artifacts/linux-x64/edgeshield, 5 runs)
Needs the PLC simulator built (dotnet build simulators/edgeshield-sim -c Release). Loopback only.
Prints the rows of bench/RESULTS.md section 7 as they stand there (sizes of both binaries and both
.debs from artifacts/, as firmware-config/package.sh leaves them; "not built" for a missing one), so
that a figure that drifts shows up by running it.
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
    def size_of(path):
        if not os.path.exists(path):
            return None
        return os.path.getsize(path)

    def binary_cell(path):
        size = size_of(path)
        return "not built" if size is None else f"**{size:,} B ({size / 1048576:.2f} MiB)**"

    def glibc_floor(path):
        if not os.path.exists(path):
            return None
        for tool in ("objdump", "llvm-objdump"):
            try:
                out = subprocess.run([tool, "-T", path], capture_output=True, text=True).stdout
            except FileNotFoundError:
                continue
            versions = sorted({tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_([0-9.]+)", out)})
            if versions:
                return ".".join(map(str, versions[-1]))
        return None

    def runs_cell(values, unit, scale=1.0):
        return f"**{statistics.median(values) / scale:.1f} {unit}** (runs {', '.join(f'{v / scale:.1f}' for v in values)})"

    version = re.search(r"<Version>(.*)</Version>", open(os.path.join(root, "Directory.Build.props")).read()).group(1)
    x64 = os.path.join(root, "artifacts", "linux-x64", "edgeshield")
    arm64 = os.path.join(root, "artifacts", "linux-arm64", "edgeshield")
    debs = [size_of(os.path.join(root, "artifacts", f"edgeshield_{version}_{arch}.deb")) for arch in ("amd64", "arm64")]
    floors = {name: glibc_floor(path) for name, path in (("x64", x64), ("arm64", arm64))}
    floor_cell = " / ".join(f"{name} {floor or 'not built'}" for name, floor in floors.items())
    if os.path.abspath(binary) != os.path.abspath(x64):
        print(f"(timings and RSS of {binary})")
    print(f"| linux-x64 binary (`artifacts/linux-x64/edgeshield`, stripped, everything in it) | ≤ 12 MB | {binary_cell(x64)} |")
    print(f"| linux-arm64 binary (`artifacts/linux-arm64/edgeshield`) | ≤ 12 MB | {binary_cell(arm64)} |")
    print(f"| `.deb` amd64 / arm64 (xz) | – | {' / '.join('not built' if d is None else f'{d:,} B' for d in debs)} |")
    print(f"| exec → `READY=1` on NOTIFY_SOCKET (config load, policy compile, bind; median of {runs}) | ≤ 50 ms | {runs_cell(ready_ms, 'ms')} |")
    print(f"| RSS idle, 2 s after READY | ≤ 25 MB | {runs_cell(idle, 'MiB', 1024)} |")
    print(f"| RSS with 100 client connections (one read answered on each) | ≤ 25 MB | {runs_cell(loaded, 'MiB', 1024)} |")
    print(f"| glibc floor (highest `GLIBC_x.y` imported) | – | **{floor_cell}** |")
finally:
    plc.terminate()
    plc.wait()
