#!/usr/bin/env bash
# End-to-end load bench: HMI load against (a) the PLC simulator directly, (b) HAProxy 2.6 in TCP
# mode (nbthread 2) and (c) the EdgeShield gateway with full inspection, interleaved, on loopback.
#
#   bench/e2e.sh                       # 3 rounds x {8,64} conns x {direct,haproxy,edgeshield} x 10 s
#   ROUNDS=3 SECS=10 CONNS="8 64" GATEWAYS="jit jit-tp aot aot-tp" bench/e2e.sh
#
# GATEWAYS: jit = dotnet edgeshield.dll (Release), aot = Native AOT binary (dotnet publish -r linux-x64);
# a -inline / -tp suffix runs it with DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 / 0. Gateways listen on
# GW_PORT, GW_PORT+1, ...
# GW_ENV="VAR=value ..." runs the gateway(s) with extra environment (runtime knobs for experiments).
# LOAD=libmodbus runs bench/libmodbus-load (C, against libmodbus: FC 3/4 reads and FC 6/16 writes, one
# request outstanding per connection) instead of `edgeshield-sim hmi`, and then the PLC is by default
# bench/libmodbus-plc (libmodbus, one select() loop over all connections) instead of `edgeshield-sim plc`;
# PLC=sim|libmodbus chooses the PLC on its own. Both are built by bench/libmodbus-build.sh.
#   LOAD=libmodbus ROUNDS=5 SECS=10 CONNS="8 64" GATEWAYS=aot bench/e2e.sh
# LOAD=snap7 is the S7comm bench: bench/snap7-load (C++, against snap7's client: read-var of one item,
# 20 bytes of DB1, one job outstanding per connection; S7_WRITE_PERCENT of write-var, default 0) against
# bench/snap7-plc (snap7's server), the gateway with an s7comm listener; built by bench/snap7-build.sh.
#   LOAD=snap7 ROUNDS=5 SECS=10 CONNS="8 64" GATEWAYS=aot bench/e2e.sh
# LOAD=iec104 is the IEC 104 bench: bench/iec104-load (C, against lib60870's client: one command outstanding
# per connection, waiting for its activation confirmation; IEC104_MODE setpoint (default), sbo, read or
# interrogation) against lib60870's station in redundancy-groups mode (several active connections), the
# gateway with an iec104 listener (a protocol break: both legs terminated); built by bench/iec104-build.sh.
#   LOAD=iec104 ROUNDS=5 SECS=10 CONNS="8 64" GATEWAYS=aot bench/e2e.sh
# A -journal suffix on a gateway (e.g. GATEWAYS="aot aot-journal") runs it with audit.journal on (a hash-chained,
# signed journal in the work directory, default checkpoints; docs/AUDIT.md): issue 14's journal on vs off.
# HAPROXY_PIN=1 pins HAProxy's two threads one per CPU (`cpu-map auto:1/1-2 0-1`), as the gateway pins its
# epoll threads: to see whether pinning is what separates them under a thread-per-connection client.
# HAPROXY_BUSY=1 turns on HAProxy's `busy-polling` (it never sleeps in epoll_wait), to compare with the gateway's
# adaptive poll before sleeping (RESULTS §13h). It spins even when idle: with SPLIT_CPUS=1 it takes CPU 1 from every
# other target, so measure it alone (GATEWAYS="", no HAPROXY_AA).
# HAPROXY_AA=1 adds a second, identical HAProxy ("haproxy-b", port HAPROXY_B_PORT, default HAPROXY_PORT+50) as a
# target: an A/A comparison whose per-round ratio to the first shows the bench's own noise (RESULTS §13e).
# GATEWAYS="aot aotb" GW_AOT_B=/path/to/other/edgeshield: an interleaved A/B of this tree against another build.
# SPLIT_CPUS=1 gives the proxies and the peers a CPU each, as on a real gateway whose PLC and HMIs are other
# machines: the PLC and the load generator run on CPU 0 (`taskset -c 0`), HAProxy (then nbthread 1) and the
# gateway (then one epoll loop: one per allowed CPU) on CPU 1 (RESULTS §13h). Needs at least two CPUs.
# NOBUILD=1 skips the builds. Prints a table of medians; raw results go to $OUT (default bench/e2e-results.tsv).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
CONNS=${CONNS:-"8 64"}
GATEWAYS=${GATEWAYS:-"jit aot"}
PLC_PORT=${PLC_PORT:-25020}
HAPROXY_PORT=${HAPROXY_PORT:-25021}
GW_PORT=${GW_PORT:-25022}
OUT=${OUT:-$ROOT/bench/e2e-results.tsv}
LOAD=${LOAD:-sim}
case $LOAD in
  sim) PLC=${PLC:-sim} ;; libmodbus) PLC=${PLC:-libmodbus} ;; snap7) PLC=snap7 ;; iec104) PLC=iec104 ;;
  *) echo "e2e: LOAD is sim, libmodbus, snap7 or iec104" >&2; exit 2 ;;
