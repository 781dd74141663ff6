#!/usr/bin/env bash
# CPU time, context switches and socket syscalls of HAProxy and of the EdgeShield gateway per
# proxied request, under the same HMI load (default 64 connections), measured with `perf stat -p`
# over 4 s of an 8 s run. Loopback only; bounded (~30 s); cleans up.
#   bench/perf-stat.sh                                   # Native AOT gateway, its defaults
#   GW_ENV=DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0 bench/perf-stat.sh
#   GW="dotnet edge/EdgeShield.Host/bin/Release/net10.0/edgeshield.dll" CONNS=8 bench/perf-stat.sh
# Build first (bench/e2e.sh does). Divide task-clock by requests (= sendto / 2) for CPU per request.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIM="dotnet $ROOT/simulators/edgeshield-sim/bin/Release/net10.0/edgeshield-sim.dll"
GW=${GW:-$ROOT/edge/EdgeShield.Host/bin/Release/net10.0/linux-x64/publish/edgeshield}
CONNS=${CONNS:-64}
PLC_PORT=26020 HAPROXY_PORT=26021 GW_PORT=26022
W=$(mktemp -d /tmp/edgeshield-perf.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$W"' EXIT INT TERM
$SIM plc --listen 127.0.0.1:$PLC_PORT >/dev/null 2>&1 & PIDS+=($!)
sed -n '/^gateway_config()/,/^}/p' "$ROOT/bench/e2e.sh" >"$W/f.sh"
bash -c "source $W/f.sh; HOST=127.0.0.1; PLC_PORT=$PLC_PORT; gateway_config $GW_PORT" >"$W/gw.yaml"
env ${GW_ENV:-} $GW run --config "$W/gw.yaml" >/dev/null 2>"$W/gw.log" & GW_PID=$!; PIDS+=($GW_PID)
printf 'global\n  maxconn 4096\n  nbthread 2\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\nfrontend fe\n  bind 127.0.0.1:%s\n  default_backend be\nbackend be\n  server plc 127.0.0.1:%s\n' $HAPROXY_PORT $PLC_PORT >"$W/h.cfg"
/usr/sbin/haproxy -f "$W/h.cfg" -db >/dev/null 2>&1 & HA_PID=$!; PIDS+=($HA_PID)
sleep 2
for t in "haproxy $HAPROXY_PORT $HA_PID" "edgeshield $GW_PORT $GW_PID"; do
  set -- $t
  echo "== $1"
  $SIM hmi --target 127.0.0.1:$2 --conns $CONNS --seconds 2 >/dev/null
  $SIM hmi --target 127.0.0.1:$2 --conns $CONNS --seconds 8 | head -1 & LOAD=$!
  sleep 2
  perf stat -e task-clock,context-switches,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_wait -p $3 -- sleep 4 2>&1 \
    | grep -E "task-clock|switches|sys_enter"
  wait $LOAD
done
