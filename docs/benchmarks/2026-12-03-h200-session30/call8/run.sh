#!/usr/bin/env bash
# Session 30 call 8: where a probe tile's time goes — Nsight Compute on one mk_step launch of the best variant (v8,
# -DAKV=0 -DROT=0 -DACH=16 -DXAREA=16384): warp-state stall ratios and per-SASS-instruction stall samples. Works only
# where ncu can read the counters (Firecracker, not gVisor).
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session30; O=/tmp/s30h; mkdir -p $O
export PATH=/usr/local/cuda/bin:$PATH
trap 'tar czf ${OUT:-/tmp}/s30h.tgz -C /tmp s30h' EXIT
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; uname -r; } > $O/env.txt 2>&1; cat $O/env.txt
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -lineinfo -DAKV=0 -DROT=0 -DACH=16 -DXAREA=16384 $D/mk/mk.cu -o /tmp/mkb > $O/build.log 2>&1; echo "build rc=$?"
timeout 150 ncu --clock-control none --launch-skip 5 --launch-count 1 -k mk_step --section WarpStateStats --section SourceCounters \
  --metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\\.ratio -o $O/prof /tmp/mkb > $O/ncu.log 2>&1; echo "ncu rc=$?"; tail -5 $O/ncu.log
timeout 60 ncu -i $O/prof.ncu-rep --page details --print-details all > $O/details.txt 2>&1; echo "details rc=$?"
grep -iE "stall|warp cycles" $O/details.txt | head -60
timeout 60 ncu -i $O/prof.ncu-rep --page source --csv --print-source sass > $O/source.csv 2>&1; echo "source rc=$? $(wc -l < $O/source.csv) lines"
python3 - $O/source.csv <<'PY' 2>&1 | head -40
import csv, sys
rows = list(csv.reader(open(sys.argv[1], errors="replace")))
hdr = next((i for i, r in enumerate(rows) if any("Sampling" in c for c in r)), None)
if hdr is None: print("no sampling column"); sys.exit()
h = rows[hdr]; col = next(i for i, c in enumerate(h) if "Warp Stall Sampling (All" in c)
src = next((i for i, c in enumerate(h) if c.strip() in ("Source", "# Source")), 1)
data = []
for r in rows[hdr + 1:]:
    try: data.append((float(r[col].replace(",", "")), r[0], r[src][:90]))
    except Exception: pass
tot = sum(d[0] for d in data) or 1
print(f"total samples {tot:.0f}; top instructions:")
for v, a, s in sorted(data, reverse=True)[:30]: print(f"{100*v/tot:5.1f}%  {a:>6}  {s}")
PY
true
