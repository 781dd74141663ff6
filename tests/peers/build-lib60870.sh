#!/usr/bin/env bash
# Builds lib60870 (tests/peers/lib60870: IEC 60870-5-104 in C, GPL v3, see its SOURCE file) from a
# scratch copy, and our own IEC 104 peer programs against it, so tests and bench/ can run a
# controlled station and a controlling station nobody here wrote the protocol stack of. Nothing of
# lib60870 is linked into EdgeShield.
#
#   tests/peers/build-lib60870.sh [OUT]      OUT defaults to artifacts/peers/lib60870
#
# OUT/bin/iec104-station, OUT/bin/iec104-client: tests/peers/iec104/*.c (usage: --help, and the
# comment at the top of each file); OUT/install/{include,lib}: lib60870's API headers and
# liblib60870.a for other programs (bench/iec104-load.c), with OUT/lib60870.cflags the flags to
# compile against it. The library is built with CONFIG_DEBUG_OUTPUT=1 and its one debug function
# (lib60870_debug_print) made weak, so that a program can define its own and log what lib60870
# reports (sequence errors, invalid frames, timeouts) instead of printing every frame.
# Needs gcc (or $CC), make and binutils. Idempotent: the library is rebuilt only when its stamp
# (the library sources, this script, the compiler) changes, the programs when theirs does.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src="$here/lib60870"
progs="$here/iec104"
out=${1:-"$here/../../artifacts/peers/lib60870"}
mkdir -p "$out"
out=$(cd "$out" && pwd)
CC=${CC:-cc}
command -v "$CC" >/dev/null || { echo "lib60870: $CC is missing (apt-get install gcc libc6-dev)" >&2; exit 2; }
command -v make >/dev/null || { echo "lib60870: make is missing (apt-get install make)" >&2; exit 2; }
command -v objcopy >/dev/null || { echo "lib60870: objcopy is missing (apt-get install binutils)" >&2; exit 2; }
[ -f "$src/lib60870-C/Makefile" ] || { echo "lib60870: $src/lib60870-C/Makefile is missing" >&2; exit 2; }

started=$(date +%s%N)
lib="$out/install/lib/liblib60870.a"
lib_stamp=$( (cd "$src" && find . -type f -print0 | sort -z | xargs -0 sha256sum; cat "$here/build-lib60870.sh"; "$CC" --version | head -1) | sha256sum | cut -c1-16)
if [ -f "$out/.stamp-lib" ] && [ "$(cat "$out/.stamp-lib")" = "$lib_stamp" ] && [ -f "$lib" ]; then
  lib_state="up to date"
else
  rm -rf "$out/src" "$out/install" "$out/bin" "$out/.stamp-lib" "$out/.stamp-bin"
  cp -r "$src" "$out/src"
  chmod -R u+w "$out/src"
  {
    # CFLAGS from the environment is added to the Makefile's own (-std=gnu99 -Wall …).
    # (&&: set -e does not apply inside a group followed by ||)
    CFLAGS="-O2 -g -DCONFIG_DEBUG_OUTPUT=1" make -C "$out/src/lib60870-C" -j"$(nproc)" lib &&
    make -C "$out/src/lib60870-C" install INSTALL_PREFIX="$out/install" &&
    objcopy --weaken-symbol=lib60870_debug_print "$lib" &&
    [ "$(nm "$lib" | grep -c ' W lib60870_debug_print$')" = 1 ]
  } >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; echo "lib60870: library build failed (log: $out/build.log)" >&2; exit 1; }
  echo "-I$out/install/include -DCONFIG_DEBUG_OUTPUT=1" >"$out/lib60870.cflags"
  echo "$lib_stamp" >"$out/.stamp-lib"
  lib_state="built"
fi

bin_stamp=$( (cat "$progs"/*.c; echo "$lib_stamp") | sha256sum | cut -c1-16)
if [ -f "$out/.stamp-bin" ] && [ "$(cat "$out/.stamp-bin")" = "$bin_stamp" ] && [ -x "$out/bin/iec104-station" ] && [ -x "$out/bin/iec104-client" ]; then
  bin_state="up to date"
else
  rm -f "$out/.stamp-bin"
  mkdir -p "$out/bin"
  for prog in iec104-station iec104-client; do
    "$CC" -O2 -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter -I"$out/install/include" -o "$out/bin/$prog" \
      "$progs/$prog.c" "$lib" -lpthread >"$out/$prog.log" 2>&1 \
      || { cat "$out/$prog.log"; echo "lib60870: $prog failed to compile (log: $out/$prog.log)" >&2; exit 1; }
  done
  echo "$bin_stamp" >"$out/.stamp-bin"
  bin_state="built"
fi
took_ms=$(( ($(date +%s%N) - started) / 1000000 ))
echo "lib60870: library $lib_state ($lib), programs $bin_state in $out/bin (iec104-station, iec104-client) in ${took_ms} ms"
