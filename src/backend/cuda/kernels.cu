// trtforge CUDA kernels. Compiled at run time by NVRTC with model dimensions prepended as #defines
// (see kernels.rs: HIDDEN, INTER, QDIM, KVDIM, NH, NKV, HD, VOCAB, EPS, MAX_SEQ, NSPLIT, ACT_F32,
// KV_F32, I4_GROUP, GEMV_INSTANCES). No CUDA headers: f16 is handled as raw bits through PTX, so the
// source compiles with NVRTC alone on any architecture (generic CUDA C; no sm_90-only instructions).
//
// Shapes in comments: T = rows (tokens) of the current pass, B = sequences of the pass.

#define INFINITY __int_as_float(0x7f800000)
typedef unsigned short h16;

// Cache length and flash-decoding splits are run-time constants (set once per engine), so one
// compiled module serves every cache size.
__constant__ int c_max_seq;
__constant__ int c_nsplit;
#define MAX_SEQ c_max_seq
#define NSPLIT c_nsplit

// Programmatic dependent launch (sm_90): kernels are launched so that they may start while the
// previous kernel finishes. Each kernel calls pdl_wait() before touching anything a previous kernel
// wrote (or reads), and lets its own dependents launch early with pdl_trigger(). No-ops elsewhere.
__device__ __forceinline__ void pdl_wait() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;");
#endif
}
#define PDL_ENTRY() do { pdl_wait(); pdl_trigger(); } while (0)

// ---------------------------------------------------------------------------------------------
// Decode-step timeline (issue #11, session 6; TRTFORGE_TIMELINE=1): with c_tl set, thread 0 of every
// block of the instrumented kernels (tc_*, tcm_*, attn_decode_tc/_cl, argmax_rows) stamps %globaltimer
// at entry, after griddepcontrol.wait, at the PDL trigger and at exit into the record of its launch:
// record %gridid mod TL_IDS (launches of one replay have consecutive grid ids; the host checks that
// each record holds one id), each field on its own 128-byte line, min values stored as ~t under
// atomicMax (fire-and-forget reductions; the buffer starts zeroed). c_tl null (the default): one
// constant load and a branch per block and stamp.
// c_trig[kind] (kind = TL_QKV ..): when that kernel kind triggers its dependents
// (griddepcontrol.launch_dependents): 0 only after its main loop (the session-5 behaviour), 1 also at
// entry before griddepcontrol.wait, 2 also right after the wait; only in launches of at most
// c_trig_rows rows. Set per kind from TRTFORGE_BS1 / the engine's default (mod.rs, `bs1_default`).
// Session 7: c_trig[kind] applies to launches of one row, c_trig[8 + kind] to 2..c_trig_rows rows
// (the host sets c_trig_rows = GEMV_MAX_T); c_scpre is the largest row count that loads its scales
// with the weights (0: none).
// TL_ON (kernels.rs: 1 only with TRTFORGE_TIMELINE=1): without it the stamps compile to nothing.
#ifndef TL_ON
#define TL_ON 0
#endif
__constant__ unsigned long long* c_tl;
__constant__ int c_trig[16];
__constant__ int c_trig_rows;
__constant__ int c_scpre;  // tc_core: scales loaded with the weights at <= c_scpre rows (TRTFORGE_BS1=scpre)
// c_y16 (session 7, branch ttft7): the qkv and gate/up sums of the GEMV / tensor-core GEMV paths are
// rounded to f16 before their epilogue (RoPE + KV append, SwiGLU), the same rounding point as the
// GEMM path's f16 outputs (TRTFORGE_PREFILL_F16Y): every path (one-shot vs chunked prefill, static vs
// paged, decode rows alone vs in a mixed pass) then rounds where the others do. Set by the host.
__constant__ int c_y16;
__device__ __forceinline__ int trig_mode(int kind, int rows) {
    return rows == 1 ? c_trig[kind] : rows <= c_trig_rows ? c_trig[8 + kind] : 0;
}
#define TL_HDR 8
#define TL_IDS 512
#define TL_REC 10  // kind | gid << 8, ~entry min, entry max, ~wait min, wait max, ~trig min, trig max, ~exit min, exit max, blocks
#define TL_LINE 16  // u64 per field (128 bytes)
#define TL_QKV 1
#define TL_ATTN 2
#define TL_O 3
#define TL_GATEUP 4
#define TL_DOWN 5
#define TL_HEAD 6
#define TL_ARGMAX 7
__device__ __forceinline__ unsigned long long tl_now() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
    return t;
}
// Per block: the record's address (thread 0 only).
__device__ __forceinline__ unsigned long long* tl_sh() {
    __shared__ unsigned long long s[1];
    return s;
}
__device__ __forceinline__ void tl_enter(int kind) {
    if (!TL_ON || threadIdx.x != 0) return;
    unsigned long long* tl = c_tl;
    if (tl == nullptr) return;
    const unsigned long long t = tl_now();
    unsigned long long gid;
    asm volatile("mov.u64 %0, %gridid;" : "=l"(gid));
    unsigned long long* r = tl + TL_HDR + (size_t)(gid & (TL_IDS - 1)) * TL_REC * TL_LINE;
    r[0] = (unsigned long long)kind | (gid << 8);
    atomicMax(r + 1 * TL_LINE, ~t);
    atomicMax(r + 2 * TL_LINE, t);
    atomicAdd(r + 9 * TL_LINE, 1ull);
    tl_sh()[0] = (unsigned long long)r;
}
__device__ __forceinline__ void tl_stamp(int f) {
    if (!TL_ON || threadIdx.x != 0 || c_tl == nullptr) return;
    unsigned long long* r = (unsigned long long*)tl_sh()[0];
    const unsigned long long t = tl_now();
    atomicMax(r + f * TL_LINE, ~t);
    atomicMax(r + (f + 1) * TL_LINE, t);
}
// Session 21: the per-tile trace of the tensor-core GEMVs (TL_ON builds with c_tt set: TRTFORGE_TIMELINE_TILES=1,
// timeline.rs `tt_*`). Thread 0 of block b < TT_BLOCKS of a launch writes %globaltimer into slot (%gridid mod
// TT_SLOTS), record b: TT_WAIT0 before griddepcontrol.wait, TT_WAIT1 after it, TT_STAGED after the prologue's barrier,
// per tile i < TT_TILES TT_T0 + 2i after the barrier that publishes the warps' partial sums (every warp's weights
// arrived and its mmas done) and TT_T0 + 2i + 1 after the one that ends the epilogue, TT_END at the end; TT_SMID the
// SM, TT_NT the tiles walked. The slot header: gid, kind, grid.
__constant__ unsigned long long* c_tt;
#define TT_SLOTS 512
#define TT_BLOCKS 528
#define TT_F 16
#define TT_HDR 8
#define TT_WAIT0 0
#define TT_WAIT1 1
#define TT_STAGED 2
#define TT_T0 3
#define TT_TILES 5
#define TT_END 13
#define TT_SMID 14
#define TT_NT 15
__device__ __forceinline__ unsigned long long* tt_rec() {
    if (!TL_ON || threadIdx.x != 0 || c_tt == nullptr || blockIdx.x >= TT_BLOCKS) return nullptr;
    unsigned long long gid;
    asm volatile("mov.u64 %0, %gridid;" : "=l"(gid));
    return c_tt + (size_t)(gid % TT_SLOTS) * (TT_HDR + TT_BLOCKS * TT_F) + TT_HDR + (size_t)blockIdx.x * TT_F;
}
__device__ __forceinline__ void tt_put(int f, int kind) {
    unsigned long long* r = tt_rec();
    if (r == nullptr || f < 0 || f >= TT_F) return;
    if (f == TT_WAIT0) {
        unsigned long long gid;
        unsigned smid;
        asm volatile("mov.u64 %0, %gridid;" : "=l"(gid));
        asm volatile("mov.u32 %0, %smid;" : "=r"(smid));
        unsigned long long* h = r - TT_HDR - (size_t)blockIdx.x * TT_F;
        if (blockIdx.x == 0) {
            h[0] = gid;
            h[1] = (unsigned long long)kind;
            h[2] = gridDim.x;
        }
        r[TT_SMID] = smid;
    }
    r[f] = tl_now();
}
__device__ __forceinline__ void tt_tiles(int n) {
    unsigned long long* r = tt_rec();
    if (r != nullptr) r[TT_NT] = (unsigned long long)n;
}
// Session 24: sub-phase stamps (TL_ON builds with the tile trace only), written by thread 0 of the blocks with
// blockIdx.y == blockIdx.z == 0: the one-row o GEMV's combine prologue stamps its steps into the t1a..t2b fields its
// one tile leaves unused; the decode attention (acl_body: attn_decode_cg / cl) stamps wait / q / tiles / records in
// the same layout with kind TL_ATTN (its splits of kv head 0, row 0).
__device__ __forceinline__ void tt_sub(int f, int kind) {
    if (TL_ON && blockIdx.y == 0 && blockIdx.z == 0) tt_put(f, kind);
}
__device__ __forceinline__ void tl_waited() { tl_stamp(3); }
__device__ __forceinline__ void tl_trig() { tl_stamp(5); }
__device__ __forceinline__ void tl_exit() { tl_stamp(7); }
typedef unsigned int u32;

// cp.async (sm_80+) and cluster barriers (sm_90), shared by the kernels that stream through
// shared-memory rings (tcg3, attn_decode_cl/cl8). 16-byte copy, n < 16 bytes zero-filled.
__device__ __forceinline__ void cp_async16(u32 dst, const void* src, int n) {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(n) : "memory");
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}
// Waits until at most n (0..7, run time) of this thread's newest cp.async groups are pending.
__device__ __forceinline__ void cp_async_wait(int n) {
#if __CUDA_ARCH__ >= 800
    switch (n) {
    case 0: asm volatile("cp.async.wait_group 0;" ::: "memory"); break;
    case 1: asm volatile("cp.async.wait_group 1;" ::: "memory"); break;
    case 2: asm volatile("cp.async.wait_group 2;" ::: "memory"); break;
    case 3: asm volatile("cp.async.wait_group 3;" ::: "memory"); break;
    case 4: asm volatile("cp.async.wait_group 4;" ::: "memory"); break;
    case 5: asm volatile("cp.async.wait_group 5;" ::: "memory"); break;
    case 6: asm volatile("cp.async.wait_group 6;" ::: "memory"); break;
    default: asm volatile("cp.async.wait_group 7;" ::: "memory"); break;
    }
#endif
}
__device__ __forceinline__ void cluster_sync_all() {
#if __CUDA_ARCH__ >= 900
    asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
#else
    __trap();  // the host launches clusters on sm_90+ only
#endif
}

// ---------------------------------------------------------------------------------------------
// KV-cache addressing: every kernel that reads or writes the cache goes through kv_off, the element
// offset of (slot, kv head, position) in one layer's K (or V) cache; HD elements follow it.
//  - static build (PAGED_KV 0): (slots, NKV, MAX_SEQ, HD), a slot per batch row.
//  - paged build (PAGED_KV 1): a pool of blocks of KV_BLOCK positions, NHD:
//    (num_blocks, KV_BLOCK, NKV, HD); `slot` is the row of the step's block table
//    (c_tables, c_tbl_stride entries a row) and position p lives in block table[p / 16], row p % 16.
// KV_RS: elements between consecutive positions of one KV_BLOCK-aligned tile of a (slot, kv head).
#ifndef PAGED_KV
#define PAGED_KV 0
#endif
#define KV_BLOCK 16
#if PAGED_KV
__constant__ const int* c_tables;
__constant__ int c_tbl_stride;
#define KV_RS KVDIM
__device__ __forceinline__ size_t kv_off(int slot, int kvh, int pos) {
    const int blk = c_tables[(size_t)slot * c_tbl_stride + (pos >> 4)];
    return (((size_t)blk * KV_BLOCK + (pos & (KV_BLOCK - 1))) * NKV + kvh) * HD;
}
#else
#define KV_RS HD
__device__ __forceinline__ size_t kv_off(int slot, int kvh, int pos) {
    return (((size_t)slot * NKV + kvh) * MAX_SEQ + pos) * HD;
}
#endif
typedef unsigned char u8;

__device__ __forceinline__ float h2f(h16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ h16 f2h(float f) { h16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }

#if ACT_F32
typedef float act_t;                 // GEMM/GEMV input activations
__device__ __forceinline__ float act2f(act_t v) { return v; }
__device__ __forceinline__ act_t f2act(float v) { return v; }
#else
typedef h16 act_t;
__device__ __forceinline__ float act2f(act_t v) { return h2f(v); }
__device__ __forceinline__ act_t f2act(float v) { return f2h(v); }
#endif

// KV_Q: an 8-bit KV cache (1: int8, 2: fp8 E4M3) with static per-(layer, K|V, kv head) scales,
// read only by the tensor-core attention kernels (attn_decode_tc, attn_prefill_tc).
#ifndef KV_Q
#define KV_Q 0
#endif
#if KV_Q
typedef u8 kv_t;  // int8: q + 128 (as the int8 weights); fp8: the E4M3 code
#elif KV_F32
typedef float kv_t;                  // KV cache element
__device__ __forceinline__ float kv2f(kv_t v) { return v; }
__device__ __forceinline__ kv_t f2kv(float v) { return v; }
#else
typedef h16 kv_t;
__device__ __forceinline__ float kv2f(kv_t v) { return h2f(v); }
__device__ __forceinline__ kv_t f2kv(float v) { return f2h(v); }
#endif

#define HALF_HD (HD / 2)
// int4 scale groups per row of K inputs: the last group is partial when I4_GROUP does not divide K
// (engine dirs pad such weights to whole groups; the padding codes are 0 and are not uploaded).
#define I4_GPR(K) (((K) + I4_GROUP - 1) / I4_GROUP)
#define GROUP (NH / NKV)
#define QKV_DIM (QDIM + 2 * KVDIM)

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
// Sum over the block; every thread gets the result. `red` holds 32 floats of shared memory.
__device__ float block_sum(float v, float* red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float r = lane < nw ? red[lane] : 0.f;
    return warp_sum(r);
}

__device__ __forceinline__ uint4 ldg_nc(const void* p) {
    uint4 r;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
}

// ---------------------------------------------------------------------------------------------
// Embedding: h (T, HIDDEN) f32 = emb[tokens[t]]. emb is f32 (ACT_F32) or f16.
extern "C" __global__ void embed(const int* __restrict__ tokens, const void* __restrict__ emb, int emb_f32,
                                 float* __restrict__ h) {
    PDL_ENTRY();
    const int t = blockIdx.x;
    const size_t base = (size_t)tokens[t] * HIDDEN;
    for (int k = threadIdx.x; k < HIDDEN; k += blockDim.x) {
        h[(size_t)t * HIDDEN + k] = emb_f32 ? ((const float*)emb)[base + k] : h2f(((const h16*)emb)[base + k]);
    }
}

// RMSNorm for the GEMM path: out (T, HIDDEN) act_t = x / rms(x) * w, accumulated in f32.
extern "C" __global__ void rmsnorm(const float* __restrict__ x, const float* __restrict__ w, act_t* __restrict__ out) {
    PDL_ENTRY();
    __shared__ float red[32];
    const int t = blockIdx.x;
    const float* xr = x + (size_t)t * HIDDEN;
    float ss = 0.f;
    for (int k = threadIdx.x; k < HIDDEN; k += blockDim.x) { float v = xr[k]; ss += v * v; }
    ss = block_sum(ss, red);
    const float inv = 1.0f / sqrtf(ss / (float)HIDDEN + EPS);
    for (int k = threadIdx.x; k < HIDDEN; k += blockDim.x) out[(size_t)t * HIDDEN + k] = f2act(xr[k] * inv * w[k]);
}

// Copies selected rows: out (T', HIDDEN) = x[rows[i]].
extern "C" __global__ void gather_rows(const float* __restrict__ x, const int* __restrict__ rows, float* __restrict__ out) {
    PDL_ENTRY();
    const int i = blockIdx.x;
    const float* src = x + (size_t)rows[i] * HIDDEN;
    for (int k = threadIdx.x; k < HIDDEN; k += blockDim.x) out[(size_t)i * HIDDEN + k] = src[k];
}

// ---------------------------------------------------------------------------------------------
// QKV epilogue shared by the fused GEMV and the GEMM path. The fused QKV weight has its rows
// permuted so that physical rows (2p, 2p+1) are the two halves of one RoPE pair:
//   q: pair p -> head p / HALF_HD, dims (i, i + HALF_HD), i = p % HALF_HD
//   k: the same over NKV heads
//   v: natural order, rows (2p, 2p+1)
// q goes to qout (T, QDIM) f32 with RoPE applied; k (RoPE'd) and v go into the cache of this layer
// at (slot, kv head, pos), addressed by kv_off.
#if KV_Q
// The 8-bit cache's scales: c_kvs (layers, 2 (K, V), NKV) f32. Kernels receive one layer's cache
// pointers; the layer is the pointer's offset from the whole cache (c_kv_kbase / c_kv_vbase) in
// layers of c_kv_layer bytes, so every kernel keeps its signature.
__constant__ const float* c_kvs;
__constant__ const u8* c_kv_kbase;
__constant__ const u8* c_kv_vbase;
__constant__ int c_kv_layer;
__device__ __forceinline__ float kv_scale(const kv_t* layer_cache, int is_v, int kvh) {
    const u8* base = is_v ? c_kv_vbase : c_kv_kbase;
    const int layer = (int)((unsigned long long)((const u8*)layer_cache - base) / (unsigned long long)c_kv_layer);
    return c_kvs[(layer * 2 + is_v) * NKV + kvh];
}
// x / s as a cache code, rounded as the CPU reference (quant::kv::KvCacheDtype::qdq) rounds:
// int8 round-half-even and clamp to [-128, 127] (stored + 128); fp8 E4M3 round-half-even,
// saturating at ±448.
__device__ __forceinline__ kv_t kv_enc(float x, float s) {
    const float y = x / s;
#if KV_Q == 1
    const int q = max(-128, min(127, __float2int_rn(y)));
    return (kv_t)(q + 128);
#elif __CUDA_ARCH__ >= 890
    unsigned short r;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(0.f), "f"(y));
    return (kv_t)(r & 0xff);
#else
    const u32 sign = (__float_as_uint(y) >> 24) & 0x80u;
    const float a = fabsf(y);
    if (a != a) return (kv_t)(sign | 0x7fu);
    if (a >= 448.f) return (kv_t)(sign | 0x7eu);
    if (a < 0.015625f) return (kv_t)(sign | (u32)__float2int_rn(a * 512.f));
    int e = (int)((__float_as_uint(a) >> 23) & 0xffu) - 127;
    int q = __float2int_rn((a * __uint_as_float((u32)(127 - e) << 23) - 1.f) * 8.f);
    if (q == 8) { q = 0; e++; }
    return (kv_t)(sign | ((u32)(e + 7) << 3) | (u32)q);
#endif
}
#endif
#if KV_ROT
// K rotation (quantization.kv_rotate, quant::kv::KvRotation; session 16): qkv_store parks each row's
// RoPE'd k (f32) in c_kstage (rows, KVDIM); kv_rot then rotates it per kv head by R = diag(s)·H/√HD
// (s: the layer's HD signs in c_kvrot (layers, HD)), encodes it into the cache with K's per-head scale,
// and rotates the row's q heads in place by the same R ((qR)·(kR) = q·k).
__constant__ float* c_kstage;
__constant__ const float* c_kvrot;
// K smoothing with the rotation (kv_smooth_k + kv_rotate): the calibrated K means (layers, KVDIM)
// f32, subtracted before the rotation (never added back: softmax ignores q·mean); null without.
__constant__ const float* c_kmean;
#endif

// RoPE of one pair (a, b) = (x[i], x[i + HALF_HD]) by the angle whose cos / sin are (c, s): every QKV epilogue
// (qkv_store, rope_p_body, the fused decode attention's acx_q_rope / acx_new_kv) rotates through it, so that they all
// round alike.
__device__ __forceinline__ float2 rope_rot(float a, float b, float c, float s) {
    return make_float2(a * c - b * s, b * c + a * s);
}

__device__ __forceinline__ void qkv_store(int t, int p, float a, float b, float* __restrict__ qout,
                                          kv_t* __restrict__ kc, kv_t* __restrict__ vc, const int* __restrict__ row_pos,
                                          const int* __restrict__ row_slot, const float* __restrict__ rcos,
                                          const float* __restrict__ rsin) {
    const int pos = row_pos[t];
    const int slot = row_slot[t];
    const int qpairs = QDIM / 2, kpairs = KVDIM / 2;
    if (p < qpairs + kpairs) {
        const bool is_q = p < qpairs;
        const int pp = is_q ? p : p - qpairs;
        const int head = pp / HALF_HD, i = pp % HALF_HD;
        const float c = rcos[(size_t)pos * HALF_HD + i], s = rsin[(size_t)pos * HALF_HD + i];
        const float2 r = rope_rot(a, b, c, s);
        const float o1 = r.x, o2 = r.y;
        if (is_q) {
            float* q = qout + (size_t)t * QDIM + head * HD;
            q[i] = o1;
            q[i + HALF_HD] = o2;
        } else {
#if KV_ROT
            // K rotation: parked for kv_rot, which rotates, encodes and stores it.
            float* ks = c_kstage + (size_t)t * KVDIM + head * HD;
            ks[i] = o1;
            ks[i + HALF_HD] = o2;
#elif KV_Q
            kv_t* k = kc + kv_off(slot, head, pos);
            const float sk = kv_scale(kc, 0, head);
            k[i] = kv_enc(o1, sk);
            k[i + HALF_HD] = kv_enc(o2, sk);
#else
            kv_t* k = kc + kv_off(slot, head, pos);
            k[i] = f2kv(o1);
            k[i + HALF_HD] = f2kv(o2);
#endif
        }
    } else {
        const int r = 2 * (p - qpairs - kpairs);  // logical v row
        const int head = r / HD, d = r % HD;
        kv_t* v = vc + kv_off(slot, head, pos);
#if KV_Q
        const float sv = kv_scale(vc, 1, head);
        v[d] = kv_enc(a, sv);
        v[d + 1] = kv_enc(b, sv);
#else
        v[d] = f2kv(a);
        v[d + 1] = f2kv(b);
#endif
    }
}

__device__ __forceinline__ float silu(float g) { return g / (1.0f + expf(-g)); }

#if KV_ROT
// x ← x·R for one head held by a warp (lane holds elements lane·E .. lane·E + E − 1),
// R = diag(s)·H/√HD with H the Sylvester Hadamard matrix: the signs, then a Walsh–Hadamard
// butterfly over the index bits (the low log2(E) in registers, the rest across lanes).
template <int E>
__device__ __forceinline__ void kv_wht(float (&x)[E], const float* __restrict__ s, int lane) {
#pragma unroll
    for (int e = 0; e < E; e++) x[e] *= s[lane * E + e];
#pragma unroll
    for (int h = 1; h < E; h <<= 1) {
#pragma unroll
        for (int e = 0; e < E; e++)
            if (!(e & h)) {
                const float a = x[e], b = x[e + h];
                x[e] = a + b;
                x[e + h] = a - b;
            }
    }
#pragma unroll
    for (int m = 1; m < 32; m <<= 1) {
#pragma unroll
        for (int e = 0; e < E; e++) {
            const float o = __shfl_xor_sync(0xffffffffu, x[e], m);
            x[e] = (lane & m) ? o - x[e] : x[e] + o;
        }
    }
    const float n = rsqrtf((float)HD);
#pragma unroll
    for (int e = 0; e < E; e++) x[e] *= n;
}
// After the QKV step: block (t, h) = row t, kv head h; warp 0 rotates the row's parked k
// (c_kstage) and writes its codes at (slot, h, pos) of this layer's cache, warp 1 + g rotates q
// head h·G + g of qout in place (and its act_t copy in qa when qa is given): 1 + G warps side by
// side (session 17: one warp doing all 1 + G heads in turn cost ~5 µs a layer at one row).
extern "C" __global__ void kv_rot(float* __restrict__ qout, act_t* __restrict__ qa, kv_t* __restrict__ kc,
                                  const int* __restrict__ row_pos, const int* __restrict__ row_slot) {
    PDL_ENTRY();
    constexpr int E = HD / 32, G = NH / NKV;
    const int t = blockIdx.x, h = blockIdx.y, w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (h >= NKV || w > G) return;
    const int layer = (int)((unsigned long long)((const u8*)kc - c_kv_kbase) / (unsigned long long)c_kv_layer);
    const float* s = c_kvrot + (size_t)layer * HD;
    float x[E];
    if (w == 0) {
        const float* ks = c_kstage + (size_t)t * KVDIM + h * HD + lane * E;
#pragma unroll
        for (int e = 0; e < E; e++) x[e] = ks[e];
        if (c_kmean != nullptr) {
            const float* m = c_kmean + (size_t)layer * KVDIM + h * HD + lane * E;
#pragma unroll
            for (int e = 0; e < E; e++) x[e] -= m[e];
        }
        kv_wht<E>(x, s, lane);
        kv_t* k = kc + kv_off(row_slot[t], h, row_pos[t]) + lane * E;
        const float sk = kv_scale(kc, 0, h);
#pragma unroll
        for (int e = 0; e < E; e++) k[e] = kv_enc(x[e], sk);
        return;
    }
    const size_t off = (size_t)t * QDIM + (h * G + w - 1) * HD + lane * E;
    float* q = qout + off;
#pragma unroll
    for (int e = 0; e < E; e++) x[e] = q[e];
    kv_wht<E>(x, s, lane);
#pragma unroll
    for (int e = 0; e < E; e++) q[e] = x[e];
    if (qa != nullptr) {
#pragma unroll
        for (int e = 0; e < E; e++) qa[off + e] = f2act(x[e]);
    }
}
#endif

// GEMM-path QKV epilogue: y (T, QKV_DIM) f32 from cuBLAS, one block per row.
// Also writes q as act_t (qa, (T, QDIM)) for the tensor-core attention of long prefills.
extern "C" __global__ void rope_append(const float* __restrict__ y, float* __restrict__ qout, act_t* __restrict__ qa,
                                       kv_t* __restrict__ kc, kv_t* __restrict__ vc, const int* __restrict__ row_pos,
                                       const int* __restrict__ row_slot, const float* __restrict__ rcos,
                                       const float* __restrict__ rsin) {
    PDL_ENTRY();
    const int t = blockIdx.x;
    for (int p = threadIdx.x; p < QKV_DIM / 2; p += blockDim.x) {
        const float a = y[(size_t)t * QKV_DIM + 2 * p], b = y[(size_t)t * QKV_DIM + 2 * p + 1];
        qkv_store(t, p, a, b, qout, kc, vc, row_pos, row_slot, rcos, rsin);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < QDIM; i += blockDim.x) qa[(size_t)t * QDIM + i] = f2act(qout[(size_t)t * QDIM + i]);
}

// Causal softmax of one sequence's prefill scores for the tensor-core path: S (NH, n, total) f32
// already scaled by 1/sqrt(HD) -> P (NH, n, total) act_t; query i sits at position start + i.
extern "C" __global__ void softmax_causal(const float* __restrict__ S, act_t* __restrict__ P, int n, int total, int start) {
    PDL_ENTRY();
    __shared__ float red[32];
    const int i = blockIdx.x, h = blockIdx.y;
    const float* s = S + ((size_t)h * n + i) * total;
    act_t* p = P + ((size_t)h * n + i) * total;
    const int lim = min(start + i, total - 1);
    float m = -INFINITY;
    for (int j = threadIdx.x; j <= lim; j += blockDim.x) m = fmaxf(m, s[j]);
    {
        __shared__ float mx[32];
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        float w = warp_max(m);
        if (lane == 0) mx[warp] = w;
        __syncthreads();
        w = lane < (int)(blockDim.x >> 5) ? mx[lane] : -INFINITY;
        m = warp_max(w);
    }
    float l = 0.f;
    for (int j = threadIdx.x; j <= lim; j += blockDim.x) l += expf(s[j] - m);
    l = block_sum(l, red);
    const float inv = 1.0f / l;
    for (int j = threadIdx.x; j < total; j += blockDim.x) p[j] = f2act(j <= lim ? expf(s[j] - m) * inv : 0.f);
}

// GEMM-path SwiGLU: y (T, 2·INTER) with gate/up interleaved per row pair -> m (T, INTER) act_t.
extern "C" __global__ void swiglu(const float* __restrict__ y, act_t* __restrict__ m, int T) {
    PDL_ENTRY();
    const size_t n = (size_t)T * INTER;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float g = y[2 * i], u = y[2 * i + 1];
        m[i] = f2act(silu(g) * u);
    }
}

// ---------------------------------------------------------------------------------------------
// Weight-only dequantization for the GEMM path (prefill / large batches): out (N, K) f16.
// int8: q (N, K) int8, s (N) f16.   w = q * s
extern "C" __global__ void dequant_i8(const signed char* __restrict__ q, const h16* __restrict__ s, h16* __restrict__ out,
                                      int N, int K) {
    PDL_ENTRY();
    const size_t n = (size_t)N * K;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        // kernel layout stores q + 128 (see pack.rs)
        out[i] = f2h((float)((int)((const unsigned char*)q)[i] - 128) * h2f(s[i / K]));
    }
}
// int4 (kernel layout, see pack.rs): bytes (N, K/2), each 32-bit word holds 8 elements, element
// 2j at nibble j and 2j+1 at nibble j+4, stored as q + 8; scales (N, I4_GPR(K)) f16. w = (u - 8) * s
extern "C" __global__ void dequant_i4(const u32* __restrict__ q, const h16* __restrict__ s, h16* __restrict__ out,
                                      int N, int K) {
    PDL_ENTRY();
    const size_t nw = (size_t)N * K / 8;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < nw; i += (size_t)gridDim.x * blockDim.x) {
        const u32 w = q[i];
        const size_t e0 = i * 8;
        const size_t row = e0 / K, g = (e0 % K) / I4_GROUP;
        const float sc = h2f(s[row * I4_GPR(K) + g]), zz = 8.f;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            out[e0 + 2 * j] = f2h(((float)((w >> (4 * j)) & 15u) - zz) * sc);
            out[e0 + 2 * j + 1] = f2h(((float)((w >> (4 * j + 16)) & 15u) - zz) * sc);
        }
    }
}

// fp8 (kernel layout, pack.rs): E4M3 codes (N, K) as stored, scales (N) f16. w = f16(decode(q) * s),
// exactly the DequantizeLinear value (f32 product, one rounding).
// E4M3 code b (low 8 bits) → f32, exact: its f16 bits are decode(b) / 256 (see e4m3x2_h2).
__device__ __forceinline__ float e4m3_f(u32 b) {
    return h2f((h16)(((b & 0x7fu) << 7) | ((b & 0x80u) << 8))) * 256.f;
}
extern "C" __global__ void dequant_f8(const u8* __restrict__ q, const h16* __restrict__ s, h16* __restrict__ out,
                                      int N, int K) {
    PDL_ENTRY();
    const size_t n = (size_t)N * K;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = f2h(e4m3_f(q[i]) * h2f(s[i / K]));
}

// ---------------------------------------------------------------------------------------------
// Decode GEMV with fused prologue/epilogue: y (T, N) = x (T, K) · Wᵀ, W (N, K), T <= MT.
// Prologue NORM: x = rmsnorm(h) computed in the block (h (T, K) f32); LOAD: x (T, K) act_t.
// Epilogues: QKV (RoPE + KV append), SWIGLU (gate/up row pairs -> m act_t), RESID (h += y),
// STORE (out f32, e.g. logits). Each warp owns PPW row pairs at a time and streams them with
// 16-byte non-allocating loads; blocks loop over pairs (grid sized to the GPU's occupancy).
#define WF_F32 0
#define WF_F16 1
#define WF_I8 2
#define WF_I4 3
#define WF_F8 4  // FP8 E4M3 codes (bit patterns), one f16 scale per row like int8 (pack.rs)
// Formats whose per-row scale multiplies the finished dot product (epilogue).
#define WF_ROWSCALE(WF) ((WF) == WF_I8 || (WF) == WF_F8)
#define PRO_NORM 0
#define PRO_LOAD 1
#define PRO_COMB 2  // the one-row o GEMV `tcc_*` (bs1 switch `ocomb`): x combined from the attention's partials
// Partial records of the split decode attentions (attn_decode, attn_decode_tc, attn_decode_cg):
// part (B, NH, NSPLIT, ATT_PS) f32, each acc[HD] (unnormalised O of the split's keys), max, sum, 2 pad.
#define ATT_PS (HD + 4)
#define ATT_MAXSPLIT 64
// Set in the last argument of attn_decode_tc (splits) / attn_decode_cg (stages): the attention ends at
// its partial stores (every split writes one, an empty split max -inf and sum 0) and the o GEMV's
// PRO_COMB prologue combines them (bs1 switch `ocomb`; decode passes of one row).
#define ATT_FOLD 0x10000
// Bits 20..23 of the same argument (and 16.. of GemvArgs::nsplit): how many copies of the fold records the
// attention writes (rows 0..reps-1 of part; o block i reads copy i % reps: fewer o blocks read each line).
__device__ __forceinline__ int fold_reps(int arg) { return (arg & ATT_FOLD) ? max(1, (arg >> 20) & 15) : 0; }
// ATT_FOLD records (session 12): each split of row b stores its output normalised by its own sum in f16
// (acc / l: HD halves) and its (max, sum) as two floats, so every o block copies half the bytes of
// ATT_PS records. Inside row b's part region (NH · NSPLIT · ATT_PS floats): NH · NSPLIT records of HD
// halves, then NH · NSPLIT (max, sum) pairs. An empty split: zeros, max -inf, sum 0.
__device__ __forceinline__ h16* fold_acc(float* part, int b, int h, int split) {
    return (h16*)(part + (size_t)b * NH * NSPLIT * ATT_PS) + ((size_t)h * NSPLIT + split) * HD;
}
__device__ __forceinline__ float* fold_ml(float* part, int b, int h, int split) {
    return part + (size_t)b * NH * NSPLIT * ATT_PS + (size_t)NH * NSPLIT * HD / 2 + ((size_t)h * NSPLIT + split) * 2;
}
// Stores dims d..d+3 of head h's split output v (unnormalised, running max m, sum l) into its fold record
// in each of the reps copies (rows b..b+reps-1); the thread with d == 0 also stores (m, l). An empty split:
// v = 0, m = -inf, l = 0.
__device__ __forceinline__ void fold_put(float* part, int b, int reps, int h, int split, int d, float4 v, float m,
                                         float l) {
    const float inv = l > 0.f ? 1.0f / l : 0.f;
    const u32 lo = (u32)f2h(v.x * inv) | ((u32)f2h(v.y * inv) << 16);
    const u32 hi = (u32)f2h(v.z * inv) | ((u32)f2h(v.w * inv) << 16);
    for (int r = 0; r < reps; r++) {
        *reinterpret_cast<uint2*>(fold_acc(part, b + r, h, split) + d) = make_uint2(lo, hi);
        if (d == 0) *(float2*)fold_ml(part, b + r, h, split) = make_float2(m, l);
    }
}
#define EPI_QKV 0
#define EPI_SWIGLU 1
#define EPI_RESID 2
#define EPI_STORE 3
#define GEMV_WARPS 4
#ifndef STAGE_NB
#define STAGE_NB 1  // session 9: batched RMSNorm staging of 2..8 GEMV rows (stage_x); kernels.rs sets 0 for TRTFORGE_STAGE_NB=0
#endif
#define STAGE_NB_T 8  // = GEMV_MAX_T (kernels.rs)

struct GemvArgs {
    const void* w;         // weights, format WF
    const h16* scales;     // int8: (N); int4: (N, I4_GPR(K))
    const float* h;        // NORM input (T, K)
    const float* norm_w;   // NORM weight (K)
    const act_t* x;        // LOAD input (T, K)
    float* out;            // STORE: (T, N); RESID: h (T, N); QKV: q (T, QDIM)
    act_t* out_act;        // SWIGLU: m (T, N/2)
    kv_t* kc;              // QKV: this layer's caches
    kv_t* vc;
    const int* row_pos;    // (T)
    const int* row_slot;   // (T)
    const float* rcos;     // (MAX_SEQ, HALF_HD)
    const float* rsin;
    int T;
    int N;
    const float* part;     // PRO_COMB: the attention's partial records (NH, NSPLIT, ATT_PS) of row 0
    int nsplit;            // PRO_COMB: records per head to combine (the attention's grid.x)
};

template <int WF> struct Fmt;
// E: elements per 16-byte vector; PPW: row pairs per warp item; U: loop unroll (loads in flight).
template <> struct Fmt<WF_F32> { enum { E = 4, PPW = 1, U = 4 }; };
template <> struct Fmt<WF_F16> { enum { E = 8, PPW = 1, U = 8 }; };
template <> struct Fmt<WF_I8> { enum { E = 16, PPW = 2, U = 4 }; };
template <> struct Fmt<WF_I4> { enum { E = 32, PPW = 2, U = 4 }; };
template <> struct Fmt<WF_F8> { enum { E = 16, PPW = 2, U = 4 }; };

