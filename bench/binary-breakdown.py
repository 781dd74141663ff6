#!/usr/bin/env python3
"""Where the bytes of the Native AOT binary go, per dependency, from the ILC map file that
firmware-config/package.sh asks for (-p:IlcGenerateMapFile=true; it lands in the target's build tree,
artifacts/obj/<rid>/.../native/edgeshield.map.xml).

usage: bench/binary-breakdown.py linux-x64|linux-arm64 [MAPFILE]

Each node of the map (compiled method, type data, static data, frozen string …) has a length and a
mangled name that begins with its assembly (S_P_CoreLib_…, YamlDotNet_…, EdgeShield_Gateway_…).
Nodes are summed by the group whose assembly comes first in the name; nodes with no assembly in
their name (metadata blobs, lookup maps) are "unattributed". The native runtime (GC, runtime
helpers in C++) is not in the map: compare with the stripped binary's size printed last.
"""
import glob, os, re, sys
import xml.etree.ElementTree as ET

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rid = sys.argv[1] if len(sys.argv) > 1 else "linux-arm64"
maps = [sys.argv[2]] if len(sys.argv) > 2 else glob.glob(os.path.join(root, "artifacts", "obj", rid, "**", "edgeshield.map.xml"), recursive=True)
if not maps:
    raise SystemExit(f"no map file for {rid}: run firmware-config/package.sh {rid} first")
binary = os.path.join(root, "artifacts", rid, "edgeshield")

# Mangled assembly prefixes -> group. Order matters: the first match wins.
groups = [
    ("our code (EdgeShield.*)", r"EdgeShield_"),
    ("MQTTnet", r"MQTTnet"),
    ("YamlDotNet", r"YamlDotNet"),
    ("protobuf (Google.Protobuf)", r"Google_Protobuf"),
    ("Generic Host (Microsoft.Extensions.*)", r"Microsoft_Extensions_"),
    ("System.Device.Gpio, System.IO.Ports", r"System_Device_Gpio|System_IO_Ports"),
    (".NET libraries (System.*, CoreLib)", r"S_P_|System_"),
]
sizes = {name: 0 for name, _ in groups}
sizes["unattributed (metadata, maps, runtime data structures)"] = 0
total = 0
compiled = [(group, re.compile(pattern)) for group, pattern in groups]
for event, node in ET.iterparse(max(maps, key=os.path.getmtime)):
    length, name = node.get("Length"), node.get("Name")
    node.clear()
    if length is None or name is None:
        continue
    n = int(length)
    total += n
    # The assembly whose name comes first in the mangled name (after a node-kind prefix such as
    # __GCSTATICS or _ZTV<len>): a List<EdgeShield…> instantiation counts as CoreLib's.
    best = None
    for group, pattern in compiled:
        m = pattern.search(name)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), group)
    sizes[best[1] if best else "unattributed (metadata, maps, runtime data structures)"] += n
size = os.path.getsize(binary) if os.path.exists(binary) else None
print(f"| part of `artifacts/{rid}/edgeshield` (ILC map, managed code and data) | bytes in the map | share |")
print("|---|---|---|")
for group, n in sizes.items():
    print(f"| {group} | {n:,} | {100 * n / total:.1f} % |")
print(f"| all map nodes | {total:,} | 100 % |")
if size is not None:
    print(f"| the stripped binary, for comparison (adds the native runtime and GC; map lengths are before the linker's folding) | {size:,} | |")
