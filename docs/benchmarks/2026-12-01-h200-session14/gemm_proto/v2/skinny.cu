// Session 14 prototype (not part of the engine): a decode GEMM for 64 rows, Y[64, N] = X[64, K] · W[N, K]^T,
// f16 in, f32 out, timed against cublasGemmEx in CUDA graphs of 22 launches on distinct weights (as 22 layers).
// Block (bx, s) of a (N / TN, S) grid in clusters of (1, S): WARPS warps, 16 outputs each, over k-range s; W by
// 16-byte register loads (tc_core's lane layout: rows g and g + 8, 8 consecutive k per lane), X's k-range staged
// in shared memory by cp.async, mma.m16n8k16 with the rows as the n side (8 chunks of 8), the S partial tiles
// summed through distributed shared memory in rank order (deterministic).
// nvcc -O3 -arch=sm_90a -std=c++17 skinny.cu -lcublas -o skinny
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
#include <cmath>
#include <cuda_fp16.h>
#include <cublas_v2.h>
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("CUDA %s at %d: %s\n", #x, __LINE__, cudaGetErrorString(e_)); exit(1); } } while (0)
typedef unsigned u32;
template <int V> struct IC { static constexpr int value = V; };

__device__ __forceinline__ void mma16816(float* c, u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint4 ldg_nc(const void* p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}
__device__ __forceinline__ void cp16(u32 dst, const void* src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(src));
}
__device__ __forceinline__ u32 cl_rank() { u32 r; asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r)); return r; }
__device__ __forceinline__ void cl_sync() {
    asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}

// R: rows (multiple of 8, <= 64); U: k32 steps loaded per round.
template <int WARPS, int R, int U>
__global__ void __launch_bounds__(WARPS * 32) skinny(const __half* __restrict__ W, const __half* __restrict__ X,
                                                      float* __restrict__ Y, int N, int K, int KS) {
    extern __shared__ __align__(16) unsigned char sm[];
    constexpr int NC = R / 8;
    const int XS = KS + 8;  // halves
    __half* xs = (__half*)sm;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int S = gridDim.y, s = blockIdx.y;
    const int k0 = s * KS;
    const int o0 = blockIdx.x * WARPS * 16 + warp * 16;
    const __half* wa = W + (size_t)(o0 + g) * K + k0 + t4 * 8;
    const __half* wb = wa + (size_t)8 * K;
    const int NSTEP = KS / 32;
    uint4 va[U], vb[U];
#pragma unroll
    for (int i = 0; i < U; i++) {
        const bool in = i < NSTEP;
        va[i] = in ? ldg_nc(wa + i * 32) : make_uint4(0, 0, 0, 0);
        vb[i] = in ? ldg_nc(wb + i * 32) : make_uint4(0, 0, 0, 0);
    }
    {   // X's k-range: R rows × KS halves, 16-byte chunks
        const u32 x0 = (u32)__cvta_generic_to_shared(xs);
        const int cpr = KS / 8;
        for (int i = threadIdx.x; i < R * cpr; i += WARPS * 32) {
            const int r = i / cpr, c = i - r * cpr;
            cp16(x0 + (u32)(r * XS + c * 8) * 2, X + (size_t)r * K + k0 + c * 8);
        }
        asm volatile("cp.async.commit_group;\ncp.async.wait_group 0;" ::: "memory");
    }
    __syncthreads();
    float acc[NC][4];
#pragma unroll
    for (int c = 0; c < NC; c++) acc[c][0] = acc[c][1] = acc[c][2] = acc[c][3] = 0.f;
    for (int b0 = 0; b0 < NSTEP; b0 += U) {
        if (b0 > 0) {
#pragma unroll
            for (int i = 0; i < U; i++) {
                const bool in = b0 + i < NSTEP;
                va[i] = in ? ldg_nc(wa + (b0 + i) * 32) : make_uint4(0, 0, 0, 0);
                vb[i] = in ? ldg_nc(wb + (b0 + i) * 32) : make_uint4(0, 0, 0, 0);
            }
        }
#pragma unroll
        for (int i = 0; i < U; i++) {
            if (b0 + i >= NSTEP) break;
            const int k = (b0 + i) * 32 + t4 * 8;
#pragma unroll
            for (int c = 0; c < NC; c++) {
                const uint4 xv = *(const uint4*)(xs + (c * 8 + g) * XS + k);
                mma16816(acc[c], va[i].x, vb[i].x, va[i].y, vb[i].y, xv.x, xv.y);
                mma16816(acc[c], va[i].z, vb[i].z, va[i].w, vb[i].w, xv.z, xv.w);
            }
        }
    }
    // Partial tile (WARPS·16 outputs × R rows) to shared memory as [row][out], then the cluster sums it.
    __syncthreads();
    float* pt = (float*)sm;
    constexpr int TN = WARPS * 16;
#pragma unroll
    for (int c = 0; c < NC; c++) {
        const int r = c * 8 + 2 * t4, o = warp * 16 + g;
        pt[r * TN + o] = acc[c][0];
        pt[(r + 1) * TN + o] = acc[c][1];
        pt[r * TN + o + 8] = acc[c][2];
        pt[(r + 1) * TN + o + 8] = acc[c][3];
    }
    cl_sync();
    const int rank = (int)cl_rank();
    const int per = R * TN / S;
    const u32 base = (u32)__cvta_generic_to_shared(pt);
    for (int e = rank * per + threadIdx.x * 4; e < (rank + 1) * per; e += WARPS * 32 * 4) {
        float4 a = make_float4(0.f, 0.f, 0.f, 0.f);
        for (int q = 0; q < S; q++) {
            u32 ra;
            asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(base + e * 4), "r"(q));
            float4 v;
            asm volatile("ld.shared::cluster.v4.f32 {%0,%1,%2,%3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "r"(ra));
            a.x += v.x; a.y += v.y; a.z += v.z; a.w += v.w;
        }
        const int r = e / TN, o = e - r * TN;
        *(float4*)(Y + (size_t)r * N + blockIdx.x * TN + o) = a;
    }
    cl_sync();
}


