// Session 28 prototype (not part of the engine): a W8A8 FP8 decode GEMM for 9..64 rows on Hopper,
//   y[t, n] = xs[t] · ws[n] · Σ_k dec(xq[t, k]) · dec(wq[n, k])   (+ y[t, n] when acc), f32 out,
// the engine's TRTFORGE_FP8_GEMM interface (rmsnorm_q8 / swiglu_q8 / quant_e4m3_rows give xq + xs, the stored
// E4M3 codes wq (N, K) row-major + per-output-row scales ws; o / down accumulate into the residual).
//
// What the earlier 64-row GEMMs lacked (sessions 15-16: f16 SS and fp8 W8A16 RS, 29.4 us a layer; cuBLASLt's
// fp8 29.4 us a layer, session 19): both operands in E4M3 straight from shared memory (wgmma ...k32.e4m3.e4m3,
// QGMMA, no conversion in the consumer), and the weights by TMA boxes straight from the row-major codes (no
// repack): box {128 bytes of k, TR rows} with the 128-byte swizzle, which is wgmma's K-major SW128 layout
// (8-row atoms of 1024 bytes, a k32 step = +32 bytes). x the same way, box {128, NT}, rows >= T zero-filled.
//  - one producer warp (lane 0 issues), one consumer warpgroup running TR/64 wgmmas m64nNTk32 per k32 step;
//  - an NST-slot ring, full (count 1 + tx bytes) / empty (count 1) mbarriers, the first NST weight boxes issued
//    before griddepcontrol.wait (PDL), their x boxes after it;
//  - grid (S, tiles), clusters of (S, 1, 1): block s takes k stages [s·per, min((s+1)·per, K/128)); the S
//    partial tiles are summed through DSMEM (deterministic), the scales and the residual in that epilogue.
// nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 f8g.cu -lcublas -lcuda -o f8g
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
struct __align__(64) Tmap { u64 v[16]; };

__device__ __forceinline__ u64 desc_sw128(u32 addr) {
    return (u64)((addr & 0x3FFFFu) >> 4) | (1ull << 16) | ((u64)(1024u >> 4) << 32) | (1ull << 62);
}
__device__ __forceinline__ void bar_init(u32 bar, u32 n) { asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(n) : "memory"); }
__device__ __forceinline__ void bar_expect(u32 bar, u32 bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void bar_arrive(u32 bar) { asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory"); }
__device__ __forceinline__ void bar_wait(u32 bar, u32 parity) {
    u32 ok;
    do {
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                     : "=r"(ok) : "r"(bar), "r"(parity) : "memory");
    } while (!ok);
}
__device__ __forceinline__ void tma2(u32 dst, const Tmap* tm, int c0, int c1, u32 bar) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
                 ::"r"(dst), "l"((u64)tm), "r"(c0), "r"(c1), "r"(bar) : "memory");
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

template <int NT> __device__ __forceinline__ void mma8(float* d, u64 da, u64 db);
template <> __device__ __forceinline__ void mma8<64>(float* d, u64 da, u64 db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 "
                 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, "
                 "%32, %33, 1, 1, 1;"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]),
                   "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]),
                   "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
                   "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "l"(da), "l"(db) : "memory");
}
template <> __device__ __forceinline__ void mma8<32>(float* d, u64 da, u64 db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n32k32.f32.e4m3.e4m3 "
                 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, %16, %17, 1, 1, 1;"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]),
                   "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
                 : "l"(da), "l"(db) : "memory");
}
template <> __device__ __forceinline__ void mma8<16>(float* d, u64 da, u64 db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n16k32.f32.e4m3.e4m3 {%0,%1,%2,%3,%4,%5,%6,%7}, %8, %9, 1, 1, 1;"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
                 : "l"(da), "l"(db) : "memory");
}

