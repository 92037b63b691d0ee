// Session 37 (after calls 2-8's wq.cu): the ENGINE-SHAPED quantized 64-row decode GEMM, verified in the harness
// before a port: x read row-major by TMA (the engine's activation rows: f16, or E4M3 codes with per-row scales for
// W8A8) with the 128-byte swizzle and rows >= T zero-filled, f32 output written or accumulated (qkv / gate/up write
// y, o / down add into the residual), T <= 64 rows. Formats and weight packs as wq.cu (the RS consumers with
// wait_group 0, the W8A8 SS path). Checked against cuBLAS on the dequantized operands at T = 64 and at T = 40
// accumulated into y = 1; timed in same-GEMM chains and in layer chains with a glue kernel between the GEMMs.
// nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 wqe.cu -lcublas -lcuda -o wqe
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <vector>
#include <string>
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda.h>
#include <cublas_v2.h>
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("CUDA %s at %d: %s\n", #x, __LINE__, cudaGetErrorString(e_)); exit(1); } } while (0)
typedef unsigned u32;
typedef unsigned long long u64;
enum { WF_F16 = 0, WF_FP8 = 1, WF_I8 = 2, WF_I4 = 3, WF_F8A8 = 4 };
static const char* WFN[5] = {"f16", "fp8", "int8", "int4", "fp8a8"};
constexpr int NWF = 5;

__device__ __forceinline__ u64 sdesc(u32 addr, u32 lbo, u32 sbo) {
    return (u64)((addr & 0x3FFFFu) >> 4) | ((u64)((lbo >> 4) & 0x3FFFu) << 16) | ((u64)((sbo >> 4) & 0x3FFFu) << 32);
}
// K-major operand with the 128-byte swizzle (8-row atoms of 1024 bytes), as a TMA box with SWIZZLE_128B lands it.
__device__ __forceinline__ u64 sdesc_sw128(u32 addr) {
    return (u64)((addr & 0x3FFFFu) >> 4) | (1ull << 16) | ((u64)(1024u >> 4) << 32) | (1ull << 62);
}
__device__ __forceinline__ void bar_init(u32 bar, u32 n) { asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(n) : "memory"); }
__device__ __forceinline__ void bar_expect(u32 bar, u32 bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void bar_arrive(u32 bar) { asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory"); }
__device__ __forceinline__ void bulk(u32 dst, const void* src, u32 bytes, u32 bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst), "l"(src),
                 "r"(bytes), "r"(bar) : "memory");
}
// The same bulk copy into the same shared-memory offset of every CTA of `mask` (this cluster's ranks), each CTA's
// mbarrier at `bar`'s offset told of the bytes.
__device__ __forceinline__ void bulk_mc(u32 dst, const void* src, u32 bytes, u32 bar, unsigned short mask) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1], %2, [%3], %4;" ::"r"(dst),
                 "l"(src), "r"(bytes), "r"(bar), "h"(mask) : "memory");
}
// Arrive on CTA `rank`'s mbarrier at `bar`'s offset.
__device__ __forceinline__ void bar_arrive_cl(u32 bar, u32 rank) {
    u32 r;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(bar), "r"(rank));
    asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];" ::"r"(r) : "memory");
}
__device__ __forceinline__ void bar_wait(u32 bar, u32 parity) {
    u32 ok;
    do {
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                     : "=r"(ok) : "r"(bar), "r"(parity) : "memory");
    } while (!ok);
}
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_trigger() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
__device__ __forceinline__ u32 cl_rank() { u32 r; asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r)); return r; }
__device__ __forceinline__ void cl_sync() {
    asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
// Pin a register's value at this point of the program (nothing is emitted): conversions cannot sink past it.
__device__ __forceinline__ void pin(u32& r) { asm volatile("" : "+r"(r)::"memory"); }
__device__ __forceinline__ void pinf(float& r) { asm volatile("" : "+f"(r)::"memory"); }
template <int N> __device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory"); }

#define D32 "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), \
            "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), \
            "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), \
            "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define R32 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}"
