// ---------------------------------------------------------------------------------------------
// mk (issue #11, fp16 bs1; `TRTFORGE_MK=1`, opt-in since session 33): the one-row decode step as ONE
// persistent launch — the probe docs/benchmarks/2026-12-03-h200-session32/mk11/mk11.cu (1,401 tok/s
// beside the engine's 1,370 on the H200, 50 / 50 bitwise repeats), ported mechanically by
// docs/benchmarks/2026-12-03-h200-session32/mk11/port_mk.py: names prefixed mk_ / MK_, f16 through h2f / f2h, the model's dimensions from
// kernels.rs's defines (HIDDEN, INTER, NH, NKV, HD, VOCAB, EPS) plus MK_LAYERS, the KV length the
// run-time MAX_SEQ, the slot count in the arguments. Appended to kernels.cu for an sm_90a module
// under `#define MK`. The host side is mk.rs.
#if defined(MK)
typedef unsigned long long u64;
template <bool C, class A, class B> struct mk_cond { typedef A type; };
template <class A, class B> struct mk_cond<false, A, B> { typedef B type; };
template <int V> struct mk_ic { static constexpr int value = V; };
constexpr int MK_QKVN = (NH + 2 * NKV) * HD;  // rows of the fused q / k / v projection
// A weight chunk: 16 rows x k of f16, one bulk copy into a ring slot; k is MK_CKH for the ops that read the hidden size
// (q/k/v, o, gate/up, the head) and MK_CKI for down (mk.rs `MkDims::ckh` / `cki` choose them: TinyLlama 512 / 512,
// 16 KB chunks; SmolLM2 576 / 512). A slot holds the larger.
#ifndef MK_CKH
#define MK_CKH 512
#endif
#ifndef MK_CKI
#define MK_CKI 512
#endif
constexpr int MK_CKMAX = MK_CKH > MK_CKI ? MK_CKH : MK_CKI, MK_CHB = 32 * MK_CKMAX;  // a ring slot's bytes
static_assert(HIDDEN % MK_CKH == 0 && INTER % MK_CKI == 0 && MK_CKH % 16 == 0 && MK_CKI % 16 == 0, "chunk k");
constexpr int MK_G = NH / NKV;  // query heads a kv head
static_assert(NH % NKV == 0 && MK_G <= 8 && HD == 64, "the attention items: head_dim 64, at most 8 query heads a kv head");
__device__ __forceinline__ float2 mk_h2f2(unsigned v) { return make_float2(h2f((h16)(v & 0xffff)), h2f((h16)(v >> 16))); }
#ifndef MK_NCW
#define MK_NCW 8
#endif
#ifndef MK_NSLOT
#define MK_NSLOT 12
#endif
#ifndef MK_ACH
#define MK_ACH 20
#endif
#ifndef MK_EW
#define MK_EW 1
#endif
#ifndef MK_NPB
#define MK_NPB 4
#endif
#ifndef MK_XAREA
#define MK_XAREA 16384
#endif
#ifndef MK_NOWAIT
#define MK_NOWAIT 0  // diagnostic: readers take the first value they load, mk_fresh or not (wrong results: the streaming ceiling)
#endif
#ifndef MK_DGU
#define MK_DGU 1  // gate/up tiles handed out at run time: each block's loader takes the next tile by ticket (an atomicAdd one tile
               // ahead), tags the ring slots with the tile, and ends the run with a sentinel slot (needs MK_EW=1)