constexpr int KC = 128;  // k per stage (bytes of E4M3 = one 128-byte swizzle row)
// TR output rows per block (64 / 128 / 192 / 256: TR/64 wgmmas per k32 step), NT batch columns (16 / 32 / 64), NST ring slots.
template <int TR, int NT, int NST>
__global__ void __launch_bounds__(160, 1)
    f8g(const __grid_constant__ Tmap tmw, const __grid_constant__ Tmap tmx, const float* __restrict__ ws, const float* __restrict__ xs,
        float* __restrict__ y, int T, int N, int K, int per, int acc) {
    extern __shared__ __align__(1024) unsigned char sm_raw[];
    constexpr u32 WB = TR * KC, XB = NT * KC, SLOT = WB + XB;
    constexpr int H = TR / 64;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int S = gridDim.x, s = blockIdx.x, tile = blockIdx.y;
    const int kst = K / KC, st0 = s * per, nstage = max(0, min(per, kst - st0));
    const u32 raw = (u32)__cvta_generic_to_shared(sm_raw), base = (raw + 1023u) & ~1023u;
    unsigned char* sm = sm_raw + (base - raw);
    const u32 full = base, empty = base + 256, ring = base + 1024;
    if (tid == 0) {
        for (int i = 0; i < NST; i++) { bar_init(full + 8 * i, 1); bar_init(empty + 8 * i, 1); }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    float d[H][NT / 2];
#pragma unroll
    for (int h = 0; h < H; h++)
#pragma unroll
        for (int i = 0; i < NT / 2; i++) d[h][i] = 0.f;
    if (warp == 4) {
        if (lane == 0) {
            asm volatile("prefetch.tensormap [%0];" ::"l"((u64)&tmw) : "memory");
            asm volatile("prefetch.tensormap [%0];" ::"l"((u64)&tmx) : "memory");
            const int pre = min(NST, nstage);
            for (int st = 0; st < pre; st++) {
                bar_expect(full + 8 * st, SLOT);
                tma2(ring + st * SLOT, &tmw, (st0 + st) * KC, tile * TR, full + 8 * st);
            }
            pdl_wait();
            for (int st = 0; st < pre; st++) tma2(ring + st * SLOT + WB, &tmx, (st0 + st) * KC, 0, full + 8 * st);
            int sl = 0;
            u32 ph = 0;
            for (int st = pre; st < nstage; st++) {
                bar_wait(empty + 8 * sl, ph);
                bar_expect(full + 8 * sl, SLOT);
                tma2(ring + sl * SLOT, &tmw, (st0 + st) * KC, tile * TR, full + 8 * sl);
                tma2(ring + sl * SLOT + WB, &tmx, (st0 + st) * KC, 0, full + 8 * sl);
                if (++sl == NST) sl = 0, ph ^= 1u;
            }
        }
    } else {
        int sl = 0, psl = 0;
        u32 ph = 0;
#pragma unroll 1
        for (int st = 0; st < nstage; st++) {
            bar_wait(full + 8 * sl, ph);
            const u32 wa = ring + sl * SLOT, xb = wa + WB;
            wg_fence();
#pragma unroll
            for (int j = 0; j < KC / 32; j++)
#pragma unroll
                for (int h = 0; h < H; h++) mma8<NT>(d[h], desc_sw128(wa + h * 8192u + j * 32u), desc_sw128(xb + j * 32u));
            wg_commit();
            wg_wait<1>();
            if (st > 0 && tid == 0) bar_arrive(empty + 8 * psl);
            psl = sl;
            if (++sl == NST) sl = 0, ph ^= 1u;
        }
        wg_wait<0>();
    }
    pdl_trigger();
    pdl_wait();       // every thread: the scales / the residual below come from earlier kernels
    __syncthreads();  // all wgmmas and copies done: the ring holds the partial tile now
    constexpr int RS = TR + 4;
    float* red = (float*)(sm + 1024);
    if (warp < 4) {
        const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
        for (int h = 0; h < H; h++)
#pragma unroll
            for (int i = 0; i < NT / 2; i++) {
                const int t = 8 * (i >> 2) + 2 * t4 + (i & 1), r = 64 * h + 16 * warp + g + ((i & 2) ? 8 : 0);
                red[t * RS + r] = d[h][i];
            }
    }
    if (S > 1) cl_sync(); else __syncthreads();
    const int rank = S > 1 ? (int)cl_rank() : 0;
    const int items = T * (TR / 2), chunk = (items + S - 1) / S, i1 = min(items, (rank + 1) * chunk);
    const u32 rb = (u32)__cvta_generic_to_shared(red);
    for (int i = rank * chunk + tid; i < i1; i += blockDim.x) {
        const int t = i / (TR / 2), r = 2 * (i - t * (TR / 2)), n = tile * TR + r;
        float y0 = 0.f, y1 = 0.f;
        for (int q = 0; q < S; q++) {
            float2 v;
            if (S > 1) {
                u32 ra;
                asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(rb + (u32)(t * RS + r) * 4u), "r"(q));
                asm volatile("ld.shared::cluster.v2.f32 {%0,%1}, [%2];" : "=f"(v.x), "=f"(v.y) : "r"(ra));
            } else {
                v = *(const float2*)(red + t * RS + r);
            }
            y0 += v.x, y1 += v.y;
        }
        if (n >= N) continue;
        const float sx = xs[t];
        float2 o = make_float2(y0 * sx * ws[n], y1 * sx * ws[n + 1]);
        float2* dst = (float2*)(y + (size_t)t * N + n);
        if (acc) { const float2 old = *dst; o.x += old.x, o.y += old.y; }
        *dst = o;
    }
    if (S > 1) cl_sync();
}

