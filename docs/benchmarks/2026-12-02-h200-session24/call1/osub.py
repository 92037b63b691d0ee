#!/usr/bin/env python3
"""Session 24: per-block sub-phases (µs, medians over blocks) of the attention and the one-row o GEMV's combine
prologue from a tile trace with the session-24 sub-stamps. usage: osub.py tt_....csv[.gz]"""
import gzip
import csv,collections,statistics as st,sys
rows=list(csv.DictReader((gzip.open if sys.argv[1].endswith('.gz') else open)(sys.argv[1],'rt')))
def d(r,a,b):
    x,y=int(r[a]),int(r[b])
    return (y-x)/1e3 if x>=0 and y>=0 else None
for kind,fl in [("attn",["wait0","wait1","staged","t0a","t0b","end"]),("o",["wait0","wait1","t3b","t3a","t1a","t1b","t2a","t2b","staged","t0a","t0b","end"])]:
    bl=[r for r in rows if r['kind']==kind]
    print(kind,len(bl),"blocks")
    pairs=list(zip(fl,fl[1:]))+([("wait1","t1a")] if kind=="o" else [])
    for a,b in pairs:
        xs=sorted(x for x in (d(r,a,b) for r in bl) if x is not None)
        if xs: print(f"  {a:>6}->{b:<6} med {st.median(xs):6.3f} p10 {xs[len(xs)//10]:6.3f} p90 {xs[9*len(xs)//10]:6.3f} n {len(xs)}")
