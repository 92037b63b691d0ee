# Session 49 probe: how fast does ONE SM run wq's MMA chain without any copies? The wq launch (int4 bs64 gate/up)
# is ≈ 10 µs; with its copies left out it was still 8.8–10.2 µs (session 37), and one or three more consumer chains
# an SM do not help (sessions 47 / 49). This times the chain alone: per iteration (a 128-k stage) optionally the
# int4 conversion of 8 code words into 32 f16x2 A registers (lop3, sub, mul as kernels_wq.cu's wq_cvt4), then
# wgmma.fence, 8 × wgmma m64nNk16 (A from registers = RS, or from shared memory = SS; B from shared memory, K-major
# SW128), commit, wait_group 0 — one dependent chain per warpgroup, as wq's consumer runs it (wq waits before it
# converts the next stage: the same chain).
#   python3 mmaprobe.py OUT.json        (cupy; sm_90a)
#   python3 mmaprobe.py --check         (compile only, through libnvrtc found by ctypes: no GPU needed)
# Reported: TFLOP/s and the fraction of the SM's dense f16 peak (4,096 flop a cycle an SM at the SM clock).
import json
import sys


def d_list(n):
    return ", ".join(f"%{i}" for i in range(n))


def kernel(name, N, rs, cvt, maxthreads):
    nd = N // 2  # f32 accumulators a thread
    cons = ", ".join(f'"+f"(d[{i}])' for i in range(nd))
    if rs:
        mma = (f'asm volatile("wgmma.mma_async.sync.aligned.m64n{N}k16.f32.f16.f16 {{{d_list(nd)}}}, '
               f'{{%{nd},%{nd + 1},%{nd + 2},%{nd + 3}}}, %{nd + 4}, 1, 1, 1, 0;" : {cons} : "r"(a[j][0]), '
               f'"r"(a[j][1]), "r"(a[j][2]), "r"(a[j][3]), "l"(db) : "memory");')
    else:
        mma = (f'asm volatile("wgmma.mma_async.sync.aligned.m64n{N}k16.f32.f16.f16 {{{d_list(nd)}}}, %{nd}, %{nd + 1}, '
               f'1, 1, 1, 0, 0;" : {cons} : "l"(da), "l"(db) : "memory");')
    return rf'''
extern "C" __global__ void __launch_bounds__({maxthreads}, 1) {name}(float* out, int iters, unsigned seed) {{
    extern __shared__ __align__(1024) unsigned char raw[];
    const unsigned r0 = (unsigned)__cvta_generic_to_shared(raw), base = (r0 + 1023u) & ~1023u;
    unsigned* z = (unsigned*)(raw + (base - r0));
    for (int i = threadIdx.x; i < ({N} * 256 + 16384) / 4; i += blockDim.x) z[i] = 0u;  // B (2 tiles of N × 128 B), A
    __syncthreads();
    const unsigned bB = base, bA = base + {N} * 256;
    float d[{nd}];
#pragma unroll
    for (int i = 0; i < {nd}; i++) d[i] = 0.f;
    unsigned a[8][4];
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
        for (int i = 0; i < 4; i++) a[j][i] = 0x3c003c00u ^ (seed & 0x00ff00ffu);  // f16x2 1.0 (seed 0)
    const unsigned sc = 0x3c003c00u;
#pragma unroll 1
    for (int it = 0; it < iters; it++) {{
        if ({int(cvt)}) {{
#pragma unroll
            for (int u = 0; u < 8; u++) {{
                const unsigned q = (seed + (unsigned)(it * 8 + u)) * 2654435761u;
#pragma unroll
                for (int p = 0; p < 4; p++) {{
                    unsigned t;
                    asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(t) : "r"(q >> (4 * p)), "r"(0x000F000Fu), "r"(0x64006400u));
                    asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(t) : "r"(t), "r"(0x64086408u));
                    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(a[u][p]) : "r"(t), "r"(sc));
                }}
            }}
        }}
        asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
        for (int j = 0; j < 8; j++) {{
            const unsigned long long db = desc(bB + (j >> 2) * ({N} * 128) + (j & 3) * 32);
            const unsigned long long da = desc(bA + (j >> 2) * 8192 + (j & 3) * 32);
            (void)da;
            {mma}
        }}
        asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");  // (at the top of the body ptxas serializes: C7514)
    }}
    asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < {nd}; i++) s += d[i];
    if (s == 12345.f) out[blockIdx.x * blockDim.x + threadIdx.x] = s;  // keeps the chain alive
}}
'''


