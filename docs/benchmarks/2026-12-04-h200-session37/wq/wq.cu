// Session 37 prototype (not part of the engine): the 64-row decode GEMM reading QUANTIZED weights as codes,
// Y[64, N] = X[64, K] · W[N, K]^T, against cublasGemmEx on the f16 weights in CUDA graphs of 22 launches (22 layers).
//
// Issue #11's quantized bs64 goal (1.4x fp16) and #15's fp8 bs64 1.3x need the four layer GEMMs at 64 rows to read
// the codes: today's engine reads a load-time f16 copy through cuBLASLt (parity with fp16 by construction), and its
// own mma.sync GEMM (tcg3, codes in the kernel) runs 0.65x of that (session 37 call 1). This is session 15's
// warp-specialized structure (docs/benchmarks/2026-12-01-h200-session15/gemm_ws/ws.cu: one producer lane issuing
// bulk copies of load-time-packed weight tiles and of the x stage into an NST-slot mbarrier ring, NC consumer
// warpgroups running wgmma, split-K through a cluster's distributed shared memory) with register-operand (RS)
// consumers for three code formats, and the fix of that prototype's fp8 consumer (it waited for ALL its MMAs
// before converting the next stage: wait_group 0): two register sets of A fragments, so stage s converts while
// stage s - 1's MMAs run (wait_group 1).
//   WF_F16 (0): f16 weights, both operands from shared memory (SS) — the bytes cuBLAS reads, for reference.
//   WF_FP8 (1): E4M3 codes, per-row f32 scale in the epilogue (cvt.rn.f16x2.e4m3x2: 1 instruction per pair).
//   WF_I8  (2): int8 codes stored as q + 128, per-row f32 scale in the epilogue (prmt into 1024 + b, minus 1152).
//   WF_I4  (3): int4 codes (q in [-8, 7], stored as q + 8), one f16 scale per (row, 128 k), applied to the
//               converted fragments (lop3 into 1024 + u, minus 1032, times the scale).
// Layouts (packed at load; a 64-row tile t, a 128-k chunk c, contiguous in (t, c) order):
//   x: [K/8][64 rows][8 halves] (ws.cu's packed x), a KC stage = one contiguous run of KC·128 bytes.
//   f16: [K/8][64][8] halves per tile (16 KB a chunk).
//   8-bit: 8 KB a chunk = [warp 4][j 4][lane 32][16 B]; bytes 8h .. 8h + 7 of (w, lane, j) are k16 step 2j + h:
//          (row g, k 2t4), (g, 2t4 + 1), (g + 8, 2t4), (g + 8, 2t4 + 1), (g, 8 + 2t4), (g, 9 + 2t4), (g + 8, 8 + 2t4),
//          (g + 8, 9 + 2t4) with g = 16w + lane / 4, t4 = lane % 4 — wgmma's A fragment order, two bytes a register.
//   int4: 4 KB a chunk = [warp 4][j 2][lane 32][16 B]; word u of (w, lane, j) is k16 step 4j + u, its 8 elements in
//          the 8-bit order e0 .. e7 with e(2p) in nibble p and e(2p + 1) in nibble p + 4 (register p = nibbles p, p + 4);
//          scales [t][c][64 rows] f16 (128 B a chunk).
// nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 wq.cu -lcublas -lcuda -o wq
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

