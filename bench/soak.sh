#!/usr/bin/env bash
# Soak (issue 7, item 3): CONNS concurrent HMI connections through the gateway to the PLC simulator
# for MINUTES, sampling the gateway's RSS and open descriptors (/proc/PID) and the HMI's p99 per
# interval. Prints the per-interval table, the RSS slope (least squares over the samples after the
# warm-up), the descriptor growth, and fails (exit 1) when a bound is exceeded or the HMI saw errors.
#
#   bench/soak.sh [minutes] [conns]                 # default: 10 minutes, 1000 connections, AOT gateway
#   GATEWAY=jit bench/soak.sh 10 1000               # the Release build under `dotnet` instead
#   SOAK_SECONDS=60 INTERVAL=10 bench/soak.sh 1     # the CI version (tests/…/SoakTests.cs runs this)
#
# Environment (defaults for a full run; a run under 5 minutes scales WARMUP, INTERVAL and SAMPLE down):
#   SOAK_SECONDS        run time in seconds (overrides minutes)
#   INTERVAL=60         seconds per p99 interval        SAMPLE=5         seconds between RSS/fd samples
#   WARMUP=120          seconds left out of the slope and the fd baseline (JIT tiers, pools, GC heap sizing)
#   MAX_SLOPE_MB_MIN=1  bound on the RSS slope after warm-up, MB per minute
#   MAX_FD_GROWTH=8     bound on open descriptors at the end minus at the end of warm-up
#   GATEWAY=aot|jit     the Native AOT binary (published here unless NOBUILD=1) or the Release edgeshield.dll
#   GW_CMD="…"          run this gateway command instead (e.g. "dotnet /path/edgeshield.dll"); SIM_DLL=… likewise
#   NOBUILD=1           skip the builds
# Loopback only; every port is chosen by the system (port 0) and read back, so runs do not collide.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MINUTES=${1:-10}
CONNS=${2:-1000}
DURATION=${SOAK_SECONDS:-$((MINUTES * 60))}
if (( DURATION < 300 )); then
  INTERVAL=${INTERVAL:-10}; SAMPLE=${SAMPLE:-2}; WARMUP=${WARMUP:-$((DURATION / 3))}
  MAX_SLOPE_MB_MIN=${MAX_SLOPE_MB_MIN:-16}
else
  INTERVAL=${INTERVAL:-60}; SAMPLE=${SAMPLE:-5}; WARMUP=${WARMUP:-120}
  MAX_SLOPE_MB_MIN=${MAX_SLOPE_MB_MIN:-1}
fi
MAX_FD_GROWTH=${MAX_FD_GROWTH:-8}
GATEWAY=${GATEWAY:-aot}
if (( DURATION > 7200 )); then echo "soak: at most 2 hours" >&2; exit 2; fi
if (( CONNS > 8000 )); then echo "soak: at most 8000 connections" >&2; exit 2; fi

source "$ROOT/bench/gateway-build.sh" soak
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d /tmp/edgeshield-soak.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

wait_for() { # file, regex: bounded wait (30 s) for a line; prints the first match
  for _ in $(seq 1 300); do
    if grep -qE "$2" "$1" 2>/dev/null; then grep -oE "$2" "$1" | head -1; return 0; fi
    sleep 0.1
  done
  echo "soak: no '$2' in $1:" >&2; cat "$1" >&2; exit 1
}

dotnet "$SIM_DLL" plc --listen 127.0.0.1:0 >"$WORK/plc.log" 2>&1 &
PIDS+=($!)
PLC=$(wait_for "$WORK/plc.log" 'listening on 127\.0\.0\.1:[0-9]+' | sed 's/listening on //')

cat >"$WORK/gw.yaml" <<YAML
gateway: { name: soak-gw, site: lab }
listeners:
  - name: soak
    bind: 127.0.0.1:0
    upstream: tcp://$PLC
    policy: plc1
    # A loaded machine must slow the HMI down, not turn answers into 0B.
    limits: { connections-per-source: $((CONNS + 64)), max-connections: $((CONNS + 64)), response-timeout: 10s }
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
# shellcheck disable=SC2086 # GW_CMD may be "dotnet path.dll"
$GW_CMD run --config "$WORK/gw.yaml" >"$WORK/audit.jsonl" 2>"$WORK/gw.log" &
GW_PID=$!
PIDS+=($GW_PID)
GW=$(wait_for "$WORK/gw.log" 'listener soak on 127\.0\.0\.1:[0-9]+' | sed 's/listener soak on //')

echo "soak: $CONNS connections for ${DURATION}s through $GW_CMD (pid $GW_PID) to the PLC at $PLC;" \
     "interval ${INTERVAL}s, samples every ${SAMPLE}s, warm-up ${WARMUP}s" >&2
timeout $((DURATION + 120)) dotnet "$SIM_DLL" hmi --target "$GW" --conns "$CONNS" --seconds "$DURATION" \
  --interval "$INTERVAL" --timeout-ms 30000 --json >"$WORK/hmi.jsonl" 2>"$WORK/hmi.err" &
