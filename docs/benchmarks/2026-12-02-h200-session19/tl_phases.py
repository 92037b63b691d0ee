"""Per kernel kind of a bs1 decode step, from a timeline CSV (`TRTFORGE_TIMELINE_RAW`): µs per launch, averaged over the
layers — release (previous kind's last exit -> this kind's first block past griddepcontrol.wait), wait -> first trigger
(the GEMVs trigger after their last tile's mmas: for one-tile blocks, the prologue + weights + mmas), last trigger ->
last exit (reduction + epilogue), wait -> first block's exit, exit spread (first -> last block exit), span (previous
last exit -> this last exit). Usage: python3 tl_phases.py F.csv"""
import collections, csv, sys

for f in sys.argv[1:]:
    agg = collections.defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    prev = None
    for r in csv.DictReader(open(f)):
        v = {x: int(r[x]) / 1000 for x in r if x not in ("i", "kind", "blocks")}
        if prev is not None and v["exit_max"] > 0 and v["wait_min"] > 0:
            a = agg[r["kind"]]
            a[0] += 1
            a[1] += v["wait_min"] - prev
            a[2] += v["exit_min"] - v["wait_min"]
            a[3] += v["exit_max"] - v["exit_min"]
            a[4] += v["exit_max"] - prev
            a[5] += v["trig_min"] - v["wait_min"] if v["trig_min"] > 0 else 0.0
            a[6] += v["exit_max"] - v["trig_max"] if v["trig_max"] > 0 else 0.0
        if v["exit_max"] > 0:
            prev = v["exit_max"]
    print(f)
    for k, (n, rel, first, spread, span, trig, epi) in agg.items():
        print(f"  {k:7s} x{n:<2d} release {rel / n:5.2f} | wait->first trig {trig / n:5.2f} | last trig->last exit {epi / n:5.2f}"
              f" | wait->first exit {first / n:5.2f} | exit spread {spread / n:5.2f} | span {span / n:5.2f}")