// The engine's kernels (src/backend/cuda/kernels_f8g.cu, compiled here verbatim).
#define F8G 1
#include "../../../../src/backend/cuda/kernels_f8g.cu"
typedef void (*EngK)(const F8Tmap, const F8Tmap, const float*, const float*, float*, int, int, int, int, int);
struct EngCfg { const char* name; EngK k; int nt, nst, s; };
static void eng_launch(const EngCfg& c, const Tmap& tw, const Tmap& tx, const float* ws, const float* xs, float* y, int T, int N, int K, int acc,
                       bool pdl, cudaStream_t st) {
    const size_t smem = 2048 + (size_t)c.nt * 256 + (size_t)c.nst * (64 + c.nt) * 128;
    static std::vector<EngK> done;  // attributes once per kernel, outside graph capture (its first launch)
    if (std::find(done.begin(), done.end(), c.k) == done.end()) {
        CK(cudaFuncSetAttribute(c.k, cudaFuncAttributeMaxDynamicSharedMemorySize, 2048 + 64 * 256 + 8 * 128 * 128));
        CK(cudaFuncSetAttribute(c.k, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
        done.push_back(c.k);
    }
    const int kst = K / 128, per = (kst + c.s - 1) / c.s;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(c.s, (N + 63) / 64, 1);
    cfg.blockDim = dim3(160, 1, 1);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    cudaLaunchAttribute at[2];
    int na = 0;
    if (c.s > 1) {
        at[na].id = cudaLaunchAttributeClusterDimension;
        at[na].val.clusterDim.x = c.s; at[na].val.clusterDim.y = 1; at[na].val.clusterDim.z = 1; na++;
    }
    if (pdl) { at[na].id = cudaLaunchAttributeProgrammaticStreamSerialization; at[na].val.programmaticStreamSerializationAllowed = 1; na++; }
    cfg.attrs = at; cfg.numAttrs = na;
    F8Tmap a, b;
    memcpy(&a, &tw, sizeof a); memcpy(&b, &tx, sizeof b);
    CK(cudaLaunchKernelEx(&cfg, c.k, a, b, ws, xs, y, T, N, K, per, acc));
}

// Reference: one thread per output, f32 sums of the decoded codes (independent of the wgmma path).
__global__ void ref_kernel(const unsigned char* wq, const unsigned char* xq, const float* ws, const float* xs, float* y, int T, int N, int K) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * N) return;
    const int t = i / N, n = i % N;
    float sum = 0.f;
    for (int k = 0; k < K; k++) {
        __nv_fp8_e4m3 a, b;
        a.__x = wq[(size_t)n * K + k];
        b.__x = xq[(size_t)t * K + k];
        sum += float(a) * float(b);
    }
    y[i] = sum * ws[n] * xs[t];
}

