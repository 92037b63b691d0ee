#!/usr/bin/env python3
"""Per-tile phases of the tensor-core GEMVs from a tile trace (session 21; `bench` with TRTFORGE_TIMELINE=1
TRTFORGE_TIMELINE_TILES=1 TRTFORGE_TIMELINE_RAW=DIR writes DIR/tt_<label>_bs<b>.csv, columns in timeline.rs `tt_csv`).

Per kernel kind and per count of tiles a block walked, medians (p10 / p90) in µs over every traced block of every
launch of that kind:
  wait      wait0 -> wait1   (griddepcontrol.wait: the previous kernel's end, as this block saw it)
  stage     wait1 -> staged  (the prologue: RMSNorm / x into shared memory, its barrier)
  tK.mma    previous stamp -> tKa (the warps' weights arrived, their mmas done, partials published)
  tK.epi    tKa -> tKb       (the 16-warp reduction, the epilogue, the barrier after it)
  tail      last tKb -> end
and per launch the spread of the blocks' wait1 and end stamps.
usage: tt_phases.py tt_....csv [--kind gateup]
"""
import csv
import statistics as st
import sys
from collections import defaultdict


def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(p * (len(v) - 1)))))]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    kind_only = None
    if "--kind" in sys.argv:
        kind_only = sys.argv[sys.argv.index("--kind") + 1]
        args = [a for a in args if a != kind_only]
    if not args:
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(args[0])))
    ph = defaultdict(lambda: defaultdict(list))  # (kind, tiles) -> phase -> [µs]
    spread = defaultdict(lambda: defaultdict(list))  # kind -> what -> [µs]
    launches = defaultdict(list)
    for r in rows:
        launches[(r["i"], r["kind"])].append(r)
    for (i, kind), blocks in launches.items():
        if kind_only and kind != kind_only:
            continue
        w1 = [int(b["wait1"]) for b in blocks if int(b["wait1"]) >= 0]
        en = [int(b["end"]) for b in blocks if int(b["end"]) >= 0]
        if w1 and en:
            spread[kind]["wait1 spread"].append((max(w1) - min(w1)) / 1e3)
            spread[kind]["end spread"].append((max(en) - min(en)) / 1e3)
            spread[kind]["first wait1 -> last end"].append((max(en) - min(w1)) / 1e3)
        for b in blocks:
            n = int(b["tiles"])
            key = (kind, n)
            t = {k: int(v) for k, v in b.items() if k not in ("kind",)}
            if t["wait0"] < 0 or t["wait1"] < 0 or t["staged"] < 0:
                continue
            ph[key]["wait"].append((t["wait1"] - t["wait0"]) / 1e3)
            ph[key]["stage"].append((t["staged"] - t["wait1"]) / 1e3)
            prev = t["staged"]
            for k in range(min(n, 5)):
                a, e = t[f"t{k}a"], t[f"t{k}b"]
                if a < 0 or e < 0:
                    break
                ph[key][f"t{k}.mma"].append((a - prev) / 1e3)
                ph[key][f"t{k}.epi"].append((e - a) / 1e3)
                prev = e
            if t["end"] >= 0:
                ph[key]["tail"].append((t["end"] - prev) / 1e3)
    for key in sorted(ph):
        kind, n = key
        nb = len(ph[key]["wait"])
        print(f"{kind:7s} blocks of {n} tiles ({nb} block-launches)")
        for name, v in ph[key].items():
            print(f"  {name:10s} median {st.median(v):6.2f}  p10 {q(v, 0.1):6.2f}  p90 {q(v, 0.9):6.2f}")
    for kind in sorted(spread):
        print(f"{kind:7s} per launch: " + ", ".join(f"{w} median {st.median(v):.2f}" for w, v in spread[kind].items()))


if __name__ == "__main__":
    main()