// v2: Hopper warpgroup MMA with the weights as the register operand (wgmma ... m64n64k16 RS): each of the NWG
// warpgroups owns 64 outputs, its 4 warps load rows as v1 (16 each, 8 consecutive k per lane); X's k-range is
// staged once in shared memory in the core-matrix order of B (K-major, no swizzle), its k permuted to the lanes'
// order (each 32-k chunk: two "virtual" k16 steps, u32 pairs transposed), so B is read by the tensor cores
// directly (no per-warp fragment loads); weight rounds double-buffered in registers around the async MMAs.
__device__ __forceinline__ unsigned long long sdesc(u32 addr, u32 lbo, u32 sbo) {
    return (unsigned long long)((addr & 0x3FFFFu) >> 4) | ((unsigned long long)((lbo >> 4) & 0x3FFFu) << 16) |
           ((unsigned long long)((sbo >> 4) & 0x3FFFu) << 32);
}
__device__ __forceinline__ void wg_mma(float* d, u32 a0, u32 a1, u32 a2, u32 a3, unsigned long long db) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %37, 0; wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
                 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, "
                 "{%32,%33,%34,%35}, %36, p, 1, 1, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(1) : "memory");
}
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int N> __device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory"); }

template <int NWG, int U>
__global__ void __launch_bounds__(NWG * 128) skinny_wg(const __half* __restrict__ W, const __half* __restrict__ X,
                                                        float* __restrict__ Y, int N, int K, int KS) {
    extern __shared__ __align__(1024) unsigned char sm[];
    constexpr int R = 64, TN = NWG * 64;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int wg = warp >> 2, wq = warp & 3;
    const int S = gridDim.y, s = blockIdx.y;
    const int k0 = s * KS;
    const int o0 = blockIdx.x * TN + wg * 64 + wq * 16;
    const __half* wa = W + (size_t)(o0 + g) * K + k0 + t4 * 8;
    const __half* wb = wa + (size_t)8 * K;
    const int NCH = KS / 32;  // 32-k chunks
    uint4 va[2][U], vb[2][U];
    auto load = [&](int buf, int c0) {
#pragma unroll
        for (int i = 0; i < U; i++) {
            const bool in = c0 + i < NCH;
            va[buf][i] = in ? ldg_nc(wa + (c0 + i) * 32) : make_uint4(0, 0, 0, 0);
            vb[buf][i] = in ? ldg_nc(wb + (c0 + i) * 32) : make_uint4(0, 0, 0, 0);
        }
    };
    load(0, 0);
    {   // X's k-range in B's core-matrix order: virtual step vs = 2 chunk + v at vs·2048, core (ng, kc) at
        // + kc·1024 + ng·128, row n % 8 at + 16 (n % 8).
        const u32 x0 = (u32)__cvta_generic_to_shared(sm);
        for (int i = threadIdx.x; i < R * NCH; i += NWG * 128) {
            const int n = i / NCH, j = i - n * NCH;
            const uint4* src = (const uint4*)(X + (size_t)n * K + k0 + j * 32);
            const uint4 q0 = src[0], q1 = src[1], q2 = src[2], q3 = src[3];
            const u32 rb = x0 + (u32)(j * 4096 + (n >> 3) * 128 + (n & 7) * 16);
            asm volatile("st.shared.v4.u32 [%0], {%1,%2,%3,%4};" ::"r"(rb), "r"(q0.x), "r"(q1.x), "r"(q2.x), "r"(q3.x));
            asm volatile("st.shared.v4.u32 [%0], {%1,%2,%3,%4};" ::"r"(rb + 1024), "r"(q0.y), "r"(q1.y), "r"(q2.y), "r"(q3.y));
            asm volatile("st.shared.v4.u32 [%0], {%1,%2,%3,%4};" ::"r"(rb + 2048), "r"(q0.z), "r"(q1.z), "r"(q2.z), "r"(q3.z));
            asm volatile("st.shared.v4.u32 [%0], {%1,%2,%3,%4};" ::"r"(rb + 3072), "r"(q0.w), "r"(q1.w), "r"(q2.w), "r"(q3.w));
        }
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    }
    __syncthreads();
    const u32 xb = (u32)__cvta_generic_to_shared(sm);
    float d[32];
#pragma unroll
    for (int i = 0; i < 32; i++) d[i] = 0.f;
    // Rounds of U chunks, the weight buffers alternating at compile time (no local-memory indexing).
    auto round = [&](auto bufc, int c0) {
        constexpr int B = decltype(bufc)::value;
        wg_fence();
#pragma unroll
        for (int i = 0; i < U; i++) {
            if (c0 + i < NCH) {
                const int j = c0 + i;
                wg_mma(d, va[B][i].x, vb[B][i].x, va[B][i].y, vb[B][i].y, sdesc(xb + j * 4096, 1024, 128));
                wg_mma(d, va[B][i].z, vb[B][i].z, va[B][i].w, vb[B][i].w, sdesc(xb + j * 4096 + 2048, 1024, 128));
            }
        }
        wg_commit();
        if (c0 + U < NCH) load(B ^ 1, c0 + U);  // next round's weights fly while these MMAs run
        wg_wait<0>();
    };
    for (int c0 = 0; c0 < NCH; c0 += 2 * U) {
        round(IC<0>{}, c0);
        if (c0 + U < NCH) round(IC<1>{}, c0 + U);
    }
    __syncthreads();
    float* pt = (float*)sm;
#pragma unroll
    for (int c = 0; c < 8; c++) {
        const int r = c * 8 + 2 * t4, o = wg * 64 + wq * 16 + g;
        pt[r * TN + o] = d[4 * c];
        pt[(r + 1) * TN + o] = d[4 * c + 1];
        pt[r * TN + o + 8] = d[4 * c + 2];
        pt[(r + 1) * TN + o + 8] = d[4 * c + 3];
    }
    cl_sync();
    const int rank = (int)cl_rank();
    const int per = R * TN / S;
    const u32 base = (u32)__cvta_generic_to_shared(pt);
    for (int e = rank * per + threadIdx.x * 4; e < (rank + 1) * per; e += NWG * 128 * 4) {
        float4 a = make_float4(0.f, 0.f, 0.f, 0.f);
        for (int q = 0; q < S; q++) {
            u32 ra;
            asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(base + e * 4), "r"(q));
            float4 v;
            asm volatile("ld.shared::cluster.v4.f32 {%0,%1,%2,%3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "r"(ra));
            a.x += v.x; a.y += v.y; a.z += v.z; a.w += v.w;
        }
        const int r = e / TN, o = e - r * TN;
        *(float4*)(Y + (size_t)r * N + blockIdx.x * TN + o) = a;
    }
    cl_sync();
}

