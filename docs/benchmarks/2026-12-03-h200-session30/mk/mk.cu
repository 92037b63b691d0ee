// Session 30 probe (issue #11, fp16 bs1): the whole one-row decode step of the TinyLlama-1.1B shape as ONE persistent
// launch ("megakernel"), to measure what the step costs when weight streaming never waits on the dependency chain.
//
// One block per SM (grid = SM count, all resident). Each block has NCW consumer warps and one loader warp.
//  - A host-built schedule gives each block its list of work items in step order (per layer: qkv tiles, attention
//    items, o tiles, gate/up tiles, down tiles; then the head's tiles), balanced by bytes (greedy, least-loaded block).
//  - Weights are repacked so that a "chunk" (16 rows x 512 k, f16) is 16 KB contiguous. The loader lane streams the
//    chunks of its block's list, in order, into a ring of NSLOT shared-memory slots (cp.async.bulk + mbarrier); it
//    never waits on activations, only for a free slot, so it runs ahead across op boundaries by up to the ring.
//  - The consumers walk the same list: at the first item of an op they wait for the op's input (a counter in global
//    memory reaching epoch * count: no resets), stage the input vector (RMSNorm'd h, the attention output, the SwiGLU
//    vector) in shared memory as f32, then reduce each chunk from its slot (f32 accumulation) and run the op's
//    epilogue (RoPE + KV write, residual add by red.add, SwiGLU, logits + argmax). After a run of items they add the
//    number done to the op's counter.
//  - Attention (one row, GQA): item = (kv head, chunk of positions); partial (max, sum, acc) records; the last item
//    of a kv head (counter) merges its 8 heads' records into the attention output.
// Compared against a plain reference (one simple kernel per op, f32) on the same seeded weights and KV cache: logits
// of one step, then greedy tokens of several steps. Timed as CUDA graphs of 128 steps (prompt 512 + 128 new).
//
// Build: nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v mk.cu -o mk
// Build switches: -DNSLOT=n (ring slots, 16 KB each), -DNCW=n (consumer warps), -DACH=n (attention chunks per kv head),
//                 -DNOWAIT=1 (consumers skip the dependency waits: wrong results, the streaming ceiling).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CK(x)                                                                                        \
    do {                                                                                             \
        cudaError_t e_ = (x);                                                                        \
        if (e_ != cudaSuccess) {                                                                     \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));      \
            exit(1);                                                                                 \
        }                                                                                            \
    } while (0)

typedef __half h16;
typedef unsigned int u32;
typedef unsigned long long u64;

constexpr int H = 2048, NH = 32, NKV = 4, HD = 64, INTER = 5632, NL = 22, VOC = 32000, MAXP = 1024;
constexpr int QKVN = (NH + 2 * NKV) * HD;  // 2560
constexpr int CKK = 512;                   // k per chunk
constexpr int CHH = 16 * CKK;              // halves per chunk
constexpr int CHB = CHH * 2;               // 16,384 bytes
#ifndef NCW
#define NCW 8
#endif
#ifndef NSLOT
#define NSLOT 11
#endif
#ifndef ACH
#define ACH 8
#endif
#ifndef NOWAIT
#define NOWAIT 0
#endif
#ifndef MMA
#define MMA 1  // chunks in mma.m16n8k16 A-fragment order, x staged as f16, tensor-core reduction (0: f32 FMA, v2)
#endif
#ifndef AKV
#define AKV 1  // v5: the attention's old K / V rows bulk-copied by the loader into two ring slots; the merge in o's staging
#endif
#ifndef ROT
#define ROT 1  // v5: tile i's epilogue by warp i % NCW (v4: always warp 0)
#endif
#ifndef PFD
#define PFD 0  // v6: the loader also prefetches into L2 (cp.async.bulk.prefetch.L2) the chunks PFD ahead of its ring copies
#endif
#ifndef NOMMA
#define NOMMA 0  // diagnostic: tiles skip their mma (wrong results): the ring's own cost a chunk
#endif
#ifndef FG
#define FG 0  // v7: o split-K by kv head (entry = 16 rows x one kv head's 512 inputs, waits for that head's merge only) and
              // down split-K in 3 column ranges (waits for that range's gate/up tiles only); needs AKV=0
#endif
#ifndef PROF
#define PROF 0  // per-block time sums (globaltimer, thread 0 / the loader lane) into Args::prof
#endif
constexpr int NPROF = 12;
#ifndef SIG
#define SIG 0  // 1: a run's count by red.release.gpu instead of __threadfence + atomicAdd
#endif
constexpr int NCT = NCW * 32;  // consumer threads
constexpr int NTH = NCT + 32;
constexpr int RPW = 16 / NCW;  // rows of a chunk per consumer warp
static_assert(16 % NCW == 0, "NCW divides 16");
constexpr int T_QKV = QKVN / 16, T_ATT = NKV * ACH, T_O = H / 16, T_GU = INTER / 8, T_DN = 2 * (H / 16), T_HEAD = VOC / 16;
constexpr int KC_H = H / CKK, KC_I = INTER / CKK;  // 4, 11
constexpr int DN_C0 = 6;                            // down split-K: chunks [0, 6) and [6, 11)
enum { OP_QKV = 0, OP_ATT = 1, OP_O = 2, OP_GU = 3, OP_DN = 4, OP_HEAD = 5 };
static_assert(!(FG && AKV), "FG needs AKV=0 (the per-kv-head merge)");
constexpr int DN_RC = 4, DN_NR = (KC_I + DN_RC - 1) / DN_RC;  // FG: down column ranges of DN_RC chunks (4, 4, 3)
constexpr int T_O_E = FG ? NKV * (H / 16) : T_O, T_DN_E = FG ? DN_NR * (H / 16) : T_DN;  // entries a layer
constexpr int GU_PER_R = DN_RC * CKK / 8;  // gate/up tiles a down range reads (256)
__host__ __device__ constexpr int gu_in_range(int s) { return (s + 1) * GU_PER_R <= T_GU ? GU_PER_R : T_GU - s * GU_PER_R; }
__host__ __device__ constexpr int dn_nch(int s) { return ((s + 1) * DN_RC <= KC_I ? DN_RC : KC_I - s * DN_RC); }
constexpr int NCTR = 8;  // counters per layer
// Shared memory: ring | x area (f32 vector, or the attention's q / K / V / scores) | small.
#ifndef XAREA
#define XAREA 40960  // bytes for the staged x (f32 or f16) or the attention item (q, K, V, scores)
#endif
constexpr int SM_RING = 0, SM_X = NSLOT * CHB, SM_BAR = SM_X + XAREA, SM_MISC = SM_BAR + 2 * NSLOT * 8;
constexpr int MAXE = 512;  // schedule entries per block
#ifndef SSCHED
#define SSCHED 1  // v8: the block's schedule copied into shared memory at entry (v1-v7 read it from global memory, and every
                  // acquire poll / fence invalidates L1 (CCTL.IVALL), so each entry's read was an L2 round trip)
#endif
constexpr int SM_SCHED = SM_MISC + 4096;
constexpr int SMEM = SM_SCHED + (SSCHED ? MAXE * 4 : 0);

struct Args {
    const h16 *wqkv, *wo, *wgu, *wdn, *whead;  // packed chunks
    const h16* emb;                            // (VOC, H)
    const float *nattn, *nffn, *nfinal;        // (NL, H), (NL, H), (H)
    h16 *kc, *vc;                              // (NL, NKV, MAXP, HD)
    float *h, *q, *part, *ao, *act, *logits;   // h (H), q (H), part (NH, ACH, 68), ao (H), act (INTER), logits (VOC)
    int* ctr;                                  // (NL, NCTR) + attention per kv head (NL, NKV) after
    u64* best;                                 // 3 argmax keys, slot epoch % 3
    const int* sched;                          // (G, MAXE) entries
    const int* nsched;                         // (G)
    int pos, epoch, tok;                       // tok < 0: the previous step's argmax
    int* err;
    u64* prof;  // (G, NPROF): consumer total, spin, stage, ring wait, tile epilogues; loader total, empty wait
};

