// wq (session 37): the batched decode GEMM for 9..=64 rows that reads QUANTIZED weights as they are streamed
// (int8, int4 g128, fp8 W8A16; sm_90a only: appended to the module built for sm_90a on cc 9.0 with
// TRTFORGE_WQ=1, kernels.rs `source_sm90a`, `#define WQ`). Without it those passes read the load-time f16 copy
// through cuBLASLt, i.e. the fp16 engine's bytes. Prototype and measurements: docs/benchmarks/2026-12-04-h200-
// session37 (wq/wqe.cu is this kernel in a harness, checked against cuBLAS on the dequantized weights).
//   y[t, n] = Σ_k x[t, k] · w[n, k]   (· s[n] for int8 / fp8)   (+ y[t, n] where acc)   f32 out, t < T <= 64
//  - x: the pass's activation rows (T, K) f16 by TMA boxes of 64 k × 64 rows with the 128-byte swizzle, rows
//    >= T zero-filled by the tensor map's bounds (wgmma's K-major SW128 operand B, N = 64 rows);
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
#if defined(WQ)
__device__ __forceinline__ void wq_bulk(unsigned dst, const void* src, unsigned bytes, unsigned bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst), "l"(src),
                 "r"(bytes), "r"(bar)
                 : "memory");
}
__device__ __forceinline__ void wq_cl_sync() {
    asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}
