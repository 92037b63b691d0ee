#!/usr/bin/env python3
"""Session 26 call 2: what a gate/up + down fusion's split-K reduction would cost at one row (TinyLlama shape).
A fused kernel's blocks would each hold a partial down output (hidden = 2048 f32) and add it into the residual.
Timed, kernel duration by CUDA events over back-to-back launches (median of 5 x 200), µs per launch:
  empty   : the same grid doing nothing (launch + block scheduling floor)
  store   : every block stores its 8 KB partial to its own slot (the write traffic without contention)
  red4    : every block red.global.add.v4.f32 its partial into one 2048-float vector (16-byte reductions)
  red1    : the same with scalar red.global.add.f32
for 132, 264 and 704 blocks (one per SM, two per SM = the gate/up grid, one per gate/up tile)."""
import json
import statistics
import sys

import cupy as cp

SRC = r'''
extern "C" __global__ void empty(float* out, float* slots) {}
extern "C" __global__ void store(float* out, float* slots) {
    const int i = threadIdx.x;
    float4 v = make_float4(blockIdx.x * 1e-3f, i * 1e-3f, 1.f, 2.f);
    ((float4*)(slots + (size_t)blockIdx.x * 2048))[i] = v;
}
extern "C" __global__ void red4(float* out, float* slots) {
    const int i = threadIdx.x;
    float4 v = make_float4(blockIdx.x * 1e-3f, i * 1e-3f, 1.f, 2.f);
    asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};" :: "l"(out + 4 * i), "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w) : "memory");
}
extern "C" __global__ void red1(float* out, float* slots) {
    const int i = threadIdx.x;
    for (int j = 0; j < 4; j++) atomicAdd(out + j * 512 + i, blockIdx.x * 1e-3f + j);
}
'''
mod = cp.RawModule(code=SRC, options=("-arch=sm_90",))
out = cp.zeros(2048, dtype=cp.float32)
slots = cp.zeros(704 * 2048, dtype=cp.float32)
res = {}
for blocks in (132, 264, 704):
    for name in ("empty", "store", "red4", "red1"):
        f = mod.get_function(name)
        for _ in range(20):
            f((blocks,), (512,), (out, slots))
        ts = []
        for _ in range(5):
            a, b = cp.cuda.Event(), cp.cuda.Event()
            a.record()
            for _ in range(200):
                f((blocks,), (512,), (out, slots))
            b.record()
            b.synchronize()
            ts.append(cp.cuda.get_elapsed_time(a, b) * 1e3 / 200)
        res[f"{name}_{blocks}"] = round(statistics.median(ts), 3)
        print(f"{name:6s} blocks {blocks:4d}: {statistics.median(ts):7.3f} us/launch", flush=True)
json.dump(res, open(sys.argv[1] if len(sys.argv) > 1 else "red_bench.json", "w"), indent=1)
