"""Independent check of trtforge's fp8 -> MatMulNBits rewrite (src/onnx/ort_cpu.rs).

usage: fp8_nbits_oracle.py ORIGINAL.onnx REWRITTEN.onnx BLOCK

From the original fp8 ONNX alone (ml_dtypes + numpy), recomputes what every weight must become:
each FLOAT8E4M3FN weight DequantizeLinear (codes [in, out], row scales [out]) whose input count is a
multiple of BLOCK is re-rounded to int8 per block of BLOCK inputs (scale = block absmax / 127 in the
scale's float type, round half to even, clip +-127, no zero point, axis 0, block_size BLOCK); the
others stay byte-identical. Checks the rewritten model against that bit for bit, that no activation
QuantizeLinear -> DequantizeLinear pair feeds a MatMul any more while the other Q/DQ pairs (the KV
cache's) are all kept, and that ONNX Runtime fuses every int8 weight into MatMulNBits except
those whose MatMul feeds a QuantizeLinear.
Prints "ok <int8 weights> <kept fp8 weights> <removed pairs> <int8 weights ORT leaves unfused>".
"""
import sys, collections, tempfile, os
import numpy as np, ml_dtypes, onnx
from onnx import numpy_helper, TensorProto

orig, new, block = onnx.load(sys.argv[1]), onnx.load(sys.argv[2]), int(sys.argv[3])
I0 = {t.name: t for t in orig.graph.initializer}
I1 = {t.name: t for t in new.graph.initializer}


def attrs(n):
    return {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}


def consumers(g):
    c = collections.defaultdict(list)
    for n in g.node:
        for i in n.input:
            c[i].append(n)
    return c


converted = kept = unfused = 0
new_nodes = {n.output[0]: n for n in new.graph.node}
for n in orig.graph.node:
    if n.op_type != "DequantizeLinear" or n.input[0] not in I0 or I0[n.input[0]].data_type != TensorProto.FLOAT8E4M3FN:
        continue
    q, s = I0[n.input[0]], I0[n.input[1]]
    k, m = q.dims
    codes = np.frombuffer(q.raw_data, dtype=ml_dtypes.float8_e4m3fn).reshape(k, m).astype(np.float32)
    row = numpy_helper.to_array(s)
    w = codes * row.astype(np.float32)[None, :]
    n1 = new_nodes[n.output[0]]
    if k % block:
        assert I1[q.name].raw_data == q.raw_data and I1[q.name].data_type == q.data_type, q.name
        assert attrs(n1) == attrs(n), q.name
        kept += 1
        continue
    wb = w.reshape(k // block, block, m)
    sc = (np.abs(wb).max(1) / np.float32(127)).astype(row.dtype)
    s32 = sc.astype(np.float32)
    safe = np.where(s32 > 0, s32, np.float32(1))
    want = np.where(s32[:, None, :] > 0, np.clip(np.rint(wb / safe[:, None, :]), -127, 127), 0).astype(np.int8).reshape(k, m)
    got_q = numpy_helper.to_array(I1[q.name])
    got_s = numpy_helper.to_array(I1[s.name])
    assert got_q.dtype == np.int8 and got_q.shape == (k, m), (q.name, got_q.dtype, got_q.shape)
    assert got_s.dtype == row.dtype and got_s.shape == sc.shape, (s.name, got_s.shape)
    assert np.array_equal(got_s, sc), f"{s.name}: scales differ"
    bad = np.flatnonzero(got_q != want)
    assert bad.size == 0, f"{q.name}: {bad.size} codes differ, first at {bad[:4]}"
    assert list(n1.input) == [q.name, s.name], n1.input
    assert attrs(n1) == {"axis": 0, "block_size": block}, attrs(n1)
    # the re-rounded weight is close to the fp8 weight: within half an int8 step of its block
    err = np.abs(got_q.astype(np.float32).reshape(k // block, block, m) * s32[:, None, :] - wb)
    assert np.all(err <= 0.5 * s32[:, None, :] * (1 + 1e-6) + 1e-12), q.name
    converted += 1
    # ONNX Runtime leaves DQ -> MatMul -> QuantizeLinear (V's projection when V goes straight into the
    # KV cache's Q/DQ) to its QDQ MatMul selector, which does not make it a MatMulNBits.
    mm = [u for u in consumers(new.graph)[n.output[0]] if u.op_type == "MatMul"]
    if any(v.op_type == "QuantizeLinear" for u in mm for v in consumers(new.graph)[u.output[0]]):
        unfused += 1


def qdq_pairs(g):
    c = consumers(g)
    to_matmul, other = 0, 0
    for n in g.node:
        if n.op_type == "QuantizeLinear":
            dq = c[n.output[0]]
            if len(dq) == 1 and dq[0].op_type == "DequantizeLinear":
                users = c[dq[0].output[0]]
                if users and all(u.op_type == "MatMul" for u in users):
                    to_matmul += 1
                else:
                    other += 1
    return to_matmul, other


a0, o0 = qdq_pairs(orig.graph)
a1, o1 = qdq_pairs(new.graph)
assert a0 > 0 and a1 == 0, (a0, a1)
assert o1 == o0, f"other Q/DQ pairs (KV cache): {o0} -> {o1}"
assert len(new.graph.node) == len(orig.graph.node) - 2 * a0, (len(orig.graph.node), len(new.graph.node), a0)

try:
    import onnxruntime as ort
except ImportError:
    ort = None
if ort is not None:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", "4")
    with tempfile.TemporaryDirectory() as d:
        so.optimized_model_filepath = os.path.join(d, "opt.onnx")
        ort.InferenceSession(sys.argv[2], so, providers=["CPUExecutionProvider"])
        opt = onnx.load(so.optimized_model_filepath)
        ops = collections.Counter(n.op_type for n in opt.graph.node)
        left = [(n.input[0], [tuple(t.dims) for t in opt.graph.initializer if t.name == n.input[0]]) for n in opt.graph.node if n.op_type == "DequantizeLinear"]
    assert ops["MatMulNBits"] == converted - unfused, (ops["MatMulNBits"], converted, unfused, left)
print("ok", converted, kept, a0, unfused)
