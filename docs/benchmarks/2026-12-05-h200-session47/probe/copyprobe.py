# Session 47 probe 2: what a block's copy stream costs per COPY vs per BYTE (l2probe.py: 8 KB copies gave a block
# 35 GB/s, 16 KB 63, 32 KB 101, whatever the bytes in flight; two blocks an SM each got their own rate).
# wq's stage is 4 copies (x: two 8 KB TMA boxes, the same bytes in every block; its 4 KB weight chunk; 128 B of
# int4 scales). Each variant: NST-slot ring, STAGES stages a block, one consumer thread frees each slot when full.
#   m      copies a stage (1-D bulk, the stage's bytes split evenly), from lane 0 or from lanes 0..m-1 ("lanes")
#   tma2   x as two 2-D TMA boxes 64 k x 64 rows (SW128) + weights 4 KB + scales 128 B  (= wq now)
#   tma3   x as one 3-D TMA box 64 x 64 x 2 (SW128) + weights with the scales inline, 4,224 B  (proposed)
#   one    no consumer hand-off: all stages' copies on one barrier, issued at once (raw copy rate)
import sys, json, ctypes, cupy as cp, numpy as np
SRC = r'''
struct __align__(64) Tmap { unsigned long long v[16]; };
__device__ __forceinline__ bool tw(unsigned a, unsigned ph) {
    unsigned ok; asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0,1,0,p; }"
                              : "=r"(ok) : "r"(a), "r"(ph) : "memory"); return ok; }
__device__ __forceinline__ void bulk(unsigned dst, const void* src, unsigned n, unsigned bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 ::"r"(dst), "l"(src), "r"(n), "r"(bar) : "memory"); }
__device__ __forceinline__ void expect(unsigned bar, unsigned n) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(n) : "memory"); }
// kind: 0 bulk m copies from lane 0; 1 bulk m copies from lanes 0..m-1; 2 tma2; 3 tma3; 4 "one" (bulk, m copies)
extern "C" __global__ void __launch_bounds__(64, 1) cp_probe(const unsigned char* x, const unsigned char* w, const Tmap* tm2,
        const Tmap* tm3, int kind, int sb, int m, int nst, int stages, uint4* dump) {
    extern __shared__ __align__(1024) unsigned char sm[];
    const unsigned raw = (unsigned)__cvta_generic_to_shared(sm), base = (raw + 1023u) & ~1023u;
    unsigned full = base, empty = base + 8 * 16, ring = base + 1024;
    const int tid = threadIdx.x, lane = tid & 31;
    const unsigned slot = (sb + 1023) & ~1023;
    if (tid == 0) {
        for (int i = 0; i < 16; i++) {
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(full + 8 * i));
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(empty + 8 * i));
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    const unsigned char* wb = w + (size_t)blockIdx.x * stages * 4224;
    if (kind == 4) {
        if (tid == 32) {
            unsigned tot = 0;
            expect(full, (unsigned)(min(stages, 32) * sb));
            for (int st = 0; st < min(stages, 32); st++)
                for (int j = 0; j < m; j++) bulk(ring + (st % nst) * slot + j * (sb / m), x + (st % 16) * 16384 + j * (sb / m), sb / m, full);
            (void)tot;
        }
        if (tid == 0) while (!tw(full, 0)) {}
        return;
    }
    if (tid >= 32) {
        int sl = 0; unsigned ph = 0;
        for (int st = 0; st < stages; st++) {
            if (st >= nst) while (!tw(empty + 8 * sl, ph ^ 1)) {}
            const unsigned s = ring + sl * slot, fb = full + 8 * sl;
            if (kind == 0 || kind == 1) {
                const unsigned piece = sb / m;
                if (lane == 0) expect(fb, sb);
                __syncwarp();
                for (int j = 0; j < m; j++)
                    if ((kind == 0 && lane == 0) || (kind == 1 && lane == j))
                        bulk(s + j * piece, (j == m - 1 ? wb + (size_t)st * 4224 : x + (st % 16) * 16384) + (j == m - 1 ? 0 : j * piece), piece, fb);
            } else if (lane == 0) {
                const int k0 = (st % 16) * 128;
                if (kind == 2) {
                    expect(fb, 16384 + 4096 + 128);
                    for (int b = 0; b < 2; b++)
                        asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
                                     ::"r"(s + b * 8192), "l"(tm2), "r"(k0 + 64 * b), "r"(0), "r"(fb) : "memory");
                    bulk(s + 16384, wb + (size_t)st * 4224, 4096, fb);
                    bulk(s + 16384 + 4096, wb + (size_t)st * 4224 + 4096, 128, fb);
                } else {
                    expect(fb, 16384 + 4224);
                    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];"
                                 ::"r"(s), "l"(tm3), "r"(0), "r"(0), "r"(k0 / 64), "r"(fb) : "memory");
                    bulk(s + 16384, wb + (size_t)st * 4224, 4224, fb);
                }
            }
            __syncwarp();
            if (++sl == nst) { sl = 0; ph ^= 1; }
        }
    } else if (tid == 0) {
        int sl = 0; unsigned ph = 0;
        for (int st = 0; st < stages; st++) {
            while (!tw(full + 8 * sl, ph)) {}
            asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(empty + 8 * sl) : "memory");
            if (++sl == nst) { sl = 0; ph ^= 1; }
        }
    }
    __syncthreads();
    if (dump) for (int i = tid; i < 1024; i += 64) dump[i] = ((const uint4*)(sm + (ring - raw)))[i];
}
'''
mod = cp.RawModule(code=SRC, options=("-arch=sm_90a", "-std=c++17"), backend="nvrtc")
k = mod.get_function("cp_probe")
nsm = cp.cuda.Device().attributes["MultiProcessorCount"]
print(cp.cuda.runtime.getDeviceProperties(0)["name"].decode(), "SMs", nsm, flush=True)
T, K = 64, 2048
x = cp.random.randint(0, 255, size=(T * K * 2 + 65536,), dtype=cp.uint8)   # (64, 2048) f16 activations
STAGES = 64
w = cp.random.randint(0, 255, size=(2 * nsm * STAGES * 4224 + 4096,), dtype=cp.uint8)
cuda = ctypes.CDLL("libcuda.so.1")
def tmap(rank, dims, strides, box):
    out = (ctypes.c_ulonglong * 16)()
    gd = (ctypes.c_ulonglong * rank)(*dims); gs = (ctypes.c_ulonglong * (rank - 1))(*strides)
    bd = (ctypes.c_uint * rank)(*box); es = (ctypes.c_uint * rank)(*([1] * rank))
    # dtype FLOAT16 = 6, interleave none 0, swizzle 128B = 3, L2 promotion 128B = 2, oob fill none 0
    rc = cuda.cuTensorMapEncodeTiled(out, 6, rank, ctypes.c_void_p(x.data.ptr), gd, gs, bd, es, 0, 3, 2, 0)
    if rc:
        print(f"cuTensorMapEncodeTiled rank {rank} dims {dims} strides {strides}: error {rc}", flush=True)
        return None
    return cp.asarray(np.frombuffer(bytes(out), dtype=np.uint8))