// KC: k per stage (a multiple of 128); NST: ring slots; NC consumer warpgroups (64 output rows each);
// OV (RS formats): 1 = two register sets, stage st converts while st - 1's MMAs run (wait_group 1; ptxas reports
// C7513 and serializes the wgmmas), 0 = one set, wait_group 0 before converting (session 15's order).
// MC: x multicast — clusters of (S, MC): the MC CTAs of consecutive row tiles that share a K slice each load 1/MC
// of every x stage and multicast it to all MC (x's L2 traffic / MC; a slot is refilled once all MC released it).
// KW: warpgroups per row tile taking the stages in turn (stage st by warpgroup st % KW, each with its own accumulator,
// summed at the end): one warpgroup converts while another's MMAs run, with no register hazard for ptxas to see.
template <int WF, int NC, int KC, int NST, int OV, int MC, int KW>
__global__ void __launch_bounds__(NC * KW * 128 + 32, 1)
    wq(const unsigned char* __restrict__ W, const __half* __restrict__ Sg, const __half* __restrict__ Xp,
       const float* __restrict__ rscale, __half* __restrict__ Y, int N, int K, int KS, int flags) {
    // flags (timing only, wrong results): 1 = no x copies (the weight stream alone), 2 = no weight copies (x alone)
    const bool nox = flags & 1, now = (flags & 2) != 0;
    extern __shared__ __align__(1024) unsigned char sm_raw[];
    constexpr u32 CPS = KC / 128;                      // chunks per stage
    constexpr u32 WB = Fm<WF>::CB * CPS;               // weight bytes of one subtile per stage
    constexpr u32 SB = Fm<WF>::SCB * CPS;              // scale bytes of one subtile per stage
    constexpr u32 XPK = WF == WF_F8A8 ? 64 : 128;      // x bytes per k (64 rows, f16 or E4M3)
    constexpr u32 XB = KC * XPK;                       // x bytes per stage
    constexpr u32 SLOT = NC * (WB + SB) + XB;
    const u32 FB = (now ? 0u : NC * (WB + SB)) + (nox ? 0u : XB);  // bytes a full barrier waits for
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int S = gridDim.x, s = blockIdx.x, tile0 = blockIdx.y * NC, cy = MC > 1 ? (int)(blockIdx.y % MC) : 0;
    unsigned short mcmask = 0;
    for (int c = 0; c < MC; c++) mcmask |= (unsigned short)(1u << (s + c * S));
    const int kbeg = s * KS, nstage = KS / KC, nch = K / 128;
    const u32 raw = (u32)__cvta_generic_to_shared(sm_raw), base = (raw + 1023u) & ~1023u;
    unsigned char* sm = sm_raw + (base - raw);
    const u32 full = base, empty = base + 8 * NST, ring = base + 1024;
    // release a slot: its empty barrier in every CTA of the multicast group
    auto release = [&](int sl) {
        if (MC == 1) bar_arrive(empty + 8 * sl);
        else
            for (int c = 0; c < MC; c++) bar_arrive_cl(empty + 8 * sl, (u32)(s + c * S));
    };
    if (tid == 0) {
        for (int i = 0; i < NST; i++) { bar_init(full + 8 * i, 1); bar_init(empty + 8 * i, NC * MC); }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    if (MC > 1) cl_sync(); else __syncthreads();  // multicasts and remote arrivals need every CTA's barriers
    float d[32];
    if (warp == NC * KW * 4) {
        if (lane == 0) {  // producer: one lane issues every copy
            auto wcopy = [&](int st, u32 slot, u32 bar) {
                if (now) return;
                const int c0 = (kbeg + st * KC) / 128;
                for (int c = 0; c < NC; c++) {
                    const size_t t = (size_t)(tile0 + c);
                    bulk(slot + c * WB, W + (t * nch + c0) * Fm<WF>::CB, WB, bar);
                    if (SB) bulk(slot + NC * WB + c * SB, (const unsigned char*)Sg + (t * nch + c0) * Fm<WF>::SCB, SB, bar);
                }
            };
            auto xcopy = [&](u32 dst, int k0, u32 bar) {
                if (nox) return;
                const unsigned char* src = (const unsigned char*)Xp + (size_t)k0 * XPK;
                if (MC == 1) bulk(dst, src, XB, bar);
                else bulk_mc(dst + cy * (XB / MC), src + cy * (XB / MC), XB / MC, bar, mcmask);
            };
            const int pre = min(NST, nstage);
            for (int st = 0; st < pre; st++) {
                bar_expect(full + 8 * st, FB);
                wcopy(st, ring + st * SLOT, full + 8 * st);
            }
            pdl_wait();  // only x depends on the previous kernel
            for (int st = 0; st < pre; st++)
                xcopy(ring + st * SLOT + NC * (WB + SB), kbeg + st * KC, full + 8 * st);
            int sl = pre % NST, ph = 0;  // slot and the phase of its previous use (no divisions)
            for (int st = pre; st < nstage; st++) {
                bar_wait(empty + 8 * sl, ph);
                const u32 slot = ring + sl * SLOT;
                bar_expect(full + 8 * sl, FB);
                wcopy(st, slot, full + 8 * sl);
                xcopy(slot + NC * (WB + SB), kbeg + st * KC, full + 8 * sl);
                if (++sl == NST) { sl = 0; ph ^= 1; }
            }
        }
    } else {
        const int wgi = warp >> 2, wg = wgi % NC, kw = wgi / NC, wq4 = warp & 3;
#pragma unroll
        for (int i = 0; i < 32; i++) d[i] = 0.f;
        if (WF == WF_F16 || WF == WF_F8A8) {
            int sl = kw, ph = 0, prev = -1;
#pragma unroll 1
            for (int st = kw; st < nstage; st += KW) {
                bar_wait(full + 8 * sl, ph);
                const u32 slot = ring + sl * SLOT, wa = slot + wg * WB, xb = slot + NC * WB;
                wg_fence();
#pragma unroll
                for (int j = 0; j < KC / (WF == WF_F8A8 ? 32 : 16); j++) {
                    // a step = two 16-byte columns of core matrices (8 halves or 16 codes each), 64 rows × 16 B apart
                    if (WF == WF_F8A8) mma_ss8(d, sdesc(wa + j * 2048, 1024, 128), sdesc(xb + j * 2048, 1024, 128));
                    else mma_ss(d, sdesc(wa + j * 2048, 1024, 128), sdesc(xb + j * 2048, 1024, 128));
                }
                wg_commit();
                wg_wait<1>();  // the previous stage's MMAs are done: release its slot
                if (prev >= 0 && (tid & 127) == 0) release(prev);
                prev = sl;
                sl += KW;
                if (sl >= NST) { sl -= NST; ph ^= 1; }
            }
        } else {
            // RS: A fragments in two register sets; stage st converts into set st & 1 once stage st - 2's MMAs
            // (the last readers of that set, and of that slot's x) are done: wait_group 1 leaves st - 1's running.
            constexpr int NSTEP = KC / 16;
            u32 a[2][NSTEP][4];
            int sl = kw, ph = 0, prev2 = -1, prev1 = -1;
#pragma unroll
            for (int b = 0; b < 2; b++)
#pragma unroll
                for (int j = 0; j < NSTEP; j++)
#pragma unroll
                    for (int q = 0; q < 4; q++) a[b][j][q] = 0u;
            auto stage = [&](auto bufc) {
                constexpr int B = OV ? decltype(bufc)::value : 0;
                auto rel = [&] { return OV ? prev2 : prev1; };  // the slot whose MMAs the wait just retired
                // The set's previous values (stage st - 2's MMA inputs) stay live up to here, after the wait that
                // retires their MMAs: otherwise the allocator gives both sets the same registers (their MMAs read
                // them asynchronously) and ptxas serializes every wgmma (C7513).
                auto keep = [&] {
#pragma unroll
                    for (int j = 0; j < NSTEP; j++)
#pragma unroll
                        for (int q = 0; q < 4; q++) pin(a[B][j][q]);
                };
                bar_wait(full + 8 * sl, ph);
                const u32 slot = ring + sl * SLOT, wa = slot + wg * WB, xb = slot + NC * (WB + SB);
                if (WF == WF_I4) {
                    uint4 v[CPS][2];
                    u32 sg[CPS], sh[CPS];
#pragma unroll
                    for (int c = 0; c < (int)CPS; c++) {
#pragma unroll
                        for (int j = 0; j < 2; j++) {
                            const u32 ad = wa + c * 4096 + (u32)((wq4 * 2 + j) * 512 + lane * 16);
                            asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v[c][j].x), "=r"(v[c][j].y), "=r"(v[c][j].z), "=r"(v[c][j].w) : "r"(ad));
                        }
                        const u32 sa = slot + NC * WB + wg * SB + c * 128 + (u32)(16 * wq4 + (lane >> 2)) * 2;
                        unsigned short h0, h1;
                        asm volatile("ld.shared.u16 %0, [%1];" : "=h"(h0) : "r"(sa));
                        asm volatile("ld.shared.u16 %0, [%1];" : "=h"(h1) : "r"(sa + 16));
                        sg[c] = (u32)h0 | ((u32)h0 << 16);
                        sh[c] = (u32)h1 | ((u32)h1 << 16);
                    }
                    if (OV) wg_wait<1>(); else wg_wait<0>();
                    if (rel() >= 0 && (tid & 127) == 0) release(rel());
                    keep();
#pragma unroll
                    for (int c = 0; c < (int)CPS; c++) {
                        const u32 w8[8] = {v[c][0].x, v[c][0].y, v[c][0].z, v[c][0].w, v[c][1].x, v[c][1].y, v[c][1].z, v[c][1].w};
#pragma unroll
                        for (int u = 0; u < 8; u++) cvt4(w8[u], sg[c], sh[c], a[B][8 * c + u]);
                    }
                } else {
                    uint4 v[CPS][4];
#pragma unroll
                    for (int c = 0; c < (int)CPS; c++)
#pragma unroll
                        for (int j = 0; j < 4; j++) {
                            const u32 ad = wa + c * 8192 + (u32)((wq4 * 4 + j) * 512 + lane * 16);
                            asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v[c][j].x), "=r"(v[c][j].y), "=r"(v[c][j].z), "=r"(v[c][j].w) : "r"(ad));
                        }
                    if (OV) wg_wait<1>(); else wg_wait<0>();
                    if (rel() >= 0 && (tid & 127) == 0) release(rel());
                    keep();
#pragma unroll
                    for (int c = 0; c < (int)CPS; c++)
#pragma unroll
                        for (int j = 0; j < 4; j++) {
                            const int s0 = 8 * c + 2 * j;
                            cvt8<WF>(v[c][j].x, a[B][s0][0], a[B][s0][1]);
                            cvt8<WF>(v[c][j].y, a[B][s0][2], a[B][s0][3]);
                            cvt8<WF>(v[c][j].z, a[B][s0 + 1][0], a[B][s0 + 1][1]);
                            cvt8<WF>(v[c][j].w, a[B][s0 + 1][2], a[B][s0 + 1][3]);
                        }
                }
#pragma unroll
                for (int j = 0; j < NSTEP; j++)
#pragma unroll
                    for (int q = 0; q < 4; q++) pin(a[B][j][q]);
#pragma unroll
                for (int i = 0; i < 32; i++) pinf(d[i]);
                wg_fence();
#pragma unroll
                for (int j = 0; j < NSTEP; j++) mma_rs(d, a[B][j], sdesc(xb + j * 2048, 1024, 128));
                wg_commit();
#pragma unroll
                for (int i = 0; i < 32; i++) pinf(d[i]);
                prev2 = prev1;
                prev1 = sl;
                sl += KW;
                if (sl >= NST) { sl -= NST; ph ^= 1; }
            };