__device__ __forceinline__ void mma_ss(float* d, u64 da, u64 db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " R32 ", %32, %33, 1, 1, 1, 0, 0;" : D32 : "l"(da), "l"(db) : "memory");
}
// W8A8 (issue #15's fp8: E4M3 weights and activations): both operands E4M3 from shared memory, k32 a step.
__device__ __forceinline__ void mma_ss8(float* d, u64 da, u64 db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 " R32 ", %32, %33, 1, 1, 1;" : D32 : "l"(da), "l"(db) : "memory");
}
__device__ __forceinline__ void mma_rs(float* d, const u32* a, u64 db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " R32 ", {%32,%33,%34,%35}, %36, 1, 1, 1, 0;"
                 : D32 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db) : "memory");
}
// Four 8-bit codes of one word → two f16x2 (bytes 0, 1 → r0; bytes 2, 3 → r1), unscaled.
template <int WF> __device__ __forceinline__ void cvt8(u32 v, u32& r0, u32& r1) {
    if (WF == WF_FP8) {
        asm("{ .reg .b16 lo, hi; mov.b32 {lo, hi}, %2; cvt.rn.f16x2.e4m3x2 %0, lo; cvt.rn.f16x2.e4m3x2 %1, hi; }" : "=r"(r0), "=r"(r1) : "r"(v));
    } else {
        const u32 bias = 0x64806480u;  // 1024 + 128: the codes are q + 128
        u32 lo = __byte_perm(v, 0x64646464u, 0x4140), hi = __byte_perm(v, 0x64646464u, 0x4342);
        asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(r0) : "r"(lo), "r"(bias));
        asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(r1) : "r"(hi), "r"(bias));
    }
}
// One int4 word (8 codes u = q + 8, register p = nibbles p, p + 4) → a[0..3], times the rows' scales (sg: row g, sh: g + 8).
__device__ __forceinline__ void cvt4(u32 q, u32 sg, u32 sh, u32* a) {
    const u32 m = 0x000F000Fu, e = 0x64006400u, z = 0x64086408u;  // 1024, 1024 + 8
#pragma unroll
    for (int p = 0; p < 4; p++) {
        u32 t;
        asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(t) : "r"(q >> (4 * p)), "r"(m), "r"(e));
        asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(t) : "r"(t), "r"(z));
        asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(a[p]) : "r"(t), "r"((p & 1) ? sh : sg));
    }
}

template <int WF> struct Fm {
    // weight bytes of one 64-row subtile per 128 k; scale bytes per 128 k
    enum { CB = WF == WF_F16 ? 16384 : (WF == WF_I4 ? 4096 : 8192), SCB = WF == WF_I4 ? 128 : 0 };
};