// E4M3 code b as the exact f16 of decode(b) / 256: sign to bit 15, exponent and mantissa shifted
// into f16's fields (bias 15 vs 7; subnormals map to subnormals). Two codes (bytes 0, 1 of v) at
// once as f16x2 (lo, hi) of decode(b) exactly: the × 256 is a power of two.
__device__ __forceinline__ u32 e4m3x2_h2(u32 v) {
#if __CUDA_ARCH__ >= 890
    u32 r;
    asm("{ .reg .b16 lo, hi; mov.b32 {lo, hi}, %1; cvt.rn.f16x2.e4m3x2 %0, lo; }" : "=r"(r) : "r"(v));
    return r;
#else
    const u32 x = __byte_perm(v, 0u, 0x1404);  // (b0 << 8, b1 << 8)
    u32 h = ((x >> 1) & 0x3F803F80u) | (x & 0x80008000u);
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(h) : "r"(h), "r"(0x5C005C00u));
    return h;
#endif
}
// Four int8 codes stored as q + 128 (the bytes of w: int8 weights, pack.rs; int8 KV caches) as exact f16x2 pairs
// (q0, q1) and (q2, q3): each byte into the mantissa of 1024 (1024 + q + 128), minus 1152.
__device__ __forceinline__ void i8x4_h2(u32 w, u32& lo, u32& hi) {
    const u32 bias = 0x64806480u;  // f16x2 (1152, 1152)
    lo = __byte_perm(w, 0x64646464u, 0x4140);
    hi = __byte_perm(w, 0x64646464u, 0x4342);
    asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(lo) : "r"(lo), "r"(bias));
    asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(hi) : "r"(hi), "r"(bias));
}
// Four codes (the bytes of w) as f16x2 pairs (b0, b1) and (b2, b3).
__device__ __forceinline__ void e4m3x4_h2(u32 w, u32& lo, u32& hi) {
#if __CUDA_ARCH__ >= 890
    asm("{ .reg .b16 a, b; mov.b32 {a, b}, %2; cvt.rn.f16x2.e4m3x2 %0, a; cvt.rn.f16x2.e4m3x2 %1, b; }"
        : "=r"(lo), "=r"(hi) : "r"(w));
#else
    lo = e4m3x2_h2(w & 0xffffu);
    hi = e4m3x2_h2(w >> 16);
#endif
}

// Loads E consecutive x values of row t starting at k0 from shared memory as floats.
template <int E>
__device__ __forceinline__ void load_x(const act_t* xs, float* xf) {
#if ACT_F32
#pragma unroll
    for (int j = 0; j < E; j += 4) {
        float4 v = *(const float4*)(xs + j);
        xf[j] = v.x; xf[j + 1] = v.y; xf[j + 2] = v.z; xf[j + 3] = v.w;
    }
#else
#pragma unroll
    for (int j = 0; j < E; j += 8) {
        uint4 v = *(const uint4*)(xs + j);
        u32 a[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int q = 0; q < 4; q++) { xf[j + 2 * q] = h2f(a[q] & 0xffff); xf[j + 2 * q + 1] = h2f(a[q] >> 16); }
    }
#endif
}

// Dot product of one 16-byte weight vector (E elements starting at k0 of row `row`) with x.
template <int WF, int K>
__device__ __forceinline__ float dot16(uint4 wv, const act_t* xs, int row, int k0, const GemvArgs& a) {
    float acc = 0.f;
    if (WF == WF_F32) {
        float xf[4];
        load_x<4>(xs, xf);
        acc = __uint_as_float(wv.x) * xf[0] + __uint_as_float(wv.y) * xf[1] + __uint_as_float(wv.z) * xf[2] +
              __uint_as_float(wv.w) * xf[3];
    } else if (WF == WF_F16) {
        float xf[8];
        load_x<8>(xs, xf);
        u32 w4[4] = {wv.x, wv.y, wv.z, wv.w};
#pragma unroll
        for (int q = 0; q < 4; q++) {
            acc = fmaf(h2f(w4[q] & 0xffff), xf[2 * q], acc);
            acc = fmaf(h2f(w4[q] >> 16), xf[2 * q + 1], acc);
        }
    } else if (WF == WF_I8) {
        // Bytes are q + 128 (see pack.rs): 0x4B000000 | b is the float 2^23 + b exactly.
        float xf[16];
        load_x<16>(xs, xf);
        u32 w4[4] = {wv.x, wv.y, wv.z, wv.w};
#pragma unroll
        for (int q = 0; q < 4; q++) {
#pragma unroll
            for (int b = 0; b < 4; b++) {
                const u32 bits = __byte_perm(w4[q], 0x4B000000u, 0x7650 + b) ;
                const float qv = __uint_as_float(bits) - 8388736.0f;  // 2^23 + 128
                acc = fmaf(qv, xf[4 * q + b], acc);
            }
        }
    } else if (WF == WF_F8) {
        // E4M3 codes, decoded exactly (row scale after the sum, as int8).
        float xf[16];
        load_x<16>(xs, xf);
        u32 w4[4] = {wv.x, wv.y, wv.z, wv.w};
#pragma unroll
        for (int q = 0; q < 4; q++)
#pragma unroll
            for (int b = 0; b < 4; b++) acc = fmaf(e4m3_f((w4[q] >> (8 * b)) & 0xffu), xf[4 * q + b], acc);
    } else {  // WF_I4: 32 elements of one group; f16x2 products, partial sums of 8 in f16, then f32.
        // Symmetric codes stored as u = q + 8 (pack.rs): the zero point is the constant 8.
        const int g = k0 / I4_GROUP;
        const float sc = h2f(a.scales[(size_t)row * I4_GPR(K) + g]);
        const u32 z2 = 0x64086408u;  // f16x2 (1024 + 8, 1024 + 8)
        u32 w4[4] = {wv.x, wv.y, wv.z, wv.w};
#if ACT_F32
        float xf[32];
        load_x<32>(xs, xf);
#endif
        float part = 0.f;
#pragma unroll
        for (int q = 0; q < 4; q++) {
            // word q: elements 8q .. 8q+7 ; (w >> 4j) & 0x000F000F = elements (2j, 2j+1)
#if ACT_F32
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const float e0 = (float)((w4[q] >> (4 * j)) & 15u), e1 = (float)((w4[q] >> (4 * j + 16)) & 15u);
                const float zf = 8.f;
                part = fmaf(e0 - zf, xf[8 * q + 2 * j], part);
                part = fmaf(e1 - zf, xf[8 * q + 2 * j + 1], part);
            }
#else
            const uint4 xv = *(const uint4*)(xs + 8 * q);
            const u32 x4[4] = {xv.x, xv.y, xv.z, xv.w};
            u32 hacc = 0;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                u32 qh = ((w4[q] >> (4 * j)) & 0x000F000Fu) | 0x64006400u;  // (1024+q0, 1024+q1)
                asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(qh) : "r"(qh), "r"(z2));
                asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(hacc) : "r"(qh), "r"(x4[j]), "r"(hacc));
            }
            part += h2f(hacc & 0xffff) + h2f(hacc >> 16);
#endif
        }
        acc = part * sc;
    }
    return acc;
}

// Four outputs to act_t p (16-byte f32 or 8-byte f16 store).
__device__ __forceinline__ void store4(act_t* p, float a, float b, float c, float d) {
#if ACT_F32
    *reinterpret_cast<float4*>(p) = make_float4(a, b, c, d);
#else
    const u32 lo = (u32)f2h(a) | ((u32)f2h(b) << 16), hi = (u32)f2h(c) | ((u32)f2h(d) << 16);
    *reinterpret_cast<uint2*>(p) = make_uint2(lo, hi);
#endif
}

// Stages the GEMV input rows in shared memory, row stride XS elements: PRO_NORM x = rmsnorm(h)
// (h (T, K) f32), PRO_LOAD x (T, K) act_t. Called by all NT threads of the block.
template <int PRO, int K, int NT, int XS, bool CG = false>
__device__ __forceinline__ void stage_x(const GemvArgs& a, act_t* xs, float* red) {
    const int T = a.T;
    if (PRO == PRO_NORM) {
        // One 16-byte load of h and of the norm weight per thread and vector, all in flight at
        // once; h stays in registers between the reduction and the scaled store.
        constexpr int NV = (K / 4 + NT - 1) / NT;
        const float4* wr = (const float4*)a.norm_w;
#if STAGE_NB
        // Session 9 (`STAGE_NB`, the default; TRTFORGE_STAGE_NB=0 builds the per-row loop below
        // only): 2..STAGE_NB_T rows with one vector per thread issue all their loads at once, keep
        // only the per-row partial sums, reduce all rows in one block step (two barriers) and read
        // h again (an L1/L2 hit) for the scaled store — instead of one load + block_sum round trip per
        // row. Holding the rows in registers instead raised tc_f16_gateup from 61 to 104 registers
        // (one block per SM at one row). Same sums in the same order as block_sum: bitwise the same x.
        if (NV == 1 && NT / 32 >= STAGE_NB_T && NT <= 1024 && T > 1) {
            __shared__ float red_nb[STAGE_NB_T][32];
            __shared__ float inv_nb[STAGE_NB_T];
            const int v = threadIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
            const bool in = (K / 4) % NT == 0 || v < K / 4;
            float ss[STAGE_NB_T];
#pragma unroll
            for (int t = 0; t < STAGE_NB_T; t++) {
                const float4* hr = (const float4*)(a.h + (size_t)t * K);
                const float4 h = in && t < T ? (CG ? __ldcg(hr + v) : hr[v]) : make_float4(0.f, 0.f, 0.f, 0.f);
                ss[t] = h.x * h.x + h.y * h.y + h.z * h.z + h.w * h.w;
            }
            __syncthreads();  // red_nb / inv_nb of an earlier call (the persistent layer stages per phase)
#pragma unroll
            for (int t = 0; t < STAGE_NB_T; t++) {
                const float r = warp_sum(ss[t]);
                if (lane == 0) red_nb[t][warp] = r;
            }
            __syncthreads();
            if (warp < STAGE_NB_T) {
                const float r = warp_sum(lane < NT / 32 ? red_nb[warp][lane] : 0.f);
                if (lane == 0) inv_nb[warp] = 1.0f / sqrtf(r / (float)K + EPS);
            }
            __syncthreads();
            if (in) {
                const float4 wv = wr[v];
#pragma unroll 2
                for (int t = 0; t < T; t++) {
                    const float4* hr = (const float4*)(a.h + (size_t)t * K);
                    const float4 h = CG ? __ldcg(hr + v) : hr[v];
                    const float inv = inv_nb[t];
                    store4(xs + t * XS + 4 * v, h.x * inv * wv.x, h.y * inv * wv.y, h.z * inv * wv.z, h.w * inv * wv.w);
                }
            }
            return;
        }
#endif
        for (int t = 0; t < T; t++) {
            const float4* hr = (const float4*)(a.h + (size_t)t * K);
            float4 hv[NV], wv[NV];
            float ss = 0.f;
#pragma unroll
            for (int i = 0; i < NV; i++) {
                const int v = i * NT + threadIdx.x;
                const bool in = (K / 4) % NT == 0 || v < K / 4;
                hv[i] = in ? (CG ? __ldcg(hr + v) : hr[v]) : make_float4(0.f, 0.f, 0.f, 0.f);
                wv[i] = in ? wr[v] : make_float4(0.f, 0.f, 0.f, 0.f);
                ss += hv[i].x * hv[i].x + hv[i].y * hv[i].y + hv[i].z * hv[i].z + hv[i].w * hv[i].w;
            }
            ss = block_sum(ss, red);
            const float inv = 1.0f / sqrtf(ss / (float)K + EPS);
#pragma unroll
            for (int i = 0; i < NV; i++) {
                const int v = i * NT + threadIdx.x;
                if ((K / 4) % NT == 0 || v < K / 4) {
                    store4(xs + t * XS + 4 * v, hv[i].x * inv * wv[i].x, hv[i].y * inv * wv[i].y, hv[i].z * inv * wv[i].z,
                           hv[i].w * inv * wv[i].w);
                }
            }
        }
    } else {
        // x (T, K) act_t, copied 16 bytes at a time (K * sizeof(act_t) is a multiple of 16).
        constexpr int VR = K * (int)sizeof(act_t) / 16;  // vectors per row
        const uint4* src = (const uint4*)a.x;
        uint4* dst = (uint4*)xs;
        const int nv = T * VR;
        for (int i = threadIdx.x; i < nv; i += NT) {
            const int r = i / VR, c = i - r * VR;
            dst[r * (XS * (int)sizeof(act_t) / 16) + c] = CG ? __ldcg(src + i) : src[i];
        }
    }
}

// PRO_COMB (the one-row o GEMV `tcc_*`, bs1 switch `ocomb`, session 11): x = the decode attention's output
// for row 0, combined here from the a.nsplit fold records of each head that attn_decode_tc /
// attn_decode_cg (launched with ATT_FOLD) stored instead of combining them in their last block (the issue's
// "attention combine into O-proj": the attention ends at its stores; no fence, counter or last-block
// round trips). Session 12: the records are f16 outputs normalised per split plus (max, sum) (fold_acc /
// fold_ml; half the bytes of the f32 ATT_PS records every o block copied in session 11, where the copy
// and each thread's three walks over the splits made o 5.8 µs a layer longer on TinyLlama). All records
// are copied to shared memory behind xs at once (one L2 round trip); meanwhile one warp per head turns the
// splits' (max, sum), loaded from L2, into weights w_s = e^(m_s - M) l_s / sum_s' e^(m_s' - M) l_s' (lanes = splits, shuffles),
// then each thread forms 4 dims of x as sum_s w_s · out_s. Dynamic shared memory: XS halves + NH · ns · HD
// halves + NH · ns floats (launch.rs tcc_smem); ns <= 32.
// Launched in clusters of CS blocks (bs1 switch `oclN`, session 12): block rank r combines only heads
// [r·HPR, (r+1)·HPR) (HPR = ceil(NH / CS)) and stores its x values into every block of its cluster
// (st.shared::cluster), so each block copies 1/CS of the records (TinyLlama's prologue took 3.0–5.5 µs
// after the wait copying all 32 heads' 52 KB: ≈ 2.2 TB/s of L2 reads for 128 blocks in all).
__device__ __forceinline__ u32 cl_nct() {
    u32 n = 1;
#if __CUDA_ARCH__ >= 900
    asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(n));
#endif
    return n;
}
__device__ __forceinline__ u32 cl_rank() {
    u32 r = 0;
#if __CUDA_ARCH__ >= 900
    asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
#endif
    return r;
}
// CL: the cluster code (cs = the launch's cluster size); !CL: one block combines every head (the
// session-11/12 code, kept as its own instance: SmolLM2 bs1 measured 2,400 → 2,252 tok/s when the one-block
// path ran through the cluster-generic code).
template <int K, int NT, int XS, bool CL>
__device__ __forceinline__ void stage_comb_t(const GemvArgs& a, act_t* xs, const int cs) {
    static_assert(K == QDIM, "the o GEMV's input is the attention output");
    static_assert((XS * 2) % 16 == 0 && (HD * 2) % 16 == 0, "records behind one x row stay 16-byte aligned");
    constexpr int NWARP = NT / 32;
    const int ns = a.nsplit & 0xffff;
    const int rep = (int)blockIdx.x % max(1, a.nsplit >> 16);  // the copy of the records this block reads
    const int hpr = CL ? (NH + cs - 1) / cs : NH;
    const int h0 = CL ? min(NH, (int)cl_rank() * hpr) : 0;
    const int nh = CL ? min(NH, h0 + hpr) - h0 : NH;  // this block's heads
#if __CUDA_ARCH__ >= 900
    if (CL) asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
#endif
    tt_sub(TT_T0 + 7, TL_O);  // t3b: the prologue entered (cluster rank and size read)
    h16* rs = (h16*)xs + XS;                         // (nh, ns, HD) halves
    float* wsm = (float*)(rs + (size_t)NH * ns * HD);  // (nh, ns) weights
    float* part = (float*)a.part;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    {
        constexpr int RV = HD * 2 / 16;  // 16-byte chunks per record
        const int hv = ns * RV;          // chunks per head
        const u32 r0 = (u32)__cvta_generic_to_shared(rs);
        for (int i = threadIdx.x; i < nh * hv; i += NT) {
            const int h = i / hv, r = i - h * hv;
            cp_async16(r0 + 16 * i, (const unsigned char*)fold_acc(part, rep, h0 + h, 0) + 16 * r, 16);
        }
        cp_async_commit();
    }
    // While the records land: the weights, one warp per head, lanes = splits (their (max, sum) from L2).
    constexpr int HPW = (NH + NWARP - 1) / NWARP;  // heads per warp, at most
    float2 v[HPW];
#pragma unroll
    for (int j = 0; j < HPW; j++) {
        const int h = warp + j * NWARP;
        v[j] = h < nh && lane < ns ? __ldcg((const float2*)fold_ml(part, rep, h0 + h, lane)) : make_float2(-INFINITY, 0.f);
    }
#pragma unroll
    for (int j = 0; j < HPW; j++) {
        const int h = warp + j * NWARP;
        if (h >= nh) break;
        float M = v[j].x;
        if (TL_ON && j == 0 && M != 1.5f) tt_sub(TT_T0 + 6, TL_O);  // t3a: thread 0's (max, sum) back (the test waits)
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
        const float f = v[j].x == -INFINITY ? 0.f : expf(v[j].x - M) * v[j].y;
        float L = f;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) L += __shfl_xor_sync(0xffffffffu, L, o);
        if (lane < ns) wsm[h * ns + lane] = L > 0.f ? f / L : 0.f;
    }
    tt_sub(TT_T0 + 2, TL_O);  // t1a: thread 0's head weights (its (max, sum) loads back)
    cp_async_wait(0);
    __syncthreads();
    tt_sub(TT_T0 + 3, TL_O);  // t1b: every record in shared memory
#if __CUDA_ARCH__ >= 900
    // Every block of the cluster has started (its shared memory exists) before the remote stores.
    if (CL) asm volatile("barrier.cluster.wait.aligned;" ::: "memory");
#endif
    tt_sub(TT_T0 + 4, TL_O);  // t2a: the cluster's blocks all arrived
    const u32 x0 = (u32)__cvta_generic_to_shared(xs);
    for (int e = threadIdx.x; e < nh * HD / 4; e += NT) {
        const int h = (4 * e) / HD, d = (4 * e) % HD;
        const h16* pr = rs + (size_t)h * ns * HD + d;
        const float* w = wsm + h * ns;
        float4 A = make_float4(0.f, 0.f, 0.f, 0.f);
        for (int s = 0; s < ns; s++) {
            const float ws = w[s];
            const uint2 u = *(const uint2*)(pr + (size_t)s * HD);
            A.x = fmaf(ws, h2f((h16)(u.x & 0xffffu)), A.x);
            A.y = fmaf(ws, h2f((h16)(u.x >> 16)), A.y);
            A.z = fmaf(ws, h2f((h16)(u.y & 0xffffu)), A.z);
            A.w = fmaf(ws, h2f((h16)(u.y >> 16)), A.w);
        }
        const int xo = (h0 + h) * HD + d;  // x element
        if (!CL) {
            store4(xs + xo, A.x, A.y, A.z, A.w);
        } else {
#if __CUDA_ARCH__ >= 900
            const u32 lo = (u32)f2h(A.x) | ((u32)f2h(A.y) << 16), hi = (u32)f2h(A.z) | ((u32)f2h(A.w) << 16);
            const u32 la = x0 + 2 * xo;
            for (int r = 0; r < cs; r++) {
                u32 ra;
                asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(la), "r"(r));
                asm volatile("st.shared::cluster.v2.u32 [%0], {%1, %2};" ::"r"(ra), "r"(lo), "r"(hi) : "memory");
            }
#endif
        }
    }
    tt_sub(TT_T0 + 5, TL_O);  // t2b: thread 0's combined values stored
    // Every block's x is complete (and no block leaves while others still store into it).
    if (CL) cluster_sync_all();
}
template <int K, int NT, int XS>
__device__ __forceinline__ void stage_comb(const GemvArgs& a, act_t* xs) {
    // Clusters: sizeof(act_t) == 2 only (the tcc_* instances run f16 activations).
    const int cs = sizeof(act_t) == 2 ? (int)cl_nct() : 1;
    if (cs > 1) stage_comb_t<K, NT, XS, true>(a, xs, cs);
    else stage_comb_t<K, NT, XS, false>(a, xs, 1);
}

// c_y16 (top of the file): qkv / gate-up sums rounded to f16 before their epilogue.
template <int EPI>
__device__ __forceinline__ void y16_round(float& y0, float& y1) {
    if ((EPI == EPI_QKV || EPI == EPI_SWIGLU) && c_y16) {
        y0 = h2f(f2h(y0));
        y1 = h2f(f2h(y1));
    }
}
template <int WF, int PRO, int EPI, int K, int MT>
__device__ __forceinline__ void gemv_body(const GemvArgs& a) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    act_t* xs = (act_t*)smem_raw;  // (MT, K)
    __shared__ float red[32];
    const int T = a.T;
    constexpr int E = Fmt<WF>::E;
    constexpr int PPW = Fmt<WF>::PPW;
    constexpr int R = 2 * PPW;               // rows per warp item
    constexpr int VPR = K / E;               // 16-byte vectors per row
    constexpr int NIT = (VPR + 31) / 32;
    constexpr size_t ROWB = (size_t)K * 16 / E;  // bytes per row
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int npairs = a.N >> 1;
    const unsigned char* W = (const unsigned char*)a.w;
    {
        // Weights do not depend on earlier kernels: start pulling this warp's first rows into L2
        // while the previous kernel finishes (one prefetch per 128-byte line).
        const int p0 = (blockIdx.x * GEMV_WARPS + warp) * PPW;
        if ((lane & 7) == 0) {
#pragma unroll
            for (int r = 0; r < R; r++) {
                const int row = 2 * p0 + r;
#pragma unroll
                for (int it = 0; it < (NIT < 4 ? NIT : 4); it++) {
                    const int v = it * 32 + lane;
                    if (row < a.N && v < VPR) asm volatile("prefetch.global.L2 [%0];" ::"l"(W + (size_t)row * ROWB + (size_t)v * 16));
                }
            }
        }
    }
    pdl_wait();
    stage_x<PRO, K, GEMV_WARPS * 32, K>(a, xs, red);
    __syncthreads();

    for (int p0 = (blockIdx.x * GEMV_WARPS + warp) * PPW; p0 < npairs; p0 += gridDim.x * GEMV_WARPS * PPW) {
        float acc[MT][R];
#pragma unroll
        for (int t = 0; t < MT; t++)
#pragma unroll
            for (int r = 0; r < R; r++) acc[t][r] = 0.f;
#pragma unroll (Fmt<WF>::U)
        for (int it = 0; it < NIT; it++) {
            const int v = it * 32 + lane;
            if ((VPR % 32 == 0) || v < VPR) {
                uint4 wv[R];
#pragma unroll
                for (int r = 0; r < R; r++) {
                    const int row = 2 * p0 + r;
                    wv[r] = (row < a.N) ? ldg_nc(W + (size_t)row * ROWB + (size_t)v * 16) : make_uint4(0, 0, 0, 0);
                }
                const int k0 = v * E;
#pragma unroll
                for (int t = 0; t < MT; t++) {
                    if (t < T) {
#pragma unroll
                        for (int r = 0; r < R; r++) {
                            const int row = min(2 * p0 + r, a.N - 1);
                            acc[t][r] += dot16<WF, K>(wv[r], xs + t * K + k0, row, k0, a);
                        }
                    }
                }
            }
        }
#pragma unroll
        for (int t = 0; t < MT; t++)
#pragma unroll
            for (int r = 0; r < R; r++) acc[t][r] = warp_sum(acc[t][r]);
        if (lane == 0) {
#pragma unroll
            for (int t = 0; t < MT; t++) {
                if (t >= T) break;
#pragma unroll
                for (int j = 0; j < PPW; j++) {
                    const int p = p0 + j;
                    if (p >= npairs) break;
                    float y0 = acc[t][2 * j], y1 = acc[t][2 * j + 1];
                    if (WF_ROWSCALE(WF)) {
                        y0 *= h2f(a.scales[2 * p]);
                        y1 *= h2f(a.scales[2 * p + 1]);
                    }
                    y16_round<EPI>(y0, y1);
                    if (EPI == EPI_QKV) {
                        qkv_store(t, p, y0, y1, a.out, a.kc, a.vc, a.row_pos, a.row_slot, a.rcos, a.rsin);
                    } else if (EPI == EPI_SWIGLU) {
                        a.out_act[(size_t)t * (a.N / 2) + p] = f2act(silu(y0) * y1);
                    } else if (EPI == EPI_RESID) {
                        float* o = a.out + (size_t)t * a.N + 2 * p;
                        o[0] += y0;
                        o[1] += y1;
                    } else {
                        float* o = a.out + (size_t)t * a.N + 2 * p;
                        o[0] = y0;
                        o[1] = y1;
                    }
                }
            }
        }
    }
    pdl_trigger();
}

#define GEMV_KERNEL(name, WF, PRO, EPI, K, MT) \
    extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32) name(GemvArgs a) { gemv_body<WF, PRO, EPI, K, MT>(a); }

// The instances this model needs (generated by kernels.rs): GEMV_KERNEL(gemv_f16_qkv_1, WF_F16, PRO_NORM, EPI_QKV, HIDDEN, 1) ...
GEMV_INSTANCES

// ---------------------------------------------------------------------------------------------
// Tensor-core decode GEMV for T <= 8 rows with f16 activations (sm_80+): y (T, N) = x (T, K) · Wᵀ
// through mma.sync.m16n8k16 (f16 × f16 → f32), the batch rows as the mma's 8 columns. One block of
// TC_WARPS warps per tile of 16 output rows (blocks loop over tiles); the warps split K into
// interleaved steps and sum their partial tiles in shared memory, then one pass runs the same
// epilogues as the GEMV. Weights stay in the GEMV layouts (f16 rows; int8 q + 128 rows; int4 words,
// pack.rs): lane (g = lane / 4, t = lane % 4) reads 16 bytes of rows g and g + 8 and uses them as the
// A fragments of 2 (f16), 4 (int8) or 8 (int4) mmas; the order of k inside a step is permuted the
// same way for A and B (x from shared memory), which leaves every dot product unchanged. int8 codes
// become exact f16 (scale applied per row after the sum); int4 codes become f16(q · s), the
// DequantizeLinear value. A tile's first weight loads are issued before griddepcontrol.wait: they do
// not depend on earlier kernels, so they overlap the previous kernel's tail.
#if !ACT_F32
#define TC_WARPS 16
// CH: elements per lane and row per 16-byte load; STEPK: k per warp step; U: steps loaded at once.
template <int WF> struct Tc;
template <> struct Tc<WF_F16> { enum { CH = 8, STEPK = 32, MMAS = 2, U = 8 }; };
template <> struct Tc<WF_I8> { enum { CH = 16, STEPK = 64, MMAS = 4, U = 4 }; };
template <> struct Tc<WF_I4> { enum { CH = 32, STEPK = 128, MMAS = 8, U = 2 }; };
template <> struct Tc<WF_F8> { enum { CH = 16, STEPK = 64, MMAS = 4, U = 4 }; };
// Down GEMVs (K = the intermediate size) load all of a warp's k-steps in one round before griddepcontrol.wait (at
// most TC_UDOWN_MAX steps, the counts ptxas was seen to fit in 128 registers without spills on the TinyLlama shape:
// int4 3, int8 / fp8 6, f16 11; a larger intermediate size loads in rounds of that many):
// with Tc<WF>::U a second round of loads came after the wait, ≈ 1 DRAM round trip of down's 3.6 µs at one row
// (session 19's phases). Session 20 measured the quantized ones on TinyLlama (int4 3, int8 / fp8 6 steps, one block
// an SM either way): bs1 +3 to +4 %, bs8 +2 to +4 %, same sums in the same order (f16: 11 steps instead of 8 + 3;
// docs/cuda.md, session 20). Build switches: TRTFORGE_TC_UDOWN=N (`TC_UDOWN`) / TRTFORGE_TC_UDOWN16=N
// (`TC_UDOWN16`) force N steps a round for the quantized / f16 down GEMVs (N = Tc<WF>::U: the code before).
#ifndef TC_UDOWN
#define TC_UDOWN 0
#endif
#ifndef TC_UDOWN16
#define TC_UDOWN16 0
#endif
#define TC_UDOWN_MAX(WF) ((WF) == WF_F16 ? 11 : (WF) == WF_I4 ? 3 : 6)
template <int WF, int K>
struct TcU {
    enum {
        U0 = (int)Tc<WF>::U,
        SPW = ((K + (int)Tc<WF>::STEPK - 1) / (int)Tc<WF>::STEPK + TC_WARPS - 1) / TC_WARPS,
        ALL = SPW < TC_UDOWN_MAX(WF) ? SPW : TC_UDOWN_MAX(WF),
        FORCED = WF == WF_F16 ? TC_UDOWN16 : TC_UDOWN,
        V = K != INTER ? U0 : FORCED > 1 ? FORCED : ALL > U0 ? ALL : U0
    };
};

// Session 20 (`TC_PF2`; the host defines it for int4 engines, `KernelSpec::pf2`): gate/up and the head, whose blocks walk several
// tiles, keep the loads of the next tile in flight while one tile is reduced: slots [SPW, 2·SPW) hold tile + vgrid
// (issued before the wait with the first tile's), each tile's slots are refilled two tiles ahead. Only where a
// tile's k-steps fit twice into the TC_U slots (over the hidden size; not the f16 gate/up, which spilled).
// Same sums in the same order. Session 21 (H200): checks 8 / 8; int4 bs1 +1.5 %, bs8 +1.3 %; int8 / fp8 −1.0 / −0.7 %.
#ifndef TC_PF2
#define TC_PF2 0
#endif
// Session 22 (the tile trace: the one-row int8 gate/up spent 2.1 µs in its first tile's epilogue, int4 0.5): with
// c_scpre the row scales (int8 / fp8) of the tile after this one were loaded just before the partials' barrier and
// moved into `rs` at the end of the epilogue, so every multi-tile block waited there for a load issued a moment
// before, queued behind the weight loads. RS_LATE moves them into `rs` only after the next tile's mmas (a tile
// later; the first tile's are loaded before the wait as before). Same values. RS_LATE 0 (TRTFORGE_RS_LATE=0) builds
// the code before.
#ifndef RS_LATE
#define RS_LATE 1
#endif
// Session 22 (the default since session 23; TRTFORGE_I4_POST=0 builds the code before): int4 tiles whose k-steps are
// exactly one scale group (g128: a warp's step is 4 lanes x 32 = 128 inputs) multiply the group scale after the mma —
// the step's sums of (u - 8) x into their own accumulators, then acc += scale x sums in f32 (4 FFMA a step instead of
// 32 HMUL2 a lane). Not the rounding of the f16 pairs (u - 8) s of the code before and of the GEMM path's f16 copy:
// closer to the exact (u - 8) s, so the one-row path and the GEMM path differ by the weights' f16 rounding. H200
// (session 23 call 1, three alternating pairs): int4 bs1 1,847 / 1,849 / 1,848 -> 1,931 / 1,936 / 1,932 (+4.6 %), bs8
// +2.4 %; checks i4g128 5 / 5 (TinyLlama logits 6.82e-4 / 1.14e-3 against 6.82e-4 / 7.90e-4 before).
#ifndef I4_POST
#define I4_POST 1
#endif
// Session 23: tc_core's x loads without the per-lane predicate (see xok; TRTFORGE_TC_XCLAMP=0 builds the code before).
// H200 (session 23 call 2, two alternating pairs): bs1 int4 +1.8 %, int8 +2.4 %, fp16 +1.5 %; bs8 +0.3 to +1.2 %;
// checks i4g128 and udown16 with the errors of the code before.
#ifndef TC_XCLAMP
#define TC_XCLAMP 1
#endif
// Session 24: the folded o GEMV (PRO_COMB) reads GemvArgs::part / nsplit only after griddepcontrol.wait, and they are
// the only fields of the parameter block's last 64-byte line (bytes 112..127 of GemvArgs): the first read there missed
// the constant cache after the wait, in front of the records' L2 round trip (session 24 call 1: wait -> the splits'
// (max, sum) weights 1.8-2.1 µs against 0.9 µs for the attention's q loads); so did the cluster size. A never-taken
// test of both before the wait brings those lines in while the block waits (TRTFORGE_TC_PTOUCH=0: the code before).
#ifndef TC_PTOUCH
#define TC_PTOUCH 1
#endif
template <int N>
struct TcIC {
    static constexpr int v = N;
};

__device__ __forceinline__ void mma16816(float* c, u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
#if __CUDA_ARCH__ < 800
    __trap();  // the host launches these kernels on sm_80+ only
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#endif
}

// Session 22: one int4 word (elements 8q .. 8q + 7 of a chunk, stored u = q + 8, pack.rs) as its 4 f16 pairs times
// the group scale s2; pair i = nibble i of each 16-bit half, as `((w >> 4i) & 0x000F000F) | 0x64006400` gave them.
// Nibbles 0 / 2: (w & 0x000F000F) | 0x6400 = 1024 + u, minus 1032; nibbles 1 / 3 in place: (w & 0x00F000F0) | 0x6400 =
// 1024 + 16u, times 1/16 minus 72 in one fma. Both are exact (u - 8), so the pairs equal the shift-per-nibble code's
// bit for bit; one shift and a fused and-or (lop3) a pair instead of a shift, an and and an or: 13 instructions a
// word instead of 19 (the session-22 tile trace: the one-row int4 GEMVs' tiles are bound by their instructions,
// not by bytes). I4_LOP3 0 (TRTFORGE_I4_LOP3=0) builds the code before.
#ifndef I4_LOP3
#define I4_LOP3 1
#endif
// SCALE false: the pairs (u - 8) without the group scale (tc_core's I4_POST applies it after the mma).
template <bool SCALE = true>
__device__ __forceinline__ void i4_word_pairs(u32 w, u32 s2, u32* p) {
#if I4_LOP3
    const u32 w8 = w >> 8;
    u32 h[4];
    asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(h[0]) : "r"(w), "r"(0x000F000Fu), "r"(0x64006400u));
    asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(h[1]) : "r"(w), "r"(0x00F000F0u), "r"(0x64006400u));
    asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(h[2]) : "r"(w8), "r"(0x000F000Fu), "r"(0x64006400u));
    asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(h[3]) : "r"(w8), "r"(0x00F000F0u), "r"(0x64006400u));
#pragma unroll
    for (int i = 0; i < 4; i += 2) {
        asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(h[i]) : "r"(h[i]), "r"(0x64086408u));                          // u - 8
        asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(h[i + 1]) : "r"(h[i + 1]), "r"(0x2C002C00u), "r"(0xD480D480u));  // /16 - 72
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        if (SCALE) asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(h[i]) : "r"(h[i]), "r"(s2));
        p[i] = h[i];
    }
#else
#pragma unroll
    for (int i = 0; i < 4; i++) {
        u32 h = ((w >> (4 * i)) & 0x000F000Fu) | 0x64006400u;  // (1024 + u0, 1024 + u1)
        asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(h) : "r"(h), "r"(0x64086408u));
        if (SCALE) asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(h) : "r"(h), "r"(s2));
        p[i] = h;
    }
#endif
}

// I4_POST: acc += group scale x the k-step's sums; rows g (acc 0, 1) and g + 8 (acc 2, 3), scales ha / hb (f16 bits).
__device__ __forceinline__ void i4_post_add(float* acc, const float* acs, u32 ha, u32 hb) {
    const float fa = h2f((h16)ha), fb = h2f((h16)hb);
    acc[0] = fmaf(fa, acs[0], acc[0]);
    acc[1] = fmaf(fa, acs[1], acc[1]);
    acc[2] = fmaf(fb, acs[2], acc[2]);
    acc[3] = fmaf(fb, acs[3], acc[3]);
}

// The lane's CH weights of one row as f16 pairs: pair j = elements (2j, 2j + 1) of the chunk.
template <int WF, bool SCALE = true>
__device__ __forceinline__ void tc_pairs(uint4 w, u32 s2, u32* p) {
    const u32 wv[4] = {w.x, w.y, w.z, w.w};
    if (WF == WF_F16) {
#pragma unroll
        for (int q = 0; q < 4; q++) p[q] = wv[q];
    } else if (WF == WF_I8) {
#pragma unroll
        for (int q = 0; q < 4; q++) i8x4_h2(wv[q], p[2 * q], p[2 * q + 1]);
    } else if (WF == WF_F8) {
        // E4M3 codes → exact f16 (cvt.rn.f16x2.e4m3x2 on sm_89+); the row scale comes after the sum.
#pragma unroll
        for (int q = 0; q < 4; q++) e4m3x4_h2(wv[q], p[2 * q], p[2 * q + 1]);
    } else {
#pragma unroll
        for (int q = 0; q < 4; q++) i4_word_pairs<SCALE>(wv[q], s2, p + 4 * q);
    }
}

