#!/usr/bin/env bash
# Builds snap7's S7 server and client (the npm package node-snap7 1.0.9: MIT wrapper around snap7,
# LGPL v3) so tests and bench/ can run an S7 peer nobody here wrote. Nothing of it is linked into
# EdgeShield. The scripts that drive it are ours: tests/peers/snap7/{server,client}.js (README there).
#
#   tests/peers/build-snap7.sh [OUT]      OUT defaults to artifacts/peers/snap7
#
# OUT/server.js, OUT/client.js: run with `node`; OUT/node_modules/node-snap7: the built addon.
# npm here does not run install scripts, so the addon is built explicitly with node-gyp against the
# Node headers in /usr/include/node (../shared/TOOLCHAIN.md "snap7"; about 2 minutes on 2 cores).
# Needs node, npm and the Node headers (Debian: nodejs npm libnode-dev; test.sh installs them as root
# when node is missing) and the npm registry, once. Idempotent: a build whose stamp (package files,
# this script, node's version) matches is reused; the scripts are copied again every run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src="$here/snap7"
out=${1:-"$here/../../artifacts/peers/snap7"}
node_gyp=node-gyp@12.4.0

command -v node >/dev/null || { echo "snap7: node is missing (apt-get install nodejs npm libnode-dev)" >&2; exit 2; }
command -v npm >/dev/null || { echo "snap7: npm is missing (apt-get install npm)" >&2; exit 2; }
[ -f /usr/include/node/node.h ] && [ -f /usr/include/node/node_api.h ] \
  || { echo "snap7: Node headers are missing in /usr/include/node (apt-get install libnode-dev)" >&2; exit 2; }

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
addon="$out/node_modules/node-snap7/build/Release/node_snap7.node"

stamp=$( (cat "$src/package.json" "$src/package-lock.json" "$here/build-snap7.sh"; node --version; echo "$node_gyp") | sha256sum | cut -c1-16)
copy_scripts() { cp "$src"/*.js "$out/"; }
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] && [ -f "$addon" ]; then
  copy_scripts
  echo "snap7: up to date in $out"
  exit 0
fi
rm -rf "$out"
mkdir -p "$out"
cp "$src/package.json" "$src/package-lock.json" "$out/"
cd "$out"
{
  npm ci --ignore-scripts --no-audit --no-fund
  cd node_modules/node-snap7
  npm exec --yes --package="$node_gyp" -- node-gyp rebuild --nodedir=/usr --jobs="$(nproc)"
  cd "$out"
  node -e "const s = require('node-snap7'); new s.S7Server(); new s.S7Client();"
} >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; echo "snap7: build failed (log: $out/build.log)" >&2; exit 1; }
copy_scripts
echo "$stamp" >"$out/.stamp"
echo "snap7: built node-snap7 1.0.9 in $out"
