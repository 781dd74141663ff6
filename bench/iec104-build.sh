#!/usr/bin/env bash
# Builds bench/iec104-load.c (the IEC 104 load generator) against the static lib60870 that
# tests/peers/build-lib60870.sh makes (GPL v3, a test peer only; tests/peers/lib60870/SOURCE), and puts
# the station it loads beside it: iec104-station (tests/peers/iec104/iec104-station.c, the "PLC"; run it
# with --redundancy-groups so that every connection is active).
#
#   bench/iec104-build.sh [OUT]      OUT defaults to artifacts/bench; prints nothing else on success
#
# Idempotent; -O2, lib60870 linked statically, the C library dynamically.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/artifacts/bench}
PEER=$ROOT/artifacts/peers/lib60870
"$ROOT/tests/peers/build-lib60870.sh" "$PEER" >/dev/null
LIB=$PEER/install/lib/liblib60870.a
mkdir -p "$OUT"
CC=${CC:-cc}
if [[ ! -x $OUT/iec104-load || $ROOT/bench/iec104-load.c -nt $OUT/iec104-load || $ROOT/bench/load-histogram.h -nt $OUT/iec104-load || $LIB -nt $OUT/iec104-load ]]; then
  $CC -O2 -Wall -Wextra -Wno-unused-parameter -std=gnu11 -I"$PEER/install/include" -o "$OUT/iec104-load" \
    "$ROOT/bench/iec104-load.c" "$LIB" -lpthread
fi
if [[ ! -x $OUT/iec104-station || $PEER/bin/iec104-station -nt $OUT/iec104-station ]]; then
  cp -p "$PEER/bin/iec104-station" "$OUT/iec104-station"
fi