// The tensor-core kernels' epilogue for output rows (2p, 2p + 1) of batch row t, sums y0, y1:
// int8 row scales, then RoPE + KV append (qkv_store), SwiGLU, residual add or store. Shared by the
// decode GEMV (tc_body) and the batched GEMM (tcg_body).
template <int WF, int EPI, bool CG = false, bool SCALED = false>
__device__ __forceinline__ void tc_epilogue(const GemvArgs& a, int t, int p, float y0, float y1) {
    if (WF_ROWSCALE(WF) && !SCALED) {  // SCALED: the caller applied the row scales (tc_core, c_scpre)
        y0 *= h2f(a.scales[2 * p]);
        y1 *= h2f(a.scales[2 * p + 1]);
    }
    y16_round<EPI>(y0, y1);
    if (EPI == EPI_QKV) {
        qkv_store(t, p, y0, y1, a.out, a.kc, a.vc, a.row_pos, a.row_slot, a.rcos, a.rsin);
    } else if (EPI == EPI_SWIGLU) {
        a.out_act[(size_t)t * (a.N / 2) + p] = f2act(silu(y0) * y1);
    } else if (EPI == EPI_RESID) {
        float* o = a.out + (size_t)t * a.N + 2 * p;
        if (CG) {
            const float2 v = __ldcg((const float2*)o);
            *(float2*)o = make_float2(v.x + y0, v.y + y1);
        } else {
            o[0] += y0;
            o[1] += y1;
        }
    } else {
        float* o = a.out + (size_t)t * a.N + 2 * p;
        o[0] = y0;
        o[1] = y1;
    }
}

// The tensor-core GEMV as a device function over virtual blocks vblk of vgrid: the tc_* kernels call
// it with (blockIdx.x, gridDim.x) and griddepcontrol.wait as `wait`; the persistent decode kernel
// (end of this file) calls it once per phase with a grid barrier as `wait`, so every block's first
// weight loads of the phase are in flight while the barrier completes. PERSIST: activations are
// read through L2 (ld.cg: other blocks of the same launch wrote them) and no PDL trigger.
struct PdlWait {
    __device__ __forceinline__ void operator()() const { pdl_wait(); }
};
// tc_core's block reduction arrays: one pair per kernel (not per template instance), so the
// persistent kernel's four GEMV phases share them (static shared memory is capped at 48 KB).
typedef float TcPart[16][9];
__device__ __forceinline__ TcPart* tc_part() {
    __shared__ float part[TC_WARPS][16][9];
    return part;
}
__device__ __forceinline__ float* tc_red() {
    __shared__ float red[32];
    return red;
}
// The timeline kind (TL_*) of a tc_* instance.
template <int PRO, int EPI, int K>
struct TlKind {
    enum { V = EPI == EPI_QKV ? TL_QKV : EPI == EPI_SWIGLU ? TL_GATEUP : EPI == EPI_STORE ? TL_HEAD : K == INTER ? TL_DOWN : TL_O };
};
// Session 29 (TRTFORGE_GUD, the `tcd_*_gateup` instances; opt-in, slower than the two kernels, docs/cuda.md): the
// one-row down projection fused into the gate/up GEMV. Block b takes the contiguous tiles [t0, t1) (h columns
// 8 t0 .. 8 t1), keeps its h values (silu(g) u, rounded as the swiglu epilogue rounds them) in shared memory, and
// after its last tile adds its partial down sums into the residual h by red.global.add.f32 -- once every block has
// staged its normalized copy of h (counter cnt[0]; cnt[1] counts the blocks past that wait, the last one zeroes
// both). The down weights come from a column-tile copy (below). Session 29's first version (FD 1, staging a block's
// down weights in shared memory before griddepcontrol.wait) lost more and was removed: docs/benchmarks/
// 2026-12-03-h200-session29/fd1.patch.
struct FdArgs {
    const h16* wd;  // down weights in column tiles (INTER / 8, HIDDEN, 8) f16: tile j = h columns 8j .. 8j + 7
    float* resid;   // h (1, HIDDEN) f32
    int* cnt;       // two counters, zero between launches
    int mode;       // diagnostics (TRTFORGE_GUD_MODE; wrong results): 1 no adds, 2 no down loads, 4 no counter wait, 8 no down phase
};
// Byte offset of the h values (64 halves) in the dynamic shared memory of a tcd_* block, after x (one row of XS halves).
template <int XS>
struct FdSmem {
    enum { H = ((XS * 2 + 127) / 128) * 128 };
};
__device__ __forceinline__ void fd_count(int* c) {
    __threadfence();
    atomicAdd(c, 1);
}
// Thread 0: waits until all vgrid blocks have counted their staged x, then counts itself past the wait; the last
// block past it zeroes both counters for the next launch.
__device__ __forceinline__ void fd_wait_staged(int* cnt, const int vgrid) {
    while (*(volatile int*)cnt < vgrid) {
    }
    __threadfence();
    if (atomicAdd(cnt + 1, 1) == vgrid - 1) {
        *(volatile int*)cnt = 0;
        *(volatile int*)(cnt + 1) = 0;
    }
}
// FD: each thread owns down rows r = threadIdx.x + 512 i; after tile j's mmas it loads
// row r's 8 columns of tile j (16 bytes of the column-tile copy: a warp reads 512 contiguous bytes) into registers,
// and once h_j is in shared memory adds their products into its row sums; the sums go into h after the last tile.
// Shared memory stays the gate/up GEMV's (one x row + 128 bytes).
constexpr int FD_NR = (HIDDEN + TC_WARPS * 32 - 1) / (TC_WARPS * 32);
// FD_EARLY (TRTFORGE_GUD_EARLY=1): tile j's down loads at the top of its iteration, before its mmas, instead of after.
#ifndef FD_EARLY
#define FD_EARLY 0
#endif
__device__ __forceinline__ void fd_issue(const FdArgs* fd, int tile, uint4* dv) {
#pragma unroll
    for (int i = 0; i < FD_NR; i++) {
        const int r = threadIdx.x + i * TC_WARPS * 32;
        dv[i] = (r < HIDDEN && !(fd->mode & 2)) ? ldg_nc(fd->wd + ((size_t)tile * HIDDEN + r) * 8) : make_uint4(0, 0, 0, 0);
    }
}
__device__ __forceinline__ void fd_consume(const h16* hj, const uint4* dv, float* dacc) {
    const uint4 hv = *(const uint4*)hj;
    const u32 xv[4] = {hv.x, hv.y, hv.z, hv.w};
    float xf[8];
#pragma unroll
    for (int q = 0; q < 4; q++) {
        xf[2 * q] = h2f((h16)(xv[q] & 0xffffu));
        xf[2 * q + 1] = h2f((h16)(xv[q] >> 16));
    }
#pragma unroll
    for (int i = 0; i < FD_NR; i++) {
        const u32 wv[4] = {dv[i].x, dv[i].y, dv[i].z, dv[i].w};
        float acc = dacc[i];
#pragma unroll
        for (int q = 0; q < 4; q++) {
            acc = fmaf(h2f((h16)(wv[q] & 0xffffu)), xf[2 * q], acc);
            acc = fmaf(h2f((h16)(wv[q] >> 16)), xf[2 * q + 1], acc);
        }
        dacc[i] = acc;
    }
}
__device__ __forceinline__ void fd_finish(const FdArgs* fd, const float* dacc, const int vgrid) {
    if (fd->mode & 8) return;
    if (threadIdx.x == 0 && !(fd->mode & 4)) fd_wait_staged(fd->cnt, vgrid);
    __syncthreads();  // every block's x staged
#pragma unroll
    for (int i = 0; i < FD_NR; i++) {
        const int r = threadIdx.x + i * TC_WARPS * 32;
        if (r < HIDDEN && !(fd->mode & 1))
            asm volatile("red.global.add.f32 [%0], %1;" ::"l"(fd->resid + r), "f"(dacc[i]) : "memory");
    }
}
template <int WF, int PRO, int EPI, int K, bool PERSIST, bool FD = false, class Wait>
__device__ __forceinline__ void tc_core(const GemvArgs& a, const int vblk, const int vgrid, Wait wait,
                                        const FdArgs* fd = nullptr) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    static_assert(!FD || (EPI == EPI_SWIGLU && !PERSIST && WF == WF_F16 && K == HIDDEN), "FD: the f16 one-row gate/up");
    constexpr int XS = K + 8;  // x row stride in halves: +16 bytes keeps the 8 rows' reads on distinct banks
    h16* xs = (h16*)smem_raw;  // (T, XS)
    float* red = tc_red();
    TcPart* part = tc_part();
    constexpr int CH = Tc<WF>::CH, STEPK = Tc<WF>::STEPK, MMAS = Tc<WF>::MMAS;
    // (The persistent layer keeps Tc<WF>::U: its other phases leave no registers for more loads in flight.)
    constexpr int TC_U = PERSIST ? (int)Tc<WF>::U : (int)TcU<WF, K>::V;
    constexpr int NSTEP = (K + STEPK - 1) / STEPK;
    constexpr int SPW = (NSTEP + TC_WARPS - 1) / TC_WARPS;  // steps per warp, at most
    constexpr size_t ROWB = (size_t)K * 16 / CH;            // bytes per weight row
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int T = a.T;
    const int ntiles = a.N >> 4;
    const unsigned char* W = (const unsigned char*)a.w;
    uint4 va[TC_U], vb[TC_U];
    // Session 6 (c_scpre, TRTFORGE_BS1=scpre): the scales are loaded with the weights instead of when
    // they are used — int4 group scales of each loaded step (qa/qb), int8/fp8 row scales of the
    // epilogue thread's rows (rs, for the tile after this one nrs) — so that no dependent DRAM round
    // trip is left between a tile's mmas and its epilogue. Same values, same arithmetic.
    const bool scpre = !PERSIST && a.T <= c_scpre;
    // I4_POST: the group scale after the mma, one group a step (the scale of step s is group s for every lane).
    constexpr bool I4P = I4_POST && WF == WF_I4 && !PERSIST && I4_GROUP == STEPK;
    // The int4 scale group of step st at this lane's input k, and whether it has one to load: by input (a lane past K
    // none), with I4_POST by step (every lane of a step scales its sums by the step's group).
    auto sgroup = [&](int st, int k) { return I4P ? (st < NSTEP ? st : 0) : (k < K ? k : 0) / I4_GROUP; };
    auto shas = [&](int st, int k) { return I4P ? st < NSTEP : k < K; };
    // TC_XCLAMP: the x fragments without a predicate — a lane whose batch row g is past T reads row 0 (its sums land in
    // accumulator columns >= T, which no epilogue reads: the mma's columns are independent), and a lane past K is
    // possible only where K is not a whole number of steps (then it keeps the zero fill: stored padding times
    // whatever follows the row could be NaN).
    constexpr bool KPART = NSTEP * STEPK != K;
    const int gx = (TC_XCLAMP && g >= T) ? 0 : g;
    auto xok = [&](int k) { return TC_XCLAMP ? (!KPART || k < K) : (g < T && k < K); };
    u32 qa[TC_U], qb[TC_U];
    auto load = [&](int tile, int b0) {
        const unsigned char* wa = W + (size_t)(tile * 16 + g) * ROWB;
        const unsigned char* wb = wa + 8 * ROWB;
#pragma unroll
        for (int i = 0; i < TC_U; i++) {
            const int k = (warp + (b0 + i) * TC_WARPS) * STEPK + t4 * CH;
            const bool in = (b0 + i < SPW) && k < K;
            va[i] = in ? ldg_nc(wa + (size_t)k * 16 / CH) : make_uint4(0, 0, 0, 0);
            vb[i] = in ? ldg_nc(wb + (size_t)k * 16 / CH) : make_uint4(0, 0, 0, 0);
        }
        if (WF == WF_I4) {
#pragma unroll
            for (int i = 0; i < TC_U; i++) {
                const int st = warp + (b0 + i) * TC_WARPS, k = st * STEPK + t4 * CH;
                const bool in = scpre && (b0 + i < SPW) && shas(st, k);
                const int gi = sgroup(st, k);
                qa[i] = in ? (u32)a.scales[(size_t)(tile * 16 + g) * I4_GPR(K) + gi] : 0u;
                qb[i] = in ? (u32)a.scales[(size_t)(tile * 16 + g + 8) * I4_GPR(K) + gi] : 0u;
            }
        }
    };
    u32 rs = 0, nrs = 0;  // row scales (f16 pair) of rows 2p, 2p + 1 of this epilogue thread
    auto load_rs = [&](int tile) -> u32 {
        if (!WF_ROWSCALE(WF) || !scpre || threadIdx.x >= 64 || tile >= ntiles) return 0u;
        const int p = tile * 8 + (threadIdx.x >> 3);
        return *(const u32*)(a.scales + 2 * p);
    };
    constexpr bool PF2 =
        TC_PF2 && !PERSIST && !FD && 2 * SPW <= TC_U && (EPI == EPI_STORE || (EPI == EPI_SWIGLU && WF != WF_F16));
    // PF2: the SPW steps of tile `tl` into slots [OFF, OFF + SPW).
    auto loadoff = [&](auto OFFC, int tl) {
        constexpr int OFF = decltype(OFFC)::v;
        const unsigned char* wa = W + (size_t)(tl * 16 + g) * ROWB;
        const unsigned char* wb = wa + 8 * ROWB;
#pragma unroll
        for (int i = 0; i < SPW; i++) {
            const int k = (warp + i * TC_WARPS) * STEPK + t4 * CH;
            const bool in = k < K;
            va[OFF + i] = in ? ldg_nc(wa + (size_t)k * 16 / CH) : make_uint4(0, 0, 0, 0);
            vb[OFF + i] = in ? ldg_nc(wb + (size_t)k * 16 / CH) : make_uint4(0, 0, 0, 0);
            if (WF == WF_I4) {
                const int st = warp + i * TC_WARPS;
                const bool sin = scpre && shas(st, k);
                const int gi = sgroup(st, k);
                qa[OFF + i] = sin ? (u32)a.scales[(size_t)(tl * 16 + g) * I4_GPR(K) + gi] : 0u;
                qb[OFF + i] = sin ? (u32)a.scales[(size_t)(tl * 16 + g + 8) * I4_GPR(K) + gi] : 0u;
            }
        }
    };
    // FD: contiguous tiles [t0, t1); otherwise tiles vblk, vblk + vgrid, ...
    const int t0 = FD ? (int)(((long long)vblk * ntiles) / vgrid) : vblk;
    const int t1 = FD ? (int)(((long long)(vblk + 1) * ntiles) / vgrid) : ntiles;
    const int tstep = FD ? 1 : vgrid;
    int tile = t0;
    if (tile < t1) load(tile, 0);
    uint4 dv[FD ? FD_NR : 1];
    float dacc[FD ? FD_NR : 1];
#pragma unroll
    for (int i = 0; i < (FD ? FD_NR : 1); i++) dacc[i] = 0.f;
    (void)dv;
    if constexpr (PF2) {
        if (tile + vgrid < ntiles) loadoff(TcIC<SPW>{}, tile + vgrid);
    }
    if (RS_LATE) nrs = load_rs(tile);  // taken into rs after the tile's mmas
    else rs = load_rs(tile);
    // The per-tile trace (TL_ON builds only; not the persistent layer, whose blocks are not this launch's).
    constexpr int TTK = PERSIST ? -1 : (int)TlKind<PRO, EPI, K>::V;
    int tt_i = 0;  // tiles done (trace)
    (void)tt_i;
    auto tt = [&](int f) {
        if constexpr (TL_ON && !PERSIST) tt_put(f, TTK);
    };
    auto tt_tile = [&](int half) {
        if constexpr (TL_ON && !PERSIST) {
            if (tt_i < TT_TILES) tt_put(TT_T0 + 2 * tt_i + half, TTK);
            tt_i += half;
        }
    };
    if constexpr (PRO == PRO_COMB && TC_PTOUCH) {
        // Never true (nsplit = splits | copies << 16 > 0; a cluster has at least one block): the constant lines of
        // nsplit / part and of the cluster size (%cluster_nctarank, read from the driver's constant bank).
        if (a.nsplit == (int)0x80000000 || cl_nct() == 0u) __trap();
    }
    tt(TT_WAIT0);
    wait();
    tt(TT_WAIT1);
    if constexpr (PRO == PRO_COMB) stage_comb<K, TC_WARPS * 32, XS>(a, (act_t*)xs);
    else stage_x<PRO, K, TC_WARPS * 32, XS, PERSIST>(a, (act_t*)xs, red);
    __syncthreads();
    if constexpr (FD) {
        if (threadIdx.x == 0) fd_count(fd->cnt);  // this block's reads of h are done
    }
    tt(TT_STAGED);
    // Timeline builds: the folded o GEMV stamps "trig" when its combine prologue is done (session 12:
    // where its extra time goes), not at its trigger.
    if constexpr (PRO == PRO_COMB) tl_trig();
    // One k-step s of tile tl into acc: the lane's weights in load slot j (va / vb: rows g, g + 8), their int4 group
    // scales (with scpre the ones loaded with them, qa / qb; else read here) and x from shared memory. Both tile loops.
    auto tc_step = [&](float* acc, int j, int s, int tl) {
        const int k = s * STEPK + t4 * CH;
        const bool xin = xok(k);
        u32 sa = 0, sb = 0, ha = 0, hb = 0;
        if (WF == WF_I4) {
            const int gi = sgroup(s, k);
            ha = scpre ? qa[j] : a.scales[(size_t)(tl * 16 + g) * I4_GPR(K) + gi];
            hb = scpre ? qb[j] : a.scales[(size_t)(tl * 16 + g + 8) * I4_GPR(K) + gi];
            sa = ha | (ha << 16);
            sb = hb | (hb << 16);
        }
        u32 pa[CH / 2], pb[CH / 2];
        tc_pairs<WF, !I4P>(va[j], sa, pa);
        tc_pairs<WF, !I4P>(vb[j], sb, pb);
        const h16* xr = xs + gx * XS + k;
        float acs[4] = {0.f, 0.f, 0.f, 0.f};  // I4P: this step's sums, scaled below
        float* ac = I4P ? acs : acc;
#pragma unroll
        for (int v = 0; v < CH / 8; v++) {
            const uint4 xv = xin ? *(const uint4*)(xr + 8 * v) : make_uint4(0, 0, 0, 0);
            mma16816(ac, pa[4 * v], pb[4 * v], pa[4 * v + 1], pb[4 * v + 1], xv.x, xv.y);
            mma16816(ac, pa[4 * v + 2], pb[4 * v + 2], pa[4 * v + 3], pb[4 * v + 3], xv.z, xv.w);
        }
        if constexpr (I4P) i4_post_add(acc, acs, ha, hb);
    };
    if constexpr (PF2) {
        auto run = [&](auto OFFC, int tl) {
            constexpr int OFF = decltype(OFFC)::v;
            float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
            for (int i = 0; i < SPW; i++) {
                const int s = warp + i * TC_WARPS;
                if (s >= NSTEP) break;
                tc_step(acc, OFF + i, s, tl);
            }
            if (tl + vgrid >= ntiles) {
                pdl_trigger();
                if constexpr (PRO != PRO_COMB) tl_trig();
            }
            part[warp][g][2 * t4] = acc[0];
            part[warp][g][2 * t4 + 1] = acc[1];
            part[warp][g + 8][2 * t4] = acc[2];
            part[warp][g + 8][2 * t4 + 1] = acc[3];
            if (tl + 2 * vgrid < ntiles) loadoff(OFFC, tl + 2 * vgrid);  // two tiles ahead, into the slots just used
            if (RS_LATE) rs = nrs;  // loaded a tile ago (see RS_LATE)
            nrs = load_rs(tl + vgrid);
            __syncthreads();
            tt_tile(0);
            if (threadIdx.x < 64) {
                const int pp = threadIdx.x >> 3, t = threadIdx.x & 7;
                if (t < T) {
                    float y0 = 0.f, y1 = 0.f;
#pragma unroll
                    for (int w = 0; w < TC_WARPS; w++) {
                        y0 += part[w][2 * pp][t];
                        y1 += part[w][2 * pp + 1][t];
                    }
                    if (WF_ROWSCALE(WF) && scpre) {
                        y0 *= h2f((h16)(rs & 0xffffu));
                        y1 *= h2f((h16)(rs >> 16));
                        tc_epilogue<WF, EPI, PERSIST, true>(a, t, tl * 8 + pp, y0, y1);
                    } else {
                        tc_epilogue<WF, EPI, PERSIST>(a, t, tl * 8 + pp, y0, y1);
                    }
                }
            }
            if (!RS_LATE) rs = nrs;
            __syncthreads();
            tt_tile(1);
        };
        for (; tile < ntiles; tile += 2 * vgrid) {
            run(TcIC<0>{}, tile);
            if (tile + vgrid >= ntiles) break;
            run(TcIC<SPW>{}, tile + vgrid);
        }
        tile = ntiles;  // the loop below is skipped
    }
    for (; tile < t1; tile += tstep) {
        if (FD && FD_EARLY) fd_issue(fd, tile, dv);  // in flight during the tile's mmas
        float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll 1
        for (int b0 = 0; b0 < SPW; b0 += TC_U) {
            if (b0 > 0) load(tile, b0);
#pragma unroll
            for (int i = 0; i < TC_U; i++) {
                const int s = warp + (b0 + i) * TC_WARPS;
                if (b0 + i >= SPW || s >= NSTEP) break;
                tc_step(acc, i, s, tile);
                (void)MMAS;
            }
        }
        if (!PERSIST && tile + tstep >= t1) {
            pdl_trigger();
            if constexpr (PRO != PRO_COMB) tl_trig();
        }
        part[warp][g][2 * t4] = acc[0];
        part[warp][g][2 * t4 + 1] = acc[1];
        part[warp][g + 8][2 * t4] = acc[2];
        part[warp][g + 8][2 * t4 + 1] = acc[3];
        const int next = tile + tstep;
        if (next < t1) load(next, 0);  // the next tile's first loads fly during the reduction
        if (FD && !FD_EARLY) fd_issue(fd, tile, dv);
        if (RS_LATE) rs = nrs;  // loaded a tile ago (see RS_LATE)
        nrs = load_rs(next);
        __syncthreads();
        tt_tile(0);
        if (threadIdx.x < 64) {
            const int pp = threadIdx.x >> 3, t = threadIdx.x & 7;
            if (t < T) {
                float y0 = 0.f, y1 = 0.f;
#pragma unroll
                for (int w = 0; w < TC_WARPS; w++) {
                    y0 += part[w][2 * pp][t];
                    y1 += part[w][2 * pp + 1][t];
                }
                if constexpr (FD) {
                    y16_round<EPI>(y0, y1);
                    ((act_t*)(smem_raw + FdSmem<XS>::H))[(tile - t0) * 8 + pp] = f2act(silu(y0) * y1);
                } else if (WF_ROWSCALE(WF) && scpre) {
                    y0 *= h2f((h16)(rs & 0xffffu));
                    y1 *= h2f((h16)(rs >> 16));
                    tc_epilogue<WF, EPI, PERSIST, true>(a, t, tile * 8 + pp, y0, y1);
                } else {
                    tc_epilogue<WF, EPI, PERSIST>(a, t, tile * 8 + pp, y0, y1);
                }
            }
        }
        if (!RS_LATE) rs = nrs;
        __syncthreads();
        tt_tile(1);
        if constexpr (FD) fd_consume((const h16*)(smem_raw + FdSmem<XS>::H) + (tile - t0) * 8, dv, dacc);
    }
    if (!PERSIST && t0 >= t1) {
        pdl_trigger();
        if constexpr (PRO != PRO_COMB) tl_trig();
    }
    if constexpr (FD) fd_finish(fd, dacc, vgrid);
    if constexpr (TL_ON && !PERSIST) tt_tiles(tt_i);
    tt(TT_END);
}
// The tc_* kernels: tc_core over (blockIdx.x, gridDim.x) with griddepcontrol.wait, plus the
// session-6 timeline stamps and the trigger switch (c_trig, see tl_enter). Called after the block's
// first weight loads are issued, so the constant reads overlap them.
template <int KIND>
struct PdlWaitTl {
    int rows;
    __device__ __forceinline__ void operator()() const {
        tl_enter(KIND);
        const int trig = trig_mode(KIND, rows);
        if (trig == 1) pdl_trigger();
        pdl_wait();
        if (trig == 2) pdl_trigger();
        tl_waited();
    }
};
template <int WF, int PRO, int EPI, int K>
__device__ __forceinline__ void tc_body(const GemvArgs& a) {
    tc_core<WF, PRO, EPI, K, false>(a, blockIdx.x, gridDim.x, PdlWaitTl<TlKind<PRO, EPI, K>::V>{a.T});
    tl_exit();
}
// Minimum resident blocks per SM asked of ptxas (session 7; a register cap of 64 / 40 registers for
// 2 / 3): TC_MINB for every tc_* instance (kernels.rs, TRTFORGE_TC_MINB=N), TC_MINB8 for the int8 /
// fp8 instances over the hidden size (qkv, o, gate/up; TRTFORGE_TC_MINB8=N) where it is larger.
// Without the timeline stamps (TL_ON 0) ptxas gives the uncapped tc_* kernels up to 126 registers
// (int8 down: one block per SM, which leaves no room for the next kernel's early PDL blocks).
#ifndef TC_MINB
#define TC_MINB_ALL 1
#else
#define TC_MINB_ALL TC_MINB
#endif
#ifndef TC_MINB8
#define TC_MINB8 1
#endif
#define TC_MINB_OF(WF, K) (((WF) == WF_I8 || (WF) == WF_F8) && (K) == HIDDEN && TC_MINB8 > TC_MINB_ALL ? TC_MINB8 : TC_MINB_ALL)
// Session 9: with STAGE_NB the gate/up GEMVs keep the two resident blocks per SM they had without it
// (ptxas: tc_f16_gateup 61 registers without STAGE_NB, 74 with it and no bound; the rows path that
// adds them runs only at 2-8 rows).
#define TC_MINB_EPI(WF, EPI, K) (STAGE_NB && (EPI) == EPI_SWIGLU && TC_MINB_OF(WF, K) < 2 ? 2 : TC_MINB_OF(WF, K))
#define TC_KERNEL(name, WF, PRO, EPI, K) \
    extern "C" __global__ void __launch_bounds__(TC_WARPS * 32, TC_MINB_EPI(WF, EPI, K)) name(GemvArgs a) { tc_body<WF, PRO, EPI, K>(a); }
// Session 29: the one-row gate/up GEMV with the down projection fused (FdArgs above; TRTFORGE_GUD=1).
#define TCD_KERNEL(name, WF, K) \
    extern "C" __global__ void __launch_bounds__(TC_WARPS * 32, 2) name(GemvArgs a, FdArgs f) { \
        tc_core<WF, PRO_NORM, EPI_SWIGLU, K, false, true>(a, blockIdx.x, gridDim.x, PdlWaitTl<TL_GATEUP>{a.T}, &f); \
        tl_exit(); \
    }
TC_INSTANCES

// Multi-tile tensor-core GEMV (session 6, opt-in TRTFORGE_BS1=tcm; `tcm_*`): the tc_* kernel with a
// block's tiles processed TCM_MT(WF, K) at a time instead of one after another. The first weight loads
// of all of them are issued before griddepcontrol.wait (with a grid of one round of MT tiles per
// block, every weight byte of the launch is requested before the previous kernel has finished), their
// partial tiles are reduced in one shared-memory round and their epilogues run on MT × 64 threads in
// parallel: one barrier pair per MT tiles. Same lane loads, k permutation and per-tile summation order
// as tc_core (bitwise the same outputs).
#define TCM_MAXMT 3
template <int WF, int K>
struct Tcm {
    enum {
        NSTEP = (K + Tc<WF>::STEPK - 1) / Tc<WF>::STEPK,
        SPW = (NSTEP + TC_WARPS - 1) / TC_WARPS,
        UU = Tc<WF>::U < SPW ? Tc<WF>::U : SPW,  // steps of one tile loaded at once
        MT0 = 48 / (UU * 8),                      // tiles in flight: ≤ 48 registers of weights per lane
        MT = MT0 < 1 ? 1 : MT0 > TCM_MAXMT ? TCM_MAXMT : MT0
    };
};
__device__ __forceinline__ float* tcm_part() {
    __shared__ float part[TCM_MAXMT][TC_WARPS][16][9];
    return &part[0][0][0][0];
}
template <int WF, int PRO, int EPI, int K>
__device__ __forceinline__ void tcm_core(const GemvArgs& a) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    constexpr int XS = K + 8;
    h16* xs = (h16*)smem_raw;
    float* red = tc_red();
    float* part = tcm_part();  // [MT][TC_WARPS][16][9]
    constexpr int CH = Tc<WF>::CH, STEPK = Tc<WF>::STEPK;
    constexpr int NSTEP = Tcm<WF, K>::NSTEP, SPW = Tcm<WF, K>::SPW, UU = Tcm<WF, K>::UU, MT = Tcm<WF, K>::MT;
    constexpr size_t ROWB = (size_t)K * 16 / CH;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int T = a.T;
    const int ntiles = a.N >> 4;
    const int vblk = blockIdx.x, vgrid = gridDim.x;
    const unsigned char* W = (const unsigned char*)a.w;
    uint4 va[MT][UU], vb[MT][UU];
    auto load = [&](int base, int b0) {
#pragma unroll
        for (int m = 0; m < MT; m++) {
            const int tile = base + m * vgrid;
            const unsigned char* wa = W + (size_t)(tile * 16 + g) * ROWB;
            const unsigned char* wb = wa + 8 * ROWB;
#pragma unroll
            for (int i = 0; i < UU; i++) {
                const int k = (warp + (b0 + i) * TC_WARPS) * STEPK + t4 * CH;
                const bool in = tile < ntiles && (b0 + i < SPW) && k < K;
                va[m][i] = in ? ldg_nc(wa + (size_t)k * 16 / CH) : make_uint4(0, 0, 0, 0);
                vb[m][i] = in ? ldg_nc(wb + (size_t)k * 16 / CH) : make_uint4(0, 0, 0, 0);
            }
        }
    };
    int base = vblk;
    if (base < ntiles) load(base, 0);
    PdlWaitTl<TlKind<PRO, EPI, K>::V>{a.T}();
    stage_x<PRO, K, TC_WARPS * 32, XS, false>(a, (act_t*)xs, red);
    __syncthreads();
    for (; base < ntiles; base += MT * vgrid) {
        float acc[MT][4];
#pragma unroll
        for (int m = 0; m < MT; m++) acc[m][0] = acc[m][1] = acc[m][2] = acc[m][3] = 0.f;
#pragma unroll 1
        for (int b0 = 0; b0 < SPW; b0 += UU) {
            if (b0 > 0) load(base, b0);
#pragma unroll
            for (int i = 0; i < UU; i++) {
                const int s = warp + (b0 + i) * TC_WARPS;
                if (b0 + i >= SPW || s >= NSTEP) break;
                const int k = s * STEPK + t4 * CH;
                const bool xin = g < T && k < K;
                uint4 xv[CH / 8];
#pragma unroll
                for (int v = 0; v < CH / 8; v++)
                    xv[v] = xin ? *(const uint4*)(xs + g * XS + k + 8 * v) : make_uint4(0, 0, 0, 0);
#pragma unroll
                for (int m = 0; m < MT; m++) {
                    const int tile = base + m * vgrid;
                    u32 sa = 0, sb = 0;
                    if (WF == WF_I4) {
                        const int gi = (k < K ? k : 0) / I4_GROUP;
                        const int tr = tile < ntiles ? tile : 0;
                        const u32 ha = a.scales[(size_t)(tr * 16 + g) * I4_GPR(K) + gi];
                        const u32 hb = a.scales[(size_t)(tr * 16 + g + 8) * I4_GPR(K) + gi];
                        sa = ha | (ha << 16);
                        sb = hb | (hb << 16);
                    }
                    u32 pa[CH / 2], pb[CH / 2];
                    tc_pairs<WF>(va[m][i], sa, pa);
                    tc_pairs<WF>(vb[m][i], sb, pb);
#pragma unroll
                    for (int v = 0; v < CH / 8; v++) {
                        mma16816(acc[m], pa[4 * v], pb[4 * v], pa[4 * v + 1], pb[4 * v + 1], xv[v].x, xv[v].y);
                        mma16816(acc[m], pa[4 * v + 2], pb[4 * v + 2], pa[4 * v + 3], pb[4 * v + 3], xv[v].z, xv[v].w);
                    }
                }
            }
        }
        const int next = base + MT * vgrid;
        if (next >= ntiles) { pdl_trigger(); tl_trig(); }
#pragma unroll
        for (int m = 0; m < MT; m++) {
            float* pw = part + ((size_t)m * TC_WARPS + warp) * 16 * 9;
            pw[g * 9 + 2 * t4] = acc[m][0];
            pw[g * 9 + 2 * t4 + 1] = acc[m][1];
            pw[(g + 8) * 9 + 2 * t4] = acc[m][2];
            pw[(g + 8) * 9 + 2 * t4 + 1] = acc[m][3];
        }
        if (next < ntiles) load(next, 0);  // the next round's first loads fly during the reduction
        __syncthreads();
        if (threadIdx.x < 64 * MT) {
            const int m = threadIdx.x >> 6, pp = (threadIdx.x >> 3) & 7, t = threadIdx.x & 7;
            const int tile = base + m * vgrid;
            if (t < T && tile < ntiles) {
                float y0 = 0.f, y1 = 0.f;
#pragma unroll
                for (int w = 0; w < TC_WARPS; w++) {
                    const float* pw = part + ((size_t)m * TC_WARPS + w) * 16 * 9;
                    y0 += pw[(2 * pp) * 9 + t];
                    y1 += pw[(2 * pp + 1) * 9 + t];
                }
                tc_epilogue<WF, EPI, false>(a, t, tile * 8 + pp, y0, y1);
            }
        }
        __syncthreads();
    }
    if (vblk >= ntiles) { pdl_trigger(); tl_trig(); }
}
template <int WF, int PRO, int EPI, int K>
__device__ __forceinline__ void tcm_body(const GemvArgs& a) {
    tcm_core<WF, PRO, EPI, K>(a);
    tl_exit();
}
#define TCM_KERNEL(name, WF, PRO, EPI, K) \
    extern "C" __global__ void __launch_bounds__(TC_WARPS * 32) name(GemvArgs a) { tcm_body<WF, PRO, EPI, K>(a); }
TCM_INSTANCES

// ---------------------------------------------------------------------------------------------
// Tensor-core GEMM for decode batches of 9..64 rows (f16 activations, sm_80+):
// y (T, N) = x (T, K) · Wᵀ, x (T, K) act_t (already normalized where the step has an RMSNorm).
// grid (G, S): the block (bx, s) stages the K slice s of x — columns [s·ks, s·ks + ks), all 64 rows,
// zero beyond T and K — in shared memory once, then each of its TCG_WARPS warps walks whole tiles of
// 16 output rows (tile = bx·TCG_WARPS + warp, + G·TCG_WARPS, ...) over that slice: the same weight
// layouts, lane loads, in-register int8/int4 → f16 conversion and k permutation as tc_body, but the
// A fragments of a step feed 8 mmas, one per 8 batch rows (n8 tile j reads rows 8j + g of x).
// The slice's 16 × 64 partial tile goes to ws (tile, s, t, row) f32; the last warp to finish a tile
// (counter per tile, reset by that warp) sums the S partials in slice order (deterministic) and
// runs tc_epilogue. K is split across blocks so that 64 rows of x fit in shared memory and the
// small matrices still spread over every SM.
#define TCG_WARPS 8
#define TCG_ROWS 64
template <int WF> struct Tcg;
// U: steps of weight loads issued at once; PAD: x row padding in halves (conflict-free B reads).
template <> struct Tcg<WF_F16> { enum { U = 4, PAD = 32 }; };
template <> struct Tcg<WF_I8> { enum { U = 2, PAD = 8 }; };
template <> struct Tcg<WF_I4> { enum { U = 2, PAD = 8 }; };
template <> struct Tcg<WF_F8> { enum { U = 2, PAD = 8 }; };