__device__ __forceinline__ u32 smem_u32(const void* p) { return (u32)__cvta_generic_to_shared(p); }
__device__ __forceinline__ void mbar_init(u32 bar, u32 n) { asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(n) : "memory"); }
__device__ __forceinline__ void mbar_expect(u32 bar, u32 bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(u32 bar) { asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory"); }
__device__ __forceinline__ void mbar_wait(u32 bar, u32 parity) {
    u32 done = 0;
    while (!done) {
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                     : "=r"(done)
                     : "r"(bar), "r"(parity)
                     : "memory");
    }
}
__device__ __forceinline__ void bulk_g2s(u32 dst, const void* src, u32 bytes, u32 bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst), "l"(src),
                 "r"(bytes), "r"(bar)
                 : "memory");
}
__device__ __forceinline__ void pf_l2(const void* src, u32 bytes) {
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(src), "r"(bytes) : "memory");
}
__device__ __forceinline__ void cbar() { asm volatile("bar.sync 1, %0;" ::"r"(NCT) : "memory"); }
__device__ __forceinline__ int ld_acq(const int* p) {
    int v;
    asm volatile("ld.acquire.gpu.global.b32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ u64 gtime() {
    u64 t;
    asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
    return t;
}
__device__ __forceinline__ void red_add(float* p, float v) { asm volatile("red.global.add.f32 [%0], %1;" ::"l"(p), "f"(v) : "memory"); }
// Thread 0 of the consumers: wait until *p >= target (2 s: error + trap, never a silent hang).
__device__ void spin_ge(const int* p, int target, int* err, int code) {
    if (NOWAIT) return;
    u64 t0 = 0;
    int it = 0;
    while (ld_acq(p) < target) {
        if ((++it & 1023) == 0) {
            const u64 t = gtime();
            if (t0 == 0) t0 = t;
            else if (t - t0 > 2000000000ull) {
                atomicExch(err, code);
                __trap();
            }
        }
    }
}
__device__ __forceinline__ float dot8(uint4 w, float4 a, float4 b) {
    const __half2* p = (const __half2*)&w;
    float2 f0 = __half22float2(p[0]), f1 = __half22float2(p[1]), f2 = __half22float2(p[2]), f3 = __half22float2(p[3]);
    return f0.x * a.x + f0.y * a.y + f1.x * a.z + f1.y * a.w + f2.x * b.x + f2.y * b.y + f3.x * b.z + f3.y * b.w;
}
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ int ent_op(int e) { return e & 7; }
__device__ __forceinline__ int ent_l(int e) { return (e >> 3) & 31; }
__device__ __forceinline__ int ent_t(int e) { return e >> 8; }
__device__ __forceinline__ int ent_nch(int op, int t) {
    if (FG && op == OP_O) return 1;
    if (FG && op == OP_DN) return dn_nch(t / (H / 16));
    return op == OP_ATT ? (AKV ? 2 : 0) : op == OP_DN ? ((t & 1) ? KC_I - DN_C0 : DN_C0) : KC_H;
}
// Global address of chunk c of entry (op, l, t).
__device__ __forceinline__ const h16* chunk_ptr(const Args& a, int op, int l, int t, int c) {
    switch (op) {
        case OP_QKV: return a.wqkv + ((size_t)(l * T_QKV + t) * KC_H + c) * CHH;
        case OP_O:
            if (FG) return a.wo + ((size_t)(l * T_O + t % (H / 16)) * KC_H + t / (H / 16) + c) * CHH;
            return a.wo + ((size_t)(l * T_O + t) * KC_H + c) * CHH;
        case OP_GU: return a.wgu + ((size_t)(l * T_GU + t) * KC_H + c) * CHH;
        case OP_DN:
            if (FG) return a.wdn + ((size_t)(l * (H / 16) + t % (H / 16)) * KC_I + DN_RC * (t / (H / 16)) + c) * CHH;
            return a.wdn + ((size_t)(l * (H / 16) + (t >> 1)) * KC_I + (t & 1) * DN_C0 + c) * CHH;
        default: return a.whead + ((size_t)t * KC_H + c) * CHH;
    }
}
__device__ __forceinline__ float rope_inv(int d) { return exp2f(-(2.f * d / HD) * 13.287712379549449f); }  // 10000^(-2d/64)
// The producer side of a counter: SIG 0 __threadfence (fence.sc.gpu), SIG 1 fence.acq_rel.gpu.
__device__ __forceinline__ void rel_fence() {
    if (SIG) asm volatile("fence.acq_rel.gpu;" ::: "memory");
    else __threadfence();
}
// Thread 0 of the consumers: add n to counter p after its block's writes (SIG 1: one red.release; SIG 0: a fence
// and a relaxed add).
__device__ __forceinline__ void count_add(int* p, int n) {
    if (SIG) {
        asm volatile("red.release.gpu.global.add.s32 [%0], %1;" ::"l"(p), "r"(n) : "memory");
    } else {
        rel_fence();
        atomicAdd(p, n);
    }
}
__device__ __forceinline__ u64 argkey(float v, int idx) {
    u32 b = __float_as_uint(v);
    b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
    return ((u64)b << 32) | (u64)(0xffffffffu - (u32)idx);
}

__global__ void __launch_bounds__(NTH, 1) mk_step(const Args a) {
    extern __shared__ __align__(128) unsigned char sm[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, tid = threadIdx.x;
    const u32 ring = smem_u32(sm + SM_RING), bars = smem_u32(sm + SM_BAR);
    auto full = [&](int s) { return bars + 8 * s; };
    auto empty = [&](int s) { return bars + 8 * (NSLOT + s); };
    const int ne = a.nsched[blockIdx.x];
    const int* sched = a.sched + blockIdx.x * MAXE;
    if (SSCHED) {
        int* ss = (int*)(sm + SM_SCHED);
        for (int i = threadIdx.x; i < ne; i += NTH) ss[i] = sched[i];
        sched = ss;  // made visible by the __syncthreads below
    }
    if (tid == 0) {
        for (int s = 0; s < NSLOT; s++) {
            mbar_init(full(s), 1);
            mbar_init(empty(s), NCW);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        if (blockIdx.x == 0) a.best[(a.epoch + 1) % 3] = 0ull;
    }
    __syncthreads();
    if (warp == NCW) {  // the loader
        if (lane == 0) {
            int slot = 0;
            u32 ph = 0;
            u64 lt0 = PROF ? gtime() : 0, lw = 0;
            int pe = 0, pc = 0, npf = 0, ncp = 0;  // the L2 prefetch cursor (entry, chunk), chunks prefetched / copied
            auto pf_adv = [&]() {
                while (PFD > 0 && npf < ncp + PFD && pe < ne) {
                    const int en = sched[pe], op = ent_op(en), l = ent_l(en), t = ent_t(en), nch = ent_nch(op, t);
                    if (nch == 0) {
                        pe++;
                        continue;
                    }
                    if (AKV && op == OP_ATT) {
                        const int g = t / ACH, c = t % ACH, L = a.pos + 1, CL = (L + ACH - 1) / ACH, p0 = c * CL;
                        const int nold = max(0, min(p0 + CL, a.pos) - p0);
                        if (nold > 0) pf_l2((pc ? a.vc : a.kc) + ((size_t)(l * NKV + g) * MAXP + p0) * HD, nold * HD * 2);
                    } else {
                        pf_l2(chunk_ptr(a, op, l, t, pc), CHB);
                    }
                    npf++;
                    if (++pc == nch) pc = 0, pe++;
                }
            };
            for (int e = 0; e < ne; e++) {
                const int en = sched[e], op = ent_op(en), l = ent_l(en), t = ent_t(en);
                const int nch = ent_nch(op, t);
                if (AKV && op == OP_ATT) {  // old K rows, then old V rows, of item (g, c): nold x 128 bytes each
                    const int g = t / ACH, c = t % ACH, L = a.pos + 1, CL = (L + ACH - 1) / ACH, p0 = c * CL;
                    const int nold = max(0, min(p0 + CL, a.pos) - p0);
                    for (int kv = 0; kv < 2; kv++) {
                        pf_adv();
                        ncp++;
                        mbar_wait(empty(slot), ph ^ 1);
                        if (nold > 0) {
                            mbar_expect(full(slot), nold * HD * 2);
                            bulk_g2s(ring + slot * CHB, (kv ? a.vc : a.kc) + ((size_t)(l * NKV + g) * MAXP + p0) * HD, nold * HD * 2,
                                     full(slot));
                        } else {
                            mbar_arrive(full(slot));
                        }
                        if (++slot == NSLOT) slot = 0, ph ^= 1;
                    }
                    continue;
                }
                for (int c = 0; c < nch; c++) {
                    pf_adv();
                    ncp++;
                    if (PROF) {
                        const u64 w0 = gtime();
                        mbar_wait(empty(slot), ph ^ 1);
                        lw += gtime() - w0;
                    } else {
                        mbar_wait(empty(slot), ph ^ 1);
                    }
                    mbar_expect(full(slot), CHB);
                    bulk_g2s(ring + slot * CHB, chunk_ptr(a, op, l, t, c), CHB, full(slot));
                    if (++slot == NSLOT) slot = 0, ph ^= 1;
                }
            }
            if (PROF) {
                atomicAdd(a.prof + blockIdx.x * NPROF + 5, gtime() - lt0);
                atomicAdd(a.prof + blockIdx.x * NPROF + 6, lw);
            }
        }
        return;
    }
    // Consumers.
    float* xs = (float*)(sm + SM_X);
    h16* xh = (h16*)(sm + SM_X);               // MMA: the staged x as f16
    float* ysb = (float*)(sm + SM_MISC);       // 2 x NCW x 16 tile partials (alternating: one barrier a tile)
    float* redb = ysb + 32 * NCW;              // NCW partial sums
    int* flag = (int*)(redb + NCW);            // broadcast
    const int ep = a.epoch;
    int tok = a.tok;
    if (tok < 0) tok = (int)(0xffffffffu - (u32)(a.best[(ep + 2) % 3] & 0xffffffffu));  // the previous step's argmax
    const h16* erow = a.emb + (size_t)tok * H;
    int slot = 0;
    u32 ph = 0;
    int ysi = 0, ntile = 0;
    u64 pt0 = PROF ? gtime() : 0, p_spin = 0, p_stage = 0, p_ring = 0, p_epi = 0, p_att = 0, p_sig = 0, p_tile = 0;
    auto pstamp = [&]() -> u64 { return (PROF && tid == 0) ? gtime() : 0ull; };
    // Staged x values k .. k + 3: f16 for the tensor-core tiles (MMA), else f32.
    auto store_x = [&](int k, float4 xv) {
        if (MMA) {
            *(__half2*)(xh + k) = __floats2half2_rn(xv.x, xv.y);
            *(__half2*)(xh + k + 2) = __floats2half2_rn(xv.z, xv.w);
        } else {
            *(float4*)(xs + k) = xv;
        }
    };
    // x = rmsnorm(v) * w over H values of v (f32 from global, or the embedding row).
    auto stage_norm = [&](const float* v, const float* w) {
        float4 r[H / 4 / NCT];
        float ss = 0.f;
#pragma unroll
        for (int i = 0; i < H / 4 / NCT; i++) {
            const int k = (tid + i * NCT) * 4;
            if (v) r[i] = __ldcg((const float4*)(v + k));
            else {
                const __half2* e2 = (const __half2*)(erow + k);
                const float2 f0 = __half22float2(e2[0]), f1 = __half22float2(e2[1]);
                r[i] = make_float4(f0.x, f0.y, f1.x, f1.y);
            }
            ss += r[i].x * r[i].x + r[i].y * r[i].y + r[i].z * r[i].z + r[i].w * r[i].w;
        }
        ss = warp_sum(ss);
        if (lane == 0) redb[warp] = ss;
        cbar();
        float tot = 0.f;
#pragma unroll
        for (int i = 0; i < NCW; i++) tot += redb[i];
        const float rs = rsqrtf(tot / H + 1e-5f);
#pragma unroll
        for (int i = 0; i < H / 4 / NCT; i++) {
            const int k = (tid + i * NCT) * 4;
            const float4 wv = *(const float4*)(w + k);
            store_x(k, make_float4(r[i].x * rs * wv.x, r[i].y * rs * wv.y, r[i].z * rs * wv.z, r[i].w * rs * wv.w));
        }
        cbar();
    };
    auto stage_copy = [&](const float* v, int n) {
        for (int k = tid * 4; k < n; k += NCT * 4) store_x(k, __ldcg((const float4*)(v + k)));
        cbar();
    };
    // One tile: nch chunks from the ring against xs[k0 ..]; the 16 row sums into ys.
    auto tile = [&](int nch, int k0) {
      if constexpr (MMA) {
        const int g = lane >> 2, t4 = lane & 3;
        float c[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
        for (int ci = 0; ci < nch; ci++) {
            if (PROF && tid == 0) {
                const u64 w0 = gtime();
                mbar_wait(full(slot), ph);
                p_ring += gtime() - w0;
            } else {
                mbar_wait(full(slot), ph);
            }
            const uint4* wc = (const uint4*)(sm + SM_RING + slot * CHB);
            const h16* xc = xh + k0 + ci * CKK;
#pragma unroll
            for (int j = 0; j < (NOMMA ? 0 : 32 / NCW); j++) {
                const int kt = warp + j * NCW;
                const uint4 av = wc[kt * 32 + lane];
                const u32 b0 = *(const u32*)(xc + kt * 16 + 2 * t4), b1 = *(const u32*)(xc + kt * 16 + 2 * t4 + 8);
                float* cc = c[j & 1];
                asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                             : "+f"(cc[0]), "+f"(cc[1]), "+f"(cc[2]), "+f"(cc[3])
                             : "r"(av.x), "r"(av.y), "r"(av.z), "r"(av.w), "r"(b0), "r"(b1));
            }
            __syncwarp();
            if (lane == 0) mbar_arrive(empty(slot));
            if (++slot == NSLOT) slot = 0, ph ^= 1;
        }
        float* pb = ysb + NCW * 16 * ysi;
        if (t4 == 0) pb[warp * 16 + g] = c[0][0] + c[1][0], pb[warp * 16 + g + 8] = c[0][2] + c[1][2];
        cbar();
        return;
      } else {
        float acc[RPW];
#pragma unroll
        for (int r = 0; r < RPW; r++) acc[r] = 0.f;
        for (int c = 0; c < nch; c++) {
            if (PROF && tid == 0) {
                const u64 w0 = gtime();
                mbar_wait(full(slot), ph);
                p_ring += gtime() - w0;
            } else {
                mbar_wait(full(slot), ph);
            }
            const h16* wc = (const h16*)(sm + SM_RING + slot * CHB);
            const float* xc = xs + k0 + c * CKK;
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const int k = hf * 256 + 8 * lane;
                const float4 xa = *(const float4*)(xc + k), xb = *(const float4*)(xc + k + 4);
#pragma unroll
                for (int r = 0; r < RPW; r++) acc[r] += dot8(*(const uint4*)(wc + (warp * RPW + r) * CKK + k), xa, xb);
            }
            __syncwarp();
            if (lane == 0) mbar_arrive(empty(slot));
            if (++slot == NSLOT) slot = 0, ph ^= 1;
        }
        float* ys = ysb + NCW * 16 * ysi;
#pragma unroll
        for (int r = 0; r < RPW; r++) {
            const float v = warp_sum(acc[r]);
            if (lane == 0) ys[warp * RPW + r] = v;
        }
        cbar();
      }
    };
    int* ctr = a.ctr;
    int* attc = a.ctr + NL * NCTR;
    int e = 0;
    while (e < ne) {
        const int en = sched[e], op = ent_op(en), l = ent_l(en);
        // Wait for the op's input, stage it.
        const u64 s0 = pstamp();
        if (tid == 0) {
            if (op == OP_QKV && l > 0) spin_ge(ctr + (l - 1) * NCTR + OP_DN, ep * T_DN_E, a.err, 1);
            if (op == OP_ATT) spin_ge(ctr + l * NCTR + OP_QKV, ep * T_QKV, a.err, 2);
            if (op == OP_O && !FG) spin_ge(ctr + l * NCTR + OP_ATT, ep * (AKV ? T_ATT : NKV), a.err, 3);
            if (op == OP_GU) spin_ge(ctr + l * NCTR + OP_O, ep * T_O_E, a.err, 4);
            if (op == OP_DN && !FG) spin_ge(ctr + l * NCTR + OP_GU, ep * T_GU, a.err, 5);
            if (op == OP_HEAD) spin_ge(ctr + (NL - 1) * NCTR + OP_DN, ep * T_DN_E, a.err, 6);
        }
        const u64 s1 = pstamp();
        cbar();
        if (op == OP_QKV) stage_norm(l == 0 ? nullptr : a.h, a.nattn + l * H);
        else if (op == OP_O && !FG) {
            if (AKV) {  // merge the attention records: warp w heads w, w + NCW, ..; lane c < ACH one record's (max, sum)
                for (int hh = warp; hh < NH; hh += NCW) {
                    const float* rb = a.part + (size_t)hh * ACH * 68;
                    const float mc = lane < ACH ? __ldcg(rb + lane * 68) : -1e30f, lc = lane < ACH ? __ldcg(rb + lane * 68 + 1) : 0.f;
                    float2 v[ACH];
#pragma unroll
                    for (int cc = 0; cc < ACH; cc++) v[cc] = __ldcg((const float2*)(rb + cc * 68 + 4 + 2 * lane));
                    const float M = warp_max(mc);
                    const float wc = lane < ACH ? __expf(mc - M) : 0.f;
                    const float den = warp_sum(wc * lc);
                    float n0 = 0.f, n1 = 0.f;
#pragma unroll
                    for (int cc = 0; cc < ACH; cc++) {
                        const float w = __shfl_sync(0xffffffffu, wc, cc);
                        n0 += w * v[cc].x, n1 += w * v[cc].y;
                    }
                    const int k = hh * 64 + 2 * lane;
                    if (MMA) *(__half2*)(xh + k) = __floats2half2_rn(n0 / den, n1 / den);
                    else xs[k] = n0 / den, xs[k + 1] = n1 / den;
                }
                cbar();
            } else {
                stage_copy(a.ao, H);
            }
        }
        else if (op == OP_GU) stage_norm(a.h, a.nffn + l * H);
        else if (op == OP_DN && !FG) stage_copy(a.act, INTER);
        else if (op == OP_HEAD) stage_norm(a.h, a.nfinal);
        if (PROF && tid == 0) {
            const u64 s2 = gtime();
            p_spin += s1 - s0, p_stage += s2 - s1;
        }
        int done = 0, gcnt[DN_NR] = {}, staged = -1;
        u32 okmask = 0;  // FG: the entry dependencies thread 0 has seen met in this run
        for (; e < ne && (sched[e] & 0xff) == (en & 0xff); e++, done++) {
            const int t = ent_t(sched[e]);
            const u64 a0 = pstamp();
            if (AKV && op == OP_ATT) {
                // Item (kv head g, chunk c) over positions [p0, p0 + n): rows < pos from the two ring slots, row pos
                // (written by this step's qkv) from global.
                const int g = t / ACH, c = t % ACH, L = a.pos + 1, CL = (L + ACH - 1) / ACH, p0 = c * CL;
                const int n = max(0, min(CL, L - p0)), nold = max(0, min(p0 + CL, a.pos) - p0);
                const int sk = slot, pk = ph;
                if (++slot == NSLOT) slot = 0, ph ^= 1;
                const int sv = slot, pv = ph;
                if (++slot == NSLOT) slot = 0, ph ^= 1;
                float* qs = xs;                        // 8 x 64 f32
                h16* knew = (h16*)(xs + 512);          // 64 halves
                h16* vnew = knew + 64;                 // 64 halves
                float* ss = xs + 512 + 64;             // 8 x CL
                for (int i = tid; i < 128; i += NCT) *(float4*)(qs + 4 * i) = __ldcg((const float4*)(a.q + g * 512 + 4 * i));
                if (n > nold && tid >= NCT - 16) {     // the newest row
                    const int j = tid - (NCT - 16);
                    const size_t nb = ((size_t)(l * NKV + g) * MAXP + a.pos) * HD;
                    if (j < 8) *(uint4*)(knew + 8 * j) = __ldcg((const uint4*)(a.kc + nb + 8 * j));
                    else *(uint4*)(vnew + 8 * (j - 8)) = __ldcg((const uint4*)(a.vc + nb + 8 * (j - 8)));
                }
                mbar_wait(full(sk), pk);
                mbar_wait(full(sv), pv);
                cbar();
                const h16* kold = (const h16*)(sm + SM_RING + sk * CHB);
                const h16* vold = (const h16*)(sm + SM_RING + sv * CHB);
                for (int w = warp; w < 8; w += NCW) {
                    const float* qh = qs + w * 64;
                    float mx = -1e30f;
                    for (int p = lane; p < n; p += 32) {
                        const u32* kr = (const u32*)(p < nold ? kold + p * HD : knew);
                        float sc = 0.f;
#pragma unroll
                        for (int d2 = 0; d2 < 32; d2++) {
                            const int j = (d2 + lane) & 31;  // rotated: lanes on distinct banks
                            const u32 kk = kr[j];
                            const float2 kf = __half22float2(*(const __half2*)&kk);
                            const float2 qv = *(const float2*)(qh + 2 * j);
                            sc += kf.x * qv.x + kf.y * qv.y;
                        }
                        ss[w * CL + p] = sc;
                        mx = fmaxf(mx, sc);
                    }
                    mx = warp_max(mx);
                    float sum = 0.f;
                    for (int p = lane; p < n; p += 32) {
                        const float pe = __expf(ss[w * CL + p] - mx);
                        ss[w * CL + p] = pe;
                        sum += pe;
                    }
                    sum = warp_sum(sum);
                    __syncwarp();
                    float a0 = 0.f, a1 = 0.f;
                    for (int p = 0; p < n; p++) {
                        const float pe = ss[w * CL + p];
                        const u32 vv = ((const u32*)(p < nold ? vold + p * HD : vnew))[lane];
                        const float2 vf = __half22float2(*(const __half2*)&vv);
                        a0 += pe * vf.x, a1 += pe * vf.y;
                    }
                    float* rec = a.part + ((size_t)(g * 8 + w) * ACH + c) * 68;
                    *(float2*)(rec + 4 + 2 * lane) = make_float2(a0, a1);
                    if (lane == 0) rec[0] = (n > 0 ? mx : -1e30f), rec[1] = sum;
                }
                __syncwarp();
                if (lane == 0) mbar_arrive(empty(sk)), mbar_arrive(empty(sv));
                cbar();  // records written; xs reused by the next item
                if (tid == 0) count_add(ctr + l * NCTR + OP_ATT, 1);
                if (PROF && tid == 0) p_att += gtime() - a0;
                continue;
            }
            if (op == OP_ATT) {
                // Item (kv head g, chunk c) over positions [p0, p0 + n).
                const int g = t / ACH, c = t % ACH, L = a.pos + 1, CL = (L + ACH - 1) / ACH, p0 = c * CL;
                const int n = max(0, min(CL, L - p0));
                float* qs = xs;                             // 8 x 64 f32
                u32* ks = (u32*)(xs + 512);                 // n rows, stride 33 words (conflict-free per-lane rows)
                u32* vs = ks + 33 * ((CL + 3) & ~3);        // n rows x 32 words (16-byte aligned)
                float* ss = (float*)(vs + 32 * CL);         // 8 x CL
                for (int i = tid; i < 128; i += NCT) *(float4*)(qs + 4 * i) = __ldcg((const float4*)(a.q + g * 512 + 4 * i));
                const size_t kvb = ((size_t)(l * NKV + g) * MAXP + p0) * HD;
                for (int i = tid; i < n * 8; i += NCT) {
                    const int p = i >> 3, j = i & 7;
                    const uint4 kv = __ldcg((const uint4*)(a.kc + kvb + (size_t)p * HD + j * 8));
                    ks[33 * p + 4 * j] = kv.x, ks[33 * p + 4 * j + 1] = kv.y, ks[33 * p + 4 * j + 2] = kv.z, ks[33 * p + 4 * j + 3] = kv.w;
                    *(uint4*)(vs + 32 * p + 4 * j) = __ldcg((const uint4*)(a.vc + kvb + (size_t)p * HD + j * 8));
                }
                cbar();
                // Warp w < 8: head g * 8 + w. Scores by lane-owned positions, softmax, P.V by lane-owned dims.
                float m = -1e30f, lsum = 0.f, o0 = 0.f, o1 = 0.f;
                if (warp < 8) {
                    for (int w = warp; w < 8; w += NCW) {
                        const float* qh = qs + w * 64;
                        float mx = -1e30f;
                        for (int p = lane; p < n; p += 32) {
                            float s = 0.f;
#pragma unroll
                            for (int d2 = 0; d2 < 32; d2++) {
                                const u32 kk = ks[33 * p + d2];
                                const float2 kf = __half22float2(*(const __half2*)&kk);
                                s += kf.x * qh[2 * d2] + kf.y * qh[2 * d2 + 1];
                            }
                            ss[w * CL + p] = s;
                            mx = fmaxf(mx, s);
                        }
                        mx = warp_max(mx);
                        float sum = 0.f;
                        for (int p = lane; p < n; p += 32) {
                            const float pe = __expf(ss[w * CL + p] - mx);
                            ss[w * CL + p] = pe;
                            sum += pe;
                        }
                        sum = warp_sum(sum);
                        __syncwarp();
                        float a0 = 0.f, a1 = 0.f;
                        for (int p = 0; p < n; p++) {
                            const float pe = ss[w * CL + p];
                            const u32 vv = vs[32 * p + lane];
                            const float2 vf = __half22float2(*(const __half2*)&vv);
                            a0 += pe * vf.x, a1 += pe * vf.y;
                        }
                        m = mx, lsum = sum, o0 = a0, o1 = a1;
                        float* rec = a.part + ((size_t)(g * 8 + w) * ACH + c) * 68;
                        *(float2*)(rec + 4 + 2 * lane) = make_float2(o0, o1);
                        if (lane == 0) rec[0] = (n > 0 ? m : -1e30f), rec[1] = lsum;
                    }
                }
                cbar();
                if (tid == 0) {
                    rel_fence();
                    *flag = atomicAdd(attc + l * NKV + g, 1) == ep * ACH - 1;
                    rel_fence();
                }
                cbar();
                if (*flag) {  // the kv head's last item: merge its 8 heads' records
                    for (int w = warp; w < 8; w += NCW) {
                        const float* rb = a.part + (size_t)(g * 8 + w) * ACH * 68;
                        float M = -1e30f;
                        for (int cc = 0; cc < ACH; cc++) M = fmaxf(M, __ldcg(rb + cc * 68));
                        float den = 0.f, n0 = 0.f, n1 = 0.f;
                        for (int cc = 0; cc < ACH; cc++) {
                            const float wc = __expf(__ldcg(rb + cc * 68) - M);
                            den += wc * __ldcg(rb + cc * 68 + 1);
                            const float2 v = __ldcg((const float2*)(rb + cc * 68 + 4 + 2 * lane));
                            n0 += wc * v.x, n1 += wc * v.y;
                        }
                        *(float2*)(a.ao + (g * 8 + w) * 64 + 2 * lane) = make_float2(n0 / den, n1 / den);
                    }
                    cbar();
                    if (tid == 0) {
                        rel_fence();
                        atomicAdd(ctr + l * NCTR + OP_ATT, 1);
                        if (FG) atomicAdd(attc + NL * NKV + l * NKV + g, 1);  // this kv head's attention is in a.ao
                    }
                }
                cbar();  // xs reused by the next item
                if (PROF && tid == 0) p_att += gtime() - a0;
                continue;
            }
            if (FG && (op == OP_O || op == OP_DN)) {  // this entry's own input: one kv head's attention, one column range
                const int q = t / (H / 16);
                if (tid == 0 && !(okmask >> q & 1u)) {
                    if (op == OP_O) spin_ge(attc + NL * NKV + l * NKV + q, ep, a.err, 3);
                    else spin_ge(ctr + l * NCTR + 5 + q, ep * gu_in_range(q), a.err, 5);
                    okmask |= 1u << q;
                }
                if (q != staged) {
                    cbar();  // thread 0's wait seen; the previous tile's reads of x done
                    if (op == OP_O) stage_copy(a.ao + q * CKK, CKK);
                    else stage_copy(a.act + q * DN_RC * CKK, dn_nch(q) * CKK);
                    staged = q;
                }
            }
            if (FG && op == OP_GU) gcnt[t / GU_PER_R]++;
            const int k0 = (op == OP_DN && !FG) ? (t & 1) * DN_C0 * CKK : 0;
            tile(ent_nch(op, t), k0);
            if (PROF && tid == 0) p_tile += gtime() - a0;
            const u64 q0 = pstamp();
            const float* pbv = ysb + NCW * 16 * ysi;
            ysi ^= 1;
            const int ew = ROT ? (ntile++ % NCW) : 0;  // the epilogue's warp
            auto Y = [&](int r) -> float {  // row r of the tile: the warps' partials (MMA) or the row sum
                if (!MMA) return pbv[r];
                float v = 0.f;
#pragma unroll
                for (int w = 0; w < NCW; w++) v += pbv[w * 16 + r];
                return v;
            };  // the next tile writes the other half; its barrier orders this epilogue's reads before the one after
            // Epilogue over the 16 rows, by lanes < 16 of warp ew.
            if (warp == ew && lane < 16) {
                const int r = lane;
                if (op == OP_QKV) {
                    if (l == 0 && t < H / 16) a.h[t * 16 + r] = __half2float(erow[t * 16 + r]);  // h = the embedding row
                    if (t < T_QKV - 16) {                                                          // q or k: RoPE pairs (r, r + 8)
                        const bool isq = t < NH * 4;
                        const int hh = isq ? t / 4 : (t - NH * 4) / 4, d0 = (t % 4) * 8;
                        if (r < 8) {
                            const int d = d0 + r;
                            float sn, cs;
                            sincosf((float)a.pos * rope_inv(d), &sn, &cs);
                            const float x1 = Y(r), x2 = Y(r + 8);
                            const float y1 = x1 * cs - x2 * sn, y2 = x2 * cs + x1 * sn;
                            if (isq) {
                                a.q[hh * 64 + d] = y1 * 0.125f;
                                a.q[hh * 64 + d + 32] = y2 * 0.125f;
                            } else {
                                h16* kr = a.kc + ((size_t)(l * NKV + hh) * MAXP + a.pos) * HD;
                                kr[d] = __float2half(y1);
                                kr[d + 32] = __float2half(y2);
                            }
                        }
                    } else {
                        const int vt = t - (T_QKV - 16), vh = vt / 4, d = (vt % 4) * 16 + r;
                        a.vc[((size_t)(l * NKV + vh) * MAXP + a.pos) * HD + d] = __float2half(Y(r));
                    }
                } else if (op == OP_O) {
                    red_add(a.h + (FG ? t % (H / 16) : t) * 16 + r, Y(r));
                } else if (op == OP_GU) {
                    if (r < 8) {
                        const float gg = Y(r), uu = Y(r + 8);
                        a.act[t * 8 + r] = gg / (1.f + __expf(-gg)) * uu;
                    }
                } else if (op == OP_DN) {
                    red_add(a.h + (FG ? t % (H / 16) : t >> 1) * 16 + r, Y(r));
                } else {  // head
                    const int row = t * 16 + r;
                    const float yv = Y(r);
                    a.logits[row] = yv;
                    u64 key = argkey(yv, row);
#pragma unroll
                    for (int o = 8; o; o >>= 1) {
                        const u64 k2 = __shfl_xor_sync(0x0000ffffu, key, o);
                        key = k2 > key ? k2 : key;
                    }
                    if (r == 0) atomicMax(a.best + ep % 3, key);
                }
            }
            if (PROF && tid == 0) p_epi += gtime() - q0;
        }
        if (op != OP_ATT && op != OP_HEAD) {
            const u64 g0 = pstamp();
            cbar();  // every epilogue's writes before thread 0's fence (cumulative) and count
            if (tid == 0) {
                count_add(ctr + l * NCTR + op, done);
                if (FG && op == OP_GU) {  // the column ranges' counts, after a fence (SIG 0: the one above)
                    if (SIG) rel_fence();
#pragma unroll
                    for (int q = 0; q < DN_NR; q++)
                        if (gcnt[q]) atomicAdd(ctr + l * NCTR + 5 + q, gcnt[q]);
                }
                if (PROF) p_sig += gtime() - g0;
            }
        }
    }
    if (PROF && tid == 0) {
        u64* pp = a.prof + blockIdx.x * NPROF;
        atomicAdd(pp + 0, gtime() - pt0);
        atomicAdd(pp + 1, p_spin);
        atomicAdd(pp + 2, p_stage);
        atomicAdd(pp + 3, p_ring);
        atomicAdd(pp + 4, p_epi);
        atomicAdd(pp + 7, p_att);
        atomicAdd(pp + 8, p_sig);
        atomicAdd(pp + 9, p_tile);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Reference: one plain kernel per op, f32, row-major weights.
__device__ __forceinline__ float hashu(u64 seed, u64 i) {  // uniform [-1, 1)
    u64 x = seed * 0x9E3779B97F4A7C15ull + i * 0xD1B54A32D192ED03ull;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 32;
    return (float)(x & 0xffffff) / 8388608.f - 1.f;
}
__global__ void init_h16(h16* p, size_t n, u64 seed, float scale) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = __float2half(hashu(seed, i) * scale);
}
__global__ void init_f32(float* p, size_t n, u64 seed, float scale, float off) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = off + hashu(seed, i) * scale;
}
// Pack (N, K) row-major into chunks: chunk (t, c) = 16 rows (rowmap) x 512 k. kind 0: plain rows; 1: qkv (RoPE pairs
// in a tile); 2: gate/up interleave (src = gate rows, src2 = up rows).
__device__ __forceinline__ int qkv_row(int t, int r) {
    if (t < T_QKV - 16) {
        const bool isq = t < NH * 4;
        const int hh = isq ? t / 4 : (t - NH * 4) / 4, d0 = (t % 4) * 8, dim = r < 8 ? d0 + r : d0 + 32 + (r - 8);
        return (isq ? 0 : H) + hh * 64 + dim;
    }
    return H + NKV * 64 + (t - (T_QKV - 16)) * 16 + r;
}
__global__ void pack(const h16* src, const h16* src2, h16* dst, int N, int K, int kind) {
    const int KC = K / CKK;
    const size_t n8 = (size_t)N * K / 8;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n8; i += (size_t)gridDim.x * blockDim.x) {
        const size_t o = i * 8;
        const size_t tc = o / CHH;
        const int c = (int)(tc % KC), t = (int)(tc / KC);
        auto src_of = [&](int r, int k) -> h16 {
            const h16* s;
            int row;
            if (kind == 1) s = src, row = qkv_row(t, r);
            else if (kind == 2) s = r < 8 ? src : src2, row = t * 8 + (r & 7);
            else s = src, row = t * 16 + r;
            return s[(size_t)row * K + k];
        };
        if (MMA) {  // [k tile 32][lane 32][a0..a3 as 8 halves]
            const int f = (int)((o % CHH) / 8), kt = f / 32, ln = f % 32, g = ln >> 2, t4 = ln & 3;
            const int kb = c * CKK + kt * 16 + 2 * t4;
            const int rr[8] = {g, g, g + 8, g + 8, g, g, g + 8, g + 8};
            const int kk[8] = {kb, kb + 1, kb, kb + 1, kb + 8, kb + 9, kb + 8, kb + 9};
            for (int j = 0; j < 8; j++) dst[o + j] = src_of(rr[j], kk[j]);
        } else {
            const int kk = (int)(o % CKK), r = (int)((o / CKK) % 16);
            for (int j = 0; j < 8; j++) dst[o + j] = src_of(r, c * CKK + kk + j);
        }
    }
}
__global__ void ref_embed(const h16* emb, int tok, float* h) {
    for (int i = threadIdx.x; i < H; i += blockDim.x) h[i] = __half2float(emb[(size_t)tok * H + i]);
}
__global__ void ref_norm(const float* v, const float* w, float* x) {
    __shared__ float red[32];
    float ss = 0.f;
    for (int i = threadIdx.x; i < H; i += blockDim.x) ss += v[i] * v[i];
    ss = warp_sum(ss);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = ss;
    __syncthreads();
    float tot = 0.f;
    for (int i = 0; i < (int)blockDim.x / 32; i++) tot += red[i];
    const float rs = rsqrtf(tot / H + 1e-5f);
    for (int i = threadIdx.x; i < H; i += blockDim.x) x[i] = v[i] * rs * w[i];
}
__global__ void ref_mv(const h16* W, const float* x, float* y, int N, int K) {  // warp a row
    const int row = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= N) return;
    float s = 0.f;
    for (int k = lane; k < K; k += 32) s += __half2float(W[(size_t)row * K + k]) * x[k];
    s = warp_sum(s);
    if (lane == 0) y[row] = s;
}
__global__ void ref_qkv_post(const float* y, float* q, h16* kc, h16* vc, int l, int pos) {
    for (int i = threadIdx.x; i < (NH + NKV) * 32; i += blockDim.x) {  // pairs (d, d + 32) of q and k heads
        const int hh = i / 32, d = i % 32;
        const float inv = powf(10000.f, -(2.f * d) / HD);
        const float ang = (float)pos * inv;
        const float cs = cosf(ang), sn = sinf(ang);
        const int base = hh < NH ? hh * 64 : H + (hh - NH) * 64;
        const float x1 = y[base + d], x2 = y[base + d + 32];
        const float y1 = x1 * cs - x2 * sn, y2 = x2 * cs + x1 * sn;
        if (hh < NH) q[hh * 64 + d] = y1 * 0.125f, q[hh * 64 + d + 32] = y2 * 0.125f;
        else {
            h16* kr = kc + ((size_t)(l * NKV + hh - NH) * MAXP + pos) * HD;
            kr[d] = __float2half(y1), kr[d + 32] = __float2half(y2);
        }
    }
    for (int i = threadIdx.x; i < NKV * 64; i += blockDim.x)
        vc[((size_t)(l * NKV + i / 64) * MAXP + pos) * HD + i % 64] = __float2half(y[H + NKV * 64 + i]);
}
__global__ void ref_attn(const float* q, const h16* kc, const h16* vc, float* out, int l, int L) {  // block a head
    __shared__ float s[MAXP];
    __shared__ float red[32];
    const int hh = blockIdx.x, g = hh / (NH / NKV);
    const h16* kb = kc + (size_t)(l * NKV + g) * MAXP * HD;
    const h16* vb = vc + (size_t)(l * NKV + g) * MAXP * HD;
    float mx = -1e30f;
    for (int p = threadIdx.x; p < L; p += blockDim.x) {
        float d = 0.f;
        for (int j = 0; j < HD; j++) d += q[hh * 64 + j] * __half2float(kb[(size_t)p * HD + j]);
        s[p] = d;
        mx = fmaxf(mx, d);
    }
    mx = warp_max(mx);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = mx;
    __syncthreads();
    mx = -1e30f;
    for (int i = 0; i < (int)blockDim.x / 32; i++) mx = fmaxf(mx, red[i]);
    __syncthreads();
    float sum = 0.f;
    for (int p = threadIdx.x; p < L; p += blockDim.x) {
        s[p] = expf(s[p] - mx);
        sum += s[p];
    }
    sum = warp_sum(sum);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = sum;
    __syncthreads();
    sum = 0.f;
    for (int i = 0; i < (int)blockDim.x / 32; i++) sum += red[i];
    for (int d = threadIdx.x; d < HD; d += blockDim.x) {
        float o = 0.f;
        for (int p = 0; p < L; p++) o += s[p] * __half2float(vb[(size_t)p * HD + d]);
        out[hh * 64 + d] = o / sum;
    }
}
__global__ void ref_add(float* h, const float* y, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) h[i] += y[i];
}
__global__ void ref_swiglu(const float* g, const float* u, float* act) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < INTER; i += gridDim.x * blockDim.x) act[i] = g[i] / (1.f + expf(-g[i])) * u[i];
}

