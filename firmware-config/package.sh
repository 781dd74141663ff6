#!/usr/bin/env bash
# Publishes the Native AOT `edgeshield` for one target and builds its Debian package:
#   firmware-config/package.sh linux-x64|linux-arm64
# Output: artifacts/<rid>/edgeshield (+ native libraries beside it)
#         artifacts/edgeshield_<version>_<amd64|arm64>.deb
# linux-arm64 is cross-compiled on an x64 Debian 12 machine against a Debian arm64 sysroot that
# this script prepares itself (apt-get download + dpkg -x), cached in $EDGESHIELD_CACHE
# (default ~/.cache/edgeshield) and reused while its package list is unchanged.
# Fails on any IL2xxx/IL3xxx (trim/AOT) warning and on a binary above 12 MB.
# Needs: the .NET 10 SDK, clang, zlib1g-dev, dpkg-deb; for arm64 also lld and llvm (installed
# when missing and run as root).
set -euo pipefail

rid=${1:-}
case "$rid" in
  linux-x64) arch=amd64 ;;
  linux-arm64) arch=arm64 ;;
  *) echo "usage: $0 linux-x64|linux-arm64" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out="$root/artifacts/$rid"
obj="$root/artifacts/obj/$rid"          # a build tree per target: SysRoot/LinkerFlavor changes do not relink
cache=${EDGESHIELD_CACHE:-$HOME/.cache/edgeshield}
max_bytes=$((12 * 1024 * 1024))
version=$(sed -n 's|.*<Version>\(.*\)</Version>.*|\1|p' Directory.Build.props | head -n1)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DEBIAN_FRONTEND=noninteractive

