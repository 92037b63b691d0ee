# Top SASS instructions of an `ncu --page source --csv --print-source sass` export by warp-stall samples, with any
# per-reason sample columns that are non-zero for them. Usage: python3 sass_top.py wq_sass.csv [N]
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
n = int(sys.argv[2]) if len(sys.argv) > 2 else 45
hi = next(i for i, r in enumerate(rows) if any("Sampling" in c for c in r))
head, body = rows[hi], [r for r in rows[hi + 1:] if len(r) == len(rows[hi])]
col = lambda name: next((i for i, c in enumerate(head) if c == name), None)
alls = next(i for i, c in enumerate(head) if "Sampling" in c and "All" in c)
src = next((i for i, c in enumerate(head) if c in ("Source", "SASS")), 1)
addr = col("Address") or 0
num = lambda s: float(s.replace(",", "")) if s.replace(",", "").replace(".", "", 1).isdigit() else 0.0
tot = sum(num(r[alls]) for r in body)
print("columns:", [c for c in head][:40])
print(f"instructions {len(body)}, samples {tot:.0f}")
reasons = [i for i, c in enumerate(head) if c.startswith("stall_") or "Stall" in c and i != alls]
for r in sorted(body, key=lambda r: -num(r[alls]))[:n]:
    extra = ", ".join(f"{head[i]}={r[i]}" for i in reasons if num(r[i]) > 0 and i != alls)[:160]
    print(f"{num(r[alls]) / max(tot, 1) * 100:5.1f}%  {r[addr]:>6}  {r[src][:70]:70}  {extra}")