struct Model {
    h16 *qkv, *o, *gate, *up, *down, *head, *emb;      // row-major, per layer contiguous
    h16 *pqkv, *po, *pgu, *pdn, *phead;                // packed
    float *nattn, *nffn, *nfinal;
};

static std::vector<float> ref_step(const Model& m, h16* kc, h16* vc, int tok, int pos, float* buf) {
    float *h = buf, *x = h + H, *y = x + INTER, *q = y + QKVN + VOC, *ao = q + H, *g = ao + H, *u = g + INTER, *act = u + INTER, *lg = act + INTER;
    ref_embed<<<1, 256>>>(m.emb, tok, h);
    for (int l = 0; l < NL; l++) {
        ref_norm<<<1, 1024>>>(h, m.nattn + l * H, x);
        ref_mv<<<QKVN / 8, 256>>>(m.qkv + (size_t)l * QKVN * H, x, y, QKVN, H);
        ref_qkv_post<<<1, 256>>>(y, q, kc, vc, l, pos);
        ref_attn<<<NH, 256>>>(q, kc, vc, ao, l, pos + 1);
        ref_mv<<<H / 8, 256>>>(m.o + (size_t)l * H * H, ao, y, H, H);
        ref_add<<<8, 256>>>(h, y, H);
        ref_norm<<<1, 1024>>>(h, m.nffn + l * H, x);
        ref_mv<<<INTER / 8, 256>>>(m.gate + (size_t)l * INTER * H, x, g, INTER, H);
        ref_mv<<<INTER / 8, 256>>>(m.up + (size_t)l * INTER * H, x, u, INTER, H);
        ref_swiglu<<<22, 256>>>(g, u, act);
        ref_mv<<<H / 8, 256>>>(m.down + (size_t)l * H * INTER, act, y, H, INTER);
        ref_add<<<8, 256>>>(h, y, H);
    }
    ref_norm<<<1, 1024>>>(h, m.nfinal, x);
    ref_mv<<<VOC / 8, 256>>>(m.head, x, lg, VOC, H);
    CK(cudaGetLastError());
    std::vector<float> out(VOC);
    CK(cudaMemcpy(out.data(), lg, VOC * 4, cudaMemcpyDeviceToHost));
    return out;
}
static int argmax(const std::vector<float>& v) { return (int)(std::max_element(v.begin(), v.end()) - v.begin()); }

