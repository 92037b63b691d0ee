# Session 47 probe: how fast can ONE SM pull bytes from L2 into shared memory with 1-D bulk copies (the wq
# kernel's weight path; its x path is TMA of the same size), with 1 or 2 blocks an SM, and does it matter whether
# every block reads the SAME bytes (wq's x: all tiles read the same activation rows) or its own L2-resident
# region? Kernel: one producer thread keeps an NST-slot ring of CH-byte copies in flight; one consumer thread
# waits each slot full and frees it. Timing: cupy events over REP launches, median of 5.
import sys, json, cupy as cp, numpy as np
SRC = r'''
extern "C" __global__ void __launch_bounds__(64, 1) l2p(const unsigned char* src, long long region, int ch, int nch,
                                                        int nst, int same) {
    extern __shared__ __align__(1024) unsigned char sm[];
    unsigned base = (unsigned)__cvta_generic_to_shared(sm);
    unsigned full = base, empty = base + 8 * 16, ring = base + 1024;
    int tid = threadIdx.x;
    if (tid == 0) {
        for (int i = 0; i < nst; i++) {
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(full + 8 * i));
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(empty + 8 * i));
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    const unsigned char* my = src + (same ? 0 : (long long)blockIdx.x * region);
    long long nreg = region / ch;
    if (tid == 32) {
        int sl = 0; unsigned ph = 0;
        for (int i = 0; i < nch; i++) {
            if (i >= nst) {
                unsigned ok = 0;
                while (!ok) asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0,1,0,p; }"
                                         : "=r"(ok) : "r"(empty + 8 * sl), "r"(ph ^ 1) : "memory");
            }
            asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(full + 8 * sl), "r"(ch) : "memory");
            const unsigned char* g = my + (long long)((i + blockIdx.x) % nreg) * ch;
            asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                         ::"r"(ring + sl * ch), "l"(g), "r"(ch), "r"(full + 8 * sl) : "memory");
            if (++sl == nst) { sl = 0; ph ^= 1; }
        }
    } else if (tid == 0) {
        int sl = 0; unsigned ph = 0;
        for (int i = 0; i < nch; i++) {
            unsigned ok = 0;
            while (!ok) asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0,1,0,p; }"
                                     : "=r"(ok) : "r"(full + 8 * sl), "r"(ph) : "memory");
            asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(empty + 8 * sl) : "memory");
            if (++sl == nst) { sl = 0; ph ^= 1; }
        }
    }
}
'''
mod = cp.RawModule(code=SRC, options=("-arch=sm_90", "-std=c++17"), backend="nvrtc")
k = mod.get_function("l2p")
dev = cp.cuda.Device()
nsm = dev.attributes["MultiProcessorCount"]
print(cp.cuda.runtime.getDeviceProperties(0)["name"].decode(), "SMs", nsm, flush=True)
REGION = 256 * 1024
buf = cp.random.randint(0, 255, size=(4 * 132 * REGION + REGION,), dtype=cp.uint8)
res = []
def run(blocks, ch, nst, same, per_sm, nch_total=256 * 1024 * 4):
    nch = nch_total // ch
    smem = 1024 + nst * ch
    # pad shared memory so exactly per_sm blocks fit an SM (227 KB usable)
    smem = max(smem, {1: 120, 2: 100, 4: 50}[per_sm] * 1024)
    k.max_dynamic_shared_size_bytes = smem
    args = (buf, np.int64(REGION), np.int32(ch), np.int32(nch), np.int32(nst), np.int32(same))
    k((blocks,), (64,), args, shared_mem=smem)
    cp.cuda.runtime.deviceSynchronize()
    ts = []
    for _ in range(5):
        e0, e1 = cp.cuda.Event(), cp.cuda.Event()
        e0.record()
        for _ in range(10): k((blocks,), (64,), args, shared_mem=smem)
        e1.record(); e1.synchronize()
        ts.append(cp.cuda.get_elapsed_time(e0, e1) / 10 * 1e3)
    us = float(np.median(ts))
    byts = blocks * nch * ch
    r = dict(blocks=blocks, ch=ch, nst=nst, same=same, per_sm=per_sm, us=us, agg_GBs=byts / us / 1e3,
             per_block_GBs=nch * ch / us / 1e3)
    res.append(r)
    print(json.dumps(r), flush=True)
for same in (1, 0):
    for ch, nst in ((16384, 4), (20480, 4), (16384, 8), (8192, 8), (32768, 4)):
        run(nsm, ch, nst, same, 1)
    for blocks, per in ((nsm, 2), (2 * nsm, 2), (176, 2), (4 * nsm, 4)):
        run(blocks, 16384, 4 if per <= 2 else 2, same, per)
json.dump(res, open(sys.argv[1] if len(sys.argv) > 1 else "l2probe.json", "w"), indent=1)
