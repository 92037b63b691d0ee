// Hopper (sm_90a) helpers shared by the GEMMs appended after kernels.cu — the FP8 GEMM (`f8g_*`, kernels_f8g.cu) and
// the quantized decode GEMM (`wq_*`, kernels_wq.cu); kernels.rs `source_sm90a` appends this file before them when
// either is on. A CUtensorMap kernel parameter, the K-major 128-byte-swizzle wgmma descriptor (8-row atoms of 1024
// bytes), mbarriers with transaction counts, 2-D / 3-D TMA boxes and distributed-shared-memory addresses.
#if defined(F8G) || defined(WQ)
struct __align__(64) HopTmap { unsigned long long v[16]; };
__device__ __forceinline__ unsigned hop_smem(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }
__device__ __forceinline__ unsigned long long hop_desc_sw128(unsigned addr) {
    return (unsigned long long)((addr & 0x3FFFFu) >> 4) | (1ull << 16) | ((unsigned long long)(1024u >> 4) << 32) | (1ull << 62);
}
__device__ __forceinline__ void hop_bar_init(unsigned bar, unsigned n) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(n) : "memory");
}
__device__ __forceinline__ void hop_bar_expect(unsigned bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void hop_bar_arrive(unsigned bar) { asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory"); }
__device__ __forceinline__ void hop_bar_wait(unsigned bar, unsigned parity) {
    unsigned ok;
    do {
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                     : "=r"(ok)
                     : "r"(bar), "r"(parity)
                     : "memory");
    } while (!ok);
}
__device__ __forceinline__ void hop_tma_2d(unsigned dst, const HopTmap* tm, int c0, int c1, unsigned bar) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::"r"(dst),
                 "l"((unsigned long long)tm), "r"(c0), "r"(c1), "r"(bar)
                 : "memory");
}
// One 3-D box (c0 innermost): wq's x stage as a single copy of two 64 k × 64-row SW128 tiles (session 47).
__device__ __forceinline__ void hop_tma_3d(unsigned dst, const HopTmap* tm, int c0, int c1, int c2, unsigned bar) {
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];" ::"r"(dst),
                 "l"((unsigned long long)tm), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
                 : "memory");
}
__device__ __forceinline__ unsigned hop_mapa(unsigned addr, unsigned rank) {
    unsigned r;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(addr), "r"(rank));
    return r;
}
#endif
