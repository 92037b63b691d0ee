#!/usr/bin/env python3
"""Builds a TensorRT-RTX engine with NVIDIA's Python bindings, as an independent check of trtforge's
Rust FFI: same ONNX, same settings -> the engines should be byte-identical.

    python3 tests/py/trt_build_py.py ENGINE_DIR OUT.engine [--no-timing-cache]

Reads the settings `trtforge build` recorded in ENGINE_DIR/trtforge.json (`extra.tensorrt`):
targets, optimization level, workspace limit and every optimization profile's min/opt/max
shapes, and applies them in the same order. Needs `pip install tensorrt-rtx-cu13-bindings==1.7.1.116
tensorrt-rtx-cu13-libs==1.7.1.116` (module `tensorrt_rtx_bindings`, cp311/cp312).
"""
import argparse
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("engine_dir")
    ap.add_argument("out")
    ap.add_argument("--timing-cache", help="timing cache file to load (not written)")
    ap.add_argument("--onnx-only", action="store_true",
                    help="ENGINE_DIR is an ONNX file with static shapes: build it for sm89, no profiles")
    args = ap.parse_args()
    if args.onnx_only:
        sec = {"targets": ["sm89"], "profiles": []}
        onnx_path = args.engine_dir
    else:
        man = json.load(open(os.path.join(args.engine_dir, "trtforge.json")))
        sec = man["extra"]["tensorrt"]
        onnx_path = os.path.join(args.engine_dir, man["onnx"]["file"])

    import tensorrt_rtx_bindings as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    if os.environ.get("TRT_MAX_THREADS"):
        builder.max_threads = int(os.environ["TRT_MAX_THREADS"])
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        for i in range(parser.num_errors):
            print(parser.get_error(i), file=sys.stderr)
        sys.exit(1)
    config = builder.create_builder_config()
    targets = [int(t[2:]) for t in sec["targets"]]
    config.num_compute_capabilities = len(targets)
    for i, t in enumerate(targets):
        config.set_compute_capability(getattr(trt.ComputeCapability, f"SM{t}"), i)
    if sec.get("optimization_level") is not None:
        config.builder_optimization_level = sec["optimization_level"]
    if sec.get("workspace_bytes") is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, sec["workspace_bytes"])
    for p in sec["profiles"]:
        prof = builder.create_optimization_profile()
        for name in sorted(p["inputs"]):
            r = p["inputs"][name]
            prof.set_shape(name, r["min"], r["opt"], r["max"])
        config.add_optimization_profile(prof)
    if args.timing_cache is not None:
        blob = open(args.timing_cache, "rb").read() if os.path.exists(args.timing_cache) else b""
        cache = config.create_timing_cache(blob)
        config.set_timing_cache(cache, False)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        sys.exit("build failed")
    with open(args.out, "wb") as f:
        f.write(bytes(engine))


if __name__ == "__main__":
    main()