// The S partial sums of one output pair at shared-memory address `ad` of every rank, added in rank order
// (deterministic). Serial: each rank's load waits for the previous sum (S distributed-shared-memory round trips an
// item); `batched` (cm & 4, session 50, `TRTFORGE_WQ_RED=1`): all S loads issued before the sums — the same sums, bit
// for bit, after one round trip.
__device__ __forceinline__ float2 wq_sum_pair(unsigned ad, int S, bool batched) {
    float y0 = 0.f, y1 = 0.f;
    if (batched) {
        float2 v[8];
#pragma unroll
        for (int q = 0; q < 8; q++) {
            if (q < S) {
                unsigned ra;
                asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(ad), "r"(q));
                asm volatile("ld.shared::cluster.v2.f32 {%0,%1}, [%2];" : "=f"(v[q].x), "=f"(v[q].y) : "r"(ra));
            }
        }
#pragma unroll
        for (int q = 0; q < 8; q++) {
            if (q < S) {
                y0 += v[q].x;
                y1 += v[q].y;
            }
        }
    } else {
        for (int q = 0; q < S; q++) {
            unsigned ra;
            asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(ad), "r"(q));
            float v0, v1;
            asm volatile("ld.shared::cluster.v2.f32 {%0,%1}, [%2];" : "=f"(v0), "=f"(v1) : "r"(ra));
            y0 += v0;
            y1 += v1;
        }
    }
    return make_float2(y0, y1);
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
// A ring slot of a block of NT tiles (wq: NT = 1): x's two boxes, the NT chunks (int4's scales behind each), 1 KB aligned.
#define WQS_SLOT(WF, NT) ((WQ_XB + (NT) * (WQ_CB(WF) + WQ_SCB(WF)) + 1023u) & ~1023u)
#define WQ_SLOT(WF) WQS_SLOT(WF, 1)
// The producer lane of a wq (NT = 1) or wqs block: into an NST-slot ring (a slot: x's two boxes, then the NT tiles'
// chunks, int4's scales behind each), every stage of the slice — tiles tile0 .. tile0 + NT − 1, chunks c0 .. —
// the first NST stages' weights before griddepcontrol.wait (only x depends on the previous kernel).
template <int WF, int NST, int NT>
__device__ __forceinline__ void wq_produce(const HopTmap& tmx, const unsigned char* __restrict__ W, const h16* __restrict__ sc, int cm,
                                           int tile0, int nch, int c0, int nstage, unsigned ring, unsigned full, unsigned empty) {
    constexpr unsigned WB = WQ_CB(WF), SB = WQ_SCB(WF), XB = WQ_XB, CH = WB + SB, SLOT = WQS_SLOT(WF, NT);
    auto wcopy = [&](int st, unsigned slot, unsigned bar) {
#pragma unroll
        for (int i = 0; i < NT; i++) {
            const size_t c = (size_t)(tile0 + i) * nch + c0 + st;
            const unsigned dst = slot + XB + i * CH;
            if (SB && (cm & 2)) {
                wq_bulk(dst, W + c * CH, CH, bar);
            } else {
                wq_bulk(dst, W + c * WB, WB, bar);
                if (SB) wq_bulk(dst + WB, (const unsigned char*)sc + c * SB, SB, bar);
            }
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
        hop_bar_expect(full + 8 * st, XB + NT * CH);
        wcopy(st, ring + st * SLOT, full + 8 * st);
    }
    pdl_wait();  // only x depends on the previous kernel
    for (int st = 0; st < pre; st++) xcopy(ring + st * SLOT, st, full + 8 * st);
    int sl = pre % NST, ph = 0;
    for (int st = pre; st < nstage; st++) {
        hop_bar_wait(empty + 8 * sl, ph);
        const unsigned slot = ring + sl * SLOT;
        hop_bar_expect(full + 8 * sl, XB + NT * CH);
        wcopy(st, slot, full + 8 * sl);
        xcopy(slot, st, full + 8 * sl);
        if (++sl == NST) {
            sl = 0;
            ph ^= 1;
        }
    }
}
// Output (t, o): int8 / fp8 times their row scale, written or (acc) added; t >= T or o >= N is not an output.
template <int WF>
__device__ __forceinline__ void wq_put(float* __restrict__ Y, const h16* __restrict__ sc, int T, int N, int acc, int t, int o, float v) {
    if (t >= T || o >= N) return;
    if (WF == WF_I8 || WF == WF_F8) v *= h2f(sc[o]);
    float* yp = Y + (size_t)t * N + o;
    *yp = acc ? *yp + v : v;
}
// A K-split cluster's outputs, once every rank holds its partial tile at `red` (64 activation rows × NW weight rows,
// rows RS f32 apart): each rank sums its share of the output pairs over the ranks in rank order (deterministic).
template <int WF, int NW, int RS>
__device__ __forceinline__ void wq_cluster_out(const float* red, float* __restrict__ Y, const h16* __restrict__ sc, int N, int T,
                                               int acc, int cm, int tile0) {
    wq_cl_sync();
    const int S = gridDim.x;
    unsigned rank;
    asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
    constexpr int HW = NW / 2;  // output pairs a row
    const int items = T * HW, each = (items + S - 1) / S, i1 = min(items, ((int)rank + 1) * each);
    const unsigned rb = (unsigned)__cvta_generic_to_shared(red);
    for (int i = (int)rank * each + (int)threadIdx.x; i < i1; i += blockDim.x) {
        const int t = i / HW, o = 2 * (i % HW);
        const float2 y = wq_sum_pair(rb + (unsigned)(t * RS + o) * 4u, S, cm & 4);
        wq_put<WF>(Y, sc, T, N, acc, t, tile0 * 64 + o, y.x);
        wq_put<WF>(Y, sc, T, N, acc, t, tile0 * 64 + o + 1, y.y);
    }
    wq_cl_sync();
}
template <int WF, int NST>
__device__ __forceinline__ void wq_body(const HopTmap& tmx, const unsigned char* __restrict__ W, const h16* __restrict__ sc,
                                        float* __restrict__ Y, int N, int K, int per, int T, int acc, int cm) {
    extern __shared__ __align__(1024) unsigned char wq_raw[];
    constexpr unsigned WB = WQ_CB(WF), XB = WQ_XB, SLOT = WQ_SLOT(WF);
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
        if (lane == 0) wq_produce<WF, NST, 1>(tmx, W, sc, cm, tile, nch, c0, nstage, ring, full, empty);  // producer
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
    auto put = [&](int t, int o, float v) { wq_put<WF>(Y, sc, T, N, acc, t, o, v); };
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
    wq_cluster_out<WF, 64, RS>(red, Y, sc, N, T, acc, cm, tile);
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
// wqs (session 50, opt-in `TRTFORGE_WQ_WIDE`, `#define WQS` beside WQ): the same GEMM with the operands swapped, so
// that one MMA spans NT weight tiles. Session 49 left the consumer chain as the bound: 8 dependent wgmma m64n64k16
// with A from registers, and the conversion, which must not overlap them inside a warpgroup (C7513).
//  - A = x (the 64 activation rows: the same SW128 boxes, now as wgmma's K-major A by descriptor), B = 64·NT weight
//    rows, wgmma m64n(64·NT)k16 with both operands from shared memory (SS);
//  - the consumer converts each chunk's codes (the same pack and converters as wq: fragment order) and stores the
//    f16 values with stmatrix into a K-major SW128 B tile (64·NT rows × 64 k, 128 bytes a row) — per half stage
//    (64 k), into one of two such tiles, so that the conversion of half q overlaps the MMAs of half q − 1; nothing
//    the MMAs read comes from registers, so ptxas keeps them asynchronous (wait_group 1);
//  - per half: codes loaded → wait_group 1 (half q − 2 done) → named barrier (so in every warp) → slot release after
//    a stage's second half → convert + stmatrix → fence.proxy.async → named barrier → 4 MMAs → commit;
//  - the producer and the cluster's K slices as wq; the accumulator of thread (w, g, t4), element i: activation
//    row 16w + g + 8·((i >> 1) & 1), weight row 8·(i >> 2) + 2·t4 + (i & 1) of the block's 64·NT.
// Measured (session 50, H100, docs/benchmarks/2026-12-06-h200-session50): correct (self-test `wqk`, 72 / 72), but
// slower than wq — int4 gate/up 9.8 → 24.9 (NT 2) / 33.9 µs (NT 4), bs64 −21 to −31 %; a stage takes ≈ 8× its MMAs'
// time (probe: SS n256 at 0.86 of the peak), the cause not yet named. Kept opt-in for that profile.
#if defined(WQS)
#define WQS_D8(b) "+f"(d[b]), "+f"(d[b + 1]), "+f"(d[b + 2]), "+f"(d[b + 3]), "+f"(d[b + 4]), "+f"(d[b + 5]), "+f"(d[b + 6]), "+f"(d[b + 7])
#define WQS_D64 WQS_D8(0), WQS_D8(8), WQS_D8(16), WQS_D8(24), WQS_D8(32), WQS_D8(40), WQS_D8(48), WQS_D8(56)
#define WQS_D128 WQS_D64, WQS_D8(64), WQS_D8(72), WQS_D8(80), WQS_D8(88), WQS_D8(96), WQS_D8(104), WQS_D8(112), WQS_D8(120)
template <int NW> __device__ __forceinline__ void wqs_mma(float* d, unsigned long long da, unsigned long long db);
template <> __device__ __forceinline__ void wqs_mma<128>(float* d, unsigned long long da, unsigned long long db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {"
                 "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
                 "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63"
                 "}, %64, %65, 1, 1, 1, 0, 0;"
                 : WQS_D64
                 : "l"(da), "l"(db)
                 : "memory");
}
template <> __device__ __forceinline__ void wqs_mma<256>(float* d, unsigned long long da, unsigned long long db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 {"
                 "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
                 "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,"
                 "%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,"
                 "%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127"
                 "}, %128, %129, 1, 1, 1, 0, 0;"
                 : WQS_D128
                 : "l"(da), "l"(db)
                 : "memory");
}
// Four f16x2 A-fragment registers of one warp's 16 rows × k16 step → the K-major SW128 tile by stmatrix (matrix i =
// register i: rows 0–7 / 8–15 × k 0–7 / 8–15); `ad` is this lane's row address (lane l: row (l & 7) + 8·((l >> 3) & 1)
// of the warp's 16, k 8·(l >> 4) of the step).
__device__ __forceinline__ void wqs_st(unsigned ad, const u32* a) {
    asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};" ::"r"(ad), "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3])
                 : "memory");
}
__device__ __forceinline__ void wqs_bar() { asm volatile("bar.sync 1, 128;" ::: "memory"); }
template <int WF, int NST, int NT>
__device__ __forceinline__ void wqs_body(const HopTmap& tmx, const unsigned char* __restrict__ W, const h16* __restrict__ sc,
                                         float* __restrict__ Y, int N, int K, int per, int T, int acc, int cm) {
    extern __shared__ __align__(1024) unsigned char wqs_raw[];
    constexpr int NW = 64 * NT;  // weight rows a block: wgmma's N
    constexpr unsigned WB = WQ_CB(WF), XB = WQ_XB, CH = WB + WQ_SCB(WF), SLOT = WQS_SLOT(WF, NT);
    constexpr unsigned BH = NW * 128;  // one converted half stage: NW rows × 64 k f16
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int S = gridDim.x, s = blockIdx.x, tile0 = blockIdx.y * NT, nch = K / 128;
    const int c0 = s * per, nstage = min(per, nch - c0);
    const unsigned raw = (unsigned)__cvta_generic_to_shared(wqs_raw), base = (raw + 1023u) & ~1023u;
    unsigned char* sm = wqs_raw + (base - raw);
    const unsigned full = base, empty = base + 8 * NST, ring = base + 1024, bbuf = ring + NST * SLOT;
    if (tid == 0) {
        for (int i = 0; i < NST; i++) {
            hop_bar_init(full + 8 * i, 1);
            hop_bar_init(empty + 8 * i, 1);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    float d[NW / 2];
#pragma unroll
    for (int i = 0; i < NW / 2; i++) d[i] = 0.f;
    if (warp == 4) {
        if (lane == 0) wq_produce<WF, NST, NT>(tmx, W, sc, cm, tile0, nch, c0, nstage, ring, full, empty);  // producer
    } else {
        const int g = lane >> 2;
        // this lane's stmatrix row in a tile (warp rows 16·warp ..) and its 16-byte column's swizzle term
        const unsigned strow = (unsigned)(16 * warp + (lane & 7) + 8 * ((lane >> 3) & 1)), sw = (unsigned)(lane & 7), khi = (unsigned)(lane >> 4);
        int sl = 0, ph = 0, prev = -1;
#pragma unroll 1
        for (int st = 0; st < nstage; st++) {
            hop_bar_wait(full + 8 * sl, ph);
            const unsigned slot = ring + sl * SLOT;
#pragma unroll
            for (int h = 0; h < 2; h++) {
                // this half's codes of the NT tiles (int4: k16 steps 4h .. 4h + 3 = one 16-byte word a lane; 8-bit:
                // steps 4h .. 4h + 3 = two), loaded before the waits
                constexpr int NV = WF == WF_I4 ? 1 : 2;
                uint4 v[NT][NV];
                u32 sg[NT], sh[NT];
#pragma unroll
                for (int i = 0; i < NT; i++) {
                    const unsigned ch = slot + XB + i * CH;
#pragma unroll
                    for (int j = 0; j < NV; j++) {
                        const unsigned ad = ch + (unsigned)((warp * 2 * NV + h * NV + j) * 512 + lane * 16);
                        asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v[i][j].x), "=r"(v[i][j].y), "=r"(v[i][j].z), "=r"(v[i][j].w) : "r"(ad));
                    }
                    if (WF == WF_I4) {
                        const unsigned sa = ch + WB + (unsigned)(16 * warp + g) * 2;
                        unsigned short h0, h1;
                        asm volatile("ld.shared.u16 %0, [%1];" : "=h"(h0) : "r"(sa));
                        asm volatile("ld.shared.u16 %0, [%1];" : "=h"(h1) : "r"(sa + 16));
                        sg[i] = (u32)h0 | ((u32)h0 << 16);
                        sh[i] = (u32)h1 | ((u32)h1 << 16);
                    }
                }
                asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");  // half q − 2 (this B tile's last use) done
                wqs_bar();                                                       // ... in every warp
                if (h == 1 && prev >= 0 && tid == 0) hop_bar_arrive(empty + 8 * prev);  // the previous stage is done
                const unsigned bh = bbuf + h * BH;
#pragma unroll
                for (int i = 0; i < NT; i++) {
                    const unsigned rowad = bh + (unsigned)(64 * i + strow) * 128u;
#pragma unroll
                    for (int u = 0; u < 4; u++) {
                        u32 a[4];
                        if (WF == WF_I4) {
                            const u32 w = u == 0 ? v[i][0].x : u == 1 ? v[i][0].y : u == 2 ? v[i][0].z : v[i][0].w;
                            wq_cvt4(w, sg[i], sh[i], a);
                        } else {
                            const uint4 q = v[i][u >> 1];
                            wq_cvt8<WF>((u & 1) ? q.z : q.x, a[0], a[1]);
                            wq_cvt8<WF>((u & 1) ? q.w : q.y, a[2], a[3]);
                        }
                        wqs_st(rowad + ((((unsigned)(2 * u) + khi) ^ sw) << 4), a);
                    }
                }
                asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // the stores, visible to the MMAs
                wqs_bar();
                asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
                for (int j = 0; j < 4; j++) wqs_mma<NW>(d, hop_desc_sw128(slot + h * 8192 + j * 32), hop_desc_sw128(bh + j * 32));
                asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
            }
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
    const int g = lane >> 2, t4 = lane & 3;
    auto trow = [&](int i) { return 16 * warp + g + 8 * ((i >> 1) & 1); };  // accumulator i's activation row
    auto wrow = [&](int i) { return 8 * (i >> 2) + 2 * t4; };               // its (even) weight row in the block
    auto put = [&](int t, int o, float v) { wq_put<WF>(Y, sc, T, N, acc, t, o, v); };
    if (S == 1) {
        if (warp < 4) {
#pragma unroll
            for (int i = 0; i < NW / 2; i += 2) {
                put(trow(i), tile0 * 64 + wrow(i), d[i]);
                put(trow(i), tile0 * 64 + wrow(i) + 1, d[i + 1]);
            }
        }
        return;
    }
    constexpr int RS = NW + 8;  // partial tile (64 activation rows, NW + 8) f32
    float* red = (float*)(sm + 1024);
    if (warp < 4) {
#pragma unroll
        for (int i = 0; i < NW / 2; i += 2) *(float2*)&red[trow(i) * RS + wrow(i)] = make_float2(d[i], d[i + 1]);
    }
    wq_cluster_out<WF, NW, RS>(red, Y, sc, N, T, acc, cm, tile0);
}
#define WQS_KERNEL(name, WF, NST, NT)                                                                                     \
    extern "C" __global__ void __launch_bounds__(160, 1) name(const __grid_constant__ HopTmap tmx, const unsigned char* w, \
                                                             const h16* sc, float* y, int N, int K, int per, int T, int acc, \
                                                             int cm) {                                                  \
        wqs_body<WF, NST, NT>(tmx, w, sc, y, N, K, per, T, acc, cm);                                                     \
    }
WQS_KERNEL(wqs_i8_2_2, WF_I8, 2, 2)
WQS_KERNEL(wqs_i4_2_2, WF_I4, 2, 2)
WQS_KERNEL(wqs_f8_2_2, WF_F8, 2, 2)
WQS_KERNEL(wqs_i8_2_3, WF_I8, 3, 2)
WQS_KERNEL(wqs_i4_2_3, WF_I4, 3, 2)
WQS_KERNEL(wqs_f8_2_3, WF_F8, 3, 2)
WQS_KERNEL(wqs_i8_2_4, WF_I8, 4, 2)
WQS_KERNEL(wqs_i4_2_4, WF_I4, 4, 2)
WQS_KERNEL(wqs_f8_2_4, WF_F8, 4, 2)
WQS_KERNEL(wqs_i8_4_2, WF_I8, 2, 4)
WQS_KERNEL(wqs_i4_4_2, WF_I4, 2, 4)
WQS_KERNEL(wqs_f8_4_2, WF_F8, 2, 4)
WQS_KERNEL(wqs_i8_4_3, WF_I8, 3, 4)
WQS_KERNEL(wqs_i4_4_3, WF_I4, 3, 4)
WQS_KERNEL(wqs_f8_4_3, WF_F8, 3, 4)
#endif
