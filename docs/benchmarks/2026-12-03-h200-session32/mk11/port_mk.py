import re, sys
# Usage: python3 docs/benchmarks/2026-12-03-h200-session32/mk11/port_mk.py src/backend/cuda/kernels_mk.cu  (from the repository root)
# The one-time mechanical port of session 32; kernels_mk.cu has been edited since (the metadata rows instead of the
# probe's 16-byte block, mk_epoch): rerunning this overwrites those edits.
src = open('docs/benchmarks/2026-12-03-h200-session32/mk11/mk11.cu').read()
# device part: from the first switch block to just before the host-side reference section
start = src.index('#ifndef NCW')
end = src.index('// After each step, as the engine')
dev = src[start:end]
# the probe's dimension constants -> the engine's defines (HIDDEN, INTER, NH, NKV, HD, VOCAB) + MK_NL; MAX_SEQ is the
# engine's run-time constant; the slot count comes in Args
dev = dev.replace('constexpr int H = 2048, NH = 32, NKV = 4, HD = 64, INTER = 5632, NL = 22, VOC = 32000, MAXP = 1024;\n', '')
dev = dev.replace('constexpr int SLOTS = 2, SLOT_USED = 1;  // the engine-shaped KV cache: (NL, SLOTS, NKV, MAXP, HD)\n', '')
switches = ['NCW','NSLOT','ACH','EW','NPB','PROF','XAREA','NOWAIT','TRACE','TREC','DGU','POLL1','PFG','PFT','POLL1MIN',
            'GRAB_AT','AP4','ATTACQ','RECFENCE','QKS','DBGA','DBGB','PROFL','PROFC','PFX','CBAR','PPOLL','POLLNS','DRING',
            'NSA','DQKV','DHEAD']
consts = ['H','NL','VOC','MAXP','SLOTS','QKVN','CKK','CHH','CHB','NPROF','NCT','NTH','W_LOAD','W_EPI','W_LOADA','T_QKV',
          'T_ATT','T_O','T_GU','T_DN','T_HEAD','KC_H','KC_I','KC_Q','OP_QKV','OP_ATT','OP_O','OP_GU','OP_DN','OP_HEAD',
          'MAXE','SM_RING','SM_X','SM_BAR','SM_MISC','SM_SCHED','SMEM','Rg','Args']
for w in switches + consts:
    dev = re.sub(r'\b%s\b' % w, 'MK_' + w, dev)
# functions / kernel names that may collide with kernels.cu: prefix every __device__ helper the probe defines
funcs = re.findall(r'__device__ (?:__forceinline__ )?\w+ (\w+)\(', dev) + ['polla', 'polln', 'epilogue', 'mk_step', 'qkv_row', 'pack']
for f in sorted(set(funcs)):
    if f.startswith('mk_'):
        continue
    dev = re.sub(r'\b%s\b' % f, 'mk_' + f, dev)
dev = dev.replace('MK_MAXP', 'MAX_SEQ').replace('MK_H ', 'HIDDEN ').replace('MK_VOC', 'VOCAB')
dev = re.sub(r'\bMK_H\b', 'HIDDEN', dev)
dev = re.sub(r'\bMK_NL\b', 'MK_LAYERS', dev)
dev = re.sub(r'\bMK_SLOTS\b', 'a.slots', dev)
dev = dev.replace('    int* meta;                                 // tok, pos, slot, epoch of this step (mk_adv advances it)',
                  '    int* meta;                                 // tok, pos, slot, epoch of this step (mk_adv advances it)\n    int slots;                                 // KV cache slots')
# f16 through the engine's raw-bit helpers
dev = dev.replace('__float2half(', 'f2h(').replace('__half2float(', 'h2f(')
dev = re.sub(r'__half22float2\(\*\(const __half2\*\)&(\w+)\)', r'mk_h2f2(\1)', dev)
dev = dev.replace('typename std::conditional<', 'typename mk_cond<').replace('std::integral_constant<int, ', 'mk_ic<')
dev = dev.replace('1e-5f', 'EPS')
pre = '''// ---------------------------------------------------------------------------------------------
// mk (issue #11, fp16 bs1; branch mk-engine, WORK IN PROGRESS): the one-row decode step as ONE
// persistent launch — the probe docs/benchmarks/2026-12-03-h200-session32/mk11/mk11.cu (1,401 tok/s
// beside the engine's 1,370 on the H200, 50 / 50 bitwise repeats), ported mechanically by
// scripts/port_mk.py: names prefixed mk_ / MK_, f16 through h2f / f2h, the model's dimensions from
// kernels.rs's defines (HIDDEN, INTER, NH, NKV, HD, VOCAB, EPS) plus MK_LAYERS, the KV length the
// run-time MAX_SEQ, the slot count in the arguments. Appended to kernels.cu for an sm_90a module
// under `#define MK`. The host side is mk.rs.
#if defined(MK)
typedef unsigned long long u64;
template <bool C, class A, class B> struct mk_cond { typedef A type; };
template <class A, class B> struct mk_cond<false, A, B> { typedef B type; };
template <int V> struct mk_ic { static constexpr int value = V; };
constexpr int MK_QKVN = (NH + 2 * NKV) * HD;  // rows of the fused q / k / v projection
constexpr int MK_CKK = 512, MK_CHH = 16 * MK_CKK, MK_CHB = MK_CHH * 2;  // a weight chunk: 16 rows x 512 k of f16, 16 KB
__device__ __forceinline__ float2 mk_h2f2(unsigned v) { return make_float2(h2f((h16)(v & 0xffff)), h2f((h16)(v >> 16))); }
'''
out = pre + dev.rstrip() + '\n#endif  // MK\n'
# the kernel gets C linkage (looked up by name)
out = out.replace('__global__ void __launch_bounds__(MK_NTH, 1) mk_step(', 'extern "C" __global__ void __launch_bounds__(MK_NTH, 1) mk_step(')
open(sys.argv[1], 'w').write(out)
