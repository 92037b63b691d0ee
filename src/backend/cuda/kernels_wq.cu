// wq (session 37): the batched decode GEMM for 9..=64 rows that reads QUANTIZED weights as they are streamed
// (int8, int4 g128, fp8 W8A16; sm_90a only: appended to the module built for sm_90a on cc 9.0 with
// TRTFORGE_WQ=1, kernels.rs `source_sm90a`, `#define WQ`). Without it those passes read the load-time f16 copy
// through cuBLASLt, i.e. the fp16 engine's bytes. Prototype and measurements: docs/benchmarks/2026-12-04-h200-
// session37 (wq/wqe.cu is this kernel in a harness, checked against cuBLAS on the dequantized weights).
//   y[t, n] = Σ_k x[t, k] · w[n, k]   (· s[n] for int8 / fp8)   (+ y[t, n] where acc)   f32 out, t < T <= 64
//  - x: the pass's activation rows (T, K) f16 by TMA boxes of 64 k × 64 rows with the 128-byte swizzle (wgmma's
//    K-major SW128 operand B, N = 64 rows). The tensor map spans 64 rows of the activation buffer where it holds
//    them (launch.rs `wq`, session 51): rows >= T reach only their own outputs, which are not written; a map of T
//    rows, the TMA zero-filling each box past them, cost up to 4.9 µs a launch at 40 rows (session 51, H100);
//  - weights: a load-time pack (wq.rs) of 64-row tiles × 128-k chunks in wgmma's register-operand A fragment
//    order, one 16-byte shared load a lane per 4 (int4) or 2 (8-bit) k16 steps; int4 with its group scales
//    (g128) packed beside; each lane converts its codes into f16 fragments (int8: prmt into 1024 + b minus
//    1152; fp8: cvt.rn.f16x2.e4m3x2; int4: lop3 into 1024 + u minus 1032, times the row's group scale) and
//    runs wgmma m64n64k16 with A from registers (RS);
//  - one producer warp (lane 0 issues: weights by 1-D bulk copies, the first NST stages before
//    griddepcontrol.wait, x by TMA after it) and one consumer warpgroup over an NST-slot mbarrier ring; the
//    consumer waits for its previous stage's MMAs (wait_group 0) before converting the next stage's codes:
//    ptxas serializes every wgmma otherwise (C7513, seen in the prototype). Two or four consumer warpgroups taking
//    the stages in turn were measured and lost (sessions 47 / 49: −2 % / −15 % at int4 bs64; the default already
//    runs two blocks an SM); their code: docs/benchmarks/2026-12-05-h200-session49/wq_wg.patch;
//  - the copies a stage (session 47, `cm`): with cm & 1 x arrives as ONE 3-D box (64 k, 64 rows, 2: the same
//    two SW128 tiles) and with cm & 2 int4's scales sit behind each chunk's codes in W (one copy of 4,224
//    bytes): 2 copies a stage instead of 4 — 233 instead of 281 ns a stage in isolation (probe:
//    docs/benchmarks/2026-12-05-h200-session47), within ±1 % inside the step;
//  - grid (S, N / 64) in clusters of (S, 1, 1): K split into S slices; the partial tiles are summed through
//    distributed shared memory in rank order (deterministic), each rank writing its share of the outputs.
//    Issuing a pair's S distributed loads before its sums measured within ±1 % (sessions 50 / 51);
//  - a wide variant with the operands swapped (x as A, 2 or 4 converted weight tiles as N by stmatrix into shared
//    memory, wgmma m64n128 / n256 SS) was correct and lost −21 to −31 % at bs64 (sessions 50 / 51, H100: a per-SM
//    rate ≈ 10 % above this kernel's, and K-split clusters of 3 at one block an SM fit 39 of 44 clusters at once, so
//    gate/up ran in two waves); its code and the batched sums: docs/benchmarks/2026-12-06-h200-session51/wqs.patch.
#if defined(WQ)
__device__ __forceinline__ void wq_bulk(unsigned dst, const void* src, unsigned bytes, unsigned bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst), "l"(src),
                 "r"(bytes), "r"(bar)
                 : "memory");
}
__device__ __forceinline__ void wq_cl_sync() {
    asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}
