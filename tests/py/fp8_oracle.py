#!/usr/bin/env python3
"""Independent FP8 E4M3FN rounding for tests/fp8.rs.

Reads little-endian f32 values from argv[1]; writes to argv[2] one line per value:
`<ml_dtypes code> <onnxruntime value>` where
- the code is `ml_dtypes.float8_e4m3fn` of the value clipped to ±448 (ONNX's definition of
  `saturate=1`: out-of-range values and ±inf become ±448; ml_dtypes alone would give NaN), as a byte;
- the ORT value is ONNX Runtime's `DequantizeLinear(QuantizeLinear(x, 1, fp8 zero))` (opset 21, CPU).
"""
import sys

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

x = np.fromfile(sys.argv[1], dtype="<f4")
clipped = np.where(np.isnan(x), x, np.clip(x, -448.0, 448.0)).astype(np.float32)
codes = clipped.astype(ml_dtypes.float8_e4m3fn).view(np.uint8)

scale = helper.make_tensor("s", TensorProto.FLOAT, [], [1.0])
zp = helper.make_tensor("z", TensorProto.FLOAT8E4M3FN, [], [0.0])
g = helper.make_graph(
    [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"]),
    ],
    "fp8",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])],
    initializer=[scale, zp],
)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
onnx.checker.check_model(m)
sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
y = sess.run(None, {"x": x})[0]
with open(sys.argv[2], "w") as f:
    for c, v in zip(codes, y):
        f.write(f"{int(c)} {float(v)!r}\n")
