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
import sys, collections, tempfile, os
import numpy as np, onnx, onnxruntime as ort
from onnx import numpy_helper, TensorProto

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


def session(path, mode, opt=None):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    if mode == "exact":
        so.add_session_config_entry("session.disable_quant_qdq", "1")
    else:
        so.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", "4")
    if opt:
        so.optimized_model_filepath = opt
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def feeds(s, seq, past):
    f = {
        "input_ids": (np.arange(seq, dtype=np.int64)[None] * 7 + 3) % 200,
        "attention_mask": np.ones((1, past + seq), np.int64),
        "position_ids": np.arange(past, past + seq, dtype=np.int64)[None],
    }
    rng = np.random.default_rng(0)
    for i in s.get_inputs():
        if i.name.startswith("past"):
            dt = np.float16 if "float16" in i.type else np.float32
            f[i.name] = rng.standard_normal((1, i.shape[1], past, i.shape[3])).astype(dt)
    return f


a, b = session(orig_path, "exact"), session(new_path, "exact")
for seq, past in [(9, 0), (1, 9)]:
    oa, ob = a.run(None, feeds(a, seq, past)), b.run(None, feeds(b, seq, past))
    for x, y in zip(oa, ob):
        assert x.dtype == y.dtype and np.array_equal(x, y), f"exact outputs differ (seq {seq}, past {past})"

with tempfile.TemporaryDirectory() as d:
    fused = []
    for path in (new_path, orig_path):
        opt = os.path.join(d, "opt.onnx")
        session(path, "nbits", opt)
        g = onnx.load(opt, load_external_data=False).graph
        inits = {t.name: t.data_type for t in g.initializer}
        fused.append(sum(1 for n in g.node if n.op_type == "MatMulNBits"))
        if path == new_path:
            left = [n.name for n in g.node if n.op_type == "DequantizeLinear" and inits.get(n.input[0]) == TensorProto.INT4]
            assert not left, f"INT4 DequantizeLinear left unfused: {left[:3]}"
assert fused[0] == int4_weights, (fused, int4_weights)
assert fused[1] == int4_weights - len(trim), (fused, int4_weights, len(trim))
print("ok", len(trim), int4_weights, fused[0], fused[1])
