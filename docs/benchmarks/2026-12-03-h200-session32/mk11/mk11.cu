// Session 32 probe mk11 = mk10 (the race-fixed probe) made engine-shaped, the first step of issue #11's engine
// integration: the step's token, position, KV slot and epoch come from a device metadata block (tok, pos, slot,
// epoch) instead of kernel arguments, so one captured graph can be replayed; a one-thread `mk_adv` launch after each
// step does what the engine's argmax + advance do (next token from the on-GPU argmax key, position + 1, epoch + 1);
// the KV cache is the engine's (layers, slots, n_kv, max_seq, head_dim) with SLOTS = 2 (the step uses slot 1; slot 0
// holds other data); RoPE comes from cos / sin tables (max_seq, head_dim / 2) as the engine's, not sincosf.
// Timings therefore include the mk_adv launch between steps, as the engine's would include its argmax + advance.
//
// Session 32 probe mk10 = session 31's mk9 (docs/benchmarks/2026-12-03-h200-session31/mk9/mk9.cu) + THE RACE FIX
// (PFX=4, the default) + switches and diagnostics added this session:
//  - The race (calls 1-5): ptxas issues a consumer warp's mbarrier arrive on a ring slot's "empty" barrier right after
//    the slot's LDS.128s are issued, before their data return (SASS: LDS.128 x4, NOP, SYNCS.ARRIVE, then the HMMAs;
//    an explicit .release on the arrive compiles the same). The loader's next cp.async.bulk into that slot can then
//    land while the loads are in flight: a few rows of a tile read the next chunk's weights. Per PTX the generic-proxy
//    reads and the async-proxy writes need a proxy fence anyway. Seen only under skew (POLL1=0 + per-chunk timers:
//    0 of 20 repeats bitwise equal, a few SwiGLU values of layer 0 wrong in groups of 4 rows); latent in every build.
//    PFX=4 (default): fence.acq_rel.cta before the arrive (ptxas puts its MEMBAR.ALL.CTA after the chunk's HMMAs):
//    50 / 50 in three racing configurations, 706-708 us a step against 700 racy (call 8). PFX=1 (fence.proxy.async:
//    MEMBAR + FENCE.VIEW.ASYNC before the HMMAs): 714-719 us. PFX=3 (free each slot one wait later): 726 us.
//  - QKS (qkv split-K, 2 / 4 items a tile): 732 / 790 us, lost. CBAR (consumer barrier forms): no effect on the race.
//  - Diagnostics: the determinism repeats print where a differing repeat first differs (layer; K / V row, h after o,
//    h after the ffn); DBGA / DBGB (the SwiGLU values written and read, per block); PROFL / PROFC (which PROF=2 timers).
//
// Session 31 probe (issue #11, fp16 bs1): the whole one-row decode step of the TinyLlama-1.1B shape as ONE persistent
// launch, v9 of session 30's megakernel (docs/benchmarks/2026-12-03-h200-session30/mk/mk.cu, whose best variant is the
// base here: tensor-core chunks, the schedule in shared memory, 16 attention chunks a kv head).
//
// What v9 changes, from session 30's profile (41 % of warp samples waiting behind the dependency spin; each op a chain
// of spin -> staging read -> tiles -> barrier -> fence + count; the fence's cost grew with the SM's traffic in flight):
//  1. TAGGED DATA instead of counters and fences. Every activation a later op reads (h after o, h after down, q, the new
//     K / V row, the attention output, the SwiGLU vector) is written as one 64-bit word (f32 value, 32-bit tag =
//     epoch * 32 + layer) by a single relaxed store, and read by relaxed 64-bit loads that retry the words whose tag is
//     not the current one. The reader's staging load IS the wait: one L2 round trip instead of poll + staging, and no
//     release fence on the writer's side (single-copy atomicity of an aligned 64-bit word carries the value and its
//     validity together). Residual adds are done by the owner of the rows (o and down are full-K tiles, the down tile
//     is 16 rows x 5,632), so no red.add and no split-K. Only the attention's merge keeps a counter (its records).
//  2. EW=1: an epilogue warp. Consumer warps write a tile's per-warp partials into one of NPB buffers and arrive on an
//     mbarrier; they never wait for each other at a tile's end. The epilogue warp sums the partials and runs the
//     epilogue (RoPE + KV, residual, SwiGLU, logits + argmax). EW=0: session 30's pattern (a barrier a tile, warp 0's
//     lanes < 16 run the epilogue).
//  3. Tiles handed out at run time by ticket (DGU: gate/up; DHEAD: the head): the loader lane takes the next tile with an
//     atomicAdd on a per-(op, layer) counter (never reset: a launch takes ntiles + G tickets of each), tags its ring slots
//     with the tile and ends the run with a data-less sentinel slot; consumers and the epilogue warp follow the tags.
//     GRAB_AT=1: the next ticket is taken after the current tile's chunk 1. Balances the streaming ops' tails.
//  4. ATTACQ: the attention's merge count as one atom.acq_rel instead of fence.sc + atomicAdd + fence.sc.
// Defaults are the session's best measured variant (call 12: 700.3-700.7 us a step; engine 731 in the same call).
// Measured and kept as switches (each a loss, see the session's README): TREC (tagged attention records merged by
// polling), PFG / PFT (gate/up chunks into L2 ahead), DRING / NSA (two rings), DQKV (qkv tiles by ticket), PPOLL,
// POLLNS. Diagnostics: NOWAIT, PROF, TRACE.
// Everything else as session 30's v8: one block an SM, a loader lane streaming 16 KB chunks (16 rows x 512 k, in mma
// A-fragment order) into an NSLOT ring, NCW consumer warps, a host-built byte-balanced schedule, the next token from
// the on-GPU argmax, every wait bounded by a 2 s timeout that traps with an error code.
// Checked against a plain f32 reference in this file (one kernel per op): logits of one step, the same step three more
// times (bitwise equal unless something races), 16 greedy steps.
//
// Build: nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v mk10.cu -o mk10; run: ./mk10 (no arguments).
// Switches: -DEW, -DNPB, -DNSLOT, -DACH, -DXAREA, -DDGU, -DDHEAD, -DDQKV, -DGRAB_AT, -DATTACQ, -DAP4, -DPOLL1,
// -DPOLL1MIN, -DTREC, -DPFG, -DPFT, -DDRING, -DNSA, -DPPOLL, -DPOLLNS, -DPROF=1 (run-level globaltimer sums) / 2 (also
// each chunk's ring waits), -DTRACE=1 (per block / op / layer stamps of 5 launches, the span table), -DNOWAIT=1.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <type_traits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
constexpr int SLOTS = 2, SLOT_USED = 1;  // the engine-shaped KV cache: (NL, SLOTS, NKV, MAXP, HD)
constexpr int QKVN = (NH + 2 * NKV) * HD;  // 2560
constexpr int CKK = 512;                   // k per chunk
constexpr int CHH = 16 * CKK;              // halves per chunk
constexpr int CHB = CHH * 2;               // 16,384 bytes
#ifndef NCW
#define NCW 8
#endif
#ifndef NSLOT
#define NSLOT 12
#endif
#ifndef ACH
#define ACH 20
#endif
#ifndef EW
#define EW 1
#endif
#ifndef NPB
#define NPB 4
#endif
#ifndef PROF
#define PROF 0
#endif
#ifndef XAREA
#define XAREA 16384
#endif
#ifndef NOWAIT
#define NOWAIT 0  // diagnostic: readers take the first value they load, fresh or not (wrong results: the streaming ceiling)
#endif
#ifndef TRACE
#define TRACE 0  // per (block, op, layer): run start, staging done, run end (consumer thread 0), last epilogue (epilogue warp)
#endif
#ifndef TREC
#define TREC 0  // the attention records tagged, merged by the kv head's last chunk polling them (0: fence + count, the last
                // item to count merges)
#endif
#ifndef DGU
#define DGU 1  // gate/up tiles handed out at run time: each block's loader takes the next tile by ticket (an atomicAdd one tile
               // ahead), tags the ring slots with the tile, and ends the run with a sentinel slot (needs EW=1)
#endif
#ifndef POLL1
#define POLL1 1  // stagings of >= 8 values a thread: one word a warp polled first (less L2 polling traffic while waiting)
#endif
#ifndef PFG
#define PFG 0  // > 0: when the loader reaches a layer's gate/up (static: its first GU entry; DGU: PFT tickets taken early, at
               // the layer's first non-qkv entry), it prefetches that many of the block's gate/up chunks into L2
#endif
#ifndef PFT
#define PFT 2  // DGU + PFG: gate/up tiles a block takes (by ticket) ahead, at the layer's first non-qkv entry
#endif
#ifndef POLL1MIN
#define POLL1MIN 8  // POLL1 for stagings of at least this many values a thread (8: h / ao / act; 16: act only)
#endif
#ifndef GRAB_AT
#define GRAB_AT 1  // DGU: the loader takes its next ticket before chunk 0 of the current tile (-1) or after chunk GRAB_AT
#endif
#ifndef AP4
#define AP4 0  // the attention's P.V with four independent accumulator pairs
#endif
#ifndef ATTACQ
#define ATTACQ 1  // the attention's count as one atom.acq_rel instead of fence + atomicAdd + fence
#endif
#ifndef RECFENCE
#define RECFENCE 0  // NOT RUN (session 31 ended without device time): every thread that wrote an attention record fences
                    // before the block barrier, instead of relying on thread 0's fence covering the other warps'
                    // stores; the first bisect step for the race in the README ("Open: a race")
#endif
#ifndef QKS
#define QKS 1  // qkv split-K: each 16-row qkv tile as QKS items of KC_H / QKS chunks (1, 2 or 4); the parts' partial sums
               // are tagged words of their own (RoPE and the q scale are linear, so each part applies them), summed by
               // the attention, whose item with the newest row also writes the K / V cache row