// Pairs 4v .. 4v + 3 of tc_pairs (the chunk's elements 8v .. 8v + 7), computed alone.
template <int WF>
__device__ __forceinline__ void tc_pairs4(uint4 w, u32 s2, int v, u32* p) {
    const u32 wv[4] = {w.x, w.y, w.z, w.w};
    if (WF == WF_F16) {
#pragma unroll
        for (int q = 0; q < 4; q++) p[q] = wv[q];
    } else if (WF == WF_I8) {
#pragma unroll
        for (int q = 0; q < 2; q++) i8x4_h2(wv[2 * v + q], p[2 * q], p[2 * q + 1]);
    } else if (WF == WF_F8) {
#pragma unroll
        for (int q = 0; q < 2; q++) e4m3x4_h2(wv[2 * v + q], p[2 * q], p[2 * q + 1]);
    } else {
        i4_word_pairs(wv[v], s2, p);
    }
}

template <int WF, int EPI, int K>
__device__ __forceinline__ void tcg_body(const GemvArgs& a, float* __restrict__ ws, int* __restrict__ cnt, int ks) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    constexpr int CH = Tc<WF>::CH, STEPK = Tc<WF>::STEPK, U = Tcg<WF>::U;
    constexpr size_t ROWB = (size_t)K * 16 / CH;  // bytes per weight row
    const int XS = ks + Tcg<WF>::PAD;             // x row stride in halves
    h16* xs = (h16*)smem_raw;                     // (TCG_ROWS, XS)
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int T = a.T, ntiles = a.N >> 4;
    const int S = gridDim.y, s = blockIdx.y, kbeg = s * ks;
    const int nsteps = (min(ks, K - kbeg) + STEPK - 1) / STEPK;
    const unsigned char* W = (const unsigned char*)a.w;
    uint4 va[U], vb[U];
    auto load = [&](int tile, int b0) {
        const unsigned char* wa = W + (size_t)(tile * 16 + g) * ROWB;
        const unsigned char* wb = wa + 8 * ROWB;
#pragma unroll
        for (int i = 0; i < U; i++) {
            const int k = kbeg + (b0 + i) * STEPK + t4 * CH;
            const bool in = b0 + i < nsteps && k < K;
            va[i] = in ? ldg_nc(wa + (size_t)k * 16 / CH) : make_uint4(0, 0, 0, 0);
            vb[i] = in ? ldg_nc(wb + (size_t)k * 16 / CH) : make_uint4(0, 0, 0, 0);
        }
    };
    const int tstride = gridDim.x * TCG_WARPS;
    int tile = blockIdx.x * TCG_WARPS + warp;
    if (tile < ntiles) load(tile, 0);
    pdl_wait();
    {
        // All of the slice's 16-byte copies in flight at once (cp.async, zero-filled outside x).
        const int vpr = ks / 8;  // 16-byte vectors per staged row
        for (int i = threadIdx.x; i < TCG_ROWS * vpr; i += TCG_WARPS * 32) {
            const int r = i / vpr, c = i - r * vpr, k = kbeg + 8 * c;
            const bool in = r < T && k < K;
            const act_t* src = in ? a.x + (size_t)r * K + k : a.x;
#if __CUDA_ARCH__ >= 800
            u32 dst;
            asm("{ .reg .u64 p; cvta.to.shared.u64 p, %1; cvt.u32.u64 %0, p; }" : "=r"(dst) : "l"(xs + r * XS + 8 * c));
            asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(in ? 16 : 0) : "memory");
#else
            *(uint4*)(xs + r * XS + 8 * c) = in ? *(const uint4*)src : make_uint4(0, 0, 0, 0);
#endif
        }
#if __CUDA_ARCH__ >= 800
        asm volatile("cp.async.wait_all;" ::: "memory");
#endif
    }
    __syncthreads();
    for (; tile < ntiles; tile += tstride) {
        float acc[TCG_ROWS / 8][4];
#pragma unroll
        for (int j = 0; j < TCG_ROWS / 8; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
#pragma unroll 1
        for (int b0 = 0; b0 < nsteps; b0 += U) {
            if (b0 > 0) load(tile, b0);
#pragma unroll
            for (int i = 0; i < U; i++) {
                if (b0 + i >= nsteps) break;
                const int kl = (b0 + i) * STEPK + t4 * CH;  // k inside the slice
                u32 sa = 0, sb = 0;
                if (WF == WF_I4) {
                    const int k = kbeg + kl;
                    const int gi = (k < K ? k : 0) / I4_GROUP;
                    const u32 ha = a.scales[(size_t)(tile * 16 + g) * I4_GPR(K) + gi];
                    const u32 hb = a.scales[(size_t)(tile * 16 + g + 8) * I4_GPR(K) + gi];
                    sa = ha | (ha << 16);
                    sb = hb | (hb << 16);
                }
#pragma unroll
                for (int v = 0; v < CH / 8; v++) {
                    // Pairs 4v .. 4v + 3 of rows g and g + 8 (8 of the chunk's elements), converted
                    // once and used by the 8 n-tiles: fewer live registers than the whole chunk.
                    u32 pa[4], pb[4];
                    tc_pairs4<WF>(va[i], sa, v, pa);
                    tc_pairs4<WF>(vb[i], sb, v, pb);
#pragma unroll
                    for (int j = 0; j < TCG_ROWS / 8; j++) {
                        const uint4 xv = *(const uint4*)(xs + (8 * j + g) * XS + kl + 8 * v);
                        mma16816(acc[j], pa[0], pb[0], pa[1], pb[1], xv.x, xv.y);
                        mma16816(acc[j], pa[2], pb[2], pa[3], pb[3], xv.z, xv.w);
                    }
                }
            }
        }
        const int next = tile + tstride;
        if (next >= ntiles) pdl_trigger();
        // Partial tile (this slice) -> ws[tile][s][t][row]; accumulator (row g / g + 8, col 2·t4 (+1)).
        float* wp = ws + ((size_t)tile * S + s) * (TCG_ROWS * 16);
#pragma unroll
        for (int j = 0; j < TCG_ROWS / 8; j++) {
            const int c = 8 * j + 2 * t4;
            if (c < T) {
                wp[c * 16 + g] = acc[j][0];
                wp[c * 16 + g + 8] = acc[j][2];
            }
            if (c + 1 < T) {
                wp[(c + 1) * 16 + g] = acc[j][1];
                wp[(c + 1) * 16 + g + 8] = acc[j][3];
            }
        }
        if (next < ntiles) load(next, 0);  // the next tile's first loads fly during the reduction
        __threadfence();
        __syncwarp();
        int prev = 0;
        if (lane == 0) prev = atomicAdd(&cnt[tile], 1);
        prev = __shfl_sync(0xffffffffu, prev, 0);
        if (prev == S - 1) {
            // Last slice of this tile: every partial is in ws (written before its warp's fence).
            __threadfence();
            // Lane: output pair pp = lane % 8 of the tile, batch rows t = lane / 8 + 4·it. Every
            // global access below is issued IPL at a time (independent loads in flight), never one
            // dependent round trip per item: this tail runs once per tile.
            constexpr int IPL = TCG_ROWS * 8 / 32;
            const int pp = lane & 7, p = tile * 8 + pp;
            const float* tp = ws + (size_t)tile * S * (TCG_ROWS * 16) + 2 * pp;
            float y0[IPL], y1[IPL];
#pragma unroll
            for (int it = 0; it < IPL; it++) y0[it] = y1[it] = 0.f;
#pragma unroll 2
            for (int q = 0; q < S; q++) {
#pragma unroll
                for (int it = 0; it < IPL; it++) {
                    const int t = (lane >> 3) + 4 * it;
                    if (t < T) {
                        const float2 v = __ldcg((const float2*)(tp + (size_t)q * (TCG_ROWS * 16) + t * 16));
                        y0[it] += v.x;
                        y1[it] += v.y;
                    }
                }
            }
            float s0 = 1.f, s1 = 1.f;
            if (WF_ROWSCALE(WF) && EPI != EPI_QKV) {
                s0 = h2f(a.scales[2 * p]);
                s1 = h2f(a.scales[2 * p + 1]);
            }
            if (EPI == EPI_RESID) {
#pragma unroll
                for (int h0 = 0; h0 < IPL; h0 += IPL / 2) {  // two halves: no register spills
                    float2 hv[IPL / 2];
#pragma unroll
                    for (int it = 0; it < IPL / 2; it++) {
                        const int t = (lane >> 3) + 4 * (h0 + it);
                        if (t < T) hv[it] = *(const float2*)(a.out + (size_t)t * a.N + 2 * p);
                    }
#pragma unroll
                    for (int it = 0; it < IPL / 2; it++) {
                        const int t = (lane >> 3) + 4 * (h0 + it);
                        if (t < T)
                            *(float2*)(a.out + (size_t)t * a.N + 2 * p) =
                                make_float2(hv[it].x + y0[h0 + it] * s0, hv[it].y + y1[h0 + it] * s1);
                    }
                }
            } else if (EPI == EPI_STORE) {
#pragma unroll
                for (int it = 0; it < IPL; it++) {
                    const int t = (lane >> 3) + 4 * it;
                    if (t < T) *(float2*)(a.out + (size_t)t * a.N + 2 * p) = make_float2(y0[it] * s0, y1[it] * s1);
                }
            } else if (EPI == EPI_SWIGLU) {
#pragma unroll
                for (int it = 0; it < IPL; it++) {
                    const int t = (lane >> 3) + 4 * it;
                    if (t < T) a.out_act[(size_t)t * (a.N / 2) + p] = f2act(silu(y0[it] * s0) * (y1[it] * s1));
                }
            } else {
                // Warm L1 with this lane's RoPE table entries (all rows at once), then the shared
                // epilogue (RoPE + KV append through qkv_store).
                if (p < (QDIM + KVDIM) / 2) {
#pragma unroll
                    for (int it = 0; it < IPL; it++) {
                        const int t = (lane >> 3) + 4 * it;
                        if (t < T) {
                            const size_t e = (size_t)a.row_pos[t] * HALF_HD + p % HALF_HD;
                            asm volatile("prefetch.global.L1 [%0];" ::"l"(a.rcos + e));
                            asm volatile("prefetch.global.L1 [%0];" ::"l"(a.rsin + e));
                        }
                    }
                }
#pragma unroll
                for (int it = 0; it < IPL; it++) {
                    const int t = (lane >> 3) + 4 * it;
                    if (t >= T) break;
                    tc_epilogue<WF, EPI>(a, t, p, y0[it], y1[it]);
                    if (a.out_act != nullptr && p < QDIM / 2) {
                        // Prefill passes: q also as act_t (T, QDIM) for the cuBLAS attention path
                        // (read back from qout, which this thread just wrote with RoPE applied).
                        const int off = (p / HALF_HD) * HD + p % HALF_HD;
                        const float* qr = a.out + (size_t)t * QDIM + off;
                        a.out_act[(size_t)t * QDIM + off] = f2act(qr[0]);
                        a.out_act[(size_t)t * QDIM + off + HALF_HD] = f2act(qr[HALF_HD]);
                    }
                }
            }
            if (lane == 0) cnt[tile] = 0;  // ready for the next launch
        }
    }
    if (blockIdx.x * TCG_WARPS + warp >= ntiles) pdl_trigger();
}
// Two blocks per SM (128 registers) where that compiles without spills; int8/int4 (the code → f16x2
// conversion) and the logits store need a few more registers and get one.
#define TCG_MINB(WF, EPI) (((WF) != WF_F16 || (EPI) == EPI_STORE) ? 1 : 2)
#define TCG_KERNEL(name, WF, EPI, K)                                                                       \
    extern "C" __global__ void __launch_bounds__(TCG_WARPS * 32, TCG_MINB(WF, EPI)) name(GemvArgs a, float* ws, int* cnt, int ks) { \
        tcg_body<WF, EPI, K>(a, ws, cnt, ks);                                                                 \
    }
TCG_INSTANCES

// ---------------------------------------------------------------------------------------------
// tcg3 (session 6, branch gemm6): batched decode GEMM for 9..64 rows with a weight pipeline.
// y (T, N) = x (T, K) · Wᵀ, the same weight layouts, lane fragments, k permutation, in-register
// int8/int4/fp8 → f16 conversion (tc_pairs4) and epilogues (tc_epilogue) as tcg_body, but:
//  - grid (S, G) in clusters of (S, 1, 1): block (s, gr) owns output rows [gr·RB, gr·RB + RB),
//    RB = blockDim.x (one warp per 32 rows: two 16-row tiles, so every x fragment feeds 2 tiles),
//    and the K slice s of `ks` columns; its 64 × xw x slice (xw = ks rounded up to a stage, zero
//    beyond T, the slice and K) is staged in shared memory once;
//  - each warp streams its 32 rows × slice through its own ring of `nst` shared-memory stages of
//    32 rows × 128 bytes (cp.async 16-byte copies, chunks XOR-swizzled by row parity: conflict-free
//    A reads), nst − 1 stages in flight while one is computed, no block barrier in the loop; the
//    first nst stages (and int4's first scales) are issued BEFORE griddepcontrol.wait: weights never
//    depend on the previous kernel, only x does;
//  - split-K without global partials: the block writes its RB × 64 partial tile to shared memory,
//    the cluster's S blocks meet at a cluster barrier and block s sums its 1/S share of the
//    (pair, row) outputs over the S blocks in rank order through distributed shared memory
//    (deterministic), then runs the epilogue.
#define TCG3_SB 128  // bytes per weight row per stage
template <int WF> struct Tcg3 { enum { SKE = TCG3_SB * Tc<WF>::CH / 16, PAD = Tcg<WF>::PAD }; };
__device__ __forceinline__ u32 g3_smem(const void* p) {
    u32 r;
    asm("{ .reg .u64 q; cvta.to.shared.u64 q, %1; cvt.u32.u64 %0, q; }" : "=r"(r) : "l"(p));
    return r;
}
__device__ __forceinline__ float2 g3_ld2(u32 a, int rank, bool remote) {
    float2 v;
#if __CUDA_ARCH__ >= 900
    if (remote) {
        u32 r;
        asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(rank));
        asm volatile("ld.shared::cluster.v2.f32 {%0,%1}, [%2];" : "=f"(v.x), "=f"(v.y) : "r"(r));
        return v;
    }
#endif
    asm volatile("ld.shared.v2.f32 {%0,%1}, [%2];" : "=f"(v.x), "=f"(v.y) : "r"(a));
    return v;
}
// mma16816 without `volatile`: the compiler may interleave independent mmas and loads.
__device__ __forceinline__ void g3_mma(float* c, u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
#if __CUDA_ARCH__ >= 800
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#endif
}
// Dynamic shared memory: max(64 · (xw + PAD) halves + warps · nst · 32 · TCG3_SB, 64 · (RB + 4) f32).
template <int WF, int EPI, int K>
__device__ __forceinline__ void tcg3_body(const GemvArgs& a, const int ks, const int xw, const int nst) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    constexpr int CH = Tc<WF>::CH, STEPK = Tc<WF>::STEPK, SKE = Tcg3<WF>::SKE;
    constexpr size_t ROWB = (size_t)K * 16 / CH;  // bytes per weight row
    const int XS = xw + Tcg3<WF>::PAD;            // x row stride in halves
    h16* xs = (h16*)smem_raw;                     // (64, XS)
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int RB = blockDim.x, nw = blockDim.x >> 5;
    const int T = a.T, N = a.N;
    const int S = gridDim.x, s = blockIdx.x, gr = blockIdx.y;
    const int kbeg = s * ks, kend = min(kbeg + ks, K);
    const int nst_w = (kend - kbeg + SKE - 1) / SKE;  // stages of this slice
    const int r0 = gr * RB + warp * 32;               // this warp's first output row
    const unsigned char* W = (const unsigned char*)a.w;
    const u32 ring = g3_smem(smem_raw + 64 * XS * 2) + warp * nst * 32 * TCG3_SB;
    auto issue = [&](int st) {
        if (st < nst_w) {
            const u32 dst0 = ring + (st % nst) * 32 * TCG3_SB;
            const int k0 = kbeg + st * SKE;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const int idx = i * 32 + lane, row = idx >> 3, c = idx & 7;
                const int kk = k0 + c * CH;
                const bool in = r0 + row < N && kk < kend;
                const unsigned char* src = in ? W + (size_t)(r0 + row) * ROWB + (size_t)kk * 16 / CH : W;
                cp_async16(dst0 + row * TCG3_SB + ((c ^ ((row & 1) << 2)) << 4), src, in ? 16 : 0);
            }
        }
        cp_async_commit();
    };
    // int4 group scales of stage st: [step][row set] for rows g, g + 8, g + 16, g + 24.
    u32 sc[2][4], scn[2][4];
    auto ld_scales = [&](int st, u32 (*o)[4]) {
#pragma unroll
        for (int step = 0; step < 2; step++) {
            const int k = kbeg + st * SKE + step * STEPK + t4 * CH;
            const int gi = (k < K ? k : 0) / I4_GROUP;
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const int row = r0 + g + 8 * q;
                const u32 h = (st < nst_w && row < N) ? (u32)a.scales[(size_t)row * I4_GPR(K) + gi] : 0u;
                o[step][q] = h | (h << 16);
            }
        }
    };
    for (int st = 0; st < nst; st++) issue(st);
    if (WF == WF_I4) ld_scales(0, sc);
    pdl_wait();
    {
        const int vpr = xw / 8;  // 16-byte vectors per staged row
        for (int i = threadIdx.x; i < 64 * vpr; i += blockDim.x) {
            const int r = i / vpr, c = i - r * vpr, k = kbeg + 8 * c;
            const bool in = r < T && k < kend;
            cp_async16(g3_smem(xs + r * XS + 8 * c), in ? (const void*)(a.x + (size_t)r * K + k) : (const void*)a.x, in ? 16 : 0);
        }
        cp_async_commit();
        cp_async_wait(0);
    }
    __syncthreads();
    float acc[2][8][4];
#pragma unroll
    for (int u = 0; u < 2; u++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc[u][j][0] = acc[u][j][1] = acc[u][j][2] = acc[u][j][3] = 0.f;
    const int par = (g & 1) << 2;
#pragma unroll 1
    for (int st = 0; st < nst_w; st++) {
        if (st >= nst) {
            cp_async_wait(nst - 1);
            __syncwarp();
        }
        if (WF == WF_I4 && st + 1 < nst_w) ld_scales(st + 1, scn);
        const unsigned char* slot = smem_raw + 64 * XS * 2 + (size_t)(warp * nst + st % nst) * 32 * TCG3_SB;
#pragma unroll
        for (int step = 0; step < 2; step++) {
            const int c = ((step * 4 + t4) ^ par) << 4;
            const uint4 w0 = *(const uint4*)(slot + g * TCG3_SB + c);
            const uint4 w1 = *(const uint4*)(slot + (g + 8) * TCG3_SB + c);
            const uint4 w2 = *(const uint4*)(slot + (g + 16) * TCG3_SB + c);
            const uint4 w3 = *(const uint4*)(slot + (g + 24) * TCG3_SB + c);
            const int kl = st * SKE + step * STEPK + t4 * CH;  // k inside the slice
            u32 s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            if (WF == WF_I4) { s0 = sc[step][0]; s1 = sc[step][1]; s2 = sc[step][2]; s3 = sc[step][3]; }
#pragma unroll
            for (int v = 0; v < CH / 8; v++) {
                // All of the step's x fragments first (n-tiles of batch rows < T only), then the
                // 32 mmas ordered so that consecutive ones feed different accumulators.
                uint4 xv[8];
#pragma unroll
                for (int j = 0; j < 8; j++)
                    if (8 * j < T) xv[j] = *(const uint4*)(xs + (8 * j + g) * XS + kl + 8 * v);
                u32 pa[4], pb[4], pc[4], pd[4];
                tc_pairs4<WF>(w0, s0, v, pa);
                tc_pairs4<WF>(w1, s1, v, pb);
                tc_pairs4<WF>(w2, s2, v, pc);
                tc_pairs4<WF>(w3, s3, v, pd);
#pragma unroll
                for (int j = 0; j < 8; j++)
                    if (8 * j < T) {
                        g3_mma(acc[0][j], pa[0], pb[0], pa[1], pb[1], xv[j].x, xv[j].y);
                        g3_mma(acc[1][j], pc[0], pd[0], pc[1], pd[1], xv[j].x, xv[j].y);
                    }
#pragma unroll
                for (int j = 0; j < 8; j++)
                    if (8 * j < T) {
                        g3_mma(acc[0][j], pa[2], pb[2], pa[3], pb[3], xv[j].z, xv[j].w);
                        g3_mma(acc[1][j], pc[2], pd[2], pc[3], pd[3], xv[j].z, xv[j].w);
                    }
            }
        }
        if (WF == WF_I4) {
#pragma unroll
            for (int step = 0; step < 2; step++)
#pragma unroll
                for (int q = 0; q < 4; q++) sc[step][q] = scn[step][q];
        }
        __syncwarp();
        issue(st + nst);
    }
    pdl_trigger();
    cp_async_wait(0);
    __syncthreads();  // every warp is done with x and its ring: the partial tile reuses them
    // Partial tile red (64 batch rows, RB + 4) f32; accumulator (row g / g + 8, col 2·t4 (+1)).
    const int RS = RB + 4;
    float* red = (float*)smem_raw;
#pragma unroll
    for (int u = 0; u < 2; u++)
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const int t = 8 * j + 2 * t4, row = warp * 32 + u * 16 + g;
            red[t * RS + row] = acc[u][j][0];
            red[(t + 1) * RS + row] = acc[u][j][1];
            red[t * RS + row + 8] = acc[u][j][2];
            red[(t + 1) * RS + row + 8] = acc[u][j][3];
        }
    if (S > 1) cluster_sync_all(); else __syncthreads();
    // Block s: items [s·per, (s + 1)·per) of the T × RB/2 (batch row, row pair) outputs.
    const int HP = RB / 2, items = T * HP, per = (items + S - 1) / S;
    const int i1 = min(items, (s + 1) * per);
    const u32 rbase = g3_smem(red);
    for (int i = s * per + threadIdx.x; i < i1; i += blockDim.x) {
        const int t = i / HP, pl = i - t * HP;
        const u32 off = rbase + (u32)(t * RS + 2 * pl) * 4u;
        float2 v[8];
#pragma unroll
        for (int q = 0; q < 8; q++)
            if (q < S) v[q] = g3_ld2(off, q, S > 1);
        float y0 = 0.f, y1 = 0.f;
#pragma unroll
        for (int q = 0; q < 8; q++)
            if (q < S) { y0 += v[q].x; y1 += v[q].y; }
        const int p = gr * HP + pl;
        if (2 * p >= N) continue;
        if (EPI == EPI_RESID || EPI == EPI_STORE || EPI == EPI_SWIGLU) {
            tc_epilogue<WF, EPI>(a, t, p, y0, y1);
        } else {
            tc_epilogue<WF, EPI>(a, t, p, y0, y1);
            if (a.out_act != nullptr && p < QDIM / 2) {
                // Prefill passes: q also as act_t (T, QDIM) for the cuBLAS attention path.
                const int off2 = (p / HALF_HD) * HD + p % HALF_HD;
                const float* qr = a.out + (size_t)t * QDIM + off2;
                a.out_act[(size_t)t * QDIM + off2] = f2act(qr[0]);
                a.out_act[(size_t)t * QDIM + off2 + HALF_HD] = f2act(qr[HALF_HD]);
            }
        }
    }
    if (S > 1) cluster_sync_all();  // no block leaves while others read its shared memory
}
#define TCG3_KERNEL(name, WF, EPI, K)                                                                  \
    extern "C" __global__ void __launch_bounds__(256, 1) name(GemvArgs a, int ks, int xw, int nst) { \
        tcg3_body<WF, EPI, K>(a, ks, xw, nst);                                                       \
    }
TCG3_INSTANCES
#endif

// ---------------------------------------------------------------------------------------------
// Decode attention (one new token per sequence), flash-decoding: grid (nsplit, NKV, B), one block
// per (split, kv head, sequence) serving the GROUP query heads that share the kv head. The
// sequence's ceil(len / ATT_CHUNK) chunks are dealt to the splits in runs of ceil(chunks / nsplit);
// a block walks its run with an online softmax, loading chunk c + 1 into registers while it computes
// chunk c (so few, long blocks at large batch, many short ones at batch 1). With several active
// splits, each writes (acc, max, sum) partials and the last one to finish (atomic counter) combines
// them, reading the partials with all loads in flight.
//   q (B, QDIM) f32, RoPE applied; out (B, QDIM) act_t
//   part (B, NH, NSPLIT, ATT_PS) f32; counters (B, NKV) int, zero between calls; nsplit <= NSPLIT, <= 64
#define ATT_THREADS 128
// ATT_PS / ATT_MAXSPLIT / ATT_FOLD: with the GEMV prologues above.
// Block barrier of the split decode attentions: __syncthreads, or (PERSIST, the persistent decode
// kernel) a named barrier for its 128 attention threads.
template <bool PERSIST>
__device__ __forceinline__ void att_sync() {
    if (PERSIST) asm volatile("bar.sync 1, 128;" ::: "memory");
    else __syncthreads();
}
// The end of a split decode attention whose blocks (split, kvh, b) wrote their partial records
// (part[b, h, split] = acc[HD], max, sum: unnormalised O of the split's keys, its running max and sum):
// the last of the nact blocks of (kvh, b) to arrive (counter) merges the splits' (max, sum) into
// per-split weights in shared memory (one L2 load each, all in flight), writes every float4 of the
// output as the weighted sum of the partials and re-zeroes the counter. attn_tc_core (attn_decode_tc)
// and acl_body<.., true> (attn_decode_cg) end with it. THREADS: the block's (or the persistent
// kernel's 128 attention threads', PERSIST) thread count.
template <int THREADS, bool PERSIST>
__device__ __forceinline__ void att_combine_last(const float* __restrict__ part, int* __restrict__ counters,
                                                 act_t* __restrict__ out, int b, int kvh, int nact) {
    __shared__ int is_last;
    __shared__ float wsh[GROUP][ATT_MAXSPLIT], lsh[GROUP][ATT_MAXSPLIT];
    constexpr int NO = GROUP * HD / 4;
    __threadfence();
    att_sync<PERSIST>();
    if (threadIdx.x == 0) {
        const int prev = atomicAdd(&counters[b * NKV + kvh], 1);
        is_last = (prev == nact - 1);
    }
    att_sync<PERSIST>();
    if (!is_last) return;
    __threadfence();
    const float* pbase = part + ((size_t)b * NH + kvh * GROUP) * NSPLIT * ATT_PS;
    for (int i = threadIdx.x; i < GROUP * nact; i += THREADS) {
        const int g = i / nact, s2 = i % nact;
        const float* pp = pbase + ((size_t)g * NSPLIT + s2) * ATT_PS;
        wsh[g][s2] = __ldcg(pp + HD);
        lsh[g][s2] = __ldcg(pp + HD + 1);
    }
    att_sync<PERSIST>();
    if (threadIdx.x < GROUP) {
        const int g = threadIdx.x;
        float M = -INFINITY;
        for (int s2 = 0; s2 < nact; s2++) M = fmaxf(M, wsh[g][s2]);
        float L = 0.f;
        for (int s2 = 0; s2 < nact; s2++) {
            const float f = expf(wsh[g][s2] - M);
            wsh[g][s2] = f;
            L += f * lsh[g][s2];
        }
        const float inv = 1.0f / L;
        for (int s2 = 0; s2 < nact; s2++) wsh[g][s2] *= inv;
    }
    att_sync<PERSIST>();
    for (int i = threadIdx.x; i < NO; i += THREADS) {
        const int g = i / (HD / 4), d = 4 * (i % (HD / 4));
        const float* pp = pbase + (size_t)g * NSPLIT * ATT_PS + d;
        float4 A = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 4
        for (int s2 = 0; s2 < nact; s2++) {
            const float4 v = __ldcg((const float4*)(pp + (size_t)s2 * ATT_PS));
            const float w = wsh[g][s2];
            A.x = fmaf(w, v.x, A.x);
            A.y = fmaf(w, v.y, A.y);
            A.z = fmaf(w, v.z, A.z);
            A.w = fmaf(w, v.w, A.w);
        }
        act_t* o = out + (size_t)b * QDIM + (kvh * GROUP + g) * HD + d;
        o[0] = f2act(A.x);
        o[1] = f2act(A.y);
        o[2] = f2act(A.z);
        o[3] = f2act(A.w);
    }
    if (threadIdx.x == 0) counters[b * NKV + kvh] = 0;
}
#if !KV_Q  // the CUDA-core attention kernels read f16/f32 caches only
extern "C" __global__ void __launch_bounds__(ATT_THREADS)
attn_decode(const float* __restrict__ q, const kv_t* __restrict__ kc, const kv_t* __restrict__ vc, act_t* __restrict__ out,
            float* __restrict__ part, int* __restrict__ counters, const int* __restrict__ row_pos,
            const int* __restrict__ row_slot, int nsplit) {
    __shared__ __align__(16) float qs[GROUP][HD];
    __shared__ __align__(16) float ks[ATT_CHUNK][HD + 4];  // +4: 16-byte row reads of 8 lanes hit distinct banks
    __shared__ __align__(16) float vs[ATT_CHUNK][HD];
    __shared__ float sc[GROUP][ATT_CHUNK];
    __shared__ float mstat[GROUP], lstat[GROUP], alph[GROUP];
    constexpr int VE = 16 / (int)sizeof(kv_t);               // elements per 16-byte load
    constexpr int NV = ATT_CHUNK * HD / VE;                  // 16-byte vectors per chunk (K or V)
    constexpr int VPT = (NV + ATT_THREADS - 1) / ATT_THREADS;
    constexpr int NO = GROUP * HD / 4;                       // float4 outputs per (sequence, kv head)
    constexpr int NACC = (NO + ATT_THREADS - 1) / ATT_THREADS;
    const int split = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
    pdl_wait();
    const int len = row_pos[b] + 1;
    const int nch = (len + ATT_CHUNK - 1) / ATT_CHUNK;
    const int cps = (nch + nsplit - 1) / nsplit;  // chunks per split
    const int nact = (nch + cps - 1) / cps;       // splits with work
    if (split >= nact) return;
    const int ch0 = split * cps, ch1 = min(ch0 + cps, nch);
    const int slot = row_slot[b];
    uint4 kr[VPT], vr[VPT];
    auto fetch = [&](int c) {
        const int c0 = c * ATT_CHUNK, n = min(ATT_CHUNK, len - c0);
#pragma unroll
        for (int i = 0; i < VPT; i++) {
            const int e = i * ATT_THREADS + threadIdx.x;
            const bool in = (NV % ATT_THREADS == 0 || e < NV) && e * VE / HD < n;
            kr[i] = make_uint4(0, 0, 0, 0);
            vr[i] = kr[i];
            if (in) {
                const size_t off = kv_off(slot, kvh, c0 + e * VE / HD) + e * VE % HD;
                kr[i] = *(const uint4*)(kc + off);
                vr[i] = *(const uint4*)(vc + off);
            }
        }
    };
    fetch(ch0);
    const float scale = 1.0f / sqrtf((float)HD);
    for (int i = threadIdx.x; i < GROUP * HD; i += ATT_THREADS) {
        const int g = i / HD, d = i % HD;
        qs[g][d] = q[(size_t)b * QDIM + (kvh * GROUP + g) * HD + d] * scale;
    }
    if (threadIdx.x < GROUP) { mstat[threadIdx.x] = -INFINITY; lstat[threadIdx.x] = 0.f; }
    float4 acc[NACC];
#pragma unroll
    for (int a = 0; a < NACC; a++) acc[a] = make_float4(0.f, 0.f, 0.f, 0.f);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int c = ch0; c < ch1; c++) {
        const int n = min(ATT_CHUNK, len - c * ATT_CHUNK);
#pragma unroll
        for (int i = 0; i < VPT; i++) {
            const int e = i * ATT_THREADS + threadIdx.x;
            if (NV % ATT_THREADS == 0 || e < NV) {
                const int j = e * VE / HD, d = e * VE % HD;
                const kv_t* kp = (const kv_t*)&kr[i];
                const kv_t* vp = (const kv_t*)&vr[i];
#pragma unroll
                for (int t = 0; t < VE; t++) { ks[j][d + t] = kv2f(kp[t]); vs[j][d + t] = kv2f(vp[t]); }
            }
        }
        __syncthreads();
        if (c + 1 < ch1) fetch(c + 1);  // the next chunk's loads fly while this one is computed
        {
            // Scores: thread -> one position j and every NGS-th head; each 16-byte slice of the key
            // row is read once from shared memory and used for all of the thread's heads.
            constexpr int NGS = ATT_THREADS / ATT_CHUNK;
            constexpr int GPT = (GROUP + NGS - 1) / NGS;
            const int j = threadIdx.x % ATT_CHUNK, g0 = threadIdx.x / ATT_CHUNK;
            float sv[GPT];
#pragma unroll
            for (int k = 0; k < GPT; k++) sv[k] = 0.f;
#pragma unroll 4
            for (int d = 0; d < HD; d += 4) {
                const float4 kv = *(const float4*)&ks[j][d];
#pragma unroll
                for (int k = 0; k < GPT; k++) {
                    const int g = g0 + k * NGS;
                    if (GROUP % NGS == 0 || g < GROUP) {
                        const float4 qv = *(const float4*)&qs[g][d];
                        sv[k] = fmaf(qv.x, kv.x, fmaf(qv.y, kv.y, fmaf(qv.z, kv.z, fmaf(qv.w, kv.w, sv[k]))));
                    }
                }
            }
#pragma unroll
            for (int k = 0; k < GPT; k++) {
                const int g = g0 + k * NGS;
                if (GROUP % NGS == 0 || g < GROUP) sc[g][j] = j < n ? sv[k] : -INFINITY;
            }
        }
        __syncthreads();
        for (int g = warp; g < GROUP; g += ATT_THREADS / 32) {
            const float m_old = mstat[g];
            float m = m_old;
            for (int j = lane; j < n; j += 32) m = fmaxf(m, sc[g][j]);
            m = warp_max(m);
            float l = 0.f;
            for (int j = lane; j < ATT_CHUNK; j += 32) {
                const float p = j < n ? expf(sc[g][j] - m) : 0.f;
                sc[g][j] = p;
                l += p;
            }
            l = warp_sum(l);
            const float al = m_old == -INFINITY ? 0.f : expf(m_old - m);
            __syncwarp();
            if (lane == 0) { alph[g] = al; lstat[g] = lstat[g] * al + l; mstat[g] = m; }
        }
        __syncthreads();
        // acc[g][d..d+3] = alpha[g] acc + sum_j p[g][j] v[j][d..d+3]: thread -> (head, 4 dims)
#pragma unroll
        for (int a = 0; a < NACC; a++) {
            const int i = a * ATT_THREADS + threadIdx.x;
            if (NO % ATT_THREADS == 0 || i < NO) {
                const int g = i / (HD / 4), d = 4 * (i % (HD / 4));
                const float al = alph[g];
                float4 r = make_float4(acc[a].x * al, acc[a].y * al, acc[a].z * al, acc[a].w * al);
#pragma unroll 8
                for (int j = 0; j < ATT_CHUNK; j++) {
                    const float p = sc[g][j];
                    const float4 v = *(const float4*)&vs[j][d];
                    r.x = fmaf(p, v.x, r.x);
                    r.y = fmaf(p, v.y, r.y);
                    r.z = fmaf(p, v.z, r.z);
                    r.w = fmaf(p, v.w, r.w);
                }
                acc[a] = r;
            }
        }
        __syncthreads();
    }
    pdl_trigger();
#pragma unroll
    for (int a = 0; a < NACC; a++) {
        const int i = a * ATT_THREADS + threadIdx.x;
        if (NO % ATT_THREADS == 0 || i < NO) {
            const int g = i / (HD / 4), d = 4 * (i % (HD / 4));
            const int h = kvh * GROUP + g;
            if (nact == 1) {
                const float inv = 1.0f / lstat[g];
                act_t* o = out + (size_t)b * QDIM + h * HD + d;
                o[0] = f2act(acc[a].x * inv);
                o[1] = f2act(acc[a].y * inv);
                o[2] = f2act(acc[a].z * inv);
                o[3] = f2act(acc[a].w * inv);
            } else {
                float* pp = part + (((size_t)b * NH + h) * NSPLIT + split) * ATT_PS;
                *(float4*)(pp + d) = acc[a];
                if (d == 0) { pp[HD] = mstat[g]; pp[HD + 1] = lstat[g]; }
            }
        }
    }
    if (nact == 1) return;
    att_combine_last<ATT_THREADS, false>(part, counters, out, b, kvh, nact);
}
#endif

