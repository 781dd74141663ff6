#!/usr/bin/env bash
# EdgeShield's test command: sets up what the tests need, builds the test peers, runs every test and
# prints "N passed, N failed".
#
#   ./test.sh [dotnet test arguments…]      e.g. ./test.sh --filter "FullyQualifiedName~Refusal"
#
# The tests drive third-party peers and tools (mbpoll, pymodbus, libmodbus's own test programs,
# snap7's S7 server and client, our IEC 104 station and client on lib60870, scapy, socat, tshark,
# Mosquitto, nft, systemd-analyze, clang for the Native AOT test). As root the missing Debian packages are installed; as any other user, when one is missing, the one
# `apt-get install …` line is printed and nothing runs (exit 3). Tests that need root or network
# namespaces skip with their reason when not root. Exit status: 0 when every test passed.
set -uo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# What each package is for:
#   mbpoll python3-pymodbus python3-serial-asyncio   independent Modbus clients and servers (judges, not our code)
#   autoconf automake libtool make gcc libc6-dev   build libmodbus's test programs and lib60870 with our IEC 104
#                                      station and client (tests/peers)
#   python3-scapy                      crafts malformed IEC 104 frames (tests/peers/iec104/craft.py, scapy's iec104
#                                      layers; run with /usr/bin/python3) that tshark then judges
#   socat                              pseudo-terminal pairs: a real serial line for RTU
#   tshark                             the decoding oracle for captures and forensics pcapng
#   clang zlib1g-dev lld llvm binutils file qemu-user-static   Native AOT publish (x64, arm64) and its qemu smoke test;
#                                      binutils' objcopy also for build-lib60870.sh
#   systemd nftables                   systemd-analyze for the unit, nft for the generated ruleset
#   mosquitto mosquitto-clients openssl   the MQTT broker of the telemetry tests and a test CA; OpenSSL-made signing keys (SignedConfigTests)
#   iproute2 faketime                  network namespaces (diode isolation), the clock-jump test
#   procps                             kill(1), which the tests and the unit's ExecReload use (not in a minimal Debian)
#   g++ python3                        node-gyp's compiler and build driver for snap7 (below)
#   nodejs npm libnode-dev             only when node is missing (the machine image has Node 20): snap7's S7 server and
#                                      client (npm package node-snap7, built with node-gyp against Node's headers)
packages=(mbpoll python3-pymodbus python3-serial-asyncio autoconf automake libtool make gcc libc6-dev python3-scapy socat tshark
  clang zlib1g-dev lld llvm binutils file qemu-user-static systemd nftables mosquitto
  mosquitto-clients openssl iproute2 faketime procps g++ python3)
command -v node >/dev/null || packages+=(nodejs npm libnode-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || { echo "test.sh: apt-get install failed"; exit 3; }
  else
    echo "test.sh: the tests need packages that are not installed; run as root:"
    echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}"
    exit 3
  fi
fi

tests/peers/build-libmodbus.sh || { echo "test.sh: could not build the libmodbus peer"; exit 3; }
tests/peers/build-snap7.sh || { echo "test.sh: could not build the snap7 peer"; exit 3; }
tests/peers/build-lib60870.sh || { echo "test.sh: could not build the lib60870 peer"; exit 3; }
/usr/bin/python3 -c 'import scapy.contrib.scada.iec104' 2>/dev/null \
  || { echo "test.sh: Debian's python3-scapy does not import scapy.contrib.scada.iec104 (tests/peers/iec104/craft.py needs it)"; exit 3; }

mkdir -p TestResults
# Each test assembly ends with a line such as
#   Passed!  - Failed:     0, Passed:    37, Skipped:     0, Total:    37, Duration: 4 s - X.dll (net10.0)
# and those lines are summed below.
dotnet test EdgeShield.slnx "$@" 2>&1 | tee TestResults/test.log
status=${PIPESTATUS[0]}

summary=$(grep -E '^(Passed|Failed)!' TestResults/test.log)
assemblies=$(printf '%s\n' "$summary" | grep -c 'Total:' || true)
passed=$(printf '%s\n' "$summary" | sed -n 's/.*Passed: *\([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}')
failed=$(printf '%s\n' "$summary" | sed -n 's/.*Failed: *\([0-9]*\),.*/\1/p' | awk '{s+=$1} END {print s+0}')
skipped=$(printf '%s\n' "$summary" | sed -n 's/.*Skipped: *\([0-9]*\),.*/\1/p' | awk '{s+=$1} END {print s+0}')
echo "test assemblies: $assemblies"
echo "$passed passed, $failed failed, $skipped skipped"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  exit 1
fi