#endif
#ifndef DBGA
#define DBGA 0  // diagnostic: each layer's SwiGLU values as written (plain copy), and an XOR of the bits each block's down
                // staging read (act) and gate/up staging read (h after o); the host compares them (race hunt)
#endif
#ifndef DBGB
#define DBGB 0  // diagnostic (with DBGA): the SwiGLU copy fenced before its tagged store; each down staging compares what
                // it read with the copy and logs mismatches (layer, block, index, read, written, the word re-read)
#endif
#ifndef PROFL
#define PROFL 1  // PROF >= 2: the loader's free-slot waits timed (0: not)
#endif
#ifndef PROFC
#define PROFC 1  // PROF >= 2: consumer thread 0's chunk waits timed (0: not)
#endif
#ifndef PFX
#define PFX 4  // the race fix (default 4, see below). 1 = fence.proxy.async before a consumer warp frees a ring slot; 2 = __syncwarp after the
               // full-slot wait, before the slot is read. The race (session 32, calls 2-5): ptxas issues the consumer
               // warp's mbarrier arrive on the slot's empty barrier right after the slot's LDS.128s, before their data
               // return (SASS: LDS.128 x4, NOP, SYNCS.ARRIVE, then the HMMAs), so the loader's next cp.async.bulk can
               // overwrite the slot while they are in flight. PFX=1 adds MEMBAR.ALL.CTA + FENCE.VIEW.ASYNC.S there.
               // PFX=3: each slot freed one step later, after the next wait loop (the next chunk's full wait, or for
               // a tile's last chunk the partial buffer's free wait): the HMMAs that consume the slot's LDS data are
               // issued before that loop, so the data are in registers when the arrive issues.
               // PFX=4: fence.acq_rel.cta (MEMBAR.ALL.CTA alone) before the arrive. PFX=5: lane 0's arrive predicated
               // on its last HMMA's accumulator (never the bit pattern 0xffffffff: the tensor cores' NaN is 0x7fffffff),
               // so it issues only once the HMMAs, hence the slot's LDS data, are done. (An explicit
               // mbarrier.arrive.release.cta compiles to the same SASS as the default: no wait.)
#endif
#ifndef CBAR
#define CBAR 0  // the consumer barrier: 0 bar.sync, 1 __syncwarp + bar.sync, 2 barrier.sync (non-aligned); see cbar()
#endif
#ifndef PPOLL
#define PPOLL 0  // 1: stagings of <= 8 values a thread keep two rounds of loads in flight (faster detection, more L2 traffic)
#endif
#ifndef POLLNS
#define POLLNS 0  // > 0: __nanosleep(POLLNS) between a staging's retry rounds (less L2 polling traffic)
#endif
constexpr int NPROF = 12;
constexpr int NCT = NCW * 32;                  // consumer threads
#ifndef DRING
#define DRING 0  // 1: two rings, each with its own loader lane: slots [0, NSA) for qkv / o (the latency ops), the rest for
                 // gate/up, down and the head (the streaming ops), so the next layer's qkv loads while down's tile waits
#endif
#ifndef NSA
#define NSA 4
#endif
constexpr int NTH = NCT + 32 + (EW ? 32 : 0) + (DRING ? 32 : 0);  // + loader warp (+ epilogue warp) (+ ring A's loader)
constexpr int W_LOAD = NCW, W_EPI = NCW + 1, W_LOADA = NCW + 2;
static_assert(!DRING || (EW && NSA > 0 && NSA < NSLOT), "DRING: EW=1, 0 < NSA < NSLOT");
static_assert(NCW == 8, "the staging's per-thread counts assume 256 consumer threads");
static_assert(EW || NPB == 2, "EW=0 alternates two partial buffers");
#ifndef DQKV
#define DQKV 0  // qkv tiles by ticket as DGU's gate/up tiles
#endif
#ifndef DHEAD
#define DHEAD 1  // the head's tiles by ticket as DGU's gate/up tiles
#endif
static_assert(!(DGU || DQKV || DHEAD) || EW, "tiles by ticket pass tile numbers to the epilogue warp");
static_assert(GRAB_AT >= -1 && GRAB_AT <= 2, "GRAB_AT: before chunk 0 (-1) or after chunk 0..2");
constexpr int T_QKV = QKVN / 16, T_ATT = NKV * ACH, T_O = H / 16, T_GU = INTER / 8, T_DN = H / 16, T_HEAD = VOC / 16;
constexpr int KC_H = H / CKK, KC_I = INTER / CKK;  // 4, 11
enum { OP_QKV = 0, OP_ATT = 1, OP_O = 2, OP_GU = 3, OP_DN = 4, OP_HEAD = 5 };
__host__ __device__ constexpr bool in_a(int op) { return DRING && (op == OP_QKV || op == OP_O); }
// Ops whose tiles are handed out at run time by ticket (loader -> ring slot -> consumers -> partial buffer -> epilogue).
__host__ __device__ constexpr bool dyn(int op) { return (DGU && op == OP_GU) || (DQKV && op == OP_QKV) || (DHEAD && op == OP_HEAD); }
static_assert(QKS == 1 || QKS == 2 || QKS == 4, "QKS: 1, 2 or 4");
static_assert(PFX != 3 || EW, "PFX=3 frees a tile's last slot after the partial buffer's wait (EW=1)");
static_assert(QKS == 1 || (!DQKV && !TREC), "QKS > 1: static qkv items, untagged records");
constexpr int KC_Q = KC_H / QKS;  // chunks of a qkv item
__host__ __device__ constexpr int ntiles(int op) { return op == OP_GU ? T_GU : op == OP_QKV ? T_QKV : T_HEAD; }
struct Rg {  // a ring's cursor: slot in [s0, s1), phase parity
    int slot;
    u32 ph;
    int s0, s1;
    __device__ void adv() {
        if (++slot == s1) slot = s0, ph ^= 1;
    }
};
// Shared memory: ring | x area | mbarriers | partial buffers + misc | schedule.
constexpr int MAXE = 512;  // schedule entries per block
constexpr int SM_RING = 0, SM_X = NSLOT * CHB, SM_BAR = SM_X + XAREA, SM_MISC = SM_BAR + 2 * (NSLOT + NPB) * 8;
constexpr int SM_SCHED = SM_MISC + NPB * NCW * 16 * 4 + 256;  // misc: partials, redb (NCW), flag, slot tiles (NSLOT), meta (NPB)
static_assert(NCW + 1 + NSLOT + NPB <= 64, "misc area");
constexpr int SMEM = SM_SCHED + MAXE * 4;

struct Args {
    const h16 *wqkv, *wo, *wgu, *wdn, *whead;  // packed chunks
    const h16* emb;                            // (VOC, H)
    const float *nattn, *nffn, *nfinal;        // (NL, H), (NL, H), (H)
    h16 *kc, *vc;                              // (NL, SLOTS, NKV, MAXP, HD)
    int* meta;                                 // tok, pos, slot, epoch of this step (mk_adv advances it)
    const float *rcos, *rsin;                  // RoPE tables (MAXP, HD / 2)
    // Tagged words (f32 value | tag << 32). hx: (NL + 1, H) layer inputs (hx[0] unused: the embedding row), hm: (NL, H)
    // after o; qt (H), kvt (NKV, 128: k then v), aot (H), actt (INTER), reused by every layer (tag = epoch * 32 + l).
    u64 *hx, *hm, *qt, *kvt, *aot, *actt;
    float *part, *logits;  // attention records (NH, ACH, 68), logits (VOC)
    u64* prt;              // TREC: tagged attention records (NH, ACH, 66): max, sum, 64 accumulators
    int* gctr;             // tickets (6 ops x NL), never reset: each launch takes ntiles(op) + G of each it uses
    int* ctr;              // attention merge counters (NL, NKV)
    u64* best;             // 3 argmax keys, slot epoch % 3
    const int* sched;      // (G, MAXE) entries
    const int* nsched;     // (G)
    int pos, epoch, tok;   // tok < 0: the previous step's argmax
    int* err;
    u64* prof;
    u32* dbg;    // DBGA: (NL, INTER + 2 G): act as written, per block XOR of act read by down, of hm read by gate/up
    u64* trace;  // TRACE: (G, 6 ops, NL, 4) globaltimer stamps of the launch (see TRACE)
};