// Schedule: per block, entries in step order; each entry to the least-loaded block (bytes, ties by index).
static void build_sched(int G, std::vector<int>& sched, std::vector<int>& nsched) {
    sched.assign((size_t)G * MAXE, 0);
    nsched.assign(G, 0);
    std::vector<double> load(G, 0.0);
    auto put = [&](int op, int l, int t, double bytes) {
        int b = 0;
        for (int i = 1; i < G; i++)
            if (load[i] < load[b]) b = i;
        load[b] += bytes;
        if (nsched[b] >= MAXE) {
            fprintf(stderr, "schedule: block %d over %d entries\n", b, MAXE);
            exit(1);
        }
        sched[(size_t)b * MAXE + nsched[b]++] = op | (l << 3) | (t << 8);
    };
    const double ATT_COST = getenv("MK_ATT_COST") ? atof(getenv("MK_ATT_COST")) : 32768.0;
    for (int l = 0; l < NL; l++) {
        for (int t = 0; t < T_QKV; t++) put(OP_QKV, l, t, 4.0 * CHB);
        for (int t = 0; t < T_ATT; t++) put(OP_ATT, l, t, ATT_COST);
        for (int t = 0; t < T_O_E; t++) put(OP_O, l, t, (FG ? 1.0 : 4.0) * CHB);
        for (int t = 0; t < T_GU; t++) put(OP_GU, l, t, 4.0 * CHB);
        for (int t = 0; t < T_DN_E; t++)
            put(OP_DN, l, t, (double)(FG ? dn_nch(t / (H / 16)) : ((t & 1) ? KC_I - DN_C0 : DN_C0)) * CHB);
    }
    for (int t = 0; t < T_HEAD; t++) put(OP_HEAD, 0, t, 4.0 * CHB);
    double mx = 0, sum = 0;
    int me = 0;
    for (int b = 0; b < G; b++) mx = std::max(mx, load[b]), sum += load[b], me = std::max(me, nsched[b]);
    printf("schedule: %d blocks, max %.1f KB vs mean %.1f KB a block, max %d entries\n", G, mx / 1024, sum / G / 1024, me);
}