#endif
#ifndef MK_POLL1
#define MK_POLL1 1  // stagings of >= 8 values a thread: one word a warp polled first (less L2 polling traffic while waiting)
#endif
#ifndef MK_POLL1MIN
#define MK_POLL1MIN 8  // MK_POLL1 for stagings of at least this many values a thread (8: h / ao / act; 16: act only)
#endif
#ifndef MK_GRAB_AT
#define MK_GRAB_AT 1  // MK_DGU: the loader takes its next ticket before chunk 0 of the current tile (-1) or after chunk MK_GRAB_AT
#endif
#ifndef MK_ATTACQ
#define MK_ATTACQ 1  // the attention's count as one atom.acq_rel instead of fence + atomicAdd + fence
#endif
#ifndef MK_CBAR
#define MK_CBAR 0  // the consumer barrier: 0 bar.sync, 1 __syncwarp + bar.sync, 2 barrier.sync (non-aligned); see mk_cbar()
#endif
constexpr int MK_NCT = MK_NCW * 32;                  // consumer threads
constexpr int MK_NTH = MK_NCT + 32 + (MK_EW ? 32 : 0);  // + loader warp (+ mk_epilogue warp)
constexpr int MK_W_LOAD = MK_NCW, MK_W_EPI = MK_NCW + 1;
static_assert(MK_NCW == 8, "the staging's per-thread counts assume 256 consumer threads");
static_assert((HIDDEN > INTER ? HIDDEN : INTER) * 2 <= MK_XAREA, "the staged x fits the x area");
static_assert(MK_EW || MK_NPB == 2, "MK_EW=0 alternates two partial buffers");
#ifndef MK_DHEAD
#define MK_DHEAD 1  // the head's tiles by ticket as MK_DGU's gate/up tiles
#endif
static_assert(!(MK_DGU || MK_DHEAD) || MK_EW, "tiles by ticket pass tile numbers to the mk_epilogue warp");
static_assert(MK_GRAB_AT >= -1 && MK_GRAB_AT <= 2, "MK_GRAB_AT: before chunk 0 (-1) or after chunk 0..2");
constexpr int MK_T_QKV = MK_QKVN / 16, MK_T_ATT = NKV * MK_ACH, MK_T_O = HIDDEN / 16, MK_T_GU = INTER / 8, MK_T_DN = HIDDEN / 16, MK_T_HEAD = VOCAB / 16;
constexpr int MK_KC_H = HIDDEN / MK_CKH, MK_KC_I = INTER / MK_CKI;  // chunks a tile: TinyLlama 4, 11; SmolLM2 1, 3
enum { MK_OP_QKV = 0, MK_OP_ATT = 1, MK_OP_O = 2, MK_OP_GU = 3, MK_OP_DN = 4, MK_OP_HEAD = 5 };
// Ops whose tiles are handed out at run time by ticket (loader -> ring slot -> consumers -> partial buffer -> mk_epilogue).
__host__ __device__ constexpr bool dyn(int op) { return (MK_DGU && op == MK_OP_GU) || (MK_DHEAD && op == MK_OP_HEAD); }
__host__ __device__ constexpr int ntiles(int op) { return op == MK_OP_GU ? MK_T_GU : op == MK_OP_QKV ? MK_T_QKV : MK_T_HEAD; }
struct MK_Rg {  // a ring's cursor (the loader's and the consumers'): slot in [0, MK_NSLOT), phase parity
    int slot;
    u32 ph;
    __device__ void mk_adv() {
        if (++slot == MK_NSLOT) slot = 0, ph ^= 1;
    }
};
// Shared memory: ring | x area | mbarriers | partial buffers + misc | schedule.
constexpr int MK_MAXE = 512;  // schedule entries per block
constexpr int MK_SM_RING = 0, MK_SM_X = MK_NSLOT * MK_CHB, MK_SM_BAR = MK_SM_X + MK_XAREA, MK_SM_MISC = MK_SM_BAR + 2 * (MK_NSLOT + MK_NPB) * 8;
constexpr int MK_SM_SCHED = MK_SM_MISC + MK_NPB * MK_NCW * 16 * 4 + 256;  // misc: partials, redb (MK_NCW), flag, slot tiles (MK_NSLOT), meta (MK_NPB)
static_assert(MK_NCW + 1 + MK_NSLOT + MK_NPB <= 64, "misc area");
constexpr int MK_SMEM = MK_SM_SCHED + MK_MAXE * 4;

struct MK_Args {
    const h16 *wqkv, *wo, *wgu, *wdn, *whead;  // packed chunks
    const h16* emb;                            // (VOCAB, HIDDEN)
    const float *nattn, *nffn, *nfinal;        // (MK_LAYERS, HIDDEN), (MK_LAYERS, HIDDEN), (HIDDEN)
    h16 *kc, *vc;                              // (MK_LAYERS, a.slots, NKV, MAX_SEQ, HD)
    // The engine's metadata rows of the one sequence (token, position, KV slot: written before the step by the
    // host or the previous step's advance) and the launch counter (bumped by mk_advance after each step).
    const int *tokp, *posp, *slotp, *epochp;
    int slots;                                 // KV cache slots
    const float *rcos, *rsin;                  // RoPE tables (MAX_SEQ, HD / 2)
    // Tagged words (f32 value | tag << 32). hx: (MK_LAYERS + 1, HIDDEN) layer inputs (hx[0] unused: the embedding row), hm: (MK_LAYERS, HIDDEN)
    // after o; qt (HIDDEN), kvt (NKV, 128: k then v), aot (HIDDEN), actt (INTER), reused by every layer (tag = epoch * 32 + l).
    u64 *hx, *hm, *qt, *kvt, *aot, *actt;
    float *part, *logits;  // attention records (NH, MK_ACH, 68), logits (VOCAB)
    u64* prt;              // unused (session 31's tagged attention records)
    int* gctr;             // tickets (6 ops x MK_LAYERS), never reset: each launch takes ntiles(op) + G of each it uses
    int* ctr;              // attention merge counters (MK_LAYERS, NKV)
    u64* best;             // 3 argmax keys, slot epoch % 3
    const int* sched;      // (G, MK_MAXE) entries
    const int* nsched;     // (G)
    int pos, epoch, tok;   // tok < 0: the previous step's argmax
    int* err;
    u64 *prof, *dbg, *trace;  // unused (the probe's profile, race-hunt and trace buffers; mk.rs keeps the layout)
};

