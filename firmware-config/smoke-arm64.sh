#!/usr/bin/env bash
# Smoke test of the linux-arm64 binary (artifacts/linux-arm64/edgeshield, from package.sh) on
# this x64 machine under qemu-aarch64-static, with the sysroot package.sh prepared:
#   1. `check` on every example config and on the packaged default config;
#   2. `nft` on the example, judged by `nft -c -f -` when nft is installed;
#   3. a short `run` in front of the host's PLC simulator: mbpoll (an independent Modbus master)
#      reads and writes through the arm64 gateway, a write outside the allowed span is refused (exception 02),
#      and SIGTERM stops it cleanly.
# Emulated timings say nothing about real hardware; this proves the binary, not its speed.
# Needs: qemu-user-static, mbpoll, the .NET SDK (for the host simulator). Bounded: ~1-2 minutes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${EDGESHIELD_CACHE:-$HOME/.cache/edgeshield}
bin="$root/artifacts/linux-arm64/edgeshield"
[ -x "$bin" ] || { echo "smoke-arm64: $bin is missing; run firmware-config/package.sh linux-arm64 first" >&2; exit 1; }
sysroot=$(ls -dt "$cache"/sysroot-arm64-*/ 2>/dev/null | while read -r d; do [ -f "$d/.complete" ] && { echo "${d%/}"; break; }; done)
[ -n "$sysroot" ] || { echo "smoke-arm64: no arm64 sysroot under $cache (package.sh prepares it)" >&2; exit 1; }
qemu=(qemu-aarch64-static -L "$sysroot")
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "smoke-arm64: FAILED: $*" >&2; exit 1; }

file "$bin" | grep -q 'ARM aarch64' || fail "$bin is not an aarch64 executable"
echo "smoke-arm64: $("${qemu[@]}" "$bin" --version) (aarch64, $(stat -c %s "$bin") bytes)"

# 0. the package holds what an integrator installs
deb=$(ls -t artifacts/edgeshield_*_arm64.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || fail "no artifacts/edgeshield_*_arm64.deb"
contents=$(dpkg-deb -c "$deb")
for path in ./usr/lib/edgeshield/edgeshield ./usr/bin/edgeshield ./lib/systemd/system/edgeshield.service \
            ./etc/edgeshield/edgeshield.yaml ./etc/edgeshield/trust/ ./usr/share/edgeshield/profiles/simulated.yaml; do
  grep -q " $path" <<<"$contents" || fail "$deb lacks $path"
done
[ "$(dpkg-deb -f "$deb" Architecture)" = arm64 ] || fail "$deb is not Architecture: arm64"
dpkg-deb -f "$deb" Depends | grep -q 'libc6 (>= 2\.' || fail "$deb does not state its glibc floor"
dpkg-deb -I "$deb" conffiles | grep -qx /etc/edgeshield/edgeshield.yaml || fail "$deb does not keep /etc/edgeshield/edgeshield.yaml as a conffile"
echo "smoke-arm64: $deb: binary, unit, default config, profiles; $(dpkg-deb -f "$deb" Depends)"

# 1. check on every example
for config in firmware-config/examples/*.yaml firmware-config/default/edgeshield.yaml; do
  timeout 60 "${qemu[@]}" "$bin" check --config "$config" >/dev/null || fail "check $config"
  echo "smoke-arm64: check $config ok"
done
if timeout 60 "${qemu[@]}" "$bin" check --config /dev/null/missing.yaml >/dev/null 2>&1; then fail "check of a missing file exited 0"; fi

# 2. nft
timeout 60 "${qemu[@]}" "$bin" nft --config firmware-config/examples/plc-basic.yaml >"$work/rules.nft" || fail "nft"
if command -v nft >/dev/null && [ "$(id -u)" = 0 ]; then
  nft -c -f "$work/rules.nft" || fail "nft -c rejected the ruleset"
  echo "smoke-arm64: nft ruleset accepted by nft -c"
fi

# 3. run: host PLC simulator <- arm64 gateway <- mbpoll
sim_dll="$root/simulators/edgeshield-sim/bin/Release/net10.0/edgeshield-sim.dll"
if [ ! -f "$sim_dll" ]; then
  timeout 600 dotnet build simulators/edgeshield-sim -c Release -v quiet -nologo >/dev/null || fail "building the simulator"
fi
dotnet "$sim_dll" plc --listen 127.0.0.1:0 >"$work/plc.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -qs "listening on" "$work/plc.out" && break; sleep 0.1; done
plc_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/plc.out" | head -n1)
[ -n "$plc_port" ] || fail "the PLC simulator did not start: $(cat "$work/plc.out")"

cat >"$work/smoke.yaml" <<EOF
gateway: { name: smoke-arm64, site: ci }
listeners:
  - name: smoke
    bind: 127.0.0.1:0
    upstream: tcp://127.0.0.1:$plc_port
    policy: p
policies:
  p:
    mode: enforce
    on-deny: exception
    rules:
      - { name: reads, unit: 1, function: read, address: 0-999 }
      - { name: setpoints, unit: 1, function: write-single-register, address: 100-119, value: 0-1500 }
EOF
"${qemu[@]}" "$bin" run --config "$work/smoke.yaml" >"$work/audit.jsonl" 2>"$work/gw.err" &
gw=$!
pids+=($gw)
for _ in $(seq 1 300); do grep -qs "listener smoke on" "$work/gw.err" && break; sleep 0.1; done
gw_port=$(sed -n 's/.*listener smoke on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/gw.err" | head -n1)
[ -n "$gw_port" ] || fail "the arm64 gateway did not start: $(cat "$work/gw.err")"
echo "smoke-arm64: PLC simulator on $plc_port, arm64 gateway on $gw_port"

timeout 30 mbpoll -m tcp -a 1 -t 4 -0 -r 0 -c 10 -1 -o 5 -p "$gw_port" 127.0.0.1 >"$work/read.out" || fail "read through the gateway: $(cat "$work/read.out")"
timeout 30 mbpoll -m tcp -a 1 -t 4 -0 -r 100 -1 -o 5 -p "$gw_port" 127.0.0.1 1234 >"$work/write.out" || fail "allowed write: $(cat "$work/write.out")"
timeout 30 mbpoll -m tcp -a 1 -t 4 -0 -r 100 -c 1 -1 -o 5 -p "$gw_port" 127.0.0.1 >"$work/readback.out" || fail "read back"
grep -q '\[100\]:[[:space:]]*1234' "$work/readback.out" || fail "the written value did not reach the PLC: $(cat "$work/readback.out")"
if timeout 30 mbpoll -m tcp -a 1 -t 4 -0 -r 500 -1 -o 5 -p "$gw_port" 127.0.0.1 7 >"$work/forbidden.out" 2>&1; then
  fail "a write to 500 passed the gateway"
fi
grep -q 'Illegal data address' "$work/forbidden.out" || fail "the write outside 100-119 did not get exception 02: $(cat "$work/forbidden.out")"
echo "smoke-arm64: read, allowed write, read-back and refused write through the arm64 gateway ok"

kill -TERM "$gw"
status=0
wait "$gw" || status=$?
[ "$status" -eq 0 ] || fail "the gateway exited $status on SIGTERM: $(cat "$work/gw.err")"
# The audit log is written off the frame path; after a clean stop it is complete.
grep -q '"event":"denied"' "$work/audit.jsonl" || fail "no denied audit event: $(cat "$work/audit.jsonl")"
echo "smoke-arm64: passed"