// Tensor-core decode attention (f16 KV cache, GROUP <= 8, HD % 32 == 0): same grid, splits, partials
// and combine as attn_decode, but each warp walks its own 16-key tiles of the block's range with an
// online softmax in registers: S = Q Kᵀ by mma.sync.m16n8k16 (the GROUP query heads as rows 0..7 of A,
// K rows straight from the cache as B, 16-byte loads, the dims permuted identically in A and B),
// P = exp(S - m) reused in registers as the A fragment of O += P V, with V staged per warp in shared
// memory and read transposed by ldmatrix. The next tile's K and V loads fly while a tile is computed;
// the warps' (m, l, O) are merged in shared memory at the end. No block-wide barrier in the loop.
#if !KV_F32 && GROUP <= 8 && HD % 32 == 0
#define ATC_VS (HD + 8)  // V tile row stride in halves (16-byte pad: conflict-free ldmatrix rows)
// One lane load of 8 consecutive cache elements: 16 bytes of f16, or 8 bytes of 8-bit codes that
// kv_h8 turns into the same 8 values as f16 (exact codes: int8 q, fp8 decode(q); the per-head
// scales fold into the softmax scale (K) and the output (V)).
#if KV_Q
typedef uint2 kvvec_t;
__device__ __forceinline__ kvvec_t kvvec_zero() { return make_uint2(0u, 0u); }
__device__ __forceinline__ uint4 kv_h8(kvvec_t c) {
    uint4 r;
#if KV_Q == 1
    i8x4_h2(c.x, r.x, r.y);  // as the int8 weights
    i8x4_h2(c.y, r.z, r.w);
#else
    e4m3x4_h2(c.x, r.x, r.y);
    e4m3x4_h2(c.y, r.z, r.w);
#endif
    return r;
}
#else
typedef uint4 kvvec_t;
__device__ __forceinline__ kvvec_t kvvec_zero() { return make_uint4(0u, 0u, 0u, 0u); }
__device__ __forceinline__ uint4 kv_h8(kvvec_t c) { return c; }
#endif
__device__ __forceinline__ u32 pack_h2(float a, float b) { return (u32)f2h(a) | ((u32)f2h(b) << 16); }
__device__ __forceinline__ u32 smem_u32(const void* p) {
    u32 r;
    asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(r) : "l"(p));
    return r;
}
template <bool PERSIST, class V>
__device__ __forceinline__ V att_ld(const V* p) {
    return PERSIST ? __ldcg(p) : *p;
}
// One 16-key tile of the tensor-core decode attention (attn_tc_core, acl_body): S (heads × 16 keys)
// = Q·Kᵀ in two n-blocks of 8 keys (keys k0 + nb·8 + 2t (+1), masked at k_end), then the online
// softmax of row g: updates (m_run, l_run), returns O's rescale factor and leaves P as the A
// fragments (pa0, pa2) of O += P·V.
template <int KS>
__device__ __forceinline__ float atc_tile_softmax(const u32 (&qa)[KS][2][2], const uint4 (&kc_)[2][KS], int k0,
                                                  int k_end, int t, float& m_run, float& l_run, u32& pa0, u32& pa2) {
    float sacc[2][4];
#pragma unroll
    for (int nb = 0; nb < 2; nb++) {
        sacc[nb][0] = sacc[nb][1] = sacc[nb][2] = sacc[nb][3] = 0.f;
#pragma unroll
        for (int s = 0; s < KS; s++) {
            mma16816(sacc[nb], qa[s][0][0], 0u, qa[s][0][1], 0u, kc_[nb][s].x, kc_[nb][s].y);
            mma16816(sacc[nb], qa[s][1][0], 0u, qa[s][1][1], 0u, kc_[nb][s].z, kc_[nb][s].w);
        }
    }
    float sv[4];
#pragma unroll
    for (int nb = 0; nb < 2; nb++)
#pragma unroll
        for (int e = 0; e < 2; e++) sv[2 * nb + e] = (k0 + nb * 8 + 2 * t + e < k_end) ? sacc[nb][e] : -INFINITY;
    float mx = fmaxf(fmaxf(sv[0], sv[1]), fmaxf(sv[2], sv[3]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(m_run, mx);
    const float m_use = m_new == -INFINITY ? 0.f : m_new;
    const float alpha = expf(m_run - m_use);
    float p[4], rs = 0.f;
#pragma unroll
    for (int e = 0; e < 4; e++) { p[e] = expf(sv[e] - m_use); rs += p[e]; }
    rs += __shfl_xor_sync(0xffffffffu, rs, 1);
    rs += __shfl_xor_sync(0xffffffffu, rs, 2);
    l_run = l_run * alpha + rs;
    m_run = m_new;
    pa0 = pack_h2(p[0], p[1]);
    pa2 = pack_h2(p[2], p[3]);
    return alpha;
}
// The block body as a device function of the virtual block (split, kvh, b): attn_decode_tc calls it
// with its block index; the persistent decode kernel (end of this file) with threads 0..127 of a
// larger block (PERSIST: a named barrier for those 128 threads instead of __syncthreads, q and the
// cache read through L2 since other blocks of the same launch wrote them, no PDL).
template <bool PERSIST>
__device__ __forceinline__ void attn_tc_core(const float* __restrict__ q, const kv_t* __restrict__ kc,
                                             const kv_t* __restrict__ vc, act_t* __restrict__ out,
                                             float* __restrict__ part, int* __restrict__ counters,
                                             const int* __restrict__ row_pos, const int* __restrict__ row_slot,
                                             int nsplit, const int split, const int kvh, const int b,
                                             const int fold = 0) {
    constexpr int NW = ATT_THREADS / 32;
    constexpr int KS = HD / 32;   // 32-dim steps: one 16-byte load per key row and step
    constexpr int ND = HD / 8;    // 8-dim blocks of O
    constexpr int VL = 16 * HD / 8 / 32;  // 16-byte V loads per lane per 16-key tile
    __shared__ __align__(16) h16 vsm[NW][16][ATC_VS];
    __shared__ __align__(16) float ow[NW][8][HD + 4];
    __shared__ float mw[NW][8], lw[NW][8];
    __shared__ float mstat[GROUP], lstat[GROUP];
    constexpr int NO = GROUP * HD / 4;
    constexpr int NACC = (NO + ATT_THREADS - 1) / ATT_THREADS;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    if (!PERSIST) {
        pdl_wait();
        if (trig_mode(TL_ATTN, gridDim.z) == 2) pdl_trigger();
        tl_waited();
    }
    const int len = row_pos[b] + 1;
    const int nch = (len + ATT_CHUNK - 1) / ATT_CHUNK;
    const int cps = (nch + nsplit - 1) / nsplit;
    const int nact = (nch + cps - 1) / cps;
    if (split >= nact) {
        // ATT_FOLD: every split leaves a record for the o GEMV's combine; an empty one weighs 0.
        if (fold) {
            for (int i = threadIdx.x; i < GROUP * HD / 4; i += ATT_THREADS) {
                const int gg = i / (HD / 4), d = 4 * (i % (HD / 4));
                fold_put(part, b, fold, kvh * GROUP + gg, split, d, make_float4(0.f, 0.f, 0.f, 0.f), -INFINITY, 0.f);
            }
        }
        return;
    }
    const int k_begin = split * cps * ATT_CHUNK, k_end = min((split + 1) * cps * ATT_CHUNK, len);
    const int slot = row_slot[b];
    // Q as A fragments (rows = heads g < GROUP, zero otherwise), scaled by 1/sqrt(HD) (and the
    // 8-bit cache's K scale of this head).
    u32 qa[KS][2][2];
    {
#if KV_Q
        const float scale = kv_scale(kc, 0, kvh) / sqrtf((float)HD);
#else
        const float scale = 1.0f / sqrtf((float)HD);
#endif
#pragma unroll
        for (int s = 0; s < KS; s++) {
            float4 x0 = make_float4(0.f, 0.f, 0.f, 0.f), x1 = x0;
            if (g < GROUP) {
                const float* qp = q + (size_t)b * QDIM + (kvh * GROUP + g) * HD + 32 * s + 8 * t;
                x0 = att_ld<PERSIST>((const float4*)qp);
                x1 = att_ld<PERSIST>((const float4*)(qp + 4));
            }
            qa[s][0][0] = pack_h2(x0.x * scale, x0.y * scale);
            qa[s][0][1] = pack_h2(x0.z * scale, x0.w * scale);
            qa[s][1][0] = pack_h2(x1.x * scale, x1.y * scale);
            qa[s][1][1] = pack_h2(x1.z * scale, x1.w * scale);
        }
    }
    kvvec_t kr[2][KS], vr[VL];
    // One 16-key tile = one KV block (k0 is a multiple of 16): rows KV_RS apart from its base.
    auto fetch = [&](int k0) {
        const size_t tile = kv_off(slot, kvh, k0);
        const kv_t* kbase = kc + tile;
        const kv_t* vbase = vc + tile;
#pragma unroll
        for (int nb = 0; nb < 2; nb++) {
            const int r = nb * 8 + g;
#pragma unroll
            for (int s = 0; s < KS; s++)
                kr[nb][s] = k0 + r < k_end ? att_ld<PERSIST>((const kvvec_t*)(kbase + (size_t)r * KV_RS + 32 * s + 8 * t)) : kvvec_zero();
        }
#pragma unroll
        for (int i = 0; i < VL; i++) {
            const int e = i * 32 + lane, r = e / (HD / 8);
            vr[i] = k0 + r < k_end ? att_ld<PERSIST>((const kvvec_t*)(vbase + (size_t)r * KV_RS + (e % (HD / 8)) * 8)) : kvvec_zero();
        }
    };
    float m_run = -INFINITY, l_run = 0.f;
    float o[ND][4];
#pragma unroll
    for (int nd = 0; nd < ND; nd++) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.f;
    int k0 = k_begin + warp * 16;
    if (k0 < k_end) fetch(k0);
    const u32 vs_base = smem_u32(&vsm[warp][0][0]);
    for (; k0 < k_end; k0 += NW * 16) {
        // V tile to this warp's shared memory (row-major keys × dims), K stays in registers.
#pragma unroll
        for (int i = 0; i < VL; i++) {
            const int e = i * 32 + lane;
            *(uint4*)&vsm[warp][e / (HD / 8)][(e % (HD / 8)) * 8] = kv_h8(vr[i]);
        }
        uint4 kc_[2][KS];
#pragma unroll
        for (int nb = 0; nb < 2; nb++)
#pragma unroll
            for (int s = 0; s < KS; s++) kc_[nb][s] = kv_h8(kr[nb][s]);
        __syncwarp();
        if (k0 + NW * 16 < k_end) fetch(k0 + NW * 16);
        u32 pa0, pa2;
        const float alpha = atc_tile_softmax<KS>(qa, kc_, k0, k_end, t, m_run, l_run, pa0, pa2);
        // O (heads × HD) += P (heads × 16 keys) · V (16 keys × HD), V fragments by ldmatrix.trans.
#pragma unroll
        for (int j = 0; j < ND / 2; j++) {
            const int mi = lane >> 3, r = lane & 7;
            const u32 addr = vs_base + (u32)((((mi & 1) * 8 + r) * ATC_VS + (2 * j + (mi >> 1)) * 8) * 2);
            u32 b0, b1, b2, b3;
            asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                         : "=r"(b0), "=r"(b1), "=r"(b2), "=r"(b3) : "r"(addr));
#pragma unroll
            for (int e = 0; e < 4; e++) { o[2 * j][e] *= alpha; o[2 * j + 1][e] *= alpha; }
            mma16816(o[2 * j], pa0, 0u, pa2, 0u, b0, b1);
            mma16816(o[2 * j + 1], pa0, 0u, pa2, 0u, b2, b3);
        }
        __syncwarp();
    }
    // Merge the warps' (m, l, O) of rows g < GROUP.
#if KV_Q
    {
        const float sv = kv_scale(vc, 1, kvh);  // O = s_v · P · codes
#pragma unroll
        for (int nd = 0; nd < ND; nd++) { o[nd][0] *= sv; o[nd][1] *= sv; }
    }
#endif
    if (t == 0) { mw[warp][g] = m_run; lw[warp][g] = l_run; }
#pragma unroll
    for (int nd = 0; nd < ND; nd++) {
        ow[warp][g][nd * 8 + 2 * t] = o[nd][0];
        ow[warp][g][nd * 8 + 2 * t + 1] = o[nd][1];
    }
    att_sync<PERSIST>();
    if (threadIdx.x < GROUP) {
        const int h = threadIdx.x;
        float M = -INFINITY;
        for (int w = 0; w < NW; w++) M = fmaxf(M, mw[w][h]);
        float L = 0.f;
        for (int w = 0; w < NW; w++) L += (mw[w][h] == -INFINITY ? 0.f : expf(mw[w][h] - M)) * lw[w][h];
        mstat[h] = M;
        lstat[h] = L;
    }
    att_sync<PERSIST>();
    float4 acc[NACC];
#pragma unroll
    for (int a = 0; a < NACC; a++) {
        const int i = a * ATT_THREADS + threadIdx.x;
        acc[a] = make_float4(0.f, 0.f, 0.f, 0.f);
        if (NO % ATT_THREADS == 0 || i < NO) {
            const int gg = i / (HD / 4), d = 4 * (i % (HD / 4));
            const float M = mstat[gg];
            for (int w = 0; w < NW; w++) {
                const float f = mw[w][gg] == -INFINITY ? 0.f : expf(mw[w][gg] - M);
                const float4 v = *(const float4*)&ow[w][gg][d];
                acc[a].x = fmaf(f, v.x, acc[a].x);
                acc[a].y = fmaf(f, v.y, acc[a].y);
                acc[a].z = fmaf(f, v.z, acc[a].z);
                acc[a].w = fmaf(f, v.w, acc[a].w);
            }
        }
    }
    if (!PERSIST) { pdl_trigger(); tl_trig(); }
#pragma unroll
    for (int a = 0; a < NACC; a++) {
        const int i = a * ATT_THREADS + threadIdx.x;
        if (NO % ATT_THREADS == 0 || i < NO) {
            const int g = i / (HD / 4), d = 4 * (i % (HD / 4));
            const int h = kvh * GROUP + g;
            if (nact == 1 && !fold) {
                const float inv = 1.0f / lstat[g];
                act_t* o = out + (size_t)b * QDIM + h * HD + d;
                o[0] = f2act(acc[a].x * inv);
                o[1] = f2act(acc[a].y * inv);
                o[2] = f2act(acc[a].z * inv);
                o[3] = f2act(acc[a].w * inv);
            } else if (fold) {
                fold_put(part, b, fold, h, split, d, acc[a], mstat[g], lstat[g]);
            } else {
                float* pp = part + (((size_t)b * NH + h) * NSPLIT + split) * ATT_PS;
                *(float4*)(pp + d) = acc[a];
                if (d == 0) { pp[HD] = mstat[g]; pp[HD + 1] = lstat[g]; }
            }
        }
    }
    if (nact == 1 || fold) return;
    att_combine_last<ATT_THREADS, PERSIST>(part, counters, out, b, kvh, nact);
}
// nsplit | ATT_FOLD: no combine here (every one of the nsplit = gridDim.x splits stores its record for
// the o GEMV's PRO_COMB prologue; out is not written).
extern "C" __global__ void __launch_bounds__(ATT_THREADS)
attn_decode_tc(const float* __restrict__ q, const kv_t* __restrict__ kc, const kv_t* __restrict__ vc, act_t* __restrict__ out,
               float* __restrict__ part, int* __restrict__ counters, const int* __restrict__ row_pos,
               const int* __restrict__ row_slot, int nsplit) {
    tl_enter(TL_ATTN);
    if (trig_mode(TL_ATTN, gridDim.z) == 1) pdl_trigger();
    const int fold = fold_reps(nsplit);
    attn_tc_core<false>(q, kc, vc, out, part, counters, row_pos, row_slot, nsplit & (ATT_FOLD - 1), blockIdx.x,
                        blockIdx.y, blockIdx.z, fold);
    tl_exit();
}


// ---------------------------------------------------------------------------------------------
// Flash-attention prefill on tensor cores: grid (ceil(max piece / 64), NH, pieces), 4 warps; warp w
// owns 16 queries (piece rows 64·bx + 16·w ..) of head h and walks the keys 0 .. its last query's
// position in 16-key tiles with an online softmax in registers, as attn_decode_tc does for decode:
// S = Q·Kᵀ by mma.sync with the K rows read from the cache as B fragments (16-byte loads, dims
// permuted identically in Q), causal mask on the diagonal tile only, P from the S accumulators into
// the A fragment of O += P·V, V through this warp's shared memory and ldmatrix.trans, the next
// tile's K/V loads issued before the current tile is computed. No score matrix, no barriers.
//   q (T, QDIM) f32 with RoPE; out (T, QDIM) act_t; pieces: seq_slot/start/row0/n as attn_prefill.
#define PFA_WARPS 4
// The cache is read through kv_off, one key row at a time, so the paged build needs nothing else.
extern "C" __global__ void __launch_bounds__(PFA_WARPS * 32)
attn_prefill_tc(const float* __restrict__ q, const kv_t* __restrict__ kc, const kv_t* __restrict__ vc, act_t* __restrict__ out,
                const int* __restrict__ seq_slot, const int* __restrict__ seq_start, const int* __restrict__ seq_row0,
                const int* __restrict__ seq_n) {
    constexpr int KS = HD / 32;           // 32-dim steps: one 16-byte load per key row and step
    constexpr int ND = HD / 8;            // 8-dim blocks of O
    constexpr int VL = 16 * HD / 8 / 32;  // 16-byte V loads per lane per 16-key tile
    __shared__ __align__(16) h16 vsm[PFA_WARPS][16][ATC_VS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int h = blockIdx.y, sq = blockIdx.z, kvh = h / GROUP;
    pdl_wait();
    const int n = seq_n[sq];
    const int i0 = blockIdx.x * (PFA_WARPS * 16) + warp * 16;  // this warp's first query of the piece
    if (i0 >= n) {
        pdl_trigger();
        return;
    }
    const int slot = seq_slot[sq], start = seq_start[sq], row0 = seq_row0[sq];
    const int pos_a = start + i0 + g, pos_b = pos_a + 8;  // positions of rows g and g + 8
    const bool in_a = i0 + g < n, in_b = i0 + g + 8 < n;
    const int k_end = start + min(i0 + 16, n);            // keys < k_end
    const kv_t* kb = kc;
    const kv_t* vb = vc;
    // Q of rows g and g + 8 as A fragments, scaled by 1/sqrt(HD) (and the 8-bit cache's K scale).
    u32 qa[KS][2][2], qb[KS][2][2];
    {
#if KV_Q
        const float scale = kv_scale(kc, 0, kvh) / sqrtf((float)HD);
#else
        const float scale = 1.0f / sqrtf((float)HD);
#endif
#pragma unroll
        for (int s = 0; s < KS; s++) {
#pragma unroll
            for (int r = 0; r < 2; r++) {
                float4 x0 = make_float4(0.f, 0.f, 0.f, 0.f), x1 = x0;
                if (r == 0 ? in_a : in_b) {
                    const float* qp = q + (size_t)(row0 + i0 + g + 8 * r) * QDIM + h * HD + 32 * s + 8 * t;
                    x0 = *(const float4*)qp;
                    x1 = *(const float4*)(qp + 4);
                }
                const u32 p00 = pack_h2(x0.x * scale, x0.y * scale), p01 = pack_h2(x0.z * scale, x0.w * scale);
                const u32 p10 = pack_h2(x1.x * scale, x1.y * scale), p11 = pack_h2(x1.z * scale, x1.w * scale);
                if (r == 0) {
                    qa[s][0][0] = p00; qa[s][0][1] = p01; qa[s][1][0] = p10; qa[s][1][1] = p11;
                } else {
                    qb[s][0][0] = p00; qb[s][0][1] = p01; qb[s][1][0] = p10; qb[s][1][1] = p11;
                }
            }
        }
    }
    kvvec_t kr[2][KS], vr[VL];
    auto fetch = [&](int k0) {
#pragma unroll
        for (int nb = 0; nb < 2; nb++) {
            const int key = k0 + nb * 8 + g;
            const kv_t* kp = kb + kv_off(slot, kvh, key < k_end ? key : 0);
#pragma unroll
            for (int s = 0; s < KS; s++)
                kr[nb][s] = key < k_end ? *(const kvvec_t*)(kp + 32 * s + 8 * t) : kvvec_zero();
        }
#pragma unroll
        for (int i = 0; i < VL; i++) {
            const int e = i * 32 + lane, key = k0 + e / (HD / 8);
            vr[i] = key < k_end ? *(const kvvec_t*)(vb + kv_off(slot, kvh, key) + (e % (HD / 8)) * 8) : kvvec_zero();
        }
    };
    float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;
    float o[ND][4];
#pragma unroll
    for (int nd = 0; nd < ND; nd++) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.f;
    fetch(0);
    const u32 vs_base = smem_u32(&vsm[warp][0][0]);
    for (int k0 = 0; k0 < k_end; k0 += 16) {
#pragma unroll
        for (int i = 0; i < VL; i++) {
            const int e = i * 32 + lane;
            *(uint4*)&vsm[warp][e / (HD / 8)][(e % (HD / 8)) * 8] = kv_h8(vr[i]);
        }
        uint4 kk[2][KS];
#pragma unroll
        for (int nb = 0; nb < 2; nb++)
#pragma unroll
            for (int s = 0; s < KS; s++) kk[nb][s] = kv_h8(kr[nb][s]);
        __syncwarp();
        if (k0 + 16 < k_end) fetch(k0 + 16);
        // S (16 queries × 16 keys) in two n-blocks of 8 keys.
        float sacc[2][4];
#pragma unroll
        for (int nb = 0; nb < 2; nb++) {
            sacc[nb][0] = sacc[nb][1] = sacc[nb][2] = sacc[nb][3] = 0.f;
#pragma unroll
            for (int s = 0; s < KS; s++) {
                mma16816(sacc[nb], qa[s][0][0], qb[s][0][0], qa[s][0][1], qb[s][0][1], kk[nb][s].x, kk[nb][s].y);
                mma16816(sacc[nb], qa[s][1][0], qb[s][1][0], qa[s][1][1], qb[s][1][1], kk[nb][s].z, kk[nb][s].w);
            }
        }
        // Causal mask and online softmax of rows g (a) and g + 8 (b) over keys k0 + nb·8 + 2t + e.
        float sa[4], sb[4];
#pragma unroll
        for (int nb = 0; nb < 2; nb++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int key = k0 + nb * 8 + 2 * t + e;
                sa[2 * nb + e] = key <= pos_a ? sacc[nb][e] : -INFINITY;
                sb[2 * nb + e] = key <= pos_b ? sacc[nb][2 + e] : -INFINITY;
            }
        float mxa = fmaxf(fmaxf(sa[0], sa[1]), fmaxf(sa[2], sa[3]));
        float mxb = fmaxf(fmaxf(sb[0], sb[1]), fmaxf(sb[2], sb[3]));
        mxa = fmaxf(mxa, __shfl_xor_sync(0xffffffffu, mxa, 1));
        mxb = fmaxf(mxb, __shfl_xor_sync(0xffffffffu, mxb, 1));
        mxa = fmaxf(mxa, __shfl_xor_sync(0xffffffffu, mxa, 2));
        mxb = fmaxf(mxb, __shfl_xor_sync(0xffffffffu, mxb, 2));
        const float mna = fmaxf(m_a, mxa), mnb = fmaxf(m_b, mxb);
        const float mua = mna == -INFINITY ? 0.f : mna, mub = mnb == -INFINITY ? 0.f : mnb;
        const float al_a = expf(m_a - mua), al_b = expf(m_b - mub);
        float pa[4], pb[4], rsa = 0.f, rsb = 0.f;
#pragma unroll
        for (int e = 0; e < 4; e++) {
            pa[e] = expf(sa[e] - mua);
            pb[e] = expf(sb[e] - mub);
            rsa += pa[e];
            rsb += pb[e];
        }
        rsa += __shfl_xor_sync(0xffffffffu, rsa, 1);
        rsb += __shfl_xor_sync(0xffffffffu, rsb, 1);
        rsa += __shfl_xor_sync(0xffffffffu, rsa, 2);
        rsb += __shfl_xor_sync(0xffffffffu, rsb, 2);
        l_a = l_a * al_a + rsa;
        l_b = l_b * al_b + rsb;
        m_a = mna;
        m_b = mnb;
        const u32 a0 = pack_h2(pa[0], pa[1]), a1 = pack_h2(pb[0], pb[1]);
        const u32 a2 = pack_h2(pa[2], pa[3]), a3 = pack_h2(pb[2], pb[3]);
        // O (16 queries × HD) += P (16 × 16 keys) · V (16 keys × HD), V fragments by ldmatrix.trans.
#pragma unroll
        for (int j = 0; j < ND / 2; j++) {
            const int mi = lane >> 3, r = lane & 7;
            const u32 addr = vs_base + (u32)((((mi & 1) * 8 + r) * ATC_VS + (2 * j + (mi >> 1)) * 8) * 2);
            u32 b0, b1, b2, b3;
            asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                         : "=r"(b0), "=r"(b1), "=r"(b2), "=r"(b3) : "r"(addr));
#pragma unroll
            for (int e = 0; e < 2; e++) {
                o[2 * j][e] *= al_a;
                o[2 * j + 1][e] *= al_a;
                o[2 * j][2 + e] *= al_b;
                o[2 * j + 1][2 + e] *= al_b;
            }
            mma16816(o[2 * j], a0, a1, a2, a3, b0, b1);
            mma16816(o[2 * j + 1], a0, a1, a2, a3, b2, b3);
        }
        __syncwarp();
    }
    pdl_trigger();
#if KV_Q
    const float sv = kv_scale(vc, 1, kvh);  // O = s_v · P · codes
#else
    const float sv = 1.f;
#endif
    const float inv_a = sv / l_a, inv_b = sv / l_b;
#pragma unroll
    for (int nd = 0; nd < ND; nd++) {
        const int d = h * HD + nd * 8 + 2 * t;
        if (in_a) *(u32*)(out + (size_t)(row0 + i0 + g) * QDIM + d) = pack_h2(o[nd][0] * inv_a, o[nd][1] * inv_a);
        if (in_b) *(u32*)(out + (size_t)(row0 + i0 + g + 8) * QDIM + d) = pack_h2(o[nd][2] * inv_b, o[nd][3] * inv_b);
    }
}

// ---------------------------------------------------------------------------------------------
// attn_decode_cl (session 5; the default on sm_90 where it is compiled, TRTFORGE_ATTN=tc1 runs
// attn_decode_tc): the tensor-core decode attention of attn_tc_core with
//  (a) a per-warp cp.async pipeline of `stg` 16-key K/V tiles in shared memory (dynamic, `stg` ×
//      4 warps × 2 × 16 × HD cache elements), so several tiles per warp are in flight while the
//      mmas and the softmax of the current one run;
//  (b) the cache rows before the new token (written by earlier steps) and the row's position and
//      slot (written by the host or an earlier step's `advance`) are read BEFORE griddepcontrol.wait:
//      under PDL the first `stg` tiles of every warp fly while the previous kernel (the QKV GEMV /
//      rope_append, which writes q and the new token's k/v) finishes; only q and the new token's
//      row are read after it;
//  (c) the splits of one (kv head, row) are the blocks of one thread-block cluster (grid (cs, NKV,
//      rows), cluster (cs, 1, 1)): each block merges its warps in shared memory, then the cluster
//      merges the blocks' (m, l, O) through distributed shared memory between two cluster barriers —
//      no partials in global memory, no fence + atomic counter, no last-block combine.
// Tiles are KV_BLOCK aligned (one paged block each: its base through kv_off, rows KV_RS apart).
// The staged rows are XOR-swizzled by 16-byte chunk so that the K lane loads (8 elements of row
// nb·8 + g at dims 32s + 8t, the attn_tc_core layout) and the V ldmatrix.trans rows are free of
// bank conflicts. 8-bit caches: K converted in registers (kv_h8), V converted into the per-warp f16
// tile of attn_tc_core (vsm layout) before ldmatrix.
#if HD == 32 || HD % 64 == 0
#define ACL_RB (HD * (int)sizeof(kv_t))  // bytes of one staged cache row
#define ACL_CH (ACL_RB / 16)             // 16-byte chunks per row
#define ACL_TB (16 * ACL_RB)             // bytes of one 16-key K (or V) tile
#define ACL_MAXCS 16
__device__ __forceinline__ int acl_swk(int r, int c) {
    if (sizeof(kv_t) == 2) return ACL_CH >= 8 ? (c ^ ((r & 1) << 2)) : c;
    return ACL_CH >= 8 ? (c ^ ((r & 3) << 1)) : ACL_CH == 4 ? (c ^ (((r >> 1) & 1) << 1)) : c;
}
__device__ __forceinline__ int acl_swv(int r, int c) {
    if (sizeof(kv_t) != 2) return c;
    return ACL_CH >= 8 ? (c ^ (r & 7)) : ACL_CH == 4 ? (c ^ ((r >> 1) & 3)) : c;
}
__device__ __forceinline__ u32 acl_map(u32 a, int rank) {
    u32 r = a;
#if __CUDA_ARCH__ >= 900
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(rank));
#endif
    return r;
}
__device__ __forceinline__ float acl_ldf(u32 a) {
    float v = 0.f;
#if __CUDA_ARCH__ >= 900
    asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(v) : "r"(a));