__device__ __forceinline__ u32 smem_u32(const void* p) { return (u32)__cvta_generic_to_shared(p); }
__device__ __forceinline__ void mbar_init(u32 bar, u32 n) { asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(n) : "memory"); }
__device__ __forceinline__ void mbar_expect(u32 bar, u32 bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(u32 bar) { asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory"); }
// Returns once the phase of parity `parity` has completed (a fresh barrier counts its parity-1 phase as completed).
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
// The consumer warps' barrier. CBAR 0: bar.sync (= barrier.sync.aligned: every thread of a warp must execute it
// together, undefined if the warp arrives diverged); 1: __syncwarp() first, then bar.sync; 2: barrier.sync (not aligned:
// per-thread arrival, allowed in divergent code).
__device__ __forceinline__ void cbar() {
    if (CBAR == 2) {
        asm volatile("barrier.sync 1, %0;" ::"r"(NCT) : "memory");
    } else {
        if (CBAR == 1) __syncwarp();
        asm volatile("bar.sync 1, %0;" ::"r"(NCT) : "memory");
    }
}
__device__ __forceinline__ u64 gtime() {
    u64 t;
    asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
    return t;
}
__device__ __forceinline__ void tstamp(const Args& a, int op, int l, int k) {
    if (TRACE) a.trace[(((size_t)blockIdx.x * 6 + op) * NL + l) * 4 + k] = gtime();
}
__device__ __forceinline__ void fail(int* err, int code) {
    atomicExch(err, code);
    __trap();
}
// Tagged words.
__device__ __forceinline__ u64 ld_rlx(const u64* p) {
    u64 v;
    asm volatile("ld.relaxed.gpu.global.b64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void st_tag(u64* p, float v, u32 tag) {
    const u64 w = ((u64)tag << 32) | (u64)__float_as_uint(v);
    asm volatile("st.relaxed.gpu.global.b64 [%0], %1;" ::"l"(p), "l"(w) : "memory");
}
__device__ __forceinline__ bool fresh(u64 w, u32 tag) { return (u32)(w >> 32) == tag; }
__device__ __forceinline__ float tval(u64 w) { return __uint_as_float((u32)w); }
// One tagged value, waited for (2 s: error + trap).
__device__ float poll1(const u64* p, u32 tag, int* err, int code) {
    u64 w = ld_rlx(p);
    if (NOWAIT || fresh(w, tag)) return tval(w);
    const u64 t0 = gtime();
    for (;;) {
        w = ld_rlx(p);
        if (fresh(w, tag)) return tval(w);
        if (gtime() - t0 > 2000000000ull) fail(err, code);
    }
}
// N tagged values at addr(i) (N <= 64), all loads in flight at once, then the stale ones again until all are fresh.
template <int N, class AF>
__device__ __forceinline__ void polla(AF addr, float (&out)[N], u32 tag, int* err, int code) {
    using M = typename std::conditional<(N > 32), u64, u32>::type;  // the stale words' mask
    u64 w[N];
#pragma unroll
    for (int i = 0; i < N; i++) w[i] = ld_rlx(addr(i));
    M st = 0;
#pragma unroll
    for (int i = 0; i < N; i++) st |= (NOWAIT || fresh(w[i], tag)) ? M(0) : (M(1) << i);
    u64 t0 = 0;
    while (st) {
        const u64 t = gtime();
        if (t0 == 0) t0 = t;
        else if (t - t0 > 2000000000ull) fail(err, code);
        if (POLLNS > 0) __nanosleep(POLLNS);
#pragma unroll
        for (int i = 0; i < N; i++)
            if (st >> i & M(1)) w[i] = ld_rlx(addr(i));
        st = 0;
#pragma unroll
        for (int i = 0; i < N; i++) st |= fresh(w[i], tag) ? M(0) : (M(1) << i);
    }
#pragma unroll
    for (int i = 0; i < N; i++) out[i] = tval(w[i]);
}
// N tagged values p[i * stride], all loads in flight at once, then the stale ones again (together) until all are fresh.
template <int N>
__device__ __forceinline__ void polln(const u64* p, int stride, float (&out)[N], u32 tag, int* err, int code) {
    if (POLL1 && N >= POLL1MIN) {  // lane 0 spins on one word of the warp's (its lane 31's last) before the warp loads all of them
        if ((threadIdx.x & 31) == 0) (void)poll1(p + 31 + (size_t)(N - 1) * stride, tag, err, code);
        __syncwarp();
    }
    if (PPOLL && N <= 8) {  // two rounds of all N loads in flight: a new round is issued before the last one is checked
        u64 w[N], w2[N];
#pragma unroll
        for (int i = 0; i < N; i++) w[i] = ld_rlx(p + (size_t)i * stride);
        const u64 t0 = gtime();
        for (;;) {
#pragma unroll
            for (int i = 0; i < N; i++) w2[i] = ld_rlx(p + (size_t)i * stride);
            bool ok = true;
#pragma unroll
            for (int i = 0; i < N; i++) ok &= NOWAIT || fresh(w[i], tag);
            if (ok) break;
#pragma unroll
            for (int i = 0; i < N; i++) w[i] = ld_rlx(p + (size_t)i * stride);
            ok = true;
#pragma unroll
            for (int i = 0; i < N; i++) ok &= fresh(w2[i], tag);
            if (ok) {
#pragma unroll
                for (int i = 0; i < N; i++) w[i] = w2[i];
                break;
            }
            if (gtime() - t0 > 2000000000ull) fail(err, code);
        }
#pragma unroll
        for (int i = 0; i < N; i++) out[i] = tval(w[i]);
        return;
    }
    polla<N>([&](int i) { return p + (size_t)i * stride; }, out, tag, err, code);
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
__device__ __forceinline__ int ent_nch(int op) { return op == OP_ATT ? 0 : op == OP_DN ? KC_I : op == OP_QKV ? KC_Q : KC_H; }
// Global address of chunk c of entry (op, l, t).
__device__ __forceinline__ const h16* chunk_ptr(const Args& a, int op, int l, int t, int c) {
    switch (op) {
        case OP_QKV: return a.wqkv + ((size_t)(l * T_QKV + t / QKS) * KC_H + (t % QKS) * KC_Q + c) * CHH;
        case OP_O: return a.wo + ((size_t)(l * T_O + t) * KC_H + c) * CHH;
        case OP_GU: return a.wgu + ((size_t)(l * T_GU + t) * KC_H + c) * CHH;
        case OP_DN: return a.wdn + ((size_t)(l * T_DN + t) * KC_I + c) * CHH;
        default: return a.whead + ((size_t)t * KC_H + c) * CHH;
    }
}
__device__ __forceinline__ float rope_inv(int d) { return exp2f(-(2.f * d / HD) * 13.287712379549449f); }  // 10000^(-2d/64)
__device__ __forceinline__ u64 argkey(float v, int idx) {
    u32 b = __float_as_uint(v);
    b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
    return ((u64)b << 32) | (u64)(0xffffffffu - (u32)idx);
}
__device__ __forceinline__ u32 tagof(int epoch, int l) { return (u32)epoch * 32u + (u32)l; }

// The epilogue of tile t of (op, l), row r = the calling lane (< 16); Y(r) sums the NCW warps' partials of row r.
// Lanes 0..15 of one warp call it together (the head's argmax reduces over them).
template <class YF>
__device__ __forceinline__ void epilogue(const Args& a, int PS, int EP, int SL, int op, int l, int t, int r, const h16* erow, YF Y) {
    const u32 tg = tagof(EP, l);
    if (op == OP_QKV) {
        const int part = t % QKS;
        t /= QKS;
        u64* qt = a.qt + part * H;
        u64* kvt = a.kvt + part * NKV * 128;
        if (t < T_QKV - 16) {  // q or k: RoPE pairs (r, r + 8)
            const bool isq = t < NH * 4;
            const int hh = isq ? t / 4 : (t - NH * 4) / 4, d0 = (t % 4) * 8;
            if (r < 8) {
                const int d = d0 + r;
                const float sn = a.rsin[PS * (HD / 2) + d], cs = a.rcos[PS * (HD / 2) + d];
                const float x1 = Y(r), x2 = Y(r + 8);
                const float y1 = x1 * cs - x2 * sn, y2 = x2 * cs + x1 * sn;
                if (isq) {
                    st_tag(qt + hh * 64 + d, y1 * 0.125f, tg);
                    st_tag(qt + hh * 64 + d + 32, y2 * 0.125f, tg);
                } else if (QKS > 1) {  // partial sums: the attention sums the parts and writes the cache row
                    st_tag(kvt + hh * 128 + d, y1, tg);
                    st_tag(kvt + hh * 128 + d + 32, y2, tg);
                } else {
                    const h16 k1 = __float2half(y1), k2 = __float2half(y2);
                    h16* kr = a.kc + ((size_t)((l * SLOTS + SL) * NKV + hh) * MAXP + PS) * HD;
                    kr[d] = k1;
                    kr[d + 32] = k2;
                    st_tag(a.kvt + hh * 128 + d, __half2float(k1), tg);
                    st_tag(a.kvt + hh * 128 + d + 32, __half2float(k2), tg);
                }
            }
        } else {
            const int vt = t - (T_QKV - 16), vh = vt / 4, d = (vt % 4) * 16 + r;
            if (QKS > 1) {
                st_tag(kvt + vh * 128 + 64 + d, Y(r), tg);
            } else {
                const h16 v = __float2half(Y(r));
                a.vc[((size_t)((l * SLOTS + SL) * NKV + vh) * MAXP + PS) * HD + d] = v;
                st_tag(kvt + vh * 128 + 64 + d, __half2float(v), tg);
            }
        }
    } else if (op == OP_O) {  // h after o = the layer's input + y
        const int row = t * 16 + r;
        const float hin = l == 0 ? __half2float(erow[row]) : poll1(a.hx + (size_t)l * H + row, tg, a.err, 11);
        st_tag(a.hm + (size_t)l * H + row, hin + Y(r), tg);
    } else if (op == OP_GU) {
        if (r < 8) {
            const float gg = Y(r), uu = Y(r + 8);
            const float av = gg / (1.f + __expf(-gg)) * uu;
            st_tag(a.actt + t * 8 + r, av, tg);
            if (DBGA) a.dbg[(size_t)l * (INTER + 2 * gridDim.x) + t * 8 + r] = __float_as_uint(av);
            if (DBGB) __threadfence();
        }
    } else if (op == OP_DN) {  // the next layer's input = h after o + y
        const int row = t * 16 + r;
        const float hmv = poll1(a.hm + (size_t)l * H + row, tg, a.err, 12);
        st_tag(a.hx + (size_t)(l + 1) * H + row, hmv + Y(r), tagof(EP, l + 1));
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
        if (r == 0) atomicMax(a.best + EP % 3, key);
    }
}

__global__ void __launch_bounds__(NTH, 1) mk_step(const Args a) {
    extern __shared__ __align__(128) unsigned char sm[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, tid = threadIdx.x;
    const int4 mt = *(const int4*)a.meta;  // this step's token, position, KV slot, epoch (written by earlier launches)
    const int PS = mt.y, SL = mt.z, EP = mt.w;
    const u32 bars = smem_u32(sm + SM_BAR);
    auto full = [&](int s) { return bars + 8 * s; };
    auto empty = [&](int s) { return bars + 8 * (NSLOT + s); };
    auto pfull = [&](int b) { return bars + 8 * (2 * NSLOT + b); };
    auto pempty = [&](int b) { return bars + 8 * (2 * NSLOT + NPB + b); };
    const int ne = a.nsched[blockIdx.x];
    {
        int* ss = (int*)(sm + SM_SCHED);
        const int* gs = a.sched + blockIdx.x * MAXE;
        for (int i = threadIdx.x; i < ne; i += NTH) ss[i] = gs[i];
    }
    const int* sched = (const int*)(sm + SM_SCHED);  // made visible by the __syncthreads below
    if (tid == 0) {
        for (int s = 0; s < NSLOT; s++) {
            mbar_init(full(s), 1);
            mbar_init(empty(s), NCW);
        }
        for (int b = 0; b < NPB; b++) {
            mbar_init(pfull(b), NCW);
            mbar_init(pempty(b), 1);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        if (blockIdx.x == 0) a.best[(EP + 1) % 3] = 0ull;
    }
    __syncthreads();
    const int ep = EP;
    const int tok = mt.x;
    const h16* erow = a.emb + (size_t)tok * H;
    float* ysb = (float*)(sm + SM_MISC);  // NPB x NCW x 16 tile partials
    float* redb = ysb + NPB * NCW * 16;   // NCW partial sums
    int* flag = (int*)(redb + NCW);       // broadcast
    int* slot_t = flag + 1;               // DGU: the gate/up tile of each ring slot (-1: the run's end)
    int* meta = slot_t + NSLOT;           // DGU: the tile of each partial buffer (-1: the run's end)
    if (warp == W_LOAD || (DRING && warp == W_LOADA)) {  // the loader lane(s)
        if (lane == 0) {
            const int ring = DRING ? (warp == W_LOADA ? 0 : 1) : -1;  // -1: one ring for every op
            const int s0 = ring == 1 ? NSA : 0, s1 = ring == 0 ? NSA : NSLOT;
            int slot = s0;
            u32 ph = 0;
            u64 lt0 = PROF ? gtime() : 0, lw = 0;
            int pre[PFT > 0 ? PFT : 1], npre = 0, pre_l = -1;  // DGU + PFG: early tickets of layer pre_l
            for (int e = 0; e < ne; e++) {
                const int en = sched[e], op = ent_op(en), l = ent_l(en), t = ent_t(en);
                const int nch = ent_nch(op);
                if (ring >= 0 && (ring == 0) != in_a(op)) continue;  // the other ring's op
                if (PFG > 0 && DGU && op != OP_QKV && op != OP_HEAD && l != pre_l) {  // early tickets + their L2 prefetch
                    pre_l = l;
                    const int base = (EP - 1) * (T_GU + (int)gridDim.x);
                    npre = 0;
                    for (int i = 0; i < PFT; i++) {
                        const int tt = atomicAdd(a.gctr + OP_GU * NL + l, 1) - base;
                        if (tt >= T_GU) break;
                        pre[npre++] = tt;
                    }
                    int n = 0;
                    for (int i = 0; i < npre; i++)
                        for (int c = 0; c < KC_H && n < PFG; c++, n++) pf_l2(chunk_ptr(a, OP_GU, l, pre[i], c), CHB);
                    if (npre < PFT) npre |= 256;  // the tickets ran out: no more grabs this layer
                }
                if (dyn(op)) {
                    const int TT = ntiles(op);
                    const int base = (EP - 1) * (TT + (int)gridDim.x);
                    const bool gu = op == OP_GU;
                    const bool out = gu && PFG > 0 && (npre & 256);
                    const int np = gu && PFG > 0 ? (npre & 255) : 0;
                    int ip = 0;
                    int* ctr = a.gctr + op * NL + l;
                    auto grab = [&]() { return ip < np ? pre[ip++] : out ? TT : atomicAdd(ctr, 1) - base; };
                    int tt = grab();
                    while (tt < TT) {
                        int tn = GRAB_AT < 0 ? grab() : TT;  // one ticket ahead: its round trip under the copies
                        for (int c = 0; c < KC_H; c++) {
                            if (GRAB_AT >= 0 && c == GRAB_AT + 1) tn = grab();
                            mbar_wait(empty(slot), ph ^ 1);
                            slot_t[slot] = tt;
                            mbar_expect(full(slot), CHB);
                            bulk_g2s(smem_u32(sm + SM_RING + slot * CHB), chunk_ptr(a, op, l, tt, c), CHB, full(slot));
                            if (++slot == s1) slot = s0, ph ^= 1;
                        }
                        tt = tn;
                    }
                    mbar_wait(empty(slot), ph ^ 1);  // the run's end: a slot with no data
                    slot_t[slot] = -1;
                    mbar_arrive(full(slot));
                    if (++slot == s1) slot = s0, ph ^= 1;
                    continue;
                }
                if (PFG > 0 && !DGU && op == OP_GU && (e == 0 || (sched[e - 1] & 0xff) != (en & 0xff))) {
                    int n = 0;
                    for (int e2 = e; e2 < ne && (sched[e2] & 0xff) == (en & 0xff) && n < PFG; e2++)
                        for (int c = 0; c < KC_H && n < PFG; c++, n++) pf_l2(chunk_ptr(a, op, l, ent_t(sched[e2]), c), CHB);
                }
                for (int c = 0; c < nch; c++) {
                    if (PROF >= 2 && PROFL) {
                        const u64 w0 = gtime();
                        mbar_wait(empty(slot), ph ^ 1);
                        lw += gtime() - w0;
                    } else {
                        mbar_wait(empty(slot), ph ^ 1);
                    }
                    mbar_expect(full(slot), CHB);
                    bulk_g2s(smem_u32(sm + SM_RING + slot * CHB), chunk_ptr(a, op, l, t, c), CHB, full(slot));
                    if (++slot == s1) slot = s0, ph ^= 1;
                }
            }
            if (PROF && ring != 0) {
                atomicAdd(a.prof + blockIdx.x * NPROF + 5, gtime() - lt0);
                atomicAdd(a.prof + blockIdx.x * NPROF + 6, lw);
            }
        }
        return;
    }
    if (EW && warp == W_EPI) {  // the epilogue warp: every non-attention entry, in schedule order
        int nt = 0;
        u64 et0 = PROF ? gtime() : 0, ewt = 0;
        for (int e = 0; e < ne; e++) {
            const int en = sched[e], op = ent_op(en), l = ent_l(en), t = ent_t(en);
            if (op == OP_ATT) continue;
            if (dyn(op)) {  // tiles as the consumers pass them, until the sentinel
                for (;;) {
                    const int b = nt % NPB;
                    mbar_wait(pfull(b), (nt / NPB) & 1);
                    const int tt = meta[b];
                    const float* pb = ysb + b * NCW * 16;
                    if (tt >= 0 && lane < 16)
                        epilogue(a, PS, EP, SL, op, l, tt, lane, erow, [&](int r) {
                            float v = 0.f;
#pragma unroll
                            for (int w = 0; w < NCW; w++) v += pb[w * 16 + r];
                            return v;
                        });
                    __syncwarp();
                    if (lane == 0) mbar_arrive(pempty(b));
                    nt++;
                    if (tt < 0) break;
                }
                if (TRACE && lane == 0) tstamp(a, op, l, 3);
                continue;
            }
            const int b = nt % NPB;
            if (PROF && lane == 0) {
                const u64 w0 = gtime();
                mbar_wait(pfull(b), (nt / NPB) & 1);
                ewt += gtime() - w0;
            } else {
                mbar_wait(pfull(b), (nt / NPB) & 1);
            }
            const float* pb = ysb + b * NCW * 16;
            if (lane < 16)
                epilogue(a, PS, EP, SL, op, l, t, lane, erow, [&](int r) {
                    float v = 0.f;
#pragma unroll
                    for (int w = 0; w < NCW; w++) v += pb[w * 16 + r];
                    return v;
                });
            __syncwarp();
            if (lane == 0) mbar_arrive(pempty(b));
            if (TRACE && lane == 0 && (e + 1 == ne || (sched[e + 1] & 0xff) != (en & 0xff))) tstamp(a, op, l, 3);
            nt++;
        }
        if (PROF && lane == 0) {
            atomicAdd(a.prof + blockIdx.x * NPROF + 10, gtime() - et0);
            atomicAdd(a.prof + blockIdx.x * NPROF + 11, ewt);
        }
        return;
    }
    // Consumers.
    h16* xh = (h16*)(sm + SM_X);  // the staged x (f16)
    Rg RA{0, 0u, 0, DRING ? NSA : NSLOT}, RB{DRING ? NSA : 0, 0u, DRING ? NSA : 0, NSLOT};  // without DRING: RB unused
    int nt = 0;
    u64 pt0 = PROF ? gtime() : 0, p_stage = 0, p_ring = 0, p_epi = 0, p_att = 0, p_tile = 0, p_poll = 0;
    auto pstamp = [&]() -> u64 { return (PROF && tid == 0) ? gtime() : 0ull; };
    // x = rmsnorm(v) * w: v tagged (src) or the embedding row (src == nullptr).
    auto dbg_xor = [&](const float* v, int n, int slot) {  // DBGA: XOR of the bits of the values read, into dbg[slot]
        u32 x = 0;
        for (int i = 0; i < n; i++) x ^= __float_as_uint(v[i]);
#pragma unroll
        for (int o = 16; o; o >>= 1) x ^= __shfl_xor_sync(0xffffffffu, x, o);
        if (lane == 0) atomicXor(a.dbg + slot, x);
    };
    auto stage_norm = [&](const u64* src, u32 tg, const float* w, int dslot = -1) {
        constexpr int N = H / NCT;  // 8
        float v[N];
        const u64 q0 = pstamp();
        if (src) {
            polln<N>(src + tid, NCT, v, tg, a.err, 1);
        } else {
#pragma unroll
            for (int i = 0; i < N; i++) v[i] = __half2float(erow[tid + i * NCT]);
        }
        if (PROF && tid == 0) p_poll += gtime() - q0;
        if (DBGA && dslot >= 0) dbg_xor(v, N, dslot);
        float ss = 0.f;
#pragma unroll
        for (int i = 0; i < N; i++) ss += v[i] * v[i];
        ss = warp_sum(ss);
        if (lane == 0) redb[warp] = ss;
        cbar();
        float tot = 0.f;
#pragma unroll
        for (int i = 0; i < NCW; i++) tot += redb[i];
        const float rs = rsqrtf(tot / H + 1e-5f);
#pragma unroll
        for (int i = 0; i < N; i++) {
            const int k = tid + i * NCT;
            xh[k] = __float2half(v[i] * rs * w[k]);
        }
        cbar();
    };
    // x = v (tagged, n = N * NCT values).
    auto stage_copy = [&](const u64* src, u32 tg, auto nval, int dslot = -1) {
        constexpr int N = decltype(nval)::value;
        float v[N];
        const u64 q0 = pstamp();
        polln<N>(src + tid, NCT, v, tg, a.err, 2);
        if (PROF && tid == 0) p_poll += gtime() - q0;
        if (DBGA && dslot >= 0) dbg_xor(v, N, dslot);
        if (DBGB && dslot >= 0) {
            __threadfence();
            const int l = (dslot - INTER - (int)blockIdx.x) / (INTER + 2 * (int)gridDim.x);
            const u32* wr = a.dbg + (size_t)l * (INTER + 2 * gridDim.x);
#pragma unroll
            for (int i = 0; i < N; i++) {
                const int k = tid + i * NCT;
                const u32 want = __ldcg(wr + k);
                if (__float_as_uint(v[i]) != want) {
                    const int at = atomicAdd(a.dbg + (size_t)NL * (INTER + 2 * gridDim.x), 1);
                    if (at < 64) {
                        u32* e = a.dbg + (size_t)NL * (INTER + 2 * gridDim.x) + 1 + at * 8;
                        const u64 again = ld_rlx(src + k);
                        e[0] = l, e[1] = blockIdx.x, e[2] = k, e[3] = __float_as_uint(v[i]), e[4] = want;
                        e[5] = (u32)again, e[6] = (u32)(again >> 32), e[7] = l > 0 ? __ldcg(wr - (INTER + 2 * gridDim.x) + k) : 0u;
                    }
                }
            }
        }
        cbar();  // every consumer warp is past the previous run's tiles (they read x)
#pragma unroll
        for (int i = 0; i < N; i++) xh[tid + i * NCT] = __float2half(v[i]);
        cbar();
    };
    // One tile: nch chunks from the ring against x; the warps' partials of the 16 rows into buffer nt % NPB.
    auto tile = [&](Rg& R, int nch, int tmeta, int k0 = 0) {
        const int g = lane >> 2, t4 = lane & 3;
        float c[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
        int prev = -1;  // PFX=3: the slot to free after the next wait
        for (int ci = 0; ci < nch; ci++) {
            if (PROF >= 2 && PROFC && tid == 0) {
                const u64 w0 = gtime();
                mbar_wait(full(R.slot), R.ph);
                p_ring += gtime() - w0;
            } else {
                mbar_wait(full(R.slot), R.ph);
            }
            if (PFX == 2) __syncwarp();
            if (PFX == 3 && prev >= 0) {
                __syncwarp();
                if (lane == 0) mbar_arrive(empty(prev));
            }
            const uint4* wc = (const uint4*)(sm + SM_RING + R.slot * CHB);
            const h16* xc = xh + (k0 + ci) * CKK;
#pragma unroll
            for (int j = 0; j < 32 / NCW; j++) {
                const int kt = warp + j * NCW;
                const uint4 av = wc[kt * 32 + lane];
                const u32 b0 = *(const u32*)(xc + kt * 16 + 2 * t4), b1 = *(const u32*)(xc + kt * 16 + 2 * t4 + 8);
                float* cc = c[j & 1];
                asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                             : "+f"(cc[0]), "+f"(cc[1]), "+f"(cc[2]), "+f"(cc[3])
                             : "r"(av.x), "r"(av.y), "r"(av.z), "r"(av.w), "r"(b0), "r"(b1));
            }
            if (PFX == 1) asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
            if (PFX == 4) asm volatile("fence.acq_rel.cta;" ::: "memory");
            if (PFX == 3) {
                prev = R.slot;
            } else if (PFX == 5) {
                __syncwarp();
                if (lane == 0 && __float_as_uint(c[(32 / NCW - 1) & 1][0]) != 0xffffffffu) mbar_arrive(empty(R.slot));
            } else {
                __syncwarp();
                if (lane == 0) mbar_arrive(empty(R.slot));
            }
            R.adv();
        }
        const int b = nt % NPB;
        if (EW) mbar_wait(pempty(b), ((nt / NPB) & 1) ^ 1);  // the epilogue warp is done with this buffer's last use
        if (PFX == 3 && prev >= 0) {
            __syncwarp();
            if (lane == 0) mbar_arrive(empty(prev));
        }
        float* pb = ysb + b * NCW * 16;
        if (t4 == 0) pb[warp * 16 + g] = c[0][0] + c[1][0], pb[warp * 16 + g + 8] = c[0][2] + c[1][2];
        if ((DGU || DQKV || DHEAD) && tid == 0) meta[b] = tmeta;
        if (EW) {
            __syncwarp();
            if (lane == 0) mbar_arrive(pfull(b));
        } else {
            cbar();
        }
        nt++;
    };
    int e = 0;
    while (e < ne) {
        const int en = sched[e], op = ent_op(en), l = ent_l(en);
        const u32 tg = tagof(ep, l);
        // Stage the run's input: the staging's loads are the dependency wait.
        const u64 s0 = pstamp();
        if (TRACE && tid == 0) tstamp(a, op, l, 0);
        if (op == OP_QKV) stage_norm(l == 0 ? nullptr : a.hx + (size_t)l * H, tg, a.nattn + l * H);
        else if (op == OP_O) stage_copy(a.aot, tg, std::integral_constant<int, H / NCT>());
        else if (op == OP_GU) stage_norm(a.hm + (size_t)l * H, tg, a.nffn + l * H, (int)(l * (INTER + 2 * gridDim.x) + INTER + gridDim.x + blockIdx.x));
        else if (op == OP_DN) stage_copy(a.actt, tg, std::integral_constant<int, INTER / NCT>(), (int)(l * (INTER + 2 * gridDim.x) + INTER + blockIdx.x));
        else if (op == OP_HEAD) stage_norm(a.hx + (size_t)NL * H, tagof(ep, NL), a.nfinal);
        else cbar();  // attention: the items overwrite the x area the previous run's tiles read
        if (PROF && tid == 0) p_stage += gtime() - s0;
        if (TRACE && tid == 0 && op != OP_ATT) tstamp(a, op, l, 1);
        const int e_run = e;
        for (; e < ne && (sched[e] & 0xff) == (en & 0xff); e++) {
            const int t = ent_t(sched[e]);
            const u64 a0 = pstamp();
            if (op == OP_ATT) {
                // Item (kv head g, chunk c) over positions [p0, p0 + n): rows < pos from the cache, row pos (this
                // step's, tagged) from kvt; q (tagged) from qt.
                const int g = t / ACH, c = t % ACH, L = PS + 1, CL = (L + ACH - 1) / ACH, p0 = c * CL;
                const int n = max(0, min(CL, L - p0)), nold = max(0, min(n, PS - p0));
                float* qs = (float*)xh;                     // 8 x 64 f32
                u32* ks = (u32*)(qs + 512);                 // n rows, stride 33 words (conflict-free per-lane rows)
                u32* vs = ks + 33 * ((CL + 3) & ~3);        // n rows x 32 words (16-byte aligned)
                float* ss = (float*)(vs + 32 * CL);         // 8 x CL
                const size_t kvb = ((size_t)((l * SLOTS + SL) * NKV + g) * MAXP + p0) * HD;
                for (int i = tid; i < nold * 8; i += NCT) {  // old rows first: they do not wait
                    const int p = i >> 3, j = i & 7;
                    const uint4 kv = __ldcg((const uint4*)(a.kc + kvb + (size_t)p * HD + j * 8));
                    ks[33 * p + 4 * j] = kv.x, ks[33 * p + 4 * j + 1] = kv.y, ks[33 * p + 4 * j + 2] = kv.z, ks[33 * p + 4 * j + 3] = kv.w;
                    *(uint4*)(vs + 32 * p + 4 * j) = __ldcg((const uint4*)(a.vc + kvb + (size_t)p * HD + j * 8));
                }
                if (QKS == 1) {
                    float qv[2];
                    polln<2>(a.qt + g * 512 + tid, NCT, qv, tg, a.err, 3);
                    qs[tid] = qv[0], qs[tid + NCT] = qv[1];
                } else {  // the parts' partial sums
                    float qv[2 * QKS];
                    polla<2 * QKS>([&](int i) { return a.qt + (i >> 1) * H + g * 512 + tid + (i & 1) * NCT; }, qv, tg, a.err, 3);
#pragma unroll
                    for (int i = 2; i < 2 * QKS; i++) qv[i & 1] += qv[i];
                    qs[tid] = qv[0], qs[tid + NCT] = qv[1];
                }
                if (n > nold && tid < 128) {  // the newest row
                    float v;
                    if (QKS == 1) {
                        v = poll1(a.kvt + g * 128 + tid, tg, a.err, 4);
                    } else {
                        float pv[QKS];
                        polla<QKS>([&](int i) { return a.kvt + i * NKV * 128 + g * 128 + tid; }, pv, tg, a.err, 4);
                        v = pv[0];
#pragma unroll
                        for (int i = 1; i < QKS; i++) v += pv[i];
                    }
                    const h16 vh = __float2half(v);
                    if (QKS > 1) (tid < 64 ? a.kc : a.vc)[((size_t)((l * SLOTS + SL) * NKV + g) * MAXP + PS) * HD + (tid & 63)] = vh;
                    if (tid < 64) ((h16*)(ks + 33 * nold))[tid] = vh;
                    else ((h16*)(vs + 32 * nold))[tid - 64] = vh;
                }
                cbar();
                if (TRACE && tid == 0 && e == e_run) tstamp(a, op, l, 1);
                // Warp w < 8: head g * 8 + w. Scores by lane-owned positions, softmax, P.V by lane-owned dims.
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
                    if (AP4) {  // four independent accumulator pairs (the FMA chain was n long)
                        float b0[4] = {0.f, 0.f, 0.f, 0.f}, b1[4] = {0.f, 0.f, 0.f, 0.f};
                        int p = 0;
                        for (; p + 4 <= n; p += 4) {
#pragma unroll
                            for (int j = 0; j < 4; j++) {
                                const float pe = ss[w * CL + p + j];
                                const u32 vv = vs[32 * (p + j) + lane];
                                const float2 vf = __half22float2(*(const __half2*)&vv);
                                b0[j] += pe * vf.x, b1[j] += pe * vf.y;
                            }
                        }
                        for (; p < n; p++) {
                            const float pe = ss[w * CL + p];
                            const u32 vv = vs[32 * p + lane];
                            const float2 vf = __half22float2(*(const __half2*)&vv);
                            b0[0] += pe * vf.x, b1[0] += pe * vf.y;
                        }
                        a0 = (b0[0] + b0[1]) + (b0[2] + b0[3]), a1 = (b1[0] + b1[1]) + (b1[2] + b1[3]);
                    } else {
                        for (int p = 0; p < n; p++) {
                            const float pe = ss[w * CL + p];
                            const u32 vv = vs[32 * p + lane];
                            const float2 vf = __half22float2(*(const __half2*)&vv);
                            a0 += pe * vf.x, a1 += pe * vf.y;
                        }
                    }
                    if (TREC) {
                        u64* rec = a.prt + ((size_t)(g * 8 + w) * ACH + c) * 66;
                        st_tag(rec + 2 + 2 * lane, a0, tg);
                        st_tag(rec + 3 + 2 * lane, a1, tg);
                        if (lane == 0) st_tag(rec, n > 0 ? mx : -1e30f, tg), st_tag(rec + 1, sum, tg);
                        continue;
                    }
                    float* rec = a.part + ((size_t)(g * 8 + w) * ACH + c) * 68;
                    *(float2*)(rec + 4 + 2 * lane) = make_float2(a0, a1);
                    if (lane == 0) rec[0] = (n > 0 ? mx : -1e30f), rec[1] = sum;
                    if (RECFENCE) __threadfence();  // each writer's own records out before the count (see RECFENCE)
                }
                if (TREC) {  // the kv head's last chunk merges: it polls the 8 heads' tagged records (no fence, no count)
                    if (c == ACH - 1) {
                        for (int w = warp; w < 8; w += NCW) {
                            const u64* rb = a.prt + (size_t)(g * 8 + w) * ACH * 66;
                            // one batch: record (lane % ACH)'s max and sum, then this lane's two dims of every record
                            float rv[2 + 2 * ACH];
                            polla<2 + 2 * ACH>(
                                [&](int i) { return i < 2 ? rb + (lane % ACH) * 66 + i : rb + ((i - 2) >> 1) * 66 + 2 + 2 * lane + ((i - 2) & 1); },
                                rv, tg, a.err, 5);
                            const float mc = lane < ACH ? rv[0] : -1e30f, lc = lane < ACH ? rv[1] : 0.f;
                            float v0[ACH], v1[ACH];
#pragma unroll
                            for (int cc = 0; cc < ACH; cc++) v0[cc] = rv[2 + 2 * cc], v1[cc] = rv[3 + 2 * cc];
                            const float M = warp_max(mc);
                            const float wc = lane < ACH ? __expf(mc - M) : 0.f;
                            const float den = warp_sum(wc * lc);
                            float n0 = 0.f, n1 = 0.f;
#pragma unroll
                            for (int cc = 0; cc < ACH; cc++) {
                                const float wv = __shfl_sync(0xffffffffu, wc, cc);
                                n0 += wv * v0[cc], n1 += wv * v1[cc];
                            }
                            u64* o = a.aot + (g * 8 + w) * 64 + 2 * lane;
                            st_tag(o, n0 / den, tg);
                            st_tag(o + 1, n1 / den, tg);
                        }
                        if (TRACE) {
                            cbar();
                            if (tid == 0) tstamp(a, op, l, 3);
                        }
                    }
                    cbar();  // the x area reused by the next item
                    if (PROF && tid == 0) p_att += gtime() - a0;
                    continue;
                }
                cbar();
                if (tid == 0) {
                    if (ATTACQ) {  // one acq_rel atomic: releases the block's records (bar.sync before), acquires the others'
                        int old;
                        asm volatile("atom.acq_rel.gpu.global.add.s32 %0, [%1], 1;" : "=r"(old) : "l"(a.ctr + l * NKV + g) : "memory");
                        *flag = old == ep * ACH - 1;
                    } else {
                        __threadfence();
                        *flag = atomicAdd(a.ctr + l * NKV + g, 1) == ep * ACH - 1;
                        __threadfence();
                    }
                }
                cbar();
                if (*flag) {  // the kv head's last item: merge its 8 heads' records into aot (tagged)
                    for (int w = warp; w < 8; w += NCW) {
                        const float* rb = a.part + (size_t)(g * 8 + w) * ACH * 68;
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
                            const float wv = __shfl_sync(0xffffffffu, wc, cc);
                            n0 += wv * v[cc].x, n1 += wv * v[cc].y;
                        }
                        u64* o = a.aot + (g * 8 + w) * 64 + 2 * lane;
                        st_tag(o, n0 / den, tg);
                        st_tag(o + 1, n1 / den, tg);
                    }
                    cbar();
                    if (TRACE && tid == 0) tstamp(a, op, l, 3);
                }
                cbar();  // the x area reused by the next item
                if (PROF && tid == 0) p_att += gtime() - a0;
                continue;
            }
            if (dyn(op)) {  // tiles as the loader tagged the slots, until its sentinel
                Rg& R = in_a(op) || !DRING ? RA : RB;
                for (;;) {
                    mbar_wait(full(R.slot), R.ph);
                    const int tt = slot_t[R.slot];
                    if (tt < 0) {
                        __syncwarp();
                        if (lane == 0) mbar_arrive(empty(R.slot));
                        R.adv();
                        // the run's end to the epilogue warp: a buffer with tile -1
                        const int b = nt % NPB;
                        mbar_wait(pempty(b), ((nt / NPB) & 1) ^ 1);
                        if (tid == 0) meta[b] = -1;
                        __syncwarp();
                        if (lane == 0) mbar_arrive(pfull(b));
                        nt++;
                        break;
                    }
                    tile(R, KC_H, tt);
                }
                if (PROF && tid == 0) p_tile += gtime() - a0;
                continue;
            }
            tile(in_a(op) || !DRING ? RA : RB, ent_nch(op), t, op == OP_QKV ? (t % QKS) * KC_Q : 0);
            if (PROF && tid == 0) p_tile += gtime() - a0;
            if (!EW) {  // the tile's barrier is behind us: warp 0's lanes < 16 run its epilogue
                const u64 q0 = pstamp();
                const float* pb = ysb + ((nt - 1) % NPB) * NCW * 16;
                if (warp == 0 && lane < 16)
                    epilogue(a, PS, EP, SL, op, l, t, lane, erow, [&](int r) {
                        float v = 0.f;
#pragma unroll
                        for (int w = 0; w < NCW; w++) v += pb[w * 16 + r];
                        return v;
                    });
                if (PROF && tid == 0) p_epi += gtime() - q0;
            }
        }
        if (TRACE && tid == 0) tstamp(a, op, l, 2);
    }
    if (PROF && tid == 0) {
        u64* pp = a.prof + blockIdx.x * NPROF;
        atomicAdd(pp + 0, gtime() - pt0);
        atomicAdd(pp + 1, p_poll);
        atomicAdd(pp + 2, p_stage);
        atomicAdd(pp + 3, p_ring);
        atomicAdd(pp + 4, p_epi);
        atomicAdd(pp + 7, p_att);
        atomicAdd(pp + 9, p_tile);
    }
}

// After each step, as the engine's argmax + advance: the next token from the step's argmax key, position + 1, epoch + 1.
static float *g_rcos, *g_rsin;
__global__ void mk_adv(int* meta, const u64* best) {
    if (threadIdx.x == 0) {
        const int ep = meta[3];
        meta[0] = (int)(0xffffffffu - (u32)(best[ep % 3] & 0xffffffffu));
        meta[1] += 1;
        meta[3] = ep + 1;
    }
}
__global__ void mk_set(int* meta, int tok, int pos, int slot, int ep) {
    if (threadIdx.x == 0) meta[0] = tok, meta[1] = pos, meta[2] = slot, meta[3] = ep;
}
// ---------------------------------------------------------------------------------------------------------------
static inline u32 __float_as_uint_host(float f) {
    u32 u;
    memcpy(&u, &f, 4);
    return u;
}
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
        // [k tile 32][lane 32][a0..a3 as 8 halves]: the mma.m16n8k16 A fragments of the chunk's 16 rows
        const int f = (int)((o % CHH) / 8), kt = f / 32, ln = f % 32, g = ln >> 2, t4 = ln & 3;
        const int kb = c * CKK + kt * 16 + 2 * t4;
        const int rr[8] = {g, g, g + 8, g + 8, g, g, g + 8, g + 8};
        const int kk[8] = {kb, kb + 1, kb, kb + 1, kb + 8, kb + 9, kb + 8, kb + 9};
        for (int j = 0; j < 8; j++) dst[o + j] = src_of(rr[j], kk[j]);
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
        auto marker = [&](int op, double bytes) {  // one entry a block; the bytes spread evenly in the accounting
            for (int b = 0; b < G; b++) {
                load[b] += bytes / G;
                sched[(size_t)b * MAXE + nsched[b]++] = op | (l << 3);
            }
        };
        if (DQKV) marker(OP_QKV, (double)T_QKV * 4.0 * CHB);
        else
            for (int t = 0; t < T_QKV * QKS; t++) put(OP_QKV, l, t, (double)KC_Q * CHB);
        for (int t = 0; t < T_ATT; t++) put(OP_ATT, l, t, ATT_COST);
        for (int t = 0; t < T_O; t++) put(OP_O, l, t, 4.0 * CHB);
        if (DGU) {
            marker(OP_GU, (double)T_GU * 4.0 * CHB);
        } else {
            for (int t = 0; t < T_GU; t++) put(OP_GU, l, t, 4.0 * CHB);
        }
        for (int t = 0; t < T_DN; t++) put(OP_DN, l, t, (double)KC_I * CHB);
    }
    if (DHEAD)
        for (int b = 0; b < G; b++) sched[(size_t)b * MAXE + nsched[b]++] = OP_HEAD;
    else
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
    printf("device %s, %d SMs, L2 %d MB, smem/block optin %zu; v9 EW %d NPB %d POLLNS %d NCW %d NSLOT %d ACH %d XAREA %d, smem %d\n", pr.name,
           G, pr.l2CacheSize >> 20, pr.sharedMemPerBlockOptin, EW, NPB, POLLNS, NCW, NSLOT, ACH, XAREA, SMEM);
    CK(cudaFuncSetAttribute(mk_step, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM));
    int occ = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, mk_step, NTH, SMEM));
    {  // the attention item's shared memory at the largest position timed (639) must fit the x area
        const int CLm = (640 + ACH - 1) / ACH;
        const int need = 2048 + 132 * ((CLm + 3) & ~3) + 128 * CLm + 32 * CLm;
        if (need > XAREA || INTER * 2 > XAREA) {
            fprintf(stderr, "XAREA %d too small (attention %d, x %d)\n", XAREA, need, INTER * 2);
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
    CK(cudaMalloc(&kc1, SLOTS * nkv * 2));
    CK(cudaMalloc(&vc1, SLOTS * nkv * 2));
    CK(cudaMalloc(&kc2, SLOTS * nkv * 2));
    CK(cudaMalloc(&vc2, SLOTS * nkv * 2));
    init_h16<<<1024, 256>>>(kc0, nkv, 11, 1.f);  // positions < 512 stand for the prompt; later ones are overwritten
    init_h16<<<1024, 256>>>(vc0, nkv, 12, 1.f);
    // The megakernel's caches: (NL, SLOTS, NKV, MAXP, HD); slot SLOT_USED holds the reference's rows, the others other
    // data (a wrong slot index shows in the logits).
    for (h16* c : {kc1, vc1, kc2, vc2}) init_h16<<<1024, 256>>>(c, SLOTS * nkv, 13, 1.f);
    const size_t nlay = (size_t)NKV * MAXP * HD;
    for (int l = 0; l < NL; l++) {
        const size_t dst = ((size_t)l * SLOTS + SLOT_USED) * nlay, src = (size_t)l * nlay;
        CK(cudaMemcpy(kc1 + dst, kc0 + src, nlay * 2, cudaMemcpyDeviceToDevice));
        CK(cudaMemcpy(vc1 + dst, vc0 + src, nlay * 2, cudaMemcpyDeviceToDevice));
        CK(cudaMemcpy(kc2 + dst, kc0 + src, nlay * 2, cudaMemcpyDeviceToDevice));
        CK(cudaMemcpy(vc2 + dst, vc0 + src, nlay * 2, cudaMemcpyDeviceToDevice));
    }
    {  // RoPE tables as the engine's: (MAXP, HD / 2), angle = pos * 10000^(-2d / HD)
        std::vector<float> hc((size_t)MAXP * HD / 2), hs(hc.size());
        for (int p = 0; p < MAXP; p++)
            for (int d = 0; d < HD / 2; d++) {
                const double ang = p * pow(10000.0, -2.0 * d / HD);
                hc[(size_t)p * HD / 2 + d] = (float)cos(ang), hs[(size_t)p * HD / 2 + d] = (float)sin(ang);
            }
        float *dc, *ds;
        CK(cudaMalloc(&dc, hc.size() * 4));
        CK(cudaMalloc(&ds, hs.size() * 4));
        CK(cudaMemcpy(dc, hc.data(), hc.size() * 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(ds, hs.data(), hs.size() * 4, cudaMemcpyHostToDevice));
        g_rcos = dc, g_rsin = ds;
    }
    float* rbuf;
    CK(cudaMalloc(&rbuf, (size_t)(H * 4 + INTER * 5 + QKVN + VOC * 2) * 4));
    // Megakernel buffers.
    Args a{};
    a.wqkv = m.pqkv, a.wo = m.po, a.wgu = m.pgu, a.wdn = m.pdn, a.whead = m.phead, a.emb = m.emb;
    a.nattn = m.nattn, a.nffn = m.nffn, a.nfinal = m.nfinal, a.kc = kc1, a.vc = vc1;
    a.rcos = g_rcos, a.rsin = g_rsin;
    CK(cudaMalloc(&a.meta, 16));
    const size_t ntag = (size_t)(NL + 1) * H + (size_t)NL * H + QKS * H + QKS * NKV * 128 + H + INTER;
    u64* tags;
    CK(cudaMalloc(&tags, ntag * 8));
    CK(cudaMemset(tags, 0, ntag * 8));  // tag 0: never current (epochs start at 1)
    a.hx = tags, a.hm = a.hx + (size_t)(NL + 1) * H, a.qt = a.hm + (size_t)NL * H, a.kvt = a.qt + QKS * H, a.aot = a.kvt + QKS * NKV * 128,
    a.actt = a.aot + H;
    CK(cudaMalloc(&a.part, (size_t)NH * ACH * 68 * 4));
    CK(cudaMalloc(&a.prt, (size_t)NH * ACH * 66 * 8));
    CK(cudaMalloc(&a.gctr, 6 * NL * 4));
    CK(cudaMemset(a.gctr, 0, 6 * NL * 4));
    CK(cudaMemset(a.prt, 0, (size_t)NH * ACH * 66 * 8));
    CK(cudaMalloc(&a.logits, VOC * 4));
    CK(cudaMalloc(&a.ctr, NL * NKV * 4));
    CK(cudaMemset(a.ctr, 0, NL * NKV * 4));
    CK(cudaMalloc(&a.best, 3 * 8));
    CK(cudaMemset(a.best, 0, 3 * 8));
    CK(cudaMalloc(&a.err, 4));
    CK(cudaMemset(a.err, 0, 4));
    CK(cudaMalloc(&a.prof, (size_t)G * NPROF * 8));
    const size_t ndbg = (size_t)NL * (INTER + 2 * G) + 1 + 64 * 8;
    CK(cudaMalloc(&a.dbg, ndbg * 4));
    CK(cudaMemset(a.dbg, 0, ndbg * 4));
    const size_t ntr = (size_t)G * 6 * NL * 4;
    CK(cudaMalloc(&a.trace, ntr * 8));
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
    // A step: tok >= 0 sets the metadata (token, position, slot, epoch); tok < 0 runs on what the previous step's
    // mk_adv left (its argmax, position + 1), which must be `pos`. mk_adv always follows, as the engine's advance.
    int meta_pos = -1;
    auto launch = [&](int pos, int tok, cudaStream_t st) {
        ++epoch;
        if (tok >= 0) mk_set<<<1, 32, 0, st>>>(a.meta, tok, pos, SLOT_USED, epoch);
        else if (meta_pos != pos) {
            fprintf(stderr, "launch: position %d but the metadata holds %d\n", pos, meta_pos);
            exit(1);
        }
        if (DBGA) CK(cudaMemsetAsync(a.dbg, 0, ndbg * 4, st));
        mk_step<<<G, NTH, SMEM, st>>>(a);
        mk_adv<<<1, 32, 0, st>>>(a.meta, a.best);
        meta_pos = pos + 1;
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
    // 1b. The same step again (same token, same position, the cache row rewritten with the same values): bitwise the same
    // logits unless something races.
    {
        // Where a repeat first differs (host only): per layer the new K / V rows at P0 (qkv), h after o (hm: attention
        // + o), the next layer's input (hx: gate/up + down); then the logits. Tagged words compared by value only.
        auto snap = [&]() {
            std::vector<u32> s;
            std::vector<u64> t(ntag);
            CK(cudaMemcpy(t.data(), tags, ntag * 8, cudaMemcpyDeviceToHost));
            std::vector<h16> row(HD);
            for (int l = 0; l < NL; l++) {
                for (int g = 0; g < NKV; g++)
                    for (int kv = 0; kv < 2; kv++) {
                        CK(cudaMemcpy(row.data(), (kv ? a.vc : a.kc) + ((size_t)((l * SLOTS + SLOT_USED) * NKV + g) * MAXP + P0) * HD, HD * 2, cudaMemcpyDeviceToHost));
                        for (int d = 0; d < HD; d++) s.push_back(*(const unsigned short*)&row[d]);
                    }
                for (int i = 0; i < H; i++) s.push_back((u32)t[(size_t)(NL + 1) * H + (size_t)l * H + i]);
                for (int i = 0; i < H; i++) s.push_back((u32)t[(size_t)(l + 1) * H + i]);
            }
            std::vector<float> lg(VOC);
            CK(cudaMemcpy(lg.data(), a.logits, VOC * 4, cudaMemcpyDeviceToHost));
            for (int i = 0; i < VOC; i++) s.push_back(__float_as_uint_host(lg[i]));
            return s;
        };
        const std::vector<u32> s0 = snap();
        // DBGA: per layer, did every block's down staging read the act values as written, and every gate/up staging
        // the h after o values in the tags buffer? And did the act values written differ from the first run's?
        std::vector<u32> d0;
        auto dbg_check = [&](int rep) {
            if (!DBGA) return;
            std::vector<u32> d(ndbg);
            CK(cudaMemcpy(d.data(), a.dbg, ndbg * 4, cudaMemcpyDeviceToHost));
            std::vector<u64> t(ntag);
            CK(cudaMemcpy(t.data(), tags, ntag * 8, cudaMemcpyDeviceToHost));
            if (d0.empty()) d0 = d;
            const u32* lg = d.data() + (size_t)NL * (INTER + 2 * G);
            if (DBGB && lg[0]) {
                printf("dbgb: run %d: %u act values read differ from the fenced copy\n", rep, lg[0]);
                for (u32 i = 0; i < std::min(lg[0], 8u); i++) {
                    const u32* e = lg + 1 + i * 8;
                    float f[4];
                    memcpy(&f[0], &e[3], 4), memcpy(&f[1], &e[4], 4), memcpy(&f[2], &e[5], 4), memcpy(&f[3], &e[7], 4);
                    printf("dbgb:   layer %u block %u index %u: read %g, written %g, re-read %g (tag %u, want %u), previous layer's %g\n",
                           e[0], e[1], e[2], f[0], f[1], f[2], e[6], (u32)epoch * 32u + e[0], f[3]);
                }
            }
            int printed = 0;
            for (int l = 0; l < NL && printed < 2; l++) {
                const u32* dl = d.data() + (size_t)l * (INTER + 2 * G);
                u32 xa = 0, xh = 0;
                int nact = 0;
                for (int i = 0; i < INTER; i++) xa ^= dl[i], nact += dl[i] != d0[(size_t)l * (INTER + 2 * G) + i];
                for (int i = 0; i < H; i++) xh ^= (u32)t[(size_t)(NL + 1) * H + (size_t)l * H + i];
                int bad_dn = 0, bad_gu = 0, first_dn = -1, first_gu = -1;
                for (int b = 0; b < G; b++) {
                    const u32 rd = dl[INTER + b], rg = dl[INTER + G + b];
                    if (rd != 0 && rd != xa) bad_dn++, first_dn = first_dn < 0 ? b : first_dn;
                    if (rg != 0 && rg != xh) bad_gu++, first_gu = first_gu < 0 ? b : first_gu;
                }
                if (nact) {  // which act values: tile (8 a tile), row, the block that ran the tile (static schedule)
                    printf("dbga: run %d layer %d act differs at", rep, l);
                    int k = 0;
                    for (int i = 0; i < INTER && k < 12; i++)
                        if (dl[i] != d0[(size_t)l * (INTER + 2 * G) + i]) {
                            k++;
                            int blk = -1;
                            for (int b = 0; b < G && blk < 0; b++)
                                for (int e = 0; e < nsched[b]; e++) {
                                    const int en = sched[(size_t)b * MAXE + e];
                                    if ((en & 7) == OP_GU && ((en >> 3) & 31) == l && (en >> 8) == i / 8) blk = b;
                                }
                            printf(" %d (tile %d row %d block %d)", i, i / 8, i % 8, blk);
                        }
                    printf("\n");
                }
                if (nact || bad_dn || bad_gu) {
                    printf("dbga: run %d layer %d: %d act values differ from the first run; %d down stagings read other act "
                           "than written (first block %d); %d gate/up stagings read other h (first block %d)\n",
                           rep, l, nact, bad_dn, first_dn, bad_gu, first_gu);
                    printed++;
                }
            }
        };
        dbg_check(-1);
        const int per = NKV * 2 * HD + 2 * H;
        int same_runs = 0, shown = 0;
        const int reps = getenv("MK_DET") ? atoi(getenv("MK_DET")) : 3;  // more repeats: a stronger race check
        for (int r = 0; r < reps; r++) {
            launch(P0, tok0, 0);
            check_err();
            std::vector<float> again(VOC);
            CK(cudaMemcpy(again.data(), a.logits, VOC * 4, cudaMemcpyDeviceToHost));
            const bool same = memcmp(again.data(), got.data(), VOC * 4) == 0;
            same_runs += same;
            if (!same && shown < 4) dbg_check(r);
            if (!same && shown < 4) {
                shown++;
                const std::vector<u32> s1 = snap();
                size_t i = 0;
                while (i < s1.size() && s1[i] == s0[i]) i++;
                const char* what = "logits";
                int l = NL, j = 0;
                if (i < (size_t)NL * per) {
                    l = (int)(i / per), j = (int)(i % per);
                    what = j < NKV * 2 * HD ? "qkv (K / V row)" : j < NKV * 2 * HD + H ? "hm (after o)" : "hx (after ffn)";
                }
                int nd = 0;
                for (size_t k = 0; k < s1.size(); k++) nd += s1[k] != s0[k];
                printf("determinism: repeat %d first differs at layer %d, %s, element %d (%d words differ in all)\n", r, l, what, j, nd);
            }
        }
        printf("determinism: step 1 repeated %d times, %d of %d bitwise equal to the first\n", reps, same_runs, reps);
    }
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
        const char* nm[NPROF] = {"consumer total", "stage: tagged loads", "stage (all)", "ring wait (chunk not in)",
                                 "tile epilogues (EW=0)", "loader total", "loader empty wait", "attention items", "-",
                                 "tiles (incl. ring wait)", "epilogue warp total", "epilogue warp waiting"};
        for (int i = 0; i < NPROF; i++) {
            if (i == 8) continue;
            double sum = 0, mx = 0, mn = 1e30;
            for (int b = 0; b < G; b++) {
                const double v = pv[(size_t)b * NPROF + i] / 128.0 / 1000.0;
                sum += v, mx = std::max(mx, v), mn = std::min(mn, v);
            }
            printf("prof %-26s us a step: mean %7.1f  min %7.1f  max %7.1f\n", nm[i], sum / G, mn, mx);
        }
    }
    if (TRACE) {  // 5 more single launches (positions 640..644), each traced: the ops' spans and hand-offs
        const char* on[6] = {"qkv", "attention", "o", "gate/up", "down", "head"};
        double acc[6][8] = {};
        int cnt[6] = {};
        double tot = 0;
        for (int it = 0; it < 5; it++) {
            CK(cudaMemset(a.trace, 0, ntr * 8));
            launch(640 + it, -1, st);
            CK(cudaStreamSynchronize(st));
            check_err();
            std::vector<u64> tr(ntr);
            CK(cudaMemcpy(tr.data(), a.trace, ntr * 8, cudaMemcpyDeviceToHost));
            auto T = [&](int b, int op, int l, int k) { return tr[(((size_t)b * 6 + op) * NL + l) * 4 + k]; };
            auto stats = [&](int op, int l, int k, double& mn, double& md, double& mx) {
                std::vector<double> v;
                for (int b = 0; b < G; b++)
                    if (T(b, op, l, k)) v.push_back((double)T(b, op, l, k));
                std::sort(v.begin(), v.end());
                if (v.empty()) { mn = md = mx = 0; return 0; }
                mn = v.front(), md = v[v.size() / 2], mx = v.back();
                return (int)v.size();
            };
            double t0 = 1e30;
            for (int b = 0; b < G; b++)
                if (T(b, OP_QKV, 0, 0)) t0 = std::min(t0, (double)T(b, OP_QKV, 0, 0));
            double pend = t0, pmed = t0;
            for (int l = 0; l <= NL; l++) {
                for (int op = 0; op < 5; op++) {
                    const int o = l == NL ? OP_HEAD : op, ll = l == NL ? 0 : l;
                    double c0n, c0d, c0x, c1n, c1d, c1x, c2n, c2d, c2x, c3n, c3d, c3x;
                    stats(o, ll, 0, c0n, c0d, c0x);
                    stats(o, ll, 1, c1n, c1d, c1x);
                    stats(o, ll, 2, c2n, c2d, c2x);
                    stats(o, ll, 3, c3n, c3d, c3x);
                    double* A = acc[o];
                    A[0] += (c3x - pend) / 1e3;   // span: input's last write -> this op's last write
                    A[1] += (pend - pmed) / 1e3;  // producer tail: last write - median producer's last write
                    A[2] += (c1n - pend) / 1e3;   // first consumer staged after the last write
                    A[3] += (c1d - pend) / 1e3;   // median consumer staged
                    A[4] += (c1x - pend) / 1e3;   // last consumer staged
                    A[5] += (c2d - c1d) / 1e3;    // median run length (staged -> tiles / items done)
                    A[6] += (c3x - c3d) / 1e3;    // this op's own tail (last vs median write)
                    A[7] += (c0d - pend) / 1e3;   // median consumer's run start vs the last write (< 0: it waited)
                    cnt[o]++;
                    pend = c3x, pmed = c3d;
                    if (l == NL) break;
                }
            }
            tot += (pend - t0) / 1e3;
        }
        printf("trace (5 launches at positions 640..644, us, mean over layers and launches; span = the input's last write -> the op's last write):\n");
        printf("trace %-10s %8s %8s %8s %8s %8s %8s %8s %8s %8s\n", "op", "span", "sum/step", "prodtail", "1st stg", "med stg",
               "last stg", "med run", "own tail", "med strt");
        for (int o = 0; o < 6; o++) {
            const double n = cnt[o];
            printf("trace %-10s %8.2f %8.1f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f\n", on[o], acc[o][0] / n, acc[o][0] / 5, acc[o][1] / n,
                   acc[o][2] / n, acc[o][3] / n, acc[o][4] / n, acc[o][5] / n, acc[o][6] / n, acc[o][7] / n);
        }
        printf("trace launch: first qkv run start -> head's last write %.1f us (mean of 5)\n", tot / 5);
    }
    std::sort(per.begin() + 1, per.end());
    const double med = per[2];
    const double bytes = 2.0 * (nq + no + 2 * ng + ng + nh);
    printf("median of reps 1-3: %.1f us a step = %.0f tok/s; weights %.3f GB a step -> %.0f GB/s\n", med, 1e6 / med, bytes / 1e9,
           bytes / (med * 1e-6) / 1e9);
    return 0;
}