struct Cfg { int tr, nt, nst, s; };
static size_t smem_of(const Cfg& c) {
    const size_t slot = (size_t)(c.tr + c.nt) * KC;
    return 2048 + std::max((size_t)c.nst * slot, (size_t)c.nt * (c.tr + 4) * 4);
}
static Tmap make_map(const void* p, int rows, int K, int box_rows) {
    CUtensorMap m;
    cuuint64_t dims[2] = {(cuuint64_t)K, (cuuint64_t)rows}, strides[1] = {(cuuint64_t)K};
    cuuint32_t box[2] = {(cuuint32_t)KC, (cuuint32_t)box_rows}, es[2] = {1, 1};
    CUresult r = cuTensorMapEncodeTiled(&m, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, (void*)p, dims, strides, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                        CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) { printf("cuTensorMapEncodeTiled: %d\n", (int)r); exit(1); }
    Tmap t;
    memcpy(&t, &m, sizeof t);
    return t;
}
template <int TR, int NT, int NST>
void launch_t(const Tmap& tw, const Tmap& tx, const float* ws, const float* xs, float* y, int T, int N, int K, int S, int acc, bool pdl,
              cudaStream_t st) {
    const size_t smem = smem_of({TR, NT, NST, S});
    static bool init = false;
    if (!init) {
        CK(cudaFuncSetAttribute(f8g<TR, NT, NST>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        CK(cudaFuncSetAttribute(f8g<TR, NT, NST>, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
        init = true;
    }
    const int kst = K / KC, per = (kst + S - 1) / S;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(S, (N + TR - 1) / TR, 1);
    cfg.blockDim = dim3(160, 1, 1);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    cudaLaunchAttribute at[2];
    int na = 0;
    if (S > 1) {
        at[na].id = cudaLaunchAttributeClusterDimension;
        at[na].val.clusterDim.x = S; at[na].val.clusterDim.y = 1; at[na].val.clusterDim.z = 1; na++;
    }
    if (pdl) { at[na].id = cudaLaunchAttributeProgrammaticStreamSerialization; at[na].val.programmaticStreamSerializationAllowed = 1; na++; }
    cfg.attrs = at; cfg.numAttrs = na;
    CK(cudaLaunchKernelEx(&cfg, f8g<TR, NT, NST>, tw, tx, ws, xs, y, T, N, K, per, acc));
}
static bool launch(const Cfg& c, const Tmap& tw, const Tmap& tx, const float* ws, const float* xs, float* y, int T, int N, int K, int acc,
                   bool pdl, cudaStream_t st) {
#define L(TR, NT, NST) if (c.tr == TR && c.nt == NT && c.nst == NST) { launch_t<TR, NT, NST>(tw, tx, ws, xs, y, T, N, K, c.s, acc, pdl, st); return true; }
    L(64, 64, 4) L(64, 64, 8) L(128, 64, 4) L(128, 64, 6) L(128, 64, 8) L(256, 64, 4) L(64, 32, 8) L(128, 32, 6) L(128, 16, 6)
#undef L
    return false;
}

struct Shape { const char* name; int N, K, acc; };

int main() {
    const int L = 22, REP = 20;
    const int T = getenv("ROWS") ? atoi(getenv("ROWS")) : 64;
    Shape shapes[4] = {{"qkv", 2560, 2048, 0}, {"o", 2048, 2048, 1}, {"gateup", 11264, 2048, 0}, {"down", 2048, 5632, 1}};
    cublasHandle_t hb; cublasCreate(&hb);
    cudaStream_t st; CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    cublasSetStream(hb, st);
    cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
    const int maxk = 5632, maxn = 11264;
    srand(1);
    // activations: E4M3 codes of N(0,1)-ish values with per-row scales; f16 copy of the decoded values for cuBLAS
    std::vector<unsigned char> hxq((size_t)T * maxk);
    std::vector<__half> hx16((size_t)T * maxk);
    std::vector<float> hxs(T);
    for (int t = 0; t < T; t++) {
        hxs[t] = 0.01f * (1 + t % 5);
        for (int k = 0; k < maxk; k++) {
            const float v = ((rand() & 4095) / 4095.f - 0.5f) * 600.f;
            __nv_fp8_e4m3 q(v);
            hxq[(size_t)t * maxk + k] = q.__x;
            hx16[(size_t)t * maxk + k] = __float2half(float(q) * hxs[t]);
        }
    }
    unsigned char* Xq[4]; __half* X16; float *Xs, *Y0, *Y1, *Yr;
    CK(cudaMalloc(&X16, (size_t)T * maxk * 2)); CK(cudaMalloc(&Xs, T * 4));
    CK(cudaMemcpy(Xs, hxs.data(), T * 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&Y0, (size_t)T * maxn * 4)); CK(cudaMalloc(&Y1, (size_t)T * maxn * 4)); CK(cudaMalloc(&Yr, (size_t)T * maxn * 4));
    __half* Yh; CK(cudaMalloc(&Yh, (size_t)T * maxn * 2));
    std::vector<unsigned char*> Wq[4]; std::vector<float*> Ws[4]; std::vector<__half*> W16[4];
    Tmap tw[4][22], tx[4];
    for (int si = 0; si < 4; si++) {
        const int N = shapes[si].N, K = shapes[si].K;
        const size_t n = (size_t)N * K;
        std::vector<unsigned char> hq(n);
        std::vector<float> hs(N);
        std::vector<__half> hw(n);
        for (int r = 0; r < N; r++) {
            hs[r] = 1e-4f * (1 + r % 7);
            for (int k = 0; k < K; k++) {
                __nv_fp8_e4m3 q(((rand() & 4095) / 4095.f - 0.5f) * 800.f);
                hq[(size_t)r * K + k] = q.__x;
                hw[(size_t)r * K + k] = __float2half(float(q) * hs[r]);
            }
        }
        // x codes of this K, row-major (T, K)
        std::vector<unsigned char> xk((size_t)T * K);
        for (int t = 0; t < T; t++) memcpy(&xk[(size_t)t * K], &hxq[(size_t)t * maxk], K);
        CK(cudaMalloc(&Xq[si], xk.size())); CK(cudaMemcpy(Xq[si], xk.data(), xk.size(), cudaMemcpyHostToDevice));
        for (int l = 0; l < L; l++) {
            unsigned char* p; float* s; __half* w;
            CK(cudaMalloc(&p, n)); CK(cudaMemcpy(p, hq.data(), n, cudaMemcpyHostToDevice)); Wq[si].push_back(p);
            CK(cudaMalloc(&s, N * 4)); CK(cudaMemcpy(s, hs.data(), N * 4, cudaMemcpyHostToDevice)); Ws[si].push_back(s);
            CK(cudaMalloc(&w, n * 2)); CK(cudaMemcpy(w, hw.data(), n * 2, cudaMemcpyHostToDevice)); W16[si].push_back(w);
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
    const float alpha = 1.f, beta0 = 0.f, beta1 = 1.f;
    auto cublas = [&](int si, int l, bool acc) {
        const Shape& s = shapes[si];
        // f16 x (decoded codes · scale) for this K: X16 holds the maxk-strided rows, lda = maxk
        cublasGemmEx(hb, CUBLAS_OP_T, CUBLAS_OP_N, s.N, T, s.K, &alpha, W16[si][l], CUDA_R_16F, s.K, X16, CUDA_R_16F, maxk,
                     acc ? &beta1 : &beta0, Y0, CUDA_R_32F, s.N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    };
    CK(cudaMemcpy(X16, hx16.data(), hx16.size() * 2, cudaMemcpyHostToDevice));
    std::vector<Cfg> cfgs;
    for (int S : {1, 2, 3, 4, 6, 8})
        for (Cfg c : std::vector<Cfg>{{64, 64, 4}, {64, 64, 8}, {128, 64, 4}, {128, 64, 6}, {128, 64, 8}, {256, 64, 4}, {64, 32, 8},
                                      {128, 32, 6}, {128, 16, 6}}) {
            c.s = S;
            if (c.nt >= T && (c.nt / 2 < T || c.nt == 16)) cfgs.push_back(c);
        }
    const double bw = 4.26e12;
    Cfg best_cfg[4];
    float cub[4], best[4];
    for (int si = 0; si < 4; si++) {
        const Shape& s = shapes[si];
        const int N = s.N, K = s.K;
        for (int l = 0; l < L; l++) tw[si][l] = make_map(Wq[si][l], N, K, 64);  // box rows patched per config below
        const double b8 = (double)N * K;
        cub[si] = time_graph([&] { for (int l = 0; l < L; l++) cublas(si, l, s.acc); }) / L;
        printf("%-7s T=%d N=%d K=%d: cublasGemmEx f16 (f32 out) %.2f us; fp8 bytes %.2f us at %.0f GB/s\n", s.name, T, N, K, cub[si], b8 / bw * 1e6,
               bw * 1e-9);
        // reference
        ref_kernel<<<(T * N + 255) / 256, 256, 0, st>>>(Wq[si][0], Xq[si], Ws[si][0], Xs, Yr, T, N, K);
        CK(cudaStreamSynchronize(st));
        std::vector<float> ref((size_t)T * N), got((size_t)T * N), base((size_t)T * N);
        CK(cudaMemcpy(ref.data(), Yr, ref.size() * 4, cudaMemcpyDeviceToHost));
        {   // cuBLAS on the decoded f16 values agrees with the reference (checks the harness, not the kernel)
            CK(cudaMemset(Y0, 0, (size_t)T * N * 4)); cublas(si, 0, false); CK(cudaStreamSynchronize(st));
            CK(cudaMemcpy(got.data(), Y0, got.size() * 4, cudaMemcpyDeviceToHost));
            double md = 0, mr = 0;
            for (size_t i = 0; i < got.size(); i++) { md = fmax(md, fabs(ref[i] - got[i])); mr = fmax(mr, fabs(ref[i])); }
            printf("  cublas f16 vs reference: max|d| %.2e of max|ref| %.2e (%.1e)\n", md, mr, md / mr);
        }
        for (size_t i = 0; i < base.size(); i++) base[i] = 0.25f * (float)((i * 2654435761u) % 1000) / 1000.f;
        best[si] = 1e9f;
        for (const Cfg& c : cfgs) {
            const int kst = K / KC, per = (kst + c.s - 1) / c.s;
            if ((c.s - 1) * per >= kst) continue;  // an empty split
            if (smem_of(c) > 227 * 1024) continue;
            for (int l = 0; l < L; l++) tw[si][l] = make_map(Wq[si][l], N, K, c.tr);
            tx[si] = make_map(Xq[si], T, K, c.nt);
            // correctness: with acc, y = base + ref
            CK(cudaMemcpy(Y1, base.data(), base.size() * 4, cudaMemcpyHostToDevice));
            launch(c, tw[si][0], tx[si], Ws[si][0], Xs, Y1, T, N, K, s.acc, false, st);
            CK(cudaStreamSynchronize(st));
            CK(cudaMemcpy(got.data(), Y1, got.size() * 4, cudaMemcpyDeviceToHost));
            double md = 0, mr = 0;
            for (size_t i = 0; i < got.size(); i++) {
                const double want = ref[i] + (s.acc ? base[i] : 0.f);
                md = fmax(md, fabs(want - got[i])); mr = fmax(mr, fabs(want));
            }
            const bool ok = md / mr < 5e-3;  // QGMMA accumulates with fewer than f32 bits: a layout error is O(1)
            const float t0 = time_graph([&] { for (int l = 0; l < L; l++) launch(c, tw[si][l], tx[si], Ws[si][l], Xs, Y1, T, N, K, 0, false, st); }) / L;
            const float t1 = time_graph([&] { for (int l = 0; l < L; l++) launch(c, tw[si][l], tx[si], Ws[si][l], Xs, Y1, T, N, K, 0, true, st); }) / L;
            printf("  TR%-3d NT%-2d NST%d S%d grid %3d: %6.2f us, PDL %6.2f us (%4.0f GB/s) err %.1e %s\n", c.tr, c.nt, c.nst, c.s,
                   c.s * ((N + c.tr - 1) / c.tr), t0, t1, b8 / t1 * 1e-3, md / mr, ok ? "" : "WRONG");
            if (ok && t1 < best[si]) { best[si] = t1; best_cfg[si] = c; }
        }
        printf("  best %s: %.2f us (TR%d NT%d NST%d S%d) vs cuBLAS f16 %.2f\n", s.name, best[si], best_cfg[si].tr, best_cfg[si].nt,
               best_cfg[si].nst, best_cfg[si].s, cub[si]);
    }
    // The engine's kernels: every instance for this T × S, correctness (with acc) and graph time.
    EngCfg eb[4];
    float ebest[4];
    {
        std::vector<EngCfg> ek;
        if (T > 32) { ek.push_back({"f8g_64", f8g_64, 64, 3, 0}); ek.push_back({"f8g_64_np", f8g_64_np, 64, 3, 0}); ek.push_back({"f8g_64_s4", f8g_64_s4, 64, 4, 0}); }
        else if (T > 16) ek.push_back({"f8g_32", f8g_32, 32, 6, 0});
        else ek.push_back({"f8g_16", f8g_16, 16, 8, 0});
        for (int si = 0; si < 4; si++) {
            const Shape& s = shapes[si];
            const int N = s.N, K = s.K;
            ref_kernel<<<(T * N + 255) / 256, 256, 0, st>>>(Wq[si][0], Xq[si], Ws[si][0], Xs, Yr, T, N, K);
            CK(cudaStreamSynchronize(st));
            std::vector<float> ref((size_t)T * N), got((size_t)T * N), base((size_t)T * N);
            CK(cudaMemcpy(ref.data(), Yr, ref.size() * 4, cudaMemcpyDeviceToHost));
            for (size_t i = 0; i < base.size(); i++) base[i] = 0.25f * (float)((i * 2654435761u) % 1000) / 1000.f;
            ebest[si] = 1e9f;
            for (EngCfg c : ek)
                for (int S : {1, 2, 4, 8}) {
                    c.s = S;
                    const int kst = K / 128, per = (kst + S - 1) / S;
                    if ((S - 1) * per >= kst || c.nt % S) continue;
                    for (int l = 0; l < L; l++) tw[si][l] = make_map(Wq[si][l], N, K, 64);
                    tx[si] = make_map(Xq[si], T, K, c.nt);
                    CK(cudaMemcpy(Y1, base.data(), base.size() * 4, cudaMemcpyHostToDevice));
                    eng_launch(c, tw[si][0], tx[si], Ws[si][0], Xs, Y1, T, N, K, s.acc, false, st);
                    CK(cudaStreamSynchronize(st));
                    CK(cudaMemcpy(got.data(), Y1, got.size() * 4, cudaMemcpyDeviceToHost));
                    double md = 0, mr = 0;
                    for (size_t i = 0; i < got.size(); i++) {
                        const double want = ref[i] + (s.acc ? base[i] : 0.f);
                        md = fmax(md, fabs(want - got[i])); mr = fmax(mr, fabs(want));
                    }
                    const bool ok = md / mr < 5e-3;
                    const float t1 = time_graph([&] { for (int l = 0; l < L; l++) eng_launch(c, tw[si][l], tx[si], Ws[si][l], Xs, Y1, T, N, K, 0, true, st); }) / L;
                    printf("  engine %-10s %s S%d grid %3d: PDL %6.2f us (%4.0f GB/s) err %.1e %s\n", c.name, s.name, S, S * ((N + 63) / 64), t1,
                           (double)N * K / t1 * 1e-3, md / mr, ok ? "" : "WRONG");
                    if (ok && t1 < ebest[si]) { ebest[si] = t1; eb[si] = c; }
                }
            printf("  engine best %s: %.2f us (%s S%d)\n", s.name, ebest[si], eb[si].name, eb[si].s);
        }
        for (int si = 0; si < 4; si++) {
            for (int l = 0; l < L; l++) tw[si][l] = make_map(Wq[si][l], shapes[si].N, shapes[si].K, 64);
            tx[si] = make_map(Xq[si], T, shapes[si].K, eb[si].nt);
        }
        const float te = time_graph([&] {
            for (int l = 0; l < L; l++)
                for (int si = 0; si < 4; si++)
                    eng_launch(eb[si], tw[si][l], tx[si], Ws[si][l], Xs, Y1, T, shapes[si].N, shapes[si].K, shapes[si].acc, true, st);
        }) / L;
        printf("engine layer chain (22 layers in one graph, PDL): %.2f us (sum of bests %.2f)\n", te, ebest[0] + ebest[1] + ebest[2] + ebest[3]);
    }
    // A layer chain as the engine runs it: 22 × (qkv, o, gate/up, down), PDL, best config each, vs cuBLAS f16.
    for (int si = 0; si < 4; si++) {
        for (int l = 0; l < L; l++) tw[si][l] = make_map(Wq[si][l], shapes[si].N, shapes[si].K, best_cfg[si].tr);
        tx[si] = make_map(Xq[si], T, shapes[si].K, best_cfg[si].nt);
    }
    const float tc = time_graph([&] { for (int l = 0; l < L; l++) for (int si = 0; si < 4; si++) cublas(si, l, shapes[si].acc); }) / L;
    const float tf = time_graph([&] {
        for (int l = 0; l < L; l++)
            for (int si = 0; si < 4; si++)
                launch(best_cfg[si], tw[si][l], tx[si], Ws[si][l], Xs, Y1, T, shapes[si].N, shapes[si].K, shapes[si].acc, true, st);
    }) / L;
    printf("layer chain (4 GEMMs, 22 layers in one graph): cublasGemmEx f16 %.2f us; f8g PDL %.2f us (sum of bests %.2f; cuBLAS sum %.2f)\n", tc,
           tf, best[0] + best[1] + best[2] + best[3], cub[0] + cub[1] + cub[2] + cub[3]);
    return 0;
}
