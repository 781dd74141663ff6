#!/bin/sh
# A real 60 s broker outage for the telemetry diode (issue 4; bench/RESULTS.md §8).
#
#   bench/telemetry-outage.sh [OUTAGE_SECONDS] [TAGS] [EVERY_MS]      (defaults: 60 500 100)
#
# Polls TAGS holding registers of the PLC simulator every EVERY_MS into a Mosquitto it starts on a
# free loopback port (JSON, QoS 1, one message per value), stops the broker (SIGTERM) for
# OUTAGE_SECONDS while polling goes on into the disk buffer, starts it again and prints the drain
# rate: messages acknowledged per second from the reconnect until the backlog is empty (live polling
# continuing). mosquitto_sub, subscribed with a persistent session before the first message, is the
# independent consumer: every seq from 0 to the last one polled must have arrived exactly once, in
# order (exit 0), or the bench exits 1. Needs the Debian packages mosquitto and mosquitto-clients.
set -eu
cd "$(dirname "$0")/.."
dotnet build -c Release -v q -nologo bench/EdgeShield.Telemetry.Bench >/dev/null
exec dotnet bench/EdgeShield.Telemetry.Bench/bin/Release/net10.0/EdgeShield.Telemetry.Bench.dll \
  --outage "${1:-60}" --tags "${2:-500}" --every-ms "${3:-100}"