int main() {
    int dev = 0;
    CK(cudaSetDevice(dev));
    cudaDeviceProp pr;
    CK(cudaGetDeviceProperties(&pr, dev));
    const int G = pr.multiProcessorCount;
    printf("device %s, %d SMs, L2 %d MB, smem/block optin %zu; SSCHED %d FG %d PFD %d NOMMA %d SIG %d MMA %d NCW %d NSLOT %d ACH %d NOWAIT %d, smem %d\n", pr.name, G,
           pr.l2CacheSize >> 20, pr.sharedMemPerBlockOptin, SSCHED, FG, PFD, NOMMA, SIG, MMA, NCW, NSLOT, ACH, NOWAIT, SMEM);
    CK(cudaFuncSetAttribute(mk_step, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM));
    int occ = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, mk_step, NTH, SMEM));
    {  // the attention item's shared memory at the largest position timed (639) must fit the x area
        const int CLm = (640 + ACH - 1) / ACH;
        const int need = AKV ? (512 + 64 + 8 * CLm) * 4 : 2048 + 132 * ((CLm + 3) & ~3) + 128 * CLm + 32 * CLm;
        if (need > XAREA || (MMA ? INTER * 2 : INTER * 4) > XAREA) {
            fprintf(stderr, "XAREA %d too small (attention %d, x %d)\n", XAREA, need, MMA ? INTER * 2 : INTER * 4);
            return 1;
        }
    }
    if (occ < 1) {
        fprintf(stderr, "mk_step does not fit an SM\n");
        return 1;
    }
    Model m;
    const size_t nq = (size_t)NL * QKVN * H, no = (size_t)NL * H * H, ng = (size_t)NL * INTER * H, nh = (size_t)VOC * H;
    CK(cudaMalloc(&m.qkv, nq * 2));
    CK(cudaMalloc(&m.o, no * 2));
    CK(cudaMalloc(&m.gate, ng * 2));
    CK(cudaMalloc(&m.up, ng * 2));
    CK(cudaMalloc(&m.down, ng * 2));
    CK(cudaMalloc(&m.head, nh * 2));
    CK(cudaMalloc(&m.emb, nh * 2));
    CK(cudaMalloc(&m.pqkv, nq * 2));
    CK(cudaMalloc(&m.po, no * 2));
    CK(cudaMalloc(&m.pgu, 2 * ng * 2));
    CK(cudaMalloc(&m.pdn, ng * 2));
    CK(cudaMalloc(&m.phead, nh * 2));
    CK(cudaMalloc(&m.nattn, NL * H * 4));
    CK(cudaMalloc(&m.nffn, NL * H * 4));
    CK(cudaMalloc(&m.nfinal, H * 4));
    init_h16<<<1024, 256>>>(m.qkv, nq, 1, sqrtf(3.f / H));
    init_h16<<<1024, 256>>>(m.o, no, 2, sqrtf(3.f / H));
    init_h16<<<1024, 256>>>(m.gate, ng, 3, sqrtf(3.f / H));
    init_h16<<<1024, 256>>>(m.up, ng, 4, sqrtf(3.f / H));
    init_h16<<<1024, 256>>>(m.down, ng, 5, sqrtf(3.f / INTER));
    init_h16<<<1024, 256>>>(m.head, nh, 6, sqrtf(3.f / H));
    init_h16<<<1024, 256>>>(m.emb, nh, 7, 1.f);
    init_f32<<<64, 256>>>(m.nattn, NL * H, 8, 0.1f, 1.f);
    init_f32<<<64, 256>>>(m.nffn, NL * H, 9, 0.1f, 1.f);
    init_f32<<<64, 256>>>(m.nfinal, H, 10, 0.1f, 1.f);
    for (int l = 0; l < NL; l++) {
        pack<<<1024, 256>>>(m.qkv + (size_t)l * QKVN * H, nullptr, m.pqkv + (size_t)l * QKVN * H, QKVN, H, 1);
        pack<<<1024, 256>>>(m.o + (size_t)l * H * H, nullptr, m.po + (size_t)l * H * H, H, H, 0);
        pack<<<1024, 256>>>(m.gate + (size_t)l * INTER * H, m.up + (size_t)l * INTER * H, m.pgu + (size_t)l * 2 * INTER * H, 2 * INTER, H, 2);
        pack<<<1024, 256>>>(m.down + (size_t)l * H * INTER, nullptr, m.pdn + (size_t)l * H * INTER, H, INTER, 0);
    }
    pack<<<1024, 256>>>(m.head, nullptr, m.phead, VOC, H, 0);
    CK(cudaGetLastError());
    const size_t nkv = (size_t)NL * NKV * MAXP * HD;
    h16 *kc0, *vc0, *kc1, *vc1, *kc2, *vc2;
    CK(cudaMalloc(&kc0, nkv * 2));
    CK(cudaMalloc(&vc0, nkv * 2));
    CK(cudaMalloc(&kc1, nkv * 2));
    CK(cudaMalloc(&vc1, nkv * 2));
    CK(cudaMalloc(&kc2, nkv * 2));
    CK(cudaMalloc(&vc2, nkv * 2));
    init_h16<<<1024, 256>>>(kc0, nkv, 11, 1.f);  // positions < 512 stand for the prompt; later ones are overwritten
    init_h16<<<1024, 256>>>(vc0, nkv, 12, 1.f);
    CK(cudaMemcpy(kc1, kc0, nkv * 2, cudaMemcpyDeviceToDevice));
    CK(cudaMemcpy(vc1, vc0, nkv * 2, cudaMemcpyDeviceToDevice));
    CK(cudaMemcpy(kc2, kc0, nkv * 2, cudaMemcpyDeviceToDevice));
    CK(cudaMemcpy(vc2, vc0, nkv * 2, cudaMemcpyDeviceToDevice));
    float* rbuf;
    CK(cudaMalloc(&rbuf, (size_t)(H * 4 + INTER * 5 + QKVN + VOC * 2) * 4));
    // Megakernel buffers.
    Args a{};
    a.wqkv = m.pqkv, a.wo = m.po, a.wgu = m.pgu, a.wdn = m.pdn, a.whead = m.phead, a.emb = m.emb;
    a.nattn = m.nattn, a.nffn = m.nffn, a.nfinal = m.nfinal, a.kc = kc1, a.vc = vc1;
    CK(cudaMalloc(&a.h, H * 4));
    CK(cudaMalloc(&a.q, H * 4));
    CK(cudaMalloc(&a.part, (size_t)NH * ACH * 68 * 4));
    CK(cudaMalloc(&a.ao, H * 4));
    CK(cudaMalloc(&a.act, INTER * 4));
    CK(cudaMalloc(&a.logits, VOC * 4));
    CK(cudaMalloc(&a.ctr, (NL * NCTR + 2 * NL * NKV) * 4));
    CK(cudaMemset(a.ctr, 0, (NL * NCTR + 2 * NL * NKV) * 4));
    CK(cudaMalloc(&a.best, 3 * 8));
    CK(cudaMemset(a.best, 0, 3 * 8));
    CK(cudaMalloc(&a.err, 4));
    CK(cudaMemset(a.err, 0, 4));
    CK(cudaMalloc(&a.prof, (size_t)G * NPROF * 8));
    std::vector<int> sched, nsched;
    build_sched(G, sched, nsched);
    int *dsched, *dns;
    CK(cudaMalloc(&dsched, sched.size() * 4));
    CK(cudaMalloc(&dns, G * 4));
    CK(cudaMemcpy(dsched, sched.data(), sched.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dns, nsched.data(), G * 4, cudaMemcpyHostToDevice));
    a.sched = dsched, a.nsched = dns;
    CK(cudaDeviceSynchronize());
    int epoch = 0;
    auto launch = [&](int pos, int tok, cudaStream_t st) {
        a.pos = pos, a.epoch = ++epoch, a.tok = tok;
        mk_step<<<G, NTH, SMEM, st>>>(a);
    };
    auto check_err = [&]() {
        cudaError_t e = cudaDeviceSynchronize();
        int err = 0;
        cudaMemcpy(&err, a.err, 4, cudaMemcpyDeviceToHost);
        if (e != cudaSuccess || err) {
            fprintf(stderr, "mk_step failed: %s, wait code %d\n", cudaGetErrorString(e), err);
            exit(1);
        }
    };
    // 1. One step against the reference: logits.
    const int tok0 = 123, P0 = 512;
    std::vector<float> ref = ref_step(m, kc0, vc0, tok0, P0, rbuf);
    launch(P0, tok0, 0);
    check_err();
    std::vector<float> got(VOC);
    CK(cudaMemcpy(got.data(), a.logits, VOC * 4, cudaMemcpyDeviceToHost));
    double md = 0, mr = 0;
    for (int i = 0; i < VOC; i++) md = std::max(md, (double)fabsf(got[i] - ref[i])), mr = std::max(mr, (double)fabsf(ref[i]));
    u64 key = 0;
    CK(cudaMemcpy(&key, a.best + epoch % 3, 8, cudaMemcpyDeviceToHost));
    const int mk_arg = (int)(0xffffffffu - (u32)(key & 0xffffffffu));
    printf("step 1 logits: max |mk - ref| %.3e of max |ref| %.3f (rel %.2e); argmax mk %d (key) %d (logits) ref %d\n", md, mr,
           md / mr, mk_arg, argmax(got), argmax(ref));
    // 2. Greedy tokens: 16 steps each (the megakernel takes its token from its own argmax on the GPU).
    int rt = argmax(ref), same = 0, first_diff = -1;
    std::vector<int> rtoks, mtoks;
    for (int s = 1; s <= 16; s++) {
        std::vector<float> r2 = ref_step(m, kc0, vc0, rt, P0 + s, rbuf);
        launch(P0 + s, -1, 0);
        check_err();
        CK(cudaMemcpy(&key, a.best + epoch % 3, 8, cudaMemcpyDeviceToHost));
        const int mt = (int)(0xffffffffu - (u32)(key & 0xffffffffu));
        rtoks.push_back(rt);
        rt = argmax(r2);
        mtoks.push_back(mt);
        if (mt == rt) same++;
        else if (first_diff < 0) first_diff = s;
        if (mt != rt) break;
    }
    printf("greedy: %d / 16 steps equal (first difference at step %d); ref tokens:", same, first_diff);
    for (int t : rtoks) printf(" %d", t);
    printf("\n");
    // 3. Timing: graphs of 128 steps, positions 512 .. 639, on the third KV copy.
    a.kc = kc2, a.vc = vc2;
    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    std::vector<double> per;
    for (int rep = 0; rep < 4; rep++) {
        cudaGraph_t gr;
        cudaGraphExec_t ge;
        CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
        for (int s = 0; s < 128; s++) launch(512 + s, s == 0 ? tok0 : -1, st);
        CK(cudaStreamEndCapture(st, &gr));
        CK(cudaGraphInstantiate(&ge, gr, 0));
        cudaEvent_t e0, e1;
        CK(cudaEventCreate(&e0));
        CK(cudaEventCreate(&e1));
        CK(cudaEventRecord(e0, st));
        CK(cudaGraphLaunch(ge, st));
        CK(cudaEventRecord(e1, st));
        CK(cudaStreamSynchronize(st));
        check_err();
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        per.push_back(ms * 1000.0 / 128);
        printf("rep %d: 128 steps in %.3f ms: %.1f us a step, %.0f tok/s\n", rep, ms, ms * 1000.0 / 128, 128.0 / (ms / 1000.0));
        CK(cudaGraphExecDestroy(ge));
        CK(cudaGraphDestroy(gr));
    }
    if (PROF) {  // one more graph of 128 steps with the sums zeroed: per step, mean / max over blocks
        CK(cudaMemset(a.prof, 0, (size_t)G * NPROF * 8));
        cudaGraph_t gr;
        cudaGraphExec_t ge;
        CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
        for (int s = 0; s < 128; s++) launch(512 + s, s == 0 ? tok0 : -1, st);
        CK(cudaStreamEndCapture(st, &gr));
        CK(cudaGraphInstantiate(&ge, gr, 0));
        CK(cudaGraphLaunch(ge, st));
        CK(cudaStreamSynchronize(st));
        check_err();
        std::vector<u64> pv((size_t)G * NPROF);
        CK(cudaMemcpy(pv.data(), a.prof, pv.size() * 8, cudaMemcpyDeviceToHost));
        const char* nm[10] = {"consumer total", "spin (input wait)", "stage (x)", "ring wait (chunk not in)", "tile epilogues",
                              "loader total", "loader empty wait", "attention items", "run signal (bar+fence+add)",
                              "tiles (incl. ring wait)"};
        for (int i = 0; i < 10; i++) {
            double sum = 0, mx = 0, mn = 1e30;
            for (int b = 0; b < G; b++) {
                const double v = pv[(size_t)b * NPROF + i] / 128.0 / 1000.0;
                sum += v, mx = std::max(mx, v), mn = std::min(mn, v);
            }
            printf("prof %-26s us a step: mean %7.1f  min %7.1f  max %7.1f\n", nm[i], sum / G, mn, mx);
        }
    }
    std::sort(per.begin() + 1, per.end());
    const double med = per[2];
    const double bytes = 2.0 * (nq + no + 2 * ng + ng + nh);
    printf("median of reps 1-3: %.1f us a step = %.0f tok/s; weights %.3f GB a step -> %.0f GB/s\n", med, 1e6 / med, bytes / 1e9,
           bytes / (med * 1e-6) / 1e9);
    return 0;
}
