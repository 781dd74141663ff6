#!/usr/bin/env bash
# Builds bench/snap7-load.cpp (the S7 load generator) and bench/snap7-plc.cpp (the S7 PLC) against the
# static snap7 library that tests/peers/build-snap7.sh builds inside node-snap7 1.0.9 (snap7: LGPL v3).
#
#   bench/snap7-build.sh [OUT]      OUT defaults to artifacts/bench; prints nothing else on success
#
# Idempotent; -O2, snap7 linked statically, the C++ library dynamically.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/artifacts/bench}
PEER=$ROOT/artifacts/peers/snap7
"$ROOT/tests/peers/build-snap7.sh" "$PEER" >/dev/null
PKG=$PEER/node_modules/node-snap7
LIB=$PKG/build/Release/snap7.a
SRC=$PKG/deps/snap7/src
mkdir -p "$OUT"
CXX=${CXX:-g++}
for prog in snap7-load snap7-plc; do
  if [[ ! -x $OUT/$prog || $ROOT/bench/$prog.cpp -nt $OUT/$prog || $ROOT/bench/load-histogram.h -nt $OUT/$prog || $LIB -nt $OUT/$prog ]]; then
    $CXX -O2 -Wall -Wno-unused-parameter -I"$SRC/lib" -I"$SRC/core" -I"$SRC/sys" -o "$OUT/$prog" \
      "$ROOT/bench/$prog.cpp" "$LIB" -lpthread
  fi
done