#pragma unroll 1
            for (int st = kw; st < nstage; st += 2 * KW) {
                stage(std::integral_constant<int, 0>{});
                if (st + KW < nstage) stage(std::integral_constant<int, 1>{});
            }
        }
        wg_wait<0>();
    }
    pdl_trigger();
    __syncthreads();  // every stage consumed: the ring is free for the partial tiles
    if (KW > 1) {  // the other warpgroups' accumulators into warpgroup kw = 0's (merge area past the partial tile's)
        float* mg = (float*)(sm + 1024 + 40960);
        const int wgi = warp >> 2;
        if (warp < NC * KW * 4 && wgi >= NC)
#pragma unroll
            for (int i = 0; i < 32; i++) mg[((wgi - NC) * 32 + i) * 128 + (tid & 127)] = d[i];
        __syncthreads();
        if (warp < NC * 4)
            for (int k = 1; k < KW; k++)
#pragma unroll
                for (int i = 0; i < 32; i++) d[i] += mg[(((k - 1) * NC + wgi) * 32 + i) * 128 + (tid & 127)];
    }
    // accumulator i of warp wq4 in warpgroup wg: output row 64·wg + 16·wq4 + g (+8 for i & 2), batch row 8·(i/4) + 2·t4 (+1 for i & 1)
    const int g = lane >> 2, t4 = lane & 3;
    constexpr int TO = NC * 64, RS = TO + 4;
    const bool rowsc = WF == WF_FP8 || WF == WF_I8 || WF == WF_F8A8;  // (W8A8: the row scale times x's)
    if (S == 1) {
        if (warp < NC * 4) {
            const int wg = warp >> 2, wq4 = warp & 3;
#pragma unroll
            for (int i = 0; i < 32; i++) {
                const int o = tile0 * 64 + 64 * wg + 16 * wq4 + g + ((i & 2) ? 8 : 0), b = 8 * (i >> 2) + 2 * t4 + (i & 1);
                float v = d[i];
                if (rowsc) v *= rscale[o];
                Y[(size_t)b * N + o] = __float2half(v);
            }
        }
        if (MC > 1) cl_sync();  // no CTA leaves while others may still arrive on its barriers
        return;
    }
    float* red = (float*)(sm + 1024);  // past the mbarriers
    if (warp < NC * 4) {
        const int wg = warp >> 2, wq4 = warp & 3;
#pragma unroll
        for (int i = 0; i < 32; i++) {
            const int o = 64 * wg + 16 * wq4 + g + ((i & 2) ? 8 : 0), b = 8 * (i >> 2) + 2 * t4 + (i & 1);
            red[b * RS + o] = d[i];
        }
    }
    cl_sync();
    const int rank = s;  // this CTA's share of the S partial tiles of its row tile (cluster ranks cy·S .. cy·S + S − 1)
    const int items = 64 * TO / 2, per = (items + S - 1) / S, i1 = min(items, (rank + 1) * per);
    const u32 rb = (u32)__cvta_generic_to_shared(red);
    for (int i = rank * per + tid; i < i1; i += blockDim.x) {
        const int b = i / (TO / 2), o = 2 * (i - b * (TO / 2));
        float y0 = 0.f, y1 = 0.f;
        for (int q = 0; q < S; q++) {
            u32 ra;
            asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(rb + (u32)(b * RS + o) * 4u), "r"(q + cy * S));
            float2 v;
            asm volatile("ld.shared::cluster.v2.f32 {%0,%1}, [%2];" : "=f"(v.x), "=f"(v.y) : "r"(ra));
            y0 += v.x; y1 += v.y;
        }
        const int og = tile0 * 64 + o;
        if (rowsc) { y0 *= rscale[og]; y1 *= rscale[og + 1]; }
        *(__half2*)(Y + (size_t)b * N + og) = __floats2half2_rn(y0, y1);
    }
    cl_sync();
}