esac
case $PLC in sim|libmodbus|snap7|iec104) ;; *) echo "e2e: PLC is sim, libmodbus, snap7 or iec104" >&2; exit 2 ;; esac
LMB_BIN=$ROOT/artifacts/bench
HOST=127.0.0.1   # loopback only, always
# SPLIT_CPUS=1: peers on CPU 0, proxies on CPU 1 (see the header); otherwise everything shares every CPU.
PEER_CPU=(); PROXY_CPU=(); HAPROXY_THREADS=2
if [[ ${SPLIT_CPUS:-0} == 1 ]]; then
  (( $(nproc) >= 2 )) || { echo "e2e: SPLIT_CPUS=1 needs two CPUs" >&2; exit 2; }
  PEER_CPU=(taskset -c 0); PROXY_CPU=(taskset -c 1); HAPROXY_THREADS=1
fi

SIM_DLL=$ROOT/simulators/edgeshield-sim/bin/Release/net10.0/edgeshield-sim.dll
GW_DLL=$ROOT/edge/EdgeShield.Host/bin/Release/net10.0/edgeshield.dll
GW_AOT=$ROOT/edge/EdgeShield.Host/bin/Release/net10.0/linux-x64/publish/edgeshield

# Bounded: every run is SECS long; refuse budgets above 10 minutes.
HAPROXY_B_PORT=${HAPROXY_B_PORT:-$((HAPROXY_PORT + 50))}
runs=$(( ROUNDS * $(wc -w <<<"$CONNS") * (2 + ${HAPROXY_AA:-0} + $(wc -w <<<"$GATEWAYS")) ))
if (( runs * (SECS + 1) > 600 )); then
  echo "e2e: $runs runs of ${SECS}s exceed the 10 minute budget" >&2; exit 2
fi

if [[ $LOAD == libmodbus || $PLC == libmodbus ]]; then
  "$ROOT/bench/libmodbus-build.sh" "$LMB_BIN"
fi
if [[ $LOAD == snap7 ]]; then
  "$ROOT/bench/snap7-build.sh" "$LMB_BIN"
fi
if [[ $LOAD == iec104 ]]; then
  "$ROOT/bench/iec104-build.sh" "$LMB_BIN"
fi
if [[ -z "${NOBUILD:-}" ]]; then
  dotnet build -c Release -v q -nologo "$ROOT/simulators/edgeshield-sim" >/dev/null
  dotnet build -c Release -v q -nologo "$ROOT/edge/EdgeShield.Host" >/dev/null
  if [[ " $GATEWAYS " == *" aot"* ]]; then
    dotnet publish -c Release -r linux-x64 -v q -nologo "$ROOT/edge/EdgeShield.Host" >/dev/null
  fi
fi

