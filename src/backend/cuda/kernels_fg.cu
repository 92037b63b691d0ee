// kernels_fg.cu (session 8, branch ttft8): appended to kernels.cu's source for the engines where
// attn_prefill_fa is compiled (KernelSpec::prefill_fa), so the other engines' modules (and their
// cached binaries) keep kernels.cu's exact source. Uses kernels.cu's PFB_* helpers.
#if !ACT_F32 && !KV_F32 && !KV_Q && GROUP <= 8 && HD % 32 == 0 && HD <= 64
// attn_prefill_fg (session 8; default, `TRTFORGE_PREFILL_FG=0` runs fa): attn_prefill_fa with the GQA group
// in one block. Grid (⌈piece / 16⌉, kv heads, pieces), GROUP warps; block x (highest first) owns the
// 16 queries 16·x ... of all GROUP query heads of kv head blockIdx.y, warp w head kvh·GROUP + w. The
// 64-key K/V tiles (keys 0 .. the block's last query's position) are staged once for the group (fa
// stages each tile once per query head), double-buffered by cp.async as in fa; each warp's S, online
// softmax and P·V are fa's. All warps of a block share their causal range (block-uniform skips).
extern "C" __global__ void __launch_bounds__(32 * GROUP)
attn_prefill_fg(const float* __restrict__ q, const kv_t* __restrict__ kc, const kv_t* __restrict__ vc, act_t* __restrict__ out,
                const int* __restrict__ seq_slot, const int* __restrict__ seq_start, const int* __restrict__ seq_row0,
                const int* __restrict__ seq_n) {
    constexpr int NT = 32 * GROUP;  // threads: one warp per query head of the group
    constexpr int CPR = HD / 8;      // 16-byte chunks per staged row
    __shared__ __align__(16) h16 ks[2][PFB_KT][PFB_RS];
    __shared__ __align__(16) h16 vs[2][PFB_KT][PFB_RS];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int kvh = blockIdx.y, sq = blockIdx.z, h = kvh * GROUP + warp;
    const int bx = gridDim.x - 1 - blockIdx.x;
    pdl_wait();
    const int n = seq_n[sq];
    const int ib = bx * 16;  // the block's first query of the piece (all warps: the same 16 rows)
    if (ib >= n) {
        pdl_trigger();
        return;
    }
    const int slot = seq_slot[sq], start = seq_start[sq], row0 = seq_row0[sq];
    const int k_end = start + min(ib + 16, n);  // the block's keys: 0 .. k_end - 1
    const int ntiles = (k_end + PFB_KT - 1) / PFB_KT;
    auto stage = [&](int tile, int buf) {
        const int k0 = tile * PFB_KT;
#pragma unroll 4
        for (int c = tid; c < 2 * PFB_KT * CPR; c += NT) {
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
    pfb_rows(q, out, ks, vs, stage, lane, g, t, ib, n, start, row0, h, ntiles);  // the block's 16 queries, head h
}
#endif