#define WQ_D32                                                                                                                      \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]),         \
        "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]),       \
        "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),       \
        "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
// m64 (weight rows) × n64 (activation rows) × k16, A from registers, B (K-major SW128) by descriptor.
__device__ __forceinline__ void wq_mma(float* d, const u32* a, unsigned long long db) {
    asm volatile(
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,"
        "%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, 1, 1, 1, 0;"
        : WQ_D32
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db)
        : "memory");
}
// Four 8-bit codes of one word → two f16x2 (bytes 0, 1 → r0; bytes 2, 3 → r1), unscaled (kernels.cu's converters).
template <int WF>
__device__ __forceinline__ void wq_cvt8(u32 v, u32& r0, u32& r1) {
    if (WF == WF_F8) e4m3x4_h2(v, r0, r1);
    else i8x4_h2(v, r0, r1);
}
// One int4 word (u = q + 8; register p = nibbles p, p + 4) → a[0..3] times the rows' scales (sg: row g, sh: g + 8).
__device__ __forceinline__ void wq_cvt4(u32 q, u32 sg, u32 sh, u32* a) {
#pragma unroll
    for (int p = 0; p < 4; p++) {
        u32 t;
        asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(t) : "r"(q >> (4 * p)), "r"(0x000F000Fu), "r"(0x64006400u));
        asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(t) : "r"(t), "r"(0x64086408u));
        asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(a[p]) : "r"(t), "r"((p & 1) ? sh : sg));
    }
}
// Weight bytes of a 64-row tile per 128 k, and int4's scale bytes (64 f16) per 128 k.
#define WQ_CB(WF) ((WF) == WF_I4 ? 4096u : 8192u)
#define WQ_SCB(WF) ((WF) == WF_I4 ? 128u : 0u)
#define WQ_XB 16384u  // x bytes per 128-k stage: two 8 KB SW128 boxes of 64 k × 64 rows
#define WQ_SLOT(WF) ((WQ_XB + WQ_CB(WF) + WQ_SCB(WF) + 1023u) & ~1023u)
template <int WF, int NST>
__device__ __forceinline__ void wq_body(const HopTmap& tmx, const unsigned char* __restrict__ W, const h16* __restrict__ sc,
                                        float* __restrict__ Y, int N, int K, int per, int T, int acc, int cm) {
    extern __shared__ __align__(1024) unsigned char wq_raw[];
    constexpr unsigned WB = WQ_CB(WF), SB = WQ_SCB(WF), XB = WQ_XB, SLOT = WQ_SLOT(WF);
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int S = gridDim.x, s = blockIdx.x, tile = blockIdx.y, nch = K / 128;
    const int c0 = s * per, nstage = min(per, nch - c0);  // this slice's 128-k chunks
    const unsigned raw = (unsigned)__cvta_generic_to_shared(wq_raw), base = (raw + 1023u) & ~1023u;
    unsigned char* sm = wq_raw + (base - raw);
    const unsigned full = base, empty = base + 8 * NST, ring = base + 1024;
    if (tid == 0) {
        for (int i = 0; i < NST; i++) {
            hop_bar_init(full + 8 * i, 1);
            hop_bar_init(empty + 8 * i, 1);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    float d[32];
#pragma unroll
    for (int i = 0; i < 32; i++) d[i] = 0.f;
    if (warp == 4) {
        if (lane == 0) {  // producer
            auto wcopy = [&](int st, unsigned slot, unsigned bar) {
                const size_t c = (size_t)tile * nch + c0 + st;
                if (SB && (cm & 2)) {
                    wq_bulk(slot + XB, W + c * (WB + SB), WB + SB, bar);
                } else {
                    wq_bulk(slot + XB, W + c * WB, WB, bar);
                    if (SB) wq_bulk(slot + XB + WB, (const unsigned char*)sc + c * SB, SB, bar);
                }
            };
            auto xcopy = [&](unsigned dst, int st, unsigned bar) {
                const int k0 = (c0 + st) * 128;
                if (cm & 1) {
                    hop_tma_3d(dst, &tmx, 0, 0, k0 / 64, bar);
                } else {
#pragma unroll
                    for (int b = 0; b < 2; b++) hop_tma_2d(dst + b * 8192, &tmx, k0 + 64 * b, 0, bar);
                }
            };
            const int pre = min(NST, nstage);
            for (int st = 0; st < pre; st++) {
                hop_bar_expect(full + 8 * st, XB + WB + SB);
                wcopy(st, ring + st * SLOT, full + 8 * st);
            }
            pdl_wait();  // only x depends on the previous kernel
            for (int st = 0; st < pre; st++) xcopy(ring + st * SLOT, st, full + 8 * st);
            int sl = pre % NST, ph = 0;
            for (int st = pre; st < nstage; st++) {
                hop_bar_wait(empty + 8 * sl, ph);
                const unsigned slot = ring + sl * SLOT;
                hop_bar_expect(full + 8 * sl, XB + WB + SB);
                wcopy(st, slot, full + 8 * sl);
                xcopy(slot, st, full + 8 * sl);
                if (++sl == NST) {
                    sl = 0;
                    ph ^= 1;
                }
            }
        }
    } else {
        const int wq4 = warp;  // the consumer warpgroup's warp: rows 16·wq4 .. + 15 of the tile
        int sl = 0, ph = 0, prev = -1;
#pragma unroll 1
        for (int st = 0; st < nstage; st++) {
            hop_bar_wait(full + 8 * sl, ph);
            const unsigned slot = ring + sl * SLOT, wa = slot + XB;
            u32 a[8][4];
            if (WF == WF_I4) {
                uint4 v[2];
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    const unsigned ad = wa + (unsigned)((wq4 * 2 + j) * 512 + lane * 16);
                    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v[j].x), "=r"(v[j].y), "=r"(v[j].z), "=r"(v[j].w) : "r"(ad));
                }
                const unsigned sa = slot + XB + WB + (unsigned)(16 * wq4 + (lane >> 2)) * 2;
                unsigned short h0, h1;
                asm volatile("ld.shared.u16 %0, [%1];" : "=h"(h0) : "r"(sa));
                asm volatile("ld.shared.u16 %0, [%1];" : "=h"(h1) : "r"(sa + 16));
                const u32 sg = (u32)h0 | ((u32)h0 << 16), sh = (u32)h1 | ((u32)h1 << 16);
                asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
                if (prev >= 0 && (tid & 127) == 0) hop_bar_arrive(empty + 8 * prev);
                const u32 w8[8] = {v[0].x, v[0].y, v[0].z, v[0].w, v[1].x, v[1].y, v[1].z, v[1].w};
#pragma unroll
                for (int u = 0; u < 8; u++) wq_cvt4(w8[u], sg, sh, a[u]);
            } else {
                uint4 v[4];
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    const unsigned ad = wa + (unsigned)((wq4 * 4 + j) * 512 + lane * 16);
                    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v[j].x), "=r"(v[j].y), "=r"(v[j].z), "=r"(v[j].w) : "r"(ad));
                }
                asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
                if (prev >= 0 && (tid & 127) == 0) hop_bar_arrive(empty + 8 * prev);
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    wq_cvt8<WF>(v[j].x, a[2 * j][0], a[2 * j][1]);
                    wq_cvt8<WF>(v[j].y, a[2 * j][2], a[2 * j][3]);
                    wq_cvt8<WF>(v[j].z, a[2 * j + 1][0], a[2 * j + 1][1]);
                    wq_cvt8<WF>(v[j].w, a[2 * j + 1][2], a[2 * j + 1][3]);
                }
            }
            asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
            for (int j = 0; j < 8; j++) wq_mma(d, a[j], hop_desc_sw128(slot + (j >> 2) * 8192 + (j & 3) * 32));
            asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
            prev = sl;
            if (++sl == NST) {
                sl = 0;
                ph ^= 1;
            }
        }
        asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
    }
    pdl_trigger();
    __syncthreads();  // every stage consumed: the ring is free for the partial tile
    // accumulator i of warp w: weight row 64·tile + 16·w + g (+8 for i & 2), activation row 8·(i/4) + 2·t4 (+1 for i & 1)
    const int g = lane >> 2, t4 = lane & 3;
    auto arow = [&](int i) { return 8 * (i >> 2) + 2 * t4 + (i & 1); };       // accumulator i's activation row
    auto wrow = [&](int w, int i) { return 16 * w + g + ((i & 2) ? 8 : 0); };  // its weight row in the tile (warp w)
    auto put = [&](int t, int o, float v) {
        if (t >= T || o >= N) return;
        if (WF == WF_I8 || WF == WF_F8) v *= h2f(sc[o]);
        float* yp = Y + (size_t)t * N + o;
        *yp = acc ? *yp + v : v;
    };
    if (S == 1) {
        if (warp < 4) {
#pragma unroll
            for (int i = 0; i < 32; i++) put(arow(i), tile * 64 + wrow(warp, i), d[i]);
        }
        return;
    }
    constexpr int RS = 68;  // partial tile (64 activation rows, 64 + 4) f32
    float* red = (float*)(sm + 1024);
    if (warp < 4) {
#pragma unroll
        for (int i = 0; i < 32; i++) red[arow(i) * RS + wrow(warp, i)] = d[i];
    }
    wq_cl_sync();
    unsigned rank;
    asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
    const int items = T * 32, each = (items + S - 1) / S, i1 = min(items, ((int)rank + 1) * each);
    const unsigned rb = (unsigned)__cvta_generic_to_shared(red);
    for (int i = (int)rank * each + tid; i < i1; i += blockDim.x) {
        const int t = i >> 5, o = 2 * (i & 31);
        float y0 = 0.f, y1 = 0.f;
        for (int q = 0; q < S; q++) {
            unsigned ra;
            asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(rb + (unsigned)(t * RS + o) * 4u), "r"(q));
            float v0, v1;
            asm volatile("ld.shared::cluster.v2.f32 {%0,%1}, [%2];" : "=f"(v0), "=f"(v1) : "r"(ra));
            y0 += v0;
            y1 += v1;
        }
        put(t, tile * 64 + o, y0);
        put(t, tile * 64 + o + 1, y1);
    }
    wq_cl_sync();
}
#define WQ_KERNEL(name, WF, NST)                                                                                          \
    extern "C" __global__ void __launch_bounds__(160, 1) name(const __grid_constant__ HopTmap tmx, const unsigned char* w, \
                                                             const h16* sc, float* y, int N, int K, int per, int T, int acc, \
                                                             int cm) {                                                  \
        wq_body<WF, NST>(tmx, w, sc, y, N, K, per, T, acc, cm);                                                          \
    }
WQ_KERNEL(wq_i8_2, WF_I8, 2)
WQ_KERNEL(wq_i4_2, WF_I4, 2)
WQ_KERNEL(wq_f8_2, WF_F8, 2)
WQ_KERNEL(wq_i8_3, WF_I8, 3)
WQ_KERNEL(wq_i8_4, WF_I8, 4)
WQ_KERNEL(wq_i4_3, WF_I4, 3)
WQ_KERNEL(wq_i4_4, WF_I4, 4)
WQ_KERNEL(wq_f8_3, WF_F8, 3)
WQ_KERNEL(wq_f8_4, WF_F8, 4)
WQ_KERNEL(wq_i8_5, WF_I8, 5)
WQ_KERNEL(wq_i4_5, WF_I4, 5)
WQ_KERNEL(wq_f8_5, WF_F8, 5)
WQ_KERNEL(wq_i8_6, WF_I8, 6)
WQ_KERNEL(wq_i4_6, WF_I4, 6)
WQ_KERNEL(wq_f8_6, WF_F8, 6)
#endif
