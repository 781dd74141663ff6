#!/usr/bin/env bash
# Attack figures (issue 7, item 2): the whole `edgeshield-sim attack` suite at full scale through the
# gateway in front of the PLC simulator, with HMI traffic beside it, all on this machine's cores.
# Prints: HMI throughput unattacked vs attacked, frames sent per scenario, what reached the PLC
# (refused, malformed, truncated frames: must be 0), audit events written vs suppressed, peak RSS.
#
#   bench/attack.sh                          # AOT gateway, HMI 4 connections, 10 000 half-open, slowloris 20 × 15 s
#   GATEWAY=jit HMI_CONNS=8 QUIET_SECS=20 bench/attack.sh
#
# Environment: GATEWAY=aot|jit (as bench/soak.sh), GW_CMD / SIM_DLL (given builds), NOBUILD=1,
# HMI_CONNS=4, QUIET_SECS=20 (the unattacked HMI run), HALF_OPEN=10000, SOURCES=40 (attacker addresses
# 127.0.1.1.., each under connections-per-source 256), ATTACK_ARGS (more `attack` options),
# GW_NOFILE (the gateway's descriptor limit, e.g. 8192 as in the systemd unit; default: the hard limit).
# Exit 1 when anything refused reached the PLC or the HMI saw an error. Loopback only, ports chosen by the system.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
GATEWAY=${GATEWAY:-aot}
HMI_CONNS=${HMI_CONNS:-4}
QUIET_SECS=${QUIET_SECS:-20}
HALF_OPEN=${HALF_OPEN:-10000}
SOURCES=${SOURCES:-40}
source "$ROOT/bench/gateway-build.sh" attack
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < HALF_OPEN + 2048 )); then
  HALF_OPEN=$(( $(ulimit -n) - 2048 ))
  echo "attack: the descriptor limit allows $HALF_OPEN half-open connections" >&2
fi

WORK=$(mktemp -d /tmp/edgeshield-attack.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n "${KEEP:-}" ]]; then echo "attack: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM

wait_for() { # file, regex: bounded wait (30 s) for a line; prints the first match
  for _ in $(seq 1 300); do
    if grep -qE "$2" "$1" 2>/dev/null; then grep -oE "$2" "$1" | head -1; return 0; fi
    sleep 0.1
  done
  echo "attack: no '$2' in $1:" >&2; cat "$1" >&2; exit 1
}
kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

dotnet "$SIM_DLL" plc --listen 127.0.0.1:0 >"$WORK/plc.log" 2>&1 &
PLC_PID=$!; PIDS+=($PLC_PID)
PLC=$(wait_for "$WORK/plc.log" 'listening on 127\.0\.0\.1:[0-9]+' | sed 's/listening on //')

# The policy of tests/EdgeShield.Integration.Tests/AttackTests.cs: reads 0-999, setpoints 100-119 = 0..1500.
cat >"$WORK/gw.yaml" <<YAML
gateway: { name: attack-gw, site: lab }
listeners:
  - name: hmi-plc1
    bind: 127.0.0.1:0
    upstream: tcp://$PLC
    policy: plc1
    limits: { response-timeout: 5s }
policies:
  plc1:
    mode: enforce
    rules:
      - name: hmi reads
        from: [127.0.0.0/8]
        unit: 1
        function: [read]
        address: 0-999
      - name: setpoints
        unit: 1
        function: [write-single-register, write-multiple-registers]
        address: 100-119
        value: 0-1500
YAML
# GW_NOFILE=8192 runs the gateway under the systemd unit's LimitNOFILE (firmware-config/systemd).
# shellcheck disable=SC2086 # GW_CMD may be "dotnet path.dll"
( if [[ -n "${GW_NOFILE:-}" ]]; then ulimit -n "$GW_NOFILE"; fi; exec $GW_CMD run --config "$WORK/gw.yaml" ) >"$WORK/audit.jsonl" 2>"$WORK/gw.log" &
GW_PID=$!; PIDS+=($GW_PID)
GW=$(wait_for "$WORK/gw.log" 'listener hmi-plc1 on 127\.0\.0\.1:[0-9]+' | sed 's/listener hmi-plc1 on //')
echo "attack: gateway $GW_CMD (pid $GW_PID) on $GW, PLC on $PLC" >&2

