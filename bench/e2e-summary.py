#!/usr/bin/env python3
"""Summarises the rows of bench/e2e.sh (a TSV: round, conns, target, rps, p50_us, [p90_us,] p99_us, errors,
exceptions): medians per target, then each gateway over HAProxy round by round. p90 is printed when the
load generator gave it (LOAD=libmodbus; older TSVs and `edgeshield-sim hmi` have none).
    python3 bench/e2e-summary.py bench/results/e2e-….tsv
"""
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
has_p90 = all(r.get("p90_us") for r in rows)
med = {}
for conns in dict.fromkeys(r["conns"] for r in rows):
    for target in dict.fromkeys(r["target"] for r in rows):
        sel = [r for r in rows if r["conns"] == conns and r["target"] == target]
        med[conns, target] = (statistics.median(float(r["rps"]) for r in sel),
                              statistics.median(float(r["p50_us"]) for r in sel),
                              statistics.median(float(r["p90_us"]) for r in sel) if has_p90 else None,
                              statistics.median(float(r["p99_us"]) for r in sel),
                              sum(int(r["errors"]) + int(r["exceptions"]) for r in sel), len(sel))
p90h, p90s = (" p90 µs |", "---:|") if has_p90 else ("", "")
print(f"| conns | target | req/s (median) | p50 µs |{p90h} p99 µs | × direct | × HAProxy | p99 vs HAProxy | errors+exceptions | runs |")
print(f"|---:|---|---:|---:|{p90s}---:|---:|---:|---:|---:|---:|")
for (conns, target), (rps, p50, p90, p99, bad, n) in med.items():
    d = med[conns, "direct"][0]; h = med[conns, "haproxy"]
    p90c = f" {p90:.0f} |" if has_p90 else ""
    print(f"| {conns} | {target} | {rps:,.0f} | {p50:.0f} |{p90c} {p99:.0f} | {rps/d:.2f} | {rps/h[0]:.2f} | {p99/h[3]:.2f} | {bad} | {n} |")
# Paired: each round's gateway figure over the HAProxy figure of the same round (seconds apart), which
# takes out the drift of a shared machine between rounds.
print()
print("| conns | target | × HAProxy per round (median; min–max) | p99 vs HAProxy per round (median; min–max) | rounds ≥ 1.0× |")
print("|---:|---|---:|---:|---:|")
for conns in dict.fromkeys(r["conns"] for r in rows):
    for target in dict.fromkeys(r["target"] for r in rows):
        if not target.startswith("edgeshield") and target != "haproxy-b":
            continue
        by_round = {r["round"]: r for r in rows if r["conns"] == conns and r["target"] == target}
        ha = {r["round"]: r for r in rows if r["conns"] == conns and r["target"] == "haproxy"}
        x = [float(by_round[k]["rps"]) / float(ha[k]["rps"]) for k in by_round if k in ha]
        p = [float(by_round[k]["p99_us"]) / float(ha[k]["p99_us"]) for k in by_round if k in ha]
        if x:
            print(f"| {conns} | {target} | {statistics.median(x):.2f}; {min(x):.2f}–{max(x):.2f} | {statistics.median(p):.2f}; {min(p):.2f}–{max(p):.2f} | {sum(v >= 1.0 for v in x)} of {len(x)} |")
