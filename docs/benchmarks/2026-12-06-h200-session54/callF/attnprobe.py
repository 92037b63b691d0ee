"""Session 54 call F: attn_decode_cx8 itself, alone, in call E's harness.

Call B's in-graph timeline put the bs64 decode attention at ≈ 19–20 µs a layer; call E put its load walk without the
math at 14.25 µs launch to launch. Here the engine's own kernel runs from the engine's own module (the cubin that
`TRTFORGE_CUDA_PRECOMPILE=sm_90 trtforge bench ... --precisions fp16 --batch-sizes 64 --input-lens 512 --output-len
128` caches: TinyLlama shape, f16 cache, MAX_SEQ 768) on the same layout — 22 layers' caches of [64 slots][4 kv heads]
[768][64] f16 cycled, every row at position 512 (513 keys) — timed back to back beside call E's 8 × 2 walk on the same
caches. Its constants stay zero (no timeline, no early trigger); the launch is a plain one (no PDL).
Usage: python3 attnprobe.py CUBIN OUT.json [--check] [--onebuf] [--gemm]
Added after call F ran (without them the probe is what ran):
  --check   one more launch on layer 0 at each position, its output against a numpy reference (f32 softmax(q·Kᵀ/8)·V
            per (row, q head)), the relative error in the JSON;
  --onebuf  the 22 layers' K (and V) caches as views of one buffer, as the engine allocates them;
  --gemm    a 64 × 2048 × 5632 f16 GEMM (cuBLAS, the gate/up shape; two weight copies alternating, 23 MB each) before
            every attention launch, and the same GEMMs alone: the attention's share = (both − GEMMs) a launch.
"""
import json, os, sys
import cupy as cp
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(here, '..', 'callE'), os.path.join(here, '..', 'callD')]
import kvring  # noqa: E402  (SRC: the walk without the math)
from kvstream import timeit  # noqa: E402

SLOTS, NKV, MAXS, HD, POS, LAYERS, QDIM = 64, 4, 768, 64, 513, 22, 2048


def reference(q, k, v, keys):
    """softmax(q·Kᵀ / sqrt(HD)) · V in f32 per (row, q head), rows at `keys` keys of their own slot (slot = row)."""
    grp = QDIM // HD // NKV
    qh = cp.asnumpy(q).reshape(SLOTS, NKV, grp, HD).astype(np.float64)
    kk = cp.asnumpy(k).reshape(SLOTS, NKV, MAXS, HD)[:, :, :keys].astype(np.float64)
    vv = cp.asnumpy(v).reshape(SLOTS, NKV, MAXS, HD)[:, :, :keys].astype(np.float64)
    sc = np.einsum('bkgd,bkpd->bkgp', qh, kk) / np.sqrt(HD)
    p = np.exp(sc - sc.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.einsum('bkgp,bkpd->bkgd', p, vv).reshape(SLOTS, QDIM)


def main():
    cubin, out_path = sys.argv[1], sys.argv[2]
    flags = set(sys.argv[3:])
    check, onebuf, gemm = '--check' in flags, '--onebuf' in flags, '--gemm' in flags
    per = SLOTS * NKV * MAXS * HD  # f16 elements of one layer's K
    if onebuf:
        kall = (cp.random.standard_normal(per * LAYERS, dtype=cp.float32) * 0.5).astype(cp.float16)
        vall = (cp.random.standard_normal(per * LAYERS, dtype=cp.float32) * 0.5).astype(cp.float16)
        ks = [kall[l * per:(l + 1) * per] for l in range(LAYERS)]
        vs = [vall[l * per:(l + 1) * per] for l in range(LAYERS)]
    else:
        ks = [(cp.random.standard_normal(per, dtype=cp.float32) * 0.5).astype(cp.float16) for _ in range(LAYERS)]
        vs = [(cp.random.standard_normal(per, dtype=cp.float32) * 0.5).astype(cp.float16) for _ in range(LAYERS)]
    if gemm:
        gx = cp.random.standard_normal((SLOTS, QDIM), dtype=cp.float32).astype(cp.float16)
        gw = [cp.random.standard_normal((QDIM, 5632), dtype=cp.float32).astype(cp.float16) for _ in range(2)]
        gy = cp.empty((SLOTS, 5632), dtype=cp.float16)
        gemm_us = timeit(lambda l: cp.matmul(gx, gw[l % 2], out=gy))
    q = cp.random.standard_normal(SLOTS * QDIM, dtype=cp.float32)
    out = cp.zeros(SLOTS * QDIM, dtype=cp.float16)
    sink = cp.zeros(1 << 16, dtype=cp.uint32)
    byts = 2 * SLOTS * NKV * POS * HD * 2
    res = []
    m = cp.RawModule(path=cubin)
    for pos_last in (512, 575, 639):  # the bench's first, middle and last decode positions
        rp = cp.full(SLOTS, pos_last, dtype=cp.int32)
        rs = cp.arange(SLOTS, dtype=cp.int32)
        f = m.get_function('attn_decode_cx8')
        smem = 2 * 8 * 2 * 16 * HD * 2  # launch.rs acl_smem(2 stages, 8 warps, 64, f16)
        f.max_dynamic_shared_size_bytes = smem
        def attn(l):
            if gemm:
                cp.matmul(gx, gw[l % 2], out=gy)
            f((1, NKV, SLOTS), (256,), (q, ks[l], vs[l], out, rp, rs, cp.int32(2)), shared_mem=smem)
        us = timeit(attn) - (gemm_us if gemm else 0.0)
        b = 2 * SLOTS * NKV * (pos_last + 1) * HD * 2
        res.append(dict(kind='attn_decode_cx8', keys=pos_last + 1, us=round(us, 2),
                        tb_s=round(b / us / 1e6, 3) if us > 0 else None, onebuf=onebuf, after_gemm=gemm))
        if gemm:
            res[-1]['gemm_alone_us'] = round(gemm_us, 2)
        if check:
            out[:] = 0
            f((1, NKV, SLOTS), (256,), (q, ks[0], vs[0], out, rp, rs, cp.int32(2)), shared_mem=smem)
            ref = reference(q, ks[0], vs[0], pos_last + 1)
            got = cp.asnumpy(out).astype(np.float64).reshape(SLOTS, QDIM)
            res[-1]['max_abs_err_rel'] = float(np.abs(got - ref).max() / np.abs(ref).max())
        print(json.dumps(res[-1]), flush=True)
    # the walk without the math (call E), on these caches (uint4 views), 513 keys
    mk = cp.RawModule(code='#define NW 8\n#define STG 2\n' + kvring.SRC, options=('-std=c++17',))
    for kind in ('ring', 'regs'):
        f = mk.get_function(kind)
        sm = 8 * 2 * 4096 if kind == 'ring' else 0
        if sm > 48 * 1024:
            f.max_dynamic_shared_size_bytes = sm
        us = timeit(lambda l: f((NKV, SLOTS), (256,), (ks[l], vs[l], sink, cp.int32(POS), cp.int32(MAXS)),
                                       shared_mem=sm))
        res.append(dict(kind=f'walk {kind} 8 x 2', keys=POS, us=round(us, 2), tb_s=round(byts / us / 1e6, 3)))
        print(json.dumps(res[-1]), flush=True)
    assert bool(cp.isfinite(out.astype(cp.float32)).all()), 'attention output not finite'
    json.dump(dict(cubin=os.path.basename(cubin), layers=LAYERS, device=cp.cuda.runtime.getDeviceProperties(0)['name']
                   .decode(), results=res), open(out_path, 'w'), indent=1)


main()
