#!/usr/bin/env python3
"""Session 57 call B: where attn_decode_cx8's warps wait (fp8 + int8 KV, bs64, prompt 512; ncu SourceCounters of one
launch, PC sampling). Reads src_k8.sass.csv.gz (ncu --page source --csv --print-source sass) and prints the stall
reasons, the samples / instructions of the prologue (before the tile loop), the loop and the merge tail, and the
instructions with the most samples."""
import csv, gzip, os
here = os.path.dirname(os.path.abspath(__file__))
rows = list(csv.reader(gzip.open(os.path.join(here, "src_k8.sass.csv.gz"), "rt")))
hdr, data = rows[1], rows[2:]
ix = {h: i for i, h in enumerate(hdr)}
def f(r, h):
    try:
        return float(r[ix[h]])
    except ValueError:
        return 0.0
S, E = "Warp Stall Sampling (All Samples)", "Instructions Executed"
tot = sum(f(r, S) for r in data)
print(f"samples {tot:.0f}, warp instructions executed {sum(f(r, E) for r in data):.0f}")
stalls = [h for h in hdr if h.startswith("stall_") and "Not Issued" not in h]
for h, v in sorted(((h, sum(f(r, h) for r in data)) for h in stalls), key=lambda x: -x[1])[:8]:
    print(f"  {h:24s} {v:6.0f} {100 * v / tot:5.1f} %")
warps = max(f(r, E) for r in data[:4])  # the entry instructions run once a warp
loop = [i for i, r in enumerate(data) if f(r, E) > warps]  # the tile loop runs more than once a warp
lo, hi = min(loop), max(loop)
for name, seg in (("prologue", data[:lo]), ("tile loop", data[lo:hi + 1]), ("merge tail", data[hi + 1:])):
    s = sum(f(r, S) for r in seg)
    print(f"{name:10s} samples {s:6.0f} ({100 * s / tot:4.1f} %), instructions a warp {sum(f(r, E) for r in seg) / warps:6.1f}")
print("most sampled instructions:")
for r in sorted(data, key=lambda r: -f(r, S))[:8]:
    top = max(stalls, key=lambda h: f(r, h))
    print(f"  {f(r, S):5.0f} {r[ix['Source']].strip()[:58]:58s} {top}")
