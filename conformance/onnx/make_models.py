#!/usr/bin/env python3
"""Generate the ONNX conformance cases: small models, seeded inputs, and the outputs
onnxruntime computes for them. The Rust tests run the same models through the sandbox's
wasi-nn backends (tract-onnx, ONNX Runtime) and compare with compare.py.

    python3 conformance/onnx/make_models.py OUTDIR [--bench] [--only CASE ...]

For every case it writes
    OUTDIR/<case>/model.onnx
    OUTDIR/<case>/<input_name>.npy            one per graph input (seeded random data)
    OUTDIR/<case>/expected/<output_name>.npy  onnxruntime's output (CPUExecutionProvider)
    OUTDIR/<case>/case.json                   input/output names, dtypes and shapes

Cases: mlp, cnn, multi_io, int64, mixed; with --bench also bench_mlp and bench_cnn.
Models use only default-domain ("ai.onnx") operators, opset 13, IR version 8, static
shapes, and no control flow, so tract-onnx 0.23 supports all of them. Each case has its
own fixed seed and onnxruntime runs on one thread, so reruns write identical files.
"""
import argparse
import json
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OPSET, IR_VERSION = 13, 8
F32, I64 = TensorProto.FLOAT, TensorProto.INT64


class Builder:
    """Collects nodes and seeded initializers of one graph."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []

    def init(self, name, array):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def weight(self, name, shape, fan_in):
        """He-initialised float32 weight, so activations stay O(1) through the layers."""
        return self.init(name, self.rng.normal(0, np.sqrt(2 / fan_in), shape).astype(np.float32))

    def bias(self, name, n):
        return self.init(name, self.rng.normal(0, 0.1, n).astype(np.float32))

    def node(self, op, inputs, output, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def conv(self, x, name, cin, cout, k=3, pad=1, stride=1, bias=True):
        ins = [x, self.weight(f"{name}_w", (cout, cin, k, k), cin * k * k)]
        if bias:
            ins.append(self.bias(f"{name}_b", cout))
        return self.node("Conv", ins, name, kernel_shape=[k, k], pads=[pad] * 4,
                         strides=[stride, stride])

    def batchnorm(self, x, name, c):
        r = self.rng
        ins = [x, self.init(f"{name}_scale", r.uniform(0.5, 1.5, c).astype(np.float32)),
               self.init(f"{name}_bias", r.normal(0, 0.1, c).astype(np.float32)),
               self.init(f"{name}_mean", r.normal(0, 0.1, c).astype(np.float32)),
               self.init(f"{name}_var", r.uniform(0.5, 1.5, c).astype(np.float32))]
        return self.node("BatchNormalization", ins, name, epsilon=1e-5)

    def gemm(self, x, name, nin, nout):
        return self.node("Gemm", [x, self.weight(f"{name}_w", (nin, nout), nin),
                                  self.bias(f"{name}_b", nout)], name)

    def model(self, name, inputs, outputs, doc):
        """inputs/outputs: lists of (name, elem_type, shape)."""
        vi = helper.make_tensor_value_info
        graph = helper.make_graph(self.nodes, name,
                                  [vi(n, t, s) for n, t, s in inputs],
                                  [vi(n, t, s) for n, t, s in outputs],
                                  initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="netmind-conformance")
        model.ir_version = IR_VERSION
        model.doc_string = doc
        onnx.checker.check_model(model, full_check=True)
        return model


def uniform(rng, shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, shape).astype(np.float32)


# ------------------------------------------------------------------ cases
# Each returns (model, {input name: array}).

def case_mlp(seed):
    """Two dense layers, written both ways: Gemm, and MatMul + Add; Relu; Softmax."""
    b = Builder(seed)
    h = b.node("Relu", [b.gemm("x", "fc1", 16, 32)], "relu1")
    mm = b.node("MatMul", [h, b.weight("fc2_w", (32, 8), 32)], "fc2_matmul")
    logits = b.node("Add", [mm, b.bias("fc2_b", 8)], "fc2")
    b.node("Softmax", [logits], "y", axis=1)
    m = b.model("mlp", [("x", F32, [4, 16])], [("y", F32, [4, 8])],
                "MLP 16-32-8: Gemm, Relu, MatMul+Add, Softmax")
    return m, {"x": uniform(b.rng, (4, 16))}


def case_cnn(seed):
    """Conv (with and without bias), BatchNormalization, Relu, MaxPool, AveragePool,
    a strided conv, Flatten, Gemm."""
    b = Builder(seed)
    h = b.conv("x", "conv1", 3, 8, bias=False)                                  # [2,8,16,16]
    h = b.node("Relu", [b.batchnorm(h, "bn1", 8)], "relu1")
    h = b.node("MaxPool", [h], "pool1", kernel_shape=[2, 2], strides=[2, 2])   # [2,8,8,8]
    h = b.node("Relu", [b.conv(h, "conv2", 8, 16)], "relu2")                   # [2,16,8,8]
    h = b.node("AveragePool", [h], "pool2", kernel_shape=[2, 2], strides=[2, 2])  # [2,16,4,4]
    h = b.node("Relu", [b.conv(h, "conv3", 16, 16, stride=2)], "relu3")        # [2,16,2,2]
    h = b.node("Flatten", [h], "flat", axis=1)                                 # [2,64]
    b.node("Gemm", [h, b.weight("fc_w", (10, 64), 64), b.bias("fc_b", 10)], "y", transB=1)
    m = b.model("cnn", [("x", F32, [2, 3, 16, 16])], [("y", F32, [2, 10])],
                "CNN: Conv, BatchNormalization, Relu, MaxPool, AveragePool, Flatten, Gemm")
    return m, {"x": uniform(b.rng, (2, 3, 16, 16))}


def case_multi_io(seed):
    """Two inputs, two outputs (one from both inputs, one from x alone)."""
    b = Builder(seed)
    b.node("MatMul", ["x", "y"], "product")
    axes = b.init("axes", np.array([1], dtype=np.int64))
    b.node("ReduceSum", ["x", axes], "row_sum", keepdims=0)   # opset 13: axes is an input
    m = b.model("multi_io", [("x", F32, [3, 5]), ("y", F32, [5, 4])],
                [("product", F32, [3, 4]), ("row_sum", F32, [3])],
                "two inputs, two outputs: MatMul(x, y) and ReduceSum(x, axis 1)")
    return m, {"x": uniform(b.rng, (3, 5)), "y": uniform(b.rng, (5, 4))}


def case_int64(seed):
    """int64 in, int64 out (Add, Mul with int64 initializers), plus ArgMax of a float
    input, the other way models produce int64."""
    b = Builder(seed)
    offset = b.init("offset", b.rng.integers(-1000, 1000, 6, dtype=np.int64))
    factor = b.init("factor", np.array([3, -2, 7, 1, 0, -5], dtype=np.int64))
    b.node("Mul", [b.node("Add", ["a", offset], "a_plus"), factor], "a_out")
    b.node("ArgMax", ["scores"], "best", axis=1, keepdims=0)
    m = b.model("int64", [("a", I64, [6]), ("scores", F32, [4, 7])],
                [("a_out", I64, [6]), ("best", I64, [4])],
                "int64 arithmetic (Add, Mul) and ArgMax (float in, int64 out)")
    # Values beyond 2^32 check that no backend narrows int64 to 32 bits.
    a = b.rng.integers(-(10 ** 12), 10 ** 12, 6, dtype=np.int64)
    return m, {"a": a, "scores": uniform(b.rng, (4, 7))}


def case_mixed(seed):
    """An f32 input and an int64 input: Gather rows of a float table by int64 indices."""
    b = Builder(seed)
    rows = b.node("Gather", ["table", "indices"], "rows", axis=0)          # [3,2,4]
    b.node("Mul", [rows, b.init("scale", np.float32(0.5) * np.ones(4, np.float32))], "y")
    m = b.model("mixed", [("table", F32, [10, 4]), ("indices", I64, [3, 2])],
                [("y", F32, [3, 2, 4])], "Gather(table f32, indices int64) * 0.5")
    indices = b.rng.integers(0, 10, (3, 2), dtype=np.int64)
    return m, {"table": uniform(b.rng, (10, 4)), "indices": indices}


def case_bench_mlp(seed):
    """Benchmark MLP, MNIST-sized: 784 -> 512 -> 512 -> 10, batch 64."""
    b = Builder(seed)
    h = b.node("Relu", [b.gemm("x", "fc1", 784, 512)], "relu1")
    h = b.node("Relu", [b.gemm(h, "fc2", 512, 512)], "relu2")
    b.node("Softmax", [b.gemm(h, "fc3", 512, 10)], "y", axis=1)
    m = b.model("bench_mlp", [("x", F32, [64, 784])], [("y", F32, [64, 10])],
                "benchmark MLP 784-512-512-10")
    return m, {"x": uniform(b.rng, (64, 784), 0.0, 1.0)}


def case_bench_cnn(seed):
    """Benchmark CNN: three conv blocks on [8,3,32,32], then global pooling and Gemm."""
    b = Builder(seed)
    h, cin = "x", 3
    for i, cout in enumerate((32, 64, 128), start=1):
        h = b.conv(h, f"conv{i}", cin, cout, bias=False)
        h = b.node("Relu", [b.batchnorm(h, f"bn{i}", cout)], f"relu{i}")
        if i < 3:
            h = b.node("MaxPool", [h], f"pool{i}", kernel_shape=[2, 2], strides=[2, 2])
        cin = cout
    h = b.node("GlobalAveragePool", [h], "gap")                               # [8,128,1,1]
    h = b.node("Flatten", [h], "flat", axis=1)
    b.node("Softmax", [b.gemm(h, "fc", 128, 10)], "y", axis=1)
    m = b.model("bench_cnn", [("x", F32, [8, 3, 32, 32])], [("y", F32, [8, 10])],
                "benchmark CNN: 3x (Conv 3x3, BatchNormalization, Relu), MaxPool, "
                "GlobalAveragePool, Gemm")
    return m, {"x": uniform(b.rng, (8, 3, 32, 32))}


# name -> (builder, seed)
CASES = {
    "mlp": (case_mlp, 101), "cnn": (case_cnn, 102), "multi_io": (case_multi_io, 103),
    "int64": (case_int64, 104), "mixed": (case_mixed, 105),
}
BENCH = {"bench_mlp": (case_bench_mlp, 201), "bench_cnn": (case_bench_cnn, 202)}


def describe(name, array):
    return {"name": name, "dtype": str(array.dtype), "shape": list(array.shape)}


def write_case(outdir: pathlib.Path, name: str, build, seed: int):
    model, inputs = build(seed)
    case = outdir / name
    (case / "expected").mkdir(parents=True, exist_ok=True)
    for stale in [*case.glob("*.npy"), *(case / "expected").glob("*.npy")]:
        stale.unlink()
    model_bytes = model.SerializeToString()
    (case / "model.onnx").write_bytes(model_bytes)

    graph_inputs = [i.name for i in model.graph.input]
    assert sorted(graph_inputs) == sorted(inputs), (graph_inputs, list(inputs))
    for n in graph_inputs:
        np.save(case / f"{n}.npy", inputs[n])

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1           # reproducible float sums
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    output_names = [o.name for o in model.graph.output]
    results = sess.run(output_names, {n: inputs[n] for n in graph_inputs})
    for n, r in zip(output_names, results):
        assert np.all(np.isfinite(r)), f"{name}/{n} is not finite"
        np.save(case / "expected" / f"{n}.npy", r)

    meta = {
        "case": name,
        "description": model.doc_string,
        "opset": OPSET,
        "ir_version": IR_VERSION,
        "ops": sorted({n.op_type for n in model.graph.node}),
        "inputs": [describe(n, inputs[n]) for n in graph_inputs],
        "outputs": [describe(n, r) for n, r in zip(output_names, results)],
    }
    (case / "case.json").write_text(json.dumps(meta, indent=2) + "\n")
    shapes = ", ".join(f"{o['name']} {o['dtype']}{o['shape']}" for o in meta["outputs"])
    print(f"{name:10} {len(model_bytes):>9} B  -> {shapes}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", type=pathlib.Path)
    ap.add_argument("--bench", action="store_true", help="also write bench_mlp and bench_cnn")
    ap.add_argument("--only", nargs="+", metavar="CASE", choices=[*CASES, *BENCH],
                    help="write only these cases")
    args = ap.parse_args()
    todo = dict(CASES, **(BENCH if args.bench else {}))
    if args.only:
        todo = {k: v for k, v in {**CASES, **BENCH}.items() if k in args.only}
    args.outdir.mkdir(parents=True, exist_ok=True)
    for name, (build, seed) in todo.items():
        write_case(args.outdir, name, build, seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
