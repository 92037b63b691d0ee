#!/usr/bin/env python3
"""Session 24: the one-row decode step's attention -> o chain from a tile trace with the session-24 sub-stamps
(kernels.cu tt_sub; timeline.rs tt_csv's t0 column). Per layer, in µs, medians over the 22 layers:
  gaps between kernels: the last block's end of one kind -> the first block's griddepcontrol.wait return of the next;
  attn (blocks of kv head 0): wait1 -> q loaded (staged) -> warp 0's tiles (t0a) -> merge + records stored (t0b);
  o (combine prologue sub-stamps): wait1 -> (max, sum) weights (t1a) -> records landed (t1b) -> cluster wait (t2a)
    -> combined values stored (t2b) -> cluster sync + barrier (staged) -> tile mma (t0a) -> epilogue (t0b).
usage: chain.py tt_....csv"""
import collections
import csv
import gzip
import statistics as st
import sys

rows = list(csv.DictReader((gzip.open if sys.argv[1].endswith(".gz") else open)(sys.argv[1], "rt")))
L = collections.OrderedDict()
for r in rows:
    L.setdefault(int(r["i"]), []).append(r)
launches = [(i, bl[0]["kind"], bl) for i, bl in sorted(L.items())]


def ab(b, f):
    v = int(b[f])
    return None if v < 0 else (int(b["t0"]) + v) / 1e3


def med(xs):
    xs = [x for x in xs if x is not None]
    return st.median(xs) if xs else float("nan")


def span(bl, f, agg):
    xs = [ab(b, f) for b in bl if ab(b, f) is not None]
    return agg(xs) if xs else None


acc = collections.defaultdict(list)
prev = None
for i, kind, bl in launches:
    if prev is not None:
        pk, pbl = prev
        pend = span(pbl, "end", max)
        w1 = span(bl, "wait1", min)
        if pend is not None and w1 is not None:
            acc[f"gap {pk} end -> {kind} wait1"].append(w1 - pend)
        w1max = span(bl, "wait1", max)
        if w1 is not None and w1max is not None:
            acc[f"{kind} wait1 spread"].append(w1max - w1)
    fl = {"attn": ["wait1", "staged", "t0a", "t0b", "end"],
          "o": ["wait1", "t1a", "t1b", "t2a", "t2b", "staged", "t0a", "t0b", "end"]}.get(kind)
    if fl:
        for a, b in zip(fl, fl[1:]):
            acc[f"{kind} {a} -> {b}"].append(med([(ab(x, b) - ab(x, a)) if ab(x, a) and ab(x, b) else None for x in bl]))
        acc[f"{kind} first wait1 -> last end"].append(span(bl, "end", max) - span(bl, "wait1", min))
    prev = (kind, bl)
for k, v in acc.items():
    v = [x for x in v if x is not None and x == x]
    if v:
        print(f"{k:40s} median {st.median(v):6.2f}  p10 {sorted(v)[len(v) // 10]:6.2f}  p90 {sorted(v)[(9 * len(v)) // 10]:6.2f}  n {len(v)}")
