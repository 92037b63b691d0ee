# NVRTC compile check of kernels_mk.cu with the TinyLlama dimensions and kernels.cu's f16 helpers (no GPU needed).
# Usage: LD_LIBRARY_PATH=<dir of libnvrtc.so.13 and its builtins> python3 scripts/nvrtc_check_mk.py src/backend/cuda/kernels_mk.cu
import ctypes, sys
lib = ctypes.CDLL('libnvrtc.so.13')
pre = '''#define HIDDEN 2048
#define INTER 5632
#define NH 32
#define NKV 4
#define HD 64
#define VOCAB 32000
#define EPS 1e-5f
#define MK_LAYERS 22
#define MK 1
typedef unsigned short h16;
typedef unsigned int u32;
__constant__ int c_max_seq;
#define MAX_SEQ c_max_seq
__device__ __forceinline__ float h2f(h16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ h16 f2h(float f) { h16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
'''
src = (pre + open(sys.argv[1]).read()).encode()
prog = ctypes.c_void_p()
assert lib.nvrtcCreateProgram(ctypes.byref(prog), src, b"mk.cu", 0, None, None) == 0
opts = [b"--gpu-architecture=sm_90a", b"--std=c++17", b"-default-device"]
arr = (ctypes.c_char_p * len(opts))(*opts)
rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
n = ctypes.c_size_t(); lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
log = ctypes.create_string_buffer(n.value); lib.nvrtcGetProgramLog(prog, log)
print("rc", rc); print(log.value.decode()[:4000])
if rc == 0:
    lib.nvrtcGetCUBINSize(prog, ctypes.byref(n)); buf = ctypes.create_string_buffer(n.value); lib.nvrtcGetCUBIN(prog, buf)
    open('/tmp/mk.cubin','wb').write(buf.raw); print("cubin", n.value)
