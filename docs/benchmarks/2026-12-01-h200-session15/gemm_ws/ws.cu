// Session 15 prototype (not part of the engine): a warp-specialized 64-row decode GEMM,
// Y[64, N] = X[64, K] · W[N, K]^T, f16 out, against cublasGemmEx in CUDA graphs of 22 launches (as 22 layers).
//
// Session 14's prototypes (register-round weight loads, x staged up front) were latency-bound. This one has
// cuBLAS's sm90 structure: one producer warp issues 1-D bulk copies (cp.async.bulk + mbarrier complete_tx) of
// load-time-packed weight tiles AND of the x stage into an NST-slot shared-memory ring; NC consumer warpgroups
// (64 output rows each, the wgmma M side; the 64 batch rows are wgmma N) wait on the slot's full barrier, run
// wgmma and release the slot through its empty barrier. The producer issues the first NST stages' weights before
// griddepcontrol.wait (PDL: they do not depend on the previous kernel), x after it.
//   WF 0: f16 weights, both operands from shared memory (SS).
//   WF 1: fp8 E4M3 codes (W8A16): the consumer reads its A fragments from shared memory (the pack puts each
//         lane's 8 codes of two k16 steps in one 16-byte word, a warp's 32 words contiguous), converts them
//         (cvt.rn.f16x2.e4m3x2) and runs wgmma with A from registers (RS); the per-row scale is applied in the
//         epilogue.
// Layouts (no swizzle, wgmma K-major core matrices = 8 rows × 16 bytes):
//   x packed as [K/8][64 rows][8 halves] (the writer kernel would store it so): a KC stage = one contiguous run.
//   f16 W per 64-row tile t: [K/8][64][8] halves (tcg4_pack's layout), a stage = KC·128 contiguous bytes.
//   fp8 W per 64-row tile t and 128-k chunk c: 8 KB = [warp 4][j 4][lane 32][16 B]; the 16 bytes of (warp w,
//   lane l, j): k16 steps 2j and 2j+1, each 8 codes: (row g, k 2t4, 2t4+1), (row g+8, same), (row g, k 8+2t4,
//   9+2t4), (row g+8, same), g = 16w + l/4, t4 = l%4 — wgmma's A fragment order.
// Split-K S > 1: grid (S, tiles) in clusters of (S, 1, 1); the partial tiles are summed through DSMEM.
// nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 ws.cu -lcublas -o ws
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <vector>
#include <string>
#include <algorithm>
#include <cmath>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda.h>
#include <cublas_v2.h>
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("CUDA %s at %d: %s\n", #x, __LINE__, cudaGetErrorString(e_)); exit(1); } } while (0)
typedef unsigned u32;
typedef unsigned long long u64;

__device__ __forceinline__ u64 sdesc(u32 addr, u32 lbo, u32 sbo) {
    return (u64)((addr & 0x3FFFFu) >> 4) | ((u64)((lbo >> 4) & 0x3FFFu) << 16) | ((u64)((sbo >> 4) & 0x3FFFu) << 32);
}
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
template <int N> __device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory"); }

#define D32 "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), \
            "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), \
            "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), \
            "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define R32 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}"
__device__ __forceinline__ void mma_ss(float* d, u64 da, u64 db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " R32 ", %32, %33, 1, 1, 1, 0, 0;" : D32 : "l"(da), "l"(db) : "memory");
}
__device__ __forceinline__ void mma_rs(float* d, u32 a0, u32 a1, u32 a2, u32 a3, u64 db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " R32 ", {%32,%33,%34,%35}, %36, 1, 1, 1, 0;"
                 : D32 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db) : "memory");
}
// Four E4M3 codes (bytes 0..3) → two f16x2 (byte 0 → r0.lo, 1 → r0.hi, 2 → r1.lo, 3 → r1.hi).
__device__ __forceinline__ void e4m3x4(u32 v, u32& r0, u32& r1) {
    asm("{ .reg .b16 lo, hi; mov.b32 {lo, hi}, %2; cvt.rn.f16x2.e4m3x2 %0, lo; cvt.rn.f16x2.e4m3x2 %1, hi; }" : "=r"(r0), "=r"(r1) : "r"(v));
}

