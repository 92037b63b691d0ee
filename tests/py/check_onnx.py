#!/usr/bin/env python3
"""Independent validation of an exported model: onnx.checker full check (type and shape inference)."""
import sys

import onnx

for path in sys.argv[1:]:
    # Passing the path (not a loaded proto) lets the checker handle external data and >2 GB models.
    onnx.checker.check_model(path, full_check=True)
    print(f"onnx.checker full_check passed: {path}")
