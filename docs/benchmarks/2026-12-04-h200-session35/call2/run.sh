#!/usr/bin/env bash
# Session 35, call 2: where the quantized megakernel's consumer time goes. Branch w8 (session 34's mkq patches on
# ebf7f7a; .carry/z/w8.tgz: binary + NVRTC modules precompiled here). Nsight Compute on one mk_step launch (the 40th) of
# `trtforge bench` fp16 bs1 with TRTFORGE_MK=1: int4 g128 wait-free (MK_NOWAIT=1: the streaming ceiling, 527 us in
# session 34), int4 with its waits, fp16 wait-free — warp-state stall ratios, scheduler stats and per-SASS-instruction
# stall samples.
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/w8.tgz -C /tmp/cz && gunzip -f /tmp/cz/w8/trtforge.gz && chmod +x /tmp/cz/w8/trtforge
M=/tmp/cz/w8; O=$OUT; S=$(date +%s)
export PATH=/usr/local/cuda/bin:$PATH LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/km TRTFORGE_MK=1; mkdir -p /tmp/km; cp $M/K/* /tmp/km/
sha256sum $M/trtforge; cat $M/commit.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; which ncu
summ() { python3 - $1 <<'PY' 2>&1 | head -32
import csv, sys
rows = list(csv.reader(open(sys.argv[1], errors="replace")))
hdr = next((i for i, r in enumerate(rows) if any("Sampling" in c for c in r)), None)
if hdr is None: print("no sampling column"); sys.exit()
h = rows[hdr]; col = next(i for i, c in enumerate(h) if "Warp Stall Sampling (All" in c)
src = next((i for i, c in enumerate(h) if c.strip() in ("Source", "# Source")), 1)
data = []
for r in rows[hdr + 1:]:
    try: data.append((float(r[col].replace(",", "")), r[0], r[src][:100]))
    except Exception: pass
tot = sum(d[0] for d in data) or 1
print(f"total samples {tot:.0f}; top instructions:")
for v, a, s in sorted(data, reverse=True)[:28]: print(f"{100*v/tot:5.1f}%  {a:>6}  {s}")
PY
}
prof() { # name precision defs
  local n=$1
  TRTFORGE_MK_DEFS=$3 timeout 150 ncu --clock-control none --launch-skip 40 --launch-count 1 -k mk_step --section WarpStateStats --section SourceCounters \
    --section SchedulerStats --section SpeedOfLight --metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\\.ratio -o /tmp/$n \
    $M/trtforge bench --isolate never --precisions $2 --batch-sizes 1 --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b > $O/$n.ncu.log 2>&1
  echo "== $n ncu rc=$? t=$(( $(date +%s) - S ))"; grep -E "^\| (fp16|int4)" $O/$n.ncu.log | cut -c1-120
  timeout 60 ncu -i /tmp/$n.ncu-rep --page details --print-details all > $O/$n.details.txt 2>&1
  grep -iE "Duration|Issue Slots Busy|No Eligible|Active Warps|Eligible Warps|Memory Throughput|DRAM Through" $O/$n.details.txt | head -12
  grep -E "issue_stalled" $O/$n.details.txt | sort -t' ' -k3 | awk '{print $1, $NF}' | sort -k2 -g -r | head -10
  timeout 90 ncu -i /tmp/$n.ncu-rep --page source --csv --print-source sass > /tmp/$n.src.csv 2>&1; summ /tmp/$n.src.csv > $O/$n.top.txt; head -30 $O/$n.top.txt
}
prof i4nw int4 MK_NOWAIT=1
prof i4 int4 x
prof f16nw fp16 MK_NOWAIT=1
echo "t=$(( $(date +%s) - S ))"
