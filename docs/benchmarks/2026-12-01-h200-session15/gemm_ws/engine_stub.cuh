// Stubs so that the engine's tcg4 code (src/backend/cuda/kernels_tcg4.cu, copied verbatim by run4.sh into
// /tmp/eng_tcg4.cuh) compiles inside the prototype: the same kernel body in the prototype's process, buffers and
// timing loop, to split "the kernel" from "how the engine runs it" (session 15: the engine's tcg4 v3 kernels take
// 21-25 us under ncu where the prototype's same-structure kernel takes 6-17).
#pragma once
#define TCG4 1
#define ACT_F32 0
#define EPI_QKV 0
#define EPI_SWIGLU 1
#define EPI_RESID 2
#define EPI_PLAIN 3
#define WF_F16 1
#define QDIM 2048
#define HD 64
#define HALF_HD 32
typedef __half h16;
struct GemvArgs {  // the fields tcg4_body reads (the engine's struct has more; this one is the prototype's own)
    const h16* x;
    const void* w;
    float* out;
    h16* out_act;
    int T, N;
};
__device__ __forceinline__ h16 f2act(float v) { return __float2half(v); }
template <int WF, int EPI>
__device__ __forceinline__ void tc_epilogue(const GemvArgs& a, int t, int p, float y0, float y1) {
    float* o = a.out + (size_t)t * a.N + 2 * p;
    o[0] = y0;
    o[1] = y1;
}
// pdl_wait / pdl_trigger: ws.cu's.
__device__ __forceinline__ void cp_async16(u32 dst, const void* src, int n) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(n) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
__device__ __forceinline__ void cluster_sync_all() {
    asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}
__device__ __forceinline__ u32 g3_smem(const void* p) { return (u32)__cvta_generic_to_shared(p); }
__device__ __forceinline__ float2 g3_ld2(u32 a, int rank, bool remote) {
    float2 v;
    if (remote) {
        u32 r;
        asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(rank));
        asm volatile("ld.shared::cluster.v2.f32 {%0,%1}, [%2];" : "=f"(v.x), "=f"(v.y) : "r"(r));
        return v;
    }
    asm volatile("ld.shared.v2.f32 {%0,%1}, [%2];" : "=f"(v.x), "=f"(v.y) : "r"(a));
    return v;
}
#define TCG4_INSTANCES                                                \
    TCG4_KERNEL(eng_resid_2048, EPI_RESID, 2048, 64)                  \
    TCG4_KERNEL(eng_resid_5632, EPI_RESID, 5632, 64)                  \
    TCG4_KERNEL(eng_plain_2048, EPI_PLAIN, 2048, 64)
