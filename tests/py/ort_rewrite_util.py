"""Shared by the load-time rewrite oracles (int4_unpad_oracle.py, int8_blocked_oracle.py): ONNX Runtime
sessions with trtforge's two kernel settings, seeded feeds, and the two checks every rewrite must pass."""
import os, tempfile
import numpy as np, onnx, onnxruntime as ort
from onnx import TensorProto


def session(path, mode, opt=None):
    """mode "exact": the graph as written (QDQ fusion off); "nbits": MatMulNBits fusion, accuracy level 4."""
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


def assert_exact_outputs_equal(orig_path, new_path):
    """Both models run as written give bit-identical outputs on a prefill and a decode step."""
    a, b = session(orig_path, "exact"), session(new_path, "exact")
    for seq, past in [(9, 0), (1, 9)]:
        oa, ob = a.run(None, feeds(a, seq, past)), b.run(None, feeds(b, seq, past))
        for x, y in zip(oa, ob):
            assert x.dtype == y.dtype and np.array_equal(x, y), f"exact outputs differ (seq {seq}, past {past})"


def fused(path, weight_type):
    """(MatMulNBits nodes, DequantizeLinear nodes on `weight_type` initializers) in ONNX Runtime's
    optimized graph of `path` under the MatMulNBits setting."""
    with tempfile.TemporaryDirectory() as d:
        opt = os.path.join(d, "opt.onnx")
        session(path, "nbits", opt)
        g = onnx.load(opt, load_external_data=False).graph
        inits = {t.name: t.data_type for t in g.initializer}
        nbits = sum(1 for n in g.node if n.op_type == "MatMulNBits")
        left = sum(1 for n in g.node if n.op_type == "DequantizeLinear" and inits.get(n.input[0]) == weight_type)
        return nbits, left