#endif
    return v;
}
__device__ __forceinline__ float4 acl_ldf4(u32 a) {
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
#if __CUDA_ARCH__ >= 900
    asm volatile("ld.shared::cluster.v4.f32 {%0,%1,%2,%3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "r"(a));
#endif
    return v;
}
// The end of attn_decode_cl/cl8/cx/cx8: the block's warps' (m, l, O) of rows (query heads) g < GROUP,
// written by each warp to mw / lw / ow, merged in shared memory (one block: the output), then the
// cluster's blocks merged through DSMEM. E2: m in log2 units (attn_decode_cx: exp2), else natural.
template <bool E2>
__device__ __forceinline__ float acl_exp(float x) {
    return E2 ? exp2f(x) : expf(x);
}
// GM (attn_decode_cg): the blocks of a (kv head, row) are not a cluster; each writes its partial record
// and the last one combines them (att_combine_last).
template <int NW, bool E2, bool GM = false>
__device__ __forceinline__ void acl_merge(const float (&ow)[NW][8][HD + 4], const float (&mw)[NW][8],
                                          const float (&lw)[NW][8], float (&bo)[GROUP][HD], float (&bm)[GROUP],
                                          float (&bl)[GROUP], act_t* __restrict__ out, int b, int kvh, int cs,
                                          int split, float* __restrict__ part = nullptr,
                                          int* __restrict__ counters = nullptr, const int fold = 0) {
    static_assert(!(GM && E2), "att_combine_last merges natural-log maxima");
    // fold (GM only, ATT_FOLD): every block stores its record, even a single split; no combine here.
    const bool direct = cs == 1 && !(GM && fold);
    constexpr int THREADS = NW * 32;
    constexpr int NO = GROUP * HD / 4;
    constexpr int NACC = (NO + THREADS - 1) / THREADS;
    __syncthreads();
    if (threadIdx.x < GROUP) {
        const int h = threadIdx.x;
        float M = -INFINITY;
        for (int w = 0; w < NW; w++) M = fmaxf(M, mw[w][h]);
        float L = 0.f;
        for (int w = 0; w < NW; w++) L += (mw[w][h] == -INFINITY ? 0.f : acl_exp<E2>(mw[w][h] - M)) * lw[w][h];
        bm[h] = M;
        bl[h] = L;
    }
    __syncthreads();
#pragma unroll
    for (int a = 0; a < NACC; a++) {
        const int i = a * THREADS + threadIdx.x;
        if (NO % THREADS == 0 || i < NO) {
            const int gg = i / (HD / 4), d = 4 * (i % (HD / 4));
            const float M = bm[gg];
            float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
            for (int w = 0; w < NW; w++) {
                const float f = mw[w][gg] == -INFINITY ? 0.f : acl_exp<E2>(mw[w][gg] - M);
                const float4 v = *(const float4*)&ow[w][gg][d];
                acc.x = fmaf(f, v.x, acc.x);
                acc.y = fmaf(f, v.y, acc.y);
                acc.z = fmaf(f, v.z, acc.z);
                acc.w = fmaf(f, v.w, acc.w);
            }
            if (direct) {
                const float inv = 1.0f / bl[gg];
                act_t* op = out + (size_t)b * QDIM + (kvh * GROUP + gg) * HD + d;
                op[0] = f2act(acc.x * inv);
                op[1] = f2act(acc.y * inv);
                op[2] = f2act(acc.z * inv);
                op[3] = f2act(acc.w * inv);
            } else if (GM && fold) {
                fold_put(part, b, fold, kvh * GROUP + gg, split, d, acc, M, bl[gg]);
            } else if (GM) {
                float* pp = part + (((size_t)b * NH + kvh * GROUP + gg) * NSPLIT + split) * ATT_PS;
                *(float4*)(pp + d) = acc;
                if (d == 0) { pp[HD] = M; pp[HD + 1] = bl[gg]; }
            } else {
                *(float4*)&bo[gg][d] = acc;
            }
        }
    }
    if (direct) return;
    if (GM) {
        if (!fold) att_combine_last<THREADS, false>(part, counters, out, b, kvh, cs);
        return;
    }
    // The cluster's blocks (the splits of this (kv head, row)): every block reads the (m, l, O) of
    // all cs blocks for its share of the outputs (item i -> block i % cs), through DSMEM.
    cluster_sync_all();
    {
        const u32 lbo = smem_u32(&bo[0][0]), lbm = smem_u32(&bm[0]), lbl = smem_u32(&bl[0]);
        for (int i = threadIdx.x * cs + split; i < NO; i += THREADS * cs) {
            const int gg = i / (HD / 4), d = 4 * (i % (HD / 4));
            float mr[ACL_MAXCS];
            float M = -INFINITY;
#pragma unroll
            for (int r = 0; r < ACL_MAXCS; r++) {
                mr[r] = r < cs ? acl_ldf(acl_map(lbm + 4 * gg, r)) : -INFINITY;
                M = fmaxf(M, mr[r]);
            }
            float L = 0.f;
            float4 A = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
            for (int r = 0; r < ACL_MAXCS; r++) {
                if (r < cs) {
                    const float f = mr[r] == -INFINITY ? 0.f : acl_exp<E2>(mr[r] - M);
                    const float lr = acl_ldf(acl_map(lbl + 4 * gg, r));
                    const float4 v = acl_ldf4(acl_map(lbo + (u32)((gg * HD + d) * 4), r));
                    L = fmaf(f, lr, L);
                    A.x = fmaf(f, v.x, A.x);
                    A.y = fmaf(f, v.y, A.y);
                    A.z = fmaf(f, v.z, A.z);
                    A.w = fmaf(f, v.w, A.w);
                }
            }
            const float inv = 1.0f / L;
            act_t* op = out + (size_t)b * QDIM + (kvh * GROUP + gg) * HD + d;
            op[0] = f2act(A.x * inv);
            op[1] = f2act(A.y * inv);
            op[2] = f2act(A.z * inv);
            op[3] = f2act(A.w * inv);
        }
    }
    cluster_sync_all();  // no block leaves while others read its shared memory
}
//   q (B, QDIM) f32, RoPE applied; out (B, QDIM) act_t; grid (cs, NKV, B) in clusters of (cs, 1, 1),
//   cs <= ACL_MAXCS; NW warps per block (attn_decode_cl: 4, attn_decode_cl8: 8); dynamic shared memory
//   stg · NW · 2 · ACL_TB bytes, 2 <= stg <= 8.
template <int NW, bool GM = false>
__device__ __forceinline__ void acl_body(const float* __restrict__ q, const kv_t* __restrict__ kc,
                                         const kv_t* __restrict__ vc, act_t* __restrict__ out,
                                         const int* __restrict__ row_pos, const int* __restrict__ row_slot, int stg,
                                         float* __restrict__ part = nullptr, int* __restrict__ counters = nullptr,
                                         const int fold = 0) {
    constexpr int KS = HD / 32;
    constexpr int ND = HD / 8;
    extern __shared__ __align__(16) unsigned char acl_ring[];
    __shared__ __align__(16) float ow[NW][8][HD + 4];
    __shared__ float mw[NW][8], lw[NW][8];
    __shared__ __align__(16) float bo[GROUP][HD];
    __shared__ float bm[GROUP], bl[GROUP];
#if KV_Q
    __shared__ __align__(16) h16 vsm[NW][16][ATC_VS];
#endif
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int cs = gridDim.x, split = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
    // Before griddepcontrol.wait: nothing here was written by the previous kernel.
    const int len = row_pos[b] + 1;
    const int slot = row_slot[b];
    const int ntile = (len + 15) >> 4;
    const int per = (ntile + cs - 1) / cs;
    const int k_begin = min(split * per, ntile) * 16, k_end = min((split + 1) * per * 16, len);
    const int nbt = k_end > k_begin ? (k_end - k_begin + 15) >> 4 : 0;  // this block's tiles
    const int nt = nbt > warp ? (nbt - warp + NW - 1) / NW : 0;          // this warp's: warp + NW·i
    const int newp = len - 1;  // the new token's position, written by the previous kernel
    const u32 ring = smem_u32(acl_ring) + (u32)(warp * stg * 2 * ACL_TB);
    // Copies tile k0 into ring slot si: rows < k_end from the cache, the rest zero-filled; row `skip`
    // (relative) is left alone (the new token before the wait).
    auto issue = [&](int k0, int si, int skip, size_t tile) {
        const unsigned char* kb = (const unsigned char*)(kc + tile);
        const unsigned char* vb = (const unsigned char*)(vc + tile);
        const u32 dk = ring + (u32)(si * 2 * ACL_TB), dv = dk + ACL_TB;
        const int nrow = k_end - k0;
#pragma unroll
        for (int j = 0; j < ACL_CH / 2; j++) {
            const int qi = j * 32 + lane, r = qi / ACL_CH, c = qi % ACL_CH;
            if (r != skip) {
                const bool in = r < nrow;
                const size_t so = in ? (size_t)r * KV_RS * sizeof(kv_t) + c * 16 : 0;
                cp_async16(dk + r * ACL_RB + acl_swk(r, c) * 16, kb + so, in ? 16 : 0);
                cp_async16(dv + r * ACL_RB + acl_swv(r, c) * 16, vb + so, in ? 16 : 0);
            }
        }
    };
    for (int i = 0; i < stg; i++) {
        if (i < nt) {
            const int k0 = k_begin + 16 * (warp + NW * i);
            issue(k0, i, newp - k0 < 16 ? newp - k0 : -1, kv_off(slot, kvh, k0));
        }
        cp_async_commit();
    }
    tt_sub(TT_WAIT0, TL_ATTN);
    pdl_wait();
    tt_sub(TT_WAIT1, TL_ATTN);
    if (trig_mode(TL_ATTN, gridDim.z) == 2) pdl_trigger();
    tl_waited();
    // The new token's K/V row, if its tile was copied above: plain loads (L2) into the slot.
    if (newp >= k_begin && newp < k_end) {
        const int jt = (newp - k_begin) >> 4, i = jt / NW;
        if (jt % NW == warp && i < stg && lane < ACL_CH) {
            const int k0 = k_begin + 16 * jt, r = newp - k0;
            const size_t off = kv_off(slot, kvh, k0) + (size_t)r * KV_RS;
            const u32 dk = ring + (u32)(i * 2 * ACL_TB) + r * ACL_RB;
            const uint4 kv = __ldcg((const uint4*)((const unsigned char*)(kc + off) + lane * 16));
            const uint4 vv = __ldcg((const uint4*)((const unsigned char*)(vc + off) + lane * 16));
            asm volatile("st.shared.v4.u32 [%0], {%1,%2,%3,%4};" ::"r"(dk + acl_swk(r, lane) * 16), "r"(kv.x), "r"(kv.y), "r"(kv.z), "r"(kv.w) : "memory");
            asm volatile("st.shared.v4.u32 [%0], {%1,%2,%3,%4};" ::"r"(dk + ACL_TB + acl_swv(r, lane) * 16), "r"(vv.x), "r"(vv.y), "r"(vv.z), "r"(vv.w) : "memory");
        }
    }
    // Q as A fragments (attn_tc_core's layout and scale).
    u32 qa[KS][2][2];
    {
#if KV_Q
        const float scale = kv_scale(kc, 0, kvh) / sqrtf((float)HD);
#else
        const float scale = 1.0f / sqrtf((float)HD);
#endif
#pragma unroll
        for (int s = 0; s < KS; s++) {
            float4 x0 = make_float4(0.f, 0.f, 0.f, 0.f), x1 = x0;
            if (g < GROUP) {
                const float* qp = q + (size_t)b * QDIM + (kvh * GROUP + g) * HD + 32 * s + 8 * t;
                x0 = __ldcg((const float4*)qp);
                x1 = __ldcg((const float4*)(qp + 4));
            }
            qa[s][0][0] = pack_h2(x0.x * scale, x0.y * scale);
            qa[s][0][1] = pack_h2(x0.z * scale, x0.w * scale);
            qa[s][1][0] = pack_h2(x1.x * scale, x1.y * scale);
            qa[s][1][1] = pack_h2(x1.z * scale, x1.w * scale);
        }
    }
    tt_sub(TT_STAGED, TL_ATTN);  // q in registers (thread 0's loads back)
    float m_run = -INFINITY, l_run = 0.f;
    float o[ND][4];
#pragma unroll
    for (int nd = 0; nd < ND; nd++) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.f;
    // Cache offset of the next tile to copy (paged: its block-table entry is read one tile ahead).
    size_t next_off = stg < nt ? kv_off(slot, kvh, k_begin + 16 * (warp + NW * stg)) : 0;
    auto refill = [&](int i, int k0, int si) {
        if (i + stg < nt) issue(k0 + 16 * NW * stg, si, -1, next_off);
        cp_async_commit();
        if (i + stg + 1 < nt) next_off = kv_off(slot, kvh, k0 + 16 * NW * (stg + 1));
    };
    for (int i = 0; i < nt; i++) {
        const int k0 = k_begin + 16 * (warp + NW * i);
        const int si = i % stg;
        cp_async_wait(stg - 1);  // tile i's copies (this lane's) have landed
        __syncwarp();       // ... and every lane's, and the new-token row
        const u32 dk = ring + (u32)(si * 2 * ACL_TB), dv = dk + ACL_TB;
        uint4 kc_[2][KS];
#pragma unroll
        for (int nb = 0; nb < 2; nb++) {
            const int r = nb * 8 + g;
#pragma unroll
            for (int s = 0; s < KS; s++) {
#if KV_Q
                const int e = 32 * s + 8 * t;  // byte of the row
                const u32 a = dk + r * ACL_RB + acl_swk(r, e >> 4) * 16 + (e & 15);
                uint2 c;
                asm volatile("ld.shared.v2.u32 {%0,%1}, [%2];" : "=r"(c.x), "=r"(c.y) : "r"(a));
                kc_[nb][s] = kv_h8(c);
#else
                const u32 a = dk + r * ACL_RB + acl_swk(r, 4 * s + t) * 16;
                uint4 c;
                asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(c.x), "=r"(c.y), "=r"(c.z), "=r"(c.w) : "r"(a));
                kc_[nb][s] = c;
#endif
            }
        }
#if KV_Q
        // V codes -> f16 rows of this warp's vsm tile (the ring slot is then free).
        {
            constexpr int VL = 16 * HD / 8 / 32;
#pragma unroll
            for (int v = 0; v < VL; v++) {
                const int e = v * 32 + lane, r = e / (HD / 8), p = e % (HD / 8);
                uint2 c;
                asm volatile("ld.shared.v2.u32 {%0,%1}, [%2];" : "=r"(c.x), "=r"(c.y) : "r"(dv + r * ACL_RB + p * 8));
                *(uint4*)&vsm[warp][r][p * 8] = kv_h8(c);
            }
        }
        __syncwarp();
        refill(i, k0, si);
        const u32 vs_base = smem_u32(&vsm[warp][0][0]);
#endif
        u32 pa0, pa2;
        const float alpha = atc_tile_softmax<KS>(qa, kc_, k0, k_end, t, m_run, l_run, pa0, pa2);
#pragma unroll
        for (int j = 0; j < ND / 2; j++) {
            const int mi = lane >> 3, r = (mi & 1) * 8 + (lane & 7), c = 2 * j + (mi >> 1);
#if KV_Q
            const u32 addr = vs_base + (u32)((r * ATC_VS + c * 8) * 2);
#else
            const u32 addr = dv + r * ACL_RB + acl_swv(r, c) * 16;
#endif
            u32 b0, b1, b2, b3;
            asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                         : "=r"(b0), "=r"(b1), "=r"(b2), "=r"(b3) : "r"(addr));
#pragma unroll
            for (int e = 0; e < 4; e++) { o[2 * j][e] *= alpha; o[2 * j + 1][e] *= alpha; }
            mma16816(o[2 * j], pa0, 0u, pa2, 0u, b0, b1);
            mma16816(o[2 * j + 1], pa0, 0u, pa2, 0u, b2, b3);
        }
        __syncwarp();
#if !KV_Q
        refill(i, k0, si);
#endif
    }
    cp_async_wait(0);
    tt_sub(TT_T0, TL_ATTN);  // t0a: warp 0's tiles done
    pdl_trigger();
    tl_trig();
#if KV_Q
    {
        const float sv = kv_scale(vc, 1, kvh);  // O = s_v · P · codes
#pragma unroll
        for (int nd = 0; nd < ND; nd++) { o[nd][0] *= sv; o[nd][1] *= sv; }
    }
#endif
    // The block's warps: (m, l, O) of rows g < GROUP merged in shared memory (attn_tc_core's way).
    if (t == 0) { mw[warp][g] = m_run; lw[warp][g] = l_run; }
#pragma unroll
    for (int nd = 0; nd < ND; nd++) {
        ow[warp][g][nd * 8 + 2 * t] = o[nd][0];
        ow[warp][g][nd * 8 + 2 * t + 1] = o[nd][1];
    }
    acl_merge<NW, false, GM>(ow, mw, lw, bo, bm, bl, out, b, kvh, cs, split, part, counters, fold);
    tt_sub(TT_T0 + 1, TL_ATTN);  // t0b: the block's merge and its record stores issued
    if (TL_ON && blockIdx.y == 0 && blockIdx.z == 0) tt_tiles(1);
    tt_sub(TT_END, TL_ATTN);
}
extern "C" __global__ void __launch_bounds__(ATT_THREADS)
attn_decode_cl(const float* __restrict__ q, const kv_t* __restrict__ kc, const kv_t* __restrict__ vc,
               act_t* __restrict__ out, const int* __restrict__ row_pos, const int* __restrict__ row_slot, int stg) {
    tl_enter(TL_ATTN);
    if (trig_mode(TL_ATTN, gridDim.z) == 1) pdl_trigger();
    acl_body<ATT_THREADS / 32>(q, kc, vc, out, row_pos, row_slot, stg);
    tl_exit();
}
// 8 warps per block (opt-in, TRTFORGE_ATTN=cl8): twice the warps per (row, kv head) where one block
// each is all there is (bs64: 256 blocks, ncu 7.7 active warps per SM).
extern "C" __global__ void __launch_bounds__(2 * ATT_THREADS)
attn_decode_cl8(const float* __restrict__ q, const kv_t* __restrict__ kc, const kv_t* __restrict__ vc,
                act_t* __restrict__ out, const int* __restrict__ row_pos, const int* __restrict__ row_slot, int stg) {
    tl_enter(TL_ATTN);
    if (trig_mode(TL_ATTN, gridDim.z) == 1) pdl_trigger();
    acl_body<2 * ATT_THREADS / 32>(q, kc, vc, out, row_pos, row_slot, stg);
    tl_exit();
}
// attn_decode_cg (session 10; the default for decode passes of 2-8 rows, bs1 switch `mcg`, `cg` also at
// one row): attn_decode_cl's body (K/V of the old positions issued into the cp.async ring before
// griddepcontrol.wait) without a cluster: the splits of a (kv head, row) are ordinary blocks that
// write partial records, the last one combines them (att_combine_last). So the blocks (stg · 16 KB of
// ring: 128 KB at the host's 8 stages) need no co-scheduled cluster slots.
//   grid (splits, NKV, B), splits <= NSPLIT; part / counters as attn_decode_tc.
extern "C" __global__ void __launch_bounds__(ATT_THREADS)
attn_decode_cg(const float* __restrict__ q, const kv_t* __restrict__ kc, const kv_t* __restrict__ vc,
               act_t* __restrict__ out, float* __restrict__ part, int* __restrict__ counters,
               const int* __restrict__ row_pos, const int* __restrict__ row_slot, int stg) {
    tl_enter(TL_ATTN);
    if (trig_mode(TL_ATTN, gridDim.z) == 1) pdl_trigger();
    // stg | ATT_FOLD: no combine here (as attn_decode_tc's).
    acl_body<ATT_THREADS / 32, true>(q, kc, vc, out, row_pos, row_slot, stg & (ATT_FOLD - 1), part, counters,
                                     fold_reps(stg));
    tl_exit();
}

// attn_decode_cx / cx8 (session 7, f16 caches; opt-in TRTFORGE_ATTN=cx / cx8 / cxall / cx8all): the
// ring, the launch and the merge of attn_decode_cl with a tile step of about a quarter of the
// instructions. attn_decode_cl computes S = Q·Kᵀ with the 8 query heads of a kv head as the M = 16 rows
// of m16n8k16 (half of every mma is zero rows) and O = P·V the same way (HD/8 mmas + a 32-register O
// rescaled on every tile). Here both products are transposed so that the heads are the N = 8 side:
//   Sᵀ (16 keys × 8 heads) = K (16 × HD, A by ldmatrix from the ring) · Qᵀ (B, in registers): HD/16 mmas;
//   Oᵀ (HD × 8 heads) += Vᵀ (A by ldmatrix.trans) · Pᵀ (B: Sᵀ's accumulators → f16 → movmatrix.trans):
//   HD/16 mmas, O in HD/8 registers.
// q is prescaled by log2(e)/sqrt(HD) (ex2.approx, m in log2 units); each lane keeps a partial row sum
// over its own keys (reduced once at the end); the max is reduced per tile but O and l are rescaled
// only when some head's tile max exceeds its running max by more than ACX_TH (a warp vote), so P ≤
// 2^ACX_TH in f16 (exact algebra: O and l share the same reference max). The per-lane cp.async and
// ldmatrix offsets are the same for every tile (registers); K and V rows use one swizzle (acl_swv:
// conflict-free ldmatrix rows); the zero-fill / new-token path runs only for partial tiles.
// 8-bit caches (KV_Q, session 36): the ring holds the codes (half the bytes, twice the stages); each lane
// builds its K and Vᵀ A fragments in registers from 8-byte shared loads (no f16 staging tile, no ldmatrix):
//   K: rows g, g + 8, bytes 32S + 8t .. + 7 → the A fragments of k-steps 2S, 2S + 1 (dims permuted in
//      K and in Qᵀ alike: k index 2t, 2t+1 / 8+2t, 9+2t of step 2S ↔ dims 32S + 8t + 0,1 / 2,3, of step
//      2S + 1 ↔ + 4,5 / 6,7), K's scale folded into q's;
//   Vᵀ: lane (g, t) holds dims DL·g .. DL·g + DL − 1 (DL = HD / 8) of keys 2t, 2t+1, 2t+8, 2t+9 (rows of
//      m-tile s: g ↔ dim DL·g + 2s, g + 8 ↔ DL·g + 2s + 1; the merge writes O back in dim order), two
//      keys' codes paired by one byte permute per fragment register, V's scale applied to O at the end.
#define ACX_TH 8.0f
__device__ __forceinline__ u32 acx_movt(u32 a) {
    u32 d;
    asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(d) : "r"(a));
    return d;
}
__device__ __forceinline__ float acx_ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}
// {lo, hi} -> f16x2 (lo in the low half), round to nearest.
__device__ __forceinline__ u32 acx_h2(float lo, float hi) {
    u32 r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}
template <int N>
__device__ __forceinline__ void acx_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
__device__ __forceinline__ void acx_ldm(u32 a, u32& r0, u32& r1, u32& r2, u32& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(a));
}
__device__ __forceinline__ void acx_ldmt(u32 a, u32& r0, u32& r1, u32& r2, u32& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(a));
}
#if KV_Q
// Four cache codes → f16x2 {bytes 0, 1} and {bytes 2, 3} (low half = the lower byte), as kv_h8.
__device__ __forceinline__ void acx_h4(u32 c, u32& lo, u32& hi) {
#if KV_Q == 1
    i8x4_h2(c, lo, hi);
#else
    e4m3x4_h2(c, lo, hi);
#endif
}
// The V codes' 16-byte chunk in the ring (K keeps acl_swk): 64-byte rows (HD 64) spread so that the
// rows one Vᵀ load reads (2t + (t & 1), 2t + 1 − (t & 1), + 8) hit distinct banks.
__device__ __forceinline__ int acx_swq(int r, int c) { return ACL_CH == 4 ? (c ^ (((r >> 2) & 1) << 1)) : c; }
// DL / 4 words of one cache row from shared memory.
template <int NWD>
__device__ __forceinline__ void acx_lds(u32 a, u32 (&w)[NWD]) {
    if constexpr (NWD == 1) {
        asm volatile("ld.shared.u32 %0, [%1];" : "=r"(w[0]) : "r"(a));
    } else if constexpr (NWD == 2) {
        asm volatile("ld.shared.v2.u32 {%0,%1}, [%2];" : "=r"(w[0]), "=r"(w[1]) : "r"(a));
    } else {
#pragma unroll
        for (int i = 0; i < NWD; i += 4)
            asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];"
                         : "=r"(w[i]), "=r"(w[i + 1]), "=r"(w[i + 2]), "=r"(w[i + 3]) : "r"(a + 4 * i));
    }
}
#endif
// ROPE's pieces (session 58). RoPE as `qkv_store` computes it (the same expressions: the same f32 results as the
// unfused path's q / cache), on the GEMM output y whose q / k rows hold RoPE pairs (i, i + HALF_HD) side by side.
// Needs HD % 64 == 0 (the lane's q dims and their RoPE partners in the same lane) and no K rotation (kv_rot).
#define ACX_ROPE_OK (HD % 64 == 0 && !KV_ROT && !KV_F32)
#if ACX_ROPE_OK
// Four consecutive elements of y from L2 (written by the previous kernel) as f32.
__device__ __forceinline__ void acx_ldy4(const float* __restrict__ p, float (&x)[4]) {
    const float4 v = __ldcg(reinterpret_cast<const float4*>(p));
    x[0] = v.x; x[1] = v.y; x[2] = v.z; x[3] = v.w;
}
__device__ __forceinline__ void acx_ldy4(const h16* __restrict__ p, float (&x)[4]) {
    const uint2 v = __ldcg(reinterpret_cast<const uint2*>(p));
    x[0] = h2f((h16)(v.x & 0xffffu)); x[1] = h2f((h16)(v.x >> 16));
    x[2] = h2f((h16)(v.y & 0xffffu)); x[3] = h2f((h16)(v.y >> 16));
}
// q's B fragments of kv head kvh, row b (as the unfused loads build them from qout): lane (g, t) needs, for every RoPE
// pair i it holds, both halves i and i + HALF_HD — the same lane's k-steps s and s + KT / 2 (f16 caches: dims
// 16s + 2t, +1, +8, +9) or 2S.. and 2S + KT / 2.. (8-bit caches: the permuted dims 32S + 8t .. + 7).
template <int KT, class Y>
__device__ __forceinline__ void acx_q_rope(u32 (&qb)[KT][2], const Y* __restrict__ y, int b, int kvh, int g, int t,
                                           int pos, const float* __restrict__ rcos, const float* __restrict__ rsin,
                                           float scale) {
    constexpr int NP = KV_Q ? 8 : 4;  // pairs a lane holds per step group
    constexpr int NG = KV_Q ? KT / 4 : KT / 2;
#pragma unroll
    for (int s = 0; s < NG; s++) {
        // the lane's pairs: 8-bit 32s + 8t + j (j < 8); f16 16s + 2t + {0, 1, 8, 9}
        float o1[NP], o2[NP];
#pragma unroll
        for (int j = 0; j < NP; j++) o1[j] = o2[j] = 0.f;
        if (g < GROUP) {
            const Y* yr = y + (size_t)b * QKV_DIM + (kvh * GROUP + g) * HD;
#pragma unroll
            for (int h = 0; h < NP / 2; h++) {
                const int i = KV_Q ? 32 * s + 8 * t + 2 * h : 16 * s + 2 * t + 8 * h;  // pairs i, i + 1
                float x[4];
                acx_ldy4(yr + 2 * i, x);
                const float* cp = rcos + (size_t)pos * HALF_HD + i;
                const float* sp = rsin + (size_t)pos * HALF_HD + i;
#pragma unroll
                for (int u = 0; u < 2; u++) {
                    const float2 r = rope_rot(x[2 * u], x[2 * u + 1], cp[u], sp[u]);
                    o1[2 * h + u] = r.x;
                    o2[2 * h + u] = r.y;
                }
            }
        }
#if KV_Q
        qb[2 * s][0] = acx_h2(o1[0] * scale, o1[1] * scale);
        qb[2 * s][1] = acx_h2(o1[2] * scale, o1[3] * scale);
        qb[2 * s + 1][0] = acx_h2(o1[4] * scale, o1[5] * scale);
        qb[2 * s + 1][1] = acx_h2(o1[6] * scale, o1[7] * scale);
        qb[2 * s + KT / 2][0] = acx_h2(o2[0] * scale, o2[1] * scale);
        qb[2 * s + KT / 2][1] = acx_h2(o2[2] * scale, o2[3] * scale);
        qb[2 * s + 1 + KT / 2][0] = acx_h2(o2[4] * scale, o2[5] * scale);
        qb[2 * s + 1 + KT / 2][1] = acx_h2(o2[6] * scale, o2[7] * scale);
#else
        qb[s][0] = acx_h2(o1[0] * scale, o1[1] * scale);
        qb[s][1] = acx_h2(o1[2] * scale, o1[3] * scale);
        qb[s + KT / 2][0] = acx_h2(o2[0] * scale, o2[1] * scale);
        qb[s + KT / 2][1] = acx_h2(o2[2] * scale, o2[3] * scale);
#endif
    }
}
// The new token's K / V row of (row b, kv head kvh) from y, as `qkv_store` writes it, by one warp; ends with a
// __syncwarp (its stores visible to the warp's later reads of the row).
template <class Y>
__device__ __forceinline__ void acx_new_kv(const Y* __restrict__ y, const kv_t* kc, const kv_t* vc, int b, int kvh,
                                           int pos, int slot, const float* __restrict__ rcos,
                                           const float* __restrict__ rsin, int lane) {
    kv_t* k = const_cast<kv_t*>(kc) + kv_off(slot, kvh, pos);
    kv_t* v = const_cast<kv_t*>(vc) + kv_off(slot, kvh, pos);
    const Y* yk = y + (size_t)b * QKV_DIM + QDIM + kvh * HD;
    const Y* yv = y + (size_t)b * QKV_DIM + QDIM + KVDIM + kvh * HD;
#if KV_Q
    const float sk = kv_scale(kc, 0, kvh), sv = kv_scale(vc, 1, kvh);
#endif
    for (int i2 = 2 * lane; i2 < HALF_HD; i2 += 64) {  // k pairs i2, i2 + 1
        float x[4];
        acx_ldy4(yk + 2 * i2, x);
#pragma unroll
        for (int u = 0; u < 2; u++) {
            const int i = i2 + u;
            const float2 r = rope_rot(x[2 * u], x[2 * u + 1], rcos[(size_t)pos * HALF_HD + i], rsin[(size_t)pos * HALF_HD + i]);
#if KV_Q
            k[i] = kv_enc(r.x, sk);
            k[i + HALF_HD] = kv_enc(r.y, sk);
#else
            k[i] = f2kv(r.x);
            k[i + HALF_HD] = f2kv(r.y);
#endif
        }
    }
    for (int d = 4 * lane; d < HD; d += 128) {  // v rows d .. d + 3 (natural order)
        float x[4];
        acx_ldy4(yv + d, x);
#pragma unroll
        for (int u = 0; u < 4; u++) {
#if KV_Q
            v[d + u] = kv_enc(x[u], sv);
#else
            v[d + u] = f2kv(x[u]);
#endif
        }
    }
    __syncwarp();
}
#endif
//   As acl_body (grid, clusters, dynamic shared memory STG · NW · 2 · ACL_TB bytes); STG is fixed
//   per kernel (the host passes the same number).
//   ROPE (session 58, attn_decode_cx8r / cx8rh): the QKV GEMM's epilogue folded in — q is read from the GEMM output
//   y (Y: float or h16, RoPE's pair order as `qkv_store` reads it) and rotated here, and the warp whose tile holds the
//   new token rotates its k, writes its K / V row into the cache and (tile copied before the wait) into its ring slot;
//   no `rope_append` launch before it. q as f32 (`q`) is neither read nor written then.
template <int NW, int STG, bool ROPE = false, class Y = float>
__device__ __forceinline__ void acx_body(const float* __restrict__ q, const kv_t* __restrict__ kc,
                                         const kv_t* __restrict__ vc, act_t* __restrict__ out,
                                         const int* __restrict__ row_pos, const int* __restrict__ row_slot,
                                         const Y* __restrict__ y = nullptr, const float* __restrict__ rcos = nullptr,
                                         const float* __restrict__ rsin = nullptr) {
    constexpr int KT = HD / 16;      // k-steps of Sᵀ = m-tiles of Oᵀ
    constexpr int CPL = ACL_CH / 2;  // 16-byte chunks per lane of one K (or V) tile
    extern __shared__ __align__(16) unsigned char acx_ring[];
    __shared__ __align__(16) float ow[NW][8][HD + 4];
    __shared__ float mw[NW][8], lw[NW][8];
    __shared__ __align__(16) float bo[GROUP][HD];
    __shared__ float bm[GROUP], bl[GROUP];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int cs = gridDim.x, split = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
    // Before griddepcontrol.wait: nothing here was written by the previous kernel.
    const int len = row_pos[b] + 1;
    const int slot = row_slot[b];
    const int ntile = (len + 15) >> 4;
    const int per = (ntile + cs - 1) / cs;
    const int k_begin = min(split * per, ntile) * 16, k_end = min((split + 1) * per * 16, len);
    const int nbt = k_end > k_begin ? (k_end - k_begin + 15) >> 4 : 0;
    const int nt = nbt > warp ? (nbt - warp + NW - 1) / NW : 0;
    const int newp = len - 1;
    const u32 ring = smem_u32(acx_ring) + (u32)(warp * STG * 2 * ACL_TB);
    // This lane's copies of a tile: chunk j = row (32j + lane) / ACL_CH, 16-byte column (.. % ACL_CH).
    u32 dof[CPL], sof[CPL];
#if KV_Q
    u32 dov[CPL];  // V's chunks (K: dof)
#define ACX_DOV(j) dov[j]
#else
#define ACX_DOV(j) dof[j]
#endif
#pragma unroll
    for (int j = 0; j < CPL; j++) {
        const int qi = j * 32 + lane, r = qi / ACL_CH, c = qi % ACL_CH;
#if KV_Q
        dof[j] = (u32)(r * ACL_RB + acl_swk(r, c) * 16);
        dov[j] = (u32)(r * ACL_RB + acx_swq(r, c) * 16);
#else
        dof[j] = (u32)(r * ACL_RB + acl_swv(r, c) * 16);
#endif
        sof[j] = (u32)(r * KV_RS * (int)sizeof(kv_t) + c * 16);
    }
    // Copies the tile at cache offset `tile` into ring slot si: rows < nrow (the rest zero-filled),
    // row `skip` left alone (the new token, before the wait).
    auto issue = [&](size_t tile, int si, int nrow, int skip) {
        const unsigned char* kb = (const unsigned char*)(kc + tile);
        const unsigned char* vb = (const unsigned char*)(vc + tile);
        const u32 dk = ring + (u32)(si * 2 * ACL_TB);
        if (nrow >= 16 && skip < 0) {
#pragma unroll
            for (int j = 0; j < CPL; j++) {
                cp_async16(dk + dof[j], kb + sof[j], 16);
                cp_async16(dk + ACL_TB + ACX_DOV(j), vb + sof[j], 16);
            }
        } else {
#pragma unroll
            for (int j = 0; j < CPL; j++) {
                const int r = (j * 32 + lane) / ACL_CH;
                if (r != skip) {
                    const bool in = r < nrow;
                    cp_async16(dk + dof[j], in ? (const void*)(kb + sof[j]) : (const void*)kb, in ? 16 : 0);
                    cp_async16(dk + ACL_TB + ACX_DOV(j), in ? (const void*)(vb + sof[j]) : (const void*)vb, in ? 16 : 0);
                }
            }
        }
    };
#pragma unroll
    for (int i = 0; i < STG; i++) {
        if (i < nt) {
            const int k0 = k_begin + 16 * (warp + NW * i);
            issue(kv_off(slot, kvh, k0), i, k_end - k0, newp - k0 < 16 ? newp - k0 : -1);
        }
        cp_async_commit();
    }
    pdl_wait();
    if (trig_mode(TL_ATTN, gridDim.z) == 2) pdl_trigger();
    tl_waited();
    // ROPE: the warp of the new token's tile makes its K / V row from y and writes it into the cache (its own later
    // copy of that tile, or the plain loads below, read it back after the __syncwarp).
#if ACX_ROPE_OK
    if constexpr (ROPE) {
        if (newp >= k_begin && newp < k_end && ((newp - k_begin) >> 4) % NW == warp)
            acx_new_kv<Y>(y, kc, vc, b, kvh, newp, slot, rcos, rsin, lane);
    }
#endif
    // The new token's K/V row, if its tile was copied above: plain loads (L2) into the slot.
    if (newp >= k_begin && newp < k_end) {
        const int jt = (newp - k_begin) >> 4, i = jt / NW;
        if (jt % NW == warp && i < STG && lane < ACL_CH) {
            const int k0 = k_begin + 16 * jt, r = newp - k0;
            const size_t off = kv_off(slot, kvh, k0) + (size_t)r * KV_RS;
#if KV_Q
            const u32 dk = ring + (u32)(i * 2 * ACL_TB) + r * ACL_RB + acl_swk(r, lane) * 16;
            const u32 dv = ring + (u32)(i * 2 * ACL_TB) + ACL_TB + r * ACL_RB + acx_swq(r, lane) * 16;
#else
            const u32 dk = ring + (u32)(i * 2 * ACL_TB) + r * ACL_RB + acl_swv(r, lane) * 16, dv = dk + ACL_TB;
#endif
            const uint4 kv = __ldcg((const uint4*)((const unsigned char*)(kc + off) + lane * 16));
            const uint4 vv = __ldcg((const uint4*)((const unsigned char*)(vc + off) + lane * 16));
            asm volatile("st.shared.v4.u32 [%0], {%1,%2,%3,%4};" ::"r"(dk), "r"(kv.x), "r"(kv.y), "r"(kv.z), "r"(kv.w) : "memory");
            asm volatile("st.shared.v4.u32 [%0], {%1,%2,%3,%4};" ::"r"(dv), "r"(vv.x), "r"(vv.y), "r"(vv.z), "r"(vv.w) : "memory");
        }
    }
    // Qᵀ as B fragments: b0 = q[head g][16s + 2t, +1], b1 = q[head g][16s + 8 + 2t, +1] (heads
    // g >= GROUP zero), scaled by log2(e)/sqrt(HD).
    u32 qb[KT][2];
#if KV_Q
    const float scale = 1.44269504088896341f * kv_scale(kc, 0, kvh) / sqrtf((float)HD);  // K's scale folded in
#else
    const float scale = 1.44269504088896341f / sqrtf((float)HD);
#endif
#if ACX_ROPE_OK
    if constexpr (ROPE) {
        acx_q_rope<KT, Y>(qb, y, b, kvh, g, t, row_pos[b], rcos, rsin, scale);
    } else
#endif
#if KV_Q
    {  // the permuted dims (above): q[head g][32S + 8t .. + 7] → k-steps 2S, 2S + 1
#pragma unroll
        for (int S = 0; S < KT / 2; S++) {
            float4 x0 = make_float4(0.f, 0.f, 0.f, 0.f), x1 = x0;
            if (g < GROUP) {
                const float* qp = q + (size_t)b * QDIM + (kvh * GROUP + g) * HD + 32 * S + 8 * t;
                x0 = __ldcg((const float4*)qp);
                x1 = __ldcg((const float4*)(qp + 4));
            }
            qb[2 * S][0] = acx_h2(x0.x * scale, x0.y * scale);
            qb[2 * S][1] = acx_h2(x0.z * scale, x0.w * scale);
            qb[2 * S + 1][0] = acx_h2(x1.x * scale, x1.y * scale);
            qb[2 * S + 1][1] = acx_h2(x1.z * scale, x1.w * scale);
        }
    }
#else
    {
#pragma unroll
        for (int s = 0; s < KT; s++) {
            float2 x0 = make_float2(0.f, 0.f), x1 = x0;
            if (g < GROUP) {
                const float* qp = q + (size_t)b * QDIM + (kvh * GROUP + g) * HD + 16 * s + 2 * t;
                x0 = __ldcg((const float2*)qp);
                x1 = __ldcg((const float2*)(qp + 8));
            }
            qb[s][0] = acx_h2(x0.x * scale, x0.y * scale);
            qb[s][1] = acx_h2(x1.x * scale, x1.y * scale);
        }
    }
#endif
    // ldmatrix row addresses (relative to the slot): K as A (non-trans; matrix mi = lane / 8 holds keys
    // 8·(mi & 1) .., dims 16s + 8·(mi >> 1) ..), Vᵀ as A (trans; keys 8·(mi >> 1) .., dims 16s + 8·(mi & 1) ..).
#if KV_Q
    constexpr int DL = HD / 8, NWD = DL / 4;  // Vᵀ: bytes (words) of a cache row per lane
    const int odd = t & 1;                    // the rows' load order (bank spread, acx_swq)
    // Rows r and r + 8 share their swizzle (acl_swk / acx_swq read bits 0..2 of r), so the second half of a tile is
    // the first's address + 8 rows (an immediate). K: ka[S] = row g's bytes 32S + 8t .. + 7; V: the lane's two loads
    // of a pair (rows 2t + odd, 2t + 1 − odd: bank-spread order), put back in key order by the byte-permute selectors
    // (operands swapped where odd: every selector nibble ^ 4). Made opaque (empty asm) so that the compiler keeps them
    // in registers instead of recomputing them every tile (session 56: ≈ 40 instructions a tile).
    u32 ka[KT / 2];
#pragma unroll
    for (int S = 0; S < KT / 2; S++) {
        ka[S] = (u32)(g * ACL_RB + acl_swk(g, (32 * S + 8 * t) >> 4) * 16 + (8 * t & 15));
        asm volatile("" : "+r"(ka[S]));
    }
    u32 vo[2], vsel[2];
    {
        const int r0 = 2 * t + odd, r1 = 2 * t + 1 - odd, e = DL * g;
        vo[0] = (u32)(ACL_TB + r0 * ACL_RB + acx_swq(r0, e >> 4) * 16 + (e & 15));
        vo[1] = (u32)(ACL_TB + r1 * ACL_RB + acx_swq(r1, e >> 4) * 16 + (e & 15));
        vsel[0] = odd ? 0x5140u ^ 0x4444u : 0x5140u;
        vsel[1] = odd ? 0x7362u ^ 0x4444u : 0x7362u;
#pragma unroll
        for (int j = 0; j < 2; j++) asm volatile("" : "+r"(vo[j]), "+r"(vsel[j]));
    }
#else
    u32 kof[KT], vof[KT];
    {
        const int mi = lane >> 3, rr = lane & 7;
        const int rk = (mi & 1) * 8 + rr, rv = (mi >> 1) * 8 + rr;
#pragma unroll
        for (int s = 0; s < KT; s++) {
            kof[s] = (u32)(rk * ACL_RB + acl_swv(rk, 2 * s + (mi >> 1)) * 16);
            vof[s] = (u32)(ACL_TB + rv * ACL_RB + acl_swv(rv, 2 * s + (mi & 1)) * 16);
        }
    }
#endif
    // Running max (log2 units) and this lane's partial sum of heads 2t, 2t + 1; Oᵀ accumulators:
    // o[s] = {(dim 16s + g, head 2t), (.., 2t + 1), (dim 16s + 8 + g, 2t), (.., 2t + 1)}.
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
    float o[KT][4];
#pragma unroll
    for (int s = 0; s < KT; s++) o[s][0] = o[s][1] = o[s][2] = o[s][3] = 0.f;
    size_t next_off = STG < nt ? kv_off(slot, kvh, k_begin + 16 * (warp + NW * STG)) : 0;
    int si = 0;
#pragma unroll 1
    for (int i = 0; i < nt; i++) {
        const int k0 = k_begin + 16 * (warp + NW * i);
        acx_wait<STG - 1>();  // tile i's copies (this lane's) have landed
        __syncwarp();         // ... and every lane's, and the new-token row
        const u32 dk = ring + (u32)(si * 2 * ACL_TB);
        // Sᵀ: sc = {(key g, head 2t), (g, 2t + 1), (key g + 8, 2t), (g + 8, 2t + 1)}.
        float sa[4] = {0.f, 0.f, 0.f, 0.f}, sb[4] = {0.f, 0.f, 0.f, 0.f};
#if KV_Q
#pragma unroll
        for (int S = 0; S < KT / 2; S++) {
            uint2 c0, c1;
            asm volatile("ld.shared.v2.u32 {%0,%1}, [%2];" : "=r"(c0.x), "=r"(c0.y) : "r"(dk + ka[S]));
            asm volatile("ld.shared.v2.u32 {%0,%1}, [%2];" : "=r"(c1.x), "=r"(c1.y) : "r"(dk + ka[S] + 8 * ACL_RB));
            const uint4 h0 = kv_h8(c0), h1 = kv_h8(c1);
            mma16816(sa, h0.x, h1.x, h0.y, h1.y, qb[2 * S][0], qb[2 * S][1]);
            mma16816(sb, h0.z, h1.z, h0.w, h1.w, qb[2 * S + 1][0], qb[2 * S + 1][1]);
        }
#else
#pragma unroll
        for (int s = 0; s < KT; s++) {
            u32 a0, a1, a2, a3;
            acx_ldm(dk + kof[s], a0, a1, a2, a3);
            mma16816((s & 1) ? sb : sa, a0, a1, a2, a3, qb[s][0], qb[s][1]);
        }
#endif
        float sc[4];
#pragma unroll
        for (int e = 0; e < 4; e++) sc[e] = sa[e] + sb[e];
        if (k0 + 16 > k_end) {  // the block's last, partial tile
            if (k0 + g >= k_end) sc[0] = sc[1] = -INFINITY;
            if (k0 + 8 + g >= k_end) sc[2] = sc[3] = -INFINITY;
        }
        float x0 = fmaxf(sc[0], sc[2]), x1 = fmaxf(sc[1], sc[3]);
#pragma unroll
        for (int w = 4; w < 32; w <<= 1) {
            x0 = fmaxf(x0, __shfl_xor_sync(0xffffffffu, x0, w));
            x1 = fmaxf(x1, __shfl_xor_sync(0xffffffffu, x1, w));
        }
        if (__any_sync(0xffffffffu, x0 > m0 + ACX_TH || x1 > m1 + ACX_TH)) {
            const float n0 = fmaxf(m0, x0), n1 = fmaxf(m1, x1);
            const float a0 = acx_ex2(m0 - n0), a1 = acx_ex2(m1 - n1);
            m0 = n0;
            m1 = n1;
            l0 *= a0;
            l1 *= a1;
#pragma unroll
            for (int s = 0; s < KT; s++) { o[s][0] *= a0; o[s][1] *= a1; o[s][2] *= a0; o[s][3] *= a1; }
        }
        const float p0 = acx_ex2(sc[0] - m0), p1 = acx_ex2(sc[1] - m1);
        const float p2 = acx_ex2(sc[2] - m0), p3 = acx_ex2(sc[3] - m1);
        l0 += p0 + p2;
        l1 += p1 + p3;
        // Pᵀ as B fragments: the (keys × heads) 8 × 8 halves transposed.
        const u32 pb0 = acx_movt(acx_h2(p0, p1)), pb1 = acx_movt(acx_h2(p2, p3));
#if KV_Q
        // Vᵀ: va[h] / vb[h] = the lane's loads of rows 2t + 8h + odd / 2t + 8h + 1 − odd (bank-spread order; vsel
        // reads them in key order: keys 2t + 8h, then 2t + 8h + 1).
        u32 va[2][NWD], vb[2][NWD];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            acx_lds<NWD>(dk + vo[0] + h * 8 * ACL_RB, va[h]);
            acx_lds<NWD>(dk + vo[1] + h * 8 * ACL_RB, vb[h]);
        }
#pragma unroll
        for (int s = 0; s < KT; s++) {
            // bytes 2s, 2s + 1 of the lane's DL: {key a, key b} pairs of dims DL·g + 2s (rows g) and + 1 (rows g + 8)
            const u32 sel = vsel[s & 1];
            u32 a0, a1, a2, a3;
            acx_h4(__byte_perm(va[0][s >> 1], vb[0][s >> 1], sel), a0, a1);
            acx_h4(__byte_perm(va[1][s >> 1], vb[1][s >> 1], sel), a2, a3);
            mma16816(o[s], a0, a1, a2, a3, pb0, pb1);
        }
#else
#pragma unroll
        for (int s = 0; s < KT; s++) {
            u32 a0, a1, a2, a3;
            acx_ldmt(dk + vof[s], a0, a1, a2, a3);
            mma16816(o[s], a0, a1, a2, a3, pb0, pb1);
        }
#endif
        __syncwarp();  // every lane's ldmatrix of this slot is done: refill it
        if (i + STG < nt) {
            const int kn = k0 + 16 * NW * STG;
            issue(next_off, si, k_end - kn, -1);
        }
        cp_async_commit();
        if (i + STG + 1 < nt) next_off = kv_off(slot, kvh, k0 + 16 * NW * (STG + 1));
        si = si + 1 == STG ? 0 : si + 1;
    }
    cp_async_wait(0);
    pdl_trigger();
    tl_trig();
