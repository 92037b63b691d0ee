# Sums ncu's gpu__time_duration (ns, --print-units base) per kernel name: one prefill pass.
import csv, sys, re, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 5]
hdr = next(r for r in rows if "Kernel Name" in r)
ki, mi, vi = hdr.index("Kernel Name"), hdr.index("Metric Name"), hdr.index("Metric Value")
gi = hdr.index("Grid Size") if "Grid Size" in hdr else None
tot = collections.OrderedDict(); n = collections.Counter(); grid = {}
for r in rows:
    if r is hdr or r[mi] != "gpu__time_duration.sum":
        continue
    name = r[ki]
    name = re.sub(r"\(.*", "", name)[:70]
    if gi is not None:
        grid.setdefault(name, r[gi])
    tot[name] = tot.get(name, 0.0) + float(r[vi].replace(",", ""))
    n[name] += 1
all_ns = sum(tot.values())
print(f"ncu: {sum(n.values())} kernels, {all_ns/1e3:.1f} us summed GPU time (serialized, one pass)")
for k, v in sorted(tot.items(), key=lambda e: -e[1]):
    print(f"{v/1e3:9.1f} us {n[k]:4d}x {v/1e3/n[k]:8.2f} us/launch  {k}  grid {grid.get(k,'')}")
