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
    constexpr int KSTEPS = HD / 16;  // k-steps of S = Q·Kᵀ
    constexpr int ND = HD / 8;       // 8-dim blocks of O
    constexpr int NB = PFB_KT / 8;   // 8-key blocks of S
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
    const int i0 = ib;  // the warps' first query
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
#endif