#pragma unroll
    for (int w = 4; w < 32; w <<= 1) {
        l0 += __shfl_xor_sync(0xffffffffu, l0, w);
        l1 += __shfl_xor_sync(0xffffffffu, l1, w);
    }
    if (g == 0) {
        mw[warp][2 * t] = m0;
        mw[warp][2 * t + 1] = m1;
        lw[warp][2 * t] = l0;
        lw[warp][2 * t + 1] = l1;
    }
#if KV_Q
    {
        const float sv = kv_scale(vc, 1, kvh);  // O = s_v · P · codes
#pragma unroll
        for (int s = 0; s < KT; s++) {
            ow[warp][2 * t][DL * g + 2 * s] = o[s][0] * sv;
            ow[warp][2 * t + 1][DL * g + 2 * s] = o[s][1] * sv;
            ow[warp][2 * t][DL * g + 2 * s + 1] = o[s][2] * sv;
            ow[warp][2 * t + 1][DL * g + 2 * s + 1] = o[s][3] * sv;
        }
    }
#else
#pragma unroll
    for (int s = 0; s < KT; s++) {
        ow[warp][2 * t][16 * s + g] = o[s][0];
        ow[warp][2 * t + 1][16 * s + g] = o[s][1];
        ow[warp][2 * t][16 * s + 8 + g] = o[s][2];
        ow[warp][2 * t + 1][16 * s + 8 + g] = o[s][3];
    }
#endif
#undef ACX_DOV
    acl_merge<NW, true>(ow, mw, lw, bo, bm, bl, out, b, kvh, cs, split);
}
// The entry points of acx_body: NW warps, STG f16 stages a warp (twice that for 8-bit caches, ACX_STG: the same ring
// bytes; launch.rs `acx_stages` gives the host the same numbers), BOUNDS the kernel's __launch_bounds__ arguments.
// ACX8_STG is the 8-warp kernels' STG (attn_decode_cx8 and its QKV-epilogue forms below).
#define ACX_STG(STG) (KV_Q ? 2 * (STG) : (STG))
#define ACX8_STG 2
#define ACX_KERNEL(name, NW, STG, BOUNDS)                                                                     \
    extern "C" __global__ void __launch_bounds__ BOUNDS name(                                                 \
        const float* __restrict__ q, const kv_t* __restrict__ kc, const kv_t* __restrict__ vc,                \
        act_t* __restrict__ out, const int* __restrict__ row_pos, const int* __restrict__ row_slot, int stg) { \
        tl_enter(TL_ATTN);                                                                                    \
        if (trig_mode(TL_ATTN, gridDim.z) == 1) pdl_trigger();                                                \
        acx_body<NW, ACX_STG(STG)>(q, kc, vc, out, row_pos, row_slot);                                       \
        tl_exit();                                                                                            \
    }
ACX_KERNEL(attn_decode_cx, ATT_THREADS / 32, 4, (ATT_THREADS))
ACX_KERNEL(attn_decode_cx8, 2 * ATT_THREADS / 32, ACX8_STG, (2 * ATT_THREADS))
#if ACX_ROPE_OK
// attn_decode_cx8 with the QKV epilogue folded in (ROPE above): y (rows, QKV_DIM) f32 (cx8r) or f16 (cx8rh) instead of
// q; the cache pointers are written (the new token's row).
#define ACX_RKERNEL(name, Y)                                                                                          \
    extern "C" __global__ void __launch_bounds__(2 * ATT_THREADS) name(                                               \
        const Y* __restrict__ y, kv_t* __restrict__ kc, kv_t* __restrict__ vc, act_t* __restrict__ out,               \
        const int* __restrict__ row_pos, const int* __restrict__ row_slot, const float* __restrict__ rcos,            \
        const float* __restrict__ rsin, int stg) {                                                                    \
        tl_enter(TL_ATTN);                                                                                            \
        if (trig_mode(TL_ATTN, gridDim.z) == 1) pdl_trigger();                                                        \
        acx_body<2 * ATT_THREADS / 32, ACX_STG(ACX8_STG), true, Y>(nullptr, kc, vc, out, row_pos, row_slot, y, rcos,  \
                                                                      rsin);                                          \
        tl_exit();                                                                                                    \
    }
ACX_RKERNEL(attn_decode_cx8r, float)
ACX_RKERNEL(attn_decode_cx8rh, h16)
#endif
#endif  // HD == 32 || HD % 64 == 0

#endif

// The previous decode attention (one chunk per block), kept for comparison: TRTFORGE_ATTN=v1.
#if !KV_Q
extern "C" __global__ void __launch_bounds__(ATT_THREADS)
attn_decode_v1(const float* __restrict__ q, const kv_t* __restrict__ kc, const kv_t* __restrict__ vc, act_t* __restrict__ out,
            float* __restrict__ part, int* __restrict__ counters, const int* __restrict__ row_pos,
            const int* __restrict__ row_slot) {
    pdl_wait();
    const int split = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
    const int len = row_pos[b] + 1;
    const int nact = (len + ATT_CHUNK - 1) / ATT_CHUNK;
    if (split >= nact) return;
    const int slot = row_slot[b];
    const int c0 = split * ATT_CHUNK;
    const int n = min(ATT_CHUNK, len - c0);
    __shared__ __align__(16) float qs[GROUP][HD];
    __shared__ __align__(16) float ks[ATT_CHUNK][HD + 4];  // +4: 16-byte row reads of 8 lanes hit distinct banks
    __shared__ __align__(16) float vs[ATT_CHUNK][HD];
    __shared__ float sc[GROUP][ATT_CHUNK];
    __shared__ float mstat[GROUP], lstat[GROUP];
    __shared__ int is_last;
    const float scale = 1.0f / sqrtf((float)HD);
    for (int i = threadIdx.x; i < GROUP * HD; i += ATT_THREADS) {
        const int g = i / HD, d = i % HD;
        qs[g][d] = q[(size_t)b * QDIM + (kvh * GROUP + g) * HD + d] * scale;
    }
    // Stage this chunk's keys and values with all threads' loads in flight.
    constexpr int VE = 16 / (int)sizeof(kv_t);  // elements per 16-byte load
#pragma unroll
    for (int e = threadIdx.x; e < ATT_CHUNK * HD / VE; e += ATT_THREADS) {
        const int j = e * VE / HD, d = e * VE % HD;
        uint4 kr = make_uint4(0, 0, 0, 0), vr = kr;
        if (j < n) {
            const size_t off = kv_off(slot, kvh, c0 + j) + d;
            kr = *(const uint4*)(kc + off);
            vr = *(const uint4*)(vc + off);
        }
        const kv_t* kp = (const kv_t*)&kr;
        const kv_t* vp = (const kv_t*)&vr;
#pragma unroll
        for (int i = 0; i < VE; i++) { ks[j][d + i] = kv2f(kp[i]); vs[j][d + i] = kv2f(vp[i]); }
    }
    __syncthreads();
    {
        // Scores: thread -> one position j and every NGS-th head; each 16-byte slice of the key
        // row is read once from shared memory and used for all of the thread's heads.
        constexpr int NGS = ATT_THREADS / ATT_CHUNK;
        constexpr int GPT = (GROUP + NGS - 1) / NGS;
        const int j = threadIdx.x % ATT_CHUNK, g0 = threadIdx.x / ATT_CHUNK;
        float sv[GPT];
#pragma unroll
        for (int k = 0; k < GPT; k++) sv[k] = 0.f;
#pragma unroll 4
        for (int d = 0; d < HD; d += 4) {
            const float4 kv = *(const float4*)&ks[j][d];
#pragma unroll
            for (int k = 0; k < GPT; k++) {
                const int g = g0 + k * NGS;
                if (GROUP % NGS == 0 || g < GROUP) {
                    const float4 qv = *(const float4*)&qs[g][d];
                    sv[k] = fmaf(qv.x, kv.x, fmaf(qv.y, kv.y, fmaf(qv.z, kv.z, fmaf(qv.w, kv.w, sv[k]))));
                }
            }
        }
#pragma unroll
        for (int k = 0; k < GPT; k++) {
            const int g = g0 + k * NGS;
            if (GROUP % NGS == 0 || g < GROUP) sc[g][j] = j < n ? sv[k] : -INFINITY;
        }
    }
    __syncthreads();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int g = warp; g < GROUP; g += ATT_THREADS / 32) {
        float m = -INFINITY;
        for (int j = lane; j < n; j += 32) m = fmaxf(m, sc[g][j]);
        m = warp_max(m);
        float l = 0.f;
        for (int j = lane; j < ATT_CHUNK; j += 32) {
            const float p = j < n ? expf(sc[g][j] - m) : 0.f;
            sc[g][j] = p;
            l += p;
        }
        l = warp_sum(l);
        if (lane == 0) { mstat[g] = m; lstat[g] = l; }
    }
    __syncthreads();
    // acc[g][d..d+3] = sum_j p[g][j] v[j][d..d+3]: thread -> (head, 4 dims)
    for (int i = threadIdx.x; i < GROUP * HD / 4; i += ATT_THREADS) {
        const int g = i / (HD / 4), d = 4 * (i % (HD / 4));
        float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 8
        for (int j = 0; j < ATT_CHUNK; j++) {
            const float p = sc[g][j];
            const float4 v = *(const float4*)&vs[j][d];
            acc.x = fmaf(p, v.x, acc.x);
            acc.y = fmaf(p, v.y, acc.y);
            acc.z = fmaf(p, v.z, acc.z);
            acc.w = fmaf(p, v.w, acc.w);
        }
        const int h = kvh * GROUP + g;
        const float a4[4] = {acc.x, acc.y, acc.z, acc.w};
        if (nact == 1) {
            const float inv = 1.0f / lstat[g];
#pragma unroll
            for (int e = 0; e < 4; e++) out[(size_t)b * QDIM + h * HD + d + e] = f2act(a4[e] * inv);
        } else {
            float* pp = part + (((size_t)b * NH + h) * NSPLIT + split) * (HD + 2);
#pragma unroll
            for (int e = 0; e < 4; e++) pp[d + e] = a4[e];
            if (d == 0) { pp[HD] = mstat[g]; pp[HD + 1] = lstat[g]; }
        }
    }
    pdl_trigger();
    if (nact == 1) return;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        const int prev = atomicAdd(&counters[b * NKV + kvh], 1);
        is_last = (prev == nact - 1);
    }
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    for (int i = threadIdx.x; i < GROUP * HD; i += ATT_THREADS) {
        const int g = i / HD, d = i % HD;
        const int h = kvh * GROUP + g;
        // L2 loads (__ldcg): the partials were written by other blocks of this grid.
        const float* pp = part + ((size_t)b * NH + h) * NSPLIT * (HD + 2);
        float M = -INFINITY;
        for (int s = 0; s < nact; s++) M = fmaxf(M, __ldcg(pp + s * (HD + 2) + HD));
        float L = 0.f, A = 0.f;
        for (int s = 0; s < nact; s++) {
            const float f = expf(__ldcg(pp + s * (HD + 2) + HD) - M);
            L += f * __ldcg(pp + s * (HD + 2) + HD + 1);
            A += f * __ldcg(pp + s * (HD + 2) + d);
        }
        out[(size_t)b * QDIM + h * HD + d] = f2act(A / L);
    }
    if (threadIdx.x == 0) counters[b * NKV + kvh] = 0;
}

// ---------------------------------------------------------------------------------------------
// Prefill attention (several new tokens per sequence), tiled causal flash attention on CUDA cores.
// grid (ceil(max_n / PF_Q), NH, B); one thread per query row, K/V tiles of PF_K keys in shared
// memory, online softmax per tile. Query i of sequence b sits at position seq_start[b] + i and
// attends to cached positions 0 ..= that position (the new keys were appended before).
//   q (T, QDIM) f32; out (T, QDIM) act_t; seq_* (B)
#define PF_Q 64
#define PF_K 32
extern "C" __global__ void __launch_bounds__(PF_Q)
attn_prefill(const float* __restrict__ q, const kv_t* __restrict__ kc, const kv_t* __restrict__ vc, act_t* __restrict__ out,
             const int* __restrict__ seq_slot, const int* __restrict__ seq_start, const int* __restrict__ seq_row0,
             const int* __restrict__ seq_n) {
    PDL_ENTRY();
    const int b = blockIdx.z, h = blockIdx.y, kvh = h / GROUP;
    const int n = seq_n[b], start = seq_start[b], row0 = seq_row0[b], slot = seq_slot[b];
    const int i0 = blockIdx.x * PF_Q;
    if (i0 >= n) return;
    const int i = i0 + threadIdx.x;
    const bool valid = i < n;
    const int qpos = start + (valid ? i : n - 1);
    __shared__ float ks[PF_K][HD];
    __shared__ float vs[PF_K][HD];
    const float scale = 1.0f / sqrtf((float)HD);
    float qr[HD], acc[HD];
    const float* qp = q + (size_t)(row0 + (valid ? i : n - 1)) * QDIM + h * HD;
#pragma unroll
    for (int d = 0; d < HD; d++) { qr[d] = qp[d] * scale; acc[d] = 0.f; }
    float m = -INFINITY, l = 0.f;
    const int last_pos = start + min(n, i0 + PF_Q) - 1;  // furthest key any row of the block needs
    for (int k0 = 0; k0 <= last_pos; k0 += PF_K) {
        __syncthreads();
        for (int e = threadIdx.x; e < PF_K * HD; e += PF_Q) {
            const int j = e / HD, d = e % HD;
            const bool in = k0 + j <= last_pos;
            const size_t off = in ? kv_off(slot, kvh, k0 + j) + d : 0;
            ks[j][d] = in ? kv2f(kc[off]) : 0.f;
            vs[j][d] = in ? kv2f(vc[off]) : 0.f;
        }
        __syncthreads();
        float s[PF_K];
        float tmax = -INFINITY;
#pragma unroll
        for (int j = 0; j < PF_K; j++) {
            float d0 = 0.f;
#pragma unroll
            for (int d = 0; d < HD; d++) d0 = fmaf(qr[d], ks[j][d], d0);
            s[j] = (k0 + j <= qpos) ? d0 : -INFINITY;
            tmax = fmaxf(tmax, s[j]);
        }
        if (tmax == -INFINITY) continue;  // whole tile masked for this row
        const float mn = fmaxf(m, tmax);
        const float corr = expf(m - mn);
        l *= corr;
#pragma unroll
        for (int d = 0; d < HD; d++) acc[d] *= corr;
#pragma unroll
        for (int j = 0; j < PF_K; j++) {
            const float p = expf(s[j] - mn);
            l += p;
#pragma unroll
            for (int d = 0; d < HD; d++) acc[d] = fmaf(p, vs[j][d], acc[d]);
        }
        m = mn;
    }
    if (valid) {
        act_t* o = out + (size_t)(row0 + i) * QDIM + h * HD;
        const float inv = 1.0f / l;
#pragma unroll
        for (int d = 0; d < HD; d++) o[d] = f2act(acc[d] * inv);
    }
}
#endif  // !KV_Q

// ---------------------------------------------------------------------------------------------
// Greedy sampling: next[t] = argmax(logits[t]) (first index on ties, like the CPU sampler).
extern "C" __global__ void argmax_rows(const float* __restrict__ logits, int* __restrict__ next) {
    tl_enter(TL_ARGMAX);
    PDL_ENTRY();
    tl_waited();
    const int t = blockIdx.x;
    const float* r = logits + (size_t)t * VOCAB;
    float best = -INFINITY;
    int bi = 0x7fffffff;
    for (int i = threadIdx.x; i < VOCAB; i += blockDim.x) {
        const float v = r[i];
        if (v > best || (v == best && i < bi)) { best = v; bi = i; }
    }
    __shared__ float sv[32];
    __shared__ int si[32];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, best, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (ov > best || (ov == best && oi < bi)) { best = ov; bi = oi; }
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) { sv[warp] = best; si[warp] = bi; }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)(blockDim.x >> 5); w++)
            if (sv[w] > best || (sv[w] == best && si[w] < bi)) { best = sv[w]; bi = si[w]; }
        next[t] = bi == 0x7fffffff ? 0 : bi;
    }
    tl_exit();
}

// Greedy sampling over AM_BLOCKS blocks per row (session 7): grid (AM_BLOCKS, rows) of AM_THREADS.
// Each block reduces its slice of the row to one 64-bit key — the value's bits made unsigned-ordered
// in the high word (-0 as +0; NaN never wins: key 0), 0xffffffff - index in the low word, so that
// the largest key is the largest value at its lowest index, as argmax_rows picks it — and folds it
// into keys[t] by atomicMax; the last block of the row (counter cnt[t]) writes next[t] and leaves
// keys[t] and cnt[t] at 0 for the next launch (the host zeroes them once).
#define AM_THREADS 256
#define AM_BLOCKS ((VOCAB + 1023) / 1024)
#define AM_PER ((VOCAB + AM_BLOCKS - 1) / AM_BLOCKS)
__device__ __forceinline__ unsigned long long am_key(float v, int i) {
    if (v != v) return 0ull;
    u32 u = __float_as_uint(v == 0.f ? 0.f : v);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ((unsigned long long)u << 32) | (unsigned long long)(0xffffffffu - (u32)i);
}
extern "C" __global__ void __launch_bounds__(AM_THREADS)
    argmax_mb(const float* __restrict__ logits, int* __restrict__ next, unsigned long long* keys, int* cnt) {
    tl_enter(TL_ARGMAX);
    PDL_ENTRY();
    tl_waited();
    const int t = blockIdx.y;
    const float* r = logits + (size_t)t * VOCAB;
    const int i0 = blockIdx.x * AM_PER, i1 = min(i0 + AM_PER, VOCAB);
    unsigned long long best = 0ull;
#pragma unroll 4
    for (int i = i0 + (int)threadIdx.x; i < i1; i += AM_THREADS) {
        const unsigned long long k = am_key(r[i], i);
        best = k > best ? k : best;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const unsigned long long k = __shfl_xor_sync(0xffffffffu, best, o);
        best = k > best ? k : best;
    }
    __shared__ unsigned long long sk[AM_THREADS / 32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) sk[warp] = best;
    __syncthreads();
    if (threadIdx.x == 0) {
#pragma unroll
        for (int w = 1; w < AM_THREADS / 32; w++) best = sk[w] > best ? sk[w] : best;
        atomicMax(keys + t, best);
        __threadfence();
        if (atomicAdd(cnt + t, 1) == (int)gridDim.x - 1) {
            __threadfence();
            const unsigned long long k = atomicExch(keys + t, 0ull);
            cnt[t] = 0;
            next[t] = k == 0ull ? 0 : (int)(0xffffffffu - (u32)(k & 0xffffffffull));
        }
    }
    tl_exit();
}

// After a graph-captured decode step: feed the chosen tokens back and advance positions, so that
// replays can run back to back without the host (benchmarks, GPU-side greedy loops).
extern "C" __global__ void advance(const int* __restrict__ next, int* __restrict__ tokens, int* __restrict__ row_pos, int T) {
    PDL_ENTRY();
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t < T) {
        tokens[t] = next[t];
        row_pos[t] = min(row_pos[t] + 1, MAX_SEQ - 1);
    }
}

// On-GPU greedy loops (session 33): the step's tokens next[0..T) into row ctr[0] of hist (rows of T), then
// ctr[0] + 1, so that one graph can hold several steps (each with its own hist_put) and still write
// each step's tokens to its own row. One block; rows past `rows` are not written.
extern "C" __global__ void hist_put(const int* __restrict__ next, int* __restrict__ hist, int* ctr, int T, int rows) {
    PDL_ENTRY();
    const int i = *ctr;
    if ((unsigned)i < (unsigned)rows)
        for (int t = threadIdx.x; t < T; t += blockDim.x) hist[(size_t)i * T + t] = next[t];
    __syncthreads();  // every thread has read the counter
    if (threadIdx.x == 0) *ctr = i + 1;
}

// Top-k / top-p sampling, one block of SAMPLE_THREADS per row. Temperature-scaled logits; the k-th
// largest value is found by bisection on the value (count >= k), candidates are sorted in shared
// memory (bitonic), the nucleus is cut at top_p and one token is drawn with a counter-based RNG
// (splitmix64 of seed ^ step·rows + row). k is clamped to SAMPLE_MAX_K.
#define SAMPLE_THREADS 1024
#define SAMPLE_MAX_K 1024
__device__ __forceinline__ unsigned long long splitmix(unsigned long long z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
// One row r of VOCAB logits -> *out (written by thread 0); `rnd` is the row's 64 random bits.
__device__ void sample_row(const float* __restrict__ r, int* __restrict__ out, float inv_temp, int top_k, float top_p,
                           unsigned long long rnd) {
    __shared__ float red[32];
    __shared__ float cv[SAMPLE_MAX_K];
    __shared__ int ci[SAMPLE_MAX_K];
    __shared__ int ncand;
    int k = top_k <= 0 ? SAMPLE_MAX_K : min(top_k, SAMPLE_MAX_K);
    k = min(k, VOCAB);
    float mx = -INFINITY, mn = INFINITY;
    for (int i = threadIdx.x; i < VOCAB; i += blockDim.x) { const float v = r[i] * inv_temp; mx = fmaxf(mx, v); mn = fminf(mn, v); }
    // block max / min
    {
        float a = warp_max(mx), b = -warp_max(-mn);
        __shared__ float smx[32], smn[32];
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        __syncthreads();
        if (lane == 0) { smx[warp] = a; smn[warp] = b; }
        __syncthreads();
        a = lane < (int)(blockDim.x >> 5) ? smx[lane] : -INFINITY;
        b = lane < (int)(blockDim.x >> 5) ? smn[lane] : INFINITY;
        mx = warp_max(a);
        mn = -warp_max(-b);
    }
    // Bisection for the threshold tau with count(v >= tau) >= k, as tight as 40 halvings allow.
    float lo = mn, hi = mx;
    for (int it = 0; it < 40; it++) {
        const float mid = 0.5f * (lo + hi);
        float c = 0.f;
        for (int i = threadIdx.x; i < VOCAB; i += blockDim.x) c += (r[i] * inv_temp >= mid) ? 1.f : 0.f;
        c = block_sum(c, red);
        if (c >= (float)k) lo = mid; else hi = mid;
        if (hi - lo <= 0.f) break;
    }
    if (threadIdx.x == 0) ncand = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < VOCAB; i += blockDim.x) {
        const float v = r[i] * inv_temp;
        if (v >= lo) {
            const int slot = atomicAdd(&ncand, 1);
            if (slot < SAMPLE_MAX_K) { cv[slot] = v; ci[slot] = i; }
        }
    }
    __syncthreads();
    const int nc = min(ncand, SAMPLE_MAX_K);
    for (int i = nc + threadIdx.x; i < SAMPLE_MAX_K; i += blockDim.x) { cv[i] = -INFINITY; ci[i] = 0x7fffffff; }
    __syncthreads();
    // Bitonic sort, descending by value then ascending by index.
    for (int size = 2; size <= SAMPLE_MAX_K; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < SAMPLE_MAX_K; i += blockDim.x) {
                const int j = i ^ stride;
                if (j > i) {
                    const bool desc = (i & size) == 0;
                    const bool i_first = cv[i] > cv[j] || (cv[i] == cv[j] && ci[i] < ci[j]);
                    if (desc != i_first) {
                        const float tv = cv[i]; cv[i] = cv[j]; cv[j] = tv;
                        const int ti = ci[i]; ci[i] = ci[j]; ci[j] = ti;
                    }
                }
            }
            __syncthreads();
        }
    }
    if (threadIdx.x == 0) {
        const int kk = min(k, nc);
        const float m0 = cv[0];
        double total = 0.0;
        for (int i = 0; i < kk; i++) total += (double)expf(cv[i] - m0);
        int keep = kk;
        if (top_p < 1.f) {
            double cum = 0.0;
            for (int i = 0; i < kk; i++) {
                cum += (double)expf(cv[i] - m0) / total;
                if (cum >= (double)top_p) { keep = i + 1; break; }
            }
            total = 0.0;
            for (int i = 0; i < keep; i++) total += (double)expf(cv[i] - m0);
        }
        const double u = (double)(rnd >> 11) * (1.0 / 9007199254740992.0) * total;
        double cum = 0.0;
        int pick = ci[keep - 1];
        for (int i = 0; i < keep; i++) {
            cum += (double)expf(cv[i] - m0);
            if (u < cum) { pick = ci[i]; break; }
        }
        *out = pick;
    }
}

extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)
sample_topk_topp(const float* __restrict__ logits, int* __restrict__ next, float inv_temp, int top_k, float top_p,
                 unsigned long long seed, unsigned long long step) {
    PDL_ENTRY();
    const int t = blockIdx.x;
    sample_row(logits + (size_t)t * VOCAB, next + t, inv_temp, top_k, top_p,
               splitmix(seed ^ (step * 0x100000001B3ull + (unsigned long long)t)));
}

// Per-row sampling settings of a paged step (`SampleParams` in cuda/paged.rs), 8 ints a row:
// inv_temp (f32 bits), top_k, top_p (f32 bits), greedy, seed lo, seed hi, position, 0.
// Greedy rows keep what argmax_rows put in next; the draw of the others depends on (seed, position)
// alone, so it does not change with batching or preemption.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)
sample_rows(const float* __restrict__ logits, int* __restrict__ next, const int* __restrict__ params) {
    PDL_ENTRY();
    const int t = blockIdx.x;
    const int* pr = params + 8 * t;
    if (pr[3]) return;
    const unsigned long long seed = (unsigned long long)(u32)pr[4] | ((unsigned long long)(u32)pr[5] << 32);
    const unsigned long long pos = (unsigned long long)(u32)pr[6];
    sample_row(logits + (size_t)t * VOCAB, next + t, __int_as_float(pr[0]), pr[1], __int_as_float(pr[2]),
               splitmix(seed ^ (pos * 0xD1B54A32D192ED03ull)));
}

// ---------------------------------------------------------------------------------------------
// Persistent decode layer (issue #11; TRTFORGE_PERSIST=1, decode passes of <= 8 rows): one launch per
// layer runs its five phases — RMSNorm + QKV GEMV (RoPE + KV append), attention, O (+ residual),
// RMSNorm + gate/up (SwiGLU), down (+ residual) — over a grid of co-resident blocks (SMs × occupancy,
// checked on the host) separated by grid barriers instead of kernel boundaries. The GEMV phases are
// tc_core (the tc_* kernels' body) with the barrier as its `wait`: each block issues its first tile's
// weight loads of the next matrix before arriving, so DRAM stays busy across the barrier. While the
// attention runs (threads 0..127 of the blocks that own a (split, kv head, row) of attn_tc_core) every
// block prefetches its O tiles and first gate/up tile into L2.
// Barrier: one monotonically increasing u64 arrival counter (bar); a launch makes PERSIST_NB barriers,
// so each launch starts at a multiple of PERSIST_NB × gridDim.x arrivals (read after griddepcontrol.wait,
// when the previous launch has finished) and barrier i waits for base + i × gridDim.x arrivals.
#if defined(PERSIST_WF) && !ACT_F32 && !KV_F32 && GROUP <= 8 && HD % 32 == 0
#define PERSIST_NB 4
struct PersistArgs {
    GemvArgs qkv, o, gu, dn;
    const float* q;       // (T, QDIM) f32, written by the QKV phase
    kv_t* kc;             // this layer's caches
    kv_t* vc;
    act_t* att_out;       // (T, QDIM) act_t, the O phase's input
    float* part;          // attention partials / counters as attn_decode_tc
    int* counters;
    const int* row_pos;
    const int* row_slot;
    unsigned long long* bar;
    unsigned long long* stamps;  // null, or PERSIST_NSTAMP globaltimer stamps of this layer (profiling)
    int nsplit;           // splits per (row, kv head)
    int T;
};
// Profiling stamps (ns, %globaltimer), TRTFORGE_PERSIST_STAMPS=1: even slots 1, 3, 5, 7, 9 = the
// LAST block to finish a phase (atomicMax over blocks: QKV, attention + prefetch, O, gate/up, down);
// slots 0, 2, 4, 6, 8 = block 0 leaving griddepcontrol.wait / barriers 1..4. So slot 2k+2 - slot 2k+1
// is a barrier's own latency and slot 2k+1 - slot 2k a phase's span including its slowest block.
#define PERSIST_NSTAMP 16
__device__ __forceinline__ unsigned long long globaltimer() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
    return t;
}
__device__ __forceinline__ void stamp_last(unsigned long long* st, int i) {
    if (st != nullptr) {
        __syncthreads();
        if (threadIdx.x == 0) atomicMax(st + i, globaltimer());
    }
}
__device__ __forceinline__ void stamp_first(unsigned long long* st, int i) {
    if (st != nullptr && blockIdx.x == 0 && threadIdx.x == 0) st[i] = globaltimer();
}
__device__ __forceinline__ unsigned long long ld_acquire_u64(const unsigned long long* p) {
    unsigned long long v;
    asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}
// All blocks of the grid: returns once `target` arrivals (this block's included) are counted.
__device__ __forceinline__ void grid_barrier(unsigned long long* bar, unsigned long long target) {
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        asm volatile("red.release.gpu.global.add.u64 [%0], 1;" ::"l"(bar) : "memory");
        long long spins = 0;
        while (ld_acquire_u64(bar) < target) {
            if (++spins > (1ll << 22)) __trap();  // a block that never arrives: fail, do not hang
        }
        __threadfence();
    }
    __syncthreads();
}
struct GridWait {
    unsigned long long* bar;
    unsigned long long target;
    unsigned long long* stamps;
    int slot;  // stamps: slot - 1 (last block done before the barrier), slot (block 0 after it)
    __device__ __forceinline__ void operator()() const {
        stamp_last(stamps, slot - 1);
        grid_barrier(bar, target);
        stamp_first(stamps, slot);
    }
};
// First phase: wait for the previous kernel, then read this launch's barrier base.
struct PersistStart {
    unsigned long long* bar;
    unsigned long long* base;  // shared
    unsigned long long* stamps;
    __device__ __forceinline__ void operator()() const {
        pdl_wait();
        stamp_first(stamps, 0);
        if (threadIdx.x == 0) {
            const unsigned long long c = ld_acquire_u64(bar), per = (unsigned long long)PERSIST_NB * gridDim.x;
            *base = c - c % per;
        }
        // stage_x's block reduction / the __syncthreads after it publish *base before any barrier.
    }
};
// L2 prefetch of the weight rows of tiles vblk, vblk + vgrid, ... (at most `most` tiles).
template <int WF, int K>
__device__ __forceinline__ void prefetch_tiles(const GemvArgs& a, int vblk, int vgrid, int most) {
    constexpr size_t ROWB = (size_t)K * 16 / Tc<WF>::CH;
    constexpr int LPR = (int)((ROWB + 127) / 128);  // 128-byte lines per row
    const unsigned char* W = (const unsigned char*)a.w;
    const int ntiles = a.N >> 4;
    for (int i = 0, tile = vblk; i < most && tile < ntiles; i++, tile += vgrid) {
        for (int l = threadIdx.x; l < 16 * LPR; l += blockDim.x) {
            const int r = l / LPR, c = l % LPR;
            asm volatile("prefetch.global.L2 [%0];" ::"l"(W + (size_t)(tile * 16 + r) * ROWB + (size_t)c * 128));
        }
    }
}
extern "C" __global__ void __launch_bounds__(TC_WARPS * 32, 1) persist_layer(const PersistArgs p) {
    __shared__ unsigned long long base;
    const int vb = blockIdx.x, vg = gridDim.x;
    // 1. RMSNorm + QKV, RoPE, KV append (first tile's loads before griddepcontrol.wait).
    tc_core<PERSIST_WF, PRO_NORM, EPI_QKV, HIDDEN, true>(p.qkv, vb, vg, PersistStart{p.bar, &base, p.stamps});
    GridWait{p.bar, base + vg, p.stamps, 2}();
    // 2. Attention: virtual attn_decode_tc blocks (split, kv head, row) on threads 0..127.
    const int nvb = p.nsplit * NKV * p.T;
    if (threadIdx.x < ATT_THREADS) {
        for (int v = vb; v < nvb; v += vg) {
            attn_tc_core<true>(p.q, p.kc, p.vc, p.att_out, p.part, p.counters, p.row_pos, p.row_slot, p.nsplit,
                               v % p.nsplit, (v / p.nsplit) % NKV, v / (p.nsplit * NKV));
            att_sync<true>();
        }
    }
    prefetch_tiles<PERSIST_WF, QDIM>(p.o, vb, vg, 4);
    prefetch_tiles<PERSIST_WF, HIDDEN>(p.gu, vb, vg, 1);
    // 3. O + residual; 4. RMSNorm + gate/up + SwiGLU; 5. down + residual.
    tc_core<PERSIST_WF, PRO_LOAD, EPI_RESID, QDIM, true>(p.o, vb, vg, GridWait{p.bar, base + 2ull * vg, p.stamps, 4});
    tc_core<PERSIST_WF, PRO_NORM, EPI_SWIGLU, HIDDEN, true>(p.gu, vb, vg, GridWait{p.bar, base + 3ull * vg, p.stamps, 6});
    tc_core<PERSIST_WF, PRO_LOAD, EPI_RESID, INTER, true>(p.dn, vb, vg, GridWait{p.bar, base + 4ull * vg, p.stamps, 8});
    stamp_last(p.stamps, 9);
    pdl_trigger();
}
#endif

