#!/usr/bin/env bash
# Builds bench/libmodbus-load.c (the load generator) and bench/libmodbus-plc.c (the PLC) against the
# static libmodbus that tests/peers/build-libmodbus.sh makes (LGPL v2.1, tests/peers/libmodbus/SOURCE).
#
#   bench/libmodbus-build.sh [OUT]      OUT defaults to artifacts/bench; prints nothing else on success
#
# Idempotent; -O2, the library linked statically, the C library dynamically.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/artifacts/bench}
LMB=$ROOT/artifacts/peers/libmodbus
"$ROOT/tests/peers/build-libmodbus.sh" "$LMB" >/dev/null
mkdir -p "$OUT"
CC=${CC:-cc}
for prog in libmodbus-load libmodbus-plc; do
  if [[ ! -x $OUT/$prog || $ROOT/bench/$prog.c -nt $OUT/$prog || $ROOT/bench/load-histogram.h -nt $OUT/$prog || $LMB/install/lib/libmodbus.a -nt $OUT/$prog ]]; then
    $CC -O2 -Wall -Wextra -std=gnu11 -I"$LMB/install/include/modbus" -o "$OUT/$prog" \
      "$ROOT/bench/$prog.c" "$LMB/install/lib/libmodbus.a" -lpthread
  fi
done
