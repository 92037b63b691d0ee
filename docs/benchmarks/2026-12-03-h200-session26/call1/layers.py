#!/usr/bin/env python3
"""Session 26: per launch of a tile trace (timeline.rs tt_csv), the first / last block's griddepcontrol.wait entry
(wait0), return (wait1) and exit (end), µs from the first launch's first wait0. usage: layers.py tt_....csv[.gz] [N]"""
import collections
import csv
import gzip
import sys

f = sys.argv[1]
rows = list(csv.DictReader((gzip.open if f.endswith(".gz") else open)(f, "rt")))
L = collections.OrderedDict()
for r in rows:
    L.setdefault(int(r["i"]), []).append(r)


def ab(b, k):
    v = int(b[k])
    return None if v < 0 else (int(b["t0"]) + v) / 1e3


base = None
for i, bl in list(L.items())[: int(sys.argv[2]) if len(sys.argv) > 2 else 24]:
    def ext(k, agg):
        xs = [ab(b, k) for b in bl if ab(b, k) is not None]
        return agg(xs) if xs else float("nan")
    if base is None:
        base = ext("wait0", min)
    s = " ".join(f"{k} {ext(k, min) - base:8.2f}..{ext(k, max) - base:8.2f}" for k in ("wait0", "wait1", "end"))
    print(f"{i:3d} {bl[0]['kind']:7s} blocks {len(bl):3d} {s}")