template <int WARPS, int R, int U>
void launch(const __half* W, const __half* X, float* Y, int N, int K, int S, cudaStream_t st) {
    const int KS = K / S;
    const size_t smem = std::max((size_t)R * (KS + 8) * 2, (size_t)R * WARPS * 16 * 4);
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(N / (WARPS * 16), S, 1);
    cfg.blockDim = dim3(WARPS * 32, 1, 1);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeClusterDimension;
    at[0].val.clusterDim.x = 1; at[0].val.clusterDim.y = S; at[0].val.clusterDim.z = 1;
    cfg.attrs = at; cfg.numAttrs = 1;
    CK(cudaFuncSetAttribute(skinny<WARPS, R, U>, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024));
    if (S > 8) CK(cudaFuncSetAttribute(skinny<WARPS, R, U>, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
    CK(cudaLaunchKernelEx(&cfg, skinny<WARPS, R, U>, W, X, Y, N, K, KS));
}


template <int NWG, int U>
void launch_wg(const __half* W, const __half* X, float* Y, int N, int K, int S, cudaStream_t st) {
    const int KS = K / S;
    const size_t smem = std::max((size_t)64 * KS * 2, (size_t)64 * NWG * 64 * 4);
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(N / (NWG * 64), S, 1);
    cfg.blockDim = dim3(NWG * 128, 1, 1);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeClusterDimension;
    at[0].val.clusterDim.x = 1; at[0].val.clusterDim.y = S; at[0].val.clusterDim.z = 1;
    cfg.attrs = at; cfg.numAttrs = 1;
    CK(cudaFuncSetAttribute(skinny_wg<NWG, U>, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024));
    CK(cudaLaunchKernelEx(&cfg, skinny_wg<NWG, U>, W, X, Y, N, K, KS));
}

struct Shape { const char* name; int N, K; };

int main(int argc, char** argv) {
    const int M = 64, L = 22, REP = 20;
    Shape shapes[4] = {{"qkv", 2560, 2048}, {"o", 2048, 2048}, {"gateup", 11264, 2048}, {"down", 2048, 5632}};
    cublasHandle_t hb; cublasCreate(&hb);
    cudaStream_t st; CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    cublasSetStream(hb, st);
    cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
    // weights for L layers of every shape
    std::vector<__half*> Ws[4];
    size_t maxk = 5632;
    __half* X; CK(cudaMalloc(&X, M * maxk * 2));
    float *Y0, *Y1; CK(cudaMalloc(&Y0, (size_t)M * 11264 * 4)); CK(cudaMalloc(&Y1, (size_t)M * 11264 * 4));
    {
        std::vector<__half> hx(M * maxk);
        srand(1);
        for (auto& v : hx) v = __float2half((rand() / (float)RAND_MAX - 0.5f));
        CK(cudaMemcpy(X, hx.data(), hx.size() * 2, cudaMemcpyHostToDevice));
    }
    for (int si = 0; si < 4; si++) {
        size_t n = (size_t)shapes[si].N * shapes[si].K;
        std::vector<__half> hw(n);
        for (size_t i = 0; i < n; i++) hw[i] = __float2half(((rand() & 1023) / 1023.f - 0.5f) * 0.05f);
        for (int l = 0; l < L; l++) {
            __half* p; CK(cudaMalloc(&p, n * 2)); CK(cudaMemcpy(p, hw.data(), n * 2, cudaMemcpyHostToDevice)); Ws[si].push_back(p);
        }
    }
    auto time_graph = [&](auto&& body) -> float {
        cudaGraph_t g; cudaGraphExec_t ge;
        CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
        body();
        CK(cudaStreamEndCapture(st, &g));
        CK(cudaGraphInstantiate(&ge, g, 0));
        CK(cudaGraphLaunch(ge, st)); CK(cudaStreamSynchronize(st));
        CK(cudaEventRecord(e0, st));
        for (int r = 0; r < REP; r++) CK(cudaGraphLaunch(ge, st));
        CK(cudaEventRecord(e1, st)); CK(cudaEventSynchronize(e1));
        float ms; cudaEventElapsedTime(&ms, e0, e1);
        cudaGraphExecDestroy(ge); cudaGraphDestroy(g);
        return ms * 1000.f / REP;
    };
    const float alpha = 1.f, beta = 0.f;
    auto cublas = [&](int si, int l, float* Y) {
        const Shape& s = shapes[si];
        cublasGemmEx(hb, CUBLAS_OP_T, CUBLAS_OP_N, s.N, M, s.K, &alpha, Ws[si][l], CUDA_R_16F, s.K, X, CUDA_R_16F, s.K, &beta, Y,
                     CUDA_R_32F, s.N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    };
    // configs: (warps, S, U)
    struct Cfg { int warps, S, U; };
    // warps < 0: the wgmma kernel with -warps warpgroups
    std::vector<Cfg> cfgs[4] = {
        {{8, 8, 8}, {-1, 8, 4}, {-2, 8, 4}, {-1, 4, 4}, {-2, 4, 4}, {-1, 8, 2}},
        {{4, 8, 8}, {-1, 8, 4}, {-2, 8, 4}, {-1, 4, 4}, {-2, 4, 4}, {-1, 8, 2}},
        {{16, 2, 8}, {-1, 4, 4}, {-2, 4, 4}, {-2, 2, 4}, {-4, 2, 4}, {-1, 2, 4}},
        {{16, 8, 4}, {-1, 8, 4}, {-2, 8, 4}, {-1, 4, 4}, {-2, 4, 4}, {-4, 8, 4}},
    };
    auto ours = [&](const Cfg& c, int si, int l, float* Y) {
        const Shape& s = shapes[si];
        if (c.warps < 0) {
            if (c.warps == -1 && c.U == 4) launch_wg<1, 4>(Ws[si][l], X, Y, s.N, s.K, c.S, st);
            else if (c.warps == -1) launch_wg<1, 2>(Ws[si][l], X, Y, s.N, s.K, c.S, st);
            else if (c.warps == -2) launch_wg<2, 4>(Ws[si][l], X, Y, s.N, s.K, c.S, st);
            else launch_wg<4, 4>(Ws[si][l], X, Y, s.N, s.K, c.S, st);
            return;
        }
        if (c.U == 8) {
            if (c.warps == 4) launch<4, 64, 8>(Ws[si][l], X, Y, s.N, s.K, c.S, st);
            else if (c.warps == 8) launch<8, 64, 8>(Ws[si][l], X, Y, s.N, s.K, c.S, st);
            else launch<16, 64, 8>(Ws[si][l], X, Y, s.N, s.K, c.S, st);
        } else {
            if (c.warps == 4) launch<4, 64, 4>(Ws[si][l], X, Y, s.N, s.K, c.S, st);
            else if (c.warps == 8) launch<8, 64, 4>(Ws[si][l], X, Y, s.N, s.K, c.S, st);
            else launch<16, 64, 4>(Ws[si][l], X, Y, s.N, s.K, c.S, st);
        }
    };
    double bw = 4.26e12;
    float best_sum = 0, cub_sum = 0;
    for (int si = 0; si < 4; si++) {
        const Shape& s = shapes[si];
        const double bytes = (double)s.N * s.K * 2;
        float tc = time_graph([&] { for (int l = 0; l < L; l++) cublas(si, l, Y0); }) / L;
        cub_sum += tc;
        printf("%-7s M=%d N=%d K=%d: cublasGemmEx %.2f us (%.0f GB/s; bandwidth time %.2f us)\n", s.name, M, s.N, s.K, tc,
               bytes / tc * 1e-3, bytes / bw * 1e6);
        float best = 1e9;
        for (auto& c : cfgs[si]) {
            const int tn = c.warps < 0 ? -c.warps * 64 : c.warps * 16;
            if (s.K % (c.S * 32) || s.N % tn || (s.K / c.S) * 2 * 64 > 200 * 1024) { printf("  skip w%d S%d\n", c.warps, c.S); continue; }
            ours(c, si, 0, Y1);
            CK(cudaStreamSynchronize(st));
            cublas(si, 0, Y0);
            CK(cudaStreamSynchronize(st));
            std::vector<float> a((size_t)M * s.N), b((size_t)M * s.N);
            CK(cudaMemcpy(a.data(), Y0, a.size() * 4, cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(b.data(), Y1, b.size() * 4, cudaMemcpyDeviceToHost));
            double md = 0, mr = 0;
            for (size_t i = 0; i < a.size(); i++) { md = fmax(md, fabs(a[i] - b[i])); mr = fmax(mr, fabs(a[i])); }
            float t = time_graph([&] { for (int l = 0; l < L; l++) ours(c, si, l, Y1); }) / L;
            best = fminf(best, t);
            printf("  ours warps %2d S %2d U %d (grid %d x %d): %.2f us (%.0f GB/s), max|d|/max|ref| %.2e\n", c.warps, c.S, c.U,
                   tn ? s.N / tn : 0, c.S, t, bytes / t * 1e-3, md / mr);
        }
        best_sum += best;
    }
    printf("sum of the 4 GEMMs a layer: cublasGemmEx %.2f us, ours (best each) %.2f us\n", cub_sum, best_sum);
    return 0;
}