HEAD = r'''
__device__ __forceinline__ unsigned long long desc(unsigned addr) {  // K-major SW128, 8-row atoms of 1,024 bytes
    return (unsigned long long)((addr & 0x3FFFFu) >> 4) | (1ull << 16) | ((unsigned long long)(1024u >> 4) << 32) | (1ull << 62);
}
'''
# (name, N, RS, int4 conversion, the block's largest thread count)
VARIANTS = [
    ("rs64", 64, True, False, 512),
    ("rs64c", 64, True, True, 512),
    ("ss64", 64, False, False, 512),
    ("rs128", 128, True, False, 512),
    ("rs128c", 128, True, True, 512),
    ("ss128", 128, False, False, 512),
    ("rs256", 256, True, False, 256),
    ("ss256", 256, False, False, 256),
]
SRC = HEAD + "".join(kernel(n, N, rs, c, mt) for n, N, rs, c, mt in VARIANTS)


def check():
    import ctypes
    import glob
    import os
    libs = glob.glob(os.environ.get("NVRTC_DIR", "/tmp/nvrtc") + "/x/nvidia/cu13/lib/libnvrtc.so*")
    nv = ctypes.CDLL(sorted(libs)[0])
    prog = ctypes.c_void_p()
    assert nv.nvrtcCreateProgram(ctypes.byref(prog), SRC.encode(), b"mmaprobe.cu", 0, None, None) == 0
    opts = [b"-arch=sm_90a", b"-std=c++17", b"-Xptxas=-v"]
    rc = nv.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    n = ctypes.c_size_t()
    nv.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
    log = ctypes.create_string_buffer(n.value)
    nv.nvrtcGetProgramLog(prog, log)
    print(log.value.decode()[-6000:])
    print("nvrtc rc", rc)
    sys.exit(rc)


def main(out):
    import cupy as cp
    import numpy as np
    mod = cp.RawModule(code=SRC, options=("-arch=sm_90a", "-std=c++17"), backend="nvrtc")
    dev = cp.cuda.Device()
    nsm = dev.attributes["MultiProcessorCount"]
    clk = dev.attributes["ClockRate"] * 1e3  # Hz (the SM's maximum clock)
    name = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(name, "SMs", nsm, "clock MHz", clk / 1e6, flush=True)
    peak = nsm * clk * 4096 / 1e12  # dense f16 TFLOP/s
    sink = cp.zeros(4 * nsm * 512, dtype=cp.float32)
    res = []

    def run(v, nwg, per_sm, iters=4000):
        n, N = v[0], v[1]
        k = mod.get_function(n)
        smem = 1024 + N * 256 + 16384
        smem = max(smem, {1: 120, 2: 100, 4: 50}[per_sm] * 1024)  # exactly per_sm blocks an SM
        k.max_dynamic_shared_size_bytes = smem
        blocks, threads = nsm * per_sm, 128 * nwg
        args = (sink, np.int32(iters), np.uint32(0))
        k((blocks,), (threads,), args, shared_mem=smem)
        cp.cuda.runtime.deviceSynchronize()
        ts = []
        for _ in range(5):
            e0, e1 = cp.cuda.Event(), cp.cuda.Event()
            e0.record()
            k((blocks,), (threads,), args, shared_mem=smem)
            e1.record()
            e1.synchronize()
            ts.append(cp.cuda.get_elapsed_time(e0, e1) * 1e-3)
        s = float(np.median(ts))
        flop = blocks * nwg * iters * 8 * 2 * 64 * N * 16
        r = dict(variant=n, N=N, rs=v[2], cvt=v[3], nwg=nwg, per_sm=per_sm, us=s * 1e6, tflops=flop / s / 1e12,
                 of_peak=flop / s / 1e12 / peak, ns_per_stage=s * 1e9 / iters)
        res.append(r)
        print(json.dumps(r), flush=True)

    V = {v[0]: v for v in VARIANTS}
    for n in ("rs64", "rs64c", "ss64", "rs128", "rs128c", "ss128", "rs256", "ss256"):
        run(V[n], 1, 1)
    for n in ("rs64", "rs64c"):
        for nwg, per in ((2, 1), (4, 1), (1, 2), (2, 2)):
            run(V[n], nwg, per)
    run(V["ss256"], 2, 1)
    run(V["rs128c"], 2, 1)
    run(V["ss128"], 2, 1)
    json.dump(dict(device=name, sms=nsm, clock_mhz=clk / 1e6, peak_tflops=peak, rows=res), open(out, "w"), indent=1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--check"]:
        check()
    main(sys.argv[1] if len(sys.argv) > 1 else "mmaprobe.json")