HMI_PID=$!
PIDS+=($HMI_PID)

start=$EPOCHREALTIME
printf 't_s\trss_kb\tfds\n' >"$WORK/samples.tsv"
while kill -0 "$HMI_PID" 2>/dev/null; do
  if [[ -r /proc/$GW_PID/status ]]; then
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$GW_PID/status")
    fds=$(find "/proc/$GW_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    printf '%s\t%s\t%s\n' "$(awk "BEGIN { print $EPOCHREALTIME - $start }")" "$rss" "$fds" >>"$WORK/samples.tsv"
  else
    echo "soak: the gateway died" >&2; cat "$WORK/gw.log" >&2; exit 1
  fi
  sleep "$SAMPLE"
done
hmi_status=0; wait "$HMI_PID" || hmi_status=$?
peak=$(awk '/^VmHWM:/ {print $2}' "/proc/$GW_PID/status")

status=0
python3 - "$WORK/samples.tsv" "$WORK/hmi.jsonl" "$WARMUP" "$INTERVAL" "$MAX_SLOPE_MB_MIN" "$MAX_FD_GROWTH" "$peak" "$CONNS" <<'PY' || status=$?
import csv, json, sys
samples_path, hmi_path = sys.argv[1], sys.argv[2]
warmup, interval, max_slope, max_fd = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
peak_kb, conns = int(sys.argv[7]), int(sys.argv[8])
samples = [(float(r["t_s"]), int(r["rss_kb"]), int(r["fds"])) for r in csv.DictReader(open(samples_path), delimiter="\t")]
lines = [json.loads(l) for l in open(hmi_path) if l.strip()]
intervals = [l for l in lines if "interval" in l]
summary = next((l for l in lines if "requests" in l), None)
if summary is None:
    print("soak: the HMI printed no summary"); sys.exit(1)

print("| interval | start s | answered/s | errors | p50 µs | p99 µs | max µs | RSS MB (end) | fds (end) |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for i in intervals:
    end = i["start_s"] + i["seconds"]
    at = [s for s in samples if s[0] <= end] or samples[:1]
    rss, fds = at[-1][1], at[-1][2]
    rate = i["answered"] / i["seconds"] if i["seconds"] else 0
    print(f'| {i["interval"]} | {i["start_s"]:.0f} | {rate:,.0f} | {i["errors"]} | {i["p50_us"]} | {i["p99_us"]} | {i["max_us"]} | {rss/1024:.1f} | {fds} |')

after = [s for s in samples if s[0] >= warmup]
if len(after) < 3:
    print(f"soak: only {len(after)} samples after the warm-up; run longer"); sys.exit(1)
n = len(after)
mt = sum(s[0] for s in after) / n / 60
mr = sum(s[1] for s in after) / n / 1024
sxx = sum((s[0] / 60 - mt) ** 2 for s in after)
slope = sum((s[0] / 60 - mt) * (s[1] / 1024 - mr) for s in after) / sxx  # MB per minute
fd_growth = after[-1][2] - after[0][2]
p99s = [i["p99_us"] for i in intervals if i["seconds"] >= interval / 2 and i["start_s"] >= warmup]
print()
print(f'connections {conns}; requests {summary["requests"]:,} answered {summary["ok"] + summary["exceptions"]:,} '
      f'({summary["requests_per_second"]:,.0f}/s) errors {summary["errors"]} exceptions {summary["exceptions"]}; '
      f'p99 overall {summary["p99_us"]} µs')
print(f"RSS after warm-up: {after[0][1]/1024:.1f} -> {after[-1][1]/1024:.1f} MB, slope {slope:+.3f} MB/min over {n} samples "
      f"(bound {max_slope} MB/min); peak RSS {peak_kb/1024:.1f} MB")
print(f"open fds after warm-up: {after[0][2]} -> {after[-1][2]} (growth {fd_growth:+d}, bound {max_fd}); "
      f"min {min(s[2] for s in after)} max {max(s[2] for s in after)}")
if p99s:
    print(f"p99 per interval after warm-up: min {min(p99s)} µs, max {max(p99s)} µs, max/min {max(p99s)/max(1,min(p99s)):.2f}")
failed = []
if slope > max_slope: failed.append(f"RSS slope {slope:.3f} MB/min > {max_slope}")
if fd_growth > max_fd: failed.append(f"fd growth {fd_growth} > {max_fd}")
if summary["errors"] or summary["exceptions"]: failed.append(f'HMI errors {summary["errors"]} exceptions {summary["exceptions"]}')
print("soak: " + ("FAILED: " + "; ".join(failed) if failed else "passed"))
sys.exit(1 if failed else 0)
PY
if (( hmi_status != 0 && status == 0 )); then echo "soak: the HMI exited with $hmi_status" >&2; cat "$WORK/hmi.err" >&2; exit 1; fi
exit $status
