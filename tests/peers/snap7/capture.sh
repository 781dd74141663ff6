#!/usr/bin/env bash
# Remakes the snap7 captures in tests/data/s7comm and their tshark ground truth in
# tests/data/groundtruth/s7comm: snap7's client (client.js) against snap7's server (server.js) on
# loopback, TCP port 102 (S7's own port, so tshark dissects it without -d), recorded with dumpcap.
#
#   tests/peers/snap7/capture.sh [DATA_DIR]      DATA_DIR defaults to tests/data
#
# Needs root (port 102, capture on lo), tshark/dumpcap, python3, and the peer built by
# tests/peers/build-snap7.sh (run here first; cached). Times, ports and the clock values the
# server returns differ from run to run; what each capture holds does not.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
data=${1:-"$root/tests/data"}
port=102
peer="$root/artifacts/peers/snap7"
"$root/tests/peers/build-snap7.sh" "$peer"
[ "$(id -u)" = 0 ] || { echo "capture.sh: needs root (port $port, capture on lo)" >&2; exit 2; }
mkdir -p "$data/s7comm" "$data/groundtruth/s7comm"
work=$(mktemp -d)
server_pid='' cap_pid=''
cleanup() {
  [ -n "$cap_pid" ] && kill "$cap_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

node "$peer/server.js" --port "$port" --log "$work/server.log" >"$work/server.out" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q '^ready' "$work/server.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^ready' "$work/server.out" || { cat "$work/server.out"; echo "capture.sh: server did not start" >&2; exit 1; }

client() { node "$peer/client.js" --port "$port" "$@"; }

# capture NAME then the client runs of that capture as "conn-type op args…" lines on stdin
capture() {
  local name=$1 file="$data/s7comm/$1.pcapng"
  rm -f "$file"
  dumpcap -q -i lo -f "tcp port $port" -w "$file" 2>"$work/dumpcap.err" &
  cap_pid=$!
  for _ in $(seq 100); do grep -q 'Capturing on' "$work/dumpcap.err" && break; sleep 0.1; done
  grep -q 'Capturing on' "$work/dumpcap.err" || { cat "$work/dumpcap.err"; echo "capture.sh: dumpcap did not start" >&2; exit 1; }
  local type op
  while read -r type op; do
    [ -z "$type" ] && continue
    # shellcheck disable=SC2086 # op holds the operation and its arguments
    echo "  $name [$type] $(client --conn-type "$type" $op)"
  done
  sleep 0.5
  kill -INT "$cap_pid"; wait "$cap_pid" || true; cap_pid=''
  python3 "$here/groundtruth.py" "$file" "$data/groundtruth/s7comm/$name.pcapng.csv"
}

readwrite() {
  local t=$1
  cat <<OPS
$t db-read 1 0 16
$t db-write 2 10 deadbeef
$t db-read 2 8 8
$t read-area m 0 0 4
$t write-area m 0 200 a1b2c3
$t read-area i 0 0 2
$t write-area i 0 8 0f
$t read-area q 0 0 2
$t write-area q 0 4 0102
$t multi-read db:1:100:4 m:0:0:2 i:0:8:2 q:0:4:2 db:100:0:8
$t db-read 7 0 4
OPS
}
dangerous() {
  local t=$1
  cat <<OPS
$t plc-stop
$t plc-hot-start
$t plc-cold-start
$t upload db 1
$t download 5 sample-db
$t delete db 3
$t set-clock 2024-05-06T07:08:09Z
$t set-password secret
$t clear-password
OPS
}
info() {
  local t=$1
  cat <<OPS
$t list-blocks
$t block-info db 1
$t read-szl 0x0011 0
$t read-szl 0x001c 0
$t read-szl 0x1234 0
$t get-cpu-info
$t get-plc-status
$t get-clock
OPS
}

readwrite pg | capture snap7-readwrite-pg
readwrite op | capture snap7-readwrite-op
dangerous pg | capture snap7-dangerous-pg
dangerous op | capture snap7-dangerous-op
info pg | capture snap7-info-pg
info op | capture snap7-info-op
echo "capture.sh: server events:"
sed 's/^/  /' "$work/server.log" | grep -v 'Client added\|PDU size\|disconnected' || true
ls -l "$data/s7comm"/snap7-*.pcapng
