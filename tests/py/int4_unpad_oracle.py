"""Independent check of trtforge's int4 padding rewrite (src/onnx/ort_cpu.rs `int4_unpad`).

usage: int4_unpad_oracle.py ORIGINAL.onnx REWRITTEN.onnx

From the original ONNX alone (onnx + numpy), finds every INT4 weight DequantizeLinear whose output
only a Slice(0 .. rows, axis 0) reads (the export's zero-padded groups, `pad_to_group`) and checks
that in the rewritten model
- that Slice is gone and the DequantizeLinear writes the Slice's output name itself;
- its codes are the original's first `rows` rows, value for value (unpacked with onnx's own INT4
  reader), the scales unchanged, and the dropped rows were all zero codes;
- every other node and initializer is unchanged (byte for byte), but the Slices' now unused
  constants;
- ONNX Runtime, running both models as written (`session.disable_quant_qdq`), gives bit-identical
  outputs on a prefill and a decode step;
- ONNX Runtime with its `MatMulNBits` fusion (accuracy level 4) leaves no INT4 DequantizeLinear in
  the rewritten model's optimized graph and fuses as many MatMulNBits as there are INT4 weights,
  while on the original it fuses none of the padded ones.
Prints "ok <trimmed weights> <int4 weights> <MatMulNBits in the rewritten graph> <in the original>".
"""
import sys, collections
import numpy as np, onnx
from onnx import numpy_helper, TensorProto
from ort_rewrite_util import assert_exact_outputs_equal, fused

orig_path, new_path = sys.argv[1], sys.argv[2]
orig, new = onnx.load(orig_path), onnx.load(new_path)
I0 = {t.name: t for t in orig.graph.initializer}
I1 = {t.name: t for t in new.graph.initializer}


def attrs(n):
    return {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}


cons = collections.defaultdict(list)
for n in orig.graph.node:
    for i in n.input:
        cons[i].append(n)

trim = {}  # slice output -> (dq node, rows)
for n in orig.graph.node:
    if n.op_type != "DequantizeLinear" or n.input[0] not in I0 or I0[n.input[0]].data_type != TensorProto.INT4:
        continue
    users = cons[n.output[0]]
    if len(users) != 1 or users[0].op_type != "Slice":
        continue
    s = users[0]
    st, en, ax = (numpy_helper.to_array(I0[x]).tolist() for x in s.input[1:4])
    assert st == [0] and ax == [0] and attrs(n)["axis"] == 0, (st, ax)
    trim[s.output[0]] = (n, en[0])
int4_weights = sum(1 for t in orig.graph.initializer if t.data_type == TensorProto.INT4)

new_by_out = {n.output[0]: n for n in new.graph.node}
assert not any(n.op_type == "Slice" and n.output[0] in trim for n in new.graph.node), "a padded Slice is left"
for out, (dq, rows) in trim.items():
    d = new_by_out[out]
    assert d.op_type == "DequantizeLinear" and list(d.input) == list(dq.input), (d, dq)
    assert attrs(d) == attrs(dq)
    a0, a1 = numpy_helper.to_array(I0[dq.input[0]]), numpy_helper.to_array(I1[dq.input[0]])
    assert a1.shape == (rows, a0.shape[1]), (a1.shape, rows, a0.shape)
    assert np.array_equal(a1, a0[:rows]), dq.input[0]
    assert not a0[rows:].any(), f"{dq.input[0]}: non-zero codes in the padding"
    assert I0[dq.input[1]].SerializeToString() == I1[dq.input[1]].SerializeToString()

# Everything else unchanged.
trimmed_codes = {dq.input[0] for dq, _ in trim.values()}
slice_consts = {x for n in orig.graph.node if n.op_type == "Slice" and n.output[0] in trim for x in n.input[1:]}
still_used = {x for n in new.graph.node for x in n.input}
for name, t in I0.items():
    if name in trimmed_codes:
        continue
    if name in slice_consts and name not in still_used:
        assert name not in I1, f"{name}: an unused Slice constant is kept"
        continue
    assert name in I1 and I1[name].SerializeToString() == t.SerializeToString(), name
assert set(I1) <= set(I0)
dq_outs = {dq.output[0] for dq, _ in trim.values()}
kept0 = [n for n in orig.graph.node if not (n.op_type == "Slice" and n.output[0] in trim) and n.output[0] not in dq_outs]
kept1 = [n for n in new.graph.node if n.output[0] not in trim]
assert [n.SerializeToString() for n in kept0] == [n.SerializeToString() for n in kept1], "other nodes changed"


assert_exact_outputs_equal(orig_path, new_path)
fused_new, left = fused(new_path, TensorProto.INT4)
assert left == 0, f"{left} INT4 DequantizeLinear left unfused"
fused_orig, _ = fused(orig_path, TensorProto.INT4)
assert fused_new == int4_weights, (fused_new, int4_weights)
assert fused_orig == int4_weights - len(trim), (fused_orig, int4_weights, len(trim))
print("ok", len(trim), int4_weights, fused_new, fused_orig)