__device__ __forceinline__ u32 mk_smem_u32(const void* p) { return (u32)__cvta_generic_to_shared(p); }
__device__ __forceinline__ void mk_mbar_init(u32 bar, u32 n) { asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(n) : "memory"); }
__device__ __forceinline__ void mk_mbar_expect(u32 bar, u32 bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mk_mbar_arrive(u32 bar) { asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory"); }
// Returns once the phase of parity `parity` has completed (a mk_fresh barrier counts its parity-1 phase as completed).
__device__ __forceinline__ void mk_mbar_wait(u32 bar, u32 parity) {
    u32 done = 0;
    while (!done) {
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                     : "=r"(done)
                     : "r"(bar), "r"(parity)
                     : "memory");
    }
}
__device__ __forceinline__ void mk_bulk_g2s(u32 dst, const void* src, u32 bytes, u32 bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst), "l"(src),
                 "r"(bytes), "r"(bar)
                 : "memory");
}
// The consumer warps' barrier. MK_CBAR 0: bar.sync (= barrier.sync.aligned: every thread of a warp must execute it
// together, undefined if the warp arrives diverged); 1: __syncwarp() first, then bar.sync; 2: barrier.sync (not aligned:
// per-thread arrival, allowed in divergent code).
__device__ __forceinline__ void mk_cbar() {
    if (MK_CBAR == 2) {
        asm volatile("barrier.sync 1, %0;" ::"r"(MK_NCT) : "memory");
    } else {
        if (MK_CBAR == 1) __syncwarp();
        asm volatile("bar.sync 1, %0;" ::"r"(MK_NCT) : "memory");
    }
}
__device__ __forceinline__ u64 mk_gtime() {
    u64 t;
    asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
    return t;
}
__device__ __forceinline__ void mk_fail(int* err, int code) {
    atomicExch(err, code);
    __trap();
}
// Tagged words.
__device__ __forceinline__ u64 mk_ld_rlx(const u64* p) {
    u64 v;
    asm volatile("ld.relaxed.gpu.global.b64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void mk_st_tag(u64* p, float v, u32 tag) {
    const u64 w = ((u64)tag << 32) | (u64)__float_as_uint(v);
    asm volatile("st.relaxed.gpu.global.b64 [%0], %1;" ::"l"(p), "l"(w) : "memory");
}
__device__ __forceinline__ bool mk_fresh(u64 w, u32 tag) { return (u32)(w >> 32) == tag; }
__device__ __forceinline__ float mk_tval(u64 w) { return __uint_as_float((u32)w); }
// One tagged value, waited for (2 s: error + trap).
__device__ float mk_poll1(const u64* p, u32 tag, int* err, int code) {
    u64 w = mk_ld_rlx(p);
    if (MK_NOWAIT || mk_fresh(w, tag)) return mk_tval(w);
    const u64 t0 = mk_gtime();
    for (;;) {
        w = mk_ld_rlx(p);
        if (mk_fresh(w, tag)) return mk_tval(w);
        if (mk_gtime() - t0 > 2000000000ull) mk_fail(err, code);
    }
}
// N tagged values at addr(i) (N <= 64), all loads in flight at once, then the stale ones again until all are mk_fresh.
template <int N, class AF>
__device__ __forceinline__ void mk_polla(AF addr, int lim, float (&out)[N], u32 tag, int* err, int code) {
    using M = typename mk_cond<(N > 32), u64, u32>::type;  // the stale words' mask
    u64 w[N];
#pragma unroll
    for (int i = 0; i < N; i++) w[i] = i < lim ? mk_ld_rlx(addr(i)) : (u64)tag << 32;  // past lim: 0, current
    M st = 0;
#pragma unroll
    for (int i = 0; i < N; i++) st |= (MK_NOWAIT || mk_fresh(w[i], tag)) ? M(0) : (M(1) << i);
    u64 t0 = 0;
    while (st) {
        const u64 t = mk_gtime();
        if (t0 == 0) t0 = t;
        else if (t - t0 > 2000000000ull) mk_fail(err, code);
#pragma unroll
        for (int i = 0; i < N; i++)
            if (st >> i & M(1)) w[i] = mk_ld_rlx(addr(i));
        st = 0;
#pragma unroll
        for (int i = 0; i < N; i++) st |= mk_fresh(w[i], tag) ? M(0) : (M(1) << i);
    }
#pragma unroll
    for (int i = 0; i < N; i++) out[i] = mk_tval(w[i]);
}
// A consumer thread's share of TOT tagged values p[0, TOT): p[tid + i * MK_NCT] for i < N = ceil(TOT / MK_NCT) (0 past
// TOT), all loads in flight at once, then the stale ones again (together) until all are mk_fresh.
template <int N, int TOT>
__device__ __forceinline__ void mk_polln(const u64* p, float (&out)[N], u32 tag, int* err, int code) {
    static_assert(TOT <= N * MK_NCT && TOT > (N - 1) * MK_NCT, "N = ceil(TOT / MK_NCT)");
    constexpr bool FULL = TOT == N * MK_NCT;
    const int tid = threadIdx.x, w31 = tid | 31;  // values a thread: lim (its lane 31's: l31, the fewest of its warp)
    const int lim = FULL ? N : (TOT - tid + MK_NCT - 1) / MK_NCT, l31 = FULL ? N : (TOT - w31 + MK_NCT - 1) / MK_NCT;
    if (MK_POLL1 && N >= MK_POLL1MIN) {  // lane 0 spins on one word of the warp's (its lane 31's last) before the warp loads all of them
        if ((tid & 31) == 0 && l31 > 0) (void)mk_poll1(p + w31 + (size_t)(l31 - 1) * MK_NCT, tag, err, code);
        __syncwarp();
    }
    mk_polla<N>([&](int i) { return p + tid + (size_t)i * MK_NCT; }, lim, out, tag, err, code);
}
__device__ __forceinline__ float mk_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float mk_warp_max(float v) {
#pragma unroll
    for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ int mk_ent_op(int e) { return e & 7; }
__device__ __forceinline__ int mk_ent_l(int e) { return (e >> 3) & 31; }
__device__ __forceinline__ int mk_ent_t(int e) { return e >> 8; }
__device__ __forceinline__ int mk_ent_nch(int op) { return op == MK_OP_ATT ? 0 : op == MK_OP_DN ? MK_KC_I : MK_KC_H; }
__device__ __forceinline__ u32 mk_chunk_bytes(int op) { return op == MK_OP_DN ? 32 * MK_CKI : 32 * MK_CKH; }
// Global address of chunk c of entry (op, l, t).
__device__ __forceinline__ const h16* chunk_ptr(const MK_Args& a, int op, int l, int t, int c) {
    switch (op) {
        case MK_OP_QKV: return a.wqkv + ((size_t)(l * MK_T_QKV + t) * MK_KC_H + c) * (16 * MK_CKH);
        case MK_OP_O: return a.wo + ((size_t)(l * MK_T_O + t) * MK_KC_H + c) * (16 * MK_CKH);
        case MK_OP_GU: return a.wgu + ((size_t)(l * MK_T_GU + t) * MK_KC_H + c) * (16 * MK_CKH);
        case MK_OP_DN: return a.wdn + ((size_t)(l * MK_T_DN + t) * MK_KC_I + c) * (16 * MK_CKI);
        default: return a.whead + ((size_t)t * MK_KC_H + c) * (16 * MK_CKH);
    }
}
__device__ __forceinline__ float mk_rope_inv(int d) { return exp2f(-(2.f * d / HD) * 13.287712379549449f); }  // 10000^(-2d/64)
// The engine's argmax key (kernels.cu am_key): NaN never wins (key 0), -0 as +0, ties to the lowest index.
__device__ __forceinline__ u64 mk_argkey(float v, int idx) {
    if (v != v) return 0ull;
    u32 b = __float_as_uint(v == 0.f ? 0.f : v);
    b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
    return ((u64)b << 32) | (u64)(0xffffffffu - (u32)idx);
}
__device__ __forceinline__ u32 mk_tagof(int epoch, int l) { return (u32)epoch * 32u + (u32)l; }

// The mk_epilogue of tile t of (op, l), row r = the calling lane (< 16); Y(r) sums the MK_NCW warps' partials of row r.
// Lanes 0..15 of one warp call it together (the head's argmax reduces over them).
template <class YF>
__device__ __forceinline__ void mk_epilogue(const MK_Args& a, int PS, int EP, int SL, int op, int l, int t, int r, const h16* erow, YF Y) {
    const u32 tg = mk_tagof(EP, l);
    if (op == MK_OP_QKV) {
        u64 *qt = a.qt, *kvt = a.kvt;
        if (t < MK_T_QKV - NKV * 4) {  // q or k: RoPE pairs (r, r + 8)
            const bool isq = t < NH * 4;
            const int hh = isq ? t / 4 : (t - NH * 4) / 4, d0 = (t % 4) * 8;
            if (r < 8) {
                const int d = d0 + r;
                const float sn = a.rsin[PS * (HD / 2) + d], cs = a.rcos[PS * (HD / 2) + d];
                const float x1 = Y(r), x2 = Y(r + 8);
                const float y1 = x1 * cs - x2 * sn, y2 = x2 * cs + x1 * sn;
                if (isq) {
                    mk_st_tag(qt + hh * 64 + d, y1 * 0.125f, tg);
                    mk_st_tag(qt + hh * 64 + d + 32, y2 * 0.125f, tg);
                } else {
                    const h16 k1 = f2h(y1), k2 = f2h(y2);
                    h16* kr = a.kc + ((size_t)((l * a.slots + SL) * NKV + hh) * MAX_SEQ + PS) * HD;
                    kr[d] = k1;
                    kr[d + 32] = k2;
                    mk_st_tag(a.kvt + hh * 128 + d, h2f(k1), tg);
                    mk_st_tag(a.kvt + hh * 128 + d + 32, h2f(k2), tg);
                }
            }
        } else {
            const int vt = t - (MK_T_QKV - NKV * 4), vh = vt / 4, d = (vt % 4) * 16 + r;
            const h16 v = f2h(Y(r));
            a.vc[((size_t)((l * a.slots + SL) * NKV + vh) * MAX_SEQ + PS) * HD + d] = v;
            mk_st_tag(kvt + vh * 128 + 64 + d, h2f(v), tg);
        }
    } else if (op == MK_OP_O) {  // h after o = the layer's input + y
        const int row = t * 16 + r;
        const float hin = l == 0 ? h2f(erow[row]) : mk_poll1(a.hx + (size_t)l * HIDDEN + row, tg, a.err, 11);
        mk_st_tag(a.hm + (size_t)l * HIDDEN + row, hin + Y(r), tg);
    } else if (op == MK_OP_GU) {
        if (r < 8) {
            const float gg = Y(r), uu = Y(r + 8);
            const float av = gg / (1.f + __expf(-gg)) * uu;
            mk_st_tag(a.actt + t * 8 + r, av, tg);
        }
    } else if (op == MK_OP_DN) {  // the next layer's input = h after o + y
        const int row = t * 16 + r;
        const float hmv = mk_poll1(a.hm + (size_t)l * HIDDEN + row, tg, a.err, 12);
        mk_st_tag(a.hx + (size_t)(l + 1) * HIDDEN + row, hmv + Y(r), mk_tagof(EP, l + 1));
    } else {  // head
        const int row = t * 16 + r;
        const float yv = Y(r);
        a.logits[row] = yv;
        u64 key = mk_argkey(yv, row);
#pragma unroll
        for (int o = 8; o; o >>= 1) {
            const u64 k2 = __shfl_xor_sync(0x0000ffffu, key, o);
            key = k2 > key ? k2 : key;
        }
        if (r == 0) atomicMax(a.best + EP % 3, key);
    }
}

extern "C" __global__ void __launch_bounds__(MK_NTH, 1) mk_step(const MK_Args a) {
    extern __shared__ __align__(128) unsigned char sm[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, tid = threadIdx.x;
    pdl_wait();  // launched with programmatic dependent launch: the metadata is written by the kernels before
    const int PS = *a.posp, SL = *a.slotp, EP = *a.epochp;  // written by earlier launches
    const u32 bars = mk_smem_u32(sm + MK_SM_BAR);
    auto full = [&](int s) { return bars + 8 * s; };
    auto empty = [&](int s) { return bars + 8 * (MK_NSLOT + s); };
    auto pfull = [&](int b) { return bars + 8 * (2 * MK_NSLOT + b); };
    auto pempty = [&](int b) { return bars + 8 * (2 * MK_NSLOT + MK_NPB + b); };
    const int ne = a.nsched[blockIdx.x];
    {
        int* ss = (int*)(sm + MK_SM_SCHED);
        const int* gs = a.sched + blockIdx.x * MK_MAXE;
        for (int i = threadIdx.x; i < ne; i += MK_NTH) ss[i] = gs[i];
    }
    const int* sched = (const int*)(sm + MK_SM_SCHED);  // made visible by the __syncthreads below
    if (tid == 0) {
        for (int s = 0; s < MK_NSLOT; s++) {
            mk_mbar_init(full(s), 1);
            mk_mbar_init(empty(s), MK_NCW);
        }
        for (int b = 0; b < MK_NPB; b++) {
            mk_mbar_init(pfull(b), MK_NCW);
            mk_mbar_init(pempty(b), 1);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        if (blockIdx.x == 0) a.best[(EP + 1) % 3] = 0ull;
    }
    __syncthreads();
    const int ep = EP;
    const int tok = *a.tokp;
    const h16* erow = a.emb + (size_t)tok * HIDDEN;
    float* ysb = (float*)(sm + MK_SM_MISC);  // MK_NPB x MK_NCW x 16 tile partials
    float* redb = ysb + MK_NPB * MK_NCW * 16;   // MK_NCW partial sums
    int* flag = (int*)(redb + MK_NCW);       // broadcast
    int* slot_t = flag + 1;               // MK_DGU: the gate/up tile of each ring slot (-1: the run's end)
    int* meta = slot_t + MK_NSLOT;           // MK_DGU: the tile of each partial buffer (-1: the run's end)
    if (warp == MK_W_LOAD) {  // the loader lane
        if (lane == 0) {
            MK_Rg L{0, 0u};
            for (int e = 0; e < ne; e++) {
                const int en = sched[e], op = mk_ent_op(en), l = mk_ent_l(en), t = mk_ent_t(en);
                const int nch = mk_ent_nch(op);
                if (dyn(op)) {
                    const int TT = ntiles(op);
                    const int base = (EP - 1) * (TT + (int)gridDim.x);
                    int* ctr = a.gctr + op * MK_LAYERS + l;
                    auto grab = [&]() { return atomicAdd(ctr, 1) - base; };
                    int tt = grab();
                    while (tt < TT) {
                        int tn = MK_GRAB_AT < 0 ? grab() : TT;  // one ticket ahead: its round trip under the copies
                        for (int c = 0; c < MK_KC_H; c++) {
                            if (MK_GRAB_AT >= 0 && c == MK_GRAB_AT + 1) tn = grab();
                            mk_mbar_wait(empty(L.slot), L.ph ^ 1);
                            slot_t[L.slot] = tt;
                            mk_mbar_expect(full(L.slot), 32 * MK_CKH);  // gate/up, the head: k = the hidden size
                            mk_bulk_g2s(mk_smem_u32(sm + MK_SM_RING + L.slot * MK_CHB), chunk_ptr(a, op, l, tt, c), 32 * MK_CKH, full(L.slot));
                            L.mk_adv();
                        }
                        // Tiles of at most MK_GRAB_AT + 1 chunks (SmolLM2: one) take the next ticket after their last
                        // chunk (session 65's first SmolLM2 run: without this every loader ran one tile, the rest of the
                        // layer's gate/up tiles never came, and down's staging timed out).
                        if (MK_GRAB_AT >= 0 && MK_GRAB_AT + 1 >= MK_KC_H) tn = grab();
                        tt = tn;
                    }
                    mk_mbar_wait(empty(L.slot), L.ph ^ 1);  // the run's end: a slot with no data
                    slot_t[L.slot] = -1;
                    mk_mbar_arrive(full(L.slot));
                    L.mk_adv();
                    continue;
                }
                for (int c = 0; c < nch; c++) {
                    mk_mbar_wait(empty(L.slot), L.ph ^ 1);
                    const u32 cb = mk_chunk_bytes(op);
                    mk_mbar_expect(full(L.slot), cb);
                    mk_bulk_g2s(mk_smem_u32(sm + MK_SM_RING + L.slot * MK_CHB), chunk_ptr(a, op, l, t, c), cb, full(L.slot));
                    L.mk_adv();
                }
            }
        }
        return;
    }
    if (MK_EW && warp == MK_W_EPI) {  // the mk_epilogue warp: every non-attention entry, in schedule order
        int nt = 0;
        for (int e = 0; e < ne; e++) {
            const int en = sched[e], op = mk_ent_op(en), l = mk_ent_l(en), t = mk_ent_t(en);
            if (op == MK_OP_ATT) continue;
            if (dyn(op)) {  // tiles as the consumers pass them, until the sentinel
                for (;;) {
                    const int b = nt % MK_NPB;
                    mk_mbar_wait(pfull(b), (nt / MK_NPB) & 1);
                    const int tt = meta[b];
                    const float* pb = ysb + b * MK_NCW * 16;
                    if (tt >= 0 && lane < 16)
                        mk_epilogue(a, PS, EP, SL, op, l, tt, lane, erow, [&](int r) {
                            float v = 0.f;
#pragma unroll
                            for (int w = 0; w < MK_NCW; w++) v += pb[w * 16 + r];
                            return v;
                        });
                    __syncwarp();
                    if (lane == 0) mk_mbar_arrive(pempty(b));
                    nt++;
                    if (tt < 0) break;
                }
                continue;
            }
            const int b = nt % MK_NPB;
            mk_mbar_wait(pfull(b), (nt / MK_NPB) & 1);
            const float* pb = ysb + b * MK_NCW * 16;
            if (lane < 16)
                mk_epilogue(a, PS, EP, SL, op, l, t, lane, erow, [&](int r) {
                    float v = 0.f;
#pragma unroll
                    for (int w = 0; w < MK_NCW; w++) v += pb[w * 16 + r];
                    return v;
                });
            __syncwarp();
            if (lane == 0) mk_mbar_arrive(pempty(b));
            nt++;
        }
        return;
    }
    // Consumers.
    h16* xh = (h16*)(sm + MK_SM_X);  // the staged x (f16)
    MK_Rg R{0, 0u};  // the ring's cursor
    int nt = 0;
    // x = rmsnorm(v) * w: v tagged (src) or the embedding row (src == nullptr).
    auto stage_norm = [&](const u64* src, u32 tg, const float* w) {
        constexpr int N = (HIDDEN + MK_NCT - 1) / MK_NCT;  // TinyLlama 8, SmolLM2 3 (the last for tid < 64)
        constexpr bool FULL = HIDDEN % MK_NCT == 0;
        float v[N];
        if (src) {
            mk_polln<N, HIDDEN>(src, v, tg, a.err, 1);
        } else {
#pragma unroll
            for (int i = 0; i < N; i++) v[i] = FULL || tid + i * MK_NCT < HIDDEN ? h2f(erow[tid + i * MK_NCT]) : 0.f;
        }
        float ss = 0.f;
#pragma unroll
        for (int i = 0; i < N; i++) ss += v[i] * v[i];
        ss = mk_warp_sum(ss);
        if (lane == 0) redb[warp] = ss;
        mk_cbar();
        float tot = 0.f;
#pragma unroll
        for (int i = 0; i < MK_NCW; i++) tot += redb[i];
        const float rs = rsqrtf(tot / HIDDEN + EPS);
#pragma unroll
        for (int i = 0; i < N; i++) {
            const int k = tid + i * MK_NCT;
            if (FULL || k < HIDDEN) xh[k] = f2h(v[i] * rs * w[k]);
        }
        mk_cbar();
    };
    // x = v (tagged, TOT values: mk_ic).
    auto stage_copy = [&](const u64* src, u32 tg, auto tot_c) {
        constexpr int TOT = decltype(tot_c)::value, N = (TOT + MK_NCT - 1) / MK_NCT;
        float v[N];
        mk_polln<N, TOT>(src, v, tg, a.err, 2);
        mk_cbar();  // every consumer warp is past the previous run's tiles (they read x)
#pragma unroll
        for (int i = 0; i < N; i++)
            if (TOT % MK_NCT == 0 || tid + i * MK_NCT < TOT) xh[tid + i * MK_NCT] = f2h(v[i]);
        mk_cbar();
    };
    // One tile: nch chunks of k = CK (mk_ic) from the ring against x; the warps' partials of the 16 rows into buffer
    // nt % MK_NPB. Warp w takes the chunk's k tiles w, w + MK_NCW, ...
    auto tile = [&](int nch, int tmeta, auto ck_c) {
        constexpr int CK = decltype(ck_c)::value, NKT = CK / 16, NJ = (NKT + MK_NCW - 1) / MK_NCW;
        const int g = lane >> 2, t4 = lane & 3;
        float c[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
        for (int ci = 0; ci < nch; ci++) {
            mk_mbar_wait(full(R.slot), R.ph);
            const uint4* wc = (const uint4*)(sm + MK_SM_RING + R.slot * MK_CHB);
            const h16* xc = xh + ci * CK;
#pragma unroll
            for (int j = 0; j < NJ; j++) {
                const int kt = warp + j * MK_NCW;
                if (NKT % MK_NCW != 0 && kt >= NKT) break;
                const uint4 av = wc[kt * 32 + lane];
                const u32 b0 = *(const u32*)(xc + kt * 16 + 2 * t4), b1 = *(const u32*)(xc + kt * 16 + 2 * t4 + 8);
                float* cc = c[j & 1];
                asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                             : "+f"(cc[0]), "+f"(cc[1]), "+f"(cc[2]), "+f"(cc[3])
                             : "r"(av.x), "r"(av.y), "r"(av.z), "r"(av.w), "r"(b0), "r"(b1));
            }
            // Session 32's race fix: ptxas issues the warp's "slot free" arrive right after the slot's LDS.128s,
            // before their data return, so the loader's next bulk copy could overwrite data in flight;
            // fence.acq_rel.cta (MEMBAR.ALL.CTA) before the arrive waits for them.
            asm volatile("fence.acq_rel.cta;" ::: "memory");
            __syncwarp();
            if (lane == 0) mk_mbar_arrive(empty(R.slot));
            R.mk_adv();
        }
        const int b = nt % MK_NPB;
        if (MK_EW) mk_mbar_wait(pempty(b), ((nt / MK_NPB) & 1) ^ 1);  // the mk_epilogue warp is done with this buffer's last use
        float* pb = ysb + b * MK_NCW * 16;
        if (t4 == 0) pb[warp * 16 + g] = c[0][0] + c[1][0], pb[warp * 16 + g + 8] = c[0][2] + c[1][2];
        if ((MK_DGU || MK_DHEAD) && tid == 0) meta[b] = tmeta;
        if (MK_EW) {
            __syncwarp();
            if (lane == 0) mk_mbar_arrive(pfull(b));
        } else {
            mk_cbar();
        }
        nt++;
    };
    int e = 0;
    while (e < ne) {
        const int en = sched[e], op = mk_ent_op(en), l = mk_ent_l(en);
        const u32 tg = mk_tagof(ep, l);
        // Stage the run's input: the staging's loads are the dependency wait.
        if (op == MK_OP_QKV) stage_norm(l == 0 ? nullptr : a.hx + (size_t)l * HIDDEN, tg, a.nattn + l * HIDDEN);
        else if (op == MK_OP_O) stage_copy(a.aot, tg, mk_ic<HIDDEN>());
        else if (op == MK_OP_GU) stage_norm(a.hm + (size_t)l * HIDDEN, tg, a.nffn + l * HIDDEN);
        else if (op == MK_OP_DN) stage_copy(a.actt, tg, mk_ic<INTER>());
        else if (op == MK_OP_HEAD) stage_norm(a.hx + (size_t)MK_LAYERS * HIDDEN, mk_tagof(ep, MK_LAYERS), a.nfinal);
        else mk_cbar();  // attention: the items overwrite the x area the previous run's tiles read
        for (; e < ne && (sched[e] & 0xff) == (en & 0xff); e++) {
            const int t = mk_ent_t(sched[e]);
            if (op == MK_OP_ATT) {
                // Item (kv head g, chunk c) over positions [p0, p0 + n): rows < pos from the cache, row pos (this
                // step's, tagged) from kvt; q (tagged) from qt.
                const int g = t / MK_ACH, c = t % MK_ACH, L = PS + 1, CL = (L + MK_ACH - 1) / MK_ACH, p0 = c * CL;
                const int n = max(0, min(CL, L - p0)), nold = max(0, min(n, PS - p0));
                float* qs = (float*)xh;                     // 8 x 64 f32
                u32* ks = (u32*)(qs + 512);                 // n rows, stride 33 words (conflict-free per-lane rows)
                u32* vs = ks + 33 * ((CL + 3) & ~3);        // n rows x 32 words (16-byte aligned)
                float* ss = (float*)(vs + 32 * CL);         // 8 x CL
                const size_t kvb = ((size_t)((l * a.slots + SL) * NKV + g) * MAX_SEQ + p0) * HD;
                for (int i = tid; i < nold * 8; i += MK_NCT) {  // old rows first: they do not wait
                    const int p = i >> 3, j = i & 7;
                    const uint4 kv = __ldcg((const uint4*)(a.kc + kvb + (size_t)p * HD + j * 8));
                    ks[33 * p + 4 * j] = kv.x, ks[33 * p + 4 * j + 1] = kv.y, ks[33 * p + 4 * j + 2] = kv.z, ks[33 * p + 4 * j + 3] = kv.w;
                    *(uint4*)(vs + 32 * p + 4 * j) = __ldcg((const uint4*)(a.vc + kvb + (size_t)p * HD + j * 8));
                }
                {  // the kv head's MK_G query heads
                    constexpr int QN = MK_G * 64, NQ = (QN + MK_NCT - 1) / MK_NCT;
                    float qv[NQ];
                    mk_polln<NQ, QN>(a.qt + g * QN, qv, tg, a.err, 3);
#pragma unroll
                    for (int i = 0; i < NQ; i++)
                        if (QN % MK_NCT == 0 || tid + i * MK_NCT < QN) qs[tid + i * MK_NCT] = qv[i];
                }
                if (n > nold && tid < 128) {  // the newest row
                    const float v = mk_poll1(a.kvt + g * 128 + tid, tg, a.err, 4);
                    const h16 vh = f2h(v);
                    if (tid < 64) ((h16*)(ks + 33 * nold))[tid] = vh;
                    else ((h16*)(vs + 32 * nold))[tid - 64] = vh;
                }
                mk_cbar();
                // Warp w < MK_G: head g * MK_G + w. Scores by lane-owned positions, softmax, P.V by lane-owned dims.
                for (int w = warp; w < MK_G; w += MK_NCW) {
                    const float* qh = qs + w * 64;
                    float mx = -1e30f;
                    for (int p = lane; p < n; p += 32) {
                        float s = 0.f;
#pragma unroll
                        for (int d2 = 0; d2 < 32; d2++) {
                            const u32 kk = ks[33 * p + d2];
                            const float2 kf = mk_h2f2(kk);
                            s += kf.x * qh[2 * d2] + kf.y * qh[2 * d2 + 1];
                        }
                        ss[w * CL + p] = s;
                        mx = fmaxf(mx, s);
                    }
                    mx = mk_warp_max(mx);
                    float sum = 0.f;
                    for (int p = lane; p < n; p += 32) {
                        const float pe = __expf(ss[w * CL + p] - mx);
                        ss[w * CL + p] = pe;
                        sum += pe;
                    }
                    sum = mk_warp_sum(sum);
                    __syncwarp();
                    float a0 = 0.f, a1 = 0.f;
                    for (int p = 0; p < n; p++) {
                        const float pe = ss[w * CL + p];
                        const u32 vv = vs[32 * p + lane];
                        const float2 vf = mk_h2f2(vv);
                        a0 += pe * vf.x, a1 += pe * vf.y;
                    }
                    float* rec = a.part + ((size_t)(g * MK_G + w) * MK_ACH + c) * 68;
                    *(float2*)(rec + 4 + 2 * lane) = make_float2(a0, a1);
                    if (lane == 0) rec[0] = (n > 0 ? mx : -1e30f), rec[1] = sum;
                }
                mk_cbar();
                if (tid == 0) {
                    if (MK_ATTACQ) {  // one acq_rel atomic: releases the block's records (bar.sync before), acquires the others'
                        int old;
                        asm volatile("atom.acq_rel.gpu.global.add.s32 %0, [%1], 1;" : "=r"(old) : "l"(a.ctr + l * NKV + g) : "memory");
                        *flag = old == ep * MK_ACH - 1;
                    } else {
                        __threadfence();
                        *flag = atomicAdd(a.ctr + l * NKV + g, 1) == ep * MK_ACH - 1;
                        __threadfence();
                    }
                }
                mk_cbar();
                if (*flag) {  // the kv head's last item: merge its 8 heads' records into aot (tagged)
                    for (int w = warp; w < MK_G; w += MK_NCW) {
                        const float* rb = a.part + (size_t)(g * MK_G + w) * MK_ACH * 68;
                        const float mc = lane < MK_ACH ? __ldcg(rb + lane * 68) : -1e30f, lc = lane < MK_ACH ? __ldcg(rb + lane * 68 + 1) : 0.f;
                        float2 v[MK_ACH];
#pragma unroll
                        for (int cc = 0; cc < MK_ACH; cc++) v[cc] = __ldcg((const float2*)(rb + cc * 68 + 4 + 2 * lane));
                        const float M = mk_warp_max(mc);
                        const float wc = lane < MK_ACH ? __expf(mc - M) : 0.f;
                        const float den = mk_warp_sum(wc * lc);
                        float n0 = 0.f, n1 = 0.f;
#pragma unroll
                        for (int cc = 0; cc < MK_ACH; cc++) {
                            const float wv = __shfl_sync(0xffffffffu, wc, cc);
                            n0 += wv * v[cc].x, n1 += wv * v[cc].y;
                        }
                        u64* o = a.aot + (g * MK_G + w) * 64 + 2 * lane;
                        mk_st_tag(o, n0 / den, tg);
                        mk_st_tag(o + 1, n1 / den, tg);
                    }
                    mk_cbar();
                }
                mk_cbar();  // the x area reused by the next item
                continue;
            }
            if (dyn(op)) {  // tiles as the loader tagged the slots, until its sentinel
                for (;;) {
                    mk_mbar_wait(full(R.slot), R.ph);
                    const int tt = slot_t[R.slot];
                    if (tt < 0) {
                        __syncwarp();
                        if (lane == 0) mk_mbar_arrive(empty(R.slot));
                        R.mk_adv();
                        // the run's end to the mk_epilogue warp: a buffer with tile -1
                        const int b = nt % MK_NPB;
                        mk_mbar_wait(pempty(b), ((nt / MK_NPB) & 1) ^ 1);
                        if (tid == 0) meta[b] = -1;
                        __syncwarp();
                        if (lane == 0) mk_mbar_arrive(pfull(b));
                        nt++;
                        break;
                    }
                    tile(MK_KC_H, tt, mk_ic<MK_CKH>());
                }
                continue;
            }
            if (MK_CKH == MK_CKI || op != MK_OP_DN) tile(mk_ent_nch(op), t, mk_ic<MK_CKH>());
            else tile(MK_KC_I, t, mk_ic<MK_CKI>());
            if (!MK_EW) {  // the tile's barrier is behind us: warp 0's lanes < 16 run its mk_epilogue
                const float* pb = ysb + ((nt - 1) % MK_NPB) * MK_NCW * 16;
                if (warp == 0 && lane < 16)
                    mk_epilogue(a, PS, EP, SL, op, l, t, lane, erow, [&](int r) {
                        float v = 0.f;
#pragma unroll
                        for (int w = 0; w < MK_NCW; w++) v += pb[w * 16 + r];
                        return v;
                    });
            }
        }
    }
}
// After each step, one thread (graph-safe: the step reads the counter at its start, this launch bumps it after):
// the step's argmax (its head's key, slot epoch % 3) as the next token, fed back with the position + 1 as the
// engine's argmax + advance do (next[0], tokens[0], row_pos[0]), then the launch counter + 1; and as hist_put
// does, the token into hist[hctr] (while hctr < rows), hctr + 1 (session 33: one launch less a step in the greedy loop).
extern "C" __global__ void mk_advance(const u64* best, int* epoch, int* next, int* tokens, int* row_pos, int* hist, int* hctr,
                                      int rows) {
    pdl_wait();
    if (threadIdx.x == 0 && blockIdx.x == 0) {
        const int ep = *epoch;
        const u64 k = best[ep % 3];
        const int t = k == 0ull ? 0 : (int)(0xffffffffu - (u32)(k & 0xffffffffull));
        next[0] = t;
        tokens[0] = t;
        row_pos[0] = min(row_pos[0] + 1, MAX_SEQ - 1);
        *epoch = ep + 1;
        const int i = *hctr;
        if ((unsigned)i < (unsigned)rows) hist[i] = t;
        *hctr = i + 1;
    }
}
#endif  // MK
