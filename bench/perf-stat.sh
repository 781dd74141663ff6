#!/usr/bin/env bash
# CPU time, context switches and socket syscalls of HAProxy and of the EdgeShield gateway per
# proxied request, under the same HMI load (default 64 connections), measured with `perf stat -p`
# over one whole run of the load (SECS, default 6 s). Loopback only; bounded (~60 s); cleans up.
#   bench/perf-stat.sh                                   # Native AOT gateway, its defaults
#   GW_ENV=DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0 bench/perf-stat.sh
#   GW="dotnet edge/EdgeShield.Host/bin/Release/net10.0/edgeshield.dll" CONNS=8 bench/perf-stat.sh
#   LOAD=libmodbus bench/perf-stat.sh                    # bench/libmodbus-load against bench/libmodbus-plc
#   LOAD=iec104 CONNS=8 bench/perf-stat.sh               # bench/iec104-load (set-points) against lib60870's station
# LOAD=sim|libmodbus|iec104 and PLC=sim|libmodbus|iec104 as in bench/e2e.sh (PLC follows LOAD unless
# given; iec104 goes with iec104 only: the gateway gets bench/e2e.sh's iec104 listener). Ports default to
# 26020-26022; PLC_PORT, HAPROXY_PORT and GW_PORT override them.
# Besides the raw `perf stat` lines it prints, per target, one line per process (proxy, PLC, load)
# with counts per request, requests being those the load generator counted (its JSON line), and the
# machine's TCP segments per request (nstat: OutSegs, delayed and pure ACKs): the
# counters cover the whole run, so the figures are exact up to the connects. Counts are not timing:
# they hold on a busy machine; task-clock per request less so.
# Build first (bench/e2e.sh does).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIM="dotnet $ROOT/simulators/edgeshield-sim/bin/Release/net10.0/edgeshield-sim.dll"
GW=${GW:-$ROOT/edge/EdgeShield.Host/bin/Release/net10.0/linux-x64/publish/edgeshield}
CONNS=${CONNS:-64}
LOAD=${LOAD:-sim}
PLC=${PLC:-$LOAD}
TARGETS=${TARGETS:-"direct haproxy edgeshield"}
PLC_PORT=${PLC_PORT:-26020} HAPROXY_PORT=${HAPROXY_PORT:-26021} GW_PORT=${GW_PORT:-26022}
LMB=$ROOT/artifacts/bench
if [[ ($LOAD == iec104 && $PLC != iec104) || ($LOAD != iec104 && $PLC == iec104) ]]; then echo "perf-stat: LOAD=iec104 goes with PLC=iec104" >&2; exit 2; fi
[[ $LOAD == libmodbus || $PLC == libmodbus ]] && "$ROOT/bench/libmodbus-build.sh" "$LMB"
[[ $LOAD == iec104 ]] && "$ROOT/bench/iec104-build.sh" "$LMB"
W=$(mktemp -d /tmp/edgeshield-perf.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$W"' EXIT INT TERM
if [[ $PLC == libmodbus ]]; then
  "$LMB/libmodbus-plc" 127.0.0.1 $PLC_PORT 2>/dev/null & PLC_PID=$!
elif [[ $PLC == iec104 ]]; then
  "$LMB/iec104-station" --listen 127.0.0.1:$PLC_PORT --ca 1 --redundancy-groups --max-connections 256 --quiet >/dev/null 2>&1 & PLC_PID=$!
else
  $SIM plc --listen 127.0.0.1:$PLC_PORT >/dev/null 2>&1 & PLC_PID=$!
fi
PIDS+=($PLC_PID)
sed -n '/^gateway_config()/,/^}/p; /^iec104_gateway_config()/,/^}/p' "$ROOT/bench/e2e.sh" >"$W/f.sh"
bash -c "source $W/f.sh; HOST=127.0.0.1; PLC_PORT=$PLC_PORT; LOAD=$LOAD; gateway_config $GW_PORT" >"$W/gw.yaml"
env ${GW_ENV:-} $GW run --config "$W/gw.yaml" >/dev/null 2>"$W/gw.log" & GW_PID=$!; PIDS+=($GW_PID)
printf 'global\n  maxconn 4096\n  nbthread 2\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\nfrontend fe\n  bind 127.0.0.1:%s\n  default_backend be\nbackend be\n  server plc 127.0.0.1:%s\n' $HAPROXY_PORT $PLC_PORT >"$W/h.cfg"
/usr/sbin/haproxy -f "$W/h.cfg" -db >/dev/null 2>&1 & HA_PID=$!; PIDS+=($HA_PID)
sleep 2
SECS=${SECS:-6}
load() { # port seconds
  if [[ $LOAD == libmodbus ]]; then "$LMB/libmodbus-load" 127.0.0.1 $1 $CONNS $2
  elif [[ $LOAD == iec104 ]]; then timeout $(( $2 + 20 )) "$LMB/iec104-load" 127.0.0.1 $1 $CONNS $2 setpoint 2>/dev/null; else $SIM hmi --target 127.0.0.1:$1 --conns $CONNS --seconds $2 --json; fi
}
EVENTS=task-clock,context-switches,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_pselect6,syscalls:sys_enter_select
stat() { # pid file: counts until SIGINT (at most 60 s)
  timeout -s INT 60 perf stat -x, -e $EVENTS -p $1 2>"$2" >/dev/null
}
sched() { # pid -> "run_ns wait_ns involuntary_switches" summed over its threads (/proc schedstat, status)
  local run=0 wait=0 inv=0 a b c
  for task in /proc/$1/task/*; do
    read -r a b c <"$task/schedstat" 2>/dev/null || continue
    run=$((run + a)); wait=$((wait + b))
    inv=$((inv + $(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "$task/status" 2>/dev/null || echo 0)))
  done
  echo "$run $wait $inv"
  for task in /proc/$1/task/*; do # then per thread: name, run_ns, wait_ns
    read -r a b c <"$task/schedstat" 2>/dev/null && echo "$(tr ' ' _ <"$task/comm") $a $b"
  done
}
for t in $TARGETS; do
  case $t in direct) port=$PLC_PORT pid= ;; haproxy) port=$HAPROXY_PORT pid=$HA_PID ;; edgeshield) port=$GW_PORT pid=$GW_PID ;; esac
  echo "== $t ($LOAD load, $PLC PLC, $CONNS connections)"
  load $port 2 >/dev/null || true
  STATS=()
  if [[ -n $pid ]]; then stat $pid "$W/proxy.csv" & STATS+=($!); fi
  stat $PLC_PID "$W/plc.csv" & STATS+=($!)
  sleep 0.5
  [[ -n $pid ]] && sched $pid >"$W/proxy.sched0"
  sched $PLC_PID >"$W/plc.sched0"
  NSTAT_HISTORY=$W/nstat.hist nstat -n
  if [[ $LOAD == libmodbus ]]; then
    perf stat -x, -e $EVENTS -o "$W/client.csv" -- "$LMB/libmodbus-load" 127.0.0.1 $port $CONNS $SECS >"$W/load.out" || true
  elif [[ $LOAD == iec104 ]]; then
    timeout $(( SECS + 20 )) perf stat -x, -e $EVENTS -o "$W/client.csv" -- "$LMB/iec104-load" 127.0.0.1 $port $CONNS $SECS setpoint >"$W/load.out" 2>/dev/null || true
  else
    load $port $SECS >"$W/load.out" || true
  fi
  NSTAT_HISTORY=$W/nstat.hist nstat -z TcpOutSegs TcpExtDelayedACKs TcpExtTCPPureAcks TcpExtTCPHPAcks >"$W/nstat.out"
  [[ -n $pid ]] && sched $pid >"$W/proxy.sched1"
  sched $PLC_PID >"$W/plc.sched1"
  for p in "${STATS[@]}"; do pkill -INT -P $p 2>/dev/null || true; done
  wait "${STATS[@]}" || true
  cat "$W/load.out"
  python3 - "$W" "$t" <<'PY'
import csv, os, sys
w, target = sys.argv[1], sys.argv[2]
def read(name):
    p = os.path.join(w, name + ".csv")
    if not os.path.exists(p): return None
    out = {}
    for row in csv.reader(l for l in open(p) if l.strip() and not l.startswith("#")):
        try: out[row[2].replace("syscalls:sys_enter_", "")] = float(row[0])
        except (ValueError, IndexError): pass
    return out
import json
req = json.loads(open(os.path.join(w, "load.out")).read().strip().splitlines()[-1])["requests"]
print(f"requests {req} (the load generator's count; counters cover its whole run)")
for name in ("proxy", "plc", "client"):
    c = read(name)
    if c is None or req == 0: continue
    per = " ".join(f"{k} {v/req:.2f}" for k, v in c.items() if k != "task-clock")
    s0, s1 = os.path.join(w, name + ".sched0"), os.path.join(w, name + ".sched1")
    if os.path.exists(s0) and os.path.exists(s1):
        l0, l1 = open(s0).read().splitlines(), open(s1).read().splitlines()
        a = [int(x) for x in l0[0].split()]; b = [int(x) for x in l1[0].split()]
        per += f" | run-queue wait {(b[1]-a[1])/1000/req:.1f} us, involuntary switches {(b[2]-a[2])/req:.3f}"
        run, wait = {}, {}
        for sign, lines in ((-1, l0[1:]), (1, l1[1:])):
            for l in lines:
                k, r, v = l.rsplit(" ", 2)
                run[k] = run.get(k, 0) + sign * int(r); wait[k] = wait.get(k, 0) + sign * int(v)
        top = sorted(wait.items(), key=lambda kv: -kv[1])[:3]
        per += " (" + ", ".join(f"{k} {v/1000/req:.1f}" for k, v in top if v > 0) + ")"
        # CPU per request by thread name (threads that began or ended during the run count from what was seen).
        top = sorted(run.items(), key=lambda kv: -kv[1])[:4]
        per += " | cpu by thread: " + ", ".join(f"{k} {v/1000/req:.1f}" for k, v in top if v > 0)
    print(f"  {name:6} per request: cpu {c.get('task-clock', 0)*1000/req:.1f} us, {per}")
# TCP segments on the whole machine (loopback: every segment is sent once and received once) over the load's run.
seg = {}
for line in open(os.path.join(w, "nstat.out")):
    f = line.split()
    if len(f) >= 2 and f[0][0].isalpha() and f[1].isdigit(): seg[f[0]] = int(f[1])
if req:
    print("  tcp    per request: " + " ".join(f"{k.replace('TcpExt', '').replace('Tcp', '')} {v/req:.2f}" for k, v in seg.items()))
PY
  rm -f "$W"/*.csv "$W"/*.sched?
done
