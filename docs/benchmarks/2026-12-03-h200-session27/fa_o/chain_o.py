#!/usr/bin/env python3
"""Session 27: from a tile trace (timeline.rs tt_csv), per layer the time from qkv's last block end to the o GEMV's x staged
(median block, last block) and to o's last block end, medians over the layers — the stretch the fused probe replaces.
usage: chain_o.py tt_....csv.gz"""
import collections, csv, gzip, sys, statistics as st
f=sys.argv[1]
rows=list(csv.DictReader(gzip.open(f,"rt")))
L=collections.OrderedDict()
for r in rows: L.setdefault(int(r["i"]),[]).append(r)
items=list(L.items())
def ab(b,k):
    v=int(b[k]); return None if v<0 else (int(b["t0"])+v)/1e3
a=[];m=[];e=[]
for k,(i,bl) in enumerate(items):
    if bl[0]["kind"]!="qkv": continue
    if k+2>=len(items) or items[k+2][1][0]["kind"]!="o": continue
    qe=max(ab(b,"end") for b in bl)
    o=items[k+2][1]
    stg=sorted(ab(b,"staged") for b in o)
    a.append(stg[-1]-qe); m.append(st.median(stg)-qe); e.append(max(ab(b,"end") for b in o)-qe)
print(f"qkv last end -> o x staged: median block {st.median(m):.2f}, last block {st.median(a):.2f}; -> o last end {st.median(e):.2f} (medians over {len(a)} layers)")