// The engine-shaped kernel. y (T, N) f32 = x (T, K) · Wᵀ (+ y where acc), T <= 64; x row-major (the engine's
// activations: f16, or E4M3 codes for W8A8) by TMA boxes with the 128-byte swizzle (rows >= T zero-filled by the
// tensor map's bounds), the weights from their load-time pack by 1-D bulk copies. Slot = [x stage][NC weight
// subtiles][NC scale runs], each slot 1024-byte aligned (SW128 atoms). NST ring slots, NC consumer warpgroups of 64
// rows, wait_group 0 before converting (ptxas serializes anything else, C7513), split-K over clusters of S with the
// partial tiles summed through distributed shared memory in rank order (deterministic).
template <int WF> struct Xf { enum { XPK = WF == WF_F8A8 ? 64 : 128 }; };  // x bytes per k of the 64-row box
template <int WF, int NC, int NST>
__host__ __device__ constexpr unsigned wqe_slot() {
    return ((128u * Xf<WF>::XPK + NC * (Fm<WF>::CB + Fm<WF>::SCB)) + 1023u) & ~1023u;
}
template <int WF, int NC, int NST>
__global__ void __launch_bounds__(NC * 128 + 32, 1)
    wqe(const unsigned char* __restrict__ W, const __half* __restrict__ Sg, const float* __restrict__ rscale,
        const float* __restrict__ xscale, float* __restrict__ Y, int N, int K, int KS, int T, int acc,
        const __grid_constant__ CUtensorMap tmx) {
    extern __shared__ __align__(1024) unsigned char sm_raw[];
    constexpr int KC = 128;
    constexpr u32 WB = Fm<WF>::CB, SB = Fm<WF>::SCB, XB = KC * Xf<WF>::XPK, SLOT = wqe_slot<WF, NC, NST>();
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int S = gridDim.x, s = blockIdx.x, tile0 = blockIdx.y * NC;
    const int kbeg = s * KS, nstage = KS / KC, nch = K / 128;
    const u32 raw = (u32)__cvta_generic_to_shared(sm_raw), base = (raw + 1023u) & ~1023u;
    unsigned char* sm = sm_raw + (base - raw);
    const u32 full = base, empty = base + 8 * NST, ring = base + 1024;
    if (tid == 0) {
        for (int i = 0; i < NST; i++) { bar_init(full + 8 * i, 1); bar_init(empty + 8 * i, NC); }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    float d[32];
    if (warp == NC * 4) {
        if (lane == 0) {  // producer: one lane issues every copy
            auto wcopy = [&](int st, u32 slot, u32 bar) {
                const int c0 = (kbeg + st * KC) / 128;
                for (int c = 0; c < NC; c++) {
                    const size_t t = (size_t)(tile0 + c);
                    bulk(slot + XB + c * WB, W + (t * nch + c0) * WB, WB, bar);
                    if (SB) bulk(slot + XB + NC * WB + c * SB, (const unsigned char*)Sg + (t * nch + c0) * SB, SB, bar);
                }
            };
            auto xcopy = [&](u32 dst, int k0, u32 bar) {  // boxes of 128 bytes of k × 64 rows (8 KB)
                for (int b = 0; b < (int)(XB / 8192); b++)
                    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
                                 ::"r"(dst + b * 8192), "l"((unsigned long long)&tmx), "r"(k0 + b * (8192 / Xf<WF>::XPK)), "r"(0), "r"(bar) : "memory");
            };
            const int pre = min(NST, nstage);
            for (int st = 0; st < pre; st++) {
                bar_expect(full + 8 * st, XB + NC * (WB + SB));
                wcopy(st, ring + st * SLOT, full + 8 * st);
            }
            pdl_wait();  // only x depends on the previous kernel
            for (int st = 0; st < pre; st++) xcopy(ring + st * SLOT, kbeg + st * KC, full + 8 * st);
            int sl = pre % NST, ph = 0;
            for (int st = pre; st < nstage; st++) {
                bar_wait(empty + 8 * sl, ph);
                const u32 slot = ring + sl * SLOT;
                bar_expect(full + 8 * sl, XB + NC * (WB + SB));
                wcopy(st, slot, full + 8 * sl);
                xcopy(slot, kbeg + st * KC, full + 8 * sl);
                if (++sl == NST) { sl = 0; ph ^= 1; }
            }
        }
    } else {
        const int wg = warp >> 2, wq4 = warp & 3;
#pragma unroll
        for (int i = 0; i < 32; i++) d[i] = 0.f;
        int sl = 0, ph = 0, prev = -1;
#pragma unroll 1
        for (int st = 0; st < nstage; st++) {
            bar_wait(full + 8 * sl, ph);
            const u32 slot = ring + sl * SLOT, xb = slot, wa = slot + XB + wg * WB;
            if (WF == WF_F16 || WF == WF_F8A8) {
                wg_fence();
#pragma unroll
                for (int j = 0; j < (WF == WF_F8A8 ? 4 : 8); j++) {
                    // B: the SW128 x box; a k16 (f16) / k32 (E4M3) step is +32 bytes inside a 128-byte row
                    const u64 db = sdesc_sw128(xb + (WF == WF_F8A8 ? 0 : (j >> 2) * 8192) + (j & 3) * 32);
                    if (WF == WF_F8A8) mma_ss8(d, sdesc(wa + j * 2048, 1024, 128), db);
                    else mma_ss(d, sdesc(wa + j * 2048, 1024, 128), db);
                }
                wg_commit();
                wg_wait<1>();
                if (prev >= 0 && (tid & 127) == 0) bar_arrive(empty + 8 * prev);
            } else {
                u32 a[8][4];
                if (WF == WF_I4) {
                    uint4 v[2];
#pragma unroll
                    for (int j = 0; j < 2; j++) {
                        const u32 ad = wa + (u32)((wq4 * 2 + j) * 512 + lane * 16);
                        asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v[j].x), "=r"(v[j].y), "=r"(v[j].z), "=r"(v[j].w) : "r"(ad));
                    }
                    const u32 sa = slot + XB + NC * WB + wg * SB + (u32)(16 * wq4 + (lane >> 2)) * 2;
                    unsigned short h0, h1;
                    asm volatile("ld.shared.u16 %0, [%1];" : "=h"(h0) : "r"(sa));
                    asm volatile("ld.shared.u16 %0, [%1];" : "=h"(h1) : "r"(sa + 16));
                    const u32 sg = (u32)h0 | ((u32)h0 << 16), sh = (u32)h1 | ((u32)h1 << 16);
                    wg_wait<0>();
                    if (prev >= 0 && (tid & 127) == 0) bar_arrive(empty + 8 * prev);
                    const u32 w8[8] = {v[0].x, v[0].y, v[0].z, v[0].w, v[1].x, v[1].y, v[1].z, v[1].w};
#pragma unroll
                    for (int u = 0; u < 8; u++) cvt4(w8[u], sg, sh, a[u]);
                } else {
                    uint4 v[4];
#pragma unroll
                    for (int j = 0; j < 4; j++) {
                        const u32 ad = wa + (u32)((wq4 * 4 + j) * 512 + lane * 16);
                        asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v[j].x), "=r"(v[j].y), "=r"(v[j].z), "=r"(v[j].w) : "r"(ad));
                    }
                    wg_wait<0>();
                    if (prev >= 0 && (tid & 127) == 0) bar_arrive(empty + 8 * prev);
#pragma unroll
                    for (int j = 0; j < 4; j++) {
                        cvt8<WF>(v[j].x, a[2 * j][0], a[2 * j][1]);
                        cvt8<WF>(v[j].y, a[2 * j][2], a[2 * j][3]);
                        cvt8<WF>(v[j].z, a[2 * j + 1][0], a[2 * j + 1][1]);
                        cvt8<WF>(v[j].w, a[2 * j + 1][2], a[2 * j + 1][3]);
                    }
                }
                wg_fence();
