// tcg4 (session 7, branch gemm7): appended to kernels.cu only for the sm_90a module that
// TRTFORGE_TCG=4 builds (kernels.rs `source_tcg4`, `#define TCG4`), so the default module's source
// (and its kernel-cache key) does not change with it.
// ---------------------------------------------------------------------------------------------
// tcg4 (session 7, branch gemm7): batched decode GEMM on Hopper's warpgroup MMA (wgmma, sm_90a;
// compiled only into the sm_90a module that TRTFORGE_TCG=4 builds, `#define TCG4`).
// y (T, N) = x (T, K) · Wᵀ computed as Yᵀ = W · Xᵀ: the weights are wgmma's A (64 output rows per
// block, M side), x is B (N side = the T rows padded to NT = 16 / 32 / 64), f32 accumulators.
//  - weights: an f16 copy repacked once at load (tcg4_pack) into 64-row tiles, each tile over the
//    whole K as 8-column groups of 64 rows × 16 bytes (1 KB): element (tile·64 + r, 8·kg + e) at
//    halves ((tile · K/8 + kg) · 64 + r) · 8 + e; rows >= N zero. So any 8-aligned k range of a tile
//    is one contiguous run of bytes already in wgmma's no-swizzle K-major core-matrix order (core
//    matrix = 8 rows × 16 bytes): A descriptor LBO (next core matrix along K) 1024 B, SBO (next 8
//    rows) 128 B. One pipeline stage = 64 k = 8 KB = ONE cp.async.bulk into a ring slot, completing
//    on the slot's mbarrier; the first `nst` stages are issued BEFORE griddepcontrol.wait;
//  - x: each stage's NT rows × 64 k as one TMA box (tensor map over x, 128-byte swizzle: 8-row atoms of
//    1024 B, the B descriptor's swizzle mode), rows >= T zero-filled; session 15: streamed through
//    the ring beside the weights by a producer warp, see tcg4_body;
//  - grid (S, tiles) in clusters of (S, 1, 1): block (s, tile) owns output rows [64·tile, +64) and K
//    slice s of `ks`; split-K merged as tcg3 (partials through shared memory + DSMEM, deterministic),
//    then tc_epilogue (f16 weights: no row scales; quantized engines pass their f16 copy).
//  - `dm` is unused since session 15 (session 7: descriptor and copy-path variants).
#if defined(TCG4) && !ACT_F32
#define TCG4_KC 64  // k per pipeline stage
extern "C" __global__ void tcg4_pack(const h16* __restrict__ w, h16* __restrict__ o, int N, int K, int tiles) {
    const size_t kg_n = (size_t)(K / 8), total = (size_t)tiles * kg_n * 64;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int r = (int)(i & 63);
        const size_t q = i >> 6;
        const int kg = (int)(q % kg_n), row = (int)(q / kg_n) * 64 + r;
        uint4 v = make_uint4(0u, 0u, 0u, 0u);
        if (row < N) v = *(const uint4*)(w + (size_t)row * K + (size_t)kg * 8);
        *(uint4*)(o + i * 8) = v;
    }
}
__device__ __forceinline__ unsigned long long g4_desc(u32 addr, u32 lbo, u32 sbo) {
    return (unsigned long long)((addr & 0x3FFFFu) >> 4) | ((unsigned long long)((lbo >> 4) & 0x3FFFu) << 16) |
           ((unsigned long long)((sbo >> 4) & 0x3FFFu) << 32);
}
__device__ __forceinline__ void g4_bar_wait(u32 bar, u32 parity) {
    u32 ok;
    do {
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                     : "=r"(ok)
                     : "r"(bar), "r"(parity)
                     : "memory");
    } while (!ok);
}
template <int NT> __device__ __forceinline__ void g4_mma(float* d, unsigned long long da, unsigned long long db);
template <> __device__ __forceinline__ void g4_mma<16>(float* d, unsigned long long da, unsigned long long db) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %10, 0; wgmma.mma_async.sync.aligned.m64n16k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7}, %8, %9, p, 1, 1, 0, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
                 : "l"(da), "l"(db), "r"(1) : "memory");
}
template <> __device__ __forceinline__ void g4_mma<32>(float* d, unsigned long long da, unsigned long long db) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %18, 0; wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, %16, %17, p, 1, 1, 0, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
                 : "l"(da), "l"(db), "r"(1) : "memory");
}
template <> __device__ __forceinline__ void g4_mma<64>(float* d, unsigned long long da, unsigned long long db) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %34, 0; wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, 0, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "l"(da), "l"(db), "r"(1) : "memory");
}
// A CUtensorMap (cuTensorMapEncodeTiled) passed by value as a __grid_constant__ kernel parameter.
struct __align__(128) G4Tmap { unsigned long long v[16]; };
// One TMA tile load (2-D tensor map, coordinates {inner, outer}) into this block's shared memory,
// completing its bytes on mbarrier `bar` (the caller's expect_tx counts them).
__device__ __forceinline__ void g4_tma2(u32 dst, const G4Tmap* tm, int c0, int c1, u32 bar) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::"r"(dst),
                 "l"((unsigned long long)tm), "r"(c0), "r"(c1), "r"(bar)
                 : "memory");
}
__device__ __forceinline__ void g4_expect(u32 bar, u32 bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void g4_copy(u32 dst, const void* src, u32 bytes, u32 bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst), "l"(src),
                 "r"(bytes), "r"(bar)
                 : "memory");
}
// K-major operand with the 128-byte swizzle (what a TMA box of 64 f16 × rows with SWIZZLE_128B writes):
// 8-row atoms of 1024 bytes (SBO), LBO unused (1), layout type 1 in bits 62-63; a k16 step is +32 bytes.
__device__ __forceinline__ unsigned long long g4_desc_sw128(u32 addr) {
    return (unsigned long long)((addr & 0x3FFFFu) >> 4) | (1ull << 16) | ((unsigned long long)(1024u >> 4) << 32) | (1ull << 62);
}
__device__ __forceinline__ void g4_bar_init_n(u32 bar, u32 n) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(n) : "memory");
}
__device__ __forceinline__ void g4_bar_arrive(u32 bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}
// Session 15 (v3, warp-specialized, after the prototype in docs/benchmarks/2026-12-01-h200-session15/gemm_ws):
// 160 threads = one consumer warpgroup (warps 0-3, the wgmmas) + one producer warp (warp 4, lane 0 issues).
// The ring has `nst` slots of one 64-k stage each: the weight tile (8 KB, one bulk copy) and the x stage
// (NT rows × 64 k, one TMA box of the tensor map `tmx` over x (T rows, K), 128-byte swizzle, rows >= T
// zero-filled by the TMA), both completing on the slot's full barrier (count 1 + the bytes). The first
// `nst` weight stages are issued before griddepcontrol.wait (they do not depend on the previous kernel),
// their x stages after it. The consumer waits on a slot's full barrier, runs its wgmmas, and once the
// previous stage's wgmmas are done (wait_group 1) releases that slot through its empty barrier (count
// 1), on which the producer waits before refilling it. Session 7's version staged the whole x slice first
// and had one warpgroup both load and compute (0.46x cuBLAS at 64 rows); a first session-15 version
// loaded x by per-lane cp.async (+ a proxy fence per stage in the consumer): 2.1x slower than with the
// TMA (docs/benchmarks/2026-12-01-h200-session15). Still 0.62x cuBLAS at 64 rows (opt-in).
// Dynamic shared memory: 1024 (alignment) + 1024 (full[16], empty[16]) + max(nst · slot, NT · 68 · 4),
// slot = 8 KB + NT · 128 (1024-aligned: the swizzle atoms).
template <int EPI, int K, int NT>
__device__ __forceinline__ void tcg4_body(const GemvArgs& a, const G4Tmap* tmx, const int ks, const int nst, const int dm) {
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    constexpr u32 WB = 64 * TCG4_KC * 2, XB = NT * TCG4_KC * 2, SLOT = WB + XB;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const int T = a.T, N = a.N;
    const int S = gridDim.x, s = blockIdx.x, tile = blockIdx.y;
    const int kbeg = s * ks, kend = min(kbeg + ks, K);
    const int nstage = (kend - kbeg + TCG4_KC - 1) / TCG4_KC;
    const u32 raw = g3_smem(smem_raw), base = (raw + 1023u) & ~1023u;
    const u32 full = base, empty = base + 128, ring = base + 1024;
    const unsigned char* wt = (const unsigned char*)a.w + (size_t)tile * K * 128;
    if (tid == 0) {
        for (int i = 0; i < nst; i++) {
            g4_bar_init_n(full + 8 * i, 1);
            g4_bar_init_n(empty + 8 * i, 1);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    (void)dm;
    float d[NT / 2];
#pragma unroll
    for (int i = 0; i < NT / 2; i++) d[i] = 0.f;
    if (warp == 4) {
        if (lane == 0) {
            asm volatile("prefetch.tensormap [%0];" ::"l"((unsigned long long)tmx) : "memory");
            // Slot and phase are carried as counters (no st / nst, st % nst): session 16 found the run-time
            // divisions (nst is a kernel argument) on this single lane's critical path halving the stream.
            auto wstage = [&](int st, int sl) {
                // Always a whole stage: past K (a last partial stage) the 8 KB run into the next tile or
                // the packed copy's zeroed 8 KB tail, finite values that meet the TMA's zero x columns.
                const int k0 = kbeg + st * TCG4_KC;
                g4_expect(full + 8 * sl, WB + XB);
                g4_copy(ring + sl * SLOT, wt + (size_t)k0 * 128, WB, full + 8 * sl);
            };
            auto xstage = [&](int st, int sl) {
                g4_tma2(ring + sl * SLOT + WB, tmx, kbeg + st * TCG4_KC, 0, full + 8 * sl);
            };
            const int pre = min(nst, nstage);
            for (int st = 0; st < pre; st++) wstage(st, st);
            pdl_wait();
            for (int st = 0; st < pre; st++) xstage(st, st);
            int sl = 0;
            u32 ph = 0;  // parity of the empty barrier's phase to wait for (its first completion: 0)
            for (int st = pre; st < nstage; st++) {
                g4_bar_wait(empty + 8 * sl, ph);
                wstage(st, sl);
                xstage(st, sl);
                if (++sl == nst) sl = 0, ph ^= 1u;
            }
        }
    } else {
        int sl = 0, psl = 0;
        u32 ph = 0;
#pragma unroll 1
        for (int st = 0; st < nstage; st++) {
            g4_bar_wait(full + 8 * sl, ph);
            const u32 wa = ring + sl * SLOT, xb = wa + WB;
            // Every stage runs all four k16 steps (a partial last stage's extra columns are zeros in x):
            // a run-time wgmma count made ptxas serialize every wgmma ("WG.AR in divergent path").
            asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
            for (int j = 0; j < TCG4_KC / 16; j++) g4_mma<NT>(d, g4_desc(wa + j * 2048u, 1024u, 128u), g4_desc_sw128(xb + j * 32u));
            asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
            asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");  // the previous stage is done
            if (st > 0 && tid == 0) g4_bar_arrive(empty + 8 * psl);
            psl = sl;
            if (++sl == nst) sl = 0, ph ^= 1u;
        }
        asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
    }
    pdl_trigger();
    __syncthreads();  // all wgmmas and copies done: the partial tile reuses the ring
    // Partial tile red (NT batch rows, 64 + 4) f32; accumulator i: row 16·warp + g (+8 for i & 2),
    // batch column 8·(i / 4) + 2·t4 (+1 for i & 1).
    constexpr int RS = 64 + 4;
    float* red = (float*)(smem_raw + (ring - raw));
    if (warp < 4) {
#pragma unroll
        for (int i = 0; i < NT / 2; i++) {
            const int t = 8 * (i >> 2) + 2 * t4 + (i & 1), row = 16 * warp + g + ((i & 2) ? 8 : 0);
            red[t * RS + row] = d[i];
        }
    }
    if (S > 1) cluster_sync_all(); else __syncthreads();
    constexpr int HP = 32;
    const int items = T * HP, per = (items + S - 1) / S;
    const int i1 = min(items, (s + 1) * per);
    const u32 rbase = g3_smem(red);
    // Eight items per thread at a time, their sums and (residual outputs) old values loaded before any
    // store, so the residual's read-modify-write round trips overlap (the residual add is tc_epilogue's
    // EPI_RESID for f16 weights, inlined for that). Measured no faster than one item at a time (session 15
    // call 6, while every wgmma was still serialized); kept because it is what the final measurement ran.
    constexpr int EU = 8;
    for (int c0 = s * per + tid; c0 < i1; c0 += EU * (int)blockDim.x) {
        float y0[EU], y1[EU];
        float2 old[EU];
#pragma unroll
        for (int u = 0; u < EU; u++) {
            const int i = c0 + u * (int)blockDim.x;
            y0[u] = 0.f, y1[u] = 0.f;
            old[u] = make_float2(0.f, 0.f);
            if (i < i1) {
                const int t = i / HP, pl = i - t * HP, p = tile * HP + pl;
                const u32 off = rbase + (u32)(t * RS + 2 * pl) * 4u;
#pragma unroll
                for (int q = 0; q < 8; q++)
                    if (q < S) {
                        const float2 v = g3_ld2(off, q, S > 1);
                        y0[u] += v.x;
                        y1[u] += v.y;
                    }
                if (EPI == EPI_RESID && 2 * p < N) old[u] = __ldcg((const float2*)(a.out + (size_t)t * N + 2 * p));
            }
        }
#pragma unroll
        for (int u = 0; u < EU; u++) {
            const int i = c0 + u * (int)blockDim.x;
            if (i >= i1) continue;
            const int t = i / HP, pl = i - t * HP, p = tile * HP + pl;
            if (2 * p >= N) continue;
            if (EPI == EPI_RESID) {
                *(float2*)(a.out + (size_t)t * N + 2 * p) = make_float2(old[u].x + y0[u], old[u].y + y1[u]);
                continue;
            }
            tc_epilogue<WF_F16, EPI>(a, t, p, y0[u], y1[u]);
            if (EPI == EPI_QKV && a.out_act != nullptr && p < QDIM / 2) {
                // Prefill passes: q also as act_t (T, QDIM) for the cuBLAS attention path.
                const int off2 = (p / HALF_HD) * HD + p % HALF_HD;
                const float* qr = a.out + (size_t)t * QDIM + off2;
                a.out_act[(size_t)t * QDIM + off2] = f2act(qr[0]);
                a.out_act[(size_t)t * QDIM + off2 + HALF_HD] = f2act(qr[HALF_HD]);
            }
        }
    }
    if (S > 1) cluster_sync_all();  // no block leaves while others read its shared memory
}
#define TCG4_KERNEL(name, EPI, K, NT)                                                                  \
    extern "C" __global__ void __launch_bounds__(160, 1)                                                \
        name(GemvArgs a, int ks, int nst, int dm, const __grid_constant__ G4Tmap tmx) {                \
        tcg4_body<EPI, K, NT>(a, &tmx, ks, nst, dm);                                                 \
    }
TCG4_INSTANCES
#endif