tm2 = tmap(2, (K, T), (K * 2,), (64, 64))
tm3 = tmap(3, (64, T, K // 64), (K * 2, 128), (64, 64, 2))
res = []
def run(name, kind, sb, m, nst, blocks, smem_pad=0):
    smem = max(2048 + nst * ((sb + 1023) & ~1023), smem_pad)
    k.max_dynamic_shared_size_bytes = smem
    args = (x, w, tm2, tm3 if tm3 is not None else tm2, np.int32(kind), np.int32(sb), np.int32(m), np.int32(nst),
            np.int32(STAGES), np.uint64(0))
    k((blocks,), (64,), args, shared_mem=smem); cp.cuda.runtime.deviceSynchronize()
    ts = []
    for _ in range(5):
        e0, e1 = cp.cuda.Event(), cp.cuda.Event(); e0.record()
        for _ in range(10): k((blocks,), (64,), args, shared_mem=smem)
        e1.record(); e1.synchronize(); ts.append(cp.cuda.get_elapsed_time(e0, e1) / 10 * 1e3)
    us = float(np.median(ts))
    r = dict(name=name, kind=kind, stage_bytes=sb, m=m, nst=nst, blocks=blocks, us=us, ns_per_stage=us * 1e3 / STAGES,
             per_block_GBs=STAGES * sb / us / 1e3)
    res.append(r); print(json.dumps(r), flush=True)
# the content check of tma3 against tma2: the same 16 KB in slot 0 after one stage (one block)
def dump(kind):
    d = cp.zeros((16384,), dtype=cp.uint8)
    k.max_dynamic_shared_size_bytes = 2048 + 21504
    k((1,), (64,), (x, w, tm2, tm3, np.int32(kind), np.int32(20480), np.int32(2), np.int32(1), np.int32(1),
                    np.uint64(d.data.ptr)), shared_mem=2048 + 21504)
    cp.cuda.runtime.deviceSynchronize(); return d.get()
if tm3 is not None:
    a, b = dump(2), dump(3)
    print("tma3 slot == tma2 slot:", bool((a == b).all()), "nonzero", int((a != 0).sum()), flush=True)
for blocks in (nsm, 176):
    for m in (1, 2, 4, 8): run(f"bulk_m{m}", 0, 20480, m, 4, blocks)
    for m in (2, 4): run(f"bulk_lanes_m{m}", 1, 20480, m, 4, blocks)
    run("tma2_wq_now", 2, 16384 + 4224, 4, 4, blocks)
    if tm3 is not None:
        run("tma3_proposed", 3, 16384 + 4224, 2, 4, blocks)
        run("tma3_proposed_nst6", 3, 16384 + 4224, 2, 6, blocks)
for m in (1, 2, 4): run(f"one_m{m}", 4, 16384, m, 8, nsm)
json.dump(res, open(sys.argv[1] if len(sys.argv) > 1 else "copyprobe.json", "w"), indent=1)
