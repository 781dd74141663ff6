#!/usr/bin/env bash
# Builds libmodbus's own test programs (unit-test-*, random-test-*, bandwidth-*) and the static
# library from a scratch copy of tests/peers/libmodbus (LGPL v2.1, see its SOURCE file), so tests
# and bench/ can run a Modbus peer nobody here wrote. Nothing of it is linked into EdgeShield.
#
#   tests/peers/build-libmodbus.sh [OUT]      OUT defaults to artifacts/peers/libmodbus
#
# OUT/tests/unit-test-server etc.: the test programs, patched in the copy only so that the TCP port
# they dial or bind is read from $MODBUS_PORT (default 1502, as upstream writes it);
# OUT/install/{include,lib}: headers and libmodbus.a for our own C peers (bench/libmodbus-load.c).
# Needs autoconf, automake, libtool and a C compiler (test.sh / .ci/run install them as root).
# Idempotent: a build whose stamp matches the source is reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src="$here/libmodbus"
out=${1:-"$here/../../artifacts/peers/libmodbus"}
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

stamp=$( (cd "$src" && find . -type f -print0 | sort -z | xargs -0 sha256sum; cat "$here/build-libmodbus.sh") | sha256sum | cut -c1-16)
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] && [ -x "$out/tests/unit-test-client" ]; then
  echo "libmodbus: up to date in $out"
  exit 0
fi
rm -rf "$out"
cp -r "$src" "$out"
cd "$out"
# The port of every TCP test program comes from MODBUS_PORT (so a test can put the gateway on one
# port and the server on another). Only the copy is changed.
for f in tests/unit-test-client.c tests/unit-test-server.c tests/random-test-client.c \
         tests/random-test-server.c tests/bandwidth-client.c tests/bandwidth-server-one.c \
         tests/bandwidth-server-many-up.c; do
  sed -i -e 's/, 1502)/, getenv("MODBUS_PORT") ? atoi(getenv("MODBUS_PORT")) : 1502)/' \
         -e '1i #include <stdlib.h>' "$f"
done
{
  ./autogen.sh
  ./configure --prefix="$out/install" --disable-shared --enable-static
  make -j"$(nproc)"
  make install
} >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; echo "libmodbus: build failed (log: $out/build.log)"; exit 1; }
echo "$stamp" >"$out/.stamp"
echo "libmodbus: built in $out"
