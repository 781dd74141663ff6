#!/usr/bin/env bash
# Coverage-guided fuzzing of every EdgeShield parser with SharpFuzz + AFL++ (tests/fuzz/README.md).
#   tests/fuzz/run.sh [SECONDS-PER-TARGET] [TARGET...]      default: 30 s each, all targets
# Builds the harness, instruments the EdgeShield assemblies (and YamlDotNet, for the config
# loader) with the sharpfuzz tool, runs afl-fuzz on each target one after the other, then prints
#   fuzz: N targets, X execs, C crashes, H hangs
# and exits 1 when any target found a crash or a hang (inputs in artifacts/fuzz/out/TARGET/default/).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seconds="${1:-30}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(mbap pdu-request pdu-response rtu capture config s7stream s7response iec104stream)
fi
command -v afl-fuzz >/dev/null || { echo "fuzz: afl-fuzz not found (apt-get install afl++)"; exit 2; }

work="${FUZZ_WORK:-$root/artifacts/fuzz}"
bin="$work/bin"
rm -rf "$work"
mkdir -p "$work/out"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build "$here/EdgeShield.Fuzz" -c Release -nologo -v q -o "$work/build" >"$work/build.log" 2>&1 \
  || { cat "$work/build.log"; echo "fuzz: build failed"; exit 1; }
# Instrument a fresh copy: sharpfuzz rewrites an assembly in place and refuses one it already did.
cp -r "$work/build" "$bin"
(cd "$here" && dotnet tool restore >/dev/null)
for assembly in EdgeShield.Protocols.dll EdgeShield.Policy.dll YamlDotNet.dll; do
  (cd "$here" && dotnet tool run sharpfuzz "$bin/$assembly") >/dev/null \
    || { echo "fuzz: sharpfuzz could not instrument $assembly"; exit 1; }
done

# dotnet is not an AFL-instrumented binary (the assemblies are); no core_pattern or CPU
# governor changes on a shared machine; no UI; one core is enough and the other is left free.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
  AFL_NO_AFFINITY=1 AFL_FAST_CAL=1 AFL_QUIET=1
stat() { sed -n "s/^$2 *: *//p" "$1" | head -n 1; }

total_execs=0 total_crashes=0 total_hangs=0
printf '%-13s %10s %9s %7s %10s %8s %6s\n' target execs execs/s edges bitmap crashes hangs
for target in "${targets[@]}"; do
  out="$work/out/$target"
  dict=()
  [ -f "$here/dict/$target.dict" ] && dict=(-x "$here/dict/$target.dict")
  # -V: stop after the given seconds; -t: an input that takes 5 s is a hang (the parsers take µs).
  timeout $((seconds + 120)) afl-fuzz -V "$seconds" -t 5000 -m none "${dict[@]}" \
    -i "$here/corpus/$target" -o "$out" -- dotnet "$bin/edgeshield-fuzz.dll" "$target" \
    >"$work/$target.log" 2>&1 || true
  stats="$out/default/fuzzer_stats"
  if [ ! -f "$stats" ]; then
    tail -n 30 "$work/$target.log"
    echo "fuzz: afl-fuzz did not run $target (log: $work/$target.log)"
    exit 1
  fi
  execs=$(stat "$stats" execs_done)
  crashes=$(stat "$stats" saved_crashes)
  hangs=$(stat "$stats" saved_hangs)
  printf '%-13s %10s %9s %7s %10s %8s %6s\n' "$target" "$execs" "$(stat "$stats" execs_per_sec)" \
    "$(stat "$stats" edges_found)" "$(stat "$stats" bitmap_cvg)" "$crashes" "$hangs"
  total_execs=$((total_execs + execs))
  total_crashes=$((total_crashes + crashes))
  total_hangs=$((total_hangs + hangs))
done
echo "fuzz: ${#targets[@]} targets, $total_execs execs, $total_crashes crashes, $total_hangs hangs"
if [ "$total_crashes" -ne 0 ] || [ "$total_hangs" -ne 0 ]; then
  echo "fuzz: reproduce with: dotnet $work/build/edgeshield-fuzz.dll replay TARGET $work/out/TARGET/default/crashes"
  exit 1
fi
