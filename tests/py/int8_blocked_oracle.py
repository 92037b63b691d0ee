"""Independent check of trtforge's int8 block rewrite (src/onnx/ort_cpu.rs `int8_blocked`).

usage: int8_blocked_oracle.py ORIGINAL.onnx REWRITTEN.onnx BLOCK

From the original ONNX alone (onnx + numpy): every per-channel INT8 weight DequantizeLinear (codes
[k, n], scales [n], axis 1) whose k is a multiple of BLOCK must become axis 0, block_size BLOCK, with the
same codes and scales [k / BLOCK, n] whose every row is the per-channel scales; everything else is
unchanged byte for byte. ONNX Runtime then gives bit-identical outputs for both models run as written,
and fuses every int8 weight of the rewritten model into MatMulNBits.
Prints "ok <changed weights> <int8 weights> <MatMulNBits in the rewritten graph>".
"""
import sys
import numpy as np, onnx
from onnx import numpy_helper, TensorProto
from ort_rewrite_util import assert_exact_outputs_equal, fused

orig_path, new_path, block = sys.argv[1], sys.argv[2], int(sys.argv[3])
orig, new = onnx.load(orig_path), onnx.load(new_path)
I0 = {t.name: t for t in orig.graph.initializer}
I1 = {t.name: t for t in new.graph.initializer}
assert set(I0) == set(I1)


def attrs(n):
    return {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}


assert len(orig.graph.node) == len(new.graph.node)
changed, scales = 0, set()
for a, b in zip(orig.graph.node, new.graph.node):
    is_weight = a.op_type == "DequantizeLinear" and a.input[0] in I0 and I0[a.input[0]].data_type == TensorProto.INT8
    if is_weight and attrs(a).get("axis") == 1 and I0[a.input[0]].dims[0] % block == 0:
        k = I0[a.input[0]].dims[0]
        assert list(a.input) == list(b.input) and list(a.output) == list(b.output)
        assert attrs(b) == {"axis": 0, "block_size": block}, attrs(b)
        s0, s1 = numpy_helper.to_array(I0[a.input[1]]), numpy_helper.to_array(I1[b.input[1]])
        assert s1.dtype == s0.dtype and s1.shape == (k // block, s0.shape[0]), (s1.shape, s0.shape)
        assert all(np.array_equal(r, s0) for r in s1), a.input[1]
        scales.add(a.input[1])
        changed += 1
    else:
        assert a.SerializeToString() == b.SerializeToString(), a.name
for name, t in I0.items():
    if name not in scales:
        assert I1[name].SerializeToString() == t.SerializeToString(), name
int8_weights = sum(1 for t in orig.graph.initializer if t.data_type == TensorProto.INT8 and len(t.dims) == 2)
assert_exact_outputs_equal(orig_path, new_path)
nbits, left = fused(new_path, TensorProto.INT8)
assert left == 0 and nbits == int8_weights, (nbits, left, int8_weights)
print("ok", changed, int8_weights, nbits)