// GEMM path over cuBLASLt (session 4, branch gemm): SwiGLU from an f16 GEMM output, and FP8 E4M3
// activations for the cuBLASLt FP8 GEMM (issue #15).

// SwiGLU from the f16 gate/up GEMM output: y (T, 2·INTER) f16, gate/up interleaved per row pair
// (as `swiglu`) -> m (T, INTER) act_t; 16-byte loads of 4 (gate, up) pairs where INTER % 4 == 0.
extern "C" __global__ void swiglu_h(const h16* __restrict__ y, act_t* __restrict__ m, int T) {
    PDL_ENTRY();
    const size_t n = (size_t)T * INTER;
#if INTER % 4 == 0
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n / 4; i += (size_t)gridDim.x * blockDim.x) {
        const uint4 v = *reinterpret_cast<const uint4*>(y + 8 * i);
        const u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const float g = h2f((h16)(w[j] & 0xffffu)), u = h2f((h16)(w[j] >> 16));
            m[4 * i + j] = f2act(silu(g) * u);
        }
    }
#else
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        m[i] = f2act(silu(h2f(y[2 * i])) * h2f(y[2 * i + 1]));
    }
#endif
}

// rope_append from the f16 QKV GEMM output: y (T, QKV_DIM) f16, otherwise as `rope_append`.
extern "C" __global__ void rope_append_h(const h16* __restrict__ y, float* __restrict__ qout, act_t* __restrict__ qa,
                                         kv_t* __restrict__ kc, kv_t* __restrict__ vc, const int* __restrict__ row_pos,
                                         const int* __restrict__ row_slot, const float* __restrict__ rcos,
                                         const float* __restrict__ rsin) {
    PDL_ENTRY();
    const int t = blockIdx.x;
    const u32* yr = reinterpret_cast<const u32*>(y + (size_t)t * QKV_DIM);
    for (int p = threadIdx.x; p < QKV_DIM / 2; p += blockDim.x) {
        const u32 ab = yr[p];
        qkv_store(t, p, h2f((h16)(ab & 0xffffu)), h2f((h16)(ab >> 16)), qout, kc, vc, row_pos, row_slot, rcos, rsin);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < QDIM; i += blockDim.x) qa[(size_t)t * QDIM + i] = f2act(qout[(size_t)t * QDIM + i]);
}

// Two floats -> two E4M3 bytes (lo in the low byte), round to nearest, saturating (sm_89+).
__device__ __forceinline__ unsigned short f2e4m3x2(float lo, float hi) {
#if __CUDA_ARCH__ >= 890
    unsigned short r;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
    return r;
#else
    return 0;  // the engine never selects the FP8 path below sm_89
#endif
}

// Max over the block; every thread gets the result. `red` holds 32 floats of shared memory.
__device__ float block_max(float v, float* red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    return warp_max(lane < nw ? red[lane] : 0.f);
}

// The E4M3 scale of a GEMM-input row (issue #15, W8A8): the engine dir's static per-tensor scale
// where there is one (`sstat`, one f32: ONNX Runtime / TensorRT's QDQ scale), else dynamic per row,
// max|x| / 448. Codes are e4m3(x · (1 / s)), round to nearest even, saturating (sm_89+).
__device__ __forceinline__ float e4m3_row_scale(float amax, const float* __restrict__ sstat) {
    return sstat ? *sstat : fmaxf(amax, 1e-20f) / 448.f;
}

// FP8 quantization of GEMM inputs: s[t] = the row's scale (above), q[t, k] = e4m3(x[t, k] / s[t]);
// x (T, K) act_t, q (T, K) bytes, s (T) f32. One block per row.
extern "C" __global__ void quant_e4m3_rows(const act_t* __restrict__ x, unsigned short* __restrict__ q,
                                           float* __restrict__ s, const float* __restrict__ sstat, int K) {
    PDL_ENTRY();
    __shared__ float red[32];
    const int t = blockIdx.x;
    const act_t* xr = x + (size_t)t * K;
    float m = 0.f;
#if !ACT_F32 && QDIM % 8 == 0 && QDIM <= 8 * 256
    // Session 28: the o projection's input (K = QDIM, f16): each thread's 8 values in one 16-byte load,
    // kept in registers for the codes (the generic loop below made a dependent L2 round trip per value).
    if (K == QDIM && blockDim.x == 256) {
        const int c = threadIdx.x;  // chunk of 8 values
        float v[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
        if (c < QDIM / 8) {
            const uint4 u = *reinterpret_cast<const uint4*>(xr + 8 * c);
            const unsigned w4[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
            for (int i = 0; i < 4; i++) {
                v[2 * i] = h2f((h16)(w4[i] & 0xFFFFu));
                v[2 * i + 1] = h2f((h16)(w4[i] >> 16));
            }
        }
        if (!sstat) {
#pragma unroll
            for (int i = 0; i < 8; i++) m = fmaxf(m, fabsf(v[i]));
            m = block_max(m, red);
        }
        const float sc = e4m3_row_scale(m, sstat), inv = 1.f / sc;
        if (c < QDIM / 8) {
            uint2 o;
            o.x = (unsigned)f2e4m3x2(v[0] * inv, v[1] * inv) | ((unsigned)f2e4m3x2(v[2] * inv, v[3] * inv) << 16);
            o.y = (unsigned)f2e4m3x2(v[4] * inv, v[5] * inv) | ((unsigned)f2e4m3x2(v[6] * inv, v[7] * inv) << 16);
            *reinterpret_cast<uint2*>(q + (size_t)t * (QDIM / 2) + 4 * c) = o;
        }
        if (threadIdx.x == 0) s[t] = sc;
        return;
    }
#endif
    if (!sstat) {
        for (int k = threadIdx.x; k < K; k += blockDim.x) m = fmaxf(m, fabsf(act2f(xr[k])));
        m = block_max(m, red);
    }
    const float sc = e4m3_row_scale(m, sstat), inv = 1.f / sc;
    for (int k2 = threadIdx.x; k2 < K / 2; k2 += blockDim.x) {
        q[(size_t)t * (K / 2) + k2] = f2e4m3x2(act2f(xr[2 * k2]) * inv, act2f(xr[2 * k2 + 1]) * inv);
    }
    if (threadIdx.x == 0) s[t] = sc;
}

// The FP8 GEMM's scales where cuBLASLt takes no per-channel / per-row scale vectors: the GEMM ran
// unscaled into y (T, N) f32; dst = y · xs[t] · ws[n] (+ dst where acc). y may be dst.
extern "C" __global__ void fp8_rescale(const float* y, const float* __restrict__ xs, const float* __restrict__ ws,
                                       float* dst, int N, int total, int acc) {
    PDL_ENTRY();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        const float v = y[i] * xs[i / N] * ws[i % N];
        dst[i] = acc ? dst[i] + v : v;
    }
}

// RMSNorm straight into FP8 for the FP8 GEMM: the normalized row x / rms(x) · w in f32 (not rounded
// to f16 first), its scale s[t] as quant_e4m3_rows, q (T, HIDDEN) E4M3 codes. One block of 256 threads
// per row; session 28: the thread's x / w values stay in registers between the sums and the codes (one
// L2 round trip instead of two; the same arithmetic in the same order).
#define RQ8_PER ((HIDDEN + 255) / 256)
extern "C" __global__ void __launch_bounds__(256) rmsnorm_q8(const float* __restrict__ x, const float* __restrict__ w,
                                                            unsigned short* __restrict__ q, float* __restrict__ s,
                                                            const float* __restrict__ sstat) {
    PDL_ENTRY();
    __shared__ float red[32];
    const int t = blockIdx.x;
    const float* xr = x + (size_t)t * HIDDEN;
    float xv[RQ8_PER], wv[RQ8_PER];
#pragma unroll
    for (int j = 0; j < RQ8_PER; j++) {
        const int k = threadIdx.x + 256 * j;
        xv[j] = k < HIDDEN ? xr[k] : 0.f;
        wv[j] = k < HIDDEN ? w[k] : 0.f;
    }
    float ss = 0.f, m = 0.f;
#pragma unroll
    for (int j = 0; j < RQ8_PER; j++) {
        ss += xv[j] * xv[j];
        m = fmaxf(m, fabsf(xv[j] * wv[j]));  // max |x·w|; the row's max |x·w·inv| is m · inv
    }
    ss = block_sum(ss, red);
    const float inv = 1.0f / sqrtf(ss / (float)HIDDEN + EPS);
    if (!sstat) m = block_max(m, red);
    const float sc = e4m3_row_scale(m * inv, sstat), qi = 1.f / sc;
    // Codes in pairs (k2 = the pair): pair k2's two values sit in threads 2·k2 % 256 and (2·k2 + 1) % 256;
    // exchange through shared memory (the row's HIDDEN f32 products, 8 KB at HIDDEN 2048; wider rows than
    // 8,192 read x and w again, as before session 28, to stay inside the static shared-memory limit).
#if HIDDEN <= 8192
    __shared__ float prod[HIDDEN];
#pragma unroll
    for (int j = 0; j < RQ8_PER; j++) {
        const int k = threadIdx.x + 256 * j;
        if (k < HIDDEN) prod[k] = xv[j] * inv * wv[j];
    }
    __syncthreads();
    for (int k2 = threadIdx.x; k2 < HIDDEN / 2; k2 += blockDim.x) {
        q[(size_t)t * (HIDDEN / 2) + k2] = f2e4m3x2(prod[2 * k2] * qi, prod[2 * k2 + 1] * qi);
    }
#else
    for (int k2 = threadIdx.x; k2 < HIDDEN / 2; k2 += blockDim.x) {
        const float a = xr[2 * k2] * inv * w[2 * k2], b = xr[2 * k2 + 1] * inv * w[2 * k2 + 1];
        q[(size_t)t * (HIDDEN / 2) + k2] = f2e4m3x2(a * qi, b * qi);
    }
#endif
    if (threadIdx.x == 0) s[t] = sc;
}

// SwiGLU straight into FP8 for the down projection's FP8 GEMM: y (T, 2·INTER) f32 with gate/up
// interleaved per row pair (as `swiglu`), m = silu(g) · u in f32, its scale s[t] as
// quant_e4m3_rows, q (T, INTER) E4M3 codes. One block of 256 threads per row; session 28: each thread
// loads its output pairs' (g, u, g, u) as one 16-byte vector, all before the row maximum, and keeps the
// products in registers for the codes (the row was read twice from L2, 22 + 11 dependent rounds).
#define SQ8_PER ((INTER / 2 + 255) / 256)
extern "C" __global__ void __launch_bounds__(256) swiglu_q8(const float* __restrict__ y, unsigned short* __restrict__ q,
                                                           float* __restrict__ s, const float* __restrict__ sstat) {
    PDL_ENTRY();
    __shared__ float red[32];
    const int t = blockIdx.x;
    const float4* yr = reinterpret_cast<const float4*>(y + (size_t)t * 2 * INTER);
    float2 mv[SQ8_PER];
    float m = 0.f;
#pragma unroll
    for (int j = 0; j < SQ8_PER; j++) {
        const int k2 = threadIdx.x + 256 * j;
        mv[j] = make_float2(0.f, 0.f);
        if (k2 < INTER / 2) {
            const float4 v = yr[k2];
            mv[j] = make_float2(silu(v.x) * v.y, silu(v.z) * v.w);
        }
    }
    if (!sstat) {
#pragma unroll
        for (int j = 0; j < SQ8_PER; j++) m = fmaxf(m, fmaxf(fabsf(mv[j].x), fabsf(mv[j].y)));
        m = block_max(m, red);
    }
    const float sc = e4m3_row_scale(m, sstat), qi = 1.f / sc;
#pragma unroll
    for (int j = 0; j < SQ8_PER; j++) {
        const int k2 = threadIdx.x + 256 * j;
        if (k2 < INTER / 2) q[(size_t)t * (INTER / 2) + k2] = f2e4m3x2(mv[j].x * qi, mv[j].y * qi);
    }
    if (threadIdx.x == 0) s[t] = sc;
}

// ---------------------------------------------------------------------------------------------
// Prefill (session 6, branch ttft, issue #11 TTFT): a flash-attention prefill whose 4 warps share
// K/V tiles of 64 keys through shared memory, and vectorized GEMM-path elementwise kernels.

// rmsnorm_v: as `rmsnorm`, one warp per row, 16-byte loads of x and w (HIDDEN % 128 == 0), the row
// kept in registers between the sum of squares and the scaled store (8-byte f16 stores).
#if HIDDEN % 128 == 0
#define RMV_N (HIDDEN / 128)  // float4 per lane
extern "C" __global__ void __launch_bounds__(128) rmsnorm_v(const float* __restrict__ x, const float* __restrict__ w,
                                                          act_t* __restrict__ out, int T) {
    PDL_ENTRY();
    const int lane = threadIdx.x & 31;
    const int t = blockIdx.x * 4 + (threadIdx.x >> 5);
    if (t >= T) return;
    const float4* xr = reinterpret_cast<const float4*>(x + (size_t)t * HIDDEN);
    const float4* wr = reinterpret_cast<const float4*>(w);
    act_t* orow = out + (size_t)t * HIDDEN;
    if (RMV_N <= 16) {
        float4 v[RMV_N <= 16 ? RMV_N : 1];
#pragma unroll
        for (int i = 0; i < (RMV_N <= 16 ? RMV_N : 1); i++) v[i] = xr[i * 32 + lane];
        float ss = 0.f;
#pragma unroll
        for (int i = 0; i < (RMV_N <= 16 ? RMV_N : 1); i++) ss += v[i].x * v[i].x + v[i].y * v[i].y + v[i].z * v[i].z + v[i].w * v[i].w;
        ss = warp_sum(ss);
        const float inv = 1.0f / sqrtf(ss / (float)HIDDEN + EPS);
#pragma unroll
        for (int i = 0; i < (RMV_N <= 16 ? RMV_N : 1); i++) {
            const float4 g = wr[i * 32 + lane];
            store4(orow + 4 * (i * 32 + lane), v[i].x * inv * g.x, v[i].y * inv * g.y, v[i].z * inv * g.z, v[i].w * inv * g.w);
        }
    } else {
        float ss = 0.f;
#pragma unroll 4
        for (int i = 0; i < RMV_N; i++) {
            const float4 v = xr[i * 32 + lane];
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
        ss = warp_sum(ss);
        const float inv = 1.0f / sqrtf(ss / (float)HIDDEN + EPS);
#pragma unroll 4
        for (int i = 0; i < RMV_N; i++) {
            const float4 v = xr[i * 32 + lane], g = wr[i * 32 + lane];
            store4(orow + 4 * (i * 32 + lane), v.x * inv * g.x, v.y * inv * g.y, v.z * inv * g.z, v.w * inv * g.w);
        }
    }
}
#endif

// rmsnorm_b (session 9, the default; `TRTFORGE_PREFILL_RMSB=0` runs rmsnorm_v): as `rmsnorm_v`, one row per block of
// HIDDEN / 8 threads (2 float4 of x per thread), so that T rows are T blocks (64 at bs64 decode, 512
// at prefill 512) instead of T / 4 blocks of 4 row-warps; the weight's float4 are loaded before
// `griddepcontrol.wait` (they do not depend on the previous kernel), the row sum goes through one
// shared-memory step.
#if HIDDEN % 256 == 0 && HIDDEN <= 8192
#define RMB_T (HIDDEN / 8)
extern "C" __global__ void __launch_bounds__(RMB_T) rmsnorm_b(const float* __restrict__ x, const float* __restrict__ w,
                                                            act_t* __restrict__ out, int T) {
    __shared__ float red[RMB_T / 32];
    const int t = blockIdx.x, i = threadIdx.x;
    const float4* wr = reinterpret_cast<const float4*>(w);
    const float4 g0 = wr[i], g1 = wr[i + RMB_T];
    PDL_ENTRY();
    if (t >= T) return;
    const float4* xr = reinterpret_cast<const float4*>(x + (size_t)t * HIDDEN);
    const float4 a = xr[i], b = xr[i + RMB_T];
    float ss = a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w + b.x * b.x + b.y * b.y + b.z * b.z + b.w * b.w;
    ss = warp_sum(ss);
    if ((i & 31) == 0) red[i >> 5] = ss;
    __syncthreads();
    float tot = 0.f;
#pragma unroll
    for (int k = 0; k < RMB_T / 32; k++) tot += red[k];
    const float inv = 1.0f / sqrtf(tot / (float)HIDDEN + EPS);
    act_t* orow = out + (size_t)t * HIDDEN;
    store4(orow + 4 * i, a.x * inv * g0.x, a.y * inv * g0.y, a.z * inv * g0.z, a.w * inv * g0.w);
    store4(orow + 4 * (i + RMB_T), b.x * inv * g1.x, b.y * inv * g1.y, b.z * inv * g1.z, b.w * inv * g1.w);
}
#endif

// swiglu_v / swiglu_hv: as `swiglu` / `swiglu_h`, 4 outputs per thread (INTER % 4 == 0): two 16-byte
// loads of f32 (gate, up) pairs, or one 16-byte load of f16 pairs, and one 8-byte f16 store.
#if INTER % 4 == 0
extern "C" __global__ void swiglu_v(const float* __restrict__ y, act_t* __restrict__ m, int T) {
    PDL_ENTRY();
    const size_t n4 = (size_t)T * INTER / 4;
    const float4* y4 = reinterpret_cast<const float4*>(y);
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
        const float4 a = y4[2 * i], b = y4[2 * i + 1];
        store4(m + 4 * i, silu(a.x) * a.y, silu(a.z) * a.w, silu(b.x) * b.y, silu(b.z) * b.w);
    }
}
extern "C" __global__ void swiglu_hv(const h16* __restrict__ y, act_t* __restrict__ m, int T) {
    PDL_ENTRY();
    const size_t n4 = (size_t)T * INTER / 4;
    const uint4* y4 = reinterpret_cast<const uint4*>(y);
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
        const uint4 v = y4[i];
        float r[4];
        const u32 wv[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int j = 0; j < 4; j++) r[j] = silu(h2f((h16)(wv[j] & 0xffffu))) * h2f((h16)(wv[j] >> 16));
        store4(m + 4 * i, r[0], r[1], r[2], r[3]);
    }
}
#endif

// rope_append_p / rope_append_hp: the GEMM-path QKV epilogue of prefill passes whose attention reads
// q as f32 (attn_prefill_tc / attn_prefill_fa): as `rope_append` / `rope_append_h` without the act
// copy qa, two RoPE pairs (i, i + 1) per thread (HD % 4 == 0): one 16-byte (f32) or 8-byte (f16)
// load of y, 8-byte q stores, 4-byte cache stores. Grid (T, ⌈QKV_DIM / 4 / 256⌉).
#if HD % 4 == 0 && !KV_Q
template <class Y>
__device__ __forceinline__ void rope_p_body(const Y* __restrict__ y, float* __restrict__ qout, kv_t* __restrict__ kc,
                                            kv_t* __restrict__ vc, const int* __restrict__ row_pos,
                                            const int* __restrict__ row_slot, const float* __restrict__ rcos,
                                            const float* __restrict__ rsin) {
    PDL_ENTRY();
    const int t = blockIdx.x;
    const int c = blockIdx.y * blockDim.x + threadIdx.x;  // pairs 2c, 2c + 1
    if (c >= QKV_DIM / 4) return;
    float a0, b0, a1, b1;
    if (sizeof(Y) == 4) {
        const float4 v = reinterpret_cast<const float4*>(y + (size_t)t * QKV_DIM)[c];
        a0 = v.x; b0 = v.y; a1 = v.z; b1 = v.w;
    } else {
        const uint2 v = reinterpret_cast<const uint2*>(y + (size_t)t * QKV_DIM)[c];
        a0 = h2f((h16)(v.x & 0xffffu)); b0 = h2f((h16)(v.x >> 16));
        a1 = h2f((h16)(v.y & 0xffffu)); b1 = h2f((h16)(v.y >> 16));
    }
    const int pos = row_pos[t], slot = row_slot[t];
    const int p = 2 * c;
    const int qpairs = QDIM / 2, kpairs = KVDIM / 2;
    if (p < qpairs + kpairs) {
        const bool is_q = p < qpairs;
        const int pp = is_q ? p : p - qpairs;
        const int head = pp / HALF_HD, i = pp % HALF_HD;  // i even: pairs i, i + 1 of one head
        const float2 cs = *reinterpret_cast<const float2*>(rcos + (size_t)pos * HALF_HD + i);
        const float2 sn = *reinterpret_cast<const float2*>(rsin + (size_t)pos * HALF_HD + i);
        const float2 ra = rope_rot(a0, b0, cs.x, sn.x), rb = rope_rot(a1, b1, cs.y, sn.y);
        const float o1a = ra.x, o2a = ra.y, o1b = rb.x, o2b = rb.y;
        if (is_q) {
            float* q = qout + (size_t)t * QDIM + head * HD;
            *reinterpret_cast<float2*>(q + i) = make_float2(o1a, o1b);
            *reinterpret_cast<float2*>(q + i + HALF_HD) = make_float2(o2a, o2b);
        } else {
            kv_t* k = kc + kv_off(slot, head, pos);
#if KV_F32
            *reinterpret_cast<float2*>(k + i) = make_float2(o1a, o1b);
            *reinterpret_cast<float2*>(k + i + HALF_HD) = make_float2(o2a, o2b);
#else
            *reinterpret_cast<u32*>(k + i) = (u32)f2h(o1a) | ((u32)f2h(o1b) << 16);
            *reinterpret_cast<u32*>(k + i + HALF_HD) = (u32)f2h(o2a) | ((u32)f2h(o2b) << 16);
#endif
        }
    } else {
        const int r = 2 * (p - qpairs - kpairs);  // logical v rows r .. r + 3 (one head: HD % 4 == 0)
        const int head = r / HD, d = r % HD;
        kv_t* v = vc + kv_off(slot, head, pos) + d;
#if KV_F32
        *reinterpret_cast<float4*>(v) = make_float4(a0, b0, a1, b1);
#else
        *reinterpret_cast<uint2*>(v) = make_uint2((u32)f2h(a0) | ((u32)f2h(b0) << 16), (u32)f2h(a1) | ((u32)f2h(b1) << 16));
#endif
    }
}
extern "C" __global__ void rope_append_p(const float* __restrict__ y, float* __restrict__ qout, kv_t* __restrict__ kc,
                                         kv_t* __restrict__ vc, const int* __restrict__ row_pos,
                                         const int* __restrict__ row_slot, const float* __restrict__ rcos,
                                         const float* __restrict__ rsin) {
    rope_p_body<float>(y, qout, kc, vc, row_pos, row_slot, rcos, rsin);
}
extern "C" __global__ void rope_append_hp(const h16* __restrict__ y, float* __restrict__ qout, kv_t* __restrict__ kc,
                                          kv_t* __restrict__ vc, const int* __restrict__ row_pos,
                                          const int* __restrict__ row_slot, const float* __restrict__ rcos,
                                          const float* __restrict__ rsin) {
    rope_p_body<h16>(y, qout, kc, vc, row_pos, row_slot, rcos, rsin);
}
#endif

// attn_prefill_fa: flash-attention prefill with K/V tiles shared by the block. Grid (⌈piece / 64⌉,
// heads, pieces), 4 warps; block x (highest first: the longest rows start first) owns 64 queries of
// head h, warp w its 16 rows 64·x + 16·w ... All 128 threads stage the block's 64-key K and V tiles
// (keys 0 .. its last query's position) in shared memory by cp.async, double-buffered (tile j + 1
// flies while tile j is computed), rows padded by 16 bytes (conflict-free ldmatrix). Each warp then
// computes S = Q·Kᵀ for its 16 queries × 64 keys (K fragments by ldmatrix), the causal mask, an
// online softmax in registers (exp2 on log2(e)-prescaled scores) and O += P·V (P from the S
// accumulators, V fragments by ldmatrix.trans): 8 dependent tiles for a 512-key row where
// attn_prefill_tc walks 32 16-key tiles per warp with its own loads. q (T, QDIM) f32 with RoPE, out
// (T, QDIM) act_t; f16 caches (static or paged: each staged row through kv_off), HD 32 or 64.
#if !ACT_F32 && !KV_F32 && !KV_Q && GROUP <= 8 && HD % 32 == 0 && HD <= 64
#define PFB_KT 64          // keys per tile
#define PFB_RS (HD + 8)    // staged row stride in halves
__device__ __forceinline__ void pfb_cp16(u32 dst, const void* src, int n) {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(n) : "memory");
#endif
}
__device__ __forceinline__ void pfb_commit() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void pfb_wait() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
#endif
}
__device__ __forceinline__ float pfb_ex2(float x) {
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}
// The per-warp part of attn_prefill_fa and attn_prefill_fg (one copy since session 9): the warp's 16
// queries i0 .. i0 + 15 of the piece, head h, against the block's K/V tiles 0 .. ntiles - 1, which
// `stage` (tile, buffer) loads into ks / vs (tile 0 already issued by the caller), then the warp's
// rows of out (lane, its mma group g = lane / 4 and thread t = lane % 4 come from the caller's first
// lines, where the kernels always computed them). Every warp of the block calls it (the tile loop has
// block barriers).
template <class Stage>
__device__ __forceinline__ void pfb_rows(const float* __restrict__ q, act_t* __restrict__ out, h16 (*ks)[PFB_KT][PFB_RS],
                                         h16 (*vs)[PFB_KT][PFB_RS], const Stage& stage, const int lane, const int g,
                                         const int t, const int i0, const int n, const int start, const int row0,
                                         const int h, const int ntiles) {
    constexpr int KSTEPS = HD / 16;  // k-steps of S = Q·Kᵀ
    constexpr int ND = HD / 8;       // 8-dim blocks of O
    constexpr int NB = PFB_KT / 8;   // 8-key blocks of S
    const bool active = i0 < n;
    const int pos_a = start + i0 + g, pos_b = pos_a + 8;
    const bool in_a = i0 + g < n, in_b = i0 + g + 8 < n;
    const int last = start + min(i0 + 16, n) - 1;  // the warp's last key
    // Q fragments (rows g, g + 8; dims 16 ks + 2t (+1), + 8): unscaled f16; the softmax scale is
    // applied to S in f32, with log2(e) for ex2.
    u32 qf[KSTEPS][4];
#pragma unroll
    for (int s = 0; s < KSTEPS; s++) {
        float2 x[4] = {make_float2(0.f, 0.f), make_float2(0.f, 0.f), make_float2(0.f, 0.f), make_float2(0.f, 0.f)};
        if (in_a) {
            const float* qp = q + (size_t)(row0 + i0 + g) * QDIM + h * HD + 16 * s + 2 * t;
            x[0] = *(const float2*)qp;
            x[2] = *(const float2*)(qp + 8);
        }
        if (in_b) {
            const float* qp = q + (size_t)(row0 + i0 + g + 8) * QDIM + h * HD + 16 * s + 2 * t;
            x[1] = *(const float2*)qp;
            x[3] = *(const float2*)(qp + 8);
        }
#pragma unroll
        for (int j = 0; j < 4; j++) qf[s][j] = pack_h2(x[j].x, x[j].y);
    }
    const float sl2 = 1.4426950408889634f / sqrtf((float)HD);
    float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;
    float o[ND][4];
#pragma unroll
    for (int nd = 0; nd < ND; nd++) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.f;
    for (int j = 0; j < ntiles; j++) {
        const int buf = j & 1;
        if (j + 1 < ntiles) {
            stage(j + 1, buf ^ 1);
            pfb_wait<1>();
        } else {
            pfb_wait<0>();
        }
        __syncthreads();
        const int k0 = j * PFB_KT;
        if (active && k0 <= last) {
            // S (16 × 64): K fragments by ldmatrix.x4 (keys nb·8 + (lane & 7), dims 8·(lane >> 3) + 32·hh).
            float sacc[NB][4];
#pragma unroll
            for (int nb = 0; nb < NB; nb++) {
                sacc[nb][0] = sacc[nb][1] = sacc[nb][2] = sacc[nb][3] = 0.f;
#pragma unroll
                for (int hh = 0; hh < HD / 32; hh++) {
                    const u32 addr = smem_u32(&ks[buf][nb * 8 + (lane & 7)][32 * hh + 8 * (lane >> 3)]);
                    u32 b0, b1, b2, b3;
                    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                                 : "=r"(b0), "=r"(b1), "=r"(b2), "=r"(b3) : "r"(addr));
                    mma16816(sacc[nb], qf[2 * hh][0], qf[2 * hh][1], qf[2 * hh][2], qf[2 * hh][3], b0, b1);
                    mma16816(sacc[nb], qf[2 * hh + 1][0], qf[2 * hh + 1][1], qf[2 * hh + 1][2], qf[2 * hh + 1][3], b2, b3);
                }
            }
            // Scale (log2 units), causal mask, online softmax of rows g (a) and g + 8 (b).
            float mxa = -INFINITY, mxb = -INFINITY;
#pragma unroll
            for (int nb = 0; nb < NB; nb++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int key = k0 + nb * 8 + 2 * t + e;
                    sacc[nb][e] = key <= pos_a ? sacc[nb][e] * sl2 : -INFINITY;
                    sacc[nb][2 + e] = key <= pos_b ? sacc[nb][2 + e] * sl2 : -INFINITY;
                    mxa = fmaxf(mxa, sacc[nb][e]);
                    mxb = fmaxf(mxb, sacc[nb][2 + e]);
                }
            mxa = fmaxf(mxa, __shfl_xor_sync(0xffffffffu, mxa, 1));
            mxb = fmaxf(mxb, __shfl_xor_sync(0xffffffffu, mxb, 1));
            mxa = fmaxf(mxa, __shfl_xor_sync(0xffffffffu, mxa, 2));
            mxb = fmaxf(mxb, __shfl_xor_sync(0xffffffffu, mxb, 2));
            const float mna = fmaxf(m_a, mxa), mnb = fmaxf(m_b, mxb);
            const float mua = mna == -INFINITY ? 0.f : mna, mub = mnb == -INFINITY ? 0.f : mnb;
            const float al_a = pfb_ex2(m_a - mua), al_b = pfb_ex2(m_b - mub);
            float rsa = 0.f, rsb = 0.f;
#pragma unroll
            for (int nb = 0; nb < NB; nb++) {
                sacc[nb][0] = pfb_ex2(sacc[nb][0] - mua);
                sacc[nb][1] = pfb_ex2(sacc[nb][1] - mua);
                sacc[nb][2] = pfb_ex2(sacc[nb][2] - mub);
                sacc[nb][3] = pfb_ex2(sacc[nb][3] - mub);
                rsa += sacc[nb][0] + sacc[nb][1];
                rsb += sacc[nb][2] + sacc[nb][3];
            }
            rsa += __shfl_xor_sync(0xffffffffu, rsa, 1);
            rsb += __shfl_xor_sync(0xffffffffu, rsb, 1);
            rsa += __shfl_xor_sync(0xffffffffu, rsa, 2);
            rsb += __shfl_xor_sync(0xffffffffu, rsb, 2);
            l_a = l_a * al_a + rsa;
            l_b = l_b * al_b + rsb;
            m_a = mna;
            m_b = mnb;
#pragma unroll
            for (int nd = 0; nd < ND; nd++) {
                o[nd][0] *= al_a;
                o[nd][1] *= al_a;
                o[nd][2] *= al_b;
                o[nd][3] *= al_b;
            }
            // O (16 × HD) += P (16 × 64 keys) · V (64 × HD), 16 keys per k-step.
#pragma unroll
            for (int kk = 0; kk < PFB_KT / 16; kk++) {
                const u32 a0 = pack_h2(sacc[2 * kk][0], sacc[2 * kk][1]), a1 = pack_h2(sacc[2 * kk][2], sacc[2 * kk][3]);
                const u32 a2 = pack_h2(sacc[2 * kk + 1][0], sacc[2 * kk + 1][1]);
                const u32 a3 = pack_h2(sacc[2 * kk + 1][2], sacc[2 * kk + 1][3]);
#pragma unroll
                for (int jd = 0; jd < ND / 2; jd++) {
                    const int mi = lane >> 3, r = lane & 7;
                    const u32 addr = smem_u32(&vs[buf][16 * kk + (mi & 1) * 8 + r][(2 * jd + (mi >> 1)) * 8]);
                    u32 b0, b1, b2, b3;
                    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                                 : "=r"(b0), "=r"(b1), "=r"(b2), "=r"(b3) : "r"(addr));
                    mma16816(o[2 * jd], a0, a1, a2, a3, b0, b1);
                    mma16816(o[2 * jd + 1], a0, a1, a2, a3, b2, b3);
                }
            }
        }
        __syncthreads();  // buffer `buf` is restaged at iteration j + 1
    }
    pdl_trigger();
    if (!active) return;
    const float inv_a = 1.f / l_a, inv_b = 1.f / l_b;
#pragma unroll
    for (int nd = 0; nd < ND; nd++) {
        const int d = h * HD + nd * 8 + 2 * t;
        if (in_a) *(u32*)(out + (size_t)(row0 + i0 + g) * QDIM + d) = pack_h2(o[nd][0] * inv_a, o[nd][1] * inv_a);
        if (in_b) *(u32*)(out + (size_t)(row0 + i0 + g + 8) * QDIM + d) = pack_h2(o[nd][2] * inv_b, o[nd][3] * inv_b);
    }
}
extern "C" __global__ void __launch_bounds__(128)
attn_prefill_fa(const float* __restrict__ q, const kv_t* __restrict__ kc, const kv_t* __restrict__ vc, act_t* __restrict__ out,
                const int* __restrict__ seq_slot, const int* __restrict__ seq_start, const int* __restrict__ seq_row0,
                const int* __restrict__ seq_n) {
    constexpr int CPR = HD / 8;      // 16-byte chunks per staged row
    __shared__ __align__(16) h16 ks[2][PFB_KT][PFB_RS];
    __shared__ __align__(16) h16 vs[2][PFB_KT][PFB_RS];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int h = blockIdx.y, sq = blockIdx.z, kvh = h / GROUP;
    const int bx = gridDim.x - 1 - blockIdx.x;
    pdl_wait();
    const int n = seq_n[sq];
    const int ib = bx * 64;  // the block's first query of the piece
    if (ib >= n) {
        pdl_trigger();
        return;
    }
    const int slot = seq_slot[sq], start = seq_start[sq], row0 = seq_row0[sq];
    const int k_end = start + min(ib + 64, n);  // the block's keys: 0 .. k_end - 1
    const int ntiles = (k_end + PFB_KT - 1) / PFB_KT;
    auto stage = [&](int tile, int buf) {
        const int k0 = tile * PFB_KT;
#pragma unroll
        for (int i = 0; i < (2 * PFB_KT * CPR) / 128; i++) {
            const int c = i * 128 + tid;
            const int isv = c >= PFB_KT * CPR;
            const int cc = isv ? c - PFB_KT * CPR : c;
            const int r = cc / CPR, ch = cc % CPR, key = k0 + r;
            const bool in = key < k_end;
            const kv_t* src = (isv ? vc : kc) + kv_off(slot, kvh, in ? key : 0) + ch * 8;
            const u32 dst = smem_u32(isv ? &vs[buf][r][ch * 8] : &ks[buf][r][ch * 8]);
            pfb_cp16(dst, src, in ? 16 : 0);
        }
        pfb_commit();
    };
    stage(0, 0);
    pfb_rows(q, out, ks, vs, stage, lane, g, t, ib + warp * 16, n, start, row0, h, ntiles);  // this warp's 16 queries
}
#endif