WORK=$(mktemp -d /tmp/edgeshield-e2e.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

wait_port() { # port, name: bounded wait (10 s) until something listens
  for _ in $(seq 1 100); do
    if ss -Hltn "sport = :$1" | grep -q .; then return 0; fi
    sleep 0.1
  done
  echo "e2e: $2 did not listen on $1" >&2; exit 1
}

for port in $PLC_PORT $HAPROXY_PORT; do
  if ss -Hltn "sport = :$port" | grep -q .; then echo "e2e: port $port is in use" >&2; exit 1; fi
done

if [[ $PLC == libmodbus ]]; then
  "${PEER_CPU[@]}" "$LMB_BIN/libmodbus-plc" $HOST $PLC_PORT >"$WORK/plc.log" 2>&1 &
elif [[ $PLC == snap7 ]]; then
  "${PEER_CPU[@]}" "$LMB_BIN/snap7-plc" $HOST $PLC_PORT >"$WORK/plc.log" 2>&1 &
elif [[ $PLC == iec104 ]]; then
  "${PEER_CPU[@]}" "$LMB_BIN/iec104-station" --listen $HOST:$PLC_PORT --ca 1 --redundancy-groups --max-connections 256 --quiet >"$WORK/plc.log" 2>&1 &
else
  "${PEER_CPU[@]}" dotnet "$SIM_DLL" plc --listen $HOST:$PLC_PORT >"$WORK/plc.log" 2>&1 &
fi
PIDS+=($!)
wait_port $PLC_PORT plc

cat >"$WORK/haproxy.cfg" <<CFG
global
  maxconn 4096
  nbthread $HAPROXY_THREADS
${HAPROXY_PIN:+  cpu-map auto:1/1-2 0-1}
${HAPROXY_BUSY:+  busy-polling}
defaults
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
frontend fe
  bind $HOST:$HAPROXY_PORT
  default_backend be
backend be
  server plc $HOST:$PLC_PORT
CFG
"${PROXY_CPU[@]}" /usr/sbin/haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
wait_port $HAPROXY_PORT haproxy
if [[ ${HAPROXY_AA:-0} == 1 ]]; then
  sed "s/bind $HOST:$HAPROXY_PORT/bind $HOST:$HAPROXY_B_PORT/" "$WORK/haproxy.cfg" >"$WORK/haproxy-b.cfg"
  "${PROXY_CPU[@]}" /usr/sbin/haproxy -f "$WORK/haproxy-b.cfg" -db >"$WORK/haproxy-b.log" 2>&1 &
  PIDS+=($!)
  wait_port $HAPROXY_B_PORT haproxy-b
fi

# Allows exactly what `edgeshield-sim hmi` sends (FC 1/3/4 reads in 0-999, FC 6/16 writes to 100-119,
# values 0-1000), so every frame is framed, decoded, judged, forwarded and its response checked.
gateway_config() { # port
  if [[ $LOAD == snap7 ]]; then s7_gateway_config "$1"; return; fi
  if [[ $LOAD == iec104 ]]; then iec104_gateway_config "$1"; return; fi
  cat <<YAML
gateway: { name: bench-gw, site: lab }
listeners:
  - name: bench
    bind: $HOST:$1
    protocol: modbus-tcp
    upstream: tcp://$HOST:$PLC_PORT
    policy: plc1
    limits: { connections-per-source: 1024 }
policies:
  plc1:
    mode: enforce
    rules:
      - name: hmi reads
        unit: 1
        function: [read-coils, read-holding-registers, read-input-registers]
        address: 0-999
      - name: setpoints
        unit: 1
        function: [write-single-register, write-multiple-registers]
        address: 100-119
        value: 0-1500
YAML
}

# Allows exactly what bench/snap7-load sends (an OP connection; read-var of DB1 0-1023, write-var to DB1
# 100-119), so every job is framed, reassembled, judged item by item, forwarded and its answer checked.
s7_gateway_config() { # port
  cat <<YAML
gateway: { name: bench-gw, site: lab }
listeners:
  - name: bench
    bind: $HOST:$1
    protocol: s7comm
    upstream: tcp://$HOST:$PLC_PORT
    policy: plc1
    limits: { connections-per-source: 1024 }
policies:
  plc1:
    protocol: s7comm
    mode: enforce
    rules:
      - name: hmi reads
        connection: op
        function: [setup-communication, read-var]
        area: db
        db: 1
        address: 0-1023
      - name: setpoints
        connection: op
        function: write-var
        area: db
        db: 1
        address: 100-119
YAML
}

# Allows exactly what bench/iec104-load sends (float set-points to CA 1, IOA 3000-3009, 0-150; single
# commands to 2000-2099 with select-before-operate; reads; interrogation), so every ASDU is judged.
iec104_gateway_config() { # port
  cat <<YAML
gateway: { name: bench-gw, site: lab }
listeners:
  - name: bench
    bind: $HOST:$1
    protocol: iec104
    upstream: tcp://$HOST:$PLC_PORT
    policy: rtu1
    limits: { connections-per-source: 1024 }
policies:
  rtu1:
    protocol: iec104
    mode: enforce
    rules:
      - name: scada monitoring
        type: [C_IC_NA_1, C_RD_NA_1]
        ca: 1
      - name: set-points
        type: C_SE_NC_1
        ca: 1
        ioa: 3000-3009
        value: 0-150.0
      - name: breakers
        type: C_SC_NA_1
        ca: 1
        ioa: 2000-2099
        select-before-operate: true
YAML
}

TARGETS="direct:$PLC_PORT haproxy:$HAPROXY_PORT"
[[ ${HAPROXY_AA:-0} == 1 ]] && TARGETS+=" haproxy-b:$HAPROXY_B_PORT"
port=$GW_PORT
for gw in $GATEWAYS; do
  # *-inline / *-tp: socket continuations run on the epoll threads / hop to the thread pool
  # (DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 / 0; read once at start-up, environment only).
  # Without a suffix the gateway's own default applies (inline since EdgeGateway.PreferInlineSocketCompletions).
  extra=""
  [[ $gw == *-inline ]] && extra="DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1"
  [[ $gw == *-tp ]] && extra="DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0"
  # *-pinned / *-unpinned: the epoll loops pinned one per CPU (the default) / left to the scheduler
  # (EDGESHIELD_EPOLL_PIN=1 / 0; RESULTS §13d).
  [[ $gw == *-pinned ]] && extra="EDGESHIELD_EPOLL_PIN=1"
  [[ $gw == *-unpinned ]] && extra="EDGESHIELD_EPOLL_PIN=0"
  # *-oneloop: one epoll loop instead of one per CPU (EDGESHIELD_EPOLL_LOOPS=1; RESULTS §13g).
  [[ $gw == *-oneloop ]] && extra="EDGESHIELD_EPOLL_LOOPS=1"
  # *-nopoll: the epoll loops sleep as soon as they are idle, never polling first (EDGESHIELD_EPOLL_POLL_US=0;
  # RESULTS §13h).
  [[ $gw == *-nopoll ]] && extra="EDGESHIELD_EPOLL_POLL_US=0"
  journal=""
  [[ $gw == *-journal ]] && journal=1
  base=${gw%-journal}
  base=${base%-unpinned}
  base=${base%-oneloop}
  base=${base%-nopoll}
  base=${base%-pinned}
  base=${base%-inline}
  case ${base%-tp} in
    jit) cmd=(dotnet "$GW_DLL") ;;
    aot) cmd=("$GW_AOT") ;;
    # A second Native AOT binary (another commit's, published elsewhere) for an interleaved A/B of a change.
    aotb) cmd=("${GW_AOT_B:?aotb: set GW_AOT_B to a second edgeshield binary}") ;;
    *) echo "e2e: unknown gateway '$gw' (jit, aot, aotb, with -inline, -tp, -pinned, -unpinned, -oneloop or -nopoll)" >&2; exit 2 ;;
  esac
  if ss -Hltn "sport = :$port" | grep -q .; then echo "e2e: port $port is in use" >&2; exit 1; fi
  gateway_config $port >"$WORK/gw-$gw.yaml"
  if [[ -n $journal ]]; then
    printf 'audit:\n  journal: { path: %s }\n  key: %s\n' "$WORK/journal-$gw" "$WORK/key-$gw.pem" >>"$WORK/gw-$gw.yaml"
  fi
  "${PROXY_CPU[@]}" env $extra ${GW_ENV:-} "${cmd[@]}" run --config "$WORK/gw-$gw.yaml" --state "$WORK/state-$gw" >/dev/null 2>"$WORK/gw-$gw.log" &
  PIDS+=($!); wait_port $port "edgeshield-$gw"
  TARGETS+=" edgeshield-$gw:$port"
  port=$((port + 1))
