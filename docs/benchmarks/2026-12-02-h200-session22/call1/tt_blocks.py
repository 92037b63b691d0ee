#!/usr/bin/env python3
"""Per-block stamps of one launch of a kind from a tile trace (session 22): µs from the launch's first
griddepcontrol.wait return, every 6th block. usage: tt_blocks.py tt_....csv [kind] [launch index among that kind]"""
import collections
import csv
import sys

fn = sys.argv[1]
kind = sys.argv[2] if len(sys.argv) > 2 else "gateup"
li = int(sys.argv[3]) if len(sys.argv) > 3 else 5
L = collections.defaultdict(list)
for r in csv.DictReader(open(fn)):
    L[(r["i"], r["kind"])].append(r)
k = [k for k in L if k[1] == kind][li]
bl = sorted(L[k], key=lambda b: int(b["block"]))
w1 = min(int(b["wait1"]) for b in bl)


def f(b, n):
    return (int(b[n]) - w1) / 1e3 if int(b[n]) >= 0 else float("nan")


print(f"{fn} launch {k}: {len(bl)} blocks")
print("block sm tiles | wait0 staged | t0a-staged | t0a t0b t1a t1b t2a t2b | end")
for b in bl[::6]:
    ts = " ".join(f"{f(b, x):5.2f}" for x in ["t0a", "t0b", "t1a", "t1b", "t2a", "t2b"])
    print(f"{b['block']:>5} {b['smid']:>3} {b['tiles']:>5} | {f(b, 'wait0'):6.2f} {f(b, 'staged'):5.2f} | "
          f"{f(b, 't0a') - f(b, 'staged'):5.2f} | {ts} | {f(b, 'end'):5.2f}")