// KC: k per stage; NST: ring slots; NC consumer warpgroups (64 output rows each).
template <int WF, int NC, int KC, int NST>
__global__ void __launch_bounds__(NC * 128 + 32, 1)
    wsg(const unsigned char* __restrict__ W, const __half* __restrict__ Xp, const float* __restrict__ wscale, __half* __restrict__ Y,
        int N, int K, int KS, int flags, const __grid_constant__ CUtensorMap tmx) {
    extern __shared__ __align__(1024) unsigned char sm_raw[];
    constexpr u32 WB = WF == 0 ? KC * 128 : KC * 64;  // weight bytes of one 64-row subtile per stage
    constexpr u32 XB = KC * 128;                       // x bytes per stage (64 rows, f16)
    constexpr u32 SLOT = NC * WB + XB;
    const bool nox = (flags & 1) != 0;
    const u32 FB = nox ? NC * WB : SLOT;  // bytes a full barrier waits for
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int S = gridDim.x, s = blockIdx.x, tile0 = blockIdx.y * NC;
    const int kbeg = s * KS, nstage = KS / KC;
    // flags & 2: x by TMA (2-D tensor map over row-major X, boxes of 64 k × 64 rows, 128-byte swizzle), as the
    // engine's tcg4 v2 loads it; else the packed x by 1-D bulk copies.
    const bool xt = (flags & 2) != 0;
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
        // producer warp (one lane issues)
        if (lane == 0) {
            auto wsrc = [&](int c, int st) -> const unsigned char* {
                const size_t t = (size_t)(tile0 + c);
                const int k0 = kbeg + st * KC;
                return WF == 0 ? W + (t * K + k0) * 128 : W + (t * K + k0) * 64;
            };
            const int pre = min(NST, nstage);
            for (int st = 0; st < pre; st++) {
                const u32 slot = ring + st * SLOT;
                bar_expect(full + 8 * st, FB);
                for (int c = 0; c < NC; c++) bulk(slot + c * WB, wsrc(c, st), WB, full + 8 * st);
            }
            pdl_wait();
            auto xcopy = [&](u32 dst, int k0, u32 bar) {
                if (!xt) { bulk(dst, (const unsigned char*)Xp + (size_t)k0 * 128, XB, bar); return; }
                for (int b = 0; b < KC / 64; b++)
                    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
                                 ::"r"(dst + b * 8192), "l"((unsigned long long)&tmx), "r"(k0 + 64 * b), "r"(0), "r"(bar) : "memory");
            };
            for (int st = 0; st < pre && !nox; st++) xcopy(ring + st * SLOT + NC * WB, kbeg + st * KC, full + 8 * st);
            for (int st = pre; st < nstage; st++) {
                const int sl = st % NST;
                bar_wait(empty + 8 * sl, (u32)((st / NST) - 1) & 1u);
                const u32 slot = ring + sl * SLOT;
                bar_expect(full + 8 * sl, FB);
                for (int c = 0; c < NC; c++) bulk(slot + c * WB, wsrc(c, st), WB, full + 8 * sl);
                if (!nox) xcopy(slot + NC * WB, kbeg + st * KC, full + 8 * sl);
            }
        }
    } else {
        const int wg = warp >> 2, wq = warp & 3;
#pragma unroll
        for (int i = 0; i < 32; i++) d[i] = 0.f;
#pragma unroll 1
        for (int st = 0; st < nstage; st++) {
            const int sl = st % NST;
            bar_wait(full + 8 * sl, (u32)(st / NST) & 1u);
            const u32 slot = ring + sl * SLOT, wa = slot + wg * WB, xb = slot + NC * WB;
            if (WF == 0) {
                wg_fence();
#pragma unroll
                for (int j = 0; j < KC / 16; j++)
                    mma_ss(d, sdesc(wa + j * 2048, 1024, 128),
                           xt ? sdesc_sw128(xb + (j >> 2) * 8192 + (j & 3) * 32) : sdesc(xb + j * 2048, 1024, 128));
                wg_commit();
                wg_wait<1>();  // the previous stage's MMAs are done: release its slot
                if (st > 0 && (tid & 127) == 0) bar_arrive(empty + 8 * ((st - 1) % NST));
            } else {
                // RS: the converted A registers may only be written once the MMAs reading the previous ones are
                // done, so the raw codes are loaded first, then wait_group 0, then convert + MMA.
                uint4 v[KC / 32];
#pragma unroll
                for (int j = 0; j < KC / 32; j++) {
                    const u32 ad = wa + (u32)((j >> 2) * 8192 + (wq * 4 + (j & 3)) * 512 + lane * 16);
                    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v[j].x), "=r"(v[j].y), "=r"(v[j].z), "=r"(v[j].w) : "r"(ad));
                }
                wg_wait<0>();
                if (st > 0 && (tid & 127) == 0) bar_arrive(empty + 8 * ((st - 1) % NST));
                u32 a[KC / 32][8];
#pragma unroll
                for (int j = 0; j < KC / 32; j++) {
                    e4m3x4(v[j].x, a[j][0], a[j][1]); e4m3x4(v[j].y, a[j][2], a[j][3]);
                    e4m3x4(v[j].z, a[j][4], a[j][5]); e4m3x4(v[j].w, a[j][6], a[j][7]);
                }
                wg_fence();
#pragma unroll
                for (int j = 0; j < KC / 32; j++) {
                    mma_rs(d, a[j][0], a[j][1], a[j][2], a[j][3], sdesc(xb + (2 * j) * 2048, 1024, 128));
                    mma_rs(d, a[j][4], a[j][5], a[j][6], a[j][7], sdesc(xb + (2 * j + 1) * 2048, 1024, 128));
                }
                wg_commit();
            }
        }
        wg_wait<0>();
    }
    pdl_trigger();
    __syncthreads();  // every stage consumed: the ring is free for the partial tiles
    // accumulator i of warp wq in warpgroup wg: output row 64·wg + 16·wq + g (+8 for i & 2), batch row 8·(i/4) + 2·t4 (+1 for i & 1)
    const int g = lane >> 2, t4 = lane & 3;
    constexpr int TO = NC * 64, RS = TO + 4;
    if (S == 1) {
        if (warp < NC * 4) {
            const int wg = warp >> 2, wq = warp & 3;
#pragma unroll
            for (int i = 0; i < 32; i++) {
                const int o = tile0 * 64 + 64 * wg + 16 * wq + g + ((i & 2) ? 8 : 0), b = 8 * (i >> 2) + 2 * t4 + (i & 1);
                float v = d[i];
                if (WF == 1) v *= wscale[o];
                Y[(size_t)b * N + o] = __float2half(v);
            }
        }
        return;
    }
    float* red = (float*)(sm + 1024);  // past the mbarriers
    if (warp < NC * 4) {
        const int wg = warp >> 2, wq = warp & 3;
#pragma unroll
        for (int i = 0; i < 32; i++) {
            const int o = 64 * wg + 16 * wq + g + ((i & 2) ? 8 : 0), b = 8 * (i >> 2) + 2 * t4 + (i & 1);
            red[b * RS + o] = d[i];
        }
    }
    cl_sync();
    const int rank = (int)cl_rank();
    const int items = 64 * TO / 2, per = (items + S - 1) / S, i1 = min(items, (rank + 1) * per);
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
        const int og = tile0 * 64 + o;
        if (WF == 1) { y0 *= wscale[og]; y1 *= wscale[og + 1]; }
        *(__half2*)(Y + (size_t)b * N + og) = __floats2half2_rn(y0, y1);
    }
    cl_sync();
}