#pragma unroll
                for (int j = 0; j < 8; j++) mma_rs(d, a[j], sdesc_sw128(xb + (j >> 2) * 8192 + (j & 3) * 32));
                wg_commit();
            }
            prev = sl;
            if (++sl == NST) { sl = 0; ph ^= 1; }
        }
        wg_wait<0>();
    }
    pdl_trigger();
    __syncthreads();  // every stage consumed: the ring is free for the partial tiles
    // accumulator i of warp wq4 in warpgroup wg: output row 64·wg + 16·wq4 + g (+8 for i & 2), batch row 8·(i/4) + 2·t4 (+1 for i & 1)
    const int g = lane >> 2, t4 = lane & 3;
    constexpr int TO = NC * 64, RS = TO + 4;
    const bool rowsc = WF == WF_FP8 || WF == WF_I8 || WF == WF_F8A8;
    auto put = [&](int b, int o, float v) {  // the epilogue: scales, then store or add
        if (b >= T) return;
        if (rowsc) v *= rscale[o];
        if (WF == WF_F8A8) v *= xscale[b];
        float* yp = Y + (size_t)b * N + o;
        *yp = acc ? *yp + v : v;
    };
    if (S == 1) {
        if (warp < NC * 4) {
            const int wg = warp >> 2, wq4 = warp & 3;
#pragma unroll
            for (int i = 0; i < 32; i++)
                put(8 * (i >> 2) + 2 * t4 + (i & 1), tile0 * 64 + 64 * wg + 16 * wq4 + g + ((i & 2) ? 8 : 0), d[i]);
        }
        return;
    }
    float* red = (float*)(sm + 1024);
    if (warp < NC * 4) {
        const int wg = warp >> 2, wq4 = warp & 3;
#pragma unroll
        for (int i = 0; i < 32; i++) {
            const int o = 64 * wg + 16 * wq4 + g + ((i & 2) ? 8 : 0), b = 8 * (i >> 2) + 2 * t4 + (i & 1);
            red[b * RS + o] = d[i];
        }
    }
    cl_sync();
    const int rank = (int)cl_rank();
    const int items = T * TO / 2, per = (items + S - 1) / S, i1 = min(items, (rank + 1) * per);
    const u32 rb = (u32)__cvta_generic_to_shared(red);
    for (int i = rank * per + tid; i < i1; i += blockDim.x) {
        const int b = i / (TO / 2), o = 2 * (i - b * (TO / 2));
        float y0 = 0.f, y1 = 0.f;
        for (int q = 0; q < S; q++) {
            u32 ra;
            asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(rb + (u32)(b * RS + o) * 4u), "r"(q));
            float2 v;
            asm volatile("ld.shared::cluster.v2.f32 {%0,%1}, [%2];" : "=f"(v.x), "=f"(v.y) : "r"(ra));
            y0 += v.x; y1 += v.y;
        }
        put(b, tile0 * 64 + o, y0);
        put(b, tile0 * 64 + o + 1, y1);
    }
    cl_sync();
}