done

hmi() { # port conns seconds -> one JSON line
  if [[ $LOAD == libmodbus ]]; then
    "${PEER_CPU[@]}" timeout $(( $3 + 20 )) "$LMB_BIN/libmodbus-load" $HOST $1 $2 $3 || true
  elif [[ $LOAD == snap7 ]]; then
    "${PEER_CPU[@]}" timeout $(( $3 + 20 )) "$LMB_BIN/snap7-load" $HOST $1 $2 $3 "${S7_WRITE_PERCENT:-0}" || true
  elif [[ $LOAD == iec104 ]]; then
    "${PEER_CPU[@]}" timeout $(( $3 + 20 )) "$LMB_BIN/iec104-load" $HOST $1 $2 $3 "${IEC104_MODE:-setpoint}" || true
  else
    "${PEER_CPU[@]}" timeout $(( $3 + 20 )) dotnet "$SIM_DLL" hmi --target $HOST:$1 --conns $2 --seconds $3 --json || true
  fi
}

# Warm-up: JIT tiers, connection pools, page cache.
for t in $TARGETS; do hmi "${t#*:}" 8 2 >/dev/null; done

echo "e2e: load $LOAD, plc $PLC, cpus $([[ ${SPLIT_CPUS:-0} == 1 ]] && echo "split (peers 0, proxies 1)" || echo shared), haproxy $([[ -n ${HAPROXY_PIN:-} ]] && echo pinned || echo unpinned)$([[ -n ${HAPROXY_BUSY:-} ]] && echo ", busy-polling"), $ROUNDS rounds x ${SECS}s, conns $CONNS, $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo -e "round\tconns\ttarget\trps\tp50_us\tp90_us\tp99_us\terrors\texceptions" >"$OUT"
for round in $(seq 1 "$ROUNDS"); do
  # Every other round runs the targets in reverse order, so that none always follows the same neighbour.
  order=$TARGETS
  (( round % 2 == 0 )) && order=$(tr ' ' '\n' <<<"$TARGETS" | tac | tr '\n' ' ')
  for conns in $CONNS; do
    for t in $order; do
      name=${t%%:*}; port=${t#*:}
      line=$(hmi "$port" "$conns" "$SECS")
      jq -r --arg r "$round" --arg c "$conns" --arg n "$name" \
        '[$r, $c, $n, .requests_per_second, .p50_us, (.p90_us // ""), .p99_us, .errors, .exceptions] | @tsv' <<<"$line" >>"$OUT"
      tail -1 "$OUT" >&2
    done
  done
done

echo "load $LOAD, plc $PLC, cpus $([[ ${SPLIT_CPUS:-0} == 1 ]] && echo split || echo shared), haproxy $([[ -n ${HAPROXY_PIN:-} ]] && echo pinned || echo unpinned)$([[ -n ${HAPROXY_BUSY:-} ]] && echo ", busy-polling"), $ROUNDS rounds x ${SECS}s, load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$ROOT/bench/e2e-summary.py" "$OUT"
