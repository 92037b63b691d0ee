#!/usr/bin/env python3
"""Session 27: per GEMV launch of one kind in a tile trace (timeline.rs tt_csv), the SMs grouped by (blocks, tiles) they
ran, with the median time from the launch's first griddepcontrol.wait return to the SM's last block end; then the
median of the launch's last end and of its mean SM end (µs). usage: sm_tiles.py tt_....csv.gz [kind, default gateup]"""
import collections, csv, gzip, sys, statistics as st
f=sys.argv[1]; kind=sys.argv[2] if len(sys.argv)>2 else "gateup"
rows=list(csv.DictReader(gzip.open(f,"rt")))
L=collections.OrderedDict()
for r in rows: L.setdefault(int(r["i"]),[]).append(r)
def ab(b,k):
    v=int(b[k]); return None if v<0 else (int(b["t0"])+v)/1e3
byn=collections.defaultdict(list); lastend=[]; meanend=[]
for i,bl in L.items():
    if bl[0]["kind"]!=kind: continue
    base=min(ab(b,"wait1") for b in bl)
    sm=collections.defaultdict(list)
    for b in bl: sm[int(b["smid"])].append(b)
    ends=[]
    for s,bs in sm.items():
        n=sum(int(b["tiles"]) for b in bs); e=max(ab(b,"end") for b in bs)-base
        byn[(len(bs),n)].append(e); ends.append(e)
    lastend.append(max(ends)); meanend.append(st.mean(ends))
for k in sorted(byn): print("blocks,tiles per SM",k,"count/launch %.1f"%(len(byn[k])/len(lastend)),"SM end median %.2f"%st.median(byn[k]))
print("last end med %.2f, mean SM end med %.2f"%(st.median(lastend),st.median(meanend)))