hmi() { dotnet "$SIM_DLL" hmi --target "$GW" --conns "$HMI_CONNS" --timeout-ms 15000 --json "$@"; }
hmi --seconds 3 >/dev/null   # warm-up
hmi --seconds "$QUIET_SECS" >"$WORK/quiet.json"
rss_before=$(kb $GW_PID VmRSS)
fds_before=$(find "/proc/$GW_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)

# Attacked: the HMI runs until the attack is over (then SIGTERM: it prints its summary; a background job ignores SIGINT).
dotnet "$SIM_DLL" hmi --target "$GW" --conns "$HMI_CONNS" --timeout-ms 15000 --json --seconds 3600 >"$WORK/attacked.json" &
HMI_PID=$!; PIDS+=($HMI_PID)
sleep 1
start=$EPOCHREALTIME
# Two attackers at once, so the pressure lasts the whole window: one holds the slow connections
# (slowloris, 10 000 half-open), the other repeats the frame-heavy scenarios until the first is done.
common=(--target "$GW" --source 127.0.1.1 --source-count "$SOURCES" --timeout-ms 3000 --json)
# shellcheck disable=SC2086
dotnet "$SIM_DLL" attack "${common[@]}" --scenario slowloris,half-open --half-open "$HALF_OPEN" ${ATTACK_ARGS:-} >"$WORK/attack-slow.json" &
SLOW_PID=$!; PIDS+=($SLOW_PID)
round=0
while kill -0 $SLOW_PID 2>/dev/null; do
  # shellcheck disable=SC2086
  dotnet "$SIM_DLL" attack "${common[@]}" ${ATTACK_ARGS:-} \
    --scenario malformed,forbidden-functions,address-sweep,value-sweep,tid-collision,response-injection,conn-flood,oversize-burst \
    >"$WORK/attack-fast-$round.json"
  round=$((round + 1))
done
wait $SLOW_PID
attack_secs=$(awk "BEGIN { print $EPOCHREALTIME - $start }")
kill -TERM $HMI_PID; wait $HMI_PID || true
peak=$(kb $GW_PID VmHWM)
sleep 2
hmi --seconds 3 >"$WORK/after.json" || true   # new connections once the attackers are gone
rss_after=$(kb $GW_PID VmRSS)
fds_after=$(find "/proc/$GW_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
kill -TERM $GW_PID; wait $GW_PID || true
kill -TERM $PLC_PID; wait $PLC_PID || true

python3 - "$WORK" "$attack_secs" "$rss_before" "$peak" "$rss_after" "$fds_before" "$fds_after" <<'PY'
import json, re, sys, collections
work, attack_secs = sys.argv[1], float(sys.argv[2])
rss_before, peak, rss_after, fds_before, fds_after = (int(x) for x in sys.argv[3:8])
quiet = json.load(open(f"{work}/quiet.json"))
attacked = json.load(open(f"{work}/attacked.json"))
after = json.load(open(f"{work}/after.json"))
import glob
runs = [json.load(open(f)) for f in [f"{work}/attack-slow.json"] + sorted(glob.glob(f"{work}/attack-fast-*.json"))]
fast_rounds = len(runs) - 1
merged = {}
for run in runs:
    for s in run["scenarios"]:
        m = merged.setdefault(s["name"], {k: 0 for k in ("frames_sent", "connections", "normal", "exceptions", "closed", "no_answer", "seconds")} | {"name": s["name"], "runs": 0})
        m["runs"] += 1
        for k in ("frames_sent", "connections", "normal", "exceptions", "closed", "no_answer", "seconds"):
            m[k] += s[k]
attack = {"scenarios": list(merged.values()), "frames_sent": sum(r["frames_sent"] for r in runs)}
written, suppressed = collections.Counter(), collections.Counter()
for line in open(f"{work}/audit.jsonl"):
    e = json.loads(line)
    if e["event"] == "suppressed":
        suppressed[e["suppressed_event"]] += e["count"]
    else:
        written[e["event"]] += 1
plc = open(f"{work}/plc.log").read()
counts = dict(re.findall(r"(\w+) (\d+)", re.search(r"^frames .*$", plc, re.M).group(0)))
by_fc = {int(fc): int(n) for fc, n in re.findall(r"fc (\d+): (\d+)", plc)}
ranges = {t: (r, w) for t, r, w in re.findall(r"(\w+): read (\S+) write (\S+)", plc)}
values = re.search(r"values-written (\S+)", plc).group(1)
outofspec = int(re.search(r"out-of-spec (\d+)", plc).group(1))

def within(r, lo, hi):
    if r == "none": return True
    a, b = (int(x) for x in r.split("-"))
    return lo <= a and b <= hi
forbidden_fc = sum(n for fc, n in by_fc.items() if fc not in (1, 3, 4, 6, 16))
bad = {
    "forbidden functions (not FC 1/3/4/6/16)": forbidden_fc,
    "malformed frames": int(counts["malformed"]),
    "truncated frames": int(counts["truncated"]),
    "out-of-spec requests": outofspec,
    "holding writes outside 100-119": 0 if within(ranges["HoldingRegisters"][1], 100, 119) else 1,
    "coil writes": 0 if ranges["Coils"][1] == "none" else 1,
    "register values outside 0-1500": 0 if within(values, 0, 1500) else 1,
    "reads outside 0-999": sum(0 if within(r, 0, 999) else 1 for r, _ in ranges.values()),
}
print(f"## attack figures ({attack_secs:.0f} s of attack; the frame-heavy scenarios ran {fast_rounds} times beside slowloris and half-open)\n")
print("| scenario | runs | frames sent | connections | answered normally | exceptions | closed by gateway | no answer / held | seconds (sum) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for s in attack["scenarios"]:
    print(f'| {s["name"]} | {s["runs"]} | {s["frames_sent"]:,} | {s["connections"]:,} | {s["normal"]:,} | {s["exceptions"]:,} | {s["closed"]:,} | {s["no_answer"]:,} | {s["seconds"]:.1f} |')
print(f'| **total** | | **{attack["frames_sent"]:,}** | | | | | | |')
print()
print("| refused frames that reached the PLC | count |\n|---|---:|")
for k, v in bad.items():
    print(f"| {k} | {v} |")
print(f'\nPLC saw: {counts["requests"]} requests (FC 1/3/4/6/16: allowed HMI traffic, in-range reads of the sweeps, tid-collision, flood and slowloris reads), values written {values}')
print()
print("| HMI | req/s | p50 µs | p99 µs | errors | exceptions |\n|---|---:|---:|---:|---:|---:|")
for name, r in (("unattacked", quiet), ("attacked", attacked), ("after the attack, new connections", after)):
    print(f'| {name} ({r["seconds"]:.0f} s) | {r["requests_per_second"]:,.0f} | {r["p50_us"]} | {r["p99_us"]} | {r["errors"]} | {r["exceptions"]} |')
print()
print("| audit event | lines written | suppressed (counted in `suppressed` events) |\n|---|---:|---:|")
for kind in sorted(set(written) | set(suppressed)):
    print(f"| {kind} | {written[kind]} | {suppressed[kind]} |")
print(f"| **total** | **{sum(written.values())}** | **{sum(suppressed.values())}** |")
print(f"\ngateway RSS: before the attack {rss_before/1024:.0f} MB, peak {peak/1024:.0f} MB, after {rss_after/1024:.0f} MB; "
      f"open fds before {fds_before}, after {fds_after}")
failed = sum(bad.values()) + quiet["errors"] + attacked["errors"] + attacked["exceptions"] + after["errors"] + after["exceptions"]
print("attack: " + ("FAILED" if failed else "passed: nothing refused reached the PLC, the HMI saw no error"))
sys.exit(1 if failed else 0)
PY
