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
//  - x slice [kbeg, kend) staged once after the wait by cp.async in the same core-matrix order (core
//    (ng, kg) at (kg · NT + 8·ng) · 16 bytes): B LBO NT·16 B, SBO 128 B; rows >= T zero;
//  - grid (S, tiles) in clusters of (S, 1, 1): block (s, tile) owns output rows [64·tile, +64) and K
//    slice s of `ks`; split-K merged as tcg3 (partials through shared memory + DSMEM, deterministic),
//    then tc_epilogue (f16 weights: no row scales; quantized engines pass their f16 copy).
//  - `dm` & 1 swaps LBO and SBO in both descriptors (checking the encoding on the GPU; 0 is right,
//    session 7 call 1); `dm` & 2 loads the weight stages by per-thread cp.async instead (nst <= 9).
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
__device__ __forceinline__ void g4_bar_init(u32 bar) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(bar) : "memory");
}
// One bulk copy global → this block's shared memory, completing `bytes` on mbarrier `bar`.
__device__ __forceinline__ void g4_bulk(u32 dst, const void* src, u32 bytes, u32 bar) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst),
                 "l"(src), "r"(bytes), "r"(bar)
                 : "memory");
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
// Dynamic shared memory: 128 (up to 16 mbarriers) + max(nst · 8 KB + NT · ks · 2, NT · 68 · 4).
template <int EPI, int K, int NT>
__device__ __forceinline__ void tcg4_body(const GemvArgs& a, const int ks, const int nst, const int dm) {
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    constexpr u32 SB = 64 * TCG4_KC * 2;  // bytes per stage
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const int T = a.T, N = a.N;
    const int S = gridDim.x, s = blockIdx.x, tile = blockIdx.y;
    const int kbeg = s * ks, kend = min(kbeg + ks, K);
    const int nstage = (kend - kbeg + TCG4_KC - 1) / TCG4_KC;
    const u32 base = g3_smem(smem_raw), bars = base, ring = base + 128, xsm = ring + nst * SB;
    const unsigned char* wt = (const unsigned char*)a.w + (size_t)tile * K * 128;
    if (tid == 0) {
        for (int i = 0; i < nst; i++) g4_bar_init(bars + 8 * i);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    }
    __syncthreads();
    // dm & 2: the weight stages by per-thread cp.async (16-byte pieces of the same contiguous run,
    // one commit group per stage) instead of one bulk copy + mbarrier (an A/B of the copy path).
    const bool cpa = (dm & 2) != 0;
    auto issue_cp = [&](int st) {
        if (st < nstage) {
            const int k0 = kbeg + st * TCG4_KC, pieces = min(TCG4_KC, kend - k0) * 8;
            const unsigned char* src = wt + (size_t)k0 * 128;
            const u32 dst = ring + (st % nst) * SB;
            for (int j = tid; j < pieces; j += blockDim.x) cp_async16(dst + j * 16, src + (size_t)j * 16, 16);
        }
        cp_async_commit();
    };
    if (cpa) {
        for (int st = 0; st < nst; st++) issue_cp(st);
    } else if (tid == 0) {
        for (int st = 0; st < nst && st < nstage; st++) {
            const int k0 = kbeg + st * TCG4_KC;
            g4_bulk(ring + st * SB, wt + (size_t)k0 * 128, (u32)min(TCG4_KC, kend - k0) * 128u, bars + 8 * st);
        }
    }
    pdl_wait();
    {
        // x slice in core-matrix order. Each warp copies 8 rows × 4 column groups: the 8 lanes of a
        // 16-byte phase write one core matrix (128 contiguous bytes: no bank conflict), each row's
        // 4 groups are 64 contiguous bytes of global memory (whole sectors).
        const int kg_n = (kend - kbeg) / 8, nkq = (kg_n + 3) / 4;
        for (int i = tid; i < NT / 8 * nkq * 32; i += blockDim.x) {
            const int b = i >> 5, l = i & 31, rg = b % (NT / 8), kq = b / (NT / 8);
            const int r = rg * 8 + (l & 7), kg = kq * 4 + (l >> 3);
            if (kg >= kg_n) continue;
            const bool in = r < T;
            const void* src = in ? (const void*)(a.x + (size_t)r * K + kbeg + 8 * kg) : (const void*)a.x;
            cp_async16(xsm + (u32)(kg * NT + r) * 16u, src, in ? 16 : 0);
        }
        cp_async_commit();
        cp_async_wait(0);
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // cp.async writes → wgmma reads
    }
    __syncthreads();
    float d[NT / 2];
#pragma unroll
    for (int i = 0; i < NT / 2; i++) d[i] = 0.f;
    const bool sw = (dm & 1) != 0;
    const u32 la = sw ? 128u : 1024u, sa = sw ? 1024u : 128u;
    const u32 lb = sw ? 128u : (u32)NT * 16u, sbb = sw ? (u32)NT * 16u : 128u;
#pragma unroll 1
    for (int st = 0; st < nstage; st++) {
        const int slot = st % nst, k0 = kbeg + st * TCG4_KC, kc = min(TCG4_KC, kend - k0);
        if (cpa) {
            // Committed since the x wait: the refills of stages nst .. st + nst - 2; stage st is
            // complete once at most nst - 2 of them are pending.
            cp_async_wait(nst - 2);
            asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
            __syncthreads();
        } else {
            g4_bar_wait(bars + 8 * slot, (u32)(st / nst) & 1u);
        }
        const u32 wa = ring + slot * SB, xb = xsm + (u32)((st * TCG4_KC / 8) * NT * 16);
        asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
        if (kc == TCG4_KC) {
#pragma unroll
            for (int j = 0; j < TCG4_KC / 16; j++)
                g4_mma<NT>(d, g4_desc(wa + j * 2048u, la, sa), g4_desc(xb + (u32)(j * 2 * NT * 16), lb, sbb));
        } else {
#pragma unroll 1
            for (int j = 0; 16 * j < kc; j++)
                g4_mma<NT>(d, g4_desc(wa + j * 2048u, la, sa), g4_desc(xb + (u32)(j * 2 * NT * 16), lb, sbb));
        }
        asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
        // The previous stage's wgmmas are done once at most this one is pending: refill its slot.
        asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
        __syncthreads();
        const int nx = st - 1 + nst;
        if (cpa) {
            if (st >= 1) issue_cp(nx);
        } else if (tid == 0 && st >= 1 && nx < nstage) {
            const int ps = (st - 1) % nst, kx = kbeg + nx * TCG4_KC;
            g4_bulk(ring + ps * SB, wt + (size_t)kx * 128, (u32)min(TCG4_KC, kend - kx) * 128u, bars + 8 * ps);
        }
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
    pdl_trigger();
    __syncthreads();  // all wgmmas and copies done: the partial tile reuses the ring
    // Partial tile red (NT batch rows, 64 + 4) f32; accumulator i: row 16·warp + g (+8 for i & 2),
    // batch column 8·(i / 4) + 2·t4 (+1 for i & 1).
    constexpr int RS = 64 + 4;
    float* red = (float*)(smem_raw + 128);
#pragma unroll
    for (int i = 0; i < NT / 2; i++) {
        const int t = 8 * (i >> 2) + 2 * t4 + (i & 1), row = 16 * warp + g + ((i & 2) ? 8 : 0);
        red[t * RS + row] = d[i];
    }
    if (S > 1) cluster_sync_all(); else __syncthreads();
    constexpr int HP = 32;
    const int items = T * HP, per = (items + S - 1) / S;
    const int i1 = min(items, (s + 1) * per);
    const u32 rbase = g3_smem(red);
    for (int i = s * per + tid; i < i1; i += blockDim.x) {
        const int t = i / HP, pl = i - t * HP;
        const u32 off = rbase + (u32)(t * RS + 2 * pl) * 4u;
        float2 v[8];
#pragma unroll
        for (int q = 0; q < 8; q++)
            if (q < S) v[q] = g3_ld2(off, q, S > 1);
        float y0 = 0.f, y1 = 0.f;
#pragma unroll
        for (int q = 0; q < 8; q++)
            if (q < S) { y0 += v[q].x; y1 += v[q].y; }
        const int p = tile * HP + pl;
        if (2 * p >= N) continue;
        tc_epilogue<WF_F16, EPI>(a, t, p, y0, y1);
        if (EPI == EPI_QKV && a.out_act != nullptr && p < QDIM / 2) {
            // Prefill passes: q also as act_t (T, QDIM) for the cuBLAS attention path.
            const int off2 = (p / HALF_HD) * HD + p % HALF_HD;
            const float* qr = a.out + (size_t)t * QDIM + off2;
            a.out_act[(size_t)t * QDIM + off2] = f2act(qr[0]);
            a.out_act[(size_t)t * QDIM + off2 + HALF_HD] = f2act(qr[HALF_HD]);
        }
    }
    if (S > 1) cluster_sync_all();  // no block leaves while others read its shared memory
}
#define TCG4_KERNEL(name, EPI, K, NT)                                                                  \
    extern "C" __global__ void __launch_bounds__(128, 1) name(GemvArgs a, int ks, int nst, int dm) { \
        tcg4_body<EPI, K, NT>(a, ks, nst, dm);                                                       \
    }
TCG4_INSTANCES
#endif