__global__ void glue(const float* __restrict__ y, int n, unsigned char* __restrict__ xo, int xb) {
    pdl_wait();
    float s = 0.f;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < 64 * n / 4; i += gridDim.x * blockDim.x) s += ((const float4*)y)[i].x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < xb / 16; i += gridDim.x * blockDim.x)
        ((uint4*)xo)[i] = make_uint4(0x3c003c00u ^ (s > 1e30f), 0x3c003c00u, 0x3c003c00u, 0x3c003c00u);
    pdl_trigger();
}
struct Cfg { int wf, nc, nst, s; };
template <int WF, int NC, int NST>
size_t smem_t() { return 2048 + std::max((size_t)NST * wqe_slot<WF, NC, NST>(), (size_t)64 * (NC * 64 + 4) * 4); }
template <int WF, int NC, int NST>
void launch_t(const unsigned char* W, const __half* Sg, const float* rs, const float* xs, float* Y, int N, int K, int S, int T, int acc,
              const CUtensorMap& tm, bool pdl, cudaStream_t st) {
    const size_t smem = smem_t<WF, NC, NST>();
    static bool init = false;
    if (!init) {
        CK(cudaFuncSetAttribute(wqe<WF, NC, NST>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        CK(cudaFuncSetAttribute(wqe<WF, NC, NST>, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
        init = true;
    }
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(S, N / (NC * 64), 1);
    cfg.blockDim = dim3(NC * 128 + 32, 1, 1);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    cudaLaunchAttribute at[2];
    int na = 0;
    at[na].id = cudaLaunchAttributeClusterDimension;
    at[na].val.clusterDim.x = S; at[na].val.clusterDim.y = 1; at[na].val.clusterDim.z = 1; na++;
    if (pdl) { at[na].id = cudaLaunchAttributeProgrammaticStreamSerialization; at[na].val.programmaticStreamSerializationAllowed = 1; na++; }
    cfg.attrs = at; cfg.numAttrs = na;
    CK(cudaLaunchKernelEx(&cfg, wqe<WF, NC, NST>, W, Sg, rs, xs, Y, N, K, K / S, T, acc, tm));
}
#define CFGS(X) X(0, 1, 3) X(0, 1, 4) X(0, 2, 4) X(1, 1, 3) X(1, 1, 4) X(1, 1, 6) X(1, 2, 4) X(2, 1, 3) X(2, 1, 4) X(2, 1, 6) X(2, 2, 4) \
    X(3, 1, 3) X(3, 1, 4) X(3, 1, 6) X(3, 2, 4) X(4, 1, 3) X(4, 1, 4) X(4, 1, 6) X(4, 2, 4)
static void launch(const Cfg& c, const unsigned char* W, const __half* Sg, const float* rs, const float* xs, float* Y, int N, int K, int T, int acc,
                   const CUtensorMap& tm, bool pdl, cudaStream_t st) {
#define L(WF, NC, NST) if (c.wf == WF && c.nc == NC && c.nst == NST) { launch_t<WF, NC, NST>(W, Sg, rs, xs, Y, N, K, c.s, T, acc, tm, pdl, st); return; }
    CFGS(L)
#undef L
    printf("no such config\n"); exit(1);
}
static size_t smem_of(const Cfg& c) {
#define L(WF, NC, NST) if (c.wf == WF && c.nc == NC && c.nst == NST) return smem_t<WF, NC, NST>();
    CFGS(L)
#undef L
    return 0;
}
struct Shape { const char* name; int N, K; };
static CUtensorMap tmap(const void* X, int K, int T, bool e4m3) {
    CUtensorMap m;
    cuuint64_t dims[2] = {(cuuint64_t)K, (cuuint64_t)T}, strides[1] = {(cuuint64_t)K * (e4m3 ? 1 : 2)};
    cuuint32_t box[2] = {e4m3 ? 128u : 64u, 64u}, es[2] = {1, 1};
    CUresult r = cuTensorMapEncodeTiled(&m, e4m3 ? CU_TENSOR_MAP_DATA_TYPE_UINT8 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, (void*)X, dims, strides, box, es,
                                        CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                                        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) { printf("cuTensorMapEncodeTiled: %d\n", (int)r); exit(1); }
    return m;
}

int main() {
    const int M = 64, L = 22, REP = 20;
    Shape shapes[4] = {{"qkv", 2560, 2048}, {"o", 2048, 2048}, {"gateup", 11264, 2048}, {"down", 2048, 5632}};
    cublasHandle_t hb; cublasCreate(&hb);
    cudaStream_t st; CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    cublasSetStream(hb, st);
    cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
    srand(1);
    // per shape: x row-major f16 (X), its E4M3 codes with per-row scales (X8, xs) and their f16 dequantization (Xq)
    __half *X[4], *Xq[4]; unsigned char* X8[4]; float* XS[4]; float* Yc[4];
    std::vector<__half*> Wf[4];
    std::vector<unsigned char*> Wp[4][NWF];
    std::vector<__half*> Sgp[4];
    std::vector<float*> Rs[4][NWF];
    __half* Wdq[4][NWF];
    for (int si = 0; si < 4; si++) {
        const int N = shapes[si].N, K = shapes[si].K, nch = K / 128;
        {
            std::vector<__half> hx((size_t)M * K), hq((size_t)M * K);
            std::vector<unsigned char> h8((size_t)M * K);
            std::vector<float> xs(M);
            for (auto& v : hx) v = __float2half(rand() / (float)RAND_MAX - 0.5f);
            for (int r = 0; r < M; r++) {
                float am = 0.f;
                for (int k = 0; k < K; k++) am = fmaxf(am, fabsf(__half2float(hx[(size_t)r * K + k])));
                xs[r] = am / 448.f;
                for (int k = 0; k < K; k++) {
                    __nv_fp8_e4m3 q(__half2float(hx[(size_t)r * K + k]) / xs[r]);
                    h8[(size_t)r * K + k] = *(unsigned char*)&q;
                    hq[(size_t)r * K + k] = __float2half(float(q) * xs[r]);
                }
            }
            CK(cudaMalloc(&X[si], hx.size() * 2)); CK(cudaMemcpy(X[si], hx.data(), hx.size() * 2, cudaMemcpyHostToDevice));
            CK(cudaMalloc(&Xq[si], hq.size() * 2)); CK(cudaMemcpy(Xq[si], hq.data(), hq.size() * 2, cudaMemcpyHostToDevice));
            CK(cudaMalloc(&X8[si], h8.size())); CK(cudaMemcpy(X8[si], h8.data(), h8.size(), cudaMemcpyHostToDevice));
            CK(cudaMalloc(&XS[si], M * 4)); CK(cudaMemcpy(XS[si], xs.data(), M * 4, cudaMemcpyHostToDevice));
            CK(cudaMalloc(&Yc[si], (size_t)M * N * 4));
        }
        const size_t n = (size_t)N * K;
        std::vector<__half> hw(n), hdq(n);
        for (size_t i = 0; i < n; i++) hw[i] = __float2half(((rand() & 1023) / 1023.f - 0.5f) * 0.05f * (1.f + (i / K % 7)));
        for (int wf = 0; wf < NWF; wf++) {
            std::vector<unsigned char> code(n);
            std::vector<float> rsc(N, 1.f);
            std::vector<__half> gsc(wf == WF_I4 ? (size_t)N * nch : 1);
            for (int r = 0; r < N; r++) {
                const __half* row = &hw[(size_t)r * K];
                if (wf == WF_F16) { for (int k = 0; k < K; k++) hdq[(size_t)r * K + k] = row[k]; continue; }
                if (wf == WF_I4) {
                    for (int c = 0; c < nch; c++) {
                        float am = 0.f;
                        for (int k = 128 * c; k < 128 * c + 128; k++) am = fmaxf(am, fabsf(__half2float(row[k])));
                        const __half sh = __float2half(am > 0 ? am / 7.f : 1.f);
                        const float s = __half2float(sh);
                        gsc[(size_t)r * nch + c] = sh;
                        for (int k = 128 * c; k < 128 * c + 128; k++) {
                            int q = (int)lrintf(__half2float(row[k]) / s);
                            q = std::max(-8, std::min(7, q));
                            code[(size_t)r * K + k] = (unsigned char)(q + 8);
                            hdq[(size_t)r * K + k] = __hmul(__float2half((float)q), sh);
                        }
                    }
                    continue;
                }
                float am = 0.f;
                for (int k = 0; k < K; k++) am = fmaxf(am, fabsf(__half2float(row[k])));
                const float s = (wf == WF_FP8 || wf == WF_F8A8) ? am / 448.f : am / 127.f;
                rsc[r] = s;
                for (int k = 0; k < K; k++) {
                    const float v = __half2float(row[k]) / s;
                    if (wf == WF_FP8 || wf == WF_F8A8) {
                        __nv_fp8_e4m3 q(v);
                        code[(size_t)r * K + k] = *(unsigned char*)&q;
                        hdq[(size_t)r * K + k] = __float2half(float(q) * s);
                    } else {
                        const int q = std::max(-127, std::min(127, (int)lrintf(v)));
                        code[(size_t)r * K + k] = (unsigned char)(q + 128);
                        hdq[(size_t)r * K + k] = __float2half(q * s);
                    }
                }
            }
            std::vector<unsigned char> pk(wf == WF_F16 ? n * 2 : (wf == WF_I4 ? n / 2 : n));
            if (wf == WF_F8A8) {
                for (int t = 0; t < N / 64; t++)
                    for (int kg = 0; kg < K / 16; kg++)
                        for (int r = 0; r < 64; r++)
                            for (int e = 0; e < 16; e++) pk[(((size_t)t * (K / 16) + kg) * 64 + r) * 16 + e] = code[(size_t)(t * 64 + r) * K + kg * 16 + e];
            } else if (wf == WF_F16) {
                __half* p16 = (__half*)pk.data();
                for (int t = 0; t < N / 64; t++)
                    for (int kg = 0; kg < K / 8; kg++)
                        for (int r = 0; r < 64; r++)
                            for (int e = 0; e < 8; e++) p16[(((size_t)t * (K / 8) + kg) * 64 + r) * 8 + e] = hw[(size_t)(t * 64 + r) * K + kg * 8 + e];
            } else {
                for (int t = 0; t < N / 64; t++)
                    for (int c = 0; c < nch; c++)
                        for (int w = 0; w < 4; w++)
                            for (int l = 0; l < 32; l++)
                                for (int step = 0; step < 8; step++)
                                    for (int e = 0; e < 8; e++) {
                                        const int g = l / 4, t4 = l % 4;
                                        const int row = t * 64 + 16 * w + g + ((e & 2) ? 8 : 0);
                                        const int k = c * 128 + step * 16 + ((e & 4) ? 8 : 0) + 2 * t4 + (e & 1);
                                        const unsigned char cv = code[(size_t)row * K + k];
                                        if (wf == WF_I4) {
                                            const int j = step / 4, u = step % 4;
                                            const size_t wi = ((size_t)t * nch + c) * 4096 + (w * 2 + j) * 512 + l * 16 + u * 4;
                                            const int nib = (e & 1) ? (e >> 1) + 4 : (e >> 1);
                                            u32 word; memcpy(&word, &pk[wi], 4);
                                            word |= (u32)(cv & 15) << (4 * nib);
                                            memcpy(&pk[wi], &word, 4);
                                        } else {
                                            const int j = step / 2, h = step % 2;
                                            pk[((size_t)t * nch + c) * 8192 + (w * 4 + j) * 512 + l * 16 + 8 * h + e] = cv;
                                        }
                                    }
            }
            std::vector<__half> spk(wf == WF_I4 ? (size_t)N * nch : 0);
            if (wf == WF_I4)
                for (int t = 0; t < N / 64; t++)
                    for (int c = 0; c < nch; c++)
                        for (int r = 0; r < 64; r++) spk[((size_t)t * nch + c) * 64 + r] = gsc[(size_t)(t * 64 + r) * nch + c];
            for (int l = 0; l < L; l++) {
                unsigned char* p; CK(cudaMalloc(&p, pk.size())); CK(cudaMemcpy(p, pk.data(), pk.size(), cudaMemcpyHostToDevice)); Wp[si][wf].push_back(p);
                float* rs; CK(cudaMalloc(&rs, N * 4)); CK(cudaMemcpy(rs, rsc.data(), N * 4, cudaMemcpyHostToDevice)); Rs[si][wf].push_back(rs);
                if (wf == WF_I4) { __half* q; CK(cudaMalloc(&q, spk.size() * 2)); CK(cudaMemcpy(q, spk.data(), spk.size() * 2, cudaMemcpyHostToDevice)); Sgp[si].push_back(q); }
                if (wf == WF_F16) { __half* a; CK(cudaMalloc(&a, n * 2)); CK(cudaMemcpy(a, hw.data(), n * 2, cudaMemcpyHostToDevice)); Wf[si].push_back(a); }
            }
            CK(cudaMalloc(&Wdq[si][wf], n * 2)); CK(cudaMemcpy(Wdq[si][wf], hdq.data(), n * 2, cudaMemcpyHostToDevice));
        }
    }
    auto time_graph = [&](auto&& body) -> float {
        cudaGraph_t g; cudaGraphExec_t ge;
        CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
        body();
        CK(cudaStreamEndCapture(st, &g));
        CK(cudaGraphInstantiate(&ge, g, 0));
        CK(cudaGraphLaunch(ge, st)); CK(cudaStreamSynchronize(st));
        float best = 1e9;
        for (int rep = 0; rep < 3; rep++) {
            CK(cudaEventRecord(e0, st));
            for (int r = 0; r < REP; r++) CK(cudaGraphLaunch(ge, st));
            CK(cudaEventRecord(e1, st)); CK(cudaEventSynchronize(e1));
            float ms; cudaEventElapsedTime(&ms, e0, e1);
            best = std::min(best, ms * 1000.f / REP);
        }
        cudaGraphExecDestroy(ge); cudaGraphDestroy(g);
        return best;
    };
    // cuBLAS: y (T, N) f32 = x · Wᵀ (beta 0), the engine's f32 outputs
    auto cublas = [&](const __half* Wm, int si, const __half* Xin, float* Y, int T, float beta) {
        const Shape& s = shapes[si];
        const float alpha = 1.f;
        cublasGemmEx(hb, CUBLAS_OP_T, CUBLAS_OP_N, s.N, T, s.K, &alpha, Wm, CUDA_R_16F, s.K, Xin, CUDA_R_16F, s.K, &beta, Y, CUDA_R_32F, s.N,
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    };
    const double bw = 4.26e12;
    double cub_sum = 0, best_sum[NWF] = {};
    Cfg bestcfg[NWF][4];
    bool all_ok = true;
    float* Yt; CK(cudaMalloc(&Yt, (size_t)M * 11264 * 4));
    for (int si = 0; si < 4; si++) {
        const Shape& s = shapes[si];
        const int N = s.N, K = s.K;
        CUtensorMap tm16 = tmap(X[si], K, M, false), tm8 = tmap(X8[si], K, M, true);
        CUtensorMap tm16b = tmap(X[si], K, 40, false), tm8b = tmap(X8[si], K, 40, true);
        const double b16 = (double)N * K * 2;
        const float tc = time_graph([&] { for (int l = 0; l < L; l++) cublas(Wf[si][l], si, X[si], Yc[si], M, 0.f); }) / L;
        cub_sum += tc;
        printf("%-7s M=%d N=%d K=%d: cublasGemmEx f16 (f32 out) %.2f us (%.0f GB/s); bandwidth time f16 %.2f / 8-bit %.2f / int4 %.2f us\n", s.name, M, N, K,
               tc, b16 / tc * 1e-3, b16 / bw * 1e6, b16 / 2 / bw * 1e6, b16 / 4 / bw * 1e6);
        float best[NWF];
        for (int wf = 0; wf < NWF; wf++) best[wf] = 1e9f;
        for (int wf = 0; wf < NWF; wf++) {
            const CUtensorMap& tm = wf == WF_F8A8 ? tm8 : tm16;
            const CUtensorMap& tmb = wf == WF_F8A8 ? tm8b : tm16b;
            const __half* xin = wf == WF_F8A8 ? Xq[si] : X[si];
            // references: T = 64; T = 40 added to y = 1 (the accumulate form)
            std::vector<float> ref((size_t)M * N), ref40((size_t)40 * N), got((size_t)M * N);
            cublas(Wdq[si][wf], si, xin, Yt, M, 0.f); CK(cudaStreamSynchronize(st));
            CK(cudaMemcpy(ref.data(), Yt, ref.size() * 4, cudaMemcpyDeviceToHost));
            // (W8A8 reference: x's per-row scale applied by cuBLAS through Xq)
            float refmax = 0.f;
            for (auto v : ref) refmax = fmaxf(refmax, fabsf(v));
            for (Cfg c : std::vector<Cfg>{
#define B(WF, NC, NST) {WF, NC, NST, 1},
                     CFGS(B)
#undef B
                 }) {
                if (c.wf != wf) continue;
                for (int S : {1, 2, 4, 8, 11, 16}) {
                    c.s = S;
                    if (N % (c.nc * 64) || K % (S * 128) || smem_of(c) > 227 * 1024) continue;
                    char nm[96];
                    snprintf(nm, sizeof nm, "%s nc%d nst%d S%d", WFN[wf], c.nc, c.nst, S);
                    const __half* sg0 = wf == WF_I4 ? Sgp[si][0] : nullptr;
                    CK(cudaMemset(Yt, 0, (size_t)M * N * 4));
                    launch(c, Wp[si][wf][0], sg0, Rs[si][wf][0], XS[si], Yt, N, K, M, 0, tm, false, st);
                    CK(cudaStreamSynchronize(st));
                    CK(cudaMemcpy(got.data(), Yt, got.size() * 4, cudaMemcpyDeviceToHost));
                    float md = 0.f;
                    for (size_t i = 0; i < got.size(); i++) md = fmaxf(md, fabsf(got[i] - ref[i]));
                    // T = 40 rows, accumulated into y = 1: rows 40..63 must stay 1
                    std::vector<float> ones((size_t)M * N, 1.f);
                    CK(cudaMemcpy(Yt, ones.data(), ones.size() * 4, cudaMemcpyHostToDevice));
                    launch(c, Wp[si][wf][0], sg0, Rs[si][wf][0], XS[si], Yt, N, K, 40, 1, tmb, false, st);
                    CK(cudaStreamSynchronize(st));
                    CK(cudaMemcpy(got.data(), Yt, got.size() * 4, cudaMemcpyDeviceToHost));
                    float md40 = 0.f;
                    for (size_t i = 0; i < got.size(); i++) {
                        const float want = i < (size_t)40 * N ? 1.f + ref[i] : 1.f;
                        md40 = fmaxf(md40, fabsf(got[i] - want));
                    }
                    const float rel = md / refmax, rel40 = md40 / refmax;
                    const bool ok = rel < 5e-3f && rel40 < 5e-3f;
                    all_ok &= ok;
                    const float t = time_graph([&] {
                        for (int l = 0; l < L; l++)
                            launch(c, Wp[si][wf][l], wf == WF_I4 ? Sgp[si][l] : nullptr, Rs[si][wf][l], XS[si], Yc[si], N, K, M, 0, tm, true, st);
                    }) / L;
                    printf("  %-22s %7.2f us  x%.2f of cuBLAS  rel err %.1e (T 40 + acc %.1e) %s\n", nm, t, tc / t, rel, rel40, ok ? "ok" : "FAIL");
                    if (ok && t < best[wf]) { best[wf] = t; bestcfg[wf][si] = c; }
                }
            }
        }
        for (int wf = 0; wf < NWF; wf++) {
            best_sum[wf] += best[wf];
            const Cfg& c = bestcfg[wf][si];
            printf("  best %-5s nc%d nst%d S%d %.2f us (x%.2f of cuBLAS f16)\n", WFN[wf], c.nc, c.nst, c.s, best[wf], tc / best[wf]);
        }
    }
    printf("a layer (4 GEMMs at 64 rows, same-GEMM chains): cuBLAS f16 %.2f us", cub_sum);
    for (int wf = 0; wf < NWF; wf++) printf("; %s %.2f us (x%.2f)", WFN[wf], best_sum[wf], cub_sum / best_sum[wf]);
    printf("\ncorrectness: %s\n", all_ok ? "every config within 5e-3 of cuBLAS on the dequantized operands (T 64; T 40 accumulated)" : "SOME CONFIG FAILED");
    // layer chains: 22 × (qkv, o, gate/up, down) with a glue kernel between GEMMs (reads the y, writes the next x)
    CUtensorMap tmc[4][2];
    for (int si = 0; si < 4; si++) { tmc[si][0] = tmap(X[si], shapes[si].K, M, false); tmc[si][1] = tmap(X8[si], shapes[si].K, M, true); }
    auto glue_l = [&](int si, void* dst, int bytes) {
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = dim3(132, 1, 1); cfg.blockDim = dim3(256, 1, 1); cfg.stream = st;
        cudaLaunchAttribute at[1];
        at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization; at[0].val.programmaticStreamSerializationAllowed = 1;
        cfg.attrs = at; cfg.numAttrs = 1;
        CK(cudaLaunchKernelEx(&cfg, glue, (const float*)Yc[si], shapes[si].N, (unsigned char*)dst, bytes));
    };
    for (int gl = 0; gl < 2; gl++) {
        const float tcb = time_graph([&] {
            for (int l = 0; l < L; l++)
                for (int si = 0; si < 4; si++) {
                    cublas(Wf[si][l], si, X[si], Yc[si], M, 0.f);
                    if (gl) glue_l(si, X[(si + 1) % 4], M * shapes[(si + 1) % 4].K * 2);
                }
        }) / L;
        printf("layer chain%s: cuBLAS f16 %.2f us", gl ? " with glue" : "", tcb);
        for (int wf = 0; wf < NWF; wf++) {
            if (best_sum[wf] > 1e8) continue;
            const float t = time_graph([&] {
                for (int l = 0; l < L; l++)
                    for (int si = 0; si < 4; si++) {
                        const Shape& sh = shapes[si];
                        launch(bestcfg[wf][si], Wp[si][wf][l], wf == WF_I4 ? Sgp[si][l] : nullptr, Rs[si][wf][l], XS[si], Yc[si], sh.N, sh.K, M, 0,
                               tmc[si][wf == WF_F8A8], true, st);
                        const int nx = (si + 1) % 4;
                        if (gl) glue_l(si, wf == WF_F8A8 ? (void*)X8[nx] : (void*)X[nx], M * shapes[nx].K * (wf == WF_F8A8 ? 1 : 2));
                    }
            }) / L;
            printf("; %s %.2f us (x%.2f)", WFN[wf], t, tcb / t);
        }
        printf("\n");
    }
    return all_ok ? 0 : 1;
}
