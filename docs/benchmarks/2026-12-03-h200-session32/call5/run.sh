#!/usr/bin/env bash
# Session 32 call 5: call 4 showed every staging reads what was written (the tagged hand-offs hold) but a few SwiGLU
# values written by gate/up tiles differ between repeats (4-38 of 5,632 in the first racing layer): a block-local fault
# in a tile (ring slot / x / partial buffer). Which timer exposes it (PROFC: consumer thread 0's chunk waits; PROFL:
# the loader's), which rows / blocks, and candidate fixes: PFX=1 (fence.proxy.async before freeing a slot), PFX=2
# (__syncwarp after the full wait), NPB=8.
V9="-DDGU=0 -DDHEAD=0 -DPOLL1=0 -DGRAB_AT=-1 -DATTACQ=0 -DNSLOT=11 -DACH=16"
R="$V9 -DPROF=2 -DDBGA=1"
export O=/tmp/c5 VARS="r_dbg:$R|r_noc_dbg:$R -DPROFC=0|r_nol_dbg:$R -DPROFL=0|r_pfx1_dbg:$R -DPFX=1|r_pfx2_dbg:$R -DPFX=2|r_npb8_dbg:$R -DNPB=8"
bash docs/benchmarks/2026-12-03-h200-session32/call3/run.sh
for n in r_dbg r_noc_dbg r_nol_dbg r_pfx1_dbg r_pfx2_dbg r_npb8_dbg; do echo "== $n"; grep -m8 "dbga" /tmp/c5/mk_$n.log | cut -c1-400; done
