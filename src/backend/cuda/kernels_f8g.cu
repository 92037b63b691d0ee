// f8g (session 28): the W8A8 FP8 decode GEMM on Hopper's warpgroup MMA for 9..64 rows (sm_90a only:
// appended to the module that fp8 engines build on cc 9.0, kernels.rs `source_sm90a`, `#define F8G`).
//   y[t, n] = xs[t] · ws[n] · Σ_k e4m3(xq[t, k]) · e4m3(wq[n, k])   (+ y[t, n] where acc)   f32 out
// the interface of the FP8 GEMM path (`TRTFORGE_FP8_GEMM`): xq + xs from rmsnorm_q8 / swiglu_q8 /
// quant_e4m3_rows, the stored E4M3 codes (n, k) row-major and their per-output-row scales; o / down add
// into the residual. cuBLASLt's FP8 GEMM, the W8A16 GEMMs of sessions 15-16 and cuBLAS on the f16 copy
// all took 29-41 us a TinyLlama layer at 64 rows; the session-28 prototype of this kernel
// (docs/benchmarks/2026-12-03-h200-session28/f8g) measured what it gives.
//  - both operands E4M3 straight from shared memory (wgmma m64nNTk32 .e4m3.e4m3, QGMMA): no conversion;
//  - weights by TMA boxes straight from the row-major codes: box {128 bytes of k, 64 rows} with the
//    128-byte swizzle is wgmma's K-major SW128 layout (8-row atoms of 1024 bytes, a k32 step = +32 bytes),
//    so no repacked copy; x the same, box {128, NT}, rows >= T zero-filled by the TMA;
//  - one producer warp (lane 0 issues), one consumer warpgroup; an NST-slot ring with full (count 1 + tx
//    bytes) / empty (count 1) mbarriers; the first NST weight boxes are issued before griddepcontrol.wait;
//  - PROMO: each 128-k stage sums into a fresh accumulator set (two sets, alternating) that is added to f32
//    totals once complete, so the tensor cores' reduced-precision accumulation spans 128 products only;
//  - grid (S, tiles) in clusters of (S, 1, 1), S | NT: block s takes k stages [s·per, min((s+1)·per, K/128));
//    the partial tiles meet in the owner of each batch-row range (rank q owns rows [q·NT/S, +NT/S)): every
//    rank bulk-copies each owner its rows' partial (cp.async.bulk shared::cta → shared::cluster, completing
//    on the owner's mbarrier), the owner sums the S copies in rank order (deterministic) and writes
//    y = sum · xs · ws (+ y). No cluster barrier waits on the critical path: one barrier phase orders the
//    mbarrier inits before the copies, a second (arrive on receipt, wait at exit) keeps every block alive
//    until the copies out of it are done.
#if defined(F8G)
#define F8G_KC 128  // k per stage: 128 E4M3 bytes, one swizzle row
// m64 × NT × k32, E4M3 × E4M3 → f32; `fresh` zeroes the accumulators first (scale-d = 0).
template <int NT> __device__ __forceinline__ void f8_mma(float* d, unsigned long long da, unsigned long long db, int fresh);
#define F8_MMA_TAIL : "l"(da), "l"(db), "r"(fresh) : "memory")
template <> __device__ __forceinline__ void f8_mma<64>(float* d, unsigned long long da, unsigned long long db, int fresh) {
    asm volatile("{ .reg .pred p; setp.eq.s32 p, %34, 0; wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 "
                 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, "
                 "%32, %33, p, 1, 1; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]),
                   "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]),
                   "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
                   "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]) F8_MMA_TAIL;
}
template <> __device__ __forceinline__ void f8_mma<32>(float* d, unsigned long long da, unsigned long long db, int fresh) {
    asm volatile("{ .reg .pred p; setp.eq.s32 p, %18, 0; wgmma.mma_async.sync.aligned.m64n32k32.f32.e4m3.e4m3 "
                 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, %16, %17, p, 1, 1; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]),
                   "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]) F8_MMA_TAIL;
}
template <> __device__ __forceinline__ void f8_mma<16>(float* d, unsigned long long da, unsigned long long db, int fresh) {
    asm volatile("{ .reg .pred p; setp.eq.s32 p, %10, 0; wgmma.mma_async.sync.aligned.m64n16k32.f32.e4m3.e4m3 "
                 "{%0,%1,%2,%3,%4,%5,%6,%7}, %8, %9, p, 1, 1; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]) F8_MMA_TAIL;
}
#undef F8_MMA_TAIL
// One 128-k stage: four k32 wgmmas into d (the first with scale-d = 0 where `fresh`).
template <int NT> __device__ __forceinline__ void f8_stage(float* d, unsigned wa, unsigned xb, int fresh) {
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
    for (int j = 0; j < F8G_KC / 32; j++) f8_mma<NT>(d, hop_desc_sw128(wa + j * 32u), hop_desc_sw128(xb + j * 32u), j == 0 ? fresh : 0);
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
}
// Dynamic shared memory: 1024 (alignment) + 1024 (barriers) + NT · 256 (received partials, S > 1) + NST · slot.
template <int NT, int NST, int PROMO>
__device__ __forceinline__ void f8g_body(const HopTmap* tmw, const HopTmap* tmx, const float* __restrict__ ws, const float* __restrict__ xs,
                                         float* y, const int T, const int N, const int K, const int per, const int acc) {
    extern __shared__ __align__(1024) unsigned char f8_raw[];
    constexpr unsigned WB = 64 * F8G_KC, XB = NT * F8G_KC, SLOT = WB + XB, RECV = NT * 256;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int S = gridDim.x, s = blockIdx.x, tile = blockIdx.y;
    const int st0 = s * per, nstage = max(0, min(per, K / F8G_KC - st0));
    const unsigned raw = hop_smem(f8_raw), base = (raw + 1023u) & ~1023u;
    unsigned char* sm = f8_raw + (base - raw);
    const unsigned full = base, empty = base + 256, rbar = base + 512, recv = base + 1024, ring = recv + RECV;
    if (tid == 0) {
        for (int i = 0; i < NST; i++) {
            hop_bar_init(full + 8 * i, 1);
            hop_bar_init(empty + 8 * i, 1);
        }
        hop_bar_init(rbar, 1);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        if (S > 1) hop_bar_expect(rbar, RECV);  // every rank's rows of this block: S · (NT/S) · 64 f32
    }
    __syncthreads();
    if (S > 1) asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");  // phase 1: inits done
    float d[NT / 2], e[NT / 2], tot[NT / 2];
#pragma unroll
    for (int i = 0; i < NT / 2; i++) d[i] = 0.f, e[i] = 0.f, tot[i] = 0.f;
    if (warp == 4) {
        if (lane == 0) {
            asm volatile("prefetch.tensormap [%0];" ::"l"((unsigned long long)tmw) : "memory");
            asm volatile("prefetch.tensormap [%0];" ::"l"((unsigned long long)tmx) : "memory");
            const int pre = min(NST, nstage);
            for (int st = 0; st < pre; st++) {
                hop_bar_expect(full + 8 * st, SLOT);
                hop_tma_2d(ring + st * SLOT, tmw, (st0 + st) * F8G_KC, tile * 64, full + 8 * st);
            }
            pdl_wait();
            for (int st = 0; st < pre; st++) hop_tma_2d(ring + st * SLOT + WB, tmx, (st0 + st) * F8G_KC, 0, full + 8 * st);
            int sl = 0;
            unsigned ph = 0;
            for (int st = pre; st < nstage; st++) {
                hop_bar_wait(empty + 8 * sl, ph);
                hop_bar_expect(full + 8 * sl, SLOT);
                hop_tma_2d(ring + sl * SLOT, tmw, (st0 + st) * F8G_KC, tile * 64, full + 8 * sl);
                hop_tma_2d(ring + sl * SLOT + WB, tmx, (st0 + st) * F8G_KC, 0, full + 8 * sl);
                if (++sl == NST) sl = 0, ph ^= 1u;
            }
        }
    } else {
        int sl = 0, psl = 0;
        unsigned ph = 0;
        // One stage: wait for its slot, its wgmmas into `acc` (fresh where PROMO), wait for the previous
        // stage's group, release the previous slot. Straight-line code for the two accumulator sets (a
        // branch choosing the set made ptxas serialize every wgmma, C7514).
        auto step = [&](float* acc, const int st) {
            hop_bar_wait(full + 8 * sl, ph);
            const unsigned wa = ring + sl * SLOT;
            f8_stage<NT>(acc, wa, wa + WB, PROMO);
            asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");  // the previous stage is done
            if (st > 0 && tid == 0) hop_bar_arrive(empty + 8 * psl);
            psl = sl;
            if (++sl == NST) sl = 0, ph ^= 1u;
        };
        if (PROMO) {
            int st = 0;
#pragma unroll 1
            for (; st + 1 < nstage; st += 2) {
                step(d, st);
                if (st > 0) {
#pragma unroll
                    for (int i = 0; i < NT / 2; i++) tot[i] += e[i];
                }
                step(e, st + 1);
#pragma unroll
                for (int i = 0; i < NT / 2; i++) tot[i] += d[i];
            }
            if (st < nstage) {
                step(d, st);
                if (st > 0) {
#pragma unroll
                    for (int i = 0; i < NT / 2; i++) tot[i] += e[i];
                }
                asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
                for (int i = 0; i < NT / 2; i++) tot[i] += d[i];
            } else {
                asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
                if (nstage > 0) {
#pragma unroll
                    for (int i = 0; i < NT / 2; i++) tot[i] += e[i];
                }
            }
        } else {
#pragma unroll 1
            for (int st = 0; st < nstage; st++) step(d, st);
            asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
            for (int i = 0; i < NT / 2; i++) tot[i] = d[i];
        }
    }
    pdl_trigger();
    pdl_wait();       // every thread: xs and the residual below come from earlier kernels
    __syncthreads();  // every stage consumed: the ring holds this block's partial tile now
    // Partial tile red [t][64] f32 (rows of one owner contiguous). Accumulator i: output row
    // 16·warp + g (+8 for i & 2), batch row 8·(i / 4) + 2·t4 (+1 for i & 1).
    float* red = (float*)(sm + (ring - base));
    if (warp < 4) {
        const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
        for (int i = 0; i < NT / 2; i++) red[(8 * (i >> 2) + 2 * t4 + (i & 1)) * 64 + 16 * warp + g + ((i & 2) ? 8 : 0)] = tot[i];
    }
    const int rpr = NT / S;  // batch rows per owner
    const float* src;        // [q][rpr][64] partials to sum (q < S), this block's own rows from q·rpr... (S = 1: red itself)
    int trow0;
    if (S > 1) {
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // red's generic writes → the bulk copies
        __syncthreads();
        asm volatile("barrier.cluster.wait.aligned;" ::: "memory");  // phase 1: every owner's rbar is initialised
        if (tid == 0) {
            for (int q = 0; q < S; q++) {
                if (q * rpr >= T) break;  // owners of rows past T receive nothing (and expect nothing: see below)
                const unsigned dst = hop_mapa(recv + (unsigned)(s * rpr * 256), (unsigned)q), bar = hop_mapa(rbar, (unsigned)q);
                asm volatile("cp.async.bulk.shared::cluster.shared::cta.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst),
                             "r"(ring + (unsigned)(q * rpr * 256)), "r"(rpr * 256), "r"(bar)
                             : "memory");
            }
        }
        src = (const float*)(sm + 1024);
        trow0 = s * rpr;
    } else {
        __syncthreads();
        src = red;
        trow0 = 0;
    }
    const bool owner = trow0 < T;
    // Rows of this owner: trow0 .. min(trow0 + rpr, T); items = (row, output pair), pairs fastest.
    const int nrow = owner ? min(rpr, T - trow0) : 0, items = nrow * 32;
    if (S > 1 && owner) hop_bar_wait(rbar, 0);
    if (S > 1) asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory");  // phase 2: received
    for (int i = tid; i < items; i += blockDim.x) {
        const int tl = i >> 5, r = 2 * (i & 31), t = trow0 + tl, n = tile * 64 + r;
        if (n >= N) continue;
        float y0 = 0.f, y1 = 0.f;
        for (int q = 0; q < S; q++) {
            const float2 v = *(const float2*)(src + (q * rpr + tl) * 64 + r);
            y0 += v.x, y1 += v.y;
        }
        const float sx = xs[t];
        const float2 w2 = *(const float2*)(ws + n);
        float2 o = make_float2(y0 * sx * w2.x, y1 * sx * w2.y);
        float2* dst = (float2*)(y + (size_t)t * N + n);
        if (acc) {
            const float2 old = *dst;
            o.x += old.x, o.y += old.y;
        }
        *dst = o;
    }
    if (S > 1) asm volatile("barrier.cluster.wait.aligned;" ::: "memory");  // phase 2: every copy out of this block is done
}
#define F8G_KERNEL(name, NT, NST, PROMO)                                                                         \
    extern "C" __global__ void __launch_bounds__(160, 1)                                                          \
        name(const __grid_constant__ HopTmap tmw, const __grid_constant__ HopTmap tmx, const float* __restrict__ ws, \
             const float* __restrict__ xs, float* y, int T, int N, int K, int per, int acc) {                    \
        f8g_body<NT, NST, PROMO>(&tmw, &tmx, ws, xs, y, T, N, K, per, acc);                                      \
    }
F8G_KERNEL(f8g_64, 64, 3, 1)
F8G_KERNEL(f8g_32, 32, 6, 1)
F8G_KERNEL(f8g_16, 16, 8, 1)
F8G_KERNEL(f8g_64_np, 64, 3, 0)
F8G_KERNEL(f8g_64_s4, 64, 4, 1)
#endif