#ifdef ENGINE
#include "engine_stub.cuh"
#include "/tmp/eng_tcg4.cuh"
#endif
struct Cfg { int wf, nc, kc, nst, s; };
static bool g_xt = false;
static CUtensorMap g_tmx;
template <int WF, int NC, int KC, int NST>
void launch_t(const unsigned char* W, const __half* Xp, const float* sc, __half* Y, int N, int K, int S, bool pdl, cudaStream_t st) {
    constexpr u32 WB = WF == 0 ? KC * 128 : KC * 64, XB = KC * 128, SLOT = NC * WB + XB;
    const size_t smem = 2048 + std::max((size_t)NST * SLOT, (size_t)64 * (NC * 64 + 4) * 4);
    static bool init = false;
    if (!init) {
        CK(cudaFuncSetAttribute(wsg<WF, NC, KC, NST>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        CK(cudaFuncSetAttribute(wsg<WF, NC, KC, NST>, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
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
    const int flags = (getenv("NOX") ? 1 : 0) | (g_xt ? 2 : 0);
    CK(cudaLaunchKernelEx(&cfg, wsg<WF, NC, KC, NST>, W, Xp, sc, Y, N, K, K / S, flags, g_tmx));
}
static size_t smem_of(const Cfg& c) {
    const size_t WB = c.wf == 0 ? c.kc * 128 : c.kc * 64, SLOT = c.nc * WB + c.kc * 128;
    return 2048 + std::max((size_t)c.nst * SLOT, (size_t)64 * (c.nc * 64 + 4) * 4);
}
static bool launch(const Cfg& c, const unsigned char* W, const __half* Xp, const float* sc, __half* Y, int N, int K, bool pdl, cudaStream_t st) {
#define L(WF, NC, KC, NST) if (c.wf == WF && c.nc == NC && c.kc == KC && c.nst == NST) { launch_t<WF, NC, KC, NST>(W, Xp, sc, Y, N, K, c.s, pdl, st); return true; }
    L(0, 1, 128, 4) L(0, 1, 128, 6) L(0, 2, 128, 4) L(0, 1, 64, 8) L(0, 2, 64, 6)
    L(1, 1, 128, 4) L(1, 1, 128, 8) L(1, 2, 128, 3) L(1, 2, 128, 6) L(1, 4, 128, 4) L(1, 2, 256, 3) L(1, 1, 256, 4)
#undef L
    return false;
}

struct Shape { const char* name; int N, K; };

int main(int argc, char** argv) {
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
    __half *Y0, *Y1; CK(cudaMalloc(&Y0, (size_t)M * 11264 * 2)); CK(cudaMalloc(&Y1, (size_t)M * 11264 * 2));
    // per shape: f16 W (cuBLAS), f16 W packed, fp8 codes packed + scales, the dequantized f16 copy (fp8 reference)
    std::vector<__half*> Wf[4], Wdq[4]; std::vector<unsigned char*> Wp16[4], Wp8[4]; std::vector<float*> Sc[4];
    for (int si = 0; si < 4; si++) {
        const int N = shapes[si].N, K = shapes[si].K;
        const size_t n = (size_t)N * K;
        std::vector<__half> hw(n), hdq(n), hp16(n);
        std::vector<unsigned char> code(n), hp8(n);
        std::vector<float> sc(N);
        for (size_t i = 0; i < n; i++) hw[i] = __float2half(((rand() & 1023) / 1023.f - 0.5f) * 0.05f * (1.f + (i / K % 7)));
        for (int r = 0; r < N; r++) {
            float am = 0.f;
            for (int k = 0; k < K; k++) am = fmaxf(am, fabsf(__half2float(hw[(size_t)r * K + k])));
            sc[r] = am / 448.f;
            for (int k = 0; k < K; k++) {
                __nv_fp8_e4m3 q(__half2float(hw[(size_t)r * K + k]) / sc[r]);
                code[(size_t)r * K + k] = *(unsigned char*)&q;
                hdq[(size_t)r * K + k] = __float2half(float(q) * sc[r]);
            }
        }
        for (int t = 0; t < N / 64; t++)
            for (int kg = 0; kg < K / 8; kg++)
                for (int r = 0; r < 64; r++)
                    for (int e = 0; e < 8; e++) hp16[(((size_t)t * (K / 8) + kg) * 64 + r) * 8 + e] = hw[(size_t)(t * 64 + r) * K + kg * 8 + e];
        for (int t = 0; t < N / 64; t++)
            for (int c = 0; c < K / 128; c++)
                for (int w = 0; w < 4; w++)
                    for (int j = 0; j < 4; j++)
                        for (int l = 0; l < 32; l++)
                            for (int b = 0; b < 16; b++) {
                                const int step = 2 * j + b / 8, bb = b % 8, g = l / 4, t4 = l % 4;
                                const int row = t * 64 + 16 * w + g + ((bb & 2) ? 8 : 0);
                                const int k = c * 128 + step * 16 + ((bb & 4) ? 8 : 0) + 2 * t4 + (bb & 1);
                                hp8[((size_t)t * (K / 128) + c) * 8192 + (w * 4 + j) * 512 + l * 16 + b] = code[(size_t)row * K + k];
                            }
        for (int l = 0; l < L; l++) {
            __half *a, *b; unsigned char *p, *q; float* s;
            CK(cudaMalloc(&a, n * 2)); CK(cudaMemcpy(a, hw.data(), n * 2, cudaMemcpyHostToDevice)); Wf[si].push_back(a);
            CK(cudaMalloc(&p, n * 2)); CK(cudaMemcpy(p, hp16.data(), n * 2, cudaMemcpyHostToDevice)); Wp16[si].push_back(p);
            CK(cudaMalloc(&q, n)); CK(cudaMemcpy(q, hp8.data(), n, cudaMemcpyHostToDevice)); Wp8[si].push_back(q);
            CK(cudaMalloc(&s, N * 4)); CK(cudaMemcpy(s, sc.data(), N * 4, cudaMemcpyHostToDevice)); Sc[si].push_back(s);
            if (l == 0) { CK(cudaMalloc(&b, n * 2)); CK(cudaMemcpy(b, hdq.data(), n * 2, cudaMemcpyHostToDevice)); Wdq[si].push_back(b); }
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
    auto cublas = [&](const __half* Wm, int si, __half* Y) {
        const Shape& s = shapes[si];
        cublasGemmEx(hb, CUBLAS_OP_T, CUBLAS_OP_N, s.N, M, s.K, &alpha, Wm, CUDA_R_16F, s.K, X, CUDA_R_16F, s.K, &beta, Y, CUDA_R_16F, s.N,
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    };
    std::vector<Cfg> cfgs;
    for (int S : {1, 2, 4, 8}) {
        for (Cfg c : std::vector<Cfg>{{0, 1, 128, 4}, {0, 1, 128, 6}, {0, 2, 128, 4}, {0, 1, 64, 8}, {0, 2, 64, 6}, {1, 1, 128, 4},
                                      {1, 1, 128, 8}, {1, 2, 128, 3}, {1, 2, 128, 6}, {1, 4, 128, 4}, {1, 2, 256, 3}, {1, 1, 256, 4}}) {
            c.s = S; cfgs.push_back(c);
        }
    }
    const char* only = getenv("ONLY");
    const double bw = 4.26e12;
    double cub_sum = 0, best_sum[2] = {0, 0};
    std::string bestname[2][4];
    for (int si = 0; si < 4; si++) {
        const Shape& s = shapes[si];
        const int N = s.N, K = s.K;
        {   // x packed for this K
            std::vector<__half> xp((size_t)M * K), xr((size_t)M * K);
            for (int r = 0; r < M; r++) for (int k = 0; k < K; k++) xr[(size_t)r * K + k] = hx[(size_t)r * maxk + k];
            for (int kg = 0; kg < K / 8; kg++) for (int r = 0; r < M; r++) for (int e = 0; e < 8; e++) xp[((size_t)kg * 64 + r) * 8 + e] = xr[(size_t)r * K + kg * 8 + e];
            CK(cudaMemcpy(X, xr.data(), xr.size() * 2, cudaMemcpyHostToDevice));
            CK(cudaMemcpy(Xp, xp.data(), xp.size() * 2, cudaMemcpyHostToDevice));
            cuuint64_t dims[2] = {(cuuint64_t)K, (cuuint64_t)M}, strides[1] = {(cuuint64_t)K * 2};
            cuuint32_t box[2] = {64, 64}, es[2] = {1, 1};
            CUresult r = cuTensorMapEncodeTiled(&g_tmx, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, (void*)X, dims, strides, box, es,
                                                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                                CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
            if (r != CUDA_SUCCESS) { printf("cuTensorMapEncodeTiled: %d\n", (int)r); exit(1); }
        }
        const double b16 = (double)N * K * 2;
        const bool prof = getenv("PROFILE") != nullptr;
        if (prof) cublas(Wf[si][0], si, Y0);
        float tc = prof ? 1.f : time_graph([&] { for (int l = 0; l < L; l++) cublas(Wf[si][l], si, Y0); }) / L;
        cub_sum += tc;
        printf("%-7s M=%d N=%d K=%d: cublasGemmEx f16 %.2f us (%.0f GB/s; bandwidth time f16 %.2f / fp8 %.2f us)\n", s.name, M, N, K, tc, b16 / tc * 1e-3,
               b16 / bw * 1e6, b16 / 2 / bw * 1e6);
        std::vector<__half> ref16((size_t)M * N), ref8((size_t)M * N), got((size_t)M * N);
        cublas(Wf[si][0], si, Y0); CK(cudaStreamSynchronize(st)); CK(cudaMemcpy(ref16.data(), Y0, ref16.size() * 2, cudaMemcpyDeviceToHost));
        cublas(Wdq[si][0], si, Y0); CK(cudaStreamSynchronize(st)); CK(cudaMemcpy(ref8.data(), Y0, ref8.size() * 2, cudaMemcpyDeviceToHost));
        float best[2] = {1e9f, 1e9f};
#ifdef ENGINE
        {   // the engine's tcg4 v3 body (src/backend/cuda/kernels_tcg4.cu, stubs in engine_stub.cuh) in this harness
            float* Yf; CK(cudaMalloc(&Yf, (size_t)M * N * 4));
            auto kern = si == 3 ? eng_resid_5632 : (si == 1 ? eng_resid_2048 : eng_plain_2048);
            for (int S : {1, 2, 4, 8}) for (int nst : {8, 14}) {
                const int ks = ((K / S + 63) / 64) * 64;
                if ((K + ks - 1) / ks != S) continue;
                const size_t smem = 2048 + std::max((size_t)nst * 16384, (size_t)64 * 68 * 4);
                if (smem > 227 * 1024) continue;
                CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
                CK(cudaFuncSetAttribute(kern, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
                auto go = [&](int l, bool pdl) {
                    GemvArgs a{X, Wp16[si][l], Yf, nullptr, M, N};
                    int ksv = ks, nstv = nst, dm = 0;
                    cudaLaunchConfig_t cfg = {};
                    cfg.gridDim = dim3(S, N / 64, 1); cfg.blockDim = dim3(160, 1, 1); cfg.dynamicSmemBytes = smem; cfg.stream = st;
                    cudaLaunchAttribute at[2]; int na = 0;
                    if (S > 1) { at[na].id = cudaLaunchAttributeClusterDimension; at[na].val.clusterDim.x = S; at[na].val.clusterDim.y = 1; at[na].val.clusterDim.z = 1; na++; }
                    if (pdl) { at[na].id = cudaLaunchAttributeProgrammaticStreamSerialization; at[na].val.programmaticStreamSerializationAllowed = 1; na++; }
                    cfg.attrs = at; cfg.numAttrs = na;
                    G4Tmap tm; memcpy(&tm, &g_tmx, sizeof tm);
                    CK(cudaLaunchKernelEx(&cfg, kern, a, ksv, nstv, dm, tm));
                };
                CK(cudaMemset(Yf, 0, (size_t)M * N * 4));
                go(0, false); CK(cudaStreamSynchronize(st));
                std::vector<float> yf((size_t)M * N); CK(cudaMemcpy(yf.data(), Yf, yf.size() * 4, cudaMemcpyDeviceToHost));
                double md = 0, mr = 0;
                for (size_t i = 0; i < yf.size(); i++) { md = fmax(md, fabs(__half2float(ref16[i]) - yf[i])); mr = fmax(mr, fabs(__half2float(ref16[i]))); }
                float t0 = time_graph([&] { for (int l = 0; l < L; l++) go(l, false); }) / L;
                float t1 = time_graph([&] { for (int l = 0; l < L; l++) go(l, true); }) / L;
                printf("  engine tcg4 v3 S%d nst%-2d       grid %3d: %6.2f us, PDL %6.2f us (%4.0f GB/s) err %.1e %s\n", S, nst, S * N / 64, t0, t1,
                       b16 / t1 * 1e-3, md / mr, md / mr < 1e-2 ? "" : "WRONG");
            }
            cudaFree(Yf);
        }
#endif
        for (int v = 0; v < 2 * (int)cfgs.size(); v++) {
            const Cfg& c = cfgs[v / 2];
            g_xt = v % 2 == 1;
            if (g_xt && (c.wf != 0 || !getenv("XT"))) continue;
            const int TO = c.nc * 64;
            if (N % TO || K % c.s || (K / c.s) % c.kc || c.s > 8) continue;
            if (smem_of(c) > 227 * 1024) continue;
            char nm[96];
            snprintf(nm, sizeof nm, "%s nc%d kc%d nst%d S%d%s", c.wf ? "fp8" : "f16", c.nc, c.kc, c.nst, c.s, g_xt ? " tma" : "");
            if (only) {  // '|'-separated substrings
                bool any = false;
                std::string o(only);
                for (size_t a = 0; a <= o.size();) {
                    size_t b = o.find('|', a);
                    if (b == std::string::npos) b = o.size();
                    if (b > a && strstr(nm, o.substr(a, b - a).c_str())) any = true;
                    a = b + 1;
                }
                if (!any) continue;
            }
            unsigned char* Wm = c.wf ? Wp8[si][0] : Wp16[si][0];
            if (getenv("PROFILE")) { launch(c, Wm, Xp, Sc[si][0], Y1, N, K, false, st); CK(cudaStreamSynchronize(st)); continue; }
            CK(cudaMemset(Y1, 0, (size_t)M * N * 2));
            launch(c, Wm, Xp, Sc[si][0], Y1, N, K, false, st);
            CK(cudaStreamSynchronize(st));
            CK(cudaMemcpy(got.data(), Y1, got.size() * 2, cudaMemcpyDeviceToHost));
            const std::vector<__half>& ref = c.wf ? ref8 : ref16;
            double md = 0, mr = 0;
            for (size_t i = 0; i < got.size(); i++) { md = fmax(md, fabs(__half2float(ref[i]) - __half2float(got[i]))); mr = fmax(mr, fabs(__half2float(ref[i]))); }
            float t0 = time_graph([&] { for (int l = 0; l < L; l++) launch(c, c.wf ? Wp8[si][l] : Wp16[si][l], Xp, Sc[si][l], Y1, N, K, false, st); }) / L;
            float t1 = time_graph([&] { for (int l = 0; l < L; l++) launch(c, c.wf ? Wp8[si][l] : Wp16[si][l], Xp, Sc[si][l], Y1, N, K, true, st); }) / L;
            const double bytes = c.wf ? b16 / 2 : b16;
            const bool ok = md / mr < 1e-2;
            printf("  %-26s grid %3d: %6.2f us, PDL %6.2f us (%4.0f GB/s) err %.1e %s\n", nm, (N / TO) * c.s, t0, t1, bytes / t1 * 1e-3, md / mr, ok ? "" : "WRONG");
            if (ok && t1 < best[c.wf]) { best[c.wf] = t1; bestname[c.wf][si] = nm; }
        }
        for (int w = 0; w < 2; w++) best_sum[w] += best[w];
        printf("  best: f16 %.2f (%s), fp8 %.2f (%s)\n", best[0], bestname[0][si].c_str(), best[1], bestname[1][si].c_str());
    }
    printf("layer (4 GEMMs): cublasGemmEx f16 %.2f us; ours f16 %.2f us, fp8 (W8A16) %.2f us\n", cub_sum, best_sum[0], best_sum[1]);
    return 0;
}
