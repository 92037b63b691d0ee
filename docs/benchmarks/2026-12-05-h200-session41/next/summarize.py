#!/usr/bin/env python3
"""Summarise call 3's ncu CSVs: every kernel of the last decode step (from the last `embed` launch), alone.
usage: summarize.py out/ncu_gd.csv out/ncu_sw.csv ...  (prints a per-kernel table and the step's sum)."""
import csv, sys
from collections import OrderedDict

def load(path):
    lines = open(path, errors="replace").read().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith('"ID"'))
    rows = list(csv.reader(lines[start:]))
    head, body = rows[0], [r for r in rows[1:] if r and r[0].isdigit()]
    col = {h: i for i, h in enumerate(head)}
    def num(r, name):
        v = r[col[name]].replace(",", "") if name in col else ""
        try:
            return float(v)
        except ValueError:
            return float("nan")
    out = [(r[col["Kernel Name"]], num(r, "gpu__time_duration.sum") / 1e3, num(r, "dram__bytes_read.sum") / 1e6,
            num(r, "launch__registers_per_thread"), r[col["Grid Size"]] if "Grid Size" in col else "")
           for r in body]
    last = max(i for i, k in enumerate(out) if k[0].startswith("embed"))
    return out[last:]

for path in sys.argv[1:]:
    step = load(path)
    agg = OrderedDict()
    for name, us, mb, regs, grid in step:
        a = agg.setdefault(name, [0, 0.0, 0.0, regs, grid])
        a[0] += 1; a[1] += us; a[2] += mb
    total = sum(s[1] for s in step)
    print(f"{path}: {len(step)} kernels, sum {total:.1f} us alone ({total / 22:.2f} us a layer incl. head)")
    for name, (n, us, mb, regs, grid) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        print(f"  {name[:60]:60s} n {n:3d}  {us:8.1f} us  ({us / n:6.2f} each)  DRAM {mb / n:7.2f} MB each"
              f"  {mb / n / (us / n) * 1e-3 if us else 0:5.2f} TB/s  regs {regs:.0f} grid {grid}")