// Glue between the chain's GEMMs (as the engine's RMSNorm / RoPE / SwiGLU / residual kernels sit between them):
// waits for the GEMM before it, reads its output (64 × n f16) and writes the next GEMM's input (`xb` bytes), then lets
// the next launch begin (PDL) — so the next GEMM's weight prefetch overlaps only the glue, not the GEMM before.
__global__ void glue(const __half* __restrict__ y, int n, unsigned char* __restrict__ xo, int xb) {
    pdl_wait();
    float s = 0.f;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < 64 * n / 8; i += gridDim.x * blockDim.x) {
        const uint4 v = ((const uint4*)y)[i];
        s += __half2float(*(const __half*)&v.x);
    }
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < xb / 16; i += gridDim.x * blockDim.x)
        ((uint4*)xo)[i] = make_uint4(0x3c003c00u ^ (s > 1e30f), 0x3c003c00u, 0x3c003c00u, 0x3c003c00u);  // f16 1.0 / e4m3 codes
    pdl_trigger();
}
struct Cfg { int wf, nc, kc, nst, ov, mc, kw, s; };
template <int WF, int NC, int KC, int NST, int OV, int MC, int KW>
size_t smem_t() {
    constexpr size_t SLOT = NC * (Fm<WF>::CB + Fm<WF>::SCB) * (KC / 128) + KC * (WF == WF_F8A8 ? 64 : 128);
    return 2048 + std::max({(size_t)NST * SLOT, (size_t)64 * (NC * 64 + 4) * 4, (size_t)40960 + (KW - 1) * NC * 16384});
}
template <int WF, int NC, int KC, int NST, int OV, int MC, int KW>
void launch_t(const unsigned char* W, const __half* Sg, const __half* Xp, const float* sc, __half* Y, int N, int K, int S, bool pdl, cudaStream_t st) {
    const size_t smem = smem_t<WF, NC, KC, NST, OV, MC, KW>();
    static bool init = false;
    if (!init) {
        CK(cudaFuncSetAttribute(wq<WF, NC, KC, NST, OV, MC, KW>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        CK(cudaFuncSetAttribute(wq<WF, NC, KC, NST, OV, MC, KW>, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
        init = true;
    }
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(S, N / (NC * 64), 1);
    cfg.blockDim = dim3(NC * KW * 128 + 32, 1, 1);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    cudaLaunchAttribute at[2];
    int na = 0;
    at[na].id = cudaLaunchAttributeClusterDimension;
    at[na].val.clusterDim.x = S; at[na].val.clusterDim.y = MC; at[na].val.clusterDim.z = 1; na++;
    if (pdl) { at[na].id = cudaLaunchAttributeProgrammaticStreamSerialization; at[na].val.programmaticStreamSerializationAllowed = 1; na++; }
    cfg.attrs = at; cfg.numAttrs = na;
    const int flags = (getenv("NOX") ? 1 : 0) | (getenv("NOW") ? 2 : 0);
    CK(cudaLaunchKernelEx(&cfg, wq<WF, NC, KC, NST, OV, MC, KW>, W, Sg, Xp, sc, Y, N, K, K / S, flags));
}
#define CFGS(X) \
    X(0, 1, 128, 3, 0, 1, 1) X(0, 1, 128, 4, 0, 1, 1) X(0, 2, 128, 4, 0, 1, 1) X(0, 1, 128, 4, 0, 1, 2) X(0, 1, 128, 6, 0, 1, 2) X(0, 2, 128, 4, 0, 1, 2) \
    X(1, 1, 128, 3, 0, 1, 1) X(1, 1, 128, 4, 0, 1, 1) X(1, 2, 128, 4, 0, 1, 1) X(1, 1, 128, 4, 0, 1, 2) X(1, 1, 128, 6, 0, 1, 2) X(1, 2, 128, 4, 0, 1, 2) \
    X(2, 1, 128, 3, 0, 1, 1) X(2, 1, 128, 4, 0, 1, 1) X(2, 2, 128, 4, 0, 1, 1) X(2, 1, 128, 4, 0, 1, 2) X(2, 1, 128, 6, 0, 1, 2) X(2, 2, 128, 4, 0, 1, 2) \
    X(3, 1, 128, 3, 0, 1, 1) X(3, 1, 128, 4, 0, 1, 1) X(3, 2, 128, 4, 0, 1, 1) X(3, 1, 128, 4, 0, 1, 2) X(3, 1, 128, 6, 0, 1, 2) X(3, 2, 128, 4, 0, 1, 2) \
    X(4, 1, 128, 3, 0, 1, 1) X(4, 1, 128, 4, 0, 1, 1) X(4, 1, 128, 6, 0, 1, 1) X(4, 2, 128, 4, 0, 1, 1) X(4, 1, 256, 4, 0, 1, 1) X(4, 2, 256, 3, 0, 1, 1)

static bool launch(const Cfg& c, const unsigned char* W, const __half* Sg, const __half* Xp, const float* sc, __half* Y, int N, int K, bool pdl, cudaStream_t st) {
#define L(WF, NC, KC, NST, OV, MC, KW) if (c.wf == WF && c.nc == NC && c.kc == KC && c.nst == NST && c.ov == OV && c.mc == MC && c.kw == KW) { launch_t<WF, NC, KC, NST, OV, MC, KW>(W, Sg, Xp, sc, Y, N, K, c.s, pdl, st); return true; }
    CFGS(L)
#undef L
    return false;
}
static size_t smem_of(const Cfg& c) {
#define L(WF, NC, KC, NST, OV, MC, KW) if (c.wf == WF && c.nc == NC && c.kc == KC && c.nst == NST && c.ov == OV && c.mc == MC && c.kw == KW) return smem_t<WF, NC, KC, NST, OV, MC, KW>();
    CFGS(L)
#undef L
    return 0;
}

struct Shape { const char* name; int N, K; };
static float g_xs[4];

int main() {
    const int M = 64, L = 22, REP = 20;
    Shape shapes[4] = {{"qkv", 2560, 2048}, {"o", 2048, 2048}, {"gateup", 11264, 2048}, {"down", 2048, 5632}};
    cublasHandle_t hb; cublasCreate(&hb);
    cudaStream_t st; CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    cublasSetStream(hb, st);
    cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
    const size_t maxk = 5632;
    srand(1);
    std::vector<__half> hx(M * maxk);
    for (auto& v : hx) v = __float2half(rand() / (float)RAND_MAX - 0.5f);
    __half *X, *Xp; CK(cudaMalloc(&X, M * maxk * 2)); CK(cudaMalloc(&Xp, M * maxk * 2));
    // W8A8: x as E4M3 with one per-tensor scale (amax / 448; the engine's static calibrated scale plays this role),
    // packed [K/16][64][16]; Xq its dequantized f16 for cuBLAS's reference
    __half *Xq; unsigned char* Xp8; CK(cudaMalloc(&Xq, M * maxk * 2)); CK(cudaMalloc(&Xp8, M * maxk));
    __half *Y0, *Y1; CK(cudaMalloc(&Y0, (size_t)M * 11264 * 2)); CK(cudaMalloc(&Y1, (size_t)M * 11264 * 2));
    // the layer chain's own x (packed f16 and E4M3) and y buffers per shape
    unsigned char *Xc[4], *Xc8[4]; __half *Xr[4], *Yc[4];
    for (int i = 0; i < 4; i++) {
        CK(cudaMalloc(&Xc[i], M * maxk * 2)); CK(cudaMalloc(&Xc8[i], M * maxk)); CK(cudaMalloc(&Xr[i], M * maxk * 2));
        CK(cudaMalloc(&Yc[i], (size_t)M * 11264 * 2));
    }
    // per shape and format: the packed codes of 22 layers (one host pack, 22 device copies: no L2 reuse across
    // layers), the scales, and layer 0's dequantized f16 copy for cuBLAS's reference
    std::vector<__half*> Wf[4];
    std::vector<unsigned char*> Wp[4][NWF];
    std::vector<__half*> Sgp[4];
    std::vector<float*> Rs[4][NWF];
    __half* Wdq[4][NWF];
    for (int si = 0; si < 4; si++) {
        const int K = shapes[si].K;
        float am = 0.f;
        for (int r = 0; r < M; r++) for (int k = 0; k < K; k++) am = fmaxf(am, fabsf(__half2float(hx[(size_t)r * maxk + k])));
        g_xs[si] = am / 448.f;
    }
    for (int si = 0; si < 4; si++) {
        const int N = shapes[si].N, K = shapes[si].K, nch = K / 128;
        const size_t n = (size_t)N * K;
        std::vector<__half> hw(n), hdq(n);
        for (size_t i = 0; i < n; i++) hw[i] = __float2half(((rand() & 1023) / 1023.f - 0.5f) * 0.05f * (1.f + (i / K % 7)));
        for (int wf = 0; wf < NWF; wf++) {
            std::vector<unsigned char> code(n);  // the element's code byte (f16: unused)
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
                            hdq[(size_t)r * K + k] = __hmul(__float2half((float)q), sh);  // f16(q) · f16(s) rounded to f16, as the kernel
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
            // pack
            std::vector<unsigned char> pk(wf == WF_F16 ? n * 2 : (wf == WF_I4 ? n / 2 : n));
            if (wf == WF_F8A8) {  // K-major core matrices: per 64-row tile [K/16][64][16 codes]
                for (int t = 0; t < N / 64; t++)
                    for (int kg = 0; kg < K / 16; kg++)
                        for (int r = 0; r < 64; r++)
                            for (int e = 0; e < 16; e++) pk[(((size_t)t * (K / 16) + kg) * 64 + r) * 16 + e] = code[(size_t)(t * 64 + r) * K + kg * 16 + e];
                for (int r = 0; r < N; r++) rsc[r] *= g_xs[si];
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
    const float alpha = 1.f, beta = 0.f;
    auto cublas = [&](const __half* Wm, int si, __half* Y, const __half* Xin = nullptr) {
        const Shape& s = shapes[si];
        cublasGemmEx(hb, CUBLAS_OP_T, CUBLAS_OP_N, s.N, M, s.K, &alpha, Wm, CUDA_R_16F, s.K, Xin ? Xin : X, CUDA_R_16F, s.K, &beta, Y, CUDA_R_16F, s.N,
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    };
    std::vector<Cfg> base;
#define B(WF, NC, KC, NST, OV, MC, KW) base.push_back({WF, NC, KC, NST, OV, MC, KW, 1});
    CFGS(B)
#undef B
    const char* only = getenv("ONLY");
    const double bw = 4.26e12;
    double cub_sum = 0, best_sum[NWF] = {};
    std::string bestname[NWF][4];
    Cfg bestcfg[NWF][4];
    bool all_ok = true;
    const bool timing_only = getenv("NOX") || getenv("NOW");  // results wrong by construction
    for (int si = 0; si < 4; si++) {
        const Shape& s = shapes[si];
        const int N = s.N, K = s.K;
        {
            std::vector<__half> xp((size_t)M * K), xr((size_t)M * K);
            for (int r = 0; r < M; r++) for (int k = 0; k < K; k++) xr[(size_t)r * K + k] = hx[(size_t)r * maxk + k];
            for (int kg = 0; kg < K / 8; kg++) for (int r = 0; r < M; r++) for (int e = 0; e < 8; e++) xp[((size_t)kg * 64 + r) * 8 + e] = xr[(size_t)r * K + kg * 8 + e];
            CK(cudaMemcpy(X, xr.data(), xr.size() * 2, cudaMemcpyHostToDevice));
            CK(cudaMemcpy(Xp, xp.data(), xp.size() * 2, cudaMemcpyHostToDevice));
            CK(cudaMemcpy(Xc[si], xp.data(), xp.size() * 2, cudaMemcpyHostToDevice));
            CK(cudaMemcpy(Xr[si], xr.data(), xr.size() * 2, cudaMemcpyHostToDevice));
            std::vector<__half> xq((size_t)M * K);
            std::vector<unsigned char> x8((size_t)M * K);
            for (int r = 0; r < M; r++)
                for (int k = 0; k < K; k++) {
                    __nv_fp8_e4m3 q(__half2float(xr[(size_t)r * K + k]) / g_xs[si]);
                    xq[(size_t)r * K + k] = __float2half(float(q) * g_xs[si]);
                    x8[((size_t)(k / 16) * 64 + r) * 16 + k % 16] = *(unsigned char*)&q;
                }
            CK(cudaMemcpy(Xq, xq.data(), xq.size() * 2, cudaMemcpyHostToDevice));
            CK(cudaMemcpy(Xp8, x8.data(), x8.size(), cudaMemcpyHostToDevice));
            CK(cudaMemcpy(Xc8[si], x8.data(), x8.size(), cudaMemcpyHostToDevice));
        }
        const double b16 = (double)N * K * 2;
        float tc = time_graph([&] { for (int l = 0; l < L; l++) cublas(Wf[si][l], si, Y0); }) / L;
        cub_sum += tc;
        printf("%-7s M=%d N=%d K=%d: cublasGemmEx f16 %.2f us (%.0f GB/s); bandwidth time f16 %.2f / 8-bit %.2f / int4 %.2f us\n", s.name, M, N, K, tc,
               b16 / tc * 1e-3, b16 / bw * 1e6, b16 / 2 / bw * 1e6, b16 / 4 / bw * 1e6);
        float best[NWF] = {1e9f, 1e9f, 1e9f, 1e9f, 1e9f};
        for (int wf = 0; wf < NWF; wf++) {
            std::vector<__half> ref((size_t)M * N), got((size_t)M * N);
            cublas(Wdq[si][wf], si, Y0, wf == WF_F8A8 ? Xq : nullptr); CK(cudaStreamSynchronize(st)); CK(cudaMemcpy(ref.data(), Y0, ref.size() * 2, cudaMemcpyDeviceToHost));
            float refmax = 0.f;
            for (auto v : ref) refmax = fmaxf(refmax, fabsf(__half2float(v)));
            for (Cfg c : base) {
                if (c.wf != wf) continue;
                for (int S : {1, 2, 3, 4, 6, 8, 11, 16}) {
                    c.s = S;
                    if (N % (c.nc * 64) || (N / (c.nc * 64)) % c.mc || S * c.mc > 16 || K % (S * c.kc) || smem_of(c) > 227 * 1024) continue;
                    char nm[96];
                    snprintf(nm, sizeof nm, "%s nc%d kc%d nst%d ov%d mc%d kw%d S%d", WFN[wf], c.nc, c.kc, c.nst, c.ov, c.mc, c.kw, S);
                    if (only && !strstr(nm, only)) continue;
                    const __half* sg0 = wf == WF_I4 ? Sgp[si][0] : nullptr;
                    CK(cudaMemset(Y1, 0, (size_t)M * N * 2));
                    launch(c, Wp[si][wf][0], sg0, wf == WF_F8A8 ? (const __half*)Xp8 : Xp, Rs[si][wf][0], Y1, N, K, false, st);
                    CK(cudaStreamSynchronize(st));
                    CK(cudaMemcpy(got.data(), Y1, got.size() * 2, cudaMemcpyDeviceToHost));
                    float md = 0.f;
                    for (size_t i = 0; i < got.size(); i++) md = fmaxf(md, fabsf(__half2float(got[i]) - __half2float(ref[i])));
                    const float rel = md / refmax;
                    const bool ok = rel < 5e-3f;
                    all_ok &= ok;
                    const float t = time_graph([&] {
                        for (int l = 0; l < L; l++) launch(c, Wp[si][wf][l], wf == WF_I4 ? Sgp[si][l] : nullptr, wf == WF_F8A8 ? (const __half*)Xp8 : Xp, Rs[si][wf][l], Y1, N, K, true, st);
                    }) / L;
                    const double bytes = wf == WF_F16 ? b16 : (wf == WF_I4 ? b16 / 4 + (double)N * (K / 128) * 2 : b16 / 2);
                    printf("  %-26s %7.2f us  %5.0f GB/s  x%.2f of cuBLAS  rel err %.2e %s\n", nm, t, bytes / t * 1e-3, tc / t, rel, ok ? "ok" : "FAIL");
                    if ((ok || timing_only) && t < best[wf]) { best[wf] = t; bestname[wf][si] = nm; bestcfg[wf][si] = c; }
                }
            }
        }
        for (int wf = 0; wf < NWF; wf++) {
            best_sum[wf] += best[wf];
            printf("  best %-5s %s %.2f us (x%.2f of cuBLAS f16)\n", WFN[wf], bestname[wf][si].c_str(), best[wf], tc / best[wf]);
        }
    }
    printf("a layer (4 GEMMs at 64 rows): cuBLAS f16 %.2f us", cub_sum);
    for (int wf = 0; wf < NWF; wf++) printf("; %s %.2f us (x%.2f)", WFN[wf], best_sum[wf], cub_sum / best_sum[wf]);
    printf("\ncorrectness: %s\n", all_ok ? "all configs within 5e-3 of cuBLAS on the dequantized weights" : "SOME CONFIG FAILED");
    // The layer chain: 22 × (qkv, o, gate/up, down), each format's best config per shape, with and without a glue
    // kernel between the GEMMs (the same-GEMM chains above let each GEMM's weight prefetch overlap the previous GEMM
    // of the same shape; the engine runs other kernels between them). cuBLAS on f16 the same way.
    if (!only) {
        auto glue_l = [&](int si, void* dst, int bpk) {  // after GEMM si: read its y, write the next GEMM's x (bpk bytes a k)
            const int nx = (si + 1) % 4;
            cudaLaunchConfig_t cfg = {};
            cfg.gridDim = dim3(132, 1, 1); cfg.blockDim = dim3(256, 1, 1); cfg.stream = st;
            cudaLaunchAttribute at[1];
            at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization; at[0].val.programmaticStreamSerializationAllowed = 1;
            cfg.attrs = at; cfg.numAttrs = 1;
            CK(cudaLaunchKernelEx(&cfg, glue, (const __half*)Yc[si], shapes[si].N, (unsigned char*)dst, M * shapes[nx].K * bpk / 64));
        };
        for (int gl = 0; gl < 2; gl++) {
            const float tcb = time_graph([&] {
                for (int l = 0; l < L; l++)
                    for (int si = 0; si < 4; si++) {
                        cublas(Wf[si][l], si, Yc[si], Xr[si]);
                        if (gl) glue_l(si, Xr[(si + 1) % 4], 128);
                    }
            }) / L;
            printf("layer chain%s: cuBLAS f16 %.2f us", gl ? " with glue" : "", tcb);
            for (int wf = 0; wf < NWF; wf++) {
                if (best_sum[wf] > 1e8) continue;
                const float t = time_graph([&] {
                    for (int l = 0; l < L; l++)
                        for (int si = 0; si < 4; si++) {
                            const Shape& sh = shapes[si];
                            launch(bestcfg[wf][si], Wp[si][wf][l], wf == WF_I4 ? Sgp[si][l] : nullptr,
                                   (const __half*)(wf == WF_F8A8 ? Xc8[si] : Xc[si]), Rs[si][wf][l], Yc[si], sh.N, sh.K, true, st);
                            if (gl) glue_l(si, wf == WF_F8A8 ? (void*)Xc8[(si + 1) % 4] : (void*)Xc[(si + 1) % 4], wf == WF_F8A8 ? 64 : 128);
                        }
                }) / L;
                printf("; %s %.2f us (x%.2f)", WFN[wf], t, tcb / t);
            }
            printf("\n");
        }
    }
    return all_ok ? 0 : 1;
}
