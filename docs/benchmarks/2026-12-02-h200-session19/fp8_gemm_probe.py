"""What the batched-decode GEMMs of one TinyLlama step cost on this GPU through torch (cuBLAS / cuBLASLt /
torch's own fp8 kernels), per format, at 16 / 32 / 64 rows: 22 layers x (qkv, o, gate/up, down), each layer its
own weights (no L2 reuse across layers, as in the engine), replayed from one CUDA graph; us per step and per layer.
Session 19: the ceiling of a W8A8 fp8 decode path (issue #15's fp8 bs64 >= 1.3x fp16) before engineering it."""
import json, sys, torch

torch.manual_seed(0)
dev = "cuda"
L, H, I = 22, 2048, 5632
shapes = {"qkv": (2560, H), "o": (H, H), "gateup": (2 * I, H), "down": (H, I)}
f8 = torch.float8_e4m3fn


def graph_time(fn, reps=20):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    for _ in range(3):
        g.replay()
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(reps):
        e0.record(); g.replay(); e1.record(); torch.cuda.synchronize()
        ts.append(e0.elapsed_time(e1) * 1e3)
    ts.sort()
    return ts[len(ts) // 2]


out = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": {}}
W16 = {k: [torch.randn(n, kk, device=dev, dtype=torch.float16) * 0.02 for _ in range(L)] for k, (n, kk) in shapes.items()}
W8 = {k: [w.to(f8) for w in ws] for k, ws in W16.items()}  # values within e4m3 range (|w| << 448)
for M in (16, 32, 64):
    X16 = {k: torch.randn(M, kk, device=dev, dtype=torch.float16) for k, (n, kk) in shapes.items()}
    X8 = {k: x.to(f8) for k, x in X16.items()}
    one = torch.ones((), device=dev, dtype=torch.float32)
    sa = torch.ones(M, 1, device=dev)
    sb = {k: torch.ones(1, n, device=dev) for k, (n, kk) in shapes.items()}
    res = {}
    for name, fn_of in {
        "fp16_mm": lambda k: (lambda: [torch.mm(X16[k], w.t()) for w in W16[k]]),
        "fp8_tensorwise": lambda k: (lambda: [torch._scaled_mm(X8[k], w.t(), one, one, out_dtype=torch.float16) for w in W8[k]]),
        "fp8_rowwise_bf16": lambda k: (lambda: [torch._scaled_mm(X8[k], w.t(), sa, sb[k], out_dtype=torch.bfloat16) for w in W8[k]]),
    }.items():
        per = {}
        try:
            for k in shapes:
                per[k] = graph_time(fn_of(k)) / L
            per["layer"] = sum(per.values())
            per["step_us"] = per["layer"] * L
        except Exception as e:  # a format torch cannot run here: say so
            per = {"error": str(e)[:200]}
        res[name] = per
        print(M, name, json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in per.items()}), flush=True)
    out["rows"][M] = res
json.dump(out, open(sys.argv[1] if len(sys.argv) > 1 else "fp8_gemm_probe.json", "w"), indent=1)