need_packages() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "package.sh: missing ${missing[*]}; install them (apt-get install ${missing[*]})" >&2; exit 1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The arm64 sysroot: glibc, the kernel headers, libgcc and libstdc++ that the AOT linker needs,
# and libssl3, which the runtime loads for SHA-256 (config hashes) when the smoke test runs it.
# Cached by the list of packages (and the apt candidate versions), so it is fetched once.
sysroot_arm64() {
  local packages="libc6 libc6-dev linux-libc-dev libgcc-12-dev libgcc-s1 libcrypt1 libcrypt-dev libstdc++6 zlib1g zlib1g-dev libssl3"
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    [ "$(id -u)" = 0 ] || { echo "package.sh: run 'dpkg --add-architecture arm64 && apt-get update' as root first" >&2; exit 1; }
    dpkg --add-architecture arm64
    apt-get update -qq
  fi
  local key
  key=$( (echo "$packages"; for p in $packages; do apt-cache policy "$p:arm64" 2>/dev/null | sed -n 's/ *Candidate: //p'; done) | sha256sum | cut -c1-16)
  local dir="$cache/sysroot-arm64-$key"
  if [ ! -f "$dir/.complete" ]; then
    if ! apt-cache policy libc6:arm64 | grep -q 'Candidate: [0-9]'; then
      [ "$(id -u)" = 0 ] && apt-get update -qq
    fi
    rm -rf "$dir" "$dir.debs"
    mkdir -p "$dir.debs"
    (cd "$dir.debs" && for p in $packages; do timeout 300 apt-get download -qq -o APT::Sandbox::User=root "$p:arm64"; done) >&2
    for d in "$dir.debs"/*.deb; do dpkg -x "$d" "$dir"; done
    rm -rf "$dir.debs"
    touch "$dir/.complete"
  fi
  echo "$dir"
}

need_packages clang zlib1g-dev binutils
extra=()
if [ "$rid" = linux-arm64 ]; then
  need_packages lld llvm
  sysroot=$(sysroot_arm64)
  extra+=("-p:SysRoot=$sysroot" "-p:LinkerFlavor=lld" "-p:ObjCopyName=llvm-objcopy")
fi

echo "package.sh: publishing $rid (version $version)"
rm -rf "$out"
mkdir -p "$out" "$root/artifacts/logs"
log="$root/artifacts/logs/publish-$rid.log"
if ! timeout 1200 dotnet publish edge/EdgeShield.Host/EdgeShield.Host.csproj -c Release -r "$rid" \
      -o "$out" --artifacts-path "$obj" -p:IlcGenerateMapFile=true "${extra[@]}" >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "package.sh: publish failed (full log: $log)" >&2
  exit 1
fi
if grep -E 'warning IL[23][0-9]{3}' "$log" >&2; then
  echo "package.sh: trim/AOT warnings above: the shipped binary must have none" >&2
  exit 1
fi
rm -f "$out"/*.dbg "$out"/*.pdb           # symbols stay out of the image (kept in the build tree)
size=$(stat -c %s "$out/edgeshield")
echo "package.sh: $out/edgeshield is $size bytes"
if [ "$size" -gt "$max_bytes" ]; then
  echo "package.sh: the binary is above 12 MB" >&2
  exit 1
fi
# The glibc floor is the highest GLIBC_x.y symbol version the binary imports.
glibc=$(objdump -T "$out/edgeshield" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n1 || true)
[ -n "$glibc" ] || glibc=$(llvm-objdump -T "$out/edgeshield" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n1)
echo "package.sh: needs glibc >= $glibc"

# ---- the Debian package -----------------------------------------------------------------------
stage="$root/artifacts/obj/deb-$rid"
rm -rf "$stage"
install -d "$stage/DEBIAN" "$stage/usr/lib/edgeshield" "$stage/usr/bin" "$stage/etc/edgeshield" \
  "$stage/etc/edgeshield/trust" "$stage/lib/systemd/system" "$stage/usr/share/edgeshield/profiles" "$stage/usr/share/edgeshield/examples" \
  "$stage/usr/share/doc/edgeshield"
install -m 0755 "$out/edgeshield" "$stage/usr/lib/edgeshield/edgeshield"
for lib in "$out"/*.so; do [ -e "$lib" ] && install -m 0644 "$lib" "$stage/usr/lib/edgeshield/"; done
# Native libraries are found beside the real binary, so /usr/bin holds a symlink to it.
ln -s ../lib/edgeshield/edgeshield "$stage/usr/bin/edgeshield"
install -m 0644 firmware-config/systemd/edgeshield.service "$stage/lib/systemd/system/edgeshield.service"
install -m 0640 firmware-config/default/edgeshield.yaml "$stage/etc/edgeshield/edgeshield.yaml"
install -m 0644 firmware-config/profiles/*.yaml "$stage/usr/share/edgeshield/profiles/"
install -m 0644 firmware-config/examples/*.yaml "$stage/usr/share/edgeshield/examples/"
install -m 0644 README.md "$stage/usr/share/doc/edgeshield/README.md"
# The unit runs signed configs only: the integrator puts public keys (*.pem) in /etc/edgeshield/trust.
install -m 0644 docs/SIGNING.md "$stage/usr/share/doc/edgeshield/SIGNING.md"
chmod 0755 "$stage/etc/edgeshield/trust"
installed_kb=$(du -sk "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<EOF
Package: edgeshield
Version: $version
Architecture: $arch
Maintainer: EdgeShield maintainers <edgeshield@localhost>
Section: net
Priority: optional
Installed-Size: $installed_kb
Depends: libc6 (>= $glibc), libssl3 | libssl1.1, adduser, procps
Recommends: nftables, libgpiod2
Description: inspecting firewall and data diode for Modbus PLC networks
 One Native AOT program between the plant floor and everything above it: every Modbus
 frame is parsed and checked against an allow-list; writes marked maintenance pass only
 while the physical key switch is armed. Runs as the systemd service edgeshield.
EOF
echo "/etc/edgeshield/edgeshield.yaml" >"$stage/DEBIAN/conffiles"
cat >"$stage/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd edgeshield >/dev/null; then
    adduser --system --group --home /var/lib/edgeshield --no-create-home --shell /usr/sbin/nologin edgeshield
  fi
  for g in dialout gpio; do getent group "$g" >/dev/null || addgroup --system "$g"; done
  adduser edgeshield dialout >/dev/null || true
  adduser edgeshield gpio >/dev/null || true
  install -d -o edgeshield -g edgeshield -m 0750 /var/lib/edgeshield
  chgrp edgeshield /etc/edgeshield/edgeshield.yaml
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable edgeshield.service >/dev/null || true
    systemctl restart edgeshield.service || true
  fi
fi
EOF
cat >"$stage/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  systemctl stop edgeshield.service || true
  systemctl disable edgeshield.service >/dev/null || true
fi
EOF
cat >"$stage/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
if [ "$1" = purge ]; then
  rm -rf /var/lib/edgeshield
  getent passwd edgeshield >/dev/null && deluser --system edgeshield >/dev/null || true
fi
EOF
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
deb="$root/artifacts/edgeshield_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "package.sh: $deb ($(stat -c %s "$deb") bytes)"
